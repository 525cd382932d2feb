/* window.h -- windows and top N (winagg, topk): keys, values and times
 * taken from events, window state, the rows the windows emit, the
 * winagg pipeline stage, and top N with Space-Saving. */
#ifndef RN_WINDOW_WINDOW_H
#define RN_WINDOW_WINDOW_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* tz.c -- time zones, for windows aligned to local time (winagg --tz) and
 * window bounds printed in local time (topk --tz).
 *
 * A zone is a tz database name (Europe/Berlin: the file of that name under
 * $TZDIR, default /usr/share/zoneinfo), a fixed offset (+08:00, -0530,
 * +08), or Z / UTC (the same as no zone). The offsets of a named zone come
 * from glibc's localtime_r with TZ set to the zone's file: the process's TZ
 * is changed (set again whenever another zone object asks), so this is for
 * single-threaded tools, and any localtime() elsewhere sees the zone. The
 * file itself is read once, to refuse what is no zone and to know which
 * offsets the zone has used since 1970.
 *
 * rn_tz_offset caches the offset over the hour (else the minute) around the
 * time asked, when its first and last seconds agree, so the per-event cost
 * is a compare while time moves through an hour. */

typedef struct rn_tz rn_tz;

/* NULL with err ("unknown time zone 'X' ...") for what is neither a zone
 * nor an offset. */
rn_tz *rn_tz_new(const char *spec, char *err);
void rn_tz_free(rn_tz *z);
const char *rn_tz_name(const rn_tz *z);     /* as given */
int rn_tz_is_utc(const rn_tz *z);           /* Z or UTC */

/* The UTC offset (seconds east) at the instant ns. */
int32_t rn_tz_offset(rn_tz *z, int64_t ns);

/* The first instant whose local wall time (ns, as if UTC) is wall; for a
 * wall time that a change forward skips, the end of the gap. */
int64_t rn_tz_from_local(rn_tz *z, int64_t wall);

/* The greatest common divisor of the changes of the zone's offset since
 * 1970 (seconds; 0 when it has not changed: a fixed offset), and an offset
 * in force then. Every offset since 1970 is offset_1970 + a multiple of
 * step. (Offsets before 1970, local mean time, are not counted.) */
int64_t rn_tz_step(const rn_tz *z);
int32_t rn_tz_offset_1970(const rn_tz *z);

/* rows.c -- winagg's output and topk's input: one row per window and key.
 *
 * A row is (window start, window end, key, value). Formats:
 *   tsv     START\tEND\tKEY\tVALUE\n; times in ISO 8601 UTC,
 *           "2026-11-23T07:40:00Z" (".123" only when the milliseconds are
 *           not zero), or, written with a zone (rn_rowwriter_set_tz), in
 *           its local time with the offset then in force,
 *           "2026-03-29T00:00:00+01:00"; in KEY a tab, newline, carriage return and backslash are
 *           written \t \n \r \\ .
 *   json    {"start":"...","end":"...","key":"...","value":V}\n (times as in
 *           tsv; keys escaped as in the json event format); a partial row
 *           has "partial":true after the value.
 *   frames  the event frames stream: per row an event with ts = END, headers
 *           start, end, key, value (text as in tsv), and partial=1 on a
 *           partial row; body = the tsv row without its newline.
 * tsv has no room for the partial mark: it is not written (nor read).
 * A value is an integer (exact, 64-bit), a decimal, or a floating point
 * number. A decimal is what is written with a decimal point and at most 18
 * digits after it, no exponent, its digits fitting int64 ("1234.56",
 * "-0.5", ".25"): the integer mantissa i and the scale, the digits after the
 * point, so that the value is i / 10^scale exactly. It is written with
 * exactly `scale` decimals ("1.10" stays "1.10"). Anything else that reads
 * as a number (an exponent, more digits than fit) is a double, written with
 * the fewest digits that read back to the same double.
 *
 * Watermarks. Between the rows a writer may put a watermark record: W
 * promises that no row of a window with end <= W follows in this stream
 * (winagg writes one after the rows of every close, and whenever its
 * watermark moves while the input is idle). So a reader knows a window is
 * complete without waiting for more input. Formats:
 *   tsv     "# watermark TIME\n": a comment line, with no tab, so that readers
 *           that skip '#' lines or keep lines of four fields (cut -s,
 *           awk 'NF==4') pass it by;
 *   json    {"watermark":"TIME"}\n
 *   frames  an event with ts = W, the one header watermark (TIME), and the
 *           tsv line as body.
 * TIME as in rows.
 *
 * The reader detects the format (frames magic; '{' for json; else tsv),
 * skips blank lines and other lines starting with '#', and names the line
 * (or frame offset) of anything malformed. */

