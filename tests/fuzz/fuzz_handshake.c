/* The handshake from an attacker's side (common/chan.h): the input is a
 * frame body offered as Noise IK message 1 to a responder with a fixed
 * static key (sfl_chan_server_read, then sfl_chan_server_reply when it
 * authenticates), and as message 2 to an initiator that pinned that key
 * (sfl_chan_client_finish). Every path must leave no handshake state, no
 * secure slot and no half-open channel behind. */
#include <string.h>

#include <sodium.h>

#include "chan.h"
#include "err.h"
#include "fuzz.h"
#include "secmem.h"

static const uint8_t server_static[32] = FUZZ_SERVER_STATIC;
static const uint8_t server_eph[32] = FUZZ_SERVER_EPHEMERAL;
static const uint8_t client_static[32] = FUZZ_CLIENT_STATIC;
static const uint8_t client_eph[32] = FUZZ_CLIENT_EPHEMERAL;

static void as_responder(const uint8_t *data, size_t size)
{
    sfl_keypair skp = fuzz_keypair(server_static);
    sfl_chan c;
    sfl_chan_init(&c);
    int rc = sfl_chan_server_read(&c, &skp, server_eph, data, size);
    if (rc < 0) {
        FUZZ_CHECK(rc == SFL_EFORMAT || rc == SFL_ECRYPTO);
        FUZZ_CHECK(size == SFL_HS1_LEN || rc == SFL_EFORMAT);
        FUZZ_CHECK(c.state == SFL_CHAN_FAILED && c.hs == NULL && c.keys == NULL);
        /* a failed channel refuses the next step */
        uint8_t out[SFL_FRAME_HDR + SFL_HS2_LEN];
        size_t n = 0;
        FUZZ_CHECK(sfl_chan_server_reply(&c, out, &n) == SFL_EPROTO);
    } else {
        FUZZ_CHECK(rc == 0 && size == SFL_HS1_LEN && c.hs != NULL);
        uint8_t out[SFL_FRAME_HDR + SFL_HS2_LEN];
        size_t n = 0;
        rc = sfl_chan_server_reply(&c, out, &n);
        FUZZ_CHECK(rc == 0 && n == sizeof out);
        FUZZ_CHECK(c.state == SFL_CHAN_OPEN && c.hs == NULL && c.keys != NULL);
        FUZZ_CHECK(c.rd.max_len == SFL_NOISE_MAX);
        /* a second message 1 on an open channel is refused */
        sfl_chan again = c;
        FUZZ_CHECK(sfl_chan_server_read(&again, &skp, server_eph, data, size) ==
                   SFL_EPROTO);
    }
    sfl_chan_free(&c);
}

static void as_initiator(const uint8_t *data, size_t size)
{
    sfl_keypair skp = fuzz_keypair(server_static), ckp = fuzz_keypair(client_static);
    sfl_chan c;
    sfl_chan_init(&c);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN];
    size_t n1 = 0;
    FUZZ_CHECK(sfl_chan_client_start(&c, &ckp, skp.pub, client_eph, m1, &n1) == 0);
    FUZZ_CHECK(n1 == sizeof m1);
    int rc = sfl_chan_client_finish(&c, data, size);
    /* message 2 depends on message 1's timestamp, so it never authenticates
     * here; every failure must leave the channel closed */
    if (rc < 0) {
        FUZZ_CHECK(rc == SFL_EFORMAT || rc == SFL_ECRYPTO);
        FUZZ_CHECK(size == SFL_HS2_LEN || rc == SFL_EFORMAT);
        FUZZ_CHECK(c.state == SFL_CHAN_FAILED && c.hs == NULL && c.keys == NULL);
    } else {
        FUZZ_CHECK(c.state == SFL_CHAN_OPEN && c.keys != NULL);
    }
    sfl_chan_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        FUZZ_CHECK(sodium_init() >= 0);
        ready = 1;
    }
    size_t slots0 = 0, slots1 = 0;
    sfl_secmem_stats(&slots0, NULL);
    as_responder(data, size);
    as_initiator(data, size);
    sfl_secmem_stats(&slots1, NULL);
    FUZZ_CHECK(slots0 == slots1);
    return 0;
}
