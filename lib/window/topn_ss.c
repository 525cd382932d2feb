/* topn_ss.c -- Space-Saving heavy hitters with the stream-summary structure.
 *
 * Counters of equal count share a bucket; buckets form a doubly linked list
 * in ascending count, each holding a doubly linked list of its counters. To
 * count a monitored key, its counter moves to the next bucket when that one
 * holds count + 1, else to a new bucket inserted after its own (or, alone in
 * its bucket, the bucket itself takes the new count): O(1). An unmonitored
 * key takes over a counter of the first (smallest) bucket, inheriting its
 * count as the error bound, when all CAPACITY counters are in use: O(1).
 * A hash table (linear probing, at most half full; core's seeded hash, a
 * random seed per rn_ss) finds a key's counter;
 * an evicted key leaves it by backward-shift deletion, so no tombstones pile
 * up however long the stream.
 *
 * Everything is indexed by 32-bit numbers, not pointers: half the memory of
 * the links, and the exact mode (capacity 0, no eviction) can grow its
 * arrays with realloc. */
#include <stdlib.h>
#include <string.h>

#include "window/window.h"

#define NIL UINT32_MAX
#define INLINE_KEY 24       /* key bytes held in the counter itself */

/* 64 bytes, one cache line: a lookup that finds its key reads one line of
 * counter, not a second one elsewhere for the key's bytes. */
typedef struct ctr {
    uint32_t hash, klen;
    uint32_t bucket;
    uint32_t prev, next;    /* the other counters of the bucket */
    uint32_t xcap;          /* room at ext when it was malloc'd (bounded mode) */
    uint64_t error;
    char *ext;              /* a longer key: in the arena (exact) or malloc'd */
    char inl[INLINE_KEY];   /* a key of at most INLINE_KEY bytes */
} ctr;

static inline const char *ckey(const ctr *c)
{
    return c->klen <= INLINE_KEY ? c->inl : c->ext;
}

typedef struct bkt {
    uint64_t count;
    uint32_t head;          /* a counter of this count */
    uint32_t prev, next;    /* buckets of smaller and larger counts */
} bkt;

typedef struct arena {
    struct arena *next;
    size_t used, cap;
    char data[];
} arena;

struct rn_ss {
    size_t capacity;        /* 0: exact */
    ctr *c;
    size_t nc, capc;
    bkt *b;
    size_t nb, capb;        /* buckets ever made (free ones are reused) */
    uint32_t bfree;         /* free buckets, through next */
    uint32_t bmin, bmax;
    uint64_t *slots;        /* hash << 32 | counter + 1; 0 is empty */
    size_t mask;
    uint64_t total, evictions;
    arena *keys;            /* long keys' bytes (exact mode) */
    uint64_t seed;          /* of the key hash: random per rn_ss */
};

static size_t pow2_at_least(size_t n)
{
    size_t p = 16;
    while (p < n)
        p *= 2;
    return p;
}

rn_ss *rn_ss_new(size_t capacity)
{
    if (capacity > RN_SS_MAX_CAPACITY)
        return NULL;
    rn_ss *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->capacity = capacity;
    s->seed = rn_hash_seed();
    s->bmin = s->bmax = s->bfree = NIL;
    size_t n = capacity ? capacity : 64;
    s->capc = s->capb = n;
    s->c = aligned_alloc(64, n * sizeof *s->c);
    s->b = malloc(n * sizeof *s->b);
    s->mask = pow2_at_least(2 * n) - 1;
    s->slots = calloc(s->mask + 1, sizeof *s->slots);
    if (!s->c || !s->b || !s->slots) {
        rn_ss_free(s);
        return NULL;
    }
    return s;
}

void rn_ss_free(rn_ss *s)
{
    if (!s)
        return;
    if (s->capacity)
        for (size_t i = 0; i < s->nc; i++)
            if (s->c[i].xcap)
                free(s->c[i].ext);
    for (arena *a = s->keys, *next; a; a = next) {
        next = a->next;
        free(a);
    }
    free(s->c);
    free(s->b);
    free(s->slots);
    free(s);
}

