/* kproto.c -- bounded reader and growing writer of Kafka primitives. */
#include "broker/broker_int.h"

#include <string.h>

const rn_kapi_range rn_kapi_ranges[] = {
    { RN_KAPI_PRODUCE, 3, 7 },          { RN_KAPI_FETCH, 4, 11 },
    { RN_KAPI_LIST_OFFSETS, 1, 2 },     { RN_KAPI_METADATA, 0, 8 },
    { RN_KAPI_OFFSET_COMMIT, 0, 7 },    { RN_KAPI_OFFSET_FETCH, 1, 5 },
    { RN_KAPI_FIND_COORDINATOR, 0, 2 }, { RN_KAPI_JOIN_GROUP, 0, 5 },
    { RN_KAPI_HEARTBEAT, 0, 3 },        { RN_KAPI_LEAVE_GROUP, 0, 1 },
    { RN_KAPI_SYNC_GROUP, 0, 3 },       { RN_KAPI_API_VERSIONS, 0, 3 },
    { RN_KAPI_CREATE_TOPICS, 0, 4 },    { RN_KAPI_DELETE_TOPICS, 0, 3 },
    { RN_KAPI_DESCRIBE_GROUPS, 0, 4 },  { RN_KAPI_LIST_GROUPS, 0, 2 },
    { RN_KAPI_DESCRIBE_CONFIGS, 0, 2 }, { RN_KAPI_ALTER_CONFIGS, 0, 1 },
};
const size_t rn_kapi_nranges = sizeof rn_kapi_ranges / sizeof rn_kapi_ranges[0];

const rn_kapi_range *rn_kapi_find(int16_t key)
{
    for (size_t i = 0; i < rn_kapi_nranges; i++)
        if (rn_kapi_ranges[i].key == key)
            return &rn_kapi_ranges[i];
    return NULL;
}

const char *rn_kapi_name(int16_t key)
{
    switch (key) {
    case RN_KAPI_PRODUCE: return "Produce";
    case RN_KAPI_FETCH: return "Fetch";
    case RN_KAPI_LIST_OFFSETS: return "ListOffsets";
    case RN_KAPI_METADATA: return "Metadata";
    case RN_KAPI_OFFSET_COMMIT: return "OffsetCommit";
    case RN_KAPI_OFFSET_FETCH: return "OffsetFetch";
    case RN_KAPI_FIND_COORDINATOR: return "FindCoordinator";
    case RN_KAPI_JOIN_GROUP: return "JoinGroup";
    case RN_KAPI_HEARTBEAT: return "Heartbeat";
    case RN_KAPI_LEAVE_GROUP: return "LeaveGroup";
    case RN_KAPI_SYNC_GROUP: return "SyncGroup";
    case RN_KAPI_API_VERSIONS: return "ApiVersions";
    case RN_KAPI_CREATE_TOPICS: return "CreateTopics";
    case RN_KAPI_DELETE_TOPICS: return "DeleteTopics";
    case RN_KAPI_DESCRIBE_GROUPS: return "DescribeGroups";
    case RN_KAPI_LIST_GROUPS: return "ListGroups";
    case RN_KAPI_DESCRIBE_CONFIGS: return "DescribeConfigs";
    case RN_KAPI_ALTER_CONFIGS: return "AlterConfigs";
    default: return "unknown";
    }
}

/* ---- reader ---- */

void rn_kr_init(rn_kr *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->bad = 0;
}

void rn_kr_fail(rn_kr *r) { r->bad = 1; }

/* n bytes at the read position, or NULL (and the reader fails). */
static const unsigned char *take(rn_kr *r, size_t n)
{
    if (r->bad || n > r->len - r->off) {
        r->bad = 1;
        return NULL;
    }
    const unsigned char *p = r->p + r->off;
    r->off += n;
    return p;
}

static uint64_t be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

