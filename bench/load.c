/* seedfl-load: many authenticated sessions against one seedfl-server from
 * one process (a libuv loop over non-blocking sockets), each under its own
 * X25519 key, to measure how fast the server completes Noise IK handshakes
 * and what a held session costs it.
 *
 *   seedfl-load keys --count N --out DIR
 *       DIR/secrets: N secret keys, one base64 key per line (mode 0600)
 *       DIR/allow:   their public keys, the server's --allow format
 *   seedfl-load run --server ADDR:PORT --server-key FILE --keys DIR [options]
 *
 * A session does what a client does up to the Welcome (handshake, Hello)
 * and, with --ready only, sends Ready: a ready session is put in round
 * cohorts and never answers its tasks, so by default sessions stay
 * authenticated but not ready, which is what real clients training at the
 * same time need. Before connecting, the tool measures libsodium's X25519 on
 * one core, the bound a handshake rate is compared with. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "chan.h"
#include "err.h"
#include "keys.h"
#include "util.h"

#define READ_BUF_SIZE (64 * 1024)
#define MAX_REASONS 32
#define REASON_LEN 120
#define SECRETS_MAX 1000000     /* keys one secrets file may hold */
#define X25519_REPS 5
#define X25519_ITERS 1000
#define FD_SPARE 32             /* descriptors the process needs besides its sessions */

static const char usage_text[] =
    "usage: seedfl-load keys --count N --out DIR\n"
    "       seedfl-load run --server ADDR:PORT --server-key FILE --keys DIR [options]\n"
    "\n"
    "Opens many authenticated sessions to one seedfl-server from one process and\n"
    "reports the server's handshake rate next to this machine's X25519 speed.\n"
    "\n"
    "keys: writes N secret keys to DIR/secrets (one base64 key per line, mode 0600)\n"
    "      and their public keys to DIR/allow (the server's --allow format); DIR is\n"
    "      created when missing, existing files are never overwritten.\n"
    "\n"
    "run options:\n"
    "  --server ADDR:PORT   server address (numeric or a name)\n"
    "  --server-key FILE    the server's public key (pinned), e.g. server.key.pub\n"
    "  --keys DIR           folder written by 'seedfl-load keys' (reads DIR/secrets)\n"
    "  --count N            sessions to open (default: one per key in DIR/secrets)\n"
    "  --rate R             connections started per second (default 0 = as fast as\n"
    "                       the concurrency allows)\n"
    "  --concurrency C      handshakes in flight at once (default 256; keep it below\n"
    "                       the server's --max-unauth, 1024 by default)\n"
    "  --hold SEC           keep the sessions open this long after the last one is\n"
    "                       established (default 10; SIGINT or SIGTERM ends it early)\n"
    "  --heartbeat SEC      send a Heartbeat on a session silent for SEC seconds\n"
    "                       (default: the interval in the server's Welcome; 0 = idle,\n"
    "                       which the server ends after its heartbeat misses)\n"
    "  --timeout SEC        a session not welcomed this long after its connect\n"
    "                       started counts as failed (default 30)\n"
    "  --ready              send Ready after the Welcome: the sessions count as ready\n"
    "                       clients, get round tasks and never answer them\n"
    "  --no-ready           stop after the Welcome (the default): authenticated, not ready\n"
    "  --name NAME          client name sent in the Hello (default load)\n"
    "  --prepare            make every session's handshake message 1 before the\n"
    "                       first connect (the default), so that the timed phase\n"
    "                       measures the server more than this tool\n"
    "  --no-prepare         make it when the connection is up\n"
    "  --help               this text\n"
    "\n"
    "Exit status: 0 when every session was established and held, 1 otherwise (the\n"
    "report is printed either way), 2 for a wrong option.\n";

/* ---------- failure reasons ---------- */

typedef struct {
    char text[REASON_LEN];
    uint64_t n;
} reason;

typedef struct {
    reason r[MAX_REASONS];
    size_t n;
    uint64_t other; /* past MAX_REASONS distinct texts */
} reason_table;

static void reason_count(reason_table *t, const char *text)
{
    for (size_t i = 0; i < t->n; i++) {
        if (!strcmp(t->r[i].text, text)) {
            t->r[i].n++;
            return;
        }
    }
    if (t->n == MAX_REASONS) {
        t->other++;
        return;
    }
    snprintf(t->r[t->n].text, sizeof t->r[t->n].text, "%s", text);
    t->r[t->n++].n = 1;
}

static void reason_print(const reason_table *t, const char *indent)
{
    for (size_t i = 0; i < t->n; i++)
        printf("%s%-8" PRIu64 " %s\n", indent, t->r[i].n, t->r[i].text);
    if (t->other)
        printf("%s%-8" PRIu64 " (other reasons)\n", indent, t->other);
}

/* ---------- sessions ---------- */

enum ls_state {
    LS_NEW,        /* not started */
    LS_CONNECTING, /* TCP connect under way */
    LS_HANDSHAKE,  /* message 1 sent, waiting for message 2 */
    LS_HELLO,      /* authenticated, Hello sent, waiting for the Welcome */
    LS_OPEN,       /* welcomed (and Ready sent with --ready): established */
    LS_FAILED,     /* never established */
    LS_DROPPED,    /* established, then ended by the server or the network */
};

