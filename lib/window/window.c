/* window.c -- per-key aggregates over sliding windows: a table per slice and
 * a running window table kept by adding the slice that enters and
 * subtracting the one that leaves; emission and late events. See window.h
 * for the semantics. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "window/window_int.h"

/* ---- values and accumulators ------------------------------------------- */

static inline rn_wnum to_num(rn_value v)
{
    rn_wnum n;
    n.is_float = v.is_float != 0;
    if (n.is_float)
        n.u.f = v.f;
    else
        n.u.i = v.i;
    return n;
}

static inline rn_value to_value(rn_wnum n)
{
    rn_value v = { n.is_float, 0, 0 };
    if (n.is_float)
        v.f = n.u.f;
    else
        v.i = n.u.i;
    return v;
}

static inline void i128_add64(rn_i128 *a, int64_t v)
{
    uint64_t o = a->lo;
    a->lo += (uint64_t)v;
    a->hi += (v < 0 ? UINT64_MAX : 0) + (a->lo < o);
}

static inline void i128_add(rn_i128 *a, rn_i128 b)
{
    uint64_t o = a->lo;
    a->lo += b.lo;
    a->hi += b.hi + (a->lo < o);
}

static inline void i128_sub(rn_i128 *a, rn_i128 b)
{
    uint64_t borrow = a->lo < b.lo;
    a->lo -= b.lo;
    a->hi -= b.hi + borrow;
}

static inline int i128_fits64(rn_i128 a)
{
    return a.hi == ((a.lo >> 63) ? UINT64_MAX : 0);
}

static double i128_double(rn_i128 a)
{
    if (i128_fits64(a))
        return (double)(int64_t)a.lo;
    int neg = (a.hi >> 63) != 0;
    if (neg) {
        a.lo = ~a.lo + 1;
        a.hi = ~a.hi + (a.lo == 0);
    }
    double d = (double)a.hi * 18446744073709551616.0 + (double)a.lo;
    return neg ? -d : d;
}

/* s + x with the rounding error collected in c (Neumaier). */
static inline void neu_add(double *s, double *c, double x)
{
    double t = *s + x;
    if (isfinite(t))
        *c += fabs(*s) >= fabs(x) ? (*s - t) + x : (x - t) + *s;
    *s = t;
}

