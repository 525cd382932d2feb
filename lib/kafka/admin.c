/* admin.c -- topic administration on librdkafka: list, describe, create, delete. */
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct rn_kadmin {
    rd_kafka_t *rk;
    char *brokers;
    int timeout_ms;
};

/* librdkafka logs connection failures from its own threads; the one message
 * that matters is the error we return when the operation fails, so its log
 * lines are dropped. */
static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk, (void)level, (void)fac, (void)buf;
}

int rn_kadmin_new(const char *brokers, int timeout_ms, rn_kadmin **out, int *bad_setting,
                  char *err)
{
    char errstr[512], ms[32];
    *out = NULL;
    *bad_setting = 0;
    rn_kadmin *a = calloc(1, sizeof *a);
    if (!a || !(a->brokers = strdup(brokers))) {
        free(a);
        return rn_seterr(err, "out of memory");
    }
    a->timeout_ms = timeout_ms;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    snprintf(ms, sizeof ms, "%d", timeout_ms);
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof errstr)
            != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "socket.timeout.ms", ms, errstr, sizeof errstr)
            != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(conf, "allow.auto.create.topics", "false", errstr, sizeof errstr)
            != RD_KAFKA_CONF_OK) {
        *bad_setting = 1;
        rd_kafka_conf_destroy(conf);
        goto err;
    }
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    /* conf becomes the client's; when there is no client it is still ours. */
    a->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!a->rk) {
        rd_kafka_conf_destroy(conf);
        goto err;
    }
    *out = a;
    return 0;
err:
    rn_seterr(err, "%s", errstr);
    free(a->brokers);
    free(a);
    return RN_ERR;
}

void rn_kadmin_free(rn_kadmin *a)
{
    if (!a)
        return;
    rd_kafka_destroy(a->rk);
    free(a->brokers);
    free(a);
}

/* The reason for a failed request. Say plainly when nobody answered:
 * librdkafka's wording ("Broker transport failure", "Timed out") does not
 * name the likely cause. */
static int fail(const rn_kadmin *a, const char *what, rd_kafka_resp_err_t e,
                const char *detail, char *err)
{
    if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT
        || e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
        return rn_seterr(err, "%s: %s: no answer within %d ms: broker unreachable? (%s)",
                         a->brokers, what, a->timeout_ms, detail);
    return rn_seterr(err, "%s: %s: %s", a->brokers, what, detail);
}

/* ---- list and describe ---- */

static int cmp_topic(const void *x, const void *y)
{
    return strcmp(((const rn_kadmin_topic *)x)->name, ((const rn_kadmin_topic *)y)->name);
}

static int cmp_part(const void *x, const void *y)
{
    const rn_kadmin_part *p = x, *q = y;
    return (p->id > q->id) - (p->id < q->id);
}

int rn_kadmin_metadata(rn_kadmin *a, rn_kadmin_meta *out, char *err)
{
    const struct rd_kafka_metadata *md;
    memset(out, 0, sizeof *out);
    /* All topics: asking for one by name would auto-create it on brokers
     * that do. */
    rd_kafka_resp_err_t e = rd_kafka_metadata(a->rk, 1, NULL, &md, a->timeout_ms);
    if (e)
        return fail(a, "metadata", e, rd_kafka_err2str(e), err);
    size_t nparts = 0;
    for (int i = 0; i < md->topic_cnt; i++)
        nparts += (size_t)md->topics[i].partition_cnt;
    /* One block: the topics, then their partitions. */
    rn_kadmin_topic *ts = calloc(1, (size_t)md->topic_cnt * sizeof *ts
                                        + nparts * sizeof(rn_kadmin_part) + 1);
    if (!ts) {
        rd_kafka_metadata_destroy(md);
        rn_seterr(err, "out of memory");
        return RN_ENOMEM;
    }
    rn_kadmin_part *pp = (rn_kadmin_part *)(ts + md->topic_cnt);
    for (int i = 0; i < md->topic_cnt; i++) {
        const rd_kafka_metadata_topic_t *t = &md->topics[i];
        ts[i].name = t->topic;
        ts[i].error = t->err ? rd_kafka_err2str(t->err) : NULL;
        ts[i].unknown = t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
        ts[i].parts = pp;
        ts[i].nparts = t->partition_cnt;
        for (int k = 0; k < t->partition_cnt; k++) {
            const rd_kafka_metadata_partition_t *p = &t->partitions[k];
            pp[k] = (rn_kadmin_part){ p->id, p->leader, p->replicas, p->replica_cnt,
                                      p->isrs, p->isr_cnt };
        }
        qsort(pp, (size_t)t->partition_cnt, sizeof *pp, cmp_part);
        pp += t->partition_cnt;
    }
    qsort(ts, (size_t)md->topic_cnt, sizeof *ts, cmp_topic);
    out->topics = ts;
    out->ntopics = (size_t)md->topic_cnt;
    out->md = (void *)md;
    return 0;
}