int8_t rn_kr_i8(rn_kr *r)
{
    const unsigned char *p = take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t rn_kr_i16(rn_kr *r)
{
    const unsigned char *p = take(r, 2);
    return p ? (int16_t)be(p, 2) : 0;
}

int32_t rn_kr_i32(rn_kr *r)
{
    const unsigned char *p = take(r, 4);
    return p ? (int32_t)be(p, 4) : 0;
}

int64_t rn_kr_i64(rn_kr *r)
{
    const unsigned char *p = take(r, 8);
    return p ? (int64_t)be(p, 8) : 0;
}

uint64_t rn_kr_uvarint(rn_kr *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        const unsigned char *p = take(r, 1);
        if (!p)
            return 0;
        if (shift == 63 && (*p & 0x7e)) /* more than 64 bits */
            break;
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            return v;
    }
    r->bad = 1;
    return 0;
}

int64_t rn_kr_varint(rn_kr *r)
{
    uint64_t u = rn_kr_uvarint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static rn_kstr span(rn_kr *r, int64_t n, int nullable)
{
    rn_kstr s = { NULL, 0, 0 };
    if (r->bad)
        return s;
    if (n < 0) {
        if (n == -1 && nullable)
            s.null = 1;
        else
            r->bad = 1;
        return s;
    }
    const unsigned char *p = take(r, (size_t)n);
    if (p) {
        s.p = (const char *)p;
        s.n = (size_t)n;
    }
    return s;
}

rn_kstr rn_kr_str(rn_kr *r) { return span(r, rn_kr_i16(r), 0); }
rn_kstr rn_kr_nstr(rn_kr *r) { return span(r, rn_kr_i16(r), 1); }
rn_kstr rn_kr_bytes(rn_kr *r) { return span(r, rn_kr_i32(r), 1); }

rn_kstr rn_kr_cstr(rn_kr *r)
{
    uint64_t n = rn_kr_uvarint(r);
    if (n > (uint64_t)INT32_MAX + 1)
        return span(r, -2, 1);
    return span(r, (int64_t)n - 1, 1);
}

static int32_t count(rn_kr *r, int64_t n, size_t min_elem, int *null)
{
    if (null)
        *null = 0;
    if (r->bad)
        return 0;
    if (n == -1) {
        if (null)
            *null = 1;
        return -1;
    }
    if (n < 0 || (uint64_t)n * (min_elem ? min_elem : 1) > r->len - r->off) {
        r->bad = 1;
        return 0;
    }
    return (int32_t)n;
}

int32_t rn_kr_array(rn_kr *r, size_t min_elem, int *null)
{
    int isnull;
    int32_t n = count(r, rn_kr_i32(r), min_elem, &isnull);
    if (isnull && !null) {  /* the caller does not allow null */
        r->bad = 1;
        return 0;
    }
    if (null)
        *null = isnull;
    return n;
}

int32_t rn_kr_carray(rn_kr *r, size_t min_elem)
{
    uint64_t n = rn_kr_uvarint(r);
    if (n > (uint64_t)INT32_MAX + 1) {
        r->bad = 1;
        return 0;
    }
    return count(r, (int64_t)n - 1, min_elem, NULL);
}

void rn_kr_skip_tags(rn_kr *r)
{
    uint64_t n = rn_kr_uvarint(r);
    if (n > rn_kr_left(r)) {
        r->bad = 1;
        return;
    }
    for (uint64_t i = 0; i < n && !r->bad; i++) {
        rn_kr_uvarint(r);                   /* tag */
        uint64_t size = rn_kr_uvarint(r);
        if (size > rn_kr_left(r))
            r->bad = 1;
        else
            take(r, (size_t)size);
    }
}

/* ---- writer ---- */

void rn_kw_init(rn_kw *w, rn_buf *b)
{
    w->b = b;
    w->oom = 0;
}

void rn_kw_raw(rn_kw *w, const void *p, size_t n)
{
    if (!w->oom && n && rn_buf_append(w->b, p, n) < 0)
        w->oom = 1;
}

static void put_be(rn_kw *w, uint64_t v, int n)
{
    unsigned char b[8];
    for (int i = n - 1; i >= 0; i--, v >>= 8)
        b[i] = (unsigned char)v;
    rn_kw_raw(w, b, (size_t)n);
}

void rn_kw_i8(rn_kw *w, int8_t v) { put_be(w, (uint8_t)v, 1); }
void rn_kw_i16(rn_kw *w, int16_t v) { put_be(w, (uint16_t)v, 2); }
void rn_kw_i32(rn_kw *w, int32_t v) { put_be(w, (uint32_t)v, 4); }
void rn_kw_i64(rn_kw *w, int64_t v) { put_be(w, (uint64_t)v, 8); }

void rn_kw_uvarint(rn_kw *w, uint64_t v)
{
    unsigned char b[10];
    size_t n = 0;
    do {
        b[n] = v & 0x7f;
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    rn_kw_raw(w, b, n);
}

void rn_kw_varint(rn_kw *w, int64_t v)
{
    rn_kw_uvarint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void rn_kw_str(rn_kw *w, const char *p, size_t n)
{
    if (n > INT16_MAX)
        n = INT16_MAX;          /* our names are bounded far below this */
    rn_kw_i16(w, (int16_t)n);
    rn_kw_raw(w, p, n);
}

void rn_kw_strz(rn_kw *w, const char *s) { rn_kw_str(w, s, strlen(s)); }

void rn_kw_nstr(rn_kw *w, const char *p, size_t n)
{
    if (!p)
        rn_kw_i16(w, -1);
    else
        rn_kw_str(w, p, n);
}

void rn_kw_bytes(rn_kw *w, const void *p, size_t n)
{
    if (!p) {
        rn_kw_i32(w, -1);
        return;
    }
    rn_kw_i32(w, (int32_t)n);
    rn_kw_raw(w, p, n);
}

void rn_kw_cstr(rn_kw *w, const char *p, size_t n)
{
    if (!p) {
        rn_kw_uvarint(w, 0);
        return;
    }
    rn_kw_uvarint(w, (uint64_t)n + 1);
    rn_kw_raw(w, p, n);
}

void rn_kw_array(rn_kw *w, int32_t n) { rn_kw_i32(w, n); }
void rn_kw_carray(rn_kw *w, int32_t n) { rn_kw_uvarint(w, (uint64_t)((int64_t)n + 1)); }
void rn_kw_tags(rn_kw *w) { rn_kw_uvarint(w, 0); }

size_t rn_kw_hole32(rn_kw *w)
{
    size_t at = w->b->len;
    rn_kw_i32(w, 0);
    return at;
}

void rn_kw_fill32(rn_kw *w, size_t at, int32_t v)
{
    if (w->oom || at + 4 > w->b->len)
        return;
    unsigned char *p = (unsigned char *)w->b->p + at;
    uint32_t u = (uint32_t)v;
    p[0] = (unsigned char)(u >> 24);
    p[1] = (unsigned char)(u >> 16);
    p[2] = (unsigned char)(u >> 8);
    p[3] = (unsigned char)u;
}

/* ---- headers ---- */

int rn_kapi_flexible(int16_t key, int16_t version)
{
    /* A newer ApiVersions is answered v0 whatever its header holds. */
    return key == RN_KAPI_API_VERSIONS && version == 3;
}

int rn_kreq_hdr_parse(rn_kr *r, rn_kreq_hdr *h, char *err)
{
    h->api_key = rn_kr_i16(r);
    h->api_version = rn_kr_i16(r);
    h->correlation_id = rn_kr_i32(r);
    h->client_id = rn_kr_nstr(r);
    h->flexible = rn_kapi_flexible(h->api_key, h->api_version);
    if (h->flexible)
        rn_kr_skip_tags(r);
    if (!rn_kr_ok(r))
        return rn_seterr(err, "truncated request header");
    return 0;
}

void rn_kapi_versions_body(rn_kw *w, int16_t version, int16_t error_code)
{
    int flex = version >= 3;
    rn_kw_i16(w, error_code);
    if (flex)
        rn_kw_carray(w, (int32_t)rn_kapi_nranges);
    else
        rn_kw_array(w, (int32_t)rn_kapi_nranges);
    for (size_t i = 0; i < rn_kapi_nranges; i++) {
        rn_kw_i16(w, rn_kapi_ranges[i].key);
        rn_kw_i16(w, rn_kapi_ranges[i].min);
        rn_kw_i16(w, rn_kapi_ranges[i].max);
        if (flex)
            rn_kw_tags(w);
    }
    if (version >= 1)
        rn_kw_i32(w, 0);        /* throttle_time_ms */
    if (flex)
        rn_kw_tags(w);
}
