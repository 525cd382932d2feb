/* state.c -- winagg's state file (--state): the slices and the running
 * window written whole, versioned and checksummed, by durable replace, and
 * read back into a fresh window. The format is in window.h. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "window/window_int.h"


#define STATE_MAGIC "runnel-window\n"
#define STATE_MAGIC_LEN 14
#define STATE_VERSION 2     /* 2: decimals (scales); version 1 files still load */
#define SIG_MAX 65536
#define WBUF ((size_t)1 << 20)      /* a multiple of 8: see ck_words */

static inline uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Checksum: 8-byte little-endian words mixed in one at a time with core's
 * hash mix (the constants are the file format's: state files written
 * before the hash moved to core still load); a short last word is
 * zero-padded. Blocks before the last are multiples of 8. */
static uint64_t ck_words(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = rn_hash_mix(h ^ le64(p + i), RN_HASH_P2);
    if (i < n) {
        unsigned char tail[8] = { 0 };
        memcpy(tail, p + i, n - i);
        h = rn_hash_mix(h ^ le64(tail), RN_HASH_P2);
    }
    return h;
}

static uint64_t ck_final(uint64_t h, uint64_t total)
{
    return rn_hash_mix(h ^ total, RN_HASH_P3);
}

/* The file is written in blocks of WBUF bytes, summed as they go out. */
typedef struct wr {
    rn_afile f;
    unsigned char *buf;
    size_t len;
    uint64_t ck, total;
    int failed;         /* a write failed: err says why, the rest is skipped */
    char *err;
} wr;

static void wr_block(wr *o)
{
    o->ck = ck_words(o->ck, o->buf, o->len);
    o->total += o->len;
    if (!o->failed && rn_afile_write(&o->f, o->buf, o->len, o->err) < 0)
        o->failed = 1;
    o->len = 0;
}

static void wr_bytes(wr *o, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n) {
        size_t c = WBUF - o->len < n ? WBUF - o->len : n;
        memcpy(o->buf + o->len, s, c);
        o->len += c;
        s += c;
        n -= c;
        if (o->len == WBUF)
            wr_block(o);
    }
}

static void wr_u64(wr *o, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    wr_bytes(o, b, 8);
}

static void wr_u32(wr *o, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    wr_bytes(o, b, 4);
}

static void wr_u8(wr *o, unsigned v)
{
    unsigned char b = (unsigned char)v;
    wr_bytes(o, &b, 1);
}

static void wr_f64(wr *o, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    wr_u64(o, u);
}

static void wr_num(wr *o, rn_wnum n)
{
    wr_u8(o, (unsigned)n.is_float);
    wr_u8(o, n.is_float ? 0 : (unsigned)n.scale);
    wr_u64(o, (uint64_t)n.u.i);
}

static void wr_str(wr *o, const char *s)
{
    size_t n = strlen(s);
    wr_u32(o, (uint32_t)n);
    wr_bytes(o, s, n);
}

static void wr_acc(wr *o, rn_agg agg, const rn_wacc *a)
{
    wr_u64(o, (uint64_t)a->count);
    if (rn_window__is_sum(agg)) {
        wr_u64(o, (uint64_t)a->u.s.nf);
        wr_u64(o, (uint64_t)a->u.s.nbad);
        wr_u64(o, a->u.s.isum.lo);
        wr_u64(o, a->u.s.isum.hi);
        wr_f64(o, a->u.s.dsum);
        wr_f64(o, a->u.s.dcomp);
        wr_f64(o, a->u.s.bad);
        wr_u8(o, (unsigned)a->u.s.scale);
        wr_u8(o, (unsigned)a->u.s.inexact);
        wr_u64(o, (uint64_t)a->u.s.nscale);
    } else if (rn_window__minmax(agg)) {
        wr_num(o, a->u.best);
    }
}