const rn_kadmin_topic *rn_kadmin_meta_find(const rn_kadmin_meta *m, const char *name)
{
    for (size_t i = 0; i < m->ntopics; i++)
        if (!strcmp(m->topics[i].name, name))
            return &m->topics[i];
    return NULL;
}

void rn_kadmin_meta_free(rn_kadmin_meta *m)
{
    free((void *)m->topics);
    if (m->md)
        rd_kafka_metadata_destroy(m->md);
    memset(m, 0, sizeof *m);
}

/* ---- create and delete ---- */

/* Create (nt) or delete (dt) one topic and wait for the controller's answer. */
static int run_admin(rn_kadmin *a, const char *topic, int partitions, int replication,
                     int create, char *err)
{
    char errstr[512];
    int r = RN_ERR;
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(a->rk, RD_KAFKA_ADMIN_OP_ANY);
    rd_kafka_event_t *ev = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_DeleteTopic_t *dt = NULL;

    if (rd_kafka_AdminOptions_set_request_timeout(ao, a->timeout_ms, errstr, sizeof errstr)
        || rd_kafka_AdminOptions_set_operation_timeout(ao, a->timeout_ms, errstr,
                                                       sizeof errstr)) {
        rn_seterr(err, "%s", errstr);
        goto out;
    }
    if (create) {
        nt = rd_kafka_NewTopic_new(topic, partitions, replication, errstr, sizeof errstr);
        if (!nt) {
            rn_seterr(err, "%s: %s", topic, errstr);
            goto out;
        }
        rd_kafka_CreateTopics(a->rk, &nt, 1, ao, q);
    } else {
        dt = rd_kafka_DeleteTopic_new(topic);
        rd_kafka_DeleteTopics(a->rk, &dt, 1, ao, q);
    }
    /* The request times out by itself; the margin covers the connect. */
    ev = rd_kafka_queue_poll(q, a->timeout_ms + 5000);
    if (!ev) {
        rn_seterr(err, "%s: no answer within the timeout", a->brokers);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        fail(a, create ? "create" : "delete", rd_kafka_event_error(ev),
             rd_kafka_event_error_string(ev), err);
        goto out;
    }
    const rd_kafka_topic_result_t **res;
    size_t n = 0;
    if (create)
        res = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    else
        res = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
    if (n != 1) {
        rn_seterr(err, "%s: no result for topic %s", a->brokers, topic);
        goto out;
    }
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[0]);
    if (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        rn_seterr(err, "%s: topic already exists", topic);
    } else if (e == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        rn_seterr(err, "%s: unknown topic", topic);
    } else if (e) {
        const char *s = rd_kafka_topic_result_error_string(res[0]);
        rn_seterr(err, "%s: %s", topic, s && *s ? s : rd_kafka_err2str(e));
    } else {
        r = 0;
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    if (dt)
        rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return r;
}

int rn_kadmin_create(rn_kadmin *a, const char *topic, int partitions, int replication,
                     char *err)
{
    return run_admin(a, topic, partitions, replication, 1, err);
}

int rn_kadmin_delete(rn_kadmin *a, const char *topic, char *err)
{
    return run_admin(a, topic, 0, 0, 0, err);
}
