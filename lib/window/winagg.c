/* winagg.c -- key, value and time of each event into the window state. */
#include "window/window.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>


struct rn_wagg {
    rn_wagg_opts o;
    rn_window *w;
    rn_buf lower, decoded;
    int64_t max_t;          /* largest event time seen (event time) */
    int64_t last_arrival;   /* wall time of the last event */
    int seen;
    rn_wagg_stats st;
    /* --tz: the windows see times on a local axis (see window.h) */
    int wall;               /* the axis is wall time; else t + shift */
    int64_t shift;
    int64_t bx[2], bt[2];   /* the last bounds mapped back: axis, UTC */
};

#define NS 1000000000LL

static int64_t add_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* An instant onto the windows' axis, and a window bound back. */
static int64_t to_axis(rn_wagg *a, int64_t t)
{
    if (!a->o.tz)
        return t;
    return add_sat(t, a->wall ? (int64_t)rn_tz_offset(a->o.tz, t) * NS : a->shift);
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

typedef struct back {
    rn_wagg *a;
    rn_window_emit_fn fn;
    void *data;
} back;

static int emit_back(void *data, const rn_row *row)
{
    back *b = data;
    rn_row r = *row;
    r.start = from_axis(b->a, row->start);
    r.end = from_axis(b->a, row->end);
    return b->fn(b->data, &r);
}

rn_wagg *rn_wagg_new(const rn_wagg_opts *o, char *err)
{
    rn_wagg *a = calloc(1, sizeof *a);
    if (!a) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    a->o = *o;
    if (!(a->w = rn_window_new(&o->win, err))) {
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
    free(a);
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
    rn_window_stats ws;
    int late = 0, evicted = 0;

    if (!rn_window_time_ok(w, t) || !rn_window_time_ok(w, u))
        return RN_WIN_INVALID;
    rn_window_stats_get(w, &ws);
    if (t < ws.closed) {
        if (u < ws.closed)
            return rn_window_add(w, t, key, klen, v);      /* wholly late */
        t = ws.closed;
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

int rn_wagg_event(rn_wagg *a, const rn_event *ev, int64_t now, char *err)
{
    rn_str key, vs;
    rn_value v = { .i = 1 };
    int64_t t, end;
    int r;

    a->st.events++;
    a->last_arrival = now;
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
    if (a->o.time != RN_TIME_ARRIVAL && (!a->seen || end > a->max_t)) {
        a->max_t = end;
        a->seen = 1;
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

int rn_wagg_tick(rn_wagg *a, int64_t now, rn_window_emit_fn fn, void *data)
{
    int64_t wm;
    back b = { a, fn, data };
    if (a->o.time == RN_TIME_ARRIVAL) {
        wm = to_axis(a, now);
    } else {
        if (!a->seen)
            return 0;
        int64_t idle = now - a->last_arrival;
        wm = a->max_t - a->o.lateness_ns + (idle > 0 ? idle : 0);
    }
    return rn_window_advance(a->w, wm, emit_back, &b);
}

int rn_wagg_finish(rn_wagg *a, rn_window_emit_fn fn, void *data)
{
    back b = { a, fn, data };
    return rn_window_flush(a->w, emit_back, &b);
}

int64_t rn_wagg_closed(rn_wagg *a)
{
    rn_window_stats ws;
    rn_window_stats_get(a->w, &ws);
    return from_axis(a, ws.closed);
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
