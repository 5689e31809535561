/* The IDX loader (common/idx.h) on a file holding the input, and on a file
 * holding the input gzip-compressed, so that both the plain reader and the
 * decompressor see it (an input that is itself gzip reaches the
 * decompressor's error paths). The loader takes a path: the bytes go to a
 * memfd opened as /proc/self/fd/N.
 *
 * Invariants: probe, load and load_subset agree on the shape and on
 * whether the file is valid; the items a subset loads equal the same items
 * of the full load; every failure says why. */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <zlib.h>

#include "err.h"
#include "fuzz.h"
#include "idx.h"

#define MAX_BYTES (1u << 20)

static int file_with(const uint8_t *data, size_t size, char *path, size_t pathlen)
{
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz-idx", 0);
        FUZZ_CHECK(fd >= 0);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
        FUZZ_CHECK(w > 0);
        done += (size_t)w;
    }
    snprintf(path, pathlen, "/proc/self/fd/%d", fd);
    return fd;
}

static uint8_t *gzip_of(const uint8_t *data, size_t size, int level, size_t *out_len)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    FUZZ_CHECK(deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t cap = deflateBound(&z, size) + 64;
    uint8_t *out = malloc(cap);
    FUZZ_CHECK(out != NULL);
    z.next_in = (uint8_t *)data;
    z.avail_in = (uInt)size;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    FUZZ_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END);
    *out_len = cap - z.avail_out;
    deflateEnd(&z);
    return out;
}

static void check_file(const char *path)
{
    char err[256];
    sfl_idx probe, all, sub;

    int prc = sfl_idx_probe(path, MAX_BYTES, &probe, err, sizeof err);
    FUZZ_CHECK(prc <= 0);
    FUZZ_CHECK(probe.data == NULL);
    if (prc)
        FUZZ_CHECK(err[0] != '\0' && probe.n == 0);

    int rc = sfl_idx_load(path, MAX_BYTES, &all, err, sizeof err);
    FUZZ_CHECK(rc <= 0);
    if (rc) {
        FUZZ_CHECK(err[0] != '\0');
        FUZZ_CHECK(all.data == NULL && all.n == 0);
        FUZZ_CHECK(rc == SFL_EFORMAT || rc == SFL_ETOOBIG || rc == prc);
    } else {
        FUZZ_CHECK(prc == 0);
        FUZZ_CHECK(all.data != NULL && all.n == probe.n && all.ndims == probe.ndims);
        FUZZ_CHECK(all.item_size == probe.item_size);
        FUZZ_CHECK(memcmp(all.dims, probe.dims, sizeof all.dims) == 0);
        FUZZ_CHECK((size_t)all.n * all.item_size <= MAX_BYTES);
        /* touch every byte */
        volatile uint8_t sum = 0;
        for (size_t i = 0; i < (size_t)all.n * all.item_size; i++)
            sum ^= all.data[i];
        (void)sum;
    }

    /* first, middle and last item when the header says there are such */
    uint32_t idx[3];
    size_t count = 0;
    uint32_t n = prc == 0 ? probe.n : 3;
    idx[count++] = 0;
    if (n / 2 > 0)
        idx[count++] = n / 2;
    if (n - 1 > idx[count - 1])
        idx[count++] = n - 1;
    int src = sfl_idx_load_subset(path, idx, count, MAX_BYTES, &sub, err, sizeof err);
    FUZZ_CHECK(src <= 0);
    if (rc == 0) {
        FUZZ_CHECK(src == 0 && sub.n == count && sub.item_size == all.item_size);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(memcmp(sub.data + i * sub.item_size,
                              all.data + (size_t)idx[i] * all.item_size, all.item_size) == 0);
    } else {
        FUZZ_CHECK(src != 0 && err[0] != '\0' && sub.data == NULL);
    }
    sfl_idx_free(&sub);

    /* an index past the end, and an unsorted list */
    if (prc == 0) {
        uint32_t past[1] = { probe.n };
        FUZZ_CHECK(sfl_idx_load_subset(path, past, 1, MAX_BYTES, &sub, err, sizeof err) ==
                   SFL_ERANGE);
        FUZZ_CHECK(sub.data == NULL);
        if (probe.n >= 2) {
            uint32_t unsorted[2] = { 1, 0 };
            FUZZ_CHECK(sfl_idx_load_subset(path, unsorted, 2, MAX_BYTES, &sub, err,
                                           sizeof err) == SFL_EINVAL);
            FUZZ_CHECK(sub.data == NULL);
        }
        /* no items at all: still the whole file is checked */
        int zrc = sfl_idx_load_subset(path, NULL, 0, MAX_BYTES, &sub, err, sizeof err);
        FUZZ_CHECK(zrc == rc);
        sfl_idx_free(&sub);
    }
    sfl_idx_free(&all);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    /* a larger input says nothing new to a loader capped at MAX_BYTES */
    if (size > 2 * MAX_BYTES)
        return 0;
    file_with(data, size, path, sizeof path);
    check_file(path);

    size_t zlen = 0;
    uint8_t *z = gzip_of(data, size, size & 1 ? Z_BEST_SPEED : Z_DEFAULT_COMPRESSION, &zlen);
    file_with(z, zlen, path, sizeof path);
    check_file(path);
    free(z);
    return 0;
}
