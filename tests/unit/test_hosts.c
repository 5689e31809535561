/* Per-host counts of unauthenticated connections (server/hosts.h): counts
 * go up and down exactly, the table refuses a host past its size, IPv6
 * hosts are /64 prefixes and IPv4-mapped addresses their IPv4 host, and
 * heavy churn with collisions leaves every count right. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sodium.h>
#include <sys/socket.h>

#include "hosts.h"

static void v4(const char *ip, uint8_t out[16])
{
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_port = htons(1234);
    assert_int_equal(inet_pton(AF_INET, ip, &in.sin_addr), 1);
    sfl_hosts_key((struct sockaddr *)&in, out);
}

static void v6(const char *ip, uint8_t out[16])
{
    struct sockaddr_in6 in6;
    memset(&in6, 0, sizeof in6);
    in6.sin6_family = AF_INET6;
    in6.sin6_port = htons(4321);
    assert_int_equal(inet_pton(AF_INET6, ip, &in6.sin6_addr), 1);
    sfl_hosts_key((struct sockaddr *)&in6, out);
}

static void test_keys(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    v4("127.0.0.1", a);
    v6("::ffff:127.0.0.1", b);
    assert_memory_equal(a, b, 16); /* the same IPv4 host either way */
    v4("127.0.0.2", b);
    assert_memory_not_equal(a, b, 16);
    v6("2001:db8:1:2:aaaa::1", a);
    v6("2001:db8:1:2:bbbb::9", b);
    assert_memory_equal(a, b, 16); /* one /64 */
    v6("2001:db8:1:3::1", b);
    assert_memory_not_equal(a, b, 16);
}

static void test_counts(void **state)
{
    (void)state;
    sfl_hosts t;
    uint8_t a[16], b[16], c[16];
    assert_int_equal(sfl_hosts_init(&t, 2), 0);
    v4("10.0.0.1", a);
    v4("10.0.0.2", b);
    v4("10.0.0.3", c);
    assert_int_equal(sfl_hosts_add(&t, a), 1);
    assert_int_equal(sfl_hosts_add(&t, a), 2);
    assert_int_equal(sfl_hosts_add(&t, b), 1);
    /* two hosts counted: a third is refused, known ones still count */
    assert_int_equal(sfl_hosts_add(&t, c), 0);
    assert_int_equal(sfl_hosts_add(&t, a), 3);
    sfl_hosts_remove(&t, b);
    assert_int_equal(sfl_hosts_count(&t, b), 0);
    assert_int_equal(sfl_hosts_add(&t, c), 1);
    sfl_hosts_remove(&t, a);
    sfl_hosts_remove(&t, a);
    sfl_hosts_remove(&t, a);
    assert_int_equal(sfl_hosts_count(&t, a), 0);
    assert_int_equal(sfl_hosts_count(&t, c), 1);
    assert_int_equal(t.used, 1);
    sfl_hosts_free(&t);
}

/* Random adds and removes against a plain array of counts: with a table of
 * 64 slots for 30 hosts, probe runs overlap and deletions shift them. */
static void test_churn(void **state)
{
    (void)state;
    enum { HOSTS = 30, STEPS = 200000 };
    sfl_hosts t;
    uint8_t key[HOSTS][16];
    uint32_t want[HOSTS] = {0};
    assert_int_equal(sfl_hosts_init(&t, HOSTS), 0);
    for (int i = 0; i < HOSTS; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "192.0.2.%d", i + 1);
        v4(ip, key[i]);
    }
    for (int step = 0; step < STEPS; step++) {
        uint32_t i = randombytes_uniform(HOSTS);
        if (want[i] && randombytes_uniform(2)) {
            sfl_hosts_remove(&t, key[i]);
            want[i]--;
        } else {
            assert_int_equal(sfl_hosts_add(&t, key[i]), ++want[i]);
        }
        if (step % 1000 == 0) {
            size_t used = 0;
            for (int k = 0; k < HOSTS; k++) {
                assert_int_equal(sfl_hosts_count(&t, key[k]), want[k]);
                used += want[k] != 0;
            }
            assert_int_equal(t.used, used);
        }
    }
    sfl_hosts_free(&t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_churn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