typedef struct rn_value {
    int is_float;
    int64_t i;      /* when !is_float: the integer, or the decimal's mantissa */
    double f;       /* when is_float */
    int scale;      /* when !is_float: digits after the point, 0..18; 0 for
                       an integer */
} rn_value;

typedef struct rn_row {
    int64_t start, end;     /* ns since the epoch */
    rn_str key;
    rn_value value;
    int partial;            /* counts only part of the window's events (a
                               restart without state); 0 normally */
} rn_row;

typedef enum rn_rowfmt { RN_ROW_TSV = 1, RN_ROW_JSON, RN_ROW_FRAMES } rn_rowfmt;

int rn_rowfmt_parse(const char *s, rn_rowfmt *fmt, char *err);  /* tsv|json|frames */

/* Values: the double of v (the nearest to a decimal's value); v formatted
 * (at least 32 bytes of out) returning the length; text parsed (an integer
 * or a decimal when it is one, exactly; else a finite double), 0 or -1. */
double rn_value_double(rn_value v);
size_t rn_value_format(rn_value v, char *out);
int rn_value_parse(const char *s, size_t n, rn_value *v);

/* ISO 8601 as written in rows: UTC ('Z'), or with tz (not NULL nor UTC)
 * its local time and offset ("+01:00"; "+00:53:28" for an offset with
 * seconds, local mean time). Parse accepts what format writes (seconds,
 * optional .fff, then 'Z' or an offset +HH:MM, +HHMM, +HH, +HH:MM:SS). */
#define RN_TIMELEN 40
size_t rn_time_format(int64_t ns, char *out);   /* out: at least 32 bytes */
size_t rn_time_format_tz(int64_t ns, rn_tz *tz, char *out); /* RN_TIMELEN bytes */
int rn_time_parse(const char *s, size_t n, int64_t *ns);

/* Append key to b escaped as in a tsv row. -1 when out of memory. */
int rn_tsv_key(rn_buf *b, const char *s, size_t n);

/* ---- writing -------------------------------------------------------------- */

typedef struct rn_rowwriter rn_rowwriter;

rn_rowwriter *rn_rowwriter_new(int fd, rn_rowfmt fmt);
void rn_rowwriter_free(rn_rowwriter *w);
/* Write times in tz's local time (see above); tz must outlive w. */
void rn_rowwriter_set_tz(rn_rowwriter *w, rn_tz *tz);
/* 0; RN_EPIPE when the reader went away; RN_ERR with err. */
int rn_rowwriter_put(rn_rowwriter *w, const rn_row *row, char *err);
/* A watermark record (see above); returns as rn_rowwriter_put. */
int rn_rowwriter_watermark(rn_rowwriter *w, int64_t wm, char *err);
int rn_rowwriter_flush(rn_rowwriter *w, char *err);

/* ---- reading -------------------------------------------------------------- */

typedef struct rn_rowreader rn_rowreader;

/* name is used in messages ("stdin", a file name). */
rn_rowreader *rn_rowreader_new(const char *name);
void rn_rowreader_free(rn_rowreader *r);
int rn_rowreader_feed(rn_rowreader *r, const void *buf, size_t len, char *err);
void rn_rowreader_eof(rn_rowreader *r);
/* RN_ROWS_ROW: *row is the next row (valid until the next call);
 * RN_ROWS_WATERMARK: the next record is a watermark, *wm; 0: needs more
 * input (or the end, after eof); RN_ERR: err says "NAME: line N: what" (or
 * "byte offset N" for frames). Watermarks are returned as they come, even
 * one lower than an earlier one (`cat a b` of two streams). */
enum { RN_ROWS_ROW = 1, RN_ROWS_WATERMARK = 2 };
int rn_rowreader_next(rn_rowreader *r, rn_row *row, int64_t *wm, char *err);

