/* topk.c -- the N largest keys of each window of winagg rows, or heavy
 * hitters of raw events by Space-Saving. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/core.h"
#include "window/window.h"
#include "results/results.h"

static const char usage_text[] =
    "usage: topk [-n N] [-o table|tsv|json|redis] [--redis URL] [--redis-prefix P]\n"
    "            [--redis-ttl DURATION] [--http ADDR] [--tz ZONE] [-v | -q]\n"
    "            [-k REGEX [--lower] [-m CAPACITY] [--every DURATION]] [FILE ...]\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nThe N largest keys of each window of winagg's rows (tsv, json or frames;\n"
          "rows of the same window and key are summed, across inputs), printed once the\n"
          "watermark of every input has passed the window's end (an input without\n"
          "watermarks: once it has moved past the window and paused for 200 ms), or at\n"
          "the end. The FILEs are read at once, each holding back what it has not passed.\n"
          "With -k: the N most frequent keys of raw events (Space-Saving), FILEs in turn,\n"
          "in a report at the end (and --every DURATION) that goes where windows go.\n"
          "With no FILE, or when FILE is -, read standard input.\n\n"
          "  -n, --top N             keys per window or report (default 10)\n"
          "  -o, --output FORMAT     table (default), tsv, json, or redis (commands for\n"
          "                          redis-cli --pipe)\n"
          "      --redis URL         also write each window into Redis directly:\n"
          "                          redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]\n"
          "      --redis-prefix P    redis key prefix (default topk): P:START, P:latest,\n"
          "                          P:windows\n"
          "      --redis-ttl DURATION  expire each window's sorted set after DURATION\n"
          "      --http ADDR         serve a live dashboard on HOST:PORT (port 0: any);\n"
          "                          after the input ends, until stopped\n"
          "      --tz ZONE           print window bounds in local time in ZONE\n"
          "                          (Europe/Berlin, +08:00), with its offset\n"
          "\n"
          "  -k, --key REGEX         count the first capture group of REGEX (the whole\n"
          "                          match without a group) in each event\n"
          "      --lower             fold ASCII upper case to lower in keys\n"
          "  -m, --capacity CAPACITY at most CAPACITY counters (default: exact, unbounded)\n"
          "      --every DURATION    also print every DURATION (default: only at the end)\n"
          "\n"
          "  -v, --verbose           print the counters at exit\n"
          "  -q, --quiet             no warnings, unless topk then fails\n"
          "  -h, --help              show this help\n"
          "  -V, --version           show the version\n", stdout);
    exit(0);
}

#define PAUSE_NS 200000000LL    /* input quiet this long: the moved-past windows are due */
#define OUT_CHUNK (1u << 20)    /* write out whenever this much output is pending */

/* One input. */
typedef struct source {
    const char *name;
    rn_rowreader *rows;     /* rows form */
    rn_decoder *dec;        /* -k form */
    int open;               /* still being read */
    int has_wm;             /* a watermark came: wm is its highest */
    int64_t wm;
    int64_t last_input;     /* rn_mono_ns of the last bytes read */
} source;

typedef struct app {
    /* output */
    rn_buf out;
    int out_gone;           /* stdout closed (EPIPE) or failed: stop */
    int status;
    /* rows form */
    rn_topn *topn;
    rn_topn_fmt fmt;
    rn_topn_ranks *ranks;   /* table on a terminal: rank moves */
    int *moves;
    /* results beside stdout, on a libuv loop run between reads */
    uv_loop_t loop;         /* initialised when redis or dash is */
    rn_redisw *redis;
    rn_dash *dash;
    /* -k form */
    rn_ss *ss;
    rn_fieldx *kx;
    int lower;
    rn_buf folded;
    size_t n;
    rn_ss_item *items;
    rn_topn_entry *entries;     /* a report as a window */
    int64_t start;              /* when counting began (rn_now_ns) */
    int64_t every_ns, next_report;
    int match_warned;
    /* the inputs being read */
    source *src;
    size_t nsrc;
    /* counters */
    rn_counters cs;
    uint64_t *c_rows, *c_pending, *c_printed, *c_late, *c_dropped;
    uint64_t *c_events, *c_keyed, *c_unmatched, *c_keys, *c_evictions;
} app;

