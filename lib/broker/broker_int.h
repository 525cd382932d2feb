/* broker_int.h -- what the broker's files share inside broker/: the
 * Kafka wire codec, the server's internals, the API handlers. */
#ifndef RN_BROKER_BROKER_INT_H
#define RN_BROKER_BROKER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "broker/broker.h"

/* kproto.c -- the Kafka wire protocol's primitives, bounded: a reader that
 * never reads past its end and a writer that grows an rn_buf, plus the
 * request header and the API keys and error codes brokerd speaks.
 *
 * The reader keeps a sticky error: once a read would pass the end (or a
 * length is negative where it may not be, or larger than what is left), every
 * later read returns zero/NULL and rn_kr_ok() is false. So a parser reads a
 * whole structure and checks once at the end; no length taken from the wire
 * can make it allocate or skip more than the request holds. Array counts are
 * checked against the bytes left too (each element takes at least one byte).
 *
 * The writer likewise keeps a sticky out-of-memory flag. */

/* API keys. */
enum {
    RN_KAPI_PRODUCE = 0, RN_KAPI_FETCH = 1, RN_KAPI_LIST_OFFSETS = 2, RN_KAPI_METADATA = 3,
    RN_KAPI_OFFSET_COMMIT = 8, RN_KAPI_OFFSET_FETCH = 9, RN_KAPI_FIND_COORDINATOR = 10,
    RN_KAPI_JOIN_GROUP = 11, RN_KAPI_HEARTBEAT = 12, RN_KAPI_LEAVE_GROUP = 13,
    RN_KAPI_SYNC_GROUP = 14, RN_KAPI_DESCRIBE_GROUPS = 15, RN_KAPI_LIST_GROUPS = 16,
    RN_KAPI_API_VERSIONS = 18, RN_KAPI_CREATE_TOPICS = 19, RN_KAPI_DELETE_TOPICS = 20,
    RN_KAPI_DESCRIBE_CONFIGS = 32, RN_KAPI_ALTER_CONFIGS = 33,
};

/* Error codes (the protocol guide's table). */
enum {
    RN_KERR_NONE = 0, RN_KERR_OFFSET_OUT_OF_RANGE = 1, RN_KERR_CORRUPT_MESSAGE = 2,
    RN_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3, RN_KERR_INVALID_FETCH_SIZE = 4,
    RN_KERR_COORDINATOR_NOT_AVAILABLE = 15, RN_KERR_INVALID_TOPIC = 17,
    RN_KERR_RECORD_LIST_TOO_LARGE = 18, RN_KERR_INVALID_REQUIRED_ACKS = 21,
    RN_KERR_ILLEGAL_GENERATION = 22, RN_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    RN_KERR_INVALID_GROUP_ID = 24, RN_KERR_UNKNOWN_MEMBER_ID = 25,
    RN_KERR_INVALID_SESSION_TIMEOUT = 26, RN_KERR_REBALANCE_IN_PROGRESS = 27,
    RN_KERR_UNSUPPORTED_VERSION = 35, RN_KERR_TOPIC_ALREADY_EXISTS = 36,
    RN_KERR_INVALID_PARTITIONS = 37, RN_KERR_INVALID_REPLICATION_FACTOR = 38,
    RN_KERR_INVALID_REQUEST = 42, RN_KERR_UNKNOWN_SERVER_ERROR = -1,
    RN_KERR_POLICY_VIOLATION = 44, RN_KERR_KAFKA_STORAGE_ERROR = 56,
    RN_KERR_GROUP_MAX_SIZE_REACHED = 81, RN_KERR_UNSUPPORTED_COMPRESSION_TYPE = 76,
    RN_KERR_MEMBER_ID_REQUIRED = 79,
};

/* The version ranges brokerd serves: the non-flexible versions (and the
 * flexible ApiVersions v3) that librdkafka 2.0 negotiates, and those the
 * admin calls of kafka-python, KafkaJS and sarama send. */
typedef struct rn_kapi_range {
    int16_t key, min, max;
} rn_kapi_range;
extern const rn_kapi_range rn_kapi_ranges[];
extern const size_t rn_kapi_nranges;
/* The range served for key, or NULL. */
const rn_kapi_range *rn_kapi_find(int16_t key);
const char *rn_kapi_name(int16_t key);

/* ---- reader ---- */
typedef struct rn_kr {
    const unsigned char *p;
    size_t len, off;
    int bad;
} rn_kr;

