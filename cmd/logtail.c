/* logtail.c -- follow log files across rotation and restarts; write events. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "cli.h"
#include "core/core.h"
#include "tail/tail.h"

static const char usage_text[] =
    "usage: logtail [-o lines|json|frames | --to tcp://HOST:PORT[,HOST:PORT ...]] [--pos FILE]\n"
    "               [--start beginning|end] [--once] [--max-line SIZE] [--exec CMD [--restart]]\n"
    "               [--timeout DURATION] [--metrics ADDR] [-v | -q] [FILE | GLOB | -] ...\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nFollow files by name across rotation (like tail -F) and write each line as\n"
          "an event. With no FILE and no --exec, read standard input.\n\n"
          "  -o, --output FORMAT   lines (default), json or frames\n"
          "      --to URL          send to chanbuf --listen (tcp://HOST:PORT,...\n"
          "                        [?mode=failover|balance]); --pos then advances\n"
          "                        only for acknowledged lines\n"
          "      --pos FILE        save positions to FILE, resume from it\n"
          "      --start WHERE     where files with no position begin: beginning\n"
          "                        (default with --pos) or end (default without)\n"
          "      --once            read to the current end of every file, then exit\n"
          "      --max-line SIZE   cut longer lines to SIZE bytes (default 1MiB)\n"
          "      --exec CMD        read the output of sh -c CMD\n"
          "      --restart         run CMD again 1s after it exits\n"
          "      --timeout DURATION\n"
          "                        --to: how long a stop waits for acks (default 10s)\n"
          "      --metrics ADDR    serve counters for Prometheus on http://ADDR/metrics\n"
          "                        (HOST:PORT, or :PORT for 127.0.0.1:PORT)\n"
          "  -v, --verbose         print the counters at exit\n"
          "  -q, --quiet           no warnings, unless logtail then fails\n"
          "  -h, --help            show this help\n"
          "  -V, --version         show the version\n", stdout);
    exit(0);
}

typedef struct app {
    rn_writer *out;
    rn_tailhop *hop;        /* --to */
    rn_tail *tail;
    char host[256];
    size_t hostlen;
    int headers;        /* the output format carries headers */
    int out_failed;     /* stdout is gone (EPIPE) or broken */
    int out_status;     /* exit status the output failure calls for */
    size_t max_line;
    uint64_t cut_warned;
    rn_format fmt;
    rn_hdrset shared;       /* file or command, and host: for lines of one source */
    uint64_t shared_id;     /* the source they were made for (ids start at 1) */
    int64_t ts_cached;      /* lines read together share a ts: format it once */
    char ts[24];
    size_t tslen;
} app;

static int fail_output(app *a, int r, const char *err)
{
    if (!a->out_failed) {
        a->out_failed = 1;
        if (r != RN_EPIPE) {
            rn_error("stdout: %s", err);
            a->out_status = 1;
        }
    }
    return -1;
}

/* The headers every line of l's source carries, encoded once per source. */
static int set_shared(app *a, const rn_line *l)
{
    if (a->shared_id == l->source_id)
        return 0;
    rn_header h[2];
    size_t n = 0;
    if (l->is_file) {
        h[n++] = (rn_header){ { "file", 4 }, { l->source, l->source_len } };
    } else if (strcmp(l->source, "stdin") != 0) {
        h[n++] = (rn_header){ { "command", 7 }, { l->source, l->source_len } };
    }
    h[n++] = (rn_header){ { "host", 4 }, { a->host, a->hostlen } };
    a->shared_id = l->source_id;
    return rn_hdrset_set(&a->shared, a->fmt, h, n);
}

/* --to: the same headers as frames output, each on the event. */
static int to_hop(app *a, const rn_line *l, rn_event *ev)
{
    char off[24], ts[24];
    if (l->is_file) {
        rn_event_add_header(ev, "file", 4, l->source, l->source_len);
        rn_event_add_header(ev, "offset", 6, off, rn_u64_dec(l->offset, off));
    } else if (strcmp(l->source, "stdin") != 0) {
        rn_event_add_header(ev, "command", 7, l->source, l->source_len);
    }
    rn_event_add_header(ev, "host", 4, a->host, a->hostlen);
    rn_event_add_header(ev, "ts", 2, ts, rn_u64_dec((uint64_t)l->ts, ts));
    if (rn_tailhop_put(a->hop, ev) < 0)
        rn_die("out of memory");
    return 0;
}

