#include "zgen.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "err.h"

#define Z_BLOCK_COORDS 512                       /* coordinates per ChaCha20 block */
#define Z_CHUNK_BYTES 4096                       /* keystream generated per call */
#define Z_CHUNK_COORDS ((uint64_t)Z_CHUNK_BYTES * 8)
/* Replay works on Z_REPLAY_COORDS coordinates of one tensor at a time (a
 * multiple of Z_BLOCK_COORDS, so every piece starts on a keystream block) and
 * on up to Z_REPLAY_GROUP terms at a time: the piece stays in cache while
 * each group's keystreams are generated and all of them are added. */
#define Z_REPLAY_COORDS 8192
#define Z_REPLAY_GROUP 8

/* Personalisations: exactly 16 bytes, zero padded. */
static const uint8_t z_personal[crypto_generichash_blake2b_PERSONALBYTES] = SFL_ZGEN_PERSONAL;
static const uint8_t z_root_personal[crypto_generichash_blake2b_PERSONALBYTES] = "seedfl-root/1";
static const uint8_t z_pool_personal[crypto_generichash_blake2b_PERSONALBYTES] = "seedfl-pool/1";
static const uint8_t z_derive_personal[crypto_generichash_blake2b_PERSONALBYTES] = "seedfl-derive/1";
static const uint8_t z_model_personal[crypto_generichash_blake2b_PERSONALBYTES] = "seedfl-model/1";
static const uint8_t z_salt[crypto_generichash_blake2b_SALTBYTES];       /* all zero */
static const uint8_t z_nonce[crypto_stream_chacha20_NONCEBYTES];         /* all zero */
/* The keystream is ChaCha20 XORed over zeros; the extra bytes cover the
 * block-alignment skip and the one look-ahead byte of sfl_z_bits. */
static const uint8_t z_zero[Z_CHUNK_BYTES + 2 * 64];

/* z_sign[b][k]: the IEEE sign bit for coordinate k of stream byte b, so that
 * a float XORed with it is negated exactly where z = -1. One 32-byte row per
 * byte keeps the unpacking a load and an XOR, with no per-coordinate branch
 * and no variable shift (which baseline SSE2 lacks). */
#define Z_S(b, k) (((b) >> (k) & 1u) ? 0x80000000u : 0u)
#define Z_ROW(b) { Z_S(b, 0), Z_S(b, 1), Z_S(b, 2), Z_S(b, 3), \
                   Z_S(b, 4), Z_S(b, 5), Z_S(b, 6), Z_S(b, 7) }
#define Z_R2(b) Z_ROW(b), Z_ROW((b) + 1u)
#define Z_R4(b) Z_R2(b), Z_R2((b) + 2u)
#define Z_R8(b) Z_R4(b), Z_R4((b) + 4u)
#define Z_R16(b) Z_R8(b), Z_R8((b) + 8u)
#define Z_R32(b) Z_R16(b), Z_R16((b) + 16u)
#define Z_R64(b) Z_R32(b), Z_R32((b) + 32u)
#define Z_R128(b) Z_R64(b), Z_R64((b) + 64u)
static _Alignas(64) const uint32_t z_sign[256][8] = { Z_R128(0u), Z_R128(128u) };