/* Sign of i - d, exactly (no rounding of i to a double). */
static int cmp_int_double(int64_t i, double d)
{
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    int64_t t = (int64_t)d;                 /* truncated, in range */
    if (i != t)
        return i < t ? -1 : 1;
    double frac = d - (double)t;            /* exact */
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int num_cmp(rn_wnum a, rn_wnum b)
{
    if (!a.is_float && !b.is_float)
        return (a.u.i > b.u.i) - (a.u.i < b.u.i);
    if (a.is_float && b.is_float)
        return (a.u.f > b.u.f) - (a.u.f < b.u.f);
    if (!a.is_float)
        return cmp_int_double(a.u.i, b.u.f);
    return -cmp_int_double(b.u.i, a.u.f);
}

static inline int is_nan(rn_wnum a)
{
    return a.is_float && isnan(a.u.f);
}

/* Whether v should replace best for min (want < 0) or max (want > 0). */
static int better(rn_wnum v, rn_wnum best, int want)
{
    if (is_nan(v))
        return 0;
    if (is_nan(best))
        return 1;
    int c = num_cmp(v, best);
    if (c == 0)
        return !v.is_float && best.is_float;
    return want < 0 ? c < 0 : c > 0;
}

static int num_same(rn_wnum a, rn_wnum b)
{
    if (a.is_float != b.is_float)
        return 0;
    if (!a.is_float)
        return a.u.i == b.u.i;
    return a.u.f == b.u.f || (isnan(a.u.f) && isnan(b.u.f));
}


static inline void acc_add(rn_agg agg, rn_wacc *a, rn_value v)
{
    switch (agg) {
    case RN_AGG_COUNT:
        break;
    case RN_AGG_SUM:
    case RN_AGG_AVG:
        if (!v.is_float) {
            i128_add64(&a->u.s.isum, v.i);
        } else {
            a->u.s.nf++;
            if (isfinite(v.f)) {
                neu_add(&a->u.s.dsum, &a->u.s.dcomp, v.f);
            } else {
                a->u.s.nbad++;
                a->u.s.bad += v.f;
            }
        }
        break;
    case RN_AGG_MIN:
    case RN_AGG_MAX:
        if (a->count == 0 || better(to_num(v), a->u.best, rn_window__minmax(agg)))
            a->u.best = to_num(v);
        break;
    }
    a->count++;
}

/* Add (sign > 0) or subtract a slice's accumulator to a running one. */
static void acc_merge(rn_agg agg, rn_wacc *r, const rn_wacc *s, int sign)
{
    if (sign > 0)
        r->count += s->count;
    else
        r->count -= s->count;
    if (!rn_window__is_sum(agg))
        return;
    if (sign > 0) {
        r->u.s.nf += s->u.s.nf;
        r->u.s.nbad += s->u.s.nbad;
        i128_add(&r->u.s.isum, s->u.s.isum);
        neu_add(&r->u.s.dsum, &r->u.s.dcomp, s->u.s.dsum);
        r->u.s.dcomp += s->u.s.dcomp;
    } else {
        r->u.s.nf -= s->u.s.nf;
        r->u.s.nbad -= s->u.s.nbad;
        i128_sub(&r->u.s.isum, s->u.s.isum);
        neu_add(&r->u.s.dsum, &r->u.s.dcomp, -s->u.s.dsum);
        r->u.s.dcomp -= s->u.s.dcomp;
    }
    if (r->u.s.nf == r->u.s.nbad)       /* no finite double left: no residue */
        r->u.s.dsum = r->u.s.dcomp = 0;
}

/* ---- the window ---------------------------------------------------------- */

/* A row to emit, sorted by key: the first 8 key bytes big-endian decide most
 * comparisons without touching the key. */
typedef struct rn_woutrow {
    uint64_t pfx;
    const char *key;
    size_t klen;
    rn_wnum v;
} outrow;

static inline int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b < 0) ? q - 1 : q;
}

static const char *const agg_names[] = { "count", "sum", "min", "max", "avg" };

const char *rn_agg_name(rn_agg agg)
{
    return (unsigned)agg < 5 ? agg_names[agg] : "?";
}

int rn_agg_parse(const char *s, rn_agg *agg, char *err)
{
    for (int i = 0; i < 5; i++)
        if (strcasecmp(s, agg_names[i]) == 0) {
            *agg = (rn_agg)i;
            return 0;
        }
    return rn_seterr(err, "unknown aggregate '%s' (count, sum, min, max, avg)", s);
}

rn_window *rn_window_new(const rn_window_opts *o, char *err)
{
    if (o->slide_ns <= 0)
        return rn_seterr(err, "the slide must be positive"), NULL;
    if (o->width_ns <= 0 || o->width_ns % o->slide_ns != 0)
        return rn_seterr(err, "the window length must be a positive multiple "
                         "of the slide"), NULL;
    if ((unsigned)o->agg > RN_AGG_AVG)
        return rn_seterr(err, "unknown aggregate %d", (int)o->agg), NULL;
    rn_window *w = calloc(1, sizeof *w);
    if (!w)
        return rn_seterr(err, "out of memory"), NULL;
    w->W = o->width_ns;
    w->S = o->slide_ns;
    w->k = w->W / w->S;
    w->agg = o->agg;
    w->emit_changed = o->emit_changed != 0;
    w->max_keys = o->max_keys;
    /* Every window holding slice n starts at >= (n-k+1)*S and ends at
     * <= (n+k)*S: keep both within int64. */
    w->smin = INT64_MIN / w->S + w->k;
    w->smax = INT64_MAX / w->S - w->k;
    if (w->smin > w->smax) {
        free(w);
        return rn_seterr(err, "the window is too long"), NULL;
    }
    w->C = w->smin - 1;
    size_t pay = offsetof(rn_wacc, u);
    if (rn_window__is_sum(w->agg))
        pay += sizeof(((rn_wacc *)0)->u.s);
    else if (rn_window__minmax(w->agg))
        pay += sizeof(rn_wnum);
    w->slice_esz = (sizeof(rn_wtab_ent) + pay + 7) & ~(size_t)7;
    w->seed = rn_hash_seed();
    if (rn_wtab__init(&w->run, sizeof(rn_wtab_ent) + sizeof(rn_wrent), 0, 0) < 0) {
        free(w);
        return rn_seterr(err, "out of memory"), NULL;
    }
    return w;
}

