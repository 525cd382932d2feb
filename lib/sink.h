/* sink.h -- chanbuf's sinks: where events go after the channel.
 *
 *   stdout                                       events on standard output
 *   file:///DIR/PREFIX[?roll=SIZE|DURATION]      rolling files, complete or hidden
 *   tcp://HOST:PORT[,HOST:PORT...][?mode=...]    the next hop (man chanbuf-hop.5)
 *   kafka://BROKERS/TOPIC[?key=HEADER&acks=...]  a Kafka topic, through librdkafka
 *
 * Each sink runs in a thread of its own: it takes batches from its cursor in
 * the channel, delivers them, and tells the channel it is done with a batch
 * only when the batch is delivered (written and flushed; acknowledged by the
 * next hop; reported delivered by the Kafka producer), in order. A sink that
 * cannot deliver keeps trying (a file it cannot write, a hop that is down, a
 * broker that refuses) and counts retries; only a closed stdout stops it.
 *
 * A sink is given a name (NAME=URI; by default the URI itself), which is the
 * key of its cursor in a file channel and what --route refers to. */
#ifndef RN_SINK_H
#define RN_SINK_H

#include <stddef.h>
#include <stdint.h>

#include "chan.h"
#include "stream.h"

enum { RN_SINK_STDOUT, RN_SINK_FILE, RN_SINK_TCP, RN_SINK_KAFKA };

typedef struct rn_sink_spec {
    char name[256];             /* NAME=, or the URI itself */
    char uri[1024];
    int kind;
    /* file */
    char dir[1024], prefix[256];
    uint64_t roll_bytes;        /* 0: none */
    int64_t roll_ns;            /* 0: none */
    /* kafka */
    char brokers[512], topic[256], key[128];
    char acks[8];               /* "all", "1", "0" */
} rn_sink_spec;

/* "[NAME=]URI", as --sink takes it. */
int rn_sink_parse(const char *arg, rn_sink_spec *spec, char *err);

/* Which events a sink gets (the multiplexing selector): those whose header
 * has one of vals; a default sink gets those whose header has none of the
 * values any route names (or no such header). No filter: every event. */
typedef struct rn_sink_filter {
    const char *header;         /* NULL: every event */
    size_t nvals;
    const char **vals;          /* the values routed to this sink */
    size_t nall;
    const char **all;           /* every routed value (for a default sink) */
    int is_default;
} rn_sink_filter;

typedef struct rn_sink rn_sink;

typedef struct rn_sink_opts {
    rn_chan *chan;
    size_t index;               /* the sink's cursor in chan */
    uint32_t batch;             /* events per take */
    rn_format fmt;              /* stdout and file sinks */
    int fsync;                  /* file sink: fsync each batch before done */
    rn_sink_filter filter;
    /* From the sink's thread. */
    void (*on_warn)(void *data, const char *msg);
    /* The sink has stopped for good (stdout closed, status -EPIPE, or failed:
     * status -1); from the sink's thread. */
    void (*on_fail)(void *data, rn_sink *s, int status);
    void *data;
} rn_sink_opts;

/* Recover what a previous run left (a file sink's unfinished file), then
 * start the thread. */
rn_sink *rn_sink_start(const rn_sink_spec *spec, const rn_sink_opts *o, char *err);

/* Ask the sink to stop: it finishes the batch in hand if it can do so at
 * once, gives up on what it cannot (it stays pending in the channel), closes
 * its output (a file sink completes its file), and its thread ends. Call
 * rn_chan_shutdown first so that a waiting take returns. */
void rn_sink_stop(rn_sink *s);

/* Wait for the thread to end (NULL: nothing). Its counters stay readable. */
void rn_sink_join(rn_sink *s);
void rn_sink_free(rn_sink *s);

const char *rn_sink_name(const rn_sink *s);
uint64_t rn_sink_out(const rn_sink *s);        /* events delivered */
uint64_t rn_sink_retries(const rn_sink *s);    /* deliveries tried again */

#endif