static int on_line(void *data, const rn_line *l)
{
    app *a = data;
    rn_event ev;
    char off[24], err[RN_ERRLEN];

    if (a->out_failed)
        return -1;
    if (l->cut && a->cut_warned++ == 0)
        rn_warn("%s: line at byte offset %" PRIu64 " longer than %zu bytes, cut "
                "(further cuts are only counted)", l->source, l->offset, a->max_line);
    rn_event_clear(&ev);
    ev.ts = l->ts;
    ev.body.p = l->data;
    ev.body.n = l->len;
    if (a->hop)
        return to_hop(a, l, &ev);
    if (a->headers) {
        if (set_shared(a, l) < 0)
            rn_die("out of memory");
        if (l->is_file)
            rn_event_add_header(&ev, "offset", 6, off, rn_u64_dec(l->offset, off));
        if (l->ts != a->ts_cached || !a->tslen) {
            a->ts_cached = l->ts;
            a->tslen = rn_u64_dec((uint64_t)l->ts, a->ts);
        }
        rn_event_add_header(&ev, "ts", 2, a->ts, a->tslen);
    }
    int r = rn_writer_put_with(a->out, a->headers ? &a->shared : NULL, &ev, err);
    return r < 0 ? fail_output(a, r, err) : 0;
}

/* Lines output: whole runs of lines go out as they were read. */
static int on_lines(void *data, const char *p, size_t n, size_t nlines)
{
    app *a = data;
    char err[RN_ERRLEN];
    (void)nlines;
    if (a->out_failed)
        return -1;
    int r = rn_writer_put_raw(a->out, p, n, err);
    return r < 0 ? fail_output(a, r, err) : 0;
}

