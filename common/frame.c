#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "noise.h"

/* max_len is clamped to SFL_NOISE_MAX: no frame is ever larger. Nothing is
 * allocated here. */
void sfl_frame_reader_init(sfl_frame_reader *r, size_t max_len)
{
    memset(r, 0, sizeof *r);
    r->max_len = max_len < SFL_NOISE_MAX ? max_len : SFL_NOISE_MAX;
}

void sfl_frame_reader_free(sfl_frame_reader *r)
{
    free(r->body);
    r->body = NULL;
    r->body_cap = 0;
    r->hdr_have = r->body_len = r->body_have = 0;
}

/* A rejected header stays in the reader (hdr_have = 4, body_len = 0), so
 * every later call returns the same error without consuming input: the
 * caller is expected to close the connection. */
int sfl_frame_feed(sfl_frame_reader *r, const uint8_t *data, size_t len, size_t *used,
                   const uint8_t **frame, size_t *frame_len)
{
    size_t i = 0;

    *used = 0;
    while (r->hdr_have < SFL_FRAME_HDR && i < len)
        r->hdr[r->hdr_have++] = data[i++];
    *used = i;
    if (r->hdr_have < SFL_FRAME_HDR)
        return 0;

    if (r->body_len == 0) {
        uint32_t n = (uint32_t)r->hdr[0] << 24 | (uint32_t)r->hdr[1] << 16 |
                     (uint32_t)r->hdr[2] << 8 | (uint32_t)r->hdr[3];
        if (n == 0)
            return SFL_EFORMAT;
        if (n > r->max_len || n > SFL_NOISE_MAX)
            return SFL_ETOOBIG;
        r->body_len = n;
        r->body_have = 0;
    }

    size_t take = len - i;
    if (take > r->body_len - r->body_have)
        take = r->body_len - r->body_have;
    if (take > 0) {
        /* sized by the declared length (already checked against the cap),
         * so an idle or unauthenticated peer holds little */
        if (r->body_cap < r->body_len) {
            uint8_t *b = realloc(r->body, r->body_len);
            if (!b)
                return SFL_ENOMEM;
            r->body = b;
            r->body_cap = r->body_len;
        }
        memcpy(r->body + r->body_have, data + i, take);
        r->body_have += take;
        i += take;
        *used = i;
    }
    if (r->body_have < r->body_len)
        return 0;

    *frame = r->body;
    *frame_len = r->body_len;
    r->hdr_have = r->body_len = r->body_have = 0;
    return 1;
}

void sfl_frame_reader_trim(sfl_frame_reader *r)
{
    if (r->body_len == 0 && r->body_cap > SFL_FRAME_KEEP) {
        free(r->body);
        r->body = NULL;
        r->body_cap = 0;
    }
}

void sfl_frame_put_header(uint8_t hdr[SFL_FRAME_HDR], uint32_t len)
{
    hdr[0] = (uint8_t)(len >> 24);
    hdr[1] = (uint8_t)(len >> 16);
    hdr[2] = (uint8_t)(len >> 8);
    hdr[3] = (uint8_t)len;
}

int sfl_frame_is_busy(const sfl_frame_reader *r)
{
    static const uint8_t zero[SFL_FRAME_HDR];
    return r->hdr_have == SFL_FRAME_HDR && r->body_len == 0 && !memcmp(r->hdr, zero, sizeof zero);
}
