/* counters.h -- named event counters a tool reports on SIGUSR1 and at exit.
 *
 * A tool declares its counters once (rn_counter_add returns a pointer it then
 * increments directly: no lookup on the hot path) and asks for the line
 * "name=value name=value ..." when it is time to print it. */
#ifndef RN_COUNTERS_H
#define RN_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#define RN_MAX_COUNTERS 32

typedef struct rn_counters {
    size_t n;
    const char *name[RN_MAX_COUNTERS];
    uint64_t value[RN_MAX_COUNTERS];
} rn_counters;

/* Register a counter (name is not copied). NULL when the table is full. */
uint64_t *rn_counter_add(rn_counters *cs, const char *name);

/* The value of a registered counter, or 0. */
uint64_t rn_counter_get(const rn_counters *cs, const char *name);

/* Write "name=value ..." (NUL-terminated, truncated to outlen); returns the
 * length it would have had, as snprintf does. */
size_t rn_counters_format(const rn_counters *cs, char *out, size_t outlen);

#endif
