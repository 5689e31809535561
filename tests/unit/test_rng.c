/* sfl_rng: determinism, separation of inputs, the exact stream definition,
 * and the distributions drawn from it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "rng.h"

/* The key and keystream computed straight from libsodium, as rng.h defines
 * them, without going through rng.c. */
static void ref_keystream(const char *domain, uint64_t seed, uint64_t a, uint64_t b,
                          uint8_t *out, size_t len)
{
    uint8_t msg[8 + 64 + 24], key[32];
    uint8_t personal[crypto_generichash_blake2b_PERSONALBYTES] = { 0 };
    uint8_t salt[crypto_generichash_blake2b_SALTBYTES] = { 0 };
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = { 0 };
    size_t dlen = strlen(domain), off = 0;
    uint64_t fields[3] = { seed, a, b };

    assert_true(dlen <= 64);
    memcpy(personal, "seedfl-rng", 10);
    for (int i = 0; i < 8; i++)
        msg[off++] = (uint8_t)((uint64_t)dlen >> (8 * i));
    memcpy(msg + off, domain, dlen);
    off += dlen;
    for (int f = 0; f < 3; f++)
        for (int i = 0; i < 8; i++)
            msg[off++] = (uint8_t)(fields[f] >> (8 * i));
    assert_int_equal(crypto_generichash_blake2b_salt_personal(key, sizeof key, msg, off, NULL, 0,
                                                              salt, personal), 0);
    assert_int_equal(crypto_stream_chacha20(out, len, nonce, key), 0);
}

static uint64_t le_bytes(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void test_same_inputs_same_stream(void **state)
{
    (void)state;
    sfl_rng a, b;
    sfl_rng_init(&a, "batch", 123, 4, 5);
    sfl_rng_init(&b, "batch", 123, 4, 5);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sfl_rng_u64(&a), sfl_rng_u64(&b));
}

static void test_inputs_separate_streams(void **state)
{
    (void)state;
    struct { const char *d; uint64_t s, a, b; } in[] = {
        { "init", 1, 2, 3 }, { "batch", 1, 2, 3 }, { "init", 9, 2, 3 },
        { "init", 1, 9, 3 }, { "init", 1, 2, 9 }, { "init", 1, 3, 2 },
        { "ini", 1, 2, 3 },  { "", 1, 2, 3 },
    };
    size_t k = sizeof in / sizeof in[0];
    uint64_t first[sizeof in / sizeof in[0]][4];
    for (size_t i = 0; i < k; i++) {
        sfl_rng r;
        sfl_rng_init(&r, in[i].d, in[i].s, in[i].a, in[i].b);
        for (int j = 0; j < 4; j++)
            first[i][j] = sfl_rng_u64(&r);
    }
    for (size_t i = 0; i < k; i++)
        for (size_t j = i + 1; j < k; j++)
            for (int w = 0; w < 4; w++)
                assert_true(first[i][w] != first[j][w]);
}

/* Golden values for ("golden", seed 42, a 7, b 9). Derived once from the
 * definition in rng.h: BLAKE2b-256 with personal "seedfl-rng" over
 * le64(6) || "golden" || le64(42) || le64(7) || le64(9) as the key of the
 * original ChaCha20 (nonce 0, counter 0); the first u64 is the first 8
 * keystream bytes read little-endian, and the u32 is keystream bytes
 * 328..331 (after a refill boundary). They were cross-checked against an
 * independent script (Python hashlib.blake2b plus a ChaCha20 block function
 * written from the specification). The test also recomputes them from
 * libsodium directly. */
static void test_golden(void **state)
{
    (void)state;
    uint8_t ks[512];
    sfl_rng r;

    sfl_rng_init(&r, "golden", 42, 7, 9);
    uint64_t first = sfl_rng_u64(&r);
    assert_true(first == UINT64_C(0x613241c63bda11a4));
    for (int i = 0; i < 40; i++)
        (void)sfl_rng_u64(&r);
    assert_true(sfl_rng_u32(&r) == UINT32_C(0x5f3fff0b));

    ref_keystream("golden", 42, 7, 9, ks, sizeof ks);
    assert_true(le_bytes(ks, 8) == first);
    assert_true(le_bytes(ks + 328, 4) == UINT32_C(0x5f3fff0b));
}

/* Any mix of u32 and u64 reads consumes consecutive keystream bytes, even
 * across refills. */
