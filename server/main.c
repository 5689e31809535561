/* seedfl-server: command line and config file; the work is in server.c. */
#include <getopt.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <ini.h>
#include <sodium.h>

#include "err.h"
#include "log.h"
#include "server.h"

static const char usage[] =
    "usage: seedfl-server --key FILE (--allow FILE | --open-enrolment) [options]\n"
    "\n"
    "Federated-learning aggregation server. Clients connect over Noise IK\n"
    "(X25519, ChaCha20-Poly1305, BLAKE2b) and train the model in rounds.\n"
    "\n"
    "  --listen ADDR:PORT     address to listen on (default 127.0.0.1:7070; port 0 = any)\n"
    "  --port-file FILE       write the port actually bound to FILE\n"
    "  --key FILE             server secret key (from seedfl-keygen; mode 0600)\n"
    "  --allow FILE           allow-list: one base64 client public key per line\n"
    "  --open-enrolment       admit any client key (demos only)\n"
    "  --config FILE          INI file with a [server] section of these options\n"
    "  --data DIR             data set folder holding the t10k test split\n"
    "                         (default /usr/share/datasets/fashion-mnist)\n"
    "  --model SPEC           logreg | mlp:784-H1[-H2...]-10 (default mlp:784-256-10)\n"
    "  --mode MODE            upload mode: dense (FedAvg deltas) | zo (one byte per\n"
    "                         zeroth-order step on shared random directions) (default dense)\n"
    "  --rounds R             rounds to train (default 20)\n"
    "  --min-clients N        clients needed before a round opens (default 1)\n"
    "  --start-clients N      clients needed before the first round opens\n"
    "                         (default: --min-clients)\n"
    "  --wait-timeout SEC     give up when min-clients are not there in time (default 60)\n"
    "  --round-timeout SEC    deadline of a round after its task is sent (default 120)\n"
    "  --quorum Q             updates needed by the deadline: a count, or a fraction of\n"
    "                         the cohort such as 0.5 (default 0.5)\n"
    "  --retries N            extra attempts of a round that missed its quorum (default 2)\n"
    "  --aggregate RULE       weighted (by sample count, default) | mean\n"
    "  --max-samples N        largest sample count a client may claim (default 1000000000)\n"
    "  --epochs E --batch B --lr LR --momentum M\n"
    "                         local training recipe sent with each task\n"
    "                         (defaults 4, 32, 0.02, 0.9)\n"
    "  zo mode (defaults there: --model logreg --rounds 100 --lr 0.002 --batch 64):\n"
    "  --zo-variant V         pool (seeds from a pool of K) | derived (default pool)\n"
    "  --pool-size K          seeds in the pool, 1..65536 (default 4096)\n"
    "  --local-steps TAU      zeroth-order steps per client per round (default 200)\n"
    "  --eps EPS              perturbation size (default 0.001)\n"
    "  --zo-scale S           quantization step of round 1; later rounds adapt it\n"
    "                         (default 0.05)\n"
    "  --cohort C             clients per round: all (default), a count, or a fraction\n"
    "                         such as 0.5, sampled reproducibly from the run seed\n"
    "  --handshake-timeout S  seconds from connect to a finished handshake (default 5)\n"
    "  --max-unauth N         connections not yet authenticated, at most (default 1024);\n"
    "                         more are closed at once\n"
    "  --heartbeat-interval S liveness: a heartbeat goes out when nothing else did for S\n"
    "                         seconds (default 5); sent to clients in the welcome\n"
    "  --heartbeat-misses N   a client silent for N intervals is dropped (default 3)\n"
    "  --write-hwm BYTES      bytes queued to one client before reading from it pauses\n"
    "                         (default twice the model plus 1 MiB)\n"
    "  --slow-timeout S       a client that stays past the mark that long is closed\n"
    "                         (default 30)\n"
    "  --seed S               run seed: initial model and data partition (default 1)\n"
    "  --eval-limit N         evaluate on the first N test images only (default all)\n"
    "  --metrics-out FILE     per-round CSV (created or truncated)\n"
    "  --log-level LEVEL      debug | info | warn | error (default info)\n"
    "  --help                 this text\n";

