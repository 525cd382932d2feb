/* consume.c -- read a topic into a pipeline, live or from cron. */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "kafka/kafka.h"
#include "core/core.h"

static const char usage_text[] =
    "usage: consume -b BROKERS -t TOPIC [-p PARTITION] [-G GROUP]\n"
    "               [--start beginning|end|N|-N|@EPOCH_MS] [-e] [-c COUNT]\n"
    "               [-o lines|json|frames] [--order-wait DURATION]\n"
    "               [--timeout DURATION] [--metrics ADDR] [-X NAME=VALUE ...]\n"
    "               [-F FILE] [-v | -q]\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nRead a topic from any Kafka-protocol broker and write its records as\n"
          "events: alone (every partition, or -p) or as a member of group -G.\n\n"
          "  -b, --brokers LIST     host:port[,host:port...]\n"
          "  -t, --topic TOPIC      the topic\n"
          "  -p, --partition N      only partition N (not with -G)\n"
          "  -G, --group GROUP      join GROUP; resume from its committed offsets\n"
          "      --start WHERE      where to start without a committed offset:\n"
          "                         beginning, end (default), N, -N (N back from\n"
          "                         the end), @EPOCH_MS (the first at or after)\n"
          "  -e, --once             exit 0 once every assigned partition is read\n"
          "  -c, --count COUNT      exit after COUNT events\n"
          "  -o, --output FORMAT    lines (default: the value), json or frames\n"
          "      --order-wait DURATION\n"
          "                         several partitions: oldest record first, waiting\n"
          "                         at most this long for a partition with more to\n"
          "                         fetch (default 500ms; 0: as fetched)\n"
          "      --timeout DURATION bound on reaching the brokers, with -e on waiting\n"
          "                         for the topic to exist, and on the commit at exit\n"
          "                         (default 10s)\n"
          "      --metrics ADDR     serve counters for Prometheus on http://ADDR/metrics\n"
          "                         (HOST:PORT, or :PORT for 127.0.0.1:PORT)\n"
          "  -X, --property NAME=VALUE\n"
          "                         a librdkafka property (repeatable), e.g.\n"
          "                         -X security.protocol=SASL_SSL\n"
          "  -F, --property-file FILE\n"
          "                         librdkafka properties, NAME=VALUE lines\n"
          "  -v, --verbose          print the counters at exit\n"
          "  -q, --quiet            no warnings, unless consume then fails\n"
          "  -h, --help             show this help\n"
          "  -V, --version          show the version\n", stdout);
    exit(0);
}

/* A stop signal while closing: the close is bounded by --timeout, and
 * this ends it at once. */
