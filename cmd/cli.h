/* cli.h -- what every tool's main() shares, the conventions of runnel(7):
 * its name in messages, the shared options (-h, -V, -v, -q), usage errors
 * (one line, exit 2), runtime errors (exit 1), old spellings that still
 * work with a warning, option values parsed with the lib/ parsers, and
 * --metrics. Only cmd/ may print and exit. */
#ifndef RN_CLI_H
#define RN_CLI_H

#include <getopt.h>
#include <stdint.h>
#include <stdnoreturn.h>

#include "http/http.h"

extern const char *rn_prog;
extern int rn_verbose;      /* -v: counters and summaries at exit */
extern int rn_quiet;        /* -q: no warnings, unless the tool then fails */

void rn_cli_init(const char *prog);

/* getopt_long, with the usage errors of the suite: an unknown option, or
 * one without its value, is one line and exit 2 (getopt says nothing). */
int rn_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);

/* The options every tool shares, for the default: of a tool's switch:
 * -h (usage() prints the help and exits), -V, -v and -q. */
void rn_opt_common(int c, void (*usage)(void));

/* After the options: -v with -q is a usage error; the old spellings met
 * are said (one line each, with the new spelling). */
void rn_opts_done(void);

/* An old spelling that still works until the next release: said by
 * rn_opts_done, unless -q. */
void rn_deprecated(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The option old is spelt now (still works until the next release). */
void rn_old_option(const char *old, const char *now);

/* A warning: something a user should know, which does not make the exit
 * status 1 by itself. With -q it is held back (the last few), and printed
 * only if the tool then fails (rn_cli_exit, rn_die). */
void rn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* An error, printed with or without -q: the exit status will be 1. */
void rn_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* What the user asked for (SIGUSR1's counters): printed, -q or not. */
void rn_report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Said only with -v: counters, summaries. */
void rn_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* rn_error, then exit 1. */
noreturn void rn_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "PROG: what is wrong; try 'PROG --help'", then exit 2. */
noreturn void rn_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void rn_version(void);
/* main's last word: returns status, after printing, when it is not 0 and
 * -q held warnings back, those warnings. */
int rn_cli_exit(int status);

/* Option values; a bad one is a usage error naming the option. A size
 * spelt the old way ("64k") is taken, with a warning naming the new
 * spelling ("64KiB"). */
int64_t rn_opt_duration(const char *opt, const char *arg);
uint64_t rn_opt_size(const char *opt, const char *arg);
uint64_t rn_opt_uint(const char *opt, const char *arg, uint64_t max);

/* --metrics ADDR, on the tools that serve their counters to Prometheus
 * (logtail, chanbuf, brokerd, consume). The option's value, checked at once
 * (a usage error when bad). */
const char *rn_cli_metrics_opt(const char *arg);

/* Serve collect's metrics on addr from loop, saying where ("metrics on
 * http://127.0.0.1:9100/metrics"); exit 1 when it cannot listen. weak: the
 * server does not keep loop running (the tool's own loop). NULL addr: no
 * server, NULL (which rn_metrics_close and rn_metrics_free take). */
rn_metrics *rn_cli_metrics_start(uv_loop_t *loop, const char *addr, int weak,
                                 void (*collect)(void *data, rn_prom *p), void *data);

#endif
