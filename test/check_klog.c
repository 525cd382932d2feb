/* check_klog.c -- unit tests for lib/crc32c and lib/klog: CRC vectors, append
 * and read across segments, validation, recovery of torn tails and lost
 * indexes, retention, time lookups and roll by age. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include "core/core.h"
#include "broker/broker.h"
#include "broker/broker_int.h"

static char dir[] = "/tmp/check_klog.XXXXXX";
static char ldir[300];   /* the partition directory, created by open */

static void setup(void)
{
    strcpy(dir, "/tmp/check_klog.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(ldir, sizeof ldir, "%s/topic-0", dir);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- building RecordBatch v2 ------------------------------------------- */

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint64_t get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static size_t varint(unsigned char *p, int64_t v)
{
    uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (z >= 0x80) {
        p[n++] = (unsigned char)(z | 0x80);
        z >>= 7;
    }
    p[n++] = (unsigned char)z;
    return n;
}

/* A valid batch of nrec records with vlen-byte values, all stamped ts (ms),
 * baseOffset left at 0 for the log to assign. Returns its size. */
static size_t make_batch(unsigned char *out, int nrec, int64_t ts, size_t vlen)
{
    unsigned char *p = out + 61;
    for (int i = 0; i < nrec; i++) {
        unsigned char body[4096];
        size_t n = 0;
        body[n++] = 0;                      /* attributes */
        n += varint(body + n, 0);           /* timestampDelta */
        n += varint(body + n, i);           /* offsetDelta */
        n += varint(body + n, -1);          /* no key */
        n += varint(body + n, (int64_t)vlen);
        for (size_t k = 0; k < vlen; k++)
            body[n++] = (unsigned char)('a' + (i + k) % 26);
        n += varint(body + n, 0);           /* no headers */
        p += varint(p, (int64_t)n);
        memcpy(p, body, n);
        p += n;
    }
    size_t total = (size_t)(p - out);
    put64(out, 0);
    put32(out + 8, (uint32_t)(total - 12));
    put32(out + 12, 0);                     /* partitionLeaderEpoch */
    out[16] = 2;                            /* magic */
    out[21] = 0;                            /* attributes */
    out[22] = 0;
    put32(out + 23, (uint32_t)(nrec ? nrec - 1 : 0));
    put64(out + 27, (uint64_t)ts);
    put64(out + 35, (uint64_t)ts);
    put64(out + 43, (uint64_t)-1);          /* producerId */
    out[51] = 0xff;                         /* producerEpoch -1 */
    out[52] = 0xff;
    put32(out + 53, (uint32_t)-1);          /* baseSequence */
    put32(out + 57, (uint32_t)nrec);
    put32(out + 17, rn_crc32c(0, out + 21, total - 21));
    return total;
}

static rn_klog *open_log(const rn_klog_opts *o)
{
    char err[RN_ERRLEN] = "";
    rn_klog *l = NULL;
    ck_assert_msg(rn_klog_open(ldir, o, &l, err) == 0, "open: %s", err);
    return l;
}

/* Append one batch; returns its assigned base offset. */
static int64_t add(rn_klog *l, int nrec, int64_t ts, size_t vlen)
{
    unsigned char buf[65536];
    char err[RN_ERRLEN] = "";
    int64_t base = -1;
    size_t n = make_batch(buf, nrec, ts, vlen);
    ck_assert_msg(rn_klog_append(l, buf, n, ts, &base, err) == 0, "append: %s", err);
    ck_assert_int_eq((int64_t)get64(buf), base);
    return base;
}

/* The offset for time ts_ms (its record's timestamp in *rts when not NULL). */
static int64_t oft_ts(rn_klog *l, int64_t ts_ms, int64_t *rts)
{
    char err[RN_ERRLEN] = "";
    int64_t off = -3, t = -3;
    ck_assert_msg(rn_klog_offset_for_time(l, ts_ms, &off, &t, err) == 0, "time %lld: %s",
                  (long long)ts_ms, err);
    if (rts)
        *rts = t;
    return off;
}

static int64_t oft(rn_klog *l, int64_t ts_ms)
{
    return oft_ts(l, ts_ms, NULL);
}

/* Read at offset and check the slice: whole batches of the right offsets. */
static rn_klog_slice read_at(rn_klog *l, int64_t off, size_t max)
{
    char err[RN_ERRLEN] = "";
    rn_klog_slice s;
    ck_assert_msg(rn_klog_read(l, off, max, &s, err) == 0, "read %lld: %s", (long long)off, err);
    return s;
}

/* Walk the batches of a slice: count them, check each one's CRC, and return
 * the first batch's base offset and the offset after the last. */
static int walk(rn_klog_slice s, int64_t *first, int64_t *next)
{
    unsigned char *b = malloc(s.len ? s.len : 1);
    ck_assert_int_eq(pread(s.fd, b, s.len, (off_t)s.pos), (ssize_t)s.len);
    size_t p = 0;
    int n = 0;
    while (p < s.len) {
        ck_assert_uint_ge(s.len - p, 61);
        uint32_t blen = (uint32_t)b[p + 8] << 24 | (uint32_t)b[p + 9] << 16 |
                        (uint32_t)b[p + 10] << 8 | b[p + 11];
        ck_assert_uint_le(p + 12 + blen, s.len);
        uint32_t crc = (uint32_t)b[p + 17] << 24 | (uint32_t)b[p + 18] << 16 |
                       (uint32_t)b[p + 19] << 8 | b[p + 20];
        ck_assert_uint_eq(crc, rn_crc32c(0, b + p + 21, blen - 9));
        int32_t delta = (int32_t)((uint32_t)b[p + 23] << 24 | (uint32_t)b[p + 24] << 16 |
                                  (uint32_t)b[p + 25] << 8 | b[p + 26]);
        int64_t base = (int64_t)get64(b + p);
        if (n == 0)
            *first = base;
        else
            ck_assert_int_eq(base, *next);
        *next = base + delta + 1;
        p += 12 + blen;
        n++;
    }
    free(b);
    return n;
}

static void seg_path(char *out, int64_t base, const char *ext)
{
    snprintf(out, 400, "%s/%020lld%s", ldir, (long long)base, ext);
}

static int64_t nth_seg_base(size_t i)
{
    char pat[400];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/*.log", ldir);
    ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
    ck_assert_uint_lt(i, g.gl_pathc);
    int64_t base = atoll(strrchr(g.gl_pathv[i], '/') + 1);
    globfree(&g);
    return base;
}

static int64_t last_seg_base(void)
{
    char pat[400];
    glob_t g;
    snprintf(pat, sizeof pat, "%s/*.log", ldir);
    ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
    size_t n = g.gl_pathc;
    globfree(&g);
    return nth_seg_base(n - 1);
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* The recovery-point file's text, into buf. */
static void read_state(char *buf, size_t len)
{
    char st[400];
    snprintf(st, sizeof st, "%s/recovery-point", ldir);
    int fd = open(st, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    ck_assert_int_gt(n, 0);
    buf[n] = '\0';
}

/* ---- CRC --------------------------------------------------------------- */

START_TEST(crc_vectors)
{
    unsigned char z[32], f[32], a[32];
    memset(z, 0, sizeof z);
    memset(f, 0xff, sizeof f);
    for (int i = 0; i < 32; i++)
        a[i] = (unsigned char)i;
    /* RFC 3720 (iSCSI) appendix B.4 and the classic check value. */
    ck_assert_uint_eq(rn_crc32c(0, "123456789", 9), 0xE3069283);
    ck_assert_uint_eq(rn_crc32c(0, z, 32), 0x8A9136AA);
    ck_assert_uint_eq(rn_crc32c(0, f, 32), 0x62A8AB43);
    ck_assert_uint_eq(rn_crc32c(0, a, 32), 0x46DD794E);
    ck_assert_uint_eq(rn_crc32c(0, "", 0), 0);
    ck_assert_uint_eq(rn_crc32c_sw(0, "123456789", 9), 0xE3069283);
    /* Chaining, every split point and alignment, hardware against tables. */
    unsigned char buf[300];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    uint32_t whole = rn_crc32c_sw(0, buf, sizeof buf);
    for (size_t cut = 0; cut <= sizeof buf; cut++) {
        ck_assert_uint_eq(rn_crc32c(rn_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
        ck_assert_uint_eq(rn_crc32c_sw(rn_crc32c_sw(0, buf, cut), buf + cut, sizeof buf - cut), whole);
    }
    for (size_t off = 0; off < 16; off++)
        for (size_t n = 0; n < 40; n++)
            ck_assert_uint_eq(rn_crc32c(0, buf + off, n), rn_crc32c_sw(0, buf + off, n));
    /* Large buffers take three streams at a time (24 KiB a round): lengths
     * around the rounds, odd starts, and a running CRC going in. */
    static unsigned char big[200000];
    uint32_t x = 1;
    for (size_t i = 0; i < sizeof big; i++) {
        x = x * 1103515245u + 12345u;
        big[i] = (unsigned char)(x >> 16);
    }
    static const size_t lens[] = { 24575, 24576, 24577, 24583, 49151, 49152, 49160, 73728,
                                   100000, 199990 };
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++)
        for (size_t off = 0; off < 9; off += 3) {
            uint32_t in = (uint32_t)(k * 0x9e3779b9u);
            ck_assert_uint_eq(rn_crc32c(in, big + off, lens[k]),
                              rn_crc32c_sw(in, big + off, lens[k]));
        }
    ck_assert_uint_eq(rn_crc32c(rn_crc32c(0, big, 30000), big + 30000, sizeof big - 30000),
                      rn_crc32c_sw(0, big, sizeof big));
}
END_TEST

/* ---- append and read --------------------------------------------------- */

START_TEST(round_trip_segments)
{
    rn_klog_opts o = { .segment_bytes = 4096, .index_interval = 512 };
    rn_klog *l = open_log(&o);
    int64_t expect = 0;
    ck_assert_int_eq(rn_klog_start(l), 0);
    ck_assert_int_eq(rn_klog_end(l), 0);
    for (int i = 0; i < 200; i++) {
        int nrec = 1 + i % 7;
        ck_assert_int_eq(add(l, nrec, 1000 + i, 20 + i % 50), expect);
        expect += nrec;
    }
    ck_assert_int_eq(rn_klog_end(l), expect);
    ck_assert_uint_gt(rn_klog_segments(l), 5);
    /* Every offset reads back from the batch that holds it. */
    for (int64_t off = 0; off < expect; off++) {
        rn_klog_slice s = read_at(l, off, 1);
        int64_t first, next;
        ck_assert_int_eq(walk(s, &first, &next), 1);
        ck_assert_int_le(first, off);
        ck_assert_int_gt(next, off);
    }
    /* Consuming with big fetches visits every offset once, in order, one
     * segment per read, and every read is whole batches. */
    int64_t off = 0;
    int reads = 0;
    while (off < expect) {
        rn_klog_slice s = read_at(l, off, 1 << 20);
        int64_t first, next;
        ck_assert_int_ge(walk(s, &first, &next), 1);
        ck_assert_int_eq(first, off);
        ck_assert_uint_le(s.pos + s.len, 4096 + 1024);
        off = next;
        reads++;
    }
    ck_assert_int_eq(reads, (int)rn_klog_segments(l));
    rn_klog_slice s = read_at(l, expect, 1 << 20);
    ck_assert_uint_eq(s.len, 0);
    rn_klog_close(l);
}
END_TEST

START_TEST(several_batches_one_request)
{
    rn_klog *l = open_log(NULL);
    unsigned char buf[8192];
    char err[RN_ERRLEN];
    size_t n = make_batch(buf, 3, 10, 10);
    n += make_batch(buf + n, 5, 20, 10);
    n += make_batch(buf + n, 1, 30, 10);
    int64_t base;
    add(l, 2, 5, 10);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 0, &base, err), 0);
    ck_assert_int_eq(base, 2);
    ck_assert_int_eq(rn_klog_end(l), 11);
    /* Offsets were written into the caller's bytes, CRCs untouched. */
    size_t b2 = 12 + ((size_t)buf[10] << 8 | buf[11]);
    ck_assert_int_eq((int64_t)get64(buf), 2);
    ck_assert_int_eq((int64_t)get64(buf + b2), 5);
    rn_klog_slice s = read_at(l, 0, 1 << 20);
    int64_t first, next;
    ck_assert_int_eq(walk(s, &first, &next), 4);
    ck_assert_int_eq(next, 11);
    rn_klog_close(l);
}
END_TEST

START_TEST(read_within_batch_and_max_bytes)
{
    rn_klog *l = open_log(NULL);
    unsigned char buf[8192];
    size_t blen = make_batch(buf, 10, 100, 50);
    add(l, 10, 100, 50);          /* offsets 0..9 */
    add(l, 10, 200, 50);          /* 10..19 */
    add(l, 10, 300, 50);          /* 20..29 */
    int64_t first, next;
    /* The middle of a batch gives the whole batch. */
    rn_klog_slice s = read_at(l, 5, blen);
    ck_assert_uint_eq(s.pos, 0);
    ck_assert_uint_eq(s.len, blen);
    s = read_at(l, 15, 1);       /* max_bytes below one batch: still one batch */
    ck_assert_uint_eq(s.pos, blen);
    ck_assert_uint_eq(s.len, blen);
    ck_assert_int_eq(walk(s, &first, &next), 1);
    ck_assert_int_eq(first, 10);
    s = read_at(l, 0, 2 * blen + blen / 2);   /* two and a half: two */
    ck_assert_uint_eq(s.len, 2 * blen);
    s = read_at(l, 29, 1 << 20);
    ck_assert_uint_eq(s.pos, 2 * blen);
    ck_assert_uint_eq(s.len, blen);
    rn_klog_close(l);
}
END_TEST

START_TEST(out_of_range)
{
    rn_klog *l = open_log(NULL);
    char err[RN_ERRLEN] = "";
    rn_klog_slice s;
    ck_assert_int_eq(rn_klog_read(l, 0, 100, &s, err), 0);   /* empty log: 0 == end */
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(rn_klog_read(l, 1, 100, &s, err), RN_ERANGE);
    add(l, 4, 1, 1);
    ck_assert_int_eq(rn_klog_read(l, 4, 100, &s, err), 0);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(rn_klog_read(l, 5, 100, &s, err), RN_ERANGE);
    ck_assert_int_eq(rn_klog_read(l, -1, 100, &s, err), RN_ERANGE);
    ck_assert_msg(strstr(err, "-1"), "%s", err);
    rn_klog_close(l);
}
END_TEST

/* Append good, good, bad: nothing written, err names the bad batch's byte. */
static void expect_corrupt(rn_klog *l, void (*spoil)(unsigned char *b, size_t *n),
                           const char *why)
{
    unsigned char buf[8192];
    char err[RN_ERRLEN] = "";
    int64_t base = -7, end = rn_klog_end(l);
    uint64_t size = rn_klog_size(l);
    size_t a = make_batch(buf, 2, 1, 10);
    size_t b = make_batch(buf + a, 2, 1, 10);
    size_t n = a + b + make_batch(buf + a + b, 3, 1, 10);
    size_t bad_at = a + b;
    spoil(buf + bad_at, &n);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 0, &base, err), RN_ECORRUPT);
    char at[64];
    snprintf(at, sizeof at, "batch at byte %zu", bad_at);
    ck_assert_msg(strstr(err, at) && strstr(err, why), "%s: %s", why, err);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(rn_klog_end(l), end);
    ck_assert_uint_eq(rn_klog_size(l), size);
    ck_assert_int_eq((int64_t)get64(buf), 0);   /* offsets untouched too */
}

static void bad_crc(unsigned char *b, size_t *n) { (void)n; b[70] ^= 1; }
static void bad_magic(unsigned char *b, size_t *n) { (void)n; b[16] = 1; }
static void cut_short(unsigned char *b, size_t *n) { (void)b; *n -= 1; }
static void cut_header(unsigned char *b, size_t *n)
{
    size_t blen = 12 + ((size_t)b[10] << 8 | b[11]);
    *n -= blen - 30;
}
static void too_short(unsigned char *b, size_t *n) { (void)n; put32(b + 8, 48); }
static void huge_len(unsigned char *b, size_t *n) { (void)n; put32(b + 8, 0x7fffffff); }
static void neg_len(unsigned char *b, size_t *n) { (void)n; put32(b + 8, 0x80000000u); }

START_TEST(corrupt_rejected)
{
    rn_klog *l = open_log(NULL);
    add(l, 1, 1, 1);
    expect_corrupt(l, bad_crc, "CRC mismatch");
    expect_corrupt(l, bad_magic, "magic");
    expect_corrupt(l, cut_short, "past the end");
    expect_corrupt(l, cut_header, "batch header needs 61");
    expect_corrupt(l, too_short, "below 49");
    expect_corrupt(l, huge_len, "past the end");
    expect_corrupt(l, neg_len, "below 49");
    char err[RN_ERRLEN] = "";
    int64_t base;
    unsigned char one;
    ck_assert_int_eq(rn_klog_append(l, &one, 0, 0, &base, err), RN_ECORRUPT);
    /* The log still works. */
    ck_assert_int_eq(add(l, 2, 1, 1), 1);
    rn_klog_close(l);
}
END_TEST

/* ---- what a producer may send: the records inside a batch ---- */

static void recrc(unsigned char *b)
{
    size_t total = 12 + ((size_t)b[8] << 24 | (size_t)b[9] << 16 | (size_t)b[10] << 8 | b[11]);
    put32(b + 17, rn_crc32c(0, b + 21, total - 21));
}

/* A batch around raw record bytes, with the count, lastOffsetDelta and codec
 * given, and a valid CRC: what a hostile producer can send. */
static size_t raw_batch(unsigned char *out, int32_t count, int32_t delta, int codec,
                        const unsigned char *recs, size_t n)
{
    make_batch(out, 0, 1, 0);
    memcpy(out + 61, recs, n);
    put32(out + 8, (uint32_t)(61 + n - 12));
    out[22] = (unsigned char)codec;
    put32(out + 23, (uint32_t)delta);
    put32(out + 57, (uint32_t)count);
    recrc(out);
    return 61 + n;
}

/* The records of a valid batch of nrec (as make_batch writes them). */
static size_t records_of(unsigned char *out, int nrec, size_t vlen)
{
    static unsigned char tmp[65536];
    size_t n = make_batch(tmp, nrec, 1, vlen) - 61;
    memcpy(out, tmp + 61, n);
    return n;
}

static size_t gzip(unsigned char *out, size_t cap, const unsigned char *in, size_t n)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    ck_assert_int_eq(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    ck_assert_int_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t got = cap - z.avail_out;
    deflateEnd(&z);
    return got;
}

/* The codecs as producers send them: raw snappy (librdkafka, sarama,
 * KafkaJS) and the xerial framing (the Java client, kafka-python), the lz4
 * frame format, zstd. */
enum { GZIP, SNAPPY, XERIAL, LZ4, ZSTD, NKINDS };
static const struct { const char *name, *lib; int codec; } kinds[NKINDS] = {
    [GZIP] = { "gzip", "gzip", RN_KCODEC_GZIP },
    [SNAPPY] = { "snappy", "snappy", RN_KCODEC_SNAPPY },
    [XERIAL] = { "xerial snappy", "snappy", RN_KCODEC_SNAPPY },
    [LZ4] = { "lz4", "lz4", RN_KCODEC_LZ4 },
    [ZSTD] = { "zstd", "zstd", RN_KCODEC_ZSTD },
};

static size_t squeeze(int kind, unsigned char *out, size_t cap, const unsigned char *in, size_t n)
{
    size_t got = cap;
    switch (kind) {
    case GZIP:
        return gzip(out, cap, in, n);
    case SNAPPY:
        ck_assert_int_eq(snappy_compress((const char *)in, n, (char *)out, &got), SNAPPY_OK);
        return got;
    case XERIAL: {
        static const unsigned char head[16] = { 0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                                0, 0, 0, 1, 0, 0, 0, 1 };
        size_t o = sizeof head;
        memcpy(out, head, o);
        for (size_t i = 0; i < n; i += 32768) {
            size_t k = n - i < 32768 ? n - i : 32768, c = cap - o - 4;
            ck_assert_int_eq(snappy_compress((const char *)in + i, k, (char *)out + o + 4, &c),
                             SNAPPY_OK);
            put32(out + o, (uint32_t)c);
            o += 4 + c;
        }
        return o;
    }
    case LZ4:
        got = LZ4F_compressFrame(out, cap, in, n, NULL);
        ck_assert(!LZ4F_isError(got));
        return got;
    default:
        got = ZSTD_compress(out, cap, in, n, 3);
        ck_assert(!ZSTD_isError(got));
        return got;
    }
}

/* Records with the given timestamp deltas, values "r0", "r1", ... */
static size_t records_ts(unsigned char *out, int n, const int64_t *deltas)
{
    unsigned char *p = out;
    for (int i = 0; i < n; i++) {
        unsigned char body[64];
        size_t k = 0;
        body[k++] = 0;
        k += varint(body + k, deltas[i]);
        k += varint(body + k, i);
        k += varint(body + k, -1);
        k += varint(body + k, 2);
        body[k++] = 'r';
        body[k++] = (unsigned char)('0' + i % 10);
        k += varint(body + k, 0);
        p += varint(p, (int64_t)k);
        memcpy(p, body, k);
        p += k;
    }
    return (size_t)(p - out);
}

/* A batch of such records stamped first + deltas[i], uncompressed (kind 0)
 * or compressed as kinds[kind - 1]; its maxTimestamp field says what the
 * producer claims. */
static size_t ts_batch(unsigned char *out, int n, int64_t first, const int64_t *deltas,
                       int64_t claimed_max, int kind)
{
    unsigned char recs[4096], z[4096];
    size_t rn = records_ts(recs, n, deltas), bn;
    if (kind > 0)
        bn = raw_batch(out, n, n - 1, kinds[kind - 1].codec, z,
                       squeeze(kind - 1, z, sizeof z, recs, rn));
    else
        bn = raw_batch(out, n, n - 1, 0, recs, rn);
    put64(out + 27, (uint64_t)first);
    put64(out + 35, (uint64_t)claimed_max);
    recrc(out);
    return bn;
}

/* A good batch, then the bad one: refused with why, nothing appended, and
 * the log takes the next good batch at the offset it would have had. */
static void refuse(rn_klog *l, const unsigned char *bad, size_t n, const char *why)
{
    static unsigned char buf[1 << 20];
    char err[RN_ERRLEN] = "";
    int64_t base = -7, end = rn_klog_end(l);
    size_t a = make_batch(buf, 2, 1, 10);
    memcpy(buf + a, bad, n);
    ck_assert_int_eq(rn_klog_append(l, buf, a + n, 0, &base, err), RN_ECORRUPT);
    char at[64];
    snprintf(at, sizeof at, "batch at byte %zu", a);
    ck_assert_msg(strstr(err, at) && strstr(err, why), "want %s: got %s", why, err);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(rn_klog_end(l), end);
    ck_assert_int_eq(add(l, 1, 1, 1), end);
}

START_TEST(records_validated)
{
    static unsigned char recs[1 << 16], b[1 << 17];
    unsigned char *p;
    rn_klog *l = open_log(NULL);
    add(l, 3, 1, 5);
    /* The header lies about the records. */
    size_t n = records_of(recs, 5, 10);
    refuse(l, b, raw_batch(b, 5, 0, 0, recs, n), "lastOffsetDelta");
    refuse(l, b, raw_batch(b, 1, 0, 0, recs, n), "bytes after the last record");
    n = records_of(recs, 2, 10);
    refuse(l, b, raw_batch(b, 2, 1000, 0, recs, n), "lastOffsetDelta");
    refuse(l, b, raw_batch(b, 1001, 1000, 0, recs, n), "past the end of the batch");
    refuse(l, b, raw_batch(b, 0, -1, 0, recs, 0), "negative lastOffsetDelta");
    refuse(l, b, raw_batch(b, 0, 0, 0, recs, n), "no records");
    refuse(l, b, raw_batch(b, 2, 1, 7, recs, n), "unknown compression codec");
    refuse(l, b, raw_batch(b, 2, 1, 5, recs, n), "unknown compression codec");
    /* Offset deltas that are not 0, 1: record 1 says 0. */
    n = records_of(recs, 2, 10);
    recs[17 + 3] = 0;
    refuse(l, b, raw_batch(b, 2, 1, 0, recs, n), "record 1: offset deltas");
    /* A record length of 2e9; a negative one; one longer than its fields. */
    n = 0;
    p = recs;
    p += varint(p, 2000000000);
    memset(p, 0, 20);
    n = (size_t)(p - recs) + 20;
    refuse(l, b, raw_batch(b, 1, 0, 0, recs, n), "record 0: a record runs past the end");
    n = records_of(recs, 1, 10);
    recs[0] = 0x01;     /* zigzag -1 */
    refuse(l, b, raw_batch(b, 1, 0, 0, recs, n), "negative record length");
    n = records_of(recs, 1, 10);
    recs[0] += 2;       /* 1 more byte than the fields use */
    recs[n++] = 0;
    refuse(l, b, raw_batch(b, 1, 0, 0, recs, n), "longer than its fields");
    /* A value length beyond the record. */
    n = records_of(recs, 1, 10);
    recs[5] = 0x7e;     /* valueLength 63 */
    refuse(l, b, raw_batch(b, 1, 0, 0, recs, n), "runs past its record");
    /* The log is whole: every offset reads back in order. */
    ck_assert_int_gt(rn_klog_end(l), 3);
    rn_klog_close(l);
}
END_TEST

/* Each codec as producers send it (kinds[]): a good batch appended as it
 * is; corrupt data, a stream cut short, and records that lie inside good
 * compressed data, refused; a bomb of 4 MiB of zeros past the 1 MiB limit
 * refused without decompressing it whole (under the limit it is good). */
START_TEST(compressed_validated)
{
    static unsigned char recs[1 << 16], z[5 << 20], b[1 << 19], buf[1 << 19], back[1 << 16];
    const int kind = _i;
    const int codec = kinds[kind].codec;
    rn_klog_opts o = { .max_inflated = 1 << 20 };
    char err[RN_ERRLEN] = "", corrupt[64];
    int64_t base = -1;
    rn_klog *l = open_log(&o);
    snprintf(corrupt, sizeof corrupt, "corrupt %s data", kinds[kind].lib);
    size_t n = records_of(recs, 20, 100);
    size_t zn = squeeze(kind, z, sizeof z, recs, n);
    size_t bn = raw_batch(buf, 20, 19, codec, z, zn);
    ck_assert_msg(rn_klog_append(l, buf, bn, 0, &base, err) == 0, "%s: %s", kinds[kind].name, err);
    ck_assert_int_eq(base, 0);
    ck_assert_int_eq(rn_klog_end(l), 20);
    rn_klog_slice sl = read_at(l, 0, sizeof back);
    ck_assert_uint_eq(sl.len, bn);
    ck_assert_int_eq(sl.codec, codec);
    ck_assert_int_eq(pread(sl.fd, back, bn, (off_t)sl.pos), (ssize_t)bn);
    ck_assert_mem_eq(back, buf, bn);
    refuse(l, b, raw_batch(b, 21, 20, codec, z, zn), "past the end of the batch");
    refuse(l, b, raw_batch(b, 19, 18, codec, z, zn), "bytes after the last record");
    refuse(l, b, raw_batch(b, 20, 19, codec, z, zn - 12),
           codec == RN_KCODEC_SNAPPY && kind != XERIAL ? corrupt : "compressed data ends early");
    refuse(l, b, raw_batch(b, 1, 0, codec, (const unsigned char *)"not compressed at all", 21),
           corrupt);
    if (codec == RN_KCODEC_GZIP) {      /* the only one with a checksum by default */
        memcpy(recs + 4000, z, zn);
        recs[4000 + zn / 2] ^= 0x55;
        refuse(l, b, raw_batch(b, 20, 19, codec, recs + 4000, zn), corrupt);
    }
    if (codec == RN_KCODEC_SNAPPY) {
        /* A raw block that claims 200 MiB from 3 bytes: a lie, not a bomb. */
        unsigned char lie[8] = { 0x80, 0x80, 0x80, 0x64, 0, 0, 0 };
        refuse(l, b, raw_batch(b, 1, 0, codec, lie, 7), corrupt);
    }
    static unsigned char big[4 << 20];
    size_t vlen = (4 << 20) - 100;
    unsigned char *p = big;
    p += varint(p, (int64_t)vlen + 9);
    *p++ = 0;
    p += varint(p, 0);
    p += varint(p, 0);
    p += varint(p, -1);
    p += varint(p, (int64_t)vlen);
    memset(p, 0, vlen + 1);
    p += vlen + 1;
    zn = squeeze(kind, z, sizeof z, big, (size_t)(p - big));
    rn_klog_opts lax = { .max_inflated = 8 << 20 };
    rn_klog_close(l);
    l = open_log(&lax);
    bn = raw_batch(buf, 1, 0, codec, z, zn);
    ck_assert_msg(rn_klog_append(l, buf, bn, 0, &base, err) == 0, "%s", err);
    rn_klog_close(l);
    l = open_log(&o);
    refuse(l, b, raw_batch(b, 1, 0, codec, z, zn), "inflate beyond the limit");
    rn_klog_close(l);
}

/* Records with keys, headers, empty and null fields, and lengths whose
 * varints take 1, 2 and 3 bytes, from a seeded generator. With mrec >= 0,
 * varint field mfield (0 timestampDelta, 1 offsetDelta, 2 key length,
 * 3 value length, 4 header count, 5 first header's key length, 6 its value
 * length) of record mrec says mval instead: a length of -1 (null) or up to
 * 9000 is followed by that many bytes, any other by the field's own; the
 * record's own length fits what follows when fix is set, and is one byte
 * more or less when not. */
static size_t records_mixed(unsigned char *out, int nrec, uint32_t seed, int mrec,
                            int mfield, int64_t mval, int fix)
{
    static const size_t sizes[] = { 0, 1, 5, 63, 64, 100, 200, 8192, 9000 };
    unsigned char *p = out;
    for (int i = 0; i < nrec; i++) {
        static unsigned char body[4 * 9000 + 256];
        size_t k = 0;
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        int64_t klen = r % 3 == 0 ? -1 : (int64_t)sizes[r % 5];
        int64_t vlen = (int64_t)sizes[(r >> 4) % 9];
        int nh = (int)((r >> 8) % 3);
        int64_t f[7] = { (int64_t)(r % 200000) - 100000, i, klen, vlen, nh, 3, 70 };
        int64_t said[7];
        memcpy(said, f, sizeof f);
        if (i == mrec && mfield < 7)
            said[mfield] = mval;
        /* The bytes after a length field: as many as it says, when it can. */
        int64_t bytes[7];
        for (int j = 0; j < 7; j++)
            bytes[j] = said[j] >= -1 && said[j] <= 9000 ? (said[j] < 0 ? 0 : said[j])
                                                         : (f[j] < 0 ? 0 : f[j]);
        body[k++] = 0;
        k += varint(body + k, said[0]);
        k += varint(body + k, said[1]);
        k += varint(body + k, said[2]);
        memset(body + k, 'k', (size_t)bytes[2]);
        k += (size_t)bytes[2];
        k += varint(body + k, said[3]);
        memset(body + k, 'v', (size_t)bytes[3]);
        k += (size_t)bytes[3];
        k += varint(body + k, said[4]);
        for (int h = 0; h < nh; h++) {
            k += varint(body + k, h ? 3 : said[5]);
            size_t hk = h ? 3 : (size_t)bytes[5];
            memset(body + k, 'x', hk);
            k += hk;
            k += varint(body + k, h ? -1 : said[6]);
            size_t hv = h ? 0 : (size_t)bytes[6];
            memset(body + k, 'h', hv);
            k += hv;
        }
        size_t len = k;
        if (i == mrec && !fix)
            len = r & 1 ? k + 1 : k - 1;
        p += varint(p, (int64_t)len);
        memcpy(p, body, k);
        p += k;
    }
    return (size_t)(p - out);
}

/* One verdict on records: appended (""), or refused, and why. The batch
 * is in an allocation of its own size, so that a read past its end is
 * AddressSanitizer's to see. */
static void verdict(rn_klog *l, const unsigned char *recs, size_t n, int count, int codec,
                    char *why, size_t whylen)
{
    static unsigned char z[1 << 18], b[1 << 19];
    char err[RN_ERRLEN] = "";
    int64_t base = -1;
    size_t bn = codec ? raw_batch(b, count, count - 1, 1, z, gzip(z, sizeof z, recs, n))
                      : raw_batch(b, count, count - 1, 0, recs, n);
    unsigned char *exact = malloc(bn);
    ck_assert_ptr_nonnull(exact);
    memcpy(exact, b, bn);
    int r = rn_klog_append(l, exact, bn, 0, &base, err);
    free(exact);
    ck_assert_msg(r == 0 || r == RN_ECORRUPT, "append: %d %s", r, err);
    snprintf(why, whylen, "%s", r == 0 ? "" : err);
}

/* Uncompressed batches are checked by a walk of their own (check_flat),
 * which hands anything it does not like to the byte source that reads gzip
 * ones, for the words. The same records, good or damaged, are taken or
 * refused alike either way. (The words may differ: only an uncompressed
 * batch knows that a record runs past its end before reading its fields.)
 * Damage: a field that says something else (the record's length made to
 * fit or not), and bytes changed at random. */
START_TEST(records_plain_and_gzip_agree)
{
    static unsigned char recs[1 << 18];
    static const int64_t odd[] = { -3, -2, -1, 0, 1, 2, 63, 64, 8192, 2000000000 };
    char plain[RN_ERRLEN], gz[RN_ERRLEN];
    uint32_t seed = 7;
    rn_klog *l = open_log(NULL);
    int refused = 0, taken = 0;
    for (int round = 0; round < 1500; round++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        int count = 1 + (int)(r % 5);
        int mrec = round < 20 ? -1 : (int)((r >> 3) % (uint32_t)count);
        int mfield = (int)((r >> 6) % 8);         /* 7: a random byte instead */
        int64_t mval = odd[(r >> 9) % 10];
        size_t n = records_mixed(recs, count, (uint32_t)round, mrec, mfield, mval,
                                 (int)((r >> 13) & 1));
        if (mrec >= 0 && mfield == 7) {
            seed = seed * 1103515245u + 12345u;
            recs[(seed >> 8) % n] ^= (unsigned char)(1 + (seed >> 20) % 255);
        }
        verdict(l, recs, n, count, 0, plain, sizeof plain);
        verdict(l, recs, n, count, 1, gz, sizeof gz);
        ck_assert_msg(!plain[0] == !gz[0], "round %d (record %d field %d = %lld): plain '%s', "
                      "gzip '%s'", round, mrec, mfield, (long long)mval, plain, gz);
        if (mrec < 0)
            ck_assert_msg(!plain[0], "a good batch refused: %s", plain);
        refused += plain[0] != 0;
        taken += !plain[0];
    }
    ck_assert_int_gt(refused, 500);
    ck_assert_int_gt(taken, 100);
    rn_klog_close(l);
}
END_TEST

START_TEST(big_batch_own_segment)
{
    rn_klog_opts o = { .segment_bytes = 1024 };
    rn_klog *l = open_log(&o);
    add(l, 1, 1, 100);
    add(l, 20, 2, 100);           /* ~2.5 KiB, bigger than a segment */
    add(l, 1, 3, 100);
    ck_assert_uint_eq(rn_klog_segments(l), 3);
    rn_klog_slice s = read_at(l, 5, 10);
    int64_t first, next;
    ck_assert_int_eq(walk(s, &first, &next), 1);
    ck_assert_int_eq(first, 1);
    ck_assert_int_eq(next, 21);
    ck_assert_uint_eq(s.pos, 0);
    rn_klog_close(l);
}
END_TEST

/* ---- reopen and recovery ----------------------------------------------- */

START_TEST(reopen_clean)
{
    rn_klog_opts o = { .segment_bytes = 2048, .index_interval = 256 };
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 50; i++)
        add(l, 3, 1000 + i, 40);
    int64_t end = rn_klog_end(l);
    size_t nseg = rn_klog_segments(l);
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), end);
    ck_assert_uint_eq(rn_klog_segments(l), nseg);
    ck_assert_str_eq(rn_klog_recovery_note(l), "");
    ck_assert_int_eq(oft(l, 1030), 90);
    ck_assert_int_eq(add(l, 1, 2000, 1), end);
    int64_t first, next;
    ck_assert_int_eq(walk(read_at(l, 100, 1), &first, &next), 1);
    ck_assert_int_eq(first, 99);
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), end + 1);
    rn_klog_close(l);
}
END_TEST

