/* metrics.c -- --metrics ADDR for the tools that serve their counters: the
 * option, the start, the end. */
#include "metrics.h"

#include "cli.h"

const char *rn_cli_metrics_opt(const char *arg)
{
    char err[RN_ERRLEN], host[256];
    int port;
    if (rn_http_addr_parse(arg, host, sizeof host, &port, err) < 0)
        rn_usage_error("--metrics: %s", err);
    return arg;
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

rn_metrics *rn_cli_metrics_start(uv_loop_t *loop, const char *addr, int weak,
                                 void (*collect)(void *data, rn_prom *p), void *data)
{
    char err[RN_ERRLEN];
    rn_metrics_opts o = { .weak = weak, .collect = collect, .on_warn = on_warn, .data = data };
    char host[256];
    int port = 0;
    rn_metrics *m;

    if (!addr)
        return NULL;
    if (!(m = rn_metrics_new(loop, &o, err)) || rn_metrics_listen(m, addr, err) < 0)
        rn_die("%s", err);      /* "metrics: listen on ADDR: why" */
    /* Said when it cannot be known otherwise (port 0) or asked for (-v):
     * silent on success. */
    if (rn_verbose || (rn_http_addr_parse(addr, host, sizeof host, &port, err) == 0 && port == 0))
        rn_warn("metrics on http://%s/metrics", rn_metrics_address(m));
    return m;
}

void rn_cli_metrics_close(rn_metrics *m)
{
    if (m)
        rn_metrics_close(m);
}
