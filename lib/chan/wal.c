/* wal.c -- the write-ahead log of a file channel: segments of records with
 * CRC-32C, appending and reading back, fsync, the checkpoint file, and the
 * recovery scan that cuts a torn tail. The channel's state it works on is in
 * chan_int.h; chan.c decides what goes in and when.
 *
 * Files of a file channel, all integers big-endian:
 *
 *   DIR/lock                 empty; flock(LOCK_EX) while a process has DIR open
 *
 *   DIR/wal-<20-digit seq>   a segment; the number is the seq of the first
 *                            record it may hold (records in it start there
 *                            or later, and every record of a later segment
 *                            comes after every record of an earlier one)
 *       0   8  "RNWAL\0" and a u16 version (1)
 *       8   ...records, back to back:
 *           0   u32  body length (28 + bytes of events)
 *           4   u32  CRC-32C of the body
 *           8   body: u64 seq, u32 count (>= 1), u64 session, u64 serial,
 *                     then the events exactly as put
 *       A record is appended with one pwritev at the segment's end; a new
 *       segment is started (named by the next seq) when the record would take
 *       the active one past segment_bytes (a segment always takes at least
 *       one record). A segment is deleted by rn_chan_checkpoint, after the
 *       checkpoint is saved, once it is not the active segment and none of
 *       its records is pending. A full disk (ENOSPC, EDQUOT, EFBIG) makes
 *       the put answer RN_CHAN_NOSPACE and the next append start a new
 *       segment; meanwhile the checkpoint deletes spent segments before it
 *       saves (it needs their room), the active one too once nothing is
 *       pending, so that a channel whose sinks are done always gets its
 *       room back.
 *
 *   DIR/checkpoint           saved by rn_chan_checkpoint through
 *                            DIR/checkpoint.tmp (write, fsync, rename, fsync DIR)
 *       0   8  "RNCHCKPT"
 *       8   u32  version (1)
 *       12  u64  next seq (the seq the next put would get)
 *       20  u32  number of sinks, then per sink:
 *                u8 name length (1..255), the name, u64 done cursor
 *           u32  number of duplicate-table sessions (<= 4096), then per
 *                session, least recently used first:
 *                u64 session, u64 highest serial, 16 x u64 window (bit k of
 *                the 1024-bit number made of the words, least significant
 *                word first: serial highest - 1 - k was seen)
 *           u32  CRC-32C of every byte before it
 *
 * Recovery (rn_chan_open): the checkpoint is loaded (a damaged one is an
 * error naming it: it is the only record of what the sinks have done, and
 * guessing could silently drop or repeat everything). Then every segment is
 * read in order and each record checked: a sane length that fits the file,
 * the CRC, at least one event, a seq not below the segment's name nor below
 * the end of the record before it. A record that fails is damage: the scan
 * looks for the next byte offset where a whole record checks out (every
 * record carries its own length, seq and CRC, so a random match is as
 * unlikely as a CRC collision), skips to it and goes on, and on_warn names
 * the file, the offset, the bytes skipped and the seqs lost. Kafka deletes
 * everything after damage; keeping the whole records after it loses less,
 * and sinks cope with a gap in seqs. Only when no whole record follows in
 * the last segment is it a torn tail (a crash in the middle of an append):
 * the file is truncated there (on_warn says so with the byte offset). A
 * segment file too short to hold its header (a crash while it was being
 * created) is rewritten when last, deleted otherwise; a header that is not
 * ours is an error. Records whose end is past the smallest done cursor of
 * the configured sinks that the checkpoint knows (all the checkpoint's sinks
 * when it knows none of them; everything without a checkpoint) are pending
 * again; records at or past the checkpoint's next seq are replayed into the
 * duplicate table (the ones before it are in the saved table). Every
 * segment is then synced by the first rn_chan_sync, since a kill -9 leaves
 * them in the page cache only.
 *
 * A checkpoint syncs the segments before it saves: its duplicate table must
 * never name a record that a power loss could take away, or a sender that
 * retries that record would be told it was stored. Done cursors and the next
 * seq may run ahead of what survived a power loss; open clamps them. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "chan/chan_int.h"

#define SEG_MAGIC "RNWAL"          /* 5 bytes and a NUL, then the version */
#define SEG_VERSION 1
#define SEG_HDR 8
#define BODY_HDR 28
#define WINDOW (64 * 1024)

#define CK_NAME "checkpoint"
#define CK_TMP "checkpoint.tmp"    /* rn_file_replace's temporary */
#define CK_MAGIC "RNCHCKPT"
#define CK_VERSION 1
#define CK_MAX (4U << 20)          /* far above the largest checkpoint we write */
#define DUP_ENT (16 + RN_CHAN__DUP_WORDS * 8)   /* bytes per session in the checkpoint */