static size_t acc_wire_len(rn_agg agg, uint32_t version)
{
    if (version == 1)
        return 8 + (rn_window__is_sum(agg) ? 56 : rn_window__minmax(agg) ? 9 : 0);
    return 8 + (rn_window__is_sum(agg) ? 66 : rn_window__minmax(agg) ? 10 : 0);
}

/* The window's own options, stored next to the caller's. */
static void module_sig(const rn_window *w, char *out, size_t n)
{
    snprintf(out, n, "agg=%s width=%" PRId64 " slide=%" PRId64 " changed=%d",
             rn_agg_name(w->agg), w->W, w->S, w->emit_changed);
}

int rn_window_save(const rn_window *w, const char *path, const char *optsig, char *err)
{
    char msig[256];
    wr o = { .err = err };

    if (!optsig)
        optsig = "";
    if (strlen(optsig) > SIG_MAX)
        return rn_seterr(err, "%s: option signature too long", path);
    o.buf = malloc(WBUF);
    if (!o.buf)
        return rn_seterr(err, "%s: out of memory", path);
    if (rn_afile_open(&o.f, AT_FDCWD, NULL, path, NULL, err) < 0) {
        free(o.buf);
        return RN_ERR;
    }
    module_sig(w, msig, sizeof msig);
    wr_bytes(&o, STATE_MAGIC, STATE_MAGIC_LEN);
    wr_u32(&o, STATE_VERSION);
    wr_str(&o, optsig);
    wr_str(&o, msig);
    wr_u64(&o, (uint64_t)w->C);
    wr_u8(&o, (unsigned)w->passed);
    wr_u64(&o, w->nsl);
    for (size_t i = 0; i < w->nsl; i++) {
        const rn_wtab *t = &w->sl[i]->t;
        wr_u64(&o, (uint64_t)w->sl[i]->n);
        wr_u64(&o, t->n);
        for (size_t j = 0; j < t->n; j++) {
            rn_wtab_ent *e = rn_wtab__ent(t, j);
            wr_u32(&o, e->klen);
            wr_bytes(&o, rn_wtab__key(t, e), e->klen);
            wr_acc(&o, w->agg, rn_window__slice_acc(e));
        }
    }
    wr_u64(&o, w->run.n);
    for (size_t j = 0; j < w->run.n; j++) {
        rn_wtab_ent *e = rn_wtab__ent(&w->run, j);
        rn_wrent *x = rn_window__run_ent(e);
        wr_u32(&o, e->klen);
        wr_bytes(&o, rn_wtab__key(&w->run, e), e->klen);
        wr_acc(&o, w->agg, &x->a);
        wr_u8(&o, (unsigned)x->has_prev);
        wr_num(&o, x->has_prev ? x->prev : (rn_wnum){ { 0 }, 0, 0 });
    }
    uint64_t ck = ck_final(ck_words(o.ck, o.buf, o.len), o.total + o.len);
    o.ck = 0;   /* the checksum itself is not summed */
    wr_u64(&o, ck);
    if (!o.failed && o.len && rn_afile_write(&o.f, o.buf, o.len, err) < 0)
        o.failed = 1;
    free(o.buf);
    if (o.failed) {
        rn_afile_abort(&o.f);
        return RN_ERR;
    }
    return rn_afile_commit(&o.f, 1, err);
}

/* A cursor over the file in memory; every read is bounded by end. */
typedef struct rd {
    const unsigned char *p;
    size_t off, end;
    const char *path;
    char *err;
    uint32_t version;   /* 1: no scales (every exact value an integer) */
} rd;

static int rd_short(rd *r, size_t n, const char *what)
{
    if (r->end - r->off >= n)
        return 0;
    return rn_seterr(r->err, "state file %s: truncated at byte %zu (%s)",
                     r->path, r->off, what);
}

static int corrupt(rd *r, size_t at, const char *what)
{
    return rn_seterr(r->err, "state file %s: corrupt at byte %zu: %s", r->path, at, what);
}