static inline float z_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t z_u(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Sign bit of coordinate i of a keystream buffer. */
static inline uint32_t z_bit_sign(const uint8_t *s, size_t i)
{
    return (uint32_t)(s[i >> 3] >> (i & 7) & 1u) << 31;
}

static void z_put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void z_put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* BLAKE2b-256 with a personalisation and an optional key. It cannot fail for
 * these sizes, so the result is not checked. */
static void z_hash(uint8_t out[32], const uint8_t *key, size_t keylen, const uint8_t *personal,
                   const uint8_t *msg, size_t len)
{
    crypto_generichash_blake2b_salt_personal(out, 32, msg, len, key, keylen, z_salt, personal);
}

/* Keystream bytes [64 block, 64 block + len). */
static void z_stream(const sfl_zkey *k, uint64_t block, uint8_t *out, size_t len)
{
    crypto_stream_chacha20_xor_ic(out, z_zero, (unsigned long long)len, z_nonce, block, k->key);
}

static int z_domain_len(const char *domain, size_t *len)
{
    if (!domain)
        return SFL_EINVAL;
    *len = strnlen(domain, SFL_ZDOMAIN_MAX + 1);
    return *len == 0 || *len > SFL_ZDOMAIN_MAX ? SFL_EINVAL : 0;
}

int sfl_zkey_derive(sfl_zkey *k, const char *domain, uint64_t model_id, uint32_t tensor,
                    const uint8_t seed[SFL_ZSEED_BYTES])
{
    uint8_t msg[1 + SFL_ZDOMAIN_MAX + 8 + 4 + SFL_ZSEED_BYTES];
    size_t dlen, off = 0;
    int rc = z_domain_len(domain, &dlen);

    if (rc < 0)
        return rc;
    msg[off++] = (uint8_t)dlen;
    memcpy(msg + off, domain, dlen);
    off += dlen;
    z_put_le64(msg + off, model_id);
    off += 8;
    z_put_le32(msg + off, tensor);
    off += 4;
    memcpy(msg + off, seed, SFL_ZSEED_BYTES);
    off += SFL_ZSEED_BYTES;
    z_hash(k->key, NULL, 0, z_personal, msg, off);
    return 0;
}

void sfl_z_bits(const sfl_zkey *k, uint64_t start, size_t n, uint8_t *out)
{
    _Alignas(64) uint8_t buf[Z_CHUNK_BYTES + 2 * 64];
    size_t nout = (n + 7) / 8;
    unsigned sh = (unsigned)(start % 8);

    for (size_t q = 0; q < nout;) {
        size_t m = nout - q < Z_CHUNK_BYTES ? nout - q : Z_CHUNK_BYTES;
        uint64_t first = start / 8 + q;              /* stream byte of out[q]'s bit 0 */
        size_t skip = (size_t)(first % 64);
        const uint8_t *s = buf + skip;

        z_stream(k, first / 64, buf, skip + m + (sh != 0));
        if (sh == 0) {
            memcpy(out + q, s, m);
        } else {
            for (size_t i = 0; i < m; i++)
                out[q + i] = (uint8_t)(s[i] >> sh | s[i + 1] << (8 - sh));
        }
        q += m;
    }
    if (n % 8)
        out[nout - 1] &= (uint8_t)((1u << (n % 8)) - 1);
}

/* The kernels over whole stream bytes (8 coordinates each). The sign of
 * alpha (bits a) is flipped where z = -1, then one float add: exactly
 * x + alpha * z. */
static void z_add_copy(const uint8_t *s, size_t nb, uint32_t a, const float *restrict x,
                       float *restrict y)
{
    for (size_t b = 0; b < nb; b++) {
        const uint32_t *sg = z_sign[s[b]];
        for (int k = 0; k < 8; k++)
            y[8 * b + k] = x[8 * b + k] + z_f(a ^ sg[k]);
    }
}

static void z_add_inplace(const uint8_t *s, size_t nb, uint32_t a, float *restrict y)
{
    for (size_t b = 0; b < nb; b++) {
        const uint32_t *sg = z_sign[s[b]];
        float v[8];
        for (int k = 0; k < 8; k++)      /* written out so that it vectorises */
            v[k] = y[8 * b + k];
        for (int k = 0; k < 8; k++)
            y[8 * b + k] = v[k] + z_f(a ^ sg[k]);
    }
}

static void z_put_values(const uint8_t *s, size_t nb, float *restrict y)
{
    const uint32_t one = 0x3f800000u;                /* 1.0f */
    for (size_t b = 0; b < nb; b++) {
        const uint32_t *sg = z_sign[s[b]];
        for (int k = 0; k < 8; k++)
            y[8 * b + k] = z_f(one ^ sg[k]);
    }
}

/* Coordinates [start, start + n), in chunks that each begin on a keystream
 * block. With x NULL, writes the values; otherwise y = x + alpha z. */
static void z_run(const sfl_zkey *k, uint64_t start, size_t n, float alpha, const float *x,
                  float *y)
{
    _Alignas(64) uint8_t buf[Z_CHUNK_BYTES];
    uint32_t a = x ? z_u(alpha) : 0x3f800000u;
    uint64_t c = start, end = start + n;

    while (c < end) {
        uint64_t blk = c / Z_BLOCK_COORDS, base = blk * Z_BLOCK_COORDS;
        uint64_t cend = end - base > Z_CHUNK_COORDS ? base + Z_CHUNK_COORDS : end;
        size_t i = (size_t)(c - base), iend = (size_t)(cend - base), nb;
        float *yp = y + (c - start);
        const float *xp = x ? x + (c - start) : NULL;

        z_stream(k, blk, buf, (iend + 7) / 8);
        for (; i < iend && i % 8; i++, yp++)          /* head, up to a byte boundary */
            *yp = (xp ? *xp++ : 0.0f) + z_f(a ^ z_bit_sign(buf, i));
        nb = (iend - i) / 8;
        if (!xp)
            z_put_values(buf + i / 8, nb, yp);
        else if (xp == yp)
            z_add_inplace(buf + i / 8, nb, a, yp);
        else
            z_add_copy(buf + i / 8, nb, a, xp, yp);
        yp += 8 * nb;
        if (xp)
            xp += 8 * nb;
        for (i += 8 * nb; i < iend; i++, yp++)       /* tail */
            *yp = (xp ? *xp++ : 0.0f) + z_f(a ^ z_bit_sign(buf, i));
        c = cend;
    }
}

void sfl_z_values(const sfl_zkey *k, uint64_t start, size_t n, float *out)
{
    z_run(k, start, n, 1.0f, NULL, out);
}

void sfl_z_axpy(const sfl_zkey *k, uint64_t start, size_t n, float alpha, const float *x,
                float *y)
{
    z_run(k, start, n, alpha, x, y);
}

uint64_t sfl_z_model_id(const char *spec)
{
    uint8_t h[32];
    uint64_t id = 0;

    z_hash(h, NULL, 0, z_model_personal, (const uint8_t *)spec, strlen(spec));
    for (int i = 7; i >= 0; i--)
        id = id << 8 | h[i];
    return id;
}

/* Tensors must tile [0, nparams) in order, so that tensor-by-tensor work
 * covers every parameter once and in the same order as a whole-vector pass. */
static int z_layout_ok(const sfl_zlayout *l)
{
    size_t off = 0;

    if (l->ntensors < 0 || l->ntensors > SFL_ZMAX_TENSORS)
        return SFL_EINVAL;
    for (int t = 0; t < l->ntensors; t++) {
        if (l->t[t].off != off || l->t[t].len > SIZE_MAX - off)
            return SFL_EINVAL;
        off += l->t[t].len;
    }
    return off == l->nparams ? 0 : SFL_EINVAL;
}

int sfl_z_model_axpy(const sfl_zlayout *l, const char *domain, const uint8_t seed[SFL_ZSEED_BYTES],
                     float alpha, const float *x, float *y)
{
    size_t dlen;
    int rc;

    if ((rc = z_domain_len(domain, &dlen)) < 0 || (rc = z_layout_ok(l)) < 0)
        return rc;
    for (int t = 0; t < l->ntensors; t++) {
        sfl_zkey k;
        sfl_zkey_derive(&k, domain, l->model_id, (uint32_t)t, seed);
        sfl_z_axpy(&k, 0, l->t[t].len, alpha, x + l->t[t].off, y + l->t[t].off);
    }
    return 0;
}

/* y[i] += sum over the g terms, in order, of alpha_j z_j[i], for the n
 * coordinates whose keystreams are ks[j][0 ..]. Per coordinate the adds
 * happen in term order, exactly as one pass per term would do them; the
 * running sums stay in registers across the terms. */
static void z_replay_piece(const uint8_t (*ks)[Z_REPLAY_COORDS / 8], int g, const uint32_t *a,
                           size_t n, float *restrict y)
{
    size_t nb = n / 8;

    for (size_t b = 0; b < nb; b++) {
        float acc[8];
        for (int k = 0; k < 8; k++)
            acc[k] = y[8 * b + k];
        for (int j = 0; j < g; j++) {
            const uint32_t *sg = z_sign[ks[j][b]];
            for (int k = 0; k < 8; k++)
                acc[k] += z_f(a[j] ^ sg[k]);
        }
        for (int k = 0; k < 8; k++)
            y[8 * b + k] = acc[k];
    }
    for (size_t i = 8 * nb; i < n; i++) {
        float v = y[i];
        for (int j = 0; j < g; j++)
            v += z_f(a[j] ^ z_bit_sign(ks[j], i));
        y[i] = v;
    }
}

int sfl_z_replay(const sfl_zlayout *l, const char *domain, const sfl_zterm *terms, size_t nterms,
                 float *theta)
{
    _Alignas(64) uint8_t ks[Z_REPLAY_GROUP][Z_REPLAY_COORDS / 8];
    uint32_t a[Z_REPLAY_GROUP];
    sfl_zkey *keys;
    size_t dlen, nt;
    int rc;

    if ((rc = z_domain_len(domain, &dlen)) < 0 || (rc = z_layout_ok(l)) < 0)
        return rc;
    nt = (size_t)l->ntensors;
    if (nterms == 0 || nt == 0)
        return 0;
    if (nterms > SIZE_MAX / sizeof *keys / nt)
        return SFL_ENOMEM;
    keys = malloc(nterms * nt * sizeof *keys);
    if (!keys)
        return SFL_ENOMEM;
    for (size_t t = 0; t < nt; t++)
        for (size_t j = 0; j < nterms; j++)
            sfl_zkey_derive(&keys[t * nterms + j], domain, l->model_id, (uint32_t)t,
                            terms[j].seed);

    for (size_t t = 0; t < nt; t++) {
        float *y = theta + l->t[t].off;
        size_t len = l->t[t].len;
        for (size_t pos = 0; pos < len; pos += Z_REPLAY_COORDS) {
            size_t n = len - pos < Z_REPLAY_COORDS ? len - pos : Z_REPLAY_COORDS;
            for (size_t j0 = 0; j0 < nterms; j0 += Z_REPLAY_GROUP) {
                int g = nterms - j0 < Z_REPLAY_GROUP ? (int)(nterms - j0) : Z_REPLAY_GROUP;
                for (int j = 0; j < g; j++) {
                    z_stream(&keys[t * nterms + j0 + (size_t)j], pos / Z_BLOCK_COORDS, ks[j],
                             (n + 7) / 8);
                    a[j] = z_u(terms[j0 + (size_t)j].alpha);
                }
                z_replay_piece((const uint8_t (*)[Z_REPLAY_COORDS / 8])ks, g, a, n, y + pos);
            }
        }
    }
    free(keys);
    return 0;
}

void sfl_z_root(uint64_t run_seed, uint8_t root[32])
{
    uint8_t msg[8];

    z_put_le64(msg, run_seed);
    z_hash(root, NULL, 0, z_root_personal, msg, sizeof msg);
}

void sfl_z_pool_seed(const uint8_t root[32], uint32_t k, uint8_t seed[SFL_ZSEED_BYTES])
{
    uint8_t msg[4];

    z_put_le32(msg, k);
    z_hash(seed, root, 32, z_pool_personal, msg, sizeof msg);
}

void sfl_z_derived_seed(const uint8_t root[32], uint32_t round, const uint8_t client_pk[32],
                        uint32_t step, uint8_t seed[SFL_ZSEED_BYTES])
{
    uint8_t msg[4 + 32 + 4];

    z_put_le32(msg, round);
    memcpy(msg + 4, client_pk, 32);
    z_put_le32(msg + 36, step);
    z_hash(seed, root, 32, z_derive_personal, msg, sizeof msg);
}
