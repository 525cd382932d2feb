/* chan.h -- chanbuf's channel: events between the sources that put them and
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
#ifndef RN_CHAN_H
#define RN_CHAN_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define RN_CHAN_MAX_SINKS 32

/* rn_chan_put's answers besides 0 (stored) and -1 (error) */
#define RN_CHAN_DUP 1       /* seen before: not stored again */
#define RN_CHAN_FULL 2      /* no room now (wait = 0) */
#define RN_CHAN_CLOSED 3    /* rn_chan_shutdown was called */

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
 * earlier copy may not be synced yet). -1: the write failed (err). */
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
} rn_chan_stats;

void rn_chan_get_stats(rn_chan *c, rn_chan_stats *st);

/* Events the sink has not taken yet (its lag). */
uint64_t rn_chan_lag(rn_chan *c, size_t sink);

#endif
