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
    n.scale = 0;
    if (n.is_float) {
        n.u.f = v.f;
    } else {
        n.u.i = v.i;
        n.scale = v.scale;
    }
    return n;
}

static inline rn_value to_value(rn_wnum n)
{
    rn_value v = { n.is_float, 0, 0, 0 };
    if (n.is_float) {
        v.f = n.u.f;
    } else {
        v.i = n.u.i;
        v.scale = n.scale;
    }
    return v;
}

#define I128_MIN ((__int128)((unsigned __int128)1 << 127))

static inline __int128 i128_get(rn_i128 a)
{
    return (__int128)(((unsigned __int128)a.hi << 64) | a.lo);
}

static inline rn_i128 i128_put(__int128 v)
{
    rn_i128 a = { (uint64_t)v, (uint64_t)((unsigned __int128)v >> 64) };
    return a;
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

/* Sign of a decimal (not an integer) minus a double: as doubles, and a
 * tie is broken by the exact value of the decimal's double. */
static int cmp_dec_double(rn_wnum a, double d)
{
    double x = rn_value_double(to_value(a));
    return (x > d) - (x < d);
}

static int num_cmp(rn_wnum a, rn_wnum b)
{
    if (!a.is_float && !b.is_float) {
        __int128 x = a.u.i, y = b.u.i;
        /* int64 * 10^18 fits 127 bits: rescaling cannot overflow. */
        if (a.scale < b.scale)
            rn_dec__rescale(&x, b.scale - a.scale);
        else if (b.scale < a.scale)
            rn_dec__rescale(&y, a.scale - b.scale);
        return (x > y) - (x < y);
    }
    if (a.is_float && b.is_float)
        return (a.u.f > b.u.f) - (a.u.f < b.u.f);
    if (!a.is_float)
        return a.scale ? cmp_dec_double(a, b.u.f) : cmp_int_double(a.u.i, b.u.f);
    return b.scale ? -cmp_dec_double(b, a.u.f) : -cmp_int_double(b.u.i, a.u.f);
}

static inline int is_nan(rn_wnum a)
{
    return a.is_float && isnan(a.u.f);
}

/* Of equal values the one written with fewer decimals wins: an integer, then
 * a decimal of smaller scale, then a double; so min and max do not depend
 * on the order of events. */
static inline int tie_rank(rn_wnum a)
{
    return a.is_float ? RN_DEC_MAXSCALE + 1 : a.scale;
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
        return tie_rank(v) < tie_rank(best);
    return want < 0 ? c < 0 : c > 0;
}

static int num_same(rn_wnum a, rn_wnum b)
{
    if (a.is_float != b.is_float)
        return 0;
    if (!a.is_float)
        return a.u.i == b.u.i && a.scale == b.scale;   /* the same text */
    return a.u.f == b.u.f || (isnan(a.u.f) && isnan(b.u.f));
}


/* The exact part of a sum: x (in 10^-xs) into the accumulator's isum, at
 * the larger of the two scales. On a 128-bit overflow x goes into the double
 * sum instead and the accumulator is inexact from then on (documented). */
static void isum_add(rn_wacc *a, __int128 x, int xs, int64_t nx)
{
    __int128 sum = i128_get(a->u.s.isum), y = x, r;
    int sc = a->u.s.scale;
    if (xs > sc) {
        if (rn_dec__rescale(&sum, xs - sc) < 0)
            goto inexact;
        sc = xs;
    } else if (xs < sc && rn_dec__rescale(&y, sc - xs) < 0) {
        goto inexact;
    }
    if (__builtin_add_overflow(sum, y, &r) || r == I128_MIN)   /* never negated */
        goto inexact;
    if (sc > a->u.s.scale)
        a->u.s.nscale = 0;
    if (xs == sc && (a->u.s.nscale += nx) < 0)
        a->u.s.nscale = 0;      /* only after an overflow: the scale is kept */
    a->u.s.scale = sc;
    a->u.s.isum = i128_put(r);
    return;
inexact:
    a->u.s.inexact = 1;
    neu_add(&a->u.s.dsum, &a->u.s.dcomp, (double)x / (double)rn_dec__pow10(xs));
}

static inline void acc_add(rn_agg agg, rn_wacc *a, rn_value v)
{
    switch (agg) {
    case RN_AGG_COUNT:
        break;
    case RN_AGG_SUM:
    case RN_AGG_AVG:
        if (!v.is_float) {
            if (v.scale == a->u.s.scale) {      /* the common case: no rescaling */
                __int128 r;
                if (!__builtin_add_overflow(i128_get(a->u.s.isum), (__int128)v.i, &r)) {
                    a->u.s.isum = i128_put(r);
                    a->u.s.nscale++;
                    break;
                }
            }
            isum_add(a, v.i, v.scale, 1);
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
    __int128 x = i128_get(s->u.s.isum);
    int64_t nx = s->u.s.nscale;
    if (sign > 0) {
        r->u.s.nf += s->u.s.nf;
        r->u.s.nbad += s->u.s.nbad;
        neu_add(&r->u.s.dsum, &r->u.s.dcomp, s->u.s.dsum);
        r->u.s.dcomp += s->u.s.dcomp;
    } else {
        r->u.s.nf -= s->u.s.nf;
        r->u.s.nbad -= s->u.s.nbad;
        neu_add(&r->u.s.dsum, &r->u.s.dcomp, -s->u.s.dsum);
        r->u.s.dcomp -= s->u.s.dcomp;
        x = -x;     /* isum_add never leaves INT128_MIN behind */
        nx = -nx;
    }
    isum_add(r, x, s->u.s.scale, nx);
    r->u.s.inexact |= s->u.s.inexact;
    if (r->u.s.nf == r->u.s.nbad && !r->u.s.inexact)  /* no finite double left: */
        r->u.s.dsum = r->u.s.dcomp = 0;               /* no residue */
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

/* The fill table, with the named keys in it. */
static int fill_init(rn_window *w, const rn_window_opts *o)
{
    rn_wtab *f = &w->filltab;
    w->fill_any = 1;
    w->fill_last = o->fill != 0;
    size_t esz = (sizeof(rn_wtab_ent) + sizeof(rn_wfill) + 7) & ~(size_t)7;   /* aligned */
    if (rn_wtab__init(f, esz, o->nfill_keys, 0) < 0)
        return -1;
    for (size_t i = 0; i < o->nfill_keys; i++) {
        const rn_str *k = &o->fill_keys[i];
        uint32_t h = rn_window__hash(w, k->p, k->n);
        size_t pos, j;
        if (k->n > RN_WIN_KEY_MAX || rn_wtab__reserve(f) < 0)
            return -1;
        j = rn_wtab__lookup(f, h, k->p, k->n, &pos);
        if (j == RN_WTAB_NONE && (j = rn_wtab__insert(f, pos, h, k->p, k->n)) == RN_WTAB_NONE)
            return -1;
        rn_window__fill_ent(rn_wtab__ent(f, j))->named = 1;
    }
    return 0;
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
    if ((o->fill || o->nfill_keys) && fill_init(w, o) < 0) {
        rn_window_free(w);
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
    rn_wtab__free(&w->filltab);
    free(w->out);
    free(w->out2);
    free(w->sk);
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
        const char *k = rn_wtab__key(&s->t, e);
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
        size_t j = rn_wtab__lookup(r, e->hash, rn_wtab__key(&s->t, e), e->klen, NULL);
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
    size_t j = rn_wtab__lookup(&s->t, re->hash, rn_wtab__key(r, re), re->klen, NULL);
    return j == RN_WTAB_NONE ? NULL : rn_window__slice_acc(rn_wtab__ent(&s->t, j));
}

/* The running sum's scale is an upper bound once the values of that scale
 * have left (nscale 0): take the largest scale of the slices in the window
 * and divide the sum down to it, exactly, since every value left is a
 * multiple of 10^-scale. O(k) lookups, only when a scale left. */
static void fix_scale(rn_window *w, rn_wtab_ent *e, rn_wacc *a)
{
    int sc = 0;
    int64_t n = 0;
    for (size_t i = 0; i < w->nin; i++) {
        rn_wacc *sa = slice_find(w->sl[i], &w->run, e);
        if (!sa || sa->count == sa->u.s.nf)
            continue;   /* doubles only: nothing in isum */
        if (sa->u.s.scale > sc) {
            sc = sa->u.s.scale;
            n = 0;
        }
        if (sa->u.s.scale == sc)
            n += sa->u.s.nscale;
    }
    if (sc < a->u.s.scale) {
        a->u.s.isum = i128_put(i128_get(a->u.s.isum) / rn_dec__pow10(a->u.s.scale - sc));
        a->u.s.scale = sc;
    }
    a->u.s.nscale = n;
}

/* avg of decimals: sum / 10^scale / count rounded half-even to scale + 6
 * decimals, then trailing zeros beyond `scale` decimals dropped. 0, or -1
 * when the result needs more than 18 decimals or its mantissa does not fit
 * int64 (the caller then takes the double). */
static int dec_avg(__int128 sum, int scale, int64_t count, rn_wnum *v)
{
    int sc = scale + 6;
    if (sc > RN_DEC_MAXSCALE || rn_dec__rescale(&sum, 6) < 0)
        return -1;
    __int128 q = sum / count, r = sum % count;
    if (r < 0)
        r = -r;
    if (r > count - r || (r == count - r && (q & 1)))
        q += sum < 0 ? -1 : 1;
    for (; sc > scale && q % 10 == 0; sc--)
        q /= 10;
    if (q < INT64_MIN || q > INT64_MAX)
        return -1;
    v->is_float = 0;
    v->u.i = (int64_t)q;
    v->scale = sc;
    return 0;
}

static rn_wnum window_value(rn_window *w, rn_wtab_ent *e)
{
    rn_wrent *x = rn_window__run_ent(e);
    rn_wnum v = { { 0 }, 0, 0 };
    if (w->agg == RN_AGG_COUNT) {
        v.is_float = 0;
        v.u.i = x->a.count;
        return v;
    }
    if (rn_window__minmax(w->agg))
        return x->a.u.best;
    rn_wacc *a = &x->a;
    if (a->u.s.nscale == 0 && a->u.s.scale && !a->u.s.inexact)
        fix_scale(w, e, a);
    if (a->u.s.nf == 0 && !a->u.s.inexact) {
        if (w->agg == RN_AGG_SUM && i128_fits64(a->u.s.isum)) {
            v.is_float = 0;
            v.u.i = (int64_t)a->u.s.isum.lo;
            v.scale = a->u.s.scale;
            return v;
        }
        if (w->agg == RN_AGG_AVG && a->u.s.scale
            && dec_avg(i128_get(a->u.s.isum), a->u.s.scale, a->count, &v) == 0)
            return v;
    }
    double d = i128_double(a->u.s.isum) / (double)rn_dec__pow10(a->u.s.scale)
               + (a->u.s.dsum + a->u.s.dcomp);
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

/* A row's prefix and place, what the radix sort moves. */
typedef struct rn_wsortkey {
    uint64_t pfx;
    size_t i;
} sortkey;

/* Rows into key order (outrow_cmp): a least-significant-digit radix sort
 * of (prefix, place) pairs, a pass for each byte in which the prefixes
 * differ, the rows gathered in that order, then each run of one prefix
 * (keys that share their first 8 bytes) sorted by outrow_cmp. A sliding
 * window sorts every key of every window: this takes about half the
 * instructions of qsort on the 40-byte rows (which sorts pointers and
 * mallocs for them). Below 64 rows, or without the sort's buffers, qsort.
 * The rows end in w->out. */
static void sort_rows(rn_window *w, size_t n)
{
    if (n < 64 || !w->out2 || !w->sk) {
        qsort(w->out, n, sizeof *w->out, outrow_cmp);
        return;
    }
    uint32_t cnt[8][256];
    memset(cnt, 0, sizeof cnt);
    sortkey *a = w->sk, *b = w->sk + n;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = w->out[i].pfx;
        a[i].pfx = p;
        a[i].i = i;
        for (int k = 0; k < 8; k++)
            cnt[k][p >> (8 * k) & 255]++;
    }
    for (int k = 0; k < 8; k++) {
        uint32_t *c = cnt[k];
        if (c[a[0].pfx >> (8 * k) & 255] == n)
            continue;       /* every row has the same byte here */
        uint32_t sum = 0;
        for (int d = 0; d < 256; d++) {
            uint32_t x = c[d];
            c[d] = sum;
            sum += x;
        }
        for (size_t i = 0; i < n; i++)
            b[c[a[i].pfx >> (8 * k) & 255]++] = a[i];
        sortkey *t = a;
        a = b;
        b = t;
    }
    outrow *o = w->out2;
    for (size_t i = 0; i < n; i++)
        o[i] = w->out[a[i].i];
    w->out2 = w->out;
    w->out = o;
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && o[j].pfx == o[i].pfx; j++)
            ;
        if (j - i > 1)
            qsort(o + i, j - i, sizeof *o, outrow_cmp);
    }
}

static inline int num_zero(rn_wnum v)
{
    return v.is_float ? v.u.f == 0 : v.u.i == 0;
}

/* Fill: a 0 row into w->out from nout on for each fill key absent from the
 * window (run); returns the new count. */
static size_t fill_rows(rn_window *w, size_t nout)
{
    const rn_wtab *f = &w->filltab;
    for (size_t i = 0; i < f->n; i++) {
        rn_wtab_ent *fe = rn_wtab__ent(f, i);
        const char *k = rn_wtab__key(f, fe);
        if (rn_wtab__lookup(&w->run, fe->hash, k, fe->klen, NULL) != RN_WTAB_NONE)
            continue;
        if (w->emit_changed && rn_window__fill_ent(fe)->zero_prev)
            continue;
        outrow *o = &w->out[nout++];
        o->key = k;
        o->klen = fe->klen;
        o->pfx = key_prefix(k, fe->klen);
        o->v = (rn_wnum){ .u.i = 0 };     /* the integer 0 */
    }
    return nout;
}

/* After a window: what the next one fills. A window with data makes its
 * keys the last ones; every key absent from it was 0. */
static int fill_update(rn_window *w)
{
    rn_wtab *f = &w->filltab, *r = &w->run;
    for (size_t i = 0; i < f->n; i++) {
        rn_wfill *x = rn_window__fill_ent(rn_wtab__ent(f, i));
        x->zero_prev = 1;
        if (r->n)
            x->in_last = 0;
    }
    for (size_t i = 0; i < r->n; i++) {
        rn_wtab_ent *re = rn_wtab__ent(r, i);
        const char *k = rn_wtab__key(r, re);
        size_t pos, j;
        if (rn_wtab__reserve(f) < 0)
            return RN_ENOMEM;
        j = rn_wtab__lookup(f, re->hash, k, re->klen, &pos);
        if (j == RN_WTAB_NONE) {
            if (!w->fill_last)
                continue;
            if ((j = rn_wtab__insert(f, pos, re->hash, k, re->klen)) == RN_WTAB_NONE)
                return RN_ENOMEM;
        }
        rn_wfill *x = rn_window__fill_ent(rn_wtab__ent(f, j));
        x->in_last = w->fill_last;
        x->zero_prev = num_zero(window_value(w, re));
    }
    if (!r->n)
        return 0;
    for (size_t i = f->n; i-- > 0;) {   /* the last entry moves into i: seen */
        rn_wfill *x = rn_window__fill_ent(rn_wtab__ent(f, i));
        if (!x->named && !x->in_last)
            rn_wtab__delete(f, i);
    }
    rn_wtab__compact_keys(f);
    return 0;
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

/* Emit window e, whose slices are sl[0..nin), summed in run; with fill, the
 * 0 rows of the keys absent from it. */
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
                size_t ri = rn_wtab__lookup(r, se->hash, rn_wtab__key(st, se), se->klen, NULL);
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
    if (w->fill_any && r->n)
        w->filling = 1;
    size_t need = r->n + (w->filling ? w->filltab.n : 0);
    if (need > w->outcap) {
        size_t cap = need + need / 2;
        outrow *o = realloc(w->out, cap * sizeof *o);
        if (!o)
            return RN_ENOMEM;
        w->out = o;
        w->outcap = cap;
        free(w->out2);      /* the sort's buffers: without them, qsort */
        free(w->sk);
        w->out2 = malloc(cap * sizeof *o);
        w->sk = malloc(2 * cap * sizeof *w->sk);
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
        o->key = rn_wtab__key(r, he);
        o->klen = he->klen;
        o->pfx = key_prefix(o->key, o->klen);
        o->v = v;
    }
    if (w->filling)
        nout = fill_rows(w, nout);
    int rc = 0;
    if (nout) {
        sort_rows(w, nout);
        w->windows++;
        rn_row row;
        row.partial = 0;
        row.start = (e - w->k + 1) * w->S;
        row.end = (e + 1) * w->S;
        for (size_t i = 0; i < nout && rc >= 0; i++) {
            row.key.p = w->out[i].key;
            row.key.n = w->out[i].klen;
            row.value = to_value(w->out[i].v);
            w->rows++;
            rc = fn(data, &row);
        }
    }
    /* After the rows: their keys may point into the fill table. */
    if (w->filling && fill_update(w) < 0)
        return RN_ENOMEM;
    return rc < 0 ? rc : 0;
}

/* Fill: windows from..to hold no data (nothing is summed in run); emit
 * their 0 rows, for at most RN_WIN_FILL_MAX of them. */
static int fill_gap(rn_window *w, int64_t from, int64_t to, rn_window_emit_fn fn, void *data)
{
    if (!w->filling || from > to)
        return 0;
    if ((uint64_t)to - (uint64_t)from >= RN_WIN_FILL_MAX) {
        to = from + RN_WIN_FILL_MAX - 1;
        w->fill_cut++;
    }
    for (int64_t m = from; m <= to; m++) {
        w->C = m;
        w->passed = 1;
        int rc = emit_window(w, m, fn, data);
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
            int rc = fill_gap(w, C + 1, e - 1, fn, data);
            if (rc < 0)
                return rc;
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
        int rc = fill_gap(w, w->C + 1, T, fn, data);
        if (rc < 0)
            return rc;
        w->C = T;
        w->passed = 1;
    }
    return 0;
}

int rn_window_advance(rn_window *w, int64_t watermark, rn_window_emit_fn fn, void *data)
{
    /* Most calls (winagg makes one per event) pass nothing: a watermark
     * below the end of the next window to pass returns here, without the
     * division. That end depends on C alone and is kept with the C it was
     * computed for. */
    if (w->adv_ok && w->adv_C == w->C && watermark < w->adv_wm)
        return 0;
    /* Windows ending at slice e end at (e+1)*S <= watermark. */
    int64_t q = floor_div(watermark, w->S);
    int rc = q <= w->smin ? 0 : advance_to(w, q - 1, fn, data);
    /* Nothing is passed while q <= M = max(smin, C+1): wm < (M+1)*S. */
    int64_t m = w->C + 1 > w->smin ? w->C + 1 : w->smin;
    if (__builtin_mul_overflow(m + 1, w->S, &w->adv_wm))
        w->adv_wm = INT64_MAX;
    w->adv_C = w->C;
    w->adv_ok = 1;
    return rc;
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
    st->fill_cut = w->fill_cut;
    st->closed = rn_window_closed(w);
}

int64_t rn_window_closed(const rn_window *w)
{
    return w->passed ? (w->C + 1) * w->S : INT64_MIN;
}

int64_t rn_window_slice(const rn_window *w, int64_t t)
{
    return floor_div(t, w->S);
}

int rn_window_time_ok(const rn_window *w, int64_t t)
{
    int64_t n = floor_div(t, w->S);
    return n >= w->smin && n <= w->smax;
}
