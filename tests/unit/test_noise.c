/* Noise IK on libsodium: reproduces the public cacophony vector read from the
 * JSON file given as argv[1] (tests/data/noise_vectors.json), then checks the
 * failure paths: tampering, low-order keys, wrong lengths, nonce limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "err.h"
#include "noise.h"

#define MAX_HEX 1024
#define N_MSGS 6

typedef struct {
    uint8_t bytes[MAX_HEX];
    size_t len;
} blob;

typedef struct {
    blob prologue, init_static, init_ephemeral, init_remote_static;
    blob resp_static, resp_ephemeral, handshake_hash;
    blob payload[N_MSGS], ciphertext[N_MSGS];
} ik_vector;

static const char *vector_path;
static ik_vector vec;

/* ---- minimal extraction of hex strings from the vector file ---- */

/* Finds "key" in [p, end) and decodes the hex string that follows. Returns a
 * pointer past the value, or NULL. */
static const char *get_hex(const char *p, const char *end, const char *key, blob *out)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    size_t plen = strlen(pat);
    for (; p + plen <= end; p++) {
        if (memcmp(p, pat, plen) != 0)
            continue;
        p += plen;
        while (p < end && (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t'))
            p++;
        if (p >= end || *p != '"')
            return NULL;
        const char *start = ++p;
        while (p < end && *p != '"')
            p++;
        if (p >= end)
            return NULL;
        if (sodium_hex2bin(out->bytes, sizeof out->bytes, start, (size_t)(p - start), NULL,
                           &out->len, NULL) != 0)
            return NULL;
        return p + 1;
    }
    return NULL;
}

static int load_vector(const char *path, ik_vector *v)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s (pass the vector file as argv[1])\n", path);
        return -1;
    }
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';

    const char *obj = strstr(text, "\"protocol_name\": \"Noise_IK_25519_ChaChaPoly_BLAKE2b\"");
    if (!obj)
        return -1;
    const char *end = strstr(obj + 1, "\"protocol_name\"");
    if (!end)
        end = text + n;

    if (!get_hex(obj, end, "init_prologue", &v->prologue) ||
        !get_hex(obj, end, "init_static", &v->init_static) ||
        !get_hex(obj, end, "init_ephemeral", &v->init_ephemeral) ||
        !get_hex(obj, end, "init_remote_static", &v->init_remote_static) ||
        !get_hex(obj, end, "resp_static", &v->resp_static) ||
        !get_hex(obj, end, "resp_ephemeral", &v->resp_ephemeral) ||
        !get_hex(obj, end, "handshake_hash", &v->handshake_hash))
        return -1;
    const char *p = strstr(obj, "\"messages\"");
    if (!p || p > end)
        return -1;
    for (int i = 0; i < N_MSGS; i++) {
        p = get_hex(p, end, "payload", &v->payload[i]);
        if (!p)
            return -1;
        p = get_hex(p, end, "ciphertext", &v->ciphertext[i]);
        if (!p)
            return -1;
    }
    return 0;
}

static int group_setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    if (!vector_path || load_vector(vector_path, &vec) != 0) {
        fprintf(stderr, "could not read the IK vector from %s\n",
                vector_path ? vector_path : "(no argv[1])");
        return -1;
    }
    return 0;
}

/* ---- helpers ---- */

static uint8_t msgbuf[SFL_NOISE_MAX];
static uint8_t plbuf[SFL_NOISE_MAX];

static void fresh_key(uint8_t priv[32], uint8_t pub[32])
{
    randombytes_buf(priv, 32);
    assert_int_equal(crypto_scalarmult_base(pub, priv), 0);
}

/* The handshake's static key pair for priv, whose public key must be pub. */
static void keypair(sfl_keypair *kp, const uint8_t priv[32], const uint8_t pub[32])
{
    assert_int_equal(sfl_keypair_set(kp, priv), 0);
    assert_memory_equal(kp->pub, pub, 32);
}

/* A completed random handshake with split ciphers. */
typedef struct {
    uint8_t i_s[32], i_pub[32], r_s[32], r_pub[32];
    sfl_keypair i_kp, r_kp;
    sfl_hs ini, resp;
    sfl_cipher i_send, i_recv, r_send, r_recv;
} session;

