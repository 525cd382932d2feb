/* rows.c -- window rows (start, end, key, value) as tsv, json and frames. */
#include "window/window.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "window/window_int.h"

#define WRITE_SIZE (64 * 1024)

int rn_rowfmt_parse(const char *s, rn_rowfmt *fmt, char *err)
{
    if (strcmp(s, "tsv") == 0)
        *fmt = RN_ROW_TSV;
    else if (strcmp(s, "json") == 0)
        *fmt = RN_ROW_JSON;
    else if (strcmp(s, "frames") == 0)
        *fmt = RN_ROW_FRAMES;
    else
        return rn_seterr(err, "unknown row format '%s' (use tsv, json or frames)", s);
    return 0;
}

/* ---- values and times ----------------------------------------------------- */

double rn_value_double(rn_value v)
{
    if (v.is_float)
        return v.f;
    if (!v.scale)
        return (double)v.i;
    /* Both operands exact, so the quotient is correctly rounded; a larger
     * mantissa goes through its text, which strtod rounds correctly. */
    if (v.i >= -(1LL << 53) && v.i <= (1LL << 53))
        return (double)v.i / (double)rn_dec__pow10(v.scale);
    char s[32];
    s[rn_value_format(v, s)] = '\0';
    return strtod(s, NULL);
}

size_t rn_value_format(rn_value v, char *out)
{
    if (!v.is_float) {
        char d[24];
        size_t n = 0, dn = rn_u64_dec(v.i < 0 ? -(uint64_t)v.i : (uint64_t)v.i, d);
        int sc = v.scale > 0 && v.scale <= RN_DEC_MAXSCALE ? v.scale : 0;
        if (v.i < 0)
            out[n++] = '-';
        if (!sc) {
            memcpy(out + n, d, dn);
            return n + dn;
        }
        /* Digits with at least one before the point: "0.05" for 5, scale 2. */
        size_t lead = dn > (size_t)sc ? dn - (size_t)sc : 0;
        if (lead) {
            memcpy(out + n, d, lead);
            n += lead;
        } else {
            out[n++] = '0';
        }
        out[n++] = '.';
        for (size_t z = dn < (size_t)sc ? (size_t)sc - dn : 0; z; z--)
            out[n++] = '0';
        memcpy(out + n, d + lead, dn - lead);
        return n + dn - lead;
    }
    /* The fewest digits that read back to the same double. */
    int n = snprintf(out, 32, "%.15g", v.f);
    if (strtod(out, NULL) != v.f)
        n = snprintf(out, 32, "%.17g", v.f);
    return (size_t)n;
}

