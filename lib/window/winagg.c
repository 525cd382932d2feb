/* winagg.c -- key, value and time of each event into the window state. */
#include "window/window_int.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* One stream of event time for the watermark: a (topic, partition) of the
 * events that carry a partition header, or the events that carry none. */
typedef struct wstream {
    int64_t max_t;          /* largest event time seen */
    int64_t last;           /* wall time of its last event */
    uint32_t pos;           /* its place in the heap, when seen */
    int seen;               /* has had an event with a time */
} wstream;

struct rn_wagg {
    rn_wagg_opts o;
    rn_window *w;
    rn_buf lower, decoded;
    /* Event time: the streams, found by their "topic\0partition" key (the
     * empty key: no partition header) in a table whose entry i is sv[i];
     * sv[RN_WAGG_MAX_STREAMS] takes the partitions beyond the bound. A
     * min-heap of the seen streams by max_t - last puts the one that holds
     * the watermark back on top (see rn_wagg_tick). */
    rn_wtab streams;
    uint64_t seed;
    rn_buf skey;
    wstream *sv;
    size_t nsv, capsv;
    uint32_t *heap;
    size_t nheap;
    int folded;             /* a partition went to the overflow stream */
    ptrdiff_t plain, last;  /* sv of the events without a partition, of the
                               last partition (last_topic, last_part); -1 */
    rn_buf last_topic, last_part;
    int64_t first_t;        /* time of the first event of this run (axis) */
    int have_first;
    /* The watermark rn_wagg_tick computes moves with now, or when a
     * stream's max_t or last changed (moved): a tick at the same now with
     * nothing moved, which winagg makes after most events, returns at once. */
    int64_t tick_now;
    int moved;
    rn_wagg_stats st;
    /* --tz: the windows see times on a local axis (see window.h) */
    int wall;               /* the axis is wall time; else t + shift */
    int64_t shift;
    int64_t bx[2], bt[2];   /* the last bounds mapped back: axis, UTC */
};

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

#define NS 1000000000LL

/* An instant onto the windows' axis, and a window bound back. */
static int64_t to_axis(rn_wagg *a, int64_t t)
{
    if (!a->o.tz)
        return t;
    return sat_add(t, a->wall ? (int64_t)rn_tz_offset(a->o.tz, t) * NS : a->shift);
}
static int64_t from_axis(rn_wagg *a, int64_t x)
{
    if (!a->o.tz || x == INT64_MIN || x == INT64_MAX)
        return x;
    if (!a->wall)
        return x - a->shift;
    for (int i = 0; i < 2; i++)
        if (a->bx[i] == x)
            return a->bt[i];
    a->bx[1] = a->bx[0];
    a->bt[1] = a->bt[0];
    a->bx[0] = x;
    return a->bt[0] = rn_tz_from_local(a->o.tz, x);
}

/* Rows on their way out: bounds back from the axis, and with mark_partial
 * the rows of windows that began before the first event of this run
 * marked partial. */
typedef struct out_ctx {
    rn_wagg *a;
    rn_window_emit_fn fn;
    void *data;
} out_ctx;

static int emit_out(void *data, const rn_row *row)
{
    out_ctx *c = data;
    rn_wagg *a = c->a;
    rn_row r = *row;
    if (a->o.mark_partial && a->have_first && row->start < a->first_t)
        r.partial = 1;
    r.start = from_axis(a, row->start);
    r.end = from_axis(a, row->end);
    return c->fn(c->data, &r);
}

