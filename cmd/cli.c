/* cli.c -- messages, exits and option parsing shared by every tool's main(). */
#include "cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/core.h"

#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

const char *rn_prog = "runnel";

void rn_cli_init(const char *prog) { rn_prog = prog; }

static void vmsg(const char *fmt, va_list ap)
{
    fprintf(stderr, "%s: ", rn_prog);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void rn_warn(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
}

void rn_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    exit(1);
}

void rn_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try '%s --help' for more information.\n", rn_prog);
    exit(2);
}

void rn_version(void)
{
    printf("%s (runnel) %s\n", rn_prog, PACKAGE_VERSION);
    exit(0);
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
    if (rn_parse_size(arg, &v, err) < 0)
        rn_usage_error("%s: %s", opt, err);
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
