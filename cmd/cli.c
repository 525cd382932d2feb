/* cli.c -- messages, exits, option parsing and --metrics, shared by every
 * tool's main(). */
#include "cli.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

const char *rn_prog = "runnel";
int rn_verbose, rn_quiet;

/* Warnings held back by -q, the last HELD of them, for a failure. Some
 * come from other threads (chanbuf's sinks): the lock keeps the ring whole. */
#define HELD 8
#define MSGLEN 512
static char held[HELD][MSGLEN];
static unsigned nheld;          /* held so far; the slot is nheld % HELD */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

/* Old spellings met while parsing the options, said after them. */
#define OLD 16
static char old[OLD][MSGLEN];
static unsigned nold;

void rn_cli_init(const char *prog) { rn_prog = prog; }

static void vmsg(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", rn_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void flush_held(void)
{
    pthread_mutex_lock(&held_lock);
    unsigned first = nheld > HELD ? nheld - HELD : 0;
    if (first)
        fprintf(stderr, "%s: (%u earlier warnings not kept)\n", rn_prog, first);
    for (unsigned i = first; i < nheld; i++)
        fprintf(stderr, "%s: %s\n", rn_prog, held[i % HELD]);
    nheld = 0;
    pthread_mutex_unlock(&held_lock);
}

void rn_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (rn_quiet) {
        pthread_mutex_lock(&held_lock);
        vsnprintf(held[nheld++ % HELD], MSGLEN, fmt, ap);
        pthread_mutex_unlock(&held_lock);
    } else {
        vmsg(fmt, ap);
    }
    va_end(ap);
}

void rn_error(const char *fmt, ...)
{
    va_list ap;
    flush_held();
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void rn_report(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void rn_info(const char *fmt, ...)
{
    va_list ap;
    if (!rn_verbose)
        return;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void rn_die(const char *fmt, ...)
{
    va_list ap;
    flush_held();
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void rn_usage_error(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", rn_prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "; try '%s --help'\n", rn_prog);
    exit(2);
}

void rn_version(void)
{
    printf("%s (runnel) %s\n", rn_prog, PACKAGE_VERSION);
    exit(0);
}

int rn_cli_exit(int status)
{
    if (status)
        flush_held();
    return status;
}

int rn_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts)
{
    char opts[128];

    /* A leading ':' tells a missing value apart from an unknown option. */
    snprintf(opts, sizeof opts, ":%s", shortopts);
    opterr = 0;
    int c = getopt_long(argc, argv, opts, longopts, NULL);
    if (c != '?' && c != ':')
        return c;
    /* A long option is argv[optind - 1] ("--name" or "--name=value"); a
     * short one only optopt (it may be inside a bundle, "-vz"). */
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
    int is_long = strncmp(arg, "--", 2) == 0
                  && (optopt == 0 || optopt >= 256 || strchr(shortopts, optopt)
                      || c == ':');
    int n = (int)strcspn(arg, "=");
    if (c == ':') {
        if (is_long)
            rn_usage_error("option '%.*s' needs a value", n, arg);
        rn_usage_error("option '-%c' needs a value", optopt);
    }
    if (!is_long)
        rn_usage_error("unknown option '-%c'", optopt);
    if (optopt)
        rn_usage_error("option '%.*s' takes no value", n, arg);
    /* A prefix of two or more long options is ambiguous, not unknown. */
    int matches = 0;
    for (const struct option *o = longopts; o->name; o++)
        matches += strncmp(o->name, arg + 2, (size_t)n - 2) == 0;
    if (matches > 1)
        rn_usage_error("option '%.*s' is ambiguous", n, arg);
    rn_usage_error("unknown option '%.*s'", n, arg);
}

void rn_opt_common(int c, void (*usage)(void))
{
    switch (c) {
    case 'h': usage(); exit(0);
    case 'V': rn_version();
    case 'v': rn_verbose = 1; return;
    case 'q': rn_quiet = 1; return;
    }
    rn_usage_error("unknown option");      /* an option in longopts but not in the switch */
}

void rn_deprecated(const char *fmt, ...)
{
    va_list ap;
    if (nold == OLD)
        return;
    va_start(ap, fmt);
    vsnprintf(old[nold++], MSGLEN, fmt, ap);
    va_end(ap);
}

void rn_old_option(const char *was, const char *now)
{
    rn_deprecated("%s is an old spelling that goes in the next release; write %s", was, now);
}

void rn_opts_done(void)
{
    if (rn_verbose && rn_quiet)
        rn_usage_error("cannot use -v with -q");
    for (unsigned i = 0; i < nold; i++)
        rn_warn("%s", old[i]);
    nold = 0;
}

int64_t rn_opt_duration(const char *opt, const char *arg)
{
    char err[RN_ERRLEN];
    int64_t ns;
    if (rn_parse_duration(arg, &ns, err) < 0)
        rn_usage_error("%s: %s", opt, err);
    return ns;
}

uint64_t rn_opt_size(const char *opt, const char *arg)
{
    char err[RN_ERRLEN];
    uint64_t v;
    int r = rn_parse_size(arg, &v, err);
    if (r < 0)
        rn_usage_error("%s: %s", opt, err);
    if (r == RN_SIZE_OLD)
        rn_deprecated("%s %s: a size's unit ends in B now; write %s (%s goes in the next "
                      "release)", opt, arg, err, arg);
    return v;
}

uint64_t rn_opt_uint(const char *opt, const char *arg, uint64_t max)
{
    char err[RN_ERRLEN];
    uint64_t v;
    if (rn_parse_uint(arg, max, &v, err) < 0)
        rn_usage_error("%s: %s", opt, err);
    return v;
}

static void metrics_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

const char *rn_cli_metrics_opt(const char *arg)
{
    char err[RN_ERRLEN], host[256];
    int port;
    if (rn_http_addr_parse(arg, host, sizeof host, &port, err) < 0)
        rn_usage_error("--metrics: %s", err);
    return arg;
}

rn_metrics *rn_cli_metrics_start(uv_loop_t *loop, const char *addr, int weak,
                                 void (*collect)(void *data, rn_prom *p), void *data)
{
    char err[RN_ERRLEN];
    rn_metrics_opts o = { .weak = weak, .collect = collect, .on_warn = metrics_warn,
                          .data = data };
    char host[256];
    int port = 0;
    rn_metrics *m;

    if (!addr)
        return NULL;
    if (!(m = rn_metrics_new(loop, &o, err)) || rn_metrics_listen(m, addr, err) < 0)
        rn_die("%s", err);      /* "metrics: listen on ADDR: why" */
    /* Said when it cannot be known otherwise (port 0) or asked for (-v):
     * silent on success. */
    if (rn_verbose || (rn_http_addr_parse(addr, host, sizeof host, &port, err) == 0 && port == 0))
        rn_warn("metrics on http://%s/metrics", rn_metrics_address(m));
    return m;
}
