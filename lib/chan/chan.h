/* chan.h -- the channel and its sinks (chanbuf): a memory or file channel,
 * the sinks that take from it, and the agent that wires a source
 * (stdin or hop receiver) to a channel and its sinks. */
#ifndef RN_CHAN_CHAN_H
#define RN_CHAN_CHAN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

/* chan.c -- chanbuf's channel: events between the sources that put them and
 * the sinks that take them, in memory or in a write-ahead log on disk
 * (Flume's memory and file channels).
 *
 * The channel is a sequence of records. A record is a batch of events as it
 * was put: count events, each a u32 BE length and a msgpack [ts, map, bin]
 * (the frames stream format without its stream header; the channel does not
 * look inside). Every event has a sequence number, from 0 upwards; a record
 * holds seq .. seq+count-1.
 *
 * Each sink (named, so that a file channel finds its cursor again after a
 * restart) has a read cursor, moved by rn_chan_take, and a done cursor, moved
 * by rn_chan_done. A record leaves the channel when every sink is done with
 * it (the replicating selector: every sink gets every event). Capacity
 * (events and bytes) counts the records that have not left.
 *
 * File channel (dir set): records are appended to segment files
 * DIR/wal-<20-digit first seq> (a magic header, then per record a u32 BE
 * length, a CRC-32C, and the record), sinks read them back with pread, and
 * nothing of the payload stays in memory. DIR/checkpoint (written to a
 * temporary file, synced, renamed) holds every sink's done cursor and the
 * duplicate table; it is saved by rn_chan_checkpoint. Opening replays the
 * segments: a torn or corrupt tail is truncated at the last whole record
 * (reported through on_warn with the file and byte offset), and every record
 * some sink was not done with at the last checkpoint is pending again. So a
 * kill -9 at any moment loses nothing that rn_chan_put had returned for; a
 * sink may get again what it had finished after the last checkpoint.
 * Durability against power loss is rn_chan_sync's: a put is on disk once a
 * sync that began after it has returned (see rn_chan_put's ticket).
 *
 * Duplicates: a record put with a non-zero session remembers (session,
 * serial); putting the same pair again stores nothing and returns
 * RN_CHAN_DUP. Per session the highest serial and a window of the 1024 below
 * it are kept, for up to 4096 sessions (the least recently used is
 * forgotten); a file channel keeps the table across restarts.
 *
 * Threads: every function may be called from any thread, except open and
 * close. Sinks usually run in threads of their own and wait in take. */

#define RN_CHAN_MAX_SINKS 32

/* rn_chan_put's answers besides 0 (stored) and -1 (error) */
#define RN_CHAN_DUP 1       /* seen before: not stored again */
#define RN_CHAN_FULL 2      /* no room now (wait = 0) */
#define RN_CHAN_CLOSED 3    /* rn_chan_shutdown was called */
#define RN_CHAN_NOSPACE 4   /* file: the disk is full (or a file size limit is
                             * reached); nothing stored, try again later */

typedef struct rn_chan rn_chan;

