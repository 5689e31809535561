#include "ident.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"

int sfl_ident_init(sfl_ident_table *t, size_t max)
{
    memset(t, 0, sizeof *t);
    t->max = max;
    t->cap = 64;
    t->slots = calloc(t->cap, sizeof *t->slots);
    return t->slots ? 0 : SFL_ENOMEM;
}

void sfl_ident_free(sfl_ident_table *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

/* Keys are X25519 public keys: their bytes are already uniform, and an
 * attacker who picks keys to collide still has to be on the allow-list. */
static size_t ident_hash(const uint8_t key[32])
{
    uint64_t h;
    memcpy(&h, key, sizeof h);
    return (size_t)h;
}

static sfl_ident *ident_slot(sfl_ident *slots, size_t cap, const uint8_t key[32])
{
    size_t i = ident_hash(key) & (cap - 1);
    while (slots[i].used && memcmp(slots[i].key, key, 32) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

sfl_ident *sfl_ident_find(sfl_ident_table *t, const uint8_t key[32])
{
    sfl_ident *e = ident_slot(t->slots, t->cap, key);
    return e->used ? e : NULL;
}

static int ident_grow(sfl_ident_table *t)
{
    size_t cap = t->cap * 2;
    sfl_ident *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return SFL_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
        if (t->slots[i].used)
            *ident_slot(slots, cap, t->slots[i].key) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->cap = cap;
    return 0;
}

sfl_ident *sfl_ident_get(sfl_ident_table *t, const uint8_t key[32])
{
    sfl_ident *e = ident_slot(t->slots, t->cap, key);
    if (e->used)
        return e;
    if (t->n >= t->max)
        return NULL;
    if ((t->n + 1) * 2 > t->cap) {
        if (ident_grow(t) < 0)
            return NULL;
        e = ident_slot(t->slots, t->cap, key);
    }
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, 32);
    e->used = 1;
    t->n++;
    return e;
}

int sfl_ident_fresh(const sfl_ident *e, const uint8_t ts[SFL_IDENT_TS_LEN])
{
    return memcmp(ts, e->ts, SFL_IDENT_TS_LEN) > 0;
}
