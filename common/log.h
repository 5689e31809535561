/* One structured line per event on stderr:
 *   2026-12-03T20:07:45.123Z level=info event=round_open round=3 cohort=8 */
#ifndef SFL_LOG_H
#define SFL_LOG_H

enum sfl_log_level { SFL_LOG_DEBUG, SFL_LOG_INFO, SFL_LOG_WARN, SFL_LOG_ERROR };

void sfl_log_set_level(enum sfl_log_level lvl);
/* Set the level by name (debug, info, warn, error); SFL_EINVAL otherwise. */
int sfl_log_set_level_name(const char *name);
/* fmt carries the key=value pairs after the event name. */
void sfl_log(enum sfl_log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define sfl_info(ev, ...) sfl_log(SFL_LOG_INFO, ev, __VA_ARGS__)
#define sfl_warn(ev, ...) sfl_log(SFL_LOG_WARN, ev, __VA_ARGS__)
#define sfl_error(ev, ...) sfl_log(SFL_LOG_ERROR, ev, __VA_ARGS__)
#define sfl_debug(ev, ...) sfl_log(SFL_LOG_DEBUG, ev, __VA_ARGS__)

#endif