static int config_line(void *user, const char *section, const char *name, const char *value)
{
    char err[256];
    if (strcmp(section, "server") != 0) {
        fprintf(stderr, "seedfl-server: config: unknown section [%s]\n", section);
        return 0;
    }
    if (!strcmp(name, "log-level")) {
        if (sfl_log_set_level_name(value) < 0) {
            fprintf(stderr, "seedfl-server: config: log-level '%s' is not debug|info|warn|error\n",
                    value);
            return 0;
        }
        return 1;
    }
    if (sfl_server_config_set(user, name, value, err, sizeof err) < 0) {
        fprintf(stderr, "seedfl-server: config: %s\n", err);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 0},       {"port-file", required_argument, 0, 0},
        {"key", required_argument, 0, 0},          {"allow", required_argument, 0, 0},
        {"open-enrolment", no_argument, 0, 0},     {"config", required_argument, 0, 0},
        {"data", required_argument, 0, 0},         {"model", required_argument, 0, 0},
        {"mode", required_argument, 0, 0},         {"rounds", required_argument, 0, 0},
        {"min-clients", required_argument, 0, 0},  {"wait-timeout", required_argument, 0, 0},
        {"start-clients", required_argument, 0, 0},
        {"round-timeout", required_argument, 0, 0},{"quorum", required_argument, 0, 0},
        {"retries", required_argument, 0, 0},      {"aggregate", required_argument, 0, 0},
        {"max-samples", required_argument, 0, 0},  {"epochs", required_argument, 0, 0},
        {"batch", required_argument, 0, 0},        {"lr", required_argument, 0, 0},
        {"momentum", required_argument, 0, 0},     {"seed", required_argument, 0, 0},
        {"eval-limit", required_argument, 0, 0},   {"metrics-out", required_argument, 0, 0},
        {"zo-variant", required_argument, 0, 0},   {"pool-size", required_argument, 0, 0},
        {"local-steps", required_argument, 0, 0},  {"eps", required_argument, 0, 0},
        {"zo-scale", required_argument, 0, 0},     {"cohort", required_argument, 0, 0},
        {"handshake-timeout", required_argument, 0, 0}, {"max-unauth", required_argument, 0, 0},
        {"heartbeat-interval", required_argument, 0, 0},
        {"heartbeat-misses", required_argument, 0, 0}, {"write-hwm", required_argument, 0, 0},
        {"slow-timeout", required_argument, 0, 0},
        {"log-level", required_argument, 0, 0},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    sfl_server_config cfg;
    char err[512];
    sfl_server_config_defaults(&cfg);

    /* the config file first, so that command-line options override it */
    for (int i = 1; i < argc; i++) {
        const char *path = NULL;
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            path = argv[i + 1];
        else if (!strncmp(argv[i], "--config=", 9))
            path = argv[i] + 9;
        if (path) {
            int rc = ini_parse(path, config_line, &cfg);
            if (rc < 0) {
                fprintf(stderr, "seedfl-server: %s: cannot read config file\n", path);
                return 2;
            }
            if (rc > 0) {
                fprintf(stderr, "seedfl-server: %s: error on line %d\n", path, rc);
                return 2;
            }
        }
    }
    int idx = 0, c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        if (c == 'h') {
            fputs(usage, stdout);
            return 0;
        }
        if (c == '?') {
            if (optopt)
                fprintf(stderr, "seedfl-server: option -%c is not known\n", optopt);
            else
                fprintf(stderr, "seedfl-server: option '%s' is not known or lacks its value\n",
                        argv[optind - 1]);
            fprintf(stderr, "try 'seedfl-server --help'\n");
            return 2;
        }
        const char *name = opts[idx].name;
        if (!strcmp(name, "config"))
            continue;
        if (!strcmp(name, "log-level")) {
            if (sfl_log_set_level_name(optarg) < 0) {
                fprintf(stderr, "seedfl-server: --log-level: '%s' is not debug|info|warn|error\n",
                        optarg);
                return 2;
            }
            continue;
        }
        if (sfl_server_config_set(&cfg, name, optarg ? optarg : "true", err, sizeof err) < 0) {
            fprintf(stderr, "seedfl-server: %s\n", err);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "seedfl-server: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    sfl_server_config_finish(&cfg);
    if (!cfg.key_path[0]) {
        fprintf(stderr, "seedfl-server: --key FILE is required (make one with seedfl-keygen)\n");
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-server: libsodium failed to initialise\n");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* every session is a descriptor: take all the kernel allows */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            sfl_info("open_files", "limit=%llu was=%llu", (unsigned long long)rl.rlim_cur,
                     (unsigned long long)was);
    }
    /* the loop thread only moves bytes; one BLAS thread for evaluation */
    openblas_set_num_threads(1);
    int rc = sfl_server_run(&cfg, err, sizeof err);
    if (rc == SFL_ECLOSED) {
        fprintf(stderr, "seedfl-server: %s\n", err);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "seedfl-server: %s\n", err[0] ? err : sfl_strerror(rc));
        return 1;
    }
    return 0;
}
