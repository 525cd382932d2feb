/* http.h -- runnel's HTTP/1.1 server on the caller's libuv loop (server.c),
 * and the Prometheus metrics a tool serves on it (metrics.c). topk's live
 * dashboard (results/results.h) is the server's other user. */
#ifndef RN_HTTP_HTTP_H
#define RN_HTTP_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

/* server.c -- a small HTTP/1.1 server: GET and HEAD, requests parsed by
 * http_parser (libhttp-parser), keep-alive, and long-lived streams (the
 * dashboard's Server-Sent Events).
 *
 * Everything a client can make the server hold is bounded: the request
 * head (431 and a close), the request (413 and a close), the clients (503
 * and a close), the bytes queued for one client (a client that does not read
 * its answers or its stream is dropped and counted; the others go on), and
 * the time a client may sit without a request in progress or in the middle
 * of one (a close). A request http_parser refuses gets 400 and a close; a
 * method other than GET and HEAD 405 and a close. Warnings go to on_warn,
 * once per cause ("NAME: client PEER: what (said once; ...)"); the counters
 * count every one.
 *
 * The address: "HOST:PORT" as the hop receiver takes it (a name is resolved
 * once, at listen), or ":PORT" for 127.0.0.1:PORT. A server listens on
 * loopback unless told otherwise: to be reached from other hosts, name an
 * address of this one, or 0.0.0.0 / [::] for every interface.
 *
 * Everything runs on the loop's thread: nothing is thread-safe. */

#define RN_HTTP_MAX_CLIENTS 256
#define RN_HTTP_MAX_HEADER (8 * 1024)           /* request line and headers */
#define RN_HTTP_MAX_REQUEST (64 * 1024)         /* head and body */
#define RN_HTTP_MAX_QUEUE (1024 * 1024)         /* bytes queued for one client */
#define RN_HTTP_IDLE_NS (10 * 1000000000LL)

/* Bytes that several writes share, by reference count: a body sent to many
 * clients (the page, a window's event, a rendering of the metrics) is held
 * once. p points at buf (rn_http_msg_new) or at bytes that live for ever
 * (rn_http_msg_static). NULL when out of memory. */
typedef struct rn_http_msg {
    size_t refs, len;
    const char *p;
    char buf[];
} rn_http_msg;

rn_http_msg *rn_http_msg_new(size_t len);
rn_http_msg *rn_http_msg_static(const void *p, size_t len);
rn_http_msg *rn_http_msg_ref(rn_http_msg *m);
void rn_http_msg_unref(rn_http_msg *m);        /* NULL is a no-op */

typedef struct rn_http rn_http;
typedef struct rn_http_conn rn_http_conn;

/* A request, valid during on_request. */
typedef struct rn_http_req {
    rn_http_conn *c;
    int head;                   /* HEAD: answered without the body */
    const char *path;           /* the path, not decoded ("/metrics") */
    size_t path_len;
    const char *query;          /* after '?', or "" */
    size_t query_len;
} rn_http_req;

typedef struct rn_http_opts {
    const char *name;           /* what warnings begin with; NULL: "http" */
    size_t max_clients;         /* connections, open or closing; 0: RN_HTTP_MAX_CLIENTS */
    size_t max_header;          /* 0: RN_HTTP_MAX_HEADER */
    size_t max_request;         /* 0: RN_HTTP_MAX_REQUEST */
    size_t max_queue;           /* 0: RN_HTTP_MAX_QUEUE */
    int64_t idle_ns;            /* 0: RN_HTTP_IDLE_NS */
    /* The server's handles do not keep the loop running (uv_unref): a
     * tool's loop ends when its work does, whoever is connected. */
    int weak;
    /* A whole GET or HEAD request has been read: answer it, at once, with
     * one of the rn_http_answer* calls or rn_http_stream. */
    void (*on_request)(void *data, const rn_http_req *r);
    void *data;
    rn_warn_fn *on_warn;        /* may be NULL */
    void *warn_data;            /* on_warn's */
} rn_http_opts;

/* NULL with err on a bad option or no memory. */
rn_http *rn_http_new(uv_loop_t *loop, const rn_http_opts *o, char *err);

