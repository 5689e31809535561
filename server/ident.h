/* Client identities the server has seen: per public key, the newest
 * handshake timestamp accepted (so a replayed first handshake message is
 * refused, as WireGuard does) and the live session of that key (so a new
 * session replaces the old one). Entries outlive sessions. Open addressing,
 * owned by the loop thread. */
#ifndef SFL_IDENT_H
#define SFL_IDENT_H

#include <stddef.h>
#include <stdint.h>

#define SFL_IDENT_TS_LEN 12

typedef struct {
    uint8_t key[32];
    uint8_t ts[SFL_IDENT_TS_LEN]; /* TAI64N, big-endian: compares with memcmp */
    int used;
    void *session;                /* the live session of this key, or NULL */
} sfl_ident;

typedef struct {
    sfl_ident *slots;
    size_t cap, n, max;
} sfl_ident_table;

/* max: the most keys ever held (later new keys are refused). */
int sfl_ident_init(sfl_ident_table *t, size_t max);
void sfl_ident_free(sfl_ident_table *t);
/* The entry of key, or NULL. */
sfl_ident *sfl_ident_find(sfl_ident_table *t, const uint8_t key[32]);
/* The entry of key, made (with a zero timestamp) when new; NULL when the
 * table is full or out of memory. */
sfl_ident *sfl_ident_get(sfl_ident_table *t, const uint8_t key[32]);
/* 1 when ts is newer than the entry's last accepted timestamp. */
int sfl_ident_fresh(const sfl_ident *e, const uint8_t ts[SFL_IDENT_TS_LEN]);

#endif
