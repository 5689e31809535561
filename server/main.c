/* seedfl-server: command line and config file; the work is in server.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cblas.h>
#include <ini.h>
#include <sodium.h>

#include "err.h"
#include "log.h"
#include "server.h"
#include "util.h"

static const char usage[] =
    "usage: seedfl-server --key FILE (--allow FILE | --open-enrolment) [options]\n"
    "\n"
    "Federated-learning aggregation server. Clients connect over Noise IK\n"
    "(X25519, ChaCha20-Poly1305, BLAKE2b) and train the model in rounds.\n"
    "\n"
    "  --listen ADDR:PORT     address to listen on (default 127.0.0.1:7070; port 0 = any);\n"
    "                         a host name is resolved once, at start, to its first IPv4\n"
    "                         address (IPv6 when it has none)\n"
    "  --port-file FILE       write the port actually bound to FILE\n"
    "  --key FILE             server secret key (from seedfl-keygen; mode 0600)\n"
    "  --allow FILE           allow-list: one base64 client public key per line\n"
    "  --open-enrolment       admit any client key (demos only)\n"
    "  --config FILE          INI file with a [server] section of these options, one\n"
    "                         NAME = VALUE a line (open-enrolment = true); options on the\n"
    "                         command line win; relative paths in it are taken from the\n"
    "                         working directory, not from the file's folder\n"
    "  --data DIR             data set folder holding the t10k test split\n"
    "                         (default /usr/share/datasets/fashion-mnist)\n"
    "  --model SPEC           logreg | mlp:784-H1[-H2...]-10 (default mlp:784-256-10)\n"
    "  --mode MODE            upload mode: dense (FedAvg deltas) | zo (one byte per\n"
    "                         zeroth-order step on shared random directions) (default dense)\n"
    "  --rounds R             rounds to train (default 20)\n"
    "  --min-clients N        clients needed before a round opens (default 1)\n"
    "  --start-clients N      clients needed before the first round opens\n"
    "                         (default: --min-clients)\n"
    "  --wait-timeout SEC     give up when those clients are not there in time\n"
    "                         (default 60)\n"
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
    "                         more are told the server is busy and closed at once\n"
    "  --max-unauth-per-host N  the same from one host: an IPv4 address or an IPv6 /64\n"
    "                         (default 64)\n"
    "  --heartbeat-interval S liveness: a heartbeat goes out when nothing else did for S\n"
    "                         seconds (default 5); sent to clients in the welcome\n"
    "  --heartbeat-misses N   a client silent for N intervals is dropped, N >= 2\n"
    "                         (default 3)\n"
    "  --write-hwm BYTES      reading from a client pauses while it is owed more than\n"
    "                         this: replies queued plus the rest of a model download\n"
    "                         (default twice the model plus 1 MiB). A download is\n"
    "                         encrypted as the client takes it: at most 256 KiB of it\n"
    "                         (BYTES if smaller) waits in memory per client\n"
    "  --slow-timeout S       a client that stays past the mark that long is closed\n"
    "                         (default 30)\n"
    "  --seed S               run seed: initial model and data partition (default 1)\n"
    "  --eval-limit N         evaluate on the first N test images only (default all)\n"
    "  --metrics-out FILE     per-round CSV (created, or replaced when it is an\n"
    "                         earlier metrics CSV)\n"
    "  --log-level LEVEL      debug | info | warn | error (default info)\n"
    "  --help                 this text\n"
    "Exit status: 0 when training ended or on SIGTERM/SIGINT, 1 on a failure at run\n"
    "time (a file that cannot be read included), 2 for a wrong option or config value.\n";

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
    {"max-unauth-per-host", required_argument, 0, 0},
    {"heartbeat-interval", required_argument, 0, 0},
    {"heartbeat-misses", required_argument, 0, 0}, {"write-hwm", required_argument, 0, 0},
    {"slow-timeout", required_argument, 0, 0},
    {"log-level", required_argument, 0, 0},    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0}};

/* Exit statuses: a wrong option or config value, a failure at run time. */
enum { EXIT_USAGE = 2, EXIT_RUNTIME = 1 };

