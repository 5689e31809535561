/* Shared-randomness directions: z(seed), a Rademacher (+1/-1) vector that
 * every replica regenerates bit-identically from a short seed.
 *
 * Coordinate j of tensor t's direction is a pure function of
 * (domain, model id, tensor id, seed, j):
 *   key    = BLAKE2b-256 (personalisation SFL_ZGEN_PERSONAL) over the fields
 *            encoded as: u8 len(domain) || domain || u64le model_id ||
 *            u32le tensor || seed[32]
 *   stream = ChaCha20 (libsodium crypto_stream_chacha20_xor_ic: 64-bit nonce
 *            of zeros, 64-bit block counter) under that key
 *   z_j    = bit (j mod 8) of stream byte (j / 8): 0 -> +1, 1 -> -1
 * Block b of the stream holds coordinates [512 b, 512 b + 512), so any slice
 * is produced directly from its own blocks.
 *
 * Nothing here touches libm, BLAS or fused multiply-add (the files compile
 * with -ffp-contract=off): z_j * alpha is exact for z_j = +-1, so every add
 * below is one correctly rounded IEEE float add, the same on every machine.
 * The multi-term replay applies terms in the order given, per coordinate, so
 * it equals applying them one after another.
 *
 * The keystream comes from libsodium; call sodium_init() first so that it
 * picks its vectorised ChaCha20 (the output is the same either way).
 * tests/tools/zgen_golden.py re-implements all of this for the golden tests. */
#ifndef SFL_ZGEN_H
#define SFL_ZGEN_H

#include <stddef.h>
#include <stdint.h>

#define SFL_ZGEN_PERSONAL "seedfl-z/1"     /* zero-padded to 16 bytes */
#define SFL_ZSEED_BYTES 32
#define SFL_ZDOMAIN_MAX 64

/* Domains: every use of the generator has its own. */
#define SFL_ZDOM_POOL "zo-pool"            /* zo seed pool directions */
#define SFL_ZDOM_DERIVED "zo-derived"      /* zo derived-seed directions */

typedef struct {
    uint8_t key[32];
} sfl_zkey;

/* One tensor of a parameter vector: coordinates [off, off + len). */
typedef struct {
    size_t off, len;
} sfl_ztensor;

/* A model's tensors in parameter order (tensor id = index) and its model id.
 * The tensors tile [0, nparams): t[0].off = 0, t[i].off = t[i-1].off +
 * t[i-1].len, and the lengths add up to nparams; the functions taking a
 * layout return SFL_EINVAL for any other. */
#define SFL_ZMAX_TENSORS 32
typedef struct {
    uint64_t model_id;
    int ntensors;
    sfl_ztensor t[SFL_ZMAX_TENSORS];
    size_t nparams;                     /* sum of the lengths */
} sfl_zlayout;

/* One replay term: add alpha * z(seed) to the parameters. */
typedef struct {
    uint8_t seed[SFL_ZSEED_BYTES];
    float alpha;
} sfl_zterm;

/* Key of the stream for (domain, model id, tensor, seed). SFL_EINVAL when the
 * domain is empty or longer than SFL_ZDOMAIN_MAX. */
int sfl_zkey_derive(sfl_zkey *k, const char *domain, uint64_t model_id, uint32_t tensor,
                    const uint8_t seed[SFL_ZSEED_BYTES]);

/* Coordinates [start, start + n) as packed bits (bit i % 8 of out[i / 8] is
 * coordinate start + i; 1 means -1). out holds (n + 7) / 8 bytes; the unused
 * high bits of the last one are zero. Any start works, not only multiples of
 * 8 or 512. */
void sfl_z_bits(const sfl_zkey *k, uint64_t start, size_t n, uint8_t *out);
/* The same coordinates as floats +1.0f / -1.0f. */
void sfl_z_values(const sfl_zkey *k, uint64_t start, size_t n, float *out);
/* y[i] = x[i] + alpha * z_{start+i} for i < n, computed as x[i] + alpha or
 * x[i] - alpha (one float add). x may equal y (in place) but must not
 * otherwise overlap it. */
void sfl_z_axpy(const sfl_zkey *k, uint64_t start, size_t n, float alpha, const float *x,
                float *y);

/* model_id = the first 8 bytes (little-endian) of BLAKE2b-256 of the model
 * spec string with personalisation "seedfl-model/1". */
uint64_t sfl_z_model_id(const char *spec);

/* Whole parameter vectors: y = x + alpha * z(seed), tensor t keyed with id t.
 * x may equal y. SFL_EINVAL for a bad domain or layout. */
int sfl_z_model_axpy(const sfl_zlayout *l, const char *domain, const uint8_t seed[SFL_ZSEED_BYTES],
                     float alpha, const float *x, float *y);

/* Replay: theta += terms[0].alpha z(terms[0].seed), then terms[1], ... in
 * that order for every coordinate, bit-identical to calling
 * sfl_z_model_axpy once per term in order, but in cache-sized blocks so
 * theta crosses memory once per block rather than once per term. No terms:
 * theta is left alone. SFL_EINVAL for a bad domain or layout, SFL_ENOMEM. */
int sfl_z_replay(const sfl_zlayout *l, const char *domain, const sfl_zterm *terms, size_t nterms,
                 float *theta);

/* Seed derivations, each BLAKE2b-256 with its own personalisation (zero
 * padded to 16 bytes) and integers little-endian:
 *   root         = BLAKE2b(personal "seedfl-root/1", no key, u64le run_seed)
 *   pool seed k  = BLAKE2b(personal "seedfl-pool/1", key root, u32le k)
 *   derived seed = BLAKE2b(personal "seedfl-derive/1", key root,
 *                          u32le round || client_pk[32] || u32le step) */
void sfl_z_root(uint64_t run_seed, uint8_t root[32]);
void sfl_z_pool_seed(const uint8_t root[32], uint32_t k, uint8_t seed[SFL_ZSEED_BYTES]);
void sfl_z_derived_seed(const uint8_t root[32], uint32_t round, const uint8_t client_pk[32],
                        uint32_t step, uint8_t seed[SFL_ZSEED_BYTES]);

#endif
