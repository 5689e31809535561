#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"
#include "util.h"

#define IN_BUF 65536

int sfl_conn_init(sfl_conn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    sfl_chan_init(&c->chan);
    pthread_mutex_init(&c->send_lock, NULL);
    c->in = malloc(IN_BUF);
    return c->in ? 0 : SFL_ENOMEM;
}

void sfl_conn_close(sfl_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    sfl_chan_free(&c->chan);
    free(c->in);
    c->in = NULL;
    pthread_mutex_destroy(&c->send_lock);
}

int sfl_conn_connect(sfl_conn *c, const char *host, int port)
{
    struct addrinfo hints, *res = NULL;
    char p[16];
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(p, sizeof p, "%d", port);
    int rc = getaddrinfo(host, p, &hints, &res);
    if (rc != 0) {
        snprintf(c->err, sizeof c->err, "%s: %s", host, gai_strerror(rc));
        return SFL_EINVAL;
    }
    int last = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            c->fd = fd;
            freeaddrinfo(res);
            return 0;
        }
        last = errno;
        close(fd);
    }
    freeaddrinfo(res);
    snprintf(c->err, sizeof c->err, "cannot connect to %s:%d: %s", host, port, strerror(last));
    return SFL_EIO;
}

static int conn_write(sfl_conn *c, const uint8_t *p, size_t n, int report)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (report)
                snprintf(c->err, sizeof c->err,
                         "connection to the server lost while sending: %s", strerror(errno));
            return SFL_ECLOSED;
        }
        p += w;
        n -= (size_t)w;
    }
    c->last_send = sfl_now();
    return 0;
}

int sfl_conn_send_raw(sfl_conn *c, const uint8_t *p, size_t n)
{
    pthread_mutex_lock(&c->send_lock);
    int rc = conn_write(c, p, n, 1);
    pthread_mutex_unlock(&c->send_lock);
    return rc;
}

static int conn_send(sfl_conn *c, const Seedfl__Envelope *env, int report)
{
    uint8_t *buf;
    size_t len;
    pthread_mutex_lock(&c->send_lock);
    int rc = sfl_chan_seal(&c->chan, env, &buf, &len);
    if (rc < 0) {
        if (report)
            snprintf(c->err, sizeof c->err, "cannot encode message: %s", sfl_strerror(rc));
    } else {
        rc = conn_write(c, buf, len, report);
        free(buf);
    }
    pthread_mutex_unlock(&c->send_lock);
    return rc;
}

int sfl_conn_send(sfl_conn *c, const Seedfl__Envelope *env)
{
    return conn_send(c, env, 1);
}

int sfl_conn_send_quiet(sfl_conn *c, const Seedfl__Envelope *env)
{
    return conn_send(c, env, 0);
}

double sfl_conn_idle(sfl_conn *c)
{
    pthread_mutex_lock(&c->send_lock);
    double t = c->last_send;
    pthread_mutex_unlock(&c->send_lock);
    return sfl_now() - t;
}

int sfl_conn_recv_frame(sfl_conn *c, uint8_t **frame, size_t *len)
{
    for (;;) {
        while (c->in_off < c->in_len) {
            size_t used = 0;
            const uint8_t *f;
            size_t fl;
            int rc = sfl_frame_feed(&c->chan.rd, c->in + c->in_off, c->in_len - c->in_off, &used,
                                    &f, &fl);
            c->in_off += used;
            if (rc < 0) {
                snprintf(c->err, sizeof c->err, "bad frame from the server: %s",
                         sfl_strerror(rc));
                return rc;
            }
            if (rc == 1) {
                *frame = (uint8_t *)f;
                *len = fl;
                return 0;
            }
        }
        if (c->recv_timeout_ms > 0) {
            struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
            int pr = poll(&pfd, 1, c->recv_timeout_ms);
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                snprintf(c->err, sizeof c->err, "nothing from the server for %.1f s",
                         c->recv_timeout_ms / 1000.0);
                return SFL_ETIMEOUT;
            }
        }
        ssize_t r = recv(c->fd, c->in, IN_BUF, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf(c->err, sizeof c->err, "the server closed the connection%s%s",
                     r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
            return SFL_ECLOSED;
        }
        c->in_off = 0;
        c->in_len = (size_t)r;
    }
}

int sfl_conn_recv(sfl_conn *c, Seedfl__Envelope **env)
{
    uint8_t *f;
    size_t len;
    int rc = sfl_conn_recv_frame(c, &f, &len);
    if (rc < 0)
        return rc;
    rc = sfl_chan_open(&c->chan, f, len, env);
    if (rc < 0)
        snprintf(c->err, sizeof c->err, "undecodable message from the server: %s",
                 sfl_strerror(rc));
    return rc;
}

int sfl_conn_handshake(sfl_conn *c, const sfl_keypair *s, const uint8_t server_pub[32])
{
    uint8_t out[SFL_FRAME_HDR + SFL_HS1_LEN];
    size_t n = 0;
    int rc = sfl_chan_client_start(&c->chan, s, server_pub, NULL, out, &n);
    if (rc < 0) {
        snprintf(c->err, sizeof c->err, "handshake: %s", sfl_strerror(rc));
        return rc;
    }
    /* a server that is busy may have said so and closed before message 1
     * went out: read what it sent even when the send failed */
    int src = sfl_conn_send_raw(c, out, n);
    uint8_t *f;
    size_t len;
    rc = sfl_conn_recv_frame(c, &f, &len);
    if (rc == SFL_EFORMAT && sfl_frame_is_busy(&c->chan.rd)) {
        snprintf(c->err, sizeof c->err,
                 "the server is busy (too many connections waiting for their handshake)");
        return SFL_EBUSY;
    }
    if (src < 0 || rc == SFL_ECLOSED) {
        snprintf(c->err, sizeof c->err,
                 "the server refused or dropped the connection during the handshake (is the "
                 "pinned server key right, is this client's key on its allow-list, and is its "
                 "clock not behind the last time it connected?)");
        return SFL_ECLOSED;
    }
    if (rc < 0)
        return rc;
    rc = sfl_chan_client_finish(&c->chan, f, len);
    if (rc < 0) {
        snprintf(c->err, sizeof c->err,
                 "the server's handshake reply did not authenticate (wrong pinned server key?)");
        return SFL_EREFUSED;
    }
    return 0;
}