/* ---- output ------------------------------------------------------------ */

static int write_out(app *a)
{
    if (a->out_gone) {
        a->out.len = 0;
        return -1;
    }
    int r = rn_write_all(STDOUT_FILENO, a->out.p, a->out.len);
    a->out.len = 0;
    if (r < 0) {
        a->out_gone = 1;
        if (errno != EPIPE) {
            rn_error("stdout: %s", strerror(errno));
            a->status = 1;
        }
        return -1;
    }
    return 0;
}

/* A window (or a -k report), printed into a->out already, to Redis and the
 * dashboard. */
static void publish(app *a, const rn_topn_window *w)
{
    char err[RN_ERRLEN];
    if (a->redis && rn_redisw_put(a->redis, w, err) < 0)
        rn_die("%s", err);
    if (a->dash && rn_dash_publish(a->dash, w, err) < 0)
        rn_die("%s", err);
}

static int print_window(void *data, const rn_topn_window *w)
{
    app *a = data;
    if (a->ranks && rn_topn_ranks_moves(a->ranks, w, a->moves) < 0)
        rn_die("out of memory");
    if (rn_topn_format(&a->out, &a->fmt, w) < 0)
        rn_die("out of memory");
    publish(a, w);
    (*a->c_printed)++;
    if (a->out.len >= OUT_CHUNK)
        return write_out(a);
    return 0;
}

/* Print the windows with rows not yet printed that end by upto (INT64_MAX:
 * all of them, at the end). */
static void flush_windows(app *a, int64_t upto)
{
    char err[RN_ERRLEN];
    if (a->out_gone)
        return;
    long r = rn_topn_flush_to(a->topn, upto, print_window, a, err);
    if (r < 0 && !a->out_gone)
        rn_die("%s", err);
    if (a->out.len)
        write_out(a);
}

/* -k: the report, a window from the start to now, goes wherever windows go. */
static void report(app *a)
{
    rn_topn_window w;
    if (a->out_gone)
        return;
    long k = rn_ss_top(a->ss, a->n, a->items, NULL);
    if (k < 0)
        rn_die("out of memory");
    rn_ss_window(a->ss, a->items, (size_t)k, a->start, rn_now_ns(), a->entries, &w);
    if (rn_ss_format(&a->out, &a->fmt, a->ss, a->items, &w, *a->c_events) < 0)
        rn_die("out of memory");
    publish(a, &w);
    write_out(a);
}

/* buf holds k bytes: append label and cs's line; the new length. */
static size_t append_counters(char *buf, size_t cap, size_t k, const char *label,
                              const rn_counters *cs)
{
    int n = k < cap ? snprintf(buf + k, cap - k, "%s", label) : 0;
    if (n < 0 || k + (size_t)n >= cap)
        return k;
    k += (size_t)n;
    return k + rn_counters_format(cs, buf + k, cap - k);
}

static void print_counters(app *a, void (*say)(const char *, ...))
{
    char buf[512];
    if (a->topn) {
        *a->c_pending = rn_topn_pending(a->topn);
    } else {
        *a->c_keys = rn_ss_size(a->ss);
        *a->c_evictions = rn_ss_evictions(a->ss);
    }
    size_t k = rn_counters_format(&a->cs, buf, sizeof buf);
    if (a->redis)
        k = append_counters(buf, sizeof buf, k, " redis: ", rn_redisw_counters(a->redis));
    if (a->dash)
        append_counters(buf, sizeof buf, k, " http: ", rn_dash_counters(a->dash));
    say("%s", buf);
}

