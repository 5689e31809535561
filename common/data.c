#include "data.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "idx.h"
#include "rng.h"

#define DATA_CLASSES 10
#define DATA_MAX_BYTES ((size_t)1 << 28)   /* per file */
#define DATA_SPLIT_MAX 32
#define DATA_PATH_MAX 4096

static int data_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int sfl_partition_iid(uint64_t seed, size_t n_total, uint32_t shard, uint32_t of,
                      uint32_t **idx_out, size_t *count_out)
{
    *idx_out = NULL;
    *count_out = 0;
    if (of == 0 || shard >= of)
        return SFL_EINVAL;
    if ((uint64_t)n_total > UINT32_MAX)
        return SFL_ERANGE;

    uint32_t *perm = malloc(n_total ? n_total * sizeof *perm : 1);
    if (!perm)
        return SFL_ENOMEM;
    for (size_t i = 0; i < n_total; i++)
        perm[i] = (uint32_t)i;
    /* n_total and of in the key: another split size gives an unrelated order */
    sfl_rng r;
    sfl_rng_init(&r, "partition", seed, (uint64_t)n_total, of);
    sfl_rng_shuffle_u32(&r, perm, n_total);

    size_t lo = (size_t)((uint64_t)n_total * shard / of);
    size_t hi = (size_t)((uint64_t)n_total * (shard + 1ull) / of);
    size_t cnt = hi - lo;
    memmove(perm, perm + lo, cnt * sizeof *perm);
    qsort(perm, cnt, sizeof *perm, data_cmp_u32);
    uint32_t *shrunk = realloc(perm, cnt ? cnt * sizeof *perm : 1);
    *idx_out = shrunk ? shrunk : perm;
    *count_out = cnt;
    return 0;
}

/* Gamma(shape, 1): Marsaglia and Tsang's method; for shape < 1 the draw
 * for shape + 1 times U^(1/shape). */
static double data_gamma(sfl_rng *r, double shape)
{
    double boost = 1.0;
    if (shape < 1.0) {
        double u = 1.0 - sfl_rng_uniform_d(r); /* (0, 1] */
        boost = pow(u, 1.0 / shape);
        shape += 1.0;
    }
    double d = shape - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = sfl_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = 1.0 - sfl_rng_uniform_d(r);
        if (log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v * boost;
    }
}

int sfl_partition_dirichlet(uint64_t seed, const uint8_t *labels, size_t n_total, int classes,
                            double alpha, uint32_t shard, uint32_t of, uint32_t **idx_out,
                            size_t *count_out, int *attempts_out)
{
    *idx_out = NULL;
    *count_out = 0;
    if (of == 0 || shard >= of || !(alpha > 0) || classes < 1 || classes > 256)
        return SFL_EINVAL;
    if ((uint64_t)n_total > UINT32_MAX)
        return SFL_ERANGE;
    uint32_t *byclass = malloc((n_total ? n_total : 1) * sizeof *byclass);
    size_t *start = calloc((size_t)classes + 1, sizeof *start);
    size_t *total = calloc(of, sizeof *total);
    size_t *lo = calloc(of, sizeof *lo), *hi = calloc(of, sizeof *hi);
    double *p = calloc(of, sizeof *p);
    uint32_t *mine = NULL;
    int rc = 0;
    if (!byclass || !start || !total || !lo || !hi || !p) {
        rc = SFL_ENOMEM;
        goto out;
    }
    /* indices grouped by class, ascending within a class */
    for (size_t i = 0; i < n_total; i++)
        start[labels[i] + 1]++;
    for (int c = 0; c < classes; c++)
        start[c + 1] += start[c];
    {
        size_t *fill = calloc((size_t)classes, sizeof *fill);
        if (!fill) {
            rc = SFL_ENOMEM;
            goto out;
        }
        for (size_t i = 0; i < n_total; i++)
            byclass[start[labels[i]] + fill[labels[i]]++] = (uint32_t)i;
        free(fill);
    }

    size_t mine_n = 0, mine_cap = 0;
    for (int attempt = 0; attempt < SFL_DIRICHLET_ATTEMPTS; attempt++) {
        memset(total, 0, of * sizeof *total);
        mine_n = 0;
        for (int c = 0; c < classes; c++) {
            size_t nc = start[c + 1] - start[c];
            sfl_rng r;
            sfl_rng_init(&r, "partition-dirichlet", seed, (uint64_t)attempt, (uint64_t)c);
            uint32_t *v = byclass + start[c];
            /* a fresh order of this class for each attempt */
            qsort(v, nc, sizeof *v, data_cmp_u32);
            sfl_rng_shuffle_u32(&r, v, nc);
            double sum = 0;
            for (uint32_t k = 0; k < of; k++)
                sum += p[k] = data_gamma(&r, alpha);
            /* cut points from the cumulative proportions */
            double acc = 0;
            size_t prev = 0;
            for (uint32_t k = 0; k < of; k++) {
                acc += p[k];
                size_t cut = k + 1 == of || !(sum > 0) ? nc : (size_t)((double)nc * (acc / sum));
                if (cut > nc)
                    cut = nc;
                if (cut < prev)
                    cut = prev;
                lo[k] = prev;
                hi[k] = cut;
                total[k] += cut - prev;
                prev = cut;
            }
            size_t take = hi[shard] - lo[shard];
            if (take && mine_n + take > mine_cap) {
                size_t cap = (mine_n + take) * 2;
                uint32_t *m = realloc(mine, (cap ? cap : 1) * sizeof *m);
                if (!m) {
                    rc = SFL_ENOMEM;
                    goto out;
                }
                mine = m;
                mine_cap = cap;
            }
            if (take) {
                memcpy(mine + mine_n, v + lo[shard], take * sizeof *mine);
                mine_n += take;
            }
        }
        int empty = 0;
        for (uint32_t k = 0; k < of; k++)
            empty |= total[k] == 0;
        if (!empty) {
            qsort(mine, mine_n, sizeof *mine, data_cmp_u32);
            *idx_out = mine;
            *count_out = mine_n;
            mine = NULL;
            if (attempts_out)
                *attempts_out = attempt + 1;
            goto out;
        }
    }
    rc = SFL_ERANGE;
out:
    free(byclass);
    free(start);
    free(total);
    free(lo);
    free(hi);
    free(p);
    free(mine);
    return rc;
}

