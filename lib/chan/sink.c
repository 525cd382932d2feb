/* sink.c -- chanbuf's sinks: parsing, routing, the in-order done queue, and
 * the two sinks that write to descriptors (stdout and rolling files). The
 * tcp and kafka sinks are in sink_tcp.c and sink_kafka.c.
 *
 * The file sink writes DIR/.PREFIX.<ms>.tmp (hidden, so that a glob over
 * DIR/PREFIX.* sees complete files only) and renames it to DIR/PREFIX.<ms>
 * when it rolls (by size, by age, or at stop), after an fsync; <ms> is the
 * wall-clock time the file was opened, so names sort by time. A batch is done
 * once written (and synced, with fsync set). A .tmp file left by a run that
 * was killed is completed at start: cut after its last whole event (a kill in
 * the middle of a write can leave half of one) and renamed. Its events may
 * also come again from the channel: at-least-once. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hop/hop.h"
#include "chan/chan_int.h"

void rn_sink__warn(rn_sink *s, const char *fmt, ...)
{
    char prefix[sizeof s->spec.name + 8];
    snprintf(prefix, sizeof prefix, "sink %s: ", s->spec.name);
    va_list ap;
    va_start(ap, fmt);
    rn_vwarn_to(s->o.on_warn, s->o.data, prefix, fmt, ap);
    va_end(ap);
}

/* ---- parsing ----------------------------------------------------------- */

static int valid_name(const char *p, size_t n)
{
    if (n == 0 || n >= sizeof ((rn_sink_spec *)0)->name)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(p[i] == '_' || p[i] == '-' || p[i] == '.' || (p[i] >= '0' && p[i] <= '9')
              || ((p[i] | 0x20) >= 'a' && (p[i] | 0x20) <= 'z')))
            return 0;
    return 1;
}

/* roll=SIZE or roll=DURATION. A size's unit ends in B ("64MiB"), so no
 * value reads as both: "10m" is ten minutes. The old spellings of a size
 * ("64k", "1g", a bare number of bytes) are still sizes, with a note naming
 * the new one; "10m", once 10 MiB, is minutes now, and a note says so. */
static int parse_roll(rn_sink_spec *sp, const char *v, char *err)
{
    char now[RN_ERRLEN];
    uint64_t bytes;
    int64_t ns;
    size_t len = strlen(v);
    int bare = len && strspn(v, "0123456789.") == len;
    int size = rn_parse_size(v, &bytes, now);

    if (size == 0 && !bare && bytes > 0) {
        sp->roll_bytes = bytes;
        return 0;
    }
    if (!bare && rn_parse_duration(v, &ns, NULL) == 0 && ns >= 1000000) {
        sp->roll_ns = ns;
        if (v[len - 1] == 'm' && len >= 2 && v[len - 2] != 'm')
            snprintf(sp->note, sizeof sp->note, "roll=%s is %.*s minutes now (it was %.*s MiB): "
                     "write roll=%.*sMiB for a size, or roll=%.*smin to say minutes",
                     v, (int)len - 1, v, (int)len - 1, v, (int)len - 1, v, (int)len - 1, v);
        return 0;
    }
    if ((size == RN_SIZE_OLD || (size == 0 && bare)) && bytes > 0) {
        sp->roll_bytes = bytes;
        snprintf(sp->note, sizeof sp->note, "roll=%s: a size's unit ends in B now; write "
                 "roll=%s%s (%s goes in the next release)", v, size ? now : v,
                 size ? "" : "B", v);
        return 0;
    }
    return rn_seterr(err, "%s: roll=%s is neither a size (64KiB, 10MiB, 1GiB) nor a "
                     "duration (30s, 10m, 1h) of at least 1ms", sp->uri, v);
}

/* Split the query of uri (after '?') into key=value pairs for fn. */
static int each_param(rn_sink_spec *sp, char *q,
                      int (*fn)(rn_sink_spec *, const char *, const char *, char *),
                      char *err)
{
    for (char *tok = strtok(q, "&"); tok; tok = strtok(NULL, "&")) {
        char *eq = strchr(tok, '=');
        if (!eq)
            return rn_seterr(err, "%s: parameter '%s' has no value", sp->uri, tok);
        *eq = '\0';
        if (fn(sp, tok, eq + 1, err) < 0)
            return RN_ERR;
    }
    return 0;
}