/* One option by name, from the command line or the config file. */
static int apply_option(sfl_server_config *cfg, const char *name, const char *value, char *err,
                        size_t errlen)
{
    char shown[SFL_ECHO_SIZE];
    if (!strcmp(name, "log-level")) {
        if (sfl_log_set_level_name(value) < 0)
            return sfl_fail(err, errlen, SFL_EINVAL,
                            "--log-level: '%s' is not debug|info|warn|error",
                            sfl_echo(value, shown, sizeof shown));
        return 0;
    }
    return sfl_server_config_set(cfg, name, value, err, errlen);
}

/* The config file is read whole (it is small) and handed to libinih a line
 * at a time by our own reader, which counts lines: libinih's handler is
 * not told the line number, and on a malformed line it is not called at
 * all, so the reader's copy lets every problem be reported once, as
 * FILE:LINE: reason. */
#define CONFIG_MAX_BYTES (1 << 20)
#define CONFIG_MAX_KEYS 64

typedef struct {
    sfl_server_config *cfg;
    const char *text;
    size_t len, pos;
    int line;              /* lines handed to libinih so far */
    int err_line;          /* the first problem we found ourselves (0 = none) */
    char err[600];
    struct {
        char name[32];
        int line;
    } seen[CONFIG_MAX_KEYS];
    int nseen;
} config_reader;

