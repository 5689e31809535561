/* sfl_z (shared-randomness directions): golden bit patterns and seeds,
 * slices against whole runs, independence of streams, domain separation,
 * and replay against term-by-term application, bit for bit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "zgen.h"

/* The golden constants below come from tests/tools/zgen_golden.py, which
 * re-implements the generator from its definition in zgen.h with Python's
 * hashlib BLAKE2b and a ChaCha20 block function written from RFC 7539
 * (original 64-bit-counter variant, checked there against published
 * vectors), without libsodium. Regenerate with
 *     python3 tests/tools/zgen_golden.py
 * Inputs: domain "zo-pool", model id 0x0123456789abcdef, tensor 3, seed
 * 0x00 0x01 ... 0x1f. Digests are plain BLAKE2b-256 (no key, no
 * personalisation) of the coordinates packed as sfl_z_bits writes them:
 * coordinate start + i is bit i % 8 of byte i / 8, 1 meaning -1, and the
 * unused high bits of the last byte are zero. */
#define GOLDEN_MODEL_ID 0x0123456789abcdefULL
#define GOLDEN_TENSOR 3
#define GOLDEN_DIGEST_N 1000000
#define GOLDEN_SLICE_START 777777
#define GOLDEN_SLICE_N 100003
#define GOLDEN_HIGH_START (((uint64_t)1 << 41) - 40)
#define GOLDEN_HIGH_N 80

static const uint8_t golden_key[32] = {
    0x08, 0x94, 0xea, 0x16, 0xb0, 0x03, 0x5a, 0xa8, 0xed, 0x8d, 0x9b, 0x9a,
    0x29, 0x35, 0xb7, 0x51, 0x01, 0x05, 0x3e, 0x67, 0xc0, 0xd8, 0x46, 0xa4,
    0xb2, 0x0a, 0x7d, 0xb3, 0xfd, 0xd3, 0x89, 0xb9,
};
static const uint64_t golden_coord_index[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 511, 512, 513, 1000007 };
static const int golden_coord_value[] = { -1, 1, -1, 1, -1, 1, -1, 1, 1, -1, 1, 1, -1, 1, 1, -1, -1, 1, 1, -1 };
/* BLAKE2b-256 (plain) of the packed bits of coordinates [0, 1000000) */
static const uint8_t golden_digest_1e6[32] = {
    0x27, 0xad, 0x47, 0x45, 0x6c, 0xe4, 0xdd, 0xb6, 0x61, 0x05, 0x3f, 0x0b,
    0xfc, 0xb4, 0xb3, 0x39, 0x12, 0x98, 0x5c, 0xc4, 0xe1, 0x68, 0x78, 0x0f,
    0x49, 0xf8, 0x46, 0x43, 0x3a, 0xe9, 0xa4, 0x0b,
};
/* the same for coordinates [777777, 877780) */
static const uint8_t golden_digest_slice[32] = {
    0x5a, 0x68, 0x44, 0x20, 0xbc, 0x82, 0xba, 0xbf, 0xd3, 0x47, 0x31, 0x3c,
    0x42, 0x69, 0x23, 0x1e, 0x3e, 0xd1, 0x50, 0xcb, 0xf3, 0x1c, 0xe8, 0x3b,
    0x85, 0x21, 0x4d, 0xf2, 0xd0, 0xbd, 0xaf, 0xb8,
};
/* coordinates [2^41 - 40, 2^41 + 40), packed the same way */
static const uint8_t golden_high[10] = {
    0x7d, 0x17, 0x2b, 0x43, 0x61, 0x5e, 0xdf, 0x3e, 0x4d, 0x9a,
};
static const uint8_t golden_root1[32] = {
    0x13, 0xc0, 0x6a, 0x5c, 0x9c, 0xb3, 0x62, 0xa0, 0x29, 0x8e, 0x07, 0x9d,
    0xb3, 0x65, 0x53, 0xd8, 0xb4, 0xc9, 0xe0, 0xfd, 0x9f, 0xf8, 0x1a, 0x55,
    0x15, 0xc1, 0x21, 0x15, 0x8c, 0x97, 0x75, 0x07,
};
static const uint8_t golden_pool0[32] = {
    0x3a, 0xf5, 0x61, 0xee, 0x51, 0xc6, 0x22, 0xe5, 0x2b, 0x18, 0x69, 0x2f,
    0x77, 0x3a, 0x97, 0x7f, 0x6f, 0x0d, 0x8d, 0xc3, 0xba, 0xe0, 0xbe, 0x75,
    0xa6, 0x37, 0x76, 0x85, 0xb6, 0xb0, 0x5f, 0xc9,
};
static const uint8_t golden_pool4095[32] = {
    0x1d, 0x97, 0x0d, 0xdf, 0x03, 0xee, 0xdc, 0x42, 0x78, 0x63, 0xb7, 0x95,
    0x68, 0x9e, 0x58, 0x75, 0xb0, 0x6b, 0xa3, 0xba, 0x05, 0xfb, 0x2e, 0x99,
    0x99, 0x21, 0xa1, 0xf6, 0x30, 0x08, 0x10, 0x35,
};
/* round 7, client key 0x20..0x3f, step 2 */
static const uint8_t golden_derived[32] = {
    0xb0, 0x47, 0xcb, 0xf7, 0xce, 0x27, 0x12, 0x75, 0x4a, 0x44, 0x4a, 0xcd,
    0xd6, 0x10, 0x86, 0xd6, 0x26, 0x33, 0x9b, 0x09, 0x9d, 0x1b, 0x57, 0x0b,
    0xa8, 0x58, 0x75, 0xae, 0x27, 0x5d, 0x8f, 0x8b,
};
static const uint64_t golden_model_logreg = 0x4b435d40d5ceef95ULL;