static void seg_name(char *out, uint64_t base)
{
    snprintf(out, 32, "wal-%020" PRIu64, base);
}

/* ---- segments ---------------------------------------------------------- */

static int push_seg(rn_chan *c, const rn_wal__seg *g, char *err)
{
    if (c->nseg == c->segcap) {
        size_t cap = c->segcap ? c->segcap * 2 : 8;
        rn_wal__seg *s = realloc(c->segs, cap * sizeof *s);
        if (!s)
            return rn_seterr(err, "%s: out of memory", c->dir);
        c->segs = s;
        c->segcap = cap;
    }
    c->segs[c->nseg++] = *g;
    return 0;
}

static void seg_header(unsigned char *h)
{
    memcpy(h, SEG_MAGIC, 6);   /* with its NUL */
    h[6] = SEG_VERSION >> 8;
    h[7] = SEG_VERSION & 0xff;
}

/* A write that failed for want of room: the disk (or the quota) is full, or
 * the file size limit is reached (EFBIG, with SIGXFSZ ignored). */
static int no_room(int e)
{
    return e == ENOSPC || e == EDQUOT || e == EFBIG;
}

/* Start segment wal-<base> and make it the active one. RN_CHAN_NOSPACE
 * when there is no room for it. */
static int new_seg(rn_chan *c, uint64_t base, char *err)
{
    char name[32];
    unsigned char h[SEG_HDR];
    rn_wal__seg g = { .base = base, .size = SEG_HDR, .dirty = 1 };
    int e;
    seg_name(name, base);
    seg_header(h);
    g.fd = openat(c->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (g.fd < 0) {
        e = errno;
        rn_seterr(err, "%s/%s: %s", c->dir, name, strerror(e));
        return no_room(e) ? RN_CHAN_NOSPACE : RN_ERR;
    }
    if (rn_write_all(g.fd, h, sizeof h) < 0) {
        e = errno;
        rn_seterr(err, "%s/%s: write: %s", c->dir, name, strerror(e));
        close(g.fd);
        unlinkat(c->dirfd, name, 0);
        return no_room(e) ? RN_CHAN_NOSPACE : RN_ERR;
    }
    if (push_seg(c, &g, err) < 0) {
        close(g.fd);
        unlinkat(c->dirfd, name, 0);
        return RN_ERR;
    }
    c->dir_dirty = 1;
    return 0;
}

/* Append one record to the active segment (rolling first when it would pass
 * segment_bytes, or when the last append found the disk full: the full
 * segment can then go as soon as the sinks are done with it); r gets where
 * it went. A failed write is cut off again so that the next record lands
 * where a reader expects it. With no active segment (the checkpoint deleted
 * it to make room) one is started. */
int rn_wal__append(rn_chan *c, const char *events, size_t len, uint32_t count,
                   uint64_t session, uint64_t serial, rn_chan__rec *r, char *err)
{
    int e;
    rn_wal__seg *g = c->nseg ? &c->segs[c->nseg - 1] : NULL;
    if (!g || (g->size > SEG_HDR && (c->nospace
                                     || g->size + RN_WAL__REC_HDR + len > c->segment_bytes))) {
        if ((e = new_seg(c, c->next_seq, err)) < 0)
            return e;
        if (e == RN_CHAN_NOSPACE) {
            c->nospace = 1;
            return e;
        }
        g = &c->segs[c->nseg - 1];
    }
    unsigned char h[RN_WAL__REC_HDR];
    rn_put_be32(h, (uint32_t)(BODY_HDR + len));
    rn_put_be64(h + 8, c->next_seq);
    rn_put_be32(h + 16, count);
    rn_put_be64(h + 20, session);
    rn_put_be64(h + 28, serial);
    rn_put_be32(h + 4, rn_crc32c(rn_crc32c(0, h + 8, BODY_HDR), events, len));
    struct iovec iov[2] = {
        { .iov_base = h, .iov_len = RN_WAL__REC_HDR },
        { .iov_base = (void *)events, .iov_len = len },
    };
    if (rn_pwritev_full(g->fd, iov, len ? 2 : 1, g->size) < 0) {
        e = errno;
        char name[32];
        seg_name(name, g->base);
        if (ftruncate(g->fd, (off_t)g->size) < 0) {
            /* the next write lands on the same bytes anyway */
        }
        rn_seterr(err, "%s/%s: write: %s", c->dir, name, strerror(e));
        if (no_room(e)) {
            c->nospace = 1;
            return RN_CHAN_NOSPACE;
        }
        return RN_ERR;
    }
    c->nospace = 0;
    r->at.off = g->size;
    r->seg = c->seg_first + (uint32_t)(c->nseg - 1);
    g->size += RN_WAL__REC_HDR + len;
    g->dirty = 1;
    return 0;
}

/* ---- checkpoint -------------------------------------------------------- */

typedef struct ckpt {
    int have;
    uint64_t next;
    size_t nsinks;
    char names[RN_CHAN_MAX_SINKS][256];
    uint64_t done[RN_CHAN_MAX_SINKS];
} ckpt;

/* Everything the checkpoint holds, into c->ckbuf. Under the lock. */
static int ck_encode(rn_chan *c)
{
    rn_buf *b = &c->ckbuf;
    unsigned char t[16];
    b->len = 0;
    size_t need = 28 + c->nsinks * (1 + 255 + 8) + (size_t)c->dup.n * DUP_ENT + 4;
    if (rn_buf_reserve(b, need) < 0)
        return RN_ENOMEM;
    memcpy(b->p, CK_MAGIC, 8);
    rn_put_be32(t, CK_VERSION);
    rn_put_be64(t + 4, c->next_seq);
    rn_put_be32(t + 12, (uint32_t)c->nsinks);
    memcpy(b->p + 8, t, 16);
    b->len = 24;
    for (size_t i = 0; i < c->nsinks; i++) {
        size_t n = strlen(c->sinks[i].name);
        b->p[b->len++] = (char)n;
        memcpy(b->p + b->len, c->sinks[i].name, n);
        b->len += n;
        rn_put_be64((unsigned char *)b->p + b->len, c->sinks[i].done);
        b->len += 8;
    }
    rn_put_be32((unsigned char *)b->p + b->len, (uint32_t)c->dup.n);
    b->len += 4;
    for (int32_t i = c->dup.oldest; i >= 0; i = c->dup.e[i].newer) {
        unsigned char *p = (unsigned char *)b->p + b->len;
        rn_put_be64(p, c->dup.e[i].session);
        rn_put_be64(p + 8, c->dup.e[i].high);
        for (size_t w = 0; w < RN_CHAN__DUP_WORDS; w++)
            rn_put_be64(p + 16 + 8 * w, c->dup.e[i].bits[w]);
        b->len += DUP_ENT;
    }
    rn_put_be32((unsigned char *)b->p + b->len, rn_crc32c(0, b->p, b->len));
    b->len += 4;
    return 0;
}

/* 0: no checkpoint; 1: loaded into ck and c->dup; RN_ERR: unreadable or
 * damaged. */
static int ck_load(rn_chan *c, ckpt *ck, char *err)
{
    const char *why;
    unsigned char *b = NULL;
    int fd = openat(c->dirfd, CK_NAME, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return rn_seterr(err, "%s/" CK_NAME ": %s", c->dir, strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        rn_seterr(err, "%s/" CK_NAME ": %s", c->dir, strerror(errno));
        goto fail;
    }
    size_t n = (size_t)st.st_size;
    if (st.st_size < 32 || (uint64_t)st.st_size > CK_MAX) {
        rn_seterr(err, "%s/" CK_NAME ": damaged: size %jd is impossible",
                  c->dir, (intmax_t)st.st_size);
        goto fail;
    }
    if (!(b = malloc(n))) {
        rn_seterr(err, "%s/" CK_NAME ": out of memory", c->dir);
        goto fail;
    }
    int e = rn_pread_full(fd, b, n, 0);
    if (e < 0) {
        rn_seterr(err, "%s/" CK_NAME ": read: %s", c->dir, rn_io_strerror(e));
        goto fail;
    }
    if (memcmp(b, CK_MAGIC, 8) != 0) {
        why = "not a runnel channel checkpoint (bad magic)";
        goto bad;
    }
    if (rn_be32(b + 8) != CK_VERSION) {
        rn_seterr(err, "%s/" CK_NAME ": version %" PRIu32 " not supported (expected %d)",
                  c->dir, rn_be32(b + 8), CK_VERSION);
        goto fail;
    }
    if (rn_crc32c(0, b, n - 4) != rn_be32(b + n - 4)) {
        why = "checksum mismatch";
        goto bad;
    }
    ck->next = rn_be64(b + 12);
    ck->nsinks = rn_be32(b + 20);
    size_t p = 24, end = n - 4;
    if (ck->nsinks < 1 || ck->nsinks > sizeof ck->done / sizeof ck->done[0]) {
        why = "impossible number of sinks";
        goto bad;
    }
    for (size_t i = 0; i < ck->nsinks; i++) {
        size_t len = p < end ? b[p] : 0;
        if (len == 0 || end - p < 1 + len + 8) {
            why = "truncated sink entry";
            goto bad;
        }
        memcpy(ck->names[i], b + p + 1, len);
        ck->names[i][len] = '\0';
        ck->done[i] = rn_be64(b + p + 1 + len);
        if (ck->done[i] > ck->next) {
            why = "a done cursor past the next seq";
            goto bad;
        }
        p += 1 + len + 8;
    }
    if (end - p < 4) {
        why = "truncated before the duplicate table";
        goto bad;
    }
    uint32_t nd = rn_be32(b + p);
    p += 4;
    if (nd > RN_CHAN__DUP_MAX || end - p != (size_t)nd * DUP_ENT) {
        why = "duplicate table of the wrong size";
        goto bad;
    }
    for (uint32_t i = 0; i < nd; i++, p += DUP_ENT) {
        int32_t k = rn_chan__dup_get(&c->dup, rn_be64(b + p), rn_be64(b + p + 8));
        for (size_t w = 0; w < RN_CHAN__DUP_WORDS; w++)
            c->dup.e[k].bits[w] = rn_be64(b + p + 16 + 8 * w);
    }
    ck->have = 1;
    free(b);
    close(fd);
    return 1;
bad:
    rn_seterr(err, "%s/" CK_NAME ": damaged: %s", c->dir, why);
fail:
    free(b);
    close(fd);
    return RN_ERR;
}

/* ---- recovery ---------------------------------------------------------- */

/* What the scan of the segments needs besides the channel. */
typedef struct scan {
    const rn_chan_opts *o;
    uint64_t ck_next;       /* replay records from here into the dup table */
    uint64_t base;          /* index records that end after this */
    uint64_t last_end;      /* end of the last whole record so far */
    unsigned char *win;
} scan;

/* A whole record found by the scan. */
static int scan_take(rn_chan *c, scan *s, const rn_chan__rec *r, uint64_t session,
                     uint64_t serial, char *err)
{
    uint64_t end = r->seq + r->count;
    if (session && r->seq >= s->ck_next)
        rn_chan__dup_mark(&c->dup, session, serial);
    if (end > s->base) {
        if (rn_chan__ring_reserve(c) < 0)
            return rn_seterr(err, "%s: out of memory", c->dir);
        rn_chan__ring_push(c, r);
    }
    s->last_end = end;
    return 0;
}

/* Is there a whole record at pos of the segment (first seq base)? 1: yes,
 * in *rc (seq, count, len, offset), *session and *serial; 0: no (*why);
 * or a read error as rn_pread_full's. A record checks out when its length
 * is sane and fits the file, its CRC matches, it has events, and its seq
 * is not below the segment's name nor below the end of the record before. */
static int rec_check(scan *s, rn_rd *r, uint64_t pos, uint64_t fsize, uint64_t base,
                     rn_chan__rec *rc, uint64_t *session, uint64_t *serial, const char **why)
{
    const unsigned char *p;
    int e;
    if (fsize - pos < RN_WAL__REC_HDR) {
        *why = "record header cut short";
        return 0;
    }
    if ((e = rn_rd_get(r, pos, RN_WAL__REC_HDR, &p)) < 0)
        return e;
    uint32_t blen = rn_be32(p), crc = rn_be32(p + 4);
    uint64_t seq = rn_be64(p + 8);
    uint32_t count = rn_be32(p + 16);
    *session = rn_be64(p + 20);
    *serial = rn_be64(p + 28);
    if (blen < BODY_HDR || blen - BODY_HDR > RN_CHAN__MAX_LEN) {
        *why = "impossible length";
        return 0;
    }
    if (blen > fsize - pos - 8) {
        *why = "record cut short";
        return 0;
    }
    /* Cheap checks first: the resync after damage tries every byte. */
    if (count == 0 || seq > UINT64_MAX - count) {
        *why = "impossible event count";
        return 0;
    }
    if (seq < s->last_end || seq < base) {
        *why = "sequence number out of order";
        return 0;
    }
    uint32_t sum = 0;
    uint64_t at = pos + 8, stop = pos + 8 + blen;
    while (at < stop) {
        size_t k = stop - at < WINDOW ? (size_t)(stop - at) : WINDOW;
        if ((e = rn_rd_get(r, at, k, &p)) < 0)
            return e;
        sum = rn_crc32c(sum, p, k);
        at += k;
    }
    if (sum != crc) {
        *why = "CRC mismatch";
        return 0;
    }
    rc->seq = seq;
    rc->count = count;
    rc->len = blen - BODY_HDR;
    rc->at.off = pos;
    return 1;
}

/* Check every record of segment `name` and index the pending ones; skip
 * damage to the next whole record, and cut a torn tail of the last one. */
static int scan_seg(rn_chan *c, scan *s, uint64_t base, int last, char *err)
{
    char name[32];
    struct stat st;
    unsigned char h[SEG_HDR];
    rn_wal__seg g = { .base = base, .dirty = 1 };
    seg_name(name, base);
    g.fd = openat(c->dirfd, name, O_RDWR | O_CLOEXEC);
    if (g.fd < 0)
        return rn_seterr(err, "%s/%s: %s", c->dir, name, strerror(errno));
    if (fstat(g.fd, &st) < 0) {
        rn_seterr(err, "%s/%s: %s", c->dir, name, strerror(errno));
        goto fail;
    }
    uint64_t fsize = (uint64_t)st.st_size, pos = SEG_HDR;
    unsigned char want[SEG_HDR];
    seg_header(want);
    int e = rn_pread_full(g.fd, h, fsize < SEG_HDR ? (size_t)fsize : SEG_HDR, 0);
    if (e < 0) {
        rn_seterr(err, "%s/%s: read: %s", c->dir, name, rn_io_strerror(e));
        goto fail;
    }
    if (memcmp(h, want, fsize < 6 ? (size_t)fsize : 6) != 0) {
        rn_seterr(err, "%s/%s: not a runnel channel segment (bad magic)", c->dir, name);
        goto fail;
    }
    if (fsize < SEG_HDR) {
        /* A crash while the segment was being created. */
        if (!last) {
            close(g.fd);
            unlinkat(c->dirfd, name, 0);
            rn_warn_to(s->o->on_warn, s->o->data, "%s/%s: torn segment header: deleted",
                       c->dir, name);
            return 0;
        }
        if (ftruncate(g.fd, 0) < 0 || rn_write_all(g.fd, want, SEG_HDR) < 0) {
            rn_seterr(err, "%s/%s: rewrite header: %s", c->dir, name, strerror(errno));
            goto fail;
        }
        rn_warn_to(s->o->on_warn, s->o->data, "%s/%s: torn segment header: rewritten",
                   c->dir, name);
        g.size = SEG_HDR;
        if (push_seg(c, &g, err) < 0)
            goto fail;
        return 0;
    }
    if (((unsigned)h[6] << 8 | h[7]) != SEG_VERSION) {
        rn_seterr(err, "%s/%s: segment version %u not supported (expected %d)",
                  c->dir, name, (unsigned)h[6] << 8 | h[7], SEG_VERSION);
        goto fail;
    }
    rn_rd r;
    rn_rd_init(&r, g.fd, fsize, s->win, WINDOW);
    const char *why = NULL;
    uint32_t id = c->seg_first + (uint32_t)c->nseg;
    while (pos < fsize) {
        rn_chan__rec rc = { .seg = id };
        uint64_t session, serial;
        if ((e = rec_check(s, &r, pos, fsize, base, &rc, &session, &serial, &why)) < 0)
            goto ioerr;
        if (e == 0) {
            /* Damage: go on at the next record that checks out, if any. */
            uint64_t next = pos + 1;
            for (; next < fsize; next++) {
                const char *w2;
                if ((e = rec_check(s, &r, next, fsize, base, &rc, &session, &serial, &w2)) < 0)
                    goto ioerr;
                if (e == 1)
                    break;
            }
            if (next >= fsize && last)
                break;      /* a torn tail: cut below */
            if (next >= fsize) {
                rn_warn_to(s->o->on_warn, s->o->data, "%s/%s: damaged record at byte offset %"
                           PRIu64 " (%s): skipped the %" PRIu64 " bytes to the segment's end",
                           c->dir, name, pos, why, fsize - pos);
                pos = fsize;
                break;
            }
            rn_warn_to(s->o->on_warn, s->o->data, "%s/%s: damaged record at byte offset %"
                       PRIu64 " (%s): skipped %" PRIu64 " bytes to the next whole record, at "
                       "byte offset %" PRIu64 "; %" PRIu64 " events lost (seq %" PRIu64
                       " to %" PRIu64 ")", c->dir, name, pos, why, next - pos, next,
                       rc.seq - s->last_end, s->last_end, rc.seq);
            pos = next;
            why = NULL;
        }
        if (scan_take(c, s, &rc, session, serial, err) < 0)
            goto fail;
        pos += RN_WAL__REC_HDR + (uint64_t)rc.len;
    }
    if (pos < fsize) {
        if (ftruncate(g.fd, (off_t)pos) < 0) {
            rn_seterr(err, "%s/%s: truncate: %s", c->dir, name, strerror(errno));
            goto fail;
        }
        rn_warn_to(s->o->on_warn, s->o->data, "%s/%s: torn record at byte offset %" PRIu64
                   " (%s): truncated %" PRIu64 " bytes", c->dir, name, pos, why, fsize - pos);
    }
    g.size = pos;
    if (push_seg(c, &g, err) < 0)
        goto fail;
    return 0;
ioerr:
    rn_seterr(err, "%s/%s: read: %s", c->dir, name, rn_io_strerror(e));
fail:
    close(g.fd);
    return RN_ERR;
}

/* Lock DIR, load the checkpoint, replay the segments, place the cursors. */
int rn_wal__recover(rn_chan *c, const rn_chan_opts *o, char *err)
{
    ckpt *ck = NULL;
    uint64_t *bases = NULL;
    size_t nb = 0;
    scan s = { .o = o };
    int r = RN_ERR;

    if (mkdir(c->dir, 0755) < 0 && errno != EEXIST)
        return rn_seterr(err, "mkdir %s: %s", c->dir, strerror(errno));
    c->dirfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->dirfd < 0)
        return rn_seterr(err, "%s: %s", c->dir, strerror(errno));
    c->lockfd = openat(c->dirfd, "lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (c->lockfd < 0)
        return rn_seterr(err, "%s/lock: %s", c->dir, strerror(errno));
    if (flock(c->lockfd, LOCK_EX | LOCK_NB) < 0) {
        if (errno == EWOULDBLOCK)
            return rn_seterr(err, "%s: in use by another process", c->dir);
        return rn_seterr(err, "%s/lock: flock: %s", c->dir, strerror(errno));
    }
    unlinkat(c->dirfd, CK_TMP, 0);

    if (!(ck = calloc(1, sizeof *ck)) || !(s.win = malloc(WINDOW))) {
        rn_seterr(err, "%s: out of memory", c->dir);
        goto out;
    }
    if (ck_load(c, ck, err) < 0)
        goto out;
    /* Pending is what the sinks we know had not finished; a checkpoint that
     * knows none of ours speaks for its own (renamed) sinks. */
    int known = 0;
    s.base = UINT64_MAX;
    for (size_t i = 0; i < c->nsinks; i++)
        for (size_t j = 0; j < ck->nsinks; j++)
            if (strcmp(c->sinks[i].name, ck->names[j]) == 0) {
                known = 1;
                if (ck->done[j] < s.base)
                    s.base = ck->done[j];
            }
    if (!known)
        for (size_t j = 0; j < ck->nsinks; j++)
            if (ck->done[j] < s.base)
                s.base = ck->done[j];
    if (!ck->have)
        s.base = 0;
    s.ck_next = ck->have ? ck->next : 0;

    if (rn_seg_list(c->dirfd, c->dir, "wal-", "", &bases, &nb, NULL, NULL, err) < 0)
        goto out;
    for (size_t i = 0; i < nb; i++)
        if (scan_seg(c, &s, bases[i], i + 1 == nb, err) < 0)
            goto out;
    c->next_seq = s.ck_next > s.last_end ? s.ck_next : s.last_end;
    if (c->nseg == 0) {
        if (new_seg(c, c->next_seq, err) < 0)
            goto out;
    } else if (c->segs[c->nseg - 1].base > c->next_seq) {
        /* Its first records were lost: never put one below its name. */
        c->next_seq = c->segs[c->nseg - 1].base;
    }
    c->dir_dirty = 1;

    for (size_t i = 0; i < c->nsinks; i++) {
        rn_chan__cursor *k = &c->sinks[i];
        k->done = s.base <= c->next_seq ? s.base : c->next_seq;
        for (size_t j = 0; j < ck->nsinks; j++)
            if (strcmp(k->name, ck->names[j]) == 0)
                k->done = ck->done[j] < c->next_seq ? ck->done[j] : c->next_seq;
        k->rseq = k->done;
        while (k->rno < c->rn && rn_chan__ring_at(c, (size_t)k->rno)->seq
               + rn_chan__ring_at(c, (size_t)k->rno)->count <= k->done) {
            k->rcum += rn_chan__ring_at(c, (size_t)k->rno)->count;
            k->rno++;
        }
    }
    c->recovered = c->pending;
    if (c->recovered)
        rn_warn_to(o->on_warn, o->data, "%s: %" PRIu64 " events pending from the last run",
                   c->dir, c->recovered);
    r = 0;
out:
    free(bases);
    free(ck);
    free(s.win);
    return r;
}

/* ---- sync -------------------------------------------------------------- */

/* Serialised, so that a sync never answers for writes that another sync,
 * still in fsync, took the dirty flags of. fsync runs without the channel's
 * lock, on duplicates of the descriptors: puts go on meanwhile, and a
 * checkpoint may close the originals. */
int rn_wal__sync(rn_chan *c, uint64_t *synced, char *err)
{
    pthread_mutex_lock(&c->sync_mu);
    pthread_mutex_lock(&c->mu);
    uint64_t ticket = c->written;
    size_t n = 0;
    for (size_t i = 0; i < c->nseg; i++)
        n += c->segs[i].dirty != 0;
    int *fds = malloc((n + 1) * sizeof *fds);
    uint64_t *bases = malloc((n + 1) * sizeof *bases);
    int e = 0, k = 0;
    if (!fds || !bases) {
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->sync_mu);
        free(fds);
        free(bases);
        return rn_seterr(err, "%s: out of memory", c->dir);
    }
    for (size_t i = 0; i < c->nseg; i++) {
        rn_wal__seg *g = &c->segs[i];
        if (!g->dirty)
            continue;
        bases[k] = g->base;
        if ((fds[k++] = dup(g->fd)) < 0 && !e)
            e = errno;
        g->dirty = 0;
    }
    if (c->dir_dirty) {
        bases[k] = UINT64_MAX;
        if ((fds[k++] = dup(c->dirfd)) < 0 && !e)
            e = errno;
        c->dir_dirty = 0;
    }
    pthread_mutex_unlock(&c->mu);
    char what[300];
    snprintf(what, sizeof what, "%s: dup", c->dir);
    for (int i = 0; i < k; i++) {
        if (fds[i] < 0)
            continue;
        /* fdatasync covers the size a segment grew to; the directory needs
         * the full fsync for the names of new segments. */
        int bad = (bases[i] == UINT64_MAX ? fsync(fds[i]) : fdatasync(fds[i])) < 0;
        if (bad && !e) {
            e = errno;
            if (bases[i] == UINT64_MAX) {
                snprintf(what, sizeof what, "%s: fsync", c->dir);
            } else {
                char name[32];
                seg_name(name, bases[i]);
                snprintf(what, sizeof what, "%s/%s: fsync", c->dir, name);
            }
        }
        close(fds[i]);
    }
    free(fds);
    free(bases);
    if (e) {
        /* Flush everything next time: we no longer know what made it. Note
         * that after a failed fsync Linux may have dropped the dirty pages,
         * so a later success proves less than it seems. */
        pthread_mutex_lock(&c->mu);
        for (size_t i = 0; i < c->nseg; i++)
            c->segs[i].dirty = 1;
        c->dir_dirty = 1;
        pthread_mutex_unlock(&c->mu);
        pthread_mutex_unlock(&c->sync_mu);
        return rn_seterr(err, "%s: %s", what, strerror(e));
    }
    pthread_mutex_unlock(&c->sync_mu);
    if (synced)
        *synced = ticket;
    return 0;
}

/* ---- reading back --------------------------------------------------------- */

/* Read the planned records into out: one pread for each run of records that
 * lie back to back in a segment, each record checked against its CRC and
 * the index, then the headers squeezed out in place. */
int rn_wal__read(rn_chan *c, const rn_wal__plan *pl, size_t n, rn_buf *out, char *err)
{
    char name[32];
    for (size_t i = 0, j; i < n; i = j) {
        uint64_t span = RN_WAL__REC_HDR + (uint64_t)pl[i].len;
        for (j = i + 1; j < n && pl[j].fd == pl[i].fd
                        && pl[j].off == pl[j - 1].off + RN_WAL__REC_HDR + pl[j - 1].len; j++)
            span += RN_WAL__REC_HDR + (uint64_t)pl[j].len;
        if (span > SIZE_MAX || rn_buf_reserve(out, (size_t)span) < 0)
            return rn_seterr(err, "%s: out of memory", c->dir);
        unsigned char *q = (unsigned char *)out->p + out->len;
        int e = rn_pread_full(pl[i].fd, q, (size_t)span, pl[i].off);
        if (e < 0) {
            seg_name(name, pl[i].base);
            return rn_seterr(err, "%s/%s: read at byte offset %" PRIu64 ": %s", c->dir,
                             name, pl[i].off, rn_io_strerror(e));
        }
        for (size_t m = i; m < j; m++) {
            const rn_wal__plan *x = &pl[m];
            const char *why = NULL;
            if (rn_be32(q) != BODY_HDR + x->len || rn_be64(q + 8) != x->seq
                || rn_be32(q + 16) != x->count)
                why = "record does not match the index";
            else if (rn_crc32c(0, q + 8, BODY_HDR + x->len) != rn_be32(q + 4))
                why = "CRC mismatch";
            if (why) {
                seg_name(name, x->base);
                return rn_seterr(err, "%s/%s: record at byte offset %" PRIu64 ": %s",
                                 c->dir, name, x->off, why);
            }
            memmove(out->p + out->len, q + RN_WAL__REC_HDR, x->len);
            out->len += x->len;
            q += RN_WAL__REC_HDR + x->len;
        }
    }
    return 0;
}

/* ---- saving the checkpoint ------------------------------------------------ */

/* How many segments, from the oldest, no sink needs: those before the one
 * holding the oldest pending record; when nothing is pending, all but the
 * active one, and the active one too when the disk is full and it holds
 * records (the next put starts a new one). Under the lock. */
static size_t spent_segs(const rn_chan *c)
{
    if (c->nseg == 0)
        return 0;
    if (c->rn)
        return (size_t)(uint32_t)(rn_chan__ring_at(c, 0)->seg - c->seg_first);
    return c->nseg - 1 + (c->nospace && c->segs[c->nseg - 1].size > SEG_HDR);
}

/* Delete the oldest segments no sink needs, at most upto of them. */
static void drop_segs(rn_chan *c, size_t upto)
{
    pthread_mutex_lock(&c->mu);
    size_t n = spent_segs(c);   /* again: puts may have come since it was counted */
    if (n > upto)
        n = upto;
    rn_wal__seg *gone = n ? malloc(n * sizeof *gone) : NULL;
    if (!gone) {
        pthread_mutex_unlock(&c->mu);
        return;                 /* out of memory: only means deleting them later */
    }
    memcpy(gone, c->segs, n * sizeof *gone);
    memmove(c->segs, c->segs + n, (c->nseg - n) * sizeof *c->segs);
    c->nseg -= n;
    c->seg_first += (uint32_t)n;
    pthread_mutex_unlock(&c->mu);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        seg_name(name, gone[i].base);
        unlinkat(c->dirfd, name, 0);   /* a failure leaves it for the next open */
        close(gone[i].fd);
    }
    free(gone);
    pthread_mutex_lock(&c->mu);
    if (c->nseg == 0) {
        /* The active one went: start the next now, so that its name keeps
         * the next seq across a restart (a failure is the next put's). */
        new_seg(c, c->next_seq, NULL);
    }
    pthread_mutex_unlock(&c->mu);
}

