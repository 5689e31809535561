#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "err.h"
#include "rng.h"

#define MODEL_SIZE_MAX (1u << 20)
#define MODEL_PARAMS_MAX ((uint64_t)1 << 28)
#define MODEL_EVAL_BATCH 1000
#define MODEL_BATCH_MAX (1 << 16)
#define MODEL_EPOCHS_MAX 1000   /* the batch stream keys on round*1000+epoch */

struct sfl_workspace {
    int nlayers;
    int sizes[SFL_MODEL_MAX_LAYERS + 1];
    size_t max_batch;
    float *act[SFL_MODEL_MAX_LAYERS + 1];   /* act[l], l >= 1: outputs of layer l-1 */
    float *delta[2];                        /* ping-pong d(loss)/d(pre-activation) */
    float *block;                           /* the one allocation behind all of them */
};

/* "784-256-10": decimal sizes in [1, MODEL_SIZE_MAX] separated by '-'. */
static int model_parse_sizes(const char *spec, const char *list, int *sizes, int *count,
                             char *errbuf, size_t errlen)
{
    const char *p = list;
    int k = 0;

    for (;;) {
        const char *tok = p;
        uint64_t v = 0;
        while (*p >= '0' && *p <= '9') {
            if (v <= MODEL_SIZE_MAX)
                v = v * 10 + (uint64_t)(*p - '0');
            p++;
        }
        if (p == tok || (*p != '-' && *p != '\0')) {
            size_t len = strcspn(tok, "-");
            return sfl_fail(errbuf, errlen, SFL_EINVAL, "model spec '%s': bad number '%.*s'", spec,
                              (int)(len > 20 ? 20 : len), tok);
        }
        if (k == SFL_MODEL_MAX_LAYERS + 1)
            return sfl_fail(errbuf, errlen, SFL_EINVAL,
                              "model spec '%s': too many layers (at most %d dense layers)",
                              spec, SFL_MODEL_MAX_LAYERS);
        if (v < 1 || v > MODEL_SIZE_MAX)
            return sfl_fail(errbuf, errlen, SFL_EINVAL,
                            "model spec '%s': size %.*s out of range [1, %u]", spec, (int)(p - tok > 20 ? 20 : p - tok), tok, MODEL_SIZE_MAX);
        sizes[k++] = (int)v;
        if (*p == '\0')
            break;
        p++;
    }
    *count = k;
    return 0;
}

