/* broker_group.c -- consumer groups, coordinated here: JoinGroup generations,
 * SyncGroup, Heartbeat and session timeouts, LeaveGroup, and committed
 * offsets kept in "<data-dir>/__groups/<file>" (written whole to a temporary
 * file and renamed, so a crash leaves the old or the new file; see
 * group_save for the names and the format).
 *
 * The state machine is Kafka's, simplified: Empty -> PreparingRebalance
 * (members rejoin; done when all known members have, or at the rebalance
 * timeout, dropping those that did not) -> AwaitingSync (the leader, the
 * first member, gets everyone's metadata and sends the assignment) -> Stable.
 * As Kafka's, the first rebalance of an empty group waits for more members
 * (group_initial_delay_ns, Kafka's group.initial.rebalance.delay.ms): each
 * join within the delay starts it again, up to the rebalance timeout, so
 * members started together share the first generation instead of the first
 * one reading everything alone. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker/broker_int.h"

enum { G_EMPTY, G_PREPARING, G_AWAITING_SYNC, G_STABLE };

typedef struct kproto_md {
    char *name;
    rn_buf meta;
} kproto_md;

struct kmember {
    kmember *next;
    kgroup *g;
    char *id;
    int32_t session_ms, rebalance_ms;
    kproto_md *protos;
    int nprotos;
    rn_buf assignment;
    kreq *join_req, *sync_req;
    int64_t last_seen;      /* monotonic ns */
    int pending;            /* was given an id (MEMBER_ID_REQUIRED), not joined yet */
    char *client_id, *client_host;  /* of its latest JoinGroup, for DescribeGroups */
};

/* A committed offset. Topic and metadata are bytes as the client sent them
 * (any byte, NUL included). */
typedef struct koffset {
    char *topic;
    size_t tlen;
    int32_t part;
    int64_t offset;
    char *meta;             /* NULL: null */
    size_t mlen;
} koffset;

struct kgroup {
    kgroup *next;
    char *name;             /* NUL-terminated for messages; nlen bytes, any byte */
    size_t nlen;
    int state;
    int32_t gen;
    char *ptype, *proto, *leader;
    kmember *members;
    int64_t deadline;       /* PreparingRebalance ends by then */
    int64_t initial_end;    /* the initial delay's limit; 0: not in it */
    koffset *offs;
    size_t noffs, offcap;
    /* (topic, partition) -> 1 + index in offs; open addressing, linear
     * probing, at most half full, so commit and load stay linear. */
    uint32_t *slots;
    size_t nslots;
    uint64_t seed;
    char *file;             /* its file's name in __groups/, once known */
    int nmembers;           /* members, pending ones included */
    kmember *last;          /* the last of members (joins go after it) */
    int full_logged;        /* the refusal at --max-group-members was logged */
};

static char *dupn(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, p, n);
        s[n] = 0;
    }
    return s;
}

static int streq(const char *s, rn_kstr k) { return strlen(s) == k.n && !memcmp(s, k.p, k.n); }

static kgroup *group_find(rn_broker *b, rn_kstr name, int create)
{
    for (kgroup *g = b->groups; g; g = g->next)
        if (g->nlen == name.n && !memcmp(g->name, name.p, name.n))
            return g;
    if (!create)
        return NULL;
    kgroup *g = calloc(1, sizeof *g);
    if (!g || !(g->name = dupn(name.p, name.n))) {
        free(g);
        return NULL;
    }
    g->nlen = name.n;
    g->seed = rn_hash_seed();
    g->next = b->groups;
    b->groups = g;
    return g;
}

static kmember *member_find(kgroup *g, rn_kstr id)
{
    if (!g)
        return NULL;
    for (kmember *m = g->members; m; m = m->next)
        if (streq(m->id, id))
            return m;
    return NULL;
}

/* The member mid of g at generation gen: 0 and *out, or the error Kafka
 * gives for it. Any request from a member counts as a sign of life. */
static int16_t member_at(kgroup *g, rn_kstr mid, int32_t gen, kmember **out)
{
    kmember *m = *out = member_find(g, mid);
    if (!m || m->pending)
        return RN_KERR_UNKNOWN_MEMBER_ID;
    m->last_seen = rn_mono_ns();
    return gen != g->gen ? RN_KERR_ILLEGAL_GENERATION : 0;
}

static void protos_free(kmember *m)
{
    for (int i = 0; i < m->nprotos; i++) {
        free(m->protos[i].name);
        rn_buf_free(&m->protos[i].meta);
    }
    free(m->protos);
    m->protos = NULL;
    m->nprotos = 0;
}

/* ---- answers ---- */

static void join_answer_err(kreq *q, int16_t e, const char *member_id)
{
    rn_kw *w = &q->w;
    rn__req_begin(q);
    if (q->h.api_version >= 2)
        rn_kw_i32(w, 0);
    rn_kw_i16(w, e);
    rn_kw_i32(w, -1);
    rn_kw_strz(w, "");
    rn_kw_strz(w, "");
    rn_kw_strz(w, member_id ? member_id : "");
    rn_kw_array(w, 0);
    rn__req_done(q);
}

static void sync_answer(kreq *q, int16_t e, const rn_buf *assignment)
{
    rn_kw *w = &q->w;
    rn__req_begin(q);
    if (q->h.api_version >= 1)
        rn_kw_i32(w, 0);
    rn_kw_i16(w, e);
    rn_kw_bytes(w, assignment && assignment->len ? assignment->p : "",
                assignment ? assignment->len : 0);
    rn__req_done(q);
}

static void simple_answer(kreq *q, int16_t e, int throttle)
{
    rn__req_begin(q);
    if (throttle)
        rn_kw_i32(&q->w, 0);
    rn_kw_i16(&q->w, e);
    rn__req_done(q);
}

/* ---- state machine ---- */

/* Take the request parked in *slot (a member's join or sync) off its member:
 * it is then answered by the caller. NULL when none is parked. */
