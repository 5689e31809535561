/* Makes the seed corpora of the fuzz harnesses, byte for byte the same on
 * every run (fixed keys, fixed timestamps, fixed data):
 *   gen_corpus OUTDIR           write OUTDIR/<harness>/<name>
 *   gen_corpus --check DIR      fail unless every file it makes is in DIR
 *                               with the same bytes (DIR may hold more:
 *                               inputs that once found a bug)
 * Each corpus is a handful of valid and near-valid inputs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>
#include <zlib.h>

#include "chan.h"
#include "frame.h"
#include "fuzz.h"
#include "noise.h"
#include "seedfl.pb-c.h"

/* ---- output ---- */

static const char *out_dir;
static int check_mode;
static int failures, written;

static void emit(const char *harness, const char *name, const uint8_t *p, size_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", out_dir, harness);
    if (!check_mode && mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/%s", out_dir, harness, name);
    if (check_mode) {
        FILE *f = fopen(path, "rb");
        uint8_t *have = malloc(n + 1);
        size_t got = f && have ? fread(have, 1, n + 1, f) : 0;
        if (!f || got != n || (n && memcmp(have, p, n) != 0)) {
            fprintf(stderr, "%s: %s\n", path,
                    f ? "differs from what tests/fuzz/gen_corpus.c makes" : "missing");
            failures++;
        }
        if (f)
            fclose(f);
        free(have);
    } else {
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
            perror(path);
            exit(1);
        }
    }
    written++;
}

/* A growable byte buffer. */
typedef struct {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p)
            abort();
    }
    if (n)
        memcpy(b->p + b->n, p, n);
    b->n += n;
}

static void put_bytes(buf *b, int count, ...)
{
    va_list ap;
    va_start(ap, count);
    for (int i = 0; i < count; i++) {
        uint8_t c = (uint8_t)va_arg(ap, int);
        put(b, &c, 1);
    }
    va_end(ap);
}

static void put_be32(buf *b, uint32_t v)
{
    uint8_t h[4];
    sfl_frame_put_header(h, v);
    put(b, h, 4);
}

static void emit_buf(const char *harness, const char *name, buf *b)
{
    emit(harness, name, b->p, b->n);
    free(b->p);
    memset(b, 0, sizeof *b);
}

static void gzip(buf *out, const uint8_t *p, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        abort();
    size_t cap = deflateBound(&z, n) + 64;
    uint8_t *tmp = malloc(cap);
    if (!tmp)
        abort();
    z.next_in = (uint8_t *)p;
    z.avail_in = (uInt)n;
    z.next_out = tmp;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END)
        abort();
    put(out, tmp, cap - z.avail_out);
    deflateEnd(&z);
    free(tmp);
}

/* ---- frame: [flags][piece sizes][stream] (see fuzz_frame.c) ---- */

static void put_frame(buf *b, uint32_t len, uint8_t seed)
{
    put_be32(b, len);
    for (uint32_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(seed + i * 13);
        put(b, &c, 1);
    }
}

static void gen_frame(void)
{
    buf b = { 0 };

    put_bytes(&b, 1, 0x00);
    put_frame(&b, SFL_HS1_LEN, 1);
    emit_buf("frame", "hs1-whole", &b);

    put_bytes(&b, 2, 0x01, 1);
    put_frame(&b, SFL_HS1_LEN, 2);
    emit_buf("frame", "hs1-bytewise", &b);

    put_bytes(&b, 4, 0x13, 3, 7, 200);
    put_frame(&b, SFL_HS2_LEN, 3);
    put_frame(&b, SFL_HS1_LEN, 4);
    put_bytes(&b, 2, 0x00, 0x00);   /* half of a third header */
    emit_buf("frame", "two-frames-split", &b);

    /* over the pre-auth cap: fine once the cap is raised */
    put_bytes(&b, 3, 0x22, 0x80, 0);
    put_frame(&b, SFL_HS1_LEN, 5);
    put_frame(&b, 1000, 6);
    put_frame(&b, 20, 7);
    emit_buf("frame", "post-auth", &b);

    put_bytes(&b, 1, 0x00);
    put_be32(&b, 0);
    emit_buf("frame", "zero-length", &b);

    put_bytes(&b, 2, 0x01, 2);
    put_frame(&b, 16, 8);
    put_be32(&b, SFL_NOISE_MAX + 1);
    emit_buf("frame", "too-big", &b);

    put_bytes(&b, 2, 0x01, 5);
    put_be32(&b, SFL_NOISE_MAX);
    put_bytes(&b, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10);
    emit_buf("frame", "max-truncated", &b);

    put_bytes(&b, 3, 0x00, 0x00, 0x01);
    emit_buf("frame", "short-header", &b);
}

