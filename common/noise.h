/* Noise_IK_25519_ChaChaPoly_BLAKE2b on libsodium, plus the HMAC and HKDF over
 * BLAKE2b that the Noise specification (rev. 34, sections 4.3 and 5) defines
 * and libsodium 1.0.18 lacks. */
#ifndef SFL_NOISE_H
#define SFL_NOISE_H

#include <stddef.h>
#include <stdint.h>

#define SFL_DH_LEN 32      /* X25519 key length */
#define SFL_HASH_LEN 64    /* BLAKE2b-512 */
#define SFL_TAG_LEN 16     /* Poly1305 tag */
#define SFL_NOISE_MAX 65535 /* largest Noise message */
/* IK message sizes for a payload of n bytes */
#define SFL_IK_MSG1_LEN(n) (32 + 32 + SFL_TAG_LEN + (n) + SFL_TAG_LEN)
#define SFL_IK_MSG2_LEN(n) (32 + (n) + SFL_TAG_LEN)

/* HMAC-BLAKE2b (RFC 2104: block 128 bytes, output 64; a key longer than a
 * block is hashed first). data may be NULL when datalen is 0; out may alias
 * key or data. Programs call sodium_init() before any function here. */
void sfl_hmac_blake2b(uint8_t out[SFL_HASH_LEN], const uint8_t *key, size_t keylen,
                      const uint8_t *data, size_t datalen);
/* Noise HKDF(chaining_key, ikm) -> 2 or 3 outputs of 64 bytes; out3 may be
 * NULL; outputs may alias ck. */
void sfl_hkdf_blake2b(const uint8_t ck[SFL_HASH_LEN], const uint8_t *ikm, size_t ikmlen,
                      uint8_t out1[SFL_HASH_LEN], uint8_t out2[SFL_HASH_LEN],
                      uint8_t out3[SFL_HASH_LEN]);

/* CipherState: ChaCha20-Poly1305 IETF, 96-bit nonce = 4 zero bytes || LE64(n). */
typedef struct {
    uint8_t k[32];
    uint64_t n;
    int has_key;
} sfl_cipher;

/* Transport ciphers. Encrypt len bytes to out (len + 16 bytes; out may equal
 * pt). SFL_ERANGE when the nonce is exhausted (n = 2^64-1 is reserved),
 * SFL_ETOOBIG when len + 16 > SFL_NOISE_MAX, SFL_EPROTO without a key (an
 * unkeyed or wiped cipher never passes plaintext through; the handshake's
 * own unkeyed case is internal). */
int sfl_cipher_encrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *pt, size_t len, uint8_t *out);
/* Decrypt len bytes (16..SFL_NOISE_MAX, else SFL_EFORMAT / SFL_ETOOBIG) to
 * out (len - 16 bytes; out may equal ct). SFL_ECRYPTO on a bad tag; the nonce
 * only advances on success. SFL_EPROTO without a key. */
int sfl_cipher_decrypt(sfl_cipher *c, const uint8_t *ad, size_t adlen,
                       const uint8_t *ct, size_t len, uint8_t *out);
void sfl_cipher_wipe(sfl_cipher *c);

/* A static X25519 key pair. sfl_keypair_set copies priv (which may be
 * kp->priv itself) and derives the public key (SFL_ECRYPTO if that fails),
 * once per key rather than once per handshake. Keep it in sodium_malloc'd memory where it holds a real secret. */
typedef struct {
    uint8_t priv[32], pub[32];
} sfl_keypair;
int sfl_keypair_set(sfl_keypair *kp, const uint8_t priv[32]);

/* Handshake state for the IK pattern:
 *   <- s
 *   ...
 *   -> e, es, s, ss
 *   <- e, ee, se
 * Ephemeral keys are arguments so that tests reproduce public vectors;
 * production passes fresh keys from crypto_box_keypair/randombytes. */
typedef struct {
    uint8_t ck[SFL_HASH_LEN];
    uint8_t h[SFL_HASH_LEN];
    sfl_cipher cs;
    uint8_t s_priv[32], s_pub[32];
    uint8_t e_priv[32], e_pub[32];
    uint8_t rs[32];   /* remote static: known to the initiator, learnt by the responder */
    uint8_t re[32];
    int initiator;
    int step;         /* next message index: 0 or 1, 2 when done, 3 after split,
                         -1 after a failure or sfl_hs_wipe */
} sfl_hs;

/* s is the local static key pair (its public half is trusted, not
 * re-derived); the ephemeral public key is derived from e_priv; both secrets
 * are copied. rs (initiator only, ignored by the responder) is the
 * responder's pinned static public key. The protocol name is fixed. */
int sfl_hs_init(sfl_hs *hs, int initiator, const uint8_t *prologue, size_t prologue_len,
                const sfl_keypair *s, const uint8_t e_priv[32], const uint8_t *rs);
/* Write the next handshake message carrying payload; *out_len gets its size
 * (out must hold SFL_NOISE_MAX). SFL_ETOOBIG when the payload does not fit,
 * SFL_EPROTO when it is not this side's turn (state untouched); a failed DH
 * (SFL_ECRYPTO, e.g. a low-order pinned key) wipes the state. */
int sfl_hs_write(sfl_hs *hs, const uint8_t *payload, size_t plen, uint8_t *out, size_t *out_len);
/* Read the next handshake message; the payload goes to payload_out (room for
 * SFL_NOISE_MAX, must not overlap msg), its length to *plen. A message too
 * short or too long for its step is SFL_EFORMAT before any crypto (state
 * untouched). Any DH with an all-zero result (low-order point) or a bad tag
 * fails with SFL_ECRYPTO and wipes the state. On the responder, hs->rs holds
 * the initiator's static key after message 1. */
int sfl_hs_read(sfl_hs *hs, const uint8_t *msg, size_t len, uint8_t *payload_out, size_t *plen);
/* After both messages: the two transport ciphers in the spec's order, not
 * per role: the initiator sends with c1 and receives with c2, the responder
 * the reverse. Then ck and the private keys in hs are wiped; hs->h (the
 * handshake hash) and hs->rs stay readable until sfl_hs_wipe. */
int sfl_hs_split(sfl_hs *hs, sfl_cipher *c1, sfl_cipher *c2);
/* Zero everything; the state then refuses every step. */
void sfl_hs_wipe(sfl_hs *hs);

#endif