static kreq *unpark(kreq **slot)
{
    kreq *q = *slot;
    if (q) {
        *slot = NULL;
        q->member = NULL;
        q->wait = W_NONE;
    }
    return q;
}

/* Answer m's parked join and sync, if any, with error e. */
static void fail_parked(kmember *m, int16_t e)
{
    kreq *q;
    if ((q = unpark(&m->join_req)))
        join_answer_err(q, e, m->id);
    if ((q = unpark(&m->sync_req)))
        sync_answer(q, e, NULL);
}

static void member_free(kmember *m)
{
    protos_free(m);
    rn_buf_free(&m->assignment);
    free(m->client_id);
    free(m->client_host);
    free(m->id);
    free(m);
}

static void member_remove(kgroup *g, kmember *m, int16_t e)
{
    kmember **pp = &g->members, *prev = NULL;
    while (*pp != m) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = m->next;
    if (g->last == m)
        g->last = prev;
    g->nmembers--;
    fail_parked(m, e);
    member_free(m);
}

static int active_members(const kgroup *g)
{
    int n = 0;
    for (const kmember *m = g->members; m; m = m->next)
        n += !m->pending;
    return n;
}

static const kproto_md *proto_of(const kmember *m, const char *name)
{
    for (int i = 0; i < m->nprotos; i++)
        if (!strcmp(m->protos[i].name, name))
            return &m->protos[i];
    return NULL;
}

/* End the rebalance: members that did not rejoin are out; the rest get the
 * new generation, the leader with everyone's metadata. */
static void complete_join(rn_broker *b, kgroup *g)
{
    g->initial_end = 0;
    for (kmember *m = g->members, *next; m; m = next) {
        next = m->next;
        if (!m->pending && !m->join_req) {
            rn__blog(b, "group %s: member %s did not rejoin in time, removed", g->name, m->id);
            member_remove(g, m, RN_KERR_UNKNOWN_MEMBER_ID);
        }
    }
    g->gen++;
    kmember *first = NULL, *leader = NULL;
    for (kmember *m = g->members; m; m = m->next)
        if (!m->pending) {
            if (!first)
                first = m;
            if (g->leader && !strcmp(g->leader, m->id))
                leader = m;
        }
    if (!first) {
        g->state = G_EMPTY;
        free(g->leader);
        g->leader = NULL;
        return;
    }
    if (!leader)
        leader = first;
    /* The first of the leader's protocols that every member supports. */
    const char *chosen = leader->nprotos ? leader->protos[0].name : "";
    for (int i = 0; i < leader->nprotos; i++) {
        int all = 1;
        for (kmember *m = g->members; m && all; m = m->next)
            if (!m->pending && !proto_of(m, leader->protos[i].name))
                all = 0;
        if (all) {
            chosen = leader->protos[i].name;
            break;
        }
    }
    free(g->proto);
    free(g->leader);
    g->proto = strdup(chosen);
    g->leader = strdup(leader->id);
    g->state = G_AWAITING_SYNC;
    rn__blog(b, "group %s: generation %d with %d member%s, protocol %s, leader %s", g->name,
             g->gen, active_members(g), active_members(g) == 1 ? "" : "s", g->proto, g->leader);
    int64_t now = rn_mono_ns();
    for (kmember *m = g->members; m; m = m->next) {
        if (m->pending || !m->join_req)
            continue;
        kreq *q = unpark(&m->join_req);
        m->last_seen = now;
        int16_t v = q->h.api_version;
        rn_kw *w = &q->w;
        rn__req_begin(q);
        if (v >= 2)
            rn_kw_i32(w, 0);
        rn_kw_i16(w, 0);
        rn_kw_i32(w, g->gen);
        rn_kw_strz(w, g->proto);
        rn_kw_strz(w, g->leader);
        rn_kw_strz(w, m->id);
        if (m == leader) {
            rn_kw_array(w, active_members(g));
            for (kmember *o = g->members; o; o = o->next) {
                if (o->pending)
                    continue;
                const kproto_md *pm = proto_of(o, g->proto);
                rn_kw_strz(w, o->id);
                if (v >= 5)
                    rn_kw_nstr(w, NULL, 0);
                rn_kw_bytes(w, pm && pm->meta.len ? pm->meta.p : "", pm ? pm->meta.len : 0);
            }
        } else {
            rn_kw_array(w, 0);
        }
        rn__req_done(q);
    }
}

static void try_complete_join(rn_broker *b, kgroup *g)
{
    if (g->state != G_PREPARING || g->initial_end)
        return;     /* (the initial delay ends at its deadline: rn__group_tick) */
    for (kmember *m = g->members; m; m = m->next)
        if (!m->pending && !m->join_req)
            return;
    complete_join(b, g);
}

static void prepare_rebalance(rn_broker *b, kgroup *g)
{
    int64_t now = rn_mono_ns(), delay = b->o.group_initial_delay_ns;
    if (g->state == G_PREPARING) {
        if (g->initial_end)     /* one more member: wait again, within the limit */
            g->deadline = now + delay < g->initial_end ? now + delay : g->initial_end;
        return;
    }
    /* Syncs waiting for the old generation's assignment will not get one. */
    for (kmember *m = g->members; m; m = m->next) {
        kreq *q = unpark(&m->sync_req);
        if (q)
            sync_answer(q, RN_KERR_REBALANCE_IN_PROGRESS, NULL);
    }
    int32_t rb = 0;
    for (kmember *m = g->members; m; m = m->next)
        if (m->rebalance_ms > rb)
            rb = m->rebalance_ms;
    int first = g->state == G_EMPTY;
    g->state = G_PREPARING;
    g->deadline = now + (int64_t)rb * 1000000;
    if (first && delay > 0) {
        g->initial_end = g->deadline;
        if (now + delay < g->deadline)
            g->deadline = now + delay;
    }
}

static void after_leave(rn_broker *b, kgroup *g)
{
    if (active_members(g) == 0) {
        if (g->state != G_EMPTY) {
            g->gen++;
            g->state = G_EMPTY;
        }
        return;
    }
    prepare_rebalance(b, g);
    try_complete_join(b, g);
}

