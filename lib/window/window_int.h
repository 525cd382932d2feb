/* window_int.h -- what winagg's window files share inside window/: the
 * table of keys (table.c), and the window's state and accumulators
 * (window.c), which the state file (state.c) writes and reads. */
#ifndef RN_WINDOW_WINDOW_INT_H
#define RN_WINDOW_WINDOW_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/core.h"
#include "window/window.h"

/* table.c -- the open-addressing hash table of keys, one per slice and one
 * for the running window.
 *
 * Linear probing over a power-of-two array of 8-byte slots, each the upper
 * 32 bits of the key's hash (probe start and tag) and the index + 1 of an
 * entry in a dense array; 0 is empty. Entries are a fixed-size header and a
 * payload whose size the table is given; key bytes live in one arena per
 * table. Dense entries make whole-table passes (merging a slice, emitting,
 * saving) sequential, and growing rehashes slots alone, without touching
 * entries or keys. Deletion (running table only) uses backward shifting, so
 * there are no tombstones, and moves the last entry into the hole; the
 * arena is compacted once it is more than half dead. Short keys are kept
 * in their entry instead (rn_wtab__key). Load factor <= 0.7.
 * The hash is the caller's: the window hashes each key once with its seed
 * (rn_window__hash) and passes the same value to every table. */

typedef struct rn_wtab_ent {
    uint32_t hash;      /* upper half of the key's hash */
    uint32_t klen;
    union {
        uint64_t koff;  /* key bytes at arena + koff */
        char kin[8];    /* or here, when klen <= RN_WTAB_INLINE */
    } k;
} rn_wtab_ent;

typedef struct rn_wtab {
    uint64_t *slot;
    size_t mask;        /* slots - 1 */
    char *ent;
    size_t n, ecap, esz;
    char *key;
    size_t klen, kcap, kdead;
} rn_wtab;

#define RN_WTAB_NONE ((size_t)-1)
#define RN_WTAB_MAX ((size_t)1 << 31)   /* entries per table: slots stay < 2^32 */
#define RN_WTAB_TAGMASK 0xffffffff00000000ULL
#define RN_WTAB_INLINE 8

static inline rn_wtab_ent *rn_wtab__ent(const rn_wtab *t, size_t i)
{
    return (rn_wtab_ent *)(t->ent + i * t->esz);
}

/* The key bytes of e. Keys of up to RN_WTAB_INLINE bytes (most search
 * terms, hosts, status codes) live in the entry itself, so that a lookup
 * that finds one reads no third cache line; like the arena's, the bytes
 * are valid until the table changes. */
static inline const char *rn_wtab__key(const rn_wtab *t, const rn_wtab_ent *e)
{
    return e->klen <= RN_WTAB_INLINE ? e->k.kin : t->key + e->k.koff;
}

/* Entries of esz bytes (header and payload), room for hint_n of them and
 * hint_k key bytes. 0, or -1 when out of memory (t is then empty). */
int rn_wtab__init(rn_wtab *t, size_t esz, size_t hint_n, size_t hint_k);
void rn_wtab__free(rn_wtab *t);
/* Empty the table; the slot array shrinks if it was mostly unused. */
void rn_wtab__reset(rn_wtab *t);
/* Double the slots. 0, or -1 when out of memory. */
int rn_wtab__grow(rn_wtab *t);

/* Room for one more entry; call before a rn_wtab__lookup that may insert, as
 * growing moves the slot it returns. Inline, as the two below: the window
 * calls them for every event. */
static inline int rn_wtab__reserve(rn_wtab *t)
{
    if ((t->n + 1) * 10 <= (t->mask + 1) * 7)
        return 0;
    if (t->n + 1 > RN_WTAB_MAX)
        return -1;
    return rn_wtab__grow(t);
}