int rn_value_parse(const char *s, size_t n, rn_value *v)
{
    char buf[64];
    const char *p = s, *end = s + n;
    uint64_t mag = 0;
    int neg = 0, digits = 0, scale = -1, fits = 1;

    if (n == 0 || n >= sizeof buf)
        return -1;
    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    /* [sign] digits [. digits]: an integer or a decimal when it fits. */
    for (; p < end; p++) {
        if (*p == '.' && scale < 0) {
            scale = 0;
            continue;
        }
        if (*p < '0' || *p > '9')
            break;
        digits++;
        if (scale >= 0)
            scale++;
        if (mag > (UINT64_MAX - 9) / 10)
            fits = 0;
        else
            mag = mag * 10 + (uint64_t)(*p - '0');
    }
    if (p == end && digits && fits && scale <= RN_DEC_MAXSCALE
        && mag <= (uint64_t)INT64_MAX + (uint64_t)neg) {
        v->is_float = 0;
        v->i = neg ? (int64_t)(0 - mag) : (int64_t)mag;
        v->f = 0;
        v->scale = scale > 0 ? scale : 0;
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *e;
    errno = 0;
    double d = strtod(buf, &e);
    if (e != buf + n || !isfinite(d) || errno == ERANGE)
        return -1;
    v->is_float = 1;
    v->i = 0;
    v->f = d;
    v->scale = 0;
    return 0;
}

size_t rn_time_format(int64_t ns, char *out) { return rn_time_format_tz(ns, NULL, out); }

/* n as d digits (zeros in front) at o; returns the end. */
static char *put_digits(char *o, unsigned n, int d)
{
    for (int i = d - 1; i >= 0; i--, n /= 10)
        o[i] = (char)('0' + n % 10);
    return o + d;
}

size_t rn_time_format_tz(int64_t ns, rn_tz *tz, char *out)
{
    int32_t off = tz && !rn_tz_is_utc(tz) ? rn_tz_offset(tz, ns) : 0;
    /* The offset is added to seconds: added to ns, it could overflow at
     * the ends of the range. */
    time_t sec = (time_t)(ns / 1000000000);
    int64_t rem = ns % 1000000000;
    struct tm tm;

    if (rem < 0) {
        rem += 1000000000;
        sec--;
    }
    sec += off;
    gmtime_r(&sec, &tm);
    /* int64 ns spans the years 1677 to 2262: four digits, no sign. The
     * digits by hand, some 2k instructions a time fewer than snprintf: a
     * writer formats a window's bounds once for its rows (kept_time), but
     * small windows are many (winagg -w 1s: 0.7% of the run). */
    char *o = put_digits(out, (unsigned)(tm.tm_year + 1900), 4);
    *o++ = '-';
    o = put_digits(o, (unsigned)tm.tm_mon + 1, 2);
    *o++ = '-';
    o = put_digits(o, (unsigned)tm.tm_mday, 2);
    *o++ = 'T';
    o = put_digits(o, (unsigned)tm.tm_hour, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_min, 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)tm.tm_sec, 2);
    if (rem / 1000000) {
        *o++ = '.';
        o = put_digits(o, (unsigned)(rem / 1000000), 3);
    }
    if (!tz || rn_tz_is_utc(tz)) {
        *o++ = 'Z';
        *o = '\0';
        return (size_t)(o - out);
    }
    int32_t a = off < 0 ? -off : off;
    *o++ = off < 0 ? '-' : '+';
    o = put_digits(o, (unsigned)(a / 3600), 2);
    *o++ = ':';
    o = put_digits(o, (unsigned)(a / 60 % 60), 2);
    if (a % 60) {   /* local mean time, before 1900 */
        *o++ = ':';
        o = put_digits(o, (unsigned)(a % 60), 2);
    }
    *o = '\0';
    return (size_t)(o - out);
}

