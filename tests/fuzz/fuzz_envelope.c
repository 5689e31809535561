/* The protobuf envelope (proto/seedfl.proto) as a peer sends it, decrypted:
 * seedfl__envelope__unpack, a pack/unpack round trip of what was decoded,
 * and the socket-free checks the receiver runs on some messages: the
 * aggregator's validation of dense and zo updates (server/agg.h) and the zo
 * replay of a ZoDelta on a small parameter vector (common/zo.h). */
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "agg.h"
#include "chan.h"
#include "err.h"
#include "fuzz.h"
#include "seedfl.pb-c.h"
#include "zo.h"

#define MAX_SAMPLES 1000000u
#define POOL_SIZE 4096u
#define THETA_LEN 96
#define REPLAY_MAX_TERMS 2048

/* The oneof member, as a generic message (all members are messages). */
static const ProtobufCMessage *member(const Seedfl__Envelope *e)
{
    switch (e->msg_case) {
    case SEEDFL__ENVELOPE__MSG_HELLO: return &e->hello->base;
    case SEEDFL__ENVELOPE__MSG_WELCOME: return &e->welcome->base;
    case SEEDFL__ENVELOPE__MSG_MODEL_CHUNK: return &e->model_chunk->base;
    case SEEDFL__ENVELOPE__MSG_TASK: return &e->task->base;
    case SEEDFL__ENVELOPE__MSG_UPDATE: return &e->update->base;
    case SEEDFL__ENVELOPE__MSG_RESULT: return &e->result->base;
    case SEEDFL__ENVELOPE__MSG_HEARTBEAT: return &e->heartbeat->base;
    case SEEDFL__ENVELOPE__MSG_ERROR: return &e->error->base;
    case SEEDFL__ENVELOPE__MSG_ZO_UPDATE: return &e->zo_update->base;
    case SEEDFL__ENVELOPE__MSG_ZO_DELTA: return &e->zo_delta->base;
    case SEEDFL__ENVELOPE__MSG_RESYNC: return &e->resync->base;
    case SEEDFL__ENVELOPE__MSG_READY: return &e->ready->base;
    default: return NULL;
    }
}

static size_t unknown_fields(const Seedfl__Envelope *e)
{
    const ProtobufCMessage *m = member(e);
    size_t n = e->base.n_unknown_fields + (m ? m->n_unknown_fields : 0);
    if (e->msg_case == SEEDFL__ENVELOPE__MSG_TASK && e->task->zo)
        n += e->task->zo->base.n_unknown_fields;
    return n;
}

/* Decoded, packed again and decoded again, a message packs to the same
 * bytes. protobuf-c 1.4 keeps an unknown field that its own unpack rejects
 * once packed canonically (a tag of field 0 written as 80 00), so with
 * unknown fields only the packing itself is checked. */
static void check_repack(const Seedfl__Envelope *e)
{
    size_t n = seedfl__envelope__get_packed_size(e);
    uint8_t *a = malloc(n ? n : 1);
    FUZZ_CHECK(a != NULL);
    FUZZ_CHECK(seedfl__envelope__pack(e, a) == n);
    Seedfl__Envelope *e2 = seedfl__envelope__unpack(NULL, n, a);
    if (!e2 && unknown_fields(e) > 0) {
        free(a);
        return;
    }
    FUZZ_CHECK(e2 != NULL && e2->msg_case == e->msg_case);
    size_t n2 = seedfl__envelope__get_packed_size(e2);
    FUZZ_CHECK(n2 == n);
    uint8_t *b = malloc(n2 ? n2 : 1);
    FUZZ_CHECK(b != NULL);
    FUZZ_CHECK(seedfl__envelope__pack(e2, b) == n2);
    FUZZ_CHECK(memcmp(a, b, n) == 0);
    free(b);
    free(a);
    seedfl__envelope__free_unpacked(e2, NULL);
}

static void check_update(const Seedfl__Update *u)
{
    if (!u || u->data.len == 0 || u->data.len % sizeof(float))
        return;
    size_t nparams = u->data.len / sizeof(float);
    sfl_submission s;
    memset(&s, 0, sizeof s);
    s.num_samples = u->num_samples;
    s.delta = malloc(u->data.len);
    FUZZ_CHECK(s.delta != NULL);
    memcpy(s.delta, u->data.data, u->data.len);
    size_t ok = sfl_agg_validate(&s, 1, nparams, MAX_SAMPLES);
    int finite = 1;
    for (size_t i = 0; i < nparams; i++)
        finite &= isfinite(s.delta[i]) != 0;
    int want = finite && u->num_samples >= 1 && u->num_samples <= MAX_SAMPLES;
    FUZZ_CHECK(ok == (size_t)want && s.valid == want);
    FUZZ_CHECK(want || s.reason[0] != '\0');
    free(s.delta);
}