typedef struct rn_chan_opts {
    const char *dir;            /* NULL: memory channel */
    uint64_t capacity;          /* events pending at most; 0: 1000000 */
    uint64_t max_bytes;         /* bytes pending at most; 0: 64 MiB memory, 1 GiB file */
    uint64_t segment_bytes;     /* file: roll segments at this size; 0: 64 MiB */
    size_t nsinks;              /* 1 .. RN_CHAN_MAX_SINKS */
    const char *const *sink_names;
    /* Called from rn_chan_open only: what recovery found or repaired. */
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_chan_opts;

/* Open (and for a file channel create or recover, and lock: a second
 * process on the same DIR is an error). A sink whose name the checkpoint
 * does not know starts at the oldest pending record. */
rn_chan *rn_chan_open(const rn_chan_opts *o, char *err);

/* Checkpoint (file), free everything. Call after every thread using the
 * channel has stopped. */
int rn_chan_close(rn_chan *c, char *err);

/* ---- putting -------------------------------------------------------------- */

/* Append a record of count events (len bytes of events). session 0 means no
 * duplicate check. With wait set, block while there is no room; otherwise
 * answer RN_CHAN_FULL. A record larger than the whole capacity is taken when
 * the channel is empty, so that it cannot wait forever. *ticket (may be
 * NULL) is the position to pass to rn_chan_synced: for a file channel the
 * record is durable once a sync has reached it. A DUP gets a ticket too (the
 * earlier copy may not be synced yet). RN_CHAN_NOSPACE: the disk is full
 * (err says so); nothing was stored, and the next put starts a new segment,
 * so that rn_chan_checkpoint can delete the old ones as soon as the sinks
 * are done with them (the active one too, once nothing is pending): try
 * again after a checkpoint. -1: the write failed (err). */
int rn_chan_put(rn_chan *c, const char *events, size_t len, uint32_t count,
                uint64_t session, uint64_t serial, int wait, uint64_t *ticket,
                char *err);

/* fsync what has been written (file channel; a no-op for memory). Safe to run
 * on a worker thread while puts go on. *synced is the ticket it covers. */
int rn_chan_sync(rn_chan *c, uint64_t *synced, char *err);

/* The ticket a put made now would be below or at: what a sync must reach. */
uint64_t rn_chan_written(rn_chan *c);

/* Called (from whatever thread frees room) when room appears after a put
 * answered RN_CHAN_FULL. Must be cheap and thread-safe (uv_async_send). */
void rn_chan_on_space(rn_chan *c, void (*fn)(void *arg), void *arg);

/* ---- taking ------------------------------------------------------------- */

typedef struct rn_chan_batch {
    uint64_t seq;       /* first event */
    uint64_t end;       /* one past the last event: pass to rn_chan_done */
    uint32_t count;
    rn_buf events;      /* count events; reused by the next take into it */
} rn_chan_batch;

/* Copy the next whole records after the sink's read cursor, up to max_events
 * events (at least one record) and move the cursor past them. wait_ns: 0
 * do not wait, < 0 wait until there is something or the channel is shut
 * down. 1: b holds a batch; 0: nothing (timeout, or shut down); -1: a read
 * failed (err). */
int rn_chan_take(rn_chan *c, size_t sink, uint32_t max_events, int64_t wait_ns,
                 rn_chan_batch *b, char *err);

/* The sink has delivered everything before end (ends come from its takes, in
 * order). Records every sink is done with leave the channel. */
void rn_chan_done(rn_chan *c, size_t sink, uint64_t end);

/* Called when records arrive for a sink (and at shutdown), for sinks that
 * wait in an event loop rather than in take. It runs under the channel's
 * lock: thread-safe, cheap, and never calling into the channel. fn NULL
 * unregisters; once that returns the old fn is not called again. */
void rn_chan_on_avail(rn_chan *c, size_t sink, void (*fn)(void *arg), void *arg);

/* Wake every waiter: puts answer RN_CHAN_CLOSED, takes stop waiting (they
 * still return what is there). */
void rn_chan_shutdown(rn_chan *c);

/* ---- state --------------------------------------------------------------- */

/* File channel: save the done cursors and the duplicate table, then delete
 * the segments no sink needs. A no-op for memory. */
int rn_chan_checkpoint(rn_chan *c, char *err);

typedef struct rn_chan_stats {
    uint64_t in;            /* events stored (this run) */
    uint64_t duplicates;    /* events not stored again */
    uint64_t pending;       /* events some sink is not done with */
    uint64_t pending_bytes;
    uint64_t recovered;     /* events found pending at open */
    uint64_t next_seq;
    uint64_t capacity, max_bytes;   /* the bounds on pending, pending_bytes */
} rn_chan_stats;

void rn_chan_get_stats(rn_chan *c, rn_chan_stats *st);

/* Events the sink has not taken yet (its lag). */
uint64_t rn_chan_lag(rn_chan *c, size_t sink);

/* sink.c -- chanbuf's sinks: where events go after the channel.
 *
 *   stdout                                       events on standard output
 *   file:///DIR/PREFIX[?roll=SIZE|DURATION]      rolling files, complete or hidden
 *   tcp://HOST:PORT[,HOST:PORT...][?mode=...]    the next hop (man chanbuf-hop.5)
 *   kafka://BROKERS/TOPIC[?key=HEADER&acks=...]  a Kafka topic, through librdkafka
 *
 * Each sink runs in a thread of its own: it takes batches from its cursor in
 * the channel, delivers them, and tells the channel it is done with a batch
 * only when the batch is delivered (written and flushed; acknowledged by the
 * next hop; reported delivered by the Kafka producer), in order. A sink that
 * cannot deliver keeps trying (a file it cannot write, a hop that is down, a
 * broker that refuses) and counts retries; only a closed stdout stops it.
 * The exception: a kafka sink drops (and counts) a record larger than the
 * producer's or the broker's limit, which no retry could deliver.
 *
 * A sink is given a name (NAME=URI; by default the URI itself), which is the
 * key of its cursor in a file channel and what --route refers to. */

enum { RN_SINK_STDOUT, RN_SINK_FILE, RN_SINK_TCP, RN_SINK_KAFKA };

typedef struct rn_sink_spec {
    char name[256];             /* NAME=, or the URI itself */
    char uri[1024];
    int kind;
    /* file */
    char dir[1024], prefix[256];
    uint64_t roll_bytes;        /* 0: none */
    int64_t roll_ns;            /* 0: none */
    /* kafka */
    char brokers[512], topic[256], key[128];
    char acks[8];               /* "all", "1", "0" */
    char note[512];             /* for the user, when not empty: an old spelling
                                   in the URI, or one whose meaning changed */
} rn_sink_spec;

/* "[NAME=]URI", as --sink takes it. */
int rn_sink_parse(const char *arg, rn_sink_spec *spec, char *err);

/* Which events a sink gets (the multiplexing selector): those whose header
 * has one of vals; a default sink gets those whose header has none of the
 * values any route names (or no such header). No filter: every event. */
typedef struct rn_sink_filter {
    const char *header;         /* NULL: every event */
    size_t nvals;
    const char **vals;          /* the values routed to this sink */
    size_t nall;
    const char **all;           /* every routed value (for a default sink) */
    int is_default;
} rn_sink_filter;

typedef struct rn_sink rn_sink;

typedef struct rn_sink_opts {
    rn_chan *chan;
    size_t index;               /* the sink's cursor in chan */
    uint32_t batch;             /* events per take */
    rn_format fmt;              /* stdout and file sinks */
    int fsync;                  /* file sink: fsync each batch before done */
    rn_sink_filter filter;
    const struct rn_kprops *kprops; /* kafka sinks: the user's librdkafka
                                       properties (kafka/kafka.h), or NULL */
    /* From the sink's thread. */
    void (*on_warn)(void *data, const char *msg);
    /* The sink has stopped for good (stdout closed, status RN_EPIPE, or failed:
     * status -1); from the sink's thread. */
    void (*on_fail)(void *data, rn_sink *s, int status);
    void *data;
} rn_sink_opts;

/* Recover what a previous run left (a file sink's unfinished file), then
 * start the thread. */
rn_sink *rn_sink_start(const rn_sink_spec *spec, const rn_sink_opts *o, char *err);

/* Ask the sink to stop: it finishes the batch in hand if it can do so at
 * once, gives up on what it cannot (it stays pending in the channel), closes
 * its output (a file sink completes its file), and its thread ends. Call
 * rn_chan_shutdown first so that a waiting take returns. */
void rn_sink_stop(rn_sink *s);

/* Wait for the thread to end (NULL: nothing). Its counters stay readable. */
void rn_sink_join(rn_sink *s);
void rn_sink_free(rn_sink *s);

const char *rn_sink_name(const rn_sink *s);
uint64_t rn_sink_out(const rn_sink *s);        /* events delivered */
uint64_t rn_sink_retries(const rn_sink *s);    /* deliveries tried again */
uint64_t rn_sink_dropped(const rn_sink *s);    /* kafka: records over the size limit */

/* agent.c -- chanbuf's agent: a source (standard input, or hop senders on a
 * listening socket), the channel, its sinks, and a clean stop (Flume's
 * agent, for one channel).
 *
 * A batch from a hop is acknowledged once it is in the channel: at once for
 * a memory channel and for a file channel with a periodic fsync (the write
 * has reached the kernel, which survives kill -9), after an fsync that
 * covers it with fsync_always. When the channel is full the agent stops
 * reading (block: TCP flow control and the pipe push back) or drops and
 * counts the batch (drop; a hop sender is told with status "dropped").
 *
 * Stopping (rn_agent_stop, or the end of standard input): no more input;
 * wait until the sinks have delivered everything pending (at the end of
 * input: however long that takes; after rn_agent_stop: at most drain_ns,
 * and a second rn_agent_stop ends the wait), then stop the sinks, save the
 * channel (a file channel keeps what is left for the next run; a memory
 * channel reports it as lost), close. uv_run returns when all is closed. */

typedef struct rn_route {
    const char *header, *value, *sink;
} rn_route;

/* "HEADER=VALUE:SINK_NAME" against the sinks' names. The strings point into
 * a copy held in *keep (free it after the agent). */
int rn_route_parse(const char *arg, const rn_sink_spec *sinks, size_t nsinks, rn_route *r,
                   char **keep, char *err);

typedef struct rn_agent rn_agent;

typedef struct rn_agent_opts {
    const char *listen;         /* "HOST:PORT"; NULL: read standard input */
    const char *dir;            /* NULL: memory channel */
    uint64_t capacity, max_bytes;
    uint32_t batch;             /* events per batch from stdin and per take */
    int fsync_always;           /* else fsync every fsync_ns */
    int64_t fsync_ns;
    int drop;                   /* when full: drop instead of block */
    rn_format fmt;              /* stdout and file sinks */
    const rn_sink_spec *sinks;
    size_t nsinks;
    const rn_route *routes;     /* all of one header */
    size_t nroutes;
    int64_t drain_ns;           /* how long rn_agent_stop waits for the sinks */
    const struct rn_kprops *kprops; /* kafka sinks' librdkafka properties, or NULL */
    /* The hop port's limits (rn_hop_server_opts; 0: its defaults). */
    size_t max_conns, max_unread, max_partial;
    int64_t idle_ms;            /* < 0: never */
    /* Warnings, from any thread. */
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_agent_opts;

rn_agent *rn_agent_new(uv_loop_t *loop, const rn_agent_opts *o, char *err);

/* "127.0.0.1:4141" (the port bound, with port 0), or NULL. */
const char *rn_agent_address(const rn_agent *a);

/* SIGTERM: see above. */
void rn_agent_stop(rn_agent *a);

/* "in=N out.NAME=N ... pending=N dropped=N retries=N duplicates=N" */
void rn_agent_counters(rn_agent *a, char *buf, size_t len);

/* Events dropped: by --when-full drop, and records a sink can never
 * deliver (the "dropped" counter). */
uint64_t rn_agent_dropped(rn_agent *a);

/* For Prometheus, named PREFIX_...: events_in_total, duplicates_total,
 * events_dropped_total (the channel was full, --when-full drop),
 * events_pending, bytes_pending, events_recovered, capacity_events,
 * capacity_bytes; per sink (label sink=NAME) events_out_total,
 * sink_dropped_total, retries_total, lag (events it has not taken yet);
 * with --listen, the hop receiver's as PREFIX_hop_... */
void rn_agent_metrics(rn_agent *a, rn_prom *p, const char *prefix);

/* After uv_run returned: 0, or 1 when input or a sink failed. */
int rn_agent_status(const rn_agent *a);

/* After uv_run returned: close the channel (a file channel's checkpoint). */
int rn_agent_free(rn_agent *a, char *err);

#endif
