/* topn.h -- the N largest keys: of each window of winagg rows (merged across
 * inputs), and of an unbounded stream of keys (Space-Saving).
 *
 * Windows (topn.c). Rows (lib/rows.h) with the same window (start, end) and
 * key are summed, whichever input they came from, so `cat a b | topk` merges
 * the output of two winagg processes. A window is handed out for printing by
 * rn_topn_flush: with all = 0 only windows that the input has moved past (a
 * row of a window ending later was added), with all = 1 every window with
 * rows not yet printed (EOF). The caller decides when (topk: after 200 ms
 * without input). Rows for a window already printed are added to it and the
 * window is handed out again; the last `keep` printed windows are held for
 * that, older ones are freed and rows for them dropped (and counted).
 *
 * Order: value descending, then key bytes ascending (memcmp, a prefix
 * first), so ties come out the same way on every run and every machine.
 *
 * Space-Saving (topn_ss.c), after Metwally, Agrawal and El Abbadi, "Efficient
 * computation of frequent and top-k elements in data streams" (2005): at most
 * CAPACITY counters, each with an error bound; an update costs O(1) (the
 * stream-summary: buckets of equal count in a doubly linked list, ascending).
 * Capacity 0 is exact counting in an unbounded table.
 *
 * Output (topn_fmt.c): an aligned table, TSV, JSON, or RESP commands for
 * `redis-cli --pipe`. Nothing here prints or exits: output goes into an
 * rn_buf the caller writes. */
#ifndef RN_TOPN_H
#define RN_TOPN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "rows.h"
#include "util.h"

/* ---- values and the order of entries ------------------------------------ */

typedef struct rn_topn_entry {
    rn_str key;
    rn_value value;
} rn_topn_entry;

/* a + b: exact while both are integers and the sum fits int64_t, otherwise
 * the double sum. */
rn_value rn_topn_value_add(rn_value a, rn_value b);

/* <0, 0, >0 as a is below, equal to, above b (integers exactly, else as
 * doubles). */
int rn_topn_value_cmp(rn_value a, rn_value b);

/* Key bytes in memcmp order, a proper prefix first. */
int rn_topn_key_cmp(rn_str a, rn_str b);

/* Negative when a comes before b in the output: larger value first, then
 * smaller key. */
int rn_topn_entry_cmp(const rn_topn_entry *a, const rn_topn_entry *b);

/* The best min(m, n) of e[0..m), best first, into out (room for n). Returns
 * how many; -1 when out of memory. e is not changed. O(m log n). */
long rn_topn_select(const rn_topn_entry *e, size_t m, size_t n, rn_topn_entry *out);

/* ---- windows ------------------------------------------------------------ */

typedef struct rn_topn rn_topn;

/* A window handed out for printing. Valid during the callback only. */
typedef struct rn_topn_window {
    int64_t start, end;         /* ns since the epoch */
    size_t nkeys;               /* distinct keys in the window */
    size_t n;                   /* entries in top, at most N */
    const rn_topn_entry *top;   /* best first */
    int reprint;                /* printed before; late rows came since */
    int latest;                 /* no window handed out so far ends later */
} rn_topn_window;

typedef int (*rn_topn_print_fn)(void *data, const rn_topn_window *w);

/* n: keys per window (at least 1); keep: printed windows held for late rows
 * (0 means RN_TOPN_KEEP). NULL when out of memory. */
#define RN_TOPN_KEEP 64
rn_topn *rn_topn_new(size_t n, size_t keep);
void rn_topn_free(rn_topn *t);

/* Add a row (its key is copied). Returns RN_TOPN_ADDED, RN_TOPN_LATE (added
 * to a window that was printed: it will be printed again), RN_TOPN_DROPPED
 * (its window was printed and is no longer held), or -1 with err (out of
 * memory). */
enum { RN_TOPN_ADDED = 0, RN_TOPN_LATE = 1, RN_TOPN_DROPPED = 2 };
int rn_topn_add(rn_topn *t, const rn_row *row, char *err);

/* 1 when rn_topn_flush(t, 0, ...) would hand out a window. */
int rn_topn_ready(const rn_topn *t);
/* Windows holding rows not yet printed. */
size_t rn_topn_pending(const rn_topn *t);

/* Hand every window that is due (see above) to fn, in order of end, then
 * start; then free printed windows beyond `keep`. Returns the number handed
 * out, or -1: out of memory (err says so) or fn returned -1 (err untouched),
 * in which case the window fn refused stays due. */
long rn_topn_flush(rn_topn *t, int all, rn_topn_print_fn fn, void *data, char *err);

/* ---- output -------------------------------------------------------------- */

typedef enum rn_topn_out {
    RN_TOPN_TABLE = 1,
    RN_TOPN_TSV,
    RN_TOPN_JSON,
    RN_TOPN_REDIS,
} rn_topn_out;

int rn_topn_out_parse(const char *s, rn_topn_out *out, char *err);  /* table|tsv|json|redis */

