/* stream.c -- decoding and encoding the lines, json and frames event streams. */
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>


/* Kept below 2^31 so that no valid frame length starts with 0x89, the first
 * byte of the stream header: a repeated header is then unambiguous. */
#define MAX_EVENT_LIMIT 0x7fffffffu

#define STR(x) #x
#define XSTR(x) STR(x)

#define READ_SIZE (64 * 1024)
#define WRITE_SIZE (64 * 1024)

int rn_format_parse(const char *s, rn_format *fmt, char *err)
{
    static const rn_format named[] = { RN_FMT_LINES, RN_FMT_JSON, RN_FMT_FRAMES };

    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        if (strcmp(s, rn_format_name(named[i])) == 0) {
            *fmt = named[i];
            return 0;
        }
    }
    return rn_seterr(err, "unknown format '%s' (use lines, json or frames)", s);
}

const char *rn_format_name(rn_format fmt)
{
    switch (fmt) {
    case RN_FMT_LINES: return "lines";
    case RN_FMT_JSON: return "json";
    case RN_FMT_FRAMES: return "frames";
    default: return "auto";
    }
}

/* ---- decoder ------------------------------------------------------------- */

struct rn_decoder {
    rn_format fmt;          /* AUTO until detected */
    size_t max_event;
    rn_buf in;              /* pending input is in.p[pos..in.len) */
    size_t pos;
    size_t scanned;         /* in.p[pos..scanned) holds no '\n' */
    uint64_t base;          /* stream offset of in.p[0] */
    int64_t now;            /* time of the last feed: the ts of lines */
    uint64_t cut;
    int eof;
    int failed;
    int skipping;           /* lines: dropping the rest of a cut line */
    int need_header;        /* frames: nothing decoded yet, the header must come */
    rn_buf str;             /* json: the decoded strings of the last event */
    char err[RN_ERRLEN];    /* repeated by every call after an error */
};

rn_decoder *rn_decoder_new(rn_format fmt, size_t max_event)
{
    rn_decoder *d = calloc(1, sizeof *d);

    if (!d || rn_buf_reserve(&d->in, 4096) < 0) {
        free(d);
        return NULL;
    }
    d->fmt = fmt;
    d->max_event = max_event == 0 ? RN_DEFAULT_MAX_EVENT
                 : max_event > MAX_EVENT_LIMIT ? MAX_EVENT_LIMIT : max_event;
    d->need_header = 1;
    return d;
}

void rn_decoder_free(rn_decoder *d)
{
    if (!d)
        return;
    rn_buf_free(&d->in);
    rn_buf_free(&d->str);
    free(d);
}

/* Move the unconsumed tail to the front: it costs at most one partial
 * event per feed and keeps the buffer at pending + this feed. */
static void compact(rn_decoder *d)
{
    if (d->pos) {
        d->in.len -= d->pos;
        memmove(d->in.p, d->in.p + d->pos, d->in.len);
        d->base += d->pos;
        d->scanned = d->scanned > d->pos ? d->scanned - d->pos : 0;
        d->pos = 0;
    }
}

char *rn_decoder_space(rn_decoder *d, size_t want, size_t *room)
{
    compact(d);
    if (rn_buf_reserve(&d->in, want) < 0)
        return NULL;
    *room = d->in.cap - d->in.len;
    return d->in.p + d->in.len;
}

int rn_decoder_feed(rn_decoder *d, const void *buf, size_t len, char *err)
{
    if (d->in.p && (const char *)buf == d->in.p + d->in.len && len <= d->in.cap - d->in.len) {
        /* Read into rn_decoder_space: the bytes are in place already. */
        if (d->failed)
            return 0;
        d->in.len += len;
        d->now = rn_now_ns();
        return 0;
    }
    compact(d);
    if (d->failed)
        return 0;
    if (rn_buf_append(&d->in, buf, len) < 0)
        return rn_seterr(err, "out of memory");
    d->now = rn_now_ns();
    return 0;
}

void rn_decoder_eof(rn_decoder *d) { d->eof = 1; }
rn_format rn_decoder_format(const rn_decoder *d) { return d->fmt; }
uint64_t rn_decoder_offset(const rn_decoder *d) { return d->base + d->pos; }
uint64_t rn_decoder_cut(const rn_decoder *d) { return d->cut; }

