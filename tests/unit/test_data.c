/* IID partitions and the Fashion-MNIST loader. argv[1]: the data directory
 * (default /usr/share/datasets/fashion-mnist). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>
#include <zlib.h>

#include "data.h"
#include "err.h"

static const char *datadir = "/usr/share/datasets/fashion-mnist";
static char tmpdir[64];

static void test_partition_deterministic(void **state)
{
    (void)state;
    uint32_t *a, *b, *c;
    size_t na, nb, nc;
    assert_int_equal(sfl_partition_iid(11, 1000, 3, 8, &a, &na), 0);
    assert_int_equal(sfl_partition_iid(11, 1000, 3, 8, &b, &nb), 0);
    assert_int_equal(sfl_partition_iid(12, 1000, 3, 8, &c, &nc), 0);
    assert_int_equal(na, 125);
    assert_int_equal(nb, na);
    assert_int_equal(nc, na);
    assert_memory_equal(a, b, na * sizeof *a);
    assert_memory_not_equal(a, c, na * sizeof *a);
    free(a);
    free(b);
    free(c);
}

/* Every index in exactly one shard, each shard strictly ascending, sizes
 * within 1 of each other. */
static void check_cover(uint64_t seed, size_t n, uint32_t of)
{
    unsigned char *seen = calloc(n ? n : 1, 1);
    size_t total = 0, lo = SIZE_MAX, hi = 0;
    assert_non_null(seen);
    for (uint32_t s = 0; s < of; s++) {
        uint32_t *idx;
        size_t cnt;
        assert_int_equal(sfl_partition_iid(seed, n, s, of, &idx, &cnt), 0);
        assert_non_null(idx);
        for (size_t i = 0; i < cnt; i++) {
            assert_true(idx[i] < n);
            assert_false(seen[idx[i]]);
            seen[idx[i]] = 1;
            if (i)
                assert_true(idx[i] > idx[i - 1]);
        }
        total += cnt;
        lo = cnt < lo ? cnt : lo;
        hi = cnt > hi ? cnt : hi;
        free(idx);
    }
    assert_int_equal(total, n);
    assert_true(hi - lo <= 1);
    free(seen);
}

static void test_partition_covers(void **state)
{
    (void)state;
    check_cover(1, 1003, 7);
    check_cover(2, 60000, 8);
    check_cover(3, 10, 1);
    check_cover(4, 3, 5);   /* more shards than examples: some empty */
    check_cover(5, 0, 2);
}

/* Shards are a random split, not stripes or blocks of the original order. */
static void test_partition_mixes(void **state)
{
    (void)state;
    uint32_t *idx;
    size_t cnt, low = 0;
    assert_int_equal(sfl_partition_iid(7, 10000, 0, 4, &idx, &cnt), 0);
    assert_int_equal(cnt, 2500);
    for (size_t i = 0; i < cnt; i++)
        low += idx[i] < 5000;
    assert_true(low > 1150 && low < 1350);
    free(idx);
}

static void test_partition_bad_args(void **state)
{
    (void)state;
    uint32_t *idx = (uint32_t *)&idx;
    size_t cnt = 99;
    assert_int_equal(sfl_partition_iid(1, 100, 0, 0, &idx, &cnt), SFL_EINVAL);
    assert_null(idx);
    assert_int_equal(cnt, 0);
    assert_int_equal(sfl_partition_iid(1, 100, 8, 8, &idx, &cnt), SFL_EINVAL);
    assert_int_equal(sfl_partition_iid(1, 100, UINT32_MAX, 3, &idx, &cnt), SFL_EINVAL);
    assert_null(idx);
    if (sizeof(size_t) > 4)
        assert_int_equal(sfl_partition_iid(1, (size_t)UINT32_MAX + 1, 0, 2, &idx, &cnt),
                         SFL_ERANGE);
}