/* A child appends and dies without closing, as after kill -9. */
static void crash_after(int batches, int do_sync)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rn_klog_opts o = { .segment_bytes = 2048, .index_interval = 256 };
        rn_klog *l = NULL;
        char err[RN_ERRLEN];
        if (rn_klog_open(ldir, &o, &l, err) < 0)
            _exit(1);
        for (int i = 0; i < batches; i++) {
            unsigned char buf[4096];
            int64_t base;
            size_t n = make_batch(buf, 2, 5000 + i, 30);
            if (rn_klog_append(l, buf, n, 0, &base, err) < 0)
                _exit(2);
        }
        if (do_sync && rn_klog_sync(l, err) < 0)
            _exit(3);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

START_TEST(reopen_after_crash)
{
    rn_klog_opts o = { .segment_bytes = 2048, .index_interval = 256 };
    crash_after(40, 1);
    crash_after(10, 0);
    rn_klog *l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), 100);
    ck_assert_str_eq(rn_klog_recovery_note(l), "");
    ck_assert_uint_eq(rn_klog_recovery_truncated(l), 0);
    int64_t off = 0, first, next;
    while (off < 100) {
        walk(read_at(l, off, 700), &first, &next);
        ck_assert_int_eq(first, off);
        off = next;
    }
    rn_klog_close(l);
}
END_TEST