enum phase { PH_CONNECT, PH_HOLD, PH_DONE };

struct load;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t creq;
    struct load *ld;
    sfl_chan chan;
    enum ls_state state;
    int handle_live;  /* tcp initialised and its close callback not yet run */
    int closing;
    int inflight;     /* counted in ld->inflight */
    size_t idx;
    double t_start, t_hs, last_tx;
    uint8_t *msg1;    /* with --prepare: message 1, made before connecting */
} lsess;

typedef struct {
    uv_write_t req;
    uint8_t *data;
} wreq;

typedef struct load {
    uv_loop_t *loop;
    uv_timer_t pace, sweep, hold;
    uv_signal_t sigint, sigterm;
    struct sockaddr_storage addr;
    char target[300];
    uint8_t server_pub[32];
    sfl_keypair *keys;  /* sodium_malloc'd, n of them */
    lsess *s;
    size_t n;
    uint8_t *readbuf;
    /* options */
    double rate, hold_s, hb_opt, timeout;
    int hb_auto, ready, prepare;
    uint32_t conc;
    const char *name;
    /* progress */
    enum phase phase;
    size_t launched, inflight, hs_done, established, failed, dropped, open_now;
    double t0, t_connected, t_hold_end, t_progress;
    double cpu0;        /* this process's CPU seconds when connecting began */
    double hb_server;   /* interval from the first Welcome */
    uint64_t hb_sent, msgs_in, tasks_in;
    int interrupted;
    reason_table fails, drops;
    /* X25519 on one core, measured before connecting */
    double dh_rate, base_rate;
} load;

static void ls_end(lsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void phase_check(load *ld);
static void pump(load *ld);

static void on_close(uv_handle_t *h)
{
    lsess *s = h->data;
    sfl_chan_free(&s->chan);
    s->handle_live = 0;
}

/* The session is over (failed before its Welcome, or dropped after it):
 * count why, close the socket. The slot itself lives until the end. */
static void ls_end(lsess *s, const char *fmt, ...)
{
    load *ld = s->ld;
    char why[REASON_LEN];
    va_list ap;
    if (s->closing)
        return;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    s->closing = 1;
    if (s->inflight) {
        s->inflight = 0;
        ld->inflight--;
    }
    if (s->state == LS_OPEN) {
        s->state = LS_DROPPED;
        ld->dropped++;
        ld->open_now--;
        reason_count(&ld->drops, why);
    } else {
        s->state = LS_FAILED;
        ld->failed++;
        reason_count(&ld->fails, why);
    }
    if (s->handle_live && !uv_is_closing((uv_handle_t *)&s->tcp))
        uv_close((uv_handle_t *)&s->tcp, on_close);
    phase_check(ld);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    lsess *s = req->handle->data;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED && !s->closing)
        ls_end(s, "write failed: %s", uv_err_name(status));
}

/* Queue data (malloc'd; owned from here on). 0 or a libuv error code. */
static int ls_write(lsess *s, uint8_t *data, size_t len)
{
    wreq *w = malloc(sizeof *w);
    if (!w) {
        free(data);
        return UV_ENOMEM;
    }
    w->data = data;
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (rc < 0) {
        free(data);
        free(w);
        return rc;
    }
    s->last_tx = sfl_now();
    return 0;
}

/* 0 or a libuv error code, like ls_write. */
static int ls_send(lsess *s, const Seedfl__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    int rc = sfl_chan_seal(&s->chan, env, &buf, &len);
    if (rc < 0)
        return rc == SFL_ENOMEM ? UV_ENOMEM : UV_EPROTO;
    return ls_write(s, buf, len);
}

static int send_hello(lsess *s)
{
    Seedfl__Hello h = SEEDFL__HELLO__INIT;
    h.protocol_version = SFL_PROTOCOL_VERSION;
    h.client_name = (char *)s->ld->name;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    return ls_send(s, &env);
}

static int send_ready(lsess *s)
{
    Seedfl__Ready r = SEEDFL__READY__INIT;
    r.num_samples = 1;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_READY;
    env.ready = &r;
    return ls_send(s, &env);
}

static int send_heartbeat(lsess *s)
{
    Seedfl__Heartbeat hb = SEEDFL__HEARTBEAT__INIT;
    hb.time_ms = (uint64_t)(sfl_now() * 1000);
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HEARTBEAT;
    env.heartbeat = &hb;
    return ls_send(s, &env);
}

static const char *error_code_name(int code)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&seedfl__error__code__descriptor, code);
    return v ? v->name : "?";
}

static void on_welcome(lsess *s, const Seedfl__Welcome *w)
{
    load *ld = s->ld;
    if (s->state != LS_HELLO) {
        ls_end(s, "unexpected second Welcome");
        return;
    }
    if (ld->hb_server == 0 && w->heartbeat_ms)
        ld->hb_server = w->heartbeat_ms / 1000.0;
    if (ld->ready) {
        int rc = send_ready(s);
        if (rc < 0) {
            ls_end(s, "cannot send Ready: %s", uv_err_name(rc));
            return;
        }
    }
    s->state = LS_OPEN;
    ld->established++;
    ld->open_now++;
    phase_check(ld);
}

