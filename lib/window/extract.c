/* extract.c -- keys, values and times out of lines: regex, field, JSON path. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "window/window.h"

#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "window/window_int.h"

enum { X_REGEX, X_FIELD, X_JSON };

struct rn_fieldx {
    int kind;
    pcre2_code *re;
    pcre2_match_data *md;
    int group;              /* 1 when the regex has a capture group, else 0 */
    int jit;                /* JIT compiled: match through the fast path */
    char *lit;              /* the literal every match starts with, or NULL */
    size_t litlen;
    pcre2_code *anchored;   /* re compiled anchored: tried where lit occurs */
    int simple;             /* LIT([^SET]*)SUF: matched without the engine */
    char simple_lit[64], suf[64];
    size_t simple_litlen, suflen;
    int plus;
    unsigned char stop[256];
    int nstop;              /* bytes in stop; the byte itself when just one */
    char stop1;
    uint64_t stopw[4];      /* up to 4 stop bytes, each in all 8 bytes of a word */
    int nstopw;             /* how many: stop_scan reads 8 bytes a step; 0: bytewise */
    unsigned field;
    char *delim;            /* NULL: runs of blanks */
    size_t delimlen;
    char **path;            /* JSON path segments */
    size_t npath;
    rn_buf buf;             /* decoded JSON strings */
};

/* A run of literal characters at p (plain ones and backslash-escaped
 * punctuation) into out, short of one that a quantifier follows; *end is
 * where the run stopped in the pattern. */
static size_t literal_run(const char *p, char *out, size_t outlen, const char **end)
{
    size_t n = 0;
    while (*p && n + 1 < outlen) {
        char c;
        size_t step;
        if (*p == '\\' && p[1] && strchr(".[]{}()\\*+?|^$/-", p[1])) {
            c = p[1];
            step = 2;
        } else if (strchr(".[]{}()\\*+?|^$", *p)) {
            break;
        } else {
            c = *p;
            step = 1;
        }
        if (p[step] && strchr("*+?{", p[step]))
            break;   /* the quantifier makes c optional or repeated */
        out[n++] = c;
        p += step;
    }
    *end = p;
    return n;
}

/* The literal text a match of re must start with; none when an alternation
 * or an option setting could make a match start elsewhere. */
static size_t literal_prefix(const char *re, char *out, size_t outlen)
{
    const char *end;
    if (strchr(re, '|') || re[0] == '^' || strncmp(re, "(?", 2) == 0)
        return 0;
    return literal_run(re, out, outlen, &end);
}

/* The shape most log extraction takes, LIT([^SET]*)SUF or with +, where SUF
 * is literal and empty or starts with a character of SET. Then the first
 * match starts at the first LIT whose span of non-SET bytes is followed by
 * SUF (a shorter span cannot end before SUF: its next byte is not in SET),
 * exactly as the regex engine finds it, and a table lookup per byte finds
 * it several times faster. Returns 1 when re has that shape. */
static int parse_simple(const char *re, struct rn_fieldx *x)
{
    const char *p, *end;
    if (strchr(re, '|') || re[0] == '^' || re[0] == '(')
        return 0;
    x->simple_litlen = literal_run(re, x->simple_lit, sizeof x->simple_lit, &p);
    if (!x->simple_litlen || strncmp(p, "([^", 3) != 0)
        return 0;
    p += 3;
    memset(x->stop, 0, sizeof x->stop);
    x->nstop = 0;
    for (int first = 1; *p && (*p != ']' || first); first = 0) {
        unsigned char c = (unsigned char)*p++;
        if (c == '\\') {
            if (!*p || !strchr(".[]{}()\\*+?|^$/-&", *p))
                return 0;   /* \d, \s and friends: left to the engine */
            c = (unsigned char)*p++;
        } else if (c == '[' || (c == '-' && *p != ']' && !first)) {
            return 0;       /* classes and ranges: likewise */
        }
        x->nstop += !x->stop[c];
        x->stop[c] = 1;
        x->stop1 = (char)c;
    }
    if (*p++ != ']' || (*p != '*' && *p != '+') || p[1] != ')')
        return 0;
    x->nstopw = 0;
    if (x->nstop <= 4)
        for (int c = 0; c < 256; c++)
            if (x->stop[c])
                x->stopw[x->nstopw++] = (uint64_t)c * 0x0101010101010101ULL;
    x->plus = *p == '+';
    p += 2;
    x->suflen = literal_run(p, x->suf, sizeof x->suf, &end);
    if (*end || (x->suflen && !x->stop[(unsigned char)x->suf[0]]))
        return 0;
    return 1;
}