void rn__group_tick(rn_broker *b, int64_t now)
{
    for (kgroup *g = b->groups; g; g = g->next) {
        int removed = 0;
        for (kmember *m = g->members, *next; m; m = next) {
            next = m->next;
            if (m->join_req && g->state == G_PREPARING)
                continue;   /* waits under the rebalance timeout instead */
            if (now - m->last_seen > (int64_t)m->session_ms * 1000000) {
                if (!m->pending)
                    rn__blog(b, "group %s: member %s session timed out", g->name, m->id);
                removed += !m->pending;
                member_remove(g, m, RN_KERR_UNKNOWN_MEMBER_ID);
            }
        }
        if (removed)
            after_leave(b, g);
        if (g->state == G_PREPARING && now >= g->deadline)
            complete_join(b, g);
    }
}

void rn__group_cancel(kreq *q)
{
    kmember *m = q->member;
    if (m) {
        if (m->join_req == q)
            m->join_req = NULL;
        if (m->sync_req == q)
            m->sync_req = NULL;
    }
    q->member = NULL;
}

void rn__group_stop(rn_broker *b)
{
    for (kgroup *g = b->groups; g; g = g->next)
        for (kmember *m = g->members; m; m = m->next)
            fail_parked(m, RN_KERR_COORDINATOR_NOT_AVAILABLE);
}

/* ---- APIs ---- */

/* Note who m is, from the JoinGroup q: its client id, and its host as Kafka
 * shows it ("/" and the address, without the port). */
static int member_client(kmember *m, const kreq *q)
{
    const char *peer = q->c->peer, *colon = strrchr(peer, ':');
    size_t hn = colon ? (size_t)(colon - peer) : strlen(peer);
    char *id = dupn(q->h.client_id.p ? q->h.client_id.p : "", q->h.client_id.n);
    char *host = malloc(hn + 2);
    if (!id || !host) {
        free(id);
        free(host);
        return -1;
    }
    host[0] = '/';
    memcpy(host + 1, peer, hn);
    host[hn + 1] = 0;
    free(m->client_id);
    free(m->client_host);
    m->client_id = id;
    m->client_host = host;
    return 0;
}

int rn__join_group(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    int32_t session = rn_kr_i32(&r);
    int32_t rebalance = v >= 1 ? rn_kr_i32(&r) : session;
    rn_kstr mid = rn_kr_str(&r);
    if (v >= 5)
        rn_kr_nstr(&r);                     /* group_instance_id: static membership not kept */
    rn_kstr ptype = rn_kr_str(&r);
    int32_t np = rn_kr_array(&r, 6, NULL);
    size_t protos_at = r.off;
    for (int32_t i = 0; i < np; i++) {
        rn_kr_str(&r);
        rn_kr_bytes(&r);
    }
    if (!rn_kr_ok(&r))
        return -1;
    if (gid.n == 0) {
        join_answer_err(q, RN_KERR_INVALID_GROUP_ID, NULL);
        return 0;
    }
    if (session < 1000 || session > 3600000) {
        join_answer_err(q, RN_KERR_INVALID_SESSION_TIMEOUT, NULL);
        return 0;
    }
    kgroup *g = group_find(b, gid, 1);
    if (!g)
        return -1;
    if (np == 0 || (active_members(g) && g->ptype && !streq(g->ptype, ptype))) {
        join_answer_err(q, RN_KERR_INCONSISTENT_GROUP_PROTOCOL, NULL);
        return 0;
    }
    kmember *m = member_find(g, mid);
    if (mid.n && !m) {
        join_answer_err(q, RN_KERR_UNKNOWN_MEMBER_ID, NULL);
        return 0;
    }
    if (!m && b->o.max_group_members > 0 && g->nmembers >= b->o.max_group_members) {
        if (g->nmembers == b->o.max_group_members && !g->full_logged) {
            rn__blog(b, "group %s: %d members, --max-group-members reached: joins refused",
                     g->name, g->nmembers);
            g->full_logged = 1;
        }
        join_answer_err(q, RN_KERR_GROUP_MAX_SIZE_REACHED, NULL);
        return 0;
    }
    g->full_logged = g->full_logged && g->nmembers >= b->o.max_group_members;
    if (!m) {
        m = calloc(1, sizeof *m);
        char id[320];
        snprintf(id, sizeof id, "%.*s-%llu", (int)(q->h.client_id.n > 200 ? 200 : q->h.client_id.n),
                 q->h.client_id.p ? q->h.client_id.p : "", (unsigned long long)++b->member_seq);
        if (!m || !(m->id = strdup(id))) {
            free(m);
            return -1;
        }
        m->g = g;
        /* Join order: the first is the leader. */
        if (g->last)
            g->last->next = m;
        else
            g->members = m;
        g->last = m;
        g->nmembers++;
        m->session_ms = session;
        m->last_seen = rn_mono_ns();
        if (v >= 4) {
            /* KIP-394: the client must come back with this id. */
            m->pending = 1;
            join_answer_err(q, RN_KERR_MEMBER_ID_REQUIRED, m->id);
            return 0;
        }
    }
    if (member_client(m, q) < 0)
        return -1;
    m->pending = 0;
    m->session_ms = session;
    m->rebalance_ms = rebalance;
    m->last_seen = rn_mono_ns();
    protos_free(m);
    m->protos = calloc((size_t)np, sizeof *m->protos);
    if (!m->protos)
        return -1;
    rn_kr_init(&r, q->body, q->blen);
    r.off = protos_at;
    for (int32_t i = 0; i < np; i++) {
        rn_kstr pn = rn_kr_str(&r);
        rn_kstr md = rn_kr_bytes(&r);
        m->protos[i].name = dupn(pn.p, pn.n);
        if (!m->protos[i].name || rn_buf_append(&m->protos[i].meta, md.p ? md.p : "", md.n) < 0)
            return -1;
        m->nprotos = i + 1;
    }
    free(g->ptype);
    g->ptype = dupn(ptype.p, ptype.n);
    kreq *old = unpark(&m->join_req);  /* a second join from the same member replaces the first */
    if (old)
        join_answer_err(old, RN_KERR_REBALANCE_IN_PROGRESS, m->id);
    m->join_req = q;
    q->member = m;
    rn__wait(NULL, q, W_JOIN);
    prepare_rebalance(b, g);
    try_complete_join(b, g);
    return 0;
}

