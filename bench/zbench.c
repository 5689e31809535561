/* zbench: single-thread throughput of the shared-randomness generator and
 * replay (common/zgen.h) on a parameter vector far larger than the caches,
 * next to what bounds them on this machine: libsodium's ChaCha20 keystream
 * (the generator's only source of bits) and memcpy (a pass that reads and
 * writes every float, as an in-place update does). Every figure is the
 * median of several runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "zgen.h"

#define TARGET 1e9        /* parameters (or parameter updates) per second per core */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct ctx {
    size_t d;
    int nterms;
    float *theta, *copy;
    uint8_t *bits;
    sfl_zkey key;
    sfl_zlayout layout;
    sfl_zterm *terms;
};

enum job { J_MEMCPY, J_CHACHA, J_CHACHA_BIG, J_BITS, J_VALUES, J_AXPY, J_REPLAY, NJOBS };
#define CHUNK 4096        /* keystream bytes per call, as sfl_z_bits makes them */

static int run(struct ctx *c, enum job j)
{
    static const uint8_t nonce[crypto_stream_chacha20_NONCEBYTES];
    switch (j) {
    case J_MEMCPY:
        memcpy(c->copy, c->theta, c->d * sizeof(float));
        return 0;
    case J_CHACHA:              /* the same number of bytes, in cache-sized calls */
        for (size_t left = (c->d + 7) / 8; left > 0;) {
            size_t n = left < CHUNK ? left : CHUNK;
            if (crypto_stream_chacha20(c->bits, n, nonce, c->key.key) != 0)
                return -1;
            left -= n;
        }
        return 0;
    case J_CHACHA_BIG:
        return crypto_stream_chacha20(c->bits, (c->d + 7) / 8, nonce, c->key.key);
    case J_BITS:
        sfl_z_bits(&c->key, 0, c->d, c->bits);
        return 0;
    case J_VALUES:
        sfl_z_values(&c->key, 0, c->d, c->copy);
        return 0;
    case J_AXPY:
        return sfl_z_model_axpy(&c->layout, SFL_ZDOM_POOL, c->terms[0].seed, 1e-3f, c->theta,
                                c->theta);
    case J_REPLAY:
        return sfl_z_replay(&c->layout, SFL_ZDOM_POOL, c->terms, (size_t)c->nterms, c->theta);
    case NJOBS:
        break;
    }
    return -1;
}

/* Median seconds of reps runs of every job. The jobs take turns, so that a
 * change in the machine's load during the run shifts all of them alike. */
static void timed(struct ctx *c, int reps, double med[NJOBS])
{
    static double t[NJOBS][64];
    for (int r = 0; r < reps; r++)
        for (int j = 0; j < NJOBS; j++) {
            double t0 = now();
            if (run(c, (enum job)j) != 0) {
                fprintf(stderr, "zbench: job %d failed\n", j);
                exit(1);
            }
            t[j][r] = now() - t0;
        }
    for (int j = 0; j < NJOBS; j++)
        med[j] = median(t[j], reps);
}

static void usage(void)
{
    fprintf(stderr, "usage: zbench [--d N] [--reps R] [--terms T]\n"
                    "  --d N      float parameters (default 100000000, 400 MB)\n"
                    "  --reps R   runs per figure, median reported (default 7, 5..63)\n"
                    "  --terms T  terms replayed by sfl_z_replay (default 16)\n");
}

static int parse_size(const char *s, size_t lo, size_t hi, size_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);          /* accepts 1e8 */
    if (errno || end == s || *end || v < (double)lo || v > (double)hi || v != (double)(size_t)v)
        return -1;
    *out = (size_t)v;
    return 0;
}

