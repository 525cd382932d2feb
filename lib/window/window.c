/* window.c -- per-key aggregates over sliding windows: a table per slice and
 * a running window table kept by adding the slice that enters and
 * subtracting the one that leaves. See window.h for the semantics. */
#include "window/window.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* ---- hashing ---------------------------------------------------------------
 * A wyhash-style hash (after Wang Yi's wyhash, final version): two 64x64->128
 * multiplications for keys up to 16 bytes, 48 bytes per round beyond. It is
 * fast for the short keys logs have (paths, hosts, codes) and mixes well
 * enough for linear probing on the low bits. The seed is random per window:
 * keys come from logs an outsider may shape, and nothing depends on hash
 * order (rows are sorted, the state file stores no hashes). */

#define P0 0xa0761d6478bd642fULL
#define P1 0xe7037ed1a0b428dbULL
#define P2 0x8ebc6af09c88c6e3ULL
#define P3 0x589965cc75374cc3ULL

static inline void mul128(uint64_t *a, uint64_t *b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)*a * *b;
    *a = (uint64_t)r;
    *b = (uint64_t)(r >> 64);
#else
    uint64_t ha = *a >> 32, hb = *b >> 32, la = (uint32_t)*a, lb = (uint32_t)*b;
    uint64_t rh = ha * hb, rm0 = ha * lb, rm1 = hb * la, rl = la * lb;
    uint64_t t = rl + (rm0 << 32), c = t < rl, lo = t + (rm1 << 32);
    c += lo < t;
    *a = lo;
    *b = rh + (rm0 >> 32) + (rm1 >> 32) + c;
#endif
}

static inline uint64_t mix(uint64_t a, uint64_t b)
{
    mul128(&a, &b);
    return a ^ b;
}