static void handle_frame(lsess *s, uint8_t *frame, size_t len)
{
    load *ld = s->ld;
    int rc;
    if (s->state == LS_HANDSHAKE) {
        if (sfl_chan_client_finish(&s->chan, frame, len) < 0) {
            ls_end(s, "handshake reply did not authenticate (wrong pinned server key?)");
            return;
        }
        s->t_hs = sfl_now();
        ld->hs_done++;
        s->inflight = 0;
        ld->inflight--;
        s->state = LS_HELLO;
        if ((rc = send_hello(s)) < 0) {
            ls_end(s, "cannot send Hello: %s", uv_err_name(rc));
            return;
        }
        pump(ld);
        return;
    }
    Seedfl__Envelope *env = NULL;
    if ((rc = sfl_chan_open(&s->chan, frame, len, &env)) < 0) {
        ls_end(s, "undecodable message from the server: %s", sfl_strerror(rc));
        return;
    }
    ld->msgs_in++;
    switch (env->msg_case) {
    case SEEDFL__ENVELOPE__MSG_WELCOME:
        on_welcome(s, env->welcome);
        break;
    case SEEDFL__ENVELOPE__MSG_ERROR:
        ls_end(s, "server sent Error %s: %.60s", error_code_name(env->error->code),
               env->error->message ? env->error->message : "");
        break;
    case SEEDFL__ENVELOPE__MSG_TASK:
        ld->tasks_in++;
        break;
    default:
        /* heartbeats, model chunks, results: nothing to answer */
        break;
    }
    seedfl__envelope__free_unpacked(env, NULL);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    lsess *s = h->data;
    (void)suggested;
    /* one buffer for every session: each read is consumed before the next */
    *buf = uv_buf_init((char *)s->ld->readbuf, READ_BUF_SIZE);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    lsess *s = stream->data;
    if (s->closing || nread == 0)
        return;
    if (nread < 0) {
        const char *err = nread == UV_EOF ? "closed by the server" : uv_err_name((int)nread);
        if (s->state == LS_HANDSHAKE)
            ls_end(s, "refused: %s during the handshake (key not on the allow-list, "
                   "wrong server key, or the server's limits)", err);
        else if (s->state == LS_HELLO)
            ls_end(s, "%s after the handshake, before the Welcome", err);
        else
            ls_end(s, "%s", err);
        return;
    }
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
            if (s->state == LS_HANDSHAKE && sfl_frame_is_busy(&s->chan.rd))
                ls_end(s, "server busy (at its --max-unauth or --max-unauth-per-host): lower "
                       "--concurrency or raise those");
            else
                ls_end(s, "bad frame from the server: %s", sfl_strerror(rc));
            return;
        }
        if (rc == 0)
            break;
        handle_frame(s, (uint8_t *)frame, flen);
    }
    if (!s->closing)
        sfl_frame_reader_trim(&s->chan.rd);
}

static void on_connect(uv_connect_t *req, int status)
{
    lsess *s = req->handle->data;
    load *ld = s->ld;
    if (s->closing)
        return;
    if (status < 0) {
        ls_end(s, "connect: %s", uv_err_name(status));
        return;
    }
    uv_tcp_nodelay(&s->tcp, 1);
    size_t n = SFL_FRAME_HDR + SFL_HS1_LEN;
    uint8_t *msg = s->msg1;
    int rc = 0;
    s->msg1 = NULL;
    if (!msg) {
        if (!(msg = malloc(n))) {
            ls_end(s, "out of memory");
            return;
        }
        rc = sfl_chan_client_start(&s->chan, &ld->keys[s->idx], ld->server_pub, NULL, msg, &n);
    }
    if (rc < 0) {
        free(msg);
        ls_end(s, "handshake: %s", sfl_strerror(rc));
        return;
    }
    s->state = LS_HANDSHAKE;
    if ((rc = ls_write(s, msg, n)) < 0) {
        ls_end(s, "cannot send handshake message 1: %s", uv_err_name(rc));
        return;
    }
    if ((rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read)) < 0)
        ls_end(s, "read: %s", uv_err_name(rc));
}

static void launch(load *ld, lsess *s)
{
    s->ld = ld;
    s->t_start = sfl_now();
    s->state = LS_CONNECTING;
    s->inflight = 1;
    ld->inflight++;
    if (!s->msg1)
        sfl_chan_init(&s->chan);
    int rc = uv_tcp_init(ld->loop, &s->tcp);
    if (rc < 0) {
        ls_end(s, "tcp init: %s", uv_err_name(rc));
        sfl_chan_free(&s->chan);
        return;
    }
    s->tcp.data = s;
    s->handle_live = 1;
    rc = uv_tcp_connect(&s->creq, &s->tcp, (const struct sockaddr *)&ld->addr, on_connect);
    if (rc < 0)
        ls_end(s, "connect: %s", uv_err_name(rc)); /* EMFILE lands here */
}

/* Start as many connections as the rate and the concurrency allow. A
 * session failing inside launch never calls back into here. */
static void pump(load *ld)
{
    while (ld->phase == PH_CONNECT && ld->launched < ld->n && ld->inflight < ld->conc) {
        if (ld->rate > 0 && (double)ld->launched >= ld->rate * (sfl_now() - ld->t0) + 1)
            break;
        lsess *s = &ld->s[ld->launched];
        s->idx = ld->launched++;
        launch(ld, s);
    }
    if (ld->launched == ld->n && uv_is_active((uv_handle_t *)&ld->pace))
        uv_timer_stop(&ld->pace);
}