static int file_param(rn_sink_spec *sp, const char *k, const char *v, char *err)
{
    if (strcmp(k, "roll") == 0)
        return parse_roll(sp, v, err);
    return rn_seterr(err, "%s: unknown parameter '%s' (file sinks take roll=)", sp->uri, k);
}

static int kafka_param(rn_sink_spec *sp, const char *k, const char *v, char *err)
{
    if (strcmp(k, "key") == 0) {
        if (!*v || strlen(v) >= sizeof sp->key)
            return rn_seterr(err, "%s: key= needs a header name", sp->uri);
        strcpy(sp->key, v);
        return 0;
    }
    if (strcmp(k, "acks") == 0) {
        if (strcmp(v, "all") && strcmp(v, "1") && strcmp(v, "0") && strcmp(v, "-1"))
            return rn_seterr(err, "%s: acks=%s is not all, 1 or 0", sp->uri, v);
        snprintf(sp->acks, sizeof sp->acks, "%s", strcmp(v, "-1") ? v : "all");
        return 0;
    }
    return rn_seterr(err, "%s: unknown parameter '%s' (kafka sinks take key= and acks=)",
                     sp->uri, k);
}

int rn_sink_parse(const char *arg, rn_sink_spec *sp, char *err)
{
    char rest[1024];
    memset(sp, 0, sizeof *sp);
    const char *eq = strchr(arg, '='), *colon = strchr(arg, ':');
    const char *uri = arg;
    if (eq && (!colon || eq < colon)) {
        if (!valid_name(arg, (size_t)(eq - arg)))
            return rn_seterr(err, "'%.*s': a sink name is letters, digits, '_', '-' and '.'",
                             (int)(eq - arg), arg);
        memcpy(sp->name, arg, (size_t)(eq - arg));
        uri = eq + 1;
    }
    if (strlen(uri) >= sizeof sp->uri)
        return rn_seterr(err, "sink '%.40s...' is too long", uri);
    strcpy(sp->uri, uri);
    if (!sp->name[0]) {
        if (strlen(uri) >= sizeof sp->name)
            return rn_seterr(err, "sink '%.40s...': name it (NAME=URI): a name is at "
                             "most 255 bytes", uri);
        strcpy(sp->name, uri);
    }
    strcpy(rest, uri);
    char *q = strchr(rest, '?');
    if (q)
        *q++ = '\0';

    if (strcmp(rest, "stdout") == 0 && !q) {
        sp->kind = RN_SINK_STDOUT;
        return 0;
    }
    if (strncmp(rest, "file://", 7) == 0) {
        sp->kind = RN_SINK_FILE;
        char *path = rest + 7, *slash = strrchr(path, '/');
        if (path[0] != '/' || !slash || !slash[1])
            return rn_seterr(err, "%s: a file sink is file:///DIR/PREFIX (an absolute "
                             "directory and a file name prefix)", uri);
        if (strlen(slash + 1) >= sizeof sp->prefix || (size_t)(slash - path) >= sizeof sp->dir)
            return rn_seterr(err, "%s: path too long", uri);
        memcpy(sp->dir, path, (size_t)(slash - path));
        sp->dir[slash == path ? 1 : slash - path] = '\0';
        if (slash == path)
            sp->dir[0] = '/';
        strcpy(sp->prefix, slash + 1);
        return q ? each_param(sp, q, file_param, err) : 0;
    }
    if (strncmp(rest, "tcp://", 6) == 0) {
        rn_hop_url u;
        sp->kind = RN_SINK_TCP;
        return rn_hop_url_parse(uri, &u, err);
    }
    if (strncmp(rest, "kafka://", 8) == 0) {
        sp->kind = RN_SINK_KAFKA;
        strcpy(sp->acks, "all");
        char *b = rest + 8, *slash = strchr(b, '/');
        if (!slash || slash == b || !slash[1] || strchr(slash + 1, '/'))
            return rn_seterr(err, "%s: a kafka sink is kafka://BROKERS/TOPIC", uri);
        if ((size_t)(slash - b) >= sizeof sp->brokers || strlen(slash + 1) >= sizeof sp->topic)
            return rn_seterr(err, "%s: too long", uri);
        memcpy(sp->brokers, b, (size_t)(slash - b));
        strcpy(sp->topic, slash + 1);
        return q ? each_param(sp, q, kafka_param, err) : 0;
    }
    return rn_seterr(err, "'%s': a sink is stdout, file:///DIR/PREFIX, tcp://HOST:PORT "
                     "or kafka://BROKERS/TOPIC", uri);
}

/* ---- routing ----------------------------------------------------------- */

