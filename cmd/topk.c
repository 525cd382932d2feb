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

static const char usage_text[] =
    "usage: topk [-n N] [-o table|tsv|json|redis] [--redis-prefix P] [--redis-ttl SECS] [FILE ...]\n"
    "       topk -k REGEX [--lower] [-n N] [-m CAPACITY] [--every DURATION] [FILE ...]\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nThe N largest keys of each window of winagg's rows (tsv, json or frames;\n"
          "rows of the same window and key are summed, across inputs), printed once the\n"
          "input has moved past the window and paused for 200 ms, or at the end.\n"
          "With -k: the N most frequent keys of raw events (Space-Saving).\n"
          "With no FILE, or when FILE is -, read standard input.\n\n"
          "  -n, --top N             keys per window or report (default 10)\n"
          "  -o, --output FORMAT     table (default), tsv, json, or redis (commands for\n"
          "                          redis-cli --pipe)\n"
          "      --redis-prefix P    redis key prefix (default topk): P:START, P:latest\n"
          "      --redis-ttl SECS    expire each window's sorted set after SECS seconds\n"
          "\n"
          "  -k, --key REGEX         count the first capture group of REGEX (the whole\n"
          "                          match without a group) in each event\n"
          "      --lower             fold ASCII upper case to lower in keys\n"
          "  -m, --capacity CAPACITY at most CAPACITY counters (default: exact, unbounded)\n"
          "      --every DURATION    also print every DURATION (default: only at the end)\n"
          "\n"
          "  -h, --help              show this help\n"
          "  -V, --version           show the version\n", stdout);
    exit(0);
}

#define PAUSE_NS 200000000LL    /* input quiet this long: the moved-past windows are due */
#define OUT_CHUNK (1u << 20)    /* write out whenever this much output is pending */

typedef struct app {
    /* output */
    rn_buf out;
    int out_gone;           /* stdout closed (EPIPE) or failed: stop */
    int status;
    /* rows form */
    rn_topn *topn;
    rn_topn_fmt fmt;
    rn_rowreader *rows;
    /* -k form */
    rn_ss *ss;
    rn_fieldx *kx;
    int lower;
    rn_buf folded;
    rn_decoder *dec;
    const char *name;       /* of the input being read */
    size_t n;
    rn_ss_item *items;
    int64_t every_ns, next_report;
    int64_t last_input;     /* rn_mono_ns of the last bytes read */
    int match_warned;
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
            rn_warn("stdout: %s", strerror(errno));
            a->status = 1;
        }
        return -1;
    }
    return 0;
}

static int print_window(void *data, const rn_topn_window *w)
{
    app *a = data;
    if (rn_topn_format(&a->out, &a->fmt, w) < 0)
        rn_die("out of memory");
    (*a->c_printed)++;
    if (a->out.len >= OUT_CHUNK)
        return write_out(a);
    return 0;
}

/* Print the windows that are due (all of them at the end). */
static void flush_windows(app *a, int all)
{
    char err[RN_ERRLEN];
    if (a->out_gone)
        return;
    long r = rn_topn_flush(a->topn, all, print_window, a, err);
    if (r < 0 && !a->out_gone)
        rn_die("%s", err);
    if (a->out.len)
        write_out(a);
}

static void report(app *a)
{
    if (a->out_gone)
        return;
    long k = rn_ss_top(a->ss, a->n, a->items, NULL);
    if (k < 0)
        rn_die("out of memory");
    if (rn_ss_format(&a->out, a->ss, a->items, (size_t)k, rn_now_ns(), *a->c_events) < 0)
        rn_die("out of memory");
    write_out(a);
}

static void print_counters(app *a)
{
    char buf[512];
    if (a->topn) {
        *a->c_pending = rn_topn_pending(a->topn);
    } else {
        *a->c_keys = rn_ss_size(a->ss);
        *a->c_evictions = rn_ss_evictions(a->ss);
    }
    rn_counters_format(&a->cs, buf, sizeof buf);
    rn_warn("%s", buf);
}

/* ---- the two forms' input ------------------------------------------------ */

