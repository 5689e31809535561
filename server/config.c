#include <stdio.h>
#include <string.h>

#include "err.h"
#include "model.h"
#include "server.h"
#include "util.h"

void sfl_server_config_defaults(sfl_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen_host, sizeof cfg->listen_host, "127.0.0.1");
    cfg->listen_port = 7070;
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "/usr/share/datasets/fashion-mnist");
    snprintf(cfg->model_spec, sizeof cfg->model_spec, "mlp:784-256-10");
    snprintf(cfg->mode, sizeof cfg->mode, "dense");
    cfg->rounds = 20;
    cfg->min_clients = 1;
    cfg->quorum = 0.5;
    cfg->retries = 2;
    cfg->wait_timeout = 60;
    cfg->round_timeout = 120;
    cfg->seed = 1;
    cfg->max_samples = 1000000000ULL;
    cfg->rule = SFL_AGG_WEIGHTED;
    cfg->epochs = 4;
    cfg->batch = 32;
    cfg->lr = 0.02f;
    cfg->momentum = 0.9f;
    cfg->zo_variant = SFL_ZO_POOL;
    cfg->pool_size = 4096;
    cfg->local_steps = 200;
    cfg->eps = 1e-3f;
    cfg->zo_scale = 0.05f;
    cfg->handshake_timeout = 5;
    cfg->max_unauth = 1024;
    cfg->max_unauth_per_host = 64;
    cfg->heartbeat_interval = 5;
    cfg->heartbeat_misses = 3;
    cfg->slow_timeout = 30;
}

void sfl_server_config_finish(sfl_server_config *cfg)
{
    if (strcmp(cfg->mode, "zo") != 0)
        return;
    if (!(cfg->set & SFL_SET_MODEL))
        snprintf(cfg->model_spec, sizeof cfg->model_spec, "logreg");
    if (!(cfg->set & SFL_SET_ROUNDS))
        cfg->rounds = 100;
    if (!(cfg->set & SFL_SET_LR))
        cfg->lr = 0.002f;
    if (!(cfg->set & SFL_SET_BATCH))
        cfg->batch = 64;
}

static int copy_str(char *dst, size_t cap, const char *v, const char *name, char *err,
                    size_t errlen)
{
    size_t n = strlen(v);
    if (n == 0 || n >= cap) {
        snprintf(err, errlen, "--%s: value must be 1 to %zu characters", name, cap - 1);
        return SFL_EINVAL;
    }
    memcpy(dst, v, n + 1);
    return 0;
}

