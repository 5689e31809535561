/* Key files and allow-lists, in a private mkdtemp folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "keys.h"

static char dir[256];

static const char *in_dir(const char *name)
{
    static char bufs[4][512];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/sfl_keys_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir))
        return -1;
    umask(022);
    return 0;
}

static const char *made[] = {"k", "k.pub", "bad", "perm", "list", "badlist", "ws", "twice",
                             "twice.pub", "other", "other.pub", "k2.pub", "long", "empty"};

static int group_teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof made / sizeof made[0]; i++)
        unlink(in_dir(made[i]));
    return rmdir(dir) == 0 ? 0 : -1;
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32], pub2[32], derived[32];
    char err[256] = "";
    struct stat st;

    assert_int_equal(sfl_keys_generate(in_dir("k"), pub, err, sizeof err), 0);
    assert_int_equal(stat(in_dir("k"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(in_dir("k.pub"), &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);

    assert_int_equal(sfl_keys_load_secret(in_dir("k"), priv, err, sizeof err), 0);
    assert_int_equal(crypto_scalarmult_base(derived, priv), 0);
    assert_memory_equal(derived, pub, 32);
    assert_int_equal(sfl_keys_load_public(in_dir("k.pub"), pub2, err, sizeof err), 0);
    assert_memory_equal(pub2, pub, 32);

    /* one line of 44 base64 characters and a newline */
    char text[64] = "";
    FILE *f = fopen(in_dir("k.pub"), "r");
    assert_non_null(f);
    assert_non_null(fgets(text, sizeof text, f));
    fclose(f);
    assert_int_equal(strlen(text), 45);
    char enc[45];
    sfl_keys_encode(pub, enc);
    assert_memory_equal(text, enc, 44);
    sodium_memzero(priv, sizeof priv);
}

static void test_refuse_overwrite(void **state)
{
    (void)state;
    uint8_t pub[32], pub2[32], again[32];
    char err[256] = "";

    assert_int_equal(sfl_keys_generate(in_dir("twice"), pub, err, sizeof err), 0);
    assert_int_not_equal(sfl_keys_generate(in_dir("twice"), pub2, err, sizeof err), 0);
    assert_non_null(strstr(err, in_dir("twice")));
    assert_non_null(strstr(err, "already exists"));
    /* the original is intact */
    assert_int_equal(sfl_keys_load_public(in_dir("twice.pub"), again, err, sizeof err), 0);
    assert_memory_equal(again, pub, 32);

    /* an existing PATH.pub alone also refuses, and leaves no secret behind */
    write_file(in_dir("other.pub"), "keep me\n", 0644);
    err[0] = '\0';
    assert_int_not_equal(sfl_keys_generate(in_dir("other"), pub2, err, sizeof err), 0);
    assert_non_null(strstr(err, "other.pub: already exists"));
    assert_int_not_equal(access(in_dir("other"), F_OK), 0);
}

static void test_permissions(void **state)
{
    (void)state;
    uint8_t pub[32], priv[32];
    char err[256] = "", enc[45], text[64];

    randombytes_buf(priv, 32);
    sfl_keys_encode(priv, enc);
    snprintf(text, sizeof text, "%s\n", enc);
    write_file(in_dir("perm"), text, 0644);
    assert_int_equal(sfl_keys_load_secret(in_dir("perm"), pub, err, sizeof err), SFL_EPERM);
    assert_non_null(strstr(err, in_dir("perm")));
    assert_non_null(strstr(err, "readable by group or others (chmod 600)"));

    const mode_t bad[] = {0640, 0604, 0620, 0602, 0660, 0666};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(chmod(in_dir("perm"), bad[i]), 0);
        assert_int_equal(sfl_keys_load_secret(in_dir("perm"), pub, err, sizeof err), SFL_EPERM);
    }
    assert_int_equal(chmod(in_dir("perm"), 0400), 0);
    assert_int_equal(sfl_keys_load_secret(in_dir("perm"), pub, err, sizeof err), 0);
    assert_memory_equal(pub, priv, 32);
    /* public keys may be world-readable */
    assert_int_equal(chmod(in_dir("perm"), 0644), 0);
    assert_int_equal(sfl_keys_load_public(in_dir("perm"), pub, err, sizeof err), 0);

    /* a missing file names the path and the reason */
    assert_int_equal(sfl_keys_load_secret(in_dir("missing"), pub, err, sizeof err), SFL_EIO);
    assert_non_null(strstr(err, in_dir("missing")));
    assert_non_null(strstr(err, "No such file"));
    /* a directory is not a key file */
    assert_int_equal(sfl_keys_load_public(dir, pub, err, sizeof err), SFL_EIO);
    /* errbuf is optional */
    assert_int_equal(sfl_keys_load_secret(in_dir("missing"), pub, NULL, 0), SFL_EIO);
}

