/* fuzz_decoder.c -- libFuzzer target for the stream decoder; not built by make.
 *
 *   scripts/fuzz builds and runs it
 *   mkdir -p corpus && ./fuzz_decoder -max_total_time=60 corpus
 *
 * The first input byte picks the format and seeds the sizes of the pieces
 * the rest is fed in, so that a crash reproduces from its input alone. Every
 * event decoded is encoded again as frames and json and must decode back to
 * itself: that checks the encoders against the decoder as well. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void same(const rn_event *a, const rn_event *b)
{
    if (a->ts != b->ts || a->nhdr != b->nhdr || a->body.n != b->body.n
        || memcmp(a->body.p, b->body.p, a->body.n) != 0)
        abort();
    for (size_t i = 0; i < a->nhdr; i++)
        if (a->hdr[i].key.n != b->hdr[i].key.n || a->hdr[i].val.n != b->hdr[i].val.n
            || memcmp(a->hdr[i].key.p, b->hdr[i].key.p, a->hdr[i].key.n) != 0
            || memcmp(a->hdr[i].val.p, b->hdr[i].val.p, a->hdr[i].val.n) != 0)
            abort();
}

static void reencode(const rn_event *ev)
{
    static const rn_format fmts[] = { RN_FMT_FRAMES, RN_FMT_JSON };

    for (int f = 0; f < 2; f++) {
        rn_buf b = { 0 };
        rn_event back;
        rn_decoder *d = rn_decoder_new(fmts[f], 0);
        if (fmts[f] == RN_FMT_FRAMES)
            rn_buf_append(&b, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
        if (!d || rn_encode_event(&b, fmts[f], ev) < 0
            || rn_decoder_feed(d, b.p, b.len, NULL) < 0)
            abort();
        rn_decoder_eof(d);
        if (rn_decoder_next(d, &back, NULL) != 1)
            abort();
        same(ev, &back);
        if (rn_decoder_next(d, &back, NULL) != 0)
            abort();
        rn_decoder_free(d);
        rn_buf_free(&b);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const rn_format fmts[] = { RN_FMT_AUTO, RN_FMT_AUTO, RN_FMT_AUTO, RN_FMT_AUTO,
                                      RN_FMT_LINES, RN_FMT_JSON, RN_FMT_FRAMES,
                                      RN_FMT_FRAMES };
    char err[RN_ERRLEN];
    rn_event ev;
    int r = 0;

    if (size == 0)
        return 0;
    uint32_t rng = data[0] * 2654435761u + 1;
    rn_decoder *d = rn_decoder_new(fmts[data[0] & 7], 4096);
    if (!d)
        abort();
    data++;
    size--;
    for (size_t off = 0; r != RN_ERR;) {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        size_t n = 1 + rng % 300;
        if (n > size - off)
            n = size - off;
        if (rn_decoder_feed(d, data + off, n, err) < 0)
            abort();
        off += n;
        if (off == size)
            rn_decoder_eof(d);
        while ((r = rn_decoder_next(d, &ev, err)) == 1) {
            if (ev.nhdr > RN_MAX_HEADERS || ev.body.n > 4096)
                abort();
            reencode(&ev);
        }
        if (off == size)
            break;
    }
    if (r == RN_ERR && (strncmp(err, "byte offset ", 12) != 0
                        || rn_decoder_next(d, &ev, NULL) != RN_ERR))
        abort();
    rn_decoder_free(d);
    return 0;
}