static void slice_free(rn_wslice *s)
{
    rn_wtab__free(&s->t);
    free(s);
}

/* Free sl[0..m) and shift the rest down. */
static void drop_front(rn_window *w, size_t m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m; i++) {
        rn_wslice *s = w->sl[i];
        w->entries -= s->t.n;
        w->hint_n = s->t.n;
        w->hint_k = s->t.klen;
        if (s == w->cur)
            w->cur = NULL;
        slice_free(s);
    }
    memmove(w->sl, w->sl + m, (w->nsl - m) * sizeof *w->sl);
    w->nsl -= m;
    w->nin = w->nin > m ? w->nin - m : 0;
}

void rn_window__reset(rn_window *w)
{
    w->cur = NULL;
    w->nin = w->nsl;
    drop_front(w, w->nsl);
    rn_wtab__reset(&w->run);
    w->C = w->smin - 1;
    w->passed = 0;
    w->entries = 0;
}

void rn_window_free(rn_window *w)
{
    if (!w)
        return;
    for (size_t i = 0; i < w->nsl; i++)
        slice_free(w->sl[i]);
    free(w->sl);
    rn_wtab__free(&w->run);
    free(w->out);
    free(w);
}

rn_wslice *rn_window__find_slice(rn_window *w, int64_t n, int create, int *nomem)
{
    size_t lo = w->nin, hi = w->nsl;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (w->sl[mid]->n < n)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < w->nsl && w->sl[lo]->n == n)
        return w->sl[lo];
    if (!create)
        return NULL;
    if (w->nsl == w->capsl) {
        size_t cap = w->capsl ? w->capsl * 2 : 16;
        rn_wslice **a = realloc(w->sl, cap * sizeof *a);
        if (!a)
            goto nomem;
        w->sl = a;
        w->capsl = cap;
    }
    rn_wslice *s = malloc(sizeof *s);
    if (!s)
        goto nomem;
    s->n = n;
    s->fresh = 0;
    if (rn_wtab__init(&s->t, w->slice_esz, w->hint_n, w->hint_k) < 0) {
        free(s);
        goto nomem;
    }
    memmove(w->sl + lo + 1, w->sl + lo, (w->nsl - lo) * sizeof *w->sl);
    w->sl[lo] = s;
    w->nsl++;
    return s;
nomem:
    *nomem = 1;
    return NULL;
}

/* Remove a pending slice (one just made that stayed empty). */
static void drop_pending(rn_window *w, rn_wslice *s)
{
    size_t i = w->nin;
    while (i < w->nsl && w->sl[i] != s)
        i++;
    if (i == w->nsl)
        return;
    memmove(w->sl + i, w->sl + i + 1, (w->nsl - i - 1) * sizeof *w->sl);
    w->nsl--;
    if (w->cur == s)
        w->cur = NULL;
    slice_free(s);
}

