/* tail.c -- follow files by name across rotation, and read stdin and commands,
 * as lines. See tail.h for the model. */
#include "tail/tail.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

#define READ_BUF (128 * 1024)
/* Bytes read from one file before the others get their turn. */
#define READ_BUDGET (1024 * 1024)
#define STREAM_BUF (64 * 1024)

/* What was read from one name (a path, a command, stdin), for the metrics:
 * the files that carry the name share it, and it goes when the last does. */
enum { SRC_FILE, SRC_COMMAND, SRC_STDIN };

typedef struct srcstat {
    struct srcstat *next;
    char *name;
    int kind;
    uint64_t lines, bytes;
    uint64_t lag;           /* scratch, while the metrics are written */
    size_t refs;
} srcstat;

/* Lines are split out of chunks; a partial line waits in carry. */
typedef struct splitter {
    uint64_t id;            /* the rn_line source_id of what is split */
    srcstat *st;            /* NULL when it could not be had (no memory) */
    rn_buf carry;
    uint64_t carry_off;     /* file offset of carry's first byte */
    int skipping;           /* inside the cut-off rest of an over-long line */
} splitter;

typedef struct tfile {
    struct tfile *next;
    char *path;             /* the name it was last seen under */
    int fd;
    rn_fileid id;
    uint64_t off;           /* next byte to read */
    uint64_t limit;         /* --once: the size when it was opened */
    splitter sp;
    int64_t last_growth;    /* monotonic ns; for closing rotated files */
    unsigned seen : 1, rotated : 1;
} tfile;

typedef struct pattern {
    struct pattern *next;
    char *pat;
    int is_glob;
    int found;          /* it named or matched a file once */
    int warned;         /* said that it names nothing (yet) */
} pattern;

typedef struct watch {
    struct watch *next;
    rn_tail *t;
    char *dir;
    uv_fs_event_t h;
    int active;             /* started and not failed */
    int initialised;
} watch;

/* A path we warned about, so that the warning is not repeated every scan. */
typedef struct badpath {
    struct badpath *next;
    char *path;
    int seen;
} badpath;

enum { ST_STDIN_FILE, ST_STDIN_STREAM, ST_EXEC };

typedef struct tstream {
    struct tstream *next;
    rn_tail *t;
    int kind;
    char *name;             /* "stdin" or the command */
    int restart;
    splitter sp;
    uint64_t off;
    union {
        uv_pipe_t pipe;
        uv_tty_t tty;
    } io;
    uv_process_t proc;
    uv_timer_t timer;       /* restart delay */
    int io_open, proc_open, timer_open;
    int eof, exited, done;
    char buf[STREAM_BUF];
} tstream;

struct rn_tail {
    uv_loop_t *loop;
    rn_tail_opts o;
    pattern *patterns;
    tfile *files;
    watch *watches;
    badpath *bad;
    tstream *streams;
    rn_posfile pos;
    uv_timer_t scan_timer, commit_timer;
    uv_idle_t idle;
    int inited, started, stopping, failed, handles_open, paused;
    rn_possaver saver;      /* the positions, saved off the loop thread */
    uint64_t next_id;       /* for splitter ids */
    int scan_pending;       /* a directory changed: rescan on the next turn */
    char *rbuf;
    srcstat *stats;
    rn_counters counters;
    uint64_t *c_lines, *c_bytes, *c_cut, *c_rotations, *c_truncations;
};

/* A warning, through the owner's on_warn. */
static void warnf(rn_tail *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warnf(rn_tail *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rn_vwarn_to(t->o.on_warn, t->o.data, NULL, fmt, ap);
    va_end(ap);
}

/* ---- what each source read ------------------------------------------------ */

/* The stats of name, shared (NULL when out of memory: not counted). */
static srcstat *stat_get(rn_tail *t, int kind, const char *name)
{
    srcstat *st;
    for (st = t->stats; st; st = st->next)
        if (st->kind == kind && strcmp(st->name, name) == 0) {
            st->refs++;
            return st;
        }
    if (!(st = calloc(1, sizeof *st)) || !(st->name = strdup(name))) {
        free(st);
        return NULL;
    }
    st->kind = kind;
    st->refs = 1;
    st->next = t->stats;
    t->stats = st;
    return st;
}

static void stat_put(rn_tail *t, srcstat *st)
{
    if (!st || --st->refs > 0)
        return;
    srcstat **pp = &t->stats;
    while (*pp != st)
        pp = &(*pp)->next;
    *pp = st->next;
    free(st->name);
    free(st);
}

static void count_read(rn_tail *t, splitter *s, size_t n)
{
    *t->c_bytes += (uint64_t)n;
    if (s->st)
        s->st->bytes += (uint64_t)n;
}

/* ---- line splitting ------------------------------------------------------ */

static int emit(rn_tail *t, const splitter *s, const char *src, size_t srclen,
                int is_file, uint64_t off,
                const char *p, size_t n, int64_t ts, int cut)
{
    rn_line l = { src, srclen, s->id, is_file, off, p, n, ts, cut };
    (*t->c_lines)++;
    if (s->st)
        s->st->lines++;
    if (cut)
        (*t->c_cut)++;
    if (t->o.on_line(t->o.data, &l) < 0) {
        t->stopping = 1;
        return -1;
    }
    return 0;
}

static void carry_reset(splitter *s)
{
    s->carry.len = 0;
    if (s->carry.cap > STREAM_BUF)   /* an over-long line passed: give it back */
        rn_buf_free(&s->carry);
}

/* The number of lines in p[0..n), which ends with '\n', or 0 when one of
 * them is longer than max (and must be cut, line by line). */
static size_t count_lines(const char *p, size_t n, size_t max)
{
    const char *end = p + n;
    size_t lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if ((size_t)(nl - p) > max)
            return 0;
        lines++;
        p = nl + 1;
    }
    return lines;
}

