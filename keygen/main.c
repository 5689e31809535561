/* seedfl-keygen PATH: writes a new X25519 secret key to PATH (mode 0600) and
 * its public key to PATH.pub, and prints the public key (for the server's
 * allow-list or the client's pinned server key). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "keys.h"
#include "util.h"

/* Exit statuses: a wrong option, a failure at run time. */
enum { EXIT_USAGE = 2, EXIT_RUNTIME = 1 };

static void usage(FILE *out)
{
    fprintf(out,
            "usage: seedfl-keygen PATH\n"
            "  Writes a new X25519 secret key to PATH (mode 0600, never overwritten)\n"
            "  and its public key to PATH.pub, then prints the public key.\n"
            "  (A PATH that starts with '-' goes after '--'.)\n"
            "Exit status: 0 on success, 1 on a failure (PATH exists, cannot be written),\n"
            "2 for a wrong option.\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    uint8_t pub[32];
    char b64[45];
    char err[512];
    int idx, c;

    opterr = 0;
    while ((c = sfl_getopt_next(argc, argv, opts, &idx, "seedfl-keygen")) != -1) {
        if (c == -2)
            return EXIT_USAGE;
        usage(stdout);
        return 0;
    }
    if (argc - optind != 1 || argv[optind][0] == '\0') {
        if (argc - optind > 1)
            fprintf(stderr, "seedfl-keygen: one PATH only\n");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *path = argv[optind];
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-keygen: libsodium initialisation failed\n");
        return EXIT_RUNTIME;
    }
    err[0] = '\0';
    int rc = sfl_keys_generate(path, pub, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "seedfl-keygen: %s\n", err[0] ? err : sfl_strerror(rc));
        return EXIT_RUNTIME;
    }
    sfl_keys_encode(pub, b64);
    printf("%s\n", b64);
    if (fflush(stdout) != 0)
        return EXIT_RUNTIME;
    return 0;
}