int rn_window_add(rn_window *w, int64_t t, const char *key, size_t klen, rn_value v)
{
    if (klen > RN_WIN_KEY_MAX) {
        w->invalid++;
        return RN_WIN_INVALID;
    }
    rn_wslice *s = w->cur;
    if (!s || t < w->cur_lo || t >= w->cur_hi) {
        int64_t n = floor_div(t, w->S);
        if (n < w->smin || n > w->smax) {
            w->invalid++;
            return RN_WIN_INVALID;
        }
        if (n <= w->C) {
            w->late++;
            return RN_WIN_LATE;
        }
        int nomem = 0;
        s = rn_window__find_slice(w, n, 0, &nomem);
        if (!s) {
            /* Do not make a slice for an event max_keys turns away. */
            if (w->max_keys && w->entries >= w->max_keys) {
                w->evicted++;
                return RN_WIN_EVICTED;
            }
            s = rn_window__find_slice(w, n, 1, &nomem);
            if (!s)
                return RN_ENOMEM;
        }
        w->cur = s;
        w->cur_lo = n * w->S;
        w->cur_hi = w->cur_lo + w->S;
    }
    uint32_t h = rn_window__hash(w, key, klen);
    size_t pos, i;
    if (rn_wtab__reserve(&s->t) < 0)
        goto nomem;
    i = rn_wtab__lookup(&s->t, h, key, klen, &pos);
    if (i == RN_WTAB_NONE) {
        if (w->max_keys && w->entries >= w->max_keys) {
            w->evicted++;
            return RN_WIN_EVICTED;
        }
        i = rn_wtab__insert(&s->t, pos, h, key, klen);
        if (i == RN_WTAB_NONE)
            goto nomem;
        w->entries++;
    }
    acc_add(w->agg, rn_window__slice_acc(rn_wtab__ent(&s->t, i)), v);
    s->fresh = 1;
    return 0;
nomem:
    if (s->t.n == 0)
        drop_pending(w, s);     /* a slice is never empty */
    return RN_ENOMEM;
}

/* Add a slice's accumulators into the running table. */
static int run_add(rn_window *w, rn_wslice *s)
{
    rn_wtab *r = &w->run;
    for (size_t i = 0; i < s->t.n; i++) {
        rn_wtab_ent *e = rn_wtab__ent(&s->t, i);
        const char *k = s->t.key + e->koff;
        size_t pos, j;
        if (rn_wtab__reserve(r) < 0)
            return RN_ENOMEM;
        j = rn_wtab__lookup(r, e->hash, k, e->klen, &pos);
        if (j == RN_WTAB_NONE) {
            j = rn_wtab__insert(r, pos, e->hash, k, e->klen);
            if (j == RN_WTAB_NONE)
                return RN_ENOMEM;
            rn_window__run_ent(rn_wtab__ent(r, j))->stamp = INT64_MIN;
        }
        acc_merge(w->agg, &rn_window__run_ent(rn_wtab__ent(r, j))->a, rn_window__slice_acc(e), 1);
    }
    return 0;
}

/* Subtract a slice; keys whose count reaches zero leave. */
static void run_sub(rn_window *w, rn_wslice *s)
{
    rn_wtab *r = &w->run;
    for (size_t i = 0; i < s->t.n; i++) {
        rn_wtab_ent *e = rn_wtab__ent(&s->t, i);
        size_t j = rn_wtab__lookup(r, e->hash, s->t.key + e->koff, e->klen, NULL);
        if (j == RN_WTAB_NONE)
            continue;   /* cannot happen: every slice key was added */
        rn_wrent *x = rn_window__run_ent(rn_wtab__ent(r, j));
        acc_merge(w->agg, &x->a, rn_window__slice_acc(e), -1);
        if (x->a.count <= 0)
            rn_wtab__delete(r, j);
    }
}

/* The slice entry for a running entry's key, or NULL. */
static rn_wacc *slice_find(const rn_wslice *s, const rn_wtab *r, const rn_wtab_ent *re)
{
    size_t j = rn_wtab__lookup(&s->t, re->hash, r->key + re->koff, re->klen, NULL);
    return j == RN_WTAB_NONE ? NULL : rn_window__slice_acc(rn_wtab__ent(&s->t, j));
}

