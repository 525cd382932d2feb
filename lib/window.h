/* window.h -- winagg's state: per-key aggregates over tumbling or sliding
 * time windows, kept incrementally (Spark Streaming's reduceByKeyAndWindow
 * with the inverse function).
 *
 * Windows. Slide S and length W (ns), W a multiple of S, k = W/S slices
 * (k = 1 is tumbling). Slice n covers [n*S, (n+1)*S), aligned to the epoch
 * (floor division, so times before 1970 work too). The window "ending at
 * slice e" covers slices e-k+1..e, that is [(e-k+1)*S, (e+1)*S); every slice
 * end is a window end. A row carries that start and end.
 *
 * How. Each slice that is not yet retired has its own hash table (key ->
 * accumulator); a running table holds the aggregate of the window last
 * emitted. Emitting window e adds slice e to the running table and subtracts
 * slice e-k (then frees it); a key whose count reaches zero is dropped. So
 * count, sum and avg cost O(keys of one slice) per slide, not O(keys of k
 * slices). min and max have no inverse: at emission they are computed per key
 * from the (at most k) slices still held, O(entries of those slices).
 *
 * Values. count ignores the value. sum is exact: integers are summed in 128
 * bits and the window's sum is an integer when every value in the window is
 * one and the sum fits in int64; otherwise (any double in the window, or an
 * int64 overflow) it is a double. Doubles are summed with Neumaier
 * compensation, so adding and later subtracting a slice does not leave
 * rounding residue behind (and when the last double leaves a key's window the
 * double part is reset to exactly 0). inf and nan values are kept apart and
 * re-summed from the slices when emitted, since inf - inf cannot be undone.
 * Limit: finite doubles whose running sum exceeds DBL_MAX give inf/nan.
 * avg = sum / count, always a double. min and max keep integers as integers;
 * integers and doubles compare exactly (2^53+1 > 2^53 as a double); on a tie
 * the integer wins; nan loses to any number.
 *
 * Time and lateness. The caller passes each event's time and, from time to
 * time, a watermark. rn_window_advance(wm) passes every window whose end is
 * <= wm, in order of end, emitting those that hold data; windows that hold
 * none are skipped in O(1) each run of them, so an idle gap of any length
 * costs O(slices held). Once a window has been passed, every slice it covers
 * is closed: an event is LATE iff its time is before the end of the last
 * window passed, i.e. t < floor(wm / S) * S for the highest watermark given.
 * That includes a slice whose later windows are still open: a slice counts
 * in all k of its windows or in none, so the windows stay consistent.
 * Events may arrive in any order before that.
 *
 * Rows. A window's rows are handed to the callback consecutively, sorted by
 * key bytes (memcmp, then shorter first); the key points into the window's
 * memory and is valid during the call only. Empty windows emit nothing. With
 * emit_changed, a key is emitted only when its value differs from the one it
 * had in the previous window (window e-1); a key new to the window counts as
 * changed, a key that left is not emitted.
 *
 * Bounded memory. max_keys (0 = unbounded) bounds the (slice, key) entries
 * held: the sum over held slices of the distinct keys in each. The running
 * table holds a subset of those keys, so memory is bounded by roughly
 * max_keys * (2 * key length + 150) bytes. An event whose key is not yet in
 * its slice when the bound is reached is not counted and is reported as
 * EVICTED (it is dropped, not some other key).
 *
 * State file (rn_window_save/load), little-endian binary:
 *   "runnel-window\n" u32:version(1)
 *   u32:len caller's option signature, u32:len window's own signature
 *   i64:last window end slice passed, u8:passed-any
 *   u64:nslices { i64:slice u64:n { u32:klen key acc } }
 *   u64:n running { u32:klen key acc u8:has_prev num:prev }
 *   u64:checksum of everything before it (a wyhash-style mix of 8-byte words)
 * where acc = i64:count, then for sum/avg i64:ndouble i64:nnonfinite
 * u64:isum_lo u64:isum_hi f64:dsum f64:dcomp f64:nonfinite_sum, for min/max
 * num:best; num = u8:is_float u64:bits. Counters (late, evicted...) are per
 * run and not saved. */
#ifndef RN_WINDOW_H
#define RN_WINDOW_H