int sfl_model_create(sfl_model *m, const char *spec, char *errbuf, size_t errlen)
{
    int sizes[SFL_MODEL_MAX_LAYERS + 1], count = 0, rc;

    memset(m, 0, sizeof *m);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if (strlen(spec) >= SFL_SPEC_MAX)
        return sfl_fail(errbuf, errlen, SFL_EINVAL, "model spec too long (max %d characters)",
                          SFL_SPEC_MAX - 1);

    if (strcmp(spec, "logreg") == 0) {
        sizes[0] = 784;
        sizes[1] = 10;
        count = 2;
    } else if (strncmp(spec, "logreg:", 7) == 0) {
        if ((rc = model_parse_sizes(spec, spec + 7, sizes, &count, errbuf, errlen)) != 0)
            return rc;
        if (count != 2)
            return sfl_fail(errbuf, errlen, SFL_EINVAL,
                              "model spec '%s': logreg takes exactly two sizes (IN-CLASSES)",
                              spec);
    } else if (strncmp(spec, "mlp:", 4) == 0) {
        if ((rc = model_parse_sizes(spec, spec + 4, sizes, &count, errbuf, errlen)) != 0)
            return rc;
        if (count < 3)
            return sfl_fail(errbuf, errlen, SFL_EINVAL,
                              "model spec '%s': mlp needs IN-HIDDEN...-CLASSES (at least one "
                              "hidden layer)", spec);
    } else {
        return sfl_fail(errbuf, errlen, SFL_EINVAL,
                          "model spec '%s': unknown kind '%.*s' (want logreg or "
                          "mlp:IN-HIDDEN...-CLASSES)", spec, (int)strcspn(spec, ":"), spec);
    }

    /* sizes are <= 2^20, so each product fits comfortably in 64 bits */
    uint64_t total = 0;
    for (int l = 0; l + 1 < count; l++) {
        total += (uint64_t)sizes[l] * (uint64_t)sizes[l + 1] + (uint64_t)sizes[l + 1];
        if (total > MODEL_PARAMS_MAX)
            return sfl_fail(errbuf, errlen, SFL_EINVAL,
                              "model spec '%s': too large (over %llu parameters)", spec,
                              (unsigned long long)MODEL_PARAMS_MAX);
    }

    m->nlayers = count - 1;
    size_t off = 0;
    for (int l = 0; l < count; l++)
        m->sizes[l] = sizes[l];
    for (int l = 0; l < m->nlayers; l++) {
        m->w_off[l] = off;
        off += (size_t)sizes[l] * (size_t)sizes[l + 1];
        m->b_off[l] = off;
        off += (size_t)sizes[l + 1];
    }
    m->nparams = off;
    m->params = calloc(off, sizeof *m->params);
    if (!m->params) {
        memset(m, 0, sizeof *m);
        if (errbuf && errlen)
            snprintf(errbuf, errlen, "model spec '%s': out of memory for %zu parameters", spec,
                     off);
        return SFL_ENOMEM;
    }
    memcpy(m->spec, spec, strlen(spec) + 1);
    return 0;
}

void sfl_model_free(sfl_model *m)
{
    free(m->params);
    memset(m, 0, sizeof *m);
}

/* Uniform rather than normal draws: the same variances as He-normal and
 * Glorot-normal, but computed with sqrt alone (correctly rounded everywhere),
 * so every machine derives bit-identical initial weights from the seed. */
void sfl_model_init(sfl_model *m, uint64_t seed)
{
    sfl_rng r;
    sfl_rng_init(&r, "init", seed, 0, 0);
    for (int l = 0; l < m->nlayers; l++) {
        double in = m->sizes[l], out = m->sizes[l + 1];
        int output = l == m->nlayers - 1;
        double limit = output ? sqrt(6.0 / (in + out))   /* Glorot: softmax output */
                              : sqrt(6.0 / in);          /* He: feeds a ReLU */
        float *w = m->params + m->w_off[l];
        size_t nw = (size_t)m->sizes[l] * (size_t)m->sizes[l + 1];
        for (size_t i = 0; i < nw; i++)
            w[i] = (float)((2.0 * sfl_rng_uniform_d(&r) - 1.0) * limit);
        memset(m->params + m->b_off[l], 0, (size_t)m->sizes[l + 1] * sizeof(float));
    }
}

/* a * b into *out unless it overflows. */
static int model_mul(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a)
        return -1;
    *out = a * b;
    return 0;
}

sfl_workspace *sfl_workspace_new(const sfl_model *m, size_t max_batch)
{
    if (!m || m->nlayers < 1 || max_batch == 0 || max_batch > INT32_MAX)
        return NULL;
    sfl_workspace *ws = calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->nlayers = m->nlayers;
    memcpy(ws->sizes, m->sizes, sizeof ws->sizes);
    ws->max_batch = max_batch;

    size_t widest = 0, total = 0, part;
    for (int l = 1; l <= m->nlayers; l++) {
        size_t s = (size_t)m->sizes[l];
        if (s > widest)
            widest = s;
        if (model_mul(max_batch, s, &part) || total > SIZE_MAX - part)
            goto fail;
        total += part;
    }
    if (model_mul(max_batch, widest, &part) || part > (SIZE_MAX - total) / 2 ||
        model_mul(total + 2 * part, sizeof(float), &total))
        goto fail;
    ws->block = malloc(total);
    if (!ws->block)
        goto fail;

    float *p = ws->block;
    for (int l = 1; l <= m->nlayers; l++) {
        ws->act[l] = p;
        p += max_batch * (size_t)m->sizes[l];
    }
    ws->delta[0] = p;
    ws->delta[1] = p + part;
    return ws;
fail:
    free(ws);
    return NULL;
}

