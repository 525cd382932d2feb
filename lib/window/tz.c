/* tz.c -- time zones for windows aligned to local time: UTC offsets of a
 * tz database zone (through glibc) or of a fixed offset. */
#include "window/window.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define NS 1000000000LL
#define TZIF_MAX (1 << 20)      /* the largest zone file is ~4 KiB */

struct rn_tz {
    char *name;             /* as given */
    char *tzenv;            /* the TZ value that selects it (":" path); NULL: fixed */
    int32_t fixed;          /* the offset when tzenv is NULL */
    int utc;
    int64_t step;           /* gcd of the offset changes since 1970 (s); 0: none */
    int32_t off1970;        /* an offset in use since 1970 */
    int64_t lo, hi;         /* cache: the offset is off over [lo, hi) (s) */
    int32_t off;
};

/* The zone whose TZ is set in the environment: glibc keeps one. */
static const rn_tz *active;

static int64_t gcd(int64_t a, int64_t b)
{
    if (a < 0)
        a = -a;
    if (b < 0)
        b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* "+08:00", "-0530", "+08", "+05:30:15": 0 with *off (seconds east). */
static int parse_offset(const char *s, int32_t *off)
{
    int f[3] = { 0, 0, 0 }, n = 0, sign;
    if (*s != '+' && *s != '-')
        return -1;
    sign = *s++ == '-' ? -1 : 1;
    while (n < 3) {
        if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
            return -1;
        f[n++] = (s[0] - '0') * 10 + (s[1] - '0');
        s += 2;
        if (*s == ':')
            s++;
        else if (*s == '\0')
            break;
    }
    if (*s || s[-1] == ':' || f[0] > 23 || f[1] > 59 || f[2] > 59)
        return -1;
    *off = sign * (f[0] * 3600 + f[1] * 60 + f[2]);
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* From a TZif file (RFC 8536): the offsets in use since 1970, for the step
 * of their changes. Only the file's types and transitions are read; the
 * offsets themselves come from glibc, which reads the same file. */
static int read_tzif(rn_tz *z, const char *path, char *err)
{
    unsigned char *b = NULL;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0) {
            close(fd);
            errno = ENOENT;     /* a directory: Europe alone */
        }
        return rn_seterr(err, "%s: %s", path, strerror(errno));
    }
    size_t n = (size_t)st.st_size;
    int r = RN_ERR;
    errno = EFBIG;
    if (n <= TZIF_MAX && (b = malloc(n ? n : 1)))
        r = rn_pread_full(fd, b, n, 0);
    close(fd);
    if (r < 0) {
        free(b);
        return rn_seterr(err, "%s: cannot read: %s", path, rn_io_strerror(r));
    }
    errno = 0;
    const unsigned char *p = b, *end = b + n;
    int tsize = 4;
    uint32_t c[6];
    for (int pass = 0;; pass++) {
        if (end - p < 44 || memcmp(p, "TZif", 4) != 0)
            goto bad;
        for (int i = 0; i < 6; i++)
            c[i] = be32(p + 20 + 4 * i);    /* isut, isstd, leap, time, type, char */
        if (c[4] == 0 || c[4] > 256 || c[3] > 100000 || c[2] > 100000 || c[5] > 100000
            || c[0] > 256 || c[1] > 256)
            goto bad;
        size_t len = (size_t)c[3] * (tsize + 1) + c[4] * 6 + c[5] + c[2] * (tsize + 4) + c[1] + c[0];
        p += 44;
        if ((size_t)(end - p) < len)
            goto bad;
        if (pass == 1 || b[4] < '2')
            break;
        p += len;       /* version 2+: the 64-bit block follows the 32-bit one */
        tsize = 8;
    }
    const unsigned char *times = p, *idx = p + (size_t)c[3] * tsize, *types = idx + c[3];
    int32_t first = 0;
    int have = 0;
    z->step = 0;
    /* The type in force at 1970 (the last transition before it, or the
     * first type), then every type a later transition switches to. */
    uint32_t t0 = 0;
    for (uint32_t i = 0; i < c[3]; i++) {
        int64_t t = tsize == 8 ? be64(times + 8 * i) : (int32_t)be32(times + 4 * i);
        if (idx[i] >= c[4])
            goto bad;
        if (t <= 0) {
            t0 = idx[i];
            continue;
        }
        int32_t off = (int32_t)be32(types + 6 * idx[i]);
        if (!have) {
            first = (int32_t)be32(types + 6 * t0);
            have = 1;
        }
        z->step = gcd(z->step, off - first);
    }
    if (!have)
        first = (int32_t)be32(types + 6 * t0);
    z->off1970 = first;
    free(b);
    return 0;
bad:
    free(b);
    return rn_seterr(err, "time zone '%s': %s is not a zone file", z->name, path);
}

