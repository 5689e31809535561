#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netdb.h>

#include <sodium.h>
#include <uv.h>

#include "chan.h"
#include "hosts.h"
#include "ident.h"
#include "data.h"
#include "err.h"
#include "keys.h"
#include "log.h"
#include "model.h"
#include "rng.h"
#include "util.h"

#define READ_BUF_SIZE (64 * 1024)
#define REPLAY_MEMORY 8 /* recent frame digests kept to tell a replay from tampering */
#define LINGER_S 2.0    /* how long a closing session drains its peer's input */
#define STOP_GRACE_S 5.0 /* how long a stopping server waits for its last writes */
enum { CLOSE_NOW = 0, CLOSE_FLUSH = 1, CLOSE_LINGER = 2 };
#define CHUNK_FLOATS (SFL_CHUNK_BYTES / 4)
/* A model download is encrypted a chunk at a time while less than this (or
 * --write-hwm, when smaller) of the session's writes waits in memory, so a
 * peer that reads slowly, or not at all, holds about one window of it
 * instead of a whole encrypted copy of the model. */
#define STREAM_WINDOW ((size_t)256 * 1024)

enum sess_state {
    SESS_HANDSHAKE, /* waiting for Noise message 1 */
    SESS_HELLO,     /* authenticated, waiting for Hello */
    SESS_JOINING,   /* welcomed; the client is loading its data (waiting for Ready) */
    SESS_READY,     /* may take part in rounds */
};

enum sub_state { SUB_NONE, SUB_RECEIVING, SUB_DONE, SUB_INVALID };

enum round_state { ROUND_WAITING, ROUND_OPEN, ROUND_AGGREGATING, ROUND_FINISHED };

struct server;

/* The model of one version as sent (float32 little endian), shared by every
 * download of it: made when an open round first needs it, immutable, held
 * by the server while that round is open and by each download of it in
 * progress, and freed with the last of them: a slow download keeps its
 * version's bytes while the server moves on, and no copy waits through the
 * aggregation once every client has its model. Loop thread only. */
typedef struct {
    unsigned refs;
    uint64_t version;
    size_t nparams;
    uint8_t le[];
} model_snap;

/* What a session still has to send behind a model download, in order:
 * either the rest of a download (snap set) or one message, packed but not
 * yet sealed, so that it takes its nonce only when its turn comes. */
typedef struct out_item {
    struct out_item *next;
    model_snap *snap;   /* a download: its model, and the next parameter to send */
    size_t off;
    uint8_t *buf;       /* a message: its frame, sealed in place when written */
    size_t len;
} out_item;

typedef struct session {
    uv_tcp_t tcp;
    struct server *srv;
    struct session *prev, *next;
    enum sess_state state;
    int closing;
    sfl_chan chan;
    char addr[64];
    char id[16];
    char name[33];          /* the client's name from its Hello, fit for a log line */
    uint64_t model_version; /* version of the model this client holds; UINT64_MAX = none */
    /* round participation */
    int in_cohort;
    enum sub_state sub;
    float *upd;             /* dense upload being received */
    uint64_t upd_have;
    uint64_t upd_samples;
    uint8_t recent[REPLAY_MEMORY][16];
    unsigned recent_n;
    /* liveness and flow control */
    int unauth;             /* counted among the unauthenticated connections */
    int reading;            /* reads are on (off past the write high-water mark) */
    double t_accept;        /* when the connection was accepted */
    double last_rx, last_tx;/* last frame received / bytes queued */
    double over_hwm_since;  /* when the write queue passed the mark; 0 = below */
    double linger_until;    /* closing: reading and dropping input until then */
    uint8_t host[16];       /* source host (hosts.h), counted while unauth */
    int hs_job;             /* a handshake job (hs_work) holds the channel */
    int orphan;             /* closed while that job ran: the job frees the session */
    size_t inflight;        /* bytes handed to uv_write whose callback has not run */
    /* held back behind a model download (nothing while out_head is NULL) */
    out_item *out_head, *out_tail;
    size_t out_msg_bytes;   /* frames of the messages held back */
    size_t out_model_bytes; /* model bytes still to send */
    int shutdown_pending;   /* closing with a flush: shut down once all of it is written */
    double flush_until;     /* ... or close outright then: the peer is not taking it */
} session;

typedef struct {
    uv_write_t req;
    uint8_t *data;
    size_t len;
} write_req;

typedef struct {
    uv_shutdown_t req;
    session *s;
} shutdown_req;

typedef struct server {
    const sfl_server_config *cfg;
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t wait_timer, deadline_timer, sweep_timer;
    uv_timer_t stop_timer;  /* after server_stop: the last sessions' grace */
    uv_signal_t sigterm, sigint;
    uv_work_t work;
    sfl_keypair *s_key; /* sodium_malloc'd */
    sfl_allowlist allow;
    sfl_model model;
    sfl_dataset test;
    session *sessions;
    size_t nsessions;
    size_t n_unauth;        /* connections that have not finished the handshake */
    sfl_hosts hosts;        /* those connections per source host */
    double plog_t0;         /* pre-authentication warnings: this second's start, */
    unsigned plog_n;        /* lines written in it, */
    uint64_t plog_dropped;  /* lines left out */
    uint64_t refused_unauth;/* closed at once: too many unauthenticated */
    sfl_ident_table ident;  /* per key: last handshake timestamp, live session */
    size_t write_hwm;
    size_t window;          /* STREAM_WINDOW, or write_hwm when smaller */
    model_snap *snap;       /* the latest model made for sending, while anyone holds it */
    int snap_held;          /* ... the server among them (until the round closes) */
    uint8_t *readbuf;
    FILE *metrics;

    enum round_state state;
    uint32_t round;     /* 1-based round being run */
    uint32_t attempt;
    uint64_t version;   /* rounds applied to the model */
    uint8_t digest[32];
    uint32_t cohort;    /* members of the current attempt */
    uint32_t pending;   /* cohort members yet to deliver */
    uint32_t received;  /* updates received this attempt, valid or not */
    double round_t0;
    uint64_t bytes_in, bytes_out;         /* totals */
    uint64_t bytes_in_mark, bytes_out_mark; /* at the end of the previous round */

    /* this attempt's delivered updates, moved out of their sessions as they
     * complete: a client that leaves afterwards does not take its update
     * along; the aggregation job reads them */
    sfl_submission *subs;
    size_t nsubs;
    double *acc;
    size_t agg_used;
    double acc_test, loss_test;

    /* zo mode */
    int zo;
    sfl_zlayout zlay;
    uint8_t zo_root[32];
    float zo_scale;         /* scale of the open round's scalars */
    float zo_next_scale;
    double *zo_w;           /* per submission weight (aggregation job) */
    double *zo_sums;        /* pool: K per-seed sums */
    uint32_t *zo_seeds;     /* pool: the published seeds, ascending */
    double *zo_vals;        /* pool: their sums */
    size_t zo_n;

    int stopping;
    int exit_code;
    char *err;
    size_t errlen;
} server;

static void round_maybe_start(server *srv);
static void round_check(server *srv);
static void session_close(session *s, int flush);
static void session_abort(session *s, Seedfl__Error__Code code, const char *why);
static void session_read_start(session *s);
static void session_shutdown(session *s);
static void on_session_closed(uv_handle_t *h);
static void session_send_error(session *s, Seedfl__Error__Code code, uint32_t round,
                               const char *msg);

/* Warnings about peers that have not authenticated are capped at
 * PREAUTH_LOG_PER_S lines a second, so that a flood of bad connections
 * cannot fill the disk; what was left out is counted in one line. */
#define PREAUTH_LOG_PER_S 20

static void preauth_log_flush(server *srv, double now)
{
    if (srv->plog_dropped)
        sfl_warn("log_suppressed", "lines=%" PRIu64 " seconds=%.1f reason=\"over %d "
                 "pre-authentication warnings a second\"", srv->plog_dropped, now - srv->plog_t0,
                 PREAUTH_LOG_PER_S);
    srv->plog_t0 = now;
    srv->plog_n = 0;
    srv->plog_dropped = 0;
}

static int preauth_log_ok(server *srv)
{
    double now = sfl_now();
    if (now - srv->plog_t0 >= 1.0)
        preauth_log_flush(srv, now);
    if (srv->plog_n < PREAUTH_LOG_PER_S) {
        srv->plog_n++;
        return 1;
    }
    srv->plog_dropped++;
    return 0;
}

/* ---------- failure and shutdown ---------- */

static void close_if_active(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* The grace after server_stop is over: a session still flushing (a peer
 * that does not read) is closed as it is, so that the server exits. */
static void on_stop_grace(uv_timer_t *t)
{
    server *srv = t->data;
    size_t n = 0;
    for (session *s = srv->sessions; s; s = s->next) {
        if (!uv_is_closing((uv_handle_t *)&s->tcp)) {
            uv_close((uv_handle_t *)&s->tcp, on_session_closed);
            n++;
        }
    }
    if (n)
        sfl_warn("stop_forced", "sessions=%zu reason=\"their peers took nothing for %g s\"", n,
                 STOP_GRACE_S);
    close_if_active((uv_handle_t *)t);
}

/* Stop everything: sessions are flushed and closed, then the loop ends
 * (within STOP_GRACE_S, whatever the peers do). */
static void server_stop(server *srv, int code)
{
    if (srv->stopping)
        return;
    srv->stopping = 1;
    srv->exit_code = code;
    uv_timer_stop(&srv->wait_timer);
    uv_timer_stop(&srv->deadline_timer);
    uv_timer_stop(&srv->sweep_timer);
    close_if_active((uv_handle_t *)&srv->sweep_timer);
    close_if_active((uv_handle_t *)&srv->listener);
    close_if_active((uv_handle_t *)&srv->wait_timer);
    close_if_active((uv_handle_t *)&srv->deadline_timer);
    close_if_active((uv_handle_t *)&srv->sigterm);
    close_if_active((uv_handle_t *)&srv->sigint);
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        /* tell authenticated clients why; when training simply ended, the
         * ready ones had the last Result, the others (still joining) learn
         * it here rather than taking the close for a lost server */
        if (code != 0 && s->state != SESS_HANDSHAKE && !s->closing)
            session_send_error(s, SEEDFL__ERROR__CODE__SHUTDOWN, srv->round,
                               srv->err[0] ? srv->err : "the server is stopping");
        else if (code == 0 && (s->state == SESS_HELLO || s->state == SESS_JOINING) &&
                 !s->closing)
            session_send_error(s, SEEDFL__ERROR__CODE__TRAINING_OVER, srv->round,
                               "training is over");
        if (s->closing && s->linger_until > 0 && !uv_is_closing((uv_handle_t *)&s->tcp))
            uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        else
            session_close(s, CLOSE_FLUSH);
    }
    /* does not keep the loop alive by itself; closed after uv_run if unused */
    uv_timer_start(&srv->stop_timer, on_stop_grace, (uint64_t)(STOP_GRACE_S * 1000), 0);
    uv_unref((uv_handle_t *)&srv->stop_timer);
}

