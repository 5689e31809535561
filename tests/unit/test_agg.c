/* Aggregation: exact weighted and plain means, validation reasons,
 * canonical order, an all-invalid round. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agg.h"

static void fill(sfl_submission *s, uint8_t keybyte, uint64_t samples, float *d)
{
    memset(s, 0, sizeof *s);
    memset(s->key, keybyte, 32);
    s->num_samples = samples;
    s->delta = d;
}

static void test_weighted_exact(void **state)
{
    (void)state;
    float d1[3] = {1, 2, 3}, d2[3] = {4, 8, -12}, d3[3] = {0, 0, 0};
    sfl_submission s[3];
    fill(&s[0], 3, 1, d1);
    fill(&s[1], 1, 3, d2);
    fill(&s[2], 2, 4, d3);
    float params[3] = {10, 10, 10};
    double acc[3];
    assert_int_equal(sfl_agg_validate(s, 3, 3, 100), 3);
    assert_int_equal(sfl_agg_apply(SFL_AGG_WEIGHTED, s, 3, params, 3, acc), 3);
    /* (1*1 + 3*4 + 4*0)/8 = 13/8, (2 + 24)/8 = 26/8, (3 - 36)/8 = -33/8 */
    assert_true(params[0] == 10.0f + 13.0f / 8);
    assert_true(params[1] == 10.0f + 26.0f / 8);
    assert_true(params[2] == 10.0f - 33.0f / 8);
    float p2[3] = {0, 0, 0};
    assert_int_equal(sfl_agg_apply(SFL_AGG_MEAN, s, 3, p2, 3, acc), 3);
    assert_true(p2[0] == 5.0f / 3 && p2[1] == 10.0f / 3 && p2[2] == -3.0f);
}

static void test_validation(void **state)
{
    (void)state;
    float ok[2] = {1, 1}, nan_[2] = {1, NAN}, inf_[2] = {INFINITY, 0};
    sfl_submission s[5];
    fill(&s[0], 1, 2, ok);
    fill(&s[1], 2, 2, nan_);
    fill(&s[2], 3, 2, inf_);
    fill(&s[3], 4, 0, ok);
    fill(&s[4], 5, 101, ok);
    assert_int_equal(sfl_agg_validate(s, 5, 2, 100), 1);
    assert_true(s[0].valid);
    assert_string_equal(s[1].reason, "non-finite value at index 1");
    assert_string_equal(s[2].reason, "non-finite value at index 0");
    assert_string_equal(s[3].reason, "sample count 0 outside [1, 100]");
    assert_string_equal(s[4].reason, "sample count 101 outside [1, 100]");
    float params[2] = {0, 0};
    double acc[2];
    assert_int_equal(sfl_agg_apply(SFL_AGG_WEIGHTED, s, 5, params, 2, acc), 1);
    assert_true(params[0] == 1 && params[1] == 1);
}

static void test_none_valid(void **state)
{
    (void)state;
    float bad[1] = {NAN};
    sfl_submission s[1];
    fill(&s[0], 1, 1, bad);
    float params[1] = {7};
    double acc[1];
    assert_int_equal(sfl_agg_validate(s, 1, 1, 10), 0);
    assert_int_equal(sfl_agg_apply(SFL_AGG_WEIGHTED, s, 1, params, 1, acc), 0);
    assert_true(params[0] == 7);
}

static void test_order(void **state)
{
    (void)state;
    /* values whose float64 sum depends on order: the canonical order makes
     * every arrival order give the same bits */
    float a[1] = {1e8f}, b[1] = {1.0f}, c[1] = {-1e8f};
    sfl_submission s1[3], s2[3];
    fill(&s1[0], 9, 1, a);
    fill(&s1[1], 5, 1, b);
    fill(&s1[2], 7, 1, c);
    s2[0] = s1[2];
    s2[1] = s1[0];
    s2[2] = s1[1];
    sfl_agg_sort(s1, 3);
    sfl_agg_sort(s2, 3);
    assert_int_equal(s1[0].key[0], 5);
    assert_int_equal(s1[2].key[0], 9);
    for (int i = 0; i < 3; i++)
        assert_memory_equal(s1[i].key, s2[i].key, 32);
}

static void fill_zo(sfl_submission *s, uint8_t keybyte, uint64_t samples, uint8_t *zo, size_t len)
{
    memset(s, 0, sizeof *s);
    memset(s->key, keybyte, 32);
    s->num_samples = samples;
    s->zo = zo;
    s->zo_len = len;
}