void sfl_workspace_free(sfl_workspace *ws)
{
    if (!ws)
        return;
    free(ws->block);
    free(ws);
}

static int model_ws_fits(const sfl_model *m, const sfl_workspace *ws, size_t n)
{
    if (!ws || n == 0 || n > ws->max_batch || ws->nlayers != m->nlayers)
        return 0;
    for (int l = 0; l <= m->nlayers; l++)
        if (ws->sizes[l] != m->sizes[l])
            return 0;
    return 1;
}

/* Element-wise loops in blocks of 8 with a fixed inner count: compilers turn
 * those into vector code even at -O2, where an open loop stays scalar and
 * (for the ReLU) branchy. restrict: the arrays never overlap. */
#define MODEL_VEC 8

static void model_relu(float *z, size_t n)
{
    size_t k = 0;
    for (; k + MODEL_VEC <= n; k += MODEL_VEC)
        for (int j = 0; j < MODEL_VEC; j++) {
            float v = z[k + j];
            z[k + j] = v > 0.0f ? v : 0.0f;
        }
    for (; k < n; k++) {
        float v = z[k];
        z[k] = v > 0.0f ? v : 0.0f;
    }
}

/* d *= (a > 0): the ReLU's derivative, a being its output. */
static void model_relu_mask(float *restrict d, const float *restrict a, size_t n)
{
    size_t k = 0;
    for (; k + MODEL_VEC <= n; k += MODEL_VEC)
        for (int j = 0; j < MODEL_VEC; j++)
            d[k + j] = a[k + j] > 0.0f ? d[k + j] : 0.0f;
    for (; k < n; k++)
        d[k] = a[k] > 0.0f ? d[k] : 0.0f;
}

/* y += alpha * x */
static void model_axpy(float *restrict y, float alpha, const float *restrict x, size_t n)
{
    size_t k = 0;
    for (; k + MODEL_VEC <= n; k += MODEL_VEC)
        for (int j = 0; j < MODEL_VEC; j++)
            y[k + j] += alpha * x[k + j];
    for (; k < n; k++)
        y[k] += alpha * x[k];
}

/* v = mu v + g; p -= lr v */
static void model_momentum_step(float *restrict p, float *restrict v, const float *restrict g,
                                float mu, float lr, size_t n)
{
    size_t k = 0;
    for (; k + MODEL_VEC <= n; k += MODEL_VEC)
        for (int j = 0; j < MODEL_VEC; j++) {
            v[k + j] = mu * v[k + j] + g[k + j];
            p[k + j] -= lr * v[k + j];
        }
    for (; k < n; k++) {
        v[k] = mu * v[k] + g[k];
        p[k] -= lr * v[k];
    }
}

/* Softmax cross-entropy on the logits with the log-sum-exp shift; writes
 * (softmax - onehot) / n into dz when dz != NULL. */
static double model_softmax_xent(const float *z, const uint8_t *y, size_t n, int classes,
                                 float *dz, size_t *correct)
{
    double loss = 0.0;
    size_t hits = 0;
    float inv_n = 1.0f / (float)n;

    for (size_t i = 0; i < n; i++) {
        const float *row = z + i * (size_t)classes;
        int best = 0;
        for (int j = 1; j < classes; j++)
            if (row[j] > row[best])
                best = j;
        float mx = row[best];
        double sum = 0.0;
        for (int j = 0; j < classes; j++)
            sum += exp((double)row[j] - mx);
        loss += (double)mx + log(sum) - (double)row[y[i]];
        hits += best == y[i];
        if (dz) {
            float *d = dz + i * (size_t)classes;
            for (int j = 0; j < classes; j++)
                d[j] = (float)(exp((double)row[j] - mx) / sum) * inv_n;
            d[y[i]] -= inv_n;
        }
    }
    if (correct)
        *correct = hits;
    return loss / (double)n;
}