/* Facts about the Fashion-MNIST test split, checked against the raw files
 * with an independent reader (Python's gzip module): the first labels are
 * 9 2 1 1 6, each class has 1000 examples, image 0's pixels sum to 33456
 * with a maximum of 255, and image 9999's to 24390. */
static void test_load_fashion_test_split(void **state)
{
    (void)state;
    char err[512];
    sfl_dataset d;
    size_t n;

    assert_int_equal(sfl_data_count(datadir, "t10k", &n, err, sizeof err), 0);
    assert_int_equal(n, 10000);
    int rc = sfl_data_load(datadir, "t10k", NULL, 0, &d, err, sizeof err);
    if (rc)
        print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(d.n, 10000);
    assert_int_equal(d.dim, 784);
    assert_int_equal(d.classes, 10);

    const uint8_t first[] = { 9, 2, 1, 1, 6 };
    assert_memory_equal(d.y, first, sizeof first);
    size_t per_class[10] = { 0 };
    for (size_t i = 0; i < d.n; i++) {
        assert_true(d.y[i] < 10);
        per_class[d.y[i]]++;
    }
    for (int c = 0; c < 10; c++)
        assert_int_equal(per_class[c], 1000);

    double s0 = 0, slast = 0;
    float mx = 0;
    float row[784];
    const uint32_t last = 9999;
    sfl_dataset_gather(&d, NULL, 1, row, NULL);
    for (size_t j = 0; j < 784; j++) {
        float v = row[j];
        assert_true(v >= 0.0f && v <= 1.0f);
        assert_true(v == (float)d.px[j] / 255.0f);
        s0 += v * 255.0f;
        mx = v > mx ? v : mx;
    }
    uint8_t ylast;
    sfl_dataset_gather(&d, &last, 1, row, &ylast);
    assert_int_equal(ylast, d.y[9999]);
    for (size_t j = 0; j < 784; j++)
        slast += row[j] * 255.0f;
    assert_true(s0 > 33455.5 && s0 < 33456.5);
    assert_true(slast > 24389.5 && slast < 24390.5);
    assert_true(mx == 1.0f);
    assert_true(d.px[0] == 0);
    assert_int_equal(d.px[9999 * 784 + 400], (uint8_t)(row[400] * 255.0f + 0.5f));

    /* a shard loads exactly the same rows as the full load */
    uint32_t *idx;
    size_t cnt;
    sfl_dataset s;
    assert_int_equal(sfl_partition_iid(42, d.n, 2, 8, &idx, &cnt), 0);
    assert_int_equal(sfl_data_load(datadir, "t10k", idx, cnt, &s, err, sizeof err), 0);
    assert_int_equal(s.n, 1250);
    assert_int_equal(s.dim, 784);
    for (size_t i = 0; i < cnt; i++) {
        assert_int_equal(s.y[i], d.y[idx[i]]);
        assert_memory_equal(s.px + i * 784, d.px + (size_t)idx[i] * 784, 784);
    }
    /* and gathers the same features: the shard's rows 0..cnt-1 = d's rows idx */
    float *xs = malloc(cnt * 784 * sizeof *xs), *xd = malloc(cnt * 784 * sizeof *xd);
    uint8_t *yd = malloc(cnt);
    assert_non_null(xs);
    assert_non_null(xd);
    assert_non_null(yd);
    sfl_dataset_gather(&s, NULL, cnt, xs, NULL);
    sfl_dataset_gather(&d, idx, cnt, xd, yd);
    assert_memory_equal(xs, xd, cnt * 784 * sizeof *xs);
    assert_memory_equal(yd, s.y, cnt);
    free(xs);
    free(xd);
    free(yd);
    free(idx);
    sfl_dataset_free(&s);
    sfl_dataset_free(&d);
    sfl_dataset_free(&d);   /* twice is harmless */
}

