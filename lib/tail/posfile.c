/* posfile.c -- file identities and the atomically saved position file. */
#include "tail/tail.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

#define HEADER "runnel-pos 1\n"

static uint64_t fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* Hash the first len bytes of fd; RN_ERR on error, 1 when the file is
 * shorter. */
static int hash_prefix(int fd, uint32_t len, uint64_t *hash, char *err)
{
    unsigned char buf[RN_FP_MAX];
    int r = rn_pread_full(fd, buf, len, 0);
    if (r == RN_ESHORT)
        return 1;
    if (r < 0)
        return rn_seterr(err, "read: %s", strerror(errno));
    *hash = fnv1a(buf, len);
    return 0;
}

int rn_fileid_of(int fd, rn_fileid *id, char *err)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return rn_seterr(err, "fstat: %s", strerror(errno));
    id->dev = (uint64_t)st.st_dev;
    id->ino = (uint64_t)st.st_ino;
    id->fplen = st.st_size < RN_FP_MAX ? (uint32_t)st.st_size : RN_FP_MAX;
    for (;;) {
        int r = hash_prefix(fd, id->fplen, &id->fphash, err);
        if (r <= 0)
            return r;
        id->fplen /= 2;   /* shrank under us: fingerprint what is there */
    }
}

int rn_fileid_match(const rn_fileid *id, int fd, char *err)
{
    struct stat st;
    uint64_t h;
    if (fstat(fd, &st) < 0)
        return rn_seterr(err, "fstat: %s", strerror(errno));
    if ((uint64_t)st.st_dev != id->dev || (uint64_t)st.st_ino != id->ino)
        return 0;
    int r = hash_prefix(fd, id->fplen, &h, err);
    if (r < 0)
        return RN_ERR;
    return r == 0 && h == id->fphash;
}

rn_posentry *rn_posfile_find(rn_posfile *pf, uint64_t dev, uint64_t ino)
{
    for (size_t i = 0; i < pf->n; i++)
        if (pf->e[i].id.dev == dev && pf->e[i].id.ino == ino)
            return &pf->e[i];
    return NULL;
}

int rn_posfile_add(rn_posfile *pf, const rn_fileid *id, uint64_t offset,
                   const char *path)
{
    if (pf->n == pf->cap) {
        size_t cap = pf->cap ? pf->cap * 2 : 16;
        rn_posentry *e = realloc(pf->e, cap * sizeof *e);
        if (!e)
            return -1;
        pf->e = e;
        pf->cap = cap;
    }
    char *p = strdup(path ? path : "");
    if (!p)
        return -1;
    pf->e[pf->n].id = *id;
    pf->e[pf->n].offset = offset;
    pf->e[pf->n].path = p;
    pf->n++;
    return 0;
}

void rn_posfile_clear(rn_posfile *pf)
{
    for (size_t i = 0; i < pf->n; i++)
        free(pf->e[i].path);
    pf->n = 0;
}

void rn_posfile_free(rn_posfile *pf)
{
    rn_posfile_clear(pf);
    free(pf->e);
    pf->e = NULL;
    pf->cap = 0;
}

static int unescape_path(char *s)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r != '%') {
            *w++ = *r;
            continue;
        }
        unsigned v;
        if (sscanf(r + 1, "%2x", &v) != 1 || !r[1] || !r[2])
            return -1;
        *w++ = (char)v;
        r += 2;
    }
    *w = '\0';
    return 0;
}

int rn_posfile_load(rn_posfile *pf, const char *path, char *err)
{
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned lineno = 0;

    if (!f) {
        if (errno == ENOENT)
            return 0;
        return rn_seterr(err, "%s: %s", path, strerror(errno));
    }
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, HEADER) != 0) {
                rn_seterr(err, "%s: line 1: not a runnel position file "
                          "(expected 'runnel-pos 1')", path);
                goto fail;
            }
            continue;
        }
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        rn_fileid id;
        uint64_t off;
        int pathpos = -1;
        unsigned fplen;
        if (sscanf(line, "%" SCNu64 " %" SCNu64 " %u %" SCNx64 " %" SCNu64 " %n",
                   &id.dev, &id.ino, &fplen, &id.fphash, &off, &pathpos) != 5
            || pathpos < 0 || fplen > RN_FP_MAX || unescape_path(line + pathpos) < 0) {
            rn_seterr(err, "%s: line %u: malformed entry", path, lineno);
            goto fail;
        }
        id.fplen = fplen;
        if (rn_posfile_add(pf, &id, off, line + pathpos) < 0) {
            rn_seterr(err, "%s: out of memory", path);
            goto fail;
        }
    }
    if (ferror(f)) {
        rn_seterr(err, "%s: read: %s", path, strerror(errno));
        goto fail;
    }
    if (lineno == 0 && !ferror(f)) {
        /* An empty file: a crash between create and first write cannot
         * happen (we rename a complete file), so someone else made it. */
        rn_seterr(err, "%s: empty, not a runnel position file", path);
        goto fail;
    }
    free(line);
    fclose(f);
    return 0;
fail:
    free(line);
    fclose(f);
    rn_posfile_clear(pf);
    return RN_ERR;
}