static int config_problem(config_reader *r, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int config_problem(config_reader *r, int line, const char *fmt, ...)
{
    if (r->err_line)
        return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    r->err_line = line;
    return 0;
}

/* The line's text without leading blanks (and without a UTF-8 BOM on line
 * 1, as libinih skips it), and its length without the line end. */
static const char *line_text(const char *p, size_t n, int line, size_t *len)
{
    if (line == 1 && n >= 3 && !memcmp(p, "\xef\xbb\xbf", 3)) {
        p += 3;
        n -= 3;
    }
    while (n && (*p == ' ' || *p == '\t')) {
        p++;
        n--;
    }
    while (n && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    *len = n;
    return p;
}

/* A section header, checked here because libinih reports nothing about one
 * and a key under an unknown section would be blamed on the key. */
static void check_header(config_reader *r, const char *p, size_t n)
{
    char shown[SFL_ECHO_SIZE];
    const char *close = memchr(p, ']', n);
    if (!close) {
        config_problem(r, r->line, "section header without its closing ']'");
        return;
    }
    size_t name_len = (size_t)(close - p - 1);
    for (const char *q = close + 1; q < p + n; q++) {
        if (*q == ';' || *q == '#')
            break;
        if (*q != ' ' && *q != '\t') {
            config_problem(r, r->line, "text after the section header ']'");
            return;
        }
    }
    if (name_len != 6 || memcmp(p + 1, "server", 6) != 0) {
        char name[SFL_ECHO_SIZE];
        memcpy(name, p + 1, name_len < sizeof name - 1 ? name_len : sizeof name - 1);
        name[name_len < sizeof name - 1 ? name_len : sizeof name - 1] = 0;
        config_problem(r, r->line, "unknown section [%s] (the options go under [server])",
                       sfl_echo(name, shown, sizeof shown));
    }
}

static char *config_next_line(char *str, int num, void *stream)
{
    config_reader *r = stream;
    if (r->err_line || r->pos >= r->len)
        return NULL;
    const char *p = r->text + r->pos;
    const char *nl = memchr(p, '\n', r->len - r->pos);
    size_t n = nl ? (size_t)(nl - p) + 1 : r->len - r->pos;
    r->pos += n;
    r->line++;
    /* without a BOM and leading blanks: libinih would take an indented line
     * for the continuation of the value before it */
    size_t tl;
    const char *t = line_text(p, n, r->line, &tl);
    n -= (size_t)(t - p);
    p = t;
    /* libinih's buffer holds num bytes with the line end and NUL; a longer
     * line would reach it in pieces, each counted as a line */
    if (tl + 3 > (size_t)num) {
        config_problem(r, r->line, "line longer than %d characters", num - 3);
        return NULL;
    }
    if (tl && *t == '[')
        check_header(r, t, tl);
    if (r->err_line)
        return NULL;
    memcpy(str, p, n);
    str[n] = 0;
    return str;
}

static int config_entry(void *user, const char *section, const char *name, const char *value)
{
    config_reader *r = user;
    char shown[SFL_ECHO_SIZE], hint[256], err[512];
    if (!section[0])
        return config_problem(r, r->line, "'%s' comes before any section (put it under [server])",
                              sfl_echo(name, shown, sizeof shown));
    if (strcmp(section, "server") != 0)
        return config_problem(r, r->line, "unknown section [%s]",
                              sfl_echo(section, shown, sizeof shown));
    if (!name[0])
        return config_problem(r, r->line, "no option name before the '='");
    int k = -1;
    for (int i = 0; opts[i].name; i++)
        if (!strcmp(opts[i].name, name))
            k = i;
    if (k < 0) {
        sfl_opt_suggest(opts, name, strlen(name), "", hint, sizeof hint);
        return config_problem(r, r->line, "unknown option '%s'%s",
                              sfl_echo(name, shown, sizeof shown), hint);
    }
    if (!strcmp(name, "config") || !strcmp(name, "help"))
        return config_problem(r, r->line, "'%s' is for the command line only", name);
    for (int i = 0; i < r->nseen; i++)
        if (!strcmp(r->seen[i].name, name))
            return config_problem(r, r->line, "'%s' is set twice (first on line %d)", name,
                                  r->seen[i].line);
    /* one pair of double quotes around the value is not part of it */
    char unquoted[256];
    size_t vl = strlen(value);
    if (vl && value[0] == '"') {
        if (vl < 2 || value[vl - 1] != '"')
            return config_problem(r, r->line,
                                  "%s: the value's opening '\"' has no closing one", name);
        if (vl - 2 >= sizeof unquoted)
            return config_problem(r, r->line, "%s: value longer than %zu characters", name,
                                  sizeof unquoted - 1);
        memcpy(unquoted, value + 1, vl - 2);
        unquoted[vl - 2] = 0;
        value = unquoted;
    }
    if (apply_option(r->cfg, name, value, err, sizeof err) < 0)
        return config_problem(r, r->line, "%s", err);
    if (r->nseen < CONFIG_MAX_KEYS) {
        snprintf(r->seen[r->nseen].name, sizeof r->seen[r->nseen].name, "%s", name);
        r->seen[r->nseen].line = r->line;
        r->nseen++;
    }
    return 1;
}

/* Why libinih refused line `line`, which it does not say. */
static void explain_line(config_reader *r, int line)
{
    char shown[SFL_ECHO_SIZE];
    const char *p = r->text;
    for (int i = 1; i < line && p; i++) {
        p = memchr(p, '\n', r->len - (size_t)(p - r->text));
        if (p)
            p++;
    }
    if (!p) {
        config_problem(r, line, "cannot parse this line");
        return;
    }
    const char *nl = memchr(p, '\n', r->len - (size_t)(p - r->text));
    size_t n;
    p = line_text(p, nl ? (size_t)(nl - p) : r->len - (size_t)(p - r->text), line, &n);
    if (n && *p == '[') {
        config_problem(r, line, "section header without its closing ']'");
        return;
    }
    /* libinih cuts an inline comment (" ;") before it looks for '=' */
    size_t word = 0;
    while (word < n && !(word > 0 && p[word] == ';' && (p[word - 1] == ' ' || p[word - 1] == '\t')))
        word++;
    while (word && (p[word - 1] == ' ' || p[word - 1] == '\t'))
        word--;
    char text[SFL_ECHO_SIZE];
    size_t keep = word < sizeof text - 1 ? word : sizeof text - 1;
    memcpy(text, p, keep);
    text[keep] = 0;
    config_problem(r, line, "'%s' is not NAME = VALUE (write e.g. open-enrolment = true)",
                   sfl_echo(text, shown, sizeof shown));
}

/* 0, or the exit status for a config file that cannot be read (run time)
 * or holds a wrong option (usage). */
static int read_config(const char *path, sfl_server_config *cfg)
{
    char shown[260];
    const char *p = sfl_echo(path, shown, sizeof shown);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "seedfl-server: %s: cannot read config file: %s\n", p, strerror(errno));
        return EXIT_RUNTIME;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "seedfl-server: %s: not a regular file\n", p);
        fclose(f);
        return EXIT_RUNTIME;
    }
    if (st.st_size > CONFIG_MAX_BYTES) {
        fprintf(stderr, "seedfl-server: %s: over %d bytes, too large for a config file\n", p,
                CONFIG_MAX_BYTES);
        fclose(f);
        return EXIT_USAGE;
    }
    char *text = malloc((size_t)st.st_size + 1);
    if (!text) {
        fclose(f);
        fprintf(stderr, "seedfl-server: %s: out of memory\n", p);
        return EXIT_RUNTIME;
    }
    size_t len = fread(text, 1, (size_t)st.st_size + 1, f);
    int read_err = ferror(f);
    fclose(f);
    if (read_err || len > (size_t)st.st_size) {
        fprintf(stderr, "seedfl-server: %s: cannot read config file%s\n", p,
                read_err ? "" : " (it grew while being read)");
        free(text);
        return EXIT_RUNTIME;
    }
    text[len] = 0;

    config_reader r;
    memset(&r, 0, sizeof r);
    r.cfg = cfg;
    r.text = text;
    r.len = len;
    /* not text: say so once, rather than one complaint per garbled line */
    int line = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            line++;
        } else if ((ch < 0x20 && ch != '\t' && !(ch == '\r' && text[i + 1] == '\n')) ||
                   ch == 0x7f) {
            config_problem(&r, line, "control character 0x%02x: not a text file", ch);
            break;
        }
    }
    if (!r.err_line) {
        int rc = ini_parse_stream(config_next_line, &r, config_entry, &r);
        if (rc < 0) {
            fprintf(stderr, "seedfl-server: %s: cannot parse config file (out of memory)\n", p);
            free(text);
            return EXIT_RUNTIME;
        }
        /* libinih goes on after a line it cannot parse and returns the first
         * bad line; our own record is the first we saw */
        if (rc > 0 && (!r.err_line || rc < r.err_line)) {
            r.err_line = 0;
            explain_line(&r, rc);
        }
    }
    free(text);
    if (r.err_line) {
        fprintf(stderr, "seedfl-server: %s:%d: %s\n", p, r.err_line, r.err);
        return EXIT_USAGE;
    }
    return 0;
}

