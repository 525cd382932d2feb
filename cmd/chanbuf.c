/* chanbuf.c -- buffer events in memory or on disk and deliver them to sinks. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "chan/chan.h"
#include "cli.h"
#include "core/core.h"
#include "hop/hop.h"
#include "kafka/kafka.h"

static const char usage_text[] =
    "usage: chanbuf [-l ADDR:PORT] [--dir DIR] [--capacity N] [--max-bytes SIZE]\n"
    "               [--batch N] [--flush always|DURATION] [--when-full block|drop]\n"
    "               [--max-connections N] [--idle-timeout DURATION] [--max-unread SIZE]\n"
    "               [--max-partial SIZE] [--timeout DURATION] [--metrics ADDR]\n"
    "               [-o lines|json|frames] [--sink SINK] ... [--route HEADER=VALUE:SINK_NAME] ...\n"
    "               [-X NAME=VALUE ...] [-F FILE] [-v | -q]\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nRead events from standard input (or, with --listen, from logtail --to and\n"
          "other chanbufs), keep them in a channel, and deliver them to every sink.\n"
          "SINK is [NAME=]stdout | file:///DIR/PREFIX[?roll=SIZE|DURATION]\n"
          "  | tcp://HOST:PORT[,HOST:PORT...][?mode=failover|balance]\n"
          "  | kafka://BROKERS/TOPIC[?key=HEADER&acks=all|1|0]\n\n"
          "  -l, --listen ADDR:PORT  take hop connections instead of standard input\n"
          "      --dir DIR           file channel in DIR (default: memory)\n"
          "      --capacity N        events the channel holds (default 1000000)\n"
          "      --max-bytes SIZE    bytes the channel holds (default 64MiB, 1GiB with --dir)\n"
          "      --batch N           events per batch (default 1000)\n"
          "      --flush WHEN        file channel: fsync always (default) or every DURATION\n"
          "      --when-full WHAT    block (default) or drop\n"
          "      --max-connections N hop connections at once (default 1000)\n"
          "      --idle-timeout DURATION\n"
          "                          close a hop connection idle this long (default 10m;\n"
          "                          0: never)\n"
          "      --max-unread SIZE   answers a sender may leave unread before it is not read\n"
          "                          (default 256KiB)\n"
          "      --max-partial SIZE  bytes of hop frames still arriving, in all (default 256MiB)\n"
          "      --timeout DURATION  how long a stop waits for the sinks (default 10s)\n"
          "      --metrics ADDR      serve counters for Prometheus on http://ADDR/metrics\n"
          "                          (HOST:PORT, or :PORT for 127.0.0.1:PORT)\n"
          "  -o, --output FORMAT     stdout and file sinks: lines (default), json, frames\n"
          "      --sink SINK         a sink (default stdout); may be repeated\n"
          "      --route H=V:NAME    events whose header H is V go to sink NAME\n"
          "  -X, --property NAME=VALUE\n"
          "                          kafka sinks: a librdkafka property (repeatable), e.g.\n"
          "                          -X security.protocol=SASL_SSL\n"
          "  -F, --property-file FILE\n"
          "                          kafka sinks: librdkafka properties, NAME=VALUE lines\n"
          "  -v, --verbose           print the counters at exit\n"
          "  -q, --quiet             no warnings, unless chanbuf then fails\n"
          "  -h, --help              show this help\n"
          "  -V, --version           show the version\n", stdout);
    exit(0);
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

static void print_counters(rn_agent *a, void (*say)(const char *, ...))
{
    char buf[4096];
    if (!say)
        return;
    rn_agent_counters(a, buf, sizeof buf);
    say("%s", buf);
}

static void collect(void *data, rn_prom *p) { rn_agent_metrics(data, p, "runnel_chanbuf"); }

static void on_signal(uv_signal_t *h, int sig)
{
    rn_agent *a = h->data;
    if (!a)
        return;     /* still starting */
    if (sig == SIGUSR1)
        print_counters(a, rn_report);
    else
        rn_agent_stop(a);
}