static void test_malformed(void **state)
{
    (void)state;
    uint8_t key[32], k2[32];
    char err[256] = "", enc[45], text[256];
    randombytes_buf(key, 32);
    sfl_keys_encode(key, enc);

    /* near misses built from real encodings */
    uint8_t zero[33] = {0}, ones[32];
    char b31[64], b33[64], nopad[64], stray[64], urlsafe[64];
    sodium_bin2base64(b31, sizeof b31, zero, 31, sodium_base64_VARIANT_ORIGINAL);
    sodium_bin2base64(b33, sizeof b33, zero, 33, sodium_base64_VARIANT_ORIGINAL);
    assert_int_equal(strlen(b33), 44);
    sodium_bin2base64(stray, sizeof stray, zero, 32, sodium_base64_VARIANT_ORIGINAL);
    memcpy(nopad, stray, 43);
    nopad[43] = '\0';
    assert_int_equal(stray[42], 'A');
    stray[42] = 'B'; /* sets one of the two unused low bits */
    memset(ones, 0xff, sizeof ones);
    sodium_bin2base64(urlsafe, sizeof urlsafe, ones, 32, sodium_base64_VARIANT_URLSAFE);
    assert_non_null(strchr(urlsafe, '_'));

    const char *bad[] = {"", "\n", "hello\n", b31, b33, nopad, stray, urlsafe, "#comment\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(in_dir("bad"), bad[i], 0600);
        err[0] = '\0';
        assert_int_equal(sfl_keys_load_secret(in_dir("bad"), k2, err, sizeof err), SFL_EFORMAT);
        assert_non_null(strstr(err, in_dir("bad")));
        assert_non_null(strstr(err, "not a base64 X25519 key"));
        assert_int_equal(sfl_keys_decode(bad[i], strlen(bad[i]), k2), SFL_EFORMAT);
    }
    /* the unmodified all-zero key decodes */
    stray[42] = 'A';
    assert_int_equal(sfl_keys_decode(stray, strlen(stray), k2), 0);
    assert_true(sodium_is_zero(k2, 32));
    /* two keys in one file */
    snprintf(text, sizeof text, "%s\n%s\n", enc, enc);
    write_file(in_dir("bad"), text, 0600);
    assert_int_equal(sfl_keys_load_secret(in_dir("bad"), k2, err, sizeof err), SFL_EFORMAT);
    /* a big file */
    char big[2048];
    memset(big, 'A', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file(in_dir("long"), big, 0600);
    assert_int_equal(sfl_keys_load_secret(in_dir("long"), k2, err, sizeof err), SFL_EFORMAT);

    /* surrounding whitespace and no trailing newline are fine */
    snprintf(text, sizeof text, "  \t%s  \r\n\n", enc);
    write_file(in_dir("ws"), text, 0600);
    assert_int_equal(sfl_keys_load_secret(in_dir("ws"), k2, err, sizeof err), 0);
    assert_memory_equal(k2, key, 32);
    write_file(in_dir("ws"), enc, 0600);
    assert_int_equal(sfl_keys_load_secret(in_dir("ws"), k2, err, sizeof err), 0);
    assert_memory_equal(k2, key, 32);

    /* encode / decode directly */
    assert_int_equal(sfl_keys_decode(enc, 44, k2), 0);
    assert_memory_equal(k2, key, 32);
    assert_int_equal(sfl_keys_decode(enc, 43, k2), SFL_EFORMAT);
    assert_true(sodium_is_zero(k2, 32));
}

static void test_allowlist(void **state)
{
    (void)state;
    uint8_t keys[3][32], stranger[32];
    char enc[3][45], text[1024], err[256] = "";
    sfl_allowlist al;

    for (int i = 0; i < 3; i++) {
        randombytes_buf(keys[i], 32);
        sfl_keys_encode(keys[i], enc[i]);
    }
    randombytes_buf(stranger, 32);
    snprintf(text, sizeof text,
             "# seedfl allow-list\n"
             "\n"
             "%s\n"
             "   # indented comment\n"
             "  %s  \n"
             "\t\n"
             "# client 3, no trailing newline\n"
             "%s",
             enc[0], enc[1], enc[2]);
    write_file(in_dir("list"), text, 0644);
    assert_int_equal(sfl_allowlist_load(in_dir("list"), &al, err, sizeof err), 0);
    assert_int_equal(al.n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sfl_allowlist_contains(&al, keys[i]), 1);
    assert_int_equal(sfl_allowlist_contains(&al, stranger), 0);
    sfl_allowlist_free(&al);
    assert_null(al.keys);
    assert_int_equal(al.n, 0);
    assert_int_equal(sfl_allowlist_contains(&al, keys[0]), 0);

    /* an empty list is valid and admits nobody */
    write_file(in_dir("empty"), "# nobody yet\n", 0644);
    assert_int_equal(sfl_allowlist_load(in_dir("empty"), &al, err, sizeof err), 0);
    assert_int_equal(al.n, 0);
    assert_int_equal(sfl_allowlist_contains(&al, keys[0]), 0);
    sfl_allowlist_free(&al);

    /* a long comment line is still a comment */
    char longc[3000];
    memset(longc, 'x', sizeof longc);
    longc[0] = '#';
    snprintf(text, sizeof text, "%s\n", enc[0]);
    FILE *f = fopen(in_dir("long"), "w");
    assert_non_null(f);
    fwrite(longc, 1, sizeof longc, f);
    fprintf(f, "\n%s\n", enc[1]);
    fclose(f);
    assert_int_equal(sfl_allowlist_load(in_dir("long"), &al, err, sizeof err), 0);
    assert_int_equal(al.n, 1);
    assert_int_equal(sfl_allowlist_contains(&al, keys[1]), 1);
    sfl_allowlist_free(&al);

    /* missing file */
    assert_int_equal(sfl_allowlist_load(in_dir("nolist"), &al, err, sizeof err), SFL_EIO);
    assert_non_null(strstr(err, "No such file"));
}

static void test_allowlist_bad_line(void **state)
{
    (void)state;
    uint8_t k[32];
    char enc[45], text[512], err[256] = "", want[300];
    sfl_allowlist al;

    randombytes_buf(k, 32);
    sfl_keys_encode(k, enc);
    snprintf(text, sizeof text, "# header\n%s\n\nnot-a-key\n%s\n", enc, enc);
    write_file(in_dir("badlist"), text, 0644);
    assert_int_equal(sfl_allowlist_load(in_dir("badlist"), &al, err, sizeof err), SFL_EFORMAT);
    snprintf(want, sizeof want, "%s:4: not a base64 X25519 key", in_dir("badlist"));
    assert_string_equal(err, want);
    assert_null(al.keys);
    assert_int_equal(al.n, 0);

    /* a key with trailing text on the line */
    snprintf(text, sizeof text, "%s\n%s extra\n", enc, enc);
    write_file(in_dir("badlist"), text, 0644);
    assert_int_equal(sfl_allowlist_load(in_dir("badlist"), &al, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, ":2:"));

    /* an over-long non-comment line */
    char longl[1500];
    memset(longl, 'A', sizeof longl - 1);
    longl[sizeof longl - 1] = '\0';
    write_file(in_dir("badlist"), longl, 0644);
    assert_int_equal(sfl_allowlist_load(in_dir("badlist"), &al, err, sizeof err), SFL_EFORMAT);
    assert_non_null(strstr(err, ":1: line too long"));
}

static void test_allowlist_grows(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint8_t (*keys)[32] = malloc(N * sizeof *keys);
    char enc[45], err[256] = "";
    sfl_allowlist al;
    assert_non_null(keys);

    /* every key twice: the list holds each once, sorted */
    FILE *f = fopen(in_dir("list"), "w");
    assert_non_null(f);
    for (int i = 0; i < N; i++) {
        randombytes_buf(keys[i], 32);
        sfl_keys_encode(keys[i], enc);
        fprintf(f, "%s\n", enc);
    }
    for (int i = N - 1; i >= 0; i--) {
        sfl_keys_encode(keys[i], enc);
        fprintf(f, "%s\n", enc);
    }
    fclose(f);
    assert_int_equal(sfl_allowlist_load(in_dir("list"), &al, err, sizeof err), 0);
    assert_int_equal(al.n, N);
    for (size_t i = 1; i < al.n; i++)
        assert_true(memcmp(al.keys[i - 1], al.keys[i], 32) < 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(sfl_allowlist_contains(&al, keys[i]), 1);
    /* keys next to listed ones, and below and above all of them */
    uint8_t near[32], lo[32], hi[32];
    for (int i = 0; i < N; i++) {
        memcpy(near, keys[i], 32);
        near[31] ^= 1;
        assert_int_equal(sfl_allowlist_contains(&al, near), 0);
    }
    memset(lo, 0, 32);
    memset(hi, 0xff, 32);
    assert_int_equal(sfl_allowlist_contains(&al, lo), 0);
    assert_int_equal(sfl_allowlist_contains(&al, hi), 0);
    sfl_allowlist_free(&al);
    free(keys);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_refuse_overwrite),
        cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_allowlist),
        cmocka_unit_test(test_allowlist_bad_line),
        cmocka_unit_test(test_allowlist_grows),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
