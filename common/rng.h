/* Deterministic, seeded randomness for partitions, initial weights and
 * minibatch order: a ChaCha20 keystream (libsodium) whose key is BLAKE2b
 * over (domain, seed, a, b). Never used for key material or DP noise.
 *
 * Exact definition (other implementations must match it bit for bit):
 *   key    = BLAKE2b-256(no key, salt 0^16, personal "seedfl-rng" zero padded
 *            to 16 bytes, message le64(strlen(domain)) || domain || le64(seed)
 *            || le64(a) || le64(b))
 *   stream = original ChaCha20 (64-bit nonce, 64-bit block counter) under key,
 *            nonce 0, counter from 0
 *   u32/u64 take the next 4/8 stream bytes, little-endian. */
#ifndef SFL_RNG_H
#define SFL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t key[32];
    uint64_t block;      /* next 64-byte ChaCha20 block */
    uint8_t buf[256];
    size_t pos;          /* bytes of buf used */
} sfl_rng;

/* domain: a short ASCII label (e.g. "partition", "init", "batch") that keeps
 * uses apart; a and b: further identifiers (shard, round...). */
void sfl_rng_init(sfl_rng *r, const char *domain, uint64_t seed, uint64_t a, uint64_t b);
uint32_t sfl_rng_u32(sfl_rng *r);
uint64_t sfl_rng_u64(sfl_rng *r);
/* Uniform in [0, n) without modulo bias; n > 0. */
uint32_t sfl_rng_below(sfl_rng *r, uint32_t n);
/* Uniform in [0, 1) with 24 random bits (float) / 53 bits (double). */
float sfl_rng_uniform(sfl_rng *r);
double sfl_rng_uniform_d(sfl_rng *r);
/* Standard normal (Box-Muller; uses libm, so never on a replay path). */
double sfl_rng_normal(sfl_rng *r);
/* Fisher-Yates shuffle of n indices. */
void sfl_rng_shuffle_u32(sfl_rng *r, uint32_t *v, size_t n);

#endif
