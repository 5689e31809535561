/* Aggregation of one round's dense updates: validation of values, then the
 * (sample-weighted) mean of the deltas, applied to the model. Pure
 * computation: runs on a libuv worker thread, never on the loop. */
#ifndef SFL_AGG_H
#define SFL_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "zo.h"

enum sfl_agg_rule { SFL_AGG_WEIGHTED, SFL_AGG_MEAN };

typedef struct {
    uint8_t key[32];       /* client public key: canonical order */
    char id[16];           /* short printable id for logs */
    uint64_t num_samples;
    float *delta;          /* dense: nparams floats, owned by the submission */
    uint8_t *zo;           /* zo: the packed steps, owned by the submission */
    size_t zo_len;
    int valid;             /* set by sfl_agg_validate */
    char reason[96];       /* why it was rejected */
} sfl_submission;

/* Sort submissions by key so that a run is reproducible whatever the
 * arrival order. */
void sfl_agg_sort(sfl_submission *subs, size_t n);
/* Mark each submission valid or not (non-finite values, sample count
 * outside [1, max_samples]); returns the number valid. */
size_t sfl_agg_validate(sfl_submission *subs, size_t n, size_t nparams, uint64_t max_samples);
/* params += mean of valid deltas (weighted by samples for SFL_AGG_WEIGHTED),
 * accumulated in float64 in canonical order. Returns the number used; with
 * none valid params are unchanged. acc is scratch of nparams doubles. */
size_t sfl_agg_apply(enum sfl_agg_rule rule, const sfl_submission *subs, size_t n, float *params,
                     size_t nparams, double *acc);

/* zo uploads: besides the sample count, exactly steps entries, every seed
 * index below pool_size (pool variant) and no scalar of -128. Returns the
 * number valid. */
size_t sfl_agg_zo_validate(sfl_submission *subs, size_t n, enum sfl_zo_variant variant,
                           uint32_t steps, uint32_t pool_size, uint64_t max_samples);
/* Normalized weights of the valid submissions (by samples for
 * SFL_AGG_WEIGHTED, equal for SFL_AGG_MEAN; 0 for invalid ones); returns
 * the number valid. */
size_t sfl_agg_weights(enum sfl_agg_rule rule, const sfl_submission *subs, size_t n, double *w);
/* The valid zo scalars decoded as q * scale: their root mean square, and
 * for the pool variant (sums non-NULL, pool_size doubles) the per-seed sums
 * A_k = sum_i w_i sum_{steps of i on seed k} q * scale, in float64, in
 * submission order (canonical once sorted). */
void sfl_agg_zo_stats(const sfl_submission *subs, size_t n, enum sfl_zo_variant variant,
                      float scale, uint32_t pool_size, const double *w, double *sums,
                      double *rms);

#endif