/* The first byte of [q, end) in x's stop set, or end. With a few stop
 * bytes, 8 at a time: a word's bytes equal to a stop byte are its zero
 * bytes after an xor, and the lowest of the high bits that (v - 1s) & ~v
 * sets is exactly at the first of them (a borrow only runs upwards), so a
 * key's end costs one step and no branch per byte. */
static const char *stop_scan(const struct rn_fieldx *x, const char *q, const char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (x->nstopw) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        for (; end - q >= 8; q += 8) {
            uint64_t w, m = 0;
            memcpy(&w, q, 8);
            for (int i = 0; i < x->nstopw; i++) {
                uint64_t v = w ^ x->stopw[i];
                m |= (v - ones) & ~v & highs;
            }
            if (m)
                return q + (__builtin_ctzll(m) >> 3);
        }
    }
#endif
    while (q < end && !x->stop[(unsigned char)*q])
        q++;
    return q;
}

static int match_simple(struct rn_fieldx *x, const char *s, size_t n, rn_str *out)
{
    const char *p = s, *end = s + n;
    while ((p = memchr(p, x->simple_lit[0], (size_t)(end - p)))) {
        if ((size_t)(end - p) >= x->simple_litlen
            && rn_memeq(p + 1, x->simple_lit + 1, x->simple_litlen - 1)) {
            const char *start = p + x->simple_litlen, *q = start;
            if (x->nstop == 1) {        /* one stop byte: memchr is SIMD */
                q = memchr(start, x->stop1, (size_t)(end - start));
                if (!q)
                    q = end;
            } else {
                q = stop_scan(x, start, end);
            }
            if ((!x->plus || q > start)
                && (size_t)(end - q) >= x->suflen && rn_memeq(q, x->suf, x->suflen)) {
                out->p = start;
                out->n = (size_t)(q - start);
                return 1;
            }
        }
        p++;
    }
    return 0;
}

rn_fieldx *rn_fieldx_regex(const char *re, char *err)
{
    int code;
    PCRE2_SIZE off;
    rn_fieldx *x = calloc(1, sizeof *x);
    if (!x) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    x->kind = X_REGEX;
    x->re = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (!x->re) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(code, msg, sizeof msg);
        rn_seterr(err, "regex '%s': %s at offset %zu", re, (char *)msg, (size_t)off);
        free(x);
        return NULL;
    }
    uint32_t groups = 0;
    pcre2_pattern_info(x->re, PCRE2_INFO_CAPTURECOUNT, &groups);
    x->group = groups > 0;
    /* The simple shape is matched without the engine: no JIT to compile
     * (its code pages cost a start-up that matters to a short batch run).
     * Otherwise JIT is much faster; without it (an odd platform) matching
     * still works. Finding a literal prefix with memmem and matching
     * anchored there is several times faster than letting the matcher look
     * for a start. */
    x->simple = parse_simple(re, x);
    x->jit = !x->simple && pcre2_jit_compile(x->re, PCRE2_JIT_COMPLETE) == 0;
    char lit[64];
    size_t litlen = x->jit && !x->simple ? literal_prefix(re, lit, sizeof lit) : 0;
    if (litlen) {
        x->anchored = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED,
                                    &code, &off, NULL);
        if (x->anchored && pcre2_jit_compile(x->anchored, PCRE2_JIT_COMPLETE) == 0
            && (x->lit = malloc(litlen))) {
            memcpy(x->lit, lit, litlen);
            x->litlen = litlen;
        } else if (x->anchored) {
            pcre2_code_free(x->anchored);
            x->anchored = NULL;
        }
    }
    x->md = pcre2_match_data_create_from_pattern(x->re, NULL);
    if (!x->md) {
        pcre2_code_free(x->re);
        free(x);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    return x;
}

