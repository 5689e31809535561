/* Small fixed-size slots of guarded, locked memory for session keys.
 *
 * libsodium's sodium_malloc gives every allocation its own guard pages, its
 * own memory mappings and a locked page: per session that would hit the
 * per-process limits on mappings and locked memory long before 10,000
 * sessions. Here slots are carved from a few large sodium_malloc'd chunks
 * (one guarded region per chunk), reused through a free list, and wiped on
 * release. Thread-safe. */
#ifndef SFL_SECMEM_H
#define SFL_SECMEM_H

#include <stddef.h>

#define SFL_SECMEM_SLOT 128          /* bytes per slot */
#define SFL_SECMEM_CHUNK_SLOTS 512   /* slots per guarded chunk (64 KiB) */

/* A zeroed slot of SFL_SECMEM_SLOT bytes (size must not exceed it), or
 * NULL when out of memory or size is too large. */
void *sfl_secmem_alloc(size_t size);
/* Wipes and returns the slot; NULL is fine. */
void sfl_secmem_free(void *p);
/* Slots in use and guarded chunks held (for tests and logs). */
void sfl_secmem_stats(size_t *in_use, size_t *chunks);

#endif
