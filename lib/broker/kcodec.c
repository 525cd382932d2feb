/* kcodec.c -- the records of a compressed RecordBatch as a stream of
 * decompressed pieces: gzip (zlib), snappy (raw or xerial-framed), lz4
 * (frame format) and zstd, for klog's validation of what producers send.
 *
 * gzip, lz4 and zstd stream through the caller's window, so that checking a
 * batch takes no more memory than that however far it inflates. snappy's C
 * API has no streaming: each block (the whole raw stream, or one xerial
 * chunk: 32 KiB from the Java client) is decompressed whole into a buffer of
 * its own, at most 22 times the block's compressed size. */
#include <stdlib.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "core/core.h"
#include "broker/broker_int.h"

struct rn__kdec {
    int codec;
    const unsigned char *in;    /* compressed bytes not consumed yet */
    size_t in_n;
    unsigned char *win;
    size_t win_len;
    z_stream z;
    LZ4F_dctx *lz4;
    ZSTD_DCtx *zstd;
    int xerial;                 /* snappy: the xerial block stream */
    unsigned char *blk;         /* snappy: one block decompressed */
    size_t blk_cap;
    uint64_t room;              /* output still allowed */
    int ended;
    const char *why;
};

/* The xerial snappy-java stream (what Kafka's Java client sends): this magic,
 * a version and a compatible version (4 bytes each), then blocks of a 4-byte
 * big-endian length and raw snappy. Without the magic, the input is one raw
 * snappy block, as snappy-java's reader takes it too. */
static const unsigned char xerial_magic[8] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0 };
#define XERIAL_HEADER 16

/* snappy's densest element is a 3-byte copy of 64 bytes: no valid block
 * decompresses to more than 64/3 times its size. A length above that is a
 * lie, refused before allocating for it. */
#define SNAPPY_MAX_RATIO 22

rn__kdec *rn__kdec_new(int codec, const unsigned char *in, size_t n, unsigned char *win,
                       size_t win_len, uint64_t max_out, const char **why)
{
    rn__kdec *d = calloc(1, sizeof *d);
    if (!d) {
        *why = "out of memory";
        return NULL;
    }
    d->codec = codec;
    d->in = in;
    d->in_n = n;
    d->win = win;
    d->win_len = win_len;
    d->room = max_out;
    switch (codec) {
    case RN_KCODEC_GZIP:
        if (inflateInit2(&d->z, 15 + 32) != Z_OK)   /* gzip or zlib header */
            goto oom;
        d->z.next_in = (unsigned char *)(uintptr_t)in;
        d->z.avail_in = (uInt)n;
        break;
    case RN_KCODEC_SNAPPY:
        if (n >= XERIAL_HEADER && memcmp(in, xerial_magic, sizeof xerial_magic) == 0) {
            d->xerial = 1;
            d->in += XERIAL_HEADER;
            d->in_n -= XERIAL_HEADER;
            d->ended = d->in_n == 0;
        }
        break;
    case RN_KCODEC_LZ4:
        if (LZ4F_isError(LZ4F_createDecompressionContext(&d->lz4, LZ4F_VERSION)))
            goto oom;
        break;
    case RN_KCODEC_ZSTD:
        if (!(d->zstd = ZSTD_createDCtx()))
            goto oom;
        break;
    default:
        free(d);
        *why = "unknown compression codec";
        return NULL;
    }
    return d;
oom:
    rn__kdec_free(d);
    *why = "out of memory";
    return NULL;
}

void rn__kdec_free(rn__kdec *d)
{
    if (!d)
        return;
    if (d->codec == RN_KCODEC_GZIP)
        inflateEnd(&d->z);
    LZ4F_freeDecompressionContext(d->lz4);   /* NULL is fine for both */
    ZSTD_freeDCtx(d->zstd);
    free(d->blk);
    free(d);
}

static int fail(rn__kdec *d, const char *why)
{
    d->why = why;
    return -1;
}

/* One step of each codec: *got bytes at *out (possibly 0), d->ended at the
 * end of the compressed data, or -1 with d->why. */

