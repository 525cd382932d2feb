/* broker.h -- the broker (brokerd): Kafka-style partition logs on disk,
 * and the server that speaks the Kafka protocol over them. */
#ifndef RN_BROKER_BROKER_H
#define RN_BROKER_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

/* klog.c -- one partition's log on disk in Kafka's layout: segments of
 * RecordBatch v2 bytes named by base offset, sparse offset and time indexes,
 * roll, retention, and recovery that truncates a torn tail.
 *
 * Directory layout (compatible with Kafka's own):
 *   00000000000000000000.log        batches as produced, offsets assigned and max
 *                                   timestamp recomputed in place (as Kafka does)
 *   00000000000000000000.index      sparse: 4-byte relative offset (the batch's last
 *                                   offset), 4-byte position, about every index_interval bytes
 *   00000000000000000000.timeindex  8-byte max timestamp so far (ms), 4-byte relative
 *                                   offset of the batch that first reached it
 *   recovery-point                  text: offset up to which everything was fsynced,
 *                                   the log start offset, and whether the close was clean
 *
 * Threads: call everything from one thread (the broker's loop), except that
 * rn_klog_sync() may run on a worker thread while that thread appends, reads
 * and maintains; only rn_klog_close() must not overlap it.
 * Descriptors: three per segment stay open (.log for rn_klog_read's slices,
 * both indexes for lookups).
 *
 * Errors follow core.h: RN_ERR with the reason in err (RN_ERRLEN bytes, NULL
 * allowed), or, where a function says so, RN_ECORRUPT (a batch failed
 * validation: Kafka's CORRUPT_MESSAGE) or RN_ERANGE (an offset outside the
 * log: OFFSET_OUT_OF_RANGE), with the reason in err too. */

typedef struct rn_klog rn_klog;

typedef struct rn_klog_opts {
    uint64_t segment_bytes;    /* roll when the active segment would exceed this (default 1 GiB;
                                  at most 2 GiB - 1 since index positions are 4 bytes) */
    int64_t  segment_age_ns;   /* roll when the active segment's first batch is older (0: never) */
    int64_t  retention_ns;     /* delete closed segments whose newest timestamp is older (0: never) */
    uint64_t retention_bytes;  /* delete oldest closed segments while the log is bigger (0: never) */
    uint32_t index_interval;   /* bytes between sparse index entries (default 4096) */
    uint64_t max_inflated;     /* a compressed batch whose records decompress beyond
                                  this is refused as corrupt (default 256 MiB) */
} rn_klog_opts;

/* Size of the fixed RecordBatch v2 header, up to and including the record count. */
#define RN_KLOG_BATCH_HEADER 61

/* Open (creating dir if missing) and recover. o may be NULL for defaults; zero
 * fields take defaults. What recovery did is in rn_klog_recovery_note().
 * Opens on a full disk too: the state file it cannot rewrite is left, when
 * it says the same, or removed (the next open then validates everything). */
int rn_klog_open(const char *dir, const rn_klog_opts *o, rn_klog **out, char *err);

/* Clean close: fsyncs everything and records the fact, so the next open trusts
 * the files instead of re-validating the active segment. NULL is a no-op. */
void rn_klog_close(rn_klog *l);

/* Append the records field of a Produce request (one or more RecordBatch v2).
 * A write that fails (ENOSPC, EDQUOT, EFBIG, EIO) returns RN_ERR with nothing
 * of the request visible or kept: the segment is cut back to its last whole
 * batch, the end does not move, and the next append goes where it would have.
 * Every batch is validated before anything is written: bounds, batchLength
 * >= 49, magic 2, CRC-32C, a known codec (none, gzip, snappy, lz4, zstd), a
 * record count >= 1 with lastOffsetDelta = count - 1, and every record read
 * as Kafka reads it (lengths within the record and the batch, offset deltas
 * 0..count-1, nothing after the last); a compressed batch (gzip, snappy raw
 * or xerial-framed, the lz4 frame format, zstd) is decompressed, through a
 * fixed window (a snappy block whole) and up to max_inflated bytes, to read
 * its records. On failure
 * returns RN_ECORRUPT and err names the batch's byte offset in the request
 * (and the record, where one is at fault).
 * Offsets are written into `batches` in place; *base_offset gets the first one.
 * So is each batch's maxTimestamp, recomputed from its records as Kafka does
 * (producers may send -1 there), with the CRC to match.
 * now_ms is the append time: it starts a segment's age for roll by age and
 * dates segments whose batches carry no timestamp (-1) for retention.
 * No fsync here: see rn_klog_sync(). */
