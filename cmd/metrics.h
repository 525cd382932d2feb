/* metrics.h -- --metrics ADDR, shared by the tools that serve their counters
 * to Prometheus (logtail, chanbuf, brokerd, consume): the option's check,
 * the server's start with its one line on stderr, and its end. */
#ifndef RN_CLI_METRICS_H
#define RN_CLI_METRICS_H

#include <uv.h>

#include "http/http.h"

/* The option's value, checked at once (a usage error when bad). */
const char *rn_cli_metrics_opt(const char *arg);

/* Serve collect's metrics on addr from loop, saying where ("metrics on
 * http://127.0.0.1:9100/metrics"); exit 1 when it cannot listen. weak: the
 * server does not keep loop running (the tool's own loop). NULL addr: no
 * server, NULL. */
rn_metrics *rn_cli_metrics_start(uv_loop_t *loop, const char *addr, int weak,
                                 void (*collect)(void *data, rn_prom *p), void *data);

/* Close (NULL: nothing); run the loop afterwards, then rn_metrics_free. */
void rn_cli_metrics_close(rn_metrics *m);

#endif
