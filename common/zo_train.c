/* The client's side of a zo round: two forward passes per step, no
 * backpropagation, one byte per step uploaded. */
#include "zo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "rng.h"

int sfl_zo_train(sfl_model *m, const sfl_dataset *d, const sfl_zo_opts *o, uint8_t *out,
                 double *mean_loss)
{
    if (mean_loss)
        *mean_loss = NAN;
    if (!d || d->n == 0 || d->n > UINT32_MAX || d->dim != (size_t)m->sizes[0] || !o->root ||
        o->steps < 1 || o->steps > SFL_ZO_STEPS_MAX || o->batch < 1 || o->batch > 65536 ||
        !(o->eps > 0.0f) || !isfinite(o->eps) || !(o->lr > 0.0f) || !isfinite(o->lr) ||
        !(o->scale > 0.0f) || !isfinite(o->scale))
        return SFL_EINVAL;
    if (o->variant == SFL_ZO_POOL ? (o->pool_size < 1 || o->pool_size > SFL_ZO_POOL_MAX)
                                  : !o->client_pk)
        return SFL_EINVAL;

    const size_t np = m->nparams, dim = d->dim;
    const size_t bs = o->batch < d->n ? o->batch : d->n;
    sfl_zlayout lay;
    sfl_zo_layout(m, &lay);
    const char *domain = o->variant == SFL_ZO_POOL ? SFL_ZDOM_POOL : SFL_ZDOM_DERIVED;

    sfl_workspace *ws = sfl_workspace_new(m, bs);
    float *scratch = malloc(np * sizeof *scratch);
    float *xb = malloc(bs * dim * sizeof *xb);
    uint8_t *yb = malloc(bs);
    uint32_t *perm = malloc(d->n * sizeof *perm);
    int rc = 0;
    if (!ws || !scratch || !xb || !yb || !perm) {
        rc = SFL_ENOMEM;
        goto out;
    }

    /* the client's own generators: batches, then seed choice and rounding */
    sfl_rng rb, rs;
    sfl_rng_init(&rb, "zo-batch", o->seed, o->shard, o->round);
    sfl_rng_init(&rs, "zo-step", o->seed, o->shard, o->round);
    for (size_t i = 0; i < d->n; i++)
        perm[i] = (uint32_t)i;
    sfl_rng_shuffle_u32(&rb, perm, d->n);
    size_t pos = 0;
    double loss_sum = 0.0;

    for (uint32_t step = 0; step < o->steps; step++) {
        if (pos + bs > d->n) {
            sfl_rng_shuffle_u32(&rb, perm, d->n);
            pos = 0;
        }
        sfl_dataset_gather(d, perm + pos, bs, xb, yb);
        pos += bs;

        uint8_t seed[SFL_ZSEED_BYTES];
        uint32_t k = 0;
        if (o->variant == SFL_ZO_POOL) {
            k = sfl_rng_below(&rs, o->pool_size);
            sfl_z_pool_seed(o->root, k, seed);
        } else {
            sfl_z_derived_seed(o->root, o->round, o->client_pk, step, seed);
        }

        /* theta itself is only read: the perturbed copies live in scratch */
        double lp, lm;
        if ((rc = sfl_z_model_axpy(&lay, domain, seed, o->eps, m->params, scratch)) < 0)
            goto out;
        lp = sfl_model_loss(m, ws, scratch, xb, yb, bs, NULL, NULL);
        if ((rc = sfl_z_model_axpy(&lay, domain, seed, -o->eps, m->params, scratch)) < 0)
            goto out;
        lm = sfl_model_loss(m, ws, scratch, xb, yb, bs, NULL, NULL);
        double g = (lp - lm) / (2.0 * (double)o->eps);
        int8_t q = sfl_zo_quantize(g, o->scale, sfl_rng_uniform(&rs));
        loss_sum += 0.5 * (lp + lm);

        if (o->variant == SFL_ZO_POOL) {
            sfl_zo_pack_pool(out + (size_t)step * SFL_ZO_POOL_BYTES, k, q);
            if (q != 0) {
                float alpha = (float)(-(double)o->lr * (double)q * (double)o->scale);
                if ((rc = sfl_z_model_axpy(&lay, domain, seed, alpha, m->params, m->params)) < 0)
                    goto out;
            }
        } else {
            out[step] = (uint8_t)q;
        }
    }
    if (mean_loss)
        *mean_loss = loss_sum / o->steps;
out:
    sfl_workspace_free(ws);
    free(scratch);
    free(xb);
    free(yb);
    free(perm);
    return rc;
}
