/* results.h -- where results go: Redis, written directly (redis.c), and the
 * live dashboard (dashboard.c, on http/http.h's server). One section per
 * module, each opening with what the module is. Both take topk's windows
 * (window/window.h, rn_topn_window) and run on the caller's libuv loop. */
#ifndef RN_RESULTS_RESULTS_H
#define RN_RESULTS_RESULTS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"
#include "window/window.h"

/* redis.c -- each window's top N into Redis, through hiredis' async API on
 * the caller's libuv loop (rn_redisw, the writer).
 *
 * Keys, per window, as `topk -o redis` writes them (K = PREFIX:START, START
 * as in rows: "2026-11-23T07:40:00Z"):
 *   K                 a sorted set: member the key, score its value (DEL
 *                     first, so a window handed over again replaces its set);
 *                     EXPIRE TTL when there is one
 *   PREFIX:latest     a string: the K of the latest window (set only for a
 *                     window with `latest`); no expiry
 *   PREFIX:windows    the index, a sorted set: member K, score the window's
 *                     end in ms since the epoch; with a TTL, members whose end
 *                     is more than TTL before the end of the window being
 *                     written are removed, and the index expires with it. A
 *                     reader finds the last hour with
 *                     ZRANGEBYSCORE PREFIX:windows NOW_MS-3600000 +inf
 *                     (a member whose key expired meanwhile may be listed).
 * A window's commands go in one MULTI/EXEC, so a reader sees the old set or
 * the new one, never half of one.
 *
 * Redis down, restarted or refusing (AUTH): the writer goes on taking
 * windows and keeps those not yet written, at most max_pending of them (the
 * oldest is dropped, and counted, to make room; a window handed over again
 * while an earlier copy is still waiting replaces that copy). It reconnects
 * with a backoff (100 ms, doubling to 5 s) and writes what it kept, in the
 * order it was handed over. It warns once when an outage begins ("redis
 * HOST:PORT: unreachable (REASON); keeping up to N windows") and once when
 * what it kept is written ("redis HOST:PORT: reachable again after 2.5s: 7
 * windows written, 3 dropped"), never per window. A connection that makes no
 * progress for 5 s (connect, or a reply) counts as lost.
 *
 * Delivery is at-least-once: a window whose EXEC reply was lost with the
 * connection is written again, which changes nothing, since every write of
 * a window replaces it. Names are resolved with uv_getaddrinfo, off the loop. */

/* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]: HOST a name, an IPv4 address
 * or an IPv6 one in brackets; PORT 6379 when left out; USER and PASSWORD
 * %-decoded (AUTH PASSWORD, or AUTH USER PASSWORD); DB 0..2^31-1 (SELECT).
 * Errors name the part that is wrong, and never repeat a password. */
typedef struct rn_redis_url {
    char host[256];             /* without brackets */
    int port;
    char user[128];             /* "" when none */
    char password[256];         /* "" when none (see has_password) */
    int has_password;
    int db;                     /* -1 when not given */
} rn_redis_url;

int rn_redis_url_parse(const char *s, rn_redis_url *u, char *err);

typedef struct rn_redisw rn_redisw;

/* The default bound on windows kept while Redis cannot take them. */
#define RN_REDISW_KEEP 1024

typedef struct rn_redisw_opts {
    const char *url;            /* see rn_redis_url_parse */
    const char *prefix;         /* NULL: "topk" (as -o redis) */
    rn_tz *tz;                  /* key names in its local time (as -o redis); NULL: UTC */
    int64_t ttl_ns;             /* 0: no expiry; else in whole seconds, rounded up */
    size_t max_pending;         /* windows kept; 0: RN_REDISW_KEEP */
    rn_warn_fn *on_warn;
    void *data;                 /* for on_warn and close's on_closed */
} rn_redisw_opts;

/* Parse the URL and start connecting. NULL with err on a bad URL or
 * option, or when out of memory; Redis not answering is no error here. */
rn_redisw *rn_redisw_new(uv_loop_t *loop, const rn_redisw_opts *o, char *err);

/* Hand over one window: it is copied (win is not used after the call) and
 * written as soon as the connection allows. 0; RN_ENOMEM; RN_ERR after
 * close. */
int rn_redisw_put(rn_redisw *w, const rn_topn_window *win, char *err);

/* Windows handed over and not written yet (held, or on the wire). */
size_t rn_redisw_pending(const rn_redisw *w);

/* "redis HOST:PORT", as warnings name it. */
const char *rn_redisw_name(const rn_redisw *w);

/* Take no more windows; write those pending for at most wait_ns (going on
 * reconnecting, if need be), then count what is left as dropped (with a
 * warning) and close the connection and every handle. on_closed(data) is
 * called once all of it is closed (NULL: not told); run the loop until then,
 * or to its end, then rn_redisw_free. */
void rn_redisw_close(rn_redisw *w, int64_t wait_ns, void (*on_closed)(void *data));
void rn_redisw_free(rn_redisw *w);

/* written (windows Redis has taken), dropped (windows never written: the
 * bound, or left at close), reconnects (connections made after one was
 * lost or failed), pending (as rn_redisw_pending). */
const rn_counters *rn_redisw_counters(const rn_redisw *w);

/* dashboard.c -- the live dashboard (rn_dash): runnel's HTTP server
 * (http/http.h) on the caller's libuv loop, keeping the recent windows of
 * top N and serving
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
 * exact). HEAD is answered as GET without the body. An unknown path is 404;
 * the bounds on clients, requests and slow readers, and the refusals, are
 * the server's (http.h).
 *
 * Windows are kept in order of end, then start: a window published again
 * (the same start and end, as topk re-prints one that late rows changed)
 * replaces the one held and is sent to the event streams again; beyond
 * `keep` windows the oldest is dropped. The latest window is the one that
 * ends last. Everything runs on the loop's thread: nothing is thread-safe. */

#define RN_DASH_KEEP 120                        /* windows held */
#define RN_DASH_KEEPALIVE_NS (15 * 1000000000LL)

typedef struct rn_dash rn_dash;

typedef struct rn_dash_opts {
    size_t keep;                /* 0: RN_DASH_KEEP */
    /* The server's bounds (rn_http_opts; 0: RN_HTTP_MAX_CLIENTS, ...). */
    size_t max_clients;         /* connections, open or closing */
    size_t max_header;
    size_t max_request;
    size_t max_queue;
    int64_t idle_ns;
    int64_t keepalive_ns;       /* 0: RN_DASH_KEEPALIVE_NS */
    rn_warn_fn *on_warn;        /* may be NULL */
    void *data;
} rn_dash_opts;

/* NULL with err on a bad option or no memory. */
rn_dash *rn_dash_new(uv_loop_t *loop, const rn_dash_opts *o, char *err);

/* Bind and listen on "HOST:PORT" or ":PORT" (127.0.0.1; port 0: any free
 * port; a name is resolved once, here). The address bound is then
 * rn_dash_address's, as "127.0.0.1:8080" or "[::1]:8080". Once per server. */
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
