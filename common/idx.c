#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "err.h"

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_DIMS 4
#define IDX_SCRATCH (64 * 1024)
#define IDX_CHUNK (1u << 30)   /* gzread takes an unsigned int length */

typedef struct {
    gzFile f;
    const char *path;
    char *errbuf;
    size_t errlen;
    size_t data_got;           /* data bytes read so far (after the header) */
} idx_reader;

static int idx_open(idx_reader *rd, const char *path, char *errbuf, size_t errlen)
{
    rd->path = path;
    rd->errbuf = errbuf;
    rd->errlen = errlen;
    rd->data_got = 0;
    errno = 0;
    rd->f = gzopen(path, "rb");
    if (!rd->f)
        return sfl_fail(errbuf, errlen, SFL_EIO, "%s: cannot open: %s", path,
                        errno ? strerror(errno) : "out of memory");
    gzbuffer(rd->f, 128 * 1024);
    return 0;
}

static void idx_close(idx_reader *rd)
{
    if (rd->f)
        gzclose_r(rd->f);
    rd->f = NULL;
}

/* zlib's message already starts with "<path>: "; ours adds that itself. */
static const char *idx_gzmsg(idx_reader *rd, int *zerr)
{
    const char *msg = gzerror(rd->f, zerr);
    size_t plen = strlen(rd->path);
    if (strncmp(msg, rd->path, plen) == 0 && msg[plen] == ':' && msg[plen + 1] == ' ')
        msg += plen + 2;
    return msg;
}

/* Turn a failed gzread into a code and a message naming the file. */
static int idx_read_error(idx_reader *rd)
{
    int zerr = 0;
    const char *msg = idx_gzmsg(rd, &zerr);
    switch (zerr) {
    case Z_ERRNO:
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EIO, "%s: read error: %s", rd->path,
                        strerror(errno));
    case Z_MEM_ERROR:
        return sfl_fail(rd->errbuf, rd->errlen, SFL_ENOMEM, "%s: out of memory while reading",
                        rd->path);
    case Z_DATA_ERROR:
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT, "%s: corrupt gzip data: %s",
                        rd->path, msg);
    default:
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EIO, "%s: read error: %s", rd->path, msg);
    }
}

/* Read up to len bytes; *got < len only at end of input (a truncated gzip
 * stream also ends early, which callers report as truncation). */
static int idx_read(idx_reader *rd, void *buf, size_t len, size_t *got)
{
    size_t done = 0;
    while (done < len) {
        size_t want = len - done < IDX_CHUNK ? len - done : IDX_CHUNK;
        int n = gzread(rd->f, (uint8_t *)buf + done, (unsigned)want);
        if (n < 0)
            return idx_read_error(rd);
        if (n == 0)
            break;
        done += (size_t)n;
    }
    *got = done;
    return 0;
}

static void idx_format_dims(char *s, size_t slen, const uint32_t *dim, int ndims)
{
    size_t used = 0;
    s[0] = '\0';
    for (int i = 0; i < ndims && used < slen; i++) {
        int w = snprintf(s + used, slen - used, i ? "x%u" : "%u", (unsigned)dim[i]);
        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* Parse and check the header; fills shape fields of out (data untouched). */
static int idx_header(idx_reader *rd, size_t max_bytes, sfl_idx *out)
{
    uint8_t magic[4], raw[4 * IDX_MAX_DIMS];
    uint32_t dim[IDX_MAX_DIMS];
    size_t got;
    int rc;

    if ((rc = idx_read(rd, magic, sizeof magic, &got)) != 0)
        return rc;
    if (got < sizeof magic)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: truncated header: expected 4 bytes of magic, got %zu", rd->path, got);
    if (magic[0] != 0 || magic[1] != 0)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: bad magic %02x %02x %02x %02x (an IDX file starts with 00 00)",
                        rd->path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: unsupported element type 0x%02x (only 0x08, unsigned byte)",
                        rd->path, magic[2]);
    int ndims = magic[3];
    if (ndims < 1 || ndims > IDX_MAX_DIMS)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: %d dimensions (must be 1..%d)", rd->path, ndims, IDX_MAX_DIMS);

    size_t hlen = 4 * (size_t)ndims;
    if ((rc = idx_read(rd, raw, hlen, &got)) != 0)
        return rc;
    if (got < hlen)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: truncated header: expected %zu bytes of dimensions, got %zu",
                        rd->path, hlen, got);

    uint64_t total = 1;
    for (int i = 0; i < ndims; i++) {
        const uint8_t *p = raw + 4 * i;
        dim[i] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        if (dim[i] == 0)
            return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT, "%s: dimension %d is 0",
                            rd->path, i);
    }
    /* total stays <= max_bytes, so the products never overflow */
    for (int i = 0; i < ndims; i++) {
        if (dim[i] > max_bytes / total) {
            char shape[64];
            idx_format_dims(shape, sizeof shape, dim, ndims);
            return sfl_fail(rd->errbuf, rd->errlen, SFL_ETOOBIG,
                            "%s: declared shape %s exceeds the limit of %zu bytes", rd->path,
                            shape, max_bytes);
        }
        total *= dim[i];
    }

    out->n = dim[0];
    out->ndims = ndims;
    out->item_size = 1;
    for (int i = 1; i < IDX_MAX_DIMS; i++) {
        out->dims[i - 1] = i < ndims ? dim[i] : 1;
        out->item_size *= out->dims[i - 1];
    }
    return 0;
}