rn_tz *rn_tz_new(const char *spec, char *err)
{
    rn_tz *z = calloc(1, sizeof *z);
    char path[4096];
    if (!z || !(z->name = strdup(spec))) {
        free(z);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    z->lo = z->hi = 0;
    if (strcmp(spec, "Z") == 0 || strcmp(spec, "UTC") == 0) {
        z->utc = 1;
        return z;
    }
    if (spec[0] == '+' || spec[0] == '-') {
        if (parse_offset(spec, &z->fixed) < 0) {
            rn_seterr(err, "time zone '%s': not an offset like +08:00 or -0530", spec);
            goto fail;
        }
        z->off1970 = z->fixed;
        return z;
    }
    /* A name in the tz database: no absolute path, no way out of it. */
    const char *dir = getenv("TZDIR");
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    if (!*spec || spec[0] == '/' || strstr(spec, "..")
        || (size_t)snprintf(path, sizeof path, "%s/%s", dir, spec) >= sizeof path) {
        rn_seterr(err, "time zone '%s': not a tz database name (Europe/Berlin) or an "
                  "offset (+08:00)", spec);
        goto fail;
    }
    char ferr[RN_ERRLEN];
    if (read_tzif(z, path, ferr) < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            rn_seterr(err, "unknown time zone '%s' (no %s; a tz database name such as "
                      "Europe/Berlin, or an offset such as +08:00)", spec, path);
        else
            rn_seterr(err, "%s", ferr);
        goto fail;
    }
    size_t n = strlen(path) + 2;
    if (!(z->tzenv = malloc(n))) {
        rn_seterr(err, "out of memory");
        goto fail;
    }
    snprintf(z->tzenv, n, ":%s", path);
    return z;
fail:
    rn_tz_free(z);
    return NULL;
}

void rn_tz_free(rn_tz *z)
{
    if (!z)
        return;
    if (active == z)
        active = NULL;
    free(z->name);
    free(z->tzenv);
    free(z);
}

const char *rn_tz_name(const rn_tz *z) { return z->name; }
int rn_tz_is_utc(const rn_tz *z) { return z->utc; }
int64_t rn_tz_step(const rn_tz *z) { return z->step; }
int32_t rn_tz_offset_1970(const rn_tz *z) { return z->off1970; }

/* The offset at second s, from glibc (TZ set to the zone when another one
 * is set). */
static int32_t raw_offset(rn_tz *z, int64_t s)
{
    struct tm tm;
    time_t t = (time_t)s;
    if (!z->tzenv)
        return z->utc ? 0 : z->fixed;
    if (active != z) {
        setenv("TZ", z->tzenv, 1);
        tzset();
        active = z;
    }
    if (!localtime_r(&t, &tm))
        return 0;
    return (int32_t)tm.tm_gmtoff;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - (a % b != 0 && (a < 0) != (b < 0));
}

int32_t rn_tz_offset(rn_tz *z, int64_t ns)
{
    int64_t s = floor_div(ns, NS);
    if (!z->tzenv)
        return z->utc ? 0 : z->fixed;
    if (s >= z->lo && s < z->hi)
        return z->off;
    /* Known constant over the hour (or minute) around s when its first and
     * last seconds have the offset of s: offsets change at most once in an
     * hour. Otherwise s alone. */
    int32_t off = raw_offset(z, s);
    int64_t lo = s, hi = s + 1;
    for (int64_t blk = 3600; blk >= 60; blk /= 60) {
        int64_t b = floor_div(s, blk) * blk;
        if (raw_offset(z, b) == off && raw_offset(z, b + blk - 1) == off) {
            lo = b;
            hi = b + blk;
            break;
        }
    }
    z->lo = lo;
    z->hi = hi;
    z->off = off;
    return off;
}

int64_t rn_tz_from_local(rn_tz *z, int64_t wall)
{
    int64_t w = floor_div(wall, NS), frac = wall - w * NS;
    if (!z->tzenv)
        return wall - (int64_t)(z->utc ? 0 : z->fixed) * NS;
    /* The instants with this wall time have an offset in force within a
     * day of it: try those, the earliest wins. */
    int32_t cand[3] = { raw_offset(z, w - 86400), raw_offset(z, w), raw_offset(z, w + 86400) };
    int64_t best = INT64_MAX, lo = INT64_MAX, hi = INT64_MIN;
    for (int i = 0; i < 3; i++) {
        int64_t t = w - cand[i];
        if (raw_offset(z, t) == cand[i] && t < best)
            best = t;
        if (t < lo)
            lo = t;
        if (t > hi)
            hi = t;
    }
    if (best != INT64_MAX)
        return best * NS + frac;
    /* A wall time skipped by a change forward: the end of the gap, the
     * first second whose wall time is past it. f(lo) < w <= f(hi). */
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (mid + raw_offset(z, mid) >= w)
            hi = mid;
        else
            lo = mid;
    }
    return hi * NS;
}
