/* The zo mode's shared arithmetic: one-byte quantization of projected
 * gradients, the upload's packing, and the replay every replica (server and
 * clients) applies to stay bit-identical. Compiled with -ffp-contract=off and
 * without libm, like the generator it drives.
 *
 * Replay of a round, from the round's starting parameters theta:
 *   pool:    theta -= lr * sum_k A_k z(pool seed k), k ascending, where the
 *            server published A_k = sum_i w_i sum_{steps of i with seed k}
 *            q * scale (float64);
 *   derived: theta -= lr * sum_i w_i / tau_i * sum_j q_ij * scale *
 *            z(derived seed (round, key_i, j)), clients in ascending key
 *            order, steps in order.
 * Each term's coefficient is computed in float64 then rounded once to
 * float, so every replica derives the same float from the same inputs. */
#ifndef SFL_ZO_H
#define SFL_ZO_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "zgen.h"

#define SFL_ZO_POOL_MAX 65536     /* K: seed indices fit 16 bits */
#define SFL_ZO_STEPS_MAX 20000    /* tau: one upload fits one frame */
#define SFL_ZO_POOL_BYTES 3       /* per step: u16le k, int8 q */
#define SFL_ZO_DERIVED_BYTES 1    /* per step: int8 q */
/* next scale = SFL_ZO_SCALE_C * RMS(decoded scalars) / 127: the byte's range
 * covers four root-mean-squares, so clamping is rare and q keeps ~5 bits of
 * resolution for typical values. */
#define SFL_ZO_SCALE_C 4.0

enum sfl_zo_variant { SFL_ZO_POOL, SFL_ZO_DERIVED };

/* The model's tensors (W then b per layer; tensor ids 0, 1, 2, ...) and its
 * model id, for the generator. */
void sfl_zo_layout(const sfl_model *m, sfl_zlayout *l);

/* Stochastic rounding of g / scale with the uniform u in [0, 1), clamped to
 * [-127, 127]: unbiased inside the range, never -128. A non-finite g or a
 * scale that is not > 0 gives 0. */
int8_t sfl_zo_quantize(double g, float scale, float u);

void sfl_zo_pack_pool(uint8_t out[SFL_ZO_POOL_BYTES], uint32_t k, int8_t q);
void sfl_zo_unpack_pool(const uint8_t in[SFL_ZO_POOL_BYTES], uint32_t *k, int8_t *q);

/* Pool replay: seeds strictly ascending and < SFL_ZO_POOL_MAX, sums finite.
 * SFL_EINVAL otherwise (theta untouched), SFL_ENOMEM. */
int sfl_zo_replay_pool(const sfl_zlayout *l, const uint8_t root[32], const uint32_t *seeds,
                       const double *sums, size_t n, float lr, float *theta);

/* One client's contribution to a derived round. */
typedef struct {
    uint8_t key[32];
    double weight;        /* normalized sample weight */
    const uint8_t *q;     /* int8 scalars in step order */
    size_t nq;            /* tau_i >= 1 */
} sfl_zo_contrib;

/* Derived replay: contributions in strictly ascending key order, weights
 * finite, no q of -128. SFL_EINVAL otherwise (theta untouched),
 * SFL_ENOMEM. */
int sfl_zo_replay_derived(const sfl_zlayout *l, const uint8_t root[32], uint32_t round,
                          const sfl_zo_contrib *c, size_t n, float lr, float scale, float *theta);

/* Client side: one round of zo work on the local shard. */
typedef struct {
    enum sfl_zo_variant variant;
    const uint8_t *root;      /* 32 bytes */
    const uint8_t *client_pk; /* 32 bytes (derived seeds) */
    uint32_t pool_size;       /* K */
    uint32_t steps;           /* tau */
    uint32_t batch;
    float eps, lr, scale;
    uint64_t seed;            /* the client's own generator: seed choice, batches, rounding */
    uint32_t shard, round;
} sfl_zo_opts;

/* tau steps: pick a seed (pool: uniformly from the client's generator;
 * derived: from (round, key, step)), measure
 * g = (L(theta + eps z) - L(theta - eps z)) / (2 eps) on one minibatch with
 * the perturbed parameters in a scratch copy (theta is never perturbed in
 * place), quantize, and in the pool variant step theta -= lr q scale z; the
 * derived variant measures every step at the starting theta. Writes
 * steps * SFL_ZO_POOL_BYTES (pool) or steps bytes (derived) to out.
 * mean_loss: mean of the measured losses. SFL_EINVAL for bad options or
 * data, SFL_ENOMEM. */
int sfl_zo_train(sfl_model *m, const sfl_dataset *d, const sfl_zo_opts *o, uint8_t *out,
                 double *mean_loss);

#endif