rn_fieldx *rn_fieldx_field(unsigned n, const char *delim, char *err)
{
    rn_fieldx *x = calloc(1, sizeof *x);
    if (!x || (delim && !(x->delim = strdup(delim)))) {
        free(x);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    if (n == 0) {
        free(x->delim);
        free(x);
        rn_seterr(err, "fields are numbered from 1");
        return NULL;
    }
    if (delim && !*delim) {
        free(x->delim);
        free(x);
        rn_seterr(err, "empty delimiter");
        return NULL;
    }
    x->kind = X_FIELD;
    x->field = n;
    x->delimlen = delim ? strlen(delim) : 0;
    return x;
}

rn_fieldx *rn_fieldx_json(const char *path, char *err)
{
    rn_fieldx *x = calloc(1, sizeof *x);
    if (!x)
        goto nomem;
    x->kind = X_JSON;
    for (const char *p = path;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        if (n == 0) {
            rn_fieldx_free(x);
            rn_seterr(err, "JSON path '%s' has an empty segment", path);
            return NULL;
        }
        char **np = realloc(x->path, (x->npath + 1) * sizeof *np);
        if (!np)
            goto nomem;
        x->path = np;
        if (!(x->path[x->npath] = strndup(p, n)))
            goto nomem;
        x->npath++;
        if (!dot)
            break;
        p = dot + 1;
    }
    return x;
nomem:
    rn_fieldx_free(x);
    rn_seterr(err, "out of memory");
    return NULL;
}

void rn_fieldx_free(rn_fieldx *x)
{
    if (!x)
        return;
    if (x->md)
        pcre2_match_data_free(x->md);
    if (x->re)
        pcre2_code_free(x->re);
    if (x->anchored)
        pcre2_code_free(x->anchored);
    free(x->lit);
    free(x->delim);
    for (size_t i = 0; i < x->npath; i++)
        free(x->path[i]);
    free(x->path);
    rn_buf_free(&x->buf);
    free(x);
}

static int get_regex(rn_fieldx *x, const char *s, size_t n, rn_str *out, char *err)
{
    int rc;
    if (x->simple)
        return match_simple(x, s, n, out);
    if (x->lit) {
        const char *p = s, *end = s + n;
        rc = PCRE2_ERROR_NOMATCH;
        /* memchr is SIMD; glibc's memmem for short needles is not. */
        while (rc == PCRE2_ERROR_NOMATCH && (p = memchr(p, x->lit[0], (size_t)(end - p)))) {
            if ((size_t)(end - p) >= x->litlen && rn_memeq(p + 1, x->lit + 1, x->litlen - 1))
                rc = pcre2_jit_match(x->anchored, (PCRE2_SPTR)s, n, (PCRE2_SIZE)(p - s), 0,
                                     x->md, NULL);
            p++;
        }
    } else if (x->jit) {
        rc = pcre2_jit_match(x->re, (PCRE2_SPTR)s, n, 0, 0, x->md, NULL);
    } else {
        rc = pcre2_match(x->re, (PCRE2_SPTR)s, n, 0, 0, x->md, NULL);
    }
    if (rc == PCRE2_ERROR_NOMATCH)
        return 0;
    if (rc < 0) {
        PCRE2_UCHAR msg[200];
        pcre2_get_error_message(rc, msg, sizeof msg);
        return rn_seterr(err, "regex match: %s", (char *)msg);
    }
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(x->md);
    int g = x->group;
    if (ov[2 * g] == PCRE2_UNSET)   /* an optional group that did not take part */
        return 0;
    out->p = s + ov[2 * g];
    out->n = ov[2 * g + 1] - ov[2 * g];
    return 1;
}

static int blank(char c) { return c == ' ' || c == '\t'; }

static int get_field(rn_fieldx *x, const char *s, size_t n, rn_str *out)
{
    const char *p = s, *end = s + n;
    if (!x->delim) {
        for (unsigned f = 1;; f++) {
            while (p < end && blank(*p))
                p++;
            if (p == end)
                return 0;
            const char *start = p;
            while (p < end && !blank(*p))
                p++;
            if (f == x->field) {
                out->p = start;
                out->n = (size_t)(p - start);
                return 1;
            }
        }
    }
    for (unsigned f = 1;; f++) {
        const char *d = x->delimlen == 1 ? memchr(p, x->delim[0], (size_t)(end - p))
                                         : memmem(p, (size_t)(end - p), x->delim, x->delimlen);
        if (f == x->field) {
            out->p = p;
            out->n = (size_t)((d ? d : end) - p);
            return 1;
        }
        if (!d)
            return 0;
        p = d + x->delimlen;
    }
}

__attribute__((noinline))     /* its frame stays off the regex path */
static int get_json(rn_fieldx *x, const char *s, size_t n, rn_str *out)
{
    rn_json j;
    rn_buf key = { 0 };
    char err[RN_ERRLEN];
    int found = 0;

    rn_json_init(&j, s, n, 0);
    for (size_t seg = 0; seg < x->npath; seg++) {
        rn_json_skip_ws(&j);
        if (j.p >= j.end || *j.p != '{' || rn_json_object(&j, err) < 0)
            goto out;
        int m;
        for (size_t i = 0; (m = rn_json_member(&j, i, &key, err)) == 1; i++) {
            if (key.len == strlen(x->path[seg]) && memcmp(key.p, x->path[seg], key.len) == 0)
                break;
            key.len = 0;
            if (rn_json_skip_value(&j, err) < 0)
                goto out;
        }
        key.len = 0;
        if (m != 1)
            goto out;
    }
    rn_json_skip_ws(&j);
    if (j.p < j.end && *j.p == '"') {
        x->buf.len = 0;
        if (rn_json_get_str(&j, &x->buf, err) < 0)
            goto out;
        out->p = x->buf.p ? x->buf.p : "";
        out->n = x->buf.len;
    } else {
        /* A number, true, false: its text. Objects and arrays are no key. */
        const char *v0 = j.p;
        if (j.p >= j.end || *j.p == '{' || *j.p == '[' || *j.p == 'n'
            || rn_json_skip_value(&j, err) < 0)
            goto out;
        out->p = v0;
        out->n = (size_t)(j.p - v0);
    }
    found = 1;
out:
    rn_buf_free(&key);
    return found;
}

int rn_fieldx_get(rn_fieldx *x, const char *s, size_t n, rn_str *out, char *err)
{
    switch (x->kind) {
    case X_REGEX: return get_regex(x, s, n, out, err);
    case X_FIELD: return get_field(x, s, n, out);
    default: return get_json(x, s, n, out);
    }
}

int rn_lower(rn_buf *b, const char *s, size_t n)
{
    b->len = 0;
    if (rn_buf_reserve(b, n + 1) < 0)
        return -1;
    for (size_t i = 0; i < n; i++)
        b->p[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] + 32) : s[i];
    b->len = n;
    return 0;
}

