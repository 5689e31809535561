/* Small shared helpers: strict number parsing, host:port, command-line
 * options, byte order. */
#ifndef SFL_UTIL_H
#define SFL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Whole-string decimal parse within [min, max] (no sign, no leading white
 * space); SFL_EINVAL otherwise. */
int sfl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
int sfl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Whole-string finite decimal number within [min, max] ("1e-3" but not
 * hexadecimal or leading white space). */
int sfl_parse_double(const char *s, double min, double max, double *out);
/* "HOST:PORT" or "[V6]:PORT"; port 0..65535. */
int sfl_parse_hostport(const char *s, char *host, size_t hostlen, int *port);
/* After getopt_long (called with opterr = 0) returned c, with idx its
 * longindex (set idx to -1 before each call, so that a short option leaves
 * it there): 0 when c is an option to act on. Otherwise SFL_EINVAL with one
 * line in err naming what is wrong: an unknown option, an option missing
 * its value or given one it does not take, and a long option that was not
 * spelled in full. glibc accepts any unambiguous prefix and, when several
 * options share has_arg, flag and val, silently takes the first match
 * ("--open" for "--open-enrolment"), so every program demands full names. */
struct option;
int sfl_getopt_check(int c, char *const argv[], const struct option *opts, int idx, char *err,
                     size_t errlen);
/* " (did you mean --a or --b?)" naming the options of opts whose names
 * start with the len bytes of name or are within two edits of them, or ""
 * when none is; for a message about a mistyped option. lead goes before
 * each name: "--" on a command line, "" in a config file. */
/* getopt_long with sfl_getopt_check: the next option's character (0 for a
 * long option, opts[*idx] then), -1 when the options are over, or -2 when
 * one is wrong, after saying so on stderr as "PROG: reason" with a hint to
 * try --help. Set opterr = 0 (and optind, for a second pass) before. */
int sfl_getopt_next(int argc, char *const argv[], const struct option *opts, int *idx,
                    const char *prog);
void sfl_opt_suggest(const struct option *opts, const char *name, size_t len, const char *lead,
                     char *out, size_t outlen);
/* s for an error message: at most size - 4 bytes of it, then "..." when it
 * was longer, with control characters shown as '?', so that a huge or
 * binary argument cannot flood or garble the terminal. Returns buf. */
const char *sfl_echo(const char *s, char *buf, size_t size);
/* A buffer size for sfl_echo that shows 64 characters of a value. */
#define SFL_ECHO_SIZE 68

/* Copy n float32 from little-endian bytes / to little-endian bytes. */
void sfl_floats_from_le(float *dst, const uint8_t *src, size_t n);
void sfl_floats_to_le(uint8_t *dst, const float *src, size_t n);
/* Short printable id of a public key for logs (first 10 base64 chars). */
void sfl_key_id(const uint8_t key[32], char out[16]);
/* Monotonic time in seconds. */
double sfl_now(void);

#endif