static void torn_tail(int remove_state)
{
    rn_klog_opts o = { .segment_bytes = 1 << 20, .index_interval = 256 };
    rn_klog *l = open_log(&o);
    unsigned char last[4096];
    for (int i = 0; i < 20; i++)
        add(l, 2, 100 + i, 50);
    size_t lastlen = make_batch(last, 2, 120, 50);
    add(l, 2, 120, 50);           /* offsets 40, 41: the one we tear */
    rn_klog_close(l);
    char p[400];
    seg_path(p, 0, ".log");
    off_t size = file_size(p);
    /* Cut the last batch in half and put garbage after it. */
    ck_assert_int_eq(truncate(p, size - (off_t)lastlen / 2), 0);
    int fd = open(p, O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "garbage garbage garbage", 23), 23);
    close(fd);
    if (remove_state) {
        char st[400];
        snprintf(st, sizeof st, "%s/recovery-point", ldir);
        ck_assert_int_eq(unlink(st), 0);
    }
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), 40);
    char expect[200];
    snprintf(expect, sizeof expect,
             "00000000000000000000.log: truncated %lld bytes at byte offset %lld: ",
             (long long)(lastlen - lastlen / 2 + 23), (long long)(size - (off_t)lastlen));
    ck_assert_msg(strstr(rn_klog_recovery_note(l), expect), "%s", rn_klog_recovery_note(l));
    ck_assert_uint_eq(rn_klog_recovery_truncated(l), lastlen - lastlen / 2 + 23);
    ck_assert_int_eq(file_size(p), size - (off_t)lastlen);
    ck_assert_int_eq(add(l, 3, 200, 50), 40);
    int64_t first, next;
    ck_assert_int_eq(walk(read_at(l, 41, 1), &first, &next), 1);
    ck_assert_int_eq(first, 40);
    ck_assert_int_eq(next, 43);
    ck_assert_int_eq(oft(l, 150), 40);
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), 43);
    ck_assert_str_eq(rn_klog_recovery_note(l), "");
    rn_klog_close(l);
}