static void on_pace(uv_timer_t *t)
{
    pump(t->data);
}

/* ---------- report ---------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double self_rss_kib(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double v = -1;
    size_t fl = strlen(field);
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, fl) && line[fl] == ':')
            v = strtod(line + fl + 1, NULL);
    fclose(f);
    return v;
}

static double cpu_seconds(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static void report_connect(load *ld)
{
    const double now = sfl_now();
    double first = 0, last = 0;
    size_t nlat = 0;
    double *lat = malloc((ld->hs_done ? ld->hs_done : 1) * sizeof *lat);
    for (size_t i = 0; i < ld->launched; i++) {
        const lsess *s = &ld->s[i];
        if (s->t_hs <= 0)
            continue;
        if (lat)
            lat[nlat++] = s->t_hs - s->t_start;
        if (s->t_hs > last)
            last = s->t_hs;
    }
    first = ld->t0;
    if (last < first)
        last = first; /* no handshake completed */
    printf("\n== connect phase%s\n", ld->interrupted ? " (interrupted)" : "");
    printf("sessions established: %zu of %zu%s\n", ld->established, ld->n,
           ld->ready ? " (welcomed, Ready sent)" : " (welcomed, not ready)");
    printf("handshakes completed: %zu\n", ld->hs_done);
    printf("failures: %zu\n", ld->failed);
    reason_print(&ld->fails, "  ");
    double cpu = cpu_seconds() - ld->cpu0;
    printf("connect phase: %.2f s (first connect to last Welcome or failure); seedfl-load used "
           "%.2f s of CPU in it (%.0f%% of one core)\n", now - ld->t0, cpu,
           now > ld->t0 ? 100 * cpu / (now - ld->t0) : 0);
    double span = last - first;
    double rate = span > 0 ? (double)ld->hs_done / span : 0;
    printf("handshake rate: %.0f /s (completed handshakes from the first connect to the last "
           "completed handshake, %.2f s)\n",
           rate, span);
    size_t nb = span >= 1 ? (size_t)span : 0; /* whole seconds only */
    if (nb > 0) {
        double *b = calloc(nb, sizeof *b);
        if (b) {
            for (size_t i = 0; i < ld->launched; i++) {
                double t = ld->s[i].t_hs - first;
                if (ld->s[i].t_hs > 0 && t >= 0 && (size_t)t < nb)
                    b[(size_t)t] += 1;
            }
            double lo = b[0], hi = b[0];
            for (size_t i = 1; i < nb; i++) {
                lo = b[i] < lo ? b[i] : lo;
                hi = b[i] > hi ? b[i] : hi;
            }
            printf("handshake rate, median of per-second buckets: %.0f /s (%zu whole seconds, "
                   "min %.0f, max %.0f)\n", median(b, nb), nb, lo, hi);
            free(b);
        }
    } else {
        printf("handshake rate, median of per-second buckets: n/a (under one whole second)\n");
    }
    if (nlat > 0) {
        double med = median(lat, nlat); /* sorts */
        printf("handshake latency (connect start to message 2): median %.1f ms, p99 %.1f ms, "
               "max %.1f ms\n", med * 1e3, lat[(size_t)(0.99 * (double)(nlat - 1))] * 1e3,
               lat[nlat - 1] * 1e3);
    }
    free(lat);

    /* this tool's X25519 per handshake in the timed phase: ee and se, plus
     * its ephemeral key, es and ss when message 1 was not prepared */
    const int mine = ld->prepare ? 2 : 5;
    const double bound = ld->dh_rate / 5, bound2 = ld->dh_rate / (5 + mine);
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("bound: the IK responder does 4 DH + 1 key generation = 5 X25519 per handshake: "
           "%.0f ops/s / 5 = %.0f handshakes/s on one core\n", ld->dh_rate, bound);
    printf("achieved / bound: %.0f / %.0f = %.2f (goal >= 0.60)\n", rate, bound,
           bound > 0 ? rate / bound : 0);
    printf("caveat: this tool shares the machine's %ld cores with the server and does %d X25519 "
           "per handshake in this phase%s\n", cores, mine,
           ld->prepare ? " (ee, se; message 1 was prepared)" : " (4 DH + its ephemeral key)");
    printf("bound if both shared one core: %.0f ops/s / (5 + %d) = %.0f handshakes/s; "
           "achieved / that: %.2f\n", ld->dh_rate, mine, bound2, bound2 > 0 ? rate / bound2 : 0);
    fflush(stdout);
}

static void report_hold(load *ld)
{
    double held = (ld->t_hold_end > 0 ? ld->t_hold_end : sfl_now()) - ld->t_connected;
    double hb = ld->hb_auto ? ld->hb_server : ld->hb_opt;
    printf("\n== hold%s\n", ld->interrupted ? " (ended by a signal)" : "");
    printf("held: %.1f s, %s\n", held,
           hb > 0 ? "heartbeats on" : "idle (no heartbeats)");
    if (hb > 0)
        printf("heartbeat interval: %g s%s; heartbeats sent (whole run): %" PRIu64 "\n", hb,
               ld->hb_auto ? " (the server's)" : "", ld->hb_sent);
    printf("messages from the server after the handshakes (whole run): %" PRIu64 " (tasks ignored: %" PRIu64
           ")\n", ld->msgs_in, ld->tasks_in);
    printf("sessions open at the end: %zu of %zu established\n", ld->open_now, ld->established);
    printf("dropped after the Welcome: %zu\n", ld->dropped);
    reason_print(&ld->drops, "  ");
    printf("seedfl-load peak RSS: %.0f KiB for %zu sessions\n", self_rss_kib("VmHWM"),
           ld->launched);
    fflush(stdout);
}