double sfl_model_loss(const sfl_model *m, sfl_workspace *ws, const float *params,
                      const float *x, const uint8_t *y, size_t n, float *grad, size_t *correct)
{
    const int nl = m->nlayers;
    const int classes = m->sizes[nl];

    if (correct)
        *correct = 0;
    if (!model_ws_fits(m, ws, n))
        return NAN;
    for (size_t i = 0; i < n; i++)
        if (y[i] >= classes)
            return NAN;

    const float *a = x;
    for (int l = 0; l < nl; l++) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        const float *b = params + m->b_off[l];
        float *z = ws->act[l + 1];
        for (size_t i = 0; i < n; i++)
            memcpy(z + i * (size_t)out, b, (size_t)out * sizeof *z);
        /* z (n x out) += a (n x in) * W^T, W being out x in */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, out, in, 1.0f, a, in,
                    params + m->w_off[l], in, 1.0f, z, out);
        if (l < nl - 1)
            model_relu(z, n * (size_t)out);
        a = z;
    }

    float *delta = grad ? ws->delta[0] : NULL;
    double loss = model_softmax_xent(ws->act[nl], y, n, classes, delta, correct);
    if (!grad)
        return loss;

    for (int l = nl - 1; l >= 0; l--) {
        const int in = m->sizes[l], out = m->sizes[l + 1];
        const float *a_in = l == 0 ? x : ws->act[l];
        float *gw = grad + m->w_off[l], *gb = grad + m->b_off[l];

        /* dW (out x in) = delta^T (out x n) * a_in (n x in) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)n, 1.0f, delta, out,
                    a_in, in, 0.0f, gw, in);
        memset(gb, 0, (size_t)out * sizeof *gb);
        for (size_t i = 0; i < n; i++)
            model_axpy(gb, 1.0f, delta + i * (size_t)out, (size_t)out);
        if (l == 0)
            break;

        /* d(a_in) (n x in) = delta (n x out) * W (out x in), then the ReLU mask */
        float *prev = delta == ws->delta[0] ? ws->delta[1] : ws->delta[0];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, in, out, 1.0f, delta, out,
                    params + m->w_off[l], in, 0.0f, prev, in);
        model_relu_mask(prev, a_in, n * (size_t)in);
        delta = prev;
    }
    return loss;
}

static int model_check_data(const sfl_model *m, const sfl_dataset *d)
{
    if (!d || d->n == 0 || (uint64_t)d->n > UINT32_MAX || d->dim != (size_t)m->sizes[0])
        return SFL_EINVAL;
    for (size_t i = 0; i < d->n; i++)
        if (d->y[i] >= m->sizes[m->nlayers])
            return SFL_EINVAL;
    return 0;
}

int sfl_model_evaluate(const sfl_model *m, const sfl_dataset *d, double *accuracy, double *loss)
{
    int rc = model_check_data(m, d);
    if (rc)
        return rc;
    size_t bs = d->n < MODEL_EVAL_BATCH ? d->n : MODEL_EVAL_BATCH;
    sfl_workspace *ws = sfl_workspace_new(m, bs);
    if (!ws)
        return SFL_ENOMEM;

    float *xb = malloc(bs * d->dim * sizeof *xb);
    if (!xb) {
        sfl_workspace_free(ws);
        return SFL_ENOMEM;
    }

    double sum = 0.0;
    size_t hits = 0;
    for (size_t start = 0; start < d->n; start += bs) {
        size_t nb = d->n - start < bs ? d->n - start : bs, c;
        sfl_dataset rows = *d;   /* a view of rows start..start+nb */
        rows.px += start * d->dim;
        rows.y += start;
        rows.n = nb;
        sfl_dataset_gather(&rows, NULL, nb, xb, NULL);
        sum += sfl_model_loss(m, ws, m->params, xb, d->y + start, nb, NULL, &c) * (double)nb;
        hits += c;
    }
    free(xb);
    sfl_workspace_free(ws);
    if (accuracy)
        *accuracy = (double)hits / (double)d->n;
    if (loss)
        *loss = sum / (double)d->n;
    return 0;
}

