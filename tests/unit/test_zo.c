/* zo mode arithmetic: the one-byte quantizer, the upload packing, the
 * replay every replica applies, and the client's steps (theta untouched by
 * a perturbation; the local trajectory equal to replaying its own steps). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "data.h"
#include "err.h"
#include "model.h"
#include "rng.h"
#include "zo.h"

static void test_quantize_exact(void **state)
{
    (void)state;
    /* on the grid: no rounding whatever u is */
    assert_int_equal(sfl_zo_quantize(0.5, 0.25f, 0.999f), 2);
    assert_int_equal(sfl_zo_quantize(-0.5, 0.25f, 0.0f), -2);
    assert_int_equal(sfl_zo_quantize(0.0, 0.25f, 0.5f), 0);
    /* 1.3 steps: up with probability 0.3 */
    assert_int_equal(sfl_zo_quantize(1.3, 1.0f, 0.29f), 2);
    assert_int_equal(sfl_zo_quantize(1.3, 1.0f, 0.31f), 1);
    /* -1.3 steps: floor is -2, up to -1 with probability 0.7 */
    assert_int_equal(sfl_zo_quantize(-1.3, 1.0f, 0.69f), -1);
    assert_int_equal(sfl_zo_quantize(-1.3, 1.0f, 0.71f), -2);
    /* clamped to [-127, 127]: never -128 */
    assert_int_equal(sfl_zo_quantize(1e9, 1.0f, 0.0f), 127);
    assert_int_equal(sfl_zo_quantize(-1e9, 1.0f, 0.999f), -127);
    assert_int_equal(sfl_zo_quantize(-127.5, 1.0f, 0.999f), -127);
    assert_int_equal(sfl_zo_quantize(-128.0, 1.0f, 0.0f), -127);
    assert_int_equal(sfl_zo_quantize(126.5, 1.0f, 0.4f), 127);
    /* nothing usable: 0 */
    assert_int_equal(sfl_zo_quantize(NAN, 1.0f, 0.5f), 0);
    assert_int_equal(sfl_zo_quantize(INFINITY, 1.0f, 0.5f), 0);
    assert_int_equal(sfl_zo_quantize(1.0, 0.0f, 0.5f), 0);
    assert_int_equal(sfl_zo_quantize(1.0, -1.0f, 0.5f), 0);
    assert_int_equal(sfl_zo_quantize(1.0, NAN, 0.5f), 0);
}

/* E[q * scale] = g inside the range: the mean over many draws lands within
 * a few standard errors of g, for values across the range and its edge. */
static void test_quantize_unbiased(void **state)
{
    (void)state;
    const double gs[] = { 0.013, -0.37, 3.71, -42.42, 126.6, -126.6, 0.5 };
    const float scale = 0.1f;
    sfl_rng r;
    sfl_rng_init(&r, "test-quantize", 7, 0, 0);
    for (size_t t = 0; t < sizeof gs / sizeof gs[0]; t++) {
        double g = gs[t] * scale, sum = 0;
        const int n = 200000;
        int lo = 127, hi = -127;
        for (int i = 0; i < n; i++) {
            int8_t q = sfl_zo_quantize(g, scale, sfl_rng_uniform(&r));
            assert_true(q != -128);
            sum += (double)q;
            lo = q < lo ? q : lo;
            hi = q > hi ? q : hi;
        }
        double mean = sum / n * scale;
        /* a Bernoulli step of one grid unit: sd <= 0.5 scale */
        double se = 0.5 * scale / sqrt((double)n);
        if (fabs(mean - g) > 5 * se)
            print_error("g %.6f: mean %.6f (se %.2g)\n", g, mean, se);
        assert_true(fabs(mean - g) <= 5 * se);
        assert_true(hi - lo <= 1); /* only the two neighbours of g/scale */
    }
}

static void test_pack(void **state)
{
    (void)state;
    uint8_t b[3];
    const uint32_t ks[] = { 0, 1, 255, 256, 4095, 65535 };
    const int qs[] = { 0, 1, -1, 127, -127, 42 };
    for (size_t i = 0; i < 6; i++) {
        sfl_zo_pack_pool(b, ks[i], (int8_t)qs[i]);
        uint32_t k;
        int8_t q;
        sfl_zo_unpack_pool(b, &k, &q);
        assert_int_equal(k, ks[i]);
        assert_int_equal(q, qs[i]);
    }
    sfl_zo_pack_pool(b, 0x1234, -5);
    assert_int_equal(b[0], 0x34);
    assert_int_equal(b[1], 0x12);
    assert_int_equal(b[2], 0xfb);
}

