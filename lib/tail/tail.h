/* tail.h -- the tail engine (logtail): follow files across rotation,
 * keep their positions in a position file, and send what it reads over
 * a hop with positions that advance only for acknowledged batches. */
#ifndef RN_TAIL_TAIL_H
#define RN_TAIL_TAIL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "hop/hop.h"

/* posfile.c -- logtail's position file: how far each followed file has been
 * read and written out, keyed by file identity, saved atomically.
 *
 * A file's identity is its device and inode plus a fingerprint of its first
 * bytes (up to RN_FP_MAX): an inode number the filesystem hands out again after
 * a delete is then not mistaken for the old file, and a file truncated and
 * rewritten in place (copytruncate) is noticed as new.
 *
 * Format (text, one entry a line, versioned by its first line):
 *     runnel-pos 1
 *     DEV INO FPLEN FPHASH OFFSET PATH
 * PATH is informative (where the file was last seen) and %XX-escapes bytes
 * <= 0x20, '%' and 0x7f. Saving writes a temporary file in the same
 * directory, fsyncs it, renames it over the old one and fsyncs the directory,
 * so a crash at any moment leaves either the old or the new positions. */

#define RN_FP_MAX 256

typedef struct rn_fileid {
    uint64_t dev, ino;
    uint32_t fplen;     /* how many leading bytes the fingerprint covers */
    uint64_t fphash;    /* FNV-1a of those bytes */
} rn_fileid;

typedef struct rn_posentry {
    rn_fileid id;
    uint64_t offset;
    char *path;         /* owned by the entry set it belongs to */
} rn_posentry;

typedef struct rn_posfile {
    size_t n, cap;
    rn_posentry *e;
} rn_posfile;

/* Identity of an open file: fstat plus a fingerprint of min(size, RN_FP_MAX)
 * leading bytes. */
int rn_fileid_of(int fd, rn_fileid *id, char *err);

/* 1 when fd is the file id describes (same dev/ino and the same leading
 * fplen bytes), 0 when not, -1 on a read error. */
int rn_fileid_match(const rn_fileid *id, int fd, char *err);

/* Load path into pf (zero-initialised). A missing file is an empty set; a
 * malformed one is an error naming the line. */
int rn_posfile_load(rn_posfile *pf, const char *path, char *err);

/* The entry for (dev, ino), or NULL. */
rn_posentry *rn_posfile_find(rn_posfile *pf, uint64_t dev, uint64_t ino);

/* Add an entry (path copied). -1 when out of memory. */
int rn_posfile_add(rn_posfile *pf, const rn_fileid *id, uint64_t offset,
                   const char *path);

/* Atomically replace path with the entries of pf. */
int rn_posfile_save(const rn_posfile *pf, const char *path, char *err);

/* The outcome r (err) of a save that is tried again at every interval: a
 * failure (a full disk: the old file stays whole) is said once, and so is
 * the first save that works after it. *failing carries this between calls
 * and is 1 while the last save failed. Returns r. */
int rn_posfile_said(int r, const char *err, const char *path, int *failing,
                    void (*on_warn)(void *data, const char *msg), void *data);

void rn_posfile_clear(rn_posfile *pf);   /* drop entries, keep the allocation */
void rn_posfile_free(rn_posfile *pf);

/* A position file saved off the loop thread, in libuv's pool: a save is two
 * fsyncs (10-30 ms on a quiet disk, far more on a busy one), and on the loop
 * thread it held up every line read meanwhile. One save runs at a time; one
 * queued while it runs waits, and a newer one replaces it. A save made
 * directly (the last, at a stop) waits for the one running and is never
 * undone by an older one that runs after it, nor its result by that one's
 * (a pool's save it superseded says nothing). The caller allocates it, and
 * destroys it once the loop has run its work out (uv_run to the end).
 * A failure in the pool is said through rn_posfile_said with failing (1
 * while the last save failed); the caller says its own calls' the same way. */
typedef struct rn_possaver {
    uv_loop_t *loop;
    const char *path;
    void (*on_warn)(void *data, const char *msg);
    void *data;
    uv_work_t work;
    pthread_mutex_t mu;         /* one write at a time; superseded */
    rn_buf running, waiting;    /* the file's bytes */
    int busy;                   /* a save is in the pool (until its after callback) */
    int has_waiting;            /* waiting holds a save to run after it */
    int superseded;             /* a direct save was written since it was queued */
    int r, failing;
    char err[RN_ERRLEN];
} rn_possaver;