/* The entry index of key, or RN_WTAB_NONE with *pos the empty slot it would take. */
static inline size_t rn_wtab__lookup(const rn_wtab *t, uint32_t h, const char *key,
                                     size_t klen, size_t *pos)
{
    uint64_t tag = (uint64_t)h << 32;
    size_t i = h & t->mask;
    for (;;) {
        uint64_t v = t->slot[i];
        if (!v) {
            if (pos)
                *pos = i;
            return RN_WTAB_NONE;
        }
        if ((v & RN_WTAB_TAGMASK) == tag) {
            size_t idx = (uint32_t)v - 1;
            const rn_wtab_ent *e = rn_wtab__ent(t, idx);
            if (e->klen == klen && rn_memeq(rn_wtab__key(t, e), key, klen))
                return idx;
        }
        i = (i + 1) & t->mask;
    }
}

/* Insert at pos (from rn_wtab__lookup after rn_wtab__reserve); payload
 * zeroed. Returns the entry index or RN_WTAB_NONE when out of memory. */
size_t rn_wtab__insert(rn_wtab *t, size_t pos, uint32_t h, const char *key, size_t klen);
/* Remove entry idx; the last entry moves into its place. */
void rn_wtab__delete(rn_wtab *t, size_t idx);
/* Copy live keys to a new arena once more than half of it is dead. */
void rn_wtab__compact_keys(rn_wtab *t);

/* Decimals (rows.c, window.c, topn.c): a value i / 10^scale, scale 0..18.
 * The arithmetic on them is done in __int128, which GCC and Clang have on
 * every 64-bit target; i * 10^18 always fits it. */
#ifndef __SIZEOF_INT128__
#error "exact decimal sums need __int128 (a 64-bit GCC or Clang)"
#endif
#define RN_DEC_MAXSCALE 18

/* 10^n for 0 <= n <= 18. */
static inline int64_t rn_dec__pow10(int n)
{
    static const int64_t p[RN_DEC_MAXSCALE + 1] = {
        1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL,
        100000000LL, 1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL,
        10000000000000LL, 100000000000000LL, 1000000000000000LL,
        10000000000000000LL, 100000000000000000LL, 1000000000000000000LL,
    };
    return p[n];
}

/* *v * 10^n (0 <= n <= 18); 0, or -1 on overflow (*v is then unchanged). */
static inline int rn_dec__rescale(__int128 *v, int n)
{
    __int128 r;
    if (__builtin_mul_overflow(*v, (__int128)rn_dec__pow10(n), &r))
        return -1;
    *v = r;
    return 0;
}

/* window.c -- the window's state: values, accumulators, slices. */

typedef struct rn_wnum {
    union {
        int64_t i;
        double f;
    } u;
    int is_float;
    int scale;          /* when !is_float: the value is u.i / 10^scale */
} rn_wnum;

/* A 128-bit two's complement integer: exact integer sums. */
typedef struct rn_i128 {
    uint64_t lo, hi;
} rn_i128;

typedef struct rn_wacc {
    int64_t count;
    union {
        struct {                /* sum, avg */
            int64_t nf;         /* double values (finite or not) */
            int64_t nbad;       /* of which inf or nan */
            rn_i128 isum;       /* integer and decimal values, in 10^-scale */
            int64_t nscale;     /* of those, values of scale `scale` */
            int32_t scale;      /* the largest scale of a value in isum; when
                                   nscale is 0 (they left) an upper bound */
            int32_t inexact;    /* isum overflowed: part of it is in dsum */
            double dsum, dcomp; /* finite doubles, Neumaier-compensated */
            double bad;         /* slices: plain sum of the inf/nan values */
        } s;
        rn_wnum best;           /* min, max (running table: per emission) */
    } u;
} rn_wacc;

/* Running table payload: the accumulator and what emission needs. */
typedef struct rn_wrent {
    rn_wacc a;
    rn_wnum prev;               /* value emitted in the previous window */
    int64_t stamp;              /* window u.best was computed for */
    int has_prev;
} rn_wrent;

static inline int rn_window__is_sum(rn_agg agg)
{
    return agg == RN_AGG_SUM || agg == RN_AGG_AVG;
}