static int digits(const char **p, const char *end, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (*p >= end || **p < '0' || **p > '9')
            return -1;
        v = v * 10 + (**p - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to year y, month m (1-12), day d of the proleptic
 * Gregorian calendar (d may run past the month's end). Eras of 400 years
 * (146097 days) from March 1st of year 0, so that February comes last. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;                                  /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  /* from March 1st */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* 0..146096 */
    return era * 146097 + doe - 719468;
}

int rn_time__ns(int64_t sec, int64_t off, int64_t sub, int64_t *ns)
{
    int64_t v;
    if (__builtin_sub_overflow(sec, off, &sec))
        return -1;
    if (sec < 0 && sub > 0) {   /* the earliest times: sec * 1e9 alone is out of reach */
        sec++;
        sub -= 1000000000;
    }
    if (__builtin_mul_overflow(sec, (int64_t)1000000000, &v)
        || __builtin_add_overflow(v, sub, &v))
        return -1;
    *ns = v;
    return 0;
}

int rn_time_parse(const char *s, size_t n, int64_t *ns)
{
    const char *p = s, *end = s + n;
    int y, mo, d, h, mi, sec, ms = 0, off = 0;

    if (digits(&p, end, 4, &y) || p >= end || *p++ != '-' || digits(&p, end, 2, &mo)
        || p >= end || *p++ != '-' || digits(&p, end, 2, &d) || p >= end || *p++ != 'T'
        || digits(&p, end, 2, &h) || p >= end || *p++ != ':' || digits(&p, end, 2, &mi)
        || p >= end || *p++ != ':' || digits(&p, end, 2, &sec))
        return -1;
    if (p < end && *p == '.') {
        p++;
        if (digits(&p, end, 3, &ms))
            return -1;
    }
    if (p < end && (*p == '+' || *p == '-')) {   /* an offset: +HH:MM[:SS], +HHMM, +HH */
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0, os = 0;
        if (digits(&p, end, 2, &oh))
            return -1;
        if (p < end) {
            int colon = *p == ':';
            p += colon;
            if (digits(&p, end, 2, &om)
                || (p < end && (!colon || *p++ != ':' || digits(&p, end, 2, &os))))
                return -1;
        }
        if (p != end || oh > 23 || om > 59 || os > 59)
            return -1;
        off = sign * (oh * 3600 + om * 60 + os);
    } else if (p + 1 != end || *p != 'Z') {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    /* What timegm gives (a day past the month's end or a 60th second runs
     * on into the next), by arithmetic: a reader parses a window's bounds
     * once for its rows (kept_time) and its watermark, and small windows
     * are many. */
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    return rn_time__ns(t, off, (int64_t)ms * 1000000, ns);
}

/* ---- encoding ------------------------------------------------------------- */

/* The key's bytes, escaped, at o (room for 2n); returns the end. */
static char *tsv_key_at(char *o, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        switch (c) {
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        default: *o++ = c;
        }
    }
    return o;
}

int rn_tsv_key(rn_buf *b, const char *s, size_t n)
{
    if (rn_buf_reserve(b, 2 * n) < 0)
        return -1;
    b->len = (size_t)(tsv_key_at(b->p + b->len, s, n) - b->p);
    return 0;
}

/* A time and its text, kept: the rows of a window share their bounds, which
 * a writer formats and a reader parses once for them all. */
typedef struct kept_time {
    int64_t ns;
    size_t n;           /* 0: none yet */
    char s[RN_TIMELEN];
} kept_time;

struct rn_rowwriter {
    int fd;
    rn_rowfmt fmt;
    rn_buf out;         /* tsv and json */
    rn_buf line;        /* frames: the body */
    rn_writer *frames;
    rn_tz *tz;          /* times in this zone's local time; NULL: UTC */
    kept_time start, end;   /* the bounds of the last row */
};

/* ns formatted in w's zone, through the kept time c. */
static const kept_time *row_time(rn_rowwriter *w, kept_time *c, int64_t ns)
{
    if (!c->n || c->ns != ns) {
        c->n = rn_time_format_tz(ns, w->tz, c->s);
        c->ns = ns;
    }
    return c;
}

/* The tsv row, with its newline when nl: one reservation, then the bytes
 * (a sliding window writes every key of every window). */
static int put_tsv(rn_rowwriter *w, rn_buf *b, const rn_row *r, int nl)
{
    const kept_time *s = row_time(w, &w->start, r->start), *e = row_time(w, &w->end, r->end);
    char v[32];
    size_t vn = rn_value_format(r->value, v);
    if (r->key.n > SIZE_MAX / 4 || rn_buf_reserve(b, s->n + e->n + 2 * r->key.n + vn + 4) < 0)
        return -1;
    char *o = b->p + b->len;
    memcpy(o, s->s, s->n);
    o += s->n;
    *o++ = '\t';
    memcpy(o, e->s, e->n);
    o += e->n;
    *o++ = '\t';
    o = tsv_key_at(o, r->key.p, r->key.n);
    *o++ = '\t';
    memcpy(o, v, vn);
    o += vn;
    if (nl)
        *o++ = '\n';
    b->len = (size_t)(o - b->p);
    return 0;
}

static int put_json(rn_rowwriter *w, rn_buf *b, const rn_row *r)
{
    const kept_time *s = row_time(w, &w->start, r->start), *e = row_time(w, &w->end, r->end);
    char v[32];
    size_t vn = rn_value_format(r->value, v);
    if (rn_buf_append(b, "{\"start\":\"", 10) < 0 || rn_buf_append(b, s->s, s->n) < 0
        || rn_buf_append(b, "\",\"end\":\"", 9) < 0 || rn_buf_append(b, e->s, e->n) < 0
        || rn_buf_append(b, "\",\"key\":", 8) < 0
        || rn_json_put_string(b, r->key.p, r->key.n) < 0
        || rn_buf_append(b, ",\"value\":", 9) < 0 || rn_buf_append(b, v, vn) < 0
        || (r->partial && rn_buf_append(b, ",\"partial\":true", 15) < 0)
        || rn_buf_append(b, "}\n", 2) < 0)
        return -1;
    return 0;
}

rn_rowwriter *rn_rowwriter_new(int fd, rn_rowfmt fmt)
{
    rn_rowwriter *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->fd = fd;
    w->fmt = fmt;
    if (fmt == RN_ROW_FRAMES && !(w->frames = rn_writer_new(fd, RN_FMT_FRAMES))) {
        free(w);
        return NULL;
    }
    return w;
}

void rn_rowwriter_free(rn_rowwriter *w)
{
    if (!w)
        return;
    rn_buf_free(&w->out);
    rn_buf_free(&w->line);
    rn_writer_free(w->frames);
    free(w);
}

void rn_rowwriter_set_tz(rn_rowwriter *w, rn_tz *tz)
{
    w->tz = tz;
    w->start.n = w->end.n = 0;      /* kept times are of the old zone */
}

int rn_rowwriter_flush(rn_rowwriter *w, char *err)
{
    if (w->frames)
        return rn_writer_flush(w->frames, err);
    int r = rn_write_all(w->fd, w->out.p, w->out.len);
    w->out.len = 0;
    if (r < 0) {
        rn_seterr(err, "write: %s", strerror(errno));
        return errno == EPIPE ? RN_EPIPE : RN_ERR;
    }
    return 0;
}

int rn_rowwriter_put(rn_rowwriter *w, const rn_row *r, char *err)
{
    if (w->fmt == RN_ROW_FRAMES) {
        char v[32];
        rn_event ev;
        w->line.len = 0;
        if (put_tsv(w, &w->line, r, 0) < 0)
            goto nomem;
        rn_event_clear(&ev);
        ev.ts = r->end;
        rn_event_add_header(&ev, "start", 5, w->start.s, w->start.n);
        rn_event_add_header(&ev, "end", 3, w->end.s, w->end.n);
        rn_event_add_header(&ev, "key", 3, r->key.p, r->key.n);
        rn_event_add_header(&ev, "value", 5, v, rn_value_format(r->value, v));
        if (r->partial)
            rn_event_add_header(&ev, "partial", 7, "1", 1);
        ev.body.p = w->line.p;
        ev.body.n = w->line.len;
        return rn_writer_put(w->frames, &ev, err);
    }
    if ((w->fmt == RN_ROW_TSV ? put_tsv(w, &w->out, r, 1) : put_json(w, &w->out, r)) < 0)
        goto nomem;
    return w->out.len >= WRITE_SIZE ? rn_rowwriter_flush(w, err) : 0;
nomem:
    rn_seterr(err, "out of memory");
    return RN_ENOMEM;
}

#define WM_PREFIX "# watermark "
#define WM_PREFIX_LEN (sizeof WM_PREFIX - 1)

int rn_rowwriter_watermark(rn_rowwriter *w, int64_t wm, char *err)
{
    char t[RN_TIMELEN];
    size_t tn = rn_time_format_tz(wm, w->tz, t);
    rn_buf *b = w->fmt == RN_ROW_FRAMES ? &w->line : &w->out;

    if (w->fmt == RN_ROW_FRAMES)
        b->len = 0;
    if (w->fmt == RN_ROW_JSON) {
        if (rn_buf_append(b, "{\"watermark\":\"", 14) < 0 || rn_buf_append(b, t, tn) < 0
            || rn_buf_append(b, "\"}\n", 3) < 0)
            goto nomem;
    } else if (rn_buf_append(b, WM_PREFIX, WM_PREFIX_LEN) < 0 || rn_buf_append(b, t, tn) < 0
               || (w->fmt == RN_ROW_TSV && rn_buf_append(b, "\n", 1) < 0)) {
        goto nomem;
    }
    if (w->fmt == RN_ROW_FRAMES) {
        rn_event ev;
        rn_event_clear(&ev);
        ev.ts = wm;
        rn_event_add_header(&ev, "watermark", 9, t, tn);
        ev.body.p = b->p;
        ev.body.n = b->len;
        return rn_writer_put(w->frames, &ev, err);
    }
    return w->out.len >= WRITE_SIZE ? rn_rowwriter_flush(w, err) : 0;
nomem:
    rn_seterr(err, "out of memory");
    return RN_ENOMEM;
}

/* ---- decoding ------------------------------------------------------------- */

struct rn_rowreader {
    char *name;
    rn_decoder *d;
    uint64_t line;          /* lines read (tsv, json) */
    rn_buf key;             /* the decoded key of the last row */
    int failed;
    kept_time start, end;   /* the bounds of the last row */
};

/* rn_time_parse through the kept time c. */
static int kept_time_parse(kept_time *c, const char *s, size_t n, int64_t *ns)
{
    if (c->n && n == c->n && rn_memeq(s, c->s, n)) {
        *ns = c->ns;
        return 0;
    }
    if (rn_time_parse(s, n, ns) < 0)
        return -1;
    if (n <= sizeof c->s) {
        memcpy(c->s, s, n);
        c->n = n;
        c->ns = *ns;
    }
    return 0;
}

rn_rowreader *rn_rowreader_new(const char *name)
{
    rn_rowreader *r = calloc(1, sizeof *r);
    if (!r || !(r->name = strdup(name))
        || !(r->d = rn_decoder_new(RN_FMT_AUTO, RN_DEFAULT_MAX_EVENT))) {
        if (r)
            free(r->name);
        free(r);
        return NULL;
    }
    return r;
}

void rn_rowreader_free(rn_rowreader *r)
{
    if (!r)
        return;
    rn_decoder_free(r->d);
    rn_buf_free(&r->key);
    free(r->name);
    free(r);
}

int rn_rowreader_feed(rn_rowreader *r, const void *buf, size_t len, char *err)
{
    return rn_decoder_feed(r->d, buf, len, err);
}

void rn_rowreader_eof(rn_rowreader *r) { rn_decoder_eof(r->d); }

static int unescape_key(rn_rowreader *r, const char *p, size_t n)
{
    r->key.len = 0;
    if (rn_buf_reserve(&r->key, n + 1) < 0)
        return -1;
    char *o = r->key.p;
    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\\') {
            *o++ = p[i];
            continue;
        }
        if (++i == n)
            return -1;
        switch (p[i]) {
        case 't': *o++ = '\t'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case '\\': *o++ = '\\'; break;
        default: return -1;
        }
    }
    r->key.len = (size_t)(o - r->key.p);
    return 0;
}