START_TEST(torn_tail_after_clean_close) { torn_tail(0); }
END_TEST

START_TEST(torn_tail_without_state) { torn_tail(1); }
END_TEST

START_TEST(corrupt_middle_segment)
{
    rn_klog_opts o = { .segment_bytes = 1024 };
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 30; i++)
        add(l, 1, i, 200);
    ck_assert_uint_ge(rn_klog_segments(l), 4);
    rn_klog_close(l);
    /* Flip one payload byte of the second batch of segment 0. */
    char p[400], st[400];
    seg_path(p, 0, ".log");
    int fd = open(p, O_RDWR);
    unsigned char hdr[12];
    ck_assert_int_eq(pread(fd, hdr, 12, 0), 12);
    off_t second = 12 + ((off_t)hdr[10] << 8 | hdr[11]);
    unsigned char c;
    ck_assert_int_eq(pread(fd, &c, 1, second + 100), 1);
    c ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &c, 1, second + 100), 1);
    close(fd);
    snprintf(st, sizeof st, "%s/recovery-point", ldir);
    unlink(st);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), 1);
    ck_assert_uint_eq(rn_klog_segments(l), 1);
    ck_assert_msg(strstr(rn_klog_recovery_note(l), "CRC mismatch"), "%s", rn_klog_recovery_note(l));
    ck_assert_msg(strstr(rn_klog_recovery_note(l), "deleted"), "%s", rn_klog_recovery_note(l));
    seg_path(p, 1, ".log");
    ck_assert_int_ne(access(p, F_OK), 0);
    ck_assert_int_eq(add(l, 1, 99, 1), 1);
    rn_klog_close(l);
}
END_TEST