/* ---- the two forms' input ------------------------------------------------ */

/* Rows: merge, and note the watermarks; 0, or -1 when the input is
 * malformed (reported). */
static int rows_drain(app *a, source *s)
{
    char err[RN_ERRLEN];
    rn_row row;
    int64_t wm;
    int r;
    while ((r = rn_rowreader_next(s->rows, &row, &wm, err)) > 0) {
        if (r == RN_ROWS_WATERMARK) {
            if (!s->has_wm || wm > s->wm)
                s->wm = wm;
            s->has_wm = 1;
            continue;
        }
        (*a->c_rows)++;
        switch (rn_topn_add(a->topn, &row, err)) {
        case RN_TOPN_ADDED: break;
        case RN_TOPN_LATE: (*a->c_late)++; break;
        case RN_TOPN_DROPPED: (*a->c_dropped)++; break;
        default: rn_die("%s", err);
        }
    }
    if (r == RN_ERR) {
        rn_error("%s", err);
        a->status = 1;
        return -1;
    }
    return 0;
}

/* Events: count keys; 0, or -1 when the input is corrupt (reported). */
static int events_drain(app *a, source *s)
{
    char err[RN_ERRLEN];
    rn_event ev;
    rn_str key;
    int r;
    while ((r = rn_decoder_next(s->dec, &ev, err)) == 1) {
        (*a->c_events)++;
        int m = rn_fieldx_get(a->kx, ev.body.p, ev.body.n, &key, err);
        if (m < 0 && !a->match_warned++) {
            rn_error("%s: %s (further failures are only counted)", s->name, err);
            a->status = 1;
        }
        if (m != 1) {
            (*a->c_unmatched)++;
            continue;
        }
        if (a->lower) {
            if (rn_lower(&a->folded, key.p, key.n) < 0)
                rn_die("out of memory");
            key.p = a->folded.p;
        }
        if (rn_ss_add(a->ss, key.p, key.n) < 0)
            rn_die("out of memory");
        (*a->c_keyed)++;
    }
    if (r == RN_ERR) {
        rn_error("%s: %s", s->name, err);
        a->status = 1;
        return -1;
    }
    return 0;
}

static int feed(app *a, source *s, const char *buf, size_t n)
{
    char err[RN_ERRLEN];
    if (a->topn) {
        if (rn_rowreader_feed(s->rows, buf, n, err) < 0)
            rn_die("%s", err);
        return rows_drain(a, s);
    }
    if (rn_decoder_feed(s->dec, buf, n, err) < 0)
        rn_die("%s", err);
    return events_drain(a, s);
}

/* The input is done with (its end, a failure, or malformed input). */
static void source_close(source *s)
{
    s->open = 0;
    rn_rowreader_free(s->rows);
    s->rows = NULL;
    rn_decoder_free(s->dec);
    s->dec = NULL;
}

/* Whether any input has carried a watermark. */
static int any_watermark(const app *a)
{
    for (size_t i = 0; i < a->nsrc; i++)
        if (a->src[i].has_wm)
            return 1;
    return 0;
}

/* The windows that every input still being read is done with: those ending
 * by the least of their watermarks. An input that has carried none yet is
 * done with nothing while another one carries watermarks (it may be a winagg
 * that has seen no event yet); where none does (rows written by hand, an
 * older winagg), with the windows the rows have moved past once it has
 * paused for PAUSE_NS. With every input at its end, all of them. */
static int64_t done_upto(const app *a, int64_t now)
{
    int64_t upto = INT64_MAX, max_end = rn_topn_max_end(a->topn);
    int legacy = !any_watermark(a);
    for (size_t i = 0; i < a->nsrc; i++) {
        const source *s = &a->src[i];
        int64_t u = INT64_MIN;
        if (!s->open)
            continue;
        if (s->has_wm)
            u = s->wm;
        else if (legacy && now - s->last_input >= PAUSE_NS && max_end != INT64_MIN)
            u = max_end - 1;
        if (u < upto)
            upto = u;
    }
    return upto;
}

