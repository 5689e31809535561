/* Models from a short spec: "logreg" (784 -> 10 softmax regression) or
 * "mlp:784-256-10" (ReLU hidden layers, softmax output). All parameters live
 * in one contiguous float array (layer by layer: W (out x in, row-major) then
 * b), so updates, digests and chunks treat the model as one vector.
 * Forward and backward use OpenBLAS SGEMM. */
#ifndef SFL_MODEL_H
#define SFL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include "data.h"

#define SFL_MODEL_MAX_LAYERS 8
#define SFL_SPEC_MAX 128

typedef struct {
    int nlayers;                        /* number of dense layers */
    int sizes[SFL_MODEL_MAX_LAYERS + 1];/* sizes[0] = input dim, sizes[nlayers] = classes */
    size_t nparams;
    float *params;                      /* owned */
    size_t w_off[SFL_MODEL_MAX_LAYERS], b_off[SFL_MODEL_MAX_LAYERS];
    char spec[SFL_SPEC_MAX];
} sfl_model;

/* Parse spec and allocate zeroed parameters. SFL_EINVAL with a message for a
 * bad spec (unknown kind, bad number, sizes out of range [1, 1<<20], too many
 * layers, total parameters over 1<<28), SFL_ENOMEM. Besides "logreg" and
 * "mlp:IN-H1-...-CLASSES" (at least one hidden layer), "logreg:IN-CLASSES"
 * gives softmax regression of another shape. */
int sfl_model_create(sfl_model *m, const char *spec, char *errbuf, size_t errlen);
void sfl_model_free(sfl_model *m);
/* Initialisation deterministic from seed (sfl_rng domain "init"): He-uniform
 * for layers feeding a ReLU, Glorot-uniform for the output layer, zero
 * biases. Uniform draws keep libm off this path, so every machine gets the
 * same bits for a seed. */
void sfl_model_init(sfl_model *m, uint64_t seed);

/* Scratch buffers (every activation and delta) for a batch of up to
 * max_batch examples, so no call below allocates per batch. NULL when out of
 * memory or max_batch is 0. A workspace serves one thread at a time. */
typedef struct sfl_workspace sfl_workspace;
sfl_workspace *sfl_workspace_new(const sfl_model *m, size_t max_batch);
void sfl_workspace_free(sfl_workspace *ws);

/* Mean cross-entropy (nats) over a batch of n rows of x (n x dim) with labels
 * y; when grad != NULL also writes d(loss)/d(params) (nparams floats, laid
 * out like params). correct (may be NULL) gets the number of argmax hits.
 * params need not be m->params (perturbed copies work). Returns NAN when n is
 * 0 or over the workspace's max_batch, the workspace was made for another
 * shape, or a label is >= classes. BLAS threads are the caller's choice. */
double sfl_model_loss(const sfl_model *m, sfl_workspace *ws, const float *params,
                      const float *x, const uint8_t *y, size_t n, float *grad, size_t *correct);

/* Accuracy and mean loss over a whole data set in batches of 1000.
 * SFL_EINVAL when d is empty, d->dim != input size or a label >= classes. */
int sfl_model_evaluate(const sfl_model *m, const sfl_dataset *d, double *accuracy, double *loss);

typedef struct {
    int epochs;       /* local epochs, 1..1000 */
    int batch;        /* minibatch size, 1..65536 (the last one may be short) */
    float lr;         /* SGD learning rate, > 0 */
    float momentum;   /* 0 = plain SGD; [0, 1): v = mu v + g, p -= lr v */
    uint64_t seed;    /* run seed */
    uint32_t shard;   /* for the batch-order stream */
    uint32_t round;
} sfl_train_opts;

/* Local training from m->params in place; batch order per epoch from
 * sfl_rng "batch" with (seed, shard, round*1000+epoch). Momentum starts at 0
 * on every call. *mean_loss gets the mean training loss over the last epoch
 * (each batch's loss before its step). SFL_EINVAL for bad options or data,
 * SFL_ENOMEM, SFL_ERANGE when the loss stops being finite (diverged; params
 * are then partly updated). */
int sfl_model_train(sfl_model *m, const sfl_dataset *d, const sfl_train_opts *o, double *mean_loss);

#endif