static int fail(rn_decoder *d, uint64_t off, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(rn_decoder *d, uint64_t off, const char *fmt, ...)
{
    va_list ap;
    int n = snprintf(d->err, sizeof d->err, "byte offset %llu: ",
                     (unsigned long long)off);

    va_start(ap, fmt);
    vsnprintf(d->err + n, sizeof d->err - (size_t)n, fmt, ap);
    va_end(ap);
    return RN_ERR;
}

/* The next '\n' in the pending input, or NULL; remembers how far it looked so
 * that a long line arriving in small pieces is scanned once. */
static const char *find_newline(rn_decoder *d)
{
    if (d->scanned < d->pos)
        d->scanned = d->pos;
    const char *nl = memchr(d->in.p + d->scanned, '\n', d->in.len - d->scanned);
    d->scanned = nl ? (size_t)(nl - d->in.p) : d->in.len;
    return nl;
}

/* Settle the format from the first bytes, or leave it AUTO to wait for more.
 * Frames need the whole magic; json needs '{', blanks and "ts". Input that
 * could still become either waits, unless it is over or already too long to
 * be anything but a (cut) line. */
static void detect(rn_decoder *d)
{
    static const char ts_key[] = "\"ts\"";
    const char *s = d->in.p + d->pos;
    size_t n = d->in.len - d->pos, i = 1, m;
    int undecided = 0;

    if (n == 0)
        return;
    if (s[0] == RN_FRAMES_MAGIC[0]) {
        m = n < 4 ? n : 4;
        if (memcmp(s, RN_FRAMES_MAGIC, m) == 0) {
            if (m == 4) {
                d->fmt = RN_FMT_FRAMES;
                return;
            }
            undecided = 1;
        }
    } else if (s[0] == '{') {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        m = n - i < 4 ? n - i : 4;
        if (memcmp(s + i, ts_key, m) == 0) {
            if (m == 4) {
                d->fmt = RN_FMT_JSON;
                return;
            }
            undecided = n <= d->max_event;
        }
    }
    if (undecided && !d->eof)
        return;
    d->fmt = RN_FMT_LINES;
}

static int emit_line(rn_decoder *d, rn_event *ev, const char *s, size_t n)
{
    ev->ts = d->now;
    ev->nhdr = 0;
    ev->body.p = s;
    ev->body.n = n;
    return 1;
}

static int next_line(rn_decoder *d, rn_event *ev)
{
    for (;;) {
        const char *s = d->in.p + d->pos;
        size_t n = d->in.len - d->pos;
        const char *nl = find_newline(d);

        if (nl) {
            n = (size_t)(nl - s);
            d->pos += n + 1;
            if (d->skipping) {
                d->skipping = 0;
                continue;
            }
            if (n > d->max_event) {
                n = d->max_event;
                d->cut++;
            }
            return emit_line(d, ev, s, n);
        }
        if (d->skipping) {
            d->pos = d->in.len;
            return 0;
        }
        /* Cut as soon as the line is known to be too long rather than at its
         * newline: pending input then never exceeds max_event. */
        if (n > d->max_event) {
            d->pos += d->max_event;
            d->skipping = 1;
            d->cut++;
            return emit_line(d, ev, s, d->max_event);
        }
        if (d->eof && n) {
            d->pos = d->in.len;
            return emit_line(d, ev, s, n);
        }
        return 0;
    }
}

static int blank(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return 0;
    return 1;
}

enum { KEY_OTHER, KEY_TS, KEY_HEADERS, KEY_BODY };

static int key_of(const char *k, size_t n)
{
    if (n == 2 && memcmp(k, "ts", 2) == 0)
        return KEY_TS;
    if (n == 7 && memcmp(k, "headers", 7) == 0)
        return KEY_HEADERS;
    if (n == 4 && memcmp(k, "body", 4) == 0)
        return KEY_BODY;
    return KEY_OTHER;
}

static int parse_headers(rn_decoder *d, rn_json *j, rn_event *ev)
{
    rn_buf *str = &d->str;
    uint64_t off = rn_json_offset(j);
    int r;

    if (rn_json_object(j, d->err) < 0)
        return RN_ERR;
    for (size_t i = 0;; i++) {
        size_t k = str->len;
        if ((r = rn_json_member(j, i, str, d->err)) <= 0)
            return r < 0 ? RN_ERR : 0;
        size_t v = str->len;
        if (rn_json_get_str(j, str, d->err) < 0)
            return RN_ERR;
        if (i == RN_MAX_HEADERS)
            return fail(d, off, "more than %d headers", RN_MAX_HEADERS);
        ev->hdr[i].key = (rn_str){ str->p + k, v - k };
        ev->hdr[i].val = (rn_str){ str->p + v, str->len - v };
        ev->nhdr = i + 1;
    }
}

/* One json line, s[0..n) at stream offset off. A line without "ts" is
 * stamped with the time it was read, as lines are; without "body" it is an
 * error, since an event is its body. Unknown keys are skipped so that a
 * later writer may add some. */
static int parse_json(rn_decoder *d, const char *s, size_t n, uint64_t off,
                      rn_event *ev)
{
    rn_json j;
    unsigned seen = 0;
    int r;

    /* Decoded strings are never longer than the line, so with this much room
     * str never moves and the pointers put into ev stay valid. */
    d->str.len = 0;
    if (rn_buf_reserve(&d->str, n) < 0)
        return fail(d, off, "out of memory");
    ev->ts = d->now;
    ev->nhdr = 0;
    rn_json_init(&j, s, n, off);
    if (rn_json_object(&j, d->err) < 0)
        return RN_ERR;
    for (size_t i = 0;; i++) {
        size_t k = d->str.len;
        if ((r = rn_json_member(&j, i, &d->str, d->err)) < 0)
            return RN_ERR;
        if (r == 0)
            break;
        int key = key_of(d->str.p + k, d->str.len - k);
        d->str.len = k;
        rn_json_skip_ws(&j);
        if (key != KEY_OTHER && (seen & 1u << key))
            return fail(d, rn_json_offset(&j), "duplicate key");
        seen |= 1u << key;
        switch (key) {
        case KEY_TS:
            r = rn_json_get_int64(&j, &ev->ts, d->err);
            break;
        case KEY_HEADERS:
            r = parse_headers(d, &j, ev);
            break;
        case KEY_BODY:
            r = rn_json_get_str(&j, &d->str, d->err);
            ev->body = (rn_str){ d->str.p + k, d->str.len - k };
            break;
        default:
            r = rn_json_skip_value(&j, d->err);
        }
        if (r < 0)
            return RN_ERR;
    }
    rn_json_skip_ws(&j);
    if (j.p != j.end)
        return fail(d, rn_json_offset(&j), "junk after the object");
    if (!(seen & 1u << KEY_BODY))
        return fail(d, off, "no \"body\" in the object");
    return 1;
}

static int next_json(rn_decoder *d, rn_event *ev)
{
    for (;;) {
        const char *s = d->in.p + d->pos;
        uint64_t off = d->base + d->pos;
        const char *nl = find_newline(d);
        size_t n = nl ? (size_t)(nl - s) : d->in.len - d->pos;

        if (n > d->max_event)
            return fail(d, off, "json line longer than the maximum of %zu bytes",
                        d->max_event);
        if (!nl) {
            if (d->eof && !blank(s, n))
                return fail(d, off, "truncated json line (no newline at the end)");
            if (d->eof)
                d->pos = d->in.len;
            return 0;
        }
        d->pos += n + 1;
        if (!blank(s, n))
            return parse_json(d, s, n, off, ev);
    }
}

/* ---- frames: our own reader for the one msgpack shape we accept ----------
 *
 * msgpack-c's unpacker is not used on input: it allocates a container's
 * elements before reading them, so five bytes claiming an array of 2^27
 * elements make it ask for 3 GB. A frame is always [int, map, bin], which
 * takes less code to check than to guard. */

enum { MP_END = -1, MP_UINT, MP_INT, MP_STR, MP_BIN, MP_ARRAY, MP_MAP, MP_OTHER };

/* The type of the msgpack item at *pp and its integer value, length or
 * element count; *pp moves past the item's header (not a str's bytes). */
static int mp_head(const unsigned char **pp, const unsigned char *end, uint64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t x = 0;
    size_t width = 0;
    int kind;

    if (p == end)
        return MP_END;
    unsigned c = *p++;
    if (c <= 0x7f) {
        x = c;
        kind = MP_UINT;
    } else if (c >= 0xe0) {
        x = (uint64_t)(int64_t)(int8_t)c;
        kind = MP_INT;
    } else if (c <= 0x8f) {
        x = c & 0x0f;
        kind = MP_MAP;
    } else if (c <= 0x9f) {
        x = c & 0x0f;
        kind = MP_ARRAY;
    } else if (c <= 0xbf) {
        x = c & 0x1f;
        kind = MP_STR;
    } else {
        switch (c) {
        case 0xc4: case 0xc5: case 0xc6:
            kind = MP_BIN; width = 1u << (c - 0xc4); break;
        case 0xcc: case 0xcd: case 0xce: case 0xcf:
            kind = MP_UINT; width = 1u << (c - 0xcc); break;
        case 0xd0: case 0xd1: case 0xd2: case 0xd3:
            kind = MP_INT; width = 1u << (c - 0xd0); break;
        case 0xd9: case 0xda: case 0xdb:
            kind = MP_STR; width = 1u << (c - 0xd9); break;
        case 0xdc: case 0xdd:
            kind = MP_ARRAY; width = 2u << (c - 0xdc); break;
        case 0xde: case 0xdf:
            kind = MP_MAP; width = 2u << (c - 0xde); break;
        default:
            kind = MP_OTHER;    /* nil, bool, float, ext: never right here */
        }
        if ((size_t)(end - p) < width)
            return MP_END;
        for (size_t i = 0; i < width; i++)
            x = x << 8 | p[i];
        if (kind == MP_INT && width < 8 && (p[0] & 0x80))
            x |= ~(uint64_t)0 << (8 * width);
        p += width;
    }
    *v = x;
    *pp = p;
    return kind;
}

static const char cut_short[] = "the msgpack value is cut short";

/* A str (or, when bin_ok, bin) item into *s, pointing into the frame; NULL,
 * or why not: cut short, or not_bytes. */
static const char *mp_bytes(const unsigned char **pp, const unsigned char *end,
                            int bin_ok, rn_str *s, const char *not_bytes)
{
    uint64_t n;
    int kind = mp_head(pp, end, &n);

    if (kind == MP_END)
        return cut_short;
    if (kind != MP_STR && !(bin_ok && kind == MP_BIN))
        return not_bytes;
    if ((uint64_t)(end - *pp) < n)
        return cut_short;
    s->p = (const char *)*pp;
    s->n = (size_t)n;
    *pp += n;
    return NULL;
}

static const char *parse_frame(const unsigned char *p, const unsigned char *end,
                               rn_event *ev)
{
    const char *why;
    uint64_t v;
    int kind;

    if ((kind = mp_head(&p, end, &v)) != MP_ARRAY || v != 3)
        return kind == MP_END ? cut_short : "not an array [ts, headers, body]";
    kind = mp_head(&p, end, &v);
    if (kind == MP_UINT && v > INT64_MAX)
        return "ts out of range";
    if (kind != MP_UINT && kind != MP_INT)
        return kind == MP_END ? cut_short : "ts is not an integer";
    ev->ts = (int64_t)v;
    if ((kind = mp_head(&p, end, &v)) != MP_MAP)
        return kind == MP_END ? cut_short : "headers is not a map";
    if (v > RN_MAX_HEADERS)
        return "more than " XSTR(RN_MAX_HEADERS) " headers";
    ev->nhdr = (size_t)v;
    for (size_t i = 0; i < ev->nhdr; i++) {
        if ((why = mp_bytes(&p, end, 0, &ev->hdr[i].key,
                            "a header name is not a string"))
            || (why = mp_bytes(&p, end, 0, &ev->hdr[i].val,
                               "a header value is not a string")))
            return why;
    }
    if ((why = mp_bytes(&p, end, 1, &ev->body, "body is not bin or str")))
        return why;
    return p == end ? NULL : "bytes left after the msgpack value";
}

const char *rn_frame_parse(const char *p, size_t n, rn_event *ev)
{
    return parse_frame((const unsigned char *)p, (const unsigned char *)p + n, ev);
}

static int next_frame(rn_decoder *d, rn_event *ev)
{
    for (;;) {
        const unsigned char *s = (const unsigned char *)d->in.p + d->pos;
        size_t n = d->in.len - d->pos;
        uint64_t off = d->base + d->pos;

        if (n == 0)
            return 0;
        if (n < 4)
            return d->eof ? fail(d, off, d->need_header ? "truncated stream header"
                                                        : "truncated frame length") : 0;
        if (memcmp(s, RN_FRAMES_MAGIC, 4) == 0) {
            if (n < RN_FRAMES_HEADER_LEN)
                return d->eof ? fail(d, off, "truncated stream header") : 0;
            if (s[4] != RN_FRAMES_VERSION)
                return fail(d, off + 4, "unsupported frames version %u", s[4]);
            for (int i = 5; i < RN_FRAMES_HEADER_LEN; i++)
                if (s[i])
                    return fail(d, off + (uint64_t)i,
                                "reserved byte of the stream header is not 0");
            d->pos += RN_FRAMES_HEADER_LEN;
            d->need_header = 0;
            continue;
        }
        if (d->need_header)
            return fail(d, off, "not a frames stream (no \\x89RNF header)");
        size_t len = (size_t)s[0] << 24 | (size_t)s[1] << 16 | (size_t)s[2] << 8 | s[3];
        if (len == 0)
            return fail(d, off, "frame of 0 bytes");
        if (len > d->max_event)
            return fail(d, off, "frame of %zu bytes exceeds the maximum of %zu",
                        len, d->max_event);
        if (n - 4 < len)
            return d->eof ? fail(d, off, "truncated frame (%zu of %zu bytes)",
                                 n - 4, len) : 0;
        const char *why = parse_frame(s + 4, s + 4 + len, ev);
        if (why)
            return fail(d, off, "bad frame: %s", why);
        d->pos += 4 + len;
        return 1;
    }
}

int rn_decoder_next(rn_decoder *d, rn_event *ev, char *err)
{
    int r = 0;

    if (!d->failed) {
        if (d->fmt == RN_FMT_AUTO)
            detect(d);
        switch (d->fmt) {
        case RN_FMT_LINES: r = next_line(d, ev); break;
        case RN_FMT_JSON: r = next_json(d, ev); break;
        case RN_FMT_FRAMES: r = next_frame(d, ev); break;
        default: break;
        }
        if (r != RN_ERR)
            return r;
        d->failed = 1;
    }
    if (err)
        memcpy(err, d->err, RN_ERRLEN);
    return RN_ERR;
}

/* ---- reader -------------------------------------------------------------- */

struct rn_reader {
    int fd;
    int eof;
    char *name;
    rn_decoder *d;
    char buf[READ_SIZE];
};

rn_reader *rn_reader_new(int fd, const char *name, rn_format fmt, size_t max_event)
{
    rn_reader *r = calloc(1, sizeof *r);

    if (!r)
        return NULL;
    r->fd = fd;
    r->name = strdup(name);
    r->d = rn_decoder_new(fmt, max_event);
    if (!r->name || !r->d) {
        rn_reader_free(r);
        return NULL;
    }
    return r;
}

void rn_reader_free(rn_reader *r)
{
    if (!r)
        return;
    rn_decoder_free(r->d);
    free(r->name);
    free(r);
}

rn_decoder *rn_reader_decoder(rn_reader *r) { return r->d; }

int rn_reader_next(rn_reader *r, rn_event *ev, char *err)
{
    char why[RN_ERRLEN];

    for (;;) {
        int rc = rn_decoder_next(r->d, ev, why);
        if (rc == 1)
            return 1;
        if (rc == RN_ERR)
            return rn_seterr(err, "%s: %s", r->name, why);
        if (r->eof)
            return 0;
        ssize_t n = read(r->fd, r->buf, sizeof r->buf);
        if (n < 0) {
            if (errno == EINTR)
                return RN_EINTR;
            return rn_seterr(err, "%s: read: %s", r->name, strerror(errno));
        }
        if (n == 0) {
            r->eof = 1;
            rn_decoder_eof(r->d);
        } else if (rn_decoder_feed(r->d, r->buf, (size_t)n, why) < 0) {
            return rn_seterr(err, "%s: %s", r->name, why);
        }
    }
}

/* ---- encoding ------------------------------------------------------------
 *
 * Frames are packed by hand too. msgpack-c's packer, writing through its
 * callback, took 60 ns for an event with four headers against 30 ns here,
 * and logtail's frames output has to keep up with `tail`. The tests check
 * our frames against msgpack-c's unpacker. */

/* The msgpack header of a str (or bin) of n bytes, at o; returns the end. */
static char *mp_put_len(char *o, int bin, size_t n)
{
    if (!bin && n < 32) {
        *o++ = (char)(0xa0 | n);
    } else if (n < 256) {
        *o++ = (char)(bin ? 0xc4 : 0xd9);
        *o++ = (char)n;
    } else if (n < 65536) {
        *o++ = (char)(bin ? 0xc5 : 0xda);
        *o++ = (char)(n >> 8);
        *o++ = (char)n;
    } else {
        *o++ = (char)(bin ? 0xc6 : 0xdb);
        rn_put_be32(o, (uint32_t)n);
        o += 4;
    }
    return o;
}

/* Copy n bytes to o and return the end. Header names and values are short,
 * and for them two overlapping fixed-size moves beat a call to memcpy. */
static inline char *put_bytes(char *o, const char *p, size_t n)
{
    struct { uint64_t a, b; } x, y;
    uint64_t a, b;
    uint32_t c, d;

    if (n > 32) {
        memcpy(o, p, n);
    } else if (n >= 16) {
        memcpy(&x, p, 16);
        memcpy(&y, p + n - 16, 16);
        memcpy(o, &x, 16);
        memcpy(o + n - 16, &y, 16);
    } else if (n >= 8) {
        memcpy(&a, p, 8);
        memcpy(&b, p + n - 8, 8);
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4) {
        memcpy(&c, p, 4);
        memcpy(&d, p + n - 4, 4);
        memcpy(o, &c, 4);
        memcpy(o + n - 4, &d, 4);
    } else {
        for (size_t i = 0; i < n; i++)
            o[i] = p[i];
    }
    return o + n;
}

static char *mp_put_str(char *o, const rn_str *s)
{
    return put_bytes(mp_put_len(o, 0, s->n), s->p, s->n);
}

/* ts as a fixint or in 4 or 8 bytes: msgpack lets a writer pick any width
 * that holds the value, and a real ts takes 8. */
static char *mp_put_int(char *o, int64_t v)
{
    if (v >= -32 && v < 128) {
        *o++ = (char)v;
    } else if (v >= INT32_MIN && v <= UINT32_MAX) {
        *o++ = (char)(v < 0 ? 0xd2 : 0xce);
        rn_put_be32(o, (uint32_t)v);
        o += 4;
    } else {
        *o++ = (char)(v < 0 ? 0xd3 : 0xcf);
        rn_put_be64(o, (uint64_t)v);
        o += 8;
    }
    return o;
}

/* Append a frame: the length prefix and [ts, headers, body], but only the
 * header of the bin when !with_body (the caller writes the body itself).
 * Returns 0, RN_ENOMEM, or RN_ETOOBIG for an event beyond a 32-bit length. */
static int pack_frame(rn_buf *b, const rn_hdrset *sh, const rn_event *ev, int with_body)
{
    /* An item's header takes at most 5 bytes, ts at most 9: reserving the
     * worst case once keeps the packing free of capacity checks. */
    size_t nhdr = ev->nhdr + (sh ? sh->n : 0);
    size_t room = 4 + 1 + 9 + 5 + 5 + (with_body ? ev->body.n : 0) + (sh ? sh->enc.len : 0);
    for (size_t i = 0; i < ev->nhdr; i++)
        room += 10 + ev->hdr[i].key.n + ev->hdr[i].val.n;
    if (rn_buf_reserve(b, room) < 0)
        return RN_ENOMEM;

    char *start = b->p + b->len, *o = start + 4;
    *o++ = (char)0x93;
    o = mp_put_int(o, ev->ts);
    if (nhdr < 16) {
        *o++ = (char)(0x80 | nhdr);
    } else {
        *o++ = (char)0xde;
        *o++ = (char)(nhdr >> 8);
        *o++ = (char)nhdr;
    }
    if (sh) {
        memcpy(o, sh->enc.p, sh->enc.len);
        o += sh->enc.len;
    }
    for (size_t i = 0; i < ev->nhdr; i++) {
        o = mp_put_str(o, &ev->hdr[i].key);
        o = mp_put_str(o, &ev->hdr[i].val);
    }
    o = mp_put_len(o, 1, ev->body.n);
    uint64_t len = (uint64_t)(o - start - 4) + ev->body.n;
    if (len > UINT32_MAX)
        return RN_ETOOBIG;
    rn_put_be32(start, (uint32_t)len);
    if (with_body) {
        memcpy(o, ev->body.p, ev->body.n);
        o += ev->body.n;
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* Decimal, two digits a step: a 19-digit ts otherwise costs as much as the
 * rest of a json line. */
static char *put_int64(char *o, int64_t v)
{
    static const char pairs[] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    char tmp[20], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;

    while (u >= 100) {
        p -= 2;
        memcpy(p, pairs + u % 100 * 2, 2);
        u /= 100;
    }
    if (u >= 10) {
        p -= 2;
        memcpy(p, pairs + u * 2, 2);
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0)
        *--p = '-';
    memcpy(o, p, (size_t)(tmp + sizeof tmp - p));
    return o + (tmp + sizeof tmp - p);
}

#define PUT_LIT(o, s) (memcpy((o), (s), sizeof(s) - 1), (o) + sizeof(s) - 1)

/* {"ts":N,"headers":{...},"body":"..."} and '\n', in this order and without
 * blanks: detection looks for the prefix {"ts". */
static int encode_json(rn_buf *b, const rn_hdrset *sh, const rn_event *ev)
{
    size_t strings = ev->body.n + (sh ? sh->enc.len : 0);
    for (size_t i = 0; i < ev->nhdr; i++)
        strings += ev->hdr[i].key.n + ev->hdr[i].val.n;
    /* fixed text, a 20-digit ts, and per header two quote pairs, ':' and ',' */
    if (strings > SIZE_MAX / 8 || rn_buf_reserve(b, RN_JSON_STRING_MAX(strings)
                                                 + 64 + 6 * ev->nhdr) < 0)
        return -1;

    char *o = b->p + b->len;
    o = PUT_LIT(o, "{\"ts\":");
    o = put_int64(o, ev->ts);
    o = PUT_LIT(o, ",\"headers\":{");
    if (sh && sh->n) {
        memcpy(o, sh->enc.p, sh->enc.len);
        o += sh->enc.len;
    }
    for (size_t i = 0; i < ev->nhdr; i++) {
        if (i || (sh && sh->n))
            *o++ = ',';
        o = rn_json_write_string(o, ev->hdr[i].key.p, ev->hdr[i].key.n);
        *o++ = ':';
        o = rn_json_write_string(o, ev->hdr[i].val.p, ev->hdr[i].val.n);
    }
    o = PUT_LIT(o, "},\"body\":");
    o = rn_json_write_string(o, ev->body.p, ev->body.n);
    o = PUT_LIT(o, "}\n");
    b->len = (size_t)(o - b->p);
    return 0;
}

int rn_encode_event(rn_buf *b, rn_format fmt, const rn_event *ev)
{
    switch (fmt) {
    case RN_FMT_LINES:
        return rn_buf_append(b, ev->body.p, ev->body.n) < 0
            || rn_buf_append(b, "\n", 1) < 0 ? -1 : 0;
    case RN_FMT_JSON:
        return encode_json(b, NULL, ev);
    case RN_FMT_FRAMES:
        return pack_frame(b, NULL, ev, 1) < 0 ? -1 : 0;
    default:
        return -1;
    }
}

/* ---- writer ---------------------------------------------------------------
 *
 * The buffer has room for two WRITE_SIZE halves and is flushed once it holds
 * one: an event under WRITE_SIZE never makes it grow. A larger lines or
 * frames body is written straight from the event. */

struct rn_writer {
    int fd;
    rn_format fmt;
    int started;            /* frames: the stream header is out */
    rn_buf out;
};

rn_writer *rn_writer_new(int fd, rn_format fmt)
{
    rn_writer *w;

    if (fmt != RN_FMT_LINES && fmt != RN_FMT_JSON && fmt != RN_FMT_FRAMES)
        return NULL;
    if (!(w = calloc(1, sizeof *w)) || rn_buf_reserve(&w->out, 2 * WRITE_SIZE) < 0) {
        free(w);
        return NULL;
    }
    w->fd = fd;
    w->fmt = fmt;
    return w;
}

void rn_writer_free(rn_writer *w)
{
    if (!w)
        return;
    rn_buf_free(&w->out);
    free(w);
}

int rn_writer_wants_headers(const rn_writer *w) { return w->fmt != RN_FMT_LINES; }

/* Write iov[0..n) whole; the buffer is empty afterwards either way. Bytes
 * that failed to go out are dropped: the caller stops on the error, and
 * keeping them would only grow the buffer. */
static int write_out(rn_writer *w, struct iovec *iov, int n, char *err)
{
    int r = 0;
    if (rn_writev_all(w->fd, iov, n) < 0) {
        rn_seterr(err, "write: %s", strerror(errno));
        r = errno == EPIPE ? RN_EPIPE : RN_ERR;
    }
    w->out.len = 0;
    if (w->out.cap > 2 * WRITE_SIZE) {
        char *p = realloc(w->out.p, 2 * WRITE_SIZE);
        if (p) {
            w->out.p = p;
            w->out.cap = 2 * WRITE_SIZE;
        }
    }
    return r;
}

int rn_writer_flush(rn_writer *w, char *err)
{
    struct iovec iov = { w->out.p, w->out.len };
    return write_out(w, &iov, w->out.len > 0, err);
}

static int nomem(char *err)
{
    rn_seterr(err, "out of memory");
    return RN_ENOMEM;
}

/* Write what is buffered and then the big body itself, in one call. */
static int write_through(rn_writer *w, const rn_str *body, char *err)
{
    struct iovec iov[2] = { { w->out.p, w->out.len }, { (void *)body->p, body->n } };
    int skip = w->out.len == 0;
    return write_out(w, iov + skip, 2 - skip, err);
}

int rn_writer_put(rn_writer *w, const rn_event *ev, char *err)
{
    return rn_writer_put_with(w, NULL, ev, err);
}

int rn_hdrset_set(rn_hdrset *s, rn_format fmt, const rn_header *h, size_t n)
{
    s->fmt = fmt;
    s->n = 0;
    s->enc.len = 0;
    for (size_t i = 0; i < n; i++) {
        const rn_str *kv[2] = { &h[i].key, &h[i].val };
        for (int j = 0; j < 2; j++) {
            if (rn_buf_reserve(&s->enc, RN_JSON_STRING_MAX(kv[j]->n) + 8) < 0)
                return -1;
            char *o = s->enc.p + s->enc.len;
            if (fmt == RN_FMT_FRAMES) {
                o = mp_put_str(o, kv[j]);
            } else {
                if (fmt == RN_FMT_JSON && (i || j))
                    *o++ = j ? ':' : ',';
                o = rn_json_write_string(o, kv[j]->p, kv[j]->n);
            }
            s->enc.len = (size_t)(o - s->enc.p);
        }
    }
    s->n = n;
    return 0;
}

void rn_hdrset_free(rn_hdrset *s) { rn_buf_free(&s->enc); }

int rn_writer_put_with(rn_writer *w, const rn_hdrset *sh, const rn_event *ev, char *err)
{
    rn_buf *b = &w->out;
    size_t n = ev->body.n;
    int r;

    if (sh && (sh->fmt != w->fmt || sh->n + ev->nhdr > RN_MAX_HEADERS)) {
        rn_seterr(err, "shared headers do not fit this writer");
        return RN_ERR;
    }

    switch (w->fmt) {
    case RN_FMT_LINES:
        if (n < WRITE_SIZE) {
            memcpy(b->p + b->len, ev->body.p, n);
            b->len += n;
        } else if ((r = write_through(w, &ev->body, err)) < 0) {
            return r;
        }
        b->p[b->len++] = '\n';
        break;
    case RN_FMT_JSON:
        if (encode_json(b, sh, ev) < 0)
            return nomem(err);
        break;
    default:
        if (!w->started) {
            if (rn_buf_append(b, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN) < 0)
                return nomem(err);
            w->started = 1;
        }
        if ((r = pack_frame(b, sh, ev, n < WRITE_SIZE)) < 0) {
            rn_seterr(err, "cannot encode a frame: %s",
                      r == RN_ETOOBIG ? "event longer than 4 GiB" : "out of memory");
            return r;
        }
        if (n >= WRITE_SIZE && (r = write_through(w, &ev->body, err)) < 0)
            return r;
    }
    return b->len >= WRITE_SIZE ? rn_writer_flush(w, err) : 0;
}

int rn_writer_put_raw(rn_writer *w, const char *p, size_t n, char *err)
{
    if (w->fmt == RN_FMT_FRAMES && !w->started) {
        memcpy(w->out.p + w->out.len, RN_FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
        w->out.len += RN_FRAMES_HEADER_LEN;     /* len < WRITE_SIZE, cap 2x */
        w->started = 1;
    }
    if (n >= WRITE_SIZE) {
        rn_str s = { p, n };
        return write_through(w, &s, err);
    }
    memcpy(w->out.p + w->out.len, p, n);   /* len < WRITE_SIZE, cap 2x */
    w->out.len += n;
    return w->out.len >= WRITE_SIZE ? rn_writer_flush(w, err) : 0;
}
