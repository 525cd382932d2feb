/* broker.h -- brokerd's server: the Kafka protocol on one libuv loop over
 * partitions stored by klog, with consumer groups coordinated here.
 *
 * One node (id 0) is the whole cluster: every partition's leader, the
 * controller and every group's coordinator. It advertises the address it
 * listens on. Requests on a connection are processed as they arrive and
 * answered in arrival order: a Fetch that long-polls, a Produce waiting for
 * its fsync or a JoinGroup waiting for the rebalance holds back the answers
 * after it on that connection, as Kafka does.
 *
 * lib code: nothing is printed; what an operator should see (a connection
 * closed for a malformed request, a storage error) goes to on_log. */
#ifndef RN_BROKER_H
#define RN_BROKER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "counters.h"
#include "klog.h"

typedef struct rn_broker rn_broker;

enum {
    RN_FLUSH_NONE,      /* page cache only: the OS writes back */
    RN_FLUSH_ALWAYS,    /* fsync before acknowledging (group commit, off-loop) */
    RN_FLUSH_INTERVAL,  /* fsync what was appended every flush_interval_ns */
};

typedef struct rn_broker_opts {
    const char *host;           /* listen and advertised address */
    int port;                   /* 0: any free port (see rn_broker_port) */
    const char *data_dir;
    int32_t partitions;         /* for auto-created topics */
    int auto_create;
    rn_klog_opts klog;
    int flush;                  /* RN_FLUSH_* */
    int64_t flush_interval_ns;
    size_t max_request;         /* larger requests close the connection */
    void (*on_log)(void *data, const char *msg);
    void *data;
} rn_broker_opts;

/* Open the data directory (created if missing) and every topic in it. */
rn_broker *rn_broker_new(uv_loop_t *loop, const rn_broker_opts *o, char *err);
/* Bind and listen. */
int rn_broker_start(rn_broker *b, char *err);
int rn_broker_port(const rn_broker *b);
/* Clean shutdown: stop accepting, finish what is in flight (long polls are
 * answered now), flush and close every log, then call done. */
void rn_broker_stop(rn_broker *b, void (*done)(void *data), void *data);
/* Whether a storage error (a failed fsync, a log that would not open) was
 * seen: the exit status should say so. */
int rn_broker_failed(const rn_broker *b);
const rn_counters *rn_broker_counters(const rn_broker *b);
/* After stop's done (or without start): free everything. */
void rn_broker_free(rn_broker *b);

#endif
