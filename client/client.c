#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/resource.h>

#include "chan.h"
#include "conn.h"
#include "data.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "util.h"
#include "zo.h"

#define CHUNK_FLOATS (SFL_CHUNK_BYTES / 4)
#define CLIENT_HANDSHAKE_TIMEOUT_MS 10000 /* until the Welcome sets the liveness timeout */
#define ZO_RELAY_MAX_BYTES (64u << 20) /* derived scalars held for one replay */
#define ZO_RELAY_MAX_CLIENTS 100000

typedef struct {
    const sfl_client_config *cfg;
    sfl_conn conn;
    sfl_keypair *s_key;  /* sodium_malloc'd */
    uint8_t server_pub[32];
    sfl_model model;
    int have_model_obj;
    uint64_t model_version; /* UINT64_MAX until a full model arrived */
    uint64_t chunk_have;
    sfl_dataset data;
    float *start;        /* parameters at the start of local training */
    uint64_t seed;
    uint32_t total_rounds;
    /* zo mode: the run's root and this round's published replay terms */
    int have_root;
    uint8_t zo_root[32];
    uint32_t zo_round;   /* round the collected terms belong to */
    uint32_t *zo_seeds;  /* pool: seeds and their sums */
    double *zo_sums;
    size_t zo_n;
    sfl_zo_contrib *zo_contrib; /* derived: one per client, q owned */
    size_t zo_ncontrib, zo_relay_bytes;
    int zo_bad;          /* the terms broke a rule: do not replay, resync */
    int resyncing;       /* asked for the full model; tasks wait for it */
    /* liveness: a thread sends a heartbeat whenever nothing else went out
     * for an interval, so long local work does not look like a dead peer */
    pthread_t hb_thread;
    pthread_mutex_t hb_lock;
    pthread_cond_t hb_cond;
    int hb_running, hb_stop;
    double hb_interval;  /* seconds, from the Welcome */
    int hb_misses;
    int welcomed;        /* this connection got its Welcome */
    int ever_welcomed;   /* some connection of this process did */
    char *err;
    size_t errlen;
} client;