static inline uint64_t rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t hash_key(const char *key, size_t len, uint64_t seed)
{
    const unsigned char *p = (const unsigned char *)key;
    uint64_t a, b;
    if (len <= 16) {
        if (len >= 4) {
            size_t m = (len >> 3) << 2;
            a = (rd32(p) << 32) | rd32(p + m);
            b = (rd32(p + len - 4) << 32) | rd32(p + len - 4 - m);
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = mix(rd64(p) ^ P1, rd64(p + 8) ^ seed);
                s1 = mix(rd64(p + 16) ^ P2, rd64(p + 24) ^ s1);
                s2 = mix(rd64(p + 32) ^ P3, rd64(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = mix(rd64(p) ^ P1, rd64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    a ^= P1;
    b ^= seed;
    mul128(&a, &b);
    return mix(a ^ P0 ^ len, b ^ P1);
}

/* ---- open-addressing table ------------------------------------------------
 * Linear probing over a power-of-two array of 8-byte slots, each the upper
 * 32 bits of the key's hash (probe start and tag) and the index + 1 of an
 * entry in a dense array; 0 is empty. Entries are a fixed-size header and a
 * payload whose size the table is given; key bytes live in one arena per
 * table. Dense entries make whole-table passes (merging a slice, emitting,
 * saving) sequential, and growing rehashes slots alone, without touching
 * entries or keys. Deletion (running table only) uses backward shifting, so
 * there are no tombstones, and moves the last entry into the hole; the
 * arena is compacted once it is more than half dead. Load factor <= 0.7. */

typedef struct ehdr {
    uint32_t hash;      /* upper half of the key's hash */
    uint32_t klen;
    uint64_t koff;      /* key bytes at arena + koff */
} ehdr;

typedef struct tab {
    uint64_t *slot;
    size_t mask;        /* slots - 1 */
    char *ent;
    size_t n, ecap, esz;
    char *key;
    size_t klen, kcap, kdead;
} tab;

#define NONE ((size_t)-1)
#define TAB_MAX ((size_t)1 << 31)   /* entries per table: slots stay < 2^32 */
#define TAGMASK 0xffffffff00000000ULL

static inline ehdr *tab_ent(const tab *t, size_t i)
{
    return (ehdr *)(t->ent + i * t->esz);
}

static size_t slots_for(size_t n)
{
    size_t cap = 16;
    while (cap / 10 * 7 < n && cap < ((size_t)1 << 32))
        cap <<= 1;
    return cap;
}

static int tab_init(tab *t, size_t esz, size_t hint_n, size_t hint_k)
{
    memset(t, 0, sizeof *t);
    t->esz = esz;
    size_t cap = slots_for(hint_n);
    t->ecap = hint_n > 8 ? hint_n : 8;
    t->kcap = hint_k > 64 ? hint_k : 64;
    t->slot = calloc(cap, sizeof *t->slot);
    t->ent = malloc(t->ecap * esz);
    t->key = malloc(t->kcap);
    if (!t->slot || !t->ent || !t->key) {
        free(t->slot);
        free(t->ent);
        free(t->key);
        memset(t, 0, sizeof *t);
        return -1;
    }
    t->mask = cap - 1;
    return 0;
}

static void tab_free(tab *t)
{
    free(t->slot);
    free(t->ent);
    free(t->key);
    memset(t, 0, sizeof *t);
}

/* Empty the table; the slot array shrinks if it was mostly unused. */
static void tab_reset(tab *t)
{
    size_t want = slots_for(t->n);
    if (want * 4 < t->mask + 1) {
        uint64_t *s = calloc(want, sizeof *s);
        if (s) {
            free(t->slot);
            t->slot = s;
            t->mask = want - 1;
        }
    }
    memset(t->slot, 0, (t->mask + 1) * sizeof *t->slot);
    t->n = t->klen = t->kdead = 0;
}

static int tab_grow_slots(tab *t)
{
    size_t cap = (t->mask + 1) * 2, m = cap - 1;
    uint64_t *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        uint64_t v = t->slot[i];
        if (!v)
            continue;
        size_t j = (v >> 32) & m;
        while (s[j])
            j = (j + 1) & m;
        s[j] = v;
    }
    free(t->slot);
    t->slot = s;
    t->mask = m;
    return 0;
}

/* Room for one more entry; call before a tab_lookup that may insert, as
 * growing moves the slot it returns. */
static inline int tab_reserve(tab *t)
{
    if ((t->n + 1) * 10 <= (t->mask + 1) * 7)
        return 0;
    if (t->n + 1 > TAB_MAX)
        return -1;
    return tab_grow_slots(t);
}

/* The entry index of key, or NONE with *pos the empty slot it would take. */
static inline size_t tab_lookup(const tab *t, uint32_t h, const char *key,
                                size_t klen, size_t *pos)
{
    uint64_t tag = (uint64_t)h << 32;
    size_t i = h & t->mask;
    for (;;) {
        uint64_t v = t->slot[i];
        if (!v) {
            if (pos)
                *pos = i;
            return NONE;
        }
        if ((v & TAGMASK) == tag) {
            size_t idx = (uint32_t)v - 1;
            const ehdr *e = tab_ent(t, idx);
            if (e->klen == klen && (klen == 0 || memcmp(t->key + e->koff, key, klen) == 0))
                return idx;
        }
        i = (i + 1) & t->mask;
    }
}

/* Insert at pos (from tab_lookup after tab_reserve); payload zeroed.
 * Returns the entry index or NONE when out of memory. */
static size_t tab_insert(tab *t, size_t pos, uint32_t h, const char *key, size_t klen)
{
    if (t->n == t->ecap) {
        size_t cap = t->ecap * 2;
        char *e = realloc(t->ent, cap * t->esz);
        if (!e)
            return NONE;
        t->ent = e;
        t->ecap = cap;
    }
    if (klen > t->kcap - t->klen) {
        size_t cap = t->kcap * 2;
        while (cap - t->klen < klen)
            cap *= 2;
        char *k = realloc(t->key, cap);
        if (!k)
            return NONE;
        t->key = k;
        t->kcap = cap;
    }
    if (klen)
        memcpy(t->key + t->klen, key, klen);
    ehdr *e = tab_ent(t, t->n);
    memset(e, 0, t->esz);
    e->hash = h;
    e->klen = (uint32_t)klen;
    e->koff = t->klen;
    t->klen += klen;
    t->slot[pos] = ((uint64_t)h << 32) | (uint64_t)(t->n + 1);
    return t->n++;
}

static size_t tab_slot_of(const tab *t, size_t idx)
{
    size_t i = tab_ent(t, idx)->hash & t->mask;
    while ((uint32_t)t->slot[i] != idx + 1)
        i = (i + 1) & t->mask;
    return i;
}

static void tab_delete(tab *t, size_t idx)
{
    size_t i = tab_slot_of(t, idx), j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        uint64_t v = t->slot[j];
        if (!v)
            break;
        /* v may fill the hole at i unless its home is cyclically in (i, j]. */
        size_t home = (v >> 32) & t->mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slot[i] = v;
            i = j;
        }
    }
    t->slot[i] = 0;
    ehdr *e = tab_ent(t, idx);
    t->kdead += e->klen;
    size_t last = t->n - 1;
    if (idx != last) {
        size_t s = tab_slot_of(t, last);
        t->slot[s] = (t->slot[s] & TAGMASK) | (uint64_t)(idx + 1);
        memcpy(e, tab_ent(t, last), t->esz);
    }
    t->n--;
}

/* Copy live keys to a new arena once more than half of it is dead. */
static void tab_compact_keys(tab *t)
{
    if (t->kdead < 4096 || t->kdead * 2 < t->klen)
        return;
    size_t live = t->klen - t->kdead, cap = live > 64 ? live : 64;
    char *k = malloc(cap);
    if (!k)
        return;         /* keep the old arena; it still works */
    size_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        ehdr *e = tab_ent(t, i);
        if (e->klen)
            memcpy(k + off, t->key + e->koff, e->klen);
        e->koff = off;
        off += e->klen;
    }
    free(t->key);
    t->key = k;
    t->kcap = cap;
    t->klen = off;
    t->kdead = 0;
}

/* ---- values and accumulators ------------------------------------------- */

typedef struct num {
    union {
        int64_t i;
        double f;
    } u;
    int is_float;
} num;

/* A 128-bit two's complement integer: exact integer sums. */
typedef struct i128 {
    uint64_t lo, hi;
} i128;

typedef struct acc {
    int64_t count;
    union {
        struct {                /* sum, avg */
            int64_t nf;         /* double values (finite or not) */
            int64_t nbad;       /* of which inf or nan */
            i128 isum;          /* integer values */
            double dsum, dcomp; /* finite doubles, Neumaier-compensated */
            double bad;         /* slices: plain sum of the inf/nan values */
        } s;
        num best;               /* min, max (running table: per emission) */
    } u;
} acc;

/* Running table payload: the accumulator and what emission needs. */
typedef struct rent {
    acc a;
    num prev;                   /* value emitted in the previous window */
    int64_t stamp;              /* window u.best was computed for */
    int has_prev;
} rent;

static inline num to_num(rn_value v)
{
    num n;
    n.is_float = v.is_float != 0;
    if (n.is_float)
        n.u.f = v.f;
    else
        n.u.i = v.i;
    return n;
}

static inline rn_value to_value(num n)
{
    rn_value v = { n.is_float, 0, 0 };
    if (n.is_float)
        v.f = n.u.f;
    else
        v.i = n.u.i;
    return v;
}

static inline void i128_add64(i128 *a, int64_t v)
{
    uint64_t o = a->lo;
    a->lo += (uint64_t)v;
    a->hi += (v < 0 ? UINT64_MAX : 0) + (a->lo < o);
}

static inline void i128_add(i128 *a, i128 b)
{
    uint64_t o = a->lo;
    a->lo += b.lo;
    a->hi += b.hi + (a->lo < o);
}

static inline void i128_sub(i128 *a, i128 b)
{
    uint64_t borrow = a->lo < b.lo;
    a->lo -= b.lo;
    a->hi -= b.hi + borrow;
}

static inline int i128_fits64(i128 a)
{
    return a.hi == ((a.lo >> 63) ? UINT64_MAX : 0);
}

static double i128_double(i128 a)
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

static int num_cmp(num a, num b)
{
    if (!a.is_float && !b.is_float)
        return (a.u.i > b.u.i) - (a.u.i < b.u.i);
    if (a.is_float && b.is_float)
        return (a.u.f > b.u.f) - (a.u.f < b.u.f);
    if (!a.is_float)
        return cmp_int_double(a.u.i, b.u.f);
    return -cmp_int_double(b.u.i, a.u.f);
}

static inline int is_nan(num a)
{
    return a.is_float && isnan(a.u.f);
}

/* Whether v should replace best for min (want < 0) or max (want > 0). */
static int better(num v, num best, int want)
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

static int num_same(num a, num b)
{
    if (a.is_float != b.is_float)
        return 0;
    if (!a.is_float)
        return a.u.i == b.u.i;
    return a.u.f == b.u.f || (isnan(a.u.f) && isnan(b.u.f));
}

static inline int is_sum(rn_agg agg)
{
    return agg == RN_AGG_SUM || agg == RN_AGG_AVG;
}

static inline int minmax_want(rn_agg agg)
{
    return agg == RN_AGG_MIN ? -1 : agg == RN_AGG_MAX ? 1 : 0;
}

static inline void acc_add(rn_agg agg, acc *a, rn_value v)
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
        if (a->count == 0 || better(to_num(v), a->u.best, minmax_want(agg)))
            a->u.best = to_num(v);
        break;
    }
    a->count++;
}

