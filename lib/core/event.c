/* event.c -- building and querying events. */
#include "core/core.h"

#include <string.h>

void rn_event_clear(rn_event *ev)
{
    ev->ts = 0;
    ev->nhdr = 0;
    ev->body.p = "";
    ev->body.n = 0;
}

const rn_str *rn_event_header(const rn_event *ev, const char *key)
{
    size_t klen = strlen(key);
    for (size_t i = 0; i < ev->nhdr; i++)
        if (ev->hdr[i].key.n == klen && memcmp(ev->hdr[i].key.p, key, klen) == 0)
            return &ev->hdr[i].val;
    return NULL;
}
