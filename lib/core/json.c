/* json.c -- JSON strings that round-trip any bytes, and a cursor for json lines. */
#include "core/core.h"

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const char hex[] = "0123456789abcdef";

/* What rn_json_write_string does with a byte: copy it (0), escape it (1), or
 * check that it starts a valid UTF-8 sequence (2). */
static const unsigned char byte_class[256] = {
    1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1, 1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,
    0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,1,0,0,0,
    0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
    2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2, 2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,
};

/* The second-byte ranges exclude overlong forms, UTF-16 surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF). */
size_t rn_utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0], lo = 0x80, hi = 0xbf;

    if (c < 0xc2 || c > 0xf4 || n < 2)
        return 0;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (s[1] < lo || s[1] > hi)
        return 0;
    if (c < 0xe0)
        return 2;
    if (n < 3 || (s[2] & 0xc0) != 0x80)
        return 0;
    if (c < 0xf0)
        return 3;
    return n >= 4 && (s[3] & 0xc0) == 0x80 ? 4 : 0;
}

#define ONES 0x0101010101010101u
#define HIGH (ONES << 7)

static uint64_t load8(const unsigned char *p)
{
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* The top bit of some byte is set if one of the 8 bytes in x is a control
 * byte, '"' or '\\'. For a byte b, (b - k) & ~b has its top bit set when
 * b < k, and a borrow only comes from such a byte: testing 8 bytes at once
 * makes plain text several times faster than a byte at a time. */
static uint64_t special8(uint64_t x)
{
    uint64_t q = x ^ ONES * '"', bs = x ^ ONES * '\\';
    return (((x - ONES * 0x20) & ~x) | ((q - ONES) & ~q) | ((bs - ONES) & ~bs)) & HIGH;
}

/* Whether all 8 bytes in x are written as they are: also none >= 0x80. */
static int plain8(uint64_t x)
{
    return !((x & HIGH) | special8(x));
}

#ifdef __SSE2__
/* The bytes of x that are not written as they are, as the bits of a mask:
 * a signed compare with 0x20 takes control bytes and those >= 0x80 alike. */
static unsigned special16(__m128i x)
{
    __m128i m = _mm_or_si128(_mm_cmplt_epi8(x, _mm_set1_epi8(0x20)),
                             _mm_or_si128(_mm_cmpeq_epi8(x, _mm_set1_epi8('"')),
                                          _mm_cmpeq_epi8(x, _mm_set1_epi8('\\'))));
    return (unsigned)_mm_movemask_epi8(m);
}
#endif

/* Copy the bytes of s[i..n) that are written as they are to *op, up to the
 * first that is not; its index (n: all were). 16 bytes a step where SSE2
 * is (every x86-64), the last step overlapping the one before: each stores
 * all 16 bytes, and the output moves on only past the plain ones, which the
 * room for six bytes a byte allows. */
static size_t copy_plain(char **op, const unsigned char *s, size_t i, size_t n)
{
    char *o = *op;
    size_t run;
#ifdef __SSE2__
    size_t i0 = i;
    char *o0 = o;
    while (i + 16 <= n) {
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + i));
        _mm_storeu_si128((__m128i *)(void *)o, x);
        unsigned m = special16(x);
        if (m) {
            unsigned k = (unsigned)__builtin_ctz(m);
            *op = o + k;
            return i + k;
        }
        i += 16;
        o += 16;
    }
    if (i < n && n - 16 >= i0 && n >= 16) {
        /* The last 16 bytes: those before i were copied as they are, to
         * the same places, so writing them again changes nothing. */
        __m128i x = _mm_loadu_si128((const __m128i *)(const void *)(s + n - 16));
        o = o0 + (n - 16 - i0);
        _mm_storeu_si128((__m128i *)(void *)o, x);
        unsigned m = special16(x), k = m ? (unsigned)__builtin_ctz(m) : 16;
        *op = o + k;
        return n - 16 + k;
    }
#endif
    run = i;
    while (i + 8 <= n && plain8(load8(s + i)))
        i += 8;
    while (i < n && byte_class[s[i]] == 0)
        i++;
    memcpy(o, s + run, i - run);
    *op = o + (i - run);
    return i;
}

/* A string of fewer than 16 bytes that is written as it is (keys, numbers,
 * short values: most of a json line's strings), copied without a loop: two
 * overlapping words check and copy 4..15 bytes. The end, or NULL when one
 * of the bytes is not plain. */
static char *copy_short(char *o, const unsigned char *s, size_t n)
{
    if (n >= 8) {
        uint64_t a = load8(s), b = load8(s + n - 8);
        if (!plain8(a) || !plain8(b))
            return NULL;
        memcpy(o, &a, 8);
        memcpy(o + n - 8, &b, 8);
    } else if (n >= 4) {
        uint32_t a, b;
        memcpy(&a, s, 4);
        memcpy(&b, s + n - 4, 4);
        if (!plain8((uint64_t)a | (uint64_t)b << 32))
            return NULL;
        memcpy(o, &a, 4);
        memcpy(o + n - 4, &b, 4);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (byte_class[s[i]])
                return NULL;
            o[i] = (char)s[i];
        }
    }
    return o + n;
}