/* Add (sign > 0) or subtract a slice's accumulator to a running one. */
static void acc_merge(rn_agg agg, acc *r, const acc *s, int sign)
{
    if (sign > 0)
        r->count += s->count;
    else
        r->count -= s->count;
    if (!is_sum(agg))
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

typedef struct slice {
    int64_t n;
    tab t;
} slice;

/* A row to emit, sorted by key: the first 8 key bytes big-endian decide most
 * comparisons without touching the key. */
typedef struct outrow {
    uint64_t pfx;
    const char *key;
    size_t klen;
    num v;
} outrow;

struct rn_window {
    int64_t W, S, k;
    rn_agg agg;
    int emit_changed;
    size_t max_keys;
    int64_t smin, smax;     /* slices whose windows all have int64 bounds */
    uint64_t seed;

    /* Windows ending at slices <= C have been passed. Slices are sorted by
     * number; sl[0..nin) are those <= C, all in window C and summed in run;
     * the rest are pending (> C). */
    int64_t C;
    int passed;
    slice **sl;
    size_t nsl, capsl, nin;
    tab run;
    size_t slice_esz;
    uint64_t entries;       /* sum of slice table sizes */

    slice *cur;             /* the slice the last event went to, pending */
    int64_t cur_lo, cur_hi;
    size_t hint_n, hint_k;  /* size of the last retired slice */

    outrow *out;
    size_t outcap;
    uint64_t late, evicted, invalid, windows, rows;
};

static inline acc *slice_acc(ehdr *e)
{
    return (acc *)(e + 1);
}

static inline rent *run_ent(ehdr *e)
{
    return (rent *)(e + 1);
}

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
    size_t pay = offsetof(acc, u);
    if (is_sum(w->agg))
        pay += sizeof(((acc *)0)->u.s);
    else if (minmax_want(w->agg))
        pay += sizeof(num);
    w->slice_esz = (sizeof(ehdr) + pay + 7) & ~(size_t)7;
    if (getrandom(&w->seed, sizeof w->seed, GRND_NONBLOCK) != sizeof w->seed)
        w->seed = (uint64_t)rn_mono_ns() ^ ((uint64_t)getpid() << 32);
    w->seed = mix(w->seed ^ P0, P1);
    if (tab_init(&w->run, sizeof(ehdr) + sizeof(rent), 0, 0) < 0) {
        free(w);
        return rn_seterr(err, "out of memory"), NULL;
    }
    return w;
}

