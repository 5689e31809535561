/* Small shared helpers: strict number parsing, host:port, byte order. */
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
/* Copy n float32 from little-endian bytes / to little-endian bytes. */
void sfl_floats_from_le(float *dst, const uint8_t *src, size_t n);
void sfl_floats_to_le(uint8_t *dst, const float *src, size_t n);
/* Short printable id of a public key for logs (first 10 base64 chars). */
void sfl_key_id(const uint8_t key[32], char out[16]);
/* Monotonic time in seconds. */
double sfl_now(void);

#endif