static int rd_u64(rd *r, uint64_t *v, const char *what)
{
    if (rd_short(r, 8, what) < 0)
        return -1;
    *v = le64(r->p + r->off);
    r->off += 8;
    return 0;
}

static int rd_u32(rd *r, uint32_t *v, const char *what)
{
    if (rd_short(r, 4, what) < 0)
        return -1;
    const unsigned char *p = r->p + r->off;
    *v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    r->off += 4;
    return 0;
}

static int rd_u8(rd *r, unsigned *v, const char *what)
{
    if (rd_short(r, 1, what) < 0)
        return -1;
    *v = r->p[r->off++];
    return 0;
}

static int rd_f64(rd *r, double *d, const char *what)
{
    uint64_t u;
    if (rd_u64(r, &u, what) < 0)
        return -1;
    memcpy(d, &u, 8);
    return 0;
}

static int rd_num(rd *r, rn_wnum *n, const char *what)
{
    unsigned f, sc = 0;
    uint64_t bits;
    size_t at = r->off;
    if (rd_u8(r, &f, what) < 0 || (r->version >= 2 && rd_u8(r, &sc, what) < 0)
        || rd_u64(r, &bits, what) < 0)
        return -1;
    if (f > 1 || sc > RN_DEC_MAXSCALE || (f && sc))
        return corrupt(r, at, "bad value type");
    n->is_float = (int)f;
    n->scale = (int)sc;
    n->u.i = (int64_t)bits;
    return 0;
}

/* A length-prefixed key: *k points into the file. */
static int rd_key(rd *r, const char **k, size_t *klen)
{
    uint32_t n;
    size_t at = r->off;
    if (rd_u32(r, &n, "key length") < 0)
        return -1;
    if (n > RN_WIN_KEY_MAX)
        return corrupt(r, at, "key length out of range");
    if (rd_short(r, n, "key") < 0)
        return -1;
    *k = (const char *)r->p + r->off;
    *klen = n;
    r->off += n;
    return 0;
}

static int rd_acc(rd *r, rn_agg agg, rn_wacc *a)
{
    uint64_t u;
    size_t at = r->off;
    if (rd_u64(r, &u, "count") < 0)
        return -1;
    if (u == 0 || u > INT64_MAX)
        return corrupt(r, at, "count out of range");
    a->count = (int64_t)u;
    if (rn_window__is_sum(agg)) {
        uint64_t nf, nbad;
        at = r->off;
        if (rd_u64(r, &nf, "sum") < 0 || rd_u64(r, &nbad, "sum") < 0
            || rd_u64(r, &a->u.s.isum.lo, "sum") < 0 || rd_u64(r, &a->u.s.isum.hi, "sum") < 0
            || rd_f64(r, &a->u.s.dsum, "sum") < 0 || rd_f64(r, &a->u.s.dcomp, "sum") < 0
            || rd_f64(r, &a->u.s.bad, "sum") < 0)
            return -1;
        if (nf > u || nbad > nf)
            return corrupt(r, at, "sum counts out of range");
        a->u.s.nf = (int64_t)nf;
        a->u.s.nbad = (int64_t)nbad;
        a->u.s.scale = 0;
        a->u.s.inexact = 0;
        a->u.s.nscale = (int64_t)(u - nf);
        if (r->version >= 2) {
            unsigned sc, inexact;
            uint64_t ns;
            at = r->off;
            if (rd_u8(r, &sc, "sum scale") < 0 || rd_u8(r, &inexact, "sum scale") < 0
                || rd_u64(r, &ns, "sum scale") < 0)
                return -1;
            if (sc > RN_DEC_MAXSCALE || inexact > 1 || ns > u - nf)
                return corrupt(r, at, "sum scale out of range");
            a->u.s.scale = (int32_t)sc;
            a->u.s.inexact = (int32_t)inexact;
            a->u.s.nscale = (int64_t)ns;
        }
    } else if (rn_window__minmax(agg)) {
        if (rd_num(r, &a->u.best, "value") < 0)
            return -1;
    }
    return 0;
}