START_TEST(garbage_segment)
{
    /* A .log full of noise, with lengths that claim gigabytes. */
    ck_assert_int_eq(mkdir(ldir, 0755), 0);
    char p[400];
    seg_path(p, 0, ".log");
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    unsigned char noise[5000];
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (unsigned char)(i * 7919 >> 3);
    memset(noise + 8, 0x7f, 4);
    ck_assert_int_eq(write(fd, noise, sizeof noise), (ssize_t)sizeof noise);
    close(fd);
    rn_klog *l = open_log(NULL);
    ck_assert_int_eq(rn_klog_end(l), 0);
    ck_assert_uint_eq(rn_klog_size(l), 0);
    ck_assert_uint_eq(rn_klog_recovery_truncated(l), sizeof noise);
    ck_assert_int_eq(add(l, 1, 1, 1), 0);
    rn_klog_close(l);
}
END_TEST

START_TEST(indexes_rebuilt)
{
    rn_klog_opts o = { .segment_bytes = 8192, .index_interval = 128 };
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 100; i++)
        add(l, 2, 1000 + 10 * i, 30);
    size_t nseg = rn_klog_segments(l);
    rn_klog_close(l);
    char p[400];
    seg_path(p, 0, ".index");
    off_t isize = file_size(p);
    ck_assert_int_gt(isize, 0);
    ck_assert_int_eq(unlink(p), 0);
    seg_path(p, 0, ".timeindex");
    off_t tsize = file_size(p);
    ck_assert_int_eq(unlink(p), 0);
    /* A misaligned index of the active segment and a garbage index, in
     * order, of a middle one whose positions point past its end. */
    int64_t lastbase = last_seg_base();
    ck_assert_int_gt(lastbase, 0);
    seg_path(p, lastbase, ".index");
    int fd = open(p, O_WRONLY | O_APPEND);
    ck_assert_int_eq(write(fd, "xyz", 3), 3);
    close(fd);
    int64_t midbase = nth_seg_base(1);
    seg_path(p, midbase, ".index");
    fd = open(p, O_WRONLY | O_TRUNC);
    unsigned char junk[16] = { 0, 0, 0, 1, 0x10, 0, 0, 0, 0, 0, 0, 2, 0x20, 0, 0, 0 };
    ck_assert_int_eq(write(fd, junk, 16), 16);
    close(fd);
    l = open_log(&o);
    ck_assert_uint_eq(rn_klog_segments(l), nseg);
    ck_assert_msg(strstr(rn_klog_recovery_note(l), "rebuilt"), "%s", rn_klog_recovery_note(l));
    ck_assert_int_eq(rn_klog_end(l), 200);
    seg_path(p, 0, ".index");
    ck_assert_int_eq(file_size(p), isize);
    seg_path(p, 0, ".timeindex");
    ck_assert_int_eq(file_size(p), tsize);
    for (int64_t off = 0; off < 200; off += 13) {
        int64_t first, next;
        walk(read_at(l, off, 1), &first, &next);
        ck_assert_int_eq(first, off & ~1LL);
    }
    ck_assert_int_eq(oft(l, 1005), 2);
    rn_klog_close(l);
}
END_TEST

