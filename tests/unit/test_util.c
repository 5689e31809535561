#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_hostport),
        cmocka_unit_test(test_le),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
