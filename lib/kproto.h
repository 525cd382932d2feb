/* kproto.h -- the Kafka wire protocol's primitives, bounded: a reader that
 * never reads past its end and a writer that grows an rn_buf, plus the
 * request header and the API keys and error codes brokerd speaks.
 *
 * The reader keeps a sticky error: once a read would pass the end (or a
 * length is negative where it may not be, or larger than what is left), every
 * later read returns zero/NULL and rn_kr_ok() is false. So a parser reads a
 * whole structure and checks once at the end; no length taken from the wire
 * can make it allocate or skip more than the request holds. Array counts are
 * checked against the bytes left too (each element takes at least one byte).
 *
 * The writer likewise keeps a sticky out-of-memory flag. */
#ifndef RN_KPROTO_H
#define RN_KPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* API keys. */
enum {
    RN_KAPI_PRODUCE = 0, RN_KAPI_FETCH = 1, RN_KAPI_LIST_OFFSETS = 2, RN_KAPI_METADATA = 3,
    RN_KAPI_OFFSET_COMMIT = 8, RN_KAPI_OFFSET_FETCH = 9, RN_KAPI_FIND_COORDINATOR = 10,
    RN_KAPI_JOIN_GROUP = 11, RN_KAPI_HEARTBEAT = 12, RN_KAPI_LEAVE_GROUP = 13,
    RN_KAPI_SYNC_GROUP = 14, RN_KAPI_API_VERSIONS = 18, RN_KAPI_CREATE_TOPICS = 19,
    RN_KAPI_DELETE_TOPICS = 20,
};

/* Error codes (the protocol guide's table). */
enum {
    RN_KERR_NONE = 0, RN_KERR_OFFSET_OUT_OF_RANGE = 1, RN_KERR_CORRUPT_MESSAGE = 2,
    RN_KERR_UNKNOWN_TOPIC_OR_PARTITION = 3, RN_KERR_INVALID_FETCH_SIZE = 4,
    RN_KERR_COORDINATOR_NOT_AVAILABLE = 15, RN_KERR_INVALID_TOPIC = 17,
    RN_KERR_RECORD_LIST_TOO_LARGE = 18, RN_KERR_INVALID_REQUIRED_ACKS = 21,
    RN_KERR_ILLEGAL_GENERATION = 22, RN_KERR_INCONSISTENT_GROUP_PROTOCOL = 23,
    RN_KERR_INVALID_GROUP_ID = 24, RN_KERR_UNKNOWN_MEMBER_ID = 25,
    RN_KERR_INVALID_SESSION_TIMEOUT = 26, RN_KERR_REBALANCE_IN_PROGRESS = 27,
    RN_KERR_UNSUPPORTED_VERSION = 35, RN_KERR_TOPIC_ALREADY_EXISTS = 36,
    RN_KERR_INVALID_PARTITIONS = 37, RN_KERR_INVALID_REPLICATION_FACTOR = 38,
    RN_KERR_INVALID_REQUEST = 42, RN_KERR_UNKNOWN_SERVER_ERROR = -1,
    RN_KERR_KAFKA_STORAGE_ERROR = 56, RN_KERR_MEMBER_ID_REQUIRED = 79,
};

/* The version ranges brokerd serves: the non-flexible versions (and the
 * flexible ApiVersions v3) that librdkafka 2.0 negotiates. */
typedef struct rn_kapi_range {
    int16_t key, min, max;
} rn_kapi_range;
extern const rn_kapi_range rn_kapi_ranges[];
extern const size_t rn_kapi_nranges;
/* The range served for key, or NULL. */
const rn_kapi_range *rn_kapi_find(int16_t key);
const char *rn_kapi_name(int16_t key);

/* ---- reader ---- */
typedef struct rn_kr {
    const unsigned char *p;
    size_t len, off;
    int bad;
} rn_kr;

/* A string or bytes as it lies in the request (not NUL-terminated).
 * null is set for a null string/bytes; then p is NULL and n 0. */
typedef struct rn_kstr {
    const char *p;
    size_t n;
    int null;
} rn_kstr;

