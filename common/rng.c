#include "rng.h"

#include <math.h>
#include <string.h>

#include <sodium.h>

/* BLAKE2b personalisation: exactly 16 bytes, zero padded. */
static const uint8_t rng_personal[crypto_generichash_blake2b_PERSONALBYTES] = "seedfl-rng";
static const uint8_t rng_salt[crypto_generichash_blake2b_SALTBYTES];    /* all zero */
static const uint8_t rng_nonce[crypto_stream_chacha20_NONCEBYTES];     /* all zero */

static void rng_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The key is BLAKE2b-256 (personal "seedfl-rng") over
 *   le64(strlen(domain)) || domain || le64(seed) || le64(a) || le64(b).
 * The length prefix keeps ("ab", ...) and ("a", "b"...) apart. Nothing here
 * can fail for a message of this size, so the results are not checked. */
void sfl_rng_init(sfl_rng *r, const char *domain, uint64_t seed, uint64_t a, uint64_t b)
{
    size_t dlen = strlen(domain);
    uint8_t lenbuf[8], tail[24];
    crypto_generichash_blake2b_state st;

    rng_put_le64(lenbuf, (uint64_t)dlen);
    rng_put_le64(tail, seed);
    rng_put_le64(tail + 8, a);
    rng_put_le64(tail + 16, b);

    crypto_generichash_blake2b_init_salt_personal(&st, NULL, 0, sizeof r->key, rng_salt,
                                                  rng_personal);
    crypto_generichash_blake2b_update(&st, lenbuf, sizeof lenbuf);
    crypto_generichash_blake2b_update(&st, (const uint8_t *)domain, dlen);
    crypto_generichash_blake2b_update(&st, tail, sizeof tail);
    crypto_generichash_blake2b_final(&st, r->key, sizeof r->key);

    r->block = 0;
    r->pos = sizeof r->buf;
}

/* Next sizeof(buf) bytes of the ChaCha20 (64-bit nonce, 64-bit block
 * counter) keystream, nonce zero. */
static void rng_refill(sfl_rng *r)
{
    memset(r->buf, 0, sizeof r->buf);
    crypto_stream_chacha20_xor_ic(r->buf, r->buf, sizeof r->buf, rng_nonce, r->block, r->key);
    r->block += sizeof r->buf / 64;
    r->pos = 0;
}

/* The next n stream bytes; a read may straddle two refills, so the stream is
 * the same whatever mix of u32 and u64 calls consumes it. */
static void rng_bytes(sfl_rng *r, uint8_t *out, size_t n)
{
    while (n > 0) {
        if (r->pos == sizeof r->buf)
            rng_refill(r);
        size_t k = sizeof r->buf - r->pos < n ? sizeof r->buf - r->pos : n;
        memcpy(out, r->buf + r->pos, k);
        r->pos += k;
        out += k;
        n -= k;
    }
}

uint32_t sfl_rng_u32(sfl_rng *r)
{
    uint8_t p[4];
    rng_bytes(r, p, sizeof p);
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t sfl_rng_u64(sfl_rng *r)
{
    uint8_t p[8];
    rng_bytes(r, p, sizeof p);
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Rejection: draws below 2^32 mod n would make the low residues more likely. */
uint32_t sfl_rng_below(sfl_rng *r, uint32_t n)
{
    if (n <= 1)
        return 0;
    uint32_t thresh = (uint32_t)(-n) % n;
    for (;;) {
        uint32_t x = sfl_rng_u32(r);
        if (x >= thresh)
            return x % n;
    }
}

static uint64_t rng_below64(sfl_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t thresh = (uint64_t)(-n) % n;
    for (;;) {
        uint64_t x = sfl_rng_u64(r);
        if (x >= thresh)
            return x % n;
    }
}

float sfl_rng_uniform(sfl_rng *r)
{
    return (float)(sfl_rng_u32(r) >> 8) * (1.0f / 16777216.0f);
}

double sfl_rng_uniform_d(sfl_rng *r)
{
    return (double)(sfl_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0);
}

double sfl_rng_normal(sfl_rng *r)
{
    double u1 = 1.0 - sfl_rng_uniform_d(r);    /* (0, 1]: log never sees 0 */
    double u2 = sfl_rng_uniform_d(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586476925 * u2);
}

void sfl_rng_shuffle_u32(sfl_rng *r, uint32_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = i <= UINT32_MAX ? sfl_rng_below(r, (uint32_t)i)
                                   : (size_t)rng_below64(r, (uint64_t)i);
        uint32_t t = v[i - 1];
        v[i - 1] = v[j];
        v[j] = t;
    }
}
