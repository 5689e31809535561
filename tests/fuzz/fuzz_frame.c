/* The frame reader (common/frame.h) against a reference parser, fed in
 * pieces whose sizes come from the input.
 *
 * Input: byte 0 = flags (low 4 bits: how many piece-size bytes follow;
 * 0x10: trim the reader after every frame; 0x20: trim between pieces, where
 * a frame in progress must survive), then the piece sizes (0 = the rest),
 * used in turn, then the byte stream itself. The stream is read three times:
 * with the pre-auth cap, with the post-auth cap, and with the pre-auth cap
 * raised after the first frame as the channel does after its handshake. */
#include <string.h>

#include "chan.h"
#include "err.h"
#include "frame.h"
#include "fuzz.h"
#include "noise.h"

#define PRE_AUTH_CAP (SFL_HS1_LEN > SFL_HS2_LEN ? SFL_HS1_LEN : SFL_HS2_LEN)

enum { CAP_PRE, CAP_POST, CAP_RAISED };

typedef struct {
    const uint8_t *s;
    size_t len;
    size_t pos;   /* start of the next frame's header */
} ref_parser;

/* The reference: what the next frame of the stream is, with the cap in force
 * when its header completes. 1 = a whole frame (*body, *blen), 0 = the stream
 * ends inside it, or the error the reader must give. */
static int ref_next(ref_parser *p, size_t cap, const uint8_t **body, size_t *blen)
{
    if (p->len - p->pos < SFL_FRAME_HDR)
        return 0;
    const uint8_t *h = p->s + p->pos;
    uint32_t n = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    if (n == 0)
        return SFL_EFORMAT;
    if (n > cap || n > SFL_NOISE_MAX)
        return SFL_ETOOBIG;
    if (p->len - p->pos - SFL_FRAME_HDR < n)
        return 0;
    *body = h + SFL_FRAME_HDR;
    *blen = n;
    p->pos += SFL_FRAME_HDR + n;
    return 1;
}

static void run(const uint8_t *sizes, size_t nsizes, int flags, const uint8_t *s, size_t len,
                int mode)
{
    sfl_frame_reader r;
    ref_parser ref = { s, len, 0 };
    size_t cap = mode == CAP_POST ? SFL_NOISE_MAX : PRE_AUTH_CAP;
    size_t frames = 0, off = 0, k = 0;
    int failed = 0;

    sfl_frame_reader_init(&r, cap);
    FUZZ_CHECK(r.max_len == cap);
    while (off < len && !failed) {
        size_t piece = nsizes ? sizes[k++ % nsizes] : 0;
        if (piece == 0 || piece > len - off)
            piece = len - off;
        const uint8_t *p = s + off;
        size_t left = piece;
        const uint8_t *frame = NULL;
        size_t flen = 0, used = 99;

        int rc = sfl_frame_feed(&r, p, 0, &used, &frame, &flen);
        FUZZ_CHECK(rc <= 0 && used == 0);
        while (left > 0) {
            rc = sfl_frame_feed(&r, p, left, &used, &frame, &flen);
            FUZZ_CHECK(used <= left);
            p += used;
            left -= used;
            off += used;
            if (rc == 0) {
                /* more input needed: everything offered was taken */
                FUZZ_CHECK(left == 0);
                break;
            }
            const uint8_t *want = NULL;
            size_t wlen = 0;
            int expect = ref_next(&ref, cap, &want, &wlen);
            if (rc < 0) {
                FUZZ_CHECK(rc == expect);
                /* sticky: the same error, nothing consumed */
                size_t used2 = 99;
                FUZZ_CHECK(sfl_frame_feed(&r, p, left, &used2, &frame, &flen) == rc);
                FUZZ_CHECK(used2 == 0);
                failed = 1;
                break;
            }
            FUZZ_CHECK(rc == 1 && expect == 1);
            FUZZ_CHECK(flen == wlen && frame != NULL && memcmp(frame, want, wlen) == 0);
            FUZZ_CHECK(off == ref.pos);
            frames++;
            if (mode == CAP_RAISED && frames == 1) {
                cap = SFL_NOISE_MAX;
                r.max_len = cap;
            }
            if (flags & 0x10)
                sfl_frame_reader_trim(&r);
        }
        if (flags & 0x20)
            sfl_frame_reader_trim(&r);
    }
    if (!failed) {
        /* the stream ended inside a frame (or between frames) */
        const uint8_t *want = NULL;
        size_t wlen = 0;
        int expect = ref_next(&ref, cap, &want, &wlen);
        FUZZ_CHECK(expect == 0);
        FUZZ_CHECK(r.hdr_have + r.body_have == len - ref.pos);
        FUZZ_CHECK(r.body_len <= cap);
    }
    sfl_frame_reader_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int flags = data[0];
    size_t nsizes = (size_t)(flags & 0x0f);
    if (nsizes > size - 1)
        nsizes = size - 1;
    const uint8_t *sizes = data + 1;
    const uint8_t *s = data + 1 + nsizes;
    size_t len = size - 1 - nsizes;

    run(sizes, nsizes, flags, s, len, CAP_PRE);
    run(sizes, nsizes, flags, s, len, CAP_POST);
    run(sizes, nsizes, flags, s, len, CAP_RAISED);
    return 0;
}