int sfl_server_config_set(sfl_server_config *cfg, const char *name, const char *v, char *err,
                          size_t errlen)
{
    double d;
    uint64_t u;
    char shown[SFL_ECHO_SIZE];
#define BAD(what)                                                                                  \
    do {                                                                                           \
        snprintf(err, errlen, "--%s: '%s' is not %s", name, sfl_echo(v, shown, sizeof shown),      \
                 what);                                                                            \
        return SFL_EINVAL;                                                                         \
    } while (0)
    if (!strcmp(name, "listen")) {
        if (sfl_parse_hostport(v, cfg->listen_host, sizeof cfg->listen_host, &cfg->listen_port) < 0)
            BAD("ADDR:PORT (port 0-65535)");
    } else if (!strcmp(name, "port-file")) {
        return copy_str(cfg->port_file, sizeof cfg->port_file, v, name, err, errlen);
    } else if (!strcmp(name, "key")) {
        return copy_str(cfg->key_path, sizeof cfg->key_path, v, name, err, errlen);
    } else if (!strcmp(name, "allow")) {
        return copy_str(cfg->allow_path, sizeof cfg->allow_path, v, name, err, errlen);
    } else if (!strcmp(name, "open-enrolment")) {
        if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes"))
            cfg->open_enrolment = 1;
        else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no"))
            cfg->open_enrolment = 0;
        else
            BAD("true or false");
    } else if (!strcmp(name, "data")) {
        return copy_str(cfg->data_dir, sizeof cfg->data_dir, v, name, err, errlen);
    } else if (!strcmp(name, "model")) {
        /* a spec the model code refuses is a wrong option, found now rather
         * than after the keys and the data are loaded */
        sfl_model m;
        int rc = copy_str(cfg->model_spec, sizeof cfg->model_spec, v, name, err, errlen);
        if (rc < 0)
            return rc;
        char why[256];
        rc = sfl_model_create(&m, v, why, sizeof why);
        if (rc == 0)
            sfl_model_free(&m);
        /* out of memory is for the run to report, with the spec valid */
        if (rc < 0 && rc != SFL_ENOMEM) {
            snprintf(err, errlen, "--model: %s", why);
            return SFL_EINVAL;
        }
        cfg->set |= SFL_SET_MODEL;
    } else if (!strcmp(name, "metrics-out")) {
        return copy_str(cfg->metrics_path, sizeof cfg->metrics_path, v, name, err, errlen);
    } else if (!strcmp(name, "mode")) {
        if (strcmp(v, "dense") != 0 && strcmp(v, "zo") != 0)
            BAD("a supported mode (dense or zo)");
        snprintf(cfg->mode, sizeof cfg->mode, "%s", v);
    } else if (!strcmp(name, "rounds")) {
        if (sfl_parse_u32(v, 1, 1000000, &cfg->rounds) < 0)
            BAD("a whole number from 1 to 1000000");
        cfg->set |= SFL_SET_ROUNDS;
    } else if (!strcmp(name, "min-clients")) {
        if (sfl_parse_u32(v, 1, 1000000, &cfg->min_clients) < 0)
            BAD("a whole number from 1 to 1000000");
    } else if (!strcmp(name, "start-clients")) {
        if (sfl_parse_u32(v, 1, 1000000, &cfg->start_clients) < 0)
            BAD("a whole number from 1 to 1000000");
    } else if (!strcmp(name, "quorum")) {
        if (sfl_parse_double(v, 1e-9, 1000000, &d) < 0 || (d > 1 && d != (double)(uint64_t)d))
            BAD("a fraction in (0, 1] or a whole number of updates");
        cfg->quorum = d == 1.0 && strchr(v, '.') ? 0.999999999 : d;
    } else if (!strcmp(name, "retries")) {
        if (sfl_parse_u32(v, 0, 1000, &cfg->retries) < 0)
            BAD("a whole number from 0 to 1000");
    } else if (!strcmp(name, "wait-timeout")) {
        if (sfl_parse_double(v, 0.001, 1e6, &cfg->wait_timeout) < 0)
            BAD("a number of seconds > 0");
    } else if (!strcmp(name, "round-timeout")) {
        if (sfl_parse_double(v, 0.001, 1e6, &cfg->round_timeout) < 0)
            BAD("a number of seconds > 0");
    } else if (!strcmp(name, "seed")) {
        if (sfl_parse_u64(v, 0, UINT64_MAX, &cfg->seed) < 0)
            BAD("a whole number");
    } else if (!strcmp(name, "max-samples")) {
        if (sfl_parse_u64(v, 1, UINT64_MAX, &cfg->max_samples) < 0)
            BAD("a whole number >= 1");
    } else if (!strcmp(name, "aggregate")) {
        if (!strcmp(v, "weighted"))
            cfg->rule = SFL_AGG_WEIGHTED;
        else if (!strcmp(v, "mean"))
            cfg->rule = SFL_AGG_MEAN;
        else
            BAD("weighted or mean");
    } else if (!strcmp(name, "epochs")) {
        if (sfl_parse_u32(v, 1, 1000, &cfg->epochs) < 0)
            BAD("a whole number from 1 to 1000");
    } else if (!strcmp(name, "batch")) {
        if (sfl_parse_u32(v, 1, 65536, &cfg->batch) < 0)
            BAD("a whole number from 1 to 65536");
        cfg->set |= SFL_SET_BATCH;
    } else if (!strcmp(name, "lr")) {
        if (sfl_parse_double(v, 1e-12, 100, &d) < 0)
            BAD("a learning rate in (0, 100]");
        cfg->lr = (float)d;
        cfg->set |= SFL_SET_LR;
    } else if (!strcmp(name, "momentum")) {
        if (sfl_parse_double(v, 0, 0.999, &d) < 0)
            BAD("a number in [0, 0.999]");
        cfg->momentum = (float)d;
    } else if (!strcmp(name, "zo-variant")) {
        if (!strcmp(v, "pool"))
            cfg->zo_variant = SFL_ZO_POOL;
        else if (!strcmp(v, "derived"))
            cfg->zo_variant = SFL_ZO_DERIVED;
        else
            BAD("pool or derived");
    } else if (!strcmp(name, "pool-size")) {
        if (sfl_parse_u32(v, 1, SFL_ZO_POOL_MAX, &cfg->pool_size) < 0)
            BAD("a pool size from 1 to 65536");
    } else if (!strcmp(name, "local-steps")) {
        if (sfl_parse_u32(v, 1, SFL_ZO_STEPS_MAX, &cfg->local_steps) < 0)
            BAD("a whole number of steps from 1 to 20000");
    } else if (!strcmp(name, "eps")) {
        if (sfl_parse_double(v, 1e-9, 10, &d) < 0)
            BAD("a perturbation size in [1e-9, 10]");
        cfg->eps = (float)d;
    } else if (!strcmp(name, "zo-scale")) {
        if (sfl_parse_double(v, 1e-12, 1e6, &d) < 0)
            BAD("a quantization step in [1e-12, 1e6]");
        cfg->zo_scale = (float)d;
    } else if (!strcmp(name, "cohort")) {
        /* like --quorum: "1" is one client, "1.0" (or "all") every client */
        if (!strcmp(v, "all"))
            d = 0;
        else if (sfl_parse_double(v, 1e-9, 1000000, &d) < 0 ||
                 (d > 1 && d != (double)(uint64_t)d))
            BAD("all, a fraction in (0, 1] or a whole number of clients");
        else if (d == 1.0 && strchr(v, '.'))
            d = 0;
        cfg->cohort = d;
    } else if (!strcmp(name, "handshake-timeout")) {
        if (sfl_parse_double(v, 0.01, 3600, &cfg->handshake_timeout) < 0)
            BAD("a number of seconds in [0.01, 3600]");
    } else if (!strcmp(name, "max-unauth")) {
        if (sfl_parse_u32(v, 1, 1000000, &cfg->max_unauth) < 0)
            BAD("a whole number from 1 to 1000000");
    } else if (!strcmp(name, "max-unauth-per-host")) {
        if (sfl_parse_u32(v, 1, 1000000, &cfg->max_unauth_per_host) < 0)
            BAD("a whole number from 1 to 1000000");
    } else if (!strcmp(name, "heartbeat-interval")) {
        if (sfl_parse_double(v, 0.05, 3600, &cfg->heartbeat_interval) < 0)
            BAD("a number of seconds in [0.05, 3600]");
    } else if (!strcmp(name, "heartbeat-misses")) {
        /* a heartbeat goes out after a whole interval of silence, so a
         * deadline of one interval would always be missed */
        if (sfl_parse_u32(v, 2, 1000, &cfg->heartbeat_misses) < 0)
            BAD("a whole number from 2 to 1000");
    } else if (!strcmp(name, "write-hwm")) {
        if (sfl_parse_u64(v, 65536, (uint64_t)1 << 40, &cfg->write_hwm) < 0)
            BAD("a number of bytes >= 65536");
    } else if (!strcmp(name, "slow-timeout")) {
        if (sfl_parse_double(v, 0.01, 1e6, &cfg->slow_timeout) < 0)
            BAD("a number of seconds > 0");
    } else if (!strcmp(name, "eval-limit")) {
        if (sfl_parse_u64(v, 1, 100000000, &u) < 0)
            BAD("a whole number >= 1");
        cfg->eval_limit = (size_t)u;
    } else {
        snprintf(err, errlen, "unknown option '%s'", name);
        return SFL_EINVAL;
    }
#undef BAD
    return 0;
}

int sfl_server_config_check(const sfl_server_config *cfg, char *err, size_t errlen)
{
    if (cfg->quorum >= 1 && cfg->cohort >= 1 && cfg->cohort < cfg->quorum) {
        snprintf(err, errlen, "--cohort %.0f is smaller than --quorum %.0f: no round could ever "
                 "reach its quorum", cfg->cohort, cfg->quorum);
        return SFL_EINVAL;
    }
    return 0;
}