static void test_count_train(void **state)
{
    (void)state;
    char err[512];
    size_t n;
    assert_int_equal(sfl_data_count(datadir, "train", &n, err, sizeof err), 0);
    assert_int_equal(n, 60000);

    /* the first 100 training examples: first label 9, like the test split */
    uint32_t idx[100];
    sfl_dataset d;
    for (uint32_t i = 0; i < 100; i++)
        idx[i] = i;
    assert_int_equal(sfl_data_load(datadir, "train", idx, 100, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 100);
    assert_int_equal(d.y[0], 9);
    sfl_dataset_free(&d);
}

/* sfl_dataset_gather: exact px / 255.0f for every byte value, rows picked
 * by index (repeats and any order allowed) or 0..n-1, labels optional. */
static void test_gather(void **state)
{
    (void)state;
    enum { N = 5, DIM = 67 };   /* DIM not a multiple of 8: the tail path */
    uint8_t px[N * DIM], y[N] = { 3, 1, 4, 1, 5 };
    for (size_t i = 0; i < sizeof px; i++)
        px[i] = (uint8_t)(i * 7 + 3);   /* 335 bytes: every value 0..255 appears */
    sfl_dataset d = { .px = px, .y = y, .n = N, .dim = DIM, .classes = 10 };

    float x[N * DIM];
    uint8_t yo[N];
    memset(yo, 0xee, sizeof yo);
    sfl_dataset_gather(&d, NULL, N, x, yo);
    for (size_t i = 0; i < N * DIM; i++)
        assert_true(x[i] == (float)px[i] / 255.0f);
    assert_memory_equal(yo, y, N);
    /* a few exact values */
    px[0] = 0;
    px[1] = 255;
    px[2] = 51;
    sfl_dataset_gather(&d, NULL, 1, x, NULL);
    assert_true(x[0] == 0.0f);
    assert_true(x[1] == 1.0f);
    assert_true(x[2] == 0.2f);

    /* by index, out of order and repeated; y NULL leaves labels alone */
    const uint32_t pick[] = { 4, 0, 2, 4 };
    float xp[4 * DIM];
    for (size_t i = 0; i < 4 * DIM; i++)
        xp[i] = -1.0f;
    sfl_dataset_gather(&d, pick, 4, xp, NULL);
    for (size_t r = 0; r < 4; r++)
        for (size_t j = 0; j < DIM; j++)
            assert_true(xp[r * DIM + j] == (float)px[pick[r] * DIM + j] / 255.0f);
    memset(yo, 0xee, sizeof yo);
    sfl_dataset_gather(&d, pick, 4, xp, yo);
    const uint8_t want[] = { 5, 3, 4, 5 };
    assert_memory_equal(yo, want, 4);
    assert_int_equal(yo[4], 0xee);   /* nothing past n */

    /* n = 0 writes nothing */
    xp[0] = -1.0f;
    sfl_dataset_gather(&d, pick, 0, xp, yo);
    assert_true(xp[0] == -1.0f);
}

static void write_gz(const char *name, const uint8_t *b, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, b, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

static void test_load_errors(void **state)
{
    (void)state;
    /* 3 images of 2x2; labels: "bad" has a 12, "long" has 4 items */
    const uint8_t img[] = { 0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                            0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255 };
    const uint8_t bad[] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 12, 2 };
    const uint8_t good[] = { 0, 0, 8, 1, 0, 0, 0, 3, 1, 9, 2 };
    const uint8_t lng[] = { 0, 0, 8, 1, 0, 0, 0, 4, 1, 2, 3, 4 };
    char err[512];
    sfl_dataset d;
    size_t n;

    write_gz("ok-images-idx3-ubyte.gz", img, sizeof img);
    write_gz("ok-labels-idx1-ubyte.gz", good, sizeof good);
    write_gz("bad-images-idx3-ubyte.gz", img, sizeof img);
    write_gz("bad-labels-idx1-ubyte.gz", bad, sizeof bad);
    write_gz("long-images-idx3-ubyte.gz", img, sizeof img);
    write_gz("long-labels-idx1-ubyte.gz", lng, sizeof lng);

    assert_int_equal(sfl_data_load(tmpdir, "ok", NULL, 0, &d, err, sizeof err), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.dim, 4);
    assert_int_equal(d.px[11], 255);
    assert_int_equal(d.px[1], 1);
    float x[3 * 4];
    sfl_dataset_gather(&d, NULL, 3, x, NULL);
    assert_true(x[11] == 1.0f);
    assert_true(x[1] == 1.0f / 255.0f);
    sfl_dataset_free(&d);

    assert_int_equal(sfl_data_load(tmpdir, "bad", NULL, 0, &d, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, "bad-labels-idx1-ubyte.gz"));
    assert_non_null(strstr(err, "label 12"));
    assert_null(d.px);
    /* the bad label is outside this subset */
    const uint32_t other[] = { 0, 2 };
    assert_int_equal(sfl_data_load(tmpdir, "bad", other, 2, &d, err, sizeof err), 0);
    assert_int_equal(d.y[1], 2);
    sfl_dataset_free(&d);

    assert_int_equal(sfl_data_load(tmpdir, "long", NULL, 0, &d, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, "disagree"));

    const uint32_t beyond[] = { 3 };
    assert_int_equal(sfl_data_load(tmpdir, "ok", beyond, 1, &d, err, sizeof err), SFL_ERANGE);

    assert_int_equal(sfl_data_load(tmpdir, "none", NULL, 0, &d, err, sizeof err), SFL_EIO);
    assert_non_null(strstr(err, "none-labels-idx1-ubyte.gz"));
    assert_int_equal(sfl_data_count(tmpdir, "none", &n, err, sizeof err), SFL_EIO);
    assert_int_equal(sfl_data_load(tmpdir, "../x", NULL, 0, &d, err, sizeof err), SFL_EINVAL);
    assert_int_equal(sfl_data_load(tmpdir, "", NULL, 0, &d, err, sizeof err), SFL_EINVAL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sfl-data-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = { "ok", "bad", "long" }, *kinds[] = { "images-idx3", "labels-idx1" };
    char path[128];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 2; k++) {
            snprintf(path, sizeof path, "%s/%s-%s-ubyte.gz", tmpdir, names[i], kinds[k]);
            unlink(path);
        }
    return rmdir(tmpdir);
}

/* Labels 0..9 in turn, n of them. */
static uint8_t *cyc_labels(size_t n)
{
    uint8_t *l = malloc(n);
    for (size_t i = 0; i < n; i++)
        l[i] = (uint8_t)(i % 10);
    return l;
}

/* Dirichlet label skew: the shards cover every example exactly once, the
 * same seed gives the same shards, a small alpha skews the classes, a huge
 * one hardly does, and no client is left without data. */
static void test_dirichlet_partition(void **state)
{
    (void)state;
    enum { N = 6000, OF = 8 };
    uint8_t *lab = cyc_labels(N);
    const double alphas[] = { 0.1, 1000.0 };
    double top_share[2];
    for (int a = 0; a < 2; a++) {
        uint8_t *seen = calloc(N, 1);
        double share = 0;
        for (uint32_t k = 0; k < OF; k++) {
            uint32_t *idx = NULL, *again = NULL;
            size_t cnt = 0, cnt2 = 0;
            int att = 0;
            assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, alphas[a], k, OF, &idx, &cnt,
                                                     &att), 0);
            assert_true(cnt >= 1);
            assert_true(att >= 1);
            assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, alphas[a], k, OF, &again,
                                                     &cnt2, NULL), 0);
            assert_int_equal(cnt, cnt2);
            assert_memory_equal(idx, again, cnt * sizeof *idx);
            size_t per[10] = { 0 }, top = 0;
            for (size_t i = 0; i < cnt; i++) {
                assert_true(idx[i] < N);
                if (i)
                    assert_true(idx[i] > idx[i - 1]);
                assert_int_equal(seen[idx[i]], 0);
                seen[idx[i]] = 1;
                per[lab[idx[i]]]++;
            }
            for (int c = 0; c < 10; c++)
                top = per[c] > top ? per[c] : top;
            share += (double)top / (double)cnt / OF;
            free(idx);
            free(again);
        }
        for (size_t i = 0; i < N; i++)
            assert_int_equal(seen[i], 1);
        top_share[a] = share;
        free(seen);
    }
    /* the largest class holds most of a shard under alpha 0.1, about a
     * tenth under alpha 1000 */
    assert_true(top_share[0] > 0.5);
    assert_true(top_share[1] < 0.13);

    /* another seed, other shards */
    uint32_t *x = NULL, *y = NULL;
    size_t nx = 0, ny = 0;
    assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, 0.5, 0, OF, &x, &nx, NULL), 0);
    assert_int_equal(sfl_partition_dirichlet(6, lab, N, 10, 0.5, 0, OF, &y, &ny, NULL), 0);
    assert_true(nx != ny || memcmp(x, y, nx * sizeof *x) != 0);
    free(x);
    free(y);

    /* fewer examples than clients: nobody can be served */
    assert_int_equal(sfl_partition_dirichlet(5, lab, 3, 10, 1.0, 0, 5, &x, &nx, NULL), SFL_ERANGE);
    assert_null(x);
    /* bad arguments */
    assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, 0.0, 0, 4, &x, &nx, NULL), SFL_EINVAL);
    assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, 1.0, 4, 4, &x, &nx, NULL), SFL_EINVAL);
    assert_int_equal(sfl_partition_dirichlet(5, lab, N, 10, 1.0, 0, 0, &x, &nx, NULL), SFL_EINVAL);
    free(lab);
}