static void make_model(sfl_model *m, const char *spec)
{
    char err[128];
    assert_int_equal(sfl_model_create(m, spec, err, sizeof err), 0);
    sfl_model_init(m, 3);
}

/* Pool replay = theta + sum_k (float)(-lr A_k) z_k applied in order. */
static void test_replay_pool_matches_terms(void **state)
{
    (void)state;
    sfl_model m;
    make_model(&m, "mlp:20-7-3");
    sfl_zlayout l;
    sfl_zo_layout(&m, &l);
    assert_int_equal(l.ntensors, 4);
    assert_int_equal(l.nparams, m.nparams);
    uint8_t root[32];
    sfl_z_root(11, root);
    const uint32_t seeds[] = { 2, 17, 4000 };
    const double sums[] = { 0.75, -1.5e-3, 3.0 };
    const float lr = 0.01f;

    float *a = malloc(m.nparams * 4), *b = malloc(m.nparams * 4);
    memcpy(a, m.params, m.nparams * 4);
    memcpy(b, m.params, m.nparams * 4);
    assert_int_equal(sfl_zo_replay_pool(&l, root, seeds, sums, 3, lr, a), 0);
    for (int i = 0; i < 3; i++) {
        uint8_t seed[32];
        sfl_z_pool_seed(root, seeds[i], seed);
        assert_int_equal(
            sfl_z_model_axpy(&l, SFL_ZDOM_POOL, seed, (float)(-(double)lr * sums[i]), b, b), 0);
    }
    assert_memory_equal(a, b, m.nparams * 4);
    assert_memory_not_equal(a, m.params, m.nparams * 4);

    /* every coordinate moved by exactly +-(float)(lr A) sums: spot check one
     * single-seed replay against the direction's values */
    memcpy(a, m.params, m.nparams * 4);
    assert_int_equal(sfl_zo_replay_pool(&l, root, seeds, sums, 1, lr, a), 0);
    float alpha = (float)(-(double)lr * sums[0]);
    uint8_t seed[32];
    sfl_z_pool_seed(root, seeds[0], seed);
    sfl_zkey k;
    assert_int_equal(sfl_zkey_derive(&k, SFL_ZDOM_POOL, l.model_id, 0, seed), 0);
    float z[140];
    sfl_z_values(&k, 0, 140, z);
    for (int i = 0; i < 140; i++)
        assert_true(a[i] == m.params[i] + (z[i] > 0 ? alpha : -alpha));

    /* rules: ascending, below the pool bound, finite */
    const uint32_t unsorted[] = { 5, 3 };
    const uint32_t dup[] = { 5, 5 };
    const uint32_t big[] = { SFL_ZO_POOL_MAX };
    const double fin[] = { 1, 1 }, inf[] = { INFINITY };
    memcpy(a, m.params, m.nparams * 4);
    assert_int_equal(sfl_zo_replay_pool(&l, root, unsorted, fin, 2, lr, a), SFL_EINVAL);
    assert_int_equal(sfl_zo_replay_pool(&l, root, dup, fin, 2, lr, a), SFL_EINVAL);
    assert_int_equal(sfl_zo_replay_pool(&l, root, big, fin, 1, lr, a), SFL_EINVAL);
    assert_int_equal(sfl_zo_replay_pool(&l, root, seeds, inf, 1, lr, a), SFL_EINVAL);
    assert_memory_equal(a, m.params, m.nparams * 4); /* untouched on refusal */
    free(a);
    free(b);
    sfl_model_free(&m);
}

/* Derived replay: clients in key order, each step its own derived seed,
 * coefficient -lr w scale q / tau; zero scalars move nothing. */
