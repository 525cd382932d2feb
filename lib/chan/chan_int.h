/* chan_int.h -- what the files of lib/chan/ share and nobody else sees: the
 * channel's state, which the channel (chan.c) and its write-ahead log
 * (wal.c) both work on; and the sink object, the thread entry points and
 * the in-order done queue that the sink kinds (sink.c, sink_tcp.c,
 * sink_kafka.c) share. */
#ifndef RN_CHAN_CHAN_INT_H
#define RN_CHAN_CHAN_INT_H

#include <pthread.h>

#include "chan/chan.h"

/* ---- the channel (chan.c) and its write-ahead log (wal.c) ----------------- */

#define RN_WAL__REC_HDR 36          /* length, CRC, seq, count, session, serial */
#define RN_CHAN__MAX_LEN (1U << 30) /* bytes of events in one record, at most */

/* The duplicate table: per session the highest serial and a bitmap of the
 * 1024 below it, in a fixed array of RN_CHAN__DUP_MAX entries with a chained
 * hash and an LRU list, so that a check costs a hash lookup and the table
 * never grows. The checkpoint (wal.c) saves and loads it. */
#define RN_CHAN__DUP_MAX 4096
#define RN_CHAN__DUP_WINDOW 1024
#define RN_CHAN__DUP_WORDS (RN_CHAN__DUP_WINDOW / 64)

typedef struct rn_chan__dupent {
    uint64_t session, high;
    uint64_t bits[RN_CHAN__DUP_WORDS];  /* bit k: serial high - 1 - k was seen */
    int32_t hnext;              /* hash chain */
    int32_t newer, older;       /* LRU list */
} rn_chan__dupent;

typedef struct rn_chan__duptab {
    rn_chan__dupent *e;
    int32_t *bucket;
    int32_t n;
    int32_t newest, oldest;
} rn_chan__duptab;

/* An entry for session, new (evicting the least recently used when full)
 * or found, made the most recent. */
int32_t rn_chan__dup_get(rn_chan__duptab *t, uint64_t session, uint64_t high);
/* Remember (session, serial). */
void rn_chan__dup_mark(rn_chan__duptab *t, uint64_t session, uint64_t serial);

typedef struct rn_chan__rec {
    uint64_t seq;
    union {
        char *p;            /* memory: the events */
        uint64_t off;       /* file: where the record starts in its segment */
    } at;
    uint32_t count, len;
    uint32_t seg;           /* file: the segment's id (see rn_chan.seg_first) */
} rn_chan__rec;

typedef struct rn_wal__seg {
    uint64_t base;          /* from the name */
    uint64_t size;          /* bytes of header and whole records */
    int fd;
    int dirty;              /* written since the last sync */
} rn_wal__seg;

/* What a file take reads, copied out of the ring under the lock. */
typedef struct rn_wal__plan {
    int fd;
    uint64_t base, off, seq;
    uint32_t count, len;
} rn_wal__plan;

/* A sink's place in the channel. */
typedef struct rn_chan__cursor {
    char *name;
    uint64_t rno;           /* the next record to take (absolute record number) */
    uint64_t rseq;          /* read cursor: the end of what was taken */
    uint64_t rcum;          /* events in the records before rno, for the lag */
    uint64_t done;
    void (*avail_fn)(void *);
    void *avail_arg;
    pthread_mutex_t take_mu;    /* one take at a time per sink */
    rn_wal__plan *plan;
    size_t plan_cap;
} rn_chan__cursor;

struct rn_chan {
    pthread_mutex_t mu;
    pthread_cond_t avail, room;
    pthread_mutex_t sync_mu;    /* one sync at a time: see rn_wal__sync */
    pthread_mutex_t ckpt_mu;    /* one checkpoint at a time; taken before sync_mu */
    int file;
    uint64_t capacity, max_bytes;

    size_t nsinks;
    rn_chan__cursor *sinks;

    rn_chan__rec *ring;     /* records that have not left, oldest first */
    size_t rcap, rhead, rn;
    uint64_t head_no;       /* absolute number of ring's first record */
    uint64_t cum;           /* events in every record indexed this run */
    uint64_t pending, pending_bytes;
    uint64_t next_seq;

    uint64_t written;       /* the ticket: 1 + bytes appended this run */
    int shutdown;
    int space_wanted;       /* a put answered FULL: call space_fn on room */
    void (*space_fn)(void *);
    void *space_arg;
    int put_waiters, take_waiters;

    rn_chan__duptab dup;
    uint64_t in, duplicates, recovered;

