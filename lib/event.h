/* event.h -- the event every runnel tool passes on: a timestamp, headers, a body.
 *
 * An event is what Flume calls an event. It does not own its bytes: headers and
 * body point into memory that belongs to whoever produced the event (a reader's
 * buffer, a tail engine's read buffer) and stay valid until that producer is
 * called again. Copy what must outlive that. */
#ifndef RN_EVENT_H
#define RN_EVENT_H

#include <stddef.h>
#include <stdint.h>

/* Headers an event may carry; more is a decoding error, never silent loss. */
#define RN_MAX_HEADERS 64

typedef struct rn_str {
    const char *p;
    size_t n;
} rn_str;

typedef struct rn_header {
    rn_str key, val;
} rn_header;

typedef struct rn_event {
    int64_t ts;                      /* ns since the epoch */
    size_t nhdr;
    rn_header hdr[RN_MAX_HEADERS];
    rn_str body;                     /* any bytes; for logs a line without '\n' */
} rn_event;

/* Reset to no headers, empty body, ts 0. */
void rn_event_clear(rn_event *ev);

/* Append a header; the strings are not copied. -1 when RN_MAX_HEADERS are set.
 * Inline: producers call it several times for every event. */
static inline int rn_event_add_header(rn_event *ev, const char *key, size_t klen,
                                      const char *val, size_t vlen)
{
    if (ev->nhdr >= RN_MAX_HEADERS)
        return -1;
    rn_header *h = &ev->hdr[ev->nhdr++];
    h->key.p = key;
    h->key.n = klen;
    h->val.p = val;
    h->val.n = vlen;
    return 0;
}

/* The value of the first header named key, or NULL. */
const rn_str *rn_event_header(const rn_event *ev, const char *key);

#endif