char *rn_json_write_string(char *o, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;

    *o++ = '"';
    char *e;
    if (n < 16 && (e = copy_short(o, s, n))) {
        *e++ = '"';
        return e;
    }
    for (size_t i = 0; i < n;) {
        i = copy_plain(&o, s, i, n);
        if (i == n)
            break;
        unsigned c = s[i];
        size_t len = byte_class[c] == 2 ? rn_utf8_len(s + i, n - i) : 0;
        if (len) {
            memcpy(o, s + i, len);
            o += len;
            i += len;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"': case '\\': *o++ = (char)c; break;
        case '\n': *o++ = 'n'; break;
        case '\t': *o++ = 't'; break;
        case '\r': *o++ = 'r'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        default:
            /* Other control bytes as \u00XX, stray bytes as \udcXX. */
            memcpy(o, c < 0x20 ? "u00" : "udc", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        i++;
    }
    *o++ = '"';
    return o;
}

int rn_json_put_string(rn_buf *b, const char *s, size_t n)
{
    if (n > (SIZE_MAX - 2) / 6 || rn_buf_reserve(b, RN_JSON_STRING_MAX(n)) < 0)
        return -1;
    b->len = (size_t)(rn_json_write_string(b->p + b->len, s, n) - b->p);
    return 0;
}

/* The four hex digits at p[0..4) (p within end), or -1. */
static long hex4(const char *p, const char *end)
{
    long v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        int h = rn_hexval((unsigned char)p[i]);
        if (h < 0)
            return -1;
        v = v << 4 | h;
    }
    return v;
}

static size_t put_utf8(char *o, unsigned long cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Scan (and, when out is not NULL, decode) the string literal at p[0] == '"'.
 * On error *bad is where the problem is and *why what it is. Bytes >= 0x80
 * are copied as they are, valid UTF-8 or not: the lenient choice, since an
 * escape is how our writer marks a raw byte. Decoded text is never longer
 * than its literal, so one reservation of the literal's size suffices. */
static int scan_string(const char *p, const char *end, rn_buf *out,
                       const char **next, const char **bad, const char **why)
{
    const char *s = p + 1;
    char *o = NULL;

    if (out) {
        if (rn_buf_reserve(out, (size_t)(end - p)) < 0) {
            *why = "out of memory";
            goto fail;
        }
        o = out->p + out->len;
    }
    for (;;) {
        const char *run = s;
        while (end - s >= 8 && !special8(load8((const unsigned char *)s)))
            s += 8;
        while (s < end && *s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
            s++;
        if (o) {
            memcpy(o, run, (size_t)(s - run));
            o += s - run;
        }
        if (s == end) {
            *why = "unterminated string";
            goto fail;
        }
        if (*s == '"')
            break;
        if (*s != '\\') {
            *why = "control character in a string";
            goto fail;
        }
        char c = s + 1 < end ? s[1] : 0, dec;
        switch (c) {
        case '"': case '\\': case '/': dec = c; break;
        case 'b': dec = '\b'; break;
        case 'f': dec = '\f'; break;
        case 'n': dec = '\n'; break;
        case 'r': dec = '\r'; break;
        case 't': dec = '\t'; break;
        case 'u': {
            long cp = hex4(s + 2, end), lo = -1;
            if (cp < 0) {
                *why = "bad \\u escape";
                goto fail;
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                /* a lone low surrogate: one of our raw bytes, or nothing */
                if (cp < 0xdc80 || cp > 0xdcff) {
                    *why = "lone low surrogate outside \\udc80..\\udcff";
                    goto fail;
                }
                if (o)
                    *o++ = (char)(cp & 0xff);
                s += 6;
                continue;
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - s >= 12 && s[6] == '\\' && s[7] == 'u')
                    lo = hex4(s + 8, end);
                if (lo < 0xdc00 || lo > 0xdfff) {
                    *why = "high surrogate without a low surrogate";
                    goto fail;
                }
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                s += 6;
            }
            if (o)
                o += put_utf8(o, (unsigned long)cp);
            s += 6;
            continue;
        }
        default:
            *why = "bad escape";
            goto fail;
        }
        if (o)
            *o++ = dec;
        s += 2;
    }
    if (out)
        out->len = (size_t)(o - out->p);
    *next = s + 1;
    return 0;
fail:
    *bad = s;
    return -1;
}

int rn_json_get_string(const char *p, const char *end, rn_buf *out,
                       const char **next, char *err)
{
    const char *bad, *why;

    if (p >= end || *p != '"')
        return rn_seterr(err, "offset 0: expected a string");
    if (scan_string(p, end, out, next, &bad, &why) < 0)
        return rn_seterr(err, "offset %td: %s", bad - p, why);
    return 0;
}

/* ---- cursor -------------------------------------------------------------- */

void rn_json_init(rn_json *j, const char *p, size_t n, uint64_t base)
{
    j->start = j->p = p;
    j->end = p + n;
    j->base = base;
}

void rn_json_skip_ws(rn_json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n'
                             || *j->p == '\r'))
        j->p++;
}

