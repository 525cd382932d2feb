/* hop.h -- framed, acknowledged TCP hops between logtail, chanbuf and chanbuf
 * (man/chanbuf-hop.5 is the specification; this is its implementation).
 *
 * Frame: u32 BE length of what follows, a type byte, a body.
 *   'H' HELLO    "RNHOP", version u8, session u64          sender -> receiver
 *   'W' WELCOME  version u8, max_frame u32                 receiver -> sender
 *   'B' BATCH    serial u64, count u32, count events       sender -> receiver
 *                (each u32 BE length + msgpack [ts, map, bin])
 *   'A' ACK      serial u64, status u8 (RN_HOP_STORED...)  receiver -> sender
 *   'N' NACK     serial u64, reason text                   receiver -> sender
 *   'E' ERROR    reason text; the receiver closes          receiver -> sender
 *
 * Both ends run on a libuv loop the caller owns. The receiver (rn_hop_server)
 * checks every frame and every event of a batch before it hands the batch to
 * its owner, and refuses a connection that breaks the protocol with an ERROR
 * frame, a warning naming the peer and the byte offset, and a close. The
 * sender (rn_hop_sender) keeps each batch until it is acknowledged, sends it
 * again on a new connection when one fails, and reports batches as done in
 * the order they were given to it.
 *
 * The files: addr.c (URLs, addresses), recv.c (the receiver), send.c (the
 * sender); hop_int.h holds what they share of the wire. */
#ifndef RN_HOP_HOP_H
#define RN_HOP_HOP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

#define RN_HOP_VERSION 1
#define RN_HOP_MAX_FRAME (32u << 20)
/* What a sender puts in one batch at most, so that a batch frame always fits
 * RN_HOP_MAX_FRAME: events are closed into a batch before they pass this. */
#define RN_HOP_MAX_BATCH_BYTES (16u << 20)

/* ACK statuses */
#define RN_HOP_STORED 0
#define RN_HOP_DUPLICATE 1
#define RN_HOP_DROPPED 2

/* ---- addresses --------------------------------------------------------- */

#define RN_HOP_MAX_TARGETS 16

typedef struct rn_hop_target {
    char host[256];
    int port;
} rn_hop_target;

typedef struct rn_hop_url {
    size_t n;
    rn_hop_target t[RN_HOP_MAX_TARGETS];
    int balance;                /* mode=balance (default: failover) */
} rn_hop_url;

/* "tcp://HOST:PORT[,HOST:PORT...][?mode=failover|balance]". HOST may be a
 * name, an IPv4 address or a bracketed IPv6 address. */
int rn_hop_url_parse(const char *url, rn_hop_url *u, char *err);

/* "HOST:PORT" (port 0: any free port), for a listener. */
int rn_hop_addr_parse(const char *s, rn_hop_target *t, char *err);

/* A listener's address: an IP literal, or a name resolved at once (at
 * start-up, where blocking is harmless). Any TCP server of runnel listens
 * this way (the hop receiver, the dashboard). */
int rn_hop_listen_addr(uv_loop_t *loop, const rn_hop_target *t,
                       struct sockaddr_storage *ss, char *err);

/* "1.2.3.4:5" or "[::1]:5" of a socket address, for messages. */
void rn_hop_sockaddr_name(const struct sockaddr *sa, char *out, size_t n);

/* ---- receiver ------------------------------------------------------------ */

typedef struct rn_hop_server rn_hop_server;

typedef struct rn_hop_batch {
    uint64_t conn;          /* the connection, for rn_hop_server_ack/nack */
    const char *peer;       /* "127.0.0.1:54321" */
    uint64_t session, serial;
    uint32_t count;
    const char *events;     /* count events, checked; valid during on_batch */
    size_t len;
} rn_hop_batch;

/* on_batch's answers */
#define RN_HOP_TAKEN 0      /* taken: acknowledge it (now or later) with _ack/_nack */
#define RN_HOP_BUSY 1       /* not now: hold it, stop reading, offer it again after _resume */

/* The receiver's defaults for what a peer can make it hold. */
#define RN_HOP_MAX_CONNS 1000
#define RN_HOP_IDLE_MS (10 * 60 * 1000)
#define RN_HOP_MAX_UNREAD (256u << 10)
#define RN_HOP_MAX_PARTIAL (256u << 20)