static void test_mixed_reads_follow_keystream(void **state)
{
    (void)state;
    uint8_t ks[2048];
    sfl_rng r;
    size_t off = 0;

    ref_keystream("mixed", 5, 6, 7, ks, sizeof ks);
    sfl_rng_init(&r, "mixed", 5, 6, 7);
    for (int i = 0; off + 8 <= sizeof ks; i++) {
        if (i % 3 == 1) {
            assert_true(sfl_rng_u32(&r) == le_bytes(ks + off, 4));
            off += 4;
        } else {
            assert_true(sfl_rng_u64(&r) == le_bytes(ks + off, 8));
            off += 8;
        }
    }
}

static void test_below_range(void **state)
{
    (void)state;
    const uint32_t ns[] = { 1, 2, 3, 7, 10, 1000, 65537, 0x80000001u, UINT32_MAX };
    sfl_rng r;
    sfl_rng_init(&r, "test", 1, 0, 0);
    for (size_t k = 0; k < sizeof ns / sizeof ns[0]; k++)
        for (int i = 0; i < 2000; i++)
            assert_true(sfl_rng_below(&r, ns[k]) < ns[k]);
}

/* Chi-square over 10 cells; the 0.999 quantile for 9 degrees of freedom is
 * 27.9. The draws are seeded, so this is deterministic. */
static void test_below_uniform(void **state)
{
    (void)state;
    enum { CELLS = 10, DRAWS = 200000 };
    long count[CELLS] = { 0 };
    sfl_rng r;
    sfl_rng_init(&r, "test", 2, 0, 0);
    for (int i = 0; i < DRAWS; i++)
        count[sfl_rng_below(&r, CELLS)]++;
    double expect = (double)DRAWS / CELLS, chi2 = 0.0;
    for (int c = 0; c < CELLS; c++)
        chi2 += (count[c] - expect) * (count[c] - expect) / expect;
    assert_true(chi2 < 27.9);
}

/* n = 3 * 2^30: plain x % n would put half of all draws below 2^30 instead
 * of a third. */
static void test_below_no_modulo_bias(void **state)
{
    (void)state;
    const uint32_t n = 0xC0000000u;
    int low = 0, draws = 60000;
    sfl_rng r;
    sfl_rng_init(&r, "test", 3, 0, 0);
    for (int i = 0; i < draws; i++)
        low += sfl_rng_below(&r, n) < 0x40000000u;
    double frac = (double)low / draws;
    assert_true(frac > 0.32 && frac < 0.347);
}

static void test_uniform_and_normal(void **state)
{
    (void)state;
    enum { DRAWS = 100000 };
    sfl_rng r;
    double sf = 0, sd = 0, sn = 0, sn2 = 0;
    sfl_rng_init(&r, "test", 4, 0, 0);
    for (int i = 0; i < DRAWS; i++) {
        float f = sfl_rng_uniform(&r);
        double d = sfl_rng_uniform_d(&r), z = sfl_rng_normal(&r);
        assert_true(f >= 0.0f && f < 1.0f);
        assert_true(d >= 0.0 && d < 1.0);
        assert_true(isfinite(z));
        sf += f;
        sd += d;
        sn += z;
        sn2 += z * z;
    }
    assert_true(fabs(sf / DRAWS - 0.5) < 0.005);
    assert_true(fabs(sd / DRAWS - 0.5) < 0.005);
    assert_true(fabs(sn / DRAWS) < 0.015);
    assert_true(fabs(sn2 / DRAWS - 1.0) < 0.02);
}

static void test_shuffle_is_permutation(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint32_t v[N], w[N];
    unsigned char seen[N] = { 0 };
    sfl_rng r;
    int moved = 0;

    for (uint32_t i = 0; i < N; i++)
        v[i] = w[i] = i;
    sfl_rng_init(&r, "test", 5, 0, 0);
    sfl_rng_shuffle_u32(&r, v, N);
    sfl_rng_init(&r, "test", 5, 0, 0);
    sfl_rng_shuffle_u32(&r, w, N);
    for (uint32_t i = 0; i < N; i++) {
        assert_true(v[i] < N);
        assert_false(seen[v[i]]);
        seen[v[i]] = 1;
        moved += v[i] != i;
        assert_int_equal(v[i], w[i]);
    }
    assert_true(moved > N / 2);

    /* the degenerate sizes leave the input alone */
    uint32_t one = 77;
    sfl_rng_shuffle_u32(&r, &one, 1);
    assert_int_equal(one, 77);
    sfl_rng_shuffle_u32(&r, NULL, 0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_inputs_same_stream),
        cmocka_unit_test(test_inputs_separate_streams),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_mixed_reads_follow_keystream),
        cmocka_unit_test(test_below_range),
        cmocka_unit_test(test_below_uniform),
        cmocka_unit_test(test_below_no_modulo_bias),
        cmocka_unit_test(test_uniform_and_normal),
        cmocka_unit_test(test_shuffle_is_permutation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