/* When the loop should wake without input: once the pause of an input
 * without watermarks makes windows due, or at the next report; -1 for
 * never. */
static int64_t windows_deadline(app *a)
{
    if (!a->topn)
        return a->every_ns ? a->next_report : -1;
    if (!rn_topn_ready(a->topn) || any_watermark(a))
        return -1;
    int64_t now = rn_mono_ns(), when = -1;
    for (size_t i = 0; i < a->nsrc; i++) {
        const source *s = &a->src[i];
        int64_t t = s->last_input + PAUSE_NS;
        if (s->open && !s->has_wm && t > now && (when < 0 || t < when))
            when = t;
    }
    return when;
}


/* The loop's next timer (Redis reconnects, the dashboard's keep-alives)
 * bounds the wait too. */
static int64_t next_deadline(void *data)
{
    app *a = data;
    int64_t when = windows_deadline(a);
    if (a->redis || a->dash) {
        int ms = uv_backend_timeout(&a->loop);
        int64_t t = ms < 0 ? -1 : rn_mono_ns() + (int64_t)ms * 1000000;
        if (t >= 0 && (when < 0 || t < when))
            when = t;
    }
    return when;
}

static int side_fd(void *data)
{
    app *a = data;
    return a->redis || a->dash ? uv_backend_fd(&a->loop) : -1;
}

static void on_side(void *data)
{
    app *a = data;
    if (a->redis || a->dash)
        uv_run(&a->loop, UV_RUN_NOWAIT);
}

static int on_deadline(void *data)
{
    app *a = data;
    if (a->topn) {
        flush_windows(a, done_upto(a, rn_mono_ns()));
    } else if (a->every_ns) {
        int64_t now = rn_mono_ns();
        if (now >= a->next_report) {
            report(a);
            while (a->next_report <= now)
                a->next_report += a->every_ns;
        }
    }
    return a->out_gone;
}

static int on_bytes(void *data, size_t i, const char *buf, size_t n)
{
    app *a = data;
    source *s = &a->src[i];
    s->last_input = rn_mono_ns();
    if (feed(a, s, buf, n) < 0) {
        source_close(s);    /* malformed: the rest of this input is skipped */
        if (a->topn)
            flush_windows(a, done_upto(a, s->last_input));
        return a->out_gone ? 1 : RN_INPUT_CLOSE;
    }
    if (a->topn)
        flush_windows(a, done_upto(a, s->last_input));
    else if (a->every_ns && s->last_input >= a->next_report)
        return on_deadline(a);      /* a busy input still gets its reports */
    return a->out_gone;
}

static int on_end(void *data, size_t i, const char *err)
{
    app *a = data;
    source *s = &a->src[i];
    if (err) {
        rn_error("%s", err);
        a->status = 1;
    } else if (a->topn) {
        rn_rowreader_eof(s->rows);
        rows_drain(a, s);
    } else {
        rn_decoder_eof(s->dec);
        events_drain(a, s);
    }
    source_close(s);
    if (a->topn)   /* it no longer holds windows back */
        flush_windows(a, done_upto(a, rn_mono_ns()));
    return a->out_gone;
}

static void on_usr1(void *data) { print_counters(data, rn_report); }

static const rn_input_ops input_ops = {
    .deadline = next_deadline,
    .on_deadline = on_deadline,
    .on_usr1 = on_usr1,
    .side_fd = side_fd,
    .on_side = on_side,
};

static const rn_inputv_ops inputv_ops = { on_bytes, on_end };

/* Read inputs path[0..n) side by side to their ends (or a stop); 0, or -1
 * to stop reading inputs. */