int main(int argc, char **argv)
{
    struct ctx c = { .d = 100000000, .nterms = 16 };
    size_t reps = 7, v;

    /* options come in pairs: NAME VALUE */
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 < argc && !strcmp(argv[i], "--d") && !parse_size(argv[i + 1], 1024, (size_t)1 << 32, &v))
            c.d = v;
        else if (i + 1 < argc && !strcmp(argv[i], "--reps") && !parse_size(argv[i + 1], 5, 63, &v))
            reps = v;
        else if (i + 1 < argc && !strcmp(argv[i], "--terms") && !parse_size(argv[i + 1], 1, 4096, &v))
            c.nterms = (int)v;
        else {
            usage();
            return 2;
        }
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "zbench: sodium_init failed\n");
        return 1;
    }
    c.theta = malloc(c.d * sizeof(float));
    c.copy = malloc(c.d * sizeof(float));
    c.bits = malloc((c.d + 7) / 8);
    c.terms = calloc((size_t)c.nterms, sizeof *c.terms);
    if (!c.theta || !c.copy || !c.bits || !c.terms) {
        fprintf(stderr, "zbench: out of memory\n");
        return 1;
    }
    /* Touch every page before timing anything. */
    for (size_t i = 0; i < c.d; i++)
        c.theta[i] = (float)(i % 1000) * 1e-3f;
    memset(c.copy, 0, c.d * sizeof(float));
    memset(c.bits, 0, (c.d + 7) / 8);

    uint8_t root[32];
    sfl_z_root(1, root);
    for (int j = 0; j < c.nterms; j++) {
        sfl_z_pool_seed(root, (uint32_t)j, c.terms[j].seed);
        c.terms[j].alpha = (j % 2 ? -1e-3f : 1e-3f) * (float)(j + 1);
    }
    c.layout.model_id = sfl_z_model_id("bench");
    c.layout.ntensors = 1;
    c.layout.t[0].off = 0;
    c.layout.t[0].len = c.d;
    c.layout.nparams = c.d;
    sfl_zkey_derive(&c.key, SFL_ZDOM_POOL, c.layout.model_id, 0, c.terms[0].seed);

    double d = (double)c.d, mb = d * 4 / 1e6;
    int r = (int)reps;
    printf("zbench: d = %zu float parameters (%.0f MB), one thread, median of %d runs\n", c.d, mb, r);

    double med[NJOBS];
    timed(&c, r, med);
    double t_cpy = med[J_MEMCPY], cpy_bps = d * 4 / t_cpy, cpy_pps = d / t_cpy;
    double cha_bps = d / 8 / med[J_CHACHA], cha_cps = d / med[J_CHACHA];
    double chb_bps = d / 8 / med[J_CHACHA_BIG], chb_cps = d / med[J_CHACHA_BIG];
    double bits_cps = d / med[J_BITS], val_cps = d / med[J_VALUES];
    double axpy_pps = d / med[J_AXPY];
    double t_rep = med[J_REPLAY], rep_ups = d * c.nterms / t_rep;

    printf("peers measured in this run\n");
    char what[48];
    snprintf(what, sizeof what, "(%.0f MB -> %.0f MB)", mb, mb);
    printf("  memcpy %-36s %9.3g B/s   = %9.3g float params/s (read + write each)\n",
           what, cpy_bps, cpy_pps);
    snprintf(what, sizeof what, "(%d KB calls)", CHUNK / 1024);
    printf("  crypto_stream_chacha20 %-20s %9.3g B/s   = %9.3g coordinates/s (8 per byte)\n", what,
           cha_bps, cha_cps);
    snprintf(what, sizeof what, "(one %.1f MB call)", d / 8 / 1e6);
    printf("  crypto_stream_chacha20 %-20s %9.3g B/s   = %9.3g coordinates/s\n", what, chb_bps,
           chb_cps);
    printf("generator (coordinates/s)\n");
    printf("  sfl_z_bits   %-30s %9.3g /s    %6.2fx chacha20 keystream, %6.2fx target 1e9\n",
           "(packed bits)", bits_cps, bits_cps / cha_cps, bits_cps / TARGET);
    printf("  sfl_z_values %-30s %9.3g /s    %6.2fx memcpy params/s,     %6.2fx target 1e9\n",
           "(floats +-1)", val_cps, val_cps / cpy_pps, val_cps / TARGET);
    printf("replay (parameter updates/s, in place)\n");
    printf("  sfl_z_model_axpy %-26s %9.3g /s    %6.2fx memcpy params/s,     %6.2fx target 1e9\n",
           "(1 term)", axpy_pps, axpy_pps / cpy_pps, axpy_pps / TARGET);
    snprintf(what, sizeof what, "(%d terms)", c.nterms);
    printf("  sfl_z_replay     %-26s %9.3g /s    %6.2fx memcpy params/s,     %6.2fx target 1e9\n",
           what, rep_ups, rep_ups / cpy_pps, rep_ups / TARGET);
    printf("  (one sfl_z_replay pass over all %zu parameters: %.3f s, %.2fx a memcpy pass)\n",
           c.d, t_rep, t_rep / t_cpy);

    free(c.theta);
    free(c.copy);
    free(c.bits);
    free(c.terms);
    return 0;
}