static rn_wnum window_value(rn_window *w, rn_wtab_ent *e)
{
    rn_wrent *x = rn_window__run_ent(e);
    rn_wnum v;
    if (w->agg == RN_AGG_COUNT) {
        v.is_float = 0;
        v.u.i = x->a.count;
        return v;
    }
    if (rn_window__minmax(w->agg))
        return x->a.u.best;
    const rn_wacc *a = &x->a;
    if (a->u.s.nf == 0 && i128_fits64(a->u.s.isum) && w->agg == RN_AGG_SUM) {
        v.is_float = 0;
        v.u.i = (int64_t)a->u.s.isum.lo;
        return v;
    }
    double d = i128_double(a->u.s.isum) + (a->u.s.dsum + a->u.s.dcomp);
    if (a->u.s.nbad) {
        /* inf/nan cannot be subtracted: sum them afresh from the slices. */
        double bad = 0;
        for (size_t i = 0; i < w->nin; i++) {
            rn_wacc *sa = slice_find(w->sl[i], &w->run, e);
            if (sa)
                bad += sa->u.s.bad;
        }
        d += bad;
    }
    v.is_float = 1;
    v.u.f = w->agg == RN_AGG_AVG ? d / (double)a->count : d;
    return v;
}

static uint64_t key_prefix(const char *k, size_t n)
{
    uint64_t p = 0;
    for (size_t i = 0; i < 8; i++)
        p = (p << 8) | (i < n ? (unsigned char)k[i] : 0);
    return p;
}

static int outrow_cmp(const void *pa, const void *pb)
{
    const outrow *a = pa, *b = pb;
    if (a->pfx != b->pfx)
        return a->pfx < b->pfx ? -1 : 1;
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    if (n > 8) {
        int c = memcmp(a->key + 8, b->key + 8, n - 8);
        if (c)
            return c;
    }
    return (a->klen > b->klen) - (a->klen < b->klen);
}

/* Whether one of window e's slices, sl[0..nin), received an event in this
 * run (see rn_window_flush_fresh). */
static int holds_fresh(const rn_window *w)
{
    for (size_t i = 0; i < w->nin; i++)
        if (w->sl[i]->fresh)
            return 1;
    return 0;
}