static int read_inputs(app *a, const rn_input *in, char **path, size_t n)
{
    char err[RN_ERRLEN];
    int *fd = calloc(n, sizeof *fd);
    const char **name = calloc(n, sizeof *name);
    size_t k = 0;

    if (!fd || !name || !(a->src = calloc(n, sizeof *a->src)))
        rn_die("out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *p = path[i];
        int stdin_ = strcmp(p, "-") == 0;
        int f = stdin_ ? STDIN_FILENO : open(p, O_RDONLY | O_CLOEXEC);
        if (f < 0) {
            rn_error("%s: %s", p, strerror(errno));
            a->status = 1;
            continue;
        }
        source *s = &a->src[k];
        s->name = stdin_ ? "stdin" : p;
        s->open = 1;
        s->last_input = rn_mono_ns();
        if (a->topn ? !(s->rows = rn_rowreader_new(s->name))
                    : !(s->dec = rn_decoder_new(RN_FMT_AUTO, 0)))
            rn_die("out of memory");
        fd[k] = f;
        name[k++] = s->name;
    }
    a->nsrc = k;
    int r = rn_input_runv(in, fd, name, k, &input_ops, &inputv_ops, a, err);
    if (r == RN_ERR) {
        rn_error("%s", err);
        a->status = 1;
    }
    for (size_t i = 0; i < k; i++) {
        source_close(&a->src[i]);
        if (fd[i] != STDIN_FILENO)
            close(fd[i]);
    }
    free(a->src);
    a->src = NULL;
    a->nsrc = 0;
    free(fd);
    free(name);
    return r == RN_EINTR || r == RN_ERR || a->out_gone ? -1 : 0;
}

/* ---- results beside stdout -------------------------------------------------- */

static void results_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

static void results_start(app *a, const char *redis_url, const char *prefix, int64_t ttl,
                          const char *http)
{
    char err[RN_ERRLEN];
    if (uv_loop_init(&a->loop) < 0)
        rn_die("cannot start an event loop");
    rn_redisw_opts ro = { .url = redis_url, .prefix = prefix, .tz = a->fmt.tz, .ttl_ns = ttl,
                          .on_warn = results_warn, .data = a };
    if (redis_url && !(a->redis = rn_redisw_new(&a->loop, &ro, err)))
        rn_usage_error("--redis: %s", err);
    rn_dash_opts dopt = { .on_warn = results_warn, .data = a };
    if (http) {
        if (!(a->dash = rn_dash_new(&a->loop, &dopt, err)))
            rn_die("%s", err);
        if (rn_dash_listen(a->dash, http, err) < 0)
            rn_die("--http: %s", err);
        rn_warn("dashboard on http://%s/", rn_dash_address(a->dash));
    }
}

/* The input has ended: a dashboard goes on showing the last windows until
 * the user stops topk. */
static void results_serve(app *a, const rn_input *in)
{
    if (!a->dash || rn_sig_stop)
        return;
    rn_warn("input ended; serving the dashboard on http://%s/ until stopped",
            rn_dash_address(a->dash));
    while (!rn_sig_stop) {
        if (rn_sig_usr1) {
            rn_sig_usr1 = 0;
            print_counters(a, rn_report);
        }
        int64_t deadline = next_deadline(a);
        int fd = uv_backend_fd(&a->loop);
        if (rn_input_wait(in, fd, deadline) == RN_ERR)
            rn_die("poll: %s", strerror(errno));
        uv_run(&a->loop, UV_RUN_NOWAIT);
    }
}

static void redis_closed(void *data)
{
    (void)data;
}

/* What Redis has not taken yet gets up to REDIS_DRAIN_NS; then every handle
 * closes. */
#define REDIS_DRAIN_NS 5000000000LL