static void run_handshake(session *s)
{
    uint8_t ie[32], re[32], pub[32];
    size_t n = 0, pl = 0;

    fresh_key(s->i_s, s->i_pub);
    fresh_key(s->r_s, s->r_pub);
    fresh_key(ie, pub);
    fresh_key(re, pub);
    keypair(&s->i_kp, s->i_s, s->i_pub);
    keypair(&s->r_kp, s->r_s, s->r_pub);
    assert_int_equal(sfl_hs_init(&s->ini, 1, NULL, 0, &s->i_kp, ie, s->r_pub), 0);
    assert_int_equal(sfl_hs_init(&s->resp, 0, NULL, 0, &s->r_kp, re, NULL), 0);
    assert_int_equal(sfl_hs_write(&s->ini, (const uint8_t *)"hi", 2, msgbuf, &n), 0);
    assert_int_equal(n, SFL_IK_MSG1_LEN(2));
    assert_int_equal(sfl_hs_read(&s->resp, msgbuf, n, plbuf, &pl), 0);
    assert_int_equal(pl, 2);
    assert_int_equal(sfl_hs_write(&s->resp, NULL, 0, msgbuf, &n), 0);
    assert_int_equal(n, SFL_IK_MSG2_LEN(0));
    assert_int_equal(sfl_hs_read(&s->ini, msgbuf, n, plbuf, &pl), 0);
    assert_int_equal(pl, 0);
    assert_int_equal(sfl_hs_split(&s->ini, &s->i_send, &s->i_recv), 0);
    assert_int_equal(sfl_hs_split(&s->resp, &s->r_recv, &s->r_send), 0);
    sodium_memzero(ie, sizeof ie);
    sodium_memzero(re, sizeof re);
}

/* ---- the public vector ---- */

static void test_ik_vector(void **state)
{
    (void)state;
    sfl_hs ini, resp;
    sfl_cipher i_send, i_recv, r_send, r_recv;
    size_t n = 0, pl = 0;

    assert_int_equal(vec.init_static.len, 32);
    assert_int_equal(vec.init_remote_static.len, 32);
    assert_int_equal(vec.handshake_hash.len, SFL_HASH_LEN);

    sfl_keypair ikp, rkp;
    assert_int_equal(sfl_keypair_set(&ikp, vec.init_static.bytes), 0);
    assert_int_equal(sfl_keypair_set(&rkp, vec.resp_static.bytes), 0);
    assert_int_equal(sfl_hs_init(&ini, 1, vec.prologue.bytes, vec.prologue.len, &ikp,
                                 vec.init_ephemeral.bytes, vec.init_remote_static.bytes), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, vec.prologue.bytes, vec.prologue.len, &rkp,
                                 vec.resp_ephemeral.bytes, NULL), 0);
    /* the vector's remote static is the responder's public key */
    assert_memory_equal(resp.s_pub, vec.init_remote_static.bytes, 32);

    /* message 1: initiator -> responder */
    assert_int_equal(sfl_hs_write(&ini, vec.payload[0].bytes, vec.payload[0].len, msgbuf, &n), 0);
    assert_int_equal(n, vec.ciphertext[0].len);
    assert_memory_equal(msgbuf, vec.ciphertext[0].bytes, n);
    assert_int_equal(sfl_hs_read(&resp, vec.ciphertext[0].bytes, vec.ciphertext[0].len, plbuf,
                                 &pl), 0);
    assert_int_equal(pl, vec.payload[0].len);
    assert_memory_equal(plbuf, vec.payload[0].bytes, pl);
    assert_memory_equal(resp.rs, ini.s_pub, 32);

    /* message 2: responder -> initiator */
    assert_int_equal(sfl_hs_write(&resp, vec.payload[1].bytes, vec.payload[1].len, msgbuf, &n), 0);
    assert_int_equal(n, vec.ciphertext[1].len);
    assert_memory_equal(msgbuf, vec.ciphertext[1].bytes, n);
    assert_int_equal(sfl_hs_read(&ini, vec.ciphertext[1].bytes, vec.ciphertext[1].len, plbuf,
                                 &pl), 0);
    assert_int_equal(pl, vec.payload[1].len);
    assert_memory_equal(plbuf, vec.payload[1].bytes, pl);

    assert_memory_equal(ini.h, vec.handshake_hash.bytes, SFL_HASH_LEN);
    assert_memory_equal(resp.h, vec.handshake_hash.bytes, SFL_HASH_LEN);

    assert_int_equal(sfl_hs_split(&ini, &i_send, &i_recv), 0);
    assert_int_equal(sfl_hs_split(&resp, &r_recv, &r_send), 0);
    /* h survives the split for channel binding; a second split is refused */
    assert_memory_equal(ini.h, vec.handshake_hash.bytes, SFL_HASH_LEN);
    assert_int_equal(sfl_hs_split(&ini, &i_send, &i_recv), SFL_EPROTO);

    /* messages 3..6: transport, alternating, initiator first */
    for (int i = 2; i < N_MSGS; i++) {
        int from_ini = (i % 2) == 0;
        sfl_cipher *tx = from_ini ? &i_send : &r_send;
        sfl_cipher *rx = from_ini ? &r_recv : &i_recv;
        blob *p = &vec.payload[i], *c = &vec.ciphertext[i];
        assert_int_equal(sfl_cipher_encrypt(tx, NULL, 0, p->bytes, p->len, msgbuf), 0);
        assert_int_equal(p->len + SFL_TAG_LEN, c->len);
        assert_memory_equal(msgbuf, c->bytes, c->len);
        assert_int_equal(sfl_cipher_decrypt(rx, NULL, 0, c->bytes, c->len, plbuf), 0);
        assert_memory_equal(plbuf, p->bytes, p->len);
    }
    assert_int_equal(i_send.n, 2);
    assert_int_equal(r_recv.n, 2);

    sfl_hs_wipe(&ini);
    sfl_hs_wipe(&resp);
    sfl_cipher_wipe(&i_send);
    sfl_cipher_wipe(&i_recv);
    sfl_cipher_wipe(&r_send);
    sfl_cipher_wipe(&r_recv);
    assert_true(sodium_is_zero(i_send.k, 32));
    assert_int_equal(ini.step, -1);
}

