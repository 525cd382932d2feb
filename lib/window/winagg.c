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
};

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
    rn_timex_free(a->o.time_parse);
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

int rn_wagg_event(rn_wagg *a, const rn_event *ev, int64_t now, char *err)
{
    rn_str key, vs;
    rn_value v = { .i = 1 };
    int64_t t;
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
    if (a->o.time != RN_TIME_ARRIVAL && (!a->seen || t > a->max_t)) {
        a->max_t = t;
        a->seen = 1;
    }
    r = rn_window_add(a->w, t, key.p, key.n, v);
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
    if (a->o.time == RN_TIME_ARRIVAL) {
        wm = now;
    } else {
        if (!a->seen)
            return 0;
        int64_t idle = now - a->last_arrival;
        wm = a->max_t - a->o.lateness_ns + (idle > 0 ? idle : 0);
    }
    return rn_window_advance(a->w, wm, fn, data);
}

int rn_wagg_finish(rn_wagg *a, rn_window_emit_fn fn, void *data)
{
    return rn_window_flush(a->w, fn, data);
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