int rn_wal__checkpoint(rn_chan *c, char *err)
{
    pthread_mutex_lock(&c->ckpt_mu);
    pthread_mutex_lock(&c->mu);
    int r = ck_encode(c);
    /* Spent segments stay spent, and only this function removes segments,
     * so they can be counted now and removed after the save. */
    size_t spent = spent_segs(c);
    int full = c->nospace;
    pthread_mutex_unlock(&c->mu);
    if (r < 0) {
        pthread_mutex_unlock(&c->ckpt_mu);
        return rn_seterr(err, "%s: out of memory", c->dir);
    }
    if (!spent && c->cklast.len == c->ckbuf.len
        && memcmp(c->cklast.p, c->ckbuf.p, c->ckbuf.len) == 0) {
        pthread_mutex_unlock(&c->ckpt_mu);
        return 0;
    }
    /* On a full disk the save itself may need the room of the spent
     * segments: they go first. A crash before the save then finds the old
     * checkpoint, whose cursors and duplicate table are behind: sinks may
     * get again, and a resent batch may be stored again, what those
     * segments held; nothing pending is lost (it was all delivered). */
    if (full && spent)
        drop_segs(c, spent);
    /* Everything the saved duplicate table names must be on disk first. */
    if (rn_wal__sync(c, NULL, err) < 0
        || rn_file_replace(c->dirfd, c->dir, CK_NAME, c->ckbuf.p, c->ckbuf.len, 1, err) < 0) {
        pthread_mutex_unlock(&c->ckpt_mu);
        return RN_ERR;
    }
    c->cklast.len = 0;
    if (rn_buf_append(&c->cklast, c->ckbuf.p, c->ckbuf.len) < 0)
        c->cklast.len = 0;      /* only means saving again next time */
    if (!full && spent)
        drop_segs(c, spent);
    pthread_mutex_unlock(&c->ckpt_mu);
    return 0;
}

/* ---- close -------------------------------------------------------------- */

void rn_wal__close(rn_chan *c)
{
    for (size_t i = 0; i < c->nseg; i++)
        close(c->segs[i].fd);
    free(c->segs);
    if (c->lockfd >= 0)
        close(c->lockfd);   /* releases the flock */
    if (c->dirfd >= 0)
        close(c->dirfd);
    rn_buf_free(&c->ckbuf);
    rn_buf_free(&c->cklast);
    free(c->dir);
}