/* ---------- phases ---------- */

static void finish(load *ld)
{
    if (ld->phase == PH_DONE)
        return;
    if (ld->phase == PH_CONNECT)
        report_connect(ld);
    ld->phase = PH_DONE;
    ld->t_hold_end = sfl_now();
    report_hold(ld);
    uv_timer_stop(&ld->pace);
    uv_timer_stop(&ld->sweep);
    uv_timer_stop(&ld->hold);
    uv_close((uv_handle_t *)&ld->pace, NULL);
    uv_close((uv_handle_t *)&ld->sweep, NULL);
    uv_close((uv_handle_t *)&ld->hold, NULL);
    uv_close((uv_handle_t *)&ld->sigint, NULL);
    uv_close((uv_handle_t *)&ld->sigterm, NULL);
    for (size_t i = 0; i < ld->launched; i++) {
        lsess *s = &ld->s[i];
        s->closing = 1;
        if (s->handle_live && !uv_is_closing((uv_handle_t *)&s->tcp))
            uv_close((uv_handle_t *)&s->tcp, on_close);
    }
}

static void on_hold_end(uv_timer_t *t)
{
    finish(t->data);
}

/* Every session is established or failed: report, then hold. */
static void phase_check(load *ld)
{
    if (ld->phase != PH_CONNECT || ld->established + ld->failed < ld->n)
        return;
    ld->phase = PH_HOLD;
    ld->t_connected = sfl_now();
    report_connect(ld);
    printf("\nholding %zu sessions for %g s\n", ld->open_now, ld->hold_s);
    fflush(stdout);
    uv_timer_start(&ld->hold, on_hold_end, (uint64_t)(ld->hold_s * 1000), 0);
}

/* Ten times a second: time out slow sessions, keep the others audible, and
 * once a second a progress line on stderr while connecting. */
static void on_sweep(uv_timer_t *t)
{
    load *ld = t->data;
    const double now = sfl_now();
    const double hb = ld->hb_auto ? ld->hb_server : ld->hb_opt;
    for (size_t i = 0; i < ld->launched; i++) {
        lsess *s = &ld->s[i];
        if (s->closing)
            continue;
        if (s->state < LS_OPEN && now - s->t_start > ld->timeout) {
            ls_end(s, "timeout: no %s within %g s of the connect",
                   s->state == LS_CONNECTING  ? "connection"
                   : s->state == LS_HANDSHAKE ? "handshake reply"
                                              : "Welcome",
                   ld->timeout);
        } else if (s->state == LS_OPEN && hb > 0 && now - s->last_tx >= hb) {
            int rc = send_heartbeat(s);
            if (rc < 0)
                ls_end(s, "cannot send a heartbeat: %s", uv_err_name(rc));
            else
                ld->hb_sent++;
        }
    }
    if (ld->phase == PH_CONNECT && now - ld->t_progress >= 1) {
        ld->t_progress = now;
        fprintf(stderr, "seedfl-load: %.0f s: started %zu, handshakes %zu, established %zu, "
                "failed %zu, in flight %zu\n", now - ld->t0, ld->launched, ld->hs_done,
                ld->established, ld->failed, ld->inflight);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    load *ld = h->data;
    (void)signum;
    ld->interrupted = 1;
    finish(ld);
}

/* ---------- setup ---------- */

/* libsodium's X25519 on this core: the median of X25519_REPS runs of
 * X25519_ITERS operations, each fed from the last so none is elided. */
static double x25519_rate(int base)
{
    uint8_t sk[32], pk[32], out[32];
    double r[X25519_REPS];
    int zero = 0; /* all-zero results: never for these keys, counted so none is ignored */
    randombytes_buf(sk, sizeof sk);
    crypto_scalarmult_base(pk, sk);
    for (int k = 0; k < X25519_REPS; k++) {
        double t = sfl_now();
        for (int i = 0; i < X25519_ITERS; i++) {
            if (base)
                zero += crypto_scalarmult_base(out, sk) != 0;
            else
                zero += crypto_scalarmult(out, sk, pk) != 0;
            sk[i % 32] ^= out[0];
        }
        r[k] = X25519_ITERS / (sfl_now() - t);
    }
    sodium_memzero(sk, sizeof sk);
    if (zero)
        fprintf(stderr, "seedfl-load: %d X25519 results were zero\n", zero);
    return median(r, X25519_REPS);
}

/* Each session is a descriptor: take what the hard limit allows. */
static void raise_nofile(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        printf("open files: limit unknown (%s)\n", strerror(errno));
        return;
    }
    rlim_t was = rl.rlim_cur;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            printf("open files: cannot raise the limit from %llu: %s\n", (unsigned long long)was,
                   strerror(errno));
            getrlimit(RLIMIT_NOFILE, &rl);
        } else {
            printf("open files: limit raised from %llu to %llu (the hard limit)\n",
                   (unsigned long long)was, (unsigned long long)rl.rlim_cur);
        }
    } else {
        printf("open files: limit %llu (already the hard limit)\n", (unsigned long long)was);
    }
    if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)(want + FD_SPARE) > rl.rlim_cur)
        printf("warning: %zu sessions need about %zu descriptors but the limit is %llu: the "
               "sessions past it fail with EMFILE\n", want, want + FD_SPARE,
               (unsigned long long)rl.rlim_cur);
}

