#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
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