int rn__sync_group(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    int32_t gen = rn_kr_i32(&r);
    rn_kstr mid = rn_kr_str(&r);
    if (v >= 3)
        rn_kr_nstr(&r);
    int32_t na = rn_kr_array(&r, 6, NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < na; i++) {
        rn_kr_str(&r);
        rn_kr_bytes(&r);
    }
    if (!rn_kr_ok(&r))
        return -1;
    kgroup *g = group_find(b, gid, 0);
    kmember *m;
    int16_t e = member_at(g, mid, gen, &m);
    if (e) {
        sync_answer(q, e, NULL);
        return 0;
    }
    if (g->state == G_PREPARING) {
        sync_answer(q, RN_KERR_REBALANCE_IN_PROGRESS, NULL);
        return 0;
    }
    if (g->state == G_STABLE) {
        sync_answer(q, 0, &m->assignment);
        return 0;
    }
    kreq *old = unpark(&m->sync_req);
    if (old)
        sync_answer(old, RN_KERR_REBALANCE_IN_PROGRESS, NULL);
    m->sync_req = q;
    q->member = m;
    rn__wait(NULL, q, W_SYNC);
    if (g->leader && !strcmp(g->leader, m->id)) {
        for (kmember *o = g->members; o; o = o->next)
            o->assignment.len = 0;
        rn_kr_init(&r, q->body, q->blen);
        r.off = at;
        for (int32_t i = 0; i < na; i++) {
            rn_kstr id = rn_kr_str(&r);
            rn_kstr as = rn_kr_bytes(&r);
            kmember *o = member_find(g, id);
            if (o && as.n)
                rn_buf_append(&o->assignment, as.p, as.n);
        }
        g->state = G_STABLE;
        for (kmember *o = g->members; o; o = o->next) {
            kreq *sq = unpark(&o->sync_req);
            if (sq)
                sync_answer(sq, 0, &o->assignment);
        }
    }
    return 0;
}

int rn__heartbeat(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    int32_t gen = rn_kr_i32(&r);
    rn_kstr mid = rn_kr_str(&r);
    if (v >= 3)
        rn_kr_nstr(&r);
    if (!rn_kr_ok(&r))
        return -1;
    kgroup *g = group_find(b, gid, 0);
    kmember *m;
    int16_t e = member_at(g, mid, gen, &m);
    if (!e && g->state == G_PREPARING)
        e = RN_KERR_REBALANCE_IN_PROGRESS;
    simple_answer(q, e, v >= 1);
    return 0;
}

int rn__leave_group(kreq *q)
{
    rn_broker *b = q->c->b;
    rn_kr r;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    rn_kstr mid = rn_kr_str(&r);
    if (!rn_kr_ok(&r))
        return -1;
    kgroup *g = group_find(b, gid, 0);
    kmember *m = member_find(g, mid);
    if (!m) {
        simple_answer(q, RN_KERR_UNKNOWN_MEMBER_ID, q->h.api_version >= 1);
        return 0;
    }
    rn__blog(b, "group %s: member %s left", g->name, m->id);
    member_remove(g, m, RN_KERR_UNKNOWN_MEMBER_ID);
    after_leave(b, g);
    simple_answer(q, 0, q->h.api_version >= 1);
    return 0;
}

/* ---- committed offsets ---- */

/* ---- the offsets' store ---- */

/* Hex of n bytes, after a '=' so that "" is not nothing. */
static int put_hex(rn_buf *out, const char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (rn_buf_reserve(out, 1 + 2 * n) < 0)
        return -1;
    out->p[out->len++] = '=';
    for (size_t i = 0; i < n; i++) {
        out->p[out->len++] = digits[(unsigned char)p[i] >> 4];
        out->p[out->len++] = digits[(unsigned char)p[i] & 15];
    }
    return 0;
}

/* "=hex" back to bytes (malloc'd, NUL-terminated too): NULL when malformed. */
static char *get_hex(const char *s, size_t *n)
{
    size_t len = strlen(s);
    if (s[0] != '=' || (len - 1) % 2)
        return NULL;
    char *out = malloc((len - 1) / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < (len - 1) / 2; i++) {
        unsigned x;
        if (!isxdigit((unsigned char)s[1 + 2 * i]) || !isxdigit((unsigned char)s[2 + 2 * i])
            || sscanf(s + 1 + 2 * i, "%2x", &x) != 1) {
            free(out);
            return NULL;
        }
        out[i] = (char)x;
    }
    out[(len - 1) / 2] = 0;
    *n = (len - 1) / 2;
    return out;
}

/* The file of a group in __groups/. A short id names its file itself,
 * escaped: all but [A-Za-z0-9._-] as %XX, and a leading '.' too (so "." and
 * ".." cannot occur, and dot files are temporaries). An id whose escaped
 * form would be longer than NAME_MAX allows is named by a hash of it,
 * "~<16 hex>" ('~' is always escaped, so the two kinds never meet), with
 * ".1", ".2", ... after it when another group's file has the name; the id
 * is inside the file either way. */
#define SHORT_NAME 200

static int file_taken(rn_broker *b, const char *name)
{
    for (kgroup *o = b->groups; o; o = o->next)
        if (o->file && !strcmp(o->file, name))
            return 1;
    return 0;
}