uint64_t rn_ss_total(const rn_ss *s) { return s->total; }
size_t rn_ss_size(const rn_ss *s) { return s->nc; }
size_t rn_ss_capacity(const rn_ss *s) { return s->capacity; }
uint64_t rn_ss_evictions(const rn_ss *s) { return s->evictions; }

/* ---- buckets ---------------------------------------------------------------- */

static uint32_t bucket_new(rn_ss *s, uint64_t count)
{
    uint32_t bi;
    if (s->bfree != NIL) {
        bi = s->bfree;
        s->bfree = s->b[bi].next;
    } else {
        /* Never more buckets than counters + 1: capb follows capc. */
        bi = (uint32_t)s->nb++;
    }
    s->b[bi].count = count;
    s->b[bi].head = NIL;
    return bi;
}

/* Link bucket bi into the list after `after` (NIL: at the front). */
static void bucket_link(rn_ss *s, uint32_t bi, uint32_t after)
{
    bkt *b = &s->b[bi];
    b->prev = after;
    b->next = after == NIL ? s->bmin : s->b[after].next;
    if (b->next != NIL)
        s->b[b->next].prev = bi;
    else
        s->bmax = bi;
    if (after != NIL)
        s->b[after].next = bi;
    else
        s->bmin = bi;
}

static void bucket_unlink_free(rn_ss *s, uint32_t bi)
{
    bkt *b = &s->b[bi];
    if (b->prev != NIL)
        s->b[b->prev].next = b->next;
    else
        s->bmin = b->next;
    if (b->next != NIL)
        s->b[b->next].prev = b->prev;
    else
        s->bmax = b->prev;
    b->next = s->bfree;
    s->bfree = bi;
}

static void attach(rn_ss *s, uint32_t ci, uint32_t bi)
{
    ctr *c = &s->c[ci];
    bkt *b = &s->b[bi];
    c->bucket = bi;
    c->prev = NIL;
    c->next = b->head;
    if (b->head != NIL)
        s->c[b->head].prev = ci;
    b->head = ci;
}

static void detach(rn_ss *s, uint32_t ci)
{
    ctr *c = &s->c[ci];
    if (c->prev != NIL)
        s->c[c->prev].next = c->next;
    else
        s->b[c->bucket].head = c->next;
    if (c->next != NIL)
        s->c[c->next].prev = c->prev;
}

/* count + 1 for counter ci: the O(1) step of the stream-summary. */
static inline __attribute__((always_inline)) void increment(rn_ss *s, uint32_t ci)
{
    ctr *c = &s->c[ci];
    uint32_t bi = c->bucket;
    uint64_t v = s->b[bi].count + 1;
    uint32_t ni = s->b[bi].next;
    int next_fits = ni != NIL && s->b[ni].count == v;

    if (c->prev == NIL && c->next == NIL) {     /* alone in its bucket */
        if (!next_fits) {
            s->b[bi].count = v;     /* still below the next bucket's count */
            return;
        }
        bucket_unlink_free(s, bi);
        attach(s, ci, ni);
        return;
    }
    detach(s, ci);
    if (!next_fits) {
        ni = bucket_new(s, v);
        bucket_link(s, ni, bi);
    }
    attach(s, ci, ni);
}

/* ---- the hash table ------------------------------------------------------- */

/* The tag and probe start of key: the upper half of core's seeded hash. */
static inline uint32_t key_hash(const rn_ss *s, const char *key, size_t n)
{
    return (uint32_t)(rn_hash(key, n, s->seed) >> 32);
}

static inline int key_eq(const ctr *c, const char *key, size_t n)
{
    return c->klen == n && memcmp(ckey(c), key, n) == 0;
}

/* The slot holding counter ci + 1, or of the first empty slot on key's
 * probe sequence (*found 0). */
static inline size_t probe(const rn_ss *s, uint32_t h, const char *key, size_t n, int *found)
{
    size_t j = h & s->mask;
    for (uint64_t v; (v = s->slots[j]) != 0; j = (j + 1) & s->mask) {
        if ((uint32_t)(v >> 32) == h && key_eq(&s->c[(uint32_t)v - 1], key, n)) {
            *found = 1;
            return j;
        }
    }
    *found = 0;
    return j;
}

/* Remove the slot of counter ci, shifting back the entries after it that
 * would no longer be found. */
