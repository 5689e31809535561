#include "noise.h"

#include <string.h>

#include <sodium.h>

#include "err.h"

#define HMAC_BLOCK 128
#define PROTOCOL_NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"

/* ---- HMAC and HKDF (Noise rev. 34, section 4.3) ---- */

static void blake2b_2(uint8_t out[SFL_HASH_LEN], const uint8_t *a, size_t alen,
                      const uint8_t *b, size_t blen)
{
    crypto_generichash_blake2b_state st;
    crypto_generichash_blake2b_init(&st, NULL, 0, SFL_HASH_LEN);
    if (alen > 0)
        crypto_generichash_blake2b_update(&st, a, alen);
    if (blen > 0)
        crypto_generichash_blake2b_update(&st, b, blen);
    crypto_generichash_blake2b_final(&st, out, SFL_HASH_LEN);
    sodium_memzero(&st, sizeof st);
}

/* RFC 2104 HMAC: keys longer than a block are hashed first, shorter ones are
 * zero-padded. Noise only ever uses 64-byte keys, but the general definition
 * costs nothing. */
void sfl_hmac_blake2b(uint8_t out[SFL_HASH_LEN], const uint8_t *key, size_t keylen,
                      const uint8_t *data, size_t datalen)
{
    uint8_t k[HMAC_BLOCK] = {0};
    uint8_t pad[HMAC_BLOCK];
    uint8_t inner[SFL_HASH_LEN];

    if (keylen > HMAC_BLOCK)
        blake2b_2(k, key, keylen, NULL, 0);
    else if (keylen > 0)
        memcpy(k, key, keylen);

    for (size_t i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k[i] ^ 0x36;
    blake2b_2(inner, pad, sizeof pad, data, datalen);
    for (size_t i = 0; i < HMAC_BLOCK; i++)
        pad[i] = k[i] ^ 0x5c;
    blake2b_2(out, pad, sizeof pad, inner, sizeof inner);

    sodium_memzero(k, sizeof k);
    sodium_memzero(pad, sizeof pad);
    sodium_memzero(inner, sizeof inner);
}

/* Outputs may alias ck: ck is only read before any output is written. */
void sfl_hkdf_blake2b(const uint8_t ck[SFL_HASH_LEN], const uint8_t *ikm, size_t ikmlen,
                      uint8_t out1[SFL_HASH_LEN], uint8_t out2[SFL_HASH_LEN],
                      uint8_t out3[SFL_HASH_LEN])
{
    uint8_t temp_key[SFL_HASH_LEN];
    uint8_t buf[SFL_HASH_LEN + 1];

    sfl_hmac_blake2b(temp_key, ck, SFL_HASH_LEN, ikm, ikmlen);
    buf[0] = 0x01;
    sfl_hmac_blake2b(buf, temp_key, sizeof temp_key, buf, 1);
    memcpy(out1, buf, SFL_HASH_LEN);
    buf[SFL_HASH_LEN] = 0x02;
    sfl_hmac_blake2b(buf, temp_key, sizeof temp_key, buf, sizeof buf);
    memcpy(out2, buf, SFL_HASH_LEN);
    if (out3) {
        buf[SFL_HASH_LEN] = 0x03;
        sfl_hmac_blake2b(buf, temp_key, sizeof temp_key, buf, sizeof buf);
        memcpy(out3, buf, SFL_HASH_LEN);
    }
    sodium_memzero(temp_key, sizeof temp_key);
    sodium_memzero(buf, sizeof buf);
}

/* ---- CipherState (section 5.1) ---- */

static void make_nonce(uint8_t nonce[12], uint64_t n)
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static void cipher_init(sfl_cipher *c, const uint8_t k[32])
{
    memcpy(c->k, k, 32);
    c->n = 0;
    c->has_key = 1;
}

static int aead_encrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *pt,
                        size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen = 0;

    /* n = 2^64-1 is reserved by the spec (used for rekey) */
    if (c->n == UINT64_MAX)
        return SFL_ERANGE;
    make_nonce(nonce, c->n);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, len, ad, adlen, NULL, nonce, c->k);
    c->n++;
    return 0;
}

