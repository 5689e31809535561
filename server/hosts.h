/* Connections not yet authenticated, counted per source host, so that one
 * host cannot hold every --max-unauth slot and lock out the rest. A host
 * is an IPv4 address or an IPv6 /64 (what one machine can easily use).
 * Fixed size open addressing keyed by SipHash with a random key (so that a
 * peer cannot pick addresses that collide), entries removed when their
 * count drops to zero. Owned by the loop thread. */
#ifndef SFL_HOSTS_H
#define SFL_HOSTS_H

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

typedef struct {
    uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d; IPv6 with the low 64 bits zero */
    uint32_t n;       /* 0 = free slot */
} sfl_host;

typedef struct {
    sfl_host *slots;
    size_t cap;       /* a power of two above twice the most hosts counted at once */
    size_t used;      /* hosts counted now */
    size_t max;       /* the most hosts counted at once */
    uint8_t key[16];
} sfl_hosts;

/* Room for max_hosts hosts counted at once (the --max-unauth cap). */
int sfl_hosts_init(sfl_hosts *t, size_t max_hosts);
void sfl_hosts_free(sfl_hosts *t);
/* The host of a peer address (AF_INET or AF_INET6; anything else is one
 * host of its own, all zero). */
void sfl_hosts_key(const struct sockaddr *sa, uint8_t out[16]);
/* Count one more connection of host and return the host's count, or 0 when
 * the table holds max_hosts hosts already (the caller refuses the
 * connection and does not call sfl_hosts_remove for it). */
uint32_t sfl_hosts_add(sfl_hosts *t, const uint8_t host[16]);
/* One connection of host fewer (it must have been added). */
void sfl_hosts_remove(sfl_hosts *t, const uint8_t host[16]);
/* The host's current count (0 when absent). */
uint32_t sfl_hosts_count(const sfl_hosts *t, const uint8_t host[16]);

#endif