static void slice_free(slice *s)
{
    tab_free(&s->t);
    free(s);
}

/* Free sl[0..m) and shift the rest down. */
static void drop_front(rn_window *w, size_t m)
{
    if (!m)
        return;
    for (size_t i = 0; i < m; i++) {
        slice *s = w->sl[i];
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

/* Back to the state of a new window (counters kept). */
static void reset_state(rn_window *w)
{
    w->cur = NULL;
    w->nin = w->nsl;
    drop_front(w, w->nsl);
    tab_reset(&w->run);
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
    tab_free(&w->run);
    free(w->out);
    free(w);
}

/* The pending slice numbered n, creating it if create; NULL if absent or out
 * of memory (*nomem set). */
static slice *find_slice(rn_window *w, int64_t n, int create, int *nomem)
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
        slice **a = realloc(w->sl, cap * sizeof *a);
        if (!a)
            goto nomem;
        w->sl = a;
        w->capsl = cap;
    }
    slice *s = malloc(sizeof *s);
    if (!s)
        goto nomem;
    s->n = n;
    if (tab_init(&s->t, w->slice_esz, w->hint_n, w->hint_k) < 0) {
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
static void drop_pending(rn_window *w, slice *s)
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
    slice *s = w->cur;
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
        s = find_slice(w, n, 0, &nomem);
        if (!s) {
            /* Do not make a slice for an event max_keys turns away. */
            if (w->max_keys && w->entries >= w->max_keys) {
                w->evicted++;
                return RN_WIN_EVICTED;
            }
            s = find_slice(w, n, 1, &nomem);
            if (!s)
                return -ENOMEM;
        }
        w->cur = s;
        w->cur_lo = n * w->S;
        w->cur_hi = w->cur_lo + w->S;
    }
    uint32_t h = (uint32_t)(hash_key(key, klen, w->seed) >> 32);
    size_t pos, i;
    if (tab_reserve(&s->t) < 0)
        goto nomem;
    i = tab_lookup(&s->t, h, key, klen, &pos);
    if (i == NONE) {
        if (w->max_keys && w->entries >= w->max_keys) {
            w->evicted++;
            return RN_WIN_EVICTED;
        }
        i = tab_insert(&s->t, pos, h, key, klen);
        if (i == NONE)
            goto nomem;
        w->entries++;
    }
    acc_add(w->agg, slice_acc(tab_ent(&s->t, i)), v);
    return 0;
nomem:
    if (s->t.n == 0)
        drop_pending(w, s);     /* a slice is never empty */
    return -ENOMEM;
}