static void golden_seed(uint8_t seed[SFL_ZSEED_BYTES])
{
    for (int i = 0; i < SFL_ZSEED_BYTES; i++)
        seed[i] = (uint8_t)i;
}

static void golden_key_of(sfl_zkey *k)
{
    uint8_t seed[SFL_ZSEED_BYTES];
    golden_seed(seed);
    assert_int_equal(sfl_zkey_derive(k, SFL_ZDOM_POOL, GOLDEN_MODEL_ID, GOLDEN_TENSOR, seed), 0);
}

static void test_golden_key_and_coordinates(void **state)
{
    (void)state;
    sfl_zkey k;
    golden_key_of(&k);
    assert_memory_equal(k.key, golden_key, 32);

    size_t ng = sizeof golden_coord_index / sizeof golden_coord_index[0];
    for (size_t i = 0; i < ng; i++) {
        float v;
        uint8_t b;
        sfl_z_values(&k, golden_coord_index[i], 1, &v);
        assert_true(v == (float)golden_coord_value[i]);
        sfl_z_bits(&k, golden_coord_index[i], 1, &b);
        assert_int_equal(b, golden_coord_value[i] < 0 ? 1 : 0);
    }
    /* the first 16 in one call */
    float v16[16];
    sfl_z_values(&k, 0, 16, v16);
    for (int i = 0; i < 16; i++)
        assert_true(v16[i] == (float)golden_coord_value[i]);
}

static void digest_of_bits(const sfl_zkey *k, uint64_t start, size_t n, uint8_t out[32])
{
    size_t nb = (n + 7) / 8;
    uint8_t *bits = malloc(nb);
    assert_non_null(bits);
    sfl_z_bits(k, start, n, bits);
    assert_int_equal(crypto_generichash(out, 32, bits, nb, NULL, 0), 0);
    free(bits);
}

