/* The transport open path (sfl_chan_open) on channels opened by a real
 * in-process handshake with fixed keys. With both ephemeral keys fixed the
 * session keys are the same in every run, so a corpus can hold real
 * ciphertext.
 *
 * Input: records of [op][length, 2 bytes big-endian][body], the last one cut
 * short by the end of the input. op bit 0: the body is an envelope's
 * plaintext and the harness encrypts it with the sender's key (reaching
 * unpack past the tag); clear: the body goes to sfl_chan_open as it is
 * (ciphertext from the peer). op bit 1: the server sends and the client
 * opens; clear: the client sends and the server opens. A sealed record is
 * sealed at the nonce its receiver expects (an earlier raw record may have
 * moved it on). */
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

static void handshake(sfl_chan *cli, sfl_chan *srv)
{
    sfl_keypair skp = fuzz_keypair(server_static), ckp = fuzz_keypair(client_static);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN], m2[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t n1 = 0, n2 = 0;
    sfl_chan_init(cli);
    sfl_chan_init(srv);
    FUZZ_CHECK(sfl_chan_client_start(cli, &ckp, skp.pub, client_eph, m1, &n1) == 0);
    FUZZ_CHECK(sfl_chan_server_read(srv, &skp, server_eph, m1 + SFL_FRAME_HDR,
                                    n1 - SFL_FRAME_HDR) == 0);
    FUZZ_CHECK(sfl_chan_server_reply(srv, m2, &n2) == 0);
    FUZZ_CHECK(sfl_chan_client_finish(cli, m2 + SFL_FRAME_HDR, n2 - SFL_FRAME_HDR) == 0);
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
    sfl_chan cli, srv;
    handshake(&cli, &srv);

    size_t off = 0;
    while (off < size) {
        uint8_t op = data[off++];
        size_t len = 0;
        for (int i = 0; i < 2 && off < size; i++)
            len = len << 8 | data[off++];
        if (len > size - off)
            len = size - off;
        const uint8_t *body = data + off;
        off += len;
        sfl_chan *from = op & 2 ? &srv : &cli, *to = op & 2 ? &cli : &srv;

        /* a buffer of exactly the frame's size, so that ASan sees any overread */
        size_t flen = op & 1 ? len + SFL_TAG_LEN : len;
        uint8_t *frame = malloc(flen ? flen : 1);
        FUZZ_CHECK(frame != NULL);
        if (op & 1) {
            if (flen > SFL_NOISE_MAX) {
                free(frame);
                continue;
            }
            /* a raw record may have moved the receiver on: seal at its nonce */
            from->keys->tx.n = to->keys->rx.n;
            FUZZ_CHECK(sfl_cipher_encrypt(&from->keys->tx, NULL, 0, body, len, frame) == 0);
        } else if (len) {
            memcpy(frame, body, len);
        }
        uint64_t nonce = to->keys->rx.n;
        static Seedfl__Envelope sentinel;
        Seedfl__Envelope *env = &sentinel;   /* sfl_chan_open must reset it */
        int rc = sfl_chan_open(to, frame, flen, &env);
        if (rc == 0) {
            FUZZ_CHECK(env != NULL && env->msg_case != SEEDFL__ENVELOPE__MSG__NOT_SET);
            FUZZ_CHECK(to->keys->rx.n == nonce + 1);
            seedfl__envelope__free_unpacked(env, NULL);
        } else {
            FUZZ_CHECK(env == NULL);
            FUZZ_CHECK(rc == SFL_ECRYPTO || rc == SFL_EFORMAT);
            /* the nonce moves only when the tag was good */
            FUZZ_CHECK(to->keys->rx.n == nonce + (rc == SFL_EFORMAT && flen >= SFL_TAG_LEN));
        }
        /* what the sender sealed always passes the tag */
        if (op & 1)
            FUZZ_CHECK(rc != SFL_ECRYPTO);
        free(frame);
    }
    sfl_chan_free(&cli);
    sfl_chan_free(&srv);
    sfl_secmem_stats(&slots1, NULL);
    FUZZ_CHECK(slots0 == slots1);
    return 0;
}