/* A string or bytes as it lies in the request (not NUL-terminated).
 * null is set for a null string/bytes; then p is NULL and n 0. */
typedef struct rn_kstr {
    const char *p;
    size_t n;
    int null;
} rn_kstr;

void rn_kr_init(rn_kr *r, const void *p, size_t len);
static inline int rn_kr_ok(const rn_kr *r) { return !r->bad; }
static inline size_t rn_kr_left(const rn_kr *r) { return r->bad ? 0 : r->len - r->off; }
int8_t rn_kr_i8(rn_kr *r);
int16_t rn_kr_i16(rn_kr *r);
int32_t rn_kr_i32(rn_kr *r);
int64_t rn_kr_i64(rn_kr *r);
uint64_t rn_kr_uvarint(rn_kr *r);     /* unsigned LEB128, at most 10 bytes */
int64_t rn_kr_varint(rn_kr *r);       /* zigzag */
rn_kstr rn_kr_str(rn_kr *r);          /* STRING: int16 length, never null */
rn_kstr rn_kr_nstr(rn_kr *r);         /* NULLABLE_STRING: length -1 is null */
rn_kstr rn_kr_bytes(rn_kr *r);        /* (NULLABLE_)BYTES: int32 length, -1 is null */
rn_kstr rn_kr_cstr(rn_kr *r);         /* COMPACT_(NULLABLE_)STRING: uvarint length+1 */
/* ARRAY count: int32, -1 is null (returned as -1 with *null set when given);
 * a count larger than the bytes left (elements take >= min_elem bytes each)
 * is an error. */
int32_t rn_kr_array(rn_kr *r, size_t min_elem, int *null);
int32_t rn_kr_carray(rn_kr *r, size_t min_elem);   /* COMPACT_ARRAY: uvarint n+1; null is -1 */
void rn_kr_skip_tags(rn_kr *r);                    /* TAGGED_FIELDS: read and ignore */
void rn_kr_fail(rn_kr *r);

/* ---- writer ---- */
typedef struct rn_kw {
    rn_buf *b;
    int oom;
} rn_kw;

void rn_kw_init(rn_kw *w, rn_buf *b);
void rn_kw_raw(rn_kw *w, const void *p, size_t n);
void rn_kw_i8(rn_kw *w, int8_t v);
void rn_kw_i16(rn_kw *w, int16_t v);
void rn_kw_i32(rn_kw *w, int32_t v);
void rn_kw_i64(rn_kw *w, int64_t v);
void rn_kw_uvarint(rn_kw *w, uint64_t v);
void rn_kw_varint(rn_kw *w, int64_t v);
void rn_kw_str(rn_kw *w, const char *p, size_t n);       /* STRING */
void rn_kw_strz(rn_kw *w, const char *s);                /* STRING from a C string */
void rn_kw_nstr(rn_kw *w, const char *p, size_t n);      /* NULLABLE_STRING; p NULL is null */
void rn_kw_bytes(rn_kw *w, const void *p, size_t n);     /* BYTES; p NULL is null */
void rn_kw_cstr(rn_kw *w, const char *p, size_t n);      /* COMPACT_NULLABLE_STRING */
void rn_kw_array(rn_kw *w, int32_t n);                   /* ARRAY count */
void rn_kw_carray(rn_kw *w, int32_t n);                  /* COMPACT_ARRAY count (-1 null) */
void rn_kw_tags(rn_kw *w);                               /* empty TAGGED_FIELDS */
/* Reserve an int32 to fill in later (an array count or a size); returns its
 * offset in the buffer. */
size_t rn_kw_hole32(rn_kw *w);
void rn_kw_fill32(rn_kw *w, size_t at, int32_t v);

/* ---- request header ---- */
typedef struct rn_kreq_hdr {
    int16_t api_key, api_version;
    int32_t correlation_id;
    rn_kstr client_id;
    int flexible;       /* request header v2 (tagged fields) was read */
} rn_kreq_hdr;

/* Whether (key, version) uses the flexible (v2) request header. Of what we
 * serve, only ApiVersions v3 does; unknown versions count as non-flexible,
 * which is what Kafka assumes for them too. */
int rn_kapi_flexible(int16_t key, int16_t version);

/* Parse the header of one request (the bytes after the 4-byte size); leaves
 * r at the body. -1 with err when it is truncated. */
int rn_kreq_hdr_parse(rn_kr *r, rn_kreq_hdr *h, char *err);

/* The ApiVersions response (any version 0..3) with error_code, into w. */
void rn_kapi_versions_body(rn_kw *w, int16_t version, int16_t error_code);