static void test_golden_digests(void **state)
{
    (void)state;
    sfl_zkey k;
    uint8_t d[32];
    golden_key_of(&k);

    digest_of_bits(&k, 0, GOLDEN_DIGEST_N, d);
    assert_memory_equal(d, golden_digest_1e6, 32);
    digest_of_bits(&k, GOLDEN_SLICE_START, GOLDEN_SLICE_N, d);
    assert_memory_equal(d, golden_digest_slice, 32);

    /* the same coordinates through the float paths */
    float *v = malloc(GOLDEN_DIGEST_N * sizeof *v);
    uint8_t *bits = calloc(GOLDEN_DIGEST_N / 8, 1);
    assert_non_null(v);
    assert_non_null(bits);
    sfl_z_values(&k, 0, GOLDEN_DIGEST_N, v);
    for (size_t i = 0; i < GOLDEN_DIGEST_N; i++) {
        assert_true(v[i] == 1.0f || v[i] == -1.0f);
        bits[i / 8] |= (uint8_t)((v[i] < 0) << (i % 8));
    }
    assert_int_equal(crypto_generichash(d, 32, bits, GOLDEN_DIGEST_N / 8, NULL, 0), 0);
    assert_memory_equal(d, golden_digest_1e6, 32);
    free(bits);
    free(v);

    /* past block 2^32 - 1 the counter carries into its high word */
    uint8_t high[(GOLDEN_HIGH_N + 7) / 8];
    sfl_z_bits(&k, GOLDEN_HIGH_START, GOLDEN_HIGH_N, high);
    assert_memory_equal(high, golden_high, sizeof high);
}

static void test_golden_seeds(void **state)
{
    (void)state;
    uint8_t root[32], s[32], pk[32];

    sfl_z_root(1, root);
    assert_memory_equal(root, golden_root1, 32);
    sfl_z_pool_seed(root, 0, s);
    assert_memory_equal(s, golden_pool0, 32);
    sfl_z_pool_seed(root, 4095, s);
    assert_memory_equal(s, golden_pool4095, 32);
    for (int i = 0; i < 32; i++)
        pk[i] = (uint8_t)(0x20 + i);
    sfl_z_derived_seed(root, 7, pk, 2, s);
    assert_memory_equal(s, golden_derived, 32);
    assert_true(sfl_z_model_id("logreg") == golden_model_logreg);

    /* every input moves the output */
    uint8_t t[32];
    sfl_z_root(2, t);
    assert_memory_not_equal(t, root, 32);
    sfl_z_pool_seed(root, 1, t);
    assert_memory_not_equal(t, golden_pool0, 32);
    sfl_z_derived_seed(root, 8, pk, 2, t);
    assert_memory_not_equal(t, golden_derived, 32);
    sfl_z_derived_seed(root, 7, pk, 3, t);
    assert_memory_not_equal(t, golden_derived, 32);
    pk[31] ^= 1;
    sfl_z_derived_seed(root, 7, pk, 2, t);
    assert_memory_not_equal(t, golden_derived, 32);
    assert_true(sfl_z_model_id("logreg ") != golden_model_logreg);
}

/* Slices of every shape against one whole run from coordinate 0: starts off
 * byte, block and chunk boundaries, odd lengths, lengths crossing several
 * blocks and chunks. Bits, values and axpy all agree with it. */