/* ---- HMAC / HKDF by the definition, computed independently ---- */

static void blake2b_cat(uint8_t out[64], const uint8_t *a, size_t alen, const uint8_t *b,
                        size_t blen)
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, 64);
    crypto_generichash_blake2b_update(&st, a, alen);
    if (blen)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, 64);
}

static void hmac_by_definition(uint8_t out[64], const uint8_t *key, size_t keylen,
                               const uint8_t *data, size_t datalen)
{
    uint8_t k[128] = {0}, ipad[128], opad[128], inner[64];
    if (keylen > 128)
        crypto_generichash_blake2b(k, 64, key, keylen, NULL, 0);
    else
        memcpy(k, key, keylen);
    for (int i = 0; i < 128; i++) {
        ipad[i] = k[i] ^ 0x36;
        opad[i] = k[i] ^ 0x5c;
    }
    blake2b_cat(inner, ipad, 128, data, datalen);
    blake2b_cat(out, opad, 128, inner, 64);
}

static void test_hmac(void **state)
{
    (void)state;
    uint8_t key[300], data[200], got[64], want[64];
    for (size_t i = 0; i < sizeof key; i++)
        key[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i ^ 0xa5);

    size_t keylens[] = {0, 1, 64, 127, 128, 129, 200, 300};
    for (size_t i = 0; i < sizeof keylens / sizeof keylens[0]; i++) {
        sfl_hmac_blake2b(got, key, keylens[i], data, sizeof data);
        hmac_by_definition(want, key, keylens[i], data, sizeof data);
        assert_memory_equal(got, want, 64);
    }

    /* a key over 128 bytes is hashed first: HMAC(K) == HMAC(BLAKE2b(K)) */
    uint8_t hk[64];
    crypto_generichash_blake2b(hk, 64, key, 200, NULL, 0);
    sfl_hmac_blake2b(got, key, 200, data, 10);
    sfl_hmac_blake2b(want, hk, 64, data, 10);
    assert_memory_equal(got, want, 64);
    /* ...while a 128-byte key is used as is */
    crypto_generichash_blake2b(hk, 64, key, 128, NULL, 0);
    sfl_hmac_blake2b(got, key, 128, data, 10);
    sfl_hmac_blake2b(want, hk, 64, data, 10);
    assert_memory_not_equal(got, want, 64);

    /* empty data, and out aliasing data */
    sfl_hmac_blake2b(got, key, 64, NULL, 0);
    hmac_by_definition(want, key, 64, (const uint8_t *)"", 0);
    assert_memory_equal(got, want, 64);
    memcpy(got, data, 64);
    sfl_hmac_blake2b(got, key, 64, got, 64);
    hmac_by_definition(want, key, 64, data, 64);
    assert_memory_equal(got, want, 64);
}

