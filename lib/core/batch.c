/* batch.c -- the event batch: what logtail sends over a hop, the channel
 * stores and the sinks deliver. count events, each a u32 BE length and a
 * msgpack [ts, headers, body], the frames encoding without its stream header. */
#include <stdint.h>

#include "core/core.h"

int rn_batch_add(rn_batch *b, const rn_event *ev)
{
    if (rn_encode_event(&b->buf, RN_FMT_FRAMES, ev) < 0)
        return RN_ENOMEM;
    b->count++;
    return 0;
}

void rn_batch_reset(rn_batch *b)
{
    b->buf.len = 0;
    b->count = 0;
}

void rn_batch_free(rn_batch *b)
{
    rn_buf_free(&b->buf);
    b->count = 0;
}

int rn_batch_each(const char *p, size_t len, uint32_t count,
                  int (*fn)(void *arg, const rn_event *ev), void *arg, size_t *bad, char *err)
{
    const unsigned char *u = (const unsigned char *)p;
    size_t off = 0, dummy;
    rn_event ev;

    if (!bad)
        bad = &dummy;
    for (uint32_t i = 0; i < count; i++) {
        size_t left = len - off;
        *bad = off;
        if (left < 4) {
            if (left == 0)
                rn_seterr(err, "event %u of %u: missing (the batch ends here)", i + 1, count);
            else
                rn_seterr(err, "event %u of %u: length cut short", i + 1, count);
            return RN_ECORRUPT;
        }
        uint32_t n = rn_be32(u + off);
        if (n == 0) {
            rn_seterr(err, "event %u of %u: length 0", i + 1, count);
            return RN_ECORRUPT;
        }
        if (n > left - 4) {
            rn_seterr(err, "event %u of %u: length %u runs past the end of the batch "
                      "(%zu bytes left)", i + 1, count, n, left - 4);
            return RN_ECORRUPT;
        }
        const char *w = rn_frame_parse(p + off + 4, n, &ev);
        if (w) {
            rn_seterr(err, "event %u of %u: %s", i + 1, count, w);
            return RN_ECORRUPT;
        }
        if (fn) {
            int r = fn(arg, &ev);
            if (r < 0)
                return r;
        }
        off += 4 + (size_t)n;
    }
    if (off != len) {
        *bad = off;
        rn_seterr(err, "%zu bytes after the last of %u events", len - off, count);
        return RN_ECORRUPT;
    }
    return 0;
}