/* DIR/secrets: one base64 secret key per line, private to its owner. */
static int load_secrets(const char *dir, sfl_keypair **out, size_t *n, char *err, size_t errlen)
{
    char path[4096], line[256];
    snprintf(path, sizeof path, "%s/secrets", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return sfl_fail(err, errlen, SFL_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return sfl_fail(err, errlen, SFL_EIO, "%s: not a regular file", path);
    }
    if (st.st_mode & 077) {
        fclose(f);
        return sfl_fail(err, errlen, SFL_EPERM, "%s: readable or writable by others (chmod 600)",
                        path);
    }
    size_t cap = (size_t)st.st_size / 45 + 1;
    if (cap > SECRETS_MAX)
        cap = SECRETS_MAX;
    sfl_keypair *keys = sodium_malloc(cap * sizeof *keys);
    if (!keys) {
        fclose(f);
        return sfl_fail(err, errlen, SFL_ENOMEM, "%s: cannot allocate locked memory for %zu keys",
                        path, cap);
    }
    size_t k = 0;
    unsigned long lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
            len--;
        if (len == 0)
            continue;
        if (k == cap) {
            rc = sfl_fail(err, errlen, SFL_ETOOBIG, "%s:%lu: more keys than expected", path,
                          lineno);
            break;
        }
        if (sfl_keys_decode(line, len, keys[k].priv) != 0 ||
            sfl_keypair_set(&keys[k], keys[k].priv) != 0) {
            rc = sfl_fail(err, errlen, SFL_EFORMAT, "%s:%lu: not a base64 X25519 key", path,
                          lineno);
            break;
        }
        k++;
    }
    sodium_memzero(line, sizeof line);
    fclose(f);
    if (rc == 0 && k == 0)
        rc = sfl_fail(err, errlen, SFL_EFORMAT, "%s: no keys", path);
    if (rc < 0) {
        sodium_free(keys);
        return rc;
    }
    *out = keys;
    *n = k;
    return 0;
}

