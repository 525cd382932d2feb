/* winagg.h -- one winagg job: events in, window rows out.
 *
 * For each event: the key (a field extractor, optionally lower-cased), the
 * value (count: 1; else a field parsed as a number), and the time: arrival
 * (the wall clock when it was read), header (the event's "ts" header in ns,
 * else its timestamp), or a field parsed by a time extractor. Events without
 * a key, with a value or time that does not parse, are counted and skipped.
 *
 * The watermark: with arrival time, the wall clock. With event time, the
 * largest event time seen minus the lateness; and while no event arrives it
 * moves on with the wall clock (by the time since the last event), so that
 * windows close when the input is idle. Events behind it are late: counted,
 * and returned as RN_WAGG_LATE for the caller to keep. */
#ifndef RN_WINAGG_H
#define RN_WINAGG_H

#include <stdint.h>

#include "event.h"
#include "extract.h"
#include "window.h"

typedef enum rn_timemode { RN_TIME_ARRIVAL, RN_TIME_HEADER, RN_TIME_FIELD } rn_timemode;

typedef struct rn_wagg_opts {
    rn_fieldx *key;             /* these three are owned by the job once made */
    rn_fieldx *value;           /* NULL: each event counts 1 */
    rn_fieldx *time_field;      /* RN_TIME_FIELD */
    rn_timex *time_parse;       /* RN_TIME_FIELD */
    int lower;
    rn_timemode time;
    int64_t lateness_ns;
    rn_window_opts win;
} rn_wagg_opts;

typedef struct rn_wagg_stats {
    uint64_t events, nokey, badvalue, badtime, late, evicted, rows, windows;
} rn_wagg_stats;

#define RN_WAGG_LATE 1

typedef struct rn_wagg rn_wagg;

rn_wagg *rn_wagg_new(const rn_wagg_opts *o, char *err);
void rn_wagg_free(rn_wagg *a);

/* One event read at wall time now (ns): 0, RN_WAGG_LATE, or -1 (err). */
int rn_wagg_event(rn_wagg *a, const rn_event *ev, int64_t now, char *err);

/* Emit the windows the watermark at wall time now has passed. Returns 0 or
 * the callback's negative return (or -ENOMEM). */
int rn_wagg_tick(rn_wagg *a, int64_t now, rn_window_emit_fn fn, void *data);

/* End of input: emit every window that holds data. */
int rn_wagg_finish(rn_wagg *a, rn_window_emit_fn fn, void *data);

rn_window *rn_wagg_window(rn_wagg *a);
void rn_wagg_stats_get(const rn_wagg *a, rn_wagg_stats *st);

#endif
