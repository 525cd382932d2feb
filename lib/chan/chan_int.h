/* chan_int.h -- what the sink kinds (sink.c, sink_tcp.c, sink_kafka.c) share
 * inside lib/: the sink object, the thread entry points, and the in-order
 * done queue for sinks that have several batches in flight. */
#ifndef RN_CHAN_CHAN_INT_H
#define RN_CHAN_CHAN_INT_H

#include <pthread.h>

#include "chan/chan.h"

struct rn_sink {
    rn_sink_spec spec;
    rn_sink_opts o;
    pthread_t thread;
    int started;
    int stop;                   /* atomic: rn_sink_stop was called */
    uint64_t out, retries;      /* atomic counters */
    void (*wake)(rn_sink *s);   /* kinds with an event loop: rn_sink_stop pokes it */
    void *impl;
};

#define sink_stopping(s) __atomic_load_n(&(s)->stop, __ATOMIC_ACQUIRE)
#define sink_count(p, n) __atomic_add_fetch((p), (n), __ATOMIC_RELAXED)

void sink_warn(rn_sink *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Keep the events of in that s's filter lets through, as frames in out.
 * Returns how many (0: the whole batch is filtered away), -1 on bad input. */
int sink_filter(const rn_sink *s, const rn_chan_batch *in, rn_buf *out, uint32_t *count,
                char *err);
int sink_has_filter(const rn_sink *s);
int sink_accepts(const rn_sink *s, const rn_event *ev);

/* Batches in flight, in take order: a batch is finished when delivered, and
 * the channel hears of the longest finished prefix. */
typedef struct sink_fifo {
    struct sink_fifo_ent { uint64_t end, left, events; } *e;
    size_t head, n, cap;
    long first;                 /* slot id of e[head] */
} sink_fifo;

/* Add a batch of `events` events with `left` deliveries to wait for (0:
 * finished already); returns its slot id, or -1 when out of memory. */
long sink_fifo_push(sink_fifo *f, uint64_t end, uint64_t left, uint64_t events);
/* One delivery of slot id is done. */
void sink_fifo_one(sink_fifo *f, long id);
/* Pop the finished prefix: tell the channel, count the events out. */
void sink_fifo_flush(rn_sink *s, sink_fifo *f);
void sink_fifo_free(sink_fifo *f);

void *sink_tcp_run(void *arg);
int sink_tcp_init(rn_sink *s, char *err);
void *sink_kafka_run(void *arg);
int sink_kafka_init(rn_sink *s, char *err);

#endif