/* Read an entry count, bounded by what the rest of the file can hold. */
static int rd_count(rd *r, uint64_t *n, size_t min_each, const char *what)
{
    size_t at = r->off;
    if (rd_u64(r, n, what) < 0)
        return -1;
    if (*n > (r->end - r->off) / min_each)
        return corrupt(r, at, "count larger than the file");
    return 0;
}

static int check_sig(rd *r, const char *want)
{
    uint32_t n;
    size_t at = r->off;
    if (rd_u32(r, &n, "option signature") < 0)
        return -1;
    if (n > SIG_MAX)
        return corrupt(r, at, "option signature length out of range");
    if (rd_short(r, n, "option signature") < 0)
        return -1;
    const char *s = (const char *)r->p + r->off;
    r->off += n;
    if (strlen(want) != n || memcmp(s, want, n) != 0)
        return rn_seterr(r->err, "state file %s was written with different options: "
                         "'%.*s' (now '%s')", r->path, (int)(n < 80 ? n : 80), s, want);
    return 0;
}

static int load_body(rn_window *w, rd *r, const char *optsig)
{
    char msig[256];
    uint32_t version;
    uint64_t u, nsl, n;
    unsigned passed;
    size_t at;

    if (r->end < STATE_MAGIC_LEN || memcmp(r->p, STATE_MAGIC, STATE_MAGIC_LEN) != 0)
        return rn_seterr(r->err, "state file %s: not a winagg state file (byte 0)", r->path);
    r->off = STATE_MAGIC_LEN;
    at = r->off;
    if (rd_u32(r, &version, "version") < 0)
        return -1;
    if (version < 1 || version > STATE_VERSION)
        return rn_seterr(r->err, "state file %s: version %u not supported (byte %zu)",
                         r->path, version, at);
    r->version = version;
    module_sig(w, msig, sizeof msig);
    if (check_sig(r, optsig ? optsig : "") < 0 || check_sig(r, msig) < 0)
        return -1;
    at = r->off;
    if (rd_u64(r, &u, "last window") < 0 || rd_u8(r, &passed, "last window") < 0)
        return -1;
    int64_t C = (int64_t)u;
    if (C < w->smin - 1 || C > w->smax + w->k - 1 || passed > 1)
        return corrupt(r, at, "last window out of range");
    w->C = C;
    w->passed = (int)passed;

    size_t each = 4 + acc_wire_len(w->agg, version);
    if (rd_count(r, &nsl, 16, "slice count") < 0)
        return -1;
    for (uint64_t i = 0; i < nsl; i++) {
        at = r->off;
        if (rd_u64(r, &u, "slice") < 0)
            return -1;
        int64_t sn = (int64_t)u;
        if (sn < w->smin || sn > w->smax || sn < C - w->k + 1
            || (w->nsl && sn <= w->sl[w->nsl - 1]->n))
            return corrupt(r, at, "slice number out of range or order");
        /* Pending slices are found after nin: make this one pending. */
        size_t nin = w->nin;
        w->nin = w->nsl;
        int nomem = 0;
        rn_wslice *s = rn_window__find_slice(w, sn, 1, &nomem);
        w->nin = nin + (sn <= C);
        if (!s)
            return rn_seterr(r->err, "state file %s: out of memory", r->path);
        if (rd_count(r, &n, each, "slice size") < 0)
            return -1;
        if (n == 0)
            return corrupt(r, at, "empty slice");
        for (uint64_t j = 0; j < n; j++) {
            const char *k;
            size_t klen, pos;
            at = r->off;
            if (rd_key(r, &k, &klen) < 0)
                return -1;
            uint32_t h = rn_window__hash(w, k, klen);
            if (rn_wtab__reserve(&s->t) < 0)
                return rn_seterr(r->err, "state file %s: out of memory", r->path);
            if (rn_wtab__lookup(&s->t, h, k, klen, &pos) != RN_WTAB_NONE)
                return corrupt(r, at, "duplicate key");
            size_t e = rn_wtab__insert(&s->t, pos, h, k, klen);
            if (e == RN_WTAB_NONE)
                return rn_seterr(r->err, "state file %s: out of memory", r->path);
            w->entries++;
            if (rd_acc(r, w->agg, rn_window__slice_acc(rn_wtab__ent(&s->t, e))) < 0)
                return -1;
        }
    }
    at = r->off;
    if (rd_count(r, &n, each + 10, "window size") < 0)
        return -1;
    if ((n == 0) != (w->nin == 0))
        return corrupt(r, at, "window table does not match its slices");
    for (uint64_t j = 0; j < n; j++) {
        const char *k;
        size_t klen, pos;
        unsigned hp;
        at = r->off;
        if (rd_key(r, &k, &klen) < 0)
            return -1;
        uint32_t h = rn_window__hash(w, k, klen);
        if (rn_wtab__reserve(&w->run) < 0)
            return rn_seterr(r->err, "state file %s: out of memory", r->path);
        if (rn_wtab__lookup(&w->run, h, k, klen, &pos) != RN_WTAB_NONE)
            return corrupt(r, at, "duplicate key");
        size_t e = rn_wtab__insert(&w->run, pos, h, k, klen);
        if (e == RN_WTAB_NONE)
            return rn_seterr(r->err, "state file %s: out of memory", r->path);
        rn_wrent *x = rn_window__run_ent(rn_wtab__ent(&w->run, e));
        x->stamp = INT64_MIN;
        if (rd_acc(r, w->agg, &x->a) < 0)
            return -1;
        at = r->off;
        if (rd_u8(r, &hp, "previous value") < 0 || rd_num(r, &x->prev, "previous value") < 0)
            return -1;
        if (hp > 1)
            return corrupt(r, at, "bad flag");
        x->has_prev = (int)hp;
    }
    if (r->off != r->end)
        return corrupt(r, r->off, "data after the window table");
    return 0;
}