static void zo_terms_clear(client *c);
static int fail(client *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(client *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static int send_env(client *c, const Seedfl__Envelope *env)
{
    int rc = sfl_conn_send(&c->conn, env);
    return rc < 0 ? fail(c, rc, "%s", c->conn.err) : 0;
}

static int recv_env(client *c, Seedfl__Envelope **env)
{
    int rc = sfl_conn_recv(&c->conn, env);
    return rc < 0 ? fail(c, rc, "%s", c->conn.err) : 0;
}

static int load_shard(client *c)
{
    const sfl_client_config *cfg = c->cfg;
    size_t total = 0;
    uint32_t *idx = NULL;
    size_t cnt = 0;
    int rc = sfl_data_count(cfg->data_dir, "train", &total, c->err, c->errlen);
    if (rc < 0)
        return rc;
    if (cfg->limit && cfg->limit < total)
        total = cfg->limit;
    if (cfg->of > total)
        return fail(c, SFL_EINVAL, "--of %u: more shards than the %zu training examples",
                    cfg->of, total);
    if (cfg->dirichlet_alpha > 0) {
        uint8_t *labels = NULL;
        size_t n = 0;
        int attempts = 0;
        if ((rc = sfl_data_labels(cfg->data_dir, "train", total, &labels, &n, c->err,
                                  c->errlen)) < 0)
            return rc;
        rc = sfl_partition_dirichlet(c->seed, labels, n, 10, cfg->dirichlet_alpha, cfg->shard,
                                     cfg->of, &idx, &cnt, &attempts);
        free(labels);
        if (rc == SFL_ERANGE)
            return fail(c, rc, "--partition dirichlet:%g: with %u clients some client gets no "
                        "example in %d draws; use a larger alpha or fewer clients",
                        cfg->dirichlet_alpha, cfg->of, SFL_DIRICHLET_ATTEMPTS);
        if (rc < 0)
            return fail(c, rc, "partition: %s", sfl_strerror(rc));
        if (attempts > 1)
            sfl_info("partition_redrawn", "attempts=%d reason=\"a client had no example\"",
                     attempts);
    } else {
        rc = sfl_partition_iid(c->seed, total, cfg->shard, cfg->of, &idx, &cnt);
        if (rc < 0)
            return fail(c, rc, "partition: %s", sfl_strerror(rc));
    }
    rc = sfl_data_load(cfg->data_dir, "train", idx, cnt, &c->data, c->err, c->errlen);
    free(idx);
    if (rc < 0)
        return rc;
    size_t per[10] = { 0 };
    for (size_t i = 0; i < c->data.n; i++)
        per[c->data.y[i] < 10 ? c->data.y[i] : 0]++;
    sfl_info("shard_loaded", "shard=%u of=%u examples=%zu partition=%s per_class=%zu/%zu/%zu/%zu/"
             "%zu/%zu/%zu/%zu/%zu/%zu", cfg->shard, cfg->of, c->data.n,
             cfg->dirichlet_alpha > 0 ? "dirichlet" : "iid", per[0], per[1], per[2], per[3],
             per[4], per[5], per[6], per[7], per[8], per[9]);
    return 0;
}

static int send_ready(client *c)
{
    Seedfl__Ready r = SEEDFL__READY__INIT;
    r.num_samples = c->data.n;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_READY;
    env.ready = &r;
    return send_env(c, &env);
}

static void apply_liveness(client *c, const Seedfl__Welcome *w)
{
    double iv = w->heartbeat_ms ? w->heartbeat_ms / 1000.0 : 5.0;
    int misses = w->heartbeat_misses ? (int)w->heartbeat_misses : 3;
    pthread_mutex_lock(&c->hb_lock);
    c->hb_interval = iv;
    c->hb_misses = misses;
    pthread_cond_signal(&c->hb_cond);
    pthread_mutex_unlock(&c->hb_lock);
    /* the server sends a heartbeat when it has nothing else to say */
    c->conn.recv_timeout_ms = (int)(iv * misses * 1000);
}

static int on_welcome(client *c, const Seedfl__Welcome *w)
{
    if (w->protocol_version != SFL_PROTOCOL_VERSION)
        return fail(c, SFL_EPROTO, "server speaks protocol %u, this client %d",
                    w->protocol_version, SFL_PROTOCOL_VERSION);
    if (c->welcomed)
        return fail(c, SFL_EPROTO, "second welcome");
    c->welcomed = 1;
    c->ever_welcomed = 1;
    apply_liveness(c, w);
    if (c->have_model_obj) {
        /* a reconnection: the same run, or nothing */
        uint64_t seed = c->cfg->have_seed ? c->cfg->seed : w->seed;
        if (!w->model_spec || strcmp(w->model_spec, c->model.spec) != 0 || seed != c->seed)
            return fail(c, SFL_EREFUSED, "the server now runs another training run (model %s, "
                        "seed %llu)", w->model_spec ? w->model_spec : "?",
                        (unsigned long long)w->seed);
        c->model_version = UINT64_MAX; /* the full model comes with the next task */
        c->resyncing = 0;
        zo_terms_clear(c);
        sfl_info("rejoined", "model=%s", c->model.spec);
        return send_ready(c);
    }
    int rc = sfl_model_create(&c->model, w->model_spec ? w->model_spec : "", c->err, c->errlen);
    if (rc < 0)
        return rc;
    c->have_model_obj = 1;
    c->total_rounds = w->total_rounds;
    c->seed = c->cfg->have_seed ? c->cfg->seed : w->seed;
    if ((rc = load_shard(c)) < 0)
        return rc;
    if (c->data.dim != (size_t)c->model.sizes[0])
        return fail(c, SFL_EINVAL, "model %s takes %d inputs but the data has %zu",
                    c->model.spec, c->model.sizes[0], c->data.dim);
    if (c->model.sizes[c->model.nlayers] < c->data.classes)
        return fail(c, SFL_EINVAL, "model %s has %d outputs but the data has %d classes",
                    c->model.spec, c->model.sizes[c->model.nlayers], c->data.classes);
    c->start = malloc(c->model.nparams * sizeof(float));
    if (!c->start)
        return fail(c, SFL_ENOMEM, "out of memory for the model");
    sfl_info("welcome", "model=%s params=%zu rounds=%u seed=%llu", c->model.spec,
             c->model.nparams, w->total_rounds, (unsigned long long)c->seed);
    return send_ready(c);
}

static int on_chunk(client *c, const Seedfl__ModelChunk *m)
{
    const uint64_t n = c->model.nparams;
    if (m->total != n || m->data.len % 4 != 0 || m->data.len == 0 || m->offset > n ||
        m->data.len / 4 > n - m->offset)
        return fail(c, SFL_EPROTO, "model chunk does not fit the model (offset %llu, %zu bytes)",
                    (unsigned long long)m->offset, m->data.len);
    if (m->offset == 0)
        c->chunk_have = 0;
    if (m->offset != c->chunk_have)
        return fail(c, SFL_EPROTO, "model chunk out of order");
    sfl_floats_from_le(c->model.params + m->offset, m->data.data, m->data.len / 4);
    c->chunk_have += m->data.len / 4;
    c->model_version = c->chunk_have == n ? m->version : UINT64_MAX;
    return 0;
}

static int send_update(client *c, const Seedfl__Task *t, double loss)
{
    const size_t n = c->model.nparams;
    uint8_t *tmp = malloc(SFL_CHUNK_BYTES);
    if (!tmp)
        return fail(c, SFL_ENOMEM, "out of memory");
    Seedfl__Update u = SEEDFL__UPDATE__INIT;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_UPDATE;
    env.update = &u;
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += CHUNK_FLOATS) {
        size_t cnt = n - off < CHUNK_FLOATS ? n - off : CHUNK_FLOATS;
        /* the delta: trained minus start */
        float *d = (float *)malloc(cnt * sizeof(float));
        if (!d) {
            rc = fail(c, SFL_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < cnt; i++)
            d[i] = c->model.params[off + i] - c->start[off + i];
        sfl_floats_to_le(tmp, d, cnt);
        free(d);
        u.round = t->round;
        u.attempt = t->attempt;
        u.num_samples = c->data.n;
        u.offset = off;
        u.total = n;
        u.data.data = tmp;
        u.data.len = cnt * 4;
        u.train_loss = loss;
        rc = send_env(c, &env);
    }
    free(tmp);
    return rc;
}

static void zo_terms_clear(client *c)
{
    for (size_t i = 0; i < c->zo_ncontrib; i++)
        free((void *)c->zo_contrib[i].q);
    free(c->zo_contrib);
    free(c->zo_seeds);
    free(c->zo_sums);
    c->zo_contrib = NULL;
    c->zo_seeds = NULL;
    c->zo_sums = NULL;
    c->zo_n = c->zo_ncontrib = c->zo_relay_bytes = 0;
    c->zo_bad = 0;
}

/* Collect one part of a zo round's replay terms. Terms that break a rule
 * (order, size, count) are not an attack on the client: it just refuses to
 * replay them and asks for the full model instead. */
static int on_zo_delta(client *c, const Seedfl__ZoDelta *d)
{
    if (d->round != c->zo_round) {
        zo_terms_clear(c);
        c->zo_round = d->round;
    }
    if (c->zo_bad)
        return 0;
    if (d->n_seeds != d->n_sums || (d->n_seeds && d->client_key.len)) {
        c->zo_bad = 1;
        return 0;
    }
    if (d->n_seeds) {
        if (c->zo_n + d->n_seeds > SFL_ZO_POOL_MAX) {
            c->zo_bad = 1;
            return 0;
        }
        uint32_t *ns = realloc(c->zo_seeds, (c->zo_n + d->n_seeds) * sizeof *ns);
        if (ns)
            c->zo_seeds = ns;
        double *nv = realloc(c->zo_sums, (c->zo_n + d->n_seeds) * sizeof *nv);
        if (nv)
            c->zo_sums = nv;
        if (!ns || !nv)
            return fail(c, SFL_ENOMEM, "out of memory for the round's replay terms");
        memcpy(c->zo_seeds + c->zo_n, d->seeds, d->n_seeds * sizeof *ns);
        memcpy(c->zo_sums + c->zo_n, d->sums, d->n_seeds * sizeof *nv);
        c->zo_n += d->n_seeds;
        return 0;
    }
    if (d->client_key.len != 32 || d->q.len == 0 || d->q.len > SFL_ZO_STEPS_MAX ||
        c->zo_ncontrib >= ZO_RELAY_MAX_CLIENTS ||
        c->zo_relay_bytes + d->q.len > ZO_RELAY_MAX_BYTES) {
        c->zo_bad = 1;
        return 0;
    }
    sfl_zo_contrib *nc = realloc(c->zo_contrib, (c->zo_ncontrib + 1) * sizeof *nc);
    if (!nc)
        return fail(c, SFL_ENOMEM, "out of memory for the round's replay terms");
    c->zo_contrib = nc;
    uint8_t *q = malloc(d->q.len);
    if (!q)
        return fail(c, SFL_ENOMEM, "out of memory for the round's replay terms");
    memcpy(q, d->q.data, d->q.len);
    sfl_zo_contrib *e = &c->zo_contrib[c->zo_ncontrib++];
    memcpy(e->key, d->client_key.data, 32);
    e->weight = d->weight;
    e->q = q;
    e->nq = d->q.len;
    c->zo_relay_bytes += d->q.len;
    return 0;
}

static int send_resync(client *c)
{
    Seedfl__Resync r = SEEDFL__RESYNC__INIT;
    r.model_version = c->model_version;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_RESYNC;
    env.resync = &r;
    c->model_version = UINT64_MAX;
    c->resyncing = 1;
    return send_env(c, &env);
}

/* A zo round's result: replay the published terms from the round's starting
 * model and check the digest; on any doubt, ask for the full model. */
static int on_zo_result(client *c, const Seedfl__Result *r)
{
    if (c->model_version == UINT64_MAX || c->model_version + 1 != r->model_version ||
        !c->have_root) {
        zo_terms_clear(c);
        return 0; /* not in sync: the full model comes with the next task */
    }
    sfl_zlayout lay;
    sfl_zo_layout(&c->model, &lay);
    if (c->zo_round != r->round)
        zo_terms_clear(c); /* left over from an earlier round */
    size_t got = c->zo_n ? c->zo_n : c->zo_ncontrib;
    int rc = SFL_EINVAL;
    if (!c->zo_bad && got == r->zo_entries && !(c->zo_n && c->zo_ncontrib)) {
        if (c->zo_ncontrib)
            rc = sfl_zo_replay_derived(&lay, c->zo_root, r->round, c->zo_contrib,
                                       c->zo_ncontrib, r->zo_lr, r->zo_scale, c->model.params);
        else
            rc = sfl_zo_replay_pool(&lay, c->zo_root, c->zo_seeds, c->zo_sums, c->zo_n,
                                    r->zo_lr, c->model.params);
    }
    zo_terms_clear(c);
    if (rc == SFL_ENOMEM)
        return fail(c, rc, "out of memory replaying round %u", r->round);
    if (c->cfg->inject_drift && c->cfg->inject_drift == r->round && c->model.nparams) {
        /* testing aid: one flipped bit must be caught by the digest */
        uint32_t bits;
        memcpy(&bits, &c->model.params[0], 4);
        bits ^= 1u;
        memcpy(&c->model.params[0], &bits, 4);
        sfl_warn("drift_injected", "round=%u", r->round);
    }
    uint8_t dg[32];
    sfl_params_digest(c->model.params, c->model.nparams, dg);
    if (rc == 0 && r->model_digest.len == 32 && sodium_memcmp(dg, r->model_digest.data, 32) == 0) {
        c->model_version = r->model_version;
        sfl_debug("replayed", "round=%u terms=%u", r->round, r->zo_entries);
        return 0;
    }
    sfl_warn("replay_mismatch", "round=%u reason=\"%s\" action=resync", r->round,
             rc < 0 ? "replay terms unusable" : "digest differs from the server's");
    return send_resync(c);
}

static int on_task_zo(client *c, const Seedfl__Task *t)
{
    const sfl_client_config *cfg = c->cfg;
    const Seedfl__ZoTask *z = t->zo;
    if (!z || !z->variant || z->root.len != 32)
        return fail(c, SFL_EPROTO, "round %u: zo task without its settings", t->round);
    sfl_zo_opts o;
    memset(&o, 0, sizeof o);
    if (!strcmp(z->variant, "pool"))
        o.variant = SFL_ZO_POOL;
    else if (!strcmp(z->variant, "derived"))
        o.variant = SFL_ZO_DERIVED;
    else
        return fail(c, SFL_EPROTO, "zo variant '%.20s' is not known to this client", z->variant);
    memcpy(c->zo_root, z->root.data, 32);
    c->have_root = 1;
    o.root = c->zo_root;
    o.client_pk = c->s_key->pub;
    o.pool_size = z->pool_size;
    o.steps = z->steps;
    o.batch = cfg->batch ? cfg->batch : t->batch;
    o.eps = z->eps;
    o.lr = cfg->lr > 0 ? cfg->lr : t->lr;
    o.scale = z->scale;
    o.seed = c->seed;
    o.shard = cfg->shard;
    o.round = t->round;
    size_t per = o.variant == SFL_ZO_POOL ? SFL_ZO_POOL_BYTES : SFL_ZO_DERIVED_BYTES;
    if (o.steps < 1 || o.steps > SFL_ZO_STEPS_MAX ||
        (o.variant == SFL_ZO_POOL && (o.pool_size < 1 || o.pool_size > SFL_ZO_POOL_MAX)))
        return fail(c, SFL_EPROTO, "zo task has unusable settings (steps %u, pool %u)", o.steps,
                    o.pool_size);
    uint8_t *steps = malloc((size_t)o.steps * per);
    if (!steps)
        return fail(c, SFL_ENOMEM, "out of memory");
    memcpy(c->start, c->model.params, c->model.nparams * sizeof(float));
    double loss = 0, t0 = sfl_now();
    int rc = sfl_zo_train(&c->model, &c->data, &o, steps, &loss);
    /* the local trajectory is discarded: every replica replays the result */
    memcpy(c->model.params, c->start, c->model.nparams * sizeof(float));
    if (rc < 0) {
        free(steps);
        return fail(c, rc, "zo steps failed: %s (eps %g, lr %g, scale %g, batch %u)",
                    sfl_strerror(rc), (double)o.eps, (double)o.lr, (double)o.scale, o.batch);
    }
    sfl_info("zo_trained", "round=%u attempt=%u steps=%u loss=%.4f seconds=%.2f", t->round,
             t->attempt, o.steps, loss, sfl_now() - t0);
    Seedfl__ZoUpdate u = SEEDFL__ZO_UPDATE__INIT;
    u.round = t->round;
    u.attempt = t->attempt;
    u.num_samples = c->data.n;
    u.steps.data = steps;
    u.steps.len = (size_t)o.steps * per;
    u.train_loss = loss;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_ZO_UPDATE;
    env.zo_update = &u;
    rc = send_env(c, &env);
    free(steps);
    return rc;
}

static int on_task(client *c, const Seedfl__Task *t)
{
    const sfl_client_config *cfg = c->cfg;
    int zo = t->mode && !strcmp(t->mode, "zo");
    if (!t->mode || (!zo && strcmp(t->mode, "dense") != 0))
        return fail(c, SFL_EPROTO, "task asks for mode '%s', which this client does not run",
                    t->mode ? t->mode : "");
    uint8_t dg[32];
    sfl_params_digest(c->model.params, c->model.nparams, dg);
    if (c->model_version != t->model_version || t->model_digest.len != 32 ||
        sodium_memcmp(dg, t->model_digest.data, 32) != 0) {
        if (c->resyncing) {
            /* sent before the server heard our resync: the model and this
             * task come again */
            sfl_info("task_deferred", "round=%u reason=\"waiting for the full model\"",
                     t->round);
            return 0;
        }
        return fail(c, SFL_EPROTO, "round %u: local model does not match the server's", t->round);
    }
    c->resyncing = 0;
    if (zo)
        return on_task_zo(c, t);
    sfl_train_opts o;
    memset(&o, 0, sizeof o);
    o.epochs = (int)(cfg->epochs ? cfg->epochs : t->local_epochs);
    o.batch = (int)(cfg->batch ? cfg->batch : t->batch);
    o.lr = cfg->lr > 0 ? cfg->lr : t->lr;
    o.momentum = cfg->have_momentum ? cfg->momentum : t->momentum;
    o.seed = c->seed;
    o.shard = cfg->shard;
    o.round = t->round;
    if (o.epochs < 1 || o.batch < 1 || !(o.lr > 0) || !(o.momentum >= 0 && o.momentum < 1))
        return fail(c, SFL_EPROTO, "task has an unusable recipe (epochs %d, batch %d, lr %g)",
                    o.epochs, o.batch, (double)o.lr);
    memcpy(c->start, c->model.params, c->model.nparams * sizeof(float));
    double loss = 0;
    double t0 = sfl_now();
    int rc = sfl_model_train(&c->model, &c->data, &o, &loss);
    if (rc < 0)
        return fail(c, rc, "local training failed: %s", sfl_strerror(rc));
    sfl_info("trained", "round=%u attempt=%u epochs=%d train_loss=%.4f seconds=%.2f", t->round,
             t->attempt, o.epochs, loss, sfl_now() - t0);
    rc = send_update(c, t, loss);
    /* keep the global model: the server's next task builds on it */
    memcpy(c->model.params, c->start, c->model.nparams * sizeof(float));
    return rc;
}

static int session_loop(client *c)
{
    Seedfl__Hello h = SEEDFL__HELLO__INIT;
    h.protocol_version = SFL_PROTOCOL_VERSION;
    h.client_name = (char *)c->cfg->name;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    int rc = send_env(c, &env);
    if (rc < 0)
        return rc;
    for (;;) {
        Seedfl__Envelope *e = NULL;
        if ((rc = recv_env(c, &e)) < 0)
            return rc;
        rc = 0;
        switch (e->msg_case) {
        case SEEDFL__ENVELOPE__MSG_WELCOME:
            rc = on_welcome(c, e->welcome);
            break;
        case SEEDFL__ENVELOPE__MSG_MODEL_CHUNK:
            rc = c->welcomed ? on_chunk(c, e->model_chunk)
                             : fail(c, SFL_EPROTO, "model before welcome");
            break;
        case SEEDFL__ENVELOPE__MSG_TASK:
            rc = c->welcomed ? on_task(c, e->task) : fail(c, SFL_EPROTO, "task before welcome");
            break;
        case SEEDFL__ENVELOPE__MSG_ZO_DELTA:
            rc = c->have_model_obj ? on_zo_delta(c, e->zo_delta)
                                   : fail(c, SFL_EPROTO, "zo terms before welcome");
            break;
        case SEEDFL__ENVELOPE__MSG_RESULT: {
            const Seedfl__Result *r = e->result;
            if (r->zo_lr > 0 && c->have_model_obj && !r->finished &&
                (rc = on_zo_result(c, r)) < 0)
                break;
            printf("round %u/%u: %u clients, test accuracy %.4f, test loss %.4f\n", r->round,
                   c->total_rounds, r->clients, r->test_accuracy, r->test_loss);
            fflush(stdout);
            if (r->finished) {
                seedfl__envelope__free_unpacked(e, NULL);
                return 0;
            }
            break;
        }
        case SEEDFL__ENVELOPE__MSG_HEARTBEAT:
            break;
        case SEEDFL__ENVELOPE__MSG_ERROR: {
            const Seedfl__Error *er = e->error;
            const char *msg = er->message ? er->message : "";
            if (er->code == SEEDFL__ERROR__CODE__STALE_ROUND ||
                er->code == SEEDFL__ERROR__CODE__INVALID_UPDATE) {
                sfl_warn("server_rejected_update", "round=%u code=%d reason=\"%s\"", er->round,
                         er->code, msg);
            } else if (er->code == SEEDFL__ERROR__CODE__SHUTDOWN) {
                rc = fail(c, SFL_EREFUSED, "the server stopped: %s", msg);
            } else if (er->code == SEEDFL__ERROR__CODE__TRAINING_OVER) {
                /* joined too late to take part: nothing went wrong */
                sfl_info("training_over", "reason=\"%s\"", msg);
                seedfl__envelope__free_unpacked(e, NULL);
                return 0;
            } else if (er->code == SEEDFL__ERROR__CODE__REPLACED) {
                rc = fail(c, SFL_EREFUSED, "replaced: another process with this key connected "
                          "(%s)", msg);
            } else {
                rc = fail(c, SFL_EREFUSED, "server error: %s", msg);
            }
            break;
        }
        default:
            rc = fail(c, SFL_EPROTO, "unexpected message from the server");
            break;
        }
        seedfl__envelope__free_unpacked(e, NULL);
        if (rc < 0)
            return rc;
    }
}

static void *heartbeat_main(void *arg)
{
    client *c = arg;
    pthread_mutex_lock(&c->hb_lock);
    while (!c->hb_stop) {
        double iv = c->hb_interval;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double wait = iv / 4;
        ts.tv_sec += (time_t)wait;
        ts.tv_nsec += (long)((wait - (double)(time_t)wait) * 1e9);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&c->hb_cond, &c->hb_lock, &ts);
        if (c->hb_stop)
            break;
        if (sfl_conn_idle(&c->conn) < c->hb_interval)
            continue;
        pthread_mutex_unlock(&c->hb_lock);
        Seedfl__Heartbeat hb = SEEDFL__HEARTBEAT__INIT;
        hb.time_ms = (uint64_t)(sfl_now() * 1000);
        Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
        env.msg_case = SEEDFL__ENVELOPE__MSG_HEARTBEAT;
        env.heartbeat = &hb;
        int rc = sfl_conn_send_quiet(&c->conn, &env);
        pthread_mutex_lock(&c->hb_lock);
        if (rc < 0)
            break; /* the work thread finds out on its next send or receive */
    }
    pthread_mutex_unlock(&c->hb_lock);
    return NULL;
}

static int heartbeat_start(client *c)
{
    c->hb_stop = 0;
    c->hb_interval = 5.0; /* until the Welcome says otherwise */
    if (pthread_create(&c->hb_thread, NULL, heartbeat_main, c) != 0)
        return fail(c, SFL_ENOMEM, "cannot start the heartbeat thread");
    c->hb_running = 1;
    return 0;
}

static void heartbeat_stop(client *c)
{
    if (!c->hb_running)
        return;
    pthread_mutex_lock(&c->hb_lock);
    c->hb_stop = 1;
    pthread_cond_signal(&c->hb_cond);
    pthread_mutex_unlock(&c->hb_lock);
    pthread_join(c->hb_thread, NULL);
    c->hb_running = 0;
}

/* Worth another connection: the link was lost, not refused or broken. */
static int transient(int rc)
{
    return rc == SFL_ECLOSED || rc == SFL_ETIMEOUT || rc == SFL_EIO || rc == SFL_ECRYPTO;
}

/* Worth another connection: a busy server; a lost link once this process
 * has been welcomed (a drop during the handshake included, see
 * sfl_client_run). Never an error the server sent (replaced, stopped). */
static int retriable(const client *c, int rc)
{
    return rc == SFL_EBUSY || (c->ever_welcomed && transient(rc));
}

/* A send failed or the link dropped: the server may have said why just
 * before (replaced, stopping), and that must not be mistaken for a lost
 * link worth reconnecting. Read what is left for a moment. */
static int last_words(client *c, int rc)
{
    c->conn.recv_timeout_ms = 500;
    for (int i = 0; i < 64; i++) {
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&c->conn, &e) < 0)
            break;
        int code = e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR ? (int)e->error->code : -1;
        if (code == SEEDFL__ERROR__CODE__REPLACED || code == SEEDFL__ERROR__CODE__SHUTDOWN) {
            rc = fail(c, SFL_EREFUSED, "%s: %s",
                      code == SEEDFL__ERROR__CODE__REPLACED
                          ? "replaced: another process with this key connected"
                          : "the server stopped",
                      e->error->message ? e->error->message : "");
            seedfl__envelope__free_unpacked(e, NULL);
            break;
        }
        if (code == SEEDFL__ERROR__CODE__TRAINING_OVER) {
            sfl_info("training_over", "reason=\"%s\"", e->error->message ? e->error->message : "");
            seedfl__envelope__free_unpacked(e, NULL);
            return 0;
        }
        seedfl__envelope__free_unpacked(e, NULL);
    }
    return rc;
}