#define FULL_N 200000
static void test_slices_match_full_run(void **state)
{
    (void)state;
    sfl_zkey k;
    golden_key_of(&k);
    float *full = malloc(FULL_N * sizeof *full);
    float *v = malloc(FULL_N * sizeof *v);
    float *x = malloc(FULL_N * sizeof *x);
    float *y = malloc((FULL_N + 1) * sizeof *y);
    uint8_t *bits = malloc(FULL_N / 8 + 2);
    assert_non_null(full);
    assert_non_null(v);
    assert_non_null(x);
    assert_non_null(y);
    assert_non_null(bits);
    sfl_z_values(&k, 0, FULL_N, full);
    for (size_t i = 0; i < FULL_N; i++)
        x[i] = (float)((int)(i % 2001) - 1000) * 0.37f;

    static const struct { uint64_t start; size_t n; } sl[] = {
        { 0, 0 }, { 0, 1 }, { 5, 1 }, { 3, 5 }, { 3, 13 }, { 7, 9 }, { 8, 8 }, { 1, 511 },
        { 511, 2 }, { 500, 25 }, { 512, 512 }, { 513, 1023 }, { 1027, 3333 },
        { 32767, 3 }, { 32761, 70001 }, { 12345, 98765 }, { 65535, 65537 },
        { 100001, 99999 }, { 0, FULL_N }, { 199999, 1 },
    };
    for (size_t s = 0; s < sizeof sl / sizeof sl[0]; s++) {
        uint64_t st = sl[s].start;
        size_t n = sl[s].n;
        const float alpha = 0.0625f;

        sfl_z_values(&k, st, n, v);
        assert_memory_equal(v, full + st, n * sizeof *v);

        memset(bits, 0xa5, FULL_N / 8 + 2);
        sfl_z_bits(&k, st, n, bits);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(bits[i / 8] >> (i % 8) & 1, full[st + i] < 0);
        if (n % 8)
            assert_int_equal(bits[n / 8] >> (n % 8), 0);     /* unused bits are zero */
        assert_int_equal(bits[(n + 7) / 8], 0xa5);            /* and nothing past them */

        y[n] = 42.0f;
        sfl_z_axpy(&k, st, n, alpha, x, y);
        for (size_t i = 0; i < n; i++)
            assert_true(y[i] == x[i] + alpha * full[st + i]);
        assert_true(y[n] == 42.0f);
        memcpy(v, x, n * sizeof *v);
        sfl_z_axpy(&k, st, n, alpha, v, v);                    /* in place */
        assert_memory_equal(v, y, n * sizeof *v);
    }
    free(bits);
    free(y);
    free(x);
    free(v);
    free(full);
}

/* x + alpha z is exactly x + alpha or x - alpha, one rounding, whatever the
 * magnitudes; x is never written when y is elsewhere. */
static void test_axpy_exact(void **state)
{
    (void)state;
    enum { N = 4099 };
    static const float alphas[] = { 1e-3f, -0.37f, 0.0f, -0.0f, 3e-8f, 1e4f, 1e-40f, 16777216.0f };
    sfl_zkey k;
    float x[N], x0[N], y[N], z[N];
    uint32_t r = 12345;

    golden_key_of(&k);
    sfl_z_values(&k, 77, N, z);
    for (int i = 0; i < N; i++) {
        r = r * 1664525u + 1013904223u;
        x[i] = (float)(int32_t)r * (i % 3 == 0 ? 1e-9f : i % 3 == 1 ? 4.7e-12f : 1e-5f);
    }
    x[0] = 0.0f;
    x[1] = -0.0f;
    x[2] = 1.0f;
    memcpy(x0, x, sizeof x);
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        float al = alphas[a];
        sfl_z_axpy(&k, 77, N, al, x, y);
        assert_memory_equal(x, x0, sizeof x);
        for (int i = 0; i < N; i++) {
            volatile float plus = x[i] + al, minus = x[i] - al;
            float want = z[i] > 0 ? plus : minus;
            assert_memory_equal(&y[i], &want, sizeof want);
        }
    }
}

/* Agreement of two +-1 streams over n coordinates: sum of z_a z_b / n. */
static double corr(const float *a, const float *b, size_t n)
{
    long s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] == b[i] ? 1 : -1;
    return (double)s / (double)n;
}

static double mean(const float *a, size_t n)
{
    long s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] > 0 ? 1 : -1;
    return (double)s / (double)n;
}

/* Streams that differ in any one input look independent: every mean and
 * pairwise correlation within 5 / sqrt(n) = 0.005 of 0. */