    /* The write-ahead log of a file channel (wal.c). */
    char *dir;
    int dirfd, lockfd;
    uint64_t segment_bytes;
    rn_wal__seg *segs;      /* live segments, oldest first; the last is active */
    size_t nseg, segcap;
    uint32_t seg_first;     /* id of segs[0]; ids count up, wrapping is harmless */
    int dir_dirty;          /* a segment was created since the last sync */
    int nospace;            /* the last append found the disk full */
    rn_buf ckbuf;           /* the checkpoint being saved */
    rn_buf cklast;          /* the last one saved: an unchanged one is not saved again */
};

/* The i-th record of the ring (0: the oldest). Under the lock. */
static inline rn_chan__rec *rn_chan__ring_at(const rn_chan *c, size_t i)
{
    return &c->ring[(c->rhead + i) & (c->rcap - 1)];
}

/* Room for one more record, so that nothing can fail after a write:
 * 0, or RN_ENOMEM. Then rn_chan__ring_push adds it and counts it pending. */
int rn_chan__ring_reserve(rn_chan *c);
void rn_chan__ring_push(rn_chan *c, const rn_chan__rec *r);

/* wal.c. Lock DIR, load the checkpoint, replay the segments (pending records
 * into the ring, the duplicate table), place the cursors. */
int rn_wal__recover(rn_chan *c, const rn_chan_opts *o, char *err);
/* Append one record to the active segment; r gets where it went. Under the
 * lock. RN_CHAN_NOSPACE when the disk is full. */
int rn_wal__append(rn_chan *c, const char *events, size_t len, uint32_t count,
                   uint64_t session, uint64_t serial, rn_chan__rec *r, char *err);
/* Read the planned records' events, checked, into out. Without the lock. */
int rn_wal__read(rn_chan *c, const rn_wal__plan *pl, size_t n, rn_buf *out, char *err);
/* rn_chan_sync and rn_chan_checkpoint of a file channel. */
int rn_wal__sync(rn_chan *c, uint64_t *synced, char *err);
int rn_wal__checkpoint(rn_chan *c, char *err);
/* Close the segments and DIR (releasing its lock), free the log's memory. */
void rn_wal__close(rn_chan *c);

/* ---- the sinks ---------------------------------------------------------- */

struct rn_sink {
    rn_sink_spec spec;
    rn_sink_opts o;
    pthread_t thread;
    int started;
    int stop;                   /* atomic: rn_sink_stop was called */
    uint64_t out, retries;      /* atomic counters */
    uint64_t dropped;           /* atomic: records that can never be delivered */
    void (*wake)(rn_sink *s);   /* kinds with an event loop: rn_sink_stop pokes it */
    void *impl;
};

#define rn_sink__stopping(s) __atomic_load_n(&(s)->stop, __ATOMIC_ACQUIRE)
#define rn_sink__count(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)

void rn_sink__warn(rn_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the events of in that s's filter lets through, in out (emptied
 * first). 1, or 0 when the whole batch is filtered away; RN_ERR on bad input
 * or out of memory (err). */
int rn_sink__filter(const rn_sink *s, const rn_chan_batch *in, rn_batch *out, char *err);
int rn_sink__has_filter(const rn_sink *s);
int rn_sink__accepts(const rn_sink *s, const rn_event *ev);

/* Batches in flight, in take order: a batch is finished when delivered, and
 * the channel hears of the longest finished prefix. */
typedef struct rn_sink__fifo {
    struct rn_sink__fifo_ent { uint64_t end, left, events; } *e;
    size_t head, n, cap;
    long first;                 /* slot id of e[head] */
} rn_sink__fifo;

/* Add a batch of `events` events with `left` deliveries to wait for (0:
 * finished already); returns its slot id, or RN_ENOMEM. */
long rn_sink__fifo_push(rn_sink__fifo *f, uint64_t end, uint64_t left, uint64_t events);
/* One delivery of slot id is done. */
void rn_sink__fifo_one(rn_sink__fifo *f, long id);
/* Pop the finished prefix: tell the channel, count the events out. */
void rn_sink__fifo_flush(rn_sink *s, rn_sink__fifo *f);
void rn_sink__fifo_free(rn_sink__fifo *f);

void *rn_sink__tcp_run(void *arg);
int rn_sink__tcp_init(rn_sink *s, char *err);
void *rn_sink__kafka_run(void *arg);
int rn_sink__kafka_init(rn_sink *s, char *err);

#endif