/* "START\tEND\tKEY\tVALUE" */
static const char *parse_tsv(rn_rowreader *r, const char *p, size_t n, rn_row *row)
{
    const char *f[4], *end = p + n;
    size_t len[4];
    for (int i = 0; i < 4; i++) {
        const char *tab = i < 3 ? memchr(p, '\t', (size_t)(end - p)) : NULL;
        if (i < 3 && !tab)
            return "expected 4 tab-separated fields: start, end, key, value";
        f[i] = p;
        len[i] = (size_t)((i < 3 ? tab : end) - p);
        p = i < 3 ? tab + 1 : end;
    }
    if (memchr(f[3], '\t', len[3]))
        return "more than 4 tab-separated fields";
    if (kept_time_parse(&r->start, f[0], len[0], &row->start) < 0)
        return "the window start is not an ISO 8601 UTC time";
    if (kept_time_parse(&r->end, f[1], len[1], &row->end) < 0)
        return "the window end is not an ISO 8601 UTC time";
    if (unescape_key(r, f[2], len[2]) < 0)
        return "bad escape in the key";
    if (rn_value_parse(f[3], len[3], &row->value) < 0)
        return "the value is not a number";
    row->partial = 0;
    return NULL;
}

/* A json line: a row (*is_wm 0) or a watermark record (*is_wm 1, *wm). */
static const char *parse_json_row(rn_rowreader *r, const char *p, size_t n, rn_row *row,
                                  int64_t *wm, int *is_wm, char *jerr)
{
    rn_json j;
    rn_buf k = { 0 }, s = { 0 };
    const char *why = NULL;
    int seen = 0, m;

    rn_json_init(&j, p, n, 0);
    if (rn_json_object(&j, jerr) < 0)
        return jerr;
    r->key.len = 0;
    row->partial = 0;
    for (size_t i = 0; (m = rn_json_member(&j, i, &k, jerr)) == 1; i++) {
        if (k.len == 5 && memcmp(k.p, "start", 5) == 0 && !(seen & 1)) {
            s.len = 0;
            if (rn_json_get_str(&j, &s, jerr) < 0
                || kept_time_parse(&r->start, s.p, s.len, &row->start) < 0) {
                why = "\"start\" is not an ISO 8601 UTC time";
                goto out;
            }
            seen |= 1;
        } else if (k.len == 3 && memcmp(k.p, "end", 3) == 0 && !(seen & 2)) {
            s.len = 0;
            if (rn_json_get_str(&j, &s, jerr) < 0
                || kept_time_parse(&r->end, s.p, s.len, &row->end) < 0) {
                why = "\"end\" is not an ISO 8601 UTC time";
                goto out;
            }
            seen |= 2;
        } else if (k.len == 3 && memcmp(k.p, "key", 3) == 0 && !(seen & 4)) {
            if (rn_json_get_str(&j, &r->key, jerr) < 0) {
                why = jerr;
                goto out;
            }
            seen |= 4;
        } else if (k.len == 5 && memcmp(k.p, "value", 5) == 0 && !(seen & 8)) {
            rn_json_skip_ws(&j);
            const char *v0 = j.p;
            if (rn_json_skip_value(&j, jerr) < 0
                || rn_value_parse(v0, (size_t)(j.p - v0), &row->value) < 0) {
                why = "\"value\" is not a number";
                goto out;
            }
            seen |= 8;
        } else if (k.len == 7 && memcmp(k.p, "partial", 7) == 0) {
            rn_json_skip_ws(&j);
            const char *v0 = j.p;
            if (rn_json_skip_value(&j, jerr) < 0)
                goto bad_partial;
            if ((size_t)(j.p - v0) == 4 && memcmp(v0, "true", 4) == 0)
                row->partial = 1;
            else if ((size_t)(j.p - v0) != 5 || memcmp(v0, "false", 5) != 0)
                goto bad_partial;
        } else if (k.len == 9 && memcmp(k.p, "watermark", 9) == 0 && !(seen & 16)) {
            s.len = 0;
            if (rn_json_get_str(&j, &s, jerr) < 0 || rn_time_parse(s.p, s.len, wm) < 0) {
                why = "\"watermark\" is not an ISO 8601 UTC time";
                goto out;
            }
            seen |= 16;
        } else if (rn_json_skip_value(&j, jerr) < 0) {
            why = jerr;
            goto out;
        }
        k.len = 0;
    }
    *is_wm = seen == 16;
    if (m < 0)
        why = jerr;
    else if (seen != 15 && seen != 16)
        why = seen & 16 ? "a watermark record has no other member"
                        : "a row needs \"start\", \"end\", \"key\" and \"value\"";
out:
    rn_buf_free(&k);
    rn_buf_free(&s);
    return why;
bad_partial:
    why = "\"partial\" is not true or false";
    goto out;
}