int rn_window_load(rn_window *w, const char *path, const char *optsig, char *err)
{
    struct stat st;
    unsigned char *buf = NULL;
    int fd, rc = RN_ERR;

    if (w->nsl || w->run.n || w->passed)
        return rn_seterr(err, "state file %s: can only be loaded into a fresh window", path);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return RN_WIN_FRESH;
        return rn_seterr(err, "state file %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) < 0) {
        rn_seterr(err, "state file %s: fstat: %s", path, strerror(errno));
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = malloc(size ? size : 1);
    if (!buf) {
        rn_seterr(err, "state file %s: out of memory (%zu bytes)", path, size);
        goto out;
    }
    /* The file is replaced whole, never rewritten in place, so it cannot
     * shrink under this descriptor. */
    int e = rn_pread_full(fd, buf, size, 0);
    if (e < 0) {
        rn_seterr(err, "state file %s: read: %s", path, rn_io_strerror(e));
        goto out;
    }
    rd r = { buf, 0, size >= 8 ? size - 8 : 0, path, err, STATE_VERSION };
    if (size < STATE_MAGIC_LEN + 8) {
        if (size >= STATE_MAGIC_LEN && memcmp(buf, STATE_MAGIC, STATE_MAGIC_LEN) == 0)
            rn_seterr(err, "state file %s: truncated at byte %zu", path, size);
        else
            rn_seterr(err, "state file %s: not a winagg state file (byte 0)", path);
        goto out;
    }
    if (load_body(w, &r, optsig) < 0)
        goto bad;
    uint64_t ck = ck_final(ck_words(0, buf, r.end), r.end);
    if (ck != le64(buf + r.end)) {
        rn_seterr(err, "state file %s: corrupt: checksum mismatch (byte %zu)", path, r.end);
        goto bad;
    }
    rc = 0;
    goto out;
bad:
    rn_window__reset(w);
out:
    free(buf);
    close(fd);
    return rc;
}
