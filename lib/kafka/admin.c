/* admin.c -- topic and group administration on librdkafka: list, describe,
 * create, delete topics; list, describe, reset consumer groups. */
#include "kafka/kafka.h"

#include <librdkafka/rdkafka.h>
#include <inttypes.h>
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

int rn_kadmin_new(const char *brokers, int timeout_ms, const rn_kprops *props,
                  rn_kadmin **out, int *bad_setting, char *err)
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
    if (rn_kprops_apply(props, RN_KPROPS_ADMIN, conf, errstr) < 0) {
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
static int request_error(const rn_kadmin *a, const char *what, rd_kafka_resp_err_t e,
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
        return request_error(a, "metadata", e, rd_kafka_err2str(e), err);
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
        request_error(a, create ? "create" : "delete", rd_kafka_event_error(ev),
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

/* ---- consumer groups ---- */

/* Options for one admin call, and the queue its answer comes to. */
static rd_kafka_AdminOptions_t *admin_opts(rn_kadmin *a, rd_kafka_admin_op_t op, char *err)
{
    char errstr[512];
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(a->rk, op);
    if (!ao) {
        rn_seterr(err, "out of memory");
        return NULL;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(ao, a->timeout_ms, errstr, sizeof errstr)) {
        rn_seterr(err, "%s", errstr);
        rd_kafka_AdminOptions_destroy(ao);
        return NULL;
    }
    return ao;
}

/* The answer on q, or NULL with err set (nobody answered, or the call
 * failed as a whole): an error for the caller to return, never printed. The
 * request carries its own timeout (admin_opts), so an answer that does not
 * come within it and the margin is not waited for. */
static rd_kafka_event_t *await(rn_kadmin *a, rd_kafka_queue_t *q, const char *what, char *err)
{
    /* The request times out by itself; the margin covers the connect. */
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, a->timeout_ms + 5000);
    if (!ev) {
        rn_seterr(err, "%s: %s: no answer within the timeout", a->brokers, what);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        request_error(a, what, rd_kafka_event_error(ev), rd_kafka_event_error_string(ev), err);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

int rn_kadmin_groups(rn_kadmin *a, char ***names, size_t *n, char *err)
{
    *names = NULL;
    *n = 0;
    rd_kafka_AdminOptions_t *ao = admin_opts(a, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, err);
    if (!ao)
        return RN_ERR;
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_ListConsumerGroups(a->rk, ao, q);
    rd_kafka_event_t *ev = await(a, q, "list groups", err);
    int r = RN_ERR;
    if (!ev)
        goto out;
    const rd_kafka_ListConsumerGroups_result_t *res = rd_kafka_event_ListConsumerGroups_result(ev);
    size_t nerr = 0, ng = 0;
    const rd_kafka_error_t **errs = rd_kafka_ListConsumerGroups_result_errors(res, &nerr);
    if (nerr) {
        /* One broker failing makes the list incomplete: say so rather than
         * print part of it as the whole. */
        request_error(a, "list groups", rd_kafka_error_code(errs[0]), rd_kafka_error_string(errs[0]),
             err);
        goto out;
    }
    const rd_kafka_ConsumerGroupListing_t **gs = rd_kafka_ListConsumerGroups_result_valid(res, &ng);
    char **v = calloc(ng + 1, sizeof *v);
    if (!v) {
        rn_seterr(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ng; i++) {
        if (!(v[i] = strdup(rd_kafka_ConsumerGroupListing_group_id(gs[i])))) {
            while (i > 0)
                free(v[--i]);
            free(v);
            rn_seterr(err, "out of memory");
            goto out;
        }
    }
    qsort(v, ng, sizeof *v, cmp_name);
    *names = v;
    *n = ng;
    r = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return r;
}

void rn_kgroup_free(rn_kgroup *g)
{
    for (size_t i = 0; i < g->nmembers; i++) {
        free(g->members[i].id);
        free(g->members[i].client_id);
        free(g->members[i].host);
    }
    for (size_t i = 0; i < g->nparts; i++)
        free(g->parts[i].topic);
    free(g->members);
    free(g->parts);
    free(g->describe_error);
    memset(g, 0, sizeof *g);
}

/* The row of topic/partition in g, added (with no offsets) when new; NULL
 * when out of memory. Rows are kept unsorted until the end. */
static rn_kgroup_part *part_row(rn_kgroup *g, size_t *cap, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < g->nparts; i++)
        if (g->parts[i].partition == partition && !strcmp(g->parts[i].topic, topic))
            return &g->parts[i];
    if (g->nparts == *cap) {
        size_t c = *cap ? 2 * *cap : 16;
        rn_kgroup_part *p = realloc(g->parts, c * sizeof *p);
        if (!p)
            return NULL;
        g->parts = p;
        *cap = c;
    }
    rn_kgroup_part *p = &g->parts[g->nparts];
    if (!(p->topic = strdup(topic)))
        return NULL;
    p->partition = partition;
    p->committed = p->end = p->target = -1;
    p->member = -1;
    g->nparts++;
    return p;
}

static int cmp_row(const void *x, const void *y)
{
    const rn_kgroup_part *p = x, *q = y;
    int c = strcmp(p->topic, q->topic);
    return c ? c : (p->partition > q->partition) - (p->partition < q->partition);
}

/* A member's assignment as the consumer protocol encodes it (version,
 * then [topic, [partition]], then user data): its partitions as rows owned
 * by member. 0, RN_ECORRUPT when it does not parse, RN_ENOMEM. */
static int assignment_rows(rn_kgroup *g, size_t *cap, int member, const unsigned char *b,
                           size_t n)
{
    size_t at = 0;
#define NEED(k) do { if (n - at < (size_t)(k)) return RN_ECORRUPT; } while (0)
#define I16() (at += 2, (int16_t)(b[at - 2] << 8 | b[at - 1]))
#define I32() (at += 4, (int32_t)((uint32_t)b[at - 4] << 24 | (uint32_t)b[at - 3] << 16 \
                                  | (uint32_t)b[at - 2] << 8 | b[at - 1]))
    if (n == 0)
        return 0;               /* nothing assigned (yet) */
    NEED(6);
    (void)I16();           /* version */
    int32_t nt = I32();
    for (int32_t t = 0; t < nt; t++) {
        NEED(2);
        int16_t tl = I16();
        if (tl < 0)
            return RN_ECORRUPT;
        NEED(tl + 4);
        char topic[32768];
        memcpy(topic, b + at, (size_t)tl);
        topic[tl] = 0;
        at += (size_t)tl;
        int32_t np = I32();
        if (np < 0 || (size_t)np > (n - at) / 4)
            return RN_ECORRUPT;
        for (int32_t k = 0; k < np; k++) {
            rn_kgroup_part *p = part_row(g, cap, topic, I32());
            if (!p)
                return RN_ENOMEM;
            p->member = member;
        }
    }
#undef NEED
#undef I16
#undef I32
    return 0;
}

/* State and members (with their assigned partitions as rows), by
 * librdkafka's rd_kafka_list_groups (ListGroups and DescribeGroups): its
 * admin API's DescribeConsumerGroups, in 2.0.2, breaks the client when the
 * broker lacks DescribeGroups (an assertion, or a destroy that never
 * returns). A broker that cannot describe groups is not an error:
 * describe_error says why. */
static int describe_members(rn_kadmin *a, const char *group, rn_kgroup *g, size_t *cap,
                            char *err)
{
    char why[RN_ERRLEN];
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t e = rd_kafka_list_groups(a->rk, group, &gl, a->timeout_ms);
    const struct rd_kafka_group_info *gi = !e && gl->group_cnt == 1 ? &gl->groups[0] : NULL;
    if (e)
        request_error(a, "describe group", e, rd_kafka_err2str(e), why);
    else if (!gi)
        rn_seterr(why, "%s: describe group: no result for %s", a->brokers, group);
    else if (gi->err)
        request_error(a, "describe group", gi->err, rd_kafka_err2str(gi->err), why);
    if (!gi || gi->err) {
        if (gl)
            rd_kafka_group_list_destroy(gl);
        g->state = "Unknown";
        if (!(g->describe_error = strdup(why))) {
            rn_seterr(err, "out of memory");
            return RN_ENOMEM;
        }
        return 0;
    }
    static const char *const names[] = { "PreparingRebalance", "CompletingRebalance",
                                         "Stable", "Dead", "Empty" };
    g->state = "Unknown";
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (gi->state && !strcmp(gi->state, names[i]))
            g->state = names[i];
    int r = 0;
    if (gi->member_cnt > 0 && !(g->members = calloc((size_t)gi->member_cnt, sizeof *g->members)))
        r = RN_ENOMEM;
    for (int i = 0; r == 0 && i < gi->member_cnt; i++) {
        const struct rd_kafka_group_member_info *m = &gi->members[i];
        rn_kgroup_member *gm = &g->members[g->nmembers++];
        if (!(gm->id = strdup(m->member_id ? m->member_id : ""))
            || !(gm->client_id = strdup(m->client_id ? m->client_id : ""))
            || !(gm->host = strdup(m->client_host ? m->client_host : "")))
            r = RN_ENOMEM;
        else
            r = assignment_rows(g, cap, i, m->member_assignment,
                                (size_t)m->member_assignment_size);
    }
    if (r == RN_ENOMEM)
        rn_seterr(err, "out of memory");
    else if (r < 0)
        rn_seterr(err, "%s: describe group %s: a member's assignment does not parse",
                  a->brokers, group);
    rd_kafka_group_list_destroy(gl);
    return r;
}

/* The one group's result of an offsets call: its partitions, or RN_ERR. */
static int one_group(const rn_kadmin *a, const rd_kafka_group_result_t **gr, size_t n,
                     const char *group, const char *what,
                     const rd_kafka_topic_partition_list_t **parts, char *err)
{
    if (n != 1)
        return rn_seterr(err, "%s: %s: no result for %s", a->brokers, what, group);
    const rd_kafka_error_t *e = rd_kafka_group_result_error(gr[0]);
    if (e)
        return request_error(a, what, rd_kafka_error_code(e), rd_kafka_error_string(e), err);
    *parts = rd_kafka_group_result_partitions(gr[0]);
    return 0;
}

/* The group's committed offsets, as rows. */
static int committed_offsets(rn_kadmin *a, const char *group, rn_kgroup *g, size_t *cap,
                             char *err)
{
    rd_kafka_AdminOptions_t *ao = admin_opts(a, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, err);
    if (!ao)
        return RN_ERR;
    /* Every partition of every topic, by name: librdkafka 2.0.2, given
     * NULL for "all", asks for none. */
    rn_kadmin_meta md;
    if (rn_kadmin_metadata(a, &md, err) < 0) {
        rd_kafka_AdminOptions_destroy(ao);
        return RN_ERR;
    }
    rd_kafka_topic_partition_list_t *all = rd_kafka_topic_partition_list_new(16);
    for (size_t i = 0; i < md.ntopics; i++)
        for (int k = 0; k < md.topics[i].nparts; k++)
            rd_kafka_topic_partition_list_add(all, md.topics[i].name, md.topics[i].parts[k].id);
    rn_kadmin_meta_free(&md);
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_ListConsumerGroupOffsets_t *lo = rd_kafka_ListConsumerGroupOffsets_new(
        group, all->cnt ? all : NULL);
    rd_kafka_topic_partition_list_destroy(all);
    rd_kafka_ListConsumerGroupOffsets(a->rk, &lo, 1, ao, q);
    rd_kafka_ListConsumerGroupOffsets_destroy(lo);
    rd_kafka_event_t *ev = await(a, q, "group offsets", err);
    int r = RN_ERR;
    if (!ev)
        goto out;
    size_t n = 0;
    const rd_kafka_group_result_t **gr = rd_kafka_ListConsumerGroupOffsets_result_groups(
        rd_kafka_event_ListConsumerGroupOffsets_result(ev), &n);
    const rd_kafka_topic_partition_list_t *tl;
    if (one_group(a, gr, n, group, "group offsets", &tl, err) < 0)
        goto out;
    for (int k = 0; tl && k < tl->cnt; k++) {
        const rd_kafka_topic_partition_t *tp = &tl->elems[k];
        if (tp->err || tp->offset < 0)
            continue;           /* none committed */
        rn_kgroup_part *p = part_row(g, cap, tp->topic, tp->partition);
        if (!p) {
            rn_seterr(err, "out of memory");
            goto out;
        }
        p->committed = tp->offset;
    }
    r = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return r;
}

/* Every row's log end (and with lows, its log start into target). */
static int log_ends(rn_kadmin *a, rn_kgroup *g, int lows, char *err)
{
    for (size_t i = 0; i < g->nparts; i++) {
        rn_kgroup_part *p = &g->parts[i];
        int64_t lo, hi;
        rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(a->rk, p->topic, p->partition,
                                                                 &lo, &hi, a->timeout_ms);
        if (e) {
            char what[512];
            snprintf(what, sizeof what, "%s [%" PRId32 "]: log end", p->topic, p->partition);
            return request_error(a, what, e, rd_kafka_err2str(e), err);
        }
        p->end = hi;
        if (lows)
            p->target = lo;
    }
    return 0;
}

int rn_kadmin_group_describe(rn_kadmin *a, const char *group, rn_kgroup *out, char *err)
{
    size_t cap = 0;
    memset(out, 0, sizeof *out);
    if (describe_members(a, group, out, &cap, err) < 0
        || committed_offsets(a, group, out, &cap, err) < 0 || log_ends(a, out, 0, err) < 0) {
        rn_kgroup_free(out);
        return RN_ERR;
    }
    qsort(out->parts, out->nparts, sizeof *out->parts, cmp_row);
    return 0;
}

/* The reset's target for every row: they hold the log start in target. */
static int targets(rn_kadmin *a, rn_kgroup *g, int kind, int64_t val, char *err)
{
    if (kind == RN_OFF_BEGINNING)
        return 0;
    if (kind != RN_OFF_TIME) {
        for (size_t i = 0; i < g->nparts; i++) {
            rn_kgroup_part *p = &g->parts[i];
            /* As Kafka's tool: an offset outside the log is clamped to it. */
            if (kind == RN_OFF_END || val > p->end)
                p->target = p->end;
            else if (val > p->target)
                p->target = val;
        }
        return 0;
    }
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new((int)g->nparts);
    for (size_t i = 0; i < g->nparts; i++)
        rd_kafka_topic_partition_list_add(tl, g->parts[i].topic, g->parts[i].partition)
            ->offset = val;
    rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(a->rk, tl, a->timeout_ms);
    int r = 0;
    if (e) {
        r = request_error(a, "offsets for time", e, rd_kafka_err2str(e), err);
    } else {
        for (int k = 0; k < tl->cnt; k++) {
            rn_kgroup_part *p = &g->parts[k];
            if (tl->elems[k].err) {
                r = request_error(a, "offsets for time", tl->elems[k].err,
                         rd_kafka_err2str(tl->elems[k].err), err);
                break;
            }
            /* No record that new: the end, as Kafka's tool. */
            p->target = tl->elems[k].offset < 0 ? p->end : tl->elems[k].offset;
        }
    }
    rd_kafka_topic_partition_list_destroy(tl);
    return r;
}

static int alter_offsets(rn_kadmin *a, const char *group, const rn_kgroup *g, char *err)
{
    rd_kafka_AdminOptions_t *ao = admin_opts(a, RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS, err);
    if (!ao)
        return RN_ERR;
    rd_kafka_queue_t *q = rd_kafka_queue_new(a->rk);
    rd_kafka_topic_partition_list_t *tl = rd_kafka_topic_partition_list_new((int)g->nparts);
    for (size_t i = 0; i < g->nparts; i++)
        rd_kafka_topic_partition_list_add(tl, g->parts[i].topic, g->parts[i].partition)
            ->offset = g->parts[i].target;
    rd_kafka_AlterConsumerGroupOffsets_t *ag = rd_kafka_AlterConsumerGroupOffsets_new(group, tl);
    rd_kafka_topic_partition_list_destroy(tl);
    rd_kafka_AlterConsumerGroupOffsets(a->rk, &ag, 1, ao, q);
    rd_kafka_AlterConsumerGroupOffsets_destroy(ag);
    rd_kafka_event_t *ev = await(a, q, "reset offsets", err);
    int r = RN_ERR;
    if (!ev)
        goto out;
    size_t n = 0;
    const rd_kafka_group_result_t **gr = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(ev), &n);
    const rd_kafka_topic_partition_list_t *res;
    if (one_group(a, gr, n, group, "reset offsets", &res, err) < 0)
        goto out;
    for (int k = 0; res && k < res->cnt; k++) {
        if (res->elems[k].err) {
            char what[512];
            snprintf(what, sizeof what, "reset offsets: %s [%" PRId32 "]", res->elems[k].topic,
                     res->elems[k].partition);
            request_error(a, what, res->elems[k].err, rd_kafka_err2str(res->elems[k].err), err);
            goto out;
        }
    }
    r = 0;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_queue_destroy(q);
    return r;
}

int rn_kadmin_group_reset(rn_kadmin *a, const char *group, const char *topic, int kind,
                          int64_t val, int execute, rn_kgroup *out, char *err)
{
    size_t cap = 0;
    rn_kgroup cur;
    memset(out, 0, sizeof *out);
    /* Members and committed offsets as they are now. */
    if (rn_kadmin_group_describe(a, group, &cur, err) < 0)
        return RN_ERR;
    if (cur.nmembers) {
        rn_seterr(err, "%s: the group has %zu member%s (state %s): offsets can be reset only "
                  "while it has none", group, cur.nmembers, cur.nmembers == 1 ? "" : "s",
                  cur.state);
        goto err;
    }
    out->state = cur.state;
    if (cur.describe_error && !(out->describe_error = strdup(cur.describe_error))) {
        rn_seterr(err, "out of memory");
        goto err;
    }
    rn_kadmin_meta md;
    if (rn_kadmin_metadata(a, &md, err) < 0)
        goto err;
    const rn_kadmin_topic *t = rn_kadmin_meta_find(&md, topic);
    if (!t || t->unknown || t->nparts == 0) {
        rn_seterr(err, "%s: unknown topic", topic);
        rn_kadmin_meta_free(&md);
        goto err;
    }
    for (int i = 0; i < t->nparts; i++) {
        rn_kgroup_part *p = part_row(out, &cap, topic, t->parts[i].id);
        if (!p) {
            rn_seterr(err, "out of memory");
            rn_kadmin_meta_free(&md);
            goto err;
        }
        for (size_t k = 0; k < cur.nparts; k++)
            if (cur.parts[k].partition == p->partition && !strcmp(cur.parts[k].topic, topic))
                p->committed = cur.parts[k].committed;
    }
    rn_kadmin_meta_free(&md);
    qsort(out->parts, out->nparts, sizeof *out->parts, cmp_row);
    if (log_ends(a, out, 1, err) < 0 || targets(a, out, kind, val, err) < 0
        || (execute && alter_offsets(a, group, out, err) < 0))
        goto err;
    rn_kgroup_free(&cur);
    return 0;
err:
    rn_kgroup_free(&cur);
    rn_kgroup_free(out);
    return RN_ERR;
}