/* Parse an address as rn_http_listen takes it, into host and port (":PORT"
 * gives 127.0.0.1); for checking an option before anything starts. */
int rn_http_addr_parse(const char *addr, char *host, size_t hostlen, int *port, char *err);

/* Bind and listen (see above for addr; port 0: any free port). The address
 * bound is then rn_http_address's, as "127.0.0.1:8080" or "[::1]:8080".
 * Once per server. */
int rn_http_listen(rn_http *h, const char *addr, char *err);
const char *rn_http_address(const rn_http *h);

/* Whether r's path is path, byte for byte ("/metrics"). */
int rn_http_path_is(const rn_http_req *r, const char *path);

/* Answer with status and body[0..len) (copied), keeping the connection
 * when the client asked to and status is below 400 or 404. */
void rn_http_answer(const rn_http_req *r, int status, const char *type, const char *body,
                    size_t len);
/* Answer 200 with a shared body (the reference passes to the answer). */
void rn_http_answer_msg(const rn_http_req *r, const char *type, rn_http_msg *body);
/* An error answer: "STATUS REASON: why" as text; 404 keeps the connection,
 * any other closes it and is counted as a bad request and warned about. */
void rn_http_refuse(const rn_http_req *r, int status, const char *why);
/* No memory to answer: said once, and the connection closed. */
void rn_http_nomem(const rn_http_req *r);

/* Turn the connection into a stream of type: the head (no length; the
 * connection ends the stream) with prelude[0..len) after it, then first
 * (may be NULL; the reference passes), then whatever rn_http_broadcast
 * sends. The connection reads no more requests. For HEAD: the head alone,
 * and a close. */
void rn_http_stream(const rn_http_req *r, const char *type, const char *prelude, size_t len,
                    rn_http_msg *first);

/* Send m to every open stream (the caller keeps its reference). */
void rn_http_broadcast(rn_http *h, rn_http_msg *m);

/* clients (accepted), refused (over max_clients), requests, bad_requests
 * (400, 405, 413, 431), dropped (did not read what was queued for them),
 * timeouts (closed for idling), streams (streams open now). */
const rn_counters *rn_http_counters(const rn_http *h);

/* Close the listener and every client; run the loop afterwards (the
 * handles close there), then free. */
void rn_http_close(rn_http *h);
void rn_http_free(rn_http *h);

/* metrics.c -- a tool's counters for Prometheus: GET /metrics on an
 * rn_http server of its own, answered in the text exposition format 0.0.4
 * (Content-Type text/plain; version=0.0.4), written by core's rn_prom.
 *
 * The server has rn_http's bounds. collect(data, p) writes the tool's
 * metrics when a scrape comes; what it wrote is served again to the scrapes
 * of the next max_age (one rendering is shared by reference, not copied per
 * client), so however many clients ask, the tool's loop renders at most once
 * per max_age. A rendering collect got wrong (a bad name; a family twice) is
 * answered 500 and warned about once. GET / answers a line pointing at
 * /metrics; other paths 404. */

#define RN_METRICS_MAX_AGE_NS (1000000000LL)

typedef struct rn_metrics rn_metrics;

typedef struct rn_metrics_opts {
    size_t max_clients;         /* the server's bounds (rn_http_opts; 0: its defaults) */
    size_t max_queue;
    int64_t idle_ns;
    int64_t max_age_ns;         /* 0: RN_METRICS_MAX_AGE_NS; < 0: render every scrape */
    int weak;                   /* as rn_http_opts': for a loop that must end when the
                                   tool's work does (not for one run beside it) */
    void (*collect)(void *data, rn_prom *p);
    rn_warn_fn *on_warn;
    void *data;
} rn_metrics_opts;

rn_metrics *rn_metrics_new(uv_loop_t *loop, const rn_metrics_opts *o, char *err);
/* As rn_http_listen. */
int rn_metrics_listen(rn_metrics *m, const char *addr, char *err);
const char *rn_metrics_address(const rn_metrics *m);
/* The server's (rn_http_counters). */
const rn_counters *rn_metrics_counters(const rn_metrics *m);
/* As rn_http_close: run the loop afterwards, then free (NULL: nothing, for
 * both). */
void rn_metrics_close(rn_metrics *m);
void rn_metrics_free(rn_metrics *m);

#endif
