/* A blocking client connection over the secure channel: connect, IK
 * handshake, send and receive envelopes. Used by the client and by tools. */
#ifndef SFL_CONN_H
#define SFL_CONN_H

#include <stddef.h>
#include <stdint.h>

#include <pthread.h>

#include "chan.h"

/* Sends may come from two threads (the client's work and its heartbeat):
 * they are serialised by send_lock, which also guards the transmit
 * cipher's nonce. Receiving stays on one thread. */
typedef struct {
    int fd;
    sfl_chan chan;
    uint8_t *in;          /* received bytes not yet framed */
    size_t in_off, in_len;
    int recv_timeout_ms;  /* 0 = wait forever */
    pthread_mutex_t send_lock;
    double last_send;     /* sfl_now() of the last send (under send_lock) */
    char err[256];        /* why the last call on the receiving thread failed */
} sfl_conn;

int sfl_conn_init(sfl_conn *c);
void sfl_conn_close(sfl_conn *c);
/* Connect to host:port (name or address). */
int sfl_conn_connect(sfl_conn *c, const char *host, int port);
/* Run the IK handshake pinning server_pub. SFL_ECLOSED when the server
 * closes during it: under IK a wrong pinned key, a refused client key and a
 * server that dropped the connection look alike to the client (the caller
 * decides what that means). SFL_EBUSY when the server said it is busy;
 * SFL_EREFUSED when its reply does not authenticate. */
int sfl_conn_handshake(sfl_conn *c, const sfl_keypair *s, const uint8_t server_pub[32]);
int sfl_conn_send_raw(sfl_conn *c, const uint8_t *p, size_t n);
int sfl_conn_send(sfl_conn *c, const Seedfl__Envelope *env);
/* The same from another thread: leaves err alone. */
int sfl_conn_send_quiet(sfl_conn *c, const Seedfl__Envelope *env);
/* Seconds since the last send. */
double sfl_conn_idle(sfl_conn *c);
/* Block until a whole frame arrived (or recv_timeout_ms passed with nothing
 * received: SFL_ETIMEOUT); valid until the next call. */
int sfl_conn_recv_frame(sfl_conn *c, uint8_t **frame, size_t *len);
/* Receive and decrypt one envelope (free with seedfl__envelope__free_unpacked). */
int sfl_conn_recv(sfl_conn *c, Seedfl__Envelope **env);

#endif
