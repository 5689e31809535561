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

size_t sfl_agg_validate(sfl_submission *subs, size_t n, size_t nparams, uint64_t max_samples)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        sfl_submission *s = &subs[i];
        s->valid = 0;
        if (!s->delta) {
            snprintf(s->reason, sizeof s->reason, "no data");
            continue;
        }
        if (s->num_samples < 1 || s->num_samples > max_samples) {
            snprintf(s->reason, sizeof s->reason, "sample count %llu outside [1, %llu]",
                     (unsigned long long)s->num_samples, (unsigned long long)max_samples);
            continue;
        }
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