static void test_hkdf(void **state)
{
    (void)state;
    uint8_t ck[64], ikm[32], o1[64], o2[64], o3[64], tk[64], w[64], buf[65];
    for (int i = 0; i < 64; i++)
        ck[i] = (uint8_t)(200 - i);
    for (int i = 0; i < 32; i++)
        ikm[i] = (uint8_t)i;

    sfl_hkdf_blake2b(ck, ikm, sizeof ikm, o1, o2, o3);
    hmac_by_definition(tk, ck, 64, ikm, sizeof ikm);
    buf[0] = 1;
    hmac_by_definition(w, tk, 64, buf, 1);
    assert_memory_equal(o1, w, 64);
    memcpy(buf, w, 64);
    buf[64] = 2;
    hmac_by_definition(w, tk, 64, buf, 65);
    assert_memory_equal(o2, w, 64);
    memcpy(buf, w, 64);
    buf[64] = 3;
    hmac_by_definition(w, tk, 64, buf, 65);
    assert_memory_equal(o3, w, 64);

    /* two outputs give the same first two; out1 may alias ck */
    uint8_t a1[64], a2[64];
    memcpy(a1, ck, 64);
    sfl_hkdf_blake2b(a1, ikm, sizeof ikm, a1, a2, NULL);
    assert_memory_equal(a1, o1, 64);
    assert_memory_equal(a2, o2, 64);
}

/* ---- failure paths ---- */

static void test_tampered_transport(void **state)
{
    (void)state;
    session s;
    uint8_t ct[64], pt[64];
    const uint8_t msg[] = "round 7 update";

    run_handshake(&s);
    assert_int_equal(sfl_cipher_encrypt(&s.i_send, NULL, 0, msg, sizeof msg, ct), 0);
    size_t clen = sizeof msg + SFL_TAG_LEN;

    for (size_t i = 0; i < clen; i++) {
        ct[i] ^= 0x01;
        assert_int_equal(sfl_cipher_decrypt(&s.r_recv, NULL, 0, ct, clen, pt), SFL_ECRYPTO);
        assert_int_equal(s.r_recv.n, 0);
        ct[i] ^= 0x01;
    }
    /* the untouched frame still decrypts: the nonce did not move */
    assert_int_equal(sfl_cipher_decrypt(&s.r_recv, NULL, 0, ct, clen, pt), 0);
    assert_memory_equal(pt, msg, sizeof msg);
    assert_int_equal(s.r_recv.n, 1);
    /* a replay of the same frame now fails */
    assert_int_equal(sfl_cipher_decrypt(&s.r_recv, NULL, 0, ct, clen, pt), SFL_ECRYPTO);

    /* in place, both directions */
    memcpy(pt, msg, sizeof msg);
    assert_int_equal(sfl_cipher_encrypt(&s.r_send, NULL, 0, pt, sizeof msg, pt), 0);
    assert_int_equal(sfl_cipher_decrypt(&s.i_recv, NULL, 0, pt, clen, pt), 0);
    assert_memory_equal(pt, msg, sizeof msg);

    /* the handshake hashes agree */
    assert_memory_equal(s.ini.h, s.resp.h, SFL_HASH_LEN);
    sfl_hs_wipe(&s.ini);
    sfl_hs_wipe(&s.resp);
}