int rn_urldecode(rn_buf *b, const char *s, size_t n)
{
    b->len = 0;
    if (rn_buf_reserve(b, n + 1) < 0)
        return RN_ENOMEM;
    char *o = b->p;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = rn_hexval((unsigned char)s[i + 1])) >= 0
            && (lo = rn_hexval((unsigned char)s[i + 2])) >= 0) {
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *o++ = s[i] == '+' ? ' ' : s[i];
        }
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* ---- times ------------------------------------------------------------------ */

enum { T_STRPTIME, T_EPOCH, T_EPOCH_MS, T_EPOCH_NS, T_ISO };

struct rn_timex {
    int kind;
    char *fmt;
    char last[64];          /* the last string parsed, and its result */
    size_t lastlen;
    int64_t lastns;
    int haslast;
};

rn_timex *rn_timex_new(const char *format, char *err)
{
    rn_timex *x = calloc(1, sizeof *x);
    if (!x || !(x->fmt = strdup(format))) {
        free(x);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    x->kind = strcmp(format, "epoch") == 0      ? T_EPOCH
              : strcmp(format, "epoch_ms") == 0 ? T_EPOCH_MS
              : strcmp(format, "epoch_ns") == 0 ? T_EPOCH_NS
              : strcmp(format, "iso8601") == 0  ? T_ISO
                                                : T_STRPTIME;
    if (x->kind == T_STRPTIME && !strchr(format, '%')) {
        rn_timex_free(x);
        rn_seterr(err, "time format '%s' has no %% conversion", format);
        return NULL;
    }
    return x;
}

void rn_timex_free(rn_timex *x)
{
    if (x)
        free(x->fmt);
    free(x);
}

/* Decimal seconds (or ms, or ns) with an optional fraction, in integers so
 * that "1700000000123" ms is exact. */
static int parse_epoch(const char *s, int64_t unit, int64_t *ns)
{
    const char *p = s;
    int neg = *p == '-';
    uint64_t whole = 0, frac = 0, scale = (uint64_t)unit;
    if (neg || *p == '+')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (whole > (uint64_t)INT64_MAX / 10)
            return -1;
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            scale /= 10;
            frac += (uint64_t)(*p - '0') * scale;
        }
    }
    if (*p || whole > ((uint64_t)INT64_MAX - frac) / (uint64_t)unit)
        return -1;
    int64_t v = (int64_t)(whole * (uint64_t)unit + frac);
    *ns = neg ? -v : v;
    return 0;
}