/* A host name in --listen becomes the numeric address to bind, found once
 * at start. IPv4 first, so that "localhost" is 127.0.0.1 as for most
 * tools. A name that does not exist is a wrong option; a resolver that
 * cannot answer is a failure at run time. */
static int resolve_listen(sfl_server_config *cfg, int *status)
{
    unsigned char addr[sizeof(struct in6_addr)];
    char shown[SFL_ECHO_SIZE];
    if (inet_pton(AF_INET, cfg->listen_host, addr) == 1 ||
        inet_pton(AF_INET6, cfg->listen_host, addr) == 1)
        return 0;
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    int rc = getaddrinfo(cfg->listen_host, NULL, &hints, &res);
    if (rc != 0) {
        int unknown = rc == EAI_NONAME;
#ifdef EAI_NODATA
        unknown = unknown || rc == EAI_NODATA;
#endif
#ifdef EAI_ADDRFAMILY
        unknown = unknown || rc == EAI_ADDRFAMILY;
#endif
        fprintf(stderr, "seedfl-server: --listen: cannot resolve '%s': %s\n",
                sfl_echo(cfg->listen_host, shown, sizeof shown), gai_strerror(rc));
        *status = unknown ? EXIT_USAGE : EXIT_RUNTIME;
        return SFL_EINVAL;
    }
    const struct addrinfo *pick = NULL;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET && !pick)
            pick = ai;
    for (const struct addrinfo *ai = res; ai; ai = ai->ai_next)
        if (ai->ai_family == AF_INET6 && !pick)
            pick = ai;
    char host[NI_MAXHOST];
    rc = pick ? getnameinfo(pick->ai_addr, pick->ai_addrlen, host, sizeof host, NULL, 0,
                            NI_NUMERICHOST)
              : EAI_FAMILY;
    freeaddrinfo(res);
    if (rc != 0 || strlen(host) >= sizeof cfg->listen_host) {
        fprintf(stderr, "seedfl-server: --listen: '%s' has no IPv4 or IPv6 address\n",
                sfl_echo(cfg->listen_host, shown, sizeof shown));
        *status = EXIT_USAGE;
        return SFL_EINVAL;
    }
    sfl_info("listen_resolved", "name=%s addr=%s", cfg->listen_host, host);
    memcpy(cfg->listen_host, host, strlen(host) + 1);
    return 0;
}