int rn_possaver_init(rn_possaver *s, uv_loop_t *loop, const char *path,
                     void (*on_warn)(void *data, const char *msg), void *data);
/* Save pf (encoded now: the caller keeps it) in the pool. RN_ERR: out of
 * memory, nothing queued. */
int rn_possaver_queue(rn_possaver *s, const rn_posfile *pf, char *err);
/* Save pf now, on this thread, as rn_posfile_save. */
int rn_possaver_save(rn_possaver *s, const rn_posfile *pf, char *err);
void rn_possaver_destroy(rn_possaver *s);

/* tail.c -- the follow engine behind logtail: files followed by name across
 * rotation, globs expanded again, stdin and commands as line sources.
 *
 * Files are tracked by identity (device, inode), not by name. A name that
 * comes to point at another inode (rename rotation, delete and re-create)
 * means the old file is read to its end before the new one is read from 0;
 * the old one stays open and is read while it still grows (a writer that has
 * not reopened yet), until it has been idle for rotate_wait. A file that
 * shrank below the read offset, or whose first bytes changed, was truncated
 * (copytruncate): it is read again from 0. Change is noticed through inotify
 * on each watched directory (libuv fs events) and, as a fallback, by a
 * periodic rescan that also expands globs again.
 *
 * Lines go to on_line in file order; a partial last line is held until its
 * newline arrives (for a stream, until EOF). A line longer than max_line is
 * cut to max_line bytes and the rest of it skipped. Positions (with pos_path)
 * are the offset after the last line handed to on_line, saved only after
 * on_flush says everything handed over has been written. */

typedef struct rn_tail rn_tail;

typedef struct rn_line {
    const char *source;     /* the file's path, "stdin", or the command */
    size_t source_len;
    uint64_t source_id;     /* changes whenever source does: a cache key */
    int is_file;            /* offset is meaningful */
    uint64_t offset;        /* of the line's first byte in the file */
    const char *data;       /* without its '\n'; valid during the callback */
    size_t len;
    int64_t ts;             /* when it was read, ns since the epoch */
    int cut;                /* longer than max_line: cut to max_line */
} rn_line;

typedef struct rn_tail_opts {
    int start_at_end;       /* files present at start with no position: at their end */
    int once;               /* read everything to its current end, then stop */
    size_t max_line;
    int64_t scan_ns;        /* rescan interval (globs, rotation, fallback) */
    int64_t rotate_wait_ns; /* read a rotated-away file until idle this long */
    int64_t commit_ns;      /* position save interval */
    int64_t restart_ns;     /* delay before a command is run again */
    const char *pos_path;   /* NULL: no position file */
    int (*on_line)(void *data, const rn_line *line);  /* < 0 stops the engine */
    /* Optional, for output that is the bytes themselves: p[0..n) holds nlines
     * complete lines, each with its '\n', none cut. When set it is called
     * instead of on_line wherever whole runs of lines allow it. */
    int (*on_lines)(void *data, const char *p, size_t n, size_t nlines);
    int (*on_flush)(void *data);                      /* < 0: do not save */
    void (*on_warn)(void *data, const char *msg);
    /* Optional: the engine has stopped (rn_tail_stop, or nothing left). */
    void (*on_stop)(void *data);
    /* Positions are loaded from pos_path but never saved by the engine: the
     * caller saves rn_tail_positions when its output is safe (an
     * acknowledged hop). */
    int manual_commit;
    void *data;
} rn_tail_opts;

rn_tail *rn_tail_new(uv_loop_t *loop, const rn_tail_opts *o, char *err);

/* Sources, added before rn_tail_start. A pattern is a path or a glob. */
int rn_tail_add_path(rn_tail *t, const char *pattern, char *err);
int rn_tail_add_stdin(rn_tail *t, char *err);
int rn_tail_add_exec(rn_tail *t, const char *cmd, int restart, char *err);

/* Load positions, open what exists, start watching and reading. The engine
 * stops by itself when nothing is left to follow (--once, or only streams
 * that ended); then uv_run returns. */
int rn_tail_start(rn_tail *t, char *err);

/* Stop reading, save positions (after on_flush), close every handle. Safe to
 * call more than once; run the loop afterwards so that handles close. */
void rn_tail_stop(rn_tail *t);

/* Save positions now (after on_flush). */
int rn_tail_commit(rn_tail *t, char *err);

