/* A misbehaving peer for integration tests, built on seedfl's own channel
 * code: it speaks the real protocol over a real socket, then breaks it in
 * one chosen way. Exit 0 means the server reacted as expected. */
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "conn.h"
#include "err.h"
#include "keys.h"
#include "util.h"

static sfl_conn conn;
static sfl_keypair s_key;
static uint8_t server_pub[32];
static uint32_t zo_steps, zo_pool; /* from the last zo task */
static int zo_pool_variant;

static int die(const char *what)
{
    fprintf(stderr, "testpeer: %s: %s\n", what, conn.err);
    return 1;
}

static int hello(uint32_t version)
{
    Seedfl__Hello h = SEEDFL__HELLO__INIT;
    h.protocol_version = version;
    h.client_name = "testpeer";
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
    env.hello = &h;
    return sfl_conn_send(&conn, &env);
}

/* Wait for the Welcome, then say Ready (as a client does once its data is
 * loaded). */
static int join(void)
{
    Seedfl__Envelope *e = NULL;
    if (sfl_conn_recv(&conn, &e) < 0)
        return die("waiting for the welcome");
    int ok = e->msg_case == SEEDFL__ENVELOPE__MSG_WELCOME;
    seedfl__envelope__free_unpacked(e, NULL);
    if (!ok)
        return die("expected a welcome");
    Seedfl__Ready r = SEEDFL__READY__INIT;
    r.num_samples = 10;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_READY;
    env.ready = &r;
    return sfl_conn_send(&conn, &env) < 0 ? die("send ready") : 0;
}

/* Wait up to ms for the server to close the connection (after at most a
 * few frames, such as an error). Returns 0 when it closed. */
static int expect_close(int ms, Seedfl__Error__Code *code)
{
    for (int frames = 0; frames < 64; frames++) {
        struct pollfd p = {.fd = conn.fd, .events = POLLIN};
        if (conn.in_off >= conn.in_len && poll(&p, 1, ms) <= 0) {
            fprintf(stderr, "testpeer: server kept the connection open\n");
            return 1;
        }
        Seedfl__Envelope *e = NULL;
        int rc = sfl_conn_recv(&conn, &e);
        if (rc == SFL_ECLOSED) {
            printf("testpeer: server closed the connection\n");
            return 0;
        }
        if (rc < 0)
            return die("receive");
        if (e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR) {
            printf("testpeer: server error %d: %s\n", e->error->code, e->error->message);
            if (code)
                *code = e->error->code;
        }
        seedfl__envelope__free_unpacked(e, NULL);
    }
    return 1;
}

/* Receive until a task arrives and report its round and attempt. */
static int wait_task(uint32_t *round, uint32_t *attempt, uint64_t *nparams)
{
    for (;;) {
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&conn, &e) < 0)
            return die("waiting for a task");
        if (e->msg_case == SEEDFL__ENVELOPE__MSG_MODEL_CHUNK)
            *nparams = e->model_chunk->total;
        int done = e->msg_case == SEEDFL__ENVELOPE__MSG_TASK;
        if (done) {
            *round = e->task->round;
            *attempt = e->task->attempt;
            if (e->task->zo) {
                zo_steps = e->task->zo->steps;
                zo_pool = e->task->zo->pool_size;
                zo_pool_variant = e->task->zo->variant && !strcmp(e->task->zo->variant, "pool");
            }
        }
        seedfl__envelope__free_unpacked(e, NULL);
        if (done)
            return 0;
    }
}

/* Send chunks [0, upto) of an all-zero update for (round, attempt). */
static int send_zero_update(uint32_t round, uint32_t attempt, uint64_t n, uint64_t upto_floats)
{
    static uint8_t zero[SFL_CHUNK_BYTES];
    const uint64_t per = SFL_CHUNK_BYTES / 4;
    Seedfl__Update u = SEEDFL__UPDATE__INIT;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_UPDATE;
    env.update = &u;
    for (uint64_t off = 0; off < upto_floats; off += per) {
        uint64_t end = off + per < upto_floats ? off + per : upto_floats;
        uint64_t cnt = end - off;
        u.round = round;
        u.attempt = attempt;
        u.num_samples = 10;
        u.offset = off;
        u.total = n;
        u.data.data = zero;
        u.data.len = cnt * 4;
        if (sfl_conn_send(&conn, &env) < 0)
            return die("send update");
    }
    return 0;
}

/* A zo upload of `steps` entries whose entry `bad_at` carries (k, q);
 * the others are (0, 1). */
