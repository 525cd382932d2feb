/* tail.h -- the follow engine behind logtail: files followed by name across
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
#ifndef RN_TAIL_H
#define RN_TAIL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "counters.h"

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

/* Something could not be read, or a command failed: the tool exits 1. */
int rn_tail_failed(const rn_tail *t);

const rn_counters *rn_tail_counters(const rn_tail *t);

/* After uv_run has returned. */
void rn_tail_free(rn_tail *t);

#endif