static void test_replay_derived_matches_terms(void **state)
{
    (void)state;
    sfl_model m;
    make_model(&m, "logreg:30-4");
    sfl_zlayout l;
    sfl_zo_layout(&m, &l);
    uint8_t root[32];
    sfl_z_root(5, root);
    uint8_t q0[] = { 3, 0, (uint8_t)-7 }, q1[] = { (uint8_t)-127, 127 };
    sfl_zo_contrib c[2];
    memset(c, 0, sizeof c);
    memset(c[0].key, 0x11, 32);
    memset(c[1].key, 0x22, 32);
    c[0].weight = 0.25;
    c[0].q = q0;
    c[0].nq = 3;
    c[1].weight = 0.75;
    c[1].q = q1;
    c[1].nq = 2;
    const float lr = 0.5f, scale = 0.01f;
    const uint32_t round = 9;

    float *a = malloc(m.nparams * 4), *b = malloc(m.nparams * 4);
    memcpy(a, m.params, m.nparams * 4);
    memcpy(b, m.params, m.nparams * 4);
    assert_int_equal(sfl_zo_replay_derived(&l, root, round, c, 2, lr, scale, a), 0);
    for (int i = 0; i < 2; i++) {
        double per = -(double)lr * c[i].weight * (double)scale / (double)c[i].nq;
        for (size_t j = 0; j < c[i].nq; j++) {
            if (c[i].q[j] == 0)
                continue;
            uint8_t seed[32];
            sfl_z_derived_seed(root, round, c[i].key, (uint32_t)j, seed);
            float alpha = (float)(per * (double)(int8_t)c[i].q[j]);
            assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_DERIVED, seed, alpha, b, b), 0);
        }
    }
    assert_memory_equal(a, b, m.nparams * 4);

    /* another round derives other seeds */
    memcpy(b, m.params, m.nparams * 4);
    assert_int_equal(sfl_zo_replay_derived(&l, root, round + 1, c, 2, lr, scale, b), 0);
    assert_memory_not_equal(a, b, m.nparams * 4);

    /* rules: keys ascending, no -128, finite weights, at least one step */
    memcpy(a, m.params, m.nparams * 4);
    sfl_zo_contrib swapped[2] = { c[1], c[0] };
    assert_int_equal(sfl_zo_replay_derived(&l, root, round, swapped, 2, lr, scale, a),
                     SFL_EINVAL);
    uint8_t bad[] = { 1, 0x80 };
    sfl_zo_contrib one = c[0];
    one.q = bad;
    one.nq = 2;
    assert_int_equal(sfl_zo_replay_derived(&l, root, round, &one, 1, lr, scale, a), SFL_EINVAL);
    one = c[0];
    one.weight = NAN;
    assert_int_equal(sfl_zo_replay_derived(&l, root, round, &one, 1, lr, scale, a), SFL_EINVAL);
    one = c[0];
    one.nq = 0;
    assert_int_equal(sfl_zo_replay_derived(&l, root, round, &one, 1, lr, scale, a), SFL_EINVAL);
    assert_memory_equal(a, m.params, m.nparams * 4);
    free(a);
    free(b);
    sfl_model_free(&m);
}

/* A small synthetic data set: 64 rows of 30 pixels, 4 classes. */
static void make_data(sfl_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->n = 64;
    d->dim = 30;
    d->classes = 10;
    d->px = malloc(d->n * d->dim);
    d->y = malloc(d->n);
    sfl_rng r;
    sfl_rng_init(&r, "test-zo-data", 1, 0, 0);
    for (size_t i = 0; i < d->n; i++) {
        d->y[i] = (uint8_t)(i % 4);
        for (size_t j = 0; j < d->dim; j++)
            d->px[i * d->dim + j] = (uint8_t)(sfl_rng_below(&r, 64) + (j % 4 == d->y[i]) * 150);
    }
}

static sfl_zo_opts base_opts(const uint8_t *root, const uint8_t *pk)
{
    sfl_zo_opts o;
    memset(&o, 0, sizeof o);
    o.variant = SFL_ZO_POOL;
    o.root = root;
    o.client_pk = pk;
    o.pool_size = 64;
    o.steps = 40;
    o.batch = 16;
    o.eps = 1e-3f;
    o.lr = 0.01f;
    o.scale = 0.05f;
    o.seed = 1;
    o.round = 1;
    return o;
}

/* Derived steps are all measured at the starting theta: it stays
 * bit-identical, and the scalars are not all zero. */