typedef struct rn_hop_server_opts {
    size_t max_frame;       /* 0: RN_HOP_MAX_FRAME */
    /* Connections open at once; one more is refused with an ERROR frame.
     * 0: RN_HOP_MAX_CONNS. */
    size_t max_conns;
    /* A connection that has sent and read nothing for this long is closed
     * (refused with an ERROR frame when it stopped in the middle of a frame;
     * a held one is not idle). 0: RN_HOP_IDLE_MS; < 0: never. */
    int64_t idle_ms;
    /* Bytes of answers a connection may leave unread (queued here because
     * its peer does not read them) before the receiver stops reading it,
     * until they are read. 0: RN_HOP_MAX_UNREAD. */
    size_t max_unread;
    /* Bytes the read buffers of all connections may hold beyond 64 KiB
     * each, for frames that have not fully arrived; a connection whose
     * frame would pass it is refused with an ERROR frame. At least
     * max_frame. 0: RN_HOP_MAX_PARTIAL. */
    size_t max_partial;
    int (*on_batch)(void *data, const rn_hop_batch *b);
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_hop_server_opts;

rn_hop_server *rn_hop_server_new(uv_loop_t *loop, const rn_hop_server_opts *o, char *err);

/* Bind and listen on "HOST:PORT". The address actually bound (port 0 gives a
 * free port) is then in rn_hop_server_address. */
int rn_hop_server_listen(rn_hop_server *s, const char *addr, char *err);
const char *rn_hop_server_address(const rn_hop_server *s);   /* "127.0.0.1:4141" */

/* Answer a batch taken by on_batch. Acks for a connection that has closed
 * are ignored. Acks go out in the order they are given. */
void rn_hop_server_ack(rn_hop_server *s, uint64_t conn, uint64_t serial, int status);
void rn_hop_server_nack(rn_hop_server *s, uint64_t conn, uint64_t serial, const char *reason);

/* Offer held (BUSY) batches again, and read on from their connections. */
void rn_hop_server_resume(rn_hop_server *s);

/* Take no more: close the listener and stop reading every connection
 * (batches already taken can still be acknowledged). */
void rn_hop_server_stop_input(rn_hop_server *s);

/* Close every handle; run the loop afterwards, then free. */
void rn_hop_server_close(rn_hop_server *s);
void rn_hop_server_free(rn_hop_server *s);

/* connections, refused, batches, events, idle_closed, muted (connections
 * whose unread answers stopped reading) */
const rn_counters *rn_hop_server_counters(const rn_hop_server *s);

/* Those counters for Prometheus, named PREFIX_connections_total, ... */
void rn_hop_server_metrics(const rn_hop_server *s, rn_prom *p, const char *prefix);

/* ---- sender --------------------------------------------------------------- */

typedef struct rn_hop_sender rn_hop_sender;

typedef struct rn_hop_sender_opts {
    rn_hop_url url;
    size_t window;              /* batches in flight per connection; 0: 8 */
    int64_t backoff_min_ns;     /* 0: 100 ms */
    int64_t backoff_max_ns;     /* 0: 5 s */
    /* A batch is acknowledged (status RN_HOP_STORED, _DUPLICATE or
     * _DROPPED), called in the order the batches were sent. */
    void (*on_ack)(void *data, void *cookie, int status);
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_hop_sender_opts;

rn_hop_sender *rn_hop_sender_new(uv_loop_t *loop, const rn_hop_sender_opts *o, char *err);

/* Queue a batch: events holds count events (u32 BE length + msgpack each),
 * at most RN_HOP_MAX_BATCH_BYTES. The sender takes the buffer (events is
 * left zeroed) and frees it once the batch is acknowledged. Connects on first
 * use. -1 only when out of memory. */
int rn_hop_sender_send(rn_hop_sender *s, rn_buf *events, uint32_t count, void *cookie,
                       char *err);

/* Batches and bytes given to send and not yet acknowledged. */
size_t rn_hop_sender_unacked(const rn_hop_sender *s);
uint64_t rn_hop_sender_unacked_bytes(const rn_hop_sender *s);

/* Close every connection and timer; batches not acknowledged are dropped
 * (on_ack is not called for them). Run the loop afterwards, then free. */
void rn_hop_sender_close(rn_hop_sender *s);
void rn_hop_sender_free(rn_hop_sender *s);

/* batches, events, acked, retries (batches sent again), reconnects,
 * duplicates (batches the receiver had), dropped (events), nacks,
 * delivered (events in batches acknowledged stored or duplicate) */
const rn_counters *rn_hop_sender_counters(const rn_hop_sender *s);

/* Those counters and the unacknowledged batches and bytes for Prometheus,
 * named PREFIX_events_sent_total, ... */
void rn_hop_sender_metrics(const rn_hop_sender *s, rn_prom *p, const char *prefix);

#endif