rn_wagg *rn_wagg_new(const rn_wagg_opts *o, char *err)
{
    rn_wagg *a = calloc(1, sizeof *a);
    if (!a) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    a->o = *o;
    a->seed = rn_hash_seed();
    a->plain = a->last = -1;
    a->tick_now = INT64_MIN;
    a->moved = 1;
    if (rn_wtab__init(&a->streams, sizeof(rn_wtab_ent), 0, 0) < 0) {
        free(a);
        rn_seterr(err, "out of memory");
        return NULL;
    }
    if (!(a->w = rn_window_new(&o->win, err))) {
        rn_wtab__free(&a->streams);
        free(a);
        return NULL;
    }
    if (o->tz) {
        /* Offsets that differ by multiples of the slide all align the
         * slices alike: a shift. Otherwise wall time. */
        int64_t S = o->win.slide_ns, step = rn_tz_step(o->tz);
        a->wall = step * NS % S != 0;
        a->shift = ((int64_t)rn_tz_offset_1970(o->tz) * NS % S + S) % S;
        a->bx[0] = a->bx[1] = INT64_MIN;
    }
    return a;
}

void rn_wagg_free(rn_wagg *a)
{
    if (!a)
        return;
    rn_window_free(a->w);
    rn_fieldx_free(a->o.key);
    rn_fieldx_free(a->o.value);
    rn_fieldx_free(a->o.time_field);
    rn_fieldx_free(a->o.until);
    rn_timex_free(a->o.time_parse);
    rn_tz_free(a->o.tz);
    rn_buf_free(&a->lower);
    rn_buf_free(&a->decoded);
    rn_wtab__free(&a->streams);
    rn_buf_free(&a->skey);
    rn_buf_free(&a->last_topic);
    rn_buf_free(&a->last_part);
    free(a->sv);
    free(a->heap);
    free(a);
}

/* ---- the streams of event time and their heap ----------------------------- */

/* How far a stream holds the watermark back: its watermark at wall time now
 * is now + max_t - last (while now >= last), so the least of these is the
 * stream on top of the heap. */
static int64_t skey(const wstream *s)
{
    return sat_sub(s->max_t, s->last);
}

static void heap_set(rn_wagg *a, size_t i, uint32_t x)
{
    a->heap[i] = x;
    a->sv[x].pos = (uint32_t)i;
}

static void heap_sift(rn_wagg *a, size_t i)
{
    uint32_t x = a->heap[i];
    int64_t k = skey(&a->sv[x]);
    while (i > 0 && skey(&a->sv[a->heap[(i - 1) / 2]]) > k) {
        heap_set(a, i, a->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= a->nheap)
            break;
        if (c + 1 < a->nheap && skey(&a->sv[a->heap[c + 1]]) < skey(&a->sv[a->heap[c]]))
            c++;
        if (skey(&a->sv[a->heap[c]]) >= k)
            break;
        heap_set(a, i, a->heap[c]);
        i = c;
    }
    heap_set(a, i, x);
}

/* Stream i's key changed: back to its place (nothing to do for one). */
static inline void heap_fix(rn_wagg *a, size_t i)
{
    if (a->nheap > 1)
        heap_sift(a, i);
}

static wstream *find_stream_slow(rn_wagg *a, const rn_event *ev, const rn_str *part);

/* The stream of ev: by its partition and topic headers. NULL when out of
 * memory. */
static wstream *find_stream(rn_wagg *a, const rn_event *ev)
{
    const rn_str *part = ev->nhdr ? rn_event_header(ev, "partition") : NULL;
    /* Most events are of the stream before them: lines have no headers,
     * a consumer hands on runs of one partition. */
    if (!part && a->plain >= 0)
        return &a->sv[a->plain];
    if (part && a->last >= 0 && part->n == a->last_part.len
        && memcmp(part->p, a->last_part.p, part->n) == 0) {
        const rn_str *topic = rn_event_header(ev, "topic");
        size_t tn = topic ? topic->n : 0;
        if (tn == a->last_topic.len && (tn == 0 || memcmp(topic->p, a->last_topic.p, tn) == 0))
            return &a->sv[a->last];
    }
    wstream *s = find_stream_slow(a, ev, part);
    if (!s)
        return NULL;
    if (!part) {
        a->plain = s - a->sv;
    } else {
        const rn_str *topic = rn_event_header(ev, "topic");
        a->last_part.len = a->last_topic.len = 0;
        if (rn_buf_append(&a->last_part, part->p, part->n) < 0
            || (topic && rn_buf_append(&a->last_topic, topic->p, topic->n) < 0))
            a->last = -1;
        else
            a->last = s - a->sv;
    }
    return s;
}