static void slot_delete(rn_ss *s, uint32_t ci)
{
    size_t mask = s->mask, i = s->c[ci].hash & mask;
    while ((uint32_t)s->slots[i] != ci + 1)
        i = (i + 1) & mask;
    for (size_t j = i;;) {
        j = (j + 1) & mask;
        uint64_t v = s->slots[j];
        if (!v)
            break;
        size_t home = (size_t)(v >> 32) & mask;
        /* The entry at j may move to the hole at i unless its home lies
         * cyclically in (i, j]. */
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            s->slots[i] = v;
            i = j;
        }
    }
    s->slots[i] = 0;
}

static int grow_slots(rn_ss *s)
{
    size_t nmask = s->mask * 2 + 1;
    uint64_t *ns = calloc(nmask + 1, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= s->mask; i++) {
        uint64_t v = s->slots[i];
        if (!v)
            continue;
        size_t j = (size_t)(v >> 32) & nmask;
        while (ns[j])
            j = (j + 1) & nmask;
        ns[j] = v;
    }
    free(s->slots);
    s->slots = ns;
    s->mask = nmask;
    return 0;
}

/* ---- keys ------------------------------------------------------------------ */

static char *arena_copy(rn_ss *s, const char *key, size_t n)
{
    arena *a = s->keys;
    if (!a || a->cap - a->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        arena *na = malloc(sizeof *na + cap);
        if (!na)
            return NULL;
        na->cap = cap;
        na->used = 0;
        na->next = a;
        s->keys = a = na;
    }
    char *p = a->data + a->used;
    if (n)
        memcpy(p, key, n);
    a->used += n;
    return p;
}

/* The counter's key becomes key: in the counter when short, else in the
 * arena (exact mode: keys are never replaced) or in a malloc'd block kept
 * for the next long key (bounded mode). */
static int set_key(rn_ss *s, ctr *c, const char *key, size_t n)
{
    if (n <= INLINE_KEY) {
        if (n)
            memcpy(c->inl, key, n);
    } else if (!s->capacity) {
        if (!(c->ext = arena_copy(s, key, n)))
            return -1;
    } else {
        if (n > c->xcap) {
            size_t cap = n < 64 ? 64 : n;
            char *p = malloc(cap);
            if (!p)
                return -1;
            free(c->ext);
            c->ext = p;
            c->xcap = (uint32_t)cap;
        }
        memcpy(c->ext, key, n);
    }
    c->klen = (uint32_t)n;
    return 0;
}

/* ---- counting ---------------------------------------------------------------- */

static int grow_exact(rn_ss *s)
{
    size_t cap = s->capc * 2;
    if (cap > (size_t)NIL - 1)
        return -1;
    ctr *nc = aligned_alloc(64, cap * sizeof *nc);   /* realloc would lose the alignment */
    if (!nc)
        return -1;
    memcpy(nc, s->c, s->nc * sizeof *nc);
    free(s->c);
    s->c = nc;
    bkt *nb = realloc(s->b, (cap + 1) * sizeof *nb);
    if (!nb)
        return -1;
    s->b = nb;
    s->capc = cap;
    s->capb = cap + 1;
    return 0;
}

int rn_ss_add(rn_ss *s, const char *key, size_t n)
{
    if (n > UINT32_MAX)
        n = UINT32_MAX;     /* keys are bounded long before this */
    uint32_t h = key_hash(s, key, n);
    int found;
    size_t j = probe(s, h, key, n, &found);

    if (found) {
        increment(s, (uint32_t)s->slots[j] - 1);
        s->total++;
        return 0;
    }
    uint32_t ci;
    if (!s->capacity || s->nc < s->capacity) {
        /* A free counter, count 1, error 0. */
        if (!s->capacity) {
            if (s->nc == s->capc && grow_exact(s) < 0)
                return -1;
            if ((s->nc + 1) * 2 > s->mask + 1) {
                if (grow_slots(s) < 0)
                    return -1;
                j = probe(s, h, key, n, &found);
            }
        }
        ci = (uint32_t)s->nc;
        ctr *c = &s->c[ci];
        c->ext = NULL;
        c->xcap = 0;
        if (set_key(s, c, key, n) < 0)
            return -1;
        c->hash = h;
        c->error = 0;
        s->nc++;
        uint32_t bi = s->bmin;
        if (bi == NIL || s->b[bi].count != 1) {
            bi = bucket_new(s, 1);
            bucket_link(s, bi, NIL);
        }
        attach(s, ci, bi);
    } else {
        /* Take over a counter of the smallest count. */
        uint32_t bi = s->bmin;
        ci = s->b[bi].head;
        ctr *c = &s->c[ci];
        if (set_key(s, c, key, n) < 0)
            return -1;
        slot_delete(s, ci);
        j = probe(s, h, key, n, &found);
        c->hash = h;
        c->error = s->b[bi].count;
        increment(s, ci);
        s->evictions++;
    }
    s->slots[j] = (uint64_t)h << 32 | (uint64_t)(ci + 1);
    s->total++;
    return 0;
}