/* Rows: merge; 0, or -1 when the input is malformed (reported). */
static int rows_drain(app *a)
{
    char err[RN_ERRLEN];
    rn_row row;
    int r;
    while ((r = rn_rowreader_next(a->rows, &row, err)) == 1) {
        (*a->c_rows)++;
        switch (rn_topn_add(a->topn, &row, err)) {
        case RN_TOPN_ADDED: break;
        case RN_TOPN_LATE: (*a->c_late)++; break;
        case RN_TOPN_DROPPED: (*a->c_dropped)++; break;
        default: rn_die("%s", err);
        }
    }
    if (r == RN_ERR) {
        rn_warn("%s", err);
        a->status = 1;
        return -1;
    }
    return 0;
}

/* Events: count keys; 0, or -1 when the input is corrupt (reported). */
static int events_drain(app *a)
{
    char err[RN_ERRLEN];
    rn_event ev;
    rn_str key;
    int r;
    while ((r = rn_decoder_next(a->dec, &ev, err)) == 1) {
        (*a->c_events)++;
        int m = rn_fieldx_get(a->kx, ev.body.p, ev.body.n, &key, err);
        if (m < 0 && !a->match_warned++) {
            rn_warn("%s: %s (further failures are only counted)", a->name, err);
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
        rn_warn("%s: %s", a->name, err);
        a->status = 1;
        return -1;
    }
    return 0;
}

static int feed(app *a, const char *buf, size_t n)
{
    char err[RN_ERRLEN];
    if (a->topn) {
        if (rn_rowreader_feed(a->rows, buf, n, err) < 0)
            rn_die("%s", err);
        return rows_drain(a);
    }
    if (rn_decoder_feed(a->dec, buf, n, err) < 0)
        rn_die("%s", err);
    return events_drain(a);
}

static int end_of_file(app *a)
{
    if (a->topn) {
        rn_rowreader_eof(a->rows);
        return rows_drain(a);
    }
    rn_decoder_eof(a->dec);
    return events_drain(a);
}

/* When the loop should wake without input: once the pause makes windows
 * due, or at the next report; -1 for never. */
static int64_t next_deadline(void *data)
{
    app *a = data;
    if (a->topn)
        return rn_topn_ready(a->topn) ? a->last_input + PAUSE_NS : -1;
    return a->every_ns ? a->next_report : -1;
}

static int on_deadline(void *data)
{
    app *a = data;
    if (a->topn) {
        flush_windows(a, 0);
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

static int on_bytes(void *data, const char *buf, size_t n)
{
    app *a = data;
    a->last_input = rn_mono_ns();
    if (feed(a, buf, n) < 0)
        return -1;      /* malformed: the rest of this input is skipped */
    if (!a->topn && a->every_ns && a->last_input >= a->next_report)
        return on_deadline(a);      /* a busy input still gets its reports */
    return 0;
}

static void on_usr1(void *data) { print_counters(data); }

static const rn_input_ops input_ops = {
    .on_bytes = on_bytes,
    .deadline = next_deadline,
    .on_deadline = on_deadline,
    .on_usr1 = on_usr1,
};

/* Read one input to its end (or a stop); 0, or -1 to stop reading inputs. */
static int read_input(app *a, const rn_input *in, int fd, const char *name)
{
    char err[RN_ERRLEN];

    a->name = name;
    a->last_input = rn_mono_ns();
    if (a->topn) {
        if (!(a->rows = rn_rowreader_new(name)))
            rn_die("out of memory");
    } else if (!(a->dec = rn_decoder_new(RN_FMT_AUTO, 0))) {
        rn_die("out of memory");
    }
    int r = rn_input_run(in, fd, name, &input_ops, a, err);
    if (r == RN_INPUT_END) {
        end_of_file(a);
    } else if (r == RN_ERR) {
        rn_warn("%s", err);
        a->status = 1;
    }
    rn_rowreader_free(a->rows);
    a->rows = NULL;
    rn_decoder_free(a->dec);
    a->dec = NULL;
    return r == RN_EINTR || a->out_gone ? -1 : 0;
}

int main(int argc, char **argv)
{
    enum { OPT_PREFIX = 256, OPT_TTL, OPT_LOWER, OPT_EVERY };
    static const struct option longopts[] = {
        { "top", required_argument, NULL, 'n' },
        { "output", required_argument, NULL, 'o' },
        { "redis-prefix", required_argument, NULL, OPT_PREFIX },
        { "redis-ttl", required_argument, NULL, OPT_TTL },
        { "key", required_argument, NULL, 'k' },
        { "lower", no_argument, NULL, OPT_LOWER },
        { "capacity", required_argument, NULL, 'm' },
        { "every", required_argument, NULL, OPT_EVERY },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *regex = NULL, *prefix = NULL, *out_opt = NULL;
    uint64_t n = 10, capacity = 0, ttl = 0;
    int64_t every = 0;
    int lower = 0, have_m = 0, have_every = 0, c;
    char err[RN_ERRLEN];
    app a;

    memset(&a, 0, sizeof a);
    rn_cli_init("topk");
    a.fmt.out = RN_TOPN_TABLE;
    while ((c = getopt_long(argc, argv, "n:o:k:m:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            n = rn_opt_uint("-n", optarg, 1000000);
            if (n == 0)
                rn_usage_error("-n: must be at least 1");
            break;
        case 'o':
            out_opt = optarg;
            if (rn_topn_out_parse(optarg, &a.fmt.out, err) < 0)
                rn_usage_error("-o: %s", err);
            break;
        case OPT_PREFIX: prefix = optarg; break;
        case OPT_TTL:
            ttl = rn_opt_uint("--redis-ttl", optarg, INT32_MAX);
            if (ttl == 0)
                rn_usage_error("--redis-ttl: must be at least 1 second");
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
        case 'h': usage(); break;
        case 'V': rn_version(); break;
        default: rn_usage_error("unknown option");
        }
    }
    if (regex) {
        if (out_opt)
            rn_usage_error("cannot use -o with -k");
        if (prefix || ttl)
            rn_usage_error("cannot use --redis-prefix or --redis-ttl with -k");
        if (have_m && capacity < n)
            rn_usage_error("-m: CAPACITY must be at least N (-n %" PRIu64 ")", n);
    } else {
        if (lower || have_m || have_every)
            rn_usage_error("--lower, -m and --every need -k");
        if ((prefix || ttl) && a.fmt.out != RN_TOPN_REDIS)
            rn_usage_error("--redis-prefix and --redis-ttl need -o redis");
    }
    if (prefix && !*prefix)
        rn_usage_error("--redis-prefix: empty");

    if (regex) {
        if (!(a.kx = rn_fieldx_regex(regex, err)))
            rn_usage_error("-k: %s", err);
        if (!(a.ss = rn_ss_new((size_t)capacity)))
            rn_die("out of memory (-m %" PRIu64 ")", capacity);
        if (!(a.items = malloc((size_t)n * sizeof *a.items)))
            rn_die("out of memory");
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
        a.fmt.prefix = prefix;
        a.fmt.ttl = (int64_t)ttl;
        a.c_rows = rn_counter_add(&a.cs, "rows");
        a.c_printed = rn_counter_add(&a.cs, "printed");
        a.c_pending = rn_counter_add(&a.cs, "pending");
        a.c_late = rn_counter_add(&a.cs, "late");
        a.c_dropped = rn_counter_add(&a.cs, "dropped");
    }

    rn_input in;
    if (rn_input_init(&in, err) < 0)
        rn_die("%s", err);

    int nfiles = argc - optind;
    for (int i = 0; i < (nfiles ? nfiles : 1); i++) {
        const char *path = nfiles ? argv[optind + i] : "-";
        int fd = STDIN_FILENO;
        if (strcmp(path, "-") != 0 && (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
            rn_warn("%s: %s", path, strerror(errno));
            a.status = 1;
            continue;
        }
        int r = read_input(&a, &in, fd, strcmp(path, "-") == 0 ? "stdin" : path);
        if (fd != STDIN_FILENO)
            close(fd);
        if (r < 0)
            break;
    }

    /* The end, or a stop: print what is pending. */
    if (a.topn) {
        flush_windows(&a, 1);
        if (*a.c_late)
            rn_warn("%" PRIu64 " late row%s added to windows already printed, which were "
                    "printed again", *a.c_late, *a.c_late == 1 ? "" : "s");
        if (*a.c_dropped)
            rn_warn("%" PRIu64 " late row%s dropped: their windows were printed and are "
                    "no longer held", *a.c_dropped, *a.c_dropped == 1 ? "" : "s");
    } else {
        report(&a);
    }
    if (rn_sig_usr1)
        print_counters(&a);

    rn_topn_free(a.topn);
    rn_ss_free(a.ss);
    rn_fieldx_free(a.kx);
    free(a.items);
    rn_buf_free(&a.folded);
    rn_buf_free(&a.out);
    return a.status;
}
