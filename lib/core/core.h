/* core.h -- runnel's core, which every subsystem and tool shares: errors,
 * clocks, durations and sizes, buffers, events, JSON, the three stream
 * formats, counters and their Prometheus text, signals, the input wait, the
 * key hash, CRC-32C, durable files and the event batch. One section per
 * module (util.c, event.c, ...), each opening with what the module is. */
#ifndef RN_CORE_CORE_H
#define RN_CORE_CORE_H

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* util.c -- small helpers every runnel module and tool shares: errors,
 * warnings, clocks, durations and sizes, and a growable byte buffer.
 *
 * Errors, the one convention of lib/ (after Redis' anet). lib/ never prints
 * and never exits. A function that can fail returns a negative code and, when
 * it takes a caller-owned `char *err` of RN_ERRLEN bytes (NULL allowed),
 * writes the reason there, naming what and where ("access.log: byte offset
 * 120: bad frame"). The codes are the enum below, each distinct:
 *   RN_ERR     the failure; err says why. Most functions return only this.
 *   RN_E...    a cause that a caller acts on differently (call again, answer
 *              a peer with a protocol error code, ...), with the reason in err
 *              too.
 * lib/ never returns a raw -errno. The thin wrappers of system calls that
 * take no err buffer (rn_write_all, rn_pread_full, ...) return RN_ERR with
 * errno set, as the calls they wrap do. Success is 0, or a count; positive
 * statuses ("duplicate", "busy") are named by the function that has them. */
enum rn_error {
    RN_ERR = -1,
    RN_EINTR = -2,      /* interrupted by a signal before anything was done; call again */
    RN_ENOMEM = -3,     /* out of memory */
    RN_ECORRUPT = -4,   /* data failed validation (Kafka's CORRUPT_MESSAGE) */
    RN_ERANGE = -5,     /* an offset outside what is stored (OFFSET_OUT_OF_RANGE) */
    RN_ETOOBIG = -6,    /* larger than the format or a limit allows */
    RN_ESHORT = -7,     /* a file ends before its header or index says it does */
    RN_EPIPE = -8,      /* the reader of our output went away: stop quietly */
};

#define RN_ERRLEN 256

/* Format a reason into err (if not NULL); always returns RN_ERR. */
int rn_seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Warnings. An object of lib/ that has something to say while it runs (a
 * file vanished, a peer was refused) says it through its owner's callback;
 * the tool prints it. rn_warn_to formats the message (prefix, if not NULL, then
 * fmt) and calls fn(data, msg), if fn is not NULL. */
typedef void rn_warn_fn(void *data, const char *msg);
void rn_warn_to(rn_warn_fn *fn, void *data, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void rn_vwarn_to(rn_warn_fn *fn, void *data, const char *prefix, const char *fmt,
              va_list ap) __attribute__((format(printf, 4, 0)));

/* Wall-clock and monotonic time in nanoseconds. */
int64_t rn_now_ns(void);
int64_t rn_mono_ns(void);

/* "500ms", "10s", "5m" (or "5min"), "1h", "2d", "250us", "100ns"; a bare
 * number is seconds. Fractions are allowed ("1.5s"). Negative values and
 * overflow are errors. */
int rn_parse_duration(const char *s, int64_t *ns, char *err);

/* A size: "512" (bytes), "512B", "64KiB", "10MiB", "1.5GiB", "1TiB"; the
 * unit in any case, "KB" the same as "KiB" (powers of 1024). A size's unit
 * always ends in B, so that no size reads as a duration ("10m" is ten
 * minutes). Overflow is an error. RN_SIZE_OLD: accepted, but spelt the old
 * way, a unit without its B ("64k", "10m"), which goes in the next release;
 * err (if not NULL) then holds the new spelling ("64KiB"). */
#define RN_SIZE_OLD 1
int rn_parse_size(const char *s, uint64_t *bytes, char *err);

/* A non-negative decimal integer with a bound; no sign, no junk. */
int rn_parse_uint(const char *s, uint64_t max, uint64_t *out, char *err);

/* A growable byte buffer. Zero-initialise ({0}) before use. */
typedef struct rn_buf {
    char *p;
    size_t len, cap;
} rn_buf;

int rn_buf_reserve(rn_buf *b, size_t extra);   /* 0, or -1 when out of memory */
int rn_buf_append(rn_buf *b, const void *data, size_t len);
void rn_buf_free(rn_buf *b);

/* Big-endian integers in byte buffers (the wire and file formats). */
static inline uint32_t rn_be32(const void *v)
{
    const unsigned char *p = v;
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t rn_be64(const void *p)
{
    return (uint64_t)rn_be32(p) << 32 | rn_be32((const unsigned char *)p + 4);
}

static inline void rn_put_be32(void *v, uint32_t x)
{
    unsigned char *p = v;
    p[0] = (unsigned char)(x >> 24);
    p[1] = (unsigned char)(x >> 16);
    p[2] = (unsigned char)(x >> 8);
    p[3] = (unsigned char)x;
}

static inline void rn_put_be64(void *p, uint64_t x)
{
    rn_put_be32(p, (uint32_t)(x >> 32));
    rn_put_be32((unsigned char *)p + 4, (uint32_t)x);
}

/* The value of hex digit c (either case), or -1. */
static inline int rn_hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decimal digits of v into out (at least 20 bytes, not NUL-terminated);
 * returns how many. For hot paths where snprintf costs too much. */
size_t rn_u64_dec(uint64_t v, char *out);

/* ISO 8601 UTC with milliseconds, "2026-11-23T07:07:21.123Z", into out
 * (at least 32 bytes). Returns the length written. */
size_t rn_format_time(int64_t ns, char *out, size_t outlen);

/* event.c -- the event every runnel tool passes on: a timestamp, headers, a body.
 *
 * An event is what Flume calls an event. It does not own its bytes: headers and
 * body point into memory that belongs to whoever produced the event (a reader's
 * buffer, a tail engine's read buffer) and stay valid until that producer is
 * called again. Copy what must outlive that. */

/* Headers an event may carry; more is a decoding error, never silent loss. */
#define RN_MAX_HEADERS 64

typedef struct rn_str {
    const char *p;
    size_t n;
} rn_str;

typedef struct rn_header {
    rn_str key, val;
} rn_header;

typedef struct rn_event {
    int64_t ts;                      /* ns since the epoch */
    size_t nhdr;
    rn_header hdr[RN_MAX_HEADERS];
    rn_str body;                     /* any bytes; for logs a line without '\n' */
} rn_event;

/* Reset to no headers, empty body, ts 0. */
void rn_event_clear(rn_event *ev);

/* Append a header; the strings are not copied. -1 when RN_MAX_HEADERS are set.
 * Inline: producers call it several times for every event. */
static inline int rn_event_add_header(rn_event *ev, const char *key, size_t klen,
                                      const char *val, size_t vlen)
{
    if (ev->nhdr >= RN_MAX_HEADERS)
        return -1;
    rn_header *h = &ev->hdr[ev->nhdr++];
    h->key.p = key;
    h->key.n = klen;
    h->val.p = val;
    h->val.n = vlen;
    return 0;
}

/* The value of the first header named key, or NULL. */
const rn_str *rn_event_header(const rn_event *ev, const char *key);

/* json.c -- the little JSON runnel needs: string escaping that round-trips any
 * bytes, and a bounded cursor parser for the objects of a json line.
 *
 * Bytes that are not valid UTF-8 are escaped as \udcXX, XX being the byte
 * (80..ff), as Python's "surrogateescape" does; the decoder turns a lone
 * \udc80..\udcff back into that byte. Valid UTF-8 passes through unchanged. */

/* Append the JSON string literal for s[0..n) (with quotes) to b. -1 on ENOMEM. */
int rn_json_put_string(rn_buf *b, const char *s, size_t n);

/* The same, written at o, which has room for RN_JSON_STRING_MAX(n) bytes
 * (\udcXX, six bytes a byte, is the worst case); returns the end. For an
 * encoder that reserves room for a whole object at once. */
#define RN_JSON_STRING_MAX(n) ((n) * 6 + 2)
char *rn_json_write_string(char *o, const char *s, size_t n);

/* Length of the valid UTF-8 sequence at s[0..n) (s[0] >= 0x80), or 0. */
size_t rn_utf8_len(const unsigned char *s, size_t n);

/* Decode the string literal that starts at p[0] == '"' within p[0..end).
 * The decoded bytes are appended to out; *next is set past the closing quote.
 * Returns 0, or -1 with err naming the problem and its offset from p.
 * Raw bytes >= 0x80 are kept as they are, valid UTF-8 or not. The decoded
 * bytes are never more than the literal's, so out, once it has room for the
 * whole text, does not move while a text's strings are decoded into it. */
int rn_json_get_string(const char *p, const char *end, rn_buf *out,
                       const char **next, char *err);

/* ---- a cursor over one JSON text, for reading our json lines ------------
 *
 * Every call skips leading whitespace. Errors read "byte offset N: reason",
 * N being base plus the position in the text, so a caller that sets base to
 * the text's place in its stream reports stream offsets. Only skipping
 * recurses, and it stops at RN_JSON_MAX_DEPTH levels of nesting. */

#define RN_JSON_MAX_DEPTH 64

typedef struct rn_json {
    const char *start, *p, *end;    /* the text and the next byte to read */
    uint64_t base;                  /* stream offset of start */
} rn_json;

void rn_json_init(rn_json *j, const char *p, size_t n, uint64_t base);
void rn_json_skip_ws(rn_json *j);
uint64_t rn_json_offset(const rn_json *j);     /* stream offset of j->p */

/* Enter an object: consume its '{'. */
int rn_json_object(rn_json *j, char *err);

/* The i-th member (from 0) of the object entered last: 1 with the key decoded
 * into key (appended; NULL to drop it) and the cursor before the value; 0
 * when the object's closing '}' was consumed instead; -1 on error. */
int rn_json_member(rn_json *j, size_t i, rn_buf *key, char *err);

/* An integer that fits int64_t; a fraction or exponent is an error. */
int rn_json_get_int64(rn_json *j, int64_t *v, char *err);

/* A string, decoded as rn_json_get_string does, appended to out (NULL to
 * only check it). */
int rn_json_get_str(rn_json *j, rn_buf *out, char *err);

/* Any value, checked but not kept. */
int rn_json_skip_value(rn_json *j, char *err);

/* counters.c -- named event counters a tool reports on SIGUSR1 and at exit.
 *
 * A tool declares its counters once (rn_counter_add returns a pointer it then
 * increments directly: no lookup on the hot path) and asks for the line
 * "name=value name=value ..." when it is time to print it. */

#define RN_MAX_COUNTERS 32

typedef struct rn_counters {
    size_t n;
    const char *name[RN_MAX_COUNTERS];
    uint64_t value[RN_MAX_COUNTERS];
} rn_counters;

/* Register a counter (name is not copied). NULL when the table is full. */
uint64_t *rn_counter_add(rn_counters *cs, const char *name);

/* The value of a registered counter, or 0. */
uint64_t rn_counter_get(const rn_counters *cs, const char *name);
/* Where a registered counter's value is, or NULL when there is none. */
const uint64_t *rn_counter_find(const rn_counters *cs, const char *name);

/* Write "name=value ..." (NUL-terminated, truncated to outlen); returns the
 * length it would have had, as snprintf does. */
size_t rn_counters_format(const rn_counters *cs, char *out, size_t outlen);

/* prom.c -- the Prometheus text exposition format, version 0.0.4, in which
 * the tools serve their counters (--metrics; http/http.h): families of
 * samples, each opened by its # HELP and # TYPE lines.
 *
 *   # HELP runnel_chanbuf_events_out_total Events the sink delivered.
 *   # TYPE runnel_chanbuf_events_out_total counter
 *   runnel_chanbuf_events_out_total{sink="stdout"} 1000
 *
 * Names are checked, so that a scrape never fails on one: a metric name is
 * [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]* not starting
 * with "__", a counter's name ends in _total, a family is opened once, and a
 * sample belongs to the family opened last. Label values are any bytes: \,
 * " and newline are escaped (\\, \", \n), and a byte that is not part of
 * valid UTF-8 becomes U+FFFD, since the format is UTF-8 (a file name that is
 * not UTF-8 is shown, not refused). HELP text escapes \ and newline. Values
 * are integers, printed exactly.
 *
 * The writer's error is sticky: once a call fails (no memory, a bad name)
 * the later calls do nothing, and rn_prom_error says what failed first. */

#define RN_PROM_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

enum { RN_PROM_COUNTER, RN_PROM_GAUGE };

typedef struct rn_prom_label {
    const char *name;
    const char *v;          /* the value's bytes */
    size_t n;
} rn_prom_label;

typedef struct rn_prom {
    rn_buf *out;
    int err;                /* 0, RN_ENOMEM or RN_ERR */
    char why[RN_ERRLEN];
    char fam[128];          /* the family open; "" before the first */
    rn_buf seen;            /* the families opened, NUL after each */
} rn_prom;

/* Write to out (appended to; the caller owns it). */
void rn_prom_init(rn_prom *p, rn_buf *out);
void rn_prom_free(rn_prom *p);      /* the writer's own memory, not out */

/* Open the family PREFIX_NAME (prefix NULL: NAME) of type RN_PROM_... */
void rn_prom_family(rn_prom *p, const char *prefix, const char *name, int type,
                    const char *help);

/* A sample of the family open, with n labels (l may be NULL when n is 0). */
void rn_prom_sample(rn_prom *p, const rn_prom_label *l, size_t n, uint64_t v);
void rn_prom_sample_i64(rn_prom *p, const rn_prom_label *l, size_t n, int64_t v);

/* A family of one sample without labels. */
void rn_prom_one(rn_prom *p, const char *prefix, const char *name, int type,
                 const char *help, uint64_t v);

/* Families out of a counters table, one per d[i]: the counter named
 * d[i].counter (an error when cs has none), served as PREFIX_NAME. */
typedef struct rn_prom_desc {
    const char *counter;    /* its name in the rn_counters */
    const char *name;       /* the metric's name after the prefix */
    int type;
    const char *help;
} rn_prom_desc;

void rn_prom_counters(rn_prom *p, const char *prefix, const rn_counters *cs,
                      const rn_prom_desc *d, size_t n);

/* 0, or the first failure (RN_ENOMEM, or RN_ERR for a name) with its
 * reason in err. */
int rn_prom_error(const rn_prom *p, char *err);

/* sig.c -- the signal conventions every runnel tool keeps.
 *
 * SIGINT/SIGTERM (and SIGHUP: the terminal a pipeline runs in went away; no
 * tool reopens files on it) ask the tool to stop reading, flush and exit 0; SIGUSR1 asks
 * for the counters; SIGPIPE is ignored so that a write to a closed pipe fails
 * with EPIPE and the tool can exit quietly. The handlers only set flags, and
 * are installed without SA_RESTART so that a blocking read returns EINTR and
 * the tool sees the flag at once. (Tools built on libuv use uv_signal_t for
 * the same signals instead and call only rn_sig_ignore_pipe.) */

extern volatile sig_atomic_t rn_sig_stop;   /* number of the stop signal, or 0 */
extern volatile sig_atomic_t rn_sig_usr1;   /* set on SIGUSR1; the tool clears it */

int rn_sig_install(char *err);
int rn_sig_ignore_pipe(char *err);

/* input.c -- the input loop of the tools that read a stream (winagg, topk;
 * consume waits the same way on its consumer's descriptor): read what comes,
 * wake at a deadline, and see a signal at once.
 *
 * A tool checks rn_sig_stop and rn_sig_usr1, then sleeps until its input is
 * readable or a deadline passes. A signal that lands between the check and
 * the sleep must not wait for the deadline (or for ever): so SIGINT, SIGTERM,
 * SIGHUP and SIGUSR1 stay blocked everywhere except inside ppoll(2), which unblocks
 * them together with the sleep. One that came after the check is delivered
 * as the wait begins, and the wait returns at once. */

typedef struct rn_input {
    sigset_t waitmask;      /* the thread's signal mask inside the wait */
} rn_input;

/* Install the handlers (rn_sig_install) and block the four signals in the
 * calling thread. Threads created later inherit the block, so the signals
 * go to the thread that waits: call it before creating any (librdkafka's). */
int rn_input_init(rn_input *in, char *err);

enum { RN_INPUT_TIMEOUT = 0, RN_INPUT_READY = 1 };

/* Wait until fd is readable, deadline (on rn_mono_ns's clock; -1: none)
 * has passed, or a signal's handler has run. RN_INPUT_READY: a read will
 * not block (data, the end, a hang-up or an error to read); RN_INPUT_TIMEOUT;
 * RN_EINTR: a handler ran (look at the flags), fd may be readable as well;
 * RN_ERR with errno: ppoll failed, or fd is not open (EBADF). A deadline
 * that has passed (0) makes it a look that does not sleep; fd -1 waits for
 * the deadline or a signal alone. A signal that was pending is delivered
 * even when fd is ready at once. */
int rn_input_wait(const rn_input *in, int fd, int64_t deadline);

/* The same over n descriptors: RN_INPUT_READY when at least one is, with
 * ready[i] set to 1 for each fd[i] a read will not block on and to 0 for the
 * others; a negative fd[i] is not waited on (ready[i] 0), so n descriptors
 * all negative wait for the deadline or a signal alone. RN_ERR with errno
 * EBADF when one of them is not open. The signal guarantees are those of
 * rn_input_wait. */
int rn_input_waitv(const rn_input *in, const int *fd, int *ready, size_t n, int64_t deadline);

/* Deliver the signals that came since the last wait, without waiting: for
 * a loop kept busy, which may go long without a wait. 1 when a handler ran. */
int rn_input_signals(const rn_input *in);

/* ---- the loop over one input ---------------------------------------------
 *
 * Every turn: rn_sig_stop ends it; SIGUSR1 calls on_usr1; then it waits for
 * fd or the owner's deadline and reads what came, RN_INPUT_READ bytes at a
 * time. A regular file is always readable: it is read RN_INPUT_READ_FILE
 * bytes at a time without a wait (when every input is one and there is no
 * side source), so on_idle and on_deadline are not called while it lasts,
 * and the signals are looked at every RN_INPUT_SIGNAL_NS rather than every
 * turn (a stop comes that much later at most).
 * Callbacks that return int return 0 to go on, anything else to stop
 * reading this input (rn_input_run returns RN_INPUT_STOPPED). */

#define RN_INPUT_READ (64 * 1024)
#define RN_INPUT_READ_FILE (256 * 1024)
#define RN_INPUT_SIGNAL_NS 10000000LL

typedef struct rn_input_ops {
    int (*on_bytes)(void *data, const char *buf, size_t n);   /* n > 0 bytes read */
    /* When to call on_deadline next, on rn_mono_ns's clock; -1: not now.
     * Asked before every wait. NULL: never. */
    int64_t (*deadline)(void *data);
    int (*on_deadline)(void *data);
    /* Nothing is waiting to be read and the loop is about to sleep: write
     * out what is buffered. NULL: no such look (it costs a ppoll a turn). */
    int (*on_idle)(void *data);
    void (*on_usr1)(void *data);    /* NULL: rn_sig_usr1 is left set */
    /* A second source of events run beside the input (topk's Redis writer
     * and dashboard, on a libuv loop): the descriptor side_fd gives (-1:
     * none) is waited on with the inputs, and on_side is called after every
     * wait, whatever ended it, to run that source without blocking. Its
     * timers bound the wait through deadline. NULL: none. */
    int (*side_fd)(void *data);
    void (*on_side)(void *data);
    /* Where to read to: a buffer of the owner's with room for at least want
     * bytes (its size in *room), such as rn_decoder_space, handed to
     * on_bytes as it is, so that nothing is copied twice; NULL when out of
     * memory (the loop returns RN_ERR). NULL: the loop's own buffer. Not
     * used with vops. */
    char *(*read_buf)(void *data, size_t want, size_t *room);
} rn_input_ops;

enum { RN_INPUT_END = 0, RN_INPUT_STOPPED = 1 };

/* Read fd to its end: RN_INPUT_END (the owner finishes its decoding),
 * RN_INPUT_STOPPED, RN_EINTR when rn_sig_stop was set, or RN_ERR with err
 * "NAME: reason" when reading failed. */
int rn_input_run(const rn_input *in, int fd, const char *name, const rn_input_ops *ops,
                 void *data, char *err);

/* ---- the loop over several inputs at once ---------------------------------
 *
 * The same turns over n inputs read side by side (topk merging the rows of
 * several winagg processes): each turn waits for any of them, then reads
 * each one that is ready once, so a busy input does not starve the others.
 * With vops, ops->on_bytes is not used; instead: */

typedef struct rn_inputv_ops {
    /* n > 0 bytes read from input i: 0 to go on, RN_INPUT_CLOSE to stop
     * reading input i (the others go on; on_end is not called for it),
     * anything else to stop the loop (RN_INPUT_STOPPED). */
    int (*on_bytes)(void *data, size_t i, const char *buf, size_t n);
    /* Input i reached its end (err NULL) or reading it failed (err is
     * "NAME: reason"); it is not read again. 0 to go on with the others,
     * anything else to stop the loop (RN_INPUT_STOPPED). */
    int (*on_end)(void *data, size_t i, const char *err);
} rn_inputv_ops;

#define RN_INPUT_CLOSE 2

/* Read fd[0..n) (names name[i]) until every one has ended or been closed
 * (vops NULL: as rn_input_run does, ops->on_bytes for every input and a
 * read error the loop's):
 * RN_INPUT_END, RN_INPUT_STOPPED, RN_EINTR when rn_sig_stop was set, or
 * RN_ERR with err when waiting failed or memory ran out. The descriptors
 * stay open (the caller closes them). */
int rn_input_runv(const rn_input *in, const int *fd, const char *const *name, size_t n,
                  const rn_input_ops *ops, const rn_inputv_ops *vops, void *data, char *err);

/* hash.c -- the one hash of keys, wyhash-style (after Wang Yi's wyhash,
 * final version): two 64x64->128 multiplications for keys up to 16 bytes, 48
 * bytes a round beyond. Fast for the short keys logs have (paths, hosts,
 * terms) and good on the low bits, for linear probing. Seeded: keys come from
 * logs an outsider may shape, so every table that holds them draws its own
 * random seed with rn_hash_seed(), and nothing depends on hash order. Always
 * inline, because the window table and Space-Saving hash every event (and
 * gcc calls it out of line where a file has two callers: 5-10% of an update). */

/* A random seed (getrandom; the clock and pid if that fails). */
uint64_t rn_hash_seed(void);

#define RN_HASH_P0 0xa0761d6478bd642fULL
#define RN_HASH_P1 0xe7037ed1a0b428dbULL
#define RN_HASH_P2 0x8ebc6af09c88c6e3ULL
#define RN_HASH_P3 0x589965cc75374cc3ULL

/* a * b as 128 bits: the low half into a, the high half into b. */
static inline void rn_hash__mul128(uint64_t *a, uint64_t *b)
{
#ifdef __SIZEOF_INT128__
    __uint128_t r = (__uint128_t)*a * *b;
    *a = (uint64_t)r;
    *b = (uint64_t)(r >> 64);
#else
    uint64_t ha = *a >> 32, hb = *b >> 32, la = (uint32_t)*a, lb = (uint32_t)*b;
    uint64_t rh = ha * hb, rm0 = ha * lb, rm1 = hb * la, rl = la * lb;
    uint64_t t = rl + (rm0 << 32), c = t < rl, lo = t + (rm1 << 32);
    c += lo < t;
    *a = lo;
    *b = rh + (rm0 >> 32) + (rm1 >> 32) + c;
#endif
}

/* a * b as 128 bits, folded: the low half xor the high half. */
static inline uint64_t rn_hash_mix(uint64_t a, uint64_t b)
{
    rn_hash__mul128(&a, &b);
    return a ^ b;
}

static inline uint64_t rn_hash__rd64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rn_hash__rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

__attribute__((always_inline))
static inline uint64_t rn_hash(const void *key, size_t len, uint64_t seed)
{
    const unsigned char *p = key;
    uint64_t a, b;
    if (len <= 16) {
        if (len >= 4) {
            size_t m = (len >> 3) << 2;
            a = (rn_hash__rd32(p) << 32) | rn_hash__rd32(p + m);
            b = (rn_hash__rd32(p + len - 4) << 32) | rn_hash__rd32(p + len - 4 - m);
        } else if (len > 0) {
            a = ((uint64_t)p[0] << 16) | ((uint64_t)p[len >> 1] << 8) | p[len - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = len;
        if (i > 48) {
            uint64_t s1 = seed, s2 = seed;
            do {
                seed = rn_hash_mix(rn_hash__rd64(p) ^ RN_HASH_P1, rn_hash__rd64(p + 8) ^ seed);
                s1 = rn_hash_mix(rn_hash__rd64(p + 16) ^ RN_HASH_P2, rn_hash__rd64(p + 24) ^ s1);
                s2 = rn_hash_mix(rn_hash__rd64(p + 32) ^ RN_HASH_P3, rn_hash__rd64(p + 40) ^ s2);
                p += 48;
                i -= 48;
            } while (i > 48);
            seed ^= s1 ^ s2;
        }
        while (i > 16) {
            seed = rn_hash_mix(rn_hash__rd64(p) ^ RN_HASH_P1, rn_hash__rd64(p + 8) ^ seed);
            i -= 16;
            p += 16;
        }
        a = rn_hash__rd64(p + i - 16);
        b = rn_hash__rd64(p + i - 8);
    }
    a ^= RN_HASH_P1;
    b ^= seed;
    rn_hash__mul128(&a, &b);
    return rn_hash_mix(a ^ RN_HASH_P0 ^ len, b ^ RN_HASH_P1);
}

/* Whether n bytes at a and b are equal: memcmp(a, b, n) == 0 without the
 * call for n <= 32 (overlapping word loads, as rn_hash reads), which is
 * what the keys, literals and times of log lines are. Inline where a
 * lookup or a match compares bytes for every event. */
__attribute__((always_inline))
static inline int rn_memeq(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a, *q = b;
    if (n >= 8) {
        if (n > 32)
            return memcmp(p, q, n) == 0;
        uint64_t d = (rn_hash__rd64(p) ^ rn_hash__rd64(q))
                     | (rn_hash__rd64(p + n - 8) ^ rn_hash__rd64(q + n - 8));
        if (n > 16)
            d |= (rn_hash__rd64(p + 8) ^ rn_hash__rd64(q + 8))
                 | (rn_hash__rd64(p + n - 16) ^ rn_hash__rd64(q + n - 16));
        return d == 0;
    }
    if (n >= 4)
        return ((rn_hash__rd32(p) ^ rn_hash__rd32(q))
                | (rn_hash__rd32(p + n - 4) ^ rn_hash__rd32(q + n - 4))) == 0;
    if (n == 0)
        return 1;
    return p[0] == q[0] && p[n >> 1] == q[n >> 1] && p[n - 1] == q[n - 1];
}

/* file.c -- files that must survive a crash, and whole reads and writes.
 *
 * Durable replace: a small file (a checkpoint, a position file, a window
 * state, a group's offsets, a rolled output file) is replaced whole, so that
 * a crash leaves either the old one or the new one: write a temporary
 * beside it, fsync it, rename it over the name, fsync the directory (the
 * rename is durable only once the directory is). Without sync the two
 * fsyncs are skipped: that survives kill -9 but not a power loss. */

/* Whole writes and reads; EINTR is retried. 0, or RN_ERR with errno set;
 * rn_pread_full: RN_ESHORT when the file ends first. rn_writev_all and
 * rn_pwritev_full move iov along as they write. */
struct iovec;
int rn_write_all(int fd, const void *buf, size_t len);
int rn_writev_all(int fd, struct iovec *iov, int n);
int rn_pread_full(int fd, void *buf, size_t n, uint64_t off);
int rn_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int rn_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off);
/* The reason for a failed whole read or write r: "file too short", or errno's. */
const char *rn_io_strerror(int r);

/* A read window over [0, end) of a file, so that a scan of many small
 * records costs one pread per window, not one per record: buf holds cap
 * bytes. rn_rd_get: n (<= cap) bytes at off, which the caller has checked
 * lie below end; p points into buf until the next get. 0, or as
 * rn_pread_full. */
typedef struct rn_rd {
    int fd;
    uint64_t end;
    unsigned char *buf;
    size_t cap;
    uint64_t at;        /* file offset of buf[0] */
    size_t len;
} rn_rd;

void rn_rd_init(rn_rd *r, int fd, uint64_t end, unsigned char *buf, size_t cap);
int rn_rd_get(rn_rd *r, uint64_t off, size_t n, const unsigned char **p);

/* Durable replace of NAME in the directory dirfd (AT_FDCWD: NAME is a path).
 * dir names the directory in messages (NULL with AT_FDCWD). The temporary
 * is tmpname, or NAME.tmp when NULL. Write with rn_afile_write, or to fd
 * directly; then commit (fsync if sync, close, rename, fsync the directory
 * if sync) or abort (close, remove the temporary). A failed commit removes
 * the temporary. */
typedef struct rn_afile {
    int fd;
    int dirfd;
    const char *dir;
    char name[4096];
    char tmp[4096];
} rn_afile;

int rn_afile_open(rn_afile *f, int dirfd, const char *dir, const char *name,
                  const char *tmpname, char *err);
int rn_afile_write(rn_afile *f, const void *p, size_t n, char *err);
int rn_afile_commit(rn_afile *f, int sync, char *err);
void rn_afile_abort(rn_afile *f);

/* All of it for bytes in memory. */
int rn_file_replace(int dirfd, const char *dir, const char *name, const void *p, size_t n,
                    int sync, char *err);

/* fsync a directory: dirfd, or (AT_FDCWD) the directory that holds path. */
int rn_fsync_dir(int dirfd, const char *path, char *err);

/* mkdir -p. */
int rn_mkdir_p(const char *dir, char *err);

/* Segments named PREFIX, 20 decimal digits, EXT ("00000000000000000042.log",
 * "wal-00000000000000000042"). rn_seg_list: the numbers of those in the
 * directory dirfd (dir names it in messages), sorted, in a malloc'd array;
 * other(arg, name), if not NULL, is called for every other name but . and ..
 * rn_seg_name_parse: 0 and the number, or RN_ERR when name is not one. */
int rn_seg_list(int dirfd, const char *dir, const char *prefix, const char *ext,
                uint64_t **bases, size_t *nb,
                void (*other)(void *arg, const char *name), void *arg, char *err);
int rn_seg_name_parse(const char *name, const char *prefix, const char *ext, uint64_t *v);

/* crc32c.c -- CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2. */

/* Continue a CRC-32C over n more bytes. Start with crc = 0; the pre- and
 * post-inversion happen inside, so rn_crc32c(rn_crc32c(0, a, n), b, m) is the
 * CRC of a followed by b (like zlib's crc32()). "123456789" gives 0xE3069283.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8. */
uint32_t rn_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable slicing-by-8 path alone, so tests can compare both. */
uint32_t rn_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* stream.c -- the three event stream formats: lines, json, frames.
 *
 *   lines   the body and '\n'. No headers, no timestamp (a reader stamps each
 *           line with the time it was decoded).
 *   json    one object a line: {"ts":NS,"headers":{"k":"v",...},"body":"..."}.
 *           Bytes that are not valid UTF-8 are written as \udcXX (XX = the byte,
 *           80..ff; Python's "surrogateescape"), so a body round-trips byte for
 *           byte while valid text stays readable by jq.
 *   frames  binary: an 8-byte stream header (RN_FRAMES_MAGIC, version byte,
 *           three zero bytes), then per event a 4-byte big-endian length and a
 *           msgpack value [ts:int, headers:map str->str, body:bin] of that
 *           length. The stream header may appear again between frames, so
 *           `cat a.frames b.frames` is a valid stream. A length above the
 *           decoder's max_event is an error, never an allocation.
 *
 * Detection (RN_FMT_AUTO) looks at the first bytes: the frames magic means
 * frames; `{` followed (after blanks) by `"ts"` means json; anything else is
 * lines. Every decoding error names the byte offset in the stream. */

typedef enum rn_format {
    RN_FMT_AUTO = 0,
    RN_FMT_LINES,
    RN_FMT_JSON,
    RN_FMT_FRAMES,
} rn_format;

#define RN_FRAMES_MAGIC "\x89RNF"
#define RN_FRAMES_VERSION 1
#define RN_FRAMES_HEADER_LEN 8
#define RN_FRAMES_HEADER RN_FRAMES_MAGIC "\x01\0\0\0"   /* version 1 */
#define RN_DEFAULT_MAX_EVENT (16u << 20)

/* Return codes besides 1 (an event), 0 (EOF / need more) */

/* "lines", "json", "frames" (not "auto"). */
int rn_format_parse(const char *s, rn_format *fmt, char *err);
const char *rn_format_name(rn_format fmt);

/* ---- decoder: push bytes in, pull events out ---------------------------- */

typedef struct rn_decoder rn_decoder;

/* fmt RN_FMT_AUTO detects from the first bytes. max_event bounds one event's
 * encoded size (a frame, a json line) and a lines body: a longer line is cut
 * to max_event bytes, the rest of it skipped, and counted (rn_decoder_cut).
 * max_event 0 means RN_DEFAULT_MAX_EVENT; above 2^31-1 it is lowered to that.
 * A json line without "ts" is stamped with the time it was fed, like a line;
 * one without "body" is an error. Empty input is no events, in any format. */
rn_decoder *rn_decoder_new(rn_format fmt, size_t max_event);
void rn_decoder_free(rn_decoder *d);

/* Append input. -1 only when out of memory. Events returned before stay valid
 * until the next call to rn_decoder_feed or rn_decoder_next. */
int rn_decoder_feed(rn_decoder *d, const void *buf, size_t len, char *err);

/* Room at the end of the decoder's own buffer for at least want bytes (its
 * size in *room), for a read to fill and rn_decoder_feed to take without
 * copying them; valid until the next call on d. NULL when out of memory. */
char *rn_decoder_space(rn_decoder *d, size_t want, size_t *room);

/* No more input will come: a last line without '\n' becomes an event, a
 * partial frame or json line becomes an error ("truncated"). */
void rn_decoder_eof(rn_decoder *d);

/* 1: *ev holds the next event; 0: needs more input (or, after eof, the end);
 * RN_ERR: corrupt input, err says what and at which byte offset. After an
 * error the decoder returns RN_ERR again. */
int rn_decoder_next(rn_decoder *d, rn_event *ev, char *err);

rn_format rn_decoder_format(const rn_decoder *d);   /* AUTO until detected */
uint64_t rn_decoder_offset(const rn_decoder *d);    /* bytes consumed so far */
uint64_t rn_decoder_cut(const rn_decoder *d);       /* over-long lines cut */

/* ---- reader: a decoder over a blocking descriptor ----------------------- */

typedef struct rn_reader rn_reader;

/* name is used in error messages ("access.log", "stdin"). */
rn_reader *rn_reader_new(int fd, const char *name, rn_format fmt, size_t max_event);
void rn_reader_free(rn_reader *r);

/* 1: an event; 0: end of input; RN_ERR: read error or corrupt input, err says
 * "NAME: byte offset N: reason"; RN_EINTR: interrupted, call again. */
int rn_reader_next(rn_reader *r, rn_event *ev, char *err);
rn_decoder *rn_reader_decoder(rn_reader *r);

/* ---- writer: buffered encoder onto a descriptor -------------------------- */

typedef struct rn_writer rn_writer;

rn_writer *rn_writer_new(int fd, rn_format fmt);   /* fmt is not AUTO */
void rn_writer_free(rn_writer *w);                  /* does not flush */

/* 0; RN_EPIPE when the reader went away; RN_ERR. */
int rn_writer_put(rn_writer *w, const rn_event *ev, char *err);
int rn_writer_flush(rn_writer *w, char *err);

/* p[0..n) is already encoded in the writer's format: lines, each with its
 * '\n', or frames (without the stream header, which the writer puts first).
 * They go out as they are: a producer with whole runs of encoded events
 * skips building events. Not for json. */
int rn_writer_put_raw(rn_writer *w, const char *p, size_t n, char *err);

/* Headers that many events share (a file's name, the host), encoded once
 * for one format. rn_writer_put_with writes them before the event's own:
 * producers of many small events save most of the encoding that way. */
typedef struct rn_hdrset {
    rn_format fmt;
    size_t n;
    rn_buf enc;
} rn_hdrset;

int rn_hdrset_set(rn_hdrset *s, rn_format fmt, const rn_header *h, size_t n);
void rn_hdrset_free(rn_hdrset *s);

/* rn_writer_put, with the shared headers of sh (NULL: none) first. */
int rn_writer_put_with(rn_writer *w, const rn_hdrset *sh, const rn_event *ev, char *err);

/* 0 for lines: a producer may skip building headers nobody will see. */
int rn_writer_wants_headers(const rn_writer *w);

/* Decode one frame's msgpack value, p[0..n) without its length prefix, into
 * ev (which then points into p). NULL, or what is wrong with it. For checking
 * frames in place, as hop batches are. */
const char *rn_frame_parse(const char *p, size_t n, rn_event *ev);

/* Encode one event as fmt into b: a lines or json line with its '\n', or a
 * frame (length prefix and msgpack, without the stream header). -1 on ENOMEM. */
int rn_encode_event(rn_buf *b, rn_format fmt, const rn_event *ev);

/* batch.c -- the event batch: what logtail sends over a hop, the channel
 * stores and the sinks deliver. count events, each a u32 BE length and a
 * msgpack [ts, headers, body]: the frames encoding without its stream
 * header. Checked where it enters (the hop receiver), walked where it is
 * read. Zero-initialise ({0}) before use. */
typedef struct rn_batch {
    rn_buf buf;         /* the events */
    uint32_t count;
} rn_batch;

/* Append ev as a frame. 0, or RN_ENOMEM. */
int rn_batch_add(rn_batch *b, const rn_event *ev);
void rn_batch_reset(rn_batch *b);   /* empty it, keeping its memory */
void rn_batch_free(rn_batch *b);

/* Walk the count events in p[0..len): fn(arg, ev) for each, decoded (ev
 * points into p; fn may be NULL to only check). The events must be valid
 * and add up to exactly len and count: else RN_ECORRUPT, err says which
 * event and what ("event 3 of 10: length 0") and *bad (if not NULL) is its
 * byte offset in p. fn returning < 0 stops the walk with that value. */
int rn_batch_each(const char *p, size_t len, uint32_t count,
                  int (*fn)(void *arg, const rn_event *ev), void *arg, size_t *bad, char *err);

#endif