/* ---- retention, time, roll by age -------------------------------------- */

START_TEST(retention_by_bytes)
{
    rn_klog_opts o = { .segment_bytes = 1024, .retention_bytes = 3000 };
    char err[RN_ERRLEN] = "";
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 40; i++)
        add(l, 1, 1000 + i, 200);   /* ~270 bytes each, 3 per segment */
    size_t nseg = rn_klog_segments(l);
    uint64_t size = rn_klog_size(l);
    ck_assert_uint_gt(size, 6000);
    int deleted = rn_klog_maintain(l, 2000 * 1000000LL, err);
    ck_assert_int_gt(deleted, 0);
    ck_assert_uint_eq(rn_klog_segments(l), nseg - (size_t)deleted);
    /* What remains is at least the limit, and no more than one segment over. */
    ck_assert_uint_ge(rn_klog_size(l), 3000);
    ck_assert_uint_lt(rn_klog_size(l), 3000 + 1024);
    int64_t start = rn_klog_start(l);
    ck_assert_int_eq(start, 3 * deleted);
    rn_klog_slice s;
    ck_assert_int_eq(rn_klog_read(l, start - 1, 100, &s, err), RN_ERANGE);
    ck_assert_int_eq(rn_klog_read(l, 0, 100, &s, err), RN_ERANGE);
    int64_t first, next;
    walk(read_at(l, start, 1), &first, &next);
    ck_assert_int_eq(first, start);
    ck_assert_int_eq(rn_klog_maintain(l, 2000 * 1000000LL, err), 0);
    char p[400];
    seg_path(p, 0, ".log");
    ck_assert_int_ne(access(p, F_OK), 0);
    seg_path(p, 0, ".index");
    ck_assert_int_ne(access(p, F_OK), 0);
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_start(l), start);
    ck_assert_int_eq(rn_klog_end(l), 40);
    rn_klog_close(l);
}
END_TEST

START_TEST(retention_by_time)
{
    const int64_t ms = 1000000;
    rn_klog_opts o = { .segment_bytes = 1024, .retention_ns = 60000 * ms };
    char err[RN_ERRLEN] = "";
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 12; i++)
        add(l, 1, 100000 + 1000 * i, 200);     /* t = 100 s .. 111 s */
    for (int i = 0; i < 6; i++)
        add(l, 1, 200000 + 1000 * i, 200);     /* t = 200 s .. 205 s */
    size_t nseg = rn_klog_segments(l);
    ck_assert_uint_eq(nseg, 6);
    /* At 150 s nothing is older than a minute. */
    ck_assert_int_eq(rn_klog_maintain(l, 150000 * ms, err), 0);
    /* At 172 s, the segments up to 111 s are. */
    ck_assert_int_eq(rn_klog_maintain(l, 172000 * ms, err), 4);
    ck_assert_int_eq(rn_klog_start(l), 12);
    ck_assert_int_eq(oft(l, 0), 12);
    /* Much later everything has expired, but the active segment stays. */
    ck_assert_int_eq(rn_klog_maintain(l, 999000 * ms, err), 1);
    ck_assert_uint_eq(rn_klog_segments(l), 1);
    ck_assert_int_eq(rn_klog_start(l), 15);
    ck_assert_int_eq(rn_klog_end(l), 18);
    rn_klog_close(l);
}
END_TEST

START_TEST(offset_for_time)
{
    rn_klog_opts o = { .segment_bytes = 2048, .index_interval = 100 };
    rn_klog *l = open_log(&o);
    ck_assert_int_eq(oft(l, 5), -1);   /* empty: no record is that new */
    /* Batches of 4 records at 1000, 1010, ... with one out-of-order dip. */
    for (int i = 0; i < 60; i++)
        add(l, 4, i == 30 ? 500 : 1000 + 10 * i, 60);
    ck_assert_uint_gt(rn_klog_segments(l), 3);
    ck_assert_int_eq(oft(l, 0), 0);
    ck_assert_int_eq(oft(l, 1000), 0);
    ck_assert_int_eq(oft(l, 1001), 4);
    ck_assert_int_eq(oft(l, 1010), 4);
    ck_assert_int_eq(oft(l, 1255), 26 * 4);
    ck_assert_int_eq(oft(l, 1295), 30 * 4 + 4);   /* the dip is skipped */
    ck_assert_int_eq(oft(l, 1590), 59 * 4);
    ck_assert_int_eq(oft(l, 1591), -1);           /* none */
    ck_assert_int_eq(oft(l, -1), 240);            /* latest */
    ck_assert_int_eq(oft(l, -2), 0);              /* earliest */
    /* Every answer agrees with a linear scan. */
    for (int64_t t = 990; t < 1600; t += 3) {
        int64_t want = -1;
        for (int i = 0; i < 60; i++)
            if ((i == 30 ? 500 : 1000 + 10 * i) >= t) {
                want = 4 * i;
                break;
            }
        ck_assert_int_eq(oft(l, t), want);
    }
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(oft(l, 1255), 26 * 4);
    ck_assert_int_eq(oft(l, 1590), 59 * 4);
    rn_klog_close(l);
}
END_TEST

/* As Kafka: the max timestamp is recomputed on append (sarama sends -1), and
 * a search by time answers the first record stamped at or after the time,
 * with that record's timestamp, inside plain and compressed batches (every
 * codec); -1 when no
 * record is that new. The same after a clean reopen and after the indexes
 * are rebuilt from the segments. */
START_TEST(offset_for_time_records)
{
    rn_klog_opts o = { .segment_bytes = 512, .index_interval = 64 };
    static const int64_t d[4] = { 0, 50, 20, 70 };
    unsigned char b[8192];
    char err[RN_ERRLEN] = "";
    int64_t base, t;
    rn_klog *l = open_log(&o);
    for (int k = 0; k < 10; k++) {
        size_t n = ts_batch(b, 4, 1000 + 100 * k, d, -1, k % (NKINDS + 1));
        ck_assert_msg(rn_klog_append(l, b, n, 0, &base, err) == 0, "%s", err);
        ck_assert_int_eq(base, 4 * k);
        ck_assert_int_eq((int64_t)get64(b + 35), 1000 + 100 * k + 70);
        ck_assert_uint_eq(rn_be32(b + 17), rn_crc32c(0, b + 21, n - 21));
    }
    ck_assert_uint_gt(rn_klog_segments(l), 2);
    ck_assert_int_eq(read_at(l, 0, 1).codec, 0);
    ck_assert_uint_eq(read_at(l, 0, 1).avail, rn_klog_size(l));
    for (int k = 0; k < NKINDS; k++)
        ck_assert_int_eq(read_at(l, 4 * (k + 1), 1).codec, kinds[k].codec);
    for (int pass = 0; pass < 3; pass++) {
        for (int k = 0; k < 10; k++) {
            int64_t at = 1000 + 100 * k;
            ck_assert_int_eq(oft_ts(l, at, &t), 4 * k);
            ck_assert_int_eq(t, at);
            ck_assert_int_eq(oft_ts(l, at + 1, &t), 4 * k + 1);   /* not the batch's first */
            ck_assert_int_eq(t, at + 50);
            ck_assert_int_eq(oft_ts(l, at + 21, &t), 4 * k + 1);  /* first by offset */
            ck_assert_int_eq(t, at + 50);
            ck_assert_int_eq(oft_ts(l, at + 51, &t), 4 * k + 3);
            ck_assert_int_eq(t, at + 70);
            ck_assert_int_eq(oft_ts(l, at + 71, &t), k < 9 ? 4 * k + 4 : -1);
            ck_assert_int_eq(t, k < 9 ? at + 100 : -1);
        }
        rn_klog_close(l);
        if (pass == 1) {
            glob_t g;
            ck_assert_int_eq(chdir(ldir), 0);
            ck_assert_int_eq(glob("*index", 0, NULL, &g), 0);
            for (size_t i = 0; i < g.gl_pathc; i++)
                ck_assert_int_eq(unlink(g.gl_pathv[i]), 0);
            globfree(&g);
            ck_assert_int_eq(chdir("/"), 0);
        }
        l = open_log(&o);
    }
    /* From a log start inside a batch. */
    ck_assert_int_eq(rn_klog_advance_start(l, 10, err), 0);
    ck_assert_int_eq(oft_ts(l, 1000, &t), 10);
    ck_assert_int_eq(t, 1220);
    rn_klog_close(l);
}
END_TEST

