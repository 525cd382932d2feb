/* klog.c -- one partition's log: Kafka's segment files, sparse indexes,
 * roll, retention and crash recovery.
 *
 * Memory stays flat however big the log grows: per segment we keep one small
 * struct and three open descriptors; indexes live in their files and are
 * binary-searched with pread (log2 of 256 Ki entries is 18 reads for a full
 * 1 GiB segment), and every scan goes through one fixed 64 KiB window. */
#include "broker/broker.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "broker/broker_int.h"

#define HDR RN_KLOG_BATCH_HEADER
#define MIN_BATCH_LEN 49          /* batchLength of a batch with no records */
#define WINDOW (64 * 1024)
#define IDX_ENT 8
#define TIDX_ENT 12
#define STATE "recovery-point"
#define STATE_TMP "recovery-point.tmp"
#define STATE_HEADER "runnel-klog 1\n"
#define DEFAULT_MAX_INFLATED (256ull << 20)

typedef struct seg {
    int64_t base, next;     /* first offset; next offset after its last batch */
    uint64_t size;          /* bytes of .log that hold whole, valid batches */
    int fd, ifd, tfd;       /* .log, .index, .timeindex */
    uint64_t nidx, ntidx;   /* entries in the index files */
    uint64_t since_idx;     /* .log bytes since the last index entry */
    int64_t max_ts;         /* largest batch maxTimestamp, -1 when none */
    int64_t max_ts_off;     /* last offset of the batch that first reached max_ts */
    int64_t tidx_ts;        /* timestamp of the last .timeindex entry, -1 when none */
    int64_t first_ms;       /* when the first batch was appended (roll by age), -1 empty */
    int64_t last_ms;        /* when the last batch was appended (retention without timestamps) */
    int dirty;              /* written since the last fsync */
    int idx_missing;        /* open found no index file: rebuild, do not trust empty */
} seg;

/* Locking exists only so that rn_klog_sync() can run on a worker thread
 * while the loop thread appends: `mu` guards the segment table, dirty flags
 * and end against that one concurrent reader; `state_mu` serialises writes of
 * the state file and the fields it records (rp, start). Reads need neither:
 * only the loop thread changes what they look at. */
struct rn_klog {
    pthread_mutex_t mu, state_mu;
    char *dir;
    int dirfd;
    rn_klog_opts o;
    seg *s;
    size_t n, cap;
    int64_t start, end;
    int64_t rp;             /* recovery point: everything below was fsynced */
    int dir_dirty;          /* segment files created since the last fsync of dir */
    int idx_failed;         /* an index write or a cut failed: do not call the next open clean */
    int sync_errno;         /* an fsync failed: what it said (sticky, see rn_klog_sync) */
    unsigned char *win;     /* the scan window, WINDOW bytes */
    uint64_t truncated;
    char note[512];
};

/* ---- bytes ------------------------------------------------------------- */

/* The header fields we use, at their RecordBatch v2 byte offsets. */
typedef struct bhdr {
    int64_t base;      /* 0 */
    int32_t len;       /* 8: bytes after this field */
    int magic;         /* 16 */
    uint32_t crc;      /* 17: covers 21 .. 12 + len */
    int attr;          /* 22: the low byte of attributes (codec, timestamp type) */
    int32_t delta;     /* 23: lastOffsetDelta */
    int64_t first_ts;  /* 27: firstTimestamp */
    int64_t max_ts;    /* 35 */
} bhdr;

static void parse_hdr(const unsigned char *p, bhdr *h)
{
    h->base = (int64_t)rn_be64(p);
    h->len = (int32_t)rn_be32(p + 8);
    h->magic = (signed char)p[16];
    h->crc = rn_be32(p + 17);
    h->attr = p[22];
    h->delta = (int32_t)rn_be32(p + 23);
    h->first_ts = (int64_t)rn_be64(p + 27);
    h->max_ts = (int64_t)rn_be64(p + 35);
}

/* What a walk over a batch's records learns of their timestamps (each is
 * firstTimestamp + timestampDelta): the largest, as Kafka recomputes it on
 * append, and, when target is not -1, the first record from index `from` on
 * stamped target or later (hit -1: none), as a search by time wants. */
typedef struct tscan {
    int64_t first, target;
    int32_t from;
    int64_t max;            /* -1 for no records */
    int32_t hit;
    int64_t hit_ts;
} tscan;

static const char *check_batch(rn_klog *l, const unsigned char *b, const bhdr *h,
                               int64_t *bad_rec, tscan *ts);

/* The checks that need no payload; NULL when the header is plausible. */
static const char *check_hdr(const bhdr *h, uint64_t avail)
{
    if (h->len < MIN_BATCH_LEN)
        return "batch length below 49";
    if ((uint64_t)h->len + 12 > avail)
        return "batch runs past the end";
    if (h->magic != 2)
        return "magic is not 2";
    if (h->delta < 0)
        return "negative lastOffsetDelta";
    return NULL;
}

/* ---- file I/O ---------------------------------------------------------- */

int (*rn__klog_fsync_hook)(int fd);

static int sync_fd(int fd, int data_only)
{
    if (rn__klog_fsync_hook)
        return rn__klog_fsync_hook(fd);
    return data_only ? fdatasync(fd) : fsync(fd);
}

static void seg_name(char *out, int64_t base, const char *ext)
{
    snprintf(out, 48, "%020" PRId64 "%s", base, ext);
}

/* ---- indexes ----------------------------------------------------------- */

static void idx_add(rn_klog *l, seg *g, uint32_t rel, uint64_t pos)
{
    unsigned char e[IDX_ENT];
    rn_put_be32(e, rel);
    rn_put_be32(e + 4, (uint32_t)pos);
    if (rn_pwrite_full(g->ifd, e, sizeof e, g->nidx * IDX_ENT) == 0)
        g->nidx++;
    else
        l->idx_failed = 1;   /* a missing entry only makes lookups scan further */
}

static void tidx_add(rn_klog *l, seg *g)
{
    unsigned char e[TIDX_ENT];
    rn_put_be64(e, (uint64_t)g->max_ts);
    rn_put_be32(e + 8, (uint32_t)(g->max_ts_off - g->base));
    if (rn_pwrite_full(g->tfd, e, sizeof e, g->ntidx * TIDX_ENT) == 0) {
        g->ntidx++;
        g->tidx_ts = g->max_ts;
        g->dirty = 1;   /* close's final entry must reach the disk too */
    } else {
        l->idx_failed = 1;
    }
}

/* Account one batch at pos. As in Kafka, an entry is written for the batch
 * that follows index_interval bytes without one, keyed by the batch's last
 * offset; the time index gets an entry at the same points when the max
 * timestamp grew, naming the batch where that maximum first appeared (so every
 * batch before it has a smaller maxTimestamp, which offset_for_time relies on). */
static void index_batch(rn_klog *l, seg *g, uint64_t pos, uint64_t bytes,
                        int64_t last, int64_t max_ts)
{
    if (max_ts > g->max_ts) {
        g->max_ts = max_ts;
        g->max_ts_off = last;
    }
    if (g->since_idx >= l->o.index_interval) {
        idx_add(l, g, (uint32_t)(last - g->base), pos);
        if (g->max_ts > g->tidx_ts)
            tidx_add(l, g);
        g->since_idx = 0;
    }
    g->since_idx += bytes;
}