int rn_klog_append(rn_klog *l, unsigned char *batches, size_t len, int64_t now_ms,
                   int64_t *base_offset, char *err);

/* fsync data and indexes of every segment written since the last sync (the
 * active one and any rolled since), then save the recovery point: the end as
 * it was when the sync began. Safe on a worker thread (see above). A state
 * file that cannot be written (a full disk) is not an error: the data is on
 * disk, and the old recovery point stays true.
 * A failed fsync stops the log for good (see rn_klog_failed). */
int rn_klog_sync(rn_klog *l, char *err);

/* Whether an fsync failed. Then nothing since the last good sync is known to
 * be on disk, and a later fsync that succeeds would not prove otherwise (the
 * kernel may drop pages it failed to write and report that once): appends
 * and syncs fail from then on (RN_ERR), reads still work, close does not
 * call the log clean, and the next open validates everything written since
 * the last good sync. Kafka takes the log directory offline the same way. */
int rn_klog_failed(rn_klog *l);

int64_t rn_klog_start(const rn_klog *l);        /* log start offset */
int64_t rn_klog_end(const rn_klog *l);          /* next offset to assign (= high watermark) */

/* Whole batches from one segment for a Fetch: fd and byte range, starting at
 * the batch holding `offset`, up to max_bytes but always at least one whole
 * batch. Never spans two segments. offset == end: len 0. offset < start or
 * > end: RN_ERANGE. The fd belongs to the log and stays valid until
 * rn_klog_maintain() deletes the segment or rn_klog_close(). codec is the
 * first batch's (attributes & 7; -1 when len is 0) and avail the bytes from
 * pos to the end of the log, in all segments (what Kafka counts against a
 * fetch's min_bytes). */
typedef struct rn_klog_slice {
    int fd;
    uint64_t pos;
    size_t len;
    int codec;
    uint64_t avail;
} rn_klog_slice;
int rn_klog_read(rn_klog *l, int64_t offset, size_t max_bytes, rn_klog_slice *out, char *err);

/* ListOffsets by time, as Kafka's fetchOffsetByTimestamp: the first record at
 * or above the log start stamped ts_ms or later, its offset and timestamp in
 * *offset and *rec_ts; both -1 when no record is that new. Batch max
 * timestamps are recomputed on append, so that the search goes straight to
 * the batch, and inside it to the record (a compressed batch is
 * decompressed).
 * Kafka's sentinels work too: -1 (latest) gives end, -2 (earliest) gives
 * start, with *rec_ts -1. 0, or RN_ERR/RN_ENOMEM with err (a segment or an
 * index could not be read). */
int rn_klog_offset_for_time(rn_klog *l, int64_t ts_ms, int64_t *offset, int64_t *rec_ts,
                            char *err);

/* Roll by age (never an empty segment), then apply retention to closed
 * segments, oldest first, stopping at the first one kept: by time (newest
 * batch timestamp, else last append time), by bytes (as Kafka: a segment goes
 * only if what remains is still >= retention_bytes), and segments wholly
 * below the log start offset. Returns how many segments were deleted, or
 * RN_ERR (a roll failed). */
int rn_klog_maintain(rn_klog *l, int64_t now_ns, char *err);

/* Bytes of .log files (what retention_bytes measures). */
uint64_t rn_klog_size(const rn_klog *l);

/* ---- extras ------------------------------------------------------------- */

/* What the last open's recovery did, for the caller to log: "" when there was
 * nothing to report, else e.g. "00000000000000000000.log: truncated 1234 bytes
 * at byte offset 5678: CRC mismatch". Valid until close. */
const char *rn_klog_recovery_note(const rn_klog *l);

/* Bytes that recovery cut off torn or corrupt tails (0 after a clean close). */
uint64_t rn_klog_recovery_truncated(const rn_klog *l);

/* DeleteRecords: move the log start offset forward to `offset` (<= end) and
 * persist it; reads below it become RN_ERANGE and the next maintain deletes
 * segments wholly below it. RN_ERANGE when offset is negative or beyond the
 * end, RN_ERR when the state file could not be written. */
int rn_klog_advance_start(rn_klog *l, int64_t offset, char *err);

/* Number of segments (closed + active). */
size_t rn_klog_segments(const rn_klog *l);

/* broker.c -- brokerd's server: the Kafka protocol on one libuv loop over
 * partitions stored by klog, with consumer groups coordinated here.
 *
 * One node (id 0) is the whole cluster: every partition's leader, the
 * controller and every group's coordinator. It advertises the address it
 * listens on. Requests on a connection are processed as they arrive and
 * answered in arrival order: a Fetch that long-polls, a Produce waiting for
 * its fsync or a JoinGroup waiting for the rebalance holds back the answers
 * after it on that connection, as Kafka does.
 *
 * lib code: nothing is printed; what an operator should see (a connection
 * closed for a malformed request, a storage error) goes to on_log. */