static int step_gzip(rn__kdec *d, const unsigned char **out, size_t *got)
{
    d->z.next_out = d->win;
    d->z.avail_out = (uInt)d->win_len;
    int zr = inflate(&d->z, Z_NO_FLUSH);
    *got = d->win_len - d->z.avail_out;
    *out = d->win;
    if (zr == Z_STREAM_END)
        d->ended = 1;
    else if (zr != Z_OK && !(zr == Z_BUF_ERROR && *got))
        return fail(d, zr == Z_BUF_ERROR ? "compressed data ends early" : "corrupt gzip data");
    return 0;
}

static int step_snappy(rn__kdec *d, const unsigned char **out, size_t *got)
{
    const char *blk = (const char *)d->in;
    size_t blen = d->in_n, ulen;
    if (d->xerial) {
        if (d->in_n < 4 || (blen = rn_be32(d->in)) > d->in_n - 4)
            return fail(d, "compressed data ends early");
        blk += 4;
        d->in += 4 + blen;
        d->in_n -= 4 + blen;
    } else {
        d->in_n = 0;
    }
    d->ended = d->in_n == 0;
    if (snappy_uncompressed_length(blk, blen, &ulen) != SNAPPY_OK
        || ulen / SNAPPY_MAX_RATIO > blen)
        return fail(d, "corrupt snappy data");
    if (ulen > d->room)
        return fail(d, "records inflate beyond the limit");
    if (ulen >= d->blk_cap) {       /* (room for an empty block too) */
        unsigned char *nb = realloc(d->blk, ulen + 1);
        if (!nb)
            return fail(d, "out of memory");
        d->blk = nb;
        d->blk_cap = ulen + 1;
    }
    if (snappy_uncompress(blk, blen, (char *)d->blk, &ulen) != SNAPPY_OK)
        return fail(d, "corrupt snappy data");
    *out = d->blk;
    *got = ulen;
    return 0;
}

/* One LZ4 frame, as Kafka's KafkaLZ4BlockInputStream reads (bytes after it
 * are not looked at, as gzip's after its stream end). */
static int step_lz4(rn__kdec *d, const unsigned char **out, size_t *got)
{
    size_t o = d->win_len, i = d->in_n;
    size_t r = LZ4F_decompress(d->lz4, d->win, &o, d->in, &i, NULL);
    if (LZ4F_isError(r))
        return fail(d, "corrupt lz4 data");
    d->in += i;
    d->in_n -= i;
    *out = d->win;
    *got = o;
    if (r == 0)
        d->ended = 1;
    else if (!o && !i)
        return fail(d, "compressed data ends early");
    return 0;
}

/* zstd frames one after another, as zstd-jni's stream reads them. A frame
 * may ask for a window up to the library's limit (128 MiB), allocated as it
 * asks but touched only as far as it decompresses: max_out at most. */
static int step_zstd(rn__kdec *d, const unsigned char **out, size_t *got)
{
    ZSTD_inBuffer in = { d->in, d->in_n, 0 };
    ZSTD_outBuffer o = { d->win, d->win_len, 0 };
    size_t r = ZSTD_decompressStream(d->zstd, &o, &in);
    if (ZSTD_isError(r))
        return fail(d, "corrupt zstd data");
    d->in += in.pos;
    d->in_n -= in.pos;
    *out = d->win;
    *got = o.pos;
    if (r == 0 && d->in_n == 0)
        d->ended = 1;
    else if (!o.pos && !in.pos)
        return fail(d, "compressed data ends early");
    return 0;
}

int rn__kdec_next(rn__kdec *d, const unsigned char **out, size_t *len, const char **why)
{
    for (;;) {
        size_t got = 0;
        int r = 0;
        if (d->why || d->ended) {
            *why = d->why;
            return d->why ? -1 : 0;
        }
        switch (d->codec) {
        case RN_KCODEC_GZIP: r = step_gzip(d, out, &got); break;
        case RN_KCODEC_SNAPPY: r = step_snappy(d, out, &got); break;
        case RN_KCODEC_LZ4: r = step_lz4(d, out, &got); break;
        default: r = step_zstd(d, out, &got); break;
        }
        if (r == 0 && got > d->room)
            r = fail(d, "records inflate beyond the limit");
        if (r < 0) {
            *why = d->why;
            return -1;
        }
        d->room -= got;
        if (got) {
            *len = got;
            return 1;
        }
    }
}