/* Scratch for sfl_model_train, allocated once per call. */
typedef struct {
    sfl_workspace *ws;
    uint32_t *perm;
    float *xb, *grad, *vel;
    uint8_t *yb;
} model_train_buf;

static int model_train_epochs(sfl_model *m, const sfl_dataset *d, const sfl_train_opts *o,
                              size_t bs, const model_train_buf *b, double *last_epoch_loss)
{
    const size_t n = d->n, np = m->nparams;
    float *p = m->params;
    double epoch_loss = 0.0;

    for (int e = 0; e < o->epochs; e++) {
        /* from the identity every epoch: an epoch's order depends on its key alone */
        for (size_t i = 0; i < n; i++)
            b->perm[i] = (uint32_t)i;
        sfl_rng r;
        sfl_rng_init(&r, "batch", o->seed, o->shard,
                     (uint64_t)o->round * MODEL_EPOCHS_MAX + (uint64_t)e);
        sfl_rng_shuffle_u32(&r, b->perm, n);

        epoch_loss = 0.0;
        for (size_t start = 0; start < n; start += bs) {
            size_t nb = n - start < bs ? n - start : bs;
            sfl_dataset_gather(d, b->perm + start, nb, b->xb, b->yb);
            double l = sfl_model_loss(m, b->ws, p, b->xb, b->yb, nb, b->grad, NULL);
            if (!isfinite(l))
                return SFL_ERANGE;
            epoch_loss += l * (double)nb;
            if (b->vel)
                model_momentum_step(p, b->vel, b->grad, o->momentum, o->lr, np);
            else
                model_axpy(p, -o->lr, b->grad, np);
        }
    }
    *last_epoch_loss = epoch_loss / (double)n;
    return 0;
}

int sfl_model_train(sfl_model *m, const sfl_dataset *d, const sfl_train_opts *o, double *mean_loss)
{
    model_train_buf b = { 0 };
    double loss = NAN;
    int rc;

    if (mean_loss)
        *mean_loss = NAN;
    if (o->epochs < 1 || o->epochs > MODEL_EPOCHS_MAX || o->batch < 1 ||
        o->batch > MODEL_BATCH_MAX || !(o->lr > 0.0f) || !isfinite(o->lr) ||
        !(o->momentum >= 0.0f && o->momentum < 1.0f))
        return SFL_EINVAL;
    if ((rc = model_check_data(m, d)) != 0)
        return rc;

    size_t bs = (size_t)o->batch < d->n ? (size_t)o->batch : d->n;
    b.ws = sfl_workspace_new(m, bs);
    b.perm = malloc(d->n * sizeof *b.perm);
    b.xb = malloc(bs * d->dim * sizeof *b.xb);
    b.yb = malloc(bs);
    b.grad = malloc(m->nparams * sizeof *b.grad);
    if (o->momentum > 0.0f)
        b.vel = calloc(m->nparams, sizeof *b.vel);
    if (!b.ws || !b.perm || !b.xb || !b.yb || !b.grad || (o->momentum > 0.0f && !b.vel))
        rc = SFL_ENOMEM;
    else
        rc = model_train_epochs(m, d, o, bs, &b, &loss);
    if (rc == 0 && mean_loss)
        *mean_loss = loss;

    sfl_workspace_free(b.ws);
    free(b.perm);
    free(b.xb);
    free(b.yb);
    free(b.grad);
    free(b.vel);
    return rc;
}