#include <stddef.h>
#include <stdint.h>

#include "rows.h"

typedef enum rn_agg {
    RN_AGG_COUNT,
    RN_AGG_SUM,
    RN_AGG_MIN,
    RN_AGG_MAX,
    RN_AGG_AVG,
} rn_agg;

/* "count", "sum", "min", "max", "avg". */
int rn_agg_parse(const char *s, rn_agg *agg, char *err);
const char *rn_agg_name(rn_agg agg);

typedef struct rn_window_opts {
    int64_t width_ns;   /* W: a positive multiple of slide_ns */
    int64_t slide_ns;   /* S > 0; W == S is a tumbling window */
    rn_agg agg;
    int emit_changed;   /* emit only keys whose value changed (see above) */
    size_t max_keys;    /* bound on (slice, key) entries held; 0 = none */
} rn_window_opts;

/* What rn_window_add returns besides 0 (tracked) and -ENOMEM. The window
 * counts each of them too (rn_window_stats). */
#define RN_WIN_LATE 1       /* its windows have (partly) been passed already */
#define RN_WIN_EVICTED 2    /* new key for its slice while max_keys are held */
#define RN_WIN_INVALID 3    /* time outside the windows int64 ns can express,
                               or key longer than RN_WIN_KEY_MAX */
#define RN_WIN_KEY_MAX ((size_t)1 << 24)

/* rn_window_load's return when the file does not exist (a fresh start). */
#define RN_WIN_FRESH 1

typedef struct rn_window rn_window;

/* Called per row; a negative return stops the emission and is passed on. */
typedef int (*rn_window_emit_fn)(void *data, const rn_row *row);

typedef struct rn_window_stats {
    uint64_t late, evicted, invalid;   /* events rejected, by reason */
    uint64_t windows, rows;            /* windows and rows emitted */
    uint64_t keys;                     /* keys in the running window table */
    uint64_t entries;                  /* (slice, key) entries: what max_keys bounds */
    uint64_t slices;                   /* slices held */
    int64_t closed;                    /* events with t < closed are late;
                                          INT64_MIN before anything was passed */
} rn_window_stats;

/* Checks W, S and agg; NULL with err set on a bad option or no memory. */
rn_window *rn_window_new(const rn_window_opts *o, char *err);
void rn_window_free(rn_window *w);

/* Account one event. key is copied. Returns 0, RN_WIN_LATE, RN_WIN_EVICTED,
 * RN_WIN_INVALID, or -ENOMEM (nothing was changed). */
int rn_window_add(rn_window *w, int64_t t, const char *key, size_t klen,
                  rn_value v);

/* Pass every window whose end is <= watermark (see above); a watermark that
 * does not move forward does nothing. Returns 0, fn's negative return (the
 * window it failed in counts as passed; its remaining rows are not emitted),
 * or -ENOMEM (the state is then undefined: free the window). */
int rn_window_advance(rn_window *w, int64_t watermark, rn_window_emit_fn fn,
                      void *data);

/* End of input: pass windows up to the last one that holds data, that is
 * until the last slice with data has left the window, so a sliding window
 * emits its k-1 trailing windows too. The slices of the last window stay
 * held (as after any advance) and leave at the next. Events added afterwards
 * are late unless after the last window emitted. Returns as
 * rn_window_advance. */
int rn_window_flush(rn_window *w, rn_window_emit_fn fn, void *data);

void rn_window_stats_get(const rn_window *w, rn_window_stats *st);

/* Write the state atomically (temporary file in the same directory, fsync,
 * rename, fsync of the directory). optsig is the caller's description of
 * every option that affects the state's meaning (key regex, agg, W, S, time
 * mode...); load refuses a file written with another. 0 or -1 with err. */
int rn_window_save(const rn_window *w, const char *path, const char *optsig,
                   char *err);

/* Restore a state into w, which must be fresh (nothing added or passed) and
 * made with the same options. Returns 0, RN_WIN_FRESH when path does not
 * exist, or -1 with err: "state file PATH was written with different
 * options: ..." or, for a damaged file, a message naming the byte offset.
 * On error w is left fresh. */
int rn_window_load(rn_window *w, const char *path, const char *optsig,
                   char *err);

#endif