/* Emit window e, whose slices are sl[0..nin), summed in run. */
static int emit_window(rn_window *w, int64_t e, rn_window_emit_fn fn, void *data)
{
    rn_wtab *r = &w->run;
    int want = rn_window__minmax(w->agg);
    if (w->fresh_only && !holds_fresh(w))
        return 0;
    if (want) {
        for (size_t i = 0; i < w->nin; i++) {
            const rn_wtab *st = &w->sl[i]->t;
            for (size_t j = 0; j < st->n; j++) {
                rn_wtab_ent *se = rn_wtab__ent(st, j);
                size_t ri = rn_wtab__lookup(r, se->hash, st->key + se->koff, se->klen, NULL);
                if (ri == RN_WTAB_NONE)
                    continue;
                rn_wrent *x = rn_window__run_ent(rn_wtab__ent(r, ri));
                rn_wnum b = rn_window__slice_acc(se)->u.best;
                if (x->stamp != e) {
                    x->stamp = e;
                    x->a.u.best = b;
                } else if (better(b, x->a.u.best, want)) {
                    x->a.u.best = b;
                }
            }
        }
    }
    if (r->n > w->outcap) {
        size_t cap = r->n + r->n / 2;
        outrow *o = realloc(w->out, cap * sizeof *o);
        if (!o)
            return RN_ENOMEM;
        w->out = o;
        w->outcap = cap;
    }
    size_t nout = 0;
    for (size_t i = 0; i < r->n; i++) {
        rn_wtab_ent *he = rn_wtab__ent(r, i);
        rn_wrent *x = rn_window__run_ent(he);
        rn_wnum v = window_value(w, he);
        if (w->emit_changed) {
            if (x->has_prev && num_same(x->prev, v))
                continue;
            x->prev = v;
            x->has_prev = 1;
        }
        outrow *o = &w->out[nout++];
        o->key = r->key + he->koff;
        o->klen = he->klen;
        o->pfx = key_prefix(o->key, o->klen);
        o->v = v;
    }
    if (!nout)
        return 0;
    qsort(w->out, nout, sizeof *w->out, outrow_cmp);
    w->windows++;
    rn_row row;
    row.partial = 0;
    row.start = (e - w->k + 1) * w->S;
    row.end = (e + 1) * w->S;
    for (size_t i = 0; i < nout; i++) {
        row.key.p = w->out[i].key;
        row.key.n = w->out[i].klen;
        row.value = to_value(w->out[i].v);
        w->rows++;
        int rc = fn(data, &row);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Pass every window ending at a slice <= T. */
static int advance_to(rn_window *w, int64_t T, rn_window_emit_fn fn, void *data)
{
    int64_t k = w->k;
    if (T > w->smax + k - 1)
        T = w->smax + k - 1;
    if (T <= w->C)
        return 0;
    w->cur = NULL;      /* its slice may be closed now */
    while (w->C < T) {
        int64_t C = w->C;
        /* The next window holding data ends at the first slice still in
         * window C+1 (numbered >= C-k+2), or at C+1 if that is earlier. */
        size_t j = 0;
        while (j < w->nin && w->sl[j]->n < C - k + 2)
            j++;
        if (j == w->nsl)
            break;
        int64_t e = w->sl[j]->n > C + 1 ? w->sl[j]->n : C + 1;
        if (e > T)
            break;
        size_t nret = 0;        /* slices leaving: numbered < e-k+1 */
        while (nret < w->nin && w->sl[nret]->n < e - k + 1)
            nret++;
        rn_wslice *in = w->nin < w->nsl && w->sl[w->nin]->n == e ? w->sl[w->nin] : NULL;
        if (nret == w->nin && (e > C + 1 || !w->emit_changed)) {
            /* Everything leaves and nothing need be remembered: start over. */
            rn_wtab__reset(&w->run);
            drop_front(w, nret);
            if (in) {
                if (run_add(w, in) < 0)
                    return RN_ENOMEM;
                w->nin++;
            }
        } else {
            /* Add first, so that a key in both keeps its emit_changed memory. */
            if (in) {
                if (run_add(w, in) < 0)
                    return RN_ENOMEM;
                w->nin++;
            }
            for (size_t i = 0; i < nret; i++)
                run_sub(w, w->sl[i]);
            drop_front(w, nret);
            rn_wtab__compact_keys(&w->run);
        }
        w->C = e;
        w->passed = 1;
        int rc = emit_window(w, e, fn, data);
        if (rc < 0)
            return rc;
    }
    if (w->C < T) {
        /* Windows C+1..T are empty: everything summed has left. */
        rn_wtab__reset(&w->run);
        drop_front(w, w->nin);
        w->C = T;
        w->passed = 1;
    }
    return 0;
}

int rn_window_advance(rn_window *w, int64_t watermark, rn_window_emit_fn fn, void *data)
{
    /* Windows ending at slice e end at (e+1)*S <= watermark. */
    int64_t q = floor_div(watermark, w->S);
    if (q <= w->smin)
        return 0;
    return advance_to(w, q - 1, fn, data);
}

int rn_window_flush(rn_window *w, rn_window_emit_fn fn, void *data)
{
    if (!w->nsl)
        return 0;
    return advance_to(w, w->sl[w->nsl - 1]->n + w->k - 1, fn, data);
}

int rn_window_flush_fresh(rn_window *w, rn_window_emit_fn fn, void *data)
{
    w->fresh_only = 1;
    int r = rn_window_flush(w, fn, data);
    w->fresh_only = 0;
    return r;
}

void rn_window_stats_get(const rn_window *w, rn_window_stats *st)
{
    st->late = w->late;
    st->evicted = w->evicted;
    st->invalid = w->invalid;
    st->windows = w->windows;
    st->rows = w->rows;
    st->keys = w->run.n;
    st->entries = w->entries;
    st->slices = w->nsl;
    st->closed = w->passed ? (w->C + 1) * w->S : INT64_MIN;
}