static int send_zo_update(uint32_t round, uint32_t attempt, uint32_t steps, uint32_t bad_at,
                          uint32_t k, int q)
{
    size_t per = zo_pool_variant ? 3 : 1;
    uint8_t *buf = calloc(steps ? steps : 1, per);
    if (!buf)
        return die("out of memory");
    for (uint32_t i = 0; i < steps; i++) {
        uint8_t *e = buf + i * per;
        uint32_t kk = i == bad_at ? k : 0;
        int qq = i == bad_at ? q : 1;
        if (per == 3) {
            e[0] = (uint8_t)(kk & 0xff);
            e[1] = (uint8_t)(kk >> 8);
        }
        e[per - 1] = (uint8_t)(int8_t)qq;
    }
    Seedfl__ZoUpdate u = SEEDFL__ZO_UPDATE__INIT;
    u.round = round;
    u.attempt = attempt;
    u.num_samples = 10;
    u.steps.data = buf;
    u.steps.len = steps * per;
    Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
    env.msg_case = SEEDFL__ENVELOPE__MSG_ZO_UPDATE;
    env.zo_update = &u;
    int rc = sfl_conn_send(&conn, &env);
    free(buf);
    return rc < 0 ? die("send zo update") : 0;
}

/* Read until the server's INVALID_UPDATE answer; print its reason. */
static int expect_invalid(void)
{
    for (;;) {
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&conn, &e) < 0)
            return die("waiting for the refusal");
        int err = e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR;
        int ok = err && e->error->code == SEEDFL__ERROR__CODE__INVALID_UPDATE;
        if (err)
            printf("testpeer: update answered with %s: %s\n", ok ? "INVALID_UPDATE" : "an error",
                   e->error->message ? e->error->message : "");
        seedfl__envelope__free_unpacked(e, NULL);
        if (err)
            return ok ? 0 : 1;
    }
}

static char peer_host[256];
static int peer_port;

static double now_s(void)
{
    return sfl_now();
}

/* n extra connections: the odd ones send random bytes now and then, the
 * even ones nothing. Held until the server has closed them all or limit_s
 * passed; prints how many it closed and how fast. */
/* The flood's sockets come from SFL_PEER_SRC (an IPv4 address such as
 * 127.0.0.2) when it is set, so that a test can tell hosts apart on
 * loopback. */
static int open_socket(const struct sockaddr_in *sa)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    const char *src = getenv("SFL_PEER_SRC");
    if (fd >= 0 && src && *src) {
        struct sockaddr_in from;
        memset(&from, 0, sizeof from);
        from.sin_family = AF_INET;
        if (inet_pton(AF_INET, src, &from.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&from, sizeof from) < 0) {
            close(fd);
            return -1;
        }
    }
    if (fd < 0 || connect(fd, (const struct sockaddr *)sa, sizeof *sa) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static volatile sig_atomic_t flood_stop;
static void on_flood_stop(int sig)
{
    (void)sig;
    flood_stop = 1;
}

/* n sockets that never handshake, every other one sending junk unless
 * quiet. With keep, a socket the server closes is opened again until
 * limit_s has passed or SIGTERM comes, so that n are held all along;
 * otherwise the run ends once the server has closed them all (or at
 * limit_s). */
static int flood(int n, double limit_s, int keep, int quiet)
{
    signal(SIGTERM, on_flood_stop);
    int *fd = calloc((size_t)n, sizeof *fd);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (!fd || !p)
        return die("out of memory");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)peer_port);
    inet_pton(AF_INET, peer_host, &sa.sin_addr);
    int opened = 0;
    for (int i = 0; i < n; i++) {
        fd[i] = open_socket(&sa);
        opened += fd[i] >= 0;
    }
    double t0 = now_s(), last = t0;
    int closed = 0, held_min = opened;
    while ((keep || closed < opened) && now_s() - t0 < limit_s && !flood_stop) {
        if (keep) {
            int held = 0;
            for (int i = 0; i < n; i++) {
                if (fd[i] < 0) {
                    fd[i] = open_socket(&sa);
                    opened += fd[i] >= 0;
                }
                held += fd[i] >= 0;
            }
            held_min = held < held_min ? held : held_min;
        }
        for (int i = 0; i < n; i++) {
            p[i].fd = fd[i];
            p[i].events = POLLIN;
            p[i].revents = 0;
        }
        poll(p, (nfds_t)n, 100);
        for (int i = 0; i < n; i++) {
            if (fd[i] < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char b[256];
            ssize_t r = read(fd[i], b, sizeof b);
            if (r <= 0) {
                close(fd[i]);
                fd[i] = -1;
                closed++;
                last = now_s();
            }
        }
        for (int i = 1; i < n && !quiet; i += 2) {
            if (fd[i] < 0)
                continue;
            uint8_t junk[64];
            randombytes_buf(junk, sizeof junk);
            /* half announce a frame of message 1's size, which fails to
             * decrypt once complete; half one over the pre-auth cap */
            junk[0] = 0;
            junk[1] = 0;
            junk[2] = 0;
            junk[3] = (i / 2) % 2 ? SFL_HS1_LEN : 200;
            if (send(fd[i], junk, 8, MSG_NOSIGNAL) < 0) {
                close(fd[i]);
                fd[i] = -1;
                closed++;
                last = now_s();
            }
        }
    }
    for (int i = 0; i < n; i++)
        if (fd[i] >= 0)
            close(fd[i]);
    printf("testpeer: flood opened %d, server closed %d, the last after %.1f s\n", opened, closed,
           last - t0);
    if (keep)
        printf("testpeer: flood held at least %d of %d at once for %.1f s\n", held_min, n,
               now_s() - t0);
    free(fd);
    free(p);
    return 0;
}

