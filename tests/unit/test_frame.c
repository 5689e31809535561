/* Frame reader: any split of the input, several frames per buffer, and
 * lengths checked before anything is buffered or allocated. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "err.h"
#include "frame.h"
#include "noise.h"

#define MAX_FRAMES 8

typedef struct {
    uint8_t *bytes;
    size_t len;
} frame_copy;

typedef struct {
    frame_copy f[MAX_FRAMES];
    size_t n;
} collected;

/* Builds a stream of frames with the given body lengths; body i is filled
 * with bytes derived from i and the offset. */
static uint8_t *make_stream(const size_t *lens, size_t nframes, size_t *total)
{
    size_t sz = 0;
    for (size_t i = 0; i < nframes; i++)
        sz += SFL_FRAME_HDR + lens[i];
    uint8_t *buf = malloc(sz);
    assert_non_null(buf);
    size_t off = 0;
    for (size_t i = 0; i < nframes; i++) {
        sfl_frame_put_header(buf + off, (uint32_t)lens[i]);
        off += SFL_FRAME_HDR;
        for (size_t j = 0; j < lens[i]; j++)
            buf[off + j] = (uint8_t)(i * 31 + j * 7);
        off += lens[i];
    }
    *total = sz;
    return buf;
}

/* Feeds one chunk, collecting every completed frame. */
static void feed_all(sfl_frame_reader *r, const uint8_t *data, size_t len, collected *c)
{
    while (len > 0) {
        const uint8_t *fr = NULL;
        size_t flen = 0, used = 0;
        int rc = sfl_frame_feed(r, data, len, &used, &fr, &flen);
        assert_true(rc == 0 || rc == 1);
        assert_true(used <= len);
        if (rc == 1) {
            assert_true(c->n < MAX_FRAMES);
            c->f[c->n].bytes = malloc(flen);
            assert_non_null(c->f[c->n].bytes);
            memcpy(c->f[c->n].bytes, fr, flen);
            c->f[c->n].len = flen;
            c->n++;
        } else {
            /* needing more input means everything was consumed */
            assert_int_equal(used, len);
        }
        data += used;
        len -= used;
    }
}

static void check_and_free(collected *c, const size_t *lens, size_t nframes)
{
    assert_int_equal(c->n, nframes);
    for (size_t i = 0; i < nframes; i++) {
        assert_int_equal(c->f[i].len, lens[i]);
        for (size_t j = 0; j < lens[i]; j++)
            assert_int_equal(c->f[i].bytes[j], (uint8_t)(i * 31 + j * 7));
        free(c->f[i].bytes);
    }
    c->n = 0;
}

static void test_split_every_boundary(void **state)
{
    (void)state;
    const size_t lens[] = {5, 300, 1};
    size_t total = 0;
    uint8_t *s = make_stream(lens, 3, &total);

    /* one cut at every position */
    for (size_t cut = 0; cut <= total; cut++) {
        sfl_frame_reader r;
        collected c = {0};
        sfl_frame_reader_init(&r, SFL_NOISE_MAX);
        feed_all(&r, s, cut, &c);
        feed_all(&r, s + cut, total - cut, &c);
        check_and_free(&c, lens, 3);
        assert_int_equal(r.hdr_have, 0);
        sfl_frame_reader_free(&r);
    }
    /* two cuts at every pair of positions within the first two frames */
    for (size_t a = 0; a <= 40; a++) {
        for (size_t b = a; b <= total; b += 13) {
            sfl_frame_reader r;
            collected c = {0};
            sfl_frame_reader_init(&r, SFL_NOISE_MAX);
            feed_all(&r, s, a, &c);
            feed_all(&r, s + a, b - a, &c);
            feed_all(&r, s + b, total - b, &c);
            check_and_free(&c, lens, 3);
            sfl_frame_reader_free(&r);
        }
    }
    /* byte by byte */
    sfl_frame_reader r;
    collected c = {0};
    sfl_frame_reader_init(&r, SFL_NOISE_MAX);
    for (size_t i = 0; i < total; i++)
        feed_all(&r, s + i, 1, &c);
    check_and_free(&c, lens, 3);
    sfl_frame_reader_free(&r);
    free(s);
}

