#include "keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "err.h"

#define KEY_B64_LEN 44
/* A key file is one short line; anything longer is not a key file. */
#define KEYFILE_MAX 256
/* Allow-list lines longer than this are refused (comments excepted). */
#define ALLOW_LINE_MAX 1024

__attribute__((format(printf, 3, 4)))
static void set_err(char *errbuf, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (!errbuf || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(errbuf, errlen, fmt, ap);
    va_end(ap);
}

static void trim(const char **s, size_t *len)
{
    while (*len > 0 && isspace((unsigned char)(*s)[0])) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && isspace((unsigned char)(*s)[*len - 1]))
        (*len)--;
}

void sfl_keys_encode(const uint8_t key[32], char out[45])
{
    sodium_bin2base64(out, KEY_B64_LEN + 1, key, 32, sodium_base64_VARIANT_ORIGINAL);
}

/* Surrounding whitespace is ignored; anything else that is not exactly one
 * canonical base64 encoding of 32 bytes is SFL_EFORMAT (key zeroed). */
int sfl_keys_decode(const char *text, size_t len, uint8_t key[32])
{
    size_t bin_len = 0;
    const char *end = NULL;

    trim(&text, &len);
    if (len != KEY_B64_LEN ||
        sodium_base642bin(key, 32, text, len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bin_len != 32 || end != text + len) {
        sodium_memzero(key, 32);
        return SFL_EFORMAT;
    }
    return 0;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Creates path exclusively; a clear message when it already exists. */
static int create_excl(const char *path, mode_t mode, char *errbuf, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        if (errno == EEXIST)
            set_err(errbuf, errlen, "%s: already exists; refusing to overwrite a key", path);
        else
            set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
    }
    return fd;
}

/* Writes one base64 line and closes fd (synced first, so a reported success
 * is on disk). Returns 0 or -1 with errno set. */
static int write_key_line(int fd, const uint8_t key[32])
{
    char line[KEY_B64_LEN + 2];
    int rc = 0;

    sfl_keys_encode(key, line);
    line[KEY_B64_LEN] = '\n';
    if (write_all(fd, line, KEY_B64_LEN + 1) != 0 || fsync(fd) != 0)
        rc = -1;
    sodium_memzero(line, sizeof line);
    return rc;
}

/* Both files are created with O_EXCL before any key exists, so an existing
 * PATH or PATH.pub is never touched; on failure whatever this call created
 * is removed. PATH.pub's 0644 is subject to the umask. */
int sfl_keys_generate(const char *path, uint8_t pub_out[32], char *errbuf, size_t errlen)
{
    uint8_t priv[32], pub[32];
    char *pubpath;
    int fd = -1, pfd = -1, made = 0, made_pub = 0, rc = SFL_EIO;

    pubpath = malloc(strlen(path) + sizeof ".pub");
    if (!pubpath) {
        set_err(errbuf, errlen, "%s: out of memory", path);
        return SFL_ENOMEM;
    }
    strcpy(pubpath, path);
    strcat(pubpath, ".pub");

    if ((fd = create_excl(path, 0600, errbuf, errlen)) < 0)
        goto out;
    made = 1;
    if ((pfd = create_excl(pubpath, 0644, errbuf, errlen)) < 0)
        goto out;
    made_pub = 1;

    randombytes_buf(priv, sizeof priv);
    if (crypto_scalarmult_base(pub, priv) != 0) {
        set_err(errbuf, errlen, "%s: key derivation failed", path);
        rc = SFL_ECRYPTO;
        goto out;
    }
    if (write_key_line(fd, priv) != 0) {
        set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (write_key_line(pfd, pub) != 0) {
        set_err(errbuf, errlen, "%s: %s", pubpath, strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    fd = -1;
    if (close(pfd) != 0) {
        pfd = -1;
        set_err(errbuf, errlen, "%s: %s", pubpath, strerror(errno));
        goto out;
    }
    pfd = -1;
    memcpy(pub_out, pub, 32);
    rc = 0;
out:
    sodium_memzero(priv, sizeof priv);
    if (fd >= 0)
        close(fd);
    if (pfd >= 0)
        close(pfd);
    if (rc < 0 && made)
        unlink(path);
    if (rc < 0 && made_pub)
        unlink(pubpath);
    free(pubpath);
    return rc;
}

/* Reads one key from a small regular file. A secret file must not be
 * readable or writable by group or others (checked on the open fd, so the
 * answer is about the file actually read). */
static int read_key_file(const char *path, int secret, uint8_t key[32], char *errbuf,
                         size_t errlen)
{
    char buf[KEYFILE_MAX + 1];
    size_t n = 0;
    struct stat st;
    int rc = SFL_EIO;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
        return SFL_EIO;
    }
    if (fstat(fd, &st) != 0) {
        set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        set_err(errbuf, errlen, "%s: not a regular file", path);
        goto out;
    }
    size_t plen = strlen(path);
    if (secret && plen > 4 && strcmp(path + plen - 4, ".pub") == 0) {
        set_err(errbuf, errlen, "%s: this is a public key; give the secret key (the file "
                "without .pub)", path);
        rc = SFL_EINVAL;
        goto out;
    }
    if (secret && (st.st_mode & (S_IRGRP | S_IROTH))) {
        set_err(errbuf, errlen, "%s: readable by group or others (chmod 600)", path);
        rc = SFL_EPERM;
        goto out;
    }
    if (secret && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        set_err(errbuf, errlen, "%s: writable by group or others (chmod 600)", path);
        rc = SFL_EPERM;
        goto out;
    }
    while (n < sizeof buf) {
        ssize_t r = read(fd, buf + n, sizeof buf - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (n > KEYFILE_MAX || sfl_keys_decode(buf, n, key) != 0) {
        set_err(errbuf, errlen, "%s: not a base64 X25519 key", path);
        rc = SFL_EFORMAT;
        goto out;
    }
    rc = 0;
out:
    sodium_memzero(buf, sizeof buf);
    close(fd);
    return rc;
}

int sfl_keys_load_secret(const char *path, uint8_t priv[32], char *errbuf, size_t errlen)
{
    return read_key_file(path, 1, priv, errbuf, errlen);
}

int sfl_keys_load_public(const char *path, uint8_t pub[32], char *errbuf, size_t errlen)
{
    return read_key_file(path, 0, pub, errbuf, errlen);
}

/* Skips the rest of an over-long line. */
static void skip_line(FILE *f)
{
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n')
        ;
}

/* The list grows as lines are read, never from a declared count, and stops
 * at SFL_ALLOWLIST_MAX keys. On failure *al is empty; on success it replaces
 * whatever *al held (free an old list first). */
static int key_cmp(const void *a, const void *b)
{
    return memcmp(a, b, 32);
}

int sfl_allowlist_load(const char *path, sfl_allowlist *al, char *errbuf, size_t errlen)
{
    char line[ALLOW_LINE_MAX];
    uint8_t(*keys)[32] = NULL;
    size_t n = 0, cap = 0;
    unsigned long lineno = 0;
    int rc = SFL_EIO;
    FILE *f;

    al->keys = NULL;
    al->n = 0;
    f = fopen(path, "r");
    if (!f) {
        set_err(errbuf, errlen, "%s: %s", path, strerror(errno));
        return SFL_EIO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode)) {
        set_err(errbuf, errlen, "%s: not a regular file", path);
        fclose(f);
        return SFL_EIO;
    }
    while (fgets(line, sizeof line, f)) {
        size_t len = strlen(line);
        const char *s = line;
        int whole = (len > 0 && line[len - 1] == '\n') || feof(f);

        lineno++;
        trim(&s, &len);
        if (len > 0 && s[0] == '#') {
            if (!whole)
                skip_line(f);
            continue;
        }
        if (!whole) {
            /* fgets stops short at a NUL byte too */
            set_err(errbuf, errlen, "%s:%lu: line too long or not text", path, lineno);
            rc = SFL_EFORMAT;
            goto fail;
        }
        if (len == 0)
            continue;
        if (n == SFL_ALLOWLIST_MAX) {
            set_err(errbuf, errlen, "%s:%lu: more than %d keys", path, lineno,
                    SFL_ALLOWLIST_MAX);
            rc = SFL_ETOOBIG;
            goto fail;
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > SFL_ALLOWLIST_MAX)
                ncap = SFL_ALLOWLIST_MAX;
            uint8_t(*nk)[32] = realloc(keys, ncap * sizeof *keys);
            if (!nk) {
                set_err(errbuf, errlen, "%s: out of memory", path);
                rc = SFL_ENOMEM;
                goto fail;
            }
            keys = nk;
            cap = ncap;
        }
        if (sfl_keys_decode(s, len, keys[n]) != 0) {
            set_err(errbuf, errlen, "%s:%lu: not a base64 X25519 key", path, lineno);
            rc = SFL_EFORMAT;
            goto fail;
        }
        n++;
    }
    if (ferror(f)) {
        set_err(errbuf, errlen, "%s: read error", path);
        rc = SFL_EIO;
        goto fail;
    }
    fclose(f);
    /* sorted and without repeats, for a binary search per handshake */
    if (n > 1) {
        qsort(keys, n, sizeof *keys, key_cmp);
        size_t u = 1;
        for (size_t i = 1; i < n; i++)
            if (memcmp(keys[i], keys[u - 1], 32) != 0)
                memcpy(keys[u++], keys[i], 32);
        n = u;
    }
    al->keys = keys;
    al->n = n;
    return 0;
fail:
    fclose(f);
    free(keys);
    return rc;
}

/* Public keys are not secrets (and the peer has just proved it holds the
 * secret half), so the search need not run in constant time. */
int sfl_allowlist_contains(const sfl_allowlist *al, const uint8_t pub[32])
{
    return al->n > 0 && bsearch(pub, al->keys, al->n, sizeof *al->keys, key_cmp) != NULL;
}

void sfl_allowlist_free(sfl_allowlist *al)
{
    free(al->keys);
    al->keys = NULL;
    al->n = 0;
}