/* klog.c, for tests: when set, what klog calls instead of fsync and
 * fdatasync, so that a test can make an fsync fail. */
extern int (*rn__klog_fsync_hook)(int fd);

/* broker_int.c -- what the parts of the broker (broker.c: server, topics,
 * flush; broker_api.c: the data APIs; broker_group.c: consumer groups) share.
 * Not for use outside lib/broker*.c. */

typedef struct kconn kconn;
typedef struct kreq kreq;
typedef struct kgroup kgroup;
typedef struct kmember kmember;

typedef struct kwatch kwatch;

typedef struct ktopic {
    struct ktopic *next;
    char *name;
    int32_t n;
    rn_klog **logs;
    unsigned char *dirty;       /* appended to since the last fsync began */
    kwatch *watchers;           /* fetches that read it, newest first */
} ktopic;

/* A fetch reads a topic: a Produce to the topic wakes only the parked
 * fetches that read it. On the topic's list and on the fetch's. */
struct kwatch {
    kwatch *tprev, *tnext;
    kwatch *qnext;
    kreq *q;
    ktopic *t;
};

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
    void *mem;                  /* the allocation frame lies in, 4 bytes (its size) on */
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
    size_t held;                /* counted in its connection's held */
    size_t copied;              /* record bytes copied into out */
    kwatch *watches;            /* the topics a fetch reads */
    int woken;                  /* on the broker's woken list */
    kreq *wkprev, *wknext;
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
    rn_buf *sink;               /* no socket (rn__conn_fake): answers go here */
    int *closed;                /* set when the connection is closed */
    /* Flow: bytes of its queued requests (frames) and of the answers done
     * but not yet handed to the socket; reading stops while they and
     * libuv's write queue exceed max_conn_buffer (muted), or while its
     * partial request waits for room under max_partial (waiting, want
     * bytes); reserved: its share of the broker's partial. */
    size_t held;
    size_t reserved, want;
    int muted, waiting, reading, in_frames;
    int64_t active_ns;          /* bytes last read or written (rn_mono_ns) */
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
    char adv_host[256];         /* see rn_broker_opts.advertise_host */
    uv_tcp_t listener;
    int listening;
    uv_timer_t tick;            /* group sessions, retention, stop progress */
    uv_timer_t flush_timer;
    int timers_on;
    kconn *conns;
    ktopic *topics;
    kgroup *groups;
    kwlist fetches, flushes, parked;
    kreq *woken_head, *woken_tail;  /* fetches a Produce woke, to try again */
    size_t partial;             /* reserved by partial requests (max_partial) */
    int nconns;                 /* sockets, for max_connections */
    /* Rate-limited log lines: refused connections and idle ones closed
     * since the last line, connections waiting for max_partial. */
    uint64_t refused, idle_closed, partial_waits;
    int64_t refused_log_ns, partial_log_ns;
    /* Group commit: every append bumps append_seq; a sync started at seq s
     * covers all appends up to s. */
    int64_t append_seq, synced_seq;
    int syncing;
    uv_work_t sync_work;
    rn_klog **sync_logs;
    unsigned char *sync_bad;    /* sync_logs[i] failed to sync */
    size_t sync_n;
    int sync_failed;
    char sync_err[RN_ERRLEN];   /* the first failed fsync's reason */
    int64_t sync_target;
    /* Appends refused by the disk (full, or failing): said once when it
     * starts and once when appends work again (rn__append_failed). */
    int disk_err;
    int64_t disk_err_ns;
    uint64_t disk_refused;
    int groups_err;             /* a group's offsets could not be saved: said once */
    int failed;
    int stopping;
    int64_t stop_deadline;
    void (*stop_done)(void *);
    void *stop_data;
    rn_counters counters;
    uint64_t *c_conns, *c_requests, *c_produced_batches, *c_produced_bytes,
        *c_fetched_bytes, *c_bad_requests, *c_fsyncs, *c_storage_errors;
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
 * Returns the bytes added (len unless a pread came up short), or RN_ENOMEM. */
long rn__req_file(kreq *q, int fd, uint64_t pos, size_t len);
void rn__req_drop_files(kreq *q);   /* forget the slices (the answer is rebuilt) */
/* A fetch being built reads topic t: a Produce to t wakes it while it is
 * parked. (Out of memory: it waits for its max_wait.) */
