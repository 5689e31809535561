/* Aggregation of one round's dense updates: validation of values, then the
 * (sample-weighted) mean of the deltas, applied to the model. Pure
 * computation: runs on a libuv worker thread, never on the loop. */
#ifndef SFL_AGG_H
#define SFL_AGG_H

#include <stddef.h>
#include <stdint.h>

enum sfl_agg_rule { SFL_AGG_WEIGHTED, SFL_AGG_MEAN };

typedef struct {
    uint8_t key[32];       /* client public key: canonical order */
    char id[16];           /* short printable id for logs */
    uint64_t num_samples;
    float *delta;          /* nparams floats, owned by the submission */
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

#endif
