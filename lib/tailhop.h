/* tailhop.h -- logtail --to: events from the follow engine go over a hop
 * (man/chanbuf-hop.5), and the position file advances only for batches the
 * receiver has acknowledged.
 *
 * Events are gathered into a batch until the end of the loop's turn (or
 * until the batch is full, when it goes out without positions). At the end
 * of a turn the engine's positions are exact; they ride with the turn's last
 * batch, and are saved (every commit_ns) once that batch and every batch
 * before it are acknowledged. So after a kill -9 of logtail, the receiver,
 * or both, a restart reads again from a position whose lines the receiver
 * had committed: nothing is lost; what was in flight may come twice.
 *
 * While too much is unacknowledged (a receiver that is slow or down) the
 * engine is paused: memory stays bounded and the files wait on disk. */
#ifndef RN_TAILHOP_H
#define RN_TAILHOP_H

#include <stdint.h>
#include <uv.h>

#include "counters.h"
#include "event.h"
#include "hop.h"
#include "tail.h"

typedef struct rn_tailhop rn_tailhop;

typedef struct rn_tailhop_opts {
    rn_hop_url url;
    const char *pos_path;       /* NULL: no positions */
    uint32_t batch;             /* events per batch at most; 0: 1000 */
    int64_t commit_ns;          /* position save interval; 0: 1 s */
    int64_t drain_ns;           /* how long rn_tailhop_stop waits for acks */
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_tailhop_opts;

rn_tailhop *rn_tailhop_new(uv_loop_t *loop, const rn_tailhop_opts *o, char *err);

/* The engine whose positions and pausing the hop manages (set before
 * rn_tail_start; the engine needs manual_commit). */
void rn_tailhop_attach(rn_tailhop *h, rn_tail *t);

/* An event to send (encoded at once; ev need not outlive the call). -1 only
 * when out of memory. */
int rn_tailhop_put(rn_tailhop *h, const rn_event *ev);

/* The end of a turn of the loop (from a uv_check): send what was gathered,
 * with the positions. */
void rn_tailhop_turn(rn_tailhop *h);

/* The engine has stopped: send the rest and wait for every acknowledgement,
 * then save the positions and close. A stop that was asked for
 * (rn_tailhop_stop) waits at most drain_ns; the end of input (--once) waits
 * as long as it takes. */
void rn_tailhop_finish(rn_tailhop *h);

/* SIGTERM: bound the wait to drain_ns; a second call ends it now. */
void rn_tailhop_stop(rn_tailhop *h);

/* batches, events, acked, retries, duplicates, dropped, ... (the sender's) */
const rn_counters *rn_tailhop_counters(const rn_tailhop *h);

/* 1 when events were left unacknowledged at the end (they will be read
 * again from the positions). */
int rn_tailhop_unfinished(const rn_tailhop *h);

/* After uv_run returned. */
void rn_tailhop_free(rn_tailhop *h);

#endif