/* The lookup (and creation) behind find_stream. */
static wstream *find_stream_slow(rn_wagg *a, const rn_event *ev, const rn_str *part)
{
    size_t idx, pos;
    a->skey.len = 0;
    if (part) {
        const rn_str *topic = rn_event_header(ev, "topic");
        if ((topic && rn_buf_append(&a->skey, topic->p, topic->n) < 0)
            || rn_buf_append(&a->skey, "", 1) < 0
            || rn_buf_append(&a->skey, part->p, part->n) < 0)
            return NULL;
    }
    uint32_t h = (uint32_t)(rn_hash(a->skey.p, a->skey.len, a->seed) >> 32);
    const char *k = a->skey.len ? a->skey.p : "";
    idx = rn_wtab__lookup(&a->streams, h, k, a->skey.len, &pos);
    if (idx != RN_WTAB_NONE)
        return &a->sv[idx];
    if (a->streams.n >= RN_WAGG_MAX_STREAMS) {
        idx = RN_WAGG_MAX_STREAMS;      /* the overflow stream */
        if (!a->folded) {
            a->folded = 1;
            rn_warn_to(a->o.on_warn, a->o.warn_data, "more than %u partitions: the "
                       "events of the others are taken as one for the watermark",
                       (unsigned)RN_WAGG_MAX_STREAMS);
        }
        if (a->nsv > idx)
            return &a->sv[idx];
    } else {
        if (rn_wtab__reserve(&a->streams) < 0)
            return NULL;
        rn_wtab__lookup(&a->streams, h, k, a->skey.len, &pos);    /* the slot may have moved */
        idx = a->streams.n;
    }
    if (idx >= a->capsv) {
        size_t cap = a->capsv ? a->capsv * 2 : 4;
        if (cap > RN_WAGG_MAX_STREAMS + 1)
            cap = RN_WAGG_MAX_STREAMS + 1;
        wstream *sv = realloc(a->sv, cap * sizeof *sv);
        uint32_t *heap = sv ? realloc(a->heap, cap * sizeof *heap) : NULL;
        if (sv)
            a->sv = sv;
        if (!heap)
            return NULL;
        a->heap = heap;
        a->capsv = cap;
    }
    if (idx < RN_WAGG_MAX_STREAMS
        && rn_wtab__insert(&a->streams, pos, h, k, a->skey.len) == RN_WTAB_NONE)
        return NULL;
    memset(&a->sv[idx], 0, sizeof a->sv[idx]);
    a->nsv = idx + 1;
    return &a->sv[idx];
}

/* A stream's event had time t: its max_t, and its first time a place in
 * the heap (rn_wagg_event fixes that place once, whether or not there was
 * a time). */
static void stream_time(rn_wagg *a, wstream *s, int64_t t)
{
    if (s->seen) {
        if (t > s->max_t) {
            s->max_t = t;
            a->moved = 1;
        }
        return;
    }
    a->moved = 1;
    s->max_t = t;
    s->seen = 1;
    a->heap[a->nheap] = (uint32_t)(s - a->sv);
    s->pos = (uint32_t)a->nheap++;
}

/* The event's time; -1 when it has none that parses. */
static int event_time(rn_wagg *a, const rn_event *ev, int64_t now, int64_t *t, char *err)
{
    rn_str s;
    switch (a->o.time) {
    case RN_TIME_ARRIVAL:
        *t = now;
        return 0;
    case RN_TIME_HEADER: {
        const rn_str *h = rn_event_header(ev, "ts");
        rn_value v;
        if (h) {
            if (rn_value_parse(h->p, h->n, &v) < 0 || v.is_float || v.scale)
                return 1;
            *t = v.i;
            return 0;
        }
        if (!ev->ts)
            return 1;
        *t = ev->ts;
        return 0;
    }
    default: {
        int r = rn_fieldx_get(a->o.time_field, ev->body.p, ev->body.n, &s, err);
        if (r < 0)
            return -1;
        if (r == 0 || rn_timex_parse(a->o.time_parse, s.p, s.n, t) < 0)
            return 1;
        return 0;
    }
    }
}

