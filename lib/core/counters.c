/* counters.c -- named counters and their one-line report. */
#include "core/core.h"

#include <stdio.h>
#include <string.h>

uint64_t *rn_counter_add(rn_counters *cs, const char *name)
{
    if (cs->n >= RN_MAX_COUNTERS)
        return NULL;
    cs->name[cs->n] = name;
    cs->value[cs->n] = 0;
    return &cs->value[cs->n++];
}

const uint64_t *rn_counter_find(const rn_counters *cs, const char *name)
{
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->name[i], name) == 0)
            return &cs->value[i];
    return NULL;
}

uint64_t rn_counter_get(const rn_counters *cs, const char *name)
{
    const uint64_t *v = rn_counter_find(cs, name);
    return v ? *v : 0;
}

size_t rn_counters_format(const rn_counters *cs, char *out, size_t outlen)
{
    size_t len = 0;
    if (outlen)
        out[0] = '\0';
    for (size_t i = 0; i < cs->n; i++) {
        int n = snprintf(len < outlen ? out + len : NULL, len < outlen ? outlen - len : 0,
                         "%s%s=%llu", i ? " " : "", cs->name[i],
                         (unsigned long long)cs->value[i]);
        if (n > 0)
            len += (size_t)n;
    }
    return len;
}
