#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "err.h"

#define IN_BUF 65536

int sfl_conn_init(sfl_conn *c)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    sfl_chan_init(&c->chan);
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

int sfl_conn_send_raw(sfl_conn *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            snprintf(c->err, sizeof c->err, "connection to the server lost while sending: %s",
                     strerror(errno));
            return SFL_ECLOSED;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int sfl_conn_send(sfl_conn *c, const Seedfl__Envelope *env)
{
    uint8_t *buf;
    size_t len;
    int rc = sfl_chan_seal(&c->chan, env, &buf, &len);
    if (rc < 0) {
        snprintf(c->err, sizeof c->err, "cannot encode message: %s", sfl_strerror(rc));
        return rc;
    }
    rc = sfl_conn_send_raw(c, buf, len);
    free(buf);
    return rc;
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

int sfl_conn_handshake(sfl_conn *c, const uint8_t s_priv[32], const uint8_t server_pub[32])
{
    uint8_t out[SFL_FRAME_HDR + SFL_HS1_LEN];
    size_t n = 0;
    int rc = sfl_chan_client_start(&c->chan, s_priv, server_pub, NULL, out, &n);
    if (rc < 0) {
        snprintf(c->err, sizeof c->err, "handshake: %s", sfl_strerror(rc));
        return rc;
    }
    if ((rc = sfl_conn_send_raw(c, out, n)) < 0)
        return rc;
    uint8_t *f;
    size_t len;
    rc = sfl_conn_recv_frame(c, &f, &len);
    if (rc == SFL_ECLOSED) {
        snprintf(c->err, sizeof c->err,
                 "the server refused or dropped the connection during the handshake (is the "
                 "pinned server key right, and is this client's key on its allow-list?)");
        return SFL_EREFUSED;
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
