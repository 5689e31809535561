#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "util.h"

static void test_numbers(void **state)
{
    (void)state;
    uint64_t u;
    uint32_t v;
    double d;
    assert_int_equal(sfl_parse_u64("42", 0, 100, &u), 0);
    assert_int_equal(u, 42);
    assert_int_equal(sfl_parse_u64("18446744073709551615", 0, UINT64_MAX, &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(sfl_parse_u64("18446744073709551616", 0, UINT64_MAX, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("-1", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("101", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("1x", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64(" 1", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("\t1", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u64("\n1", 0, 100, &u), SFL_EINVAL);
    assert_int_equal(sfl_parse_u32("4294967296", 0, UINT32_MAX, &v), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("0.5", 0, 1, &d), 0);
    assert_true(d == 0.5);
    assert_int_equal(sfl_parse_double("nan", 0, 1, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("inf", 0, 1e300, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("2", 0, 1, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("\t0.5", 0, 1, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("0x1p-3", 0, 1, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("0X.8", 0, 1, &d), SFL_EINVAL);
    assert_int_equal(sfl_parse_double("1e-3", 0, 1, &d), 0);
    assert_true(d == 1e-3);
}

static void test_hostport(void **state)
{
    (void)state;
    char h[64];
    int p;
    assert_int_equal(sfl_parse_hostport("127.0.0.1:7070", h, sizeof h, &p), 0);
    assert_string_equal(h, "127.0.0.1");
    assert_int_equal(p, 7070);
    assert_int_equal(sfl_parse_hostport("[::1]:0", h, sizeof h, &p), 0);
    assert_string_equal(h, "::1");
    assert_int_equal(p, 0);
    assert_int_equal(sfl_parse_hostport("host", h, sizeof h, &p), SFL_EINVAL);
    assert_int_equal(sfl_parse_hostport(":80", h, sizeof h, &p), SFL_EINVAL);
    assert_int_equal(sfl_parse_hostport("a:65536", h, sizeof h, &p), SFL_EINVAL);
    assert_int_equal(sfl_parse_hostport("[::1]80", h, sizeof h, &p), SFL_EINVAL);
    assert_int_equal(sfl_parse_hostport("a:", h, sizeof h, &p), SFL_EINVAL);
    char small[4];
    assert_int_equal(sfl_parse_hostport("longhost:1", small, sizeof small, &p), SFL_EINVAL);
}

static void test_le(void **state)
{
    (void)state;
    const float v[2] = {1.0f, -2.0f};
    uint8_t b[8];
    sfl_floats_to_le(b, v, 2);
    const uint8_t want[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    assert_memory_equal(b, want, 8);
    float back[2];
    sfl_floats_from_le(back, b, 2);
    assert_true(back[0] == 1.0f && back[1] == -2.0f);
}

static const struct option test_opts[] = {
    {"rounds", required_argument, 0, 0},       {"round-timeout", required_argument, 0, 0},
    {"open-enrolment", no_argument, 0, 0},     {"min-clients", required_argument, 0, 0},
    {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};

/* Runs getopt_long over args until the end or the first complaint: 0 and
 * the names seen (comma-separated) in names, or SFL_EINVAL and err. */
static int run_getopt(const char *const *args, char *names, size_t nlen, char *err,
                      size_t errlen)
{
    char *argv[16];
    char store[16][64];
    int argc = 0;
    for (; args[argc]; argc++) {
        snprintf(store[argc], sizeof store[argc], "%s", args[argc]);
        argv[argc] = store[argc];
    }
    argv[argc] = NULL;
    names[0] = 0;
    err[0] = 0;
    opterr = 0;
    optind = 0;
    for (;;) {
        int idx = -1;
        int c = getopt_long(argc, argv, "h", test_opts, &idx);
        if (c == -1)
            return 0;
        int rc = sfl_getopt_check(c, argv, test_opts, idx, err, errlen);
        if (rc < 0)
            return rc;
        const char *n = idx >= 0 ? test_opts[idx].name : "-h";
        size_t used = strlen(names);
        snprintf(names + used, nlen - used, "%s%s", used ? "," : "", n);
    }
}

static void test_getopt_check(void **state)
{
    (void)state;
    char names[256], err[256];
#define OK(want, ...)                                                                              \
    do {                                                                                           \
        const char *a[] = {"prog", __VA_ARGS__, NULL};                                             \
        assert_int_equal(run_getopt(a, names, sizeof names, err, sizeof err), 0);                  \
        assert_string_equal(names, want);                                                          \
    } while (0)
#define BAD(want, ...)                                                                             \
    do {                                                                                           \
        const char *a[] = {"prog", __VA_ARGS__, NULL};                                             \
        assert_int_equal(run_getopt(a, names, sizeof names, err, sizeof err), SFL_EINVAL);         \
        assert_string_equal(err, want);                                                            \
    } while (0)
    OK("rounds,round-timeout,open-enrolment", "--rounds", "5", "--round-timeout=3",
       "--open-enrolment");
    OK("help,-h", "--help", "-h");
    /* a value that looks like an option is still the value */
    OK("rounds,min-clients", "--rounds", "--round", "--min-clients=2");
    /* glibc would take each of these for the first option it prefixes */
    BAD("option '--round' is not known (did you mean --rounds or --round-timeout?)", "--round",
        "5");
    BAD("option '--round' is not known (did you mean --rounds or --round-timeout?)",
        "--round=5");
    BAD("option '--open' is not known (did you mean --open-enrolment?)", "--rounds", "1",
        "--open");
    BAD("option '--min' is not known (did you mean --min-clients?)", "--min", "3");
    BAD("option '--he' is not known (did you mean --help?)", "--he");
    BAD("option '--rouns' is not known (did you mean --rounds?)", "--rouns", "3");
    BAD("option '--bogus' is not known", "--bogus");
    BAD("option '--rounds' needs a value", "--rounds");
    BAD("option '--help' takes no value", "--help=1");
    BAD("option '--open-enrolment' takes no value", "--open-enrolment=yes");
    BAD("option '-x' is not known", "-x");
    /* inside a cluster optind still names the word before it */
    BAD("option '-x' is not known", "--rounds=5", "-xh");
#undef OK
#undef BAD
}

static void test_suggest_echo(void **state)
{
    (void)state;
    char out[256];
    sfl_opt_suggest(test_opts, "round", 5, "", out, sizeof out);
    assert_string_equal(out, " (did you mean rounds or round-timeout?)");
    sfl_opt_suggest(test_opts, "zzz", 3, "--", out, sizeof out);
    assert_string_equal(out, "");
    char small[12];
    sfl_opt_suggest(test_opts, "round", 5, "--", small, sizeof small);
    assert_true(strlen(small) < sizeof small);

    char buf[SFL_ECHO_SIZE];
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    const char *e = sfl_echo(big, buf, sizeof buf);
    assert_ptr_equal(e, buf);
    assert_int_equal(strlen(e), 67);
    assert_memory_equal(e + 64, "...", 4);
    assert_string_equal(sfl_echo("short", buf, sizeof buf), "short");
    assert_string_equal(sfl_echo("a\033[1mb\n", buf, sizeof buf), "a?[1mb?");
    assert_string_equal(sfl_echo(NULL, buf, sizeof buf), "");
    /* exactly what fits is not cut */
    memset(big, 'y', 67);
    big[67] = 0;
    assert_int_equal(strlen(sfl_echo(big, buf, sizeof buf)), 67);
    assert_null(strchr(buf, '.'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_le),
        cmocka_unit_test(test_getopt_check),
        cmocka_unit_test(test_suggest_echo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