static void test_tampered_handshake(void **state)
{
    (void)state;
    uint8_t is[32], ipub[32], rsk[32], rpub[32], e1[32], e2[32], pub[32];
    sfl_hs ini, resp;
    size_t n = 0, pl = 0;

    fresh_key(is, ipub);
    fresh_key(rsk, rpub);
    sfl_keypair ikp, rkp;
    keypair(&ikp, is, ipub);
    keypair(&rkp, rsk, rpub);
    fresh_key(e1, pub);
    fresh_key(e2, pub);

    /* message 1 with a flipped byte in the encrypted static key */
    assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, rpub), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);
    assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
    msgbuf[40] ^= 0x80;
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);
    assert_int_equal(resp.step, -1);
    assert_true(sodium_is_zero(resp.s_priv, 32));
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), SFL_EPROTO);

    /* message 2 with a flipped tag byte */
    assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, rpub), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);
    assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), 0);
    assert_int_equal(sfl_hs_write(&resp, NULL, 0, msgbuf, &n), 0);
    msgbuf[n - 1] ^= 0x01;
    assert_int_equal(sfl_hs_read(&ini, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);
    assert_int_equal(ini.step, -1);

    /* a prologue mismatch fails message 1 */
    assert_int_equal(sfl_hs_init(&ini, 1, (const uint8_t *)"a", 1, &ikp, e1, rpub), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, (const uint8_t *)"b", 1, &rkp, e2, NULL), 0);
    assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);

    /* an initiator pinning another server key fails at the responder */
    uint8_t other[32], opub[32];
    fresh_key(other, opub);
    assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, opub), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);
    assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);
    sfl_hs_wipe(&ini);
    sfl_hs_wipe(&resp);
}

static const char *low_order_hex[] = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

static void test_low_order(void **state)
{
    (void)state;
    uint8_t is[32], ipub[32], rsk[32], rpub[32], e1[32], e2[32], pub[32], bad[32];
    sfl_hs ini, resp;
    size_t n = 0, pl = 0;

    fresh_key(is, ipub);
    fresh_key(rsk, rpub);
    sfl_keypair ikp, rkp;
    keypair(&ikp, is, ipub);
    keypair(&rkp, rsk, rpub);
    fresh_key(e1, pub);
    fresh_key(e2, pub);

    for (size_t i = 0; i < sizeof low_order_hex / sizeof low_order_hex[0]; i++) {
        size_t bl = 0;
        assert_int_equal(sodium_hex2bin(bad, 32, low_order_hex[i], 64, NULL, &bl, NULL), 0);
        assert_int_equal(bl, 32);

        /* initiator pinning a low-order server key: es fails */
        assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, bad), 0);
        assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), SFL_ECRYPTO);
        assert_int_equal(ini.step, -1);
        assert_true(sodium_is_zero(ini.e_priv, 32));

        /* message 1 whose ephemeral key is low order: es fails at the responder */
        assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, rpub), 0);
        assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);
        assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
        memcpy(msgbuf, bad, 32);
        assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);

        /* message 2 whose ephemeral key is low order: ee fails at the initiator */
        assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, rpub), 0);
        assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);
        assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), 0);
        assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), 0);
        assert_int_equal(sfl_hs_write(&resp, NULL, 0, msgbuf, &n), 0);
        memcpy(msgbuf, bad, 32);
        assert_int_equal(sfl_hs_read(&ini, msgbuf, n, plbuf, &pl), SFL_ECRYPTO);
    }
    sfl_hs_wipe(&ini);
    sfl_hs_wipe(&resp);
}

