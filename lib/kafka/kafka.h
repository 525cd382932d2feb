/* kafka.h -- the Kafka client side, on librdkafka: the consumer that
 * consume(1) runs, the topic and group administration of brokerd topics and
 * brokerd groups, and the librdkafka properties a user gives them all. */
#ifndef RN_KAFKA_KAFKA_H
#define RN_KAFKA_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* kprops.c -- librdkafka properties from the user, as kcat's -X NAME=VALUE
 * and -F FILE (NAME=VALUE lines; blank lines and # comments are skipped),
 * for every client: a cluster with SASL or TLS, a client.id, fetch sizes.
 * They are applied after the client's own settings, so they override its
 * defaults; the few it sets for its guarantees are refused instead
 * (rn_kprops_check says which and what to use). */

typedef struct rn_kprops rn_kprops;
struct rd_kafka_conf_s;

enum { RN_KPROPS_CONSUMER, RN_KPROPS_SINK, RN_KPROPS_ADMIN };

rn_kprops *rn_kprops_new(void);             /* NULL: out of memory */
void rn_kprops_free(rn_kprops *p);          /* NULL is a no-op */
size_t rn_kprops_count(const rn_kprops *p); /* NULL: 0 */
/* "NAME=VALUE", or each such line of the file at path. RN_ERR with err when
 * it is not NAME=VALUE or librdkafka refuses it (its message names the
 * property), or RN_ENOMEM; a file's errors name its path and line. */
int rn_kprops_add(rn_kprops *p, const char *arg, char *err);
int rn_kprops_load(rn_kprops *p, const char *path, char *err);
/* 0, or RN_ERR with err naming the first property of p that a client of
 * role (RN_KPROPS_...) sets itself, and why. p may be NULL. */
int rn_kprops_check(const rn_kprops *p, int role, char *err);
/* A tool's -X ARG (opt 'X') or -F ARG (opt 'F'), into *p (made when NULL). */
int rn_kprops_opt(rn_kprops **p, int opt, const char *arg, char *err);
/* Check, then set every property of p (NULL: none) on conf. */
int rn_kprops_apply(const rn_kprops *p, int role, struct rd_kafka_conf_s *conf, char *err);

/* kconsume.c -- reading a topic as events, alone or in a consumer group, on
 * librdkafka (so any Kafka-protocol broker will do).
 *
 * Delivery: an offset is stored for commit only when the caller says the
 * events before it have been written out (rn_kcons_written), so a stop at
 * any moment repeats at most what was not yet written: at-least-once, and
 * exactly once across a clean stop (rn_kcons_close commits synchronously
 * and leaves the group). */

enum { RN_OFF_BEGINNING, RN_OFF_END, RN_OFF_ABS, RN_OFF_TAIL, RN_OFF_TIME };

typedef struct rn_kcons_opts {
    const char *brokers, *topic;
    const char *group;          /* NULL: read the partitions directly */
    int32_t partition;          /* -1: every partition (without a group) */
    int offset_kind;            /* where to start: RN_OFF_... */
    int64_t offset_val;         /* N for ABS and TAIL, ms for TIME */
    int exit_at_end;            /* RN_KCONS_END once every assigned partition is at its end */
    int64_t timeout_ms;         /* bound on connecting, metadata and the final commit */
    int body_only;              /* events need no headers or timestamp (lines
                                   output): librdkafka's timestamp accessor
                                   costs more than everything else together */
    int64_t order_wait_ms;      /* several partitions: hand records on oldest
                                   first, a partition that may still have an
                                   older one holding the others back at most
                                   this long; 0: as fetched */
    const rn_kprops *props;     /* the user's librdkafka properties, or NULL */
    rn_warn_fn *on_warn;        /* what the consumer waits for, said once */
    void *data;
} rn_kcons_opts;

/* Parse "beginning", "end", "N", "-N", "@EPOCH_MS" into kind and value. */
int rn_kcons_parse_offset(const char *s, int *kind, int64_t *val, char *err);

#define RN_KCONS_END 2

typedef struct rn_kcons rn_kcons;

/* Connects and reads the topic's metadata within timeout_ms: NULL with err
 * ("cannot reach ...") otherwise. A topic that does not exist yet is waited
 * for, as Kafka's console consumer does: on_warn says so once, and
 * rn_kcons_next looks again every 500 ms (with exit_at_end for timeout_ms at
 * most, then it fails with "unknown topic ..."). A partition the topic does
 * not have is an error of rn_kcons_new, or of rn_kcons_next once the topic
 * has appeared.
 *
 * Order. Reading several partitions (alone or in a group) with
 * order_wait_ms > 0, records are handed on in timestamp order across them
 * (Kafka Streams' rule): of the partitions with a record ready, the one
 * whose record is oldest (ties: the lowest partition). A partition with
 * nothing ready holds the others back while librdkafka's high watermark
 * says it has more to fetch (or nothing is known of it yet), for at most
 * order_wait_ms from when it began to; one at its end or caught up holds
 * nothing back. Each partition has a queue of its own (librdkafka's
 * prefetch bounds it) and at most one record held out of it; a record held
 * when its partition is taken away is dropped, neither handed on nor
 * committed. */
rn_kcons *rn_kcons_new(const rn_kcons_opts *o, char *err);

/* Never waits. 1: *ev is the next event (valid until the next call; headers
 * topic, partition, offset, key when present, ts, then the record's own
 * headers; body the value); 0: nothing is waiting now, wait for
 * rn_kcons_fd until rn_kcons_deadline; RN_KCONS_END; RN_ERR: err.
 *
 * Trouble is said through on_warn: every broker out of reach (once, and
 * once more when one is back), one broker of several out of reach for 2 s,
 * and a partition that cannot be read for an error not known to pass (a
 * corrupt batch, a codec librdkafka lacks), naming the partition and offset,
 * at most every 10 s per partition while the others go on. With
 * exit_at_end such a partition is RN_ERR instead: it would never end. */
int rn_kcons_next(rn_kcons *c, rn_event *ev, char *err);

/* After rn_kcons_next returned 0: when to call it again even if rn_kcons_fd
 * stays quiet, on rn_mono_ns's clock (a partition's hold runs out, a look
 * for the topic is due); -1: no such time. */
int64_t rn_kcons_deadline(const rn_kcons *c);

/* A descriptor that becomes readable when librdkafka has something for
 * rn_kcons_next (records, a partition's end, a rebalance, an error): what
 * to wait for (rn_input_wait) after rn_kcons_next returned 0. Only
 * rn_kcons_next reads it. Wait at most RN_KCONS_IDLE_MS at a time even so:
 * librdkafka takes a consumer that does not ask within max.poll.interval.ms
 * (5 minutes) for dead, and gives its partitions to others. */
int rn_kcons_fd(const rn_kcons *c);

#define RN_KCONS_IDLE_MS 1000

/* Every event returned so far has been written out: store its offset. */
void rn_kcons_written(rn_kcons *c);

/* The partitions assigned now, as "0,2" (empty when none), into out. */
void rn_kcons_assignment(const rn_kcons *c, char *out, size_t outlen);

/* For Prometheus, named PREFIX_...: assigned_partitions; per partition
 * (labels topic, partition) assigned now or written from before,
 * events_out_total and bytes_out_total (events, and their values' bytes,
 * written out: counted at rn_kcons_written); for those assigned now,
 * offset (after the last record handed on), high_watermark (librdkafka's,
 * from the last fetch; none before the first) and lag (high_watermark
 * less offset). Nothing is asked of the brokers. */
void rn_kcons_metrics(rn_kcons *c, rn_prom *p, const char *prefix);

/* Commit what was stored, leave the group, free: within timeout_ms
 * whatever the brokers do. RN_ERR with err when the commit failed or had
 * no answer in time (err names the offsets, as partition@offset) or the
 * group was not left in time. In that last case the client is not freed
 * (librdkafka would wait for its session to time out): its threads run
 * on until the process exits, which the caller should do next. */
int rn_kcons_close(rn_kcons *c, char *err);

/* admin.c -- topic administration over the Kafka protocol with librdkafka,
 * so that it works against brokerd and against any Kafka cluster alike:
 * list and describe read Metadata for all topics (asking for one topic by
 * name would auto-create it on brokers that do); create and delete use the
 * admin API and wait for the controller's answer. Every call blocks for at
 * most the client's timeout (plus a margin for the connect). Errors name the
 * brokers and what failed; when nobody answered in time they say "broker
 * unreachable?". */

typedef struct rn_kadmin rn_kadmin;

/* A client for brokers (comma-separated HOST:PORT), with timeout_ms for
 * every request and the user's properties props (NULL: none); it connects
 * when first asked. 0 and *out, or RN_ERR with err: *bad_setting is then 1
 * when librdkafka rejected brokers, timeout_ms or a property (for a tool, a
 * usage error), 0 when the client would not start. */
int rn_kadmin_new(const char *brokers, int timeout_ms, const rn_kprops *props,
                  rn_kadmin **out, int *bad_setting, char *err);
void rn_kadmin_free(rn_kadmin *a);   /* NULL is a no-op */

typedef struct rn_kadmin_part {
    int32_t id, leader;
    const int32_t *replicas;
    int nreplicas;
    const int32_t *isrs;
    int nisrs;
} rn_kadmin_part;

typedef struct rn_kadmin_topic {
    const char *name;
    const char *error;              /* NULL, or the broker's error for the topic */
    int unknown;                    /* that error is "unknown topic or partition" */
    const rn_kadmin_part *parts;    /* sorted by id */
    int nparts;
} rn_kadmin_topic;

typedef struct rn_kadmin_meta {
    const rn_kadmin_topic *topics;  /* sorted by name */
    size_t ntopics;
    void *md;                       /* librdkafka's metadata, which they point into */
} rn_kadmin_meta;

/* Every topic the brokers know, into *out (free it with rn_kadmin_meta_free).
 * RN_ERR or RN_ENOMEM with err. */
int rn_kadmin_metadata(rn_kadmin *a, rn_kadmin_meta *out, char *err);
/* The topic named name, or NULL. */
const rn_kadmin_topic *rn_kadmin_meta_find(const rn_kadmin_meta *m, const char *name);
void rn_kadmin_meta_free(rn_kadmin_meta *m);

/* Create a topic (partitions and replication -1: the broker's defaults), or
 * delete one. RN_ERR with err ("T: topic already exists", "T: unknown
 * topic", ...). */
int rn_kadmin_create(rn_kadmin *a, const char *topic, int partitions, int replication,
                     char *err);
int rn_kadmin_delete(rn_kadmin *a, const char *topic, char *err);

/* Consumer groups, as kafka-consumer-groups.sh shows them: through
 * librdkafka's admin API (ListConsumerGroups, ListConsumerGroupOffsets,
 * AlterConsumerGroupOffsets), rd_kafka_list_groups for a group's members
 * (DescribeConsumerGroups of librdkafka 2.0.2 breaks its client on a broker
 * without DescribeGroups) and the partitions' ends (ListOffsets), so on any
 * Kafka cluster. */

/* Every group's name, sorted, into *names (free each and the array); RN_ERR
 * with err. */
int rn_kadmin_groups(rn_kadmin *a, char ***names, size_t *n, char *err);

typedef struct rn_kgroup_member {
    char *id, *client_id, *host;
} rn_kgroup_member;

typedef struct rn_kgroup_part {
    char *topic;
    int32_t partition;
    int64_t committed;          /* -1: none */
    int64_t end;                /* the log end offset; -1: unknown */
    int64_t target;             /* a reset's new offset (else -1) */
    int member;                 /* index into members of its owner, or -1 */
} rn_kgroup_part;

typedef struct rn_kgroup {
    const char *state;          /* "Stable", "Empty", ...; "Unknown" when not described */
    char *describe_error;       /* NULL, or why members and state are not known
                                   (e.g. a broker without DescribeGroups) */
    rn_kgroup_member *members;
    size_t nmembers;
    rn_kgroup_part *parts;      /* sorted by topic and partition */
    size_t nparts;
} rn_kgroup;

/* The group's state, members, and every partition that has a committed
 * offset or is assigned, with its log end. RN_ERR with err when its offsets
 * cannot be read; a group nobody knows has no members and no partitions. */
int rn_kadmin_group_describe(rn_kadmin *a, const char *group, rn_kgroup *out, char *err);
void rn_kgroup_free(rn_kgroup *g);

/* Plan a reset of group's offsets for every partition of topic to kind
 * (RN_OFF_BEGINNING, RN_OFF_END, RN_OFF_ABS: val, clamped to the log as
 * Kafka does, RN_OFF_TIME: the first record at or after val ms, else the
 * end) into *out (parts[].target), and with execute commit it. Refused
 * (RN_ERR, err says so) while the group has members, as Kafka refuses; when
 * the brokers cannot describe groups the plan goes on and
 * out->describe_error says so. */
int rn_kadmin_group_reset(rn_kadmin *a, const char *group, const char *topic, int kind,
                          int64_t val, int execute, rn_kgroup *out, char *err);

#endif
