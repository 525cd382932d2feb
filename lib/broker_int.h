/* broker_int.h -- what the parts of the broker (broker.c: server, topics,
 * flush; broker_api.c: the data APIs; broker_group.c: consumer groups) share.
 * Not for use outside lib/broker*.c. */
#ifndef RN_BROKER_INT_H
#define RN_BROKER_INT_H

#include <stdint.h>
#include <uv.h>

#include "broker.h"
#include "kproto.h"
#include "util.h"

typedef struct kconn kconn;
typedef struct kreq kreq;
typedef struct kgroup kgroup;
typedef struct kmember kmember;

typedef struct ktopic {
    struct ktopic *next;
    char *name;
    int32_t n;
    rn_klog **logs;
    unsigned char *dirty;       /* appended to since the last fsync began */
} ktopic;

/* Record bytes a response sends from a file instead of from out: they go
 * after the first `at` bytes of out that precede them. fd is our own dup of
 * the segment's, so retention or DeleteTopics may close and unlink the
 * segment while the answer waits in the queue. */
typedef struct kslice {
    size_t at;
    int fd;
    uint64_t pos;
    size_t len;
} kslice;

/* What a request waits for, and the list it is on meanwhile. */
enum { W_NONE, W_FETCH, W_FLUSH, W_PARK, W_JOIN, W_SYNC };

struct kreq {
    kreq *next;                 /* in its connection's queue */
    kconn *c;
    rn_kreq_hdr h;
    unsigned char *frame;       /* the whole request (ours: Produce assigns offsets in it) */
    size_t flen;
    const unsigned char *body;  /* after the header */
    size_t blen;
    rn_buf out;                 /* the response, size prefix included */
    rn_kw w;
    kslice *sl;                 /* in order of at */
    size_t nsl, slcap;
    uint64_t sl_bytes;          /* sum of their len: part of the size prefix */
    int done, noresp;
    int wait;
    kreq *wprev, *wnext;        /* on the broker's list for wait */
    uv_timer_t *timer;          /* a long-polling fetch's max_wait */
    int64_t flush_seq;          /* W_FLUSH: done when synced_seq reaches it */
    kmember *member;            /* W_JOIN, W_SYNC */
};

struct kconn {
    kconn *next, *prev;
    rn_broker *b;
    uv_tcp_t h;
    char peer[64];
    rn_buf in;
    size_t in_off;
    kreq *head, *tail;
    int closing;
    int nwrites;                /* uv_write requests not yet called back */
    /* The answer being sent by write and sendfile on the socket itself (it
     * has slices); the answers after it wait. part: even 2i is out's bytes
     * before slice i (or after the last), odd 2i+1 is slice i; off: how far
     * into that part. */
    kreq *cur;
    size_t part;
    uint64_t off;
};

typedef struct kwlist {
    kreq *head, *tail;
} kwlist;

struct rn_broker {
    uv_loop_t *loop;
    rn_broker_opts o;
    char *data_dir;
    char host[256];
    int port;
    uv_tcp_t listener;
    int listening;
    uv_timer_t tick;            /* group sessions, retention, stop progress */
    uv_timer_t flush_timer;
    int timers_on;
    kconn *conns;
    ktopic *topics;
    kgroup *groups;
    kwlist fetches, flushes, parked;
    /* Group commit: every append bumps append_seq; a sync started at seq s
     * covers all appends up to s. */
    int64_t append_seq, synced_seq;
    int syncing;
    uv_work_t sync_work;
    rn_klog **sync_logs;
    size_t sync_n;
    int sync_failed;
    int64_t sync_target;
    int failed;
    int stopping;
    int64_t stop_deadline;
    void (*stop_done)(void *);
    void *stop_data;
    rn_counters counters;
    uint64_t *c_conns, *c_requests, *c_produced_batches, *c_produced_bytes,
        *c_fetched_bytes, *c_bad_requests, *c_fsyncs;
    int no_sendfile;            /* sendfile(2) said EINVAL/ENOSYS once: pread from now on */
    char rbuf[64 * 1024];
    uint64_t member_seq;
};

/* broker.c */
void rn__blog(rn_broker *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void rn__req_done(kreq *q);
void rn__req_begin(kreq *q);    /* start the response: size hole, correlation id */
/* Append len bytes of fd from pos to the response, to be sent by sendfile(2)
 * (or read now when that is cheaper, or when fd cannot be duplicated).
 * Returns the bytes added (len unless a pread came up short), -1 out of memory. */
long rn__req_file(kreq *q, int fd, uint64_t pos, size_t len);
void rn__req_drop_files(kreq *q);   /* forget the slices (the answer is rebuilt) */
void rn__conn_fail(kconn *c, const char *why, const kreq *q);
void rn__wait(kwlist *l, kreq *q, int kind);
void rn__unwait(kreq *q);
kwlist *rn__wlist(rn_broker *b, int kind);
ktopic *rn__topic_find(rn_broker *b, const char *name, size_t n);
int rn__topic_create(rn_broker *b, const char *name, size_t n, int32_t parts, ktopic **out,
                     char *err);
int rn__topic_delete(rn_broker *b, ktopic *t, char *err);
int rn__topic_name_ok(const char *name, size_t n);
void rn__appended(rn_broker *b, ktopic *t, int32_t p);
void rn__produced(kreq *q);     /* answer now, or once flushed (--flush always) */
int64_t rn__now_ms(void);

/* broker_api.c */
int rn__api_versions(kreq *q);
int rn__metadata(kreq *q);
int rn__produce(kreq *q);
int rn__fetch(kreq *q);
void rn__fetch_wake(rn_broker *b);
void rn__fetch_expire_all(rn_broker *b);
int rn__list_offsets(kreq *q);
int rn__create_topics(kreq *q);
int rn__delete_topics(kreq *q);
int rn__find_coordinator(kreq *q);

/* broker_group.c */
int rn__group_load(rn_broker *b, char *err);
void rn__group_free_all(rn_broker *b);
void rn__group_tick(rn_broker *b, int64_t now);
void rn__group_cancel(kreq *q);
void rn__group_stop(rn_broker *b);
int rn__join_group(kreq *q);
int rn__sync_group(kreq *q);
int rn__heartbeat(kreq *q);
int rn__leave_group(kreq *q);
int rn__offset_commit(kreq *q);
int rn__offset_fetch(kreq *q);

#endif