/* ---- handshake: message 1 and message 2 bodies ---- */

static const uint8_t server_static[32] = FUZZ_SERVER_STATIC;
static const uint8_t server_eph[32] = FUZZ_SERVER_EPHEMERAL;
static const uint8_t client_static[32] = FUZZ_CLIENT_STATIC;
static const uint8_t client_eph[32] = FUZZ_CLIENT_EPHEMERAL;
/* TAI64N of 2024-01-01T00:00:00Z */
static const uint8_t fixed_ts[SFL_HS_TS_LEN] = { 0x40, 0, 0, 0, 0x65, 0x92, 0x00, 0x0a, 0, 0, 0, 0 };

/* Message 1 as sfl_chan_client_start makes it, with a fixed timestamp. */
static void msg1(uint8_t out[SFL_HS1_LEN], const uint8_t server_pub[32])
{
    sfl_hs hs;
    sfl_keypair ckp = fuzz_keypair(client_static);
    uint8_t *tmp = malloc(SFL_NOISE_MAX);
    size_t n = 0;
    if (!tmp ||
        sfl_hs_init(&hs, 1, (const uint8_t *)SFL_PROLOGUE, strlen(SFL_PROLOGUE), &ckp,
                    client_eph, server_pub) != 0 ||
        sfl_hs_write(&hs, fixed_ts, sizeof fixed_ts, tmp, &n) != 0 || n != SFL_HS1_LEN)
        abort();
    memcpy(out, tmp, n);
    sfl_hs_wipe(&hs);
    free(tmp);
}