int rn_sink__has_filter(const rn_sink *s) { return s->o.filter.header != NULL; }

static int has_val(const char **vals, size_t n, const rn_str *v)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vals[i]) == v->n && memcmp(vals[i], v->p, v->n) == 0)
            return 1;
    return 0;
}

int rn_sink__accepts(const rn_sink *s, const rn_event *ev)
{
    const rn_sink_filter *f = &s->o.filter;
    if (!f->header)
        return 1;
    const rn_str *v = rn_event_header(ev, f->header);
    if (v && has_val(f->vals, f->nvals, v))
        return 1;
    return f->is_default && (!v || !has_val(f->all, f->nall, v));
}

typedef struct filter_arg {
    const rn_sink *s;
    rn_batch *out;
} filter_arg;

static int filter_one(void *arg, const rn_event *ev)
{
    filter_arg *a = arg;
    return rn_sink__accepts(a->s, ev) ? rn_batch_add(a->out, ev) : 0;
}

int rn_sink__filter(const rn_sink *s, const rn_chan_batch *in, rn_batch *out, char *err)
{
    filter_arg a = { s, out };
    rn_batch_reset(out);
    size_t bad;
    int r = rn_batch_each(in->events.p, in->events.len, in->count, filter_one, &a, &bad, err);
    if (r == RN_ENOMEM)
        return rn_seterr(err, "out of memory");
    if (r == RN_ECORRUPT) {
        char why[RN_ERRLEN];
        snprintf(why, sizeof why, "%s", err ? err : "");
        return rn_seterr(err, "byte offset %zu: %s", bad, why);
    }
    if (r < 0)
        return RN_ERR;
    return out->count > 0;
}

/* ---- in-order completion ---------------------------------------------------- */

long rn_sink__fifo_push(rn_sink__fifo *f, uint64_t end, uint64_t left, uint64_t events)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 64;
        struct rn_sink__fifo_ent *e = malloc(cap * sizeof *e);
        if (!e)
            return RN_ENOMEM;
        for (size_t i = 0; i < f->n; i++)
            e[i] = f->e[(f->head + i) % f->cap];
        free(f->e);
        f->e = e;
        f->cap = cap;
        f->head = 0;
    }
    f->e[(f->head + f->n) % f->cap] = (struct rn_sink__fifo_ent){ end, left, events };
    f->n++;
    return f->first + (long)f->n - 1;
}

void rn_sink__fifo_one(rn_sink__fifo *f, long id)
{
    size_t i = (size_t)(id - f->first);
    if (id >= f->first && i < f->n)
        f->e[(f->head + i) % f->cap].left--;
}

void rn_sink__fifo_flush(rn_sink *s, rn_sink__fifo *f)
{
    uint64_t end = 0, events = 0;
    int any = 0;
    while (f->n && f->e[f->head].left == 0) {
        end = f->e[f->head].end;
        events += f->e[f->head].events;
        any = 1;
        f->head = (f->head + 1) % f->cap;
        f->n--;
        f->first++;
    }
    if (any) {
        rn_sink__count(&s->out, events);
        rn_chan_done(s->o.chan, s->o.index, end);
    }
}

void rn_sink__fifo_free(rn_sink__fifo *f) { free(f->e); }

/* ---- stdout and file ---------------------------------------------------- */

typedef struct wsink {
    int fd;                     /* -1: no file open */
    rn_writer *w;
    char tmp[2048], final[2048];
    int64_t opened;             /* rn_mono_ns */
    uint64_t delivered;         /* events of the batch in hand that passed the filter */
} wsink;

typedef struct put_arg {
    rn_sink *s;
    rn_writer *w;
    char *err;
    uint64_t n;
} put_arg;

static int put_one(void *arg, const rn_event *ev)
{
    put_arg *a = arg;
    if (!rn_sink__accepts(a->s, ev))
        return 0;
    a->n++;
    int r = rn_writer_put(a->w, ev, a->err);
    return r < 0 ? r : 0;
}

/* Write the batch through w and flush. 0, or the writer's error (err). */
static int write_batch(rn_sink *s, rn_writer *w, const rn_chan_batch *b, uint64_t *n,
                       char *err)
{
    int r;
    if (s->o.fmt == RN_FMT_FRAMES && !rn_sink__has_filter(s)) {
        r = rn_writer_put_raw(w, b->events.p, b->events.len, err);
        *n = b->count;
    } else {
        put_arg a = { s, w, err, 0 };
        char derr[RN_ERRLEN];
        size_t bad;
        r = rn_batch_each(b->events.p, b->events.len, b->count, put_one, &a, &bad, derr);
        if (r == RN_ECORRUPT) {
            rn_seterr(err, "channel holds a bad record at event %" PRIu64 ": byte offset %zu: %s",
                      b->seq, bad, derr);
            return RN_ECORRUPT;
        }
        *n = a.n;
    }
    if (r < 0)
        return r;
    return rn_writer_flush(w, err);
}

