/* results.h -- where results go: Redis (redis.c) and the live dashboard
 * (http.c). One section per module, each opening with what the module is. */
#ifndef RN_RESULTS_RESULTS_H
#define RN_RESULTS_RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "window/window.h"

/* http.c -- the live dashboard (rn_dash): an HTTP server on the caller's
 * libuv loop that keeps the recent windows of top N and serves
 *   GET /                  the page (dashboard.html, built into the library)
 *   GET /events            Server-Sent Events: "event: window" with the
 *                          window as JSON, the latest one on connect and then
 *                          each one as it is published; a comment line every
 *                          keepalive as keep-alive
 *   GET /api/latest        the latest window as JSON (null before the first)
 *   GET /api/windows?since=MS   the windows held that end after MS (ms
 *                          since the epoch; none: all), oldest first, as a
 *                          JSON array
 * A window as JSON:
 *   {"start":"ISO","end":"ISO","keys":N,"top":[{"key":"..","value":V},..]}
 * times as in rows (rn_time_format), keys escaped as the json event format
 * does (bytes that are not UTF-8 as \udcXX), values as in rows (integers
 * exact). HEAD is answered as GET without the body.
 *
 * Requests are parsed by http_parser (libhttp-parser). Everything a client
 * can make the server hold is bounded: the request head (431 and a close),
 * the request (413 and a close), the clients (503 and a close), the bytes
 * queued for one client (a client that does not read its responses or its
 * event stream is dropped and counted; the others go on), and the time a
 * client may sit without a request in progress or in the middle of one (a
 * close). A request http_parser refuses gets 400 and a close; an unknown
 * path 404; a method other than GET and HEAD 405 and a close. Warnings go
 * to on_warn, once per cause (the counters count every one).
 *
 * Windows are kept in order of end, then start: a window published again
 * (the same start and end, as topk re-prints one that late rows changed)
 * replaces the one held and is sent to the event streams again; beyond
 * `keep` windows the oldest is dropped. The latest window is the one that
 * ends last. Everything runs on the loop's thread: nothing is thread-safe. */

#define RN_DASH_KEEP 120                        /* windows held */
#define RN_DASH_MAX_CLIENTS 256
#define RN_DASH_MAX_HEADER (8 * 1024)           /* request line and headers */
#define RN_DASH_MAX_REQUEST (64 * 1024)         /* head and body */
#define RN_DASH_MAX_QUEUE (1024 * 1024)         /* bytes queued for one client */
#define RN_DASH_IDLE_NS (10 * 1000000000LL)
#define RN_DASH_KEEPALIVE_NS (15 * 1000000000LL)

typedef struct rn_dash rn_dash;

typedef struct rn_dash_opts {
    size_t keep;                /* 0: RN_DASH_KEEP */
    size_t max_clients;         /* connections, open or closing; 0: RN_DASH_MAX_CLIENTS */
    size_t max_header;          /* 0: RN_DASH_MAX_HEADER */
    size_t max_request;         /* 0: RN_DASH_MAX_REQUEST */
    size_t max_queue;           /* 0: RN_DASH_MAX_QUEUE */
    int64_t idle_ns;            /* 0: RN_DASH_IDLE_NS */
    int64_t keepalive_ns;       /* 0: RN_DASH_KEEPALIVE_NS */
    rn_warn_fn *on_warn;        /* may be NULL */
    void *data;
} rn_dash_opts;

/* NULL with err on a bad option or no memory. */
rn_dash *rn_dash_new(uv_loop_t *loop, const rn_dash_opts *o, char *err);

/* Bind and listen on "HOST:PORT" (port 0: any free port; a name is resolved
 * once, here). The address bound is then rn_dash_address's, as
 * "127.0.0.1:8080" or "[::1]:8080". Once per server. */
int rn_dash_listen(rn_dash *d, const char *addr, char *err);
const char *rn_dash_address(const rn_dash *d);

/* Take a window (copied: w is not used after the call), hold it and send it
 * to every event stream. 0, or RN_ENOMEM (err says so; what was held before
 * is kept). */
int rn_dash_publish(rn_dash *d, const rn_topn_window *w, char *err);

/* Windows held. */
size_t rn_dash_windows(const rn_dash *d);

/* clients (accepted), refused (over max_clients), requests, bad_requests
 * (400, 405, 413, 431), dropped (did not read what was queued for them),
 * timeouts (closed for idling), streams (event streams open now). */
const rn_counters *rn_dash_counters(const rn_dash *d);

/* Close the listener, every client and the timers; run the loop
 * afterwards (the handles close there), then free. */
void rn_dash_close(rn_dash *d);
void rn_dash_free(rn_dash *d);

#endif
