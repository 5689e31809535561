#include "agg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_sub(const void *a, const void *b)
{
    const sfl_submission *x = a, *y = b;
    return memcmp(x->key, y->key, 32);
}

void sfl_agg_sort(sfl_submission *subs, size_t n)
{
    qsort(subs, n, sizeof *subs, cmp_sub);
}

/* What every upload must satisfy: data present, a sane sample count. */
static int agg_check_common(sfl_submission *s, const void *data, uint64_t max_samples)
{
    s->valid = 0;
    if (!data) {
        snprintf(s->reason, sizeof s->reason, "no data");
        return 0;
    }
    if (s->num_samples < 1 || s->num_samples > max_samples) {
        snprintf(s->reason, sizeof s->reason, "sample count %llu outside [1, %llu]",
                 (unsigned long long)s->num_samples, (unsigned long long)max_samples);
        return 0;
    }
    return 1;
}

size_t sfl_agg_validate(sfl_submission *subs, size_t n, size_t nparams, uint64_t max_samples)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        sfl_submission *s = &subs[i];
        if (!agg_check_common(s, s->delta, max_samples))
            continue;
        size_t bad = nparams;
        for (size_t j = 0; j < nparams; j++) {
            if (!isfinite(s->delta[j])) {
                bad = j;
                break;
            }
        }
        if (bad < nparams) {
            snprintf(s->reason, sizeof s->reason, "non-finite value at index %zu", bad);
            continue;
        }
        s->valid = 1;
        ok++;
    }
    return ok;
}

size_t sfl_agg_apply(enum sfl_agg_rule rule, const sfl_submission *subs, size_t n, float *params,
                     size_t nparams, double *acc)
{
    double wsum = 0;
    size_t used = 0;
    memset(acc, 0, nparams * sizeof *acc);
    for (size_t i = 0; i < n; i++) {
        if (!subs[i].valid)
            continue;
        double w = rule == SFL_AGG_WEIGHTED ? (double)subs[i].num_samples : 1.0;
        const float *d = subs[i].delta;
        for (size_t j = 0; j < nparams; j++)
            acc[j] += w * (double)d[j];
        wsum += w;
        used++;
    }
    if (used == 0)
        return 0;
    for (size_t j = 0; j < nparams; j++)
        params[j] = (float)((double)params[j] + acc[j] / wsum);
    return used;
}

size_t sfl_agg_zo_validate(sfl_submission *subs, size_t n, enum sfl_zo_variant variant,
                           uint32_t steps, uint32_t pool_size, uint64_t max_samples)
{
    const size_t per = variant == SFL_ZO_POOL ? SFL_ZO_POOL_BYTES : SFL_ZO_DERIVED_BYTES;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        sfl_submission *s = &subs[i];
        if (!agg_check_common(s, s->zo, max_samples))
            continue;
        if (s->zo_len != (size_t)steps * per) {
            snprintf(s->reason, sizeof s->reason, "%zu bytes of steps, expected %u steps of %zu",
                     s->zo_len, steps, per);
            continue;
        }
        size_t bad = SIZE_MAX;
        for (size_t j = 0; j < steps && bad == SIZE_MAX; j++) {
            uint32_t k = 0;
            int8_t q;
            if (variant == SFL_ZO_POOL)
                sfl_zo_unpack_pool(s->zo + j * per, &k, &q);
            else
                q = (int8_t)s->zo[j];
            if (q == -128) {
                snprintf(s->reason, sizeof s->reason, "step %zu: scalar -128 is not allowed", j);
                bad = j;
            } else if (variant == SFL_ZO_POOL && k >= pool_size) {
                snprintf(s->reason, sizeof s->reason, "step %zu: seed %u outside the pool of %u",
                         j, k, pool_size);
                bad = j;
            }
        }
        if (bad != SIZE_MAX)
            continue;
        s->valid = 1;
        ok++;
    }
    return ok;
}

size_t sfl_agg_weights(enum sfl_agg_rule rule, const sfl_submission *subs, size_t n, double *w)
{
    double sum = 0;
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        w[i] = !subs[i].valid ? 0.0 : rule == SFL_AGG_WEIGHTED ? (double)subs[i].num_samples : 1.0;
        sum += w[i];
        used += subs[i].valid != 0;
    }
    for (size_t i = 0; i < n && sum > 0; i++)
        w[i] /= sum;
    return used;
}

void sfl_agg_zo_stats(const sfl_submission *subs, size_t n, enum sfl_zo_variant variant,
                      float scale, uint32_t pool_size, const double *w, double *sums,
                      double *rms)
{
    const size_t per = variant == SFL_ZO_POOL ? SFL_ZO_POOL_BYTES : SFL_ZO_DERIVED_BYTES;
    double sq = 0;
    size_t count = 0;
    if (sums)
        memset(sums, 0, pool_size * sizeof *sums);
    for (size_t i = 0; i < n; i++) {
        if (!subs[i].valid)
            continue;
        for (size_t j = 0; j + per <= subs[i].zo_len; j += per) {
            uint32_t k = 0;
            int8_t q;
            if (variant == SFL_ZO_POOL)
                sfl_zo_unpack_pool(subs[i].zo + j, &k, &q);
            else
                q = (int8_t)subs[i].zo[j];
            double v = (double)q * (double)scale;
            sq += v * v;
            count++;
            if (sums && variant == SFL_ZO_POOL)
                sums[k] += w[i] * v;
        }
    }
    *rms = count ? sqrt(sq / (double)count) : 0.0;
}