/* extract.c -- pulling a key, a value or a time out of an event's body.
 *
 * A field extractor finds a piece of a line: the first capture group of a
 * PCRE2 regex (JIT compiled; the whole match when the regex has no group),
 * field N (from 1) split on a delimiter (default: runs of blanks, as awk
 * does), or a member of a JSON body named by a dotted path ("user.id").
 * A time extractor turns a piece into ns since the epoch with a strptime(3)
 * format (%z honoured), or one of the names "epoch" (seconds, fractions
 * allowed), "epoch_ms", "epoch_ns", "iso8601". */

typedef struct rn_fieldx rn_fieldx;

rn_fieldx *rn_fieldx_regex(const char *re, char *err);
rn_fieldx *rn_fieldx_field(unsigned n, const char *delim, char *err);
rn_fieldx *rn_fieldx_json(const char *path, char *err);
void rn_fieldx_free(rn_fieldx *x);

/* 1: *out is the piece of s (or of an internal buffer, valid until the next
 * call); 0: the line has none; -1: a regex matching error (err). */
int rn_fieldx_get(rn_fieldx *x, const char *s, size_t n, rn_str *out, char *err);

/* The nginx/Apache time form, "14/Nov/2023:22:13:20 +0000". */
#define RN_TIME_NGINX "%d/%b/%Y:%H:%M:%S %z"

typedef struct rn_timex rn_timex;

rn_timex *rn_timex_new(const char *format, char *err);
void rn_timex_free(rn_timex *x);

/* 0 with *ns set, -1 when s does not parse. Consecutive equal strings are
 * parsed once (log lines share their second). */
int rn_timex_parse(rn_timex *x, const char *s, size_t n, int64_t *ns);

/* ASCII lower case of s into b (replacing its content). */
int rn_lower(rn_buf *b, const char *s, size_t n);

/* s URL-decoded into b (replacing its content): %XX (either case) is the
 * byte XX, '+' a space (a query string's form); a '%' that does not start
 * a valid escape is kept as it is. So "%E6%89%8B%E6%9C%BA" and "手机" give
 * the same key. 0, or RN_ENOMEM. */
int rn_urldecode(rn_buf *b, const char *s, size_t n);

