/* The secure channel end to end in memory: handshake, envelopes both ways,
 * tampering, replay, reordering and size limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "chan.h"
#include "err.h"
#include "secmem.h"

typedef struct {
    sfl_chan cli, srv;
    uint8_t cpriv[32], cpub[32], spriv[32], spub[32];
    sfl_keypair ckp, skp;
} pair;

/* Fresh keys for both ends; sfl_keypair_set must derive the public key
 * crypto_box_keypair made. */
static void make_keys(pair *p)
{
    crypto_box_keypair(p->cpub, p->cpriv);
    crypto_box_keypair(p->spub, p->spriv);
    assert_int_equal(sfl_keypair_set(&p->ckp, p->cpriv), 0);
    assert_int_equal(sfl_keypair_set(&p->skp, p->spriv), 0);
    assert_memory_equal(p->ckp.pub, p->cpub, 32);
    assert_memory_equal(p->skp.pub, p->spub, 32);
}

static void do_handshake(pair *p)
{
    make_keys(p);
    sfl_chan_init(&p->cli);
    sfl_chan_init(&p->srv);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN], m2[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(sfl_chan_client_start(&p->cli, &p->ckp, p->spub, NULL, m1, &n1), 0);
    assert_int_equal(n1, sizeof m1);
    assert_int_equal((m1[2] << 8) | m1[3], SFL_HS1_LEN);
    assert_int_equal(sfl_chan_server_read(&p->srv, &p->skp, NULL, m1 + 4, n1 - 4), 0);
    assert_memory_equal(p->srv.peer, p->cpub, 32);
    assert_int_equal(sfl_chan_server_reply(&p->srv, m2, &n2), 0);
    assert_int_equal(sfl_chan_client_finish(&p->cli, m2 + 4, n2 - 4), 0);
    assert_int_equal(p->cli.state, SFL_CHAN_OPEN);
    assert_int_equal(p->srv.state, SFL_CHAN_OPEN);
}

static void done(pair *p)
{
    sfl_chan_free(&p->cli);
    sfl_chan_free(&p->srv);
}

static uint8_t *seal_hello(sfl_chan *c, uint32_t version, size_t *len)
{
    Seedfl__Hello h = SEEDFL__HELLO__INIT;
    h.protocol_version = version;
    h.num_samples = 1234;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    uint8_t *buf = NULL;
    assert_int_equal(sfl_chan_seal(c, &env, &buf, len), 0);
    return buf;
}

static void test_roundtrip(void **state)
{
    (void)state;
    pair p;
    do_handshake(&p);
    for (uint32_t v = 1; v <= 3; v++) {
        size_t len;
        uint8_t *buf = seal_hello(&p.cli, v, &len);
        uint32_t flen = (uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3];
        assert_int_equal(flen, len - 4);
        Seedfl__Envelope *e = NULL;
        assert_int_equal(sfl_chan_open(&p.srv, buf + 4, len - 4, &e), 0);
        assert_int_equal(e->msg_case, SEEDFL__ENVELOPE__MSG_HELLO);
        assert_int_equal(e->hello->protocol_version, v);
        assert_int_equal(e->hello->num_samples, 1234);
        seedfl__envelope__free_unpacked(e, NULL);
        free(buf);
    }
    /* and the other way */
    size_t len;
    uint8_t *buf = seal_hello(&p.srv, 9, &len);
    Seedfl__Envelope *e = NULL;
    assert_int_equal(sfl_chan_open(&p.cli, buf + 4, len - 4, &e), 0);
    assert_int_equal(e->hello->protocol_version, 9);
    seedfl__envelope__free_unpacked(e, NULL);
    free(buf);
    done(&p);
}