int main(int argc, char **argv)
{
    enum { OPT_DIR = 256, OPT_CAP, OPT_MAXB, OPT_BATCH, OPT_FLUSH, OPT_OLD_FSYNC, OPT_FULL,
           OPT_SINK, OPT_ROUTE, OPT_MAXCONN, OPT_IDLE, OPT_UNREAD, OPT_PARTIAL,
           OPT_TIMEOUT, OPT_METRICS };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "dir", required_argument, NULL, OPT_DIR },
        { "capacity", required_argument, NULL, OPT_CAP },
        { "max-bytes", required_argument, NULL, OPT_MAXB },
        { "batch", required_argument, NULL, OPT_BATCH },
        { "flush", required_argument, NULL, OPT_FLUSH },
        { "when-full", required_argument, NULL, OPT_FULL },
        { "max-connections", required_argument, NULL, OPT_MAXCONN },
        { "idle-timeout", required_argument, NULL, OPT_IDLE },
        { "max-unread", required_argument, NULL, OPT_UNREAD },
        { "max-partial", required_argument, NULL, OPT_PARTIAL },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "output", required_argument, NULL, 'o' },
        { "sink", required_argument, NULL, OPT_SINK },
        { "route", required_argument, NULL, OPT_ROUTE },
        { "property", required_argument, NULL, 'X' },
        { "property-file", required_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        /* old spellings, until the next release */
        { "fsync", required_argument, NULL, OPT_OLD_FSYNC },
        { NULL, 0, NULL, 0 },
    };
    static rn_sink_spec sinks[RN_CHAN_MAX_SINKS];
    const char *routes_arg[256];
    rn_route routes[256];
    char *keep[256];
    size_t nroutes = 0;
    rn_agent_opts o = {
        .fsync_always = 1, .fmt = RN_FMT_LINES, .batch = 1000,
        .drain_ns = 10000000000LL, .sinks = sinks, .on_warn = on_warn,
    };
    rn_kprops *kprops = NULL;
    const char *metrics = NULL;
    char err[RN_ERRLEN];
    int c;

    rn_cli_init("chanbuf");
    while ((c = rn_getopt(argc, argv, "l:o:X:F:vqhV", longopts)) != -1) {
        switch (c) {
        case 'l': o.listen = optarg; break;
        case OPT_DIR: o.dir = optarg; break;
        case OPT_CAP:
            if (!(o.capacity = rn_opt_uint("--capacity", optarg, UINT32_MAX)))
                rn_usage_error("--capacity: must be at least 1");
            break;
        case OPT_MAXB:
            if (!(o.max_bytes = rn_opt_size("--max-bytes", optarg)))
                rn_usage_error("--max-bytes: must be at least 1");
            break;
        case OPT_BATCH: o.batch = (uint32_t)rn_opt_uint("--batch", optarg, 1000000); break;
        case OPT_OLD_FSYNC:
            rn_old_option("--fsync", "--flush (as brokerd's)");
            /* fall through */
        case OPT_FLUSH:
            if (strcmp(optarg, "always") == 0) {
                o.fsync_always = 1;
            } else {
                o.fsync_always = 0;
                o.fsync_ns = rn_opt_duration("--flush", optarg);
                if (o.fsync_ns < 1000000)
                    rn_usage_error("--flush: 'always' or a duration of at least 1ms");
            }
            break;
        case OPT_FULL:
            if (strcmp(optarg, "block") && strcmp(optarg, "drop"))
                rn_usage_error("--when-full: '%s' is neither 'block' nor 'drop'", optarg);
            o.drop = strcmp(optarg, "drop") == 0;
            break;
        case OPT_MAXCONN:
            if (!(o.max_conns = (size_t)rn_opt_uint("--max-connections", optarg, 1000000)))
                rn_usage_error("--max-connections: must be at least 1");
            break;
        case OPT_IDLE:
            o.idle_ms = rn_opt_duration("--idle-timeout", optarg) / 1000000;
            if (o.idle_ms == 0)
                o.idle_ms = -1;     /* never */
            break;
        case OPT_UNREAD:
            if ((o.max_unread = (size_t)rn_opt_size("--max-unread", optarg)) < 1024)
                rn_usage_error("--max-unread: must be at least 1KiB");
            break;
        case OPT_PARTIAL:
            if ((o.max_partial = (size_t)rn_opt_size("--max-partial", optarg)) < RN_HOP_MAX_FRAME)
                rn_usage_error("--max-partial: must be at least 32MiB (a whole frame)");
            break;
        case OPT_TIMEOUT:
            if ((o.drain_ns = rn_opt_duration("--timeout", optarg)) < 1000000)
                rn_usage_error("--timeout: must be at least 1ms");
            break;
        case OPT_METRICS: metrics = rn_cli_metrics_opt(optarg); break;
        case 'o':
            if (rn_format_parse(optarg, &o.fmt, err) < 0)
                rn_usage_error("-o: %s", err);
            break;
        case OPT_SINK:
            if (o.nsinks == RN_CHAN_MAX_SINKS)
                rn_usage_error("--sink: at most %d sinks", RN_CHAN_MAX_SINKS);
            if (rn_sink_parse(optarg, &sinks[o.nsinks], err) < 0)
                rn_usage_error("--sink: %s", err);
            if (sinks[o.nsinks].note[0])
                rn_deprecated("--sink %s: %s", sinks[o.nsinks].name, sinks[o.nsinks].note);
            o.nsinks++;
            break;
        case OPT_ROUTE:
            if (nroutes == sizeof routes_arg / sizeof routes_arg[0])
                rn_usage_error("--route: at most 256 routes");
            routes_arg[nroutes++] = optarg;
            break;
        case 'X':
        case 'F':
            if (rn_kprops_opt(&kprops, c, optarg, err) < 0)
                rn_usage_error("-%c: %s", c, err);
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (optind < argc)
        rn_usage_error("unexpected argument '%s'", argv[optind]);
    if (o.batch == 0)
        rn_usage_error("--batch: must be at least 1");
    if (!o.nsinks && rn_sink_parse("stdout", &sinks[o.nsinks++], err) < 0)
        rn_die("%s", err);
    for (size_t i = 0; i < nroutes; i++)
        if (rn_route_parse(routes_arg[i], sinks, o.nsinks, &routes[i], &keep[i], err) < 0)
            rn_usage_error("%s", err);
    o.routes = routes;
    o.nroutes = nroutes;
    if (kprops) {
        size_t k = 0;
        while (k < o.nsinks && sinks[k].kind != RN_SINK_KAFKA)
            k++;
        if (k == o.nsinks)
            rn_usage_error("-X and -F go with a kafka:// sink");
        if (rn_kprops_check(kprops, RN_KPROPS_SINK, err) < 0)
            rn_usage_error("-X: %s", err);
        o.kprops = kprops;
    }
    if (rn_sig_ignore_pipe(err) < 0)
        rn_die("%s", err);

    /* The handlers first: a signal while the channel is recovering is
     * ignored rather than fatal. */
    uv_loop_t *loop = uv_default_loop();
    uv_signal_t sigs[4];
    int signums[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, &sigs[i]);
        sigs[i].data = NULL;
        uv_signal_start(&sigs[i], on_signal, signums[i]);
        uv_unref((uv_handle_t *)&sigs[i]);
    }
    rn_agent *a = rn_agent_new(loop, &o, err);
    if (!a)
        rn_die("%s", err);
    for (int i = 0; i < 4; i++)
        sigs[i].data = a;
    /* The port the kernel picked is needed, -q or not. */
    const char *colon = o.listen ? strrchr(o.listen, ':') : NULL;
    if (rn_agent_address(a) && colon && !strcmp(colon, ":0"))
        rn_report("listening on %s", rn_agent_address(a));
    else if (rn_agent_address(a))
        rn_warn("listening on %s", rn_agent_address(a));
    rn_metrics *m = rn_cli_metrics_start(loop, metrics, 1, collect, a);
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_close(m);
    int status = rn_agent_status(a);
    /* Silent on success: the counters with -v, or when events were dropped
     * or the run failed (pending ones then say what is left). */
    print_counters(a, rn_verbose ? rn_info : status ? rn_error
                                : rn_agent_dropped(a) ? rn_warn : NULL);
    for (int i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_free(m);
    uv_loop_close(loop);
    if (rn_agent_free(a, err) < 0) {
        rn_error("%s", err);
        status = 1;
    }
    for (size_t i = 0; i < nroutes; i++)
        free(keep[i]);
    rn_kprops_free(kprops);
    return rn_cli_exit(status);
}