static int aead_decrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen, const uint8_t *ct,
                        size_t len, uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long mlen = 0;

    if (c->n == UINT64_MAX)
        return SFL_ERANGE;
    make_nonce(nonce, c->n);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &mlen, NULL, ct, len, ad, adlen, nonce,
                                                  c->k) != 0)
        return SFL_ECRYPTO;
    c->n++;
    return 0;
}

/* Transport use only: an unkeyed cipher is refused (SFL_EPROTO) rather than
 * silently passing plaintext, so a wiped or never-split cipher cannot leak. */
int sfl_cipher_encrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *pt, size_t len, uint8_t *out)
{
    if (!c->has_key)
        return SFL_EPROTO;
    if (len > SFL_NOISE_MAX - SFL_TAG_LEN)
        return SFL_ETOOBIG;
    return aead_encrypt(c, ad, adlen, pt, len, out);
}

/* out may equal ct. On a bad tag libsodium zeroes out, and n is unchanged so
 * a tampered frame cannot desynchronise the counters. */
int sfl_cipher_decrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *ct, size_t len, uint8_t *out)
{
    if (!c->has_key)
        return SFL_EPROTO;
    if (len < SFL_TAG_LEN)
        return SFL_EFORMAT;
    if (len > SFL_NOISE_MAX)
        return SFL_ETOOBIG;
    return aead_decrypt(c, ad, adlen, ct, len, out);
}

void sfl_cipher_wipe(sfl_cipher *c)
{
    sodium_memzero(c, sizeof *c);
}

/* ---- SymmetricState (section 5.2) ---- */

static void mix_hash(sfl_hs *hs, const uint8_t *data, size_t len)
{
    blake2b_2(hs->h, hs->h, SFL_HASH_LEN, data, len);
}

static void mix_key(sfl_hs *hs, const uint8_t dh[SFL_DH_LEN])
{
    uint8_t temp_k[SFL_HASH_LEN];

    sfl_hkdf_blake2b(hs->ck, dh, SFL_DH_LEN, hs->ck, temp_k, NULL);
    /* HASHLEN 64 -> truncate to the 32-byte cipher key */
    cipher_init(&hs->cs, temp_k);
    sodium_memzero(temp_k, sizeof temp_k);
}

/* Writes len (+16 when keyed) bytes to out; *outlen gets the size. */
static int encrypt_and_hash(sfl_hs *hs, const uint8_t *pt, size_t len, uint8_t *out,
                            size_t *outlen)
{
    int rc;

    if (hs->cs.has_key) {
        rc = aead_encrypt(&hs->cs, hs->h, SFL_HASH_LEN, pt, len, out);
        if (rc < 0)
            return rc;
        *outlen = len + SFL_TAG_LEN;
    } else {
        if (len > 0)
            memmove(out, pt, len);
        *outlen = len;
    }
    mix_hash(hs, out, *outlen);
    return 0;
}

/* Reads len bytes of ct; the plaintext (len - 16 when keyed) goes to out. */
static int decrypt_and_hash(sfl_hs *hs, const uint8_t *ct, size_t len, uint8_t *out,
                            size_t *outlen)
{
    int rc;

    if (hs->cs.has_key) {
        if (len < SFL_TAG_LEN)
            return SFL_EFORMAT;
        rc = aead_decrypt(&hs->cs, hs->h, SFL_HASH_LEN, ct, len, out);
        if (rc < 0)
            return rc;
        *outlen = len - SFL_TAG_LEN;
    } else {
        if (len > 0)
            memmove(out, ct, len);
        *outlen = len;
    }
    mix_hash(hs, ct, len);
    return 0;
}

/* DH followed by MixKey; an all-zero shared secret (low-order point) fails. */
static int mix_dh(sfl_hs *hs, const uint8_t priv[32], const uint8_t pub[32])
{
    uint8_t shared[SFL_DH_LEN];

    if (crypto_scalarmult(shared, priv, pub) != 0) {
        sodium_memzero(shared, sizeof shared);
        return SFL_ECRYPTO;
    }
    mix_key(hs, shared);
    sodium_memzero(shared, sizeof shared);
    return 0;
}

/* ---- HandshakeState for IK (sections 5.3, 7.5) ---- */

