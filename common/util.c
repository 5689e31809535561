#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "keys.h"

int sfl_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    /* strtoull would skip any leading white space and take a sign */
    if (!s || !*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
        return SFL_EINVAL;
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v < min || v > max)
        return SFL_EINVAL;
    *out = v;
    return 0;
}

int sfl_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    uint64_t v;
    int rc = sfl_parse_u64(s, min, max, &v);
    if (rc == 0)
        *out = (uint32_t)v;
    return rc;
}

int sfl_parse_double(const char *s, double min, double max, double *out)
{
    /* strtod would skip leading white space and read hexadecimal ("0x1p-3") */
    if (!s || !*s || isspace((unsigned char)*s) || strpbrk(s, "xX"))
        return SFL_EINVAL;
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v) || v < min || v > max)
        return SFL_EINVAL;
    *out = v;
    return 0;
}

int sfl_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (!s || !*s)
        return SFL_EINVAL;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return SFL_EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return SFL_EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return SFL_EINVAL;
    uint64_t p;
    if (sfl_parse_u64(colon + 1, 0, 65535, &p) < 0)
        return SFL_EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    *port = (int)p;
    return 0;
}

/* The first n bytes of s, cut to what fits in buf with "..." after it. */
static const char *echo_n(const char *s, size_t n, char *buf, size_t size)
{
    if (!size)
        return "";
    size_t keep = n < size ? n : size - 1;
    int cut = keep < n;
    if (cut)
        keep = size > 4 ? size - 4 : 0;
    for (size_t i = 0; i < keep; i++) {
        unsigned char ch = (unsigned char)s[i];
        buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    if (cut && size > 4) {
        memcpy(buf + keep, "...", 3);
        keep += 3;
    }
    buf[keep] = 0;
    return buf;
}

const char *sfl_echo(const char *s, char *buf, size_t size)
{
    return echo_n(s ? s : "", s ? strlen(s) : 0, buf, size);
}

/* Levenshtein distance of two short strings, or a large number when either
 * is too long to be worth comparing. */
static size_t edit_distance(const char *a, size_t la, const char *b, size_t lb)
{
    enum { MAXLEN = 40 };
    size_t row[MAXLEN + 1];
    if (la > MAXLEN || lb > MAXLEN)
        return (size_t)-1;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

void sfl_opt_suggest(const struct option *opts, const char *name, size_t len, const char *lead,
                     char *out, size_t outlen)
{
    enum { MAX_SHOWN = 4 };
    const char *hit[MAX_SHOWN];
    int n = 0;
    if (!outlen)
        return;
    out[0] = 0;
    /* a prefix is what glibc would have taken; a near miss is a typo */
    size_t near = len <= 4 ? 1 : 2;
    for (int i = 0; opts[i].name && n < MAX_SHOWN; i++) {
        const char *o = opts[i].name;
        size_t lo = strlen(o);
        if ((len > 0 && lo > len && !memcmp(o, name, len)) ||
            edit_distance(name, len, o, lo) <= near)
            hit[n++] = o;
    }
    if (n == 0)
        return;
    size_t used = 0;
    int w = snprintf(out, outlen, " (did you mean");
    for (int i = 0; i <= n && w >= 0 && (size_t)w < outlen - used; i++) {
        used += (size_t)w;
        if (i == n)
            w = snprintf(out + used, outlen - used, "?)");
        else
            w = snprintf(out + used, outlen - used, "%s%s%s",
                         i == 0 ? " " : i == n - 1 ? " or " : ", ", lead, hit[i]);
    }
}

static int opt_find(const struct option *opts, const char *name, size_t len)
{
    for (int i = 0; opts[i].name; i++)
        if (strlen(opts[i].name) == len && !memcmp(opts[i].name, name, len))
            return i;
    return -1;
}

static int opt_not_known(const struct option *opts, const char *text, char *err, size_t errlen)
{
    const char *name = text + strspn(text, "-");
    size_t len = strcspn(name, "=");
    char shown[SFL_ECHO_SIZE], hint[256];
    sfl_opt_suggest(opts, name, len, "--", hint, sizeof hint);
    return sfl_fail(err, errlen, SFL_EINVAL, "option '%s' is not known%s",
                    echo_n(text, (size_t)(name - text) + len, shown, sizeof shown), hint);
}

int sfl_getopt_check(int c, char *const argv[], const struct option *opts, int idx, char *err,
                     size_t errlen)
{
    char shown[SFL_ECHO_SIZE];
    if (c == '?' || c == ':') {
        /* glibc has stepped past a bad long option, so it is argv[optind - 1];
         * a bad short one may sit inside a cluster that optind has not left */
        const char *text = optind > 0 ? argv[optind - 1] : NULL;
        if (text && !strncmp(text, "--", 2) && text[2]) {
            const char *name = text + 2;
            size_t len = strcspn(name, "=");
            int k = opt_find(opts, name, len);
            if (k < 0)
                return opt_not_known(opts, text, err, errlen);
            if (optopt == 0 || optopt == opts[k].val) {
                if (opts[k].has_arg == no_argument && name[len] == '=')
                    return sfl_fail(err, errlen, SFL_EINVAL, "option '--%s' takes no value",
                                    opts[k].name);
                if (opts[k].has_arg == required_argument && !name[len])
                    return sfl_fail(err, errlen, SFL_EINVAL, "option '--%s' needs a value",
                                    opts[k].name);
            }
        }
        if (optopt > 0x20 && optopt < 0x7f)
            return sfl_fail(err, errlen, SFL_EINVAL, "option '-%c' is not known", optopt);
        return sfl_fail(err, errlen, SFL_EINVAL, "option '%s' is not known",
                        sfl_echo(text, shown, sizeof shown));
    }
    if (idx < 0)
        return 0;
    /* the option's own word: one back, or two when its value was the next word */
    if (optind < 1)
        return 0;
    const char *text = argv[optind - 1];
    if (optarg && optarg == argv[optind - 1] && optind >= 2)
        text = argv[optind - 2];
    const char *name = text + strspn(text, "-");
    size_t len = strcspn(name, "=");
    if (strlen(opts[idx].name) == len && !memcmp(opts[idx].name, name, len))
        return 0;
    return opt_not_known(opts, text, err, errlen);
}

void sfl_floats_from_le(float *dst, const uint8_t *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, src, n * 4);
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
#endif
}

void sfl_floats_to_le(uint8_t *dst, const float *src, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, src, n * 4);
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], 4);
        dst[4 * i] = (uint8_t)u;
        dst[4 * i + 1] = (uint8_t)(u >> 8);
        dst[4 * i + 2] = (uint8_t)(u >> 16);
        dst[4 * i + 3] = (uint8_t)(u >> 24);
    }
#endif
}

void sfl_key_id(const uint8_t key[32], char out[16])
{
    char b64[45];
    sfl_keys_encode(key, b64);
    memcpy(out, b64, 10);
    out[10] = 0;
}

double sfl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int sfl_getopt_next(int argc, char *const argv[], const struct option *opts, int *idx,
                    const char *prog)
{
    char err[512];
    *idx = -1;
    int c = getopt_long(argc, argv, "h", opts, idx);
    if (c == -1)
        return -1;
    if (sfl_getopt_check(c, argv, opts, *idx, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\ntry '%s --help'\n", prog, err, prog);
        return -2;
    }
    return c;
}