/* Length of the whole events at the start of a file's bytes: up to the last
 * '\n' for lines and json, the last whole frame for frames. */
static off_t whole_prefix(int fd, off_t size)
{
    char hdr[RN_FRAMES_HEADER_LEN];
    if (size >= RN_FRAMES_HEADER_LEN && pread(fd, hdr, sizeof hdr, 0) == (ssize_t)sizeof hdr
        && memcmp(hdr, RN_FRAMES_MAGIC, 4) == 0) {
        off_t off = RN_FRAMES_HEADER_LEN;
        unsigned char l[4];
        while (off + 4 <= size && pread(fd, l, 4, off) == 4) {
            uint64_t n = rn_be32(l);
            if ((uint64_t)(size - off - 4) < n)
                break;
            off += 4 + (off_t)n;
        }
        return off == RN_FRAMES_HEADER_LEN ? 0 : off;
    }
    char buf[4096];
    off_t end = size;
    while (end > 0) {
        size_t want = end < (off_t)sizeof buf ? (size_t)end : sizeof buf;
        ssize_t n = pread(fd, buf, want, end - (off_t)want);
        if (n != (ssize_t)want)
            return 0;
        for (ssize_t i = n - 1; i >= 0; i--)
            if (buf[i] == '\n')
                return end - (off_t)want + i + 1;
        end -= (off_t)want;
    }
    return 0;
}

/* Complete the .PREFIX.<ms>.tmp files a killed run left in the directory. */
static int recover_files(rn_sink *s, char *err)
{
    const rn_sink_spec *sp = &s->spec;
    DIR *d = opendir(sp->dir);
    if (!d)
        return rn_seterr(err, "sink %s: %s: %s", sp->name, sp->dir, strerror(errno));
    size_t pl = strlen(sp->prefix);
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *n = de->d_name;
        size_t len = strlen(n);
        if (n[0] != '.' || strncmp(n + 1, sp->prefix, pl) != 0 || n[1 + pl] != '.'
            || len < pl + 6 || strcmp(n + len - 4, ".tmp") != 0)
            continue;
        char tmp[2048], final[2048];
        snprintf(tmp, sizeof tmp, "%s/%s", sp->dir, n);
        snprintf(final, sizeof final, "%s/%.*s", sp->dir, (int)(len - 5), n + 1);
        int fd = open(tmp, O_RDWR);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0)
                close(fd);
            closedir(d);
            return rn_seterr(err, "sink %s: %s: %s", sp->name, tmp, strerror(errno));
        }
        off_t keep = whole_prefix(fd, st.st_size);
        if (keep == 0) {
            close(fd);
            unlink(tmp);
            continue;
        }
        if (keep < st.st_size) {
            rn_sink__warn(s, "%s: cut after byte offset %lld, the end of its last whole event",
                      tmp, (long long)keep);
            if (ftruncate(fd, keep) < 0) {
                close(fd);
                closedir(d);
                return rn_seterr(err, "sink %s: %s: truncate: %s", sp->name, tmp,
                                 strerror(errno));
            }
        }
        fsync(fd);
        close(fd);
        if (rename(tmp, final) < 0) {
            closedir(d);
            return rn_seterr(err, "sink %s: rename %s: %s", sp->name, tmp, strerror(errno));
        }
        rn_sink__warn(s, "completed %s, left by an earlier run", final);
    }
    rn_fsync_dir(dirfd(d), sp->dir, NULL);     /* see file_roll */
    closedir(d);
    return 0;
}