/* split is used in a file name: letters, digits, '_' and '-' only. */
static int data_paths(const char *dir, const char *split, char *img, char *lab, char *errbuf,
                      size_t errlen)
{
    size_t len = strlen(split);
    if (len == 0 || len > DATA_SPLIT_MAX || strspn(split,
                                                   "abcdefghijklmnopqrstuvwxyz"
                                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                   "0123456789_-") != len)
        return sfl_fail(errbuf, errlen, SFL_EINVAL, "bad split name '%.40s'", split);
    int a = snprintf(img, DATA_PATH_MAX, "%s/%s-images-idx3-ubyte.gz", dir, split);
    int b = snprintf(lab, DATA_PATH_MAX, "%s/%s-labels-idx1-ubyte.gz", dir, split);
    if (a < 0 || b < 0 || a >= DATA_PATH_MAX || b >= DATA_PATH_MAX)
        return sfl_fail(errbuf, errlen, SFL_ETOOBIG, "data directory path too long");
    return 0;
}

int sfl_data_count(const char *dir, const char *split, size_t *n, char *errbuf, size_t errlen)
{
    char img[DATA_PATH_MAX], lab[DATA_PATH_MAX];
    sfl_idx h;
    int rc;

    *n = 0;
    if ((rc = data_paths(dir, split, img, lab, errbuf, errlen)) != 0)
        return rc;
    if ((rc = sfl_idx_probe(lab, DATA_MAX_BYTES, &h, errbuf, errlen)) != 0)
        return rc;
    if (h.ndims != 1)
        return sfl_fail(errbuf, errlen, SFL_EFORMAT, "%s: labels must have 1 dimension, not %d",
                         lab, h.ndims);
    *n = h.n;
    return 0;
}

int sfl_data_labels(const char *dir, const char *split, size_t limit, uint8_t **labels,
                    size_t *n, char *errbuf, size_t errlen)
{
    char img[DATA_PATH_MAX], lab[DATA_PATH_MAX];
    sfl_idx h, yl = { 0 };
    int rc;
    *labels = NULL;
    *n = 0;
    if ((rc = data_paths(dir, split, img, lab, errbuf, errlen)) != 0)
        return rc;
    if ((rc = sfl_idx_probe(lab, DATA_MAX_BYTES, &h, errbuf, errlen)) != 0)
        return rc;
    if (h.ndims != 1)
        return sfl_fail(errbuf, errlen, SFL_EFORMAT, "%s: labels must have 1 dimension, not %d",
                        lab, h.ndims);
    size_t cnt = limit && limit < h.n ? limit : h.n;
    uint32_t *idx = malloc((cnt ? cnt : 1) * sizeof *idx);
    if (!idx)
        return sfl_fail(errbuf, errlen, SFL_ENOMEM, "%s: out of memory", lab);
    for (size_t i = 0; i < cnt; i++)
        idx[i] = (uint32_t)i;
    rc = sfl_idx_load_subset(lab, idx, cnt, DATA_MAX_BYTES, &yl, errbuf, errlen);
    free(idx);
    if (rc)
        return rc;
    for (size_t i = 0; i < yl.n; i++) {
        if (yl.data[i] >= DATA_CLASSES) {
            rc = sfl_fail(errbuf, errlen, SFL_EFORMAT, "%s: label %u of item %zu is not < %d",
                          lab, (unsigned)yl.data[i], i, DATA_CLASSES);
            sfl_idx_free(&yl);
            return rc;
        }
    }
    *labels = yl.data;
    *n = yl.n;
    return 0;
}