int rn_ss_get(const rn_ss *s, const char *key, size_t n, uint64_t *count, uint64_t *error)
{
    int found;
    size_t j = probe(s, key_hash(s, key, n), key, n, &found);
    if (!found)
        return 0;
    const ctr *c = &s->c[(uint32_t)s->slots[j] - 1];
    if (count)
        *count = s->b[c->bucket].count;
    if (error)
        *error = c->error;
    return 1;
}

/* ---- the top ------------------------------------------------------------------ */

/* Within a bucket (equal counts): smaller error first (a larger lower
 * bound), then key bytes ascending. */
static int member_cmp(const rn_ss *s, uint32_t x, uint32_t y)
{
    const ctr *a = &s->c[x], *b = &s->c[y];
    if (a->error != b->error)
        return a->error < b->error ? -1 : 1;
    return rn_topn_key_cmp((rn_str){ ckey(a), a->klen }, (rn_str){ ckey(b), b->klen });
}

/* The heap keeps the worst of the best k at its root. */
static void heap_down(const rn_ss *s, uint32_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && member_cmp(s, h[l], h[w]) > 0)
            w = l;
        if (r < n && member_cmp(s, h[r], h[w]) > 0)
            w = r;
        if (w == i)
            return;
        uint32_t t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void heap_up(const rn_ss *s, uint32_t *h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (member_cmp(s, h[i], h[p]) <= 0)
            return;
        uint32_t t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

/* The best k counters of bucket bi into out, best first; returns how many. */
static size_t bucket_best(const rn_ss *s, uint32_t bi, size_t k, uint32_t *out)
{
    size_t m = 0;
    for (uint32_t ci = s->b[bi].head; ci != NIL; ci = s->c[ci].next) {
        if (m < k) {
            out[m] = ci;
            heap_up(s, out, m++);
        } else if (member_cmp(s, ci, out[0]) < 0) {
            out[0] = ci;
            heap_down(s, out, m, 0);
        }
    }
    for (size_t i = m; i-- > 1;) {
        uint32_t t = out[0];
        out[0] = out[i];
        out[i] = t;
        heap_down(s, out, i, 0);
    }
    return m;
}

long rn_ss_top(const rn_ss *s, size_t n, rn_ss_item *out, uint64_t *threshold)
{
    size_t need = n + 1, got = 0;
    uint32_t *ix = malloc(need * sizeof *ix);
    if (!ix)
        return -1;
    for (uint32_t bi = s->bmax; bi != NIL && got < need; bi = s->b[bi].prev)
        got += bucket_best(s, bi, need - got, ix + got);

    uint64_t thr;
    if (got == need)
        thr = s->b[s->c[ix[n]].bucket].count;
    else    /* every counter is listed; outside are unmonitored keys */
        thr = s->evictions ? s->b[s->bmin].count : 0;
    size_t k = got < n ? got : n;
    for (size_t i = 0; i < k; i++) {
        const ctr *c = &s->c[ix[i]];
        uint64_t count = s->b[c->bucket].count;
        out[i] = (rn_ss_item){
            .key = { ckey(c), c->klen }, .count = count, .error = c->error,
            .guaranteed = count - c->error >= thr,
        };
    }
    if (threshold)
        *threshold = thr;
    free(ix);
    return (long)k;
}