/* window.c, table.c, state.c -- winagg's state: per-key aggregates over
 * tumbling or sliding time windows, kept incrementally (Spark Streaming's
 * reduceByKeyAndWindow with the inverse function).
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
 * Values. count ignores the value. sum is exact: integers and decimals are
 * summed in 128 bits, in units of 10^-scale at the largest scale in the
 * window (the smaller side is rescaled on add, merge and subtract, so
 * slices leave without a trace). When the values of that scale have left,
 * the scale is taken again from the slices held at emission (O(k) lookups
 * for that key, then the sum is divided down exactly). The window's sum is
 * an integer or a decimal of that scale (1.10 + 2.20 = 3.30) when no double
 * is in the window and the mantissa fits int64; otherwise (any double, or
 * an int64 overflow) it is a double. A sum that overflows 128 bits goes on
 * in the double sum: that key's sum is a double until it leaves the running
 * window. Doubles are summed with Neumaier
 * compensation, so adding and later subtracting a slice does not leave
 * rounding residue behind (and when the last double leaves a key's window the
 * double part is reset to exactly 0). inf and nan values are kept apart and
 * re-summed from the slices when emitted, since inf - inf cannot be undone.
 * Limit: finite doubles whose running sum exceeds DBL_MAX give inf/nan.
 * avg of decimals (the largest scale s > 0, no double) is the exact sum /
 * count rounded half to even to s + 6 decimals, with the zeros at the end
 * beyond s decimals dropped (5.00 / 3 = 1.66666667, 4.0 / 2 = 2.0); a
 * double when s + 6 > 18 or the mantissa does not fit int64. Otherwise
 * (integers alone, or a double in the window) avg = sum / count as a
 * double. min and max keep each value as it came; integers and decimals
 * compare exactly with each other, an integer and a double exactly (2^53+1
 * > 2^53 as a double), a decimal and a double as doubles; of equal values
 * the one with fewer decimals wins (an integer, then a decimal of smaller
 * scale, then a double), so the order of events does not matter; nan loses
 * to any number.
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
 * Fill (for charts without holes). With fill, once a window with data has
 * been emitted, every window passed after it gets rows: its own keys, plus a
 * 0 row for each key of the last window before it that held data and is
 * absent (a key that leaves gets one 0 row in the next window; a quiet spell
 * repeats the last keys with 0). fill_keys, with or without fill, get a row
 * in every window from the first with data on, 0 when absent. Of a run of
 * empty windows passed by one advance, at most the first RN_WIN_FILL_MAX are
 * filled (a run cut short is counted in fill_cut). rn_window_flush passes no
 * window after the last with data, so nothing is filled after it. A 0 row's
 * value is the integer 0, whatever the aggregate. With emit_changed, a 0 row
 * is left out when the key's value in the previous window was 0 already (a
 * key new to the window still counts as changed, a key that left gets its 0
 * row). What is filled is not in the state file: after a load, filling
 * starts again at the first window with data. Without fill or fill_keys,
 * empty windows cost O(1) per run as above.
 *
 * Bounded memory. max_keys (0 = unbounded) bounds the (slice, key) entries
 * held: the sum over held slices of the distinct keys in each. The running
 * table holds a subset of those keys, so memory is bounded by roughly
 * max_keys * (2 * key length + 150) bytes. An event whose key is not yet in
 * its slice when the bound is reached is not counted and is reported as
 * EVICTED (it is dropped, not some other key).
 *
 * State file (state.c: rn_window_save/load), little-endian binary:
 *   "runnel-window\n" u32:version(2; version 1 files load, without the
 *   scales: every exact value in them is an integer)
 *   u32:len caller's option signature, u32:len window's own signature
 *   i64:last window end slice passed, u8:passed-any
 *   u64:nslices { i64:slice u64:n { u32:klen key acc } }
 *   u64:n running { u32:klen key acc u8:has_prev num:prev }
 *   u64:checksum of everything before it (a wyhash-style mix of 8-byte words)
 * where acc = i64:count, then for sum/avg i64:ndouble i64:nnonfinite
 * u64:isum_lo u64:isum_hi f64:dsum f64:dcomp f64:nonfinite_sum u8:scale
 * u8:inexact (overflowed 128 bits) i64:values of that scale, for min/max
 * num:best; num = u8:is_float u8:scale u64:bits. Counters (late,
 * evicted...) are per run and not saved. */

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
    int fill;           /* 0 rows for the keys of the last window with data */
    const rn_str *fill_keys;    /* keys with a row in every window (copied) */
    size_t nfill_keys;
} rn_window_opts;

/* What rn_window_add returns besides 0 (tracked) and RN_ENOMEM. The window
 * counts each of them too (rn_window_stats). */
#define RN_WIN_LATE 1       /* its windows have (partly) been passed already */
#define RN_WIN_EVICTED 2    /* new key for its slice while max_keys are held */
#define RN_WIN_INVALID 3    /* time outside the windows int64 ns can express,
                               or key longer than RN_WIN_KEY_MAX */
#define RN_WIN_KEY_MAX ((size_t)1 << 24)

/* Empty windows filled in a row, at most (see Fill above). */
#define RN_WIN_FILL_MAX 100000

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
    uint64_t fill_cut;                 /* runs of empty windows not all filled */
    int64_t closed;                    /* events with t < closed are late;
                                          INT64_MIN before anything was passed */
} rn_window_stats;

/* Checks W, S and agg; NULL with err set on a bad option or no memory. */
rn_window *rn_window_new(const rn_window_opts *o, char *err);
void rn_window_free(rn_window *w);

/* Account one event. key is copied. Returns 0, RN_WIN_LATE, RN_WIN_EVICTED,
 * RN_WIN_INVALID, or RN_ENOMEM: out of memory (nothing was changed). */
int rn_window_add(rn_window *w, int64_t t, const char *key, size_t klen,
                  rn_value v);

/* The slice of time t, floor(t / S); and 1 when rn_window_add takes t (does
 * not return RN_WIN_INVALID for its time), else 0. */
int64_t rn_window_slice(const rn_window *w, int64_t t);
int rn_window_time_ok(const rn_window *w, int64_t t);

