/* cli.h -- what every tool's main() shares: its name in messages, --help and
 * --version, usage errors (exit 2), runtime errors (exit 1), and option values
 * parsed with the lib/ parsers. Only cmd/ may print and exit. */
#ifndef RN_CLI_H
#define RN_CLI_H

#include <stdint.h>
#include <stdnoreturn.h>

extern const char *rn_prog;

void rn_cli_init(const char *prog);
void rn_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void rn_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void rn_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void rn_version(void);

/* Option values; a bad one is a usage error naming the option. */
int64_t rn_opt_duration(const char *opt, const char *arg);
uint64_t rn_opt_size(const char *opt, const char *arg);
uint64_t rn_opt_uint(const char *opt, const char *arg, uint64_t max);

#endif