/* Add a slice's accumulators into the running table. */
static int run_add(rn_window *w, slice *s)
{
    tab *r = &w->run;
    for (size_t i = 0; i < s->t.n; i++) {
        ehdr *e = tab_ent(&s->t, i);
        const char *k = s->t.key + e->koff;
        size_t pos, j;
        if (tab_reserve(r) < 0)
            return -ENOMEM;
        j = tab_lookup(r, e->hash, k, e->klen, &pos);
        if (j == NONE) {
            j = tab_insert(r, pos, e->hash, k, e->klen);
            if (j == NONE)
                return -ENOMEM;
            run_ent(tab_ent(r, j))->stamp = INT64_MIN;
        }
        acc_merge(w->agg, &run_ent(tab_ent(r, j))->a, slice_acc(e), 1);
    }
    return 0;
}

/* Subtract a slice; keys whose count reaches zero leave. */
static void run_sub(rn_window *w, slice *s)
{
    tab *r = &w->run;
    for (size_t i = 0; i < s->t.n; i++) {
        ehdr *e = tab_ent(&s->t, i);
        size_t j = tab_lookup(r, e->hash, s->t.key + e->koff, e->klen, NULL);
        if (j == NONE)
            continue;   /* cannot happen: every slice key was added */
        rent *x = run_ent(tab_ent(r, j));
        acc_merge(w->agg, &x->a, slice_acc(e), -1);
        if (x->a.count <= 0)
            tab_delete(r, j);
    }
}

