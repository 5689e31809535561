#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "err.h"

static enum sfl_log_level min_level = SFL_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void sfl_log_set_level(enum sfl_log_level lvl) { min_level = lvl; }

int sfl_log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (!strcmp(name, level_names[i])) {
            min_level = (enum sfl_log_level)i;
            return 0;
        }
    }
    return SFL_EINVAL;
}

void sfl_log(enum sfl_log_level lvl, const char *event, const char *fmt, ...)
{
    if (lvl < min_level)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char line[1024];
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, level_names[lvl], event);
    if (n < 0 || (size_t)n >= sizeof line)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    /* one write per line so concurrent processes do not interleave mid-line */
    fprintf(stderr, "%s\n", line);
}
