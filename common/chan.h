/* The secure channel: a Noise IK handshake followed by encrypted,
 * length-prefixed frames that each carry one protobuf Envelope. It only
 * transforms bytes; the caller moves them (libuv on the server, blocking
 * sockets on the client). */
#ifndef SFL_CHAN_H
#define SFL_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "noise.h"
#include "seedfl.pb-c.h"

#define SFL_PROTOCOL_VERSION 1
/* The prologue binds both sides to this product and protocol version. */
#define SFL_PROLOGUE "seedfl/1 Noise_IK_25519_ChaChaPoly_BLAKE2b"
/* Handshake payloads: message 1 carries a 12-byte TAI64N timestamp, message 2 none. */
#define SFL_HS_TS_LEN 12
#define SFL_HS1_LEN SFL_IK_MSG1_LEN(SFL_HS_TS_LEN)
#define SFL_HS2_LEN SFL_IK_MSG2_LEN(0)
/* Largest envelope that fits in one frame. */
#define SFL_ENVELOPE_MAX (SFL_NOISE_MAX - SFL_TAG_LEN)
/* Payload bytes per chunk of a model or update: leaves room for the
 * envelope's own fields. */
#define SFL_CHUNK_BYTES 65000

enum sfl_chan_state { SFL_CHAN_HANDSHAKE, SFL_CHAN_OPEN, SFL_CHAN_FAILED };

typedef struct {
    sfl_cipher tx, rx;
} sfl_chan_keys;

typedef struct {
    enum sfl_chan_state state;
    int initiator;
    sfl_hs *hs;              /* during the handshake only */
    sfl_chan_keys *keys;     /* a secure slot (secmem.h), after the handshake only */
    sfl_frame_reader rd;
    uint8_t peer[32];        /* peer's static public key (after message 1) */
    uint8_t hs_ts[SFL_HS_TS_LEN]; /* responder: initiator's timestamp */
} sfl_chan;

void sfl_chan_init(sfl_chan *c);
void sfl_chan_free(sfl_chan *c);

/* Initiator: build message 1 (with its frame header) into out
 * (SFL_FRAME_HDR + SFL_HS1_LEN bytes). e_priv NULL = fresh random key. */
int sfl_chan_client_start(sfl_chan *c, const sfl_keypair *s, const uint8_t server_pub[32],
                          const uint8_t *e_priv, uint8_t *out, size_t *out_len);
/* Initiator: consume message 2 (a frame body). */
int sfl_chan_client_finish(sfl_chan *c, const uint8_t *msg, size_t len);
/* Responder: consume message 1 (a frame body); on success c->peer holds the
 * initiator's static key for the caller's allow-list check. */
int sfl_chan_server_read(sfl_chan *c, const sfl_keypair *s, const uint8_t *e_priv,
                         const uint8_t *msg, size_t len);
/* Responder: build message 2 (with frame header) into out
 * (SFL_FRAME_HDR + SFL_HS2_LEN bytes) and open the channel. */
int sfl_chan_server_reply(sfl_chan *c, uint8_t *out, size_t *out_len);
/* The same in two steps, so that the X25519 work can run on another
 * thread: sfl_chan_server_write builds message 2 (it allocates no secure
 * memory and touches nothing but c's handshake state), then
 * sfl_chan_server_open opens the channel (a secure slot: the secmem.h
 * thread). A call out of turn is SFL_EPROTO and changes nothing; any other
 * failure leaves the channel failed. */
int sfl_chan_server_write(sfl_chan *c, uint8_t *out, size_t *out_len);
int sfl_chan_server_open(sfl_chan *c);

/* Pack, encrypt and frame an envelope; *out is malloc'd (caller frees).
 * SFL_ETOOBIG when the envelope does not fit in one frame. */
int sfl_chan_seal(sfl_chan *c, const Seedfl__Envelope *env, uint8_t **out, size_t *out_len);
/* The same in two steps, for a sender that holds messages back: the nonce
 * is taken when a frame is sealed, so frames must be sealed in the order
 * they are sent. sfl_chan_pack packs an envelope into a malloc'd frame
 * (*out_len bytes: header, envelope, room for the tag) without touching a
 * channel; sfl_chan_seal_packed encrypts such a frame in place and writes
 * its header. SFL_ETOOBIG as above; SFL_EPROTO before the handshake is
 * done. */
int sfl_chan_pack(const Seedfl__Envelope *env, uint8_t **out, size_t *out_len);
int sfl_chan_seal_packed(sfl_chan *c, uint8_t *buf, size_t len);
/* Decrypt a frame body in place and unpack it; free *env with
 * seedfl__envelope__free_unpacked(*env, NULL). SFL_ECRYPTO on a bad tag
 * (tampered, replayed or reordered frame), SFL_EFORMAT on a bad envelope. */
int sfl_chan_open(sfl_chan *c, uint8_t *frame, size_t len, Seedfl__Envelope **env);

/* BLAKE2b-256 of float32 parameters in little-endian byte order. */
void sfl_params_digest(const float *p, size_t n, uint8_t out[32]);

#endif
