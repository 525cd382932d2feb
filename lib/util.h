/* util.h -- small helpers every runnel module and tool shares: errors, clocks,
 * durations and sizes, a growable byte buffer, and whole writes to a descriptor.
 *
 * Error convention (after Redis' anet): a function that can fail takes a
 * caller-owned buffer `char *err` of RN_ERRLEN bytes (NULL allowed), writes the
 * reason there, and returns -1 (or a negative errno where the caller needs to
 * tell causes apart, e.g. -EPIPE). lib/ never prints and never exits. */
#ifndef RN_UTIL_H
#define RN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define RN_ERRLEN 256

/* Format a reason into err (if not NULL); always returns -1. */
int rn_seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Wall-clock and monotonic time in nanoseconds. */
int64_t rn_now_ns(void);
int64_t rn_mono_ns(void);

/* "500ms", "10s", "5m", "1h", "2d", "250us", "100ns"; a bare number is seconds.
 * Fractions are allowed ("1.5s"). Negative values and overflow are errors. */
int rn_parse_duration(const char *s, int64_t *ns, char *err);

/* "512", "64k", "1m", "2g", "1t" (powers of 1024; "kb", "KiB" and a
 * trailing "b" are accepted too). Overflow is an error. */
int rn_parse_size(const char *s, uint64_t *bytes, char *err);

/* A non-negative decimal integer with a bound; no sign, no junk. */
int rn_parse_uint(const char *s, uint64_t max, uint64_t *out, char *err);

/* A growable byte buffer. Zero-initialise ({0}) before use. */
typedef struct rn_buf {
    char *p;
    size_t len, cap;
} rn_buf;

int rn_buf_reserve(rn_buf *b, size_t extra);   /* 0, or -1 when out of memory */
int rn_buf_append(rn_buf *b, const void *data, size_t len);
void rn_buf_free(rn_buf *b);

/* write(2) until everything is written; EINTR is retried. Returns 0 or -errno. */
int rn_write_all(int fd, const void *buf, size_t len);

/* Big-endian integers in byte buffers (the wire and file formats). */
static inline uint32_t rn_be32(const void *v)
{
    const unsigned char *p = v;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rn_be64(const void *p)
{
    return (uint64_t)rn_be32(p) << 32 | rn_be32((const unsigned char *)p + 4);
}

static inline void rn_put_be32(void *v, uint32_t x)
{
    unsigned char *p = v;
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

static inline void rn_put_be64(void *p, uint64_t x)
{
    rn_put_be32(p, (uint32_t)(x >> 32));
    rn_put_be32((unsigned char *)p + 4, (uint32_t)x);
}

/* Decimal digits of v into out (at least 20 bytes, not NUL-terminated);
 * returns how many. For hot paths where snprintf costs too much. */
size_t rn_u64_dec(uint64_t v, char *out);

/* ISO 8601 UTC with milliseconds, "2026-11-23T07:07:21.123Z", into out
 * (at least 32 bytes). Returns the length written. */
size_t rn_format_time(int64_t ns, char *out, size_t outlen);

#endif