static void test_tamper_replay_reorder(void **state)
{
    (void)state;
    pair p;
    do_handshake(&p);
    size_t l1, l2;
    uint8_t *a = seal_hello(&p.cli, 1, &l1);
    uint8_t *b = seal_hello(&p.cli, 2, &l2);
    Seedfl__Envelope *e = NULL;
    /* reordered: b before a fails */
    uint8_t *bc = malloc(l2);
    memcpy(bc, b, l2);
    assert_int_equal(sfl_chan_open(&p.srv, bc + 4, l2 - 4, &e), SFL_ECRYPTO);
    assert_null(e);
    /* a flipped byte fails and does not advance the nonce */
    uint8_t *ac = malloc(l1);
    memcpy(ac, a, l1);
    ac[10] ^= 0x80;
    assert_int_equal(sfl_chan_open(&p.srv, ac + 4, l1 - 4, &e), SFL_ECRYPTO);
    memcpy(ac, a, l1);
    assert_int_equal(sfl_chan_open(&p.srv, ac + 4, l1 - 4, &e), 0);
    seedfl__envelope__free_unpacked(e, NULL);
    /* a replay of a fails */
    memcpy(ac, a, l1);
    assert_int_equal(sfl_chan_open(&p.srv, ac + 4, l1 - 4, &e), SFL_ECRYPTO);
    /* b in order works */
    memcpy(bc, b, l2);
    assert_int_equal(sfl_chan_open(&p.srv, bc + 4, l2 - 4, &e), 0);
    assert_int_equal(e->hello->protocol_version, 2);
    seedfl__envelope__free_unpacked(e, NULL);
    free(a);
    free(b);
    free(ac);
    free(bc);
    done(&p);
}

/* A frame packed early and sealed late takes its nonce when sealed: a
 * sender that holds a message back behind others still delivers every
 * frame in order, and the same bytes as sealing in one step. */
static void test_pack_then_seal(void **state)
{
    (void)state;
    pair p;
    do_handshake(&p);
    Seedfl__Hello h = SEEDFL__HELLO__INIT;
    h.protocol_version = 7;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    uint8_t *held = NULL;
    size_t held_len = 0;
    assert_int_equal(sfl_chan_pack(&env, &held, &held_len), 0);
    assert_int_equal(held_len, SFL_FRAME_HDR + seedfl__envelope__get_packed_size(&env) + SFL_TAG_LEN);
    /* two frames sealed (and sent) after it was packed, before it is sealed */
    for (uint32_t v = 1; v <= 2; v++) {
        size_t len;
        uint8_t *buf = seal_hello(&p.srv, v, &len);
        Seedfl__Envelope *e = NULL;
        assert_int_equal(sfl_chan_open(&p.cli, buf + 4, len - 4, &e), 0);
        assert_int_equal(e->hello->protocol_version, v);
        seedfl__envelope__free_unpacked(e, NULL);
        free(buf);
    }
    assert_int_equal(sfl_chan_seal_packed(&p.srv, held, held_len), 0);
    uint32_t flen = (uint32_t)held[0] << 24 | held[1] << 16 | held[2] << 8 | held[3];
    assert_int_equal(flen, held_len - 4);
    Seedfl__Envelope *e = NULL;
    assert_int_equal(sfl_chan_open(&p.cli, held + 4, held_len - 4, &e), 0);
    assert_int_equal(e->hello->protocol_version, 7);
    seedfl__envelope__free_unpacked(e, NULL);
    free(held);
    /* too short to hold a tag; and no sealing on a channel not yet open */
    uint8_t tiny[SFL_FRAME_HDR + SFL_TAG_LEN - 1] = {0};
    assert_int_equal(sfl_chan_seal_packed(&p.srv, tiny, sizeof tiny), SFL_EINVAL);
    sfl_chan c;
    sfl_chan_init(&c);
    assert_int_equal(sfl_chan_pack(&env, &held, &held_len), 0);
    assert_int_equal(sfl_chan_seal_packed(&c, held, held_len), SFL_EPROTO);
    free(held);
    sfl_chan_free(&c);
    done(&p);
}

