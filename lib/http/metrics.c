/* metrics.c -- GET /metrics: a tool's counters in Prometheus' text format,
 * rendered at most once per max_age however many scrape. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

struct rn_metrics {
    rn_http *http;
    int64_t max_age_ns;
    void (*collect)(void *data, rn_prom *p);
    rn_warn_fn *on_warn;
    void *data;
    rn_http_msg *cache;     /* the last rendering, or NULL */
    int64_t cache_at;       /* when it was made (rn_mono_ns) */
    int bad_said;           /* a rendering that failed was said */
};

/* A rendering now, or NULL with r answered. */
static rn_http_msg *render(rn_metrics *m, const rn_http_req *r)
{
    char why[RN_ERRLEN];
    rn_buf b = {0};
    rn_prom p;
    rn_http_msg *msg = NULL;

    rn_prom_init(&p, &b);
    m->collect(m->data, &p);
    int e = rn_prom_error(&p, why);
    rn_prom_free(&p);
    if (e == 0 && (msg = rn_http_msg_new(b.len)) != NULL)
        memcpy(msg->buf, b.p, b.len);
    rn_buf_free(&b);
    if (e == RN_ERR) {
        if (!m->bad_said)
            rn_warn_to(m->on_warn, m->data, "metrics: cannot render: %s (said once)", why);
        m->bad_said = 1;
        rn_http_answer(r, 500, "text/plain; charset=utf-8", why, strlen(why));
    } else if (!msg) {
        rn_http_nomem(r);
    }
    return msg;
}

static void on_request(void *data, const rn_http_req *r)
{
    static const char home[] = "runnel metrics: GET /metrics\n";
    rn_metrics *m = data;

    if (rn_http_path_is(r, "/")) {
        rn_http_answer(r, 200, "text/plain; charset=utf-8", home, sizeof home - 1);
        return;
    }
    if (!rn_http_path_is(r, "/metrics")) {
        rn_http_refuse(r, 404, "no such page: GET /metrics");
        return;
    }
    int64_t now = rn_mono_ns();
    if (!m->cache || m->max_age_ns < 0 || now - m->cache_at >= m->max_age_ns) {
        rn_http_msg *fresh = render(m, r);
        if (!fresh)
            return;
        rn_http_msg_unref(m->cache);
        m->cache = fresh;
        m->cache_at = now;
    }
    rn_http_answer_msg(r, RN_PROM_CONTENT_TYPE, rn_http_msg_ref(m->cache));
}

rn_metrics *rn_metrics_new(uv_loop_t *loop, const rn_metrics_opts *o, char *err)
{
    rn_metrics *m;

    if (!o->collect) {
        rn_seterr(err, "metrics: nothing to collect");
        return NULL;
    }
    if (!(m = calloc(1, sizeof *m))) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    rn_http_opts ho = {
        .name = "metrics", .max_clients = o->max_clients, .max_queue = o->max_queue,
        .idle_ns = o->idle_ns, .weak = o->weak, .on_request = on_request,
        .data = m, .on_warn = o->on_warn, .warn_data = o->data,
    };
    if (!(m->http = rn_http_new(loop, &ho, err))) {
        free(m);
        return NULL;
    }
    m->max_age_ns = o->max_age_ns ? o->max_age_ns : RN_METRICS_MAX_AGE_NS;
    m->collect = o->collect;
    m->on_warn = o->on_warn;
    m->data = o->data;
    return m;
}

int rn_metrics_listen(rn_metrics *m, const char *addr, char *err)
{
    return rn_http_listen(m->http, addr, err);
}

const char *rn_metrics_address(const rn_metrics *m) { return rn_http_address(m->http); }
const rn_counters *rn_metrics_counters(const rn_metrics *m) { return rn_http_counters(m->http); }
void rn_metrics_close(rn_metrics *m)
{
    if (m)
        rn_http_close(m->http);
}

void rn_metrics_free(rn_metrics *m)
{
    if (!m)
        return;
    rn_http_msg_unref(m->cache);
    rn_http_free(m->http);
    free(m);
}
