#include "hosts.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <sodium.h>

#include "err.h"

int sfl_hosts_init(sfl_hosts *t, size_t max_hosts)
{
    memset(t, 0, sizeof *t);
    size_t cap = 16;
    while (cap < 2 * max_hosts + 2)
        cap *= 2;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots)
        return SFL_ENOMEM;
    t->cap = cap;
    t->max = max_hosts;
    randombytes_buf(t->key, sizeof t->key);
    return 0;
}

void sfl_hosts_free(sfl_hosts *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}

void sfl_hosts_key(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &in->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        memcpy(out, &in6->sin6_addr, 16);
        /* an IPv4-mapped address is that IPv4 host; any other, its /64 */
        if (memcmp(out, mapped, sizeof mapped) != 0)
            memset(out + 8, 0, 8);
    }
}

static size_t home(const sfl_hosts *t, const uint8_t host[16])
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, host, 16, t->key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)v & (t->cap - 1);
}

/* The slot of host, or the free slot where it would go. */
static size_t find(const sfl_hosts *t, const uint8_t host[16])
{
    size_t i = home(t, host);
    while (t->slots[i].n && memcmp(t->slots[i].addr, host, 16) != 0)
        i = (i + 1) & (t->cap - 1);
    return i;
}

uint32_t sfl_hosts_count(const sfl_hosts *t, const uint8_t host[16])
{
    return t->slots[find(t, host)].n;
}

uint32_t sfl_hosts_add(sfl_hosts *t, const uint8_t host[16])
{
    size_t i = find(t, host);
    sfl_host *e = &t->slots[i];
    if (e->n == 0) {
        /* at most max hosts, so more than half the table stays free */
        if (t->used >= t->max)
            return 0;
        memcpy(e->addr, host, 16);
        t->used++;
    }
    return ++e->n;
}

void sfl_hosts_remove(sfl_hosts *t, const uint8_t host[16])
{
    size_t i = find(t, host);
    if (t->slots[i].n == 0 || --t->slots[i].n > 0)
        return;
    /* backward-shift deletion: move later entries of the run into the
     * hole wherever their home position allows, so lookups need no
     * tombstones */
    size_t hole = i;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots[j].n; j = (j + 1) & (t->cap - 1)) {
        size_t h = home(t, t->slots[j].addr);
        /* j may move to hole when its home is not in (hole, j] cyclically */
        int stays = hole <= j ? (h > hole && h <= j) : (h > hole || h <= j);
        if (!stays) {
            t->slots[hole] = t->slots[j];
            t->slots[j].n = 0;
            hole = j;
        }
    }
    memset(t->slots[hole].addr, 0, 16);
    t->slots[hole].n = 0;
    t->used--;
}