static void check_zo_update(const Seedfl__ZoUpdate *u)
{
    if (!u)
        return;
    for (int v = 0; v < 2; v++) {
        enum sfl_zo_variant variant = v ? SFL_ZO_DERIVED : SFL_ZO_POOL;
        size_t per = v ? SFL_ZO_DERIVED_BYTES : SFL_ZO_POOL_BYTES;
        sfl_submission s;
        memset(&s, 0, sizeof s);
        s.num_samples = u->num_samples;
        s.zo = u->steps.data;
        s.zo_len = u->steps.len;
        uint32_t steps = (uint32_t)(u->steps.len / per);
        size_t ok = sfl_agg_zo_validate(&s, 1, variant, steps, POOL_SIZE, MAX_SAMPLES);
        FUZZ_CHECK(ok == (size_t)s.valid && ok <= 1);
        FUZZ_CHECK(ok || s.reason[0] != '\0');
        if (ok) {
            FUZZ_CHECK(s.zo_len == steps * per);
            for (uint32_t j = 0; j < steps; j++) {
                uint32_t k = 0;
                int8_t q = (int8_t)s.zo[j * per + per - 1];
                if (!v)
                    sfl_zo_unpack_pool(s.zo + j * per, &k, &q);
                FUZZ_CHECK(q != -128 && k < POOL_SIZE);
            }
        }
    }
}

static int is_finite(double x)
{
    return x == x && x - x == 0.0;
}

/* What a client does with a ZoDelta once the round's Result arrives. */
static void check_zo_delta(const Seedfl__ZoDelta *d)
{
    static const uint8_t root[32] = { 1, 2, 3 };
    float theta[THETA_LEN], before[THETA_LEN];
    sfl_zlayout l;
    memset(&l, 0, sizeof l);
    l.model_id = 7;
    l.ntensors = 2;
    l.t[0].off = 0;
    l.t[0].len = THETA_LEN - 8;
    l.t[1].off = THETA_LEN - 8;
    l.t[1].len = 8;
    l.nparams = THETA_LEN;
    for (int i = 0; i < THETA_LEN; i++)
        theta[i] = before[i] = (float)i * 0.25f - 3.0f;

    if (!d)
        return;
    if (d->n_seeds == d->n_sums && d->n_seeds <= REPLAY_MAX_TERMS) {
        int want = 0;
        for (size_t i = 0; i < d->n_seeds; i++)
            if (d->seeds[i] >= SFL_ZO_POOL_MAX || (i > 0 && d->seeds[i] <= d->seeds[i - 1]) ||
                !is_finite(d->sums[i]))
                want = SFL_EINVAL;
        int rc = sfl_zo_replay_pool(&l, root, d->seeds, d->sums, d->n_seeds, 0.01f, theta);
        FUZZ_CHECK(rc == want);
        if (rc)
            FUZZ_CHECK(memcmp(theta, before, sizeof theta) == 0);
    }
    if (d->client_key.len == 32 && d->q.len >= 1 && d->q.len <= REPLAY_MAX_TERMS) {
        sfl_zo_contrib c;
        memcpy(c.key, d->client_key.data, 32);
        c.weight = d->weight;
        c.q = d->q.data;
        c.nq = d->q.len;
        int want = is_finite(d->weight) ? 0 : SFL_EINVAL;
        for (size_t j = 0; j < c.nq; j++)
            if ((int8_t)c.q[j] == -128)
                want = SFL_EINVAL;
        memcpy(theta, before, sizeof theta);
        int rc = sfl_zo_replay_derived(&l, root, d->round, &c, 1, 0.01f, 0.5f, theta);
        FUZZ_CHECK(rc == want);
        if (rc)
            FUZZ_CHECK(memcmp(theta, before, sizeof theta) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        FUZZ_CHECK(sodium_init() >= 0);
        ready = 1;
    }
    /* the channel never unpacks more than one frame's plaintext */
    if (size > SFL_ENVELOPE_MAX)
        return 0;
    Seedfl__Envelope *e = seedfl__envelope__unpack(NULL, size, data);
    if (!e)
        return 0;
    check_repack(e);
    switch (e->msg_case) {
    case SEEDFL__ENVELOPE__MSG_UPDATE:
        check_update(e->update);
        break;
    case SEEDFL__ENVELOPE__MSG_ZO_UPDATE:
        check_zo_update(e->zo_update);
        break;
    case SEEDFL__ENVELOPE__MSG_ZO_DELTA:
        check_zo_delta(e->zo_delta);
        break;
    default:
        break;
    }
    seedfl__envelope__free_unpacked(e, NULL);
    return 0;
}