/* An interval event's end u (>= its time t); 1 when it has none that
 * parses, it is before t or more than RN_WAGG_SPAN_MAX slices after it (a
 * bad time, which moves no watermark), -1 on a matching error. */
static int event_end(rn_wagg *a, const rn_event *ev, int64_t t, int64_t *u, char *err)
{
    rn_str s;
    int r = rn_fieldx_get(a->o.until, ev->body.p, ev->body.n, &s, err);
    if (r < 0)
        return -1;
    if (r == 0 || rn_timex_parse(a->o.time_parse, s.p, s.n, u) < 0 || *u < t
        || (uint64_t)rn_window_slice(a->w, *u) - (uint64_t)rn_window_slice(a->w, t)
           >= RN_WAGG_SPAN_MAX)
        return 1;
    return 0;
}

/* An interval event into every slice from the one of t to the one of u.
 * t and u are the times the window works on (a mapping of event times
 * applies to both before): the loop steps through slice starts, never adds
 * durations to event times. Returns as rn_window_add, with RN_WIN_LATE when
 * some slices were closed (the others are counted) and RN_WIN_INVALID,
 * nothing counted, for an end out of the window's range. */
static int add_span(rn_wagg *a, int64_t t, int64_t u, const char *key, size_t klen, rn_value v)
{
    rn_window *w = a->w;
    int late = 0, evicted = 0;

    if (!rn_window_time_ok(w, t) || !rn_window_time_ok(w, u))
        return RN_WIN_INVALID;
    int64_t closed = rn_window_closed(w);
    if (t < closed) {
        if (u < closed)
            return rn_window_add(w, t, key, klen, v);      /* wholly late */
        t = closed;
        late = 1;
    }
    for (int64_t n = rn_window_slice(w, t), last = rn_window_slice(w, u);; ) {
        int r = rn_window_add(w, t, key, klen, v);
        if (r == RN_WIN_EVICTED)
            evicted = 1;
        else if (r != 0)
            return r;       /* RN_ENOMEM */
        if (n == last)
            break;
        t = ++n * a->o.win.slide_ns;
    }
    if (late && evicted)
        a->st.evicted++;
    return late ? RN_WIN_LATE : evicted ? RN_WIN_EVICTED : 0;
}

/* The event of stream s (NULL: arrival time) into the windows, as
 * rn_wagg_event. */