static char *group_file(rn_broker *b, const kgroup *g)
{
    char esc[3 * SHORT_NAME + 1];
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)g->name;
    for (; *p && n <= SHORT_NAME; p++) {
        int ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                 *p == '_' || *p == '-' || (*p == '.' && p != (const unsigned char *)g->name);
        n += ok ? (size_t)snprintf(esc + n, 2, "%c", *p) : (size_t)snprintf(esc + n, 4, "%%%02X", *p);
    }
    if (p == (const unsigned char *)g->name + g->nlen && n <= SHORT_NAME)
        return strdup(esc);
    char name[64];
    uint64_t h = rn_hash(g->name, g->nlen, 0x72756e6e656cULL);
    snprintf(name, sizeof name, "~%016llx", (unsigned long long)h);
    for (unsigned k = 1; file_taken(b, name); k++)
        snprintf(name, sizeof name, "~%016llx.%u", (unsigned long long)h, k);
    return strdup(name);
}

/* Format 2, a text file of lines, every byte string as "=" and hex:
 *   runnel-group-offsets 2
 *   group =<id>
 *   =<topic> <partition> <offset> <- for null metadata, else =<metadata>
 * Format 1 (topic and metadata as text, the id only in the file name) is
 * still read. */
static int group_save(rn_broker *b, kgroup *g, char *err)
{
    char path[4096], tmp[4096];
    rn_buf out = { 0 };
    if (!g->file && !(g->file = group_file(b, g)))
        return rn_seterr(err, "group %s: out of memory", g->name);
    snprintf(path, sizeof path, "%s/__groups/%s", b->data_dir, g->file);
    snprintf(tmp, sizeof tmp, "%s/__groups/.%s", b->data_dir, g->file);
    int bad = rn_buf_append(&out, "runnel-group-offsets 2\ngroup ", 29) < 0
              || put_hex(&out, g->name, g->nlen) < 0 || rn_buf_append(&out, "\n", 1) < 0;
    for (size_t i = 0; i < g->noffs && !bad; i++) {
        koffset *o = &g->offs[i];
        char num[64];
        int n = snprintf(num, sizeof num, " %d %lld ", o->part, (long long)o->offset);
        bad = put_hex(&out, o->topic, o->tlen) < 0 || rn_buf_append(&out, num, (size_t)n) < 0
              || (o->meta ? put_hex(&out, o->meta, o->mlen) : rn_buf_append(&out, "-", 1)) < 0
              || rn_buf_append(&out, "\n", 1) < 0;
    }
    if (bad) {
        rn_buf_free(&out);
        return rn_seterr(err, "%s: out of memory", path);
    }
    /* Small: on the loop thread. The temporary is a dot file, which the
     * load skips. */
    rn_afile f;
    int r = rn_afile_open(&f, AT_FDCWD, NULL, path, tmp, err);
    if (r == 0 && (r = rn_afile_write(&f, out.p, out.len, err)) < 0)
        rn_afile_abort(&f);
    if (r == 0)
        r = rn_afile_commit(&f, b->o.flush == RN_FLUSH_ALWAYS, err);
    rn_buf_free(&out);
    return r;
}

static uint64_t offset_hash(const kgroup *g, const char *topic, size_t tn, int32_t part)
{
    return rn_hash(topic, tn, g->seed ^ (uint64_t)(uint32_t)part);
}

/* Put offs[i] in the table (which has room). */
static void slot_put(kgroup *g, size_t i)
{
    size_t mask = g->nslots - 1;
    size_t h = (size_t)offset_hash(g, g->offs[i].topic, g->offs[i].tlen, g->offs[i].part) & mask;
    while (g->slots[h])
        h = (h + 1) & mask;
    g->slots[h] = (uint32_t)(i + 1);
}

static koffset *offset_slot(kgroup *g, const char *topic, size_t tn, int32_t part, int create)
{
    if (g->nslots) {
        size_t mask = g->nslots - 1;
        for (size_t h = (size_t)offset_hash(g, topic, tn, part) & mask; g->slots[h];
             h = (h + 1) & mask) {
            koffset *o = &g->offs[g->slots[h] - 1];
            if (o->part == part && o->tlen == tn && !memcmp(o->topic, topic, tn))
                return o;
        }
    }
    if (!create || g->noffs >= UINT32_MAX - 1)
        return NULL;
    if (g->noffs == g->offcap) {
        size_t cap = g->offcap ? 2 * g->offcap : 8;
        koffset *no = realloc(g->offs, cap * sizeof *no);
        if (!no)
            return NULL;
        g->offs = no;
        g->offcap = cap;
    }
    if (2 * (g->noffs + 1) > g->nslots) {
        size_t ns = g->nslots ? 2 * g->nslots : 16;
        uint32_t *sl = calloc(ns, sizeof *sl);
        if (!sl)
            return NULL;
        free(g->slots);
        g->slots = sl;
        g->nslots = ns;
        for (size_t i = 0; i < g->noffs; i++)
            slot_put(g, i);
    }
    koffset *o = &g->offs[g->noffs];
    if (!(o->topic = dupn(topic, tn)))
        return NULL;
    o->tlen = tn;
    o->part = part;
    o->offset = -1;
    o->meta = NULL;
    o->mlen = 0;
    slot_put(g, g->noffs++);
    return o;
}

/* One line of a format 1 or 2 file into g; 0, or -1 when out of memory.
 * Malformed lines are skipped. */
static int load_line(kgroup *g, int version, char *line)
{
    char *f[4], *save = NULL;
    int n = 0;
    for (char *t = strtok_r(line, " \n", &save); t && n < 4; t = strtok_r(NULL, " \n", &save))
        f[n++] = t;
    if (n != 4)
        return 0;
    char *topic, *meta = NULL;
    size_t tn, mn = 0;
    if (version == 1) {
        topic = strdup(f[0]);
        tn = strlen(f[0]);
    } else {
        topic = get_hex(f[0], &tn);
    }
    char *end1, *end2;
    long part = strtol(f[1], &end1, 10);
    long long off = strtoll(f[2], &end2, 10);
    int ok = topic && !*end1 && !*end2 && part >= INT32_MIN && part <= INT32_MAX;
    if (ok && f[3][0] == '=' && !(meta = get_hex(f[3], &mn)))
        ok = 0;
    koffset *o = ok ? offset_slot(g, topic, tn, (int32_t)part, 1) : NULL;
    free(topic);
    if (!o) {
        free(meta);
        return ok ? -1 : 0;
    }
    o->offset = off;
    free(o->meta);
    o->meta = meta;
    o->mlen = mn;
    return 0;
}

