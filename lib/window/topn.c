/* topn.c -- merge winagg rows per window and key, pick the N largest keys of
 * each window, and decide which windows are due for printing.
 *
 * Windows are kept in an array sorted by (end, start): printing goes in that
 * order, the windows the input has moved past are a prefix of it, and the
 * usual input (rows grouped by window, windows in order) appends at its end.
 * A row for another window than the previous row's costs a binary search;
 * merging many inputs whose windows interleave costs a memmove of pointers
 * per new window, which is cheap next to the rows of a window. */
#include "window/window.h"
#include "window/window_int.h"

#include <stdlib.h>
#include <string.h>

/* ---- values and order ----------------------------------------------------- */

/* A decimal's (or an integer's) mantissa at a larger scale: exact, since
 * int64 * 10^18 fits 127 bits. */
static __int128 at_scale(rn_value v, int scale)
{
    __int128 x = v.i;
    rn_dec__rescale(&x, scale - v.scale);
    return x;
}

rn_value rn_topn_value_add(rn_value a, rn_value b)
{
    rn_value r = { 0, 0, 0, 0 };
    if (!a.is_float && !b.is_float) {
        int sc = a.scale > b.scale ? a.scale : b.scale;
        __int128 s = at_scale(a, sc) + at_scale(b, sc);
        if (s >= INT64_MIN && s <= INT64_MAX) {
            r.i = (int64_t)s;
            r.scale = sc;
            return r;
        }
    }
    r.is_float = 1;
    r.f = rn_value_double(a) + rn_value_double(b);
    return r;
}

int rn_topn_value_cmp(rn_value a, rn_value b)
{
    if (!a.is_float && !b.is_float) {
        int sc = a.scale > b.scale ? a.scale : b.scale;
        __int128 x = at_scale(a, sc), y = at_scale(b, sc);
        return (x > y) - (x < y);
    }
    double x = rn_value_double(a), y = rn_value_double(b);
    return (x > y) - (x < y);
}

int rn_topn_key_cmp(rn_str a, rn_str b)
{
    size_t n = a.n < b.n ? a.n : b.n;
    int c = n ? memcmp(a.p, b.p, n) : 0;
    if (c)
        return c;
    return (a.n > b.n) - (a.n < b.n);
}

int rn_topn_entry_cmp(const rn_topn_entry *a, const rn_topn_entry *b)
{
    int c = rn_topn_value_cmp(a->value, b->value);
    if (c)
        return -c;
    return rn_topn_key_cmp(a->key, b->key);
}

/* A heap of the best n seen so far with the worst at its root: a candidate
 * that beats the root replaces it. */
static void sift_down(const rn_topn_entry **h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, w = i;
        if (l < n && rn_topn_entry_cmp(h[l], h[w]) > 0)
            w = l;
        if (r < n && rn_topn_entry_cmp(h[r], h[w]) > 0)
            w = r;
        if (w == i)
            return;
        const rn_topn_entry *t = h[i];
        h[i] = h[w];
        h[w] = t;
        i = w;
    }
}