/* A frame: a row (*is_wm 0) or a watermark record (*is_wm 1, *wm). */
static const char *row_from_frame(rn_rowreader *r, const rn_event *ev, rn_row *row,
                                  int64_t *wm, int *is_wm)
{
    const rn_str *w = rn_event_header(ev, "watermark");
    if ((*is_wm = w != NULL)) {
        if (rn_event_header(ev, "key"))
            return "an event with both the watermark and the key header";
        if (rn_time_parse(w->p, w->n, wm) < 0)
            return "the watermark is not an ISO 8601 UTC time";
        return NULL;
    }
    const rn_str *s = rn_event_header(ev, "start"), *e = rn_event_header(ev, "end"),
                 *k = rn_event_header(ev, "key"), *v = rn_event_header(ev, "value");
    if (!s || !e || !k || !v)
        return "an event without the start, end, key and value headers of a row";
    if (kept_time_parse(&r->start, s->p, s->n, &row->start) < 0
        || kept_time_parse(&r->end, e->p, e->n, &row->end) < 0)
        return "a window bound is not an ISO 8601 UTC time";
    r->key.len = 0;
    if (rn_buf_append(&r->key, k->p, k->n) < 0)
        return "out of memory";
    if (rn_value_parse(v->p, v->n, &row->value) < 0)
        return "the value is not a number";
    const rn_str *pa = rn_event_header(ev, "partial");
    if (pa && !(pa->n == 1 && (pa->p[0] == '0' || pa->p[0] == '1')))
        return "the partial header is not 0 or 1";
    row->partial = pa && pa->p[0] == '1';
    return NULL;
}