static void server_fail(server *srv, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void server_fail(server *srv, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(srv->err, srv->errlen, fmt, ap);
    va_end(ap);
    sfl_error("server_failed", "reason=\"%s\"", srv->err);
    server_stop(srv, SFL_ETIMEOUT);
}

/* ---------- writing ---------- */

static void snap_release(server *srv, model_snap *m)
{
    if (!m || --m->refs > 0)
        return;
    if (srv->snap == m)
        srv->snap = NULL;
    free(m);
}

/* The round no longer makes downloads: its model goes with the last one. */
static void snap_unhold(server *srv)
{
    if (srv->snap_held) {
        srv->snap_held = 0;
        snap_release(srv, srv->snap);
    }
}

/* The current version's model as sent, with a reference for the caller.
 * Called only while a round is open, when no aggregation job is changing
 * the parameters. */
static model_snap *snap_current(server *srv)
{
    if (!srv->snap || srv->snap->version != srv->version) {
        /* an older version's stays with the downloads that hold it */
        snap_unhold(srv);
        const size_t n = srv->model.nparams;
        model_snap *m = malloc(sizeof *m + n * 4);
        if (!m)
            return NULL;
        m->refs = 0;
        m->version = srv->version;
        m->nparams = n;
        sfl_floats_to_le(m->le, srv->model.params, n);
        srv->snap = m;
    }
    if (!srv->snap_held) {
        /* one copy for every download of the round, not one per fast client */
        srv->snap->refs++;
        srv->snap_held = 1;
    }
    srv->snap->refs++;
    return srv->snap;
}

static void out_free(server *srv, out_item *it)
{
    snap_release(srv, it->snap);
    free(it->buf);
    free(it);
}

static void out_push(session *s, out_item *it)
{
    it->next = NULL;
    if (s->out_tail)
        s->out_tail->next = it;
    else
        s->out_head = it;
    s->out_tail = it;
}

static void out_pop(session *s)
{
    out_item *it = s->out_head;
    s->out_head = it->next;
    if (!s->out_head)
        s->out_tail = NULL;
    it->buf = NULL; /* written: the write request owns the frame now */
    out_free(s->srv, it);
}

/* Bytes this session holds in memory for its peer, and what it owes it:
 * those plus the rest of its model downloads, which are not in memory. */
static size_t session_queued(session *s)
{
    return s->inflight + s->out_msg_bytes;
}

static size_t session_owed(session *s)
{
    return session_queued(s) + s->out_model_bytes;
}

/* A peer that does not read its replies gets no more of our attention
 * until it does; one that stays behind is closed by the sweep. What it is
 * owed counts, not what is in memory: a download counts in full. */
static void session_check_hwm(session *s)
{
    if (!s->reading || s->closing || session_owed(s) <= s->srv->write_hwm)
        return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
    s->over_hwm_since = sfl_now();
    sfl_info("peer_throttled", "peer=%s queued=%zu owed=%zu", s->id[0] ? s->id : s->addr,
             session_queued(s), session_owed(s));
}

static void on_write(uv_write_t *req, int status);

/* Write len bytes (taking ownership of the malloc'd buffer). What the
 * socket takes at once is freed at once: a buffer handed to uv_write lives
 * until its callback, after this loop iteration, so a broadcast to many
 * fast peers would otherwise hold every peer's window at the same time. An
 * error is left to uv_write to report, as for any write. */
static int queue_write(session *s, uint8_t *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    size_t done = n > 0 ? (size_t)n : 0;
    if (done < len) {
        write_req *w = malloc(sizeof *w);
        if (!w) {
            free(data);
            return SFL_ENOMEM;
        }
        w->data = data;
        w->len = len - done;
        b = uv_buf_init((char *)data + done, (unsigned)(len - done));
        if (uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write) < 0) {
            free(data);
            free(w);
            return SFL_EIO;
        }
        s->inflight += w->len;
    } else {
        free(data);
    }
    s->srv->bytes_out += len;
    s->last_tx = sfl_now();
    return 0;
}

/* Close at once, even a session already closing with a flush. */
static void session_kill(session *s)
{
    if (!s->closing)
        session_close(s, CLOSE_NOW);
    else if (!uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
}

/* Seal the next chunk of the download at the head of the queue. */
static int seal_chunk(session *s, out_item *it, uint8_t **buf, size_t *len)
{
    const model_snap *m = it->snap;
    size_t cnt = m->nparams - it->off < CHUNK_FLOATS ? m->nparams - it->off : CHUNK_FLOATS;
    Seedfl__ModelChunk mc = SEEDFL__MODEL_CHUNK__INIT;
    mc.version = m->version;
    mc.offset = it->off;
    mc.total = m->nparams;
    mc.data.data = (uint8_t *)m->le + it->off * 4;
    mc.data.len = cnt * 4;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_MODEL_CHUNK;
    env.model_chunk = &mc;
    int rc = sfl_chan_seal(&s->chan, &env, buf, len);
    if (rc == 0) {
        it->off += cnt;
        s->out_model_bytes -= cnt * 4;
    }
    return rc;
}

/* The peer caught up: read from it again. */
static void session_maybe_resume(session *s)
{
    if (!s->closing && !s->reading && s->state != SESS_HANDSHAKE &&
        session_owed(s) < s->srv->write_hwm / 2) {
        s->over_hwm_since = 0;
        session_read_start(s);
    }
}

/* Write what is held back, in order, while less than the window waits in
 * memory: chunks of a download are sealed only now, and so is each message
 * behind it, so the nonces follow the order on the wire. Runs again from
 * on_write as the writes drain; a session closing with a flush shuts down
 * once everything is out. */
static void session_pump(session *s)
{
    while (s->out_head && !uv_is_closing((uv_handle_t *)&s->tcp) &&
           s->inflight < s->srv->window) {
        out_item *it = s->out_head;
        uint8_t *buf = NULL;
        size_t len = 0;
        int rc;
        if (it->snap) {
            rc = seal_chunk(s, it, &buf, &len);
            if (rc == 0 && it->off == it->snap->nparams) {
                sfl_debug("model_sent", "peer=%s version=%" PRIu64 " bytes=%zu", s->id,
                          it->snap->version, it->snap->nparams * 4);
                out_pop(s);
            }
        } else {
            buf = it->buf;
            len = it->len;
            s->out_msg_bytes -= len;
            out_pop(s);
            if ((rc = sfl_chan_seal_packed(&s->chan, buf, len)) < 0)
                free(buf);
        }
        if (rc == 0)
            rc = queue_write(s, buf, len);
        if (rc < 0) {
            sfl_warn("write_failed", "peer=%s error=\"%s\"", s->id, sfl_strerror(rc));
            session_kill(s);
            return;
        }
    }
    if (!s->out_head && s->shutdown_pending) {
        s->shutdown_pending = 0;
        session_shutdown(s);
    }
    session_maybe_resume(s);
}

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    session *s = req->handle->data; /* freed only after its close callback, later */
    s->inflight -= w->len;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED) {
        sfl_warn("write_failed", "peer=%s error=\"%s\"", s->id[0] ? s->id : s->addr,
                 uv_strerror(status));
        session_kill(s);
    }
    if (!uv_is_closing((uv_handle_t *)&s->tcp))
        session_pump(s);
}

/* Queue len bytes of data (taking ownership of the malloc'd buffer); only
 * while nothing is held back, which would have to go first. */
static int session_send_raw(session *s, uint8_t *data, size_t len)
{
    if (s->closing) {
        free(data);
        return SFL_ECLOSED;
    }
    int rc = queue_write(s, data, len);
    if (rc == 0)
        session_check_hwm(s);
    return rc;
}

/* Seal and queue a message, or, behind a model download, hold it back
 * packed until the download and everything before it are written. */
static int session_send(session *s, const Seedfl__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    int rc;
    if (s->closing)
        return SFL_ECLOSED;
    if (!s->out_head) {
        if ((rc = sfl_chan_seal(&s->chan, env, &buf, &len)) < 0)
            return rc;
        return session_send_raw(s, buf, len);
    }
    if ((rc = sfl_chan_pack(env, &buf, &len)) < 0)
        return rc;
    out_item *it = calloc(1, sizeof *it);
    if (!it) {
        free(buf);
        return SFL_ENOMEM;
    }
    it->buf = buf;
    it->len = len;
    out_push(s, it);
    s->out_msg_bytes += len;
    s->last_tx = sfl_now();
    session_check_hwm(s);
    return 0;
}

static void session_send_error(session *s, Seedfl__Error__Code code, uint32_t round,
                               const char *msg)
{
    Seedfl__Error e = SEEDFL__ERROR__INIT;
    e.code = code;
    e.round = round;
    e.message = (char *)msg;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_ERROR;
    env.error = &e;
    session_send(s, &env);
}

/* ---------- session lifetime ---------- */

/* A closed session's memory, with what it still held back (a download's
 * reference to its model among it). */