static void sift_up(const rn_topn_entry **h, size_t i)
{
    while (i) {
        size_t p = (i - 1) / 2;
        if (rn_topn_entry_cmp(h[i], h[p]) <= 0)
            return;
        const rn_topn_entry *t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

long rn_topn_select(const rn_topn_entry *e, size_t m, size_t n, rn_topn_entry *out)
{
    if (n > m)
        n = m;
    if (n == 0)
        return 0;
    const rn_topn_entry **h = malloc(n * sizeof *h);
    if (!h)
        return -1;
    size_t k = 0;
    for (size_t i = 0; i < m; i++) {
        if (k < n) {
            h[k] = &e[i];
            sift_up(h, k++);
        } else if (rn_topn_entry_cmp(&e[i], h[0]) < 0) {
            h[0] = &e[i];
            sift_down(h, k, 0);
        }
    }
    /* Pop the worst to the back: best first. */
    for (size_t i = k; i-- > 0;) {
        out[i] = *h[0];
        h[0] = h[i];
        sift_down(h, i, 0);
    }
    free(h);
    return (long)k;
}

/* ---- windows ---------------------------------------------------------------- */

/* Keys of a window live in chunks that are freed with it. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
} chunk;

typedef struct window {
    int64_t start, end;
    rn_topn_entry *e;       /* the keys and their sums */
    size_t n, cap;
    uint64_t *slots;        /* hash << 32 | index + 1; 0 is empty */
    size_t mask;
    chunk *keys;
    int printed;            /* handed out at least once */
    int dirty;              /* rows added since it was last handed out */
} window;

struct rn_topn {
    size_t n, keep;
    window **w;             /* sorted by (end, start) */
    size_t nw, capw;
    window *last;           /* the window of the previous row */
    int64_t max_end;        /* the latest end of any row */
    int64_t freed_end;      /* the latest end of a freed window */
    int64_t latest_end, latest_start;   /* the latest window handed out */
    int any_printed, any_rows, any_freed;
    rn_topn_entry *top;     /* room for n */
    uint64_t seed;          /* of the key hash: random per rn_topn */
};

rn_topn *rn_topn_new(size_t n, size_t keep)
{
    if (n == 0)
        n = 1;
    rn_topn *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n = n;
    t->keep = keep ? keep : RN_TOPN_KEEP;
    t->seed = rn_hash_seed();
    t->top = malloc(n * sizeof *t->top);
    if (!t->top) {
        free(t);
        return NULL;
    }
    return t;
}

static void window_free(window *w)
{
    if (!w)
        return;
    for (chunk *c = w->keys, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(w->e);
    free(w->slots);
    free(w);
}

void rn_topn_free(rn_topn *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nw; i++)
        window_free(t->w[i]);
    free(t->w);
    free(t->top);
    free(t);
}

static int win_cmp(int64_t end, int64_t start, const window *w)
{
    if (end != w->end)
        return end < w->end ? -1 : 1;
    return (start > w->start) - (start < w->start);
}

/* Where (start, end) is or would go in t->w. */
static size_t win_pos(const rn_topn *t, int64_t start, int64_t end, int *found)
{
    size_t lo = 0, hi = t->nw;
    *found = 0;
    /* Rows arrive mostly for the newest window: look at the end first. */
    if (hi && win_cmp(end, start, t->w[hi - 1]) > 0)
        return hi;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = win_cmp(end, start, t->w[mid]);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static window *window_new(int64_t start, int64_t end)
{
    window *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->start = start;
    w->end = end;
    w->mask = 15;
    w->slots = calloc(w->mask + 1, sizeof *w->slots);
    if (!w->slots) {
        free(w);
        return NULL;
    }
    return w;
}

static char *key_copy(window *w, const char *p, size_t n)
{
    chunk *c = w->keys;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 16384 ? n : 16384;
        chunk *nc = malloc(sizeof *nc + cap);
        if (!nc)
            return NULL;
        nc->cap = cap;
        nc->used = 0;
        nc->next = c;
        w->keys = c = nc;
    }
    char *dst = c->data + c->used;
    if (n)
        memcpy(dst, p, n);
    c->used += n;
    return dst;
}

static int grow_slots(window *w)
{
    size_t nmask = w->mask * 2 + 1;
    uint64_t *ns = calloc(nmask + 1, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i <= w->mask; i++) {
        uint64_t s = w->slots[i];
        if (!s)
            continue;
        size_t j = (size_t)(s >> 32) & nmask;
        while (ns[j])
            j = (j + 1) & nmask;
        ns[j] = s;
    }
    free(w->slots);
    w->slots = ns;
    w->mask = nmask;
    return 0;
}

/* Add value to key in w. 0, or -1 when out of memory. */
static int window_add(window *w, uint64_t seed, const char *key, size_t klen, rn_value v)
{
    uint32_t h = (uint32_t)(rn_hash(key, klen, seed) >> 32);
    /* Keep the table at most half full, so probes stay short; grown before
     * probing so that a failure leaves everything as it was. */
    if ((w->n + 1) * 2 > w->mask + 1 && grow_slots(w) < 0)
        return -1;
    size_t j = h & w->mask;
    for (uint64_t s; (s = w->slots[j]) != 0; j = (j + 1) & w->mask) {
        if ((uint32_t)(s >> 32) != h)
            continue;
        rn_topn_entry *e = &w->e[(uint32_t)s - 1];
        if (e->key.n == klen && (klen == 0 || memcmp(e->key.p, key, klen) == 0)) {
            e->value = rn_topn_value_add(e->value, v);
            return 0;
        }
    }
    if (w->n == UINT32_MAX - 1)
        return -1;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        rn_topn_entry *ne = realloc(w->e, cap * sizeof *ne);
        if (!ne)
            return -1;
        w->e = ne;
        w->cap = cap;
    }
    char *k = key_copy(w, key, klen);
    if (!k)
        return -1;
    w->e[w->n] = (rn_topn_entry){ { k, klen }, v };
    w->slots[j] = (uint64_t)h << 32 | (uint64_t)(w->n + 1);
    w->n++;
    return 0;
}