/* Split chunk p[0..n), which starts at offset base, into lines. */
static int split(rn_tail *t, splitter *s, const char *src, int is_file,
                 const char *p, size_t n, uint64_t base, int64_t ts)
{
    size_t max = t->o.max_line, srclen = strlen(src);

    while (n > 0) {
        /* Fast path: whole lines pass on as one run, uncopied. */
        const char *last;
        if (t->o.on_lines && !s->skipping && !s->carry.len
            && (last = memrchr(p, '\n', n))) {
            size_t run = (size_t)(last - p) + 1, lines = count_lines(p, run, max);
            if (lines) {
                *t->c_lines += lines;
                if (s->st)
                    s->st->lines += lines;
                if (t->o.on_lines(t->o.data, p, run, lines) < 0) {
                    t->stopping = 1;
                    return -1;
                }
                p += run;
                n -= run;
                base += run;
                continue;
            }
        }
        const char *nl = memchr(p, '\n', n);
        size_t len = nl ? (size_t)(nl - p) : n, adv = nl ? len + 1 : n;

        if (s->skipping) {
            s->skipping = !nl;
        } else if (s->carry.len) {
            size_t room = max - s->carry.len;
            if (len > room) {
                rn_buf_append(&s->carry, p, room);
                if (emit(t, s, src, srclen, is_file, s->carry_off, s->carry.p, max, ts, 1) < 0)
                    return -1;
                carry_reset(s);
                s->skipping = !nl;
            } else {
                if (rn_buf_append(&s->carry, p, len) < 0) {
                    warnf(t, "%s: out of memory holding a partial line", src);
                    return -1;
                }
                if (nl) {
                    if (emit(t, s, src, srclen, is_file, s->carry_off, s->carry.p, s->carry.len,
                             ts, 0) < 0)
                        return -1;
                    carry_reset(s);
                }
            }
        } else if (len > max) {
            if (emit(t, s, src, srclen, is_file, base, p, max, ts, 1) < 0)
                return -1;
            s->skipping = !nl;
        } else if (nl) {
            if (emit(t, s, src, srclen, is_file, base, p, len, ts, 0) < 0)
                return -1;
        } else {
            if (rn_buf_append(&s->carry, p, len) < 0) {
                warnf(t, "%s: out of memory holding a partial line", src);
                return -1;
            }
            s->carry_off = base;
        }
        p += adv;
        n -= adv;
        base += adv;
    }
    return 0;
}

/* A source ended for good: its partial last line is a line after all. */
static int split_final(rn_tail *t, splitter *s, const char *src, int is_file)
{
    int r = 0;
    if (s->carry.len && !s->skipping)
        r = emit(t, s, src, strlen(src), is_file, s->carry_off, s->carry.p, s->carry.len,
                 rn_now_ns(), 0);
    carry_reset(s);
    s->skipping = 0;
    return r;
}

/* Where a restart should read again: the start of the held partial line. */
static uint64_t consumed(const tfile *f)
{
    return f->sp.carry.len ? f->sp.carry_off : f->off;
}

/* ---- files --------------------------------------------------------------- */

static tfile *find_id(rn_tail *t, uint64_t dev, uint64_t ino)
{
    for (tfile *f = t->files; f; f = f->next)
        if (f->id.dev == dev && f->id.ino == ino)
            return f;
    return NULL;
}

static badpath *find_bad(rn_tail *t, const char *path)
{
    for (badpath *b = t->bad; b; b = b->next)
        if (strcmp(b->path, path) == 0)
            return b;
    return NULL;
}

/* Warn about path once (until it is readable again); the exit status is 1. */
static void bad_path(rn_tail *t, const char *path, const char *why)
{
    badpath *b = find_bad(t, path);
    t->failed = 1;
    if (b) {
        b->seen = 1;
        return;
    }
    warnf(t, "%s: %s", path, why);
    b = calloc(1, sizeof *b);
    if (b && (b->path = strdup(path))) {
        b->seen = 1;
        b->next = t->bad;
        t->bad = b;
    } else {
        free(b);
    }
}

static void bad_forget(rn_tail *t, const char *path)
{
    for (badpath **bp = &t->bad; *bp; bp = &(*bp)->next) {
        badpath *b = *bp;
        if (strcmp(b->path, path) == 0) {
            *bp = b->next;
            free(b->path);
            free(b);
            return;
        }
    }
}