static void test_limits(void **state)
{
    (void)state;
    pair p;
    do_handshake(&p);
    /* an envelope larger than a frame is refused at sealing */
    Seedfl__ModelChunk mc = SEEDFL__MODEL_CHUNK__INIT;
    static uint8_t big[SFL_NOISE_MAX];
    mc.data.data = big;
    mc.data.len = sizeof big;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_MODEL_CHUNK;
    env.model_chunk = &mc;
    uint8_t *buf = NULL;
    size_t len = 0;
    assert_int_equal(sfl_chan_seal(&p.srv, &env, &buf, &len), SFL_ETOOBIG);
    /* a full chunk fits */
    mc.data.len = SFL_CHUNK_BYTES;
    mc.offset = UINT64_MAX;
    mc.total = UINT64_MAX;
    mc.version = UINT64_MAX;
    assert_int_equal(sfl_chan_seal(&p.srv, &env, &buf, &len), 0);
    assert_true(len - 4 <= SFL_NOISE_MAX);
    Seedfl__Envelope *got = NULL;
    assert_int_equal(sfl_chan_open(&p.cli, buf + 4, len - 4, &got), 0);
    assert_true(got->model_chunk->offset == UINT64_MAX);
    assert_int_equal(got->model_chunk->data.len, SFL_CHUNK_BYTES);
    seedfl__envelope__free_unpacked(got, NULL);
    free(buf);
    /* short frames and a valid tag over junk that is no envelope */
    Seedfl__Envelope *e = NULL;
    uint8_t tiny[8] = {0};
    assert_int_equal(sfl_chan_open(&p.cli, tiny, sizeof tiny, &e), SFL_EFORMAT);
    uint8_t junk[64 + SFL_TAG_LEN];
    memset(junk, 0xff, 64);
    assert_int_equal(sfl_cipher_encrypt(&p.srv.keys->tx, NULL, 0, junk, 64, junk), 0);
    assert_int_equal(sfl_chan_open(&p.cli, junk, sizeof junk, &e), SFL_EFORMAT);
    assert_null(e);
    /* before the handshake completes nothing is sealed or opened */
    sfl_chan c;
    sfl_chan_init(&c);
    assert_int_equal(sfl_chan_seal(&c, &env, &buf, &len), SFL_EPROTO);
    assert_int_equal(c.rd.max_len, SFL_HS1_LEN);
    sfl_chan_free(&c);
    /* after it, frames up to the Noise maximum */
    assert_int_equal(p.cli.rd.max_len, SFL_NOISE_MAX);
    done(&p);
}

static void test_wrong_key(void **state)
{
    (void)state;
    pair p;
    make_keys(&p);
    uint8_t other_pub[32], other_priv[32];
    crypto_box_keypair(other_pub, other_priv);
    sfl_chan_init(&p.cli);
    sfl_chan_init(&p.srv);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN];
    size_t n1 = 0;
    /* the client pinned another server key: the server cannot read message 1 */
    assert_int_equal(sfl_chan_client_start(&p.cli, &p.ckp, other_pub, NULL, m1, &n1), 0);
    assert_int_equal(sfl_chan_server_read(&p.srv, &p.skp, NULL, m1 + 4, n1 - 4), SFL_ECRYPTO);
    assert_int_equal(p.srv.state, SFL_CHAN_FAILED);
    assert_int_equal(sfl_chan_server_read(&p.srv, &p.skp, NULL, m1 + 4, 10), SFL_EFORMAT);
    done(&p);
}