static int file_open(rn_sink *s, wsink *ws, char *err)
{
    const rn_sink_spec *sp = &s->spec;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    for (int tries = 0; tries < 1000; tries++, ms++) {
        snprintf(ws->final, sizeof ws->final, "%s/%s.%013" PRId64, sp->dir, sp->prefix, ms);
        snprintf(ws->tmp, sizeof ws->tmp, "%s/.%s.%013" PRId64 ".tmp", sp->dir, sp->prefix, ms);
        if (access(ws->final, F_OK) == 0)
            continue;
        ws->fd = open(ws->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (ws->fd >= 0)
            break;
        if (errno != EEXIST)
            return rn_seterr(err, "%s: %s", ws->tmp, strerror(errno));
    }
    if (ws->fd < 0)
        return rn_seterr(err, "%s: no free file name", sp->dir);
    if (!(ws->w = rn_writer_new(ws->fd, s->o.fmt))) {
        close(ws->fd);
        ws->fd = -1;
        unlink(ws->tmp);
        return rn_seterr(err, "out of memory");
    }
    ws->opened = rn_mono_ns();
    return 0;
}

/* Complete the open file: sync, close, give it its final name, sync the
 * directory. Not rn_afile: the temporary lives across many deliveries, and
 * a failed fsync must not remove what was delivered. A directory that
 * cannot be synced is not an error: a rename that a power loss takes away
 * leaves the .tmp file, which the next start completes. */
static int file_roll(wsink *ws, char *err)
{
    if (ws->fd < 0)
        return 0;
    int r = 0;
    if (fsync(ws->fd) < 0)
        r = rn_seterr(err, "%s: fsync: %s", ws->tmp, strerror(errno));
    close(ws->fd);
    ws->fd = -1;
    rn_writer_free(ws->w);
    ws->w = NULL;
    if (rename(ws->tmp, ws->final) < 0)
        return rn_seterr(err, "rename %s: %s", ws->tmp, strerror(errno));
    rn_fsync_dir(AT_FDCWD, ws->final, NULL);
    return r;
}

/* Close and remove the open file (empty, or holding no whole batch). */
static void file_discard(wsink *ws)
{
    close(ws->fd);
    ws->fd = -1;
    unlink(ws->tmp);
    rn_writer_free(ws->w);
    ws->w = NULL;
}

/* Deliver one batch into the current file (opening one as needed). */
static int file_deliver(rn_sink *s, wsink *ws, const rn_chan_batch *b, char *err)
{
    if (ws->fd < 0 && file_open(s, ws, err) < 0)
        return RN_ERR;
    off_t before = lseek(ws->fd, 0, SEEK_END);
    uint64_t n = 0;
    int r = write_batch(s, ws->w, b, &n, err);
    if (r == 0 && s->o.fsync && fdatasync(ws->fd) < 0)
        r = rn_seterr(err, "fsync: %s", strerror(errno));
    if (r < 0) {
        /* Take the half-written batch out again; it is sent again whole. A
         * file it was the first batch of goes: the writer counts the frames
         * stream header as written, and the next try opens a new file. */
        char e2[RN_ERRLEN];
        snprintf(e2, sizeof e2, "%.100s: %.150s", ws->tmp, err);
        strcpy(err, e2);
        if (before <= 0)
            file_discard(ws);
        else if (ftruncate(ws->fd, before) == 0)
            lseek(ws->fd, before, SEEK_SET);
        return RN_ERR;
    }
    if (n == 0 && before == 0)
        file_discard(ws);   /* nothing for this sink in the batch: still empty */
    ws->delivered = n;
    off_t size = ws->fd >= 0 ? lseek(ws->fd, 0, SEEK_CUR) : 0;
    if (ws->fd >= 0 && s->spec.roll_bytes && (uint64_t)size >= s->spec.roll_bytes)
        return file_roll(ws, err);
    return 0;
}

static int stdout_deliver(rn_sink *s, wsink *ws, const rn_chan_batch *b, char *err)
{
    uint64_t n = 0;
    int r = write_batch(s, ws->w, b, &n, err);
    ws->delivered = n;
    return r;
}

/* How long take may wait: until the open file is due to roll. */
static int64_t take_wait(const rn_sink *s, const wsink *ws)
{
    if (s->spec.kind != RN_SINK_FILE || ws->fd < 0 || !s->spec.roll_ns)
        return 200000000;
    int64_t left = ws->opened + s->spec.roll_ns - rn_mono_ns();
    return left < 1000000 ? 1000000 : left;
}

static void *simple_run(void *arg)
{
    rn_sink *s = arg;
    wsink *ws = s->impl;
    rn_chan_batch b = { 0 };
    char err[RN_ERRLEN];
    int is_file = s->spec.kind == RN_SINK_FILE;
    int warned = 0;

    while (!rn_sink__stopping(s)) {
        int r = rn_chan_take(s->o.chan, s->o.index, s->o.batch, take_wait(s, ws), &b, err);
        if (r < 0) {
            rn_sink__warn(s, "%s", err);
            usleep(100000);
            continue;
        }
        if (r == 0) {
            if (is_file && ws->fd >= 0 && s->spec.roll_ns
                && rn_mono_ns() - ws->opened >= s->spec.roll_ns && file_roll(ws, err) < 0)
                rn_sink__warn(s, "%s", err);
            continue;
        }
        for (;;) {
            r = is_file ? file_deliver(s, ws, &b, err) : stdout_deliver(s, ws, &b, err);
            if (r >= 0)
                break;
            if (!is_file) {
                if (r != RN_EPIPE)
                    rn_sink__warn(s, "stdout: %s", err);
                if (s->o.on_fail)
                    s->o.on_fail(s->o.data, s, r == RN_EPIPE ? RN_EPIPE : RN_ERR);
                goto out;
            }
            if (!warned++)
                rn_sink__warn(s, "%s; trying again every second", err);
            rn_sink__count(&s->retries, 1);
            for (int i = 0; i < 10 && !rn_sink__stopping(s); i++)
                usleep(100000);
            if (rn_sink__stopping(s))
                goto out;
        }
        if (warned) {
            rn_sink__warn(s, "writing again");
            warned = 0;
        }
        rn_sink__count(&s->out, ws->delivered);
        rn_chan_done(s->o.chan, s->o.index, b.end);
    }
out:
    if (is_file && file_roll(ws, err) < 0)
        rn_sink__warn(s, "%s", err);
    rn_buf_free(&b.events);
    return NULL;
}

/* ---- public ------------------------------------------------------------- */

rn_sink *rn_sink_start(const rn_sink_spec *spec, const rn_sink_opts *o, char *err)
{
    rn_sink *s = calloc(1, sizeof *s);
    if (!s) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    s->spec = *spec;
    s->o = *o;
    void *(*run)(void *) = simple_run;
    int r = 0;
    switch (spec->kind) {
    case RN_SINK_STDOUT:
    case RN_SINK_FILE: {
        wsink *ws = calloc(1, sizeof *ws);
        if (!ws) {
            r = rn_seterr(err, "out of memory");
            break;
        }
        ws->fd = -1;
        s->impl = ws;
        if (spec->kind == RN_SINK_STDOUT) {
            if (!(ws->w = rn_writer_new(STDOUT_FILENO, o->fmt)))
                r = rn_seterr(err, "out of memory");
        } else if (mkdir(spec->dir, 0755) < 0 && errno != EEXIST) {
            r = rn_seterr(err, "sink %s: %s: %s", spec->name, spec->dir, strerror(errno));
        } else {
            r = recover_files(s, err);
        }
        break;
    }
    case RN_SINK_TCP:
        run = rn_sink__tcp_run;
        r = rn_sink__tcp_init(s, err);
        break;
    default:
        run = rn_sink__kafka_run;
        r = rn_sink__kafka_init(s, err);
        break;
    }
    if (r == 0 && (r = pthread_create(&s->thread, NULL, run, s)) != 0)
        r = rn_seterr(err, "sink %s: cannot start a thread: %s", spec->name, strerror(r));
    if (r < 0) {
        rn_sink_free(s);
        return NULL;
    }
    s->started = 1;
    return s;
}

void rn_sink_stop(rn_sink *s)
{
    __atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE);
    if (s->wake)
        s->wake(s);
}

void rn_sink_join(rn_sink *s)
{
    if (s && s->started) {
        pthread_join(s->thread, NULL);
        s->started = 0;
    }
}

void rn_sink_free(rn_sink *s)
{
    if (!s)
        return;
    rn_sink_join(s);
    if (s->spec.kind == RN_SINK_STDOUT || s->spec.kind == RN_SINK_FILE) {
        wsink *ws = s->impl;
        if (ws) {
            rn_writer_free(ws->w);
            if (ws->fd >= 0)
                close(ws->fd);
        }
        free(ws);
    } else {
        free(s->impl);
    }
    free(s);
}

const char *rn_sink_name(const rn_sink *s) { return s->spec.name; }
uint64_t rn_sink_out(const rn_sink *s) { return __atomic_load_n(&s->out, __ATOMIC_RELAXED); }
uint64_t rn_sink_retries(const rn_sink *s)
{
    return __atomic_load_n(&s->retries, __ATOMIC_RELAXED);
}
uint64_t rn_sink_dropped(const rn_sink *s)
{
    return __atomic_load_n(&s->dropped, __ATOMIC_RELAXED);
}