static void file_close(rn_tail *t, tfile *f)
{
    tfile **pp = &t->files;
    while (*pp != f)
        pp = &(*pp)->next;
    *pp = f->next;
    if (f->fd >= 0)
        close(f->fd);
    rn_buf_free(&f->sp.carry);
    stat_put(t, f->sp.st);
    free(f->path);
    free(f);
}

static void truncated(rn_tail *t, tfile *f, const char *how)
{
    warnf(t, "%s: %s; reading it again from the start", f->path, how);
    (*t->c_truncations)++;
    f->off = 0;
    f->limit = 0;
    carry_reset(&f->sp);
    f->sp.skipping = 0;
    rn_fileid_of(f->fd, &f->id, NULL);
}

/* Read up to budget bytes of f. Returns 1 if more may be waiting, 0 at the
 * end of the file, -1 when the engine must stop. */
static int read_file(rn_tail *t, tfile *f, size_t budget)
{
    size_t done = 0;

    while (done < budget) {
        size_t want = READ_BUF;
        if (t->o.once) {
            if (f->off >= f->limit)
                return 0;
            if (f->limit - f->off < want)
                want = (size_t)(f->limit - f->off);
        }
        ssize_t n = pread(f->fd, t->rbuf, want, (off_t)f->off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            bad_path(t, f->path, strerror(errno));
            return 0;
        }
        if (n == 0) {
            struct stat st;
            if (fstat(f->fd, &st) == 0 && (uint64_t)st.st_size < f->off) {
                truncated(t, f, "file shrank");
                continue;
            }
            return 0;
        }
        f->last_growth = rn_mono_ns();
        count_read(t, &f->sp, (size_t)n);
        uint64_t base = f->off;
        f->off += (uint64_t)n;
        if (split(t, &f->sp, f->path, 1, t->rbuf, (size_t)n, base, rn_now_ns()) < 0)
            return -1;
        done += (size_t)n;
    }
    return 1;
}

/* The name no longer leads to f: read what it holds, then keep it open a
 * while for a writer that has not reopened its log yet. */
static int rotate_away(rn_tail *t, tfile *f)
{
    int r;
    while ((r = read_file(t, f, READ_BUDGET)) == 1)
        ;
    if (r < 0)
        return -1;
    f->rotated = 1;
    f->last_growth = rn_mono_ns();
    (*t->c_rotations)++;
    return 0;
}

static uint64_t start_offset(rn_tail *t, int fd, const struct stat *st, int initial,
                             const char *path)
{
    rn_posentry *e = rn_posfile_find(&t->pos, (uint64_t)st->st_dev, (uint64_t)st->st_ino);
    if (e) {
        if (rn_fileid_match(&e->id, fd, NULL) == 1) {
            if (e->offset <= (uint64_t)st->st_size)
                return e->offset;
            warnf(t, "%s: shorter than its recorded position; reading from the start",
                  path);
            return 0;
        }
        /* Same inode, other content: a new file that reuses the number. */
    }
    if (initial && t->o.start_at_end)
        return (uint64_t)st->st_size;
    return 0;
}

static int open_file(rn_tail *t, const char *path, const struct stat *st0, int initial)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno != ENOENT)
            bad_path(t, path, strerror(errno));
        return 0;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_dev != st0->st_dev || st.st_ino != st0->st_ino) {
        close(fd);   /* replaced between stat and open: the next scan sees it */
        return 0;
    }
    tfile *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        close(fd);
        warnf(t, "%s: out of memory", path);
        return -1;
    }
    f->fd = fd;
    f->sp.id = ++t->next_id;
    f->sp.st = stat_get(t, SRC_FILE, path);
    if (rn_fileid_of(fd, &f->id, NULL) < 0) {
        f->id.dev = (uint64_t)st.st_dev;
        f->id.ino = (uint64_t)st.st_ino;
        f->id.fplen = 0;
    }
    f->off = start_offset(t, fd, &st, initial, path);
    f->limit = (uint64_t)st.st_size;
    f->last_growth = rn_mono_ns();
    f->seen = 1;
    /* Append, so that files are read in the order their names came. */
    tfile **pp = &t->files;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    bad_forget(t, path);   /* readable again: warn anew if it breaks */
    return 0;
}

/* Follow path if it is a file not followed yet. 0; 1 when there is no
 * such file; -1 when the engine must stop. */