/* One connection: connect, handshake, serve until it ends. */
static int run_session(client *c)
{
    const sfl_client_config *cfg = c->cfg;
    int rc;
    sfl_conn_close(&c->conn);
    if ((rc = sfl_conn_init(&c->conn)) < 0)
        return fail(c, rc, "out of memory");
    c->welcomed = 0;
    /* a server that accepts but never answers must not hold us forever */
    c->conn.recv_timeout_ms = CLIENT_HANDSHAKE_TIMEOUT_MS;
    if ((rc = sfl_conn_connect(&c->conn, cfg->host, cfg->port)) < 0 ||
        (rc = sfl_conn_handshake(&c->conn, c->s_key, c->server_pub)) < 0)
        return fail(c, rc, "%s", c->conn.err);
    sfl_info("connected", "server=%s:%d", cfg->host, cfg->port);
    if ((rc = heartbeat_start(c)) < 0)
        return rc;
    rc = session_loop(c);
    heartbeat_stop(c);
    if (transient(rc))
        rc = last_words(c, rc);
    return rc;
}

/* longest wait between two reconnection attempts */
#define RECONNECT_MAX_S 15.0

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int sfl_client_run(const sfl_client_config *cfg, char *err, size_t errlen)
{
    client c;
    memset(&c, 0, sizeof c);
    pthread_mutex_init(&c.hb_lock, NULL);
    pthread_cond_init(&c.hb_cond, NULL);
    c.cfg = cfg;
    c.err = err;
    c.errlen = errlen;
    c.model_version = UINT64_MAX;
    err[0] = 0;
    int rc = sfl_conn_init(&c.conn);
    c.s_key = sodium_malloc(sizeof *c.s_key);
    if (rc < 0 || !c.s_key) {
        rc = fail(&c, SFL_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = sfl_keys_load_secret(cfg->key_path, c.s_key->priv, err, errlen)) < 0)
        goto out;
    if ((rc = sfl_keypair_set(c.s_key, c.s_key->priv)) < 0) {
        rc = fail(&c, rc, "%s: not a usable X25519 secret key", cfg->key_path);
        goto out;
    }
    if ((rc = sfl_keys_load_public(cfg->server_key_path, c.server_pub, err, errlen)) < 0)
        goto out;
    /* check the data before connecting: a bad folder is the user's error, not the server's */
    size_t total = 0;
    if ((rc = sfl_data_count(cfg->data_dir, "train", &total, err, errlen)) < 0)
        goto out;
    if (cfg->limit && cfg->limit < total)
        total = cfg->limit;
    if (cfg->of > total) {
        rc = fail(&c, SFL_EINVAL, "--of %u: more shards than the %zu training examples", cfg->of,
                  total);
        goto out;
    }
    /* The first connection must work (a wrong address or key is the user's to
     * fix) unless the server said it is busy. Once a session was up, every
     * outage is retried with exponential backoff and jitter for
     * --reconnect-for, the budget and the backoff starting afresh with each
     * outage; then this key and server key are known good, so a connection
     * closed during the handshake is taken for a server that is restarting
     * or overloaded, not for a refusal. */
    rc = run_session(&c);
    while (rc < 0 && retriable(&c, rc) && cfg->reconnect_for > 0) {
        double give_up = sfl_now() + cfg->reconnect_for, backoff = 0.5;
        int attempt = 0;
        do {
            /* half to all of the backoff, so that clients dropped together
             * spread out; never more than the cap */
            double wait = backoff * (0.5 + 0.5 * randombytes_uniform(1001) / 1000.0);
            if (sfl_now() + wait > give_up)
                wait = give_up - sfl_now();
            sfl_warn(rc == SFL_EBUSY ? "server_busy" : "connection_lost",
                     "reason=\"%s\" attempt=%d retry_in_s=%.2f", err, ++attempt, wait);
            sleep_s(wait > 0 ? wait : 0);
            backoff = backoff * 2 < RECONNECT_MAX_S ? backoff * 2 : RECONNECT_MAX_S;
            err[0] = 0;
            rc = run_session(&c);
        } while (rc < 0 && !c.welcomed && retriable(&c, rc) && sfl_now() < give_up);
        if (rc < 0 && !c.welcomed && retriable(&c, rc)) {
            char last[256];
            snprintf(last, sizeof last, "%s", err);
            fail(&c, rc, "gave up reconnecting after %g s: %s", cfg->reconnect_for, last);
            break;
        }
        /* a session that was up and ended: a new outage if it was lost */
    }
out:
    heartbeat_stop(&c);
    sfl_conn_close(&c.conn);
    if (c.s_key)
        sodium_free(c.s_key);
    free(c.start);
    zo_terms_clear(&c);
    if (c.have_model_obj)
        sfl_model_free(&c.model);
    sfl_dataset_free(&c.data);
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        sfl_info("client_done", "status=%s peak_rss_kb=%ld", rc < 0 ? "error" : "ok",
                 ru.ru_maxrss);
    pthread_mutex_destroy(&c.hb_lock);
    pthread_cond_destroy(&c.hb_cond);
    return rc;
}