static int event_in(rn_wagg *a, wstream *s, const rn_event *ev, int64_t now, char *err)
{
    rn_str key, vs;
    rn_value v = { .i = 1 };
    int64_t t, end;
    int r;

    if ((r = rn_fieldx_get(a->o.key, ev->body.p, ev->body.n, &key, err)) <= 0) {
        if (r < 0)
            return -1;
        a->st.nokey++;
        return 0;
    }
    if (a->o.value) {
        if ((r = rn_fieldx_get(a->o.value, ev->body.p, ev->body.n, &vs, err)) < 0)
            return -1;
        if (r == 0 || rn_value_parse(vs.p, vs.n, &v) < 0) {
            a->st.badvalue++;
            return 0;
        }
    }
    if ((r = event_time(a, ev, now, &t, err)) != 0) {
        if (r < 0)
            return -1;
        a->st.badtime++;
        return 0;
    }
    end = t;
    if (a->o.until && (r = event_end(a, ev, t, &end, err)) != 0) {
        if (r < 0)
            return -1;
        a->st.badtime++;
        return 0;
    }
    if (a->o.urldecode) {
        if (rn_urldecode(&a->decoded, key.p, key.n) < 0)
            return rn_seterr(err, "out of memory");
        key.p = a->decoded.p;
        key.n = a->decoded.len;
    }
    if (a->o.lower) {
        if (rn_lower(&a->lower, key.p, key.n) < 0)
            return rn_seterr(err, "out of memory");
        key.p = a->lower.p;
    }
    t = to_axis(a, t);
    end = a->o.until ? to_axis(a, end) : t;
    if (end < t)        /* the local wall clock fell back in between */
        end = t;
    /* An interval event arrives when it ended: its end moves the watermark. */
    if (s)
        stream_time(a, s, end);
    if (!a->have_first) {
        a->first_t = t;
        a->have_first = 1;
    }
    r = a->o.until ? add_span(a, t, end, key.p, key.n, v) : rn_window_add(a->w, t, key.p, key.n, v);
    switch (r) {
    case 0:
        return 0;
    case RN_WIN_LATE:
        a->st.late++;
        return RN_WAGG_LATE;
    case RN_WIN_EVICTED:
        a->st.evicted++;
        return 0;
    case RN_WIN_INVALID:
        a->st.badtime++;
        return 0;
    default: {   /* RN_ENOMEM */
        rn_window_stats ws;
        rn_window_stats_get(a->w, &ws);
        return rn_seterr(err, "out of memory in the window state (%" PRIu64 " keys in %"
                         PRIu64 " slices held)", ws.entries, ws.slices);
    }
    }
}

int rn_wagg_event(rn_wagg *a, const rn_event *ev, int64_t now, char *err)
{
    wstream *s = NULL;

    a->st.events++;
    if (a->o.time != RN_TIME_ARRIVAL) {
        /* Any event shows its stream is live, with a time or without. */
        if (!(s = find_stream(a, ev)))
            return rn_seterr(err, "out of memory");
        a->moved |= s->last != now;
        s->last = now;
    }
    int r = event_in(a, s, ev, now, err);
    /* The stream's place in the heap, fixed once for its last and max_t. */
    if (s && s->seen)
        heap_fix(a, s->pos);
    return r;
}

int rn_wagg_tick(rn_wagg *a, int64_t now, rn_window_emit_fn fn, void *data)
{
    int64_t wm;
    /* The same watermark as the last tick passes nothing more. */
    if (now == a->tick_now && !a->moved)
        return 0;
    a->tick_now = now;
    a->moved = 0;
    if (a->o.time == RN_TIME_ARRIVAL) {
        wm = to_axis(a, now);
    } else {
        /* The least stream watermark: the top of the heap (exactly so while
         * the wall clock does not step back behind a stream's last event). */
        if (!a->nheap)
            return 0;
        const wstream *s = &a->sv[a->heap[0]];
        int64_t idle = now - s->last;
        wm = sat_sub(sat_add(s->max_t, idle > 0 ? idle : 0), a->o.lateness_ns);
    }
    out_ctx c = { a, fn, data };
    return rn_window_advance(a->w, wm, emit_out, &c);
}

int rn_wagg_finish(rn_wagg *a, rn_window_emit_fn fn, void *data)
{
    out_ctx c = { a, fn, data };
    return rn_window_flush(a->w, emit_out, &c);
}

int rn_wagg_finish_fresh(rn_wagg *a, rn_window_emit_fn fn, void *data)
{
    out_ctx c = { a, fn, data };
    return rn_window_flush_fresh(a->w, emit_out, &c);
}

int64_t rn_wagg_closed(rn_wagg *a)
{
    return from_axis(a, rn_window_closed(a->w));
}

rn_window *rn_wagg_window(rn_wagg *a) { return a->w; }

void rn_wagg_stats_get(const rn_wagg *a, rn_wagg_stats *st)
{
    rn_window_stats ws;
    rn_window_stats_get(a->w, &ws);
    *st = a->st;
    st->rows = ws.rows;
    st->windows = ws.windows;
}