static void test_streams_uncorrelated(void **state)
{
    (void)state;
    enum { N = 1000000, M = 7 };
    const double bound = 0.005;
    uint8_t seed[SFL_ZSEED_BYTES], seed2[SFL_ZSEED_BYTES];
    sfl_zkey k[M];
    float *z[M];

    golden_seed(seed);
    memcpy(seed2, seed, sizeof seed2);
    seed2[0] ^= 1;
    assert_int_equal(sfl_zkey_derive(&k[0], SFL_ZDOM_POOL, 1, 0, seed), 0);
    assert_int_equal(sfl_zkey_derive(&k[1], SFL_ZDOM_POOL, 1, 0, seed2), 0);     /* seed */
    assert_int_equal(sfl_zkey_derive(&k[2], SFL_ZDOM_POOL, 1, 1, seed), 0);      /* tensor */
    assert_int_equal(sfl_zkey_derive(&k[3], SFL_ZDOM_POOL, 2, 0, seed), 0);      /* model id */
    assert_int_equal(sfl_zkey_derive(&k[4], SFL_ZDOM_DERIVED, 1, 0, seed), 0);   /* domain */
    assert_int_equal(sfl_zkey_derive(&k[5], SFL_ZDOM_POOL, (uint64_t)1 << 32, 0, seed), 0);
    assert_int_equal(sfl_zkey_derive(&k[6], SFL_ZDOM_POOL, 1, 1u << 16, seed), 0);
    for (int i = 0; i < M; i++) {
        z[i] = malloc(N * sizeof *z[i]);
        assert_non_null(z[i]);
        sfl_z_values(&k[i], 0, N, z[i]);
        double m = mean(z[i], N);
        assert_true(m < bound && m > -bound);
    }
    for (int i = 0; i < M; i++)
        for (int j = i + 1; j < M; j++) {
            double c = corr(z[i], z[j], N);
            assert_true(c < bound && c > -bound);
        }
    /* nor is a stream correlated with itself shifted by a block */
    double c = corr(z[0], z[0] + 512, N - 512);
    assert_true(c < bound && c > -bound);
    for (int i = 0; i < M; i++)
        free(z[i]);
}

static int cmp_key(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(sfl_zkey));
}

/* Keys never repeat across domains, including a domain that is a prefix of
 * another followed by bytes that could pass for the next field; bad domains
 * are refused everywhere. */
static void test_domains(void **state)
{
    (void)state;
    char d64[SFL_ZDOMAIN_MAX + 1], d65[SFL_ZDOMAIN_MAX + 2];
    memset(d64, 'x', SFL_ZDOMAIN_MAX);
    d64[SFL_ZDOMAIN_MAX] = 0;
    memset(d65, 'x', SFL_ZDOMAIN_MAX + 1);
    d65[SFL_ZDOMAIN_MAX + 1] = 0;
    const char *doms[] = { "a", "ab", "b", "ba", "abc", SFL_ZDOM_POOL, SFL_ZDOM_DERIVED, d64 };
    /* model ids whose first byte is 'b' or 'c': "a" + ('b', ...) against "ab" + (...) */
    const uint64_t ids[] = { 0, 'b', 'b' | (uint64_t)'c' << 8, (uint64_t)'b' << 56, ~(uint64_t)0 };
    const uint32_t tensors[] = { 0, 1, 'b' };
    enum { ND = sizeof doms / sizeof doms[0], NI = sizeof ids / sizeof ids[0], NT = 3, NS = 2 };
    static sfl_zkey keys[ND * NI * NT * NS];
    uint8_t seeds[NS][SFL_ZSEED_BYTES] = { { 0 }, { 'b' } };
    size_t nk = 0;

    for (size_t d = 0; d < ND; d++)
        for (size_t i = 0; i < NI; i++)
            for (size_t t = 0; t < NT; t++)
                for (size_t s = 0; s < NS; s++)
                    assert_int_equal(sfl_zkey_derive(&keys[nk++], doms[d], ids[i], tensors[t],
                                                     seeds[s]), 0);
    qsort(keys, nk, sizeof keys[0], cmp_key);
    for (size_t i = 1; i < nk; i++)
        assert_memory_not_equal(keys[i - 1].key, keys[i].key, 32);

    sfl_zkey k;
    sfl_zlayout l = { .model_id = 1, .ntensors = 1, .nparams = 4 };
    l.t[0].len = 4;
    sfl_zterm term = { .alpha = 1.0f };
    float th[4] = { 0 };
    const char *bad[] = { "", d65, NULL };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        assert_int_equal(sfl_zkey_derive(&k, bad[b], 1, 0, seeds[0]), SFL_EINVAL);
        assert_int_equal(sfl_z_model_axpy(&l, bad[b], seeds[0], 1.0f, th, th), SFL_EINVAL);
        assert_int_equal(sfl_z_replay(&l, bad[b], &term, 1, th), SFL_EINVAL);
        assert_int_equal(sfl_z_replay(&l, bad[b], &term, 0, th), SFL_EINVAL);
    }
    for (int i = 0; i < 4; i++)
        assert_true(th[i] == 0.0f);
}

