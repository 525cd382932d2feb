/* agent.h -- chanbuf's agent: a source (standard input, or hop senders on a
 * listening socket), the channel, its sinks, and a clean stop (Flume's
 * agent, for one channel).
 *
 * A batch from a hop is acknowledged once it is in the channel: at once for
 * a memory channel and for a file channel with a periodic fsync (the write
 * has reached the kernel, which survives kill -9), after an fsync that
 * covers it with fsync_always. When the channel is full the agent stops
 * reading (block: TCP flow control and the pipe push back) or drops and
 * counts the batch (drop; a hop sender is told with status "dropped").
 *
 * Stopping (rn_agent_stop, or the end of standard input): no more input;
 * wait until the sinks have delivered everything pending (at the end of
 * input: however long that takes; after rn_agent_stop: at most drain_ns,
 * and a second rn_agent_stop ends the wait), then stop the sinks, save the
 * channel (a file channel keeps what is left for the next run; a memory
 * channel reports it as lost), close. uv_run returns when all is closed. */
#ifndef RN_AGENT_H
#define RN_AGENT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "chan.h"
#include "sink.h"
#include "stream.h"

typedef struct rn_route {
    const char *header, *value, *sink;
} rn_route;

/* "HEADER=VALUE:SINK_NAME" against the sinks' names. The strings point into
 * a copy held in *keep (free it after the agent). */
int rn_route_parse(const char *arg, const rn_sink_spec *sinks, size_t nsinks, rn_route *r,
                   char **keep, char *err);

typedef struct rn_agent rn_agent;

typedef struct rn_agent_opts {
    const char *listen;         /* "HOST:PORT"; NULL: read standard input */
    const char *dir;            /* NULL: memory channel */
    uint64_t capacity, max_bytes;
    uint32_t batch;             /* events per batch from stdin and per take */
    int fsync_always;           /* else fsync every fsync_ns */
    int64_t fsync_ns;
    int drop;                   /* when full: drop instead of block */
    rn_format fmt;              /* stdout and file sinks */
    const rn_sink_spec *sinks;
    size_t nsinks;
    const rn_route *routes;     /* all of one header */
    size_t nroutes;
    int64_t drain_ns;           /* how long rn_agent_stop waits for the sinks */
    /* Warnings, from any thread. */
    void (*on_warn)(void *data, const char *msg);
    void *data;
} rn_agent_opts;

rn_agent *rn_agent_new(uv_loop_t *loop, const rn_agent_opts *o, char *err);

/* "127.0.0.1:4141" (the port bound, with port 0), or NULL. */
const char *rn_agent_address(const rn_agent *a);

/* SIGTERM: see above. */
void rn_agent_stop(rn_agent *a);

/* "in=N out.NAME=N ... pending=N dropped=N retries=N duplicates=N" */
void rn_agent_counters(rn_agent *a, char *buf, size_t len);

/* After uv_run returned: 0, or 1 when input or a sink failed. */
int rn_agent_status(const rn_agent *a);

/* After uv_run returned: close the channel (a file channel's checkpoint). */
int rn_agent_free(rn_agent *a, char *err);

#endif