#define STEP_SPLIT 3
#define STEP_FAILED (-1)
/* message 1 before its payload: e, then s encrypted with its tag */
#define MSG1_HEAD (32 + 32 + SFL_TAG_LEN)

int sfl_keypair_set(sfl_keypair *kp, const uint8_t priv[32])
{
    if (kp->priv != priv)
        memcpy(kp->priv, priv, 32);
    if (crypto_scalarmult_base(kp->pub, kp->priv) != 0) {
        sodium_memzero(kp, sizeof *kp);
        return SFL_ECRYPTO;
    }
    return 0;
}

/* The state copies the secrets; the caller may wipe its own copies. */
int sfl_hs_init(sfl_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                const sfl_keypair *s, const uint8_t e_priv[32], const uint8_t *rs)
{
    memset(hs, 0, sizeof *hs);
    hs->step = STEP_FAILED;
    if (!s || !e_priv || (initiator && !rs) || (prologue_len > 0 && !prologue))
        return SFL_EINVAL;

    hs->initiator = initiator ? 1 : 0;
    memcpy(hs->s_priv, s->priv, 32);
    memcpy(hs->s_pub, s->pub, 32);
    memcpy(hs->e_priv, e_priv, 32);
    /* the ephemeral key's generation: one X25519 per handshake */
    if (crypto_scalarmult_base(hs->e_pub, hs->e_priv) != 0) {
        sfl_hs_wipe(hs);
        return SFL_ECRYPTO;
    }
    if (initiator)
        memcpy(hs->rs, rs, 32);

    /* InitializeSymmetric: the name is shorter than HASHLEN, so it is padded */
    memcpy(hs->h, PROTOCOL_NAME, sizeof PROTOCOL_NAME - 1);
    memcpy(hs->ck, hs->h, SFL_HASH_LEN);
    mix_hash(hs, prologue, prologue_len);
    /* pre-message "<- s": the responder's static key */
    mix_hash(hs, initiator ? hs->rs : hs->s_pub, 32);
    hs->step = 0;
    return 0;
}

/* The state is unusable after a failure that touched it: wipe it so that no
 * half-mixed key survives, and mark it failed. */
static int hs_fail(sfl_hs *hs, int rc)
{
    sfl_hs_wipe(hs);
    return rc;
}

/* -> e, es, s, ss  (initiator) */
static int write_msg1(sfl_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                      size_t *out_len)
{
    size_t off = 0, n = 0;
    int rc;

    memcpy(out, hs->e_pub, 32);
    mix_hash(hs, hs->e_pub, 32);
    off += 32;
    if ((rc = mix_dh(hs, hs->e_priv, hs->rs)) < 0)
        return rc;
    if ((rc = encrypt_and_hash(hs, hs->s_pub, 32, out + off, &n)) < 0)
        return rc;
    off += n;
    if ((rc = mix_dh(hs, hs->s_priv, hs->rs)) < 0)
        return rc;
    if ((rc = encrypt_and_hash(hs, payload, plen, out + off, &n)) < 0)
        return rc;
    *out_len = off + n;
    return 0;
}

/* <- e, ee, se  (responder) */
static int write_msg2(sfl_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out,
                      size_t *out_len)
{
    size_t n = 0;
    int rc;

    memcpy(out, hs->e_pub, 32);
    mix_hash(hs, hs->e_pub, 32);
    if ((rc = mix_dh(hs, hs->e_priv, hs->re)) < 0)
        return rc;
    if ((rc = mix_dh(hs, hs->e_priv, hs->rs)) < 0)
        return rc;
    if ((rc = encrypt_and_hash(hs, payload, plen, out + 32, &n)) < 0)
        return rc;
    *out_len = 32 + n;
    return 0;
}

/* SFL_ETOOBIG when the message would exceed SFL_NOISE_MAX, SFL_EPROTO when it
 * is not this side's turn; any other failure wipes the state. */