int sfl_data_load(const char *dir, const char *split, const uint32_t *idx, size_t count,
                  sfl_dataset *out, char *errbuf, size_t errlen)
{
    char img[DATA_PATH_MAX], lab[DATA_PATH_MAX];
    sfl_idx hi, hl, xi = { 0 }, yl = { 0 };
    int rc;

    memset(out, 0, sizeof *out);
    if ((rc = data_paths(dir, split, img, lab, errbuf, errlen)) != 0)
        return rc;

    /* headers first: a mismatch is reported before reading 50 MB */
    if ((rc = sfl_idx_probe(lab, DATA_MAX_BYTES, &hl, errbuf, errlen)) != 0)
        return rc;
    if ((rc = sfl_idx_probe(img, DATA_MAX_BYTES, &hi, errbuf, errlen)) != 0)
        return rc;
    if (hl.ndims != 1)
        return sfl_fail(errbuf, errlen, SFL_EFORMAT, "%s: labels must have 1 dimension, not %d",
                         lab, hl.ndims);
    if (hi.ndims < 2)
        return sfl_fail(errbuf, errlen, SFL_EFORMAT,
                         "%s: images must have at least 2 dimensions, not %d", img, hi.ndims);
    if (hi.n != hl.n)
        return sfl_fail(errbuf, errlen, SFL_EFORMAT,
                         "counts disagree: %s has %u images, %s has %u labels", img,
                         (unsigned)hi.n, lab, (unsigned)hl.n);

    if (idx)
        rc = sfl_idx_load_subset(lab, idx, count, DATA_MAX_BYTES, &yl, errbuf, errlen);
    else
        rc = sfl_idx_load(lab, DATA_MAX_BYTES, &yl, errbuf, errlen);
    if (rc)
        goto out;
    for (size_t i = 0; i < yl.n; i++) {
        if (yl.data[i] >= DATA_CLASSES) {
            rc = sfl_fail(errbuf, errlen, SFL_EFORMAT, "%s: label %u of item %zu is not < %d",
                           lab, (unsigned)yl.data[i], idx ? (size_t)idx[i] : i, DATA_CLASSES);
            goto out;
        }
    }

    if (idx)
        rc = sfl_idx_load_subset(img, idx, count, DATA_MAX_BYTES, &xi, errbuf, errlen);
    else
        rc = sfl_idx_load(img, DATA_MAX_BYTES, &xi, errbuf, errlen);
    if (rc)
        goto out;
    /* the files may have changed between probe and load */
    if (xi.n != yl.n) {
        rc = sfl_fail(errbuf, errlen, SFL_EFORMAT,
                       "counts disagree: %s has %u images, %s has %u labels", img,
                       (unsigned)xi.n, lab, (unsigned)yl.n);
        goto out;
    }

    out->px = xi.data;   /* ownership moves to out: no second copy */
    xi.data = NULL;
    out->y = yl.data;   /* ownership moves to out */
    yl.data = NULL;
    out->n = xi.n;
    out->dim = xi.item_size;
    out->classes = DATA_CLASSES;

out:
    sfl_idx_free(&xi);
    sfl_idx_free(&yl);
    if (rc)
        sfl_dataset_free(out);
    return rc;
}

/* One row: a fixed inner count lets the compiler vectorise the conversion. */
static void data_row(float *restrict dst, const uint8_t *restrict src, size_t dim)
{
    size_t j = 0;
    for (; j + 8 <= dim; j += 8)
        for (int k = 0; k < 8; k++)
            dst[j + k] = (float)src[j + k] / 255.0f;
    for (; j < dim; j++)
        dst[j] = (float)src[j] / 255.0f;
}

void sfl_dataset_gather(const sfl_dataset *d, const uint32_t *idx, size_t n, float *x,
                        uint8_t *y)
{
    const size_t dim = d->dim;
    for (size_t i = 0; i < n; i++) {
        size_t src = idx ? (size_t)idx[i] : i;
        data_row(x + i * dim, d->px + src * dim, dim);
        if (y)
            y[i] = d->y[src];
    }
}

void sfl_dataset_free(sfl_dataset *d)
{
    free(d->px);
    free(d->y);
    memset(d, 0, sizeof *d);
}