static int resolve(const char *hostport, struct sockaddr_storage *ss, char *err, size_t errlen)
{
    char host[256], p[16];
    int port;
    if (sfl_parse_hostport(hostport, host, sizeof host, &port) < 0 || port == 0)
        return sfl_fail(err, errlen, SFL_EINVAL, "--server: '%s' is not HOST:PORT", hostport);
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(p, sizeof p, "%d", port);
    int rc = getaddrinfo(host, p, &hints, &res);
    if (rc != 0)
        return sfl_fail(err, errlen, SFL_EINVAL, "--server %s: %s", hostport, gai_strerror(rc));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int bad_opt(const char *name, const char *val, const char *what)
{
    fprintf(stderr, "seedfl-load: --%s: '%s' is not %s\n", name, val, what);
    return 2;
}

/* The next option with full-name checks: 1 with opts[*idx] to act on, 0
 * when the options are over, -1 after --help (printed), -2 after a wrong
 * option (said). */
static int next_opt(int argc, char **argv, const struct option *opts, int *idx)
{
    int c = sfl_getopt_next(argc, argv, opts, idx, "seedfl-load");
    if (c == -1 || c == -2)
        return c == -1 ? 0 : -2;
    if (c == 'h') {
        fputs(usage_text, stdout);
        return -1;
    }
    return 1;
}

/* Message 1 of every session, before the first connect: the timed phase
 * then costs this process only the 2 DH of message 2, and the handshake
 * rate measures the server rather than this tool (which shares its cores).
 * The server's own work per handshake is the same either way. */
static int prepare_all(load *ld)
{
    double t = sfl_now();
    for (size_t i = 0; i < ld->n; i++) {
        lsess *s = &ld->s[i];
        size_t n = 0;
        sfl_chan_init(&s->chan);
        s->msg1 = malloc(SFL_FRAME_HDR + SFL_HS1_LEN);
        int rc = s->msg1 ? sfl_chan_client_start(&s->chan, &ld->keys[i], ld->server_pub, NULL,
                                                 s->msg1, &n)
                         : SFL_ENOMEM;
        if (rc < 0) {
            fprintf(stderr, "seedfl-load: preparing message 1: %s\n", sfl_strerror(rc));
            free(s->msg1);
            s->msg1 = NULL;
            sfl_chan_free(&s->chan);
            return rc;
        }
    }
    double el = sfl_now() - t;
    printf("prepared %zu first handshake messages before connecting: %.2f s, %.0f us each "
           "(--no-prepare: at connect time)\n", ld->n, el, ld->n ? 1e6 * el / (double)ld->n : 0);
    fflush(stdout);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, 0, 0}, {"server-key", required_argument, 0, 0},
        {"keys", required_argument, 0, 0},   {"count", required_argument, 0, 0},
        {"rate", required_argument, 0, 0},   {"concurrency", required_argument, 0, 0},
        {"hold", required_argument, 0, 0},   {"heartbeat", required_argument, 0, 0},
        {"timeout", required_argument, 0, 0}, {"ready", no_argument, 0, 0},
        {"no-ready", no_argument, 0, 0},     {"name", required_argument, 0, 0},
        {"prepare", no_argument, 0, 0},      {"no-prepare", no_argument, 0, 0},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *server = NULL, *server_key = NULL, *keys_dir = NULL;
    uint64_t count = 0;
    char err[512] = "";
    load ld_storage, *ld = &ld_storage;
    memset(ld, 0, sizeof *ld);
    ld->conc = 256;
    ld->hold_s = 10;
    ld->timeout = 30;
    ld->hb_auto = 1;
    ld->prepare = 1;
    ld->name = "load";
    int idx, st;
    opterr = 0;
    while ((st = next_opt(argc, argv, opts, &idx)) == 1) {
        const char *name = opts[idx].name;
        if (!strcmp(name, "server")) {
            char host[256];
            int port;
            if (sfl_parse_hostport(optarg, host, sizeof host, &port) < 0 || port == 0)
                return bad_opt(name, optarg, "HOST:PORT with a port from 1 to 65535");
            server = optarg;
        }
        else if (!strcmp(name, "server-key"))
            server_key = optarg;
        else if (!strcmp(name, "keys"))
            keys_dir = optarg;
        else if (!strcmp(name, "count")) {
            if (sfl_parse_u64(optarg, 1, SECRETS_MAX, &count) < 0)
                return bad_opt(name, optarg, "a count in 1..1000000");
        } else if (!strcmp(name, "rate")) {
            if (sfl_parse_double(optarg, 0, 1e7, &ld->rate) < 0)
                return bad_opt(name, optarg, "a rate >= 0");
        } else if (!strcmp(name, "concurrency")) {
            if (sfl_parse_u32(optarg, 1, 1000000, &ld->conc) < 0)
                return bad_opt(name, optarg, "a count in 1..1000000");
        } else if (!strcmp(name, "hold")) {
            if (sfl_parse_double(optarg, 0, 1e6, &ld->hold_s) < 0)
                return bad_opt(name, optarg, "seconds >= 0");
        } else if (!strcmp(name, "heartbeat")) {
            if (sfl_parse_double(optarg, 0, 1e6, &ld->hb_opt) < 0)
                return bad_opt(name, optarg, "seconds >= 0");
            ld->hb_auto = 0;
        } else if (!strcmp(name, "timeout")) {
            if (sfl_parse_double(optarg, 0.01, 1e6, &ld->timeout) < 0)
                return bad_opt(name, optarg, "seconds > 0");
        } else if (!strcmp(name, "ready")) {
            ld->ready = 1;
        } else if (!strcmp(name, "no-ready")) {
            ld->ready = 0;
        } else if (!strcmp(name, "prepare")) {
            ld->prepare = 1;
        } else if (!strcmp(name, "no-prepare")) {
            ld->prepare = 0;
        } else if (!strcmp(name, "name")) {
            if (strlen(optarg) > 64)
                return bad_opt(name, optarg, "a name of at most 64 bytes");
            ld->name = optarg;
        }
    }
    if (st < 0)
        return st == -1 ? 0 : 2;
    if (optind < argc) {
        fprintf(stderr, "seedfl-load: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!server || !server_key || !keys_dir) {
        fprintf(stderr, "seedfl-load run: --server, --server-key and --keys are required\n");
        return 2;
    }

    int rc = 1;
    uv_loop_t loop;
    int loop_ok = 0;
    if (resolve(server, &ld->addr, err, sizeof err) < 0 ||
        sfl_keys_load_public(server_key, ld->server_pub, err, sizeof err) < 0 ||
        load_secrets(keys_dir, &ld->keys, &ld->n, err, sizeof err) < 0) {
        fprintf(stderr, "seedfl-load: %s\n", err);
        goto out;
    }
    if (count > ld->n) {
        fprintf(stderr, "seedfl-load: --count %" PRIu64 ": %s/secrets holds only %zu keys\n",
                count, keys_dir, ld->n);
        rc = 2;
        goto out;
    }
    if (count)
        ld->n = (size_t)count;
    snprintf(ld->target, sizeof ld->target, "%s", server);

    printf("seedfl-load: %zu sessions to %s, %s, concurrency %u, rate %s", ld->n, ld->target,
           ld->ready ? "ready (Hello, Ready)" : "not ready (Hello only)", ld->conc,
           ld->rate > 0 ? "" : "unlimited");
    if (ld->rate > 0)
        printf("%.0f/s", ld->rate);
    printf(", hold %g s\n", ld->hold_s);
    raise_nofile(ld->n);
    ld->dh_rate = x25519_rate(0);
    ld->base_rate = x25519_rate(1);
    printf("x25519 on one core (libsodium, median of %d x %d): crypto_scalarmult %.0f ops/s, "
           "crypto_scalarmult_base %.0f ops/s\n", X25519_REPS, X25519_ITERS, ld->dh_rate,
           ld->base_rate);
    fflush(stdout);

    ld->s = calloc(ld->n, sizeof *ld->s);
    ld->readbuf = malloc(READ_BUF_SIZE);
    if (!ld->s || !ld->readbuf) {
        fprintf(stderr, "seedfl-load: out of memory for %zu sessions\n", ld->n);
        goto out;
    }
    if (ld->prepare && prepare_all(ld) < 0)
        goto out;
    if ((rc = uv_loop_init(&loop)) < 0) {
        fprintf(stderr, "seedfl-load: uv_loop_init: %s\n", uv_strerror(rc));
        rc = 1;
        goto out;
    }
    loop_ok = 1;
    ld->loop = &loop;
    uv_timer_init(&loop, &ld->pace);
    uv_timer_init(&loop, &ld->sweep);
    uv_timer_init(&loop, &ld->hold);
    ld->pace.data = ld->sweep.data = ld->hold.data = ld;
    uv_signal_init(&loop, &ld->sigint);
    uv_signal_init(&loop, &ld->sigterm);
    ld->sigint.data = ld->sigterm.data = ld;
    uv_signal_start(&ld->sigint, on_signal, SIGINT);
    uv_signal_start(&ld->sigterm, on_signal, SIGTERM);

    ld->t0 = sfl_now();
    ld->cpu0 = cpu_seconds();
    uv_timer_start(&ld->pace, on_pace, 1, 1);
    uv_timer_start(&ld->sweep, on_sweep, 100, 100);
    pump(ld);
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = ld->established == ld->n && ld->dropped == 0 && !ld->interrupted ? 0 : 1;
out:
    if (loop_ok && uv_loop_close(&loop) != 0)
        fprintf(stderr, "seedfl-load: handles still open at exit\n");
    /* sessions prepared and never launched */
    for (size_t i = 0; ld->s && i < ld->n; i++) {
        if (ld->s[i].msg1) {
            free(ld->s[i].msg1);
            sfl_chan_free(&ld->s[i].chan);
        }
    }
    free(ld->s);
    free(ld->readbuf);
    if (ld->keys)
        sodium_free(ld->keys);
    return rc;
}

/* Creates path with O_EXCL; never overwrites. */
static FILE *create_excl(const char *path, mode_t mode, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        sfl_fail(err, errlen, SFL_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        sfl_fail(err, errlen, SFL_EIO, "%s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
    }
    return f;
}

static int cmd_keys(int argc, char **argv)
{
    static const struct option opts[] = {
        {"count", required_argument, 0, 0}, {"out", required_argument, 0, 0},
        {"help", no_argument, 0, 'h'},      {0, 0, 0, 0}};
    uint64_t count = 0;
    const char *dir = NULL;
    char err[4200] = "";
    int idx, st;
    opterr = 0;
    while ((st = next_opt(argc, argv, opts, &idx)) == 1) {
        if (!strcmp(opts[idx].name, "count")) {
            if (sfl_parse_u64(optarg, 1, SECRETS_MAX, &count) < 0)
                return bad_opt("count", optarg, "a count in 1..1000000");
        } else {
            dir = optarg;
        }
    }
    if (st < 0)
        return st == -1 ? 0 : 2;
    if (optind < argc || !count || !dir) {
        fprintf(stderr, "usage: seedfl-load keys --count N --out DIR\n");
        return 2;
    }
    char sec_path[4096], allow_path[4096];
    snprintf(sec_path, sizeof sec_path, "%s/secrets", dir);
    snprintf(allow_path, sizeof allow_path, "%s/allow", dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "seedfl-load: %s: %s\n", dir, strerror(errno));
        return 1;
    }
    FILE *sec = create_excl(sec_path, 0600, err, sizeof err);
    FILE *allow = sec ? create_excl(allow_path, 0644, err, sizeof err) : NULL;
    int rc = sec && allow ? 0 : 1;
    uint8_t priv[32], pub[32];
    char b64[45];
    for (uint64_t i = 0; rc == 0 && i < count; i++) {
        randombytes_buf(priv, sizeof priv);
        if (crypto_scalarmult_base(pub, priv) != 0)
            continue; /* never for a random scalar; draw again */
        sfl_keys_encode(priv, b64);
        fprintf(sec, "%s\n", b64);
        sfl_keys_encode(pub, b64);
        fprintf(allow, "%s\n", b64);
    }
    sodium_memzero(priv, sizeof priv);
    sodium_memzero(b64, sizeof b64);
    if (sec && fclose(sec) != 0 && rc == 0) {
        sfl_fail(err, sizeof err, SFL_EIO, "%s: %s", sec_path, strerror(errno));
        rc = 1;
    }
    if (allow && fclose(allow) != 0 && rc == 0) {
        sfl_fail(err, sizeof err, SFL_EIO, "%s: %s", allow_path, strerror(errno));
        rc = 1;
    }
    if (rc != 0) {
        fprintf(stderr, "seedfl-load: %s\n", err);
        /* leave nothing half-written behind (only what this call created) */
        if (sec)
            unlink(sec_path);
        if (allow)
            unlink(allow_path);
        return 1;
    }
    printf("%" PRIu64 " keys: %s (secret, 0600), %s (allow-list)\n", count, sec_path, allow_path);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-load: libsodium failed to initialise\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    if (!strcmp(argv[1], "keys"))
        return cmd_keys(argc - 1, argv + 1);
    if (!strcmp(argv[1], "run"))
        return cmd_run(argc - 1, argv + 1);
    fprintf(stderr, "seedfl-load: unknown command '%s' (keys or run)\n", argv[1]);
    return 2;
}