static void test_several_in_one_buffer(void **state)
{
    (void)state;
    const size_t lens[] = {1, 2, 3, 1000, 65535, 4};
    size_t total = 0;
    uint8_t *s = make_stream(lens, 6, &total);
    sfl_frame_reader r;
    collected c = {0};

    sfl_frame_reader_init(&r, SFL_NOISE_MAX);
    /* the first call returns after exactly one frame */
    const uint8_t *fr = NULL;
    size_t flen = 0, used = 0;
    assert_int_equal(sfl_frame_feed(&r, s, total, &used, &fr, &flen), 1);
    assert_int_equal(used, SFL_FRAME_HDR + 1);
    assert_int_equal(flen, 1);
    assert_ptr_equal(fr, r.body);
    feed_all(&r, s + used, total - used, &c);
    assert_int_equal(c.n, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(c.f[i].len, lens[i + 1]);
        assert_int_equal(c.f[i].bytes[0], (uint8_t)((i + 1) * 31));
        free(c.f[i].bytes);
    }
    sfl_frame_reader_free(&r);
    assert_null(r.body);
    free(s);
}

static void test_oversize_rejected_before_alloc(void **state)
{
    (void)state;
    sfl_frame_reader r;
    uint8_t buf[SFL_FRAME_HDR + 8] = {0};
    const uint8_t *fr = NULL;
    size_t flen = 0, used = 0;

    /* a pre-authentication cap */
    sfl_frame_reader_init(&r, 100);
    sfl_frame_put_header(buf, 101);
    assert_int_equal(sfl_frame_feed(&r, buf, sizeof buf, &used, &fr, &flen), SFL_ETOOBIG);
    assert_int_equal(used, SFL_FRAME_HDR);
    assert_null(r.body);
    /* sticky: nothing more is consumed */
    assert_int_equal(sfl_frame_feed(&r, buf + used, sizeof buf - used, &used, &fr, &flen),
                     SFL_ETOOBIG);
    assert_int_equal(used, 0);
    assert_null(r.body);
    sfl_frame_reader_free(&r);

    /* over the Noise maximum, whatever the cap */
    sfl_frame_reader_init(&r, SIZE_MAX);
    assert_int_equal(r.max_len, SFL_NOISE_MAX);
    sfl_frame_put_header(buf, SFL_NOISE_MAX + 1);
    assert_int_equal(sfl_frame_feed(&r, buf, sizeof buf, &used, &fr, &flen), SFL_ETOOBIG);
    assert_null(r.body);
    sfl_frame_reader_free(&r);

    /* the largest 32-bit length, header split over calls */
    sfl_frame_reader_init(&r, SFL_NOISE_MAX);
    sfl_frame_put_header(buf, UINT32_MAX);
    assert_int_equal(sfl_frame_feed(&r, buf, 3, &used, &fr, &flen), 0);
    assert_int_equal(used, 3);
    assert_int_equal(sfl_frame_feed(&r, buf + 3, 5, &used, &fr, &flen), SFL_ETOOBIG);
    assert_int_equal(used, 1);
    assert_null(r.body);
    sfl_frame_reader_free(&r);
}

static void test_zero_length_rejected(void **state)
{
    (void)state;
    sfl_frame_reader r;
    uint8_t buf[8] = {0, 0, 0, 0, 1, 2, 3, 4};
    const uint8_t *fr = NULL;
    size_t flen = 0, used = 0;

    sfl_frame_reader_init(&r, SFL_NOISE_MAX);
    assert_int_equal(sfl_frame_feed(&r, buf, sizeof buf, &used, &fr, &flen), SFL_EFORMAT);
    assert_int_equal(used, SFL_FRAME_HDR);
    assert_null(r.body);
    assert_int_equal(sfl_frame_feed(&r, buf + 4, 4, &used, &fr, &flen), SFL_EFORMAT);
    sfl_frame_reader_free(&r);
}

