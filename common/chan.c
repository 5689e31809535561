#include "chan.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "err.h"
#include "secmem.h"

_Static_assert(sizeof(sfl_chan_keys) <= SFL_SECMEM_SLOT, "session keys fit a secure slot");

void sfl_chan_init(sfl_chan *c)
{
    memset(c, 0, sizeof *c);
    c->state = SFL_CHAN_HANDSHAKE;
    /* before authentication only handshake-sized frames are accepted */
    sfl_frame_reader_init(&c->rd, SFL_HS1_LEN > SFL_HS2_LEN ? SFL_HS1_LEN : SFL_HS2_LEN);
}

static void drop_hs(sfl_chan *c)
{
    if (c->hs) {
        sfl_hs_wipe(c->hs);
        free(c->hs);
        c->hs = NULL;
    }
}

void sfl_chan_free(sfl_chan *c)
{
    drop_hs(c);
    if (c->keys) {
        sfl_cipher_wipe(&c->keys->tx);
        sfl_cipher_wipe(&c->keys->rx);
        sfl_secmem_free(c->keys);
        c->keys = NULL;
    }
    sfl_frame_reader_free(&c->rd);
    c->state = SFL_CHAN_FAILED;
}

/* TAI64N: 8-byte big-endian 2^62 + seconds, 4-byte big-endian nanoseconds. */
static void tai64n_now(uint8_t out[SFL_HS_TS_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t s = 0x400000000000000aULL + (uint64_t)ts.tv_sec;
    uint32_t ns = (uint32_t)ts.tv_nsec;
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(s >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        out[8 + i] = (uint8_t)(ns >> (24 - 8 * i));
}

static int open_keys(sfl_chan *c)
{
    c->keys = sfl_secmem_alloc(sizeof *c->keys);
    if (!c->keys)
        return SFL_ENOMEM;
    int rc = c->initiator ? sfl_hs_split(c->hs, &c->keys->tx, &c->keys->rx)
                          : sfl_hs_split(c->hs, &c->keys->rx, &c->keys->tx);
    drop_hs(c);
    if (rc < 0)
        return rc;
    c->state = SFL_CHAN_OPEN;
    c->rd.max_len = SFL_NOISE_MAX;
    return 0;
}

static int new_hs(sfl_chan *c, int initiator, const sfl_keypair *s, const uint8_t *e_priv,
                  const uint8_t *rs)
{
    uint8_t e[32];
    if (c->state != SFL_CHAN_HANDSHAKE || c->hs)
        return SFL_EPROTO;
    c->hs = malloc(sizeof *c->hs);
    if (!c->hs)
        return SFL_ENOMEM;
    if (e_priv)
        memcpy(e, e_priv, 32);
    else
        randombytes_buf(e, sizeof e);
    c->initiator = initiator;
    int rc = sfl_hs_init(c->hs, initiator, (const uint8_t *)SFL_PROLOGUE, strlen(SFL_PROLOGUE),
                         s, e, rs);
    sodium_memzero(e, sizeof e);
    return rc;
}

int sfl_chan_client_start(sfl_chan *c, const sfl_keypair *s, const uint8_t server_pub[32],
                          const uint8_t *e_priv, uint8_t *out, size_t *out_len)
{
    int rc = new_hs(c, 1, s, e_priv, server_pub);
    if (rc < 0)
        goto fail;
    uint8_t ts[SFL_HS_TS_LEN];
    tai64n_now(ts);
    size_t n = 0;
    uint8_t msg[SFL_HS1_LEN + 16];
    /* sfl_hs_write wants room for a whole Noise message; use a heap buffer */
    uint8_t *buf = malloc(SFL_NOISE_MAX);
    if (!buf) {
        rc = SFL_ENOMEM;
        goto fail;
    }
    rc = sfl_hs_write(c->hs, ts, sizeof ts, buf, &n);
    if (rc == 0 && n != SFL_HS1_LEN)
        rc = SFL_EPROTO;
    if (rc == 0)
        memcpy(msg, buf, n);
    free(buf);
    if (rc < 0)
        goto fail;
    memcpy(c->peer, server_pub, 32);
    sfl_frame_put_header(out, (uint32_t)n);
    memcpy(out + SFL_FRAME_HDR, msg, n);
    *out_len = SFL_FRAME_HDR + n;
    return 0;
fail:
    drop_hs(c);
    c->state = SFL_CHAN_FAILED;
    return rc;
}

int sfl_chan_client_finish(sfl_chan *c, const uint8_t *msg, size_t len)
{
    int rc;
    uint8_t payload[64];
    size_t plen = 0;
    if (c->state != SFL_CHAN_HANDSHAKE || !c->hs || !c->initiator) {
        rc = SFL_EPROTO;
        goto fail;
    }
    if (len != SFL_HS2_LEN) {
        rc = SFL_EFORMAT;
        goto fail;
    }
    /* message 2 has an empty payload, so 64 bytes of room is plenty */
    rc = sfl_hs_read(c->hs, msg, len, payload, &plen);
    if (rc < 0)
        goto fail;
    if (plen != 0) {
        rc = SFL_EFORMAT;
        goto fail;
    }
    rc = open_keys(c);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    drop_hs(c);
    c->state = SFL_CHAN_FAILED;
    return rc;
}

int sfl_chan_server_read(sfl_chan *c, const sfl_keypair *s, const uint8_t *e_priv,
                         const uint8_t *msg, size_t len)
{
    uint8_t payload[64];
    size_t plen = 0;
    int rc;
    if (len != SFL_HS1_LEN) {
        rc = SFL_EFORMAT;
        goto fail;
    }
    rc = new_hs(c, 0, s, e_priv, NULL);
    if (rc < 0)
        goto fail;
    rc = sfl_hs_read(c->hs, msg, len, payload, &plen);
    if (rc < 0)
        goto fail;
    if (plen != SFL_HS_TS_LEN) {
        rc = SFL_EFORMAT;
        goto fail;
    }
    memcpy(c->hs_ts, payload, SFL_HS_TS_LEN);
    memcpy(c->peer, c->hs->rs, 32);
    return 0;
fail:
    drop_hs(c);
    c->state = SFL_CHAN_FAILED;
    return rc;
}

int sfl_chan_server_write(sfl_chan *c, uint8_t *out, size_t *out_len)
{
    int rc;
    size_t n = 0;
    uint8_t *buf = NULL;
    /* out of turn: refused, the channel untouched */
    if (c->state != SFL_CHAN_HANDSHAKE || !c->hs || c->initiator || c->hs->step != 1)
        return SFL_EPROTO;
    buf = malloc(SFL_NOISE_MAX);
    if (!buf) {
        rc = SFL_ENOMEM;
        goto fail;
    }
    rc = sfl_hs_write(c->hs, NULL, 0, buf, &n);
    if (rc == 0 && n != SFL_HS2_LEN)
        rc = SFL_EPROTO;
    if (rc < 0)
        goto fail;
    sfl_frame_put_header(out, (uint32_t)n);
    memcpy(out + SFL_FRAME_HDR, buf, n);
    *out_len = SFL_FRAME_HDR + n;
    free(buf);
    return 0;
fail:
    free(buf);
    drop_hs(c);
    c->state = SFL_CHAN_FAILED;
    return rc;
}

int sfl_chan_server_open(sfl_chan *c)
{
    /* message 2 written (step 2), or refused as out of turn */
    if (c->state != SFL_CHAN_HANDSHAKE || !c->hs || c->initiator || c->hs->step != 2)
        return SFL_EPROTO;
    int rc = open_keys(c);
    if (rc < 0) {
        drop_hs(c);
        c->state = SFL_CHAN_FAILED;
    }
    return rc;
}

int sfl_chan_server_reply(sfl_chan *c, uint8_t *out, size_t *out_len)
{
    int rc = sfl_chan_server_write(c, out, out_len);
    return rc < 0 ? rc : sfl_chan_server_open(c);
}

int sfl_chan_pack(const Seedfl__Envelope *env, uint8_t **out, size_t *out_len)
{
    size_t n = seedfl__envelope__get_packed_size(env);
    if (n > SFL_ENVELOPE_MAX)
        return SFL_ETOOBIG;
    size_t total = SFL_FRAME_HDR + n + SFL_TAG_LEN;
    uint8_t *buf = malloc(total);
    if (!buf)
        return SFL_ENOMEM;
    seedfl__envelope__pack(env, buf + SFL_FRAME_HDR);
    *out = buf;
    *out_len = total;
    return 0;
}

int sfl_chan_seal_packed(sfl_chan *c, uint8_t *buf, size_t len)
{
    if (c->state != SFL_CHAN_OPEN)
        return SFL_EPROTO;
    if (len < SFL_FRAME_HDR + SFL_TAG_LEN)
        return SFL_EINVAL;
    size_t n = len - SFL_FRAME_HDR - SFL_TAG_LEN;
    uint8_t *body = buf + SFL_FRAME_HDR;
    int rc = sfl_cipher_encrypt(&c->keys->tx, NULL, 0, body, n, body);
    if (rc < 0)
        return rc;
    sfl_frame_put_header(buf, (uint32_t)(n + SFL_TAG_LEN));
    return 0;
}

int sfl_chan_seal(sfl_chan *c, const Seedfl__Envelope *env, uint8_t **out, size_t *out_len)
{
    if (c->state != SFL_CHAN_OPEN)
        return SFL_EPROTO;
    uint8_t *buf;
    size_t total;
    int rc = sfl_chan_pack(env, &buf, &total);
    if (rc < 0)
        return rc;
    if ((rc = sfl_chan_seal_packed(c, buf, total)) < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    *out_len = total;
    return 0;
}

int sfl_chan_open(sfl_chan *c, uint8_t *frame, size_t len, Seedfl__Envelope **env)
{
    *env = NULL;
    if (c->state != SFL_CHAN_OPEN)
        return SFL_EPROTO;
    if (len < SFL_TAG_LEN || len > SFL_NOISE_MAX)
        return SFL_EFORMAT;
    int rc = sfl_cipher_decrypt(&c->keys->rx, NULL, 0, frame, len, frame);
    if (rc < 0)
        return rc;
    Seedfl__Envelope *e = seedfl__envelope__unpack(NULL, len - SFL_TAG_LEN, frame);
    if (!e)
        return SFL_EFORMAT;
    if (e->msg_case == SEEDFL__ENVELOPE__MSG__NOT_SET) {
        seedfl__envelope__free_unpacked(e, NULL);
        return SFL_EFORMAT;
    }
    *env = e;
    return 0;
}

void sfl_params_digest(const float *p, size_t n, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    crypto_generichash_update(&st, (const unsigned char *)p, n * sizeof(float));
#else
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &p[i], 4);
        uint8_t b[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
        crypto_generichash_update(&st, b, 4);
    }
#endif
    crypto_generichash_final(&st, out, 32);
}
