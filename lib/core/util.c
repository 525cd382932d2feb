/* util.c -- errors, warnings, clocks, duration and size parsing, byte buffers. */
#include "core/core.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

int rn_seterr(char *err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, RN_ERRLEN, fmt, ap);
        va_end(ap);
    }
    return RN_ERR;
}

void rn_vwarn_to(rn_warn_fn *fn, void *data, const char *prefix, const char *fmt, va_list ap)
{
    if (!fn)
        return;
    char msg[RN_ERRLEN + 512];
    int n = prefix ? snprintf(msg, sizeof msg, "%s", prefix) : 0;
    if (n < 0 || (size_t)n >= sizeof msg)
        n = 0;
    vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
    fn(data, msg);
}

void rn_warn_to(rn_warn_fn *fn, void *data, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rn_vwarn_to(fn, data, NULL, fmt, ap);
    va_end(ap);
}

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t rn_now_ns(void) { return clock_ns(CLOCK_REALTIME); }
int64_t rn_mono_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* Split "12.5ms" into a number (integer part and up to 9 fraction digits) and a
 * unit suffix. The number is kept as an integer scaled by 1e9 so that no
 * floating point rounding creeps into "0.1s". */
static int parse_scaled(const char *s, const char *what, uint64_t *whole,
                        uint64_t *frac_e9, const char **unit, char *err)
{
    const char *p = s;
    uint64_t w = 0, f = 0, scale = 100000000;
    int digits = 0;

    if (!s || !*s)
        return rn_seterr(err, "empty %s", what);
    for (; *p >= '0' && *p <= '9'; p++, digits++) {
        if (w > (UINT64_MAX - 9) / 10)
            return rn_seterr(err, "%s '%s' is too large", what, s);
        w = w * 10 + (uint64_t)(*p - '0');
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            f += (uint64_t)(*p - '0') * scale;
            scale /= 10;
        }
    }
    if (!digits)
        return rn_seterr(err, "%s '%s' does not start with a number", what, s);
    *whole = w;
    *frac_e9 = f;
    *unit = p;
    return 0;
}

/* whole.frac * mult, checked for overflow of int64/uint64 bounds. */
static int scale_checked(uint64_t whole, uint64_t frac_e9, uint64_t mult,
                         uint64_t max, uint64_t *out)
{
    if (mult && whole > max / mult)
        return -1;
    uint64_t v = whole * mult;
    /* frac_e9 < 1e9 and mult <= 2^40 or 86400e9: the product fits 128 bits
     * (a split by 1e9 would be wrong for 2^30 and 2^40: "0.5GiB") */
    uint64_t fr = (uint64_t)((unsigned __int128)frac_e9 * mult / 1000000000);
    if (v > max - fr)
        return -1;
    *out = v + fr;
    return 0;
}

int rn_parse_duration(const char *s, int64_t *ns, char *err)
{
    static const struct { const char *name; uint64_t mult; } units[] = {
        { "ns", 1 }, { "us", 1000 }, { "ms", 1000000 }, { "s", 1000000000 },
        { "", 1000000000 }, { "m", 60000000000ULL }, { "min", 60000000000ULL },
        { "h", 3600000000000ULL }, { "d", 86400000000000ULL },
    };
    uint64_t whole, frac, v;
    const char *unit;

    if (parse_scaled(s, "duration", &whole, &frac, &unit, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(unit, units[i].name) != 0)
            continue;
        if (scale_checked(whole, frac, units[i].mult, INT64_MAX, &v) < 0)
            return rn_seterr(err, "duration '%s' is too large", s);
        *ns = (int64_t)v;
        return 0;
    }
    return rn_seterr(err, "duration '%s' has an unknown unit '%s' "
                     "(use ns, us, ms, s, m, h or d)", s, unit);
}

int rn_parse_size(const char *s, uint64_t *bytes, char *err)
{
    static const char prefixes[] = "KMGT";
    uint64_t whole, frac, mult = 1, v;
    const char *unit, *p = NULL;
    int old = 0;

    if (parse_scaled(s, "size", &whole, &frac, &unit, err) < 0)
        return RN_ERR;
    if (unit[0]) {
        int c = unit[0] & ~0x20;      /* ASCII upper case */
        if (c == 'B' && !unit[1]) {
            mult = 1;
        } else if (c && (p = strchr(prefixes, c))) {
            mult = 1ULL << (10 * (p - prefixes + 1));
            if (!unit[1])
                old = 1;        /* "64k": the unit without its B */
            else if (strcasecmp(unit + 1, "b") != 0 && strcasecmp(unit + 1, "ib") != 0)
                goto bad;
        } else {
            goto bad;
        }
    }
    if (scale_checked(whole, frac, mult, UINT64_MAX, &v) < 0)
        return rn_seterr(err, "size '%s' is too large", s);
    *bytes = v;
    if (old && err)
        snprintf(err, RN_ERRLEN, "%.*s%ciB", (int)(unit - s), s, *p);
    return old ? RN_SIZE_OLD : 0;
bad:
    return rn_seterr(err, "size '%s' has an unknown unit '%s' (use B, KiB, MiB, GiB "
                     "or TiB)", s, unit);
}

int rn_parse_uint(const char *s, uint64_t max, uint64_t *out, char *err)
{
    uint64_t v = 0;
    const char *p = s;

    if (!s || !*s)
        return rn_seterr(err, "empty number");
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return rn_seterr(err, "'%s' is not a non-negative integer", s);
        if (v > (max - (uint64_t)(*p - '0')) / 10)
            return rn_seterr(err, "'%s' is larger than %llu", s, (unsigned long long)max);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return 0;
}

int rn_buf_reserve(rn_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra) {
        if (cap > SIZE_MAX / 2)
            return -1;
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

int rn_buf_append(rn_buf *b, const void *data, size_t len)
{
    if (rn_buf_reserve(b, len) < 0)
        return -1;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    return 0;
}

void rn_buf_free(rn_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

size_t rn_u64_dec(uint64_t v, char *out)
{
    static const char pairs[201] =
        "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
        "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
        "8081828384858687888990919293949596979899";
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL,
        1000000000000ULL, 10000000000000ULL, 100000000000000ULL,
        1000000000000000ULL, 10000000000000000ULL, 100000000000000000ULL,
        1000000000000000000ULL, 10000000000000000000ULL,
    };
    /* Digits from the bit length (log10(2) ~ 1233/4096), then one fix-up. */
    unsigned bits = 64 - (unsigned)__builtin_clzll(v | 1);
    size_t n = (bits * 1233) >> 12;
    n += v >= pow10[n];
    n += !n;
    char *p = out + n;
    while (v >= 100) {   /* two digits a division */
        p -= 2;
        memcpy(p, pairs + (v % 100) * 2, 2);
        v /= 100;
    }
    if (v >= 10)
        memcpy(p - 2, pairs + v * 2, 2);
    else
        p[-1] = (char)('0' + v);
    return n;
}

size_t rn_format_time(int64_t ns, char *out, size_t outlen)
{
    time_t sec = (time_t)(ns / 1000000000);
    int64_t rem = ns % 1000000000;
    struct tm tm;

    if (rem < 0) {
        rem += 1000000000;
        sec -= 1;
    }
    gmtime_r(&sec, &tm);
    int n = snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(rem / 1000000));
    return n < 0 ? 0 : (size_t)n;
}