static void test_digest(void **state)
{
    (void)state;
    /* BLAKE2b-256 over the little-endian bytes of 1.0f, -2.0f */
    const float v[2] = {1.0f, -2.0f};
    const uint8_t le[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    uint8_t a[32], b[32];
    sfl_params_digest(v, 2, a);
    crypto_generichash(b, 32, le, sizeof le, NULL, 0);
    assert_memory_equal(a, b, 32);
}

/* Session keys come from shared guarded chunks: slots are zeroed, reused
 * through the free list, and 1,500 sessions' keys take three chunks, not
 * 1,500 guarded regions. */
static void test_secmem(void **state)
{
    (void)state;
    size_t base = 0, chunks0 = 0, used, chunks;
    sfl_secmem_stats(&base, &chunks0);
    assert_null(sfl_secmem_alloc(SFL_SECMEM_SLOT + 1));
    enum { N = 1500 };
    static unsigned char *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = sfl_secmem_alloc(SFL_SECMEM_SLOT);
        assert_non_null(p[i]);
        for (int j = 0; j < SFL_SECMEM_SLOT; j++)
            assert_int_equal(p[i][j], 0);
        memset(p[i], 0xA5, SFL_SECMEM_SLOT);
    }
    for (int i = 1; i < N; i++)
        assert_true(p[i] != p[i - 1]);
    sfl_secmem_stats(&used, &chunks);
    assert_int_equal(used, base + N);
    assert_true(chunks - chunks0 <= (N + SFL_SECMEM_CHUNK_SLOTS - 1) / SFL_SECMEM_CHUNK_SLOTS);
    unsigned char *last = p[N - 1];
    sfl_secmem_free(last);
    unsigned char *again = sfl_secmem_alloc(16);
    assert_ptr_equal(again, last); /* reused, and wiped */
    for (int j = 0; j < SFL_SECMEM_SLOT; j++)
        assert_int_equal(again[j], 0);
    p[N - 1] = again;
    for (int i = 0; i < N; i++)
        sfl_secmem_free(p[i]);
    sfl_secmem_free(NULL);
    sfl_secmem_stats(&used, NULL);
    assert_int_equal(used, base);
}

/* The reply in two steps, as the server runs it (the X25519 part on a
 * worker thread): each step refuses to run out of order, and the result is
 * the same open channel as sfl_chan_server_reply gives. */
static void test_reply_in_two_steps(void **state)
{
    (void)state;
    pair p;
    make_keys(&p);
    sfl_chan_init(&p.cli);
    sfl_chan_init(&p.srv);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN], m2[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(sfl_chan_client_start(&p.cli, &p.ckp, p.spub, NULL, m1, &n1), 0);
    /* nothing to answer yet */
    sfl_chan early;
    sfl_chan_init(&early);
    assert_int_equal(sfl_chan_server_write(&early, m2, &n2), SFL_EPROTO);
    assert_int_equal(early.state, SFL_CHAN_HANDSHAKE);
    sfl_chan_free(&early);
    assert_int_equal(sfl_chan_server_read(&p.srv, &p.skp, NULL, m1 + 4, n1 - 4), 0);
    /* not open before message 2 is written */
    assert_int_equal(sfl_chan_server_open(&p.srv), SFL_EPROTO);
    assert_int_equal(p.srv.state, SFL_CHAN_HANDSHAKE);
    assert_int_equal(sfl_chan_server_write(&p.srv, m2, &n2), 0);
    assert_int_equal(n2, sizeof m2);
    assert_int_equal(p.srv.state, SFL_CHAN_HANDSHAKE);
    assert_null(p.srv.keys);
    assert_int_equal(sfl_chan_server_open(&p.srv), 0);
    assert_int_equal(p.srv.state, SFL_CHAN_OPEN);
    assert_non_null(p.srv.keys);
    /* written once, opened once */
    assert_int_equal(sfl_chan_server_write(&p.srv, m2, &n2), SFL_EPROTO);
    assert_int_equal(sfl_chan_server_open(&p.srv), SFL_EPROTO);
    assert_int_equal(p.srv.state, SFL_CHAN_OPEN);
    assert_int_equal(sfl_chan_client_finish(&p.cli, m2 + 4, n2 - 4), 0);
    /* and the keys work both ways */
    size_t len = 0;
    uint8_t *f = seal_hello(&p.cli, SFL_PROTOCOL_VERSION, &len);
    Seedfl__Envelope *env = NULL;
    assert_int_equal(sfl_chan_open(&p.srv, f + 4, len - 4, &env), 0);
    assert_int_equal(env->msg_case, SEEDFL__ENVELOPE__MSG_HELLO);
    seedfl__envelope__free_unpacked(env, NULL);
    free(f);
    done(&p);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_tamper_replay_reorder),
        cmocka_unit_test(test_pack_then_seal),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_reply_in_two_steps),
        cmocka_unit_test(test_digest),
        cmocka_unit_test(test_secmem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