static void session_free(session *s)
{
    while (s->out_head) {
        out_item *it = s->out_head;
        s->out_head = it->next;
        out_free(s->srv, it);
    }
    sfl_chan_free(&s->chan);
    free(s->upd);
    free(s);
}

static void on_session_closed(uv_handle_t *h)
{
    session *s = h->data;
    server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else
        srv->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    srv->nsessions--;
    if (s->hs_job) {
        s->orphan = 1;
        return;
    }
    session_free(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    shutdown_req *sr = (shutdown_req *)req;
    session *s = sr->s;
    free(sr);
    /* a lingering session closes when its peer does, or at its deadline */
    if (s->linger_until > 0 && !s->srv->stopping)
        return;
    if (!uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
}

/* No longer among the connections waiting for their handshake. */
static void unauth_leave(session *s)
{
    if (!s->unauth)
        return;
    s->unauth = 0;
    s->srv->n_unauth--;
    sfl_hosts_remove(&s->srv->hosts, s->host);
}

/* Half-close once the write queue has drained (on_shutdown closes). */
static void session_shutdown(session *s)
{
    shutdown_req *sr = malloc(sizeof *sr);
    if (sr) {
        sr->s = s;
        if (uv_shutdown(&sr->req, (uv_stream_t *)&s->tcp, on_shutdown) == 0)
            return;
        free(sr);
    }
    uv_close((uv_handle_t *)&s->tcp, on_session_closed);
}

/* Leave the round (if in it) and close. CLOSE_FLUSH: queued writes go out
 * first, a model download in progress and what waits behind it included
 * (unless the peer does not take them within --slow-timeout). CLOSE_LINGER:
 * also keep reading (and dropping) what the peer still sends until it
 * closes or LINGER_S passes, so that its in-flight data does not turn our
 * close into a reset that destroys our last frame (the error that tells it
 * why) before it reads it. Freed only in the close callback. */
static void session_close(session *s, int flush)
{
    if (s->closing)
        return;
    server *srv = s->srv;
    s->closing = 1;
    if (flush == CLOSE_LINGER && !srv->stopping) {
        s->linger_until = sfl_now() + LINGER_S;
        session_read_start(s);
    } else {
        uv_read_stop((uv_stream_t *)&s->tcp);
        s->reading = 0;
    }
    unauth_leave(s);
    if (s->state != SESS_HANDSHAKE) {
        sfl_ident *e = sfl_ident_find(&srv->ident, s->chan.peer);
        if (e && e->session == s)
            e->session = NULL;
    }
    if (s->in_cohort) {
        s->in_cohort = 0;
        if (s->sub == SUB_NONE || s->sub == SUB_RECEIVING) {
            srv->pending--;
            if (s->sub == SUB_RECEIVING)
                sfl_warn("upload_lost", "peer=%s round=%u reason=\"connection closed mid-upload\"",
                         s->id, srv->round);
        }
        free(s->upd);
        s->upd = NULL;
        s->sub = SUB_NONE;
        if (srv->state == ROUND_OPEN && !srv->stopping)
            round_check(srv);
    }
    if (flush && s->out_head) {
        /* session_pump shuts down once it is all out */
        s->shutdown_pending = 1;
        s->flush_until = sfl_now() + srv->cfg->slow_timeout;
    } else if (flush) {
        session_shutdown(s);
    } else {
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
    }
}

/* ---------- rounds ---------- */

static uint32_t count_ready(server *srv)
{
    uint32_t n = 0;
    for (session *s = srv->sessions; s; s = s->next)
        if (!s->closing && s->state == SESS_READY)
            n++;
    return n;
}

static uint32_t quorum_needed(const server *srv)
{
    double q = srv->cfg->quorum;
    if (q >= 1)
        return (uint32_t)q;
    uint32_t n = (uint32_t)ceil(q * srv->cohort);
    return n < 1 ? 1 : n;
}

/* Free the attempt's delivered updates. */
static void subs_reset(server *srv)
{
    for (size_t i = 0; i < srv->nsubs; i++) {
        free(srv->subs[i].delta);
        free(srv->subs[i].zo);
    }
    free(srv->subs);
    srv->subs = NULL;
    srv->nsubs = 0;
}

/* A session's update is complete: it now belongs to the round. */
static void sub_accept(session *s, float *delta, uint8_t *zo, size_t zo_len, uint64_t samples)
{
    server *srv = s->srv;
    sfl_submission *sub = &srv->subs[srv->nsubs++];
    memset(sub, 0, sizeof *sub);
    memcpy(sub->key, s->chan.peer, 32);
    memcpy(sub->id, s->id, sizeof sub->id);
    sub->num_samples = samples;
    sub->delta = delta;
    sub->zo = zo;
    sub->zo_len = zo_len;
    s->sub = SUB_DONE;
    srv->received++;
    srv->pending--;
    sfl_debug("update_received", "peer=%s round=%u samples=%" PRIu64, s->id, srv->round, samples);
    round_check(srv);
}

/* Queue the current model for this session: a reference to the shared
 * snapshot and a cursor, not the chunks; session_pump seals them as the
 * peer takes them, and whatever is sent to the session from now on waits
 * behind them. */
static void send_model(session *s, server *srv)
{
    if (s->closing)
        return;
    model_snap *m = snap_current(srv);
    out_item *it = m ? calloc(1, sizeof *it) : NULL;
    if (!it) {
        snap_release(srv, m);
        sfl_warn("session_closed", "peer=%s reason=\"out of memory for the model download\"",
                 s->id);
        session_close(s, CLOSE_NOW);
        return;
    }
    it->snap = m;
    out_push(s, it);
    s->out_model_bytes += m->nparams * 4;
    s->model_version = srv->version;
    s->last_tx = sfl_now();
    session_pump(s);
    session_check_hwm(s);
}

static void send_task(session *s, server *srv)
{
    const sfl_server_config *cfg = srv->cfg;
    Seedfl__Task t = SEEDFL__TASK__INIT;
    t.round = srv->round;
    t.attempt = srv->attempt;
    t.mode = (char *)cfg->mode;
    t.model_version = srv->version;
    t.model_digest.data = srv->digest;
    t.model_digest.len = 32;
    t.local_epochs = cfg->epochs;
    t.batch = cfg->batch;
    t.lr = cfg->lr;
    t.momentum = cfg->momentum;
    t.deadline_ms = (uint32_t)(cfg->round_timeout * 1000);
    Seedfl__ZoTask zt = SEEDFL__ZO_TASK__INIT;
    if (srv->zo) {
        zt.variant = cfg->zo_variant == SFL_ZO_POOL ? "pool" : "derived";
        zt.root.data = srv->zo_root;
        zt.root.len = 32;
        zt.pool_size = cfg->pool_size;
        zt.steps = cfg->local_steps;
        zt.eps = cfg->eps;
        zt.scale = srv->zo_scale;
        t.zo = &zt;
    }
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_TASK;
    env.task = &t;
    if (session_send(s, &env) < 0)
        session_close(s, 0);
}

/* Ready clients a round needs before it opens: --start-clients for the
 * first round, --min-clients after it (a client lost for good must not stop
 * a run that can go on without it). */
static uint32_t clients_needed(const server *srv)
{
    const sfl_server_config *cfg = srv->cfg;
    return srv->round == 1 && cfg->start_clients ? cfg->start_clients
                                                                      : cfg->min_clients;
}

static void on_wait_timeout(uv_timer_t *t)
{
    server *srv = t->data;
    server_fail(srv, "only %u of the %u clients needed connected within %g s", count_ready(srv),
                clients_needed(srv), srv->cfg->wait_timeout);
}

static void on_deadline(uv_timer_t *t);

static int cmp_session_key(const void *a, const void *b)
{
    const session *x = *(session *const *)a, *y = *(session *const *)b;
    return memcmp(x->chan.peer, y->chan.peer, 32);
}

/* The round's cohort: every ready client, or a sample of them drawn from
 * the run seed, the round and the attempt over the clients sorted by key,
 * so the same clients give the same cohorts. Returns the count. */
static uint32_t pick_cohort(server *srv)
{
    size_t n = 0;
    for (session *s = srv->sessions; s; s = s->next)
        n += !s->closing && s->state == SESS_READY;
    session **v = malloc((n ? n : 1) * sizeof *v);
    if (!v)
        return 0;
    n = 0;
    for (session *s = srv->sessions; s; s = s->next)
        if (!s->closing && s->state == SESS_READY)
            v[n++] = s;
    size_t k = n;
    double c = srv->cfg->cohort;
    if (c >= 1)
        k = (size_t)c < n ? (size_t)c : n;
    else if (c > 0)
        k = (size_t)ceil(c * (double)n);
    if (k < n) {
        qsort(v, n, sizeof *v, cmp_session_key);
        sfl_rng r;
        sfl_rng_init(&r, "cohort", srv->cfg->seed, srv->round, srv->attempt);
        for (size_t i = 0; i < k; i++) {
            size_t j = i + sfl_rng_below(&r, (uint32_t)(n - i));
            session *t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
    for (size_t i = 0; i < k; i++) {
        v[i]->in_cohort = 1;
        v[i]->sub = SUB_NONE;
        v[i]->upd_have = 0;
    }
    free(v);
    return (uint32_t)k;
}

static void round_open(server *srv)
{
    srv->state = ROUND_OPEN;
    srv->received = 0;
    uv_timer_stop(&srv->wait_timer);
    srv->cohort = pick_cohort(srv);
    srv->pending = srv->cohort;
    subs_reset(srv);
    srv->subs = calloc(srv->cohort ? srv->cohort : 1, sizeof *srv->subs);
    if (!srv->subs) {
        server_fail(srv, "out of memory opening round %u", srv->round);
        return;
    }
    sfl_info("round_open", "round=%u attempt=%u cohort=%u quorum=%u deadline_s=%.1f", srv->round,
             srv->attempt, srv->cohort, quorum_needed(srv), srv->cfg->round_timeout);
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (!s->in_cohort)
            continue;
        if (s->model_version != srv->version)
            send_model(s, srv);
        if (!s->closing)
            send_task(s, srv);
    }
    uv_timer_start(&srv->deadline_timer, on_deadline, (uint64_t)(srv->cfg->round_timeout * 1000), 0);
    round_check(srv);
}

static void round_maybe_start(server *srv)
{
    if (srv->stopping || srv->state != ROUND_WAITING)
        return;
    if (count_ready(srv) >= clients_needed(srv)) {
        if (srv->round_t0 == 0)
            srv->round_t0 = sfl_now();
        round_open(srv);
    } else if (!uv_is_active((uv_handle_t *)&srv->wait_timer)) {
        uv_timer_start(&srv->wait_timer, on_wait_timeout, (uint64_t)(srv->cfg->wait_timeout * 1000),
                       0);
    }
}

/* zo aggregation (worker thread): validate, weigh, per-seed sums or the
 * relay list, the next scale, and the same replay every client applies. */
static void agg_zo(server *srv)
{
    const sfl_server_config *cfg = srv->cfg;
    const int pool = cfg->zo_variant == SFL_ZO_POOL;
    sfl_agg_zo_validate(srv->subs, srv->nsubs, cfg->zo_variant, cfg->local_steps,
                        cfg->pool_size, cfg->max_samples);
    srv->zo_n = 0;
    srv->zo_w = malloc((srv->nsubs ? srv->nsubs : 1) * sizeof *srv->zo_w);
    if (!srv->zo_w) {
        srv->agg_used = 0;
        srv->zo_next_scale = srv->zo_scale;
        return;
    }
    srv->agg_used = sfl_agg_weights(cfg->rule, srv->subs, srv->nsubs, srv->zo_w);
    double rms = 0;
    sfl_agg_zo_stats(srv->subs, srv->nsubs, cfg->zo_variant, srv->zo_scale, cfg->pool_size,
                     srv->zo_w, pool ? srv->zo_sums : NULL, &rms);
    double next = SFL_ZO_SCALE_C * rms / 127.0;
    srv->zo_next_scale = next > 0 && next < 1e30 ? (float)next : srv->zo_scale;

    int rc = 0;
    if (pool) {
        /* a seed whose contributions cancelled exactly moves nothing */
        for (uint32_t k = 0; k < cfg->pool_size; k++) {
            if (srv->zo_sums[k] != 0.0) {
                srv->zo_seeds[srv->zo_n] = k;
                srv->zo_vals[srv->zo_n++] = srv->zo_sums[k];
            }
        }
        rc = sfl_zo_replay_pool(&srv->zlay, srv->zo_root, srv->zo_seeds, srv->zo_vals, srv->zo_n,
                                cfg->lr, srv->model.params);
    } else {
        sfl_zo_contrib *c = calloc(srv->nsubs ? srv->nsubs : 1, sizeof *c);
        if (!c) {
            rc = SFL_ENOMEM;
        } else {
            for (size_t i = 0; i < srv->nsubs; i++) {
                const sfl_submission *sub = &srv->subs[i];
                if (!sub->valid)
                    continue;
                memcpy(c[srv->zo_n].key, sub->key, 32);
                c[srv->zo_n].weight = srv->zo_w[i];
                c[srv->zo_n].q = sub->zo;
                c[srv->zo_n++].nq = sub->zo_len;
            }
            rc = sfl_zo_replay_derived(&srv->zlay, srv->zo_root, srv->round, c, srv->zo_n,
                                       cfg->lr, srv->zo_scale, srv->model.params);
            free(c);
        }
    }
    if (rc < 0) {
        /* the replay checks what validation already guaranteed: only memory fails here */
        sfl_error("zo_replay_failed", "round=%u reason=\"%s\"", srv->round, sfl_strerror(rc));
        srv->agg_used = 0;
        srv->zo_n = 0;
    }
}

static void agg_work(uv_work_t *req)
{
    server *srv = req->data;
    size_t n = srv->model.nparams;
    sfl_agg_sort(srv->subs, srv->nsubs);
    if (srv->zo) {
        agg_zo(srv);
    } else {
        sfl_agg_validate(srv->subs, srv->nsubs, n, srv->cfg->max_samples);
        srv->agg_used = sfl_agg_apply(srv->cfg->rule, srv->subs, srv->nsubs, srv->model.params,
                                      n, srv->acc);
    }
    sfl_params_digest(srv->model.params, n, srv->digest);
    if (sfl_model_evaluate(&srv->model, &srv->test, &srv->acc_test, &srv->loss_test) < 0) {
        srv->acc_test = NAN;
        srv->loss_test = NAN;
    }
}

static session *find_session(server *srv, const uint8_t key[32])
{
    sfl_ident *e = sfl_ident_find(&srv->ident, key);
    session *s = e ? e->session : NULL;
    return s && !s->closing && s->state == SESS_READY ? s : NULL;
}

#define ZO_DELTA_SEEDS 4096 /* pool entries per ZoDelta message: well inside a frame */

/* What a synced replica needs to replay the zo round: the per-seed sums
 * (pool) or every valid client's scalars (derived). */
static int send_zo_delta(session *s, server *srv)
{
    Seedfl__ZoDelta zd = SEEDFL__ZO_DELTA__INIT;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_ZO_DELTA;
    env.zo_delta = &zd;
    zd.round = srv->round;
    if (srv->cfg->zo_variant == SFL_ZO_POOL) {
        for (size_t off = 0; off < srv->zo_n; off += ZO_DELTA_SEEDS) {
            size_t cnt = srv->zo_n - off < ZO_DELTA_SEEDS ? srv->zo_n - off : ZO_DELTA_SEEDS;
            zd.n_seeds = zd.n_sums = cnt;
            zd.seeds = srv->zo_seeds + off;
            zd.sums = srv->zo_vals + off;
            if (session_send(s, &env) < 0)
                return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < srv->nsubs; i++) {
        sfl_submission *sub = &srv->subs[i];
        if (!sub->valid)
            continue;
        zd.client_key.data = sub->key;
        zd.client_key.len = 32;
        zd.weight = srv->zo_w[i];
        zd.q.data = sub->zo;
        zd.q.len = sub->zo_len;
        if (session_send(s, &env) < 0)
            return -1;
    }
    return 0;
}

static void agg_done(uv_work_t *req, int status)
{
    server *srv = req->data;
    const sfl_server_config *cfg = srv->cfg;
    (void)status;
    for (size_t i = 0; i < srv->nsubs; i++) {
        sfl_submission *sub = &srv->subs[i];
        if (!sub->valid) {
            sfl_warn("update_rejected", "peer=%s round=%u reason=\"%s\"", sub->id, srv->round,
                     sub->reason);
            session *s = find_session(srv, sub->key);
            if (s)
                session_send_error(s, SEEDFL__ERROR__CODE__INVALID_UPDATE, srv->round,
                                   sub->reason);
        }
    }
    if (srv->agg_used == 0)
        sfl_warn("round_empty", "round=%u reason=\"no valid update arrived; model unchanged\"",
                 srv->round);
    const uint64_t before = srv->version;
    srv->version++;

    int finished = srv->round >= cfg->rounds;
    Seedfl__Result r = SEEDFL__RESULT__INIT;
    r.round = srv->round;
    r.model_version = srv->version;
    r.model_digest.data = srv->digest;
    r.model_digest.len = 32;
    r.clients = (uint32_t)srv->agg_used;
    r.test_accuracy = srv->acc_test;
    r.test_loss = srv->loss_test;
    r.finished = finished;
    if (srv->zo) {
        r.zo_entries = (uint32_t)srv->zo_n;
        r.zo_lr = cfg->lr;
        r.zo_scale = srv->zo_scale;
        r.zo_next_scale = srv->zo_next_scale;
    }
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_RESULT;
    env.result = &r;
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->closing || s->state != SESS_READY)
            continue;
        /* a zo replica that held the round's starting model replays it;
         * one that did not gets the full model with its next task */
        int replays = srv->zo && s->model_version == before;
        if ((replays && send_zo_delta(s, srv) < 0) || session_send(s, &env) < 0) {
            session_close(s, 0);
            continue;
        }
        if (replays)
            s->model_version = srv->version;
    }
    if (srv->zo) {
        sfl_info("zo_round", "round=%u entries=%zu scale=%.6g next_scale=%.6g", srv->round,
                 srv->zo_n, (double)srv->zo_scale, (double)srv->zo_next_scale);
        srv->zo_scale = srv->zo_next_scale;
        free(srv->zo_w);
        srv->zo_w = NULL;
    }
    subs_reset(srv);

    double secs = sfl_now() - srv->round_t0;
    uint64_t up = srv->bytes_in - srv->bytes_in_mark;
    uint64_t down = srv->bytes_out - srv->bytes_out_mark;
    srv->bytes_in_mark = srv->bytes_in;
    srv->bytes_out_mark = srv->bytes_out;
    sfl_info("round_done",
             "round=%u clients=%zu test_accuracy=%.4f test_loss=%.4f bytes_up=%" PRIu64
             " bytes_down=%" PRIu64 " seconds=%.2f",
             srv->round, srv->agg_used, srv->acc_test, srv->loss_test, up, down, secs);
    printf("round %3u/%u  clients %zu  test accuracy %.4f  test loss %.4f  up %.2f MB  down %.2f "
           "MB  %.1f s\n",
           srv->round, cfg->rounds, srv->agg_used, srv->acc_test, srv->loss_test, up / 1e6,
           down / 1e6, secs);
    fflush(stdout);
    if (srv->metrics) {
        fprintf(srv->metrics, "%u,%s,%zu,%.6f,%.6f,%" PRIu64 ",%" PRIu64 ",%.3f\n", srv->round,
                cfg->mode, srv->agg_used, srv->acc_test, srv->loss_test, up, down, secs);
        fflush(srv->metrics);
    }

    if (finished) {
        srv->state = ROUND_FINISHED;
        sfl_info("training_over", "rounds=%u test_accuracy=%.4f", srv->round, srv->acc_test);
        server_stop(srv, 0);
        return;
    }
    srv->round++;
    srv->attempt = 0;
    srv->round_t0 = sfl_now();
    srv->state = ROUND_WAITING;
    round_maybe_start(srv);
}

/* The attempt ends: aggregate what arrived, or retry, or give up. */
static void round_close(server *srv)
{
    uv_timer_stop(&srv->deadline_timer);
    snap_unhold(srv);
    uint32_t need = quorum_needed(srv);
    if (srv->received < need) {
        sfl_warn("quorum_missed", "round=%u attempt=%u received=%u needed=%u cohort=%u",
                 srv->round, srv->attempt, srv->received, need, srv->cohort);
        for (session *s = srv->sessions; s; s = s->next) {
            s->in_cohort = 0;
            free(s->upd);
            s->upd = NULL;
            s->sub = SUB_NONE;
        }
        subs_reset(srv);
        if (srv->attempt >= srv->cfg->retries) {
            server_fail(srv,
                        "round %u: quorum not met: %u of %u updates received by the deadline "
                        "(needed %u) after %u attempts",
                        srv->round, srv->received, srv->cohort, need, srv->attempt + 1);
            return;
        }
        srv->attempt++;
        srv->state = ROUND_WAITING;
        round_maybe_start(srv);
        return;
    }
    for (session *s = srv->sessions; s; s = s->next) {
        if (!s->in_cohort)
            continue;
        if (s->sub == SUB_NONE || s->sub == SUB_RECEIVING)
            sfl_warn("straggler_dropped", "peer=%s round=%u", s->id, srv->round);
        free(s->upd);
        s->upd = NULL;
        s->in_cohort = 0;
        s->sub = SUB_NONE;
    }
    srv->state = ROUND_AGGREGATING;
    srv->work.data = srv;
    if (uv_queue_work(srv->loop, &srv->work, agg_work, agg_done) < 0)
        server_fail(srv, "could not queue aggregation");
}

static void round_check(server *srv)
{
    if (srv->state == ROUND_OPEN && srv->pending == 0)
        round_close(srv);
}

static void on_deadline(uv_timer_t *t)
{
    server *srv = t->data;
    if (srv->state == ROUND_OPEN) {
        sfl_info("round_deadline", "round=%u attempt=%u received=%u cohort=%u", srv->round,
                 srv->attempt, srv->received, srv->cohort);
        round_close(srv);
    }
}

/* ---------- messages ---------- */

static void sub_reject(session *s, const char *why)
{
    server *srv = s->srv;
    sfl_warn("update_rejected", "peer=%s round=%u reason=\"%s\"", s->id, srv->round, why);
    free(s->upd);
    s->upd = NULL;
    s->sub = SUB_INVALID;
    srv->received++;
    srv->pending--;
    session_send_error(s, SEEDFL__ERROR__CODE__INVALID_UPDATE, srv->round, why);
    round_check(srv);
}

/* Is this update for the open round and from a cohort member that has not
 * delivered yet? Answers the client otherwise (first = this message starts
 * an update, so the client hears about it once, not per chunk). */
static int update_admissible(session *s, uint32_t round, uint32_t attempt, int first)
{
    server *srv = s->srv;
    if (srv->state != ROUND_OPEN || round != srv->round || attempt != srv->attempt ||
        !s->in_cohort) {
        if (first) {
            sfl_info("stale_update", "peer=%s update_round=%u attempt=%u current_round=%u",
                     s->id, round, attempt, srv->round);
            session_send_error(s, SEEDFL__ERROR__CODE__STALE_ROUND, round,
                               "update is not for the open round");
        }
        return 0;
    }
    if (s->sub == SUB_DONE || s->sub == SUB_INVALID) {
        if (first)
            session_send_error(s, SEEDFL__ERROR__CODE__INVALID_UPDATE, round,
                               "one update per client per round");
        return 0;
    }
    for (size_t i = 0; i < srv->nsubs; i++) {
        if (sodium_memcmp(srv->subs[i].key, s->chan.peer, 32) == 0) {
            if (first)
                sub_reject(s, "another session of this key already delivered this round");
            return 0;
        }
    }
    return 1;
}

static void handle_update(session *s, const Seedfl__Update *u)
{
    server *srv = s->srv;
    const uint64_t n = srv->model.nparams;
    if (srv->zo) {
        session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "dense update in a zo run");
        return;
    }
    if (!update_admissible(s, u->round, u->attempt, u->offset == 0))
        return;
    char why[96];
    if (u->total != n) {
        snprintf(why, sizeof why, "update has %" PRIu64 " values, model has %" PRIu64, u->total, n);
        sub_reject(s, why);
        return;
    }
    if (u->offset != s->upd_have || u->data.len == 0 || u->data.len % 4 != 0 ||
        u->data.len / 4 > n - u->offset) {
        snprintf(why, sizeof why, "bad chunk at offset %" PRIu64 " (%zu bytes, expected offset %" PRIu64 ")",
                 u->offset, u->data.len, s->upd_have);
        sub_reject(s, why);
        return;
    }
    if (s->sub == SUB_NONE) {
        s->upd = malloc(n * sizeof(float));
        if (!s->upd) {
            sub_reject(s, "server out of memory");
            return;
        }
        s->upd_samples = u->num_samples;
        s->sub = SUB_RECEIVING;
    } else if (u->num_samples != s->upd_samples) {
        sub_reject(s, "sample count changed between chunks");
        return;
    }
    sfl_floats_from_le(s->upd + u->offset, u->data.data, u->data.len / 4);
    s->upd_have += u->data.len / 4;
    if (s->upd_have == n) {
        float *d = s->upd;
        s->upd = NULL;
        sub_accept(s, d, NULL, 0, s->upd_samples);
    }
}

static void handle_zo_update(session *s, const Seedfl__ZoUpdate *u)
{
    server *srv = s->srv;
    const sfl_server_config *cfg = srv->cfg;
    if (!srv->zo) {
        session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "zo update in a dense run");
        return;
    }
    if (!update_admissible(s, u->round, u->attempt, 1))
        return;
    /* lengths on the loop, values on the worker with the aggregation */
    size_t per = cfg->zo_variant == SFL_ZO_POOL ? SFL_ZO_POOL_BYTES : SFL_ZO_DERIVED_BYTES;
    if (u->steps.len != (size_t)cfg->local_steps * per) {
        char why[96];
        snprintf(why, sizeof why, "%zu bytes of steps, expected %u steps of %zu bytes",
                 u->steps.len, cfg->local_steps, per);
        sub_reject(s, why);
        return;
    }
    uint8_t *copy = malloc(u->steps.len);
    if (!copy) {
        sub_reject(s, "server out of memory");
        return;
    }
    memcpy(copy, u->steps.data, u->steps.len);
    sub_accept(s, NULL, copy, u->steps.len, u->num_samples);
}