int sfl_hs_write(sfl_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out, size_t *out_len)
{
    int rc;

    if (!out || !out_len || (plen > 0 && !payload))
        return SFL_EINVAL;
    if (hs->step == 0 && hs->initiator) {
        if (plen > SFL_NOISE_MAX - SFL_IK_MSG1_LEN(0))
            return SFL_ETOOBIG;
        rc = write_msg1(hs, payload, plen, out, out_len);
    } else if (hs->step == 1 && !hs->initiator) {
        if (plen > SFL_NOISE_MAX - SFL_IK_MSG2_LEN(0))
            return SFL_ETOOBIG;
        rc = write_msg2(hs, payload, plen, out, out_len);
    } else {
        return SFL_EPROTO;
    }
    if (rc < 0)
        return hs_fail(hs, rc);
    hs->step++;
    return 0;
}

/* -> e, es, s, ss  (responder reads) */
static int read_msg1(sfl_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out,
                     size_t *plen)
{
    uint8_t rs[32];
    size_t n = 0;
    int rc;

    memcpy(hs->re, msg, 32);
    mix_hash(hs, hs->re, 32);
    if ((rc = mix_dh(hs, hs->s_priv, hs->re)) < 0)
        return rc;
    if ((rc = decrypt_and_hash(hs, msg + 32, 32 + SFL_TAG_LEN, rs, &n)) < 0)
        return rc;
    memcpy(hs->rs, rs, 32);
    if ((rc = mix_dh(hs, hs->s_priv, hs->rs)) < 0)
        return rc;
    return decrypt_and_hash(hs, msg + MSG1_HEAD, len - MSG1_HEAD, payload_out, plen);
}

/* <- e, ee, se  (initiator reads) */
static int read_msg2(sfl_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out,
                     size_t *plen)
{
    int rc;

    memcpy(hs->re, msg, 32);
    mix_hash(hs, hs->re, 32);
    if ((rc = mix_dh(hs, hs->e_priv, hs->re)) < 0)
        return rc;
    if ((rc = mix_dh(hs, hs->s_priv, hs->re)) < 0)
        return rc;
    return decrypt_and_hash(hs, msg + 32, len - 32, payload_out, plen);
}

/* A message too short or too long for its step is SFL_EFORMAT and leaves the
 * state untouched; a failed DH or tag is SFL_ECRYPTO and wipes the state. */
int sfl_hs_read(sfl_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out, size_t *plen)
{
    int rc;

    if (!msg || !payload_out || !plen)
        return SFL_EINVAL;
    if (hs->step == 0 && !hs->initiator) {
        if (len < SFL_IK_MSG1_LEN(0) || len > SFL_NOISE_MAX)
            return SFL_EFORMAT;
        rc = read_msg1(hs, msg, len, payload_out, plen);
    } else if (hs->step == 1 && hs->initiator) {
        if (len < SFL_IK_MSG2_LEN(0) || len > SFL_NOISE_MAX)
            return SFL_EFORMAT;
        rc = read_msg2(hs, msg, len, payload_out, plen);
    } else {
        return SFL_EPROTO;
    }
    if (rc < 0)
        return hs_fail(hs, rc);
    hs->step++;
    return 0;
}

/* Both ciphers start at n = 0. Afterwards the chaining key and all private
 * keys in hs are wiped; h (the handshake hash), rs and the public keys stay
 * readable until sfl_hs_wipe. Only one split per handshake. */
int sfl_hs_split(sfl_hs *hs, sfl_cipher *c1, sfl_cipher *c2)
{
    uint8_t k1[SFL_HASH_LEN], k2[SFL_HASH_LEN];

    if (hs->step != 2)
        return SFL_EPROTO;
    sfl_hkdf_blake2b(hs->ck, NULL, 0, k1, k2, NULL);
    cipher_init(c1, k1);
    cipher_init(c2, k2);
    sodium_memzero(k1, sizeof k1);
    sodium_memzero(k2, sizeof k2);
    sodium_memzero(hs->ck, sizeof hs->ck);
    sodium_memzero(hs->s_priv, sizeof hs->s_priv);
    sodium_memzero(hs->e_priv, sizeof hs->e_priv);
    sfl_cipher_wipe(&hs->cs);
    hs->step = STEP_SPLIT;
    return 0;
}

/* A wiped state refuses every further step. */
void sfl_hs_wipe(sfl_hs *hs)
{
    sodium_memzero(hs, sizeof *hs);
    hs->step = STEP_FAILED;
}