int rn_topn_add(rn_topn *t, const rn_row *row, char *err)
{
    window *w = t->last;
    if (!w || w->start != row->start || w->end != row->end) {
        int found;
        size_t pos = win_pos(t, row->start, row->end, &found);
        if (found) {
            w = t->w[pos];
        } else {
            if (t->any_freed && row->end <= t->freed_end)
                return RN_TOPN_DROPPED;
            if (t->nw == t->capw) {
                size_t cap = t->capw ? t->capw * 2 : 64;
                window **nw = realloc(t->w, cap * sizeof *nw);
                if (!nw)
                    return rn_seterr(err, "out of memory");
                t->w = nw;
                t->capw = cap;
            }
            w = window_new(row->start, row->end);
            if (!w)
                return rn_seterr(err, "out of memory");
            memmove(&t->w[pos + 1], &t->w[pos], (t->nw - pos) * sizeof *t->w);
            t->w[pos] = w;
            t->nw++;
        }
        t->last = w;
    }
    if (window_add(w, t->seed, row->key.p, row->key.n, row->value) < 0)
        return rn_seterr(err, "out of memory");
    w->dirty = 1;
    if (!t->any_rows || row->end > t->max_end)
        t->max_end = row->end;
    t->any_rows = 1;
    return w->printed ? RN_TOPN_LATE : RN_TOPN_ADDED;
}

int rn_topn_ready(const rn_topn *t)
{
    for (size_t i = 0; i < t->nw && t->w[i]->end < t->max_end; i++)
        if (t->w[i]->dirty)
            return 1;
    return 0;
}

int64_t rn_topn_max_end(const rn_topn *t) { return t->any_rows ? t->max_end : INT64_MIN; }

size_t rn_topn_pending(const rn_topn *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->nw; i++)
        n += t->w[i]->dirty;
    return n;
}

/* Free the oldest printed windows beyond t->keep. Windows with rows not yet
 * printed stay, however old. */
static void forget(rn_topn *t)
{
    size_t held = 0;
    for (size_t i = 0; i < t->nw; i++)
        held += t->w[i]->printed && !t->w[i]->dirty;
    size_t drop = held > t->keep ? held - t->keep : 0, j = 0;
    for (size_t i = 0; i < t->nw; i++) {
        window *w = t->w[i];
        if (drop && w->printed && !w->dirty) {
            if (!t->any_freed || w->end > t->freed_end)
                t->freed_end = w->end;
            t->any_freed = 1;
            if (t->last == w)
                t->last = NULL;
            window_free(w);
            drop--;
        } else {
            t->w[j++] = w;
        }
    }
    t->nw = j;
}

long rn_topn_flush(rn_topn *t, int all, rn_topn_print_fn fn, void *data, char *err)
{
    int64_t upto = all ? INT64_MAX : t->any_rows ? t->max_end - 1 : INT64_MIN;
    return rn_topn_flush_to(t, upto, fn, data, err);
}

long rn_topn_flush_to(rn_topn *t, int64_t upto, rn_topn_print_fn fn, void *data, char *err)
{
    long done = 0;
    for (size_t i = 0; i < t->nw; i++) {
        window *w = t->w[i];
        if (w->end > upto)
            break;
        if (!w->dirty)
            continue;
        long k = rn_topn_select(w->e, w->n, t->n, t->top);
        if (k < 0)
            return rn_seterr(err, "out of memory");
        int latest = !t->any_printed || w->end > t->latest_end
                     || (w->end == t->latest_end && w->start >= t->latest_start);
        rn_topn_window out = {
            .start = w->start, .end = w->end, .nkeys = w->n, .n = (size_t)k,
            .top = t->top, .reprint = w->printed, .latest = latest,
        };
        if (fn(data, &out) < 0)
            return -1;
        if (latest) {
            t->latest_end = w->end;
            t->latest_start = w->start;
        }
        t->any_printed = 1;
        w->printed = 1;
        w->dirty = 0;
        done++;
    }
    forget(t);
    return done;
}
