#include "secmem.h"

#include <pthread.h>
#include <stdint.h>

#include <sodium.h>

typedef union slot {
    union slot *next;                /* while free */
    unsigned char bytes[SFL_SECMEM_SLOT];
} slot;

static pthread_mutex_t secmem_lock = PTHREAD_MUTEX_INITIALIZER;
static slot *secmem_free_list;
static size_t secmem_in_use, secmem_chunks;

/* Chunks are kept for the life of the process: a server's session count
 * rises and falls, and the slots are reused. */
static int secmem_grow(void)
{
    slot *chunk = sodium_malloc(sizeof(slot) * SFL_SECMEM_CHUNK_SLOTS);
    if (!chunk)
        return -1;
    for (size_t i = 0; i < SFL_SECMEM_CHUNK_SLOTS; i++) {
        chunk[i].next = secmem_free_list;
        secmem_free_list = &chunk[i];
    }
    secmem_chunks++;
    return 0;
}

void *sfl_secmem_alloc(size_t size)
{
    if (size > SFL_SECMEM_SLOT)
        return NULL;
    pthread_mutex_lock(&secmem_lock);
    slot *s = NULL;
    if (secmem_free_list || secmem_grow() == 0) {
        s = secmem_free_list;
        secmem_free_list = s->next;
        secmem_in_use++;
    }
    pthread_mutex_unlock(&secmem_lock);
    if (s)
        sodium_memzero(s, sizeof *s);
    return s;
}

void sfl_secmem_free(void *p)
{
    if (!p)
        return;
    slot *s = p;
    sodium_memzero(s, sizeof *s);
    pthread_mutex_lock(&secmem_lock);
    s->next = secmem_free_list;
    secmem_free_list = s;
    secmem_in_use--;
    pthread_mutex_unlock(&secmem_lock);
}

void sfl_secmem_stats(size_t *in_use, size_t *chunks)
{
    pthread_mutex_lock(&secmem_lock);
    if (in_use)
        *in_use = secmem_in_use;
    if (chunks)
        *chunks = secmem_chunks;
    pthread_mutex_unlock(&secmem_lock);
}