START_TEST(roll_by_age)
{
    const int64_t ms = 1000000;
    rn_klog_opts o = { .segment_age_ns = 1000 * ms };
    char err[RN_ERRLEN] = "";
    rn_klog *l = open_log(&o);
    unsigned char buf[4096];
    int64_t base;
    size_t n = make_batch(buf, 1, 1, 10);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 10000, &base, err), 0);
    n = make_batch(buf, 1, 1, 10);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 10999, &base, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 1);
    /* The append that finds the segment a second old starts a new one. */
    n = make_batch(buf, 1, 1, 10);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 11000, &base, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 2);
    /* maintain rolls an idle active segment, but never an empty one. */
    ck_assert_int_eq(rn_klog_maintain(l, 11500 * ms, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 2);
    ck_assert_int_eq(rn_klog_maintain(l, 12000 * ms, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 3);
    ck_assert_int_eq(rn_klog_maintain(l, 99000 * ms, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 3);
    char p[400];
    seg_path(p, 3, ".log");
    ck_assert_int_eq(access(p, F_OK), 0);
    rn_klog_slice s = read_at(l, 3, 100);
    ck_assert_uint_eq(s.len, 0);
    ck_assert_int_eq(add(l, 1, 1, 1), 3);
    rn_klog_close(l);
}
END_TEST

START_TEST(advance_start_and_sync)
{
    char err[RN_ERRLEN] = "";
    rn_klog_opts o = { .segment_bytes = 1024 };
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 20; i++)
        add(l, 2, i, 200);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    char buf[256];
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 40\n") && strstr(buf, "clean 0\n"), "%s", buf);
    ck_assert_int_eq(rn_klog_advance_start(l, 41, err), RN_ERANGE);
    ck_assert_int_eq(rn_klog_advance_start(l, 13, err), 0);
    ck_assert_int_eq(rn_klog_start(l), 13);
    rn_klog_slice s;
    ck_assert_int_eq(rn_klog_read(l, 12, 1, &s, err), RN_ERANGE);
    int64_t first, next;
    walk(read_at(l, 13, 1), &first, &next);
    ck_assert_int_eq(first, 12);
    ck_assert_int_eq(oft(l, 0), 13);
    /* Segments wholly below the start go at the next maintain. */
    ck_assert_int_eq(rn_klog_maintain(l, 0, err), 3);
    ck_assert_int_eq(rn_klog_start(l), 13);
    rn_klog_close(l);
    l = open_log(&o);
    ck_assert_int_eq(rn_klog_start(l), 13);
    ck_assert_int_eq(rn_klog_end(l), 40);
    rn_klog_close(l);
}
END_TEST

/* Out of descriptors, sync cannot take its own copies of them: it fails
 * without moving the recovery point, and the next sync does it all. */
START_TEST(sync_fails_then_retries)
{
    char err[RN_ERRLEN] = "", buf[256];
    rn_klog *l = open_log(NULL);
    add(l, 2, 1, 10);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    add(l, 3, 2, 10);
    struct rlimit old, low;
    int fds[64], n = 0, spare = open("/dev/null", O_RDONLY);
    ck_assert_int_ge(spare, 0);
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
    low = old;
    low.rlim_cur = 64;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    while (n < 64 && (fds[n] = dup(spare)) >= 0)
        n++;
    ck_assert_int_eq(errno, EMFILE);
    int r = rn_klog_sync(l, err);
    while (n > 0)
        close(fds[--n]);
    close(spare);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
    ck_assert_int_eq(r, RN_ERR);
    ck_assert_msg(strstr(err, "fsync: ") && strstr(err, strerror(EMFILE)), "%s", err);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 2\n"), "%s", buf);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 5\n"), "%s", buf);
    rn_klog_close(l);
}
END_TEST

/* A stray file holds the name of the segment a roll wants: the append that
 * needed the roll fails and writes nothing, and so does maintain's roll by
 * age; both work once the name is free. */
START_TEST(roll_fails)
{
    const int64_t ms = 1000000;
    rn_klog_opts o = { .segment_bytes = 1024, .segment_age_ns = 1000 * ms };
    char err[RN_ERRLEN] = "", p[400];
    rn_klog *l = open_log(&o);
    unsigned char buf[4096];
    int64_t base = -7;
    size_t n = make_batch(buf, 1, 1, 600);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 10000, &base, err), 0);
    seg_path(p, 1, ".log");
    int fd = open(p, O_WRONLY | O_CREAT, 0644);
    ck_assert_int_eq(write(fd, "stray", 5), 5);
    close(fd);
    base = -7;
    n = make_batch(buf, 1, 1, 600);
    ck_assert_int_eq(rn_klog_append(l, buf, n, 10000, &base, err), RN_ERR);
    ck_assert_msg(strstr(err, "/00000000000000000001.log: ") && strstr(err, strerror(EEXIST)),
                  "%s", err);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(rn_klog_end(l), 1);
    ck_assert_uint_eq(rn_klog_segments(l), 1);
    err[0] = 0;
    ck_assert_int_eq(rn_klog_maintain(l, 20000 * ms, err), RN_ERR);
    ck_assert_msg(strstr(err, "/00000000000000000001.log: "), "%s", err);
    ck_assert_uint_eq(rn_klog_segments(l), 1);
    ck_assert_int_eq(file_size(p), 5);
    ck_assert_int_eq(unlink(p), 0);
    ck_assert_int_eq(rn_klog_maintain(l, 20000 * ms, err), 0);
    ck_assert_uint_eq(rn_klog_segments(l), 2);
    ck_assert_int_eq(add(l, 1, 2, 10), 1);
    rn_klog_close(l);
}
END_TEST

/* A file size limit stands for a full disk (EFBIG where a disk says ENOSPC):
 * the append that does not fit is refused with part of it written, and is
 * cut back, so that no offset is issued twice or skipped; when there is
 * room again the next append goes where it would have.
 * Check itself writes a file at each assertion: none until the limit is
 * lifted (fsize_limit returns what to assert then). */
static int fsize_limit(rlim_t n)
{
    struct rlimit r;
    if (getrlimit(RLIMIT_FSIZE, &r) < 0)
        return -1;
    r.rlim_cur = n;
    return setrlimit(RLIMIT_FSIZE, &r);
}

START_TEST(write_fails_nothing_kept)
{
    char err[RN_ERRLEN] = "", p[400];
    unsigned char buf[4096];
    signal(SIGXFSZ, SIG_IGN);
    rn_klog *l = open_log(NULL);
    add(l, 2, 1000, 100);
    add(l, 3, 1000, 100);
    seg_path(p, 0, ".log");
    off_t before = file_size(p);
    size_t n = make_batch(buf, 2, 1000, 200);
    int64_t base = -7;
    int lim = fsize_limit((rlim_t)before + 50);
    int r = rn_klog_append(l, buf, n, 1000, &base, err);
    struct stat st;
    off_t after = stat(p, &st) == 0 ? st.st_size : -1;
    ck_assert_int_eq(fsize_limit(RLIM_INFINITY), 0);
    ck_assert_int_eq(lim, 0);
    ck_assert_int_eq(r, RN_ERR);
    ck_assert_msg(strstr(err, "00000000000000000000.log: write: ")
                  && strstr(err, strerror(EFBIG)), "%s", err);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(rn_klog_end(l), 5);
    ck_assert_int_eq(after, before);
    int64_t first, next;
    ck_assert_int_eq(walk(read_at(l, 0, 1 << 20), &first, &next), 2);
    ck_assert_int_eq(next, 5);
    ck_assert_int_eq(add(l, 2, 1000, 200), 5);
    rn_klog_close(l);
    l = open_log(NULL);
    ck_assert_int_eq(rn_klog_end(l), 7);
    ck_assert_int_eq(walk(read_at(l, 0, 1 << 20), &first, &next), 3);
    rn_klog_close(l);
}
END_TEST

/* A disk too full for the state file: the log opens all the same. The old
 * file said "clean", which would no longer be true, so it goes, and the
 * open after that validates everything. */
START_TEST(open_on_full_disk)
{
    char err[RN_ERRLEN] = "", st[400];
    signal(SIGXFSZ, SIG_IGN);
    rn_klog *l = open_log(NULL);
    add(l, 2, 1000, 100);
    rn_klog_close(l);
    unsigned char buf[4096];
    int64_t base = -7;
    size_t n = make_batch(buf, 1, 1000, 10);
    int lim = fsize_limit(10);
    int opened = rn_klog_open(ldir, NULL, &l, err);
    int appended = opened == 0 ? rn_klog_append(l, buf, n, 1000, &base, err) : 0;
    ck_assert_int_eq(fsize_limit(RLIM_INFINITY), 0);
    ck_assert_int_eq(lim, 0);
    ck_assert_msg(opened == 0, "open: %s", err);
    ck_assert_msg(strstr(rn_klog_recovery_note(l), "removed recovery-point"), "%s",
                  rn_klog_recovery_note(l));
    snprintf(st, sizeof st, "%s/recovery-point", ldir);
    ck_assert_int_eq(access(st, F_OK), -1);
    ck_assert_int_eq(rn_klog_end(l), 2);
    ck_assert_int_eq(appended, RN_ERR);
    ck_assert_int_eq(add(l, 1, 1000, 10), 2);
    rn_klog_close(l);
    l = open_log(NULL);
    ck_assert_int_eq(rn_klog_end(l), 3);
    rn_klog_close(l);
}
END_TEST

