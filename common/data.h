/* Data sets and partitions. */
#ifndef SFL_DATA_H
#define SFL_DATA_H

#include <stddef.h>
#include <stdint.h>

/* Pixels stay as raw bytes, a quarter of their size as floats: the
 * feature j of row i is px[i * dim + j] / 255.0f, made by
 * sfl_dataset_gather one batch at a time. */
typedef struct {
    uint8_t *px;        /* n * dim raw pixels */
    uint8_t *y;         /* n labels in [0, classes) */
    size_t n;
    size_t dim;
    int classes;
} sfl_dataset;

/* The indices of shard `shard` of `of` for an IID split of n_total examples,
 * deterministic from seed: a seeded permutation (sfl_rng domain "partition")
 * cut into `of` near-equal contiguous parts (sizes differ by at most 1).
 * Returns sorted indices (caller frees) and their count. SFL_EINVAL when
 * of == 0 or shard >= of, SFL_ERANGE when n_total > UINT32_MAX. */
int sfl_partition_iid(uint64_t seed, size_t n_total, uint32_t shard, uint32_t of,
                      uint32_t **idx_out, size_t *count_out);

/* Label skew: the examples of each class are shuffled and cut among the
 * `of` clients by proportions drawn from a symmetric Dirichlet(alpha)
 * (Gamma draws: Marsaglia-Tsang, boosted for alpha < 1), every draw from
 * sfl_rng "partition-dirichlet" keyed by (seed, attempt, class); all clients
 * compute the same whole partition from the labels and keep their shard.
 * When a client would get no example at all, the whole partition is drawn
 * again with the next attempt, up to SFL_DIRICHLET_ATTEMPTS times, then
 * SFL_ERANGE. labels: n_total labels < classes. Returns sorted indices
 * (caller frees). SFL_EINVAL for of == 0, shard >= of, alpha not > 0. */
#define SFL_DIRICHLET_ATTEMPTS 100
int sfl_partition_dirichlet(uint64_t seed, const uint8_t *labels, size_t n_total, int classes,
                            double alpha, uint32_t shard, uint32_t of, uint32_t **idx_out,
                            size_t *count_out, int *attempts_out);

/* Load Fashion-MNIST-style data from dir: split "train" or "t10k"
 * (files <split>-images-idx3-ubyte.gz and <split>-labels-idx1-ubyte.gz).
 * When idx is non-NULL only those `count` examples are loaded (strictly
 * ascending, as sfl_partition_iid returns them; for a fast test pass 0..k-1);
 * when idx is NULL count is ignored and the whole split is loaded. Labels
 * must be < 10 and the two files must agree in count. classes is 10. */
int sfl_data_load(const char *dir, const char *split, const uint32_t *idx, size_t count,
                  sfl_dataset *out, char *errbuf, size_t errlen);
/* All labels of a split (the first `limit` when limit > 0): what a
 * label-skewed partition is computed from. *labels is malloc'd. */
int sfl_data_labels(const char *dir, const char *split, size_t limit, uint8_t **labels,
                    size_t *n, char *errbuf, size_t errlen);
/* Number of examples in a split (reads the label file's header only). */
int sfl_data_count(const char *dir, const char *split, size_t *n, char *errbuf, size_t errlen);
/* Rows idx[0..n) of d (idx NULL: rows 0..n-1) as features into x (n * dim
 * floats, px / 255.0f) and their labels into y (n bytes; y may be NULL).
 * Every index must be < d->n. */
void sfl_dataset_gather(const sfl_dataset *d, const uint32_t *idx, size_t n, float *x,
                        uint8_t *y);
/* Frees and zeroes d; safe on a zeroed or already freed d. */
void sfl_dataset_free(sfl_dataset *d);

#endif
