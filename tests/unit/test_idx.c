/* IDX loader: good files (gzip and plain), every malformed shape, subsets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "err.h"
#include "idx.h"

#define MAX_FILES 64

static char tmpdir[64];
static char *made[MAX_FILES];
static int nmade;

/* An IDX image: magic 00 00 type ndims, big-endian dims, then datalen bytes
 * (byte i is (7i + 3) mod 256). */
static uint8_t *make_idx(uint8_t type, int ndims, const uint32_t *dims, size_t datalen,
                         size_t *len)
{
    size_t hlen = 4 + 4 * (size_t)ndims;
    uint8_t *b = malloc(hlen + datalen + 1);
    assert_non_null(b);
    b[0] = 0;
    b[1] = 0;
    b[2] = type;
    b[3] = (uint8_t)ndims;
    for (int i = 0; i < ndims; i++) {
        b[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        b[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        b[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        b[7 + 4 * i] = (uint8_t)dims[i];
    }
    for (size_t i = 0; i < datalen; i++)
        b[hlen + i] = (uint8_t)(7 * i + 3);
    *len = hlen + datalen;
    return b;
}

static uint8_t pattern(size_t i)
{
    return (uint8_t)(7 * i + 3);
}

/* Write bytes to tmpdir/name, gzip-compressed when gz; returns the path. */
static const char *write_file(const char *name, int gz, const uint8_t *bytes, size_t len)
{
    assert_true(nmade < MAX_FILES);
    char *path = malloc(strlen(tmpdir) + strlen(name) + 2);
    assert_non_null(path);
    sprintf(path, "%s/%s", tmpdir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (len)
            assert_int_equal(gzwrite(f, bytes, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(bytes, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
    }
    made[nmade++] = path;
    return path;
}

static const char *write_idx(const char *name, int gz, uint8_t type, int ndims,
                             const uint32_t *dims, size_t datalen)
{
    size_t len;
    uint8_t *b = make_idx(type, ndims, dims, datalen, &len);
    const char *p = write_file(name, gz, b, len);
    free(b);
    return p;
}

/* A load that must fail with code and a message naming the file and
 * containing what. */
static void expect_fail(const char *path, size_t max_bytes, int code, const char *what)
{
    char err[512];
    sfl_idx x;
    memset(&x, 0xAB, sizeof x);
    int rc = sfl_idx_load(path, max_bytes, &x, err, sizeof err);
    if (rc != code || !strstr(err, path) || !strstr(err, what))
        print_error("rc %d (want %d), message '%s' (want '%s' and '%s')\n", rc, code, err, what,
                    path);
    assert_int_equal(rc, code);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, what));
    assert_null(x.data);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/sfl-idx-XXXXXX",
             base && strlen(base) < 40 ? base : "/tmp");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < nmade; i++) {
        unlink(made[i]);
        free(made[i]);
    }
    return rmdir(tmpdir);
}

static void test_good_3d_gzip(void **state)
{
    (void)state;
    const uint32_t dims[] = { 5, 3, 4 };
    const char *p = write_idx("good3.gz", 1, 0x08, 3, dims, 60);
    char err[256];
    sfl_idx x;
    assert_int_equal(sfl_idx_load(p, 1000, &x, err, sizeof err), 0);
    assert_int_equal(x.n, 5);
    assert_int_equal(x.ndims, 3);
    assert_int_equal(x.dims[0], 3);
    assert_int_equal(x.dims[1], 4);
    assert_int_equal(x.dims[2], 1);
    assert_int_equal(x.item_size, 12);
    for (size_t i = 0; i < 60; i++)
        assert_int_equal(x.data[i], pattern(i));
    sfl_idx_free(&x);
    assert_null(x.data);
    sfl_idx_free(&x);   /* twice is harmless */

    /* exactly at the cap is fine */
    assert_int_equal(sfl_idx_load(p, 60, &x, err, sizeof err), 0);
    sfl_idx_free(&x);
}

static void test_good_plain_1d_and_4d(void **state)
{
    (void)state;
    const uint32_t d1[] = { 7 }, d4[] = { 2, 2, 3, 2 };
    sfl_idx x;
    char err[256];

    assert_int_equal(sfl_idx_load(write_idx("good1", 0, 0x08, 1, d1, 7), 100, &x, err,
                                  sizeof err), 0);
    assert_int_equal(x.n, 7);
    assert_int_equal(x.ndims, 1);
    assert_int_equal(x.item_size, 1);
    assert_int_equal(x.dims[0], 1);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(x.data[i], pattern(i));
    sfl_idx_free(&x);

    /* no error buffer at all is allowed too */
    assert_int_equal(sfl_idx_load(write_idx("good4", 0, 0x08, 4, d4, 24), 100, &x, NULL, 0), 0);
    assert_int_equal(x.n, 2);
    assert_int_equal(x.ndims, 4);
    assert_int_equal(x.item_size, 12);
    assert_int_equal(x.dims[2], 2);
    sfl_idx_free(&x);
}

static void test_bad_magic(void **state)
{
    (void)state;
    const uint32_t dims[] = { 2, 2 };
    size_t len;
    uint8_t *b = make_idx(0x08, 2, dims, 4, &len);
    b[1] = 0x01;
    expect_fail(write_file("badmagic.gz", 1, b, len), 1000, SFL_EFORMAT, "magic");
    free(b);
    /* not IDX at all, and a file shorter than the magic */
    expect_fail(write_file("text", 0, (const uint8_t *)"hello world\n", 12), 1000, SFL_EFORMAT,
                "magic");
    expect_fail(write_file("short", 0, (const uint8_t *)"\0\0", 2), 1000, SFL_EFORMAT,
                "truncated header");
    expect_fail(write_file("empty.gz", 1, (const uint8_t *)"", 0), 1000, SFL_EFORMAT,
                "truncated header");
}

static void test_wrong_type(void **state)
{
    (void)state;
    const uint32_t dims[] = { 2, 2 };
    expect_fail(write_idx("float.gz", 1, 0x0D, 2, dims, 16), 1000, SFL_EFORMAT, "type 0x0d");
    expect_fail(write_idx("sbyte.gz", 1, 0x09, 2, dims, 4), 1000, SFL_EFORMAT, "type 0x09");
}

static void test_bad_ndims(void **state)
{
    (void)state;
    const uint32_t dims[] = { 1, 1, 1, 1, 1 };
    expect_fail(write_idx("nd0.gz", 1, 0x08, 0, dims, 1), 1000, SFL_EFORMAT, "0 dimensions");
    expect_fail(write_idx("nd5.gz", 1, 0x08, 5, dims, 1), 1000, SFL_EFORMAT, "5 dimensions");
    /* ndims promises 3 dimensions, the file ends after 2 */
    const uint32_t d2[] = { 3, 3 };
    size_t len;
    uint8_t *b = make_idx(0x08, 2, d2, 0, &len);
    b[3] = 3;
    expect_fail(write_file("ndshort.gz", 1, b, len), 1000, SFL_EFORMAT, "truncated header");
    free(b);
}

static void test_zero_dim(void **state)
{
    (void)state;
    const uint32_t d0[] = { 0, 28, 28 }, d2[] = { 10, 28, 0 };
    expect_fail(write_idx("zero0.gz", 1, 0x08, 3, d0, 0), 1000, SFL_EFORMAT, "dimension 0 is 0");
    expect_fail(write_idx("zero2.gz", 1, 0x08, 3, d2, 0), 1000, SFL_EFORMAT, "dimension 2 is 0");
}

static void test_truncated(void **state)
{
    (void)state;
    const uint32_t dims[] = { 5, 3, 4 };
    expect_fail(write_idx("trunc.gz", 1, 0x08, 3, dims, 50), 1000, SFL_EFORMAT,
                "truncated: expected 60 bytes of data, got 50");
    expect_fail(write_idx("trunc", 0, 0x08, 3, dims, 0), 1000, SFL_EFORMAT,
                "truncated: expected 60 bytes of data, got 0");
}

static void test_trailing(void **state)
{
    (void)state;
    const uint32_t dims[] = { 5, 3, 4 };
    expect_fail(write_idx("trail.gz", 1, 0x08, 3, dims, 61), 1000, SFL_EFORMAT, "trailing data");
    expect_fail(write_idx("trail", 0, 0x08, 3, dims, 4096), 1000, SFL_EFORMAT, "trailing data");
}

static void test_oversize(void **state)
{
    (void)state;
    const uint32_t dims[] = { 5, 3, 4 };
    const char *p = write_idx("big.gz", 1, 0x08, 3, dims, 60);
    expect_fail(p, 59, SFL_ETOOBIG, "exceeds the limit");
    expect_fail(p, 0, SFL_ETOOBIG, "5x3x4");
    /* 2^128 bytes: the check must not overflow whatever the cap */
    const uint32_t huge[] = { 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu };
    expect_fail(write_idx("huge.gz", 1, 0x08, 4, huge, 0), SIZE_MAX, SFL_ETOOBIG,
                "exceeds the limit");
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    const uint32_t dims[] = { 100, 100 };
    const char *p = write_idx("corrupt.gz", 1, 0x08, 2, dims, 10000);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    uint8_t buf[20000];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(len > 40);

    char err[512];
    sfl_idx x;
    /* a cut-off gzip stream, before and just after the last data byte */
    const char *cut = write_file("cut.gz", 0, buf, len / 2);
    assert_int_equal(sfl_idx_load(cut, 1 << 20, &x, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, cut));
    const char *cut8 = write_file("cut8.gz", 0, buf, len - 8);   /* no CRC/length trailer */
    assert_int_equal(sfl_idx_load(cut8, 1 << 20, &x, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, cut8));

    /* a damaged CRC */
    buf[len - 6] ^= 0xFF;
    const char *bad = write_file("badcrc.gz", 0, buf, len);
    assert_int_equal(sfl_idx_load(bad, 1 << 20, &x, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, bad));
    assert_null(x.data);
}

static void test_missing_file(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof path, "%s/does-not-exist.gz", tmpdir);
    expect_fail(path, 1000, SFL_EIO, "cannot open");
    expect_fail(tmpdir, 1000, SFL_EIO, tmpdir);   /* a directory */
}

static void test_subset(void **state)
{
    (void)state;
    const uint32_t dims[] = { 6, 2, 3 };
    const char *p = write_idx("sub.gz", 1, 0x08, 3, dims, 36);
    const uint32_t want[] = { 0, 2, 5 };
    char err[256];
    sfl_idx x;

    assert_int_equal(sfl_idx_load_subset(p, want, 3, 1000, &x, err, sizeof err), 0);
    assert_int_equal(x.n, 3);
    assert_int_equal(x.item_size, 6);
    assert_int_equal(x.ndims, 3);
    for (size_t k = 0; k < 3; k++)
        for (size_t j = 0; j < 6; j++)
            assert_int_equal(x.data[k * 6 + j], pattern(want[k] * 6 + j));
    sfl_idx_free(&x);

    /* every item, a single last item, and nothing at all */
    const uint32_t all[] = { 0, 1, 2, 3, 4, 5 }, last[] = { 5 };
    assert_int_equal(sfl_idx_load_subset(p, all, 6, 1000, &x, err, sizeof err), 0);
    for (size_t i = 0; i < 36; i++)
        assert_int_equal(x.data[i], pattern(i));
    sfl_idx_free(&x);
    assert_int_equal(sfl_idx_load_subset(p, last, 1, 1000, &x, err, sizeof err), 0);
    assert_int_equal(x.data[0], pattern(30));
    sfl_idx_free(&x);
    assert_int_equal(sfl_idx_load_subset(p, NULL, 0, 1000, &x, err, sizeof err), 0);
    assert_int_equal(x.n, 0);
    sfl_idx_free(&x);
}

static void test_subset_errors(void **state)
{
    (void)state;
    const uint32_t dims[] = { 6, 2, 3 };
    const char *p = write_idx("sube.gz", 1, 0x08, 3, dims, 36);
    const uint32_t out_of_range[] = { 1, 6 }, unsorted[] = { 3, 1 }, dup[] = { 2, 2 };
    char err[256];
    sfl_idx x;

    assert_int_equal(sfl_idx_load_subset(p, out_of_range, 2, 1000, &x, err, sizeof err),
                     SFL_ERANGE);
    assert_non_null(strstr(err, p));
    assert_non_null(strstr(err, "index 6"));
    assert_null(x.data);
    assert_int_equal(sfl_idx_load_subset(p, unsorted, 2, 1000, &x, err, sizeof err),
                     SFL_EINVAL);
    assert_non_null(strstr(err, p));
    assert_int_equal(sfl_idx_load_subset(p, dup, 2, 1000, &x, err, sizeof err), SFL_EINVAL);

    /* the rest of the file is still checked */
    const uint32_t first[] = { 0 };
    const char *t = write_idx("subtrunc.gz", 1, 0x08, 3, dims, 35);
    assert_int_equal(sfl_idx_load_subset(t, first, 1, 1000, &x, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, "truncated: expected 36 bytes of data, got 35"));
    const char *tr = write_idx("subtrail.gz", 1, 0x08, 3, dims, 37);
    assert_int_equal(sfl_idx_load_subset(tr, first, 1, 1000, &x, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, "trailing data"));
    assert_int_equal(sfl_idx_load_subset(p, first, 1, 35, &x, err, sizeof err), SFL_ETOOBIG);
}

static void test_probe(void **state)
{
    (void)state;
    const uint32_t dims[] = { 9, 4 };
    const char *p = write_idx("probe.gz", 1, 0x08, 2, dims, 3);   /* data not checked */
    char err[256];
    sfl_idx x;
    assert_int_equal(sfl_idx_probe(p, 1000, &x, err, sizeof err), 0);
    assert_int_equal(x.n, 9);
    assert_int_equal(x.item_size, 4);
    assert_int_equal(x.ndims, 2);
    assert_null(x.data);
    assert_int_equal(sfl_idx_probe(p, 35, &x, err, sizeof err), SFL_ETOOBIG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_3d_gzip),
        cmocka_unit_test(test_good_plain_1d_and_4d),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_wrong_type),
        cmocka_unit_test(test_bad_ndims),
        cmocka_unit_test(test_zero_dim),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_trailing),
        cmocka_unit_test(test_oversize),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_subset),
        cmocka_unit_test(test_subset_errors),
        cmocka_unit_test(test_probe),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