/* A sync whose data reached the disk but whose state file could not be
 * replaced (here a directory is in the way of its temporary) succeeds: the
 * old recovery point is still true. The next sync saves the new one. */
START_TEST(sync_without_state_file)
{
    char err[RN_ERRLEN] = "", tmp[400], buf[256];
    rn_klog *l = open_log(NULL);
    add(l, 2, 1000, 10);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    snprintf(tmp, sizeof tmp, "%s/recovery-point.tmp", ldir);
    ck_assert_int_eq(mkdir(tmp, 0755), 0);
    add(l, 3, 1000, 10);
    ck_assert_msg(rn_klog_sync(l, err) == 0, "%s", err);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 2\n"), "%s", buf);
    ck_assert_int_eq(rmdir(tmp), 0);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 5\n"), "%s", buf);
    rn_klog_close(l);
}
END_TEST

static int fail_fsync(int fd)
{
    (void)fd;
    errno = EIO;
    return -1;
}

/* A failed fsync stops the log: the kernel may have dropped what it could
 * not write, so no later sync can vouch for it. Appends and syncs fail,
 * reads go on, the recovery point stays where the last good sync left it,
 * and the close is not clean; reopened, the log works again. */
START_TEST(fsync_fails_log_stops)
{
    char err[RN_ERRLEN] = "", buf[256];
    rn_klog *l = open_log(NULL);
    add(l, 2, 1000, 10);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    add(l, 3, 1000, 10);
    rn__klog_fsync_hook = fail_fsync;
    ck_assert_int_eq(rn_klog_sync(l, err), RN_ERR);
    rn__klog_fsync_hook = NULL;
    ck_assert_msg(strstr(err, "fsync: ") && strstr(err, strerror(EIO)), "%s", err);
    ck_assert(rn_klog_failed(l));
    ck_assert_int_eq(rn_klog_sync(l, err), RN_ERR);
    ck_assert_msg(strstr(err, "an earlier fsync failed"), "%s", err);
    unsigned char b[4096];
    int64_t base = -7;
    size_t n = make_batch(b, 1, 1000, 10);
    ck_assert_int_eq(rn_klog_append(l, b, n, 1000, &base, err), RN_ERR);
    ck_assert_msg(strstr(err, "an earlier fsync failed"), "%s", err);
    ck_assert_int_eq(base, -7);
    ck_assert_int_eq(rn_klog_end(l), 5);
    int64_t first, next;
    ck_assert_int_eq(walk(read_at(l, 0, 1 << 20), &first, &next), 2);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 2\n"), "%s", buf);
    rn_klog_close(l);
    read_state(buf, sizeof buf);
    ck_assert_msg(strstr(buf, "recovery-point 2\n") && strstr(buf, "clean 0\n"), "%s", buf);
    l = open_log(NULL);
    ck_assert(!rn_klog_failed(l));
    ck_assert_int_eq(rn_klog_end(l), 5);
    ck_assert_int_eq(add(l, 1, 1000, 10), 5);
    ck_assert_int_eq(rn_klog_sync(l, err), 0);
    rn_klog_close(l);
}
END_TEST

/* A time index cut short behind the log's back: the lookup reports an I/O
 * error rather than an answer. */
START_TEST(offset_for_time_io_error)
{
    rn_klog_opts o = { .index_interval = 100 };
    rn_klog *l = open_log(&o);
    for (int i = 0; i < 20; i++)
        add(l, 2, 1000 + 10 * i, 60);
    ck_assert_int_eq(oft(l, 1100), 20);
    char p[400];
    seg_path(p, 0, ".timeindex");
    ck_assert_int_gt(file_size(p), 0);
    ck_assert_int_eq(truncate(p, 0), 0);
    char err[RN_ERRLEN] = "";
    int64_t off, rts;
    ck_assert_int_eq(rn_klog_offset_for_time(l, 1100, &off, &rts, err), RN_ERR);
    ck_assert_msg(strstr(err, "index read"), "%s", err);
    ck_assert_int_eq(oft(l, -1), 40);    /* needs no index */
    rn_klog_close(l);
}
END_TEST

static int appending;   /* set and read with __atomic builtins */

static void *syncer(void *arg)
{
    rn_klog *l = arg;
    char err[RN_ERRLEN];
    int n = 0;
    while (__atomic_load_n(&appending, __ATOMIC_ACQUIRE) || n < 2) {
        ck_assert_msg(rn_klog_sync(l, err) == 0, "%s", err);
        n++;
    }
    return NULL;
}

START_TEST(sync_on_worker_thread)
{
    /* The broker's shape: fsync on a worker while the loop appends, rolls
     * and deletes. Then a crash must find everything that was appended. */
    rn_klog_opts o = { .segment_bytes = 2048, .retention_bytes = 8192 };
    char err[RN_ERRLEN];
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        rn_klog *l = NULL;
        pthread_t t;
        if (rn_klog_open(ldir, &o, &l, err) < 0)
            _exit(1);
        __atomic_store_n(&appending, 1, __ATOMIC_RELEASE);
        pthread_create(&t, NULL, syncer, l);
        for (int i = 0; i < 2000; i++) {
            unsigned char buf[4096];
            int64_t base;
            size_t n = make_batch(buf, 1, i, 100);
            if (rn_klog_append(l, buf, n, i, &base, err) < 0 || base != i)
                _exit(2);
            if (i % 50 == 0 && rn_klog_maintain(l, 0, err) < 0)
                _exit(3);
        }
        __atomic_store_n(&appending, 0, __ATOMIC_RELEASE);
        pthread_join(t, NULL);
        _exit(0);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    rn_klog *l = open_log(&o);
    ck_assert_int_eq(rn_klog_end(l), 2000);
    ck_assert_int_gt(rn_klog_start(l), 0);
    int64_t first, next;
    walk(read_at(l, 1999, 1), &first, &next);
    ck_assert_int_eq(first, 1999);
    rn_klog_close(l);
}
END_TEST

START_TEST(bad_options)
{
    char err[RN_ERRLEN] = "";
    rn_klog *l = NULL;
    rn_klog_opts o = { .segment_bytes = 1ULL << 31 };
    ck_assert_int_eq(rn_klog_open(ldir, &o, &l, err), -1);
    ck_assert_msg(strstr(err, "2 GiB"), "%s", err);
    ck_assert_ptr_null(l);
    ck_assert_int_eq(rn_klog_open("/proc/nonexistent/x", NULL, &l, err), -1);
    ck_assert_msg(strstr(err, "/proc/nonexistent"), "%s", err);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("klog");
    TCase *tc = tcase_create("crc32c");
    tcase_add_test(tc, crc_vectors);
    suite_add_tcase(s, tc);

    tc = tcase_create("append_read");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, round_trip_segments);
    tcase_add_test(tc, several_batches_one_request);
    tcase_add_test(tc, read_within_batch_and_max_bytes);
    tcase_add_test(tc, out_of_range);
    tcase_add_test(tc, corrupt_rejected);
    tcase_add_test(tc, records_validated);
    tcase_add_loop_test(tc, compressed_validated, 0, NKINDS);
    tcase_add_test(tc, records_plain_and_gzip_agree);
    tcase_add_test(tc, big_batch_own_segment);
    tcase_add_test(tc, bad_options);
    suite_add_tcase(s, tc);

    tc = tcase_create("recovery");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, reopen_clean);
    tcase_add_test(tc, reopen_after_crash);
    tcase_add_test(tc, torn_tail_after_clean_close);
    tcase_add_test(tc, torn_tail_without_state);
    tcase_add_test(tc, corrupt_middle_segment);
    tcase_add_test(tc, garbage_segment);
    tcase_add_test(tc, indexes_rebuilt);
    suite_add_tcase(s, tc);

    tc = tcase_create("maintenance");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, retention_by_bytes);
    tcase_add_test(tc, retention_by_time);
    tcase_add_test(tc, offset_for_time);
    tcase_add_test(tc, offset_for_time_records);
    tcase_add_test(tc, roll_by_age);
    tcase_add_test(tc, advance_start_and_sync);
    tcase_add_test(tc, sync_on_worker_thread);
    tcase_add_test(tc, sync_fails_then_retries);
    tcase_add_test(tc, roll_fails);
    tcase_add_test(tc, offset_for_time_io_error);
    tcase_add_test(tc, write_fails_nothing_kept);
    tcase_add_test(tc, open_on_full_disk);
    tcase_add_test(tc, sync_without_state_file);
    tcase_add_test(tc, fsync_fails_log_stops);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