/* "# watermark TIME": 1 with *wm; 0 for any other comment. */
static int tsv_watermark(const char *p, size_t n, int64_t *wm)
{
    return n > WM_PREFIX_LEN && memcmp(p, WM_PREFIX, WM_PREFIX_LEN) == 0
           && rn_time_parse(p + WM_PREFIX_LEN, n - WM_PREFIX_LEN, wm) == 0;
}

int rn_rowreader_next(rn_rowreader *r, rn_row *row, int64_t *wm, char *err)
{
    rn_event ev;
    char derr[RN_ERRLEN];

    if (r->failed)
        return rn_seterr(err, "%s: reading stopped at an earlier error", r->name);
    for (;;) {
        uint64_t off = rn_decoder_offset(r->d);
        int n = rn_decoder_next(r->d, &ev, derr);
        if (n == RN_ERR) {
            r->failed = 1;
            return rn_seterr(err, "%s: %s", r->name, derr);
        }
        if (n == 0)
            return 0;
        const char *why;
        char jerr[RN_ERRLEN];
        jerr[0] = '\0';
        int evfmt = rn_decoder_format(r->d) != RN_FMT_LINES;   /* rows in headers */
        int is_wm = 0;
        if (evfmt) {
            if ((why = row_from_frame(r, &ev, row, wm, &is_wm))) {
                r->failed = 1;
                return rn_seterr(err, "%s: byte offset %llu: %s", r->name,
                                 (unsigned long long)off, why);
            }
        } else {
            r->line++;
            const char *p = ev.body.p;
            size_t len = ev.body.n;
            if (len && p[len - 1] == '\r')
                len--;
            if (len && p[0] == '#' && tsv_watermark(p, len, wm))
                return RN_ROWS_WATERMARK;
            if (len == 0 || p[0] == '#')
                continue;
            why = p[0] == '{' ? parse_json_row(r, p, len, row, wm, &is_wm, jerr)
                              : parse_tsv(r, p, len, row);
            if (why) {
                r->failed = 1;
                return rn_seterr(err, "%s: line %llu: %s", r->name,
                                 (unsigned long long)r->line, why);
            }
        }
        if (is_wm)
            return RN_ROWS_WATERMARK;
        if (row->end <= row->start) {
            r->failed = 1;
            return rn_seterr(err, "%s: %s %llu: the window ends before it starts", r->name,
                             evfmt ? "byte offset" : "line",
                             (unsigned long long)(evfmt ? off : r->line));
        }
        row->key.p = r->key.p ? r->key.p : "";
        row->key.n = r->key.len;
        return RN_ROWS_ROW;
    }
}