static int idx_truncated(idx_reader *rd, size_t expect)
{
    return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                    "%s: truncated: expected %zu bytes of data, got %zu", rd->path, expect,
                    rd->data_got);
}

/* Read exactly len data bytes into dst, or past them when dst is NULL. */
static int idx_data(idx_reader *rd, uint8_t *dst, size_t len, uint8_t *scratch, size_t expect)
{
    while (len > 0) {
        size_t want = dst ? len : (len < IDX_SCRATCH ? len : IDX_SCRATCH);
        size_t got;
        int rc = idx_read(rd, dst ? dst : scratch, want, &got);
        if (rc)
            return rc;
        rd->data_got += got;
        if (got < want)
            return idx_truncated(rd, expect);
        if (dst)
            dst += got;
        len -= got;
    }
    return 0;
}

static int idx_expect_end(idx_reader *rd)
{
    uint8_t extra[1];
    size_t got;
    int rc = idx_read(rd, extra, sizeof extra, &got);
    if (rc)
        return rc;
    if (got)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT,
                        "%s: trailing data after the %zu bytes of data", rd->path, rd->data_got);
    /* a gzip stream cut after the data but before its trailer ends quietly */
    int zerr = Z_OK;
    const char *msg = idx_gzmsg(rd, &zerr);
    if (zerr != Z_OK)
        return sfl_fail(rd->errbuf, rd->errlen, SFL_EFORMAT, "%s: bad gzip stream: %s",
                        rd->path, msg);
    return 0;
}

/* idx == NULL: every item. Otherwise count strictly ascending indices. */
static int idx_load(const char *path, const uint32_t *idx, size_t count, size_t max_bytes,
                    sfl_idx *out, char *errbuf, size_t errlen)
{
    idx_reader rd = { 0 };
    uint8_t *scratch = NULL;
    size_t item, expect, keep;
    int rc;

    memset(out, 0, sizeof *out);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if ((rc = idx_open(&rd, path, errbuf, errlen)) != 0)
        return rc;
    if ((rc = idx_header(&rd, max_bytes, out)) != 0)
        goto out;

    item = out->item_size;
    expect = (size_t)out->n * item;   /* <= max_bytes, checked */
    keep = idx ? count : out->n;
    if (idx) {
        for (size_t i = 0; i < count; i++) {
            if (idx[i] >= out->n) {
                rc = sfl_fail(errbuf, errlen, SFL_ERANGE,
                              "%s: index %u out of range (the file has %u items)", path,
                              (unsigned)idx[i], (unsigned)out->n);
                goto out;
            }
            if (i > 0 && idx[i] <= idx[i - 1]) {
                rc = sfl_fail(errbuf, errlen, SFL_EINVAL,
                              "%s: indices not strictly ascending at position %zu", path, i);
                goto out;
            }
        }
    }

    /* never 0 bytes: malloc(0) may return NULL */
    out->data = malloc(keep > 0 ? keep * item : 1);
    scratch = malloc(IDX_SCRATCH);
    if (!out->data || !scratch) {
        rc = sfl_fail(errbuf, errlen, SFL_ENOMEM, "%s: out of memory for %zu bytes", path,
                      keep * item);
        goto out;
    }

    if (!idx) {
        rc = idx_data(&rd, out->data, expect, scratch, expect);
    } else {
        size_t pos = 0;   /* next item in the file */
        rc = 0;
        for (size_t i = 0; i < count && rc == 0; i++) {
            rc = idx_data(&rd, NULL, (idx[i] - pos) * item, scratch, expect);
            if (rc == 0)
                rc = idx_data(&rd, out->data + i * item, item, scratch, expect);
            pos = (size_t)idx[i] + 1;
        }
        if (rc == 0)
            rc = idx_data(&rd, NULL, (out->n - pos) * item, scratch, expect);
    }
    if (rc == 0)
        rc = idx_expect_end(&rd);
    if (rc == 0)
        out->n = (uint32_t)keep;

out:
    free(scratch);
    idx_close(&rd);
    if (rc)
        sfl_idx_free(out);
    return rc;
}

int sfl_idx_load(const char *path, size_t max_bytes, sfl_idx *out, char *errbuf, size_t errlen)
{
    return idx_load(path, NULL, 0, max_bytes, out, errbuf, errlen);
}

int sfl_idx_load_subset(const char *path, const uint32_t *idx, size_t count, size_t max_bytes,
                        sfl_idx *out, char *errbuf, size_t errlen)
{
    if (!idx && count) {
        memset(out, 0, sizeof *out);
        return sfl_fail(errbuf, errlen, SFL_EINVAL, "%s: no index list", path);
    }
    static const uint32_t none[1];
    return idx_load(path, idx ? idx : none, count, max_bytes, out, errbuf, errlen);
}

int sfl_idx_probe(const char *path, size_t max_bytes, sfl_idx *out, char *errbuf, size_t errlen)
{
    idx_reader rd = { 0 };
    int rc;

    memset(out, 0, sizeof *out);
    if (errbuf && errlen)
        errbuf[0] = '\0';
    if ((rc = idx_open(&rd, path, errbuf, errlen)) != 0)
        return rc;
    rc = idx_header(&rd, max_bytes, out);
    idx_close(&rd);
    if (rc)
        memset(out, 0, sizeof *out);
    return rc;
}

void sfl_idx_free(sfl_idx *x)
{
    free(x->data);
    memset(x, 0, sizeof *x);
}
