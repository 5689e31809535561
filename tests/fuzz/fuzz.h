/* Shared by the fuzz harnesses, the corpus replay driver and the corpus
 * generator. Each harness defines LLVMFuzzerTestOneInput; built with
 * -fsanitize=fuzzer it runs under libFuzzer (scripts/fuzz), built with
 * replay.c it replays a corpus as an ordinary test. */
#ifndef SFL_FUZZ_H
#define SFL_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "noise.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant is a crash, so that libFuzzer records the input. */
#define FUZZ_CHECK(cond)                                                              \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

/* Fixed keys: the handshake corpus is made with them and the harnesses use
 * them, so that a valid message 1 in the corpus authenticates. Any 32 bytes
 * are an X25519 private key. */
#define FUZZ_KEY(tag)                                                                 \
    {                                                                                 \
        tag, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c,  \
        0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, \
        0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f                                            \
    }
#define FUZZ_SERVER_STATIC FUZZ_KEY(0x53)
#define FUZZ_SERVER_EPHEMERAL FUZZ_KEY(0x73)
#define FUZZ_CLIENT_STATIC FUZZ_KEY(0x43)
#define FUZZ_CLIENT_EPHEMERAL FUZZ_KEY(0x63)

/* The key pair of a fixed secret. */
static inline sfl_keypair fuzz_keypair(const uint8_t priv[32])
{
    sfl_keypair kp;
    if (sfl_keypair_set(&kp, priv) != 0)
        abort();
    return kp;
}

#endif