/* Pass every window whose end is <= watermark (see above); a watermark that
 * does not move forward does nothing. Returns 0, fn's negative return (the
 * window it failed in counts as passed; its remaining rows are not emitted),
 * or RN_ENOMEM (the state is then undefined: free the window). */
int rn_window_advance(rn_window *w, int64_t watermark, rn_window_emit_fn fn,
                      void *data);

/* End of input: pass windows up to the last one that holds data, that is
 * until the last slice with data has left the window, so a sliding window
 * emits its k-1 trailing windows too. The slices of the last window stay
 * held (as after any advance) and leave at the next. Events added afterwards
 * are late unless after the last window emitted. Returns as
 * rn_window_advance. */
int rn_window_flush(rn_window *w, rn_window_emit_fn fn, void *data);

/* The same, but a window is emitted only when one of its slices received an
 * event (rn_window_add) since the window was made or loaded; the others are
 * passed in silence. A job restarted from a state file (cron) thus prints at
 * its end only the open windows its own input changed: one that read
 * nothing new prints nothing. Which slices are fresh is not saved. */
int rn_window_flush_fresh(rn_window *w, rn_window_emit_fn fn, void *data);

void rn_window_stats_get(const rn_window *w, rn_window_stats *st);
/* Its closed member alone (the one a caller asks after every event). */
int64_t rn_window_closed(const rn_window *w);

/* Write the state by core's durable replace (temporary file in the same
 * directory, fsync, rename, fsync of the directory). optsig is the caller's
 * description of every option that affects the state's meaning (key regex,
 * agg, W, S, time mode...); load refuses a file written with another. 0, or
 * RN_ERR with err. */
int rn_window_save(const rn_window *w, const char *path, const char *optsig,
                   char *err);

/* Restore a state into w, which must be fresh (nothing added or passed) and
 * made with the same options. Returns 0, RN_WIN_FRESH when path does not
 * exist, or RN_ERR with err: "state file PATH was written with different
 * options: ..." or, for a damaged file, a message naming the byte offset.
 * On error w is left fresh. */
int rn_window_load(rn_window *w, const char *path, const char *optsig,
                   char *err);

/* winagg.c -- one winagg job: events in, window rows out.
 *
 * For each event: the key (a field extractor, optionally URL-decoded and
 * lower-cased), the
 * value (count: 1; else a field parsed as a number), and the time: arrival
 * (the wall clock when it was read), header (the event's "ts" header in ns,
 * else its timestamp), or a field parsed by a time extractor. Events without
 * a key, with a value or time that does not parse, are counted and skipped.
 *
 * Interval events (until, with a time field): a second field, parsed by the
 * same time extractor, is the event's end; the event then counts in every
 * slice from the one of its time to the one of its end, both included (a
 * task counts in every second it ran). An end before the time, or more than
 * RN_WAGG_SPAN_MAX slices, is a bad time. Slices already closed are not
 * counted, the rest are, and the event is late (RN_WAGG_LATE).
 *
 * The watermark: with arrival time, the wall clock. With event time, the
 * largest event time seen (of an interval event: its end, when it arrives)
 * minus the lateness; and while no event arrives it
 * moves on with the wall clock (by the time since the last event), so that
 * windows close when the input is idle. Events behind it are late: counted,
 * and returned as RN_WAGG_LATE for the caller to keep.
 *
 * Local time (tz). Without a zone, windows align to the epoch in UTC. With
 * one, each time (event, arrival, watermark) is mapped onto a local axis
 * before it reaches the window, and window bounds are mapped back to UTC
 * instants in the rows, so that a window of a day is the local day (23 or
 * 25 hours long on a daylight saving change) and one of an hour the local
 * hour. Two axes, by the slide S:
 *   - when every change of the zone's offset since 1970 is a multiple of S
 *     (S up to an hour that divides it, in zones whose offsets differ by
 *     whole hours; any S for a fixed offset), the axis is t + (offset mod
 *     S): uniform and monotone, so the hour repeated when clocks fall back
 *     is two separate hourly windows (their bounds print with different
 *     offsets);
 *   - otherwise (a day, 2 hours...), the axis is local wall time, t +
 *     offset(t), and a bound maps back to the first instant with that wall
 *     time (for a wall time that clocks skip forward over, the end of the
 *     gap). The hour repeated at a fall back belongs to the windows of its
 *     wall time. A limit: in a zone whose clocks fall back across midnight
 *     (from 00:30 to 23:30, say), the repeated time belongs to the previous
 *     day, whose row then ends (at the first midnight) before some of the
 *     events it counts.
 * The watermark and the lateness work on the same axis; so does the state
 * (a state file is only valid with the same zone).
 *
 * Partitions (as Flink does). Events that carry a "partition" header (as
 * consume -o json|frames writes them, with "topic") are streams of their
 * own: the rule above holds per (topic, partition), each with its own
 * largest time and idle advance, and the watermark is the least of them
 * (the events without the header are one more stream). So disorder between
 * partitions, as a consumer catching up hands them over, is not lateness,
 * and a quiet partition holds windows back only while it is quiet for less
 * than its lag. A partition counts from its first event: one that has not
 * been seen cannot hold the watermark back. At most RN_WAGG_MAX_STREAMS
 * partitions are told apart; the events of the others are one stream (said
 * once through on_warn).
 *
 * Partial windows. With mark_partial (a live or resumable input read
 * without a state file), the rows of a window that began before the first
 * event of this run (the first with a key and a time) have partial set:
 * they count only what this run read. */