static void test_layout_checked(void **state)
{
    (void)state;
    uint8_t seed[SFL_ZSEED_BYTES] = { 0 };
    sfl_zterm term = { .alpha = 1.0f };
    float th[16] = { 0 };
    sfl_zlayout good = { .model_id = 1, .ntensors = 2, .nparams = 16 };
    good.t[0].len = 10;
    good.t[1].off = 10;
    good.t[1].len = 6;
    assert_int_equal(sfl_z_model_axpy(&good, SFL_ZDOM_POOL, seed, 1.0f, th, th), 0);
    assert_int_equal(sfl_z_replay(&good, SFL_ZDOM_POOL, &term, 1, th), 0);

    sfl_zlayout l = good;
    l.t[1].off = 11;                            /* a gap */
    l.t[1].len = 5;
    assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, seed, 1.0f, th, th), SFL_EINVAL);
    assert_int_equal(sfl_z_replay(&l, SFL_ZDOM_POOL, &term, 1, th), SFL_EINVAL);
    l = good;
    l.t[1].off = 9;                             /* an overlap */
    l.t[1].len = 7;
    assert_int_equal(sfl_z_replay(&l, SFL_ZDOM_POOL, &term, 1, th), SFL_EINVAL);
    l = good;
    l.nparams = 17;                             /* lengths do not add up */
    assert_int_equal(sfl_z_replay(&l, SFL_ZDOM_POOL, &term, 1, th), SFL_EINVAL);
    l = good;
    l.ntensors = SFL_ZMAX_TENSORS + 1;
    assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, seed, 1.0f, th, th), SFL_EINVAL);
    l.ntensors = -1;
    assert_int_equal(sfl_z_replay(&l, SFL_ZDOM_POOL, &term, 1, th), SFL_EINVAL);
}

/* Tensors of awkward sizes (not multiples of 8 or 512, one of a single
 * coordinate, one across many replay pieces); more terms than one group,
 * alphas of every kind. */
static const size_t replay_sizes[] = { 7850, 10, 1000003, 1, 513, 8191, 8193, 0, 16389 };
#define NTERMS 21