/* Few examples and a strong skew: a client left empty forces a redraw. */
static void test_dirichlet_redraw(void **state)
{
    (void)state;
    uint8_t *lab = cyc_labels(40);
    int most = 0;
    for (uint64_t seed = 0; seed < 20; seed++) {
        for (uint32_t k = 0; k < 10; k++) {
            uint32_t *idx = NULL;
            size_t cnt = 0;
            int att = 0;
            int rc = sfl_partition_dirichlet(seed, lab, 40, 10, 0.05, k, 10, &idx, &cnt, &att);
            if (rc == 0) {
                assert_true(cnt >= 1);
                most = att > most ? att : most;
            } else {
                assert_int_equal(rc, SFL_ERANGE);
            }
            free(idx);
        }
    }
    assert_true(most > 1); /* the redraw path ran */
    free(lab);
}

static void test_labels(void **state)
{
    (void)state;
    uint8_t *l = NULL;
    size_t n = 0;
    char err[256];
    assert_int_equal(sfl_data_labels(datadir, "train", 1234, &l, &n, err, sizeof err), 0);
    assert_int_equal(n, 1234);
    sfl_dataset d;
    uint32_t idx[3] = { 0, 500, 1233 };
    assert_int_equal(sfl_data_load(datadir, "train", idx, 3, &d, err, sizeof err), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(l[idx[i]], d.y[i]);
    sfl_dataset_free(&d);
    free(l);
    assert_int_equal(sfl_data_labels(datadir, "nope", 0, &l, &n, err, sizeof err), SFL_EIO);
    assert_null(l);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc > 1)
        datadir = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition_deterministic),
        cmocka_unit_test(test_partition_covers),
        cmocka_unit_test(test_partition_mixes),
        cmocka_unit_test(test_partition_bad_args),
        cmocka_unit_test(test_dirichlet_partition),
        cmocka_unit_test(test_dirichlet_redraw),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_load_fashion_test_split),
        cmocka_unit_test(test_count_train),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