typedef enum rn_timemode { RN_TIME_ARRIVAL, RN_TIME_HEADER, RN_TIME_FIELD } rn_timemode;

typedef struct rn_wagg_opts {
    rn_fieldx *key;             /* these three are owned by the job once made */
    rn_fieldx *value;           /* NULL: each event counts 1 */
    rn_fieldx *time_field;      /* RN_TIME_FIELD */
    rn_timex *time_parse;       /* RN_TIME_FIELD */
    rn_fieldx *until;           /* RN_TIME_FIELD: the end time, or NULL */
    int lower;
    int urldecode;              /* before lower */
    rn_timemode time;
    int64_t lateness_ns;
    rn_tz *tz;                  /* local time (see above); NULL: UTC; owned */
    int mark_partial;           /* see "Partial windows" above */
    rn_warn_fn *on_warn;        /* may be NULL */
    void *warn_data;
    rn_window_opts win;
} rn_wagg_opts;

typedef struct rn_wagg_stats {
    uint64_t events, nokey, badvalue, badtime, late, evicted, rows, windows;
} rn_wagg_stats;

#define RN_WAGG_LATE 1
#define RN_WAGG_SPAN_MAX 1000000   /* slices one interval event may cover */
#define RN_WAGG_MAX_STREAMS 65536       /* partitions told apart */

typedef struct rn_wagg rn_wagg;

rn_wagg *rn_wagg_new(const rn_wagg_opts *o, char *err);
void rn_wagg_free(rn_wagg *a);

/* One event read at wall time now (ns): 0, RN_WAGG_LATE, or -1 (err). */
int rn_wagg_event(rn_wagg *a, const rn_event *ev, int64_t now, char *err);

/* Emit the windows the watermark at wall time now has passed. Returns 0 or
 * the callback's negative return (or RN_ENOMEM). */
int rn_wagg_tick(rn_wagg *a, int64_t now, rn_window_emit_fn fn, void *data);

/* End of input: emit every window that holds data. */
int rn_wagg_finish(rn_wagg *a, rn_window_emit_fn fn, void *data);
/* The same, emitting only the windows that received events in this run
 * (rn_window_flush_fresh): the end of a run restarted from a state file. */
int rn_wagg_finish_fresh(rn_wagg *a, rn_window_emit_fn fn, void *data);

/* The end of the last window passed (a watermark for the rows), as an
 * instant; INT64_MIN before any. */
int64_t rn_wagg_closed(rn_wagg *a);

rn_window *rn_wagg_window(rn_wagg *a);
void rn_wagg_stats_get(const rn_wagg *a, rn_wagg_stats *st);