static void test_exact_cap_accepted(void **state)
{
    (void)state;
    const size_t caps[] = {100, SFL_NOISE_MAX};
    for (size_t k = 0; k < 2; k++) {
        size_t total = 0;
        uint8_t *s = make_stream(&caps[k], 1, &total);
        sfl_frame_reader r;
        collected c = {0};
        sfl_frame_reader_init(&r, caps[k]);
        feed_all(&r, s, total, &c);
        check_and_free(&c, &caps[k], 1);
        sfl_frame_reader_free(&r);
        free(s);
    }
}

static void test_lazy_allocation(void **state)
{
    (void)state;
    sfl_frame_reader r;
    uint8_t buf[SFL_FRAME_HDR + 3];
    const uint8_t *fr = NULL;
    size_t flen = 0, used = 0;

    sfl_frame_reader_init(&r, 10);
    assert_null(r.body);
    sfl_frame_put_header(buf, 3);
    buf[4] = 'a';
    buf[5] = 'b';
    buf[6] = 'c';
    /* a complete, accepted header alone allocates nothing */
    assert_int_equal(sfl_frame_feed(&r, buf, SFL_FRAME_HDR, &used, &fr, &flen), 0);
    assert_null(r.body);
    assert_int_equal(r.body_len, 3);
    /* the first body byte does */
    assert_int_equal(sfl_frame_feed(&r, buf + 4, 1, &used, &fr, &flen), 0);
    assert_non_null(r.body);
    assert_int_equal(sfl_frame_feed(&r, buf + 5, 2, &used, &fr, &flen), 1);
    assert_int_equal(flen, 3);
    assert_memory_equal(fr, "abc", 3);
    /* empty input is fine */
    assert_int_equal(sfl_frame_feed(&r, NULL, 0, &used, &fr, &flen), 0);
    assert_int_equal(used, 0);
    /* the buffer is as large as the frame, not the cap */
    assert_int_equal(r.body_cap, 3);
    sfl_frame_reader_free(&r);
}

/* Between frames a large buffer is given back; a frame in progress keeps it. */
static void test_trim(void **state)
{
    (void)state;
    static uint8_t buf[SFL_FRAME_HDR + 2000];
    const uint8_t *fr = NULL;
    size_t flen = 0, used = 0;
    sfl_frame_reader r;
    sfl_frame_reader_init(&r, SFL_NOISE_MAX);
    sfl_frame_put_header(buf, 2000);
    memset(buf + 4, 7, 2000);
    assert_int_equal(sfl_frame_feed(&r, buf, 1004, &used, &fr, &flen), 0);
    assert_int_equal(r.body_cap, 2000);
    sfl_frame_reader_trim(&r); /* mid-frame: kept */
    assert_non_null(r.body);
    assert_int_equal(sfl_frame_feed(&r, buf + 1004, 1000, &used, &fr, &flen), 1);
    assert_int_equal(flen, 2000);
    assert_int_equal(fr[1999], 7);
    sfl_frame_reader_trim(&r); /* between frames: given back */
    assert_null(r.body);
    assert_int_equal(r.body_cap, 0);
    /* a small buffer stays */
    sfl_frame_put_header(buf, 100);
    assert_int_equal(sfl_frame_feed(&r, buf, 104, &used, &fr, &flen), 1);
    sfl_frame_reader_trim(&r);
    assert_non_null(r.body);
    /* and the reader still works after a trim */
    sfl_frame_put_header(buf, 2000);
    assert_int_equal(sfl_frame_feed(&r, buf, 2004, &used, &fr, &flen), 1);
    assert_int_equal(flen, 2000);
    sfl_frame_reader_free(&r);
}

static void test_put_header(void **state)
{
    (void)state;
    uint8_t h[SFL_FRAME_HDR];
    sfl_frame_put_header(h, 0x01020304u);
    assert_memory_equal(h, "\x01\x02\x03\x04", 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_every_boundary),
        cmocka_unit_test(test_several_in_one_buffer),
        cmocka_unit_test(test_oversize_rejected_before_alloc),
        cmocka_unit_test(test_zero_length_rejected),
        cmocka_unit_test(test_exact_cap_accepted),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_lazy_allocation),
        cmocka_unit_test(test_put_header),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