/* Stop reading (pause 1) or read on (0), e.g. while the output is backed
 * up. Files keep being watched; nothing is lost, only delayed. */
void rn_tail_pause(rn_tail *t, int pause);

/* The position of every followed file after the last line handed out, into
 * pf (cleared first). Exact only between turns of the loop (a uv_check
 * callback), not from inside on_line. */
struct rn_posfile;
int rn_tail_positions(rn_tail *t, struct rn_posfile *pf, char *err);

/* Something could not be read, a command failed, or the last save of the
 * positions failed: the tool exits 1. */
int rn_tail_failed(const rn_tail *t);

const rn_counters *rn_tail_counters(const rn_tail *t);

/* For Prometheus: per source followed now (a file, labelled file=PATH, the
 * name it was found under; a command, command=CMD; stdin, unlabelled)
 * PREFIX_lines_read_total, PREFIX_bytes_read_total, and for files
 * PREFIX_lag_bytes (its size less what was read); PREFIX_files (open now),
 * PREFIX_lines_cut_total, PREFIX_rotations_total, PREFIX_truncations_total.
 * A source's counts start when it is first followed and go when nothing
 * carries its name any more (the file was deleted, or renamed to a name
 * not followed, and read to its end). */
void rn_tail_metrics(rn_tail *t, rn_prom *p, const char *prefix);

/* After uv_run has returned. */
void rn_tail_free(rn_tail *t);

/* tailhop.c -- logtail --to: events from the follow engine go over a hop
 * (man/chanbuf-hop.5), and the position file advances only for batches the
 * receiver has acknowledged.
 *
 * Events are gathered into a batch until the end of the loop's turn (or
 * until the batch is full, when it goes out without positions). At the end
 * of a turn the engine's positions are exact; they ride with the turn's last
 * batch, and are saved (every commit_ns) once that batch and every batch
 * before it are acknowledged. So after a kill -9 of logtail, the receiver,
 * or both, a restart reads again from a position whose lines the receiver
 * had committed: nothing is lost; what was in flight may come twice.
 *
 * While too much is unacknowledged (a receiver that is slow or down) the
 * engine is paused: memory stays bounded and the files wait on disk. */

typedef struct rn_tailhop rn_tailhop;

typedef struct rn_tailhop_opts {
    rn_hop_url url;
    const char *pos_path;       /* NULL: no positions */
    uint32_t batch;             /* events per batch at most; 0: 1000 */
    int64_t commit_ns;          /* position save interval; 0: 1 s */
    int64_t drain_ns;           /* how long rn_tailhop_stop waits for acks */
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_tailhop_opts;

rn_tailhop *rn_tailhop_new(uv_loop_t *loop, const rn_tailhop_opts *o, char *err);

/* The engine whose positions and pausing the hop manages (set before
 * rn_tail_start; the engine needs manual_commit). */
void rn_tailhop_attach(rn_tailhop *h, rn_tail *t);

/* An event to send (encoded at once; ev need not outlive the call). -1 only
 * when out of memory. */
int rn_tailhop_put(rn_tailhop *h, const rn_event *ev);

/* The end of a turn of the loop (from a uv_check): send what was gathered,
 * with the positions. */
void rn_tailhop_turn(rn_tailhop *h);

/* The engine has stopped: send the rest and wait for every acknowledgement,
 * then save the positions and close. A stop that was asked for
 * (rn_tailhop_stop) waits at most drain_ns; the end of input (--once) waits
 * as long as it takes. */
void rn_tailhop_finish(rn_tailhop *h);

/* SIGTERM: bound the wait to drain_ns; a second call ends it now. */
void rn_tailhop_stop(rn_tailhop *h);

/* batches, events, acked, retries, duplicates, dropped, ... (the sender's) */
const rn_counters *rn_tailhop_counters(const rn_tailhop *h);

/* The sender's metrics (rn_hop_sender_metrics) as PREFIX_hop_... */
void rn_tailhop_metrics(const rn_tailhop *h, rn_prom *p, const char *prefix);

/* 1 when events were left unacknowledged at the end (they will be read
 * again from the positions). */
int rn_tailhop_unfinished(const rn_tailhop *h);

/* 1 when the last save of the positions (at the end) failed. */
int rn_tailhop_failed(const rn_tailhop *h);

/* After uv_run returned. */
void rn_tailhop_free(rn_tailhop *h);

#endif