void rn_kr_init(rn_kr *r, const void *p, size_t len);
static inline int rn_kr_ok(const rn_kr *r) { return !r->bad; }
static inline size_t rn_kr_left(const rn_kr *r) { return r->bad ? 0 : r->len - r->off; }
int8_t rn_kr_i8(rn_kr *r);
int16_t rn_kr_i16(rn_kr *r);
int32_t rn_kr_i32(rn_kr *r);
int64_t rn_kr_i64(rn_kr *r);
uint64_t rn_kr_uvarint(rn_kr *r);     /* unsigned LEB128, at most 10 bytes */
int64_t rn_kr_varint(rn_kr *r);       /* zigzag */
rn_kstr rn_kr_str(rn_kr *r);          /* STRING: int16 length, never null */
rn_kstr rn_kr_nstr(rn_kr *r);         /* NULLABLE_STRING: length -1 is null */
rn_kstr rn_kr_bytes(rn_kr *r);        /* (NULLABLE_)BYTES: int32 length, -1 is null */
rn_kstr rn_kr_cstr(rn_kr *r);         /* COMPACT_(NULLABLE_)STRING: uvarint length+1 */
/* ARRAY count: int32, -1 is null (returned as -1 with *null set when given);
 * a count larger than the bytes left (elements take >= min_elem bytes each)
 * is an error. */
int32_t rn_kr_array(rn_kr *r, size_t min_elem, int *null);
int32_t rn_kr_carray(rn_kr *r, size_t min_elem);   /* COMPACT_ARRAY: uvarint n+1; null is -1 */
void rn_kr_skip_tags(rn_kr *r);                    /* TAGGED_FIELDS: read and ignore */
void rn_kr_fail(rn_kr *r);

/* ---- writer ---- */
typedef struct rn_kw {
    rn_buf *b;
    int oom;
} rn_kw;

void rn_kw_init(rn_kw *w, rn_buf *b);
void rn_kw_raw(rn_kw *w, const void *p, size_t n);
void rn_kw_i8(rn_kw *w, int8_t v);
void rn_kw_i16(rn_kw *w, int16_t v);
void rn_kw_i32(rn_kw *w, int32_t v);
void rn_kw_i64(rn_kw *w, int64_t v);
void rn_kw_uvarint(rn_kw *w, uint64_t v);
void rn_kw_varint(rn_kw *w, int64_t v);
void rn_kw_str(rn_kw *w, const char *p, size_t n);       /* STRING */
void rn_kw_strz(rn_kw *w, const char *s);                /* STRING from a C string */
void rn_kw_nstr(rn_kw *w, const char *p, size_t n);      /* NULLABLE_STRING; p NULL is null */
void rn_kw_bytes(rn_kw *w, const void *p, size_t n);     /* BYTES; p NULL is null */
void rn_kw_cstr(rn_kw *w, const char *p, size_t n);      /* COMPACT_NULLABLE_STRING */
void rn_kw_array(rn_kw *w, int32_t n);                   /* ARRAY count */
void rn_kw_carray(rn_kw *w, int32_t n);                  /* COMPACT_ARRAY count (-1 null) */
void rn_kw_tags(rn_kw *w);                               /* empty TAGGED_FIELDS */
/* Reserve an int32 to fill in later (an array count or a size); returns its
 * offset in the buffer. */
size_t rn_kw_hole32(rn_kw *w);
void rn_kw_fill32(rn_kw *w, size_t at, int32_t v);

/* ---- request header ---- */
typedef struct rn_kreq_hdr {
    int16_t api_key, api_version;
    int32_t correlation_id;
    rn_kstr client_id;
    int flexible;       /* request header v2 (tagged fields) was read */
} rn_kreq_hdr;

/* Whether (key, version) uses the flexible (v2) request header. Of what we
 * serve, only ApiVersions v3 does; unknown versions count as non-flexible,
 * which is what Kafka assumes for them too. */
int rn_kapi_flexible(int16_t key, int16_t version);

/* Parse the header of one request (the bytes after the 4-byte size); leaves
 * r at the body. -1 with err when it is truncated. */
int rn_kreq_hdr_parse(rn_kr *r, rn_kreq_hdr *h, char *err);

/* The ApiVersions response (any version 0..3) with error_code, into w. */
void rn_kapi_versions_body(rn_kw *w, int16_t version, int16_t error_code);

#endif