static void replay_setup(sfl_zlayout *l, sfl_zterm *terms, float **theta)
{
    static const float alphas[] = { 1e-3f, -0.37f, 0.0f, -0.0f, 3e-8f, 1e4f, 1e-40f, -2.5e-4f };
    uint8_t root[32], pk[32] = { 9 };
    size_t off = 0;

    memset(l, 0, sizeof *l);
    l->model_id = sfl_z_model_id("mlp:784-256-10");
    l->ntensors = (int)(sizeof replay_sizes / sizeof replay_sizes[0]);
    for (int t = 0; t < l->ntensors; t++) {
        l->t[t].off = off;
        l->t[t].len = replay_sizes[t];
        off += replay_sizes[t];
    }
    l->nparams = off;
    sfl_z_root(7, root);
    for (int j = 0; j < NTERMS; j++) {
        if (j % 3 == 2)
            sfl_z_derived_seed(root, 1, pk, (uint32_t)j, terms[j].seed);
        else
            sfl_z_pool_seed(root, (uint32_t)j, terms[j].seed);
        terms[j].alpha = alphas[j % 8] * (float)(j + 1);
    }
    memcpy(terms[NTERMS - 1].seed, terms[0].seed, SFL_ZSEED_BYTES);     /* a seed twice */

    *theta = malloc(off * sizeof **theta);
    assert_non_null(*theta);
    uint32_t r = 99;
    for (size_t i = 0; i < off; i++) {
        r = r * 1664525u + 1013904223u;
        (*theta)[i] = (float)(int32_t)r * 4.6566e-10f * (i % 2 ? 0.01f : 1.0f);
    }
}

static void test_replay_equals_sequential(void **state)
{
    (void)state;
    sfl_zlayout l;
    sfl_zterm terms[NTERMS];
    float *seq, *rep, *out;

    replay_setup(&l, terms, &seq);
    rep = malloc(l.nparams * sizeof *rep);
    out = malloc(l.nparams * sizeof *out);
    assert_non_null(rep);
    assert_non_null(out);
    memcpy(rep, seq, l.nparams * sizeof *rep);

    /* every prefix length of the term list, incl. none and exactly one group */
    for (size_t nt = 0; nt <= NTERMS; nt += nt < 9 ? 1 : 4) {
        float *th = malloc(l.nparams * sizeof *th);
        assert_non_null(th);
        memcpy(th, rep, l.nparams * sizeof *th);
        assert_int_equal(sfl_z_replay(&l, SFL_ZDOM_POOL, terms, nt, th), 0);
        float *ref = malloc(l.nparams * sizeof *ref);
        assert_non_null(ref);
        memcpy(ref, rep, l.nparams * sizeof *ref);
        for (size_t j = 0; j < nt; j++) {
            /* out of place into out, then in place: the same bits */
            assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, terms[j].seed, terms[j].alpha,
                                              ref, out), 0);
            assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, terms[j].seed, terms[j].alpha,
                                              ref, ref), 0);
            assert_memory_equal(out, ref, l.nparams * sizeof *ref);
        }
        assert_memory_equal(th, ref, l.nparams * sizeof *th);
        free(ref);
        free(th);
    }

    /* and model_axpy is sfl_z_axpy on each tensor with that tensor's key */
    sfl_zkey k;
    assert_int_equal(sfl_z_model_axpy(&l, SFL_ZDOM_POOL, terms[1].seed, terms[1].alpha, seq,
                                      out), 0);
    size_t t2 = 2;
    assert_int_equal(sfl_zkey_derive(&k, SFL_ZDOM_POOL, l.model_id, (uint32_t)t2, terms[1].seed), 0);
    sfl_z_axpy(&k, 0, l.t[t2].len, terms[1].alpha, seq + l.t[t2].off, rep + l.t[t2].off);
    assert_memory_equal(rep + l.t[t2].off, out + l.t[t2].off, l.t[t2].len * sizeof *rep);

    free(out);
    free(rep);
    free(seq);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_key_and_coordinates),
        cmocka_unit_test(test_golden_digests),
        cmocka_unit_test(test_golden_seeds),
        cmocka_unit_test(test_slices_match_full_run),
        cmocka_unit_test(test_axpy_exact),
        cmocka_unit_test(test_streams_uncorrelated),
        cmocka_unit_test(test_domains),
        cmocka_unit_test(test_layout_checked),
        cmocka_unit_test(test_replay_equals_sequential),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
