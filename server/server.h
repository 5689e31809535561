/* The aggregation server: one libuv loop owns every socket and the round
 * state machine; aggregation and evaluation run on the libuv work queue. */
#ifndef SFL_SERVER_H
#define SFL_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "agg.h"

typedef struct {
    char listen_host[256];
    int listen_port;              /* 0 = any free port */
    char port_file[1024];
    char key_path[1024];          /* server secret key */
    char allow_path[1024];        /* allow-list; empty with open_enrolment */
    int open_enrolment;
    char data_dir[1024];          /* holds the test split for evaluation */
    char model_spec[128];
    char metrics_path[1024];
    char mode[16];                /* "dense" or "zo" */
    uint32_t rounds;
    uint32_t min_clients;         /* ready clients needed before a round opens */
    uint32_t start_clients;       /* the same for round 1 (0 = min_clients) */
    double quorum;                /* >= 1: a count; in (0, 1): a fraction of the cohort */
    uint32_t retries;             /* extra attempts of a round that missed its quorum */
    double wait_timeout;          /* seconds to wait for min_clients */
    double round_timeout;         /* seconds from task to deadline */
    uint64_t seed;
    uint64_t max_samples;
    enum sfl_agg_rule rule;
    /* the training recipe sent with every task */
    uint32_t epochs, batch;
    float lr, momentum;
    size_t eval_limit;            /* 0 = the whole test split */
    /* zo mode */
    enum sfl_zo_variant zo_variant;
    uint32_t pool_size;           /* K */
    uint32_t local_steps;         /* tau */
    float eps;                    /* perturbation size */
    float zo_scale;               /* quantization step of round 1 */
    /* sessions */
    double cohort;                /* 0 = every ready client; < 1 a fraction; >= 1 a count */
    double handshake_timeout;     /* seconds from accept to a finished handshake and Hello */
    uint32_t max_unauth;          /* connections not yet authenticated, at most */
    uint32_t max_unauth_per_host; /* the same from one host (IPv4 address, IPv6 /64) */
    double heartbeat_interval;    /* seconds */
    uint32_t heartbeat_misses;    /* silent intervals before a client is dropped */
    uint64_t write_hwm;           /* bytes owed to one peer (queued, and the rest of a
                                     model download) past which reading from it stops
                                     (0 = twice the model plus 1 MiB) */
    double slow_timeout;          /* seconds a peer may stay over the high-water mark */
    unsigned set;                 /* SFL_SET_* bits: options given explicitly */
} sfl_server_config;

#define SFL_SET_MODEL 1u
#define SFL_SET_ROUNDS 2u
#define SFL_SET_LR 4u
#define SFL_SET_BATCH 8u

/* Defaults for every option. */
void sfl_server_config_defaults(sfl_server_config *cfg);
/* Set one option by its long name (as on the command line or in the
 * [server] section of the config file). Returns 0, or SFL_EINVAL with a
 * message in err. */
int sfl_server_config_set(sfl_server_config *cfg, const char *name, const char *value,
                          char *err, size_t errlen);
/* After every option is set: the mode's defaults for the options not given
 * (zo: model logreg, 100 rounds, lr 0.002, batch 64). */
void sfl_server_config_finish(sfl_server_config *cfg);
/* Options that contradict each other: SFL_EINVAL with a message. */
int sfl_server_config_check(const sfl_server_config *cfg, char *err, size_t errlen);
/* Run until training is over (0) or fails (negative; the reason is logged
 * and copied into err). */
int sfl_server_run(const sfl_server_config *cfg, char *err, size_t errlen);

#endif