/* A zo client whose replay did not reproduce the digest: send the whole
 * model, and the task again when it still has this round to do. */
static void handle_resync(session *s, const Seedfl__Resync *r)
{
    server *srv = s->srv;
    sfl_warn("resync", "peer=%s client_version=%" PRIu64 " server_version=%" PRIu64, s->id,
             r->model_version, srv->version);
    s->model_version = UINT64_MAX;
    if (srv->state == ROUND_OPEN && s->in_cohort && s->sub == SUB_NONE) {
        send_model(s, srv);
        if (!s->closing)
            send_task(s, srv);
    }
}

/* A peer's text for a log line: printable ASCII but quotes and
 * backslashes, at most cap - 1 bytes, so that it cannot forge a line or a
 * field. */
static void log_text(char *out, size_t cap, const char *in)
{
    size_t n = 0;
    for (; in && *in && n + 1 < cap; in++)
        out[n++] = (*in >= 0x20 && *in < 0x7f && *in != '"' && *in != '\\') ? *in : '?';
    out[n] = 0;
}

static void handle_hello(session *s, const Seedfl__Hello *h)
{
    server *srv = s->srv;
    log_text(s->name, sizeof s->name, h->client_name);
    if (h->protocol_version != SFL_PROTOCOL_VERSION) {
        char msg[96];
        snprintf(msg, sizeof msg, "protocol version %u not supported (server speaks %d)",
                 h->protocol_version, SFL_PROTOCOL_VERSION);
        sfl_warn("hello_rejected", "peer=%s reason=\"%s\"", s->id, msg);
        session_send_error(s, SEEDFL__ERROR__CODE__BAD_VERSION, 0, msg);
        session_close(s, 1);
        return;
    }
    Seedfl__Welcome w = SEEDFL__WELCOME__INIT;
    w.protocol_version = SFL_PROTOCOL_VERSION;
    w.model_spec = srv->model.spec;
    w.total_rounds = srv->cfg->rounds;
    w.seed = srv->cfg->seed;
    w.heartbeat_ms = (uint32_t)(srv->cfg->heartbeat_interval * 1000);
    w.heartbeat_misses = srv->cfg->heartbeat_misses;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_WELCOME;
    env.welcome = &w;
    if (session_send(s, &env) < 0) {
        session_close(s, 0);
        return;
    }
    s->state = SESS_JOINING;
    sfl_info("hello", "peer=%s name=\"%s\" version=%u", s->id, s->name, h->protocol_version);
}