/* The slice entry for a running entry's key, or NULL. */
static acc *slice_find(const slice *s, const tab *r, const ehdr *re)
{
    size_t j = tab_lookup(&s->t, re->hash, r->key + re->koff, re->klen, NULL);
    return j == NONE ? NULL : slice_acc(tab_ent(&s->t, j));
}

static num window_value(rn_window *w, ehdr *e)
{
    rent *x = run_ent(e);
    num v;
    if (w->agg == RN_AGG_COUNT) {
        v.is_float = 0;
        v.u.i = x->a.count;
        return v;
    }
    if (minmax_want(w->agg))
        return x->a.u.best;
    const acc *a = &x->a;
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
            acc *sa = slice_find(w->sl[i], &w->run, e);
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

/* Emit window e, whose slices are sl[0..nin), summed in run. */
static int emit_window(rn_window *w, int64_t e, rn_window_emit_fn fn, void *data)
{
    tab *r = &w->run;
    int want = minmax_want(w->agg);
    if (want) {
        for (size_t i = 0; i < w->nin; i++) {
            const tab *st = &w->sl[i]->t;
            for (size_t j = 0; j < st->n; j++) {
                ehdr *se = tab_ent(st, j);
                size_t ri = tab_lookup(r, se->hash, st->key + se->koff, se->klen, NULL);
                if (ri == NONE)
                    continue;
                rent *x = run_ent(tab_ent(r, ri));
                num b = slice_acc(se)->u.best;
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
            return -ENOMEM;
        w->out = o;
        w->outcap = cap;
    }
    size_t nout = 0;
    for (size_t i = 0; i < r->n; i++) {
        ehdr *he = tab_ent(r, i);
        rent *x = run_ent(he);
        num v = window_value(w, he);
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
        slice *in = w->nin < w->nsl && w->sl[w->nin]->n == e ? w->sl[w->nin] : NULL;
        if (nret == w->nin && (e > C + 1 || !w->emit_changed)) {
            /* Everything leaves and nothing need be remembered: start over. */
            tab_reset(&w->run);
            drop_front(w, nret);
            if (in) {
                if (run_add(w, in) < 0)
                    return -ENOMEM;
                w->nin++;
            }
        } else {
            /* Add first, so that a key in both keeps its emit_changed memory. */
            if (in) {
                if (run_add(w, in) < 0)
                    return -ENOMEM;
                w->nin++;
            }
            for (size_t i = 0; i < nret; i++)
                run_sub(w, w->sl[i]);
            drop_front(w, nret);
            tab_compact_keys(&w->run);
        }
        w->C = e;
        w->passed = 1;
        int rc = emit_window(w, e, fn, data);
        if (rc < 0)
            return rc;
    }
    if (w->C < T) {
        /* Windows C+1..T are empty: everything summed has left. */
        tab_reset(&w->run);
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

/* ---- state file ---------------------------------------------------------- */

#define STATE_MAGIC "runnel-window\n"
#define STATE_MAGIC_LEN 14
#define STATE_VERSION 1
#define SIG_MAX 65536
#define WBUF ((size_t)1 << 20)      /* a multiple of 8: see ck_words */

static inline uint64_t le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Checksum: 8-byte little-endian words mixed in one at a time; a short
 * last word is zero-padded. Blocks before the last are multiples of 8. */
static uint64_t ck_words(uint64_t h, const unsigned char *p, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        h = mix(h ^ le64(p + i), P2);
    if (i < n) {
        unsigned char tail[8] = { 0 };
        memcpy(tail, p + i, n - i);
        h = mix(h ^ le64(tail), P2);
    }
    return h;
}

static uint64_t ck_final(uint64_t h, uint64_t total)
{
    return mix(h ^ total, P3);
}

typedef struct wr {
    int fd;
    unsigned char *buf;
    size_t len;
    uint64_t ck, total;
    int err;            /* errno of the first failure */
} wr;

static void wr_block(wr *o)
{
    o->ck = ck_words(o->ck, o->buf, o->len);
    o->total += o->len;
    if (!o->err) {
        int r = rn_write_all(o->fd, o->buf, o->len);
        if (r < 0)
            o->err = -r;
    }
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

static void wr_num(wr *o, num n)
{
    wr_u8(o, (unsigned)n.is_float);
    wr_u64(o, (uint64_t)n.u.i);
}

static void wr_str(wr *o, const char *s)
{
    size_t n = strlen(s);
    wr_u32(o, (uint32_t)n);
    wr_bytes(o, s, n);
}

static void wr_acc(wr *o, rn_agg agg, const acc *a)
{
    wr_u64(o, (uint64_t)a->count);
    if (is_sum(agg)) {
        wr_u64(o, (uint64_t)a->u.s.nf);
        wr_u64(o, (uint64_t)a->u.s.nbad);
        wr_u64(o, a->u.s.isum.lo);
        wr_u64(o, a->u.s.isum.hi);
        wr_f64(o, a->u.s.dsum);
        wr_f64(o, a->u.s.dcomp);
        wr_f64(o, a->u.s.bad);
    } else if (minmax_want(agg)) {
        wr_num(o, a->u.best);
    }
}

static size_t acc_wire_len(rn_agg agg)
{
    return 8 + (is_sum(agg) ? 56 : minmax_want(agg) ? 9 : 0);
}

/* The window's own options, stored next to the caller's. */
static void module_sig(const rn_window *w, char *out, size_t n)
{
    snprintf(out, n, "agg=%s width=%" PRId64 " slide=%" PRId64 " changed=%d",
             rn_agg_name(w->agg), w->W, w->S, w->emit_changed);
}

int rn_window_save(const rn_window *w, const char *path, const char *optsig, char *err)
{
    char tmp[4096], dirbuf[4096], msig[256];
    wr o = { .fd = -1 };

    if (!optsig)
        optsig = "";
    if (strlen(optsig) > SIG_MAX)
        return rn_seterr(err, "%s: option signature too long", path);
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return rn_seterr(err, "%s: path too long", path);
    o.buf = malloc(WBUF);
    if (!o.buf)
        return rn_seterr(err, "%s: out of memory", path);
    o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (o.fd < 0) {
        rn_seterr(err, "%s: %s", tmp, strerror(errno));
        free(o.buf);
        return -1;
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
        const tab *t = &w->sl[i]->t;
        wr_u64(&o, (uint64_t)w->sl[i]->n);
        wr_u64(&o, t->n);
        for (size_t j = 0; j < t->n; j++) {
            ehdr *e = tab_ent(t, j);
            wr_u32(&o, e->klen);
            wr_bytes(&o, t->key + e->koff, e->klen);
            wr_acc(&o, w->agg, slice_acc(e));
        }
    }
    wr_u64(&o, w->run.n);
    for (size_t j = 0; j < w->run.n; j++) {
        ehdr *e = tab_ent(&w->run, j);
        rent *x = run_ent(e);
        wr_u32(&o, e->klen);
        wr_bytes(&o, w->run.key + e->koff, e->klen);
        wr_acc(&o, w->agg, &x->a);
        wr_u8(&o, (unsigned)x->has_prev);
        wr_num(&o, x->has_prev ? x->prev : (num){ { 0 }, 0 });
    }
    uint64_t ck = ck_final(ck_words(o.ck, o.buf, o.len), o.total + o.len);
    o.ck = 0;   /* the checksum itself is not summed */
    wr_u64(&o, ck);
    if (!o.err && o.len) {
        int r = rn_write_all(o.fd, o.buf, o.len);
        if (r < 0)
            o.err = -r;
    }
    free(o.buf);
    if (o.err) {
        rn_seterr(err, "%s: write: %s", tmp, strerror(o.err));
        goto fail;
    }
    if (fsync(o.fd) < 0) {
        rn_seterr(err, "%s: fsync: %s", tmp, strerror(errno));
        goto fail;
    }
    close(o.fd);
    o.fd = -1;
    if (rename(tmp, path) < 0) {
        rn_seterr(err, "rename %s to %s: %s", tmp, path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    /* The rename is durable only once the directory is. */
    snprintf(dirbuf, sizeof dirbuf, "%s", path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
fail:
    close(o.fd);
    unlink(tmp);
    return -1;
}

/* A cursor over the file in memory; every read is bounded by end. */
typedef struct rd {
    const unsigned char *p;
    size_t off, end;
    const char *path;
    char *err;
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

static int rd_num(rd *r, num *n, const char *what)
{
    unsigned f;
    uint64_t bits;
    size_t at = r->off;
    if (rd_u8(r, &f, what) < 0 || rd_u64(r, &bits, what) < 0)
        return -1;
    if (f > 1)
        return corrupt(r, at, "bad value type");
    n->is_float = (int)f;
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

static int rd_acc(rd *r, rn_agg agg, acc *a)
{
    uint64_t u;
    size_t at = r->off;
    if (rd_u64(r, &u, "count") < 0)
        return -1;
    if (u == 0 || u > INT64_MAX)
        return corrupt(r, at, "count out of range");
    a->count = (int64_t)u;
    if (is_sum(agg)) {
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
    } else if (minmax_want(agg)) {
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
    if (version != STATE_VERSION)
        return rn_seterr(r->err, "state file %s: version %u not supported (byte %zu)",
                         r->path, version, at);
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

    size_t each = 4 + acc_wire_len(w->agg);
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
        slice *s = find_slice(w, sn, 1, &nomem);
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
            uint32_t h = (uint32_t)(hash_key(k, klen, w->seed) >> 32);
            if (tab_reserve(&s->t) < 0)
                return rn_seterr(r->err, "state file %s: out of memory", r->path);
            if (tab_lookup(&s->t, h, k, klen, &pos) != NONE)
                return corrupt(r, at, "duplicate key");
            size_t e = tab_insert(&s->t, pos, h, k, klen);
            if (e == NONE)
                return rn_seterr(r->err, "state file %s: out of memory", r->path);
            w->entries++;
            if (rd_acc(r, w->agg, slice_acc(tab_ent(&s->t, e))) < 0)
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
        uint32_t h = (uint32_t)(hash_key(k, klen, w->seed) >> 32);
        if (tab_reserve(&w->run) < 0)
            return rn_seterr(r->err, "state file %s: out of memory", r->path);
        if (tab_lookup(&w->run, h, k, klen, &pos) != NONE)
            return corrupt(r, at, "duplicate key");
        size_t e = tab_insert(&w->run, pos, h, k, klen);
        if (e == NONE)
            return rn_seterr(r->err, "state file %s: out of memory", r->path);
        rent *x = run_ent(tab_ent(&w->run, e));
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
    int fd, rc = -1;

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
    for (size_t got = 0; got < size;) {
        ssize_t m = read(fd, buf + got, size - got);
        if (m < 0 && errno == EINTR)
            continue;
        if (m < 0) {
            rn_seterr(err, "state file %s: read: %s", path, strerror(errno));
            goto out;
        }
        if (m == 0) {
            size = got;     /* shrank under us: the parse will say where */
            break;
        }
        got += (size_t)m;
    }
    rd r = { buf, 0, size >= 8 ? size - 8 : 0, path, err };
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
    reset_state(w);
out:
    free(buf);
    close(fd);
    return rc;
}