/* Per-seed sums worked out by hand: A_k = sum_i w_i sum q * scale. */
static void test_zo_pool_sums(void **state)
{
    (void)state;
    uint8_t a[9], b[9], c[9];
    /* client a (1 sample): (k2, +3) (k0, -1) (k2, +1) */
    sfl_zo_pack_pool(a, 2, 3);
    sfl_zo_pack_pool(a + 3, 0, -1);
    sfl_zo_pack_pool(a + 6, 2, 1);
    /* client b (3 samples): (k1, +4) (k2, -2) (k0, 127) */
    sfl_zo_pack_pool(b, 1, 4);
    sfl_zo_pack_pool(b + 3, 2, -2);
    sfl_zo_pack_pool(b + 6, 0, 127);
    /* client c: a seed outside the pool of 4: rejected whole */
    sfl_zo_pack_pool(c, 1, 1);
    sfl_zo_pack_pool(c + 3, 4, 1);
    sfl_zo_pack_pool(c + 6, 1, 1);
    sfl_submission s[3];
    fill_zo(&s[0], 1, 1, a, 9);
    fill_zo(&s[1], 2, 3, b, 9);
    fill_zo(&s[2], 3, 5, c, 9);
    assert_int_equal(sfl_agg_zo_validate(s, 3, SFL_ZO_POOL, 3, 4, 100), 2);
    assert_false(s[2].valid);
    assert_string_equal(s[2].reason, "step 1: seed 4 outside the pool of 4");

    double w[3], sums[4], rms = 0;
    assert_int_equal(sfl_agg_weights(SFL_AGG_WEIGHTED, s, 3, w), 2);
    assert_true(w[0] == 0.25 && w[1] == 0.75 && w[2] == 0.0);
    const float scale = 0.5f;
    sfl_agg_zo_stats(s, 3, SFL_ZO_POOL, scale, 4, w, sums, &rms);
    /* k0: 0.25 * (-1 * 0.5) + 0.75 * (127 * 0.5) = -0.125 + 47.625 */
    assert_true(sums[0] == 47.5);
    /* k1: 0.75 * 4 * 0.5 */
    assert_true(sums[1] == 1.5);
    /* k2: 0.25 * (3 + 1) * 0.5 + 0.75 * (-2 * 0.5) = 0.5 - 0.75 */
    assert_true(sums[2] == -0.25);
    assert_true(sums[3] == 0.0);
    /* decoded scalars (x 0.5): 3 -1 1 4 -2 127 -> squares 9 1 1 16 4 16129 */
    assert_true(fabs(rms - 0.5 * sqrt(16160.0 / 6)) < 1e-12);

    /* plain mean */
    assert_int_equal(sfl_agg_weights(SFL_AGG_MEAN, s, 3, w), 2);
    assert_true(w[0] == 0.5 && w[1] == 0.5);
}

static void test_zo_validation(void **state)
{
    (void)state;
    uint8_t ok[6], m128[6], d[3] = { 1, 0x80, 2 };
    sfl_zo_pack_pool(ok, 1, 1);
    sfl_zo_pack_pool(ok + 3, 2, -127);
    sfl_zo_pack_pool(m128, 1, 1);
    sfl_zo_pack_pool(m128 + 3, 2, -128);
    sfl_submission s[4];
    fill_zo(&s[0], 1, 0, ok, 6);    /* no samples */
    fill_zo(&s[1], 2, 1, ok, 5);    /* wrong length */
    fill_zo(&s[2], 3, 1, m128, 6);  /* -128 */
    fill_zo(&s[3], 4, 1, NULL, 0);  /* nothing */
    assert_int_equal(sfl_agg_zo_validate(s, 4, SFL_ZO_POOL, 2, 16, 100), 0);
    assert_string_equal(s[0].reason, "sample count 0 outside [1, 100]");
    assert_string_equal(s[1].reason, "5 bytes of steps, expected 2 steps of 3");
    assert_string_equal(s[2].reason, "step 1: scalar -128 is not allowed");
    assert_string_equal(s[3].reason, "no data");
    /* derived: one byte per step, no seed index */
    fill_zo(&s[0], 1, 1, d, 3);
    assert_int_equal(sfl_agg_zo_validate(s, 1, SFL_ZO_DERIVED, 3, 0, 100), 0);
    assert_string_equal(s[0].reason, "step 1: scalar -128 is not allowed");
    d[1] = 0x81;
    assert_int_equal(sfl_agg_zo_validate(s, 1, SFL_ZO_DERIVED, 3, 0, 100), 1);
    double w[1], rms;
    sfl_agg_weights(SFL_AGG_WEIGHTED, s, 1, w);
    sfl_agg_zo_stats(s, 1, SFL_ZO_DERIVED, 1.0f, 0, w, NULL, &rms);
    /* 1, -127, 2 */
    assert_true(fabs(rms - sqrt((1 + 16129 + 4) / 3.0)) < 1e-12);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weighted_exact),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_none_valid),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_zo_pool_sums),
        cmocka_unit_test(test_zo_validation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