static void gen_handshake(void)
{
    uint8_t server_pub[32], other_pub[32], other[32], m[SFL_HS1_LEN];
    sfl_keypair skp = fuzz_keypair(server_static);
    memcpy(server_pub, skp.pub, 32);

    msg1(m, server_pub);
    emit("handshake", "msg1-valid", m, sizeof m);

    /* the responder's answer to it: the right shape for message 2 */
    sfl_chan srv;
    sfl_chan_init(&srv);
    uint8_t m2[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t n2 = 0;
    if (sfl_chan_server_read(&srv, &skp, server_eph, m, sizeof m) != 0 ||
        sfl_chan_server_reply(&srv, m2, &n2) != 0)
        abort();
    sfl_chan_free(&srv);
    emit("handshake", "msg2-shape", m2 + SFL_FRAME_HDR, n2 - SFL_FRAME_HDR);

    /* for another server: the static key does not decrypt */
    memcpy(other, server_static, 32);
    other[0] ^= 0xff;
    crypto_scalarmult_base(other_pub, other);
    msg1(m, other_pub);
    emit("handshake", "msg1-other-server", m, sizeof m);

    /* a low-order ephemeral key (all zero) */
    msg1(m, server_pub);
    memset(m, 0, 32);
    emit("handshake", "msg1-zero-ephemeral", m, sizeof m);

    /* a flipped bit in the timestamp's tag */
    msg1(m, server_pub);
    m[sizeof m - 1] ^= 1;
    emit("handshake", "msg1-bad-tag", m, sizeof m);

    msg1(m, server_pub);
    emit("handshake", "msg1-short", m, sizeof m - 1);
    emit("handshake", "empty", m, 0);
}

/* ---- envelopes ---- */

static void pack_env(buf *b, const Seedfl__Envelope *e)
{
    size_t n = seedfl__envelope__get_packed_size(e);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        abort();
    seedfl__envelope__pack(e, p);
    put(b, p, n);
    free(p);
}

static uint8_t bytes32[32] = { 9, 8, 7, 6, 5, 4, 3, 2, 1 };
static const float floats[4] = { 0.5f, -0.25f, 1e-3f, 0.0f };

/* One envelope of the i-th message type (1..12), or 0 when out of types. */
static int make_env(int i, Seedfl__Envelope *e, void *storage)
{
    union {
        Seedfl__Hello hello;
        Seedfl__Welcome welcome;
        Seedfl__ModelChunk chunk;
        Seedfl__Task task;
        Seedfl__Update update;
        Seedfl__Result result;
        Seedfl__Heartbeat heartbeat;
        Seedfl__Error error;
        Seedfl__ZoUpdate zo_update;
        Seedfl__ZoDelta zo_delta;
        Seedfl__Resync resync;
        Seedfl__Ready ready;
    } *u = storage;
    static Seedfl__ZoTask zo = SEEDFL__ZO_TASK__INIT;
    static uint32_t seeds[3] = { 1, 17, 4000 };
    static double sums[3] = { 0.5, -1.25, 3.0 };
    static uint8_t steps[6] = { 1, 0, 5, 17, 0, 0xfb };
    static uint8_t q[4] = { 1, 0xff, 0, 127 };

    seedfl__envelope__init(e);
    switch (i) {
    case 1:
        seedfl__hello__init(&u->hello);
        u->hello.protocol_version = SFL_PROTOCOL_VERSION;
        u->hello.client_name = "fuzz-client";
        e->msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
        e->hello = &u->hello;
        break;
    case 2:
        seedfl__welcome__init(&u->welcome);
        u->welcome.protocol_version = SFL_PROTOCOL_VERSION;
        u->welcome.model_spec = "mlp:784-16-10";
        u->welcome.total_rounds = 3;
        u->welcome.seed = 42;
        u->welcome.heartbeat_ms = 1000;
        u->welcome.heartbeat_misses = 3;
        e->msg_case = SEEDFL__ENVELOPE__MSG_WELCOME;
        e->welcome = &u->welcome;
        break;
    case 3:
        seedfl__model_chunk__init(&u->chunk);
        u->chunk.version = 1;
        u->chunk.offset = 4;
        u->chunk.total = 8;
        u->chunk.data.data = (uint8_t *)floats;
        u->chunk.data.len = sizeof floats;
        e->msg_case = SEEDFL__ENVELOPE__MSG_MODEL_CHUNK;
        e->model_chunk = &u->chunk;
        break;
    case 4:
        seedfl__task__init(&u->task);
        seedfl__zo_task__init(&zo);
        zo.variant = "pool";
        zo.root.data = bytes32;
        zo.root.len = 32;
        zo.pool_size = 4096;
        zo.steps = 2;
        zo.eps = 1e-3f;
        zo.scale = 0.01f;
        u->task.round = 2;
        u->task.mode = "zo";
        u->task.model_version = 1;
        u->task.model_digest.data = bytes32;
        u->task.model_digest.len = 32;
        u->task.local_epochs = 1;
        u->task.batch = 32;
        u->task.lr = 0.02f;
        u->task.momentum = 0.9f;
        u->task.deadline_ms = 5000;
        u->task.zo = &zo;
        e->msg_case = SEEDFL__ENVELOPE__MSG_TASK;
        e->task = &u->task;
        break;
    case 5:
        seedfl__update__init(&u->update);
        u->update.round = 2;
        u->update.num_samples = 100;
        u->update.total = 4;
        u->update.data.data = (uint8_t *)floats;
        u->update.data.len = sizeof floats;
        u->update.train_loss = 0.7;
        e->msg_case = SEEDFL__ENVELOPE__MSG_UPDATE;
        e->update = &u->update;
        break;
    case 6:
        seedfl__result__init(&u->result);
        u->result.round = 2;
        u->result.model_version = 2;
        u->result.model_digest.data = bytes32;
        u->result.model_digest.len = 32;
        u->result.clients = 3;
        u->result.test_accuracy = 0.8;
        u->result.finished = 1;
        u->result.zo_entries = 3;
        u->result.zo_lr = 0.002f;
        e->msg_case = SEEDFL__ENVELOPE__MSG_RESULT;
        e->result = &u->result;
        break;
    case 7:
        seedfl__heartbeat__init(&u->heartbeat);
        u->heartbeat.time_ms = 123456789;
        e->msg_case = SEEDFL__ENVELOPE__MSG_HEARTBEAT;
        e->heartbeat = &u->heartbeat;
        break;
    case 8:
        seedfl__error__init(&u->error);
        u->error.code = SEEDFL__ERROR__CODE__STALE_ROUND;
        u->error.message = "update for another round";
        u->error.round = 3;
        e->msg_case = SEEDFL__ENVELOPE__MSG_ERROR;
        e->error = &u->error;
        break;
    case 9:
        seedfl__zo_update__init(&u->zo_update);
        u->zo_update.round = 2;
        u->zo_update.num_samples = 50;
        u->zo_update.steps.data = steps;
        u->zo_update.steps.len = sizeof steps;
        e->msg_case = SEEDFL__ENVELOPE__MSG_ZO_UPDATE;
        e->zo_update = &u->zo_update;
        break;
    case 10:
        seedfl__zo_delta__init(&u->zo_delta);
        u->zo_delta.round = 2;
        u->zo_delta.n_seeds = 3;
        u->zo_delta.seeds = seeds;
        u->zo_delta.n_sums = 3;
        u->zo_delta.sums = sums;
        e->msg_case = SEEDFL__ENVELOPE__MSG_ZO_DELTA;
        e->zo_delta = &u->zo_delta;
        break;
    case 11:
        seedfl__resync__init(&u->resync);
        u->resync.model_version = 5;
        e->msg_case = SEEDFL__ENVELOPE__MSG_RESYNC;
        e->resync = &u->resync;
        break;
    case 12:
        seedfl__ready__init(&u->ready);
        u->ready.num_samples = 600;
        e->msg_case = SEEDFL__ENVELOPE__MSG_READY;
        e->ready = &u->ready;
        break;
    case 13:  /* the derived variant of a ZoDelta */
        seedfl__zo_delta__init(&u->zo_delta);
        u->zo_delta.round = 2;
        u->zo_delta.client_key.data = bytes32;
        u->zo_delta.client_key.len = 32;
        u->zo_delta.weight = 0.25;
        u->zo_delta.q.data = q;
        u->zo_delta.q.len = sizeof q;
        e->msg_case = SEEDFL__ENVELOPE__MSG_ZO_DELTA;
        e->zo_delta = &u->zo_delta;
        break;
    default:
        return 0;
    }
    return 1;
}

static const char *env_names[] = { NULL, "hello", "welcome", "model-chunk", "task", "update",
                                   "result", "heartbeat", "error", "zo-update", "zo-delta-pool",
                                   "resync", "ready", "zo-delta-derived" };

static void gen_envelope(void)
{
    uint64_t storage[64];
    Seedfl__Envelope e;
    buf b = { 0 };
    for (int i = 1; make_env(i, &e, storage); i++) {
        pack_env(&b, &e);
        emit_buf("envelope", env_names[i], &b);
    }

    /* an unknown field before a known one */
    put_bytes(&b, 3, (15 << 3) | 0, 0x96, 0x01);
    make_env(7, &e, storage);
    pack_env(&b, &e);
    emit_buf("envelope", "unknown-field", &b);

    /* two members of the oneof: the last one wins */
    make_env(12, &e, storage);
    pack_env(&b, &e);
    make_env(11, &e, storage);
    pack_env(&b, &e);
    emit_buf("envelope", "two-members", &b);

    /* a field-0 tag in a non-canonical varint (80 00): protobuf-c keeps it as
     * an unknown field, and rejects it once packed again as 00 */
    put_bytes(&b, 7, 0x62, 0x00, 0x80, 0x00, 0x62, 0x62, 0x00);
    emit_buf("envelope", "field-0-overlong-tag", &b);

    /* cut inside the update's bytes */
    make_env(5, &e, storage);
    pack_env(&b, &e);
    b.n -= 5;
    emit_buf("envelope", "truncated-update", &b);

    put_bytes(&b, 0);
    emit_buf("envelope", "empty", &b);
}

/* ---- transport: records [op][len BE16][body] (see fuzz_transport.c) ---- */

static void put_record(buf *b, uint8_t op, const uint8_t *p, size_t n)
{
    put_bytes(b, 3, op, (int)(n >> 8), (int)(n & 0xff));
    put(b, p, n);
}

static void pair_open(sfl_chan *cli, sfl_chan *srv)
{
    sfl_keypair skp = fuzz_keypair(server_static), ckp = fuzz_keypair(client_static);
    uint8_t m1[SFL_FRAME_HDR + SFL_HS1_LEN], m2[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t n1 = 0, n2 = 0;
    sfl_chan_init(cli);
    sfl_chan_init(srv);
    if (sfl_chan_client_start(cli, &ckp, skp.pub, client_eph, m1, &n1) != 0 ||
        sfl_chan_server_read(srv, &skp, server_eph, m1 + SFL_FRAME_HDR,
                             n1 - SFL_FRAME_HDR) != 0 ||
        sfl_chan_server_reply(srv, m2, &n2) != 0 ||
        sfl_chan_client_finish(cli, m2 + SFL_FRAME_HDR, n2 - SFL_FRAME_HDR) != 0)
        abort();
}

/* The next frame body c would send: ciphertext the harness's peer accepts
 * when it comes in this position. */
static void sealed(sfl_chan *c, int type, buf *out)
{
    uint64_t storage[64];
    Seedfl__Envelope e;
    uint8_t *frame = NULL;
    size_t n = 0;
    make_env(type, &e, storage);
    if (sfl_chan_seal(c, &e, &frame, &n) != 0)
        abort();
    put(out, frame + SFL_FRAME_HDR, n - SFL_FRAME_HDR);
    free(frame);
}

static void gen_transport(void)
{
    uint64_t storage[64];
    Seedfl__Envelope e;
    sfl_chan cli, srv;
    buf b = { 0 }, env = { 0 }, c1 = { 0 }, c2 = { 0 }, s1 = { 0 };

    /* plaintext envelopes the harness encrypts */
    make_env(1, &e, storage);
    pack_env(&env, &e);
    put_record(&b, 1, env.p, env.n);
    env.n = 0;
    make_env(2, &e, storage);
    pack_env(&env, &e);
    put_record(&b, 3, env.p, env.n);
    env.n = 0;
    make_env(10, &e, storage);
    pack_env(&env, &e);
    put_record(&b, 3, env.p, env.n);
    emit_buf("transport", "sealed-hello-welcome-delta", &b);
    free(env.p);
    memset(&env, 0, sizeof env);

    /* real ciphertext in order: hello, ready from the client, welcome back */
    pair_open(&cli, &srv);
    sealed(&cli, 1, &c1);
    sealed(&cli, 12, &c2);
    sealed(&srv, 2, &s1);
    sfl_chan_free(&cli);
    sfl_chan_free(&srv);
    put_record(&b, 0, c1.p, c1.n);
    put_record(&b, 0, c2.p, c2.n);
    put_record(&b, 2, s1.p, s1.n);
    emit_buf("transport", "raw-in-order", &b);

    /* the same frame twice: the second is a replay */
    put_record(&b, 0, c1.p, c1.n);
    put_record(&b, 0, c1.p, c1.n);
    emit_buf("transport", "raw-replayed", &b);

    /* swapped: neither authenticates at the other's nonce */
    put_record(&b, 0, c2.p, c2.n);
    put_record(&b, 0, c1.p, c1.n);
    emit_buf("transport", "raw-reordered", &b);

    /* a flipped bit, then the genuine frame */
    c1.p[c1.n / 2] ^= 0x04;
    put_record(&b, 0, c1.p, c1.n);
    c1.p[c1.n / 2] ^= 0x04;
    put_record(&b, 0, c1.p, c1.n);
    emit_buf("transport", "raw-tampered", &b);

    /* genuine ciphertext moves the receiver's nonce; a sealed record follows */
    put_record(&b, 0, c1.p, c1.n);
    make_env(12, &e, storage);
    pack_env(&env, &e);
    put_record(&b, 1, env.p, env.n);
    free(env.p);
    memset(&env, 0, sizeof env);
    emit_buf("transport", "raw-then-sealed", &b);

    /* an empty envelope (no message set), shorter than a tag, cut short */
    put_record(&b, 1, NULL, 0);
    put_record(&b, 0, c1.p, 10);
    put_bytes(&b, 3, 0, 0x01, 0x00);
    put(&b, c1.p, 4);
    emit_buf("transport", "short", &b);

    free(c1.p);
    free(c2.p);
    free(s1.p);
}

/* ---- IDX files ---- */

static void idx_file(buf *b, int ndims, const uint32_t *dims, int type)
{
    size_t total = 1;
    put_bytes(b, 4, 0, 0, type, ndims);
    for (int i = 0; i < ndims; i++) {
        put_be32(b, dims[i]);
        total *= dims[i];
    }
    for (size_t i = 0; i < total; i++) {
        uint8_t c = (uint8_t)(i * 37 + 11);
        put(b, &c, 1);
    }
}

static void gen_idx(void)
{
    buf b = { 0 }, z = { 0 };
    static const uint32_t d3[3] = { 2, 3, 2 }, d1[1] = { 5 }, d4[4] = { 3, 2, 2, 2 },
                          dbig[3] = { 60000, 28, 28 };

    idx_file(&b, 3, d3, 0x08);
    gzip(&z, b.p, b.n);
    emit_buf("idx", "images-2x3x2", &b);
    emit_buf("idx", "images-2x3x2.gz", &z);

    idx_file(&b, 1, d1, 0x08);
    gzip(&z, b.p, b.n);
    emit_buf("idx", "labels-5", &b);
    emit_buf("idx", "labels-5.gz", &z);

    idx_file(&b, 4, d4, 0x08);
    emit_buf("idx", "dims-4", &b);

    /* one byte too many, one too few */
    idx_file(&b, 3, d3, 0x08);
    put_bytes(&b, 1, 0xaa);
    emit_buf("idx", "trailing", &b);
    idx_file(&b, 3, d3, 0x08);
    b.n--;
    emit_buf("idx", "truncated", &b);

    /* a float IDX file: not supported */
    idx_file(&b, 1, d1, 0x0d);
    emit_buf("idx", "type-float", &b);

    /* a header declaring more than any cap */
    put_bytes(&b, 4, 0, 0, 0x08, 3);
    for (int i = 0; i < 3; i++)
        put_be32(&b, dbig[i]);
    put_bytes(&b, 4, 1, 2, 3, 4);
    emit_buf("idx", "declared-huge", &b);

    /* gzip cut in the middle; gzip followed by junk; two gzip members */
    idx_file(&b, 3, d3, 0x08);
    gzip(&z, b.p, b.n);
    z.n = z.n * 2 / 3;
    emit_buf("idx", "cut.gz", &z);
    gzip(&z, b.p, b.n);
    put_bytes(&z, 3, 'x', 'y', 'z');
    emit_buf("idx", "junk-after.gz", &z);
    gzip(&z, b.p, 10);
    gzip(&z, b.p + 10, b.n - 10);
    emit_buf("idx", "two-members.gz", &z);
    free(b.p);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--check") == 0) {
        check_mode = 1;
        out_dir = argv[2];
    } else if (argc == 2 && argv[1][0] != '-') {
        out_dir = argv[1];
        if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
            perror(out_dir);
            return 1;
        }
    } else {
        fprintf(stderr, "usage: %s OUTDIR | --check DIR\n", argv[0]);
        return 2;
    }
    if (sodium_init() < 0)
        return 1;
    gen_frame();
    gen_handshake();
    gen_envelope();
    gen_transport();
    gen_idx();
    if (check_mode && failures) {
        fprintf(stderr, "%d of %d corpus files out of date: run gen_corpus on tests/fuzz/corpus\n",
                failures, written);
        return 1;
    }
    printf("%s %d corpus files\n", check_mode ? "checked" : "wrote", written);
    return 0;
}