uint64_t rn_json_offset(const rn_json *j)
{
    return j->base + (uint64_t)(j->p - j->start);
}

static int fail_at(const rn_json *j, const char *at, const char *why, char *err)
{
    return rn_seterr(err, "byte offset %llu: %s",
                     (unsigned long long)(j->base + (uint64_t)(at - j->start)), why);
}

/* Skip whitespace and consume c, or fail with what was expected. */
static int expect(rn_json *j, char c, const char *what, char *err)
{
    rn_json_skip_ws(j);
    if (j->p == j->end || *j->p != c)
        return fail_at(j, j->p, what, err);
    j->p++;
    return 0;
}

int rn_json_object(rn_json *j, char *err)
{
    return expect(j, '{', "expected an object", err);
}

int rn_json_get_str(rn_json *j, rn_buf *out, char *err)
{
    const char *bad, *why;

    rn_json_skip_ws(j);
    if (j->p == j->end || *j->p != '"')
        return fail_at(j, j->p, "expected a string", err);
    if (scan_string(j->p, j->end, out, &j->p, &bad, &why) < 0)
        return fail_at(j, bad, why, err);
    return 0;
}

int rn_json_member(rn_json *j, size_t i, rn_buf *key, char *err)
{
    rn_json_skip_ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    if (i > 0 && expect(j, ',', "expected ',' or '}' in an object", err) < 0)
        return -1;
    if (rn_json_get_str(j, key, err) < 0)
        return -1;
    if (expect(j, ':', "expected ':' after an object key", err) < 0)
        return -1;
    return 1;
}

static int is_digit(const rn_json *j)
{
    return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

/* JSON's number grammar: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int skip_number(rn_json *j, char *err)
{
    const char *at = j->p;

    if (*j->p == '-')
        j->p++;
    if (!is_digit(j))
        return fail_at(j, at, "bad number", err);
    if (*j->p++ != '0')
        while (is_digit(j))
            j->p++;
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (!is_digit(j))
            return fail_at(j, at, "bad number", err);
        while (is_digit(j))
            j->p++;
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (!is_digit(j))
            return fail_at(j, at, "bad number", err);
        while (is_digit(j))
            j->p++;
    }
    return 0;
}

int rn_json_get_int64(rn_json *j, int64_t *v, char *err)
{
    rn_json_skip_ws(j);
    const char *at = j->p;
    int neg = j->p < j->end && *j->p == '-';
    uint64_t u = 0, max = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;

    if (j->p == j->end || (*j->p != '-' && !is_digit(j)))
        return fail_at(j, at, "expected an integer", err);
    if (skip_number(j, err) < 0)
        return -1;
    for (const char *s = at + neg; s < j->p; s++) {
        if (*s < '0' || *s > '9')
            return fail_at(j, at, "not an integer", err);
        if (u > (max - (uint64_t)(*s - '0')) / 10)
            return fail_at(j, at, "integer out of range", err);
        u = u * 10 + (uint64_t)(*s - '0');
    }
    /* Two's complement: -(INT64_MAX + 1) is representable; negate unsigned. */
    *v = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

static int skip_literal(rn_json *j, const char *lit, size_t n, char *err)
{
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
        return fail_at(j, j->p, "expected a value", err);
    j->p += n;
    return 0;
}

static int skip(rn_json *j, int depth, char *err)
{
    rn_json_skip_ws(j);
    if (j->p == j->end)
        return fail_at(j, j->p, "expected a value", err);
    switch (*j->p) {
    case '"':
        return rn_json_get_str(j, NULL, err);
    case 't':
        return skip_literal(j, "true", 4, err);
    case 'f':
        return skip_literal(j, "false", 5, err);
    case 'n':
        return skip_literal(j, "null", 4, err);
    case '{':
    case '[':
        break;
    default:
        if (*j->p == '-' || is_digit(j))
            return skip_number(j, err);
        return fail_at(j, j->p, "expected a value", err);
    }
    if (depth >= RN_JSON_MAX_DEPTH)
        return fail_at(j, j->p, "nested too deeply", err);
    if (*j->p == '{') {
        int r;
        j->p++;
        for (size_t i = 0; (r = rn_json_member(j, i, NULL, err)) == 1; i++)
            if (skip(j, depth + 1, err) < 0)
                return -1;
        return r;
    }
    j->p++;
    rn_json_skip_ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        if (skip(j, depth + 1, err) < 0)
            return -1;
        rn_json_skip_ws(j);
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        if (expect(j, ',', "expected ',' or ']' in an array", err) < 0)
            return -1;
    }
}

int rn_json_skip_value(rn_json *j, char *err)
{
    return skip(j, 0, err);
}