/* The group of a file: format 2 names it inside, format 1 by the file name
 * (unescaped). NULL when the file is neither. */
static kgroup *load_group(rn_broker *b, const char *fname, FILE *f, int *version,
                          char **line, size_t *cap)
{
    if (getline(line, cap, f) < 0)
        return NULL;
    if (!strcmp(*line, "runnel-group-offsets 1\n")) {
        char name[256];
        size_t n = 0;
        for (const char *p = fname; *p && n < sizeof name - 1; p++) {
            unsigned x;
            if (*p == '%' && sscanf(p + 1, "%2x", &x) == 1) {
                name[n++] = (char)x;
                p += 2;
            } else {
                name[n++] = *p;
            }
        }
        *version = 1;
        return group_find(b, (rn_kstr){ name, n, 0 }, 1);
    }
    if (strcmp(*line, "runnel-group-offsets 2\n") || getline(line, cap, f) < 0
        || strncmp(*line, "group ", 6))
        return NULL;
    (*line)[strcspn(*line, "\n")] = 0;
    size_t n;
    char *id = get_hex(*line + 6, &n);
    kgroup *g = id ? group_find(b, (rn_kstr){ id, n, 0 }, 1) : NULL;
    free(id);
    *version = 2;
    return g;
}

int rn__group_load(rn_broker *b, char *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/__groups", b->data_dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return rn_seterr(err, "%s: %s", dir, strerror(errno));
    DIR *d = opendir(dir);
    if (!d)
        return rn_seterr(err, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    char *line = NULL;
    size_t cap = 0;
    int r = 0;
    while ((e = readdir(d)) && r == 0) {
        if (e->d_name[0] == '.')
            continue;   /* ".", ".." and unfinished temporary files */
        char path[4096 + 256];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        int version;
        kgroup *g = load_group(b, e->d_name, f, &version, &line, &cap);
        if (g && !g->file && !(g->file = strdup(e->d_name)))
            r = rn_seterr(err, "%s: out of memory", path);
        while (g && r == 0 && getline(&line, &cap, f) >= 0)
            if (load_line(g, version, line) < 0)
                r = rn_seterr(err, "%s: out of memory", path);
        fclose(f);
    }
    free(line);
    closedir(d);
    return r;
}

/* One partition of an OffsetCommit request. */
static void commit_part(rn_kr *r, int16_t v, int32_t *p, int64_t *off, rn_kstr *md)
{
    *p = rn_kr_i32(r);
    *off = rn_kr_i64(r);
    if (v == 1)
        rn_kr_i64(r);                       /* commit timestamp */
    if (v >= 6)
        rn_kr_i32(r);                       /* committed leader epoch */
    *md = rn_kr_nstr(r);
}

int rn__offset_commit(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    int32_t gen = -1;
    rn_kstr mid = { "", 0, 0 };
    if (v >= 1) {
        gen = rn_kr_i32(&r);
        mid = rn_kr_str(&r);
    }
    if (v >= 2 && v <= 4)
        rn_kr_i64(&r);                      /* retention_time_ms: kept forever */
    if (v >= 7)
        rn_kr_nstr(&r);
    int32_t nt = rn_kr_array(&r, 6, NULL), p;
    int64_t off;
    rn_kstr md;
    size_t at = r.off, nparts = 0;
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 14, NULL);
        for (int32_t j = 0; j < np && rn_kr_ok(&r); j++, nparts++)
            commit_part(&r, v, &p, &off, &md);
    }
    if (!rn_kr_ok(&r))
        return -1;
    kgroup *g = group_find(b, gid, 1);
    int16_t e = 0;
    if (!g) {
        return -1;
    } else if (gen < 0 && mid.n == 0) {
        /* A commit from outside the group (e.g. an assign()ing consumer). */
    } else {
        kmember *m;
        e = member_at(g, mid, gen, &m);
        if (!e && g->state == G_AWAITING_SYNC)
            e = RN_KERR_REBALANCE_IN_PROGRESS;
    }
    /* Apply, then save, then answer: a commit that could not be saved (a
     * full disk) is undone and answered KAFKA_STORAGE_ERROR, so a client is
     * never told 0 for an offset a restart would lose. */
    typedef struct undo { size_t at; int64_t offset; char *meta; size_t mlen; } undo;
    int16_t *pe = calloc(nparts ? nparts : 1, sizeof *pe);
    undo *u = calloc(nparts ? nparts : 1, sizeof *u);
    if (!pe || !u) {
        free(pe);
        free(u);
        return -1;
    }
    size_t k = 0, nu = 0;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    for (int32_t i = 0; i < nt; i++) {
        rn_kstr topic = rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 14, NULL);
        for (int32_t j = 0; j < np; j++, k++) {
            commit_part(&r, v, &p, &off, &md);
            pe[k] = e;
            if (e)
                continue;
            size_t before = g->noffs;
            koffset *o = offset_slot(g, topic.p, topic.n, p, 1);
            char *meta = md.null ? NULL : dupn(md.p, md.n);
            if (!o || (!md.null && !meta)) {
                free(meta);
                pe[k] = RN_KERR_UNKNOWN_SERVER_ERROR;
                continue;
            }
            u[nu].at = (size_t)(o - g->offs);
            u[nu].offset = g->noffs > before ? -1 : o->offset;     /* new: no commit */
            u[nu].meta = o->meta;
            u[nu].mlen = o->mlen;
            nu++;
            o->offset = off;
            o->meta = meta;
            o->mlen = md.null ? 0 : md.n;
        }
    }
    if (nu) {
        char err[RN_ERRLEN];
        if (group_save(b, g, err) < 0) {
            if (!b->groups_err)
                rn__blog(b, "group %s: %s: offset commits are refused (KAFKA_STORAGE_ERROR) "
                         "until they can be saved", g->name, err);
            b->groups_err = 1;
            for (size_t i = nu; i-- > 0;) {         /* newest first: back to before */
                koffset *o = &g->offs[u[i].at];
                free(o->meta);
                o->offset = u[i].offset;
                o->meta = u[i].meta;
                o->mlen = u[i].mlen;
                u[i].meta = NULL;
            }
            for (size_t i = 0; i < k; i++)
                if (!pe[i])
                    pe[i] = RN_KERR_KAFKA_STORAGE_ERROR;
        } else if (b->groups_err) {
            rn__blog(b, "group %s: offset commits are saved again", g->name);
            b->groups_err = 0;
        }
        for (size_t i = 0; i < nu; i++)
            free(u[i].meta);
    }
    rn__req_begin(q);
    if (v >= 3)
        rn_kw_i32(w, 0);
    rn_kw_array(w, nt);
    k = 0;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    for (int32_t i = 0; i < nt; i++) {
        rn_kstr topic = rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 14, NULL);
        rn_kw_str(w, topic.p, topic.n);
        rn_kw_array(w, np);
        for (int32_t j = 0; j < np; j++, k++) {
            commit_part(&r, v, &p, &off, &md);
            rn_kw_i32(w, p);
            rn_kw_i16(w, pe[k]);
        }
    }
    free(pe);
    free(u);
    rn__req_done(q);
    return 0;
}

