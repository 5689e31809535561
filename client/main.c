/* seedfl-client: command line; the work is in client.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <sodium.h>

#include "client.h"
#include "err.h"
#include "log.h"
#include "util.h"

static const char usage[] =
    "usage: seedfl-client --server ADDR:PORT --server-key FILE --key FILE\n"
    "                     --shard I --of N [options]\n"
    "\n"
    "Federated-learning client: trains on its own shard of the data and sends\n"
    "the server only its update, over Noise IK.\n"
    "\n"
    "  --server ADDR:PORT   server address; a host name is resolved at every connect\n"
    "  --server-key FILE    the server's public key (pinned), e.g. server.key.pub\n"
    "  --key FILE           this client's secret key (from seedfl-keygen; mode 0600)\n"
    "  --data DIR           data set folder with the train split\n"
    "                       (default /usr/share/datasets/fashion-mnist)\n"
    "  --shard I --of N     use shard I (0-based) of an N-way split of the data\n"
    "  --seed S             partition and batch-order seed (default: the server's)\n"
    "  --limit N            use only the first N training examples before splitting\n"
    "  --partition P        iid (default) or dirichlet:ALPHA: each class split among the\n"
    "                       clients by Dirichlet(ALPHA) proportions (label skew; smaller\n"
    "                       ALPHA = more skew), the same for every client from the seed\n"
    "  --epochs E           local epochs per round (default: as the server's task says)\n"
    "  --batch B            minibatch size (default: as the task says)\n"
    "  --lr LR              learning rate (default: as the task says)\n"
    "  --momentum M         SGD momentum (default: as the task says)\n"
    "  --name NAME          a name for the server's logs\n"
    "  --reconnect-for SEC  after a lost connection, keep reconnecting (exponential\n"
    "                       backoff with jitter, at most 15 s apart) for SEC seconds\n"
    "                       (default 120; 0 = never). A refused handshake, a newer\n"
    "                       session of the same key or a stopping server end it.\n"
    "  --inject-drift R     testing aid (zo mode): flip one bit of the local model after\n"
    "                       round R's replay, which the digest check must catch and\n"
    "                       repair by downloading the model\n"
    "  --log-level LEVEL    debug | info | warn | error (default info)\n"
    "  --help               this text\n"
    "Exit status: 0 when the server ended training, 1 on a failure at run time (a file\n"
    "that cannot be read included), 2 for a wrong option.\n";

/* Exit statuses: a wrong option, a failure at run time. */
enum { EXIT_USAGE = 2, EXIT_RUNTIME = 1 };

static int bad(const char *opt, const char *val, const char *what)
{
    char shown[SFL_ECHO_SIZE];
    fprintf(stderr, "seedfl-client: --%s: '%s' is not %s\n", opt,
            sfl_echo(val, shown, sizeof shown), what);
    return EXIT_USAGE;
}