static int consider(rn_tail *t, const char *path, int initial)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno == ENOENT)
            return 1;
        bad_path(t, path, strerror(errno));
        return 0;
    }
    if (!S_ISREG(st.st_mode)) {
        bad_path(t, path, S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
        return 0;
    }
    tfile *f = find_id(t, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
    if (f) {
        if (f->seen)
            return 0;   /* reached by another name (hard link, overlapping globs) */
        f->seen = 1;
        if (strcmp(f->path, path) != 0) {
            char *p = strdup(path);
            if (p) {
                free(f->path);
                f->path = p;
                f->sp.id = ++t->next_id;
                stat_put(t, f->sp.st);
                f->sp.st = stat_get(t, SRC_FILE, p);
            }
        }
        f->rotated = 0;
        return 0;
    }
    /* A new inode under a name we follow: the file that had the name was
     * rotated away (renamed, or deleted and created again). Finish it first. */
    for (tfile *old = t->files; old; old = old->next)
        if (!old->rotated && !old->seen && strcmp(old->path, path) == 0) {
            if (rotate_away(t, old) < 0)
                return -1;
            break;
        }
    return open_file(t, path, &st, initial);
}

/* A pattern that has named no file since the start is said once, as
 * tail -F does; it is not an error (the file may come), and a file that
 * goes away in a rotation, having been found, is not said at all. */
static void missing(rn_tail *t, pattern *p)
{
    if (p->found || p->warned)
        return;
    p->warned = 1;
    if (t->o.once)
        warnf(t, "%s: %s", p->pat, p->is_glob ? "no file matches" : "no such file");
    else
        warnf(t, "%s: %s; waiting for it", p->pat,
              p->is_glob ? "no file matches yet" : "no such file yet");
}

static int expand(rn_tail *t, pattern *p, int initial)
{
    if (!p->is_glob) {
        int r = consider(t, p->pat, initial);
        if (r == 1) {
            missing(t, p);
            return 0;
        }
        p->found = 1;
        return r;
    }
    glob_t g;
    int r = glob(p->pat, 0, NULL, &g);
    if (r == GLOB_NOMATCH) {
        missing(t, p);
        return 0;
    }
    if (r != 0) {
        bad_path(t, p->pat, "cannot expand the pattern");
        return 0;
    }
    p->found = 1;
    int rc = 0;
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        if ((rc = consider(t, g.gl_pathv[i], initial)) == 1)
            rc = 0;     /* gone since the glob */
    globfree(&g);
    return rc;
}

/* ---- watching ------------------------------------------------------------ */

static int read_pass(rn_tail *t);
static void schedule_read(rn_tail *t);

static void dir_of(const char *path, char *out, size_t outlen)
{
    snprintf(out, outlen, "%s", path);
    char *d = dirname(out);
    if (d != out)
        memmove(out, d, strlen(d) + 1);
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status);

static void want_watch(rn_tail *t, const char *dir)
{
    if (t->o.once || strpbrk(dir, "*?["))
        return;
    watch *w;
    for (w = t->watches; w; w = w->next)
        if (strcmp(w->dir, dir) == 0)
            break;
    if (!w) {
        w = calloc(1, sizeof *w);
        if (!w || !(w->dir = strdup(dir))) {
            free(w);
            return;
        }
        w->t = t;
        w->next = t->watches;
        t->watches = w;
    }
    if (w->active)
        return;
    if (!w->initialised) {
        if (uv_fs_event_init(t->loop, &w->h) < 0)
            return;
        w->h.data = w;
        w->initialised = 1;
        t->handles_open++;
    }
    if (uv_fs_event_start(&w->h, on_fs_event, w->dir, 0) == 0)
        w->active = 1;
}

static void update_watches(rn_tail *t)
{
    char dir[4096];
    for (pattern *p = t->patterns; p; p = p->next) {
        dir_of(p->pat, dir, sizeof dir);
        want_watch(t, dir);
    }
    for (tfile *f = t->files; f; f = f->next)
        if (!f->rotated) {
            dir_of(f->path, dir, sizeof dir);
            want_watch(t, dir);
        }
}

/* Find every file the patterns name now, notice rotation and truncation. */
static int scan(rn_tail *t, int initial)
{
    for (tfile *f = t->files; f; f = f->next)
        f->seen = 0;
    for (badpath *b = t->bad; b; b = b->next)
        b->seen = 0;
    for (pattern *p = t->patterns; p; p = p->next)
        if (expand(t, p, initial) < 0)
            return -1;
    /* Forget warnings about paths that are gone, so they are made again. */
    for (badpath **bp = &t->bad; *bp;) {
        badpath *b = *bp;
        if (!b->seen) {
            *bp = b->next;
            free(b->path);
            free(b);
        } else {
            bp = &b->next;
        }
    }
    int64_t now = rn_mono_ns();
    for (tfile *f = t->files, *next; f; f = next) {
        next = f->next;
        if (!f->seen && !f->rotated) {
            if (rotate_away(t, f) < 0)
                return -1;
        } else if (f->rotated) {
            if (t->o.once || now - f->last_growth >= t->o.rotate_wait_ns) {
                int r;
                while ((r = read_file(t, f, READ_BUDGET)) == 1)
                    ;
                if (r < 0 || split_final(t, &f->sp, f->path, 1) < 0)
                    return -1;
                file_close(t, f);
            }
        } else if (f->off > 0 && rn_fileid_match(&f->id, f->fd, NULL) == 0) {
            truncated(t, f, "content replaced");
        } else if (f->id.fplen < RN_FP_MAX && f->off > f->id.fplen) {
            rn_fileid_of(f->fd, &f->id, NULL);   /* it grew: fingerprint more */
        }
    }
    if (!initial)
        update_watches(t);
    return 0;
}

static tfile *find_in_dir(rn_tail *t, const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    for (tfile *f = t->files; f; f = f->next) {
        size_t pl = strlen(f->path);
        if (f->rotated || pl != dl + 1 + nl)
            continue;
        if (memcmp(f->path, dir, dl) == 0 && f->path[dl] == '/'
            && memcmp(f->path + dl + 1, name, nl) == 0)
            return f;
    }
    return NULL;
}

static void on_fs_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    watch *w = h->data;
    rn_tail *t = w->t;
    if (t->stopping)
        return;
    if (status < 0) {
        uv_fs_event_stop(h);
        w->active = 0;   /* the next scan tries again; polling covers meanwhile */
        return;
    }
    tfile *f = name ? find_in_dir(t, w->dir, name) : NULL;
    if ((events & UV_RENAME) || !f) {
        /* Names changed. A rotation that shifts many files fires an event
         * per rename: scan once for the whole batch, on the next turn. */
        t->scan_pending = 1;
        schedule_read(t);
        return;
    }
    if (t->paused)
        return;     /* rn_tail_pause(t, 0) reads every file */
    int r = read_file(t, f, READ_BUDGET);
    if (r < 0)
        rn_tail_stop(t);
    else if (r > 0)
        schedule_read(t);
}