static void write_offset(rn_kw *w, int16_t v, int32_t p, const koffset *o)
{
    rn_kw_i32(w, p);
    rn_kw_i64(w, o ? o->offset : -1);
    if (v >= 5)
        rn_kw_i32(w, -1);                   /* committed_leader_epoch */
    if (o && o->meta)
        rn_kw_nstr(w, o->meta, o->mlen);
    else
        rn_kw_nstr(w, "", 0);
    rn_kw_i16(w, 0);
}

static int offset_cmp(const void *a, const void *b)
{
    const koffset *x = *(const koffset *const *)a, *y = *(const koffset *const *)b;
    size_t n = x->tlen < y->tlen ? x->tlen : y->tlen;
    int c = memcmp(x->topic, y->topic, n);
    if (c || x->tlen != y->tlen)
        return c ? c : x->tlen < y->tlen ? -1 : 1;
    return x->part < y->part ? -1 : x->part > y->part;
}

int rn__offset_fetch(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kw *w = &q->w;
    int null = 0;
    rn_kr_init(&r, q->body, q->blen);
    rn_kstr gid = rn_kr_str(&r);
    int32_t nt = rn_kr_array(&r, 6, v >= 2 ? &null : NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < nt && rn_kr_ok(&r); i++) {
        rn_kr_str(&r);
        int32_t np = rn_kr_array(&r, 4, NULL);
        for (int32_t j = 0; j < np; j++)
            rn_kr_i32(&r);
    }
    if (!rn_kr_ok(&r))
        return -1;
    kgroup *g = group_find(b, gid, 0);
    rn__req_begin(q);
    if (v >= 3)
        rn_kw_i32(w, 0);
    if (null) {
        /* Every committed offset, by topic: sorted, so that each topic's
         * come together. */
        size_t n = g ? g->noffs : 0;
        const koffset **by = malloc((n ? n : 1) * sizeof *by);
        if (!by)
            return -1;
        for (size_t i = 0; i < n; i++)
            by[i] = &g->offs[i];
        qsort(by, n, sizeof *by, offset_cmp);
        size_t cnt_at = rn_kw_hole32(w);
        int32_t cnt = 0;
        for (size_t i = 0; i < n; ) {
            size_t k = i;
            cnt++;
            rn_kw_str(w, by[i]->topic, by[i]->tlen);
            while (k < n && by[k]->tlen == by[i]->tlen
                   && !memcmp(by[k]->topic, by[i]->topic, by[i]->tlen))
                k++;
            rn_kw_array(w, (int32_t)(k - i));
            for (; i < k; i++)
                write_offset(w, v, by[i]->part, by[i]);
        }
        free(by);
        rn_kw_fill32(w, cnt_at, cnt);
    } else {
        rn_kr_init(&r, q->body, q->blen);
        r.off = at;
        rn_kw_array(w, nt);
        for (int32_t i = 0; i < nt; i++) {
            rn_kstr topic = rn_kr_str(&r);
            int32_t np = rn_kr_array(&r, 4, NULL);
            rn_kw_str(w, topic.p, topic.n);
            rn_kw_array(w, np);
            for (int32_t j = 0; j < np; j++) {
                int32_t p = rn_kr_i32(&r);
                write_offset(w, v, p, g ? offset_slot(g, topic.p, topic.n, p, 0) : NULL);
            }
        }
    }
    if (v >= 2)
        rn_kw_i16(w, 0);
    rn__req_done(q);
    return 0;
}

void rn__group_free_all(rn_broker *b)
{
    while (b->groups) {
        kgroup *g = b->groups;
        b->groups = g->next;
        while (g->members) {
            kmember *m = g->members;
            g->members = m->next;
            member_free(m);
        }
        for (size_t i = 0; i < g->noffs; i++) {
            free(g->offs[i].topic);
            free(g->offs[i].meta);
        }
        free(g->offs);
        free(g->slots);
        free(g->file);
        free(g->name);
        free(g->ptype);
        free(g->proto);
        free(g->leader);
        free(g);
    }
}

/* ---- ListGroups, DescribeGroups ---- */

/* Kafka's names of the states (AwaitingSync is its CompletingRebalance). */
static const char *state_name(int state)
{
    switch (state) {
    case G_PREPARING: return "PreparingRebalance";
    case G_AWAITING_SYNC: return "CompletingRebalance";
    case G_STABLE: return "Stable";
    default: return "Empty";
    }
}