/* The client has its data: it counts towards min-clients from now on (a
 * client that fails while loading never held a round up). */
static void handle_ready(session *s, const Seedfl__Ready *r)
{
    server *srv = s->srv;
    s->state = SESS_READY;
    sfl_info("client_ready", "peer=%s name=\"%s\" addr=%s samples=%" PRIu64 " clients=%u", s->id,
             s->name, s->addr, r->num_samples, count_ready(srv));
    round_maybe_start(srv);
}

/* An authenticated peer broke the protocol: tell it why, then close. */
static void session_abort(session *s, Seedfl__Error__Code code, const char *why)
{
    sfl_warn("session_closed", "peer=%s reason=\"%s\"", s->id, why);
    session_send_error(s, code, s->srv->round, why);
    session_close(s, CLOSE_LINGER);
}

static void handle_envelope(session *s, const Seedfl__Envelope *env)
{
    if (s->state == SESS_HELLO) {
        if (env->msg_case != SEEDFL__ENVELOPE__MSG_HELLO) {
            session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "expected hello");
            return;
        }
        handle_hello(s, env->hello);
        return;
    }
    if (s->state == SESS_JOINING) {
        if (env->msg_case == SEEDFL__ENVELOPE__MSG_READY)
            handle_ready(s, env->ready);
        else if (env->msg_case != SEEDFL__ENVELOPE__MSG_HEARTBEAT)
            session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "expected ready");
        return;
    }
    switch (env->msg_case) {
    case SEEDFL__ENVELOPE__MSG_UPDATE:
        handle_update(s, env->update);
        break;
    case SEEDFL__ENVELOPE__MSG_ZO_UPDATE:
        handle_zo_update(s, env->zo_update);
        break;
    case SEEDFL__ENVELOPE__MSG_RESYNC:
        handle_resync(s, env->resync);
        break;
    case SEEDFL__ENVELOPE__MSG_HEARTBEAT:
        break;
    case SEEDFL__ENVELOPE__MSG_ERROR: {
        char msg[81];
        log_text(msg, sizeof msg, env->error->message);
        sfl_info("peer_error", "peer=%s message=\"%s\"", s->id, msg);
        break;
    }
    default:
        session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "unexpected message type");
        break;
    }
}