static void test_lengths(void **state)
{
    (void)state;
    uint8_t is[32], ipub[32], rsk[32], rpub[32], e1[32], e2[32], pub[32];
    sfl_hs ini, resp;
    size_t n = 0, pl = 0;

    fresh_key(is, ipub);
    fresh_key(rsk, rpub);
    sfl_keypair ikp, rkp;
    keypair(&ikp, is, ipub);
    keypair(&rkp, rsk, rpub);
    fresh_key(e1, pub);
    fresh_key(e2, pub);
    assert_int_equal(sfl_hs_init(&ini, 1, NULL, 0, &ikp, e1, rpub), 0);
    assert_int_equal(sfl_hs_init(&resp, 0, NULL, 0, &rkp, e2, NULL), 0);

    /* wrong turn */
    assert_int_equal(sfl_hs_read(&ini, msgbuf, SFL_IK_MSG2_LEN(0), plbuf, &pl), SFL_EPROTO);
    assert_int_equal(sfl_hs_write(&resp, NULL, 0, msgbuf, &n), SFL_EPROTO);
    assert_int_equal(sfl_hs_split(&ini, NULL, NULL), SFL_EPROTO);

    /* payload too large for one message */
    assert_int_equal(sfl_hs_write(&ini, plbuf, SFL_NOISE_MAX - SFL_IK_MSG1_LEN(0) + 1, msgbuf,
                                  &n), SFL_ETOOBIG);
    assert_int_equal(ini.step, 0);
    /* the largest payload fits exactly */
    sfl_hs big;
    memset(plbuf, 0x42, SFL_NOISE_MAX);
    assert_int_equal(sfl_hs_init(&big, 1, NULL, 0, &ikp, e1, rpub), 0);
    assert_int_equal(sfl_hs_write(&big, plbuf, SFL_NOISE_MAX - SFL_IK_MSG1_LEN(0), msgbuf, &n), 0);
    assert_int_equal(n, SFL_NOISE_MAX);
    sfl_hs_wipe(&big);

    assert_int_equal(sfl_hs_write(&ini, (const uint8_t *)"ts", 2, msgbuf, &n), 0);
    /* message 1 too short or too long: rejected before any crypto, state kept */
    assert_int_equal(sfl_hs_read(&resp, msgbuf, 0, plbuf, &pl), SFL_EFORMAT);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, SFL_IK_MSG1_LEN(0) - 1, plbuf, &pl), SFL_EFORMAT);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, SFL_NOISE_MAX + 1, plbuf, &pl), SFL_EFORMAT);
    assert_int_equal(resp.step, 0);
    assert_int_equal(sfl_hs_read(&resp, msgbuf, n, plbuf, &pl), 0);
    assert_int_equal(pl, 2);

    assert_int_equal(sfl_hs_write(&resp, NULL, 0, msgbuf, &n), 0);
    assert_int_equal(sfl_hs_read(&ini, msgbuf, SFL_IK_MSG2_LEN(0) - 1, plbuf, &pl), SFL_EFORMAT);
    assert_int_equal(sfl_hs_read(&ini, msgbuf, 32, plbuf, &pl), SFL_EFORMAT);
    assert_int_equal(ini.step, 1);
    assert_int_equal(sfl_hs_read(&ini, msgbuf, n, plbuf, &pl), 0);
    /* done: no more handshake messages either way */
    assert_int_equal(sfl_hs_read(&ini, msgbuf, n, plbuf, &pl), SFL_EPROTO);
    assert_int_equal(sfl_hs_write(&ini, NULL, 0, msgbuf, &n), SFL_EPROTO);

    sfl_cipher tx, rx;
    assert_int_equal(sfl_hs_split(&ini, &tx, &rx), 0);
    /* transport limits */
    assert_int_equal(sfl_cipher_decrypt(&rx, NULL, 0, msgbuf, SFL_TAG_LEN - 1, plbuf), SFL_EFORMAT);
    assert_int_equal(sfl_cipher_decrypt(&rx, NULL, 0, msgbuf, 0, plbuf), SFL_EFORMAT);
    assert_int_equal(sfl_cipher_decrypt(&rx, NULL, 0, msgbuf, SFL_NOISE_MAX + 1, plbuf),
                     SFL_ETOOBIG);
    assert_int_equal(sfl_cipher_encrypt(&tx, NULL, 0, plbuf, SFL_NOISE_MAX - SFL_TAG_LEN + 1,
                                        msgbuf), SFL_ETOOBIG);
    assert_int_equal(tx.n, 0);
    assert_int_equal(sfl_cipher_encrypt(&tx, NULL, 0, plbuf, SFL_NOISE_MAX - SFL_TAG_LEN, msgbuf),
                     0);
    assert_int_equal(tx.n, 1);

    /* bad arguments */
    assert_int_equal(sfl_hs_init(&big, 1, NULL, 0, &ikp, e1, NULL), SFL_EINVAL);
    assert_int_equal(sfl_hs_write(&big, NULL, 0, msgbuf, &n), SFL_EPROTO);
    sfl_hs_wipe(&ini);
    sfl_hs_wipe(&resp);
    sfl_cipher_wipe(&tx);
    sfl_cipher_wipe(&rx);
}