/* Handshake properly, then send the very same first message on a second
 * connection: the server must refuse it (its timestamp is not newer). */
static int replay_first_message(void)
{
    uint8_t msg1[SFL_FRAME_HDR + SFL_HS1_LEN];
    size_t n = 0;
    if (sfl_chan_client_start(&conn.chan, &s_key, server_pub, NULL, msg1, &n) < 0 ||
        sfl_conn_send_raw(&conn, msg1, n) < 0)
        return die("first handshake message");
    uint8_t *f;
    size_t flen;
    if (sfl_conn_recv_frame(&conn, &f, &flen) < 0 || sfl_chan_client_finish(&conn.chan, f, flen) < 0)
        return die("the genuine handshake failed");
    printf("testpeer: genuine handshake done\n");
    sfl_conn second;
    if (sfl_conn_init(&second) < 0 || sfl_conn_connect(&second, peer_host, peer_port) < 0)
        return die("second connection");
    sfl_conn_send_raw(&second, msg1, n);
    second.recv_timeout_ms = 5000;
    int rc = sfl_conn_recv_frame(&second, &f, &flen);
    sfl_conn_close(&second);
    if (rc == SFL_ECLOSED) {
        printf("testpeer: replayed first message refused\n");
        return 0;
    }
    fprintf(stderr, "testpeer: replayed first message got %s\n",
            rc == 0 ? "an answer" : sfl_strerror(rc));
    return 1;
}