/* Keep a short digest of recent good frames: a frame that fails
 * authentication and matches one of them is a replay, not tampering. */
static int seen_frame(const session *s, const uint8_t h[16])
{
    unsigned n = s->recent_n < REPLAY_MEMORY ? s->recent_n : REPLAY_MEMORY;
    for (unsigned i = 0; i < n; i++)
        if (sodium_memcmp(h, s->recent[i], 16) == 0)
            return 1;
    return 0;
}

/* The handshake's X25519 work (2 DH to read message 1, a key and 2 DH to
 * answer it) runs on the libuv work queue, so that a burst of handshakes
 * uses every core and never stalls the rounds of clients already in; the
 * loop thread keeps the decisions that need its state (timestamps,
 * replacing an older session) and the secure memory. The reply is made
 * before the timestamp is checked, so a replayed message 1 costs the
 * server 3 X25519 more than it needs to; any key at all already costs it
 * the 2 of message 1. While a job runs the session reads nothing and its
 * channel belongs to the job; a session closed meanwhile is freed when the
 * job comes back. */
typedef struct {
    uv_work_t req;
    session *s;
    int read_rc, write_rc;  /* of reading message 1, of writing message 2 */
    int listed;             /* the key is on the allow-list (or enrolment is open) */
    uint8_t msg[SFL_HS1_LEN];
    uint8_t out[SFL_FRAME_HDR + SFL_HS2_LEN];
    size_t out_len;
} hs_job;

/* Worker thread: touches only the job, the session's channel and what the
 * server never changes after start (its key pair, the allow-list). */
static void hs_work(uv_work_t *req)
{
    hs_job *j = req->data;
    session *s = j->s;
    server *srv = s->srv;
    j->read_rc = sfl_chan_server_read(&s->chan, srv->s_key, NULL, j->msg, sizeof j->msg);
    if (j->read_rc < 0)
        return;
    j->listed = srv->cfg->open_enrolment || sfl_allowlist_contains(&srv->allow, s->chan.peer);
    if (j->listed)
        j->write_rc = sfl_chan_server_write(&s->chan, j->out, &j->out_len);
}