typedef struct rn_broker rn_broker;

enum {
    RN_FLUSH_NONE,      /* page cache only: the OS writes back */
    RN_FLUSH_ALWAYS,    /* fsync before acknowledging (group commit, off-loop) */
    RN_FLUSH_INTERVAL,  /* fsync what was appended every flush_interval_ns */
};

typedef struct rn_broker_opts {
    const char *host;           /* the numeric address listened on */
    int port;                   /* 0: any free port (see rn_broker_port) */
    /* The host and port given to clients in Metadata and FindCoordinator
     * (Kafka's advertised.listeners). NULL: host, or the machine's name when
     * host is a wildcard (0.0.0.0, ::), which a client elsewhere could not
     * use; 0: the port listened on. */
    const char *advertise_host;
    int advertise_port;
    const char *data_dir;
    int32_t partitions;         /* for auto-created topics */
    int32_t max_partitions;     /* in all topics: creating more is refused (0: no limit
                                   but 100000 a topic); each takes 4 descriptors or more */
    int auto_create;
    int32_t max_group_members; /* JoinGroup beyond it: GROUP_MAX_SIZE_REACHED (0: no limit) */
    int64_t group_initial_delay_ns; /* an empty group's first rebalance waits this long
                                   for more members (Kafka's group.initial.rebalance.delay.ms);
                                   each join within it waits again, up to the rebalance
                                   timeout; 0: none */
    rn_klog_opts klog;
    int flush;                  /* RN_FLUSH_* */
    int64_t flush_interval_ns;
    size_t max_request;         /* larger requests close the connection */
    /* What peers can make the server hold (0 takes the default):
     * max_conn_buffer: a connection is not read (muted, as Kafka mutes a
     *   channel) while its unanswered requests and its answers not yet sent
     *   hold more than this (default 1 MiB);
     * max_partial: bytes of partial requests larger than one read, across
     *   all connections (Kafka's queued.max.request.bytes, default 256 MiB):
     *   a connection whose request would go over it is not read until room
     *   is made by those completing theirs;
     * max_connections: more are accepted and closed at once (0: no cap);
     * idle_timeout_ns: a connection with no bytes read or written for this
     *   long and no request the broker holds is closed (0: never). */
    size_t max_conn_buffer;
    size_t max_partial;
    int max_connections;
    int64_t idle_timeout_ns;
    void (*on_log)(void *data, const char *msg);
    void *data;
} rn_broker_opts;

/* Open the data directory (created if missing) and every topic in it. */
rn_broker *rn_broker_new(uv_loop_t *loop, const rn_broker_opts *o, char *err);
/* Bind and listen. */
int rn_broker_start(rn_broker *b, char *err);
int rn_broker_port(const rn_broker *b);
/* The host clients are told to connect to (see advertise_host). */
const char *rn_broker_advertised_host(const rn_broker *b);
/* The port clients are told to connect to: advertise_port or the port. */
int rn_broker_advertised_port(const rn_broker *b);
/* Clean shutdown: stop accepting, finish what is in flight (long polls are
 * answered now), flush and close every log, then call done. */
void rn_broker_stop(rn_broker *b, void (*done)(void *data), void *data);
/* Whether a storage error (a failed fsync, a log that would not open) was
 * seen: the exit status should say so. An append that the disk refused (a
 * full disk) is not one: it was answered KAFKA_STORAGE_ERROR, never
 * acknowledged. */
int rn_broker_failed(const rn_broker *b);
const rn_counters *rn_broker_counters(const rn_broker *b);
/* For Prometheus, named PREFIX_...: the counters (connections_total,
 * requests_total, produced_batches_total, produced_bytes_total,
 * fetched_bytes_total, bad_requests_total, group_commits_total,
 * storage_errors_total); connections and topics now; per partition (labels
 * topic, partition) partition_log_end_offset, partition_log_start_offset,
 * partition_size_bytes, partition_segments; per consumer group (label group)
 * group_members, and per partition it committed (group, topic, partition)
 * group_committed_offset and group_lag (the log end offset less the
 * committed one, for a partition that exists). */
void rn_broker_metrics(rn_broker *b, rn_prom *p, const char *prefix);
/* After stop's done (or without start): free everything. */
void rn_broker_free(rn_broker *b);

#endif
