/* The edge client: blocking sockets, one connection, one round at a time. */
#ifndef SFL_CLIENT_H
#define SFL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char host[256];
    int port;
    char server_key_path[1024]; /* server public key (pinned) */
    char key_path[1024];        /* own secret key */
    char data_dir[1024];
    uint32_t shard, of;
    int have_seed;
    uint64_t seed;              /* partition and batch order; default: the server's */
    size_t limit;               /* use only the first N training examples (0 = all) */
    char name[65];
    /* recipe overrides; 0 = as the task says */
    uint32_t epochs, batch;
    float lr;
    float momentum;
    int have_momentum;
    uint32_t inject_drift;      /* testing aid: corrupt the replica after this round (0 = never) */
    double dirichlet_alpha;     /* > 0: label-skewed partition dirichlet:ALPHA; 0 = iid */
    double reconnect_for;       /* seconds to keep reconnecting after a lost link (0 = never) */
} sfl_client_config;

/* Returns 0 when the server ends training, or negative with a message in err. */
int sfl_client_run(const sfl_client_config *cfg, char *err, size_t errlen);

#endif
