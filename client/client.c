#include "client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "chan.h"
#include "conn.h"
#include "data.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "util.h"

#define CHUNK_FLOATS (SFL_CHUNK_BYTES / 4)

typedef struct {
    const sfl_client_config *cfg;
    sfl_conn conn;
    uint8_t *s_priv;     /* sodium_malloc'd */
    uint8_t server_pub[32];
    sfl_model model;
    int have_model_obj;
    uint64_t model_version; /* UINT64_MAX until a full model arrived */
    uint64_t chunk_have;
    sfl_dataset data;
    float *start;        /* parameters at the start of local training */
    uint64_t seed;
    uint32_t total_rounds;
    char *err;
    size_t errlen;
} client;

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
    rc = sfl_partition_iid(c->seed, total, cfg->shard, cfg->of, &idx, &cnt);
    if (rc < 0)
        return fail(c, rc, "partition: %s", sfl_strerror(rc));
    rc = sfl_data_load(cfg->data_dir, "train", idx, cnt, &c->data, c->err, c->errlen);
    free(idx);
    if (rc < 0)
        return rc;
    sfl_info("shard_loaded", "shard=%u of=%u examples=%zu", cfg->shard, cfg->of, c->data.n);
    return 0;
}

static int on_welcome(client *c, const Seedfl__Welcome *w)
{
    if (w->protocol_version != SFL_PROTOCOL_VERSION)
        return fail(c, SFL_EPROTO, "server speaks protocol %u, this client %d",
                    w->protocol_version, SFL_PROTOCOL_VERSION);
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
    c->start = malloc(c->model.nparams * sizeof(float));
    if (!c->start)
        return fail(c, SFL_ENOMEM, "out of memory for the model");
    sfl_info("welcome", "model=%s params=%zu rounds=%u seed=%llu", c->model.spec,
             c->model.nparams, w->total_rounds, (unsigned long long)c->seed);
    return 0;
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

static int on_task(client *c, const Seedfl__Task *t)
{
    const sfl_client_config *cfg = c->cfg;
    if (!t->mode || strcmp(t->mode, "dense") != 0)
        return fail(c, SFL_EPROTO, "task asks for mode '%s', which this client does not run",
                    t->mode ? t->mode : "");
    uint8_t dg[32];
    sfl_params_digest(c->model.params, c->model.nparams, dg);
    if (c->model_version != t->model_version || t->model_digest.len != 32 ||
        sodium_memcmp(dg, t->model_digest.data, 32) != 0)
        return fail(c, SFL_EPROTO, "round %u: local model does not match the server's", t->round);
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
            rc = c->have_model_obj ? fail(c, SFL_EPROTO, "second welcome") : on_welcome(c, e->welcome);
            break;
        case SEEDFL__ENVELOPE__MSG_MODEL_CHUNK:
            rc = c->have_model_obj ? on_chunk(c, e->model_chunk)
                                   : fail(c, SFL_EPROTO, "model before welcome");
            break;
        case SEEDFL__ENVELOPE__MSG_TASK:
            rc = c->have_model_obj ? on_task(c, e->task) : fail(c, SFL_EPROTO, "task before welcome");
            break;
        case SEEDFL__ENVELOPE__MSG_RESULT: {
            const Seedfl__Result *r = e->result;
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

int sfl_client_run(const sfl_client_config *cfg, char *err, size_t errlen)
{
    client c;
    memset(&c, 0, sizeof c);
    c.cfg = cfg;
    c.err = err;
    c.errlen = errlen;
    c.model_version = UINT64_MAX;
    err[0] = 0;
    int rc = sfl_conn_init(&c.conn);
    c.s_priv = sodium_malloc(32);
    if (rc < 0 || !c.s_priv) {
        rc = fail(&c, SFL_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = sfl_keys_load_secret(cfg->key_path, c.s_priv, err, errlen)) < 0)
        goto out;
    if ((rc = sfl_keys_load_public(cfg->server_key_path, c.server_pub, err, errlen)) < 0)
        goto out;
    /* check the data before connecting: a bad folder is the user's error, not the server's */
    size_t total = 0;
    if ((rc = sfl_data_count(cfg->data_dir, "train", &total, err, errlen)) < 0)
        goto out;
    if ((rc = sfl_conn_connect(&c.conn, cfg->host, cfg->port)) < 0 ||
        (rc = sfl_conn_handshake(&c.conn, c.s_priv, c.server_pub)) < 0) {
        fail(&c, rc, "%s", c.conn.err);
        goto out;
    }
    sfl_info("connected", "server=%s:%d", cfg->host, cfg->port);
    rc = session_loop(&c);
out:
    sfl_conn_close(&c.conn);
    if (c.s_priv)
        sodium_free(c.s_priv);
    free(c.start);
    if (c.have_model_obj)
        sfl_model_free(&c.model);
    sfl_dataset_free(&c.data);
    return rc;
}