void rn__fetch_watch(kreq *q, ktopic *t);
/* The next parked fetch a Produce woke (to try again), or NULL. */
kreq *rn__fetch_woken(rn_broker *b);
void rn__conn_fail(kconn *c, const char *why, const kreq *q);
/* Bytes from the peer, in any pieces: whole requests are cut out and run. */
void rn__conn_input(kconn *c, const void *p, size_t n);
/* A connection without a socket, so that tests can hand the broker requests
 * and read its answers: bytes go in with rn__conn_input exactly as they
 * would come from the socket (size-prefixed requests), and the answers,
 * size prefix included, are appended to *out in the order the socket would
 * carry them (record bytes read from the segments, not sendfile'd). A request
 * that waits is answered as on a socket: when another request wakes it (a
 * Produce for a long-polling Fetch, the last JoinGroup of a rebalance), or
 * when the loop runs its timer or fsync (session and rebalance timeouts only
 * tick after rn_broker_start). *closed is set when the broker closes the
 * connection (a malformed request, ...); c is freed when the loop runs after
 * that. NULL when out of memory. */
kconn *rn__conn_fake(rn_broker *b, rn_buf *out, int *closed);
void rn__conn_fake_close(kconn *c);
void rn__wait(kwlist *l, kreq *q, int kind);
void rn__unwait(kreq *q);
kwlist *rn__wlist(rn_broker *b, int kind);
ktopic *rn__topic_find(rn_broker *b, const char *name, size_t n);
int rn__topic_create(rn_broker *b, const char *name, size_t n, int32_t parts, ktopic **out,
                     char *err);
int rn__topic_delete(rn_broker *b, ktopic *t, char *err);
int rn__topic_name_ok(const char *name, size_t n);
void rn__appended(rn_broker *b, ktopic *t, int32_t p);
/* An append to t-p failed for the disk (err says how: full, failing): log
 * it when appends start failing, count it always. rn__appended says when
 * they work again, at the first success a second after the last failure. */
void rn__append_failed(rn_broker *b, ktopic *t, int32_t p, const char *err);
void rn__produced(kreq *q);     /* answer now, or once flushed (--flush always) */
int rn__unsynced(rn_broker *b, rn_klog *l);  /* l failed in the commit that just ended */
int64_t rn__now_ms(void);

/* broker_api.c */
int rn__api_versions(kreq *q);
int rn__metadata(kreq *q);
int rn__produce(kreq *q);
/* A Produce waiting for a group commit that failed: its partitions whose log
 * did not sync (rn__unsynced) or that are gone are answered
 * KAFKA_STORAGE_ERROR instead. */
void rn__produce_unsynced(kreq *q);
int rn__fetch(kreq *q);
void rn__fetch_wake(rn_broker *b);
void rn__fetch_expire_all(rn_broker *b);
int rn__list_offsets(kreq *q);
int rn__create_topics(kreq *q);
int rn__delete_topics(kreq *q);
int rn__find_coordinator(kreq *q);
/* DescribeConfigs: a topic's or the broker's settings, taken from brokerd's
 * own options; AlterConfigs: refused, they are read-only. */
int rn__describe_configs(kreq *q);
int rn__alter_configs(kreq *q);

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
int rn__list_groups(kreq *q);
int rn__describe_groups(kreq *q);
/* The groups' part of rn_broker_metrics. */
void rn__group_metrics(rn_broker *b, rn_prom *p, const char *prefix);

/* kcodec.c -- a compressed batch's records, decompressed piece by piece
 * (codec: attributes & 7), at most max_out bytes in all. Pieces are in win
 * (gzip, lz4, zstd) or in a buffer of the decoder's own (snappy: one whole
 * block, since its C API cannot stream), valid until the next call. */
enum { RN_KCODEC_NONE, RN_KCODEC_GZIP, RN_KCODEC_SNAPPY, RN_KCODEC_LZ4, RN_KCODEC_ZSTD };
typedef struct rn__kdec rn__kdec;
/* NULL with *why (out of memory, an unknown codec). */
rn__kdec *rn__kdec_new(int codec, const unsigned char *in, size_t n, unsigned char *win,
                       size_t win_len, uint64_t max_out, const char **why);
/* 1 with the next piece in *out, *len (> 0); 0 at the end of the compressed
 * data; -1 with *why (corrupt, truncated, beyond max_out, out of memory). */
int rn__kdec_next(rn__kdec *d, const unsigned char **out, size_t *len, const char **why);
void rn__kdec_free(rn__kdec *d);   /* NULL is a no-op */

#endif