static void on_second_stop(int sig)
{
    static const char msg[] = "consume: stopped again: exiting without waiting for the commit\n";
    (void)sig;
    if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

/* From here a SIGINT or SIGTERM exits at once. */
static void stop_means_exit(void)
{
    struct sigaction sa;
    sigset_t stops;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_second_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigemptyset(&stops);
    sigaddset(&stops, SIGINT);
    sigaddset(&stops, SIGTERM);
    sigaddset(&stops, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &stops, NULL);   /* one that is pending comes now */
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

/* --metrics: a libuv loop of its own beside the consumer's wait, run
 * without blocking after every wait and every batch written. */
typedef struct side {
    uv_loop_t loop;
    rn_metrics *m;
    rn_kcons *k;
} side;

static void collect(void *data, rn_prom *p)
{
    side *s = data;
    if (s->k)
        rn_kcons_metrics(s->k, p, "runnel_consume");
}

/* Wait for the consumer's descriptor (and the loop's) until deadline. */
static int wait_input(const rn_input *in, side *s, int64_t deadline)
{
    int fd[2] = { rn_kcons_fd(s->k), s->m ? uv_backend_fd(&s->loop) : -1 }, ready[2];
    int ms = s->m ? uv_backend_timeout(&s->loop) : -1;
    if (ms >= 0 && rn_mono_ns() + ms * 1000000LL < deadline)
        deadline = rn_mono_ns() + ms * 1000000LL;
    int r = rn_input_waitv(in, fd, ready, s->m ? 2 : 1, deadline);
    if (s->m)
        uv_run(&s->loop, UV_RUN_NOWAIT);
    return r;
}

int main(int argc, char **argv)
{
    enum { OPT_START = 256, OPT_TIMEOUT, OPT_ORDER_WAIT, OPT_METRICS, OPT_OLD_OFFSET,
           OPT_OLD_EXIT };
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "topic", required_argument, NULL, 't' },
        { "partition", required_argument, NULL, 'p' },
        { "group", required_argument, NULL, 'G' },
        { "start", required_argument, NULL, OPT_START },
        { "once", no_argument, NULL, 'e' },
        { "count", required_argument, NULL, 'c' },
        { "output", required_argument, NULL, 'o' },
        { "order-wait", required_argument, NULL, OPT_ORDER_WAIT },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "property", required_argument, NULL, 'X' },
        { "property-file", required_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        /* old spellings, until the next release */
        { "offset", required_argument, NULL, OPT_OLD_OFFSET },
        { "exit-at-end", no_argument, NULL, OPT_OLD_EXIT },
        { NULL, 0, NULL, 0 },
    };
    rn_kcons_opts o = { .partition = -1, .offset_kind = RN_OFF_END, .timeout_ms = 10000,
                        .order_wait_ms = 500, .on_warn = on_warn };
    rn_format fmt = RN_FMT_LINES;
    uint64_t count = 0;
    rn_kprops *props = NULL;
    const char *metrics = NULL;
    side sd = { .m = NULL };
    char err[RN_ERRLEN];
    int c;

    rn_cli_init("consume");
    /* librdkafka's broker thread allocates a buffer per fetch (up to 8 MiB)
     * and an op per record, which this thread frees: with glibc's sliding
     * thresholds its arena was given back and faulted in again fetch after
     * fetch (a tenth of the CPU). Buffers from the arena, and a queue's
     * worth (8 MiB) of free memory kept. */
#ifdef M_TRIM_THRESHOLD
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
#endif
    /* First, so that a SIGUSR1 or SIGTERM sent right after the start is
     * handled rather than fatal, and before librdkafka starts its threads,
     * which inherit the block. */
    rn_input in;
    if (rn_input_init(&in, err) < 0)
        rn_die("%s", err);
    while ((c = rn_getopt(argc, argv, "b:t:p:G:ec:o:X:F:vqhV", longopts)) != -1) {
        switch (c) {
        case 'b': o.brokers = optarg; break;
        case 't': o.topic = optarg; break;
        case 'p': o.partition = (int32_t)rn_opt_uint("-p", optarg, INT32_MAX); break;
        case 'G': o.group = optarg; break;
        case OPT_OLD_OFFSET:
            rn_old_option("--offset", "--start");
            /* fall through */
        case OPT_START:
            if (rn_kcons_parse_offset(optarg, &o.offset_kind, &o.offset_val, err) < 0)
                rn_usage_error("--start: %s", err);
            break;
        case OPT_OLD_EXIT:
            rn_old_option("--exit-at-end", "--once (or -e)");
            /* fall through */
        case 'e': o.exit_at_end = 1; break;
        case 'c':
            count = rn_opt_uint("-c", optarg, UINT64_MAX);
            if (!count)
                rn_usage_error("-c: the count must be at least 1");
            break;
        case 'o':
            if (rn_format_parse(optarg, &fmt, err) < 0)
                rn_usage_error("-o: %s", err);
            break;
        case OPT_ORDER_WAIT:
            o.order_wait_ms = rn_opt_duration("--order-wait", optarg) / 1000000;
            break;
        case OPT_TIMEOUT:
            o.timeout_ms = rn_opt_duration("--timeout", optarg) / 1000000;
            if (o.timeout_ms <= 0)
                rn_usage_error("--timeout: at least 1ms");
            break;
        case OPT_METRICS: metrics = rn_cli_metrics_opt(optarg); break;
        case 'X':
        case 'F':
            if (rn_kprops_opt(&props, c, optarg, err) < 0)
                rn_usage_error("-%c: %s", c, err);
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (optind < argc)
        rn_usage_error("unexpected argument '%s'", argv[optind]);
    if (!o.brokers || !o.topic)
        rn_usage_error("-b BROKERS and -t TOPIC are required");
    if (o.group && o.partition >= 0)
        rn_usage_error("cannot use -p with -G: the group assigns partitions");
    if (rn_kprops_check(props, RN_KPROPS_CONSUMER, err) < 0)
        rn_usage_error("-X: %s", err);
    o.props = props;

    rn_writer *out = rn_writer_new(STDOUT_FILENO, fmt);
    if (!out)
        rn_die("out of memory");
    o.body_only = !rn_writer_wants_headers(out);
    if (metrics) {
        if (uv_loop_init(&sd.loop) < 0)
            rn_die("--metrics: cannot start a loop");
        sd.m = rn_cli_metrics_start(&sd.loop, metrics, 0, collect, &sd);
    }
    rn_kcons *k = sd.k = rn_kcons_new(&o, err);
    if (!k)
        rn_die("%s", err);

    /* Events go out in batches; only once a batch is flushed are its offsets
     * stored for commit. A signal that came while connecting is seen first. */
    int status = 0, quiet = 0;
    uint64_t n = 0, pending = 0;
    rn_event ev;
    rn_input_signals(&in);
    while (!rn_sig_stop && (!count || n < count)) {
        int r = rn_kcons_next(k, &ev, err);
        if (r == 1) {
            int w = rn_writer_put(out, &ev, err);
            if (w < 0) {
                if (w != RN_EPIPE) {
                    rn_error("stdout: %s", err);
                    status = 1;
                }
                quiet = 1;
                break;
            }
            n++;
            if (++pending < 1000)
                continue;
        } else if (r < 0) {
            rn_error("%s", err);
            status = 1;
            break;
        }
        if (pending) {
            int w = rn_writer_flush(out, err);
            if (w < 0) {
                if (w != RN_EPIPE) {
                    rn_error("stdout: %s", err);
                    status = 1;
                }
                quiet = 1;
                break;
            }
            rn_kcons_written(k);
            pending = 0;
            if (sd.m && r == 1)
                uv_run(&sd.loop, UV_RUN_NOWAIT);    /* busy: no wait to run it after */
        }
        if (rn_sig_usr1) {
            rn_sig_usr1 = 0;
            char parts[256];
            rn_kcons_assignment(k, parts, sizeof parts);
            rn_report("events=%llu assigned=%s", (unsigned long long)n, parts);
        }
        if (r == RN_KCONS_END)
            break;
        if (r == 1) {
            rn_input_signals(&in);      /* busy: no wait, signals all the same */
            continue;
        }
        int64_t until = rn_mono_ns() + RN_KCONS_IDLE_MS * 1000000LL, d = rn_kcons_deadline(k);
        if (wait_input(&in, &sd, d >= 0 && d < until ? d : until) == RN_ERR) {
            rn_error("poll: %s", strerror(errno));
            status = 1;
            break;
        }
    }
    if (!quiet && rn_writer_flush(out, err) == 0)
        rn_kcons_written(k);
    rn_input_signals(&in);      /* the first stop signal, if one is pending */
    stop_means_exit();
    if (sd.m) {
        rn_metrics_close(sd.m);
        uv_run(&sd.loop, UV_RUN_DEFAULT);
        rn_metrics_free(sd.m);
        uv_loop_close(&sd.loop);
    }
    sd.k = NULL;
    if (rn_kcons_close(k, err) < 0) {
        rn_error("%s", err);
        status = 1;
    }
    rn_info("events=%llu", (unsigned long long)n);
    rn_writer_free(out);
    rn_kprops_free(props);
    return rn_cli_exit(status);
}