/* "2023-11-14T22:13:20Z", with optional .fraction and Z or +hh:mm / -hhmm */
static int parse_iso(const char *s, int64_t *ns)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p)
        return -1;
    int64_t frac = 0, scale = 100000000;
    if (*p == '.' || *p == ',') {
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
    }
    int64_t off = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, h, m;
        if (sscanf(p, "%2d:%2d", &h, &m) == 2)
            p += 5;
        else if (sscanf(p, "%2d%2d", &h, &m) == 2)
            p += 4;
        else
            return -1;
        off = sign * (h * 3600 + m * 60);
    } else {
        return -1;
    }
    if (*p)
        return -1;
    return rn_time__ns((int64_t)timegm(&tm), off, frac, ns);
}

int rn_timex_parse(rn_timex *x, const char *s, size_t n, int64_t *ns)
{
    char buf[sizeof x->last];
    if (n >= sizeof buf)
        return -1;
    if (x->haslast && n == x->lastlen && rn_memeq(s, x->last, n)) {
        *ns = x->lastns;
        return 0;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    int64_t v;
    switch (x->kind) {
    case T_EPOCH: if (parse_epoch(buf, 1000000000, &v) < 0) return -1; break;
    case T_EPOCH_MS: if (parse_epoch(buf, 1000000, &v) < 0) return -1; break;
    case T_EPOCH_NS: if (parse_epoch(buf, 1, &v) < 0) return -1; break;
    case T_ISO: if (parse_iso(buf, &v) < 0) return -1; break;
    default: {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(buf, x->fmt, &tm);
        if (!end || *end)
            return -1;
        /* %z fills tm_gmtoff; without it the time is taken as UTC. Read it
         * before timegm, which normalises tm and resets it. */
        long gmtoff = tm.tm_gmtoff;
        if (rn_time__ns((int64_t)timegm(&tm), gmtoff, 0, &v) < 0)
            return -1;
    }
    }
    memcpy(x->last, s, n);
    x->lastlen = n;
    x->lastns = v;
    x->haslast = 1;
    *ns = v;
    return 0;
}
