/* IDX files (LeCun's format), gzip-compressed or plain (zlib's gzread reads
 * both). Every check names the file and the problem in errbuf. As zlib does,
 * bytes after the last gzip member that are not gzip are ignored; trailing
 * data inside the (decompressed) stream is an error. */
#ifndef SFL_IDX_H
#define SFL_IDX_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint8_t *data;       /* n * item_size unsigned bytes */
    uint32_t n;          /* first dimension */
    uint32_t dims[3];    /* remaining dimensions (1 where absent) */
    int ndims;           /* total number of dimensions including n (1..4) */
    size_t item_size;    /* product of remaining dims */
} sfl_idx;

/* Load an unsigned-byte IDX file (type 0x08). Validates the magic, the type,
 * dimension count (1..4), every dimension > 0, the product against a cap
 * (max_bytes), and that the file holds exactly that many bytes (truncated or
 * trailing data is an error). Returns SFL_EIO (cannot open/read), SFL_EFORMAT
 * (malformed, truncated, trailing data, corrupt gzip), SFL_ETOOBIG (over
 * max_bytes) or SFL_ENOMEM; on error *out is zeroed. */
int sfl_idx_load(const char *path, size_t max_bytes, sfl_idx *out, char *errbuf, size_t errlen);
/* Load only the items whose indices are listed (strictly ascending), streaming
 * past the rest: a client keeps only its own shard in memory. The whole file
 * is still validated as in sfl_idx_load (max_bytes caps the file's declared
 * size). out->n is count. An index >= the file's n is SFL_ERANGE, an unsorted
 * or repeated index SFL_EINVAL. */
int sfl_idx_load_subset(const char *path, const uint32_t *idx, size_t count, size_t max_bytes,
                        sfl_idx *out, char *errbuf, size_t errlen);
/* Read and validate only the header (magic, type, dimensions, cap): out gets
 * n, dims, ndims and item_size, with data NULL. Says nothing about the data
 * that follows. */
int sfl_idx_probe(const char *path, size_t max_bytes, sfl_idx *out, char *errbuf, size_t errlen);
/* Frees the data and resets x; safe on a zeroed or already freed x. */
void sfl_idx_free(sfl_idx *x);

#endif