static void results_stop(app *a)
{
    if (!a->redis && !a->dash)
        return;
    if (a->redis)
        rn_redisw_close(a->redis, REDIS_DRAIN_NS, redis_closed);
    if (a->dash)
        rn_dash_close(a->dash);
    uv_run(&a->loop, UV_RUN_DEFAULT);
    if (a->redis) {
        rn_redisw_free(a->redis);
        a->redis = NULL;
    }
    if (a->dash) {
        rn_dash_free(a->dash);
        a->dash = NULL;
    }
    if (uv_loop_close(&a->loop) < 0)
        rn_warn("event loop: handles left open at exit");
}

int main(int argc, char **argv)
{
    enum { OPT_PREFIX = 256, OPT_TTL, OPT_LOWER, OPT_EVERY, OPT_REDIS, OPT_HTTP, OPT_TZ };
    static const struct option longopts[] = {
        { "top", required_argument, NULL, 'n' },
        { "output", required_argument, NULL, 'o' },
        { "redis-prefix", required_argument, NULL, OPT_PREFIX },
        { "redis-ttl", required_argument, NULL, OPT_TTL },
        { "redis", required_argument, NULL, OPT_REDIS },
        { "http", required_argument, NULL, OPT_HTTP },
        { "tz", required_argument, NULL, OPT_TZ },
        { "key", required_argument, NULL, 'k' },
        { "lower", no_argument, NULL, OPT_LOWER },
        { "capacity", required_argument, NULL, 'm' },
        { "every", required_argument, NULL, OPT_EVERY },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *regex = NULL, *prefix = NULL, *redis_url = NULL,
               *http = NULL;
    uint64_t n = 10, capacity = 0;
    int64_t ttl = 0;
    int64_t every = 0;
    int lower = 0, have_m = 0, have_every = 0, c;
    char err[RN_ERRLEN];
    app a;

    memset(&a, 0, sizeof a);
    rn_cli_init("topk");
    a.fmt.out = RN_TOPN_TABLE;
    while ((c = rn_getopt(argc, argv, "n:o:k:m:vqhV", longopts)) != -1) {
        switch (c) {
        case 'n':
            n = rn_opt_uint("-n", optarg, 1000000);
            if (n == 0)
                rn_usage_error("-n: must be at least 1");
            break;
        case 'o':
            if (rn_topn_out_parse(optarg, &a.fmt.out, err) < 0)
                rn_usage_error("-o: %s", err);
            break;
        case OPT_PREFIX: prefix = optarg; break;
        case OPT_TTL:
            ttl = rn_opt_duration("--redis-ttl", optarg);
            if (ttl < 1000000000LL || ttl > (int64_t)INT32_MAX * 1000000000LL)
                rn_usage_error("--redis-ttl: must be from 1s to %" PRId32 "s", INT32_MAX);
            break;
        case OPT_REDIS: redis_url = optarg; break;
        case OPT_HTTP: http = optarg; break;
        case OPT_TZ:
            rn_tz_free(a.fmt.tz);
            if (!(a.fmt.tz = rn_tz_new(optarg, err)))
                rn_usage_error("--tz: %s", err);
            break;
        case 'k': regex = optarg; break;
        case OPT_LOWER: lower = 1; break;
        case 'm':
            capacity = rn_opt_uint("-m", optarg, RN_SS_MAX_CAPACITY);
            if (capacity == 0)
                rn_usage_error("-m: must be at least 1");
            have_m = 1;
            break;
        case OPT_EVERY:
            every = rn_opt_duration("--every", optarg);
            if (every < 1000000)
                rn_usage_error("--every: must be at least 1ms");
            have_every = 1;
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (regex && have_m && capacity < n)
        rn_usage_error("-m: CAPACITY must be at least N (-n %" PRIu64 ")", n);
    if (!regex && (lower || have_m || have_every))
        rn_usage_error("--lower, -m and --every need -k");
    if ((prefix || ttl) && a.fmt.out != RN_TOPN_REDIS && !redis_url)
        rn_usage_error("--redis-prefix and --redis-ttl need --redis or -o redis");
    if (prefix && !*prefix)
        rn_usage_error("--redis-prefix: empty");
    a.fmt.prefix = prefix;
    a.fmt.ttl = (ttl + 999999999) / 1000000000;     /* EXPIRE takes seconds */

    if (regex) {
        if (!(a.kx = rn_fieldx_regex(regex, err)))
            rn_usage_error("-k: %s", err);
        if (!(a.ss = rn_ss_new((size_t)capacity)))
            rn_die("out of memory (-m %" PRIu64 ")", capacity);
        if (!(a.items = malloc((size_t)n * sizeof *a.items))
            || !(a.entries = malloc((size_t)n * sizeof *a.entries)))
            rn_die("out of memory");
        a.start = rn_now_ns();
        a.lower = lower;
        a.n = (size_t)n;
        a.every_ns = every;
        a.next_report = rn_mono_ns() + every;
        a.c_events = rn_counter_add(&a.cs, "events");
        a.c_keyed = rn_counter_add(&a.cs, "keyed");
        a.c_unmatched = rn_counter_add(&a.cs, "unmatched");
        a.c_keys = rn_counter_add(&a.cs, "keys");
        a.c_evictions = rn_counter_add(&a.cs, "evictions");
    } else {
        if (!(a.topn = rn_topn_new((size_t)n, RN_TOPN_KEEP)))
            rn_die("out of memory");
        /* A person watching: each window replaces the last, with moves. */
        if (a.fmt.out == RN_TOPN_TABLE && isatty(STDOUT_FILENO)) {
            if (!(a.ranks = rn_topn_ranks_new()) || !(a.moves = calloc((size_t)n, sizeof(int))))
                rn_die("out of memory");
            a.fmt.screen = 1;
            a.fmt.moves = a.moves;
        }
        a.c_rows = rn_counter_add(&a.cs, "rows");
        a.c_printed = rn_counter_add(&a.cs, "printed");
        a.c_pending = rn_counter_add(&a.cs, "pending");
        a.c_late = rn_counter_add(&a.cs, "late");
        a.c_dropped = rn_counter_add(&a.cs, "dropped");
    }

    rn_input in;
    if (rn_input_init(&in, err) < 0)
        rn_die("%s", err);
    if (redis_url || http)
        results_start(&a, redis_url, prefix, ttl, http);

    /* Rows are read from every input at once, each holding back the windows
     * it has not passed; events one input after the other. */
    static char *dash[] = { "-" };
    char **paths = argc > optind ? argv + optind : dash;
    size_t npaths = argc > optind ? (size_t)(argc - optind) : 1;
    if (a.topn)
        read_inputs(&a, &in, paths, npaths);
    else
        for (size_t i = 0; i < npaths && read_inputs(&a, &in, paths + i, 1) == 0; i++)
            ;

    /* The end, or a stop: print what is pending. */
    if (a.topn) {
        flush_windows(&a, INT64_MAX);
        if (*a.c_late)
            rn_warn("%" PRIu64 " late row%s added to windows already printed, which were "
                    "printed again", *a.c_late, *a.c_late == 1 ? "" : "s");
        if (*a.c_dropped)
            rn_warn("%" PRIu64 " late row%s dropped: their windows were printed and are "
                    "no longer held", *a.c_dropped, *a.c_dropped == 1 ? "" : "s");
    } else {
        report(&a);
    }
    results_serve(&a, &in);
    if (rn_sig_usr1)
        print_counters(&a, rn_report);
    else
        print_counters(&a, rn_info);
    results_stop(&a);

    rn_topn_free(a.topn);
    rn_topn_ranks_free(a.ranks);
    rn_tz_free(a.fmt.tz);
    free(a.moves);
    rn_ss_free(a.ss);
    rn_fieldx_free(a.kx);
    free(a.items);
    free(a.entries);
    rn_buf_free(&a.folded);
    rn_buf_free(&a.out);
    return rn_cli_exit(a.status);
}
