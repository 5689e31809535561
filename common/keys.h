/* Key files: base64 (libsodium's original variant) of a 32-byte X25519 key
 * on one line. PATH holds the secret (mode 0600), PATH.pub the public key. */
#ifndef SFL_KEYS_H
#define SFL_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* Generate a keypair and write PATH (0600) and PATH.pub (0644 less the
 * umask), each created with O_EXCL: an existing file is never overwritten.
 * On failure nothing this call created is left behind, and errbuf gets a
 * message naming the file and the problem. */
int sfl_keys_generate(const char *path, uint8_t pub_out[32], char *errbuf, size_t errlen);
/* Read a secret key file; SFL_EPERM when group or others can read or write
 * it (checked with fstat on the opened file), SFL_EFORMAT when it is not one
 * base64 32-byte key (surrounding whitespace allowed), SFL_EIO when it cannot
 * be opened or read. errbuf (may be NULL) gets a message naming the file and
 * the problem. */
int sfl_keys_load_secret(const char *path, uint8_t priv[32], char *errbuf, size_t errlen);
/* Read a public key file (PATH.pub or any file with one key). */
int sfl_keys_load_public(const char *path, uint8_t pub[32], char *errbuf, size_t errlen);
/* Encode / decode one key as base64 (44 chars + NUL). Decoding ignores
 * surrounding whitespace and returns SFL_EFORMAT for anything but one
 * canonical 32-byte key. */
void sfl_keys_encode(const uint8_t key[32], char out[45]);
int sfl_keys_decode(const char *text, size_t len, uint8_t key[32]);

/* Allow-list: one base64 public key per line; blank lines and lines starting
 * with '#' ignored (surrounding whitespace too); a bad line is an error
 * naming its line number ("PATH:LINE: ..."). At most SFL_ALLOWLIST_MAX keys
 * (SFL_ETOOBIG beyond). Loaded keys are kept sorted, a key listed twice once,
 * so a lookup is a binary search. */
#define SFL_ALLOWLIST_MAX 1000000

typedef struct {
    uint8_t (*keys)[32];
    size_t n;
} sfl_allowlist;

/* On failure *al is left empty; on success it is overwritten (free an old
 * list first). */
int sfl_allowlist_load(const char *path, sfl_allowlist *al, char *errbuf, size_t errlen);
/* 1 when pub is on the list. */
int sfl_allowlist_contains(const sfl_allowlist *al, const uint8_t pub[32]);
void sfl_allowlist_free(sfl_allowlist *al);

#endif