static void hs_refuse(session *s, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hs_refuse(session *s, const char *event, const char *fmt, ...)
{
    char why[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (preauth_log_ok(s->srv))
        sfl_warn(event, "addr=%s%s%s reason=\"%s\"", s->addr, s->id[0] ? " peer=" : "", s->id,
                 why);
    session_close(s, 0);
}

/* The job is back: decide, and on success open the channel, answer, and
 * make this session the key's only one. */
static void hs_finish(session *s, const hs_job *j)
{
    server *srv = s->srv;
    if (j->read_rc < 0) {
        hs_refuse(s, "handshake_failed", "%s", j->read_rc == SFL_EFORMAT
                  ? "handshake message of the wrong size"
                  : "handshake message 1 did not authenticate (tampered, or the client pinned "
                    "another server key)");
        return;
    }
    sfl_key_id(s->chan.peer, s->id);
    if (!j->listed) {
        hs_refuse(s, "handshake_refused", "client key not on the allow-list");
        return;
    }
    int rc = j->write_rc;
    if (rc == 0)
        rc = sfl_chan_server_open(&s->chan);
    if (rc < 0) {
        hs_refuse(s, "handshake_failed", "%s", sfl_strerror(rc));
        return;
    }
    sfl_ident *e = sfl_ident_get(&srv->ident, s->chan.peer);
    if (!e) {
        hs_refuse(s, "handshake_refused", "identity table full");
        return;
    }
    if (!sfl_ident_fresh(e, s->chan.hs_ts)) {
        hs_refuse(s, "handshake_refused", "handshake timestamp not newer than the last "
                  "accepted for this key (a replayed first message)");
        return;
    }
    memcpy(e->ts, s->chan.hs_ts, SFL_IDENT_TS_LEN);
    session *old = e->session;
    e->session = s;
    unauth_leave(s);
    s->last_rx = sfl_now();
    if (old && old != s && !old->closing) {
        sfl_warn("session_replaced", "peer=%s old_addr=%s new_addr=%s", s->id, old->addr,
                 s->addr);
        session_send_error(old, SEEDFL__ERROR__CODE__REPLACED, srv->round,
                           "a newer session of this key took over");
        session_close(old, CLOSE_LINGER);
    }
    uint8_t *copy = malloc(j->out_len);
    if (!copy) {
        session_close(s, 0);
        return;
    }
    memcpy(copy, j->out, j->out_len);
    session_send_raw(s, copy, j->out_len);
    s->state = SESS_HELLO;
    session_read_start(s);
    sfl_info("handshake_done", "addr=%s peer=%s", s->addr, s->id);
}

static void hs_done(uv_work_t *req, int status)
{
    hs_job *j = req->data;
    session *s = j->s;
    s->hs_job = 0;
    if (s->orphan) {
        /* closed while the job ran: on_session_closed left the freeing to us */
        session_free(s);
    } else if (status < 0 || s->closing) {
        session_close(s, 0);
    } else {
        hs_finish(s, j);
    }
    free(j);
}

/* Message 1 arrived (a frame of the right size or not): off to the work
 * queue, reading paused until the job is back. */
static void handle_handshake(session *s, const uint8_t *frame, size_t len)
{
    if (len != SFL_HS1_LEN) {
        if (preauth_log_ok(s->srv))
            sfl_warn("handshake_failed", "addr=%s reason=\"handshake message of the wrong size\"",
                     s->addr);
        session_close(s, 0);
        return;
    }
    hs_job *j = calloc(1, sizeof *j);
    if (!j) {
        session_close(s, 0);
        return;
    }
    j->s = s;
    j->req.data = j;
    memcpy(j->msg, frame, len);
    if (uv_queue_work(s->srv->loop, &j->req, hs_work, hs_done) < 0) {
        free(j);
        session_close(s, 0);
        return;
    }
    s->hs_job = 1;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = 0;
}

static void handle_frame(session *s, uint8_t *frame, size_t len)
{
    if (s->state == SESS_HANDSHAKE) {
        handle_handshake(s, frame, len);
        return;
    }
    Seedfl__Envelope *env = NULL;
    /* digest before decryption, which works in place */
    uint8_t h[16];
    crypto_generichash(h, sizeof h, frame, len, NULL, 0);
    int rc = sfl_chan_open(&s->chan, frame, len, &env);
    if (rc == SFL_ECRYPTO) {
        session_abort(s, SEEDFL__ERROR__CODE__MALFORMED,
                      seen_frame(s, h) ? "replayed frame" : "frame failed authentication (tampered)");
        return;
    }
    if (rc < 0) {
        session_abort(s, SEEDFL__ERROR__CODE__MALFORMED, "malformed message");
        return;
    }
    memcpy(s->recent[s->recent_n % REPLAY_MEMORY], h, 16);
    s->recent_n++;
    s->last_rx = sfl_now();
    handle_envelope(s, env);
    seedfl__envelope__free_unpacked(env, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    session *s = h->data;
    (void)suggested;
    /* one buffer for every connection: a read is consumed before the next */
    *buf = uv_buf_init((char *)s->srv->readbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    session *s = stream->data;
    server *srv = s->srv;
    if (s->closing) {
        /* lingering: drop the input; close once the peer has */
        if (nread < 0 && !uv_is_closing((uv_handle_t *)&s->tcp))
            uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        return;
    }
    if (nread < 0) {
        if (s->state == SESS_HANDSHAKE) {
            if (preauth_log_ok(srv))
                sfl_warn("handshake_failed", "addr=%s reason=\"peer closed before the handshake "
                         "completed\"", s->addr);
        } else {
            sfl_info("client_left", "peer=%s reason=\"%s\"", s->id,
                     nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        }
        session_close(s, 0);
        return;
    }
    srv->bytes_in += (uint64_t)nread;
    const uint8_t *p = (const uint8_t *)buf->base;
    size_t left = (size_t)nread;
    while (left > 0 && !s->closing) {
        size_t used = 0;
        const uint8_t *frame;
        size_t flen;
        int rc = sfl_frame_feed(&s->chan.rd, p, left, &used, &frame, &flen);
        p += used;
        left -= used;
        if (rc < 0) {
            if (s->state == SESS_HANDSHAKE) {
                if (preauth_log_ok(srv))
                    sfl_warn("handshake_failed", "addr=%s reason=\"%s frame length before "
                             "authentication\"", s->addr,
                             rc == SFL_ETOOBIG ? "oversize" : rc == SFL_EFORMAT ? "zero"
                                                                             : "unreadable");
                session_close(s, 0);
            } else {
                session_abort(s, SEEDFL__ERROR__CODE__MALFORMED,
                              rc == SFL_ETOOBIG   ? "oversize frame length"
                              : rc == SFL_EFORMAT ? "zero frame length"
                                                  : sfl_strerror(rc));
            }
            return;
        }
        if (rc == 0)
            break;
        handle_frame(s, (uint8_t *)frame, flen);
        if (s->hs_job && left > 0 && !s->closing) {
            /* a client waits for message 2 before it says anything else */
            if (preauth_log_ok(srv))
                sfl_warn("handshake_failed", "addr=%s reason=\"data after handshake message 1\"",
                         s->addr);
            session_close(s, 0);
        }
    }
    if (!s->closing)
        sfl_frame_reader_trim(&s->chan.rd);
}

static void session_read_start(session *s)
{
    if (s->hs_job)
        return; /* the job resumes reading when it is done */
    if (!s->reading && (!s->closing || s->linger_until > 0) &&
        uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read) == 0)
        s->reading = 1;
}

/* Refuse a connection just accepted: "busy, try again later" (frame.h),
 * which a fresh socket's send buffer takes at once or not at all, then
 * close. */
static void refuse_busy(session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_busy(session *s, const char *fmt, ...)
{
    server *srv = s->srv;
    static const char busy[SFL_FRAME_BUSY_LEN];
    uv_buf_t b = uv_buf_init((char *)busy, sizeof busy);
    uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    srv->refused_unauth++;
    if (preauth_log_ok(srv)) {
        char why[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof why, fmt, ap);
        va_end(ap);
        sfl_warn("connection_refused", "addr=%s reason=\"%s\" refused_so_far=%" PRIu64, s->addr,
                 why, srv->refused_unauth);
    }
}

static void on_connection(uv_stream_t *listener, int status)
{
    server *srv = listener->data;
    const sfl_server_config *cfg = srv->cfg;
    if (status < 0) {
        sfl_warn("accept_failed", "error=\"%s\"", uv_strerror(status));
        return;
    }
    session *s = calloc(1, sizeof *s);
    if (!s)
        return;
    s->srv = srv;
    s->model_version = UINT64_MAX;
    s->t_accept = sfl_now();
    sfl_chan_init(&s->chan);
    uv_tcp_init(srv->loop, &s->tcp);
    s->tcp.data = s;
    s->next = srv->sessions;
    if (srv->sessions)
        srv->sessions->prev = s;
    srv->sessions = s;
    srv->nsessions++;
    s->closing = 1; /* until it is counted in */
    snprintf(s->addr, sizeof s->addr, "?");
    int arc = uv_accept(listener, (uv_stream_t *)&s->tcp);
    if (arc < 0) {
        sfl_warn("accept_failed", "error=\"%s\"", uv_strerror(arc));
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        return;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    memset(&ss, 0, sizeof ss);
    if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &len) == 0) {
        char ip[48] = "?";
        int port = 0;
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
        snprintf(s->addr, sizeof s->addr, "%s:%d", ip, port);
    }
    if (srv->stopping) {
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        return;
    }
    if (srv->n_unauth >= cfg->max_unauth) {
        refuse_busy(s, "%zu connections not yet authenticated (--max-unauth %u)", srv->n_unauth,
                    cfg->max_unauth);
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        return;
    }
    sfl_hosts_key((struct sockaddr *)&ss, s->host);
    uint32_t from_host = sfl_hosts_add(&srv->hosts, s->host);
    if (from_host == 0 || from_host > cfg->max_unauth_per_host) {
        if (from_host)
            sfl_hosts_remove(&srv->hosts, s->host);
        refuse_busy(s, "%u connections of this host not yet authenticated "
                    "(--max-unauth-per-host %u)", from_host ? from_host - 1 : 0,
                    cfg->max_unauth_per_host);
        uv_close((uv_handle_t *)&s->tcp, on_session_closed);
        return;
    }
    s->closing = 0;
    s->unauth = 1;
    srv->n_unauth++;
    uv_tcp_nodelay(&s->tcp, 1);
    session_read_start(s);
}

static void send_heartbeat(session *s)
{
    Seedfl__Heartbeat hb = SEEDFL__HEARTBEAT__INIT;
    hb.time_ms = (uint64_t)(sfl_now() * 1000);
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HEARTBEAT;
    env.heartbeat = &hb;
    if (session_send(s, &env) < 0)
        session_close(s, 0);
}

/* Several times a second: close handshakes that take too long, clients
 * whose heartbeats stopped and peers that stay behind on their replies, and
 * keep our own side of every session audible. */
static void on_sweep(uv_timer_t *t)
{
    server *srv = t->data;
    const sfl_server_config *cfg = srv->cfg;
    const double now = sfl_now();
    const double silent = cfg->heartbeat_interval * cfg->heartbeat_misses;
    if (srv->plog_dropped && now - srv->plog_t0 >= 1.0)
        preauth_log_flush(srv, now);
    for (session *s = srv->sessions, *next; s; s = next) {
        next = s->next;
        if (s->closing) {
            if (uv_is_closing((uv_handle_t *)&s->tcp))
                continue;
            if (s->shutdown_pending && now > s->flush_until) {
                /* what it is owed would hold its model's version alive */
                sfl_warn("slow_reader", "peer=%s queued=%zu owed=%zu reason=\"closing, and not "
                         "taking the rest of its download within %g s\"", s->id,
                         session_queued(s), session_owed(s), cfg->slow_timeout);
                uv_close((uv_handle_t *)&s->tcp, on_session_closed);
            } else if (s->linger_until > 0 && now > s->linger_until) {
                uv_close((uv_handle_t *)&s->tcp, on_session_closed);
            }
            continue;
        }
        if (s->state == SESS_HANDSHAKE || s->state == SESS_HELLO) {
            if (now - s->t_accept > cfg->handshake_timeout) {
                if (preauth_log_ok(srv))
                    sfl_warn("handshake_timeout", "addr=%s reason=\"no %s within %g s\"",
                             s->addr, s->state == SESS_HANDSHAKE ? "handshake" : "hello",
                             cfg->handshake_timeout);
                session_close(s, 0);
            }
            continue;
        }
        if (s->over_hwm_since > 0 && now - s->over_hwm_since > cfg->slow_timeout) {
            sfl_warn("slow_reader", "peer=%s queued=%zu owed=%zu reason=\"over the write "
                     "high-water mark for %g s\"", s->id, session_queued(s), session_owed(s),
                     cfg->slow_timeout);
            session_close(s, 0);
            continue;
        }
        if (now - s->last_rx > silent && s->reading) {
            sfl_warn("client_timeout", "peer=%s addr=%s silent_s=%.1f deadline_s=%g "
                     "reason=\"no heartbeat for %u intervals\"", s->id, s->addr,
                     now - s->last_rx, silent, cfg->heartbeat_misses);
            session_send_error(s, SEEDFL__ERROR__CODE__UNKNOWN, srv->round,
                               "no heartbeat received in time; closing");
            session_close(s, 1);
            continue;
        }
        /* behind a download a heartbeat would only wait with the rest */
        if (now - s->last_tx >= cfg->heartbeat_interval && !s->out_head)
            send_heartbeat(s);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    server *srv = h->data;
    sfl_info("signal", "signal=%d action=stop", signum);
    snprintf(srv->err, srv->errlen, "stopped by signal %d", signum);
    server_stop(srv, SFL_ECLOSED);
}

/* ---------- setup ---------- */

/* The files the server writes replace what is at their path, so a slip
 * such as --metrics-out server.key must not destroy a key, an allow-list or
 * a data file: an existing file is replaced only when it is empty or looks
 * like one this server wrote (its first bytes start with prefix, or are all
 * digits and white space when prefix is NULL). */
static int check_replaceable(const char *opt, const char *path, const char *prefix, char *err,
                             size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0; /* absent (or unreadable: opening it for writing will say) */
    char head[64];
    size_t n = fread(head, 1, sizeof head, f);
    fclose(f);
    int ours = n == 0;
    if (!ours && prefix) {
        size_t pl = strlen(prefix);
        ours = n >= pl && !memcmp(head, prefix, pl);
    } else if (!ours) {
        ours = 1;
        for (size_t i = 0; i < n; i++)
            if (!strchr("0123456789 \t\r\n", head[i]))
                ours = 0;
    }
    if (!ours) {
        snprintf(err, errlen, "%s %s: the file exists and is not one seedfl-server wrote; "
                 "refusing to replace it", opt, path);
        return SFL_EINVAL;
    }
    return 0;
}

#define METRICS_HEADER "round,mode,clients,test_accuracy,test_loss,bytes_up,bytes_down,seconds\n"

static int write_port_file(const char *path, int port, char *err, size_t errlen)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        snprintf(err, errlen, "--port-file %s: %s", path, strerror(errno));
        return SFL_EIO;
    }
    fprintf(f, "%d\n", port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errlen, "--port-file %s: %s", path, strerror(errno));
        unlink(tmp);
        return SFL_EIO;
    }
    return 0;
}

/* Bind and listen; a host name is resolved (the first address that binds
 * wins). The port actually bound goes to *port. */
static int listen_on(server *srv, int *port, char *err, size_t errlen)
{
    const sfl_server_config *cfg = srv->cfg;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char service[16];
    snprintf(service, sizeof service, "%d", cfg->listen_port);
    int grc = getaddrinfo(cfg->listen_host, service, &hints, &res);
    if (grc != 0) {
        snprintf(err, errlen, "--listen %s: %s", cfg->listen_host, gai_strerror(grc));
        return SFL_EIO;
    }
    int rc = UV_EADDRNOTAVAIL;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if ((rc = uv_tcp_bind(&srv->listener, ai->ai_addr, 0)) == 0 &&
            (rc = uv_listen((uv_stream_t *)&srv->listener, 1024, on_connection)) == 0)
            break;
    }
    freeaddrinfo(res);
    if (rc < 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->listen_host, cfg->listen_port,
                 uv_strerror(rc));
        return SFL_EIO;
    }
    struct sockaddr_storage ss;
    int len = sizeof ss;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len);
    *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                          : ((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

/* Only once everything else worked: a failed start leaves an old file alone. */
static int open_metrics(server *srv, char *err, size_t errlen)
{
    const char *path = srv->cfg->metrics_path;
    if (!path[0])
        return 0;
    srv->metrics = fopen(path, "w");
    if (!srv->metrics) {
        snprintf(err, errlen, "--metrics-out %s: %s", path, strerror(errno));
        return SFL_EIO;
    }
    fputs(METRICS_HEADER, srv->metrics);
    fflush(srv->metrics);
    return 0;
}

/* Bind, then the files, then say so: nothing announces a server that is
 * about to fail. */
static int start_serving(server *srv, char *err, size_t errlen)
{
    const sfl_server_config *cfg = srv->cfg;
    int port = 0, rc;
    if ((cfg->metrics_path[0] &&
         (rc = check_replaceable("--metrics-out", cfg->metrics_path, "round,mode,", err,
                                 errlen)) < 0) ||
        (cfg->port_file[0] &&
         (rc = check_replaceable("--port-file", cfg->port_file, NULL, err, errlen)) < 0))
        return rc;
    if ((rc = listen_on(srv, &port, err, errlen)) < 0)
        return rc;
    if (cfg->port_file[0] && (rc = write_port_file(cfg->port_file, port, err, errlen)) < 0)
        return rc;
    if ((rc = open_metrics(srv, err, errlen)) < 0) {
        if (cfg->port_file[0])
            unlink(cfg->port_file);
        return rc;
    }
    int v6 = strchr(cfg->listen_host, ':') != NULL;
    printf("seedfl-server listening on %s%s%s:%d\n", v6 ? "[" : "", cfg->listen_host,
           v6 ? "]" : "", port);
    fflush(stdout);
    sfl_info("listening", "addr=%s%s%s:%d", v6 ? "[" : "", cfg->listen_host, v6 ? "]" : "", port);
    return 0;
}

static int load_all(server *srv, char *err, size_t errlen)
{
    const sfl_server_config *cfg = srv->cfg;
    int rc;
    srv->s_key = sodium_malloc(sizeof *srv->s_key);
    if (!srv->s_key)
        return SFL_ENOMEM;
    if ((rc = sfl_keys_load_secret(cfg->key_path, srv->s_key->priv, err, errlen)) < 0)
        return rc;
    if ((rc = sfl_keypair_set(srv->s_key, srv->s_key->priv)) < 0) {
        snprintf(err, errlen, "%s: not a usable X25519 secret key", cfg->key_path);
        return rc;
    }
    if (!cfg->open_enrolment) {
        if (!cfg->allow_path[0]) {
            snprintf(err, errlen, "no --allow list given (use --open-enrolment to admit any key)");
            return SFL_EINVAL;
        }
        if ((rc = sfl_allowlist_load(cfg->allow_path, &srv->allow, err, errlen)) < 0)
            return rc;
        if (srv->allow.n == 0) {
            snprintf(err, errlen, "--allow %s: no keys, so every client would be refused (add "
                     "client public keys, one per line)", cfg->allow_path);
            return SFL_EINVAL;
        }
    }
    if (cfg->quorum >= 1 && cfg->quorum > cfg->min_clients)
        sfl_warn("quorum_high", "quorum=%.0f min_clients=%u reason=\"a round opened with fewer "
                 "clients than the quorum cannot succeed\"", cfg->quorum, cfg->min_clients);
    /* every key that may ever connect, or a generous bound with open enrolment */
    if (sfl_hosts_init(&srv->hosts, cfg->max_unauth) < 0)
        return SFL_ENOMEM;
    if (sfl_ident_init(&srv->ident, cfg->open_enrolment ? (size_t)1 << 20 : srv->allow.n) < 0)
        return SFL_ENOMEM;
    if ((rc = sfl_model_create(&srv->model, cfg->model_spec, err, errlen)) < 0)
        return rc;
    sfl_model_init(&srv->model, cfg->seed);
    srv->write_hwm = cfg->write_hwm ? (size_t)cfg->write_hwm
                                    : 2 * srv->model.nparams * sizeof(float) + ((size_t)1 << 20);
    srv->window = srv->write_hwm < STREAM_WINDOW ? srv->write_hwm : STREAM_WINDOW;
    sfl_params_digest(srv->model.params, srv->model.nparams, srv->digest);
    size_t n = 0;
    if ((rc = sfl_data_count(cfg->data_dir, "t10k", &n, err, errlen)) < 0)
        return rc;
    uint32_t *idx = NULL;
    size_t cnt = n;
    if (cfg->eval_limit && cfg->eval_limit < n) {
        cnt = cfg->eval_limit;
        idx = malloc(cnt * sizeof *idx);
        if (!idx)
            return SFL_ENOMEM;
        for (size_t i = 0; i < cnt; i++)
            idx[i] = (uint32_t)i;
    }
    rc = sfl_data_load(cfg->data_dir, "t10k", idx, idx ? cnt : 0, &srv->test, err, errlen);
    free(idx);
    if (rc < 0)
        return rc;
    if (srv->test.dim != (size_t)srv->model.sizes[0]) {
        snprintf(err, errlen, "model %s takes %d inputs but the data has %zu", cfg->model_spec,
                 srv->model.sizes[0], srv->test.dim);
        return SFL_EINVAL;
    }
    int classes = srv->model.sizes[srv->model.nlayers];
    if (classes != srv->test.classes) {
        snprintf(err, errlen, "model %s has %d outputs but the data has %d classes (the last "
                 "layer needs exactly one output per class)", cfg->model_spec, classes,
                 srv->test.classes);
        return SFL_EINVAL;
    }
    srv->acc = malloc(srv->model.nparams * sizeof *srv->acc);
    srv->readbuf = malloc(READ_BUF_SIZE);
    if (!srv->acc || !srv->readbuf)
        return SFL_ENOMEM;
    if (!strcmp(cfg->mode, "zo")) {
        srv->zo = 1;
        sfl_zo_layout(&srv->model, &srv->zlay);
        sfl_z_root(cfg->seed, srv->zo_root);
        srv->zo_scale = cfg->zo_scale;
        if (cfg->zo_variant == SFL_ZO_POOL) {
            srv->zo_sums = malloc(cfg->pool_size * sizeof *srv->zo_sums);
            srv->zo_seeds = malloc(cfg->pool_size * sizeof *srv->zo_seeds);
            srv->zo_vals = malloc(cfg->pool_size * sizeof *srv->zo_vals);
            if (!srv->zo_sums || !srv->zo_seeds || !srv->zo_vals)
                return SFL_ENOMEM;
        }
    }
    return 0;
}

int sfl_server_run(const sfl_server_config *cfg, char *err, size_t errlen)
{
    server srv_storage;
    server *srv = &srv_storage;
    memset(srv, 0, sizeof *srv);
    srv->cfg = cfg;
    srv->err = err;
    srv->errlen = errlen;
    srv->round = 1;
    srv->state = ROUND_WAITING;
    err[0] = 0;
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        snprintf(err, errlen, "uv_loop_init: %s", uv_strerror(rc));
        return SFL_EIO;
    }
    srv->loop = &loop;
    uv_timer_init(&loop, &srv->wait_timer);
    uv_timer_init(&loop, &srv->deadline_timer);
    uv_timer_init(&loop, &srv->sweep_timer);
    uv_timer_init(&loop, &srv->stop_timer);
    srv->stop_timer.data = srv;
    srv->wait_timer.data = srv->deadline_timer.data = srv->sweep_timer.data = srv;
    uv_signal_init(&loop, &srv->sigterm);
    uv_signal_init(&loop, &srv->sigint);
    srv->sigterm.data = srv->sigint.data = srv;
    uv_tcp_init(&loop, &srv->listener);
    srv->listener.data = srv;
    uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
    uv_signal_start(&srv->sigint, on_signal, SIGINT);

    rc = load_all(srv, err, errlen);
    if (rc == 0)
        rc = start_serving(srv, err, errlen);
    if (rc < 0) {
        if (!err[0])
            snprintf(err, errlen, "%s", sfl_strerror(rc));
        server_stop(srv, rc);
    } else {
        sfl_info("server_started",
                 "mode=%s model=%s params=%zu rounds=%u min_clients=%u seed=%" PRIu64, cfg->mode,
                 cfg->model_spec, srv->model.nparams, cfg->rounds, cfg->min_clients, cfg->seed);
        double tick = cfg->heartbeat_interval < cfg->handshake_timeout ? cfg->heartbeat_interval
                                                                       : cfg->handshake_timeout;
        uint64_t ms = (uint64_t)(tick * 250);
        uv_timer_start(&srv->sweep_timer, on_sweep, ms ? ms : 1, ms ? ms : 1);
        round_maybe_start(srv);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    close_if_active((uv_handle_t *)&srv->stop_timer);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) != 0)
        sfl_warn("loop_close", "reason=\"handles still open\"");

    if (srv->metrics)
        fclose(srv->metrics);
    free(srv->acc);
    free(srv->readbuf);
    subs_reset(srv);
    snap_unhold(srv);
    free(srv->zo_w);
    free(srv->zo_sums);
    free(srv->zo_seeds);
    free(srv->zo_vals);
    sfl_dataset_free(&srv->test);
    sfl_model_free(&srv->model);
    sfl_allowlist_free(&srv->allow);
    sfl_ident_free(&srv->ident);
    sfl_hosts_free(&srv->hosts);
    if (srv->s_key)
        sodium_free(srv->s_key);
    return srv->exit_code;
}