static int on_flush(void *data)
{
    app *a = data;
    char err[RN_ERRLEN];
    if (a->hop)
        return 0;
    if (a->out_failed)
        return -1;
    int r = rn_writer_flush(a->out, err);
    return r < 0 ? fail_output(a, r, err) : 0;
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

static void print_counters(app *a, void (*say)(const char *, ...))
{
    char buf[1024];
    size_t n = rn_counters_format(rn_tail_counters(a->tail), buf, sizeof buf);
    if (a->hop && n < sizeof buf - 2) {
        strcpy(buf + n, " ");
        rn_counters_format(rn_tailhop_counters(a->hop), buf + n + 1, sizeof buf - n - 1);
    }
    say("%s", buf);
}

static void collect(void *data, rn_prom *p)
{
    app *a = data;
    rn_tail_metrics(a->tail, p, "runnel_logtail");
    if (a->hop)
        rn_tailhop_metrics(a->hop, p, "runnel_logtail");
}

static void on_signal(uv_signal_t *h, int sig)
{
    app *a = h->data;
    if (sig == SIGUSR1) {
        print_counters(a, rn_report);
        return;
    }
    if (a->hop)
        rn_tailhop_stop(a->hop);
    rn_tail_stop(a->tail);
}

static void on_tail_stop(void *data)
{
    app *a = data;
    if (a->hop)
        rn_tailhop_finish(a->hop);
}

/* After each turn of the loop: what was read this turn goes out now, so a
 * follower sees a line within one turn of its write. */
static void on_check(uv_check_t *h)
{
    app *a = h->data;
    if (a->hop)
        rn_tailhop_turn(a->hop);
    else
        on_flush(a);
}

/* Following a thousand files needs a thousand descriptors. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    enum { OPT_POS = 256, OPT_START, OPT_ONCE, OPT_MAXLINE, OPT_EXEC, OPT_RESTART, OPT_TO,
           OPT_TIMEOUT, OPT_METRICS };
    static const struct option longopts[] = {
        { "output", required_argument, NULL, 'o' },
        { "pos", required_argument, NULL, OPT_POS },
        { "start", required_argument, NULL, OPT_START },
        { "once", no_argument, NULL, OPT_ONCE },
        { "max-line", required_argument, NULL, OPT_MAXLINE },
        { "exec", required_argument, NULL, OPT_EXEC },
        { "restart", no_argument, NULL, OPT_RESTART },
        { "to", required_argument, NULL, OPT_TO },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    rn_format fmt = RN_FMT_LINES;
    rn_tail_opts o = {
        .scan_ns = 250000000, .rotate_wait_ns = 5000000000LL,
        .commit_ns = 1000000000, .restart_ns = 1000000000,
        .max_line = 1 << 20,
        .on_line = on_line, .on_flush = on_flush, .on_warn = on_warn,
        .on_stop = on_tail_stop,
    };
    rn_tailhop_opts ho = { .drain_ns = 10000000000LL, .on_warn = on_warn };
    const char *to = NULL, *metrics = NULL;
    int fmt_set = 0;
    const char *start = NULL;
    const char *execs[64];
    size_t nexec = 0;
    int restart = 0, c;
    char err[RN_ERRLEN];
    app a;

    memset(&a, 0, sizeof a);
    rn_cli_init("logtail");
    while ((c = rn_getopt(argc, argv, "o:vqhV", longopts)) != -1) {
        switch (c) {
        case 'o':
            if (rn_format_parse(optarg, &fmt, err) < 0)
                rn_usage_error("-o: %s", err);
            fmt_set = 1;
            break;
        case OPT_TO:
            if (rn_hop_url_parse(optarg, &ho.url, err) < 0)
                rn_usage_error("--to: %s", err);
            to = optarg;
            break;
        case OPT_POS: o.pos_path = optarg; break;
        case OPT_START: start = optarg; break;
        case OPT_ONCE: o.once = 1; break;
        case OPT_MAXLINE:
            o.max_line = (size_t)rn_opt_size("--max-line", optarg);
            if (o.max_line == 0 || o.max_line > (1u << 30))
                rn_usage_error("--max-line: must be between 1 byte and 1GiB");
            break;
        case OPT_EXEC:
            if (nexec == sizeof execs / sizeof execs[0])
                rn_usage_error("--exec: at most 64 commands");
            execs[nexec++] = optarg;
            break;
        case OPT_RESTART: restart = 1; break;
        case OPT_TIMEOUT:
            if ((ho.drain_ns = rn_opt_duration("--timeout", optarg)) < 1000000)
                rn_usage_error("--timeout: must be at least 1ms");
            break;
        case OPT_METRICS: metrics = rn_cli_metrics_opt(optarg); break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (to && fmt_set)
        rn_usage_error("cannot use -o with --to");
    if (to && o.max_line > RN_HOP_MAX_BATCH_BYTES / 2)
        rn_usage_error("--max-line: at most 8MiB with --to");
    if (restart && !nexec)
        rn_usage_error("--restart needs --exec");
    if (restart && o.once)
        rn_usage_error("cannot use --restart with --once");
    if (start && strcmp(start, "beginning") != 0 && strcmp(start, "end") != 0)
        rn_usage_error("--start: '%s' is neither 'beginning' nor 'end'", start);
    /* With a position file nothing may be skipped: a file that appeared
     * while logtail was down is read whole. Without one, act like tail -F. */
    o.start_at_end = start ? strcmp(start, "end") == 0 : !o.pos_path;

    if (gethostname(a.host, sizeof a.host - 1) < 0)
        strcpy(a.host, "localhost");
    a.hostlen = strlen(a.host);
    a.max_line = o.max_line;
    a.out = rn_writer_new(STDOUT_FILENO, fmt);
    if (!a.out)
        rn_die("out of memory");
    a.headers = rn_writer_wants_headers(a.out);
    a.fmt = fmt;
    o.data = &a;
    if (fmt == RN_FMT_LINES && !to)
        o.on_lines = on_lines;
    raise_fd_limit();
    if (rn_sig_ignore_pipe(err) < 0)
        rn_die("%s", err);

    uv_loop_t *loop = uv_default_loop();
    if (to) {
        o.manual_commit = 1;
        ho.pos_path = o.pos_path;
        if (!(a.hop = rn_tailhop_new(loop, &ho, err)))
            rn_die("%s", err);
    }
    a.tail = rn_tail_new(loop, &o, err);
    if (!a.tail)
        rn_die("%s", err);
    if (a.hop)
        rn_tailhop_attach(a.hop, a.tail);
    int nsrc = 0;
    for (int i = optind; i < argc; i++, nsrc++) {
        int r = strcmp(argv[i], "-") == 0 ? rn_tail_add_stdin(a.tail, err)
                                          : rn_tail_add_path(a.tail, argv[i], err);
        if (r < 0)
            rn_usage_error("%s", err);
    }
    for (size_t i = 0; i < nexec; i++, nsrc++)
        if (rn_tail_add_exec(a.tail, execs[i], restart, err) < 0)
            rn_die("%s", err);
    if (!nsrc && rn_tail_add_stdin(a.tail, err) < 0)
        rn_die("%s", err);

    uv_signal_t sigs[4];
    int signums[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, &sigs[i]);
        sigs[i].data = &a;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
        uv_unref((uv_handle_t *)&sigs[i]);   /* they alone do not keep us running */
    }
    uv_check_t check;
    uv_check_init(loop, &check);
    check.data = &a;
    uv_check_start(&check, on_check);
    uv_unref((uv_handle_t *)&check);

    rn_metrics *m = rn_cli_metrics_start(loop, metrics, 1, collect, &a);
    int status = 0;
    if (rn_tail_start(a.tail, err) < 0) {
        rn_error("%s", err);
        rn_tail_stop(a.tail);
        status = 1;
    }
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_close(m);
    on_flush(&a);

    uint64_t cut = rn_counter_get(rn_tail_counters(a.tail), "cut");
    if (cut)
        rn_warn("%" PRIu64 " line%s longer than %zu bytes cut", cut, cut == 1 ? "" : "s",
                o.max_line);
    if (rn_tail_failed(a.tail) || (a.hop && rn_tailhop_failed(a.hop)))
        status = 1;
    if (a.hop && rn_tailhop_unfinished(a.hop)) {
        /* Read and never delivered, without --pos: an error. */
        (o.pos_path ? rn_warn : rn_error)("stopped with lines not acknowledged: %s",
                                          o.pos_path ? "they are read again from the positions"
                                                     : "they are lost (no --pos)");
        if (!o.pos_path)
            status = 1;
    }
    if (a.out_status)
        status = a.out_status;
    print_counters(&a, rn_info);

    for (int i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_close((uv_handle_t *)&check, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_free(m);
    uv_loop_close(loop);
    rn_tail_free(a.tail);
    rn_tailhop_free(a.hop);
    rn_writer_free(a.out);
    rn_hdrset_free(&a.shared);
    return rn_cli_exit(status);
}