static void test_train_derived_leaves_theta(void **state)
{
    (void)state;
    sfl_model m;
    make_model(&m, "logreg:30-4");
    sfl_dataset d;
    make_data(&d);
    uint8_t root[32], pk[32];
    sfl_z_root(2, root);
    memset(pk, 7, 32);
    sfl_zo_opts o = base_opts(root, pk);
    o.variant = SFL_ZO_DERIVED;
    float *before = malloc(m.nparams * 4);
    memcpy(before, m.params, m.nparams * 4);
    uint8_t out[40];
    double loss = 0;
    assert_int_equal(sfl_zo_train(&m, &d, &o, out, &loss), 0);
    assert_memory_equal(before, m.params, m.nparams * 4);
    assert_true(isfinite(loss) && loss > 0);
    int nonzero = 0;
    for (int i = 0; i < 40; i++) {
        assert_true(out[i] != 0x80);
        nonzero += out[i] != 0;
    }
    assert_true(nonzero > 10);
    free(before);
    sfl_dataset_free(&d);
    sfl_model_free(&m);
}

/* Pool steps: the final local theta equals the start plus the client's own
 * (k, q) list replayed with its local learning rate, step by step: the
 * perturbations never leak into theta. Bad options are refused. */
static void test_train_pool_trajectory(void **state)
{
    (void)state;
    sfl_model m;
    make_model(&m, "logreg:30-4");
    sfl_dataset d;
    make_data(&d);
    uint8_t root[32], pk[32];
    sfl_z_root(2, root);
    memset(pk, 7, 32);
    sfl_zo_opts o = base_opts(root, pk);
    float *start = malloc(m.nparams * 4);
    memcpy(start, m.params, m.nparams * 4);
    uint8_t out[40 * 3];
    double loss = 0;
    assert_int_equal(sfl_zo_train(&m, &d, &o, out, &loss), 0);

    sfl_zlayout l;
    sfl_zo_layout(&m, &l);
    int moved = 0;
    for (int i = 0; i < 40; i++) {
        uint32_t k;
        int8_t q;
        sfl_zo_unpack_pool(out + 3 * i, &k, &q);
        assert_true(k < o.pool_size);
        assert_true(q != -128);
        if (q == 0)
            continue;
        moved++;
        uint8_t seed[32];
        sfl_z_pool_seed(root, k, seed);
        float alpha = (float)(-(double)o.lr * (double)q * (double)o.scale);
        assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, seed, alpha, start, start), 0);
    }
    assert_true(moved > 5);
    assert_memory_equal(start, m.params, m.nparams * 4);

    /* the same inputs give the same bytes */
    uint8_t again[40 * 3];
    sfl_model_init(&m, 3); /* the same start as above */
    assert_int_equal(sfl_zo_train(&m, &d, &o, again, &loss), 0);
    assert_memory_equal(out, again, sizeof out);

    sfl_zo_opts bad = o;
    bad.pool_size = 0;
    assert_int_equal(sfl_zo_train(&m, &d, &bad, out, &loss), SFL_EINVAL);
    bad = o;
    bad.pool_size = SFL_ZO_POOL_MAX + 1;
    assert_int_equal(sfl_zo_train(&m, &d, &bad, out, &loss), SFL_EINVAL);
    bad = o;
    bad.steps = 0;
    assert_int_equal(sfl_zo_train(&m, &d, &bad, out, &loss), SFL_EINVAL);
    bad = o;
    bad.eps = 0;
    assert_int_equal(sfl_zo_train(&m, &d, &bad, out, &loss), SFL_EINVAL);
    bad = o;
    bad.scale = NAN;
    assert_int_equal(sfl_zo_train(&m, &d, &bad, out, &loss), SFL_EINVAL);
    free(start);
    sfl_dataset_free(&d);
    sfl_model_free(&m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantize_exact),
        cmocka_unit_test(test_quantize_unbiased),
        cmocka_unit_test(test_pack),
        cmocka_unit_test(test_replay_pool_matches_terms),
        cmocka_unit_test(test_replay_derived_matches_terms),
        cmocka_unit_test(test_train_derived_leaves_theta),
        cmocka_unit_test(test_train_pool_trajectory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
