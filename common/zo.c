/* Quantization, packing and replay of the zo mode (see zo.h). No libm, no
 * BLAS, compiled with -ffp-contract=off: every replica computes the same
 * floats. */
#include "zo.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

void sfl_zo_layout(const sfl_model *m, sfl_zlayout *l)
{
    memset(l, 0, sizeof *l);
    l->model_id = sfl_z_model_id(m->spec);
    for (int i = 0; i < m->nlayers; i++) {
        size_t nw = (size_t)m->sizes[i] * (size_t)m->sizes[i + 1];
        l->t[l->ntensors].off = m->w_off[i];
        l->t[l->ntensors++].len = nw;
        l->t[l->ntensors].off = m->b_off[i];
        l->t[l->ntensors++].len = (size_t)m->sizes[i + 1];
    }
    l->nparams = m->nparams;
}

int8_t sfl_zo_quantize(double g, float scale, float u)
{
    /* written so that NaN fails every comparison and lands on 0 */
    if (!(scale > 0.0f) || !(g == g) || !(g - g == 0.0))
        return 0;
    double x = g / (double)scale;
    if (x >= 127.0)
        return 127;
    if (x <= -127.0)
        return -127;
    /* floor without libm: truncate, then step down for negative fractions */
    double t = (double)(int)x;
    double fl = t > x ? t - 1.0 : t;
    int q = (int)fl + ((double)u < x - fl ? 1 : 0);
    return (int8_t)q;
}

void sfl_zo_pack_pool(uint8_t out[SFL_ZO_POOL_BYTES], uint32_t k, int8_t q)
{
    out[0] = (uint8_t)(k & 0xff);
    out[1] = (uint8_t)((k >> 8) & 0xff);
    out[2] = (uint8_t)q;
}

void sfl_zo_unpack_pool(const uint8_t in[SFL_ZO_POOL_BYTES], uint32_t *k, int8_t *q)
{
    *k = (uint32_t)in[0] | (uint32_t)in[1] << 8;
    *q = (int8_t)in[2];
}

static int zo_finite(double v)
{
    return v == v && v - v == 0.0;
}

int sfl_zo_replay_pool(const sfl_zlayout *l, const uint8_t root[32], const uint32_t *seeds,
                       const double *sums, size_t n, float lr, float *theta)
{
    for (size_t i = 0; i < n; i++)
        if (seeds[i] >= SFL_ZO_POOL_MAX || (i > 0 && seeds[i] <= seeds[i - 1]) ||
            !zo_finite(sums[i]))
            return SFL_EINVAL;
    if (n == 0)
        return 0;
    sfl_zterm *terms = malloc(n * sizeof *terms);
    if (!terms)
        return SFL_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        sfl_z_pool_seed(root, seeds[i], terms[i].seed);
        terms[i].alpha = (float)(-(double)lr * sums[i]);
    }
    int rc = sfl_z_replay(l, SFL_ZDOM_POOL, terms, n, theta);
    free(terms);
    return rc;
}

int sfl_zo_replay_derived(const sfl_zlayout *l, const uint8_t root[32], uint32_t round,
                          const sfl_zo_contrib *c, size_t n, float lr, float scale, float *theta)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i].nq == 0 || c[i].nq > SFL_ZO_STEPS_MAX || !zo_finite(c[i].weight) ||
            (i > 0 && memcmp(c[i - 1].key, c[i].key, 32) >= 0))
            return SFL_EINVAL;
        for (size_t j = 0; j < c[i].nq; j++) {
            if ((int8_t)c[i].q[j] == -128)
                return SFL_EINVAL;
            total += c[i].q[j] != 0;
        }
    }
    if (total == 0)
        return 0;
    sfl_zterm *terms = malloc(total * sizeof *terms);
    if (!terms)
        return SFL_ENOMEM;
    size_t t = 0;
    for (size_t i = 0; i < n; i++) {
        double per = -(double)lr * c[i].weight * (double)scale / (double)c[i].nq;
        /* a zero scalar adds nothing: skip its sweep over theta */
        for (size_t j = 0; j < c[i].nq; j++) {
            if (c[i].q[j] == 0)
                continue;
            sfl_z_derived_seed(root, round, c[i].key, (uint32_t)j, terms[t].seed);
            terms[t++].alpha = (float)(per * (double)(int8_t)c[i].q[j]);
        }
    }
    int rc = sfl_z_replay(l, SFL_ZDOM_DERIVED, terms, total, theta);
    free(terms);
    return rc;
}