/* A closing segment's time index ends with its max timestamp, so that open
 * can take a closed segment's newest timestamp from the last entry. */
static void tidx_finish(rn_klog *l, seg *g)
{
    if (g->max_ts >= 0 && g->max_ts > g->tidx_ts)
        tidx_add(l, g);
}

static int read_ent(int fd, uint64_t i, size_t sz, unsigned char *e)
{
    return rn_pread_full(fd, e, sz, i * sz);
}

/* Position to scan from for relative offset rel: the entry with the largest
 * key <= rel, else 0. *key gets the entry's key (-1 for none). */
static int idx_lookup(const seg *g, int64_t rel, uint64_t *pos, int64_t *key)
{
    uint64_t lo = 0, hi = g->nidx;   /* answer: last i < hi with key <= rel */
    unsigned char e[IDX_ENT];
    *pos = 0;
    *key = -1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int r = read_ent(g->ifd, mid, IDX_ENT, e);
        if (r < 0)
            return r;
        if ((int64_t)rn_be32(e) <= rel) {
            *key = rn_be32(e);
            *pos = rn_be32(e + 4);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* The entry with the largest position <= limit (0 and key -1 when none). */
static int idx_lookup_pos(const seg *g, uint64_t limit, uint64_t *pos, int64_t *key)
{
    uint64_t lo = 0, hi = g->nidx;
    unsigned char e[IDX_ENT];
    *pos = 0;
    *key = -1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int r = read_ent(g->ifd, mid, IDX_ENT, e);
        if (r < 0)
            return r;
        if (rn_be32(e + 4) <= limit) {
            *pos = rn_be32(e + 4);
            *key = rn_be32(e);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* The time index entry with the largest timestamp < ts: its offset, or -1. */
static int tidx_lookup(const seg *g, int64_t ts, int64_t *off)
{
    uint64_t lo = 0, hi = g->ntidx;
    unsigned char e[TIDX_ENT];
    *off = -1;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        int r = read_ent(g->tfd, mid, TIDX_ENT, e);
        if (r < 0)
            return r;
        if ((int64_t)rn_be64(e) < ts) {
            *off = g->base + rn_be32(e + 8);
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

/* ---- segments ---------------------------------------------------------- */

/* An index file, created empty when missing; *missing notes that, since an
 * empty index is valid for a small segment but a lost one must be rebuilt. */
static int open_index(rn_klog *l, const char *name, int create, int *missing)
{
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    int fd = openat(l->dirfd, name, flags, 0644);
    if (fd < 0 && errno == ENOENT && !create) {
        *missing = 1;
        fd = openat(l->dirfd, name, flags | O_CREAT, 0644);
    }
    return fd;
}

static int open_seg(rn_klog *l, seg *g, int64_t base, int create, char *err)
{
    char name[48];
    memset(g, 0, sizeof *g);
    g->base = g->next = base;
    g->fd = g->ifd = g->tfd = -1;
    g->max_ts = g->max_ts_off = g->tidx_ts = g->first_ms = g->last_ms = -1;
    seg_name(name, base, ".log");
    g->fd = openat(l->dirfd, name, O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0644);
    if (g->fd < 0)
        goto fail;
    struct stat st;
    if (fstat(g->fd, &st) < 0)
        goto fail;
    if (create && st.st_size != 0) {
        errno = EEXIST;   /* never append over bytes we do not account for */
        goto fail;
    }
    g->size = (uint64_t)st.st_size;
    /* Without a record of append times, the last write is the best date we
     * have: it can only delay a roll or a deletion, never hasten one. */
    if (st.st_size > 0)
        g->first_ms = g->last_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    seg_name(name, base, ".index");
    if ((g->ifd = open_index(l, name, create, &g->idx_missing)) < 0)
        goto fail;
    seg_name(name, base, ".timeindex");
    if ((g->tfd = open_index(l, name, create, &g->idx_missing)) < 0)
        goto fail;
    return 0;
fail:
    rn_seterr(err, "%s/%s: %s", l->dir, name, strerror(errno));
    if (g->fd >= 0)
        close(g->fd);
    if (g->ifd >= 0)
        close(g->ifd);
    return -1;
}

static void close_seg(seg *g)
{
    close(g->fd);
    close(g->ifd);
    close(g->tfd);
}

static void unlink_seg(rn_klog *l, int64_t base)
{
    static const char *ext[] = { ".log", ".index", ".timeindex" };
    /* .log first: once it is gone the segment is gone, and open deletes
     * index files left without a .log by a crash in between. */
    for (int i = 0; i < 3; i++) {
        char name[48];
        seg_name(name, base, ext[i]);
        unlinkat(l->dirfd, name, 0);
    }
}

static int push_seg(rn_klog *l, const seg *g, char *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        seg *s = realloc(l->s, cap * sizeof *s);
        if (!s)
            return rn_seterr(err, "%s: out of memory", l->dir);
        l->s = s;
        l->cap = cap;
    }
    l->s[l->n++] = *g;
    return 0;
}

/* Remove segments [i, i + k) from the table and the disk. */
static void drop_segs(rn_klog *l, size_t i, size_t k)
{
    for (size_t j = i; j < i + k; j++) {
        close_seg(&l->s[j]);
        unlink_seg(l, l->s[j].base);
    }
    memmove(l->s + i, l->s + i + k, (l->n - i - k) * sizeof *l->s);
    l->n -= k;
}

static seg *active(rn_klog *l)
{
    return &l->s[l->n - 1];
}

static int new_seg(rn_klog *l, int64_t base, char *err)
{
    seg g;
    if (open_seg(l, &g, base, 1, err) < 0)
        return -1;
    if (push_seg(l, &g, err) < 0) {
        close_seg(&g);
        unlink_seg(l, g.base);
        return -1;
    }
    l->dir_dirty = 1;
    return 0;
}

static int roll(rn_klog *l, char *err)
{
    tidx_finish(l, active(l));
    return new_seg(l, l->end, err);
}

/* ---- state file -------------------------------------------------------- */

static int save_state(rn_klog *l, int clean, char *err)
{
    char buf[128];
    int n = snprintf(buf, sizeof buf, STATE_HEADER "recovery-point %" PRId64
                     "\nlog-start-offset %" PRId64 "\nclean %d\n", l->rp, l->start, clean);
    return rn_file_replace(l->dirfd, l->dir, STATE, buf, (size_t)n, 1, err);
}

/* 1 when a well-formed state file was read, 0 when there is none or it is
 * damaged (then everything is validated, which is always safe). */
static int load_state(rn_klog *l, int64_t *rp, int64_t *start, int *clean)
{
    char buf[256];
    int fd = openat(l->dirfd, STATE, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    int end = -1;
    if (sscanf(buf, STATE_HEADER "recovery-point %" SCNd64 "\nlog-start-offset %" SCNd64
               "\nclean %d\n%n", rp, start, clean, &end) != 3 || end != n
        || *rp < 0 || *start < 0 || (*clean != 0 && *clean != 1))
        return 0;
    return 1;
}

/* ---- recovery ---------------------------------------------------------- */

static void note(rn_klog *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(rn_klog *l, const char *fmt, ...)
{
    size_t used = strlen(l->note);
    if (used + 3 >= sizeof l->note)
        return;
    if (used) {
        strcpy(l->note + used, "; ");
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->note + used, sizeof l->note - used, fmt, ap);
    va_end(ap);
}

/* Validate every batch of g from byte 0 (bounds, magic, CRC, offsets going
 * forward) while rebuilding both indexes, and cut the file at the first bad
 * batch. Returns 1 when it truncated, 0 when the whole file was good. */
static int recover_seg(rn_klog *l, seg *g, char *err)
{
    char name[48];
    struct stat st;
    seg_name(name, g->base, ".log");
    if (fstat(g->fd, &st) < 0)
        return rn_seterr(err, "%s/%s: %s", l->dir, name, strerror(errno));
    if (ftruncate(g->ifd, 0) < 0 || ftruncate(g->tfd, 0) < 0)
        return rn_seterr(err, "%s: index truncate: %s", l->dir, strerror(errno));
    uint64_t fsize = (uint64_t)st.st_size, pos = 0;
    int64_t next = g->base;
    const char *why = NULL;
    rn_rd r;
    g->nidx = g->ntidx = g->since_idx = 0;
    g->max_ts = g->max_ts_off = g->tidx_ts = -1;
    rn_rd_init(&r, g->fd, fsize, l->win, WINDOW);
    while (pos < fsize) {
        const unsigned char *p;
        bhdr h;
        int e;
        if (fsize - pos < HDR) {
            why = "torn batch header";
            break;
        }
        if ((e = rn_rd_get(&r, pos, HDR, &p)) < 0)
            return rn_seterr(err, "%s/%s: read: %s", l->dir, name, rn_io_strerror(e));
        parse_hdr(p, &h);
        if ((why = check_hdr(&h, fsize - pos)) != NULL)
            break;
        if (h.base < next) {
            why = "offsets go backwards";
            break;
        }
        if (h.base - g->base + h.delta > INT32_MAX) {
            why = "offset too far from the segment's base";
            break;
        }
        /* The CRC streams through the window: a batch may be bigger than it. */
        uint32_t crc = 0;
        uint64_t at = pos + 21, stop = pos + 12 + (uint64_t)h.len;
        while (at < stop) {
            size_t k = stop - at < WINDOW ? (size_t)(stop - at) : WINDOW;
            if ((e = rn_rd_get(&r, at, k, &p)) < 0)
                return rn_seterr(err, "%s/%s: read: %s", l->dir, name, rn_io_strerror(e));
            crc = rn_crc32c(crc, p, k);
            at += k;
        }
        if (crc != h.crc) {
            why = "CRC mismatch";
            break;
        }
        int64_t last = h.base + h.delta;
        index_batch(l, g, pos, stop - pos, last, h.max_ts);
        next = last + 1;
        pos = stop;
    }
    g->size = pos;
    g->next = next;
    tidx_finish(l, g);
    g->dirty = 1;
    if (pos == fsize)
        return 0;
    if (ftruncate(g->fd, (off_t)pos) < 0)
        return rn_seterr(err, "%s/%s: truncate: %s", l->dir, name, strerror(errno));
    l->truncated += fsize - pos;
    note(l, "%s: truncated %" PRIu64 " bytes at byte offset %" PRIu64 ": %s",
         name, fsize - pos, pos, why);
    return 1;
}

/* Check the index files of a segment whose .log is trusted, and take the
 * newest timestamp from the time index. The checks bound everything a lookup
 * will use: whole entries, keys and positions strictly increasing and inside
 * the segment. Returns 0 when usable, 1 when they must be rebuilt. */
static int load_indexes(rn_klog *l, seg *g, int64_t next)
{
    struct stat st;
    rn_rd r;
    const unsigned char *p;
    if (g->idx_missing || fstat(g->ifd, &st) < 0 || st.st_size % IDX_ENT)
        return 1;
    g->nidx = (uint64_t)st.st_size / IDX_ENT;
    int64_t prev_key = -1, prev_pos = -1;
    rn_rd_init(&r, g->ifd, (uint64_t)st.st_size, l->win, WINDOW);
    for (uint64_t i = 0; i < g->nidx; i++) {
        if (rn_rd_get(&r, i * IDX_ENT, IDX_ENT, &p) < 0)
            return 1;
        int64_t key = rn_be32(p), pos = rn_be32(p + 4);
        if (key <= prev_key || pos <= prev_pos || (uint64_t)pos >= g->size
            || (next >= 0 && g->base + key >= next))
            return 1;
        prev_key = key;
        prev_pos = pos;
    }
    g->since_idx = g->size - (prev_pos < 0 ? 0 : (uint64_t)prev_pos);
    if (fstat(g->tfd, &st) < 0 || st.st_size % TIDX_ENT)
        return 1;
    g->ntidx = (uint64_t)st.st_size / TIDX_ENT;
    int64_t prev_ts = -1, prev_off = -1;
    rn_rd_init(&r, g->tfd, (uint64_t)st.st_size, l->win, WINDOW);
    for (uint64_t i = 0; i < g->ntidx; i++) {
        if (rn_rd_get(&r, i * TIDX_ENT, TIDX_ENT, &p) < 0)
            return 1;
        int64_t ts = (int64_t)rn_be64(p), off = rn_be32(p + 8);
        if (ts <= prev_ts || off < prev_off || (next >= 0 && g->base + off >= next))
            return 1;
        prev_ts = ts;
        prev_off = off;
    }
    g->max_ts = g->tidx_ts = prev_ts;
    g->max_ts_off = prev_off < 0 ? -1 : g->base + prev_off;
    return 0;
}

/* After a clean close: find the end of the last segment by walking headers
 * from its last index entry, without reading payloads. Returns 0, or 1 when
 * anything disagrees and the segment must be recovered the slow way. */
static int load_tail(rn_klog *l, seg *g, int64_t expect_end)
{
    uint64_t pos = 0;
    int64_t key = -1, next = g->base;
    if (g->nidx) {
        unsigned char e[IDX_ENT];
        if (read_ent(g->ifd, g->nidx - 1, IDX_ENT, e) < 0)
            return 1;
        key = rn_be32(e);
        pos = rn_be32(e + 4);
    }
    rn_rd r;
    rn_rd_init(&r, g->fd, g->size, l->win, WINDOW);
    while (pos < g->size) {
        const unsigned char *p;
        bhdr h;
        if (g->size - pos < HDR || rn_rd_get(&r, pos, HDR, &p) < 0)
            return 1;
        parse_hdr(p, &h);
        if (check_hdr(&h, g->size - pos) || h.base < next
            || (key >= 0 && h.base + h.delta != g->base + key))
            return 1;
        key = -1;    /* only the first batch is the indexed one */
        next = h.base + h.delta + 1;
        pos += 12 + (uint64_t)h.len;
    }
    if (next != expect_end)
        return 1;
    g->next = next;
    return 0;
}

/* A name in the directory that is not a segment's .log: index files without
 * their .log (a crash during deletion) and a stray state temporary go. */
static void stray(void *arg, const char *name)
{
    rn_klog *l = arg;
    uint64_t v;
    if (rn_seg_name_parse(name, "", ".index", &v) == 0
        || rn_seg_name_parse(name, "", ".timeindex", &v) == 0) {
        char logname[48];
        seg_name(logname, (int64_t)v, ".log");
        if (faccessat(l->dirfd, logname, F_OK, 0) < 0)
            unlinkat(l->dirfd, name, 0);
    } else if (strcmp(name, STATE_TMP) == 0) {
        unlinkat(l->dirfd, name, 0);
    }
}

/* The base offsets of the .log files, sorted; names beyond int64 are not
 * ours and are left alone. */
static int list_segs(rn_klog *l, int64_t **bases, size_t *nb, char *err)
{
    uint64_t *u;
    size_t n, k = 0;
    if (rn_seg_list(l->dirfd, l->dir, "", ".log", &u, &n, stray, l, err) < 0)
        return RN_ERR;
    int64_t *b = (int64_t *)u;  /* same size; sorted order is kept below INT64_MAX */
    for (size_t i = 0; i < n; i++)
        if (u[i] <= INT64_MAX)
            b[k++] = (int64_t)u[i];
    *bases = b;
    *nb = k;
    return 0;
}

static int recover(rn_klog *l, char *err)
{
    int64_t *bases = NULL, rp = 0, pstart = 0;
    size_t nb = 0;
    int clean = 0;
    int have = load_state(l, &rp, &pstart, &clean);
    if (list_segs(l, &bases, &nb, err) < 0)
        return -1;
    /* Segments wholly below the recovery point were fsynced: trust them. The
     * one holding the recovery point and all later ones are validated; with
     * no state file, all of them. After a clean close nothing is. */
    size_t first_unsafe = 0;
    if (have && clean)
        first_unsafe = nb;
    else if (have)
        while (first_unsafe + 1 < nb && bases[first_unsafe + 1] <= rp)
            first_unsafe++;
    for (size_t i = 0; i < nb; i++) {
        seg g;
        if (open_seg(l, &g, bases[i], 0, err) < 0 || push_seg(l, &g, err) < 0) {
            free(bases);
            return -1;
        }
    }
    free(bases);
    for (size_t i = 0; i < l->n; i++) {
        seg *g = &l->s[i];
        int last = i + 1 == l->n, r = 0;
        int64_t next = last ? -1 : l->s[i + 1].base;
        char name[48];
        seg_name(name, g->base, ".log");
        if (i < first_unsafe) {
            int bad = load_indexes(l, g, next);
            if (bad) {
                note(l, "%s: rebuilt indexes", name);
            } else if (last && (bad = load_tail(l, g, rp)) != 0) {
                note(l, "%s: does not end where it was closed, validated", name);
            } else if (!last) {
                g->next = next;
            }
            if (bad)
                r = recover_seg(l, g, err);
        } else {
            r = recover_seg(l, g, err);
        }
        if (r < 0)
            return -1;
        if (!last && (r == 1 || g->next != l->s[i + 1].base)) {
            /* Later offsets would not follow on: Kafka drops them too. */
            note(l, "deleted %zu segments after %s", l->n - i - 1, name);
            drop_segs(l, i + 1, l->n - i - 1);
        }
    }
    if (l->n && pstart > l->s[l->n - 1].next) {
        note(l, "log start offset %" PRId64 " beyond the end %" PRId64 ": emptied",
             pstart, l->s[l->n - 1].next);
        drop_segs(l, 0, l->n);
    }
    if (l->n == 0) {
        if (new_seg(l, pstart, err) < 0)
            return -1;
    }
    l->end = active(l)->next;
    l->start = l->s[0].base > pstart ? l->s[0].base : pstart;
    l->rp = have && rp <= l->end ? rp : 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->s[i].next > l->rp || l->s[i].dirty)
            l->s[i].dirty = 1;
    /* Whatever the last close was, this run has not closed cleanly yet. On
     * a full disk the file cannot be replaced; that must not keep the log
     * from opening. An old state file that says what we would write may
     * stay; any other goes, and without one the next open validates
     * everything, which is always safe. */
    char why[RN_ERRLEN];
    if (save_state(l, 0, why) == 0)
        return 0;
    if (have && !clean && rp == l->rp && pstart == l->start)
        return 0;
    if (unlinkat(l->dirfd, STATE, 0) < 0 && errno != ENOENT)
        return rn_seterr(err, "%s (and unlink: %s)", why, strerror(errno));
    note(l, "%s: removed %s, the next open validates every segment", why, STATE);
    return 0;
}

/* ---- public API -------------------------------------------------------- */

int rn_klog_open(const char *dir, const rn_klog_opts *o, rn_klog **out, char *err)
{
    rn_klog *l = calloc(1, sizeof *l);
    *out = NULL;
    if (!l)
        return rn_seterr(err, "%s: out of memory", dir);
    l->dirfd = -1;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->state_mu, NULL);
    if (o)
        l->o = *o;
    if (!l->o.segment_bytes)
        l->o.segment_bytes = 1ULL << 30;
    if (!l->o.index_interval)
        l->o.index_interval = 4096;
    if (!l->o.max_inflated)
        l->o.max_inflated = DEFAULT_MAX_INFLATED;
    if (l->o.segment_bytes > INT32_MAX) {
        /* Index positions are 4 bytes, as in Kafka. */
        rn_seterr(err, "%s: segment size %" PRIu64 " above the 2 GiB - 1 limit",
                  dir, l->o.segment_bytes);
        goto fail;
    }
    if (l->o.segment_age_ns < 0 || l->o.retention_ns < 0) {
        rn_seterr(err, "%s: negative segment age or retention", dir);
        goto fail;
    }
    l->dir = strdup(dir);
    l->win = malloc(WINDOW);
    if (!l->dir || !l->win) {
        rn_seterr(err, "%s: out of memory", dir);
        goto fail;
    }
    if (rn_mkdir_p(dir, err) < 0)
        goto fail;
    l->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->dirfd < 0) {
        rn_seterr(err, "%s: %s", dir, strerror(errno));
        goto fail;
    }
    if (recover(l, err) < 0)
        goto fail;
    *out = l;
    return 0;
fail:
    for (size_t i = 0; i < l->n; i++)
        close_seg(&l->s[i]);
    if (l->dirfd >= 0)
        close(l->dirfd);
    free(l->s);
    free(l->win);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->state_mu);
    free(l);
    return -1;
}

/* fsync what was written since the last time; dirty flags clear only on
 * success so that a failed sync is retried in full. */
static int flush_segs(rn_klog *l, char *err)
{
    for (size_t i = 0; i < l->n; i++) {
        seg *g = &l->s[i];
        if (!g->dirty)
            continue;
        if (sync_fd(g->fd, 1) < 0 || sync_fd(g->ifd, 1) < 0 || sync_fd(g->tfd, 1) < 0) {
            char name[48];
            seg_name(name, g->base, ".log");
            return rn_seterr(err, "%s/%s: fsync: %s", l->dir, name, strerror(errno));
        }
        g->dirty = 0;
    }
    if (l->dir_dirty && sync_fd(l->dirfd, 0) < 0)
        return rn_seterr(err, "%s: fsync: %s", l->dir, strerror(errno));
    l->dir_dirty = 0;
    return 0;
}

int rn_klog_sync(rn_klog *l, char *err)
{
    /* Take duplicates of the descriptors to flush under the lock, then fsync
     * without it: appends go on meanwhile, and retention may close the
     * originals. Everything below the end seen here was written before it,
     * and fsync flushes a file whatever descriptor names it. */
    pthread_mutex_lock(&l->mu);
    if (l->sync_errno) {
        int se = l->sync_errno;
        pthread_mutex_unlock(&l->mu);
        return rn_seterr(err, "%s: an earlier fsync failed: %s", l->dir, strerror(se));
    }
    int64_t end = l->end;
    size_t n = 0, k = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->s[i].dirty ? 3 : 0;
    int *fds = malloc((n + 1) * sizeof *fds);
    if (!fds) {
        pthread_mutex_unlock(&l->mu);
        return rn_seterr(err, "%s: out of memory", l->dir);
    }
    for (size_t i = 0; i < l->n; i++) {
        seg *g = &l->s[i];
        if (!g->dirty)
            continue;
        fds[k++] = dup(g->fd);
        fds[k++] = dup(g->ifd);
        fds[k++] = dup(g->tfd);
        g->dirty = 0;
    }
    if (l->dir_dirty)
        fds[k++] = dup(l->dirfd);
    l->dir_dirty = 0;
    pthread_mutex_unlock(&l->mu);
    int e = 0, fe = 0;
    for (size_t i = 0; i < k; i++) {
        if (fds[i] < 0)
            e = e ? e : errno ? errno : EBADF;
        else if (sync_fd(fds[i], 0) < 0 && !fe)
            fe = errno ? errno : EIO;
        if (fds[i] >= 0)
            close(fds[i]);
    }
    free(fds);
    if (e || fe) {
        /* Flush everything next time: we no longer know what made it. A
         * descriptor we could not duplicate is no harm done, but a failed
         * fsync is: the kernel may have dropped the pages it could not
         * write and will not say so twice, so a later fsync that succeeds
         * proves nothing. The log stops here, as Kafka takes a log
         * directory offline: no more appends or syncs until it is opened
         * again, and the recovery point stays below what failed, so that
         * open validates everything written since. */
        pthread_mutex_lock(&l->mu);
        for (size_t i = 0; i < l->n; i++)
            l->s[i].dirty = 1;
        l->dir_dirty = 1;
        if (fe)
            l->sync_errno = fe;
        pthread_mutex_unlock(&l->mu);
        return rn_seterr(err, "%s: fsync: %s", l->dir, strerror(fe ? fe : e));
    }
    pthread_mutex_lock(&l->state_mu);
    if (end > l->rp) {   /* nothing new: spare the state file's fsyncs */
        /* A state file that cannot be written (a full disk) fails nothing:
         * the data is on disk, and the old recovery point is still true,
         * only more is validated at the next open. */
        int64_t old = l->rp;
        l->rp = end;
        if (save_state(l, 0, NULL) < 0)
            l->rp = old;
    }
    pthread_mutex_unlock(&l->state_mu);
    return 0;
}

int rn_klog_failed(rn_klog *l)
{
    pthread_mutex_lock(&l->mu);
    int r = l->sync_errno != 0;
    pthread_mutex_unlock(&l->mu);
    return r;
}

void rn_klog_close(rn_klog *l)
{
    if (!l)
        return;
    tidx_finish(l, active(l));
    /* Clean only when everything is on disk and the indexes are whole;
     * otherwise the next open simply validates as after a crash. */
    if (!l->sync_errno && flush_segs(l, NULL) == 0) {
        l->rp = l->end;
        save_state(l, !l->idx_failed, NULL);
    }
    for (size_t i = 0; i < l->n; i++)
        close_seg(&l->s[i]);
    close(l->dirfd);
    free(l->s);
    free(l->win);
    free(l->dir);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->state_mu);
    free(l);
}

int64_t rn_klog_start(const rn_klog *l) { return l->start; }
int64_t rn_klog_end(const rn_klog *l) { return l->end; }
size_t rn_klog_segments(const rn_klog *l) { return l->n; }
const char *rn_klog_recovery_note(const rn_klog *l) { return l->note; }
uint64_t rn_klog_recovery_truncated(const rn_klog *l) { return l->truncated; }

uint64_t rn_klog_size(const rn_klog *l)
{
    uint64_t t = 0;
    for (size_t i = 0; i < l->n; i++)
        t += l->s[i].size;
    return t;
}

/* ---- validating what a producer sends --------------------------------- */

/* The records of one batch as a byte source: the batch's own bytes, or what
 * decompresses from them piece by piece (kcodec.c: through the log's scan
 * window, at most max_inflated bytes in all, so that a decompression bomb
 * stops there). */
typedef struct recsrc {
    const unsigned char *p;
    size_t n, off;
    rn__kdec *d;            /* NULL: p holds the records themselves */
    const char *why;        /* the first error */
} recsrc;

/* Refill: 1 when there are bytes again, 0 at the end, -1 with why set. */
static int src_fill(recsrc *s)
{
    if (!s->d || s->why)
        return s->why ? -1 : 0;
    int r = rn__kdec_next(s->d, &s->p, &s->n, &s->why);
    if (r <= 0)
        s->n = 0;
    s->off = 0;
    return r;
}

/* The bytes in hand at s->p + s->off for the current record (left of it
 * remain), refilling when none are; 0 with why set when there are none. */
static size_t src_avail(recsrc *s, uint64_t *left)
{
    if (*left == 0) {
        s->why = s->why ? s->why : "a record's fields run past its length";
        return 0;
    }
    if (s->off == s->n && src_fill(s) <= 0) {
        s->why = s->why ? s->why : "records run past the end of the batch";
        return 0;
    }
    return s->n - s->off;
}

static int src_byte(recsrc *s, uint64_t *left, unsigned char *c)
{
    if (!src_avail(s, left))
        return -1;
    *c = s->p[s->off++];
    (*left)--;
    return 0;
}

static int src_skip(recsrc *s, uint64_t *left, uint64_t n)
{
    if (n > *left) {
        s->why = "a field runs past its record";
        return -1;
    }
    while (n > 0) {
        size_t k = src_avail(s, left);
        if (!k)
            return -1;
        if (k > n)
            k = (size_t)n;
        s->off += k;
        *left -= k;
        n -= k;
    }
    return 0;
}

/* A zigzag varint of at most maxb bytes (5 for an int, 10 for a long). */
static int src_varint(recsrc *s, uint64_t *left, int maxb, int64_t *v)
{
    uint64_t u = 0;
    for (int i = 0; i < maxb; i++) {
        unsigned char c;
        if (src_byte(s, left, &c) < 0)
            return -1;
        u |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            return 0;
        }
    }
    s->why = "varint too long";
    return -1;
}

/* A length-prefixed field (key, value, header key or value): its length,
 * at least min (-1 is null), then that many bytes skipped. */
static int src_field(recsrc *s, uint64_t *left, int64_t min, const char *why)
{
    int64_t v;
    if (src_varint(s, left, 5, &v) < 0)
        return -1;
    if (v < min) {
        s->why = why;
        return -1;
    }
    return v > 0 ? src_skip(s, left, (uint64_t)v) : 0;
}

/* Record i's timestamp delta v into ts: the batch's greatest stamp, and the
 * first record at or after the target. */
static inline void ts_record(tscan *ts, int32_t i, int64_t v)
{
    int64_t t;     /* saturate nonsense stamps rather than overflow */
    if (__builtin_add_overflow(ts->first, v, &t))
        t = v < 0 ? INT64_MIN : INT64_MAX;
    if (t > ts->max)
        ts->max = t;
    if (ts->target != -1 && ts->hit < 0 && i >= ts->from && t >= ts->target) {
        ts->hit = i;
        ts->hit_ts = t;
    }
}

/* Every record of the batch, as Kafka's validator reads them: a length that
 * the fields fill exactly, offset deltas 0..n-1, key and value lengths >= -1,
 * headers with a key; n records and nothing after them. Timestamps go to ts
 * when it is not NULL. */
static int check_records(recsrc *s, int32_t count, int64_t *bad_rec, tscan *ts)
{
    for (int32_t i = 0; i < count; i++) {
        uint64_t all = UINT64_MAX, left;
        int64_t len, v, nh;
        *bad_rec = i;
        if (src_varint(s, &all, 5, &len) < 0)
            return -1;
        if (len < 0) {
            s->why = "negative record length";
            return -1;
        }
        if (!s->d && (uint64_t)len > s->n - s->off) {
            s->why = "a record runs past the end of the batch";
            return -1;
        }
        left = (uint64_t)len;
        unsigned char attr;
        if (src_byte(s, &left, &attr) < 0 || src_varint(s, &left, 10, &v) < 0)
            return -1;
        if (ts)
            ts_record(ts, i, v);
        if (src_varint(s, &left, 5, &v) < 0)
            return -1;
        if (v != i) {
            s->why = "offset deltas are not 0, 1, 2, ...";
            return -1;
        }
        if (src_field(s, &left, -1, "key length below -1") < 0
            || src_field(s, &left, -1, "value length below -1") < 0
            || src_varint(s, &left, 5, &nh) < 0)
            return -1;
        if (nh < 0) {
            s->why = "negative header count";
            return -1;
        }
        for (int64_t k = 0; k < nh; k++)
            if (src_field(s, &left, 0, "header key length below 0") < 0
                || src_field(s, &left, -1, "header value length below -1") < 0)
                return -1;
        if (left) {
            s->why = "a record is longer than its fields";
            return -1;
        }
    }
    *bad_rec = -1;
    if (s->off < s->n || src_fill(s) != 0) {
        s->why = s->why ? s->why : "bytes after the last record";
        return -1;
    }
    return 0;
}

/* ---- the same check, fast, for an uncompressed batch ---------------------- */

/* A zigzag varint of at most maxb bytes from [*pp, end); -1 when it runs
 * past end or is too long. Most are one byte. */
static inline int flat_varint(const unsigned char **pp, const unsigned char *end, int maxb,
                              int64_t *v)
{
    const unsigned char *p = *pp;
    uint64_t u = 0;
    if (p < end && p[0] < 0x80) {              /* lengths below 64, small deltas */
        u = p[0];
        p++;
    } else if (end - p >= 2 && p[1] < 0x80) {  /* below 8192 */
        u = (uint64_t)(p[0] & 0x7f) | (uint64_t)p[1] << 7;
        p += 2;
    } else {
        int i = 0;
        for (;; i++) {
            if (i == maxb || p >= end)
                return -1;
            unsigned char c = *p++;
            u |= (uint64_t)(c & 0x7f) << (7 * i);
            if (!(c & 0x80))
                break;
        }
    }
    *pp = p;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

/* A length-prefixed field of at least min bytes (-1 is null), skipped. */
static inline int flat_field(const unsigned char **pp, const unsigned char *end, int64_t min)
{
    int64_t v;
    if (flat_varint(pp, end, 5, &v) < 0 || v < min || (v > 0 && v > end - *pp))
        return -1;
    if (v > 0)
        *pp += v;
    return 0;
}

/* check_records for a batch whose records lie flat in memory: pointer walks
 * instead of the byte source's calls per byte (the source serves gzip's
 * window too), about 4x fewer instructions for 100-byte records. 0 when
 * every record is good, with ts as check_records leaves it; -1 on anything
 * else, and then check_records reads the batch again to find and word the
 * first error exactly. */
static int check_flat(const unsigned char *p, size_t n, int32_t count, tscan *ts)
{
    const unsigned char *end = p + n;
    for (int32_t i = 0; i < count; i++) {
        int64_t len, v, nh;
        if (flat_varint(&p, end, 5, &len) < 0 || len < 1 || len > end - p)
            return -1;
        const unsigned char *rend = p + len;
        p++;                                    /* attributes */
        if (flat_varint(&p, rend, 10, &v) < 0)
            return -1;
        if (ts)
            ts_record(ts, i, v);
        if (flat_varint(&p, rend, 5, &v) < 0 || v != i
            || flat_field(&p, rend, -1) < 0 || flat_field(&p, rend, -1) < 0
            || flat_varint(&p, rend, 5, &nh) < 0 || nh < 0)
            return -1;
        for (int64_t k = 0; k < nh; k++)
            if (flat_field(&p, rend, 0) < 0 || flat_field(&p, rend, -1) < 0)
                return -1;
        if (p != rend)
            return -1;
    }
    return p == end ? 0 : -1;
}

/* What pass 1 checks beyond the header: the codec, the record count against
 * lastOffsetDelta, and each record, decompressing a gzip, snappy, lz4 or
 * zstd batch to read them. NULL when the batch is good. With ts, the
 * records' timestamps are read too. */
static const char *check_batch(rn_klog *l, const unsigned char *b, const bhdr *h,
                               int64_t *bad_rec, tscan *ts)
{
    int codec = b[22] & 7;
    int32_t count = (int32_t)rn_be32(b + 57);
    *bad_rec = -1;
    if (codec > 4)
        return "unknown compression codec";
    if (count < 1)
        return "no records";
    if (count - 1 != h->delta)
        return "lastOffsetDelta is not the record count - 1";
    if (ts) {
        ts->first = h->first_ts;
        ts->max = -1;
        ts->hit = -1;
        ts->hit_ts = -1;
    }
    recsrc s = { .p = b + HDR, .n = (size_t)h->len + 12 - HDR };
    if (codec == RN_KCODEC_NONE) {
        /* When it fails, check_records reads the same records again from
         * the first: ts_record over them again leaves ts as it was (the
         * same greatest stamp, the same first hit), so ts needs no reset. */
        if (check_flat(s.p, s.n, count, ts) == 0)
            return NULL;
    } else {
        if (!(s.d = rn__kdec_new(codec, s.p, s.n, l->win, WINDOW, l->o.max_inflated, &s.why)))
            return s.why;
        s.p = NULL;
        s.n = 0;
    }
    int r = check_records(&s, count, bad_rec, ts);
    rn__kdec_free(s.d);
    return r < 0 ? s.why : NULL;
}

static int append_locked(rn_klog *l, unsigned char *b, size_t len, int64_t now_ms,
                         int64_t count, int64_t *base_offset, char *err);

/* Kafka recomputes a batch's maxTimestamp on append rather than trust the
 * producer's (sarama sends -1): the field is rewritten, and the CRC with it,
 * so that the segment, its time index and a later recovery all agree. A
 * LogAppendTime batch is left alone (brokerd never sets that type). */
static void fix_max_ts(unsigned char *b, const bhdr *h, const tscan *ts)
{
    int64_t m = ts->max;
    if ((h->attr & 8) || m == h->max_ts)
        return;
    rn_put_be64(b + 35, (uint64_t)m);
    rn_put_be32(b + 17, rn_crc32c(0, b + 21, (size_t)h->len - 9));
}

int rn_klog_append(rn_klog *l, unsigned char *b, size_t len, int64_t now_ms,
                   int64_t *base_offset, char *err)
{
    size_t p = 0;
    int64_t count = 0;
    if (len == 0)
        return rn_seterr(err, "empty record set"), RN_ECORRUPT;
    if (len > INT32_MAX)   /* keeps every position within 4-byte index entries */
        return rn_seterr(err, "record set of %zu bytes is too large", len), RN_ECORRUPT;
    /* Pass 1: validate everything, so that a bad batch writes nothing. */
    while (p < len) {
        bhdr h;
        const char *why;
        if (len - p < HDR) {
            rn_seterr(err, "batch at byte %zu: %zu bytes left, a batch header needs %d",
                      p, len - p, HDR);
            return RN_ECORRUPT;
        }
        parse_hdr(b + p, &h);
        if ((why = check_hdr(&h, len - p)) != NULL) {
            rn_seterr(err, "batch at byte %zu: %s (length %" PRId32 ", magic %d)",
                      p, why, h.len, h.magic);
            return RN_ECORRUPT;
        }
        uint32_t crc = rn_crc32c(0, b + p + 21, (size_t)h.len - 9);
        if (crc != h.crc) {
            rn_seterr(err, "batch at byte %zu: CRC mismatch (stored %08" PRIx32
                      ", computed %08" PRIx32 ")", p, h.crc, crc);
            return RN_ECORRUPT;
        }
        int64_t rec;
        tscan ts = { .target = -1 };
        if ((why = check_batch(l, b + p, &h, &rec, &ts)) != NULL) {
            if (rec >= 0)
                rn_seterr(err, "batch at byte %zu: record %" PRId64 ": %s", p, rec, why);
            else
                rn_seterr(err, "batch at byte %zu: %s", p, why);
            return RN_ECORRUPT;
        }
        fix_max_ts(b + p, &h, &ts);
        count += (int64_t)h.delta + 1;
        p += 12 + (size_t)h.len;
    }
    if (count > INT32_MAX || l->end > INT64_MAX - count) {
        /* Relative offsets in the index are 4 bytes. */
        rn_seterr(err, "%" PRId64 " offsets in one request is too many", count);
        return RN_ECORRUPT;
    }
    pthread_mutex_lock(&l->mu);
    int r = l->sync_errno ? rn_seterr(err, "%s: an earlier fsync failed (%s): no appends "
                                      "until it is opened again", l->dir,
                                      strerror(l->sync_errno))
                          : append_locked(l, b, len, now_ms, count, base_offset, err);
    pthread_mutex_unlock(&l->mu);
    return r;
}

static int append_locked(rn_klog *l, unsigned char *b, size_t len, int64_t now_ms,
                         int64_t count, int64_t *base_offset, char *err)
{
    size_t p;
    seg *g = active(l);
    int64_t age_ms = l->o.segment_age_ns / 1000000;
    if (g->size > 0
        && (g->size + len > l->o.segment_bytes
            || l->end + count - 1 - g->base > INT32_MAX
            || (age_ms > 0 && g->first_ms >= 0 && now_ms - g->first_ms >= age_ms))) {
        if (roll(l, err) < 0)
            return -1;
        g = active(l);
    }
    /* Pass 2: offsets in place. The CRC starts after baseOffset, so it holds. */
    int64_t off = l->end;
    for (p = 0; p < len; ) {
        rn_put_be64(b + p, (uint64_t)off);
        off += (int64_t)(int32_t)rn_be32(b + p + 23) + 1;
        p += 12 + rn_be32(b + p + 8);
    }
    int e = rn_pwrite_full(g->fd, b, len, g->size);
    if (e < 0) {
        /* Do not leave half a request where the next one will land: nothing
         * of it is visible (size and end stay), and the next append writes
         * over it. Should even the cut fail, the next open must validate. */
        if (ftruncate(g->fd, (off_t)g->size) < 0)
            l->idx_failed = 1;
        char name[48];
        seg_name(name, g->base, ".log");
        return rn_seterr(err, "%s/%s: write: %s", l->dir, name, rn_io_strerror(e));
    }
    for (p = 0; p < len; ) {
        size_t blen = 12 + rn_be32(b + p + 8);
        int64_t last = (int64_t)rn_be64(b + p) + (int32_t)rn_be32(b + p + 23);
        index_batch(l, g, g->size + p, blen, last, (int64_t)rn_be64(b + p + 35));
        p += blen;
    }
    *base_offset = l->end;
    g->size += len;
    g->next = l->end = off;
    g->dirty = 1;
    if (g->first_ms < 0)
        g->first_ms = now_ms;
    g->last_ms = now_ms;
    return 0;
}

/* The largest i with s[i].base <= offset (offset >= s[0].base). */
static size_t seg_find(const rn_klog *l, int64_t offset)
{
    size_t lo = 0, hi = l->n;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->s[mid].base <= offset)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The header at pos, checked against the segment's bounds. */
static int hdr_at(rn_klog *l, rn_rd *r, const seg *g, uint64_t pos, bhdr *h, char *err)
{
    const unsigned char *p;
    char name[48];
    const char *why = "torn batch header";
    int e = 0;
    if (g->size - pos >= HDR && (e = rn_rd_get(r, pos, HDR, &p)) == 0) {
        parse_hdr(p, h);
        if ((why = check_hdr(h, g->size - pos)) == NULL)
            return 0;
    }
    seg_name(name, g->base, ".log");
    if (e < 0)
        return rn_seterr(err, "%s/%s: read: %s", l->dir, name, rn_io_strerror(e));
    return rn_seterr(err, "%s/%s: byte %" PRIu64 ": %s", l->dir, name, pos, why);
}

/* Position of the batch holding offset in g, or g->size when offset lies past
 * its last batch. An index entry that does not point at the batch it names
 * (a damaged index) is ignored in favour of a scan from the start. */
static int find_batch(rn_klog *l, rn_rd *r, const seg *g, int64_t offset,
                      uint64_t *at, bhdr *h, char *err)
{
    uint64_t pos;
    int64_t key;
    int e = idx_lookup(g, offset - g->base, &pos, &key);
    if (e < 0)
        return rn_seterr(err, "%s: index read: %s", l->dir, rn_io_strerror(e));
    if (key >= 0 && (pos >= g->size || hdr_at(l, r, g, pos, h, NULL) < 0
                     || h->base + h->delta != g->base + key))
        pos = 0;
    while (pos < g->size) {
        if (hdr_at(l, r, g, pos, h, err) < 0)
            return -1;
        if (h->base + h->delta >= offset)
            break;
        pos += 12 + (uint64_t)h->len;
    }
    *at = pos;
    return 0;
}

int rn_klog_read(rn_klog *l, int64_t offset, size_t max_bytes, rn_klog_slice *out, char *err)
{
    if (offset < l->start || offset > l->end) {
        rn_seterr(err, "offset %" PRId64 " outside [%" PRId64 ", %" PRId64 "]",
                  offset, l->start, l->end);
        return RN_ERANGE;
    }
    for (size_t i = seg_find(l, offset); i < l->n; i++) {
        seg *g = &l->s[i];
        uint64_t pos = 0, q;
        bhdr h;
        rn_rd r;
        if (offset >= g->next)
            continue;
        rn_rd_init(&r, g->fd, g->size, l->win, WINDOW);
        if (find_batch(l, &r, g, offset, &pos, &h, err) < 0)
            return -1;
        if (pos >= g->size)
            continue;
        out->codec = h.attr & 7;
        out->avail = g->size - pos;
        for (size_t k = i + 1; k < l->n; k++)
            out->avail += l->s[k].size;
        q = pos + 12 + (uint64_t)h.len;
        uint64_t limit = max_bytes > g->size - pos ? g->size : pos + max_bytes;
        if (q < limit) {
            /* Jump over whole batches with the index instead of reading every
             * header of a large fetch: an entry at or below the limit starts a
             * batch, and all batches before it end before it. */
            uint64_t jump;
            int64_t key;
            bhdr jh;
            if (idx_lookup_pos(g, limit, &jump, &key) == 0 && jump > q
                && hdr_at(l, &r, g, jump, &jh, NULL) == 0
                && jh.base + jh.delta == g->base + key)
                q = jump;
            while (q < limit) {
                if (hdr_at(l, &r, g, q, &h, err) < 0)
                    return -1;
                if (q + 12 + (uint64_t)h.len > limit)
                    break;
                q += 12 + (uint64_t)h.len;
            }
        }
        out->fd = g->fd;
        out->pos = pos;
        out->len = (size_t)(q - pos);
        return 0;
    }
    /* offset == end (or past the last batch of a gap): nothing to send yet. */
    out->fd = active(l)->fd;
    out->pos = active(l)->size;
    out->len = 0;
    out->codec = -1;
    out->avail = 0;
    return 0;
}

/* The first record of the batch at pos (header h), from offset `from` on,
 * stamped ts_ms or later: 1 with *off and *rts, 0 when none. The batch is
 * read whole (it was a Produce's, so --max-request bounds it) and a
 * compressed one decompressed through the scan window. */
static int search_batch(rn_klog *l, const seg *g, uint64_t pos, const bhdr *h, int64_t from,
                        int64_t ts_ms, int64_t *off, int64_t *rts, char *err)
{
    char name[48];
    seg_name(name, g->base, ".log");
    size_t n = 12 + (size_t)h->len;
    unsigned char *b = malloc(n);
    if (!b) {
        rn_seterr(err, "%s/%s: out of memory", l->dir, name);
        return RN_ENOMEM;
    }
    int e = rn_pread_full(g->fd, b, n, pos);
    if (e < 0) {
        free(b);
        return rn_seterr(err, "%s/%s: read: %s", l->dir, name, rn_io_strerror(e));
    }
    tscan ts = { .target = ts_ms, .from = from > h->base ? (int32_t)(from - h->base) : 0 };
    int64_t rec;
    const char *why = check_batch(l, b, h, &rec, &ts);
    free(b);
    if (why)
        return rn_seterr(err, "%s/%s: byte %" PRIu64 ": %s", l->dir, name, pos, why);
    if (ts.hit < 0)
        return 0;
    *off = h->base + ts.hit;
    *rts = ts.hit_ts;
    return 1;
}

int rn_klog_offset_for_time(rn_klog *l, int64_t ts_ms, int64_t *offset, int64_t *rec_ts,
                            char *err)
{
    *offset = *rec_ts = -1;
    if (ts_ms == -1 || ts_ms == -2) {
        *offset = ts_ms == -1 ? l->end : l->start;
        return 0;
    }
    for (size_t i = seg_find(l, l->start); i < l->n; i++) {
        seg *g = &l->s[i];
        if (g->max_ts < ts_ms)
            continue;
        /* Every batch before the time index's answer has a smaller max
         * timestamp; the offset index turns it into a place to scan from.
         * The first batch whose max timestamp reaches ts_ms holds the
         * record, unless all such records lie below the log start. */
        int64_t off, key;
        uint64_t pos;
        rn_rd r;
        bhdr h;
        int e;
        if ((e = tidx_lookup(g, ts_ms, &off)) < 0
            || (off >= 0 && (e = idx_lookup(g, off - g->base, &pos, &key)) < 0))
            return rn_seterr(err, "%s: index read: %s", l->dir, rn_io_strerror(e));
        if (off < 0)
            pos = 0;
        rn_rd_init(&r, g->fd, g->size, l->win, WINDOW);
        while (pos < g->size) {
            if (hdr_at(l, &r, g, pos, &h, err) < 0)
                return RN_ERR;
            if (h.max_ts >= ts_ms && h.base + h.delta >= l->start) {
                int found = search_batch(l, g, pos, &h, l->start, ts_ms, offset, rec_ts, err);
                if (found != 0)
                    return found < 0 ? found : 0;
                rn_rd_init(&r, g->fd, g->size, l->win, WINDOW);  /* inflating used win */
            }
            pos += 12 + (uint64_t)h.len;
        }
    }
    return 0;
}

int rn_klog_maintain(rn_klog *l, int64_t now_ns, char *err)
{
    int64_t now_ms = now_ns / 1000000;
    int64_t age_ms = l->o.segment_age_ns / 1000000;
    int64_t ret_ms = l->o.retention_ns / 1000000;
    pthread_mutex_lock(&l->mu);
    seg *g = active(l);
    int deleted = 0;
    if (age_ms > 0 && g->size > 0 && g->first_ms >= 0 && now_ms - g->first_ms >= age_ms
        && roll(l, err) < 0) {
        pthread_mutex_unlock(&l->mu);
        return -1;
    }
    /* Deletion is always a prefix of the closed segments, oldest first. */
    uint64_t total = rn_klog_size(l);
    while (l->n > 1) {
        g = &l->s[0];
        int64_t newest = g->max_ts >= 0 ? g->max_ts : g->last_ms;
        int del = g->next <= l->start
            || (ret_ms > 0 && newest >= 0 && now_ms - newest > ret_ms)
            /* As Kafka: only while what remains is still at least the limit. */
            || (l->o.retention_bytes > 0 && total - g->size >= l->o.retention_bytes);
        if (!del)
            break;
        total -= g->size;
        drop_segs(l, 0, 1);
        deleted++;
    }
    pthread_mutex_unlock(&l->mu);
    pthread_mutex_lock(&l->state_mu);
    if (l->s[0].base > l->start)
        l->start = l->s[0].base;
    pthread_mutex_unlock(&l->state_mu);
    return deleted;
}

int rn_klog_advance_start(rn_klog *l, int64_t offset, char *err)
{
    if (offset > l->end || offset < 0) {
        rn_seterr(err, "log start %" PRId64 " beyond the end %" PRId64, offset, l->end);
        return RN_ERANGE;
    }
    int r = 0;
    pthread_mutex_lock(&l->state_mu);
    if (offset > l->start) {
        int64_t old = l->start;
        l->start = offset;
        if ((r = save_state(l, 0, err)) < 0)
            l->start = old;
    }
    pthread_mutex_unlock(&l->state_mu);
    return r;
}