/* topn.c -- the N largest keys: of each window of winagg rows (merged across
 * inputs), and of an unbounded stream of keys (Space-Saving).
 *
 * Windows (topn.c). Rows (rows.c) with the same window (start, end) and
 * key are summed, whichever input they came from, so `cat a b | topk` merges
 * the output of two winagg processes. A window is handed out for printing by
 * rn_topn_flush_to: every window with rows not yet printed whose end is <=
 * a bound, the least watermark of the inputs (topk). rn_topn_flush is the
 * same for inputs without watermarks: with all = 0 only windows that the
 * input has moved past (a row of a window ending later was added), with
 * all = 1 every window with rows not yet printed (EOF); the caller decides
 * when (topk: after 200 ms without input). Rows for a window already
 * printed are added to it and the window is handed out again; the last
 * `keep` printed windows are held for that, older ones are freed and rows
 * for them dropped (and counted).
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

/* ---- values and the order of entries ------------------------------------ */

typedef struct rn_topn_entry {
    rn_str key;
    rn_value value;
} rn_topn_entry;

/* a + b: exact while both are integers or decimals and the mantissa fits
 * int64_t, at the larger scale (1.10 + 2.2 = 3.30); otherwise the double
 * sum. */
rn_value rn_topn_value_add(rn_value a, rn_value b);

/* <0, 0, >0 as a is below, equal to, above b (integers and decimals
 * exactly, 1.10 == 1.1; with a double, as doubles). */
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
/* The latest window end of any row added; INT64_MIN before the first. */
int64_t rn_topn_max_end(const rn_topn *t);
/* Windows holding rows not yet printed. */
size_t rn_topn_pending(const rn_topn *t);

/* Hand every window that is due (see above) to fn, in order of end, then
 * start; then free printed windows beyond `keep`. Returns the number handed
 * out, or -1: out of memory (err says so) or fn returned -1 (err untouched),
 * in which case the window fn refused stays due. */
long rn_topn_flush(rn_topn *t, int all, rn_topn_print_fn fn, void *data, char *err);
/* The same for the windows whose end is <= upto. */
long rn_topn_flush_to(rn_topn *t, int64_t upto, rn_topn_print_fn fn, void *data, char *err);

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
    int screen;             /* table on a terminal: clear it first, show moves */
    const int *moves;       /* with screen: each entry's rank move, or NULL */
    rn_tz *tz;              /* times in its local time (rn_time_format_tz); NULL: UTC */
} rn_topn_fmt;

/* Rank moves for the table on a terminal: how each key of a window moved
 * since the window handed to the call before. moves[i] (room for w->n) is
 * the previous rank minus the new one (2: up two places), or RN_TOPN_NEW
 * when the key was not in that top. 0, or RN_ENOMEM. */
#define RN_TOPN_NEW INT_MIN
typedef struct rn_topn_ranks rn_topn_ranks;
rn_topn_ranks *rn_topn_ranks_new(void);
void rn_topn_ranks_free(rn_topn_ranks *r);
int rn_topn_ranks_moves(rn_topn_ranks *r, const rn_topn_window *w, int *moves);

/* Append the text of one window to b. -1 when out of memory.
 *   table  "START .. END  (top N of K keys)" (", again" on a re-print), a
 *          "rank key value" heading, the aligned rows, a blank line; with
 *          screen, after a clear-screen sequence and with a "move" column;
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

/* A heavy-hitters report as a window, so that it goes wherever windows go
 * (Redis, the dashboard): [start, end) (when counting began, and now), the
 * n items' counts as values (e: room for n), latest set. */
void rn_ss_window(const rn_ss *s, const rn_ss_item *it, size_t n, int64_t start, int64_t end,
                  rn_topn_entry *e, rn_topn_window *w);

/* Append a report of rn_ss_top's items it, w its window (rn_ss_window), in
 * f's output; events: every event read (counted or not).
 *   table  a heading "top N at END: E events, K keyed, C keys counted
 *          (capacity M|exact)", a "rank key count error guaranteed" line, the
 *          aligned rows, a blank line;
 *   tsv    START\tEND\tRANK\tKEY\tCOUNT\tERROR\tyes|no per item;
 *   json   {"start":..,"end":..,"events":E,"keyed":K,"keys":C,"capacity":M|null,
 *          "top":[{"rank":1,"key":..,"value":COUNT,"error":E,"guaranteed":true},..]}
 *   redis  as rn_topn_format (the counts are the scores).
 * -1 when out of memory. */
int rn_ss_format(rn_buf *b, const rn_topn_fmt *f, const rn_ss *s, const rn_ss_item *it,
                 const rn_topn_window *w, uint64_t events);

#endif