/* -1 for min, 1 for max, 0 for the others. */
static inline int rn_window__minmax(rn_agg agg)
{
    return agg == RN_AGG_MIN ? -1 : agg == RN_AGG_MAX ? 1 : 0;
}

/* Fill table payload (--fill): a key that gets a 0 row when absent. */
typedef struct rn_wfill {
    int named;                  /* a fill key: a row in every window */
    int in_last;                /* a key of the last window that held data */
    int zero_prev;              /* its value in the previous window was 0 */
} rn_wfill;

typedef struct rn_wslice {
    int64_t n;
    int fresh;              /* an event was added since it was made or loaded
                               (not saved): rn_window_flush_fresh */
    rn_wtab t;
} rn_wslice;

struct rn_window {
    int64_t W, S, k;
    rn_agg agg;
    int emit_changed;
    size_t max_keys;
    int64_t smin, smax;     /* slices whose windows all have int64 bounds */
    uint64_t seed;          /* of the key hash: random per window */

    /* Windows ending at slices <= C have been passed. Slices are sorted by
     * number; sl[0..nin) are those <= C, all in window C and summed in run;
     * the rest are pending (> C). */
    int64_t C;
    int passed;
    int adv_ok;             /* rn_window_advance passes nothing while the */
    int64_t adv_C, adv_wm;  /* watermark < adv_wm, for C == adv_C */
    rn_wslice **sl;
    size_t nsl, capsl, nin;
    rn_wtab run;
    size_t slice_esz;
    uint64_t entries;       /* sum of slice table sizes */

    rn_wslice *cur;         /* the slice the last event went to, pending */
    int64_t cur_lo, cur_hi;
    size_t hint_n, hint_k;  /* size of the last retired slice */

    /* --fill: the named keys and those of the last window that held data;
     * filling once a window with data was emitted. */
    int fill_last;          /* fill the keys of the last window with data */
    int fill_any;           /* fill_last, or named keys: filltab in use */
    int filling;
    rn_wtab filltab;
    uint64_t fill_cut;      /* gaps whose filling was cut at RN_WIN_FILL_MAX */

    int fresh_only;         /* emit only windows holding a fresh slice */
    struct rn_woutrow *out; /* rows of the window being emitted (window.c) */
    struct rn_woutrow *out2;    /* as many more, and twice as many keys: */
    struct rn_wsortkey *sk;     /* the radix sort's (window.c) */
    size_t outcap;
    uint64_t late, evicted, invalid, windows, rows;
};

static inline rn_wacc *rn_window__slice_acc(rn_wtab_ent *e)
{
    return (rn_wacc *)(e + 1);
}

static inline rn_wrent *rn_window__run_ent(rn_wtab_ent *e)
{
    return (rn_wrent *)(e + 1);
}

static inline rn_wfill *rn_window__fill_ent(rn_wtab_ent *e)
{
    return (rn_wfill *)(e + 1);
}

/* The tag and probe start of key in w's tables: the upper half of core's
 * seeded hash. Nothing depends on hash order (rows are sorted, the state
 * file stores no hashes), so the seed is random per window. */
__attribute__((always_inline))
static inline uint32_t rn_window__hash(const rn_window *w, const char *key, size_t klen)
{
    return (uint32_t)(rn_hash(key, klen, w->seed) >> 32);
}

/* The pending slice numbered n, creating it if create; NULL if absent or out
 * of memory (*nomem set). */
rn_wslice *rn_window__find_slice(rn_window *w, int64_t n, int create, int *nomem);

/* Back to the state of a new window (counters kept). */
void rn_window__reset(rn_window *w);

/* rows.c -- times as ns since the epoch, for every time parser of window/.
 * sec seconds (as timegm gives them) less off seconds (a UTC offset) plus
 * sub ns (0 <= sub < 1e9), into *ns: 0, or -1 when that is outside int64 ns
 * (before 1677-09-21T00:12:43.145224192Z or after
 * 2262-04-11T23:47:16.854775807Z), which must never wrap. */
int rn_time__ns(int64_t sec, int64_t off, int64_t sub, int64_t *ns);

#endif