int rn__list_groups(kreq *q)
{
    rn_broker *b = q->c->b;
    rn_kw *w = &q->w;
    rn__req_begin(q);
    if (q->h.api_version >= 1)
        rn_kw_i32(w, 0);                    /* throttle_time_ms */
    rn_kw_i16(w, 0);
    size_t at = rn_kw_hole32(w);
    int32_t n = 0;
    for (kgroup *g = b->groups; g; g = g->next, n++) {
        rn_kw_str(w, g->name, g->nlen);
        rn_kw_strz(w, g->ptype ? g->ptype : "");
    }
    rn_kw_fill32(w, at, n);
    rn__req_done(q);
    return 0;
}

/* One group's description, as Kafka gives it: a group it does not know is
 * "Dead" with no error; members' metadata and assignments only when the
 * group is Stable (before that they are not settled). */
static void describe_group(rn_kw *w, int16_t v, rn_broker *b, rn_kstr gid, int ops)
{
    kgroup *g = gid.n ? group_find(b, gid, 0) : NULL;
    int stable = g && g->state == G_STABLE;
    rn_kw_i16(w, gid.n ? 0 : RN_KERR_INVALID_GROUP_ID);
    rn_kw_str(w, gid.p, gid.n);
    rn_kw_strz(w, g ? state_name(g->state) : "Dead");
    rn_kw_strz(w, g && g->ptype ? g->ptype : "");
    rn_kw_strz(w, stable && g->proto ? g->proto : "");
    rn_kw_array(w, g ? active_members(g) : 0);
    for (kmember *m = g ? g->members : NULL; m; m = m->next) {
        if (m->pending)
            continue;
        const kproto_md *pm = stable ? proto_of(m, g->proto) : NULL;
        rn_kw_strz(w, m->id);
        if (v >= 4)
            rn_kw_nstr(w, NULL, 0);         /* group_instance_id: no static members */
        rn_kw_strz(w, m->client_id ? m->client_id : "");
        rn_kw_strz(w, m->client_host ? m->client_host : "");
        rn_kw_bytes(w, pm && pm->meta.len ? pm->meta.p : "", pm ? pm->meta.len : 0);
        rn_kw_bytes(w, stable && m->assignment.len ? m->assignment.p : "",
                    stable ? m->assignment.len : 0);
    }
    if (v >= 3)     /* READ, DELETE, DESCRIBE: all of them, with no authorizer */
        rn_kw_i32(w, ops ? (1 << 3 | 1 << 6 | 1 << 8) : INT32_MIN);
}

int rn__describe_groups(kreq *q)
{
    rn_broker *b = q->c->b;
    int16_t v = q->h.api_version;
    rn_kr r;
    rn_kr_init(&r, q->body, q->blen);
    int32_t n = rn_kr_array(&r, 2, NULL);
    size_t at = r.off;
    for (int32_t i = 0; i < n; i++)
        rn_kr_str(&r);
    int ops = v >= 3 ? rn_kr_i8(&r) : 0;
    if (!rn_kr_ok(&r))
        return -1;
    rn_kr_init(&r, q->body, q->blen);
    r.off = at;
    rn__req_begin(q);
    if (v >= 1)
        rn_kw_i32(&q->w, 0);                /* throttle_time_ms */
    rn_kw_array(&q->w, n);
    for (int32_t i = 0; i < n; i++)
        describe_group(&q->w, v, b, rn_kr_str(&r), ops);
    rn__req_done(q);
    return 0;
}

/* ---- metrics --------------------------------------------------------------- */

/* The log of (topic, part), or NULL; last remembers the topic found, since
 * a group's offsets come a topic at a time. */
static rn_klog *offset_log(rn_broker *b, const koffset *o, ktopic **last)
{
    ktopic *t = *last;
    if (!t || strlen(t->name) != o->tlen || memcmp(t->name, o->topic, o->tlen) != 0)
        t = *last = rn__topic_find(b, o->topic, o->tlen);
    return t && o->part >= 0 && o->part < t->n ? t->logs[o->part] : NULL;
}

/* lag 0: the committed offsets; 1: the lag behind them. */
static void offsets_family(rn_broker *b, rn_prom *p, const char *prefix, int lag)
{
    char num[16];
    ktopic *last = NULL;

    if (lag)
        rn_prom_family(p, prefix, "group_lag", RN_PROM_GAUGE,
                       "Records in the partition after the group's committed offset.");
    else
        rn_prom_family(p, prefix, "group_committed_offset", RN_PROM_GAUGE,
                       "The offset the group committed for the partition.");
    for (kgroup *g = b->groups; g; g = g->next)
        for (size_t i = 0; i < g->noffs; i++) {
            const koffset *o = &g->offs[i];
            rn_prom_label l[3] = {
                { "group", g->name, g->nlen }, { "topic", o->topic, o->tlen },
                { "partition", num, (size_t)snprintf(num, sizeof num, "%d", (int)o->part) } };
            if (!lag) {
                rn_prom_sample_i64(p, l, 3, o->offset);
                continue;
            }
            rn_klog *log = offset_log(b, o, &last);
            if (log && o->offset >= 0)
                rn_prom_sample_i64(p, l, 3, rn_klog_end(log) > o->offset
                                                ? rn_klog_end(log) - o->offset : 0);
        }
}

void rn__group_metrics(rn_broker *b, rn_prom *p, const char *prefix)
{
    rn_prom_family(p, prefix, "group_members", RN_PROM_GAUGE,
                   "Members of the consumer group (joined, or joining).");
    for (kgroup *g = b->groups; g; g = g->next) {
        rn_prom_label l = { "group", g->name, g->nlen };
        rn_prom_sample(p, &l, 1, (uint64_t)g->nmembers);
    }
    offsets_family(b, p, prefix, 0);
    offsets_family(b, p, prefix, 1);
}
