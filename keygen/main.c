/* seedfl-keygen PATH: writes a new X25519 secret key to PATH (mode 0600) and
 * its public key to PATH.pub, and prints the public key (for the server's
 * allow-list or the client's pinned server key). */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "err.h"
#include "keys.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: seedfl-keygen PATH\n"
            "  Writes a new X25519 secret key to PATH (mode 0600, never overwritten)\n"
            "  and its public key to PATH.pub, then prints the public key.\n");
}

int main(int argc, char **argv)
{
    uint8_t pub[32];
    char b64[45];
    char err[512];

    if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc != 2 || argv[1][0] == '\0' || argv[1][0] == '-') {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-keygen: libsodium initialisation failed\n");
        return 1;
    }
    err[0] = '\0';
    int rc = sfl_keys_generate(argv[1], pub, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "seedfl-keygen: %s\n", err[0] ? err : sfl_strerror(rc));
        return 1;
    }
    sfl_keys_encode(pub, b64);
    printf("%s\n", b64);
    if (fflush(stdout) != 0)
        return 1;
    return 0;
}