/* A file name option: copied whole, or refused. */
static int set_path(char *dst, size_t cap, const char *opt, const char *val)
{
    size_t n = strlen(val);
    if (n == 0 || n >= cap) {
        char what[64];
        snprintf(what, sizeof what, "a path of 1 to %zu characters", cap - 1);
        return bad(opt, val, what);
    }
    memcpy(dst, val, n + 1);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, 0, 0}, {"server-key", required_argument, 0, 0},
        {"key", required_argument, 0, 0},    {"data", required_argument, 0, 0},
        {"shard", required_argument, 0, 0},  {"of", required_argument, 0, 0},
        {"seed", required_argument, 0, 0},   {"limit", required_argument, 0, 0},
        {"epochs", required_argument, 0, 0}, {"batch", required_argument, 0, 0},
        {"lr", required_argument, 0, 0},     {"momentum", required_argument, 0, 0},
        {"name", required_argument, 0, 0},   {"log-level", required_argument, 0, 0},
        {"inject-drift", required_argument, 0, 0}, {"reconnect-for", required_argument, 0, 0},
        {"partition", required_argument, 0, 0},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    sfl_client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.data_dir, sizeof cfg.data_dir, "/usr/share/datasets/fashion-mnist");
    cfg.reconnect_for = 120;
    int have_server = 0, have_shard = 0, have_of = 0;
    int idx, c;
    char err[512];
    opterr = 0;
    while ((c = sfl_getopt_next(argc, argv, opts, &idx, "seedfl-client")) != -1) {
        if (c == -2)
            return EXIT_USAGE;
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        const char *n = opts[idx].name;
        uint64_t u;
        double d;
        int rc;
        if (!strcmp(n, "server")) {
            if (sfl_parse_hostport(optarg, cfg.host, sizeof cfg.host, &cfg.port) < 0 ||
                cfg.port == 0)
                return bad(n, optarg, "ADDR:PORT (port 1-65535)");
            have_server = 1;
        } else if (!strcmp(n, "server-key")) {
            if ((rc = set_path(cfg.server_key_path, sizeof cfg.server_key_path, n, optarg)) != 0)
                return rc;
        } else if (!strcmp(n, "key")) {
            if ((rc = set_path(cfg.key_path, sizeof cfg.key_path, n, optarg)) != 0)
                return rc;
        } else if (!strcmp(n, "data")) {
            if ((rc = set_path(cfg.data_dir, sizeof cfg.data_dir, n, optarg)) != 0)
                return rc;
        } else if (!strcmp(n, "name")) {
            /* it is for logs: printable, so that it cannot forge or garble a line */
            size_t len = strlen(optarg);
            int printable = 1;
            for (size_t i = 0; i < len; i++)
                if ((unsigned char)optarg[i] < 0x20 || optarg[i] == 0x7f)
                    printable = 0;
            if (len == 0 || len >= sizeof cfg.name || !printable)
                return bad(n, optarg, "a name of 1 to 64 characters without control characters");
            memcpy(cfg.name, optarg, len + 1);
        } else if (!strcmp(n, "shard")) {
            if (sfl_parse_u32(optarg, 0, 1000000, &cfg.shard) < 0)
                return bad(n, optarg, "a whole number from 0 to 1000000");
            have_shard = 1;
        } else if (!strcmp(n, "of")) {
            if (sfl_parse_u32(optarg, 1, 1000000, &cfg.of) < 0)
                return bad(n, optarg, "a whole number from 1 to 1000000");
            have_of = 1;
        } else if (!strcmp(n, "seed")) {
            if (sfl_parse_u64(optarg, 0, UINT64_MAX, &cfg.seed) < 0)
                return bad(n, optarg, "a whole number");
            cfg.have_seed = 1;
        } else if (!strcmp(n, "limit")) {
            if (sfl_parse_u64(optarg, 1, 100000000, &u) < 0)
                return bad(n, optarg, "a whole number >= 1");
            cfg.limit = (size_t)u;
        } else if (!strcmp(n, "epochs")) {
            if (sfl_parse_u32(optarg, 1, 1000, &cfg.epochs) < 0)
                return bad(n, optarg, "a whole number from 1 to 1000");
        } else if (!strcmp(n, "batch")) {
            if (sfl_parse_u32(optarg, 1, 65536, &cfg.batch) < 0)
                return bad(n, optarg, "a whole number from 1 to 65536");
        } else if (!strcmp(n, "lr")) {
            if (sfl_parse_double(optarg, 1e-12, 100, &d) < 0)
                return bad(n, optarg, "a learning rate in (0, 100]");
            cfg.lr = (float)d;
        } else if (!strcmp(n, "momentum")) {
            if (sfl_parse_double(optarg, 0, 0.999, &d) < 0)
                return bad(n, optarg, "a number in [0, 0.999]");
            cfg.momentum = (float)d;
            cfg.have_momentum = 1;
        } else if (!strcmp(n, "partition")) {
            if (!strcmp(optarg, "iid")) {
                cfg.dirichlet_alpha = 0;
            } else if (strncmp(optarg, "dirichlet:", 10) != 0 ||
                       sfl_parse_double(optarg + 10, 1e-6, 1e6, &cfg.dirichlet_alpha) < 0) {
                return bad(n, optarg, "iid or dirichlet:ALPHA (ALPHA in [1e-6, 1e6])");
            }
        } else if (!strcmp(n, "reconnect-for")) {
            if (sfl_parse_double(optarg, 0, 1e6, &cfg.reconnect_for) < 0)
                return bad(n, optarg, "a number of seconds >= 0");
        } else if (!strcmp(n, "inject-drift")) {
            if (sfl_parse_u32(optarg, 1, UINT32_MAX, &cfg.inject_drift) < 0)
                return bad(n, optarg, "a round number >= 1");
        } else if (!strcmp(n, "log-level")) {
            if (sfl_log_set_level_name(optarg) < 0)
                return bad(n, optarg, "debug|info|warn|error");
        }
    }
    if (optind < argc) {
        char shown[SFL_ECHO_SIZE];
        fprintf(stderr, "seedfl-client: unexpected argument '%s'\n",
                sfl_echo(argv[optind], shown, sizeof shown));
        return EXIT_USAGE;
    }
    const char *missing = !have_server           ? "--server ADDR:PORT"
                          : !cfg.server_key_path[0] ? "--server-key FILE"
                          : !cfg.key_path[0]      ? "--key FILE"
                          : !have_shard           ? "--shard I"
                          : !have_of              ? "--of N"
                                                  : NULL;
    if (missing) {
        fprintf(stderr, "seedfl-client: %s is required (see --help)\n", missing);
        return EXIT_USAGE;
    }
    if (cfg.shard >= cfg.of) {
        fprintf(stderr, "seedfl-client: --shard %u must be below --of %u\n", cfg.shard, cfg.of);
        return EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-client: libsodium failed to initialise\n");
        return EXIT_RUNTIME;
    }
    /* one BLAS thread per client process: clients share the machine */
    openblas_set_num_threads(1);
    err[0] = 0;
    int rc = sfl_client_run(&cfg, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "seedfl-client: %s\n", err[0] ? err : sfl_strerror(rc));
        return EXIT_RUNTIME;
    }
    return 0;
}