static int put_path(rn_buf *b, const char *p)
{
    static const char hex[] = "0123456789abcdef";
    for (; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= 0x20 || c == '%' || c == 0x7f) {
            char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
            if (rn_buf_append(b, esc, 3) < 0)
                return -1;
        } else if (rn_buf_append(b, p, 1) < 0) {
            return -1;
        }
    }
    return rn_buf_append(b, "\n", 1);
}

/* The file's bytes for pf into b (emptied first). -1: out of memory. */
static int encode(const rn_posfile *pf, rn_buf *b)
{
    b->len = 0;
    if (rn_buf_append(b, HEADER, strlen(HEADER)) < 0)
        return -1;
    for (size_t i = 0; i < pf->n; i++) {
        const rn_posentry *e = &pf->e[i];
        char num[128];
        int n = snprintf(num, sizeof num, "%" PRIu64 " %" PRIu64 " %u %016" PRIx64
                         " %" PRIu64 " ", e->id.dev, e->id.ino, e->id.fplen,
                         e->id.fphash, e->offset);
        if (rn_buf_append(b, num, (size_t)n) < 0 || put_path(b, e->path) < 0)
            return -1;
    }
    return 0;
}

/* PATH.tmp, fsynced, renamed over PATH, and the directory fsynced. */
static int write_file(const rn_buf *b, const char *path, char *err)
{
    return rn_file_replace(AT_FDCWD, NULL, path, b->p, b->len, 1, err);
}

int rn_posfile_save(const rn_posfile *pf, const char *path, char *err)
{
    rn_buf b = { 0 };
    int r = encode(pf, &b) < 0 ? rn_seterr(err, "%s: out of memory", path)
                               : write_file(&b, path, err);
    rn_buf_free(&b);
    return r;
}

/* ---- saving off the loop thread --------------------------------------------- */

static void saver_work(uv_work_t *w);
static void saver_after(uv_work_t *w, int status);

static void saver_start(rn_possaver *s)
{
    rn_buf t = s->running;          /* the waiting bytes run; the old buffer waits */
    s->running = s->waiting;
    s->waiting = t;
    s->has_waiting = 0;
    s->busy = 1;
    s->work.data = s;
    if (uv_queue_work(s->loop, &s->work, saver_work, saver_after) < 0)
        s->busy = 0;                /* cannot fail for a live loop; the next save tries */
}

/* In the pool: written unless a save made directly (rn_possaver_save, at a
 * stop) has been written since it was queued, which this older one must
 * not undo. */
static void saver_work(uv_work_t *w)
{
    rn_possaver *s = w->data;
    pthread_mutex_lock(&s->mu);
    s->r = s->superseded ? 0 : write_file(&s->running, s->path, s->err);
    pthread_mutex_unlock(&s->mu);
}

/* The result of a superseded save is not said: the direct one's is, by its
 * caller, and an older failure must not undo that either. */
static void saver_after(uv_work_t *w, int status)
{
    rn_possaver *s = w->data;
    (void)status;
    s->busy = 0;
    if (!s->superseded)
        rn_posfile_said(s->r, s->err, s->path, &s->failing, s->on_warn, s->data);
    s->superseded = 0;
    if (s->has_waiting)
        saver_start(s);
}

int rn_possaver_init(rn_possaver *s, uv_loop_t *loop, const char *path,
                     void (*on_warn)(void *data, const char *msg), void *data)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->path = path;
    s->on_warn = on_warn;
    s->data = data;
    return pthread_mutex_init(&s->mu, NULL) == 0 ? 0 : RN_ERR;
}

int rn_possaver_queue(rn_possaver *s, const rn_posfile *pf, char *err)
{
    if (encode(pf, &s->waiting) < 0)
        return rn_seterr(err, "%s: out of memory", s->path);
    s->has_waiting = 1;
    if (!s->busy)
        saver_start(s);
    return 0;
}

int rn_possaver_save(rn_possaver *s, const rn_posfile *pf, char *err)
{
    s->has_waiting = 0;             /* older than this one */
    if (encode(pf, &s->waiting) < 0)
        return rn_seterr(err, "%s: out of memory", s->path);
    pthread_mutex_lock(&s->mu);     /* after a save in the pool, if one runs */
    int r = write_file(&s->waiting, s->path, err);
    if (r == 0 && s->busy)
        s->superseded = 1;          /* the pool's, queued before this one */
    pthread_mutex_unlock(&s->mu);
    return r;
}

void rn_possaver_destroy(rn_possaver *s)
{
    rn_buf_free(&s->running);
    rn_buf_free(&s->waiting);
    pthread_mutex_destroy(&s->mu);
}

int rn_posfile_said(int r, const char *err, const char *path, int *failing,
                    void (*on_warn)(void *data, const char *msg), void *data)
{
    if (r < 0 && !*failing)
        rn_warn_to(on_warn, data, "positions not saved: %s; trying again at the next save",
                   err);
    else if (r == 0 && *failing)
        rn_warn_to(on_warn, data, "%s: positions saved again", path);
    *failing = r < 0;
    return r;
}