static int scenario(const char *name)
{
    if (!strcmp(name, "idle")) {
        double t0 = now_s();
        int rc = expect_close(20000, NULL);
        printf("testpeer: idle connection closed after %.1f s\n", now_s() - t0);
        return rc;
    }
    if (!strcmp(name, "replay-hs1"))
        return replay_first_message();
    if (!strcmp(name, "oversize-preauth")) {
        uint8_t hdr[4];
        sfl_frame_put_header(hdr, 1u << 20);
        sfl_conn_send_raw(&conn, hdr, 4);
        return expect_close(5000, NULL);
    }
    if (!strcmp(name, "garbage-preauth")) {
        uint8_t junk[4 + SFL_HS1_LEN];
        randombytes_buf(junk, sizeof junk);
        sfl_frame_put_header(junk, SFL_HS1_LEN);
        sfl_conn_send_raw(&conn, junk, sizeof junk);
        return expect_close(5000, NULL);
    }
    if (!strcmp(name, "half-handshake")) {
        uint8_t hdr[4 + 20];
        memset(hdr, 0x41, sizeof hdr);
        sfl_frame_put_header(hdr, SFL_HS1_LEN);
        sfl_conn_send_raw(&conn, hdr, sizeof hdr);
        printf("testpeer: sent part of message 1, leaving\n");
        return 0;
    }
    if (sfl_conn_handshake(&conn, &s_key, server_pub) < 0) {
        printf("testpeer: %s\n", conn.err);
        return !strcmp(name, "expect-refused") ? 0 : 1;
    }
    if (!strcmp(name, "expect-refused")) {
        fprintf(stderr, "testpeer: handshake unexpectedly succeeded\n");
        return 1;
    }
    if (!strcmp(name, "oversize")) {
        uint8_t hdr[4];
        sfl_frame_put_header(hdr, SFL_NOISE_MAX + 1);
        sfl_conn_send_raw(&conn, hdr, 4);
        return expect_close(5000, NULL);
    }
    if (!strcmp(name, "junk-envelope")) {
        /* well encrypted, but not a protobuf envelope */
        uint8_t buf[4 + 40 + SFL_TAG_LEN];
        memset(buf + 4, 0xff, 40);
        if (sfl_cipher_encrypt(&conn.chan.keys->tx, NULL, 0, buf + 4, 40, buf + 4) < 0)
            return 1;
        sfl_frame_put_header(buf, 40 + SFL_TAG_LEN);
        sfl_conn_send_raw(&conn, buf, sizeof buf);
        Seedfl__Error__Code code = 0;
        int rc = expect_close(5000, &code);
        return rc || code != SEEDFL__ERROR__CODE__MALFORMED;
    }
    if (!strcmp(name, "bad-version")) {
        Seedfl__Error__Code code = 0;
        hello(99);
        int rc = expect_close(5000, &code);
        return rc || code != SEEDFL__ERROR__CODE__BAD_VERSION;
    }
    if (!strcmp(name, "flip") || !strcmp(name, "replay")) {
        Seedfl__Hello h = SEEDFL__HELLO__INIT;
        h.protocol_version = SFL_PROTOCOL_VERSION;
        Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
        env.msg_case = SEEDFL__ENVELOPE__MSG_HELLO;
        env.hello = &h;
        uint8_t *buf;
        size_t len;
        if (sfl_chan_seal(&conn.chan, &env, &buf, &len) < 0)
            return 1;
        if (!strcmp(name, "flip")) {
            buf[len - 20] ^= 0x01;
            sfl_conn_send_raw(&conn, buf, len);
        } else {
            sfl_conn_send_raw(&conn, buf, len);
            sfl_conn_send_raw(&conn, buf, len);
        }
        free(buf);
        Seedfl__Error__Code code = 0;
        int rc = expect_close(5000, &code);
        return rc || code != SEEDFL__ERROR__CODE__MALFORMED;
    }
    if (hello(SFL_PROTOCOL_VERSION) < 0)
        return die("hello");
    if (!strcmp(name, "joining")) {
        /* welcomed, never ready (a client still loading its data): when
         * training ends the server must say so, not just close */
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&conn, &e) < 0 || e->msg_case != SEEDFL__ENVELOPE__MSG_WELCOME)
            return die("expected a welcome");
        seedfl__envelope__free_unpacked(e, NULL);
        Seedfl__Error__Code code = SEEDFL__ERROR__CODE__UNKNOWN;
        int rc = expect_close(60000, &code);
        return rc || code != SEEDFL__ERROR__CODE__TRAINING_OVER;
    }
    if (join() < 0)
        return 1;
    uint32_t round = 0, attempt = 0;
    uint64_t n = 0;
    if (!strcmp(name, "silent"))
        return expect_close(600000, NULL);
    if (!strcmp(name, "silent-ready")) {
        /* ready, then no heartbeat at all: the server must drop us */
        double t0 = now_s();
        for (;;) {
            Seedfl__Envelope *e = NULL;
            int rc = sfl_conn_recv(&conn, &e);
            if (rc == SFL_ECLOSED) {
                printf("testpeer: dropped after %.1f s of silence\n", now_s() - t0);
                return 0;
            }
            if (rc < 0)
                return die("receive");
            seedfl__envelope__free_unpacked(e, NULL);
            if (now_s() - t0 > 60)
                return die("never dropped");
        }
    }
    if (!strcmp(name, "no-read")) {
        /* ready, then never read a byte: the server's queue to us grows */
        double t0 = now_s();
        while (now_s() - t0 < 60) {
            struct pollfd pfd = {.fd = conn.fd, .events = 0};
            poll(&pfd, 1, 200);
            if (pfd.revents & (POLLHUP | POLLERR)) {
                printf("testpeer: closed while not reading, after %.1f s\n", now_s() - t0);
                return 0;
            }
            Seedfl__Heartbeat hb = SEEDFL__HEARTBEAT__INIT;
            Seedfl__Envelope env = SEEDFL__ENVELOPE__INIT;
            env.msg_case = SEEDFL__ENVELOPE__MSG_HEARTBEAT;
            env.heartbeat = &hb;
            if (sfl_conn_send_quiet(&conn, &env) < 0) {
                printf("testpeer: closed while not reading, after %.1f s\n", now_s() - t0);
                return 0;
            }
        }
        return die("never closed");
    }
    if (wait_task(&round, &attempt, &n) < 0 || n == 0)
        return 1;
    if (!strcmp(name, "partial-upload")) {
        /* half an update, then vanish as a killed process would */
        send_zero_update(round, attempt, n, n / 2);
        printf("testpeer: sent half of round %u's update, exiting\n", round);
        fflush(stdout);
        _exit(0);
    }
    if (!strcmp(name, "bad-update")) {
        /* an update of the wrong length is refused; the session stays */
        send_zero_update(round, attempt, n + 1, 1);
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&conn, &e) < 0)
            return die("waiting for the refusal");
        int ok = e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR &&
                 e->error->code == SEEDFL__ERROR__CODE__INVALID_UPDATE;
        printf("testpeer: bad update answered with %s\n", ok ? "INVALID_UPDATE" : "something else");
        seedfl__envelope__free_unpacked(e, NULL);
        return ok ? expect_close(60000, NULL) : 1;
    }
    if (!strncmp(name, "zo-", 3)) {
        /* zo uploads that break a rule: refused, and the session stays */
        if (!zo_steps)
            return die("no zo task");
        int rc;
        if (!strcmp(name, "zo-short"))
            rc = send_zo_update(round, attempt, zo_steps - 1, UINT32_MAX, 0, 0);
        else if (!strcmp(name, "zo-seed"))
            rc = send_zo_update(round, attempt, zo_steps, zo_steps / 2, zo_pool, 1);
        else if (!strcmp(name, "zo-m128"))
            rc = send_zo_update(round, attempt, zo_steps, 1, 0, -128);
        else
            return die("unknown zo scenario");
        if (rc < 0 || expect_invalid() != 0)
            return 1;
        return expect_close(60000, NULL);
    }
    if (!strcmp(name, "stale")) {
        send_zero_update(round + 7, attempt, n, n);
        Seedfl__Envelope *e = NULL;
        if (sfl_conn_recv(&conn, &e) < 0)
            return die("waiting for the stale reply");
        int ok = e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR &&
                 e->error->code == SEEDFL__ERROR__CODE__STALE_ROUND;
        printf("testpeer: stale update answered with %s\n", ok ? "STALE_ROUND" : "something else");
        seedfl__envelope__free_unpacked(e, NULL);
        if (!ok)
            return 1;
        /* the session stays usable: a proper update is taken */
        if (send_zero_update(round, attempt, n, n) < 0)
            return 1;
        for (;;) {
            if (sfl_conn_recv(&conn, &e) < 0)
                return die("waiting for the result");
            int res = e->msg_case == SEEDFL__ENVELOPE__MSG_RESULT;
            int err = e->msg_case == SEEDFL__ENVELOPE__MSG_ERROR;
            seedfl__envelope__free_unpacked(e, NULL);
            if (res) {
                printf("testpeer: session survived the stale update\n");
                return 0;
            }
            if (err)
                return 1;
        }
    }
    fprintf(stderr, "testpeer: unknown scenario '%s'\n", name);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: testpeer ADDR:PORT SERVER_PUB_FILE KEY_FILE SCENARIO\n");
        return 2;
    }
    char host[256], err[512];
    int port;
    if (sodium_init() < 0 || sfl_parse_hostport(argv[1], host, sizeof host, &port) < 0)
        return 2;
    if (sfl_keys_load_public(argv[2], server_pub, err, sizeof err) < 0 ||
        sfl_keys_load_secret(argv[3], s_key.priv, err, sizeof err) < 0 ||
        sfl_keypair_set(&s_key, s_key.priv) < 0) {
        fprintf(stderr, "testpeer: %s\n", err);
        return 2;
    }
    snprintf(peer_host, sizeof peer_host, "%s", host);
    peer_port = port;
    if (!strncmp(argv[4], "flood:", 6))
        return flood(atoi(argv[4] + 6), 20.0, 0, 0);
    /* flood-keep:N:SECONDS (with junk), hold:N:SECONDS (idle sockets only) */
    int hold = !strncmp(argv[4], "hold:", 5);
    if (hold || !strncmp(argv[4], "flood-keep:", 11)) {
        char *end = NULL;
        long n = strtol(argv[4] + (hold ? 5 : 11), &end, 10);
        double secs = end && *end == ':' ? strtod(end + 1, NULL) : 0;
        if (n <= 0 || secs <= 0)
            return die("flood-keep:N:SECONDS or hold:N:SECONDS");
        return flood((int)n, secs, 1, hold);
    }
    if (sfl_conn_init(&conn) < 0 || sfl_conn_connect(&conn, host, port) < 0)
        return die("connect");
    int rc = scenario(argv[4]);
    sfl_conn_close(&conn);
    sodium_memzero(&s_key, sizeof s_key);
    return rc;
}