/* ---- streams: stdin and commands ----------------------------------------- */

static void stream_check_done(tstream *s);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    tstream *s = h->data;
    (void)suggested;
    buf->base = s->buf;
    buf->len = sizeof s->buf;
}

static void on_io_closed(uv_handle_t *h)
{
    tstream *s = h->data;
    s->io_open = 0;
    s->t->handles_open--;
    stream_check_done(s);
}

static void stream_eof(tstream *s)
{
    rn_tail *t = s->t;
    if (!t->stopping && split_final(t, &s->sp, s->name, 0) < 0)
        rn_tail_stop(t);
    s->eof = 1;
    if (s->io_open && !uv_is_closing((uv_handle_t *)&s->io))
        uv_close((uv_handle_t *)&s->io, on_io_closed);
}

static void on_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
    tstream *s = h->data;
    rn_tail *t = s->t;
    if (n > 0) {
        count_read(t, &s->sp, (size_t)n);
        uint64_t base = s->off;
        s->off += (uint64_t)n;
        if (split(t, &s->sp, s->name, 0, buf->base, (size_t)n, base, rn_now_ns()) < 0)
            rn_tail_stop(t);
    } else if (n < 0) {
        if (n != UV_EOF) {
            warnf(t, "%s: read: %s", s->name, uv_strerror((int)n));
            t->failed = 1;
        }
        stream_eof(s);
    }
}