typedef struct rn_topn_fmt {
    rn_topn_out out;
    const char *prefix;     /* redis key prefix; NULL means "topk" */
    int64_t ttl;            /* redis: EXPIRE seconds on the window key; 0 none */
} rn_topn_fmt;

/* Append the text of one window to b. -1 when out of memory.
 *   table  "START .. END  (top N of K keys)" (", again" on a re-print), a
 *          "rank key value" heading, the aligned rows, a blank line;
 *   tsv    START\tEND\tRANK\tKEY\tVALUE\n per entry, key escaped as in rows;
 *   json   {"start":"..","end":"..","top":[{"rank":1,"key":"..","value":V},..]}\n
 *   redis  DEL K, ZADD K value key ..., [EXPIRE K ttl], [SET PREFIX:latest K]
 *          with K = PREFIX:START (START as in rows); SET only when latest. */
int rn_topn_format(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w);

/* One RESP command (an array of bulk strings: any bytes) appended to b. */
int rn_topn_resp(rn_buf *b, size_t argc, const rn_str *argv);

/* ---- Space-Saving ---------------------------------------------------------- */

typedef struct rn_ss rn_ss;

typedef struct rn_ss_item {
    rn_str key;             /* valid until the next rn_ss_add */
    uint64_t count;         /* an upper bound of the true count */
    uint64_t error;         /* count - error is a lower bound */
    int guaranteed;         /* surely among the true top N (see rn_ss_top) */
} rn_ss_item;

/* capacity 0: exact (one counter per distinct key, unbounded). At most
 * RN_SS_MAX_CAPACITY. NULL when out of memory. */
#define RN_SS_MAX_CAPACITY ((size_t)1 << 28)
rn_ss *rn_ss_new(size_t capacity);
void rn_ss_free(rn_ss *s);

/* Count one occurrence of key. 0, or -1 when out of memory (exact mode). */
int rn_ss_add(rn_ss *s, const char *key, size_t n);

/* The top n counters, ordered by count descending, then count - error
 * descending, then key ascending, into out (room for n). An item is
 * guaranteed when count - error >= the count of the (n+1)-th counter (or, when
 * there is none, the smallest count if keys were evicted, else 0): no key
 * outside the list can then have a larger true count. *threshold (may be
 * NULL) gets that count. Returns how many, or -1 when out of memory. */
long rn_ss_top(const rn_ss *s, size_t n, rn_ss_item *out, uint64_t *threshold);

/* The counter of key: 1 with *count and *error (either may be NULL), or 0
 * when the key is not monitored. */
int rn_ss_get(const rn_ss *s, const char *key, size_t n, uint64_t *count, uint64_t *error);

uint64_t rn_ss_total(const rn_ss *s);       /* keys counted */
size_t rn_ss_size(const rn_ss *s);          /* counters in use */
size_t rn_ss_capacity(const rn_ss *s);      /* 0 when exact */
uint64_t rn_ss_evictions(const rn_ss *s);   /* keys that replaced another */

/* The table of rn_ss_top's items: a heading "top N at TIME: ...", a
 * "rank key count error guaranteed" line, the aligned rows, a blank line.
 * events: every event read (counted or not). */
int rn_ss_format(rn_buf *b, const rn_ss *s, const rn_ss_item *it, size_t n,
                 int64_t now_ns, uint64_t events);

/* ---- internal: shared by topn*.c ----------------------------------------- */

/* A 64-bit hash of bytes: 8 bytes a step, multiply and fold, then a final
 * mix; inline because Space-Saving calls it on every update. The last bytes
 * are read with loads that overlap rather than copied into a word one by
 * one: that copy, read back at once, stalled the store-to-load forwarding
 * and took a quarter of an update's time. */
static inline uint64_t rn_topn__load64(const unsigned char *s)
{
    uint64_t v;
    memcpy(&v, s, 8);
    return v;
}

static inline uint64_t rn_topn__load32(const unsigned char *s)
{
    uint32_t v;
    memcpy(&v, s, 4);
    return v;
}

static inline uint64_t rn_topn__hash(const void *p, size_t n)
{
    const uint64_t m = 0xbf58476d1ce4e5b9ULL;
    const unsigned char *s = p;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (n * 0xff51afd7ed558ccdULL), v;
    if (n <= 8) {
        if (n >= 4)
            v = rn_topn__load32(s) << 32 | rn_topn__load32(s + n - 4);
        else if (n)
            v = (uint64_t)s[0] << 16 | (uint64_t)s[n >> 1] << 8 | s[n - 1];
        else
            v = 0;
        h = (h ^ v) * m;
    } else {
        for (; n > 8; s += 8, n -= 8) {
            h = (h ^ rn_topn__load64(s)) * m;
            h ^= h >> 31;
        }
        h = (h ^ rn_topn__load64(s + n - 8)) * m;   /* overlaps: n > 8 in all */
    }
    h ^= h >> 29;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 32;
    return h;
}

/* Append s escaped for a person's table: \t \n \r \\ as in tsv, other
 * control bytes as \xHH. Returns -1 when out of memory. */
int rn_topn__table_key(rn_buf *b, const char *s, size_t n);

#endif