static void test_nonce_and_key(void **state)
{
    (void)state;
    sfl_cipher c = {0}, d = {0};
    uint8_t pt[8] = "abcdefg", ct[8 + SFL_TAG_LEN], out[8];

    /* an unkeyed (or wiped) cipher never passes plaintext through */
    assert_int_equal(sfl_cipher_encrypt(&c, NULL, 0, pt, sizeof pt, ct), SFL_EPROTO);
    assert_int_equal(sfl_cipher_decrypt(&c, NULL, 0, ct, sizeof ct, out), SFL_EPROTO);

    randombytes_buf(c.k, 32);
    c.has_key = 1;
    d = c;
    c.n = d.n = UINT64_MAX - 1;
    assert_int_equal(sfl_cipher_encrypt(&c, NULL, 0, pt, sizeof pt, ct), 0);
    assert_true(c.n == UINT64_MAX);
    assert_int_equal(sfl_cipher_decrypt(&d, NULL, 0, ct, sizeof ct, out), 0);
    assert_memory_equal(out, pt, sizeof pt);
    /* 2^64-1 is reserved */
    assert_int_equal(sfl_cipher_encrypt(&c, NULL, 0, pt, sizeof pt, ct), SFL_ERANGE);
    assert_int_equal(sfl_cipher_decrypt(&d, NULL, 0, ct, sizeof ct, out), SFL_ERANGE);
    assert_true(c.n == UINT64_MAX);

    /* the nonce is 4 zero bytes || LE64(n), and ad is authenticated */
    uint8_t nonce[12] = {0}, want[sizeof ct];
    unsigned long long wl = 0;
    c.n = 0x0102030405060708ULL;
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(c.n >> (8 * i));
    crypto_aead_chacha20poly1305_ietf_encrypt(want, &wl, pt, sizeof pt, (const uint8_t *)"ad", 2,
                                              NULL, nonce, c.k);
    assert_int_equal(sfl_cipher_encrypt(&c, (const uint8_t *)"ad", 2, pt, sizeof pt, ct), 0);
    assert_memory_equal(ct, want, sizeof ct);
    d.n = 0x0102030405060708ULL;
    assert_int_equal(sfl_cipher_decrypt(&d, (const uint8_t *)"AD", 2, ct, sizeof ct, out),
                     SFL_ECRYPTO);
    assert_int_equal(sfl_cipher_decrypt(&d, (const uint8_t *)"ad", 2, ct, sizeof ct, out), 0);

    sfl_cipher_wipe(&c);
    assert_true(sodium_is_zero((const uint8_t *)&c, sizeof c));
    assert_int_equal(sfl_cipher_encrypt(&c, NULL, 0, pt, sizeof pt, ct), SFL_EPROTO);
    sfl_cipher_wipe(&d);
}

static void test_responder_learns_static(void **state)
{
    (void)state;
    session s;
    run_handshake(&s);
    assert_memory_equal(s.resp.rs, s.i_pub, 32);
    assert_memory_equal(s.ini.rs, s.r_pub, 32);
    /* split wiped the private keys and chaining key but kept h and rs */
    assert_true(sodium_is_zero(s.resp.s_priv, 32));
    assert_true(sodium_is_zero(s.resp.e_priv, 32));
    assert_true(sodium_is_zero(s.resp.ck, SFL_HASH_LEN));
    assert_false(sodium_is_zero(s.resp.h, SFL_HASH_LEN));
    /* ciphers pair up: initiator's c1 is the responder's receive key */
    assert_memory_equal(s.i_send.k, s.r_recv.k, 32);
    assert_memory_equal(s.i_recv.k, s.r_send.k, 32);
    assert_memory_not_equal(s.i_send.k, s.i_recv.k, 32);
    sfl_hs_wipe(&s.ini);
    sfl_hs_wipe(&s.resp);
    sfl_cipher_wipe(&s.i_send);
    sfl_cipher_wipe(&s.i_recv);
    sfl_cipher_wipe(&s.r_send);
    sfl_cipher_wipe(&s.r_recv);
}

int main(int argc, char **argv)
{
    vector_path = argc > 1 ? argv[1] : NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ik_vector),
        cmocka_unit_test(test_hmac),
        cmocka_unit_test(test_hkdf),
        cmocka_unit_test(test_tampered_transport),
        cmocka_unit_test(test_tampered_handshake),
        cmocka_unit_test(test_low_order),
        cmocka_unit_test(test_lengths),
        cmocka_unit_test(test_nonce_and_key),
        cmocka_unit_test(test_responder_learns_static),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
