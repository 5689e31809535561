/* Framing: each frame is a 4-byte big-endian length followed by that many
 * bytes (one Noise message, at most SFL_NOISE_MAX). The length is checked
 * against the reader's current cap before anything is buffered. */
#ifndef SFL_FRAME_H
#define SFL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define SFL_FRAME_HDR 4

typedef struct {
    uint8_t hdr[SFL_FRAME_HDR];
    size_t hdr_have;
    uint8_t *body;     /* owned; sized by the frame being read */
    size_t body_cap;   /* bytes allocated for body */
    size_t body_len;   /* declared length of the frame being read */
    size_t body_have;
    size_t max_len;    /* cap on a frame's length; the caller may lower it (before auth) */
} sfl_frame_reader;

/* max_len above SFL_NOISE_MAX is clamped to it; nothing is allocated. */
void sfl_frame_reader_init(sfl_frame_reader *r, size_t max_len);
void sfl_frame_reader_free(sfl_frame_reader *r);
/* Consume bytes from data. Returns 1 with *frame and *frame_len set (valid until
 * the next call; the frame lives in r->body, never in data) when a frame is
 * complete, 0 when more input is needed, or SFL_ETOOBIG / SFL_EFORMAT (zero
 * length) on a bad header, checked before anything is buffered; such an
 * error is sticky (close the peer). SFL_ENOMEM if the body buffer cannot be
 * allocated. *used says how many bytes of data were consumed; call again
 * with the rest. */
int sfl_frame_feed(sfl_frame_reader *r, const uint8_t *data, size_t len, size_t *used,
                   const uint8_t **frame, size_t *frame_len);
/* Between frames, give back a body buffer larger than SFL_FRAME_KEEP bytes
 * (the last frame returned is then gone): a session that is mostly idle
 * holds no 64 KiB buffer. A frame in progress keeps its buffer. */
#define SFL_FRAME_KEEP 512
void sfl_frame_reader_trim(sfl_frame_reader *r);
/* Four zero bytes (a zero-length header) are never a frame: the server
 * sends them, unauthenticated, to a connection it cannot take now (too many
 * not yet authenticated) just before it closes it. A client that reads them
 * instead of handshake message 2 tries again later. Forging them gains an
 * attacker nothing a dropped connection would not. */
#define SFL_FRAME_BUSY_LEN SFL_FRAME_HDR
/* 1 when the reader's last header was the busy signal. */
int sfl_frame_is_busy(const sfl_frame_reader *r);
/* Write the 4-byte header for a body of len bytes. */
void sfl_frame_put_header(uint8_t hdr[SFL_FRAME_HDR], uint32_t len);

#endif