static void on_proc_closed(uv_handle_t *h)
{
    tstream *s = h->data;
    s->proc_open = 0;
    s->t->handles_open--;
    stream_check_done(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    tstream *s = h->data;
    s->t->handles_open--;
}

static void on_proc_exit(uv_process_t *p, int64_t status, int sig)
{
    tstream *s = p->data;
    if (!s->t->stopping) {
        if (sig)
            warnf(s->t, "command '%s' killed by signal %d", s->name, sig);
        else if (status)
            warnf(s->t, "command '%s' exited with status %d", s->name, (int)status);
        if ((sig || status) && !s->restart)
            s->t->failed = 1;
    }
    s->exited = 1;
    uv_close((uv_handle_t *)p, on_proc_closed);
}

static int spawn(tstream *s, char *err)
{
    rn_tail *t = s->t;
    char *args[] = { "/bin/sh", "-c", s->name, NULL };
    uv_stdio_container_t io[3];
    uv_process_options_t po;

    uv_pipe_init(t->loop, &s->io.pipe, 0);
    s->io.pipe.data = s;
    s->io_open = 1;
    t->handles_open++;
    io[0].flags = UV_IGNORE;
    io[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    io[1].data.stream = (uv_stream_t *)&s->io.pipe;
    io[2].flags = UV_INHERIT_FD;
    io[2].data.fd = 2;
    memset(&po, 0, sizeof po);
    po.file = args[0];
    po.args = args;
    po.exit_cb = on_proc_exit;
    po.stdio = io;
    po.stdio_count = 3;
    s->proc.data = s;
    s->eof = s->exited = 0;
    int r = uv_spawn(t->loop, &s->proc, &po);
    s->proc_open = 1;
    t->handles_open++;
    if (r < 0) {
        uv_close((uv_handle_t *)&s->proc, on_proc_closed);
        uv_close((uv_handle_t *)&s->io, on_io_closed);
        return rn_seterr(err, "cannot run '%s': %s", s->name, uv_strerror(r));
    }
    uv_read_start((uv_stream_t *)&s->io.pipe, on_alloc, on_read);
    return 0;
}

static void on_restart_timer(uv_timer_t *h)
{
    tstream *s = h->data;
    char err[RN_ERRLEN];
    if (s->t->stopping)
        return;
    if (spawn(s, err) < 0) {
        warnf(s->t, "%s", err);
        s->t->failed = 1;
        s->done = 1;
    }
}

static void finish_if_idle(rn_tail *t);

static void stream_check_done(tstream *s)
{
    rn_tail *t = s->t;
    if (s->done || s->io_open || (s->kind == ST_EXEC && s->proc_open))
        return;
    if (s->kind == ST_EXEC && s->restart && !t->stopping && !t->o.once) {
        if (!s->timer_open) {
            uv_timer_init(t->loop, &s->timer);
            s->timer.data = s;
            s->timer_open = 1;
            t->handles_open++;
        }
        uv_timer_start(&s->timer, on_restart_timer, (uint64_t)(t->o.restart_ns / 1000000), 0);
        return;
    }
    s->done = 1;
    finish_if_idle(t);
}

static int stream_start(tstream *s, char *err)
{
    rn_tail *t = s->t;
    if (s->kind == ST_EXEC)
        return spawn(s, err);
    if (s->kind == ST_STDIN_FILE)
        return 0;   /* read by read_pass */
    int r;
    if (uv_guess_handle(0) == UV_TTY) {
        r = uv_tty_init(t->loop, &s->io.tty, 0, 1);
    } else {
        r = uv_pipe_init(t->loop, &s->io.pipe, 0);
        if (r == 0 && (r = uv_pipe_open(&s->io.pipe, 0)) < 0)
            uv_close((uv_handle_t *)&s->io.pipe, NULL);
    }
    if (r < 0)
        return rn_seterr(err, "stdin: %s", uv_strerror(r));
    s->io.pipe.data = s;
    s->io_open = 1;
    t->handles_open++;
    return uv_read_start((uv_stream_t *)&s->io, on_alloc, on_read) < 0
               ? rn_seterr(err, "stdin: cannot read") : 0;
}

/* stdin redirected from a regular file: read it like a file, to its end. */
static int read_stdin_file(rn_tail *t, tstream *s, size_t budget)
{
    size_t done = 0;
    while (done < budget) {
        ssize_t n = read(0, t->rbuf, READ_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0) {
                warnf(t, "stdin: read: %s", strerror(errno));
                t->failed = 1;
            }
            if (split_final(t, &s->sp, s->name, 0) < 0)
                return -1;
            s->done = 1;
            return 0;
        }
        count_read(t, &s->sp, (size_t)n);
        uint64_t base = s->off;
        s->off += (uint64_t)n;
        if (split(t, &s->sp, s->name, 0, t->rbuf, (size_t)n, base, rn_now_ns()) < 0)
            return -1;
        done += (size_t)n;
    }
    return 1;
}

/* ---- the loop ------------------------------------------------------------ */

/* Give every source a turn; 1 if any has more waiting. */
static int read_pass(rn_tail *t)
{
    int more = 0;
    if (t->paused)
        return 0;
    for (tfile *f = t->files; f; f = f->next) {
        int r = read_file(t, f, READ_BUDGET);
        if (r < 0)
            return -1;
        more |= r;
    }
    for (tstream *s = t->streams; s; s = s->next) {
        if (s->kind != ST_STDIN_FILE || s->done)
            continue;
        int r = read_stdin_file(t, s, READ_BUDGET);
        if (r < 0)
            return -1;
        more |= r;
        if (s->done)
            finish_if_idle(t);
    }
    if (more)
        schedule_read(t);
    else if (t->o.once)
        finish_if_idle(t);
    return more;
}

static void on_idle(uv_idle_t *h)
{
    rn_tail *t = h->data;
    uv_idle_stop(h);
    if (t->stopping)
        return;
    if (t->scan_pending) {
        t->scan_pending = 0;
        if (scan(t, 0) < 0) {
            rn_tail_stop(t);
            return;
        }
    }
    if (read_pass(t) < 0)
        rn_tail_stop(t);
}

static void schedule_read(rn_tail *t)
{
    if (!t->stopping)
        uv_idle_start(&t->idle, on_idle);
}

static void on_scan_timer(uv_timer_t *h)
{
    rn_tail *t = h->data;
    if (t->stopping)
        return;
    /* A lost watch (directory removed) means polling at the fast rate. */
    int lost = 0;
    for (watch *w = t->watches; w; w = w->next)
        lost |= !w->active;
    if (scan(t, 0) < 0 || read_pass(t) < 0) {
        rn_tail_stop(t);
        return;
    }
    if (lost)
        uv_timer_set_repeat(h, 50);
    else
        uv_timer_set_repeat(h, (uint64_t)(t->o.scan_ns / 1000000));
}

static int commit(rn_tail *t, int now, char *err);

/* Save the positions: in the pool on the timer, on this thread (now) at the
 * stop. A failure is said once, until a save works again (the pool's own
 * are said by the saver). */
static int commit_said(rn_tail *t, int now)
{
    char err[RN_ERRLEN];
    int r = commit(t, now, err);
    if (now || r < 0)
        r = rn_posfile_said(r, err, t->o.pos_path, &t->saver.failing, t->o.on_warn,
                            t->o.data);
    return r;
}

static void on_commit_timer(uv_timer_t *h)
{
    rn_tail *t = h->data;
    if (!t->stopping)
        commit_said(t, 0);
}

/* Everything that can end has ended, and nothing is followed: stop. */
static void finish_if_idle(rn_tail *t)
{
    if (t->stopping || !t->started)
        return;
    for (tstream *s = t->streams; s; s = s->next)
        if (!s->done)
            return;
    if (t->o.once) {
        for (tfile *f = t->files; f; f = f->next)
            if (f->off < f->limit)
                return;
    } else if (t->patterns) {
        return;
    }
    rn_tail_stop(t);
}

/* ---- public -------------------------------------------------------------- */

rn_tail *rn_tail_new(uv_loop_t *loop, const rn_tail_opts *o, char *err)
{
    rn_tail *t = calloc(1, sizeof *t);
    if (!t || !(t->rbuf = malloc(READ_BUF))
        || rn_possaver_init(&t->saver, loop, o->pos_path, o->on_warn, o->data) < 0) {
        if (t)
            free(t->rbuf);
        free(t);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    t->loop = loop;
    t->o = *o;
    if (!t->o.max_line)
        t->o.max_line = 1 << 20;
    t->c_lines = rn_counter_add(&t->counters, "lines");
    t->c_bytes = rn_counter_add(&t->counters, "bytes");
    t->c_cut = rn_counter_add(&t->counters, "cut");
    t->c_rotations = rn_counter_add(&t->counters, "rotations");
    t->c_truncations = rn_counter_add(&t->counters, "truncations");
    return t;
}

int rn_tail_add_path(rn_tail *t, const char *pat, char *err)
{
    pattern *p = calloc(1, sizeof *p);
    if (!p || !(p->pat = strdup(pat))) {
        free(p);
        return rn_seterr(err, "out of memory");
    }
    p->is_glob = strpbrk(pat, "*?[") != NULL;
    pattern **pp = &t->patterns;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    return 0;
}

static int add_stream(rn_tail *t, int kind, const char *name, int restart, char *err)
{
    tstream *s = calloc(1, sizeof *s);
    if (!s || !(s->name = strdup(name))) {
        free(s);
        return rn_seterr(err, "out of memory");
    }
    s->t = t;
    s->sp.id = ++t->next_id;
    s->sp.st = stat_get(t, kind == ST_EXEC ? SRC_COMMAND : SRC_STDIN, name);
    s->kind = kind;
    s->restart = restart;
    tstream **pp = &t->streams;
    while (*pp)
        pp = &(*pp)->next;
    *pp = s;
    return 0;
}

int rn_tail_add_stdin(rn_tail *t, char *err)
{
    for (tstream *s = t->streams; s; s = s->next)
        if (s->kind != ST_EXEC)
            return rn_seterr(err, "stdin ('-') named twice");
    int kind = uv_guess_handle(0) == UV_FILE ? ST_STDIN_FILE : ST_STDIN_STREAM;
    return add_stream(t, kind, "stdin", 0, err);
}

int rn_tail_add_exec(rn_tail *t, const char *cmd, int restart, char *err)
{
    return add_stream(t, ST_EXEC, cmd, restart, err);
}

int rn_tail_start(rn_tail *t, char *err)
{
    if (t->o.pos_path && rn_posfile_load(&t->pos, t->o.pos_path, err) < 0)
        return RN_ERR;
    uv_idle_init(t->loop, &t->idle);
    t->idle.data = t;
    uv_timer_init(t->loop, &t->scan_timer);
    t->scan_timer.data = t;
    uv_timer_init(t->loop, &t->commit_timer);
    t->commit_timer.data = t;
    t->handles_open += 3;
    t->inited = 1;
    if (scan(t, 1) < 0)
        return rn_seterr(err, "stopped while opening files");
    for (tstream *s = t->streams; s; s = s->next)
        if (stream_start(s, err) < 0)
            return RN_ERR;
    t->started = 1;
    if (!t->o.once) {
        update_watches(t);
        uint64_t ms = (uint64_t)(t->o.scan_ns / 1000000);
        uv_timer_start(&t->scan_timer, on_scan_timer, ms, ms);
        if (t->o.pos_path) {
            ms = (uint64_t)(t->o.commit_ns / 1000000);
            uv_timer_start(&t->commit_timer, on_commit_timer, ms, ms);
        }
    }
    schedule_read(t);
    finish_if_idle(t);
    return 0;
}

int rn_tail_positions(rn_tail *t, rn_posfile *pf, char *err)
{
    rn_posfile_clear(pf);
    for (tfile *f = t->files; f; f = f->next)
        if (rn_posfile_add(pf, &f->id, consumed(f), f->path) < 0)
            return rn_seterr(err, "out of memory");
    return 0;
}

static int commit(rn_tail *t, int now, char *err)
{
    if (!t->o.pos_path || t->o.manual_commit)
        return 0;
    if (t->o.on_flush && t->o.on_flush(t->o.data) < 0)
        return rn_seterr(err, "the output failed");
    if (rn_tail_positions(t, &t->pos, err) < 0)
        return RN_ERR;
    return now ? rn_possaver_save(&t->saver, &t->pos, err)
               : rn_possaver_queue(&t->saver, &t->pos, err);
}

int rn_tail_commit(rn_tail *t, char *err)
{
    return commit(t, 1, err);
}

void rn_tail_pause(rn_tail *t, int pause)
{
    if (t->paused == !!pause || t->stopping)
        return;
    t->paused = !!pause;
    for (tstream *s = t->streams; s; s = s->next) {
        if (!s->io_open || s->eof || uv_is_closing((uv_handle_t *)&s->io))
            continue;
        if (pause)
            uv_read_stop((uv_stream_t *)&s->io);
        else
            uv_read_start((uv_stream_t *)&s->io, on_alloc, on_read);
    }
    if (!pause)
        schedule_read(t);
}

static void on_closed(uv_handle_t *h)
{
    rn_tail *t = h->data;
    t->handles_open--;
}

static void on_watch_closed(uv_handle_t *h)
{
    watch *w = h->data;
    w->t->handles_open--;
}

void rn_tail_stop(rn_tail *t)
{
    if (t->stopping == 2)
        return;
    int failed_output = t->stopping == 1;
    t->stopping = 2;
    if (!failed_output && commit_said(t, 1) < 0)
        t->failed = 1;      /* the positions on disk are older than what went out */
    if (!t->inited)
        return;
    uv_close((uv_handle_t *)&t->idle, on_closed);
    uv_close((uv_handle_t *)&t->scan_timer, on_closed);
    uv_close((uv_handle_t *)&t->commit_timer, on_closed);
    for (watch *w = t->watches; w; w = w->next)
        if (w->initialised)
            uv_close((uv_handle_t *)&w->h, on_watch_closed);
    for (tstream *s = t->streams; s; s = s->next) {
        if (s->io_open && !uv_is_closing((uv_handle_t *)&s->io))
            uv_close((uv_handle_t *)&s->io, on_io_closed);
        if (s->proc_open && !s->exited)
            uv_process_kill(&s->proc, SIGTERM);
        if (s->timer_open) {
            s->timer_open = 0;
            uv_close((uv_handle_t *)&s->timer, on_timer_closed);
        }
    }
    if (t->o.on_stop)
        t->o.on_stop(t->o.data);
}

int rn_tail_failed(const rn_tail *t) { return t->failed; }

const rn_counters *rn_tail_counters(const rn_tail *t) { return &t->counters; }

/* One family over the sources: a file's samples are labelled file, a
 * command's command, stdin's not at all (as the events' headers are). */
static void source_family(rn_tail *t, rn_prom *p, const char *prefix, const char *name,
                          int type, const char *help, int files_only, int what)
{
    rn_prom_family(p, prefix, name, type, help);
    for (srcstat *st = t->stats; st; st = st->next) {
        rn_prom_label l = { st->kind == SRC_FILE ? "file" : "command", st->name,
                            strlen(st->name) };
        if (files_only && st->kind != SRC_FILE)
            continue;
        rn_prom_sample(p, &l, st->kind != SRC_STDIN,
                       what == 0 ? st->lines : what == 1 ? st->bytes : st->lag);
    }
}

void rn_tail_metrics(rn_tail *t, rn_prom *p, const char *prefix)
{
    static const rn_prom_desc d[] = {
        { "cut", "lines_cut_total", RN_PROM_COUNTER, "Lines longer than --max-line, cut." },
        { "rotations", "rotations_total", RN_PROM_COUNTER,
          "Files whose name came to lead to another file (rotated away)." },
        { "truncations", "truncations_total", RN_PROM_COUNTER,
          "Files that shrank or were rewritten in place, read again from the start." },
    };
    uint64_t nfiles = 0;
    struct stat sb;

    for (srcstat *st = t->stats; st; st = st->next)
        st->lag = 0;
    for (tfile *f = t->files; f; f = f->next, nfiles++)
        if (f->sp.st && f->fd >= 0 && fstat(f->fd, &sb) == 0 && (uint64_t)sb.st_size > f->off)
            f->sp.st->lag += (uint64_t)sb.st_size - f->off;
    source_family(t, p, prefix, "lines_read_total", RN_PROM_COUNTER,
                  "Lines read, per file, command or stdin followed now.", 0, 0);
    source_family(t, p, prefix, "bytes_read_total", RN_PROM_COUNTER,
                  "Bytes read, per file, command or stdin followed now.", 0, 1);
    source_family(t, p, prefix, "lag_bytes", RN_PROM_GAUGE,
                  "Bytes written to a followed file and not read yet.", 1, 2);
    rn_prom_one(p, prefix, "files", RN_PROM_GAUGE,
                "Files open: followed, and rotated away but still read.", nfiles);
    rn_prom_counters(p, prefix, &t->counters, d, sizeof d / sizeof d[0]);
}

void rn_tail_free(rn_tail *t)
{
    if (!t)
        return;
    while (t->files)
        file_close(t, t->files);
    for (pattern *p = t->patterns, *n; p; p = n) {
        n = p->next;
        free(p->pat);
        free(p);
    }
    for (watch *w = t->watches, *n; w; w = n) {
        n = w->next;
        free(w->dir);
        free(w);
    }
    for (badpath *b = t->bad, *n; b; b = n) {
        n = b->next;
        free(b->path);
        free(b);
    }
    for (tstream *s = t->streams, *n; s; s = n) {
        n = s->next;
        rn_buf_free(&s->sp.carry);
        stat_put(t, s->sp.st);
        free(s->name);
        free(s);
    }
    rn_posfile_free(&t->pos);
    rn_possaver_destroy(&t->saver);
    free(t->rbuf);
    free(t);
}