/* One pass over the command line: every option checked and applied to
 * cfg. 0, or the exit status after a message. */
static int parse_args(int argc, char **argv, sfl_server_config *cfg, const char **config_path)
{
    char err[512];
    int idx, c;
    opterr = 0;
    optind = 0; /* glibc: start afresh, for the second pass */
    *config_path = NULL;
    while ((c = sfl_getopt_next(argc, argv, opts, &idx, "seedfl-server")) != -1) {
        if (c == -2)
            return EXIT_USAGE;
        if (c == 'h') {
            fputs(usage, stdout);
            exit(0);
        }
        const char *name = opts[idx].name;
        if (!strcmp(name, "config")) {
            if (*config_path) {
                fprintf(stderr, "seedfl-server: --config is given twice (one file only)\n");
                return EXIT_USAGE;
            }
            if (!optarg[0]) {
                fprintf(stderr, "seedfl-server: --config: the file name is empty\n");
                return EXIT_USAGE;
            }
            *config_path = optarg;
            continue;
        }
        if (apply_option(cfg, name, optarg ? optarg : "true", err, sizeof err) < 0) {
            fprintf(stderr, "seedfl-server: %s\n", err);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        char shown[SFL_ECHO_SIZE];
        fprintf(stderr, "seedfl-server: unexpected argument '%s'\n",
                sfl_echo(argv[optind], shown, sizeof shown));
        return EXIT_USAGE;
    }
    return 0;
}

int main(int argc, char **argv)
{
    sfl_server_config cfg, check;
    char err[512];
    const char *config_path;
    /* the command line first, on a scratch config, so that a wrong option
     * is reported before any file is opened; then the config file, then
     * the command line again, so that its options win */
    sfl_server_config_defaults(&check);
    int status = parse_args(argc, argv, &check, &config_path);
    if (status)
        return status;
    sfl_server_config_defaults(&cfg);
    if (config_path && (status = read_config(config_path, &cfg)) != 0)
        return status;
    if ((status = parse_args(argc, argv, &cfg, &config_path)) != 0)
        return status;
    sfl_server_config_finish(&cfg);
    if (sfl_server_config_check(&cfg, err, sizeof err) < 0) {
        fprintf(stderr, "seedfl-server: %s\n", err);
        return EXIT_USAGE;
    }
    if (!cfg.key_path[0]) {
        fprintf(stderr, "seedfl-server: --key FILE is required (make one with seedfl-keygen)\n");
        return EXIT_USAGE;
    }
    if (cfg.open_enrolment && cfg.allow_path[0]) {
        fprintf(stderr, "seedfl-server: --allow and --open-enrolment are alternatives: give one "
                        "(on the command line or in the config file)\n");
        return EXIT_USAGE;
    }
    if (!cfg.open_enrolment && !cfg.allow_path[0]) {
        fprintf(stderr, "seedfl-server: no --allow list given (use --open-enrolment to admit "
                        "any key)\n");
        return EXIT_USAGE;
    }
    if (resolve_listen(&cfg, &status) < 0)
        return status;
    if (sodium_init() < 0) {
        fprintf(stderr, "seedfl-server: libsodium failed to initialise\n");
        return EXIT_RUNTIME;
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
    err[0] = 0;
    int rc = sfl_server_run(&cfg, err, sizeof err);
    if (rc == SFL_ECLOSED) {
        fprintf(stderr, "seedfl-server: %s\n", err);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "seedfl-server: %s\n", err[0] ? err : sfl_strerror(rc));
        return EXIT_RUNTIME;
    }
    return 0;
}
