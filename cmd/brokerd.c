/* brokerd.c -- a one-node Kafka-protocol broker and its topic admin: options and wiring. */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "broker/broker.h"
#include "cli.h"
#include "core/core.h"
#include "hop/hop.h"
#include "kafka/kafka.h"
#include "window/window.h"

/* ---- brokerd topics: list, describe, create or delete topics on any
 * Kafka broker (lib/kafka/admin.c does the work; here we print). */

enum { CMD_NONE, CMD_LIST, CMD_DESCRIBE, CMD_CREATE, CMD_DELETE };

typedef struct topics_opts {
    const char *brokers;
    int timeout_ms;
    int cmd;
    const char *topic;          /* --create, --delete */
    int partitions;             /* -1: the broker's default */
    int replication;            /* -1: the broker's default */
    char **names;               /* --describe's operands */
    int nnames;
    rn_kprops *props;           /* -X, -F */
} topics_opts;

static void print_ids(const int32_t *ids, int n)
{
    if (n == 0)
        fputs("-", stdout);
    for (int i = 0; i < n; i++)
        printf("%s%" PRId32, i ? "," : "", ids[i]);
}

static void describe_topic(const rn_kadmin_topic *t)
{
    for (int i = 0; i < t->nparts; i++) {
        const rn_kadmin_part *p = &t->parts[i];
        printf("%s\t%" PRId32 "\t%" PRId32 "\t", t->name, p->id, p->leader);
        print_ids(p->replicas, p->nreplicas);
        putchar('\t');
        print_ids(p->isrs, p->nisrs);
        putchar('\n');
    }
}

static int run_metadata(rn_kadmin *a, const topics_opts *o)
{
    char err[RN_ERRLEN];
    rn_kadmin_meta md;
    if (rn_kadmin_metadata(a, &md, err) < 0) {
        rn_error("%s", err);
        return 1;
    }
    int status = 0;
    if (o->cmd == CMD_LIST) {
        for (size_t i = 0; i < md.ntopics; i++)
            puts(md.topics[i].name);
    } else if (o->nnames == 0) {
        for (size_t i = 0; i < md.ntopics; i++) {
            if (md.topics[i].error) {
                rn_error("%s: %s", md.topics[i].name, md.topics[i].error);
                status = 1;
            }
            describe_topic(&md.topics[i]);
        }
    } else {
        /* In the order asked; tail(1)-like: an unknown one is reported and
         * the others still described. */
        for (int k = 0; k < o->nnames; k++) {
            const rn_kadmin_topic *t = rn_kadmin_meta_find(&md, o->names[k]);
            if (!t || t->unknown) {
                rn_error("%s: unknown topic", o->names[k]);
                status = 1;
                continue;
            }
            if (t->error) {
                rn_error("%s: %s", t->name, t->error);
                status = 1;
            }
            describe_topic(t);
        }
    }
    rn_kadmin_meta_free(&md);
    if (fflush(stdout) == EOF)
        rn_die("stdout: write error");
    return status;
}

/* What topics and groups share: --timeout, -X and -F, the client. */
static int admin_timeout(const char *arg)
{
    int64_t ns = rn_opt_duration("--timeout", arg);
    if (ns < 100000000 || ns > 3600 * 1000000000LL)
        rn_usage_error("--timeout: must be between 100ms and 1h");
    return (int)(ns / 1000000);
}

static void admin_prop(rn_kprops **p, int opt, const char *arg)
{
    char err[RN_ERRLEN];
    if (rn_kprops_opt(p, opt, arg, err) < 0)
        rn_usage_error("-%c: %s", opt, err);
}

static rn_kadmin *admin_new(const char *brokers, int timeout_ms, const rn_kprops *props)
{
    char err[RN_ERRLEN];
    rn_kadmin *a;
    int bad_setting;
    if (rn_kadmin_new(brokers, timeout_ms, props, &a, &bad_setting, err) < 0) {
        if (bad_setting)
            rn_usage_error("%s", err);
        rn_die("%s", err);
    }
    return a;
}

static void set_cmd(topics_opts *o, int cmd)
{
    if (o->cmd != CMD_NONE && o->cmd != cmd)
        rn_usage_error("topics: use one of --list, --describe, --create, --delete");
    o->cmd = cmd;
}

static int brokerd_topics(int argc, char **argv, void (*usage)(void))
{
    enum { OPT_LIST = 256, OPT_DESCRIBE, OPT_CREATE, OPT_DELETE, OPT_PARTS, OPT_RF, OPT_TIMEOUT };
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "list", no_argument, NULL, OPT_LIST },
        { "describe", no_argument, NULL, OPT_DESCRIBE },
        { "create", required_argument, NULL, OPT_CREATE },
        { "delete", required_argument, NULL, OPT_DELETE },
        { "partitions", required_argument, NULL, OPT_PARTS },
        { "replication-factor", required_argument, NULL, OPT_RF },
        { "property", required_argument, NULL, 'X' },
        { "property-file", required_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    topics_opts o = { .timeout_ms = 10000, .partitions = -1, .replication = -1 };
    int c;

    optind = 2;
    while ((c = rn_getopt(argc, argv, "b:t:X:F:vqhV", longopts)) != -1) {
        switch (c) {
        case 'b': o.brokers = optarg; break;
        case 't':
            rn_old_option("-t DURATION (the timeout)", "--timeout DURATION");
            /* fall through */
        case OPT_TIMEOUT: o.timeout_ms = admin_timeout(optarg); break;
        case 'X':
        case 'F': admin_prop(&o.props, c, optarg); break;
        case OPT_LIST: set_cmd(&o, CMD_LIST); break;
        case OPT_DESCRIBE: set_cmd(&o, CMD_DESCRIBE); break;
        case OPT_CREATE: set_cmd(&o, CMD_CREATE); o.topic = optarg; break;
        case OPT_DELETE: set_cmd(&o, CMD_DELETE); o.topic = optarg; break;
        case OPT_PARTS:
            o.partitions = (int)rn_opt_uint("--partitions", optarg, 100000);
            if (o.partitions < 1)
                rn_usage_error("--partitions: must be at least 1");
            break;
        case OPT_RF:
            o.replication = (int)rn_opt_uint("--replication-factor", optarg, 32767);
            if (o.replication < 1)
                rn_usage_error("--replication-factor: must be at least 1");
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (!o.brokers)
        rn_usage_error("topics: --brokers is required");
    if (o.cmd == CMD_NONE)
        rn_usage_error("topics: one of --list, --describe, --create, --delete is required");
    if ((o.partitions != -1 || o.replication != -1) && o.cmd != CMD_CREATE)
        rn_usage_error("--partitions and --replication-factor go with --create");
    if (o.cmd == CMD_DESCRIBE) {
        o.names = argv + optind;
        o.nnames = argc - optind;
    } else if (optind < argc) {
        rn_usage_error("unexpected argument '%s'", argv[optind]);
    }
    if ((o.cmd == CMD_CREATE || o.cmd == CMD_DELETE) && !*o.topic)
        rn_usage_error("topics: empty topic name");

    char err[RN_ERRLEN];
    rn_kadmin *a;
    int status = 0;
    a = admin_new(o.brokers, o.timeout_ms, o.props);
    if (o.cmd == CMD_LIST || o.cmd == CMD_DESCRIBE) {
        status = run_metadata(a, &o);
    } else {
        int r = o.cmd == CMD_CREATE
                    ? rn_kadmin_create(a, o.topic, o.partitions, o.replication, err)
                    : rn_kadmin_delete(a, o.topic, err);
        if (r < 0) {
            rn_error("%s", err);
            status = 1;
        }
    }
    rn_kadmin_free(a);
    rn_kprops_free(o.props);
    return rn_cli_exit(status);
}

/* ---- brokerd groups: list, describe and reset consumer groups on any
 * Kafka broker, as kafka-consumer-groups.sh does. */

enum { G_NONE, G_LIST, G_DESCRIBE, G_RESET };

static void print_off(int64_t v)
{
    if (v < 0)
        fputs("\t-", stdout);
    else
        printf("\t%" PRId64, v);
}

/* GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST
 * CLIENT-ID, as Kafka's --describe; a member with nothing assigned has a row
 * of its own with "-" for the partition. */
static void describe_group(const char *group, const rn_kgroup *g)
{
    for (size_t i = 0; i < g->nparts; i++) {
        const rn_kgroup_part *p = &g->parts[i];
        printf("%s\t%s\t%" PRId32, group, p->topic, p->partition);
        print_off(p->committed);
        print_off(p->end);
        print_off(p->committed >= 0 && p->end >= 0 ? p->end - p->committed : -1);
        if (p->member >= 0) {
            const rn_kgroup_member *m = &g->members[p->member];
            printf("\t%s\t%s\t%s\n", m->id, m->host, m->client_id);
        } else {
            fputs("\t-\t-\t-\n", stdout);
        }
    }
    for (size_t k = 0; k < g->nmembers; k++) {
        size_t i = 0;
        while (i < g->nparts && g->parts[i].member != (int)k)
            i++;
        if (i == g->nparts)
            printf("%s\t-\t-\t-\t-\t-\t%s\t%s\t%s\n", group, g->members[k].id,
                   g->members[k].host, g->members[k].client_id);
    }
}

static int brokerd_groups(int argc, char **argv, void (*usage)(void))
{
    enum { OPT_LIST = 256, OPT_DESCRIBE, OPT_STATE, OPT_RESET, OPT_TOPIC, OPT_EARLIEST,
           OPT_LATEST, OPT_TO_OFFSET, OPT_TO_TIME, OPT_EXECUTE, OPT_TIMEOUT };
    static const struct option longopts[] = {
        { "brokers", required_argument, NULL, 'b' },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "list", no_argument, NULL, OPT_LIST },
        { "describe", required_argument, NULL, OPT_DESCRIBE },
        { "state", no_argument, NULL, OPT_STATE },
        { "reset-offsets", required_argument, NULL, OPT_RESET },
        { "topic", required_argument, NULL, OPT_TOPIC },
        { "to-earliest", no_argument, NULL, OPT_EARLIEST },
        { "to-latest", no_argument, NULL, OPT_LATEST },
        { "to-offset", required_argument, NULL, OPT_TO_OFFSET },
        { "to-datetime", required_argument, NULL, OPT_TO_TIME },
        { "execute", no_argument, NULL, OPT_EXECUTE },
        { "property", required_argument, NULL, 'X' },
        { "property-file", required_argument, NULL, 'F' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *brokers = NULL, *group = NULL, *topic = NULL;
    int timeout_ms = 10000, cmd = G_NONE, to = -1, execute = 0, state = 0, c;
    int64_t val = 0;
    rn_kprops *props = NULL;
    char err[RN_ERRLEN];

    optind = 2;
    while ((c = rn_getopt(argc, argv, "b:t:X:F:vqhV", longopts)) != -1) {
        int want = c == OPT_LIST ? G_LIST : c == OPT_DESCRIBE ? G_DESCRIBE
                 : c == OPT_RESET ? G_RESET : G_NONE;
        if (want != G_NONE) {
            if (cmd != G_NONE)
                rn_usage_error("groups: use one of --list, --describe, --reset-offsets");
            cmd = want;
            group = optarg;
        }
        if (c == OPT_EARLIEST || c == OPT_LATEST || c == OPT_TO_OFFSET || c == OPT_TO_TIME) {
            if (to != -1)
                rn_usage_error("groups: use one of --to-earliest, --to-latest, --to-offset, "
                               "--to-datetime");
        }
        switch (c) {
        case 'b': brokers = optarg; break;
        case 't':
            rn_old_option("-t DURATION (the timeout)", "--timeout DURATION");
            /* fall through */
        case OPT_TIMEOUT: timeout_ms = admin_timeout(optarg); break;
        case 'X':
        case 'F': admin_prop(&props, c, optarg); break;
        case OPT_LIST: case OPT_DESCRIBE: case OPT_RESET: break;
        case OPT_STATE: state = 1; break;
        case OPT_TOPIC: topic = optarg; break;
        case OPT_EARLIEST: to = RN_OFF_BEGINNING; break;
        case OPT_LATEST: to = RN_OFF_END; break;
        case OPT_TO_OFFSET:
            to = RN_OFF_ABS;
            val = (int64_t)rn_opt_uint("--to-offset", optarg, INT64_MAX);
            break;
        case OPT_TO_TIME:
            to = RN_OFF_TIME;
            if (optarg[0] == '@') {
                val = (int64_t)rn_opt_uint("--to-datetime", optarg + 1, INT64_MAX);
            } else {
                int64_t ns;
                rn_timex *x = rn_timex_new("iso8601", err);
                if (!x)
                    rn_die("%s", err);
                if (rn_timex_parse(x, optarg, strlen(optarg), &ns) < 0)
                    rn_usage_error("--to-datetime: '%s' is neither YYYY-MM-DDTHH:MM:SS[.fff] "
                                   "with Z or +HH:MM, nor @EPOCH_MS", optarg);
                rn_timex_free(x);
                val = ns / 1000000;
            }
            break;
        case OPT_EXECUTE: execute = 1; break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (optind < argc)
        rn_usage_error("unexpected argument '%s'", argv[optind]);
    if (!brokers)
        rn_usage_error("groups: --brokers is required");
    if (cmd == G_NONE)
        rn_usage_error("groups: one of --list, --describe, --reset-offsets is required");
    if (state && cmd != G_DESCRIBE)
        rn_usage_error("--state goes with --describe");
    if (cmd == G_RESET && (!topic || to == -1))
        rn_usage_error("--reset-offsets needs --topic and one of --to-earliest, --to-latest, "
                       "--to-offset, --to-datetime");
    if (cmd != G_RESET && (topic || to != -1 || execute))
        rn_usage_error("--topic, --to-... and --execute go with --reset-offsets");
    if (group && !*group)
        rn_usage_error("groups: empty group name");

    rn_kadmin *a = admin_new(brokers, timeout_ms, props);
    int status = 0;
    rn_kgroup g;
    if (cmd == G_LIST) {
        char **names;
        size_t n;
        if (rn_kadmin_groups(a, &names, &n, err) < 0) {
            rn_error("%s", err);
            status = 1;
        } else {
            for (size_t i = 0; i < n; i++) {
                puts(names[i]);
                free(names[i]);
            }
            free(names);
        }
    } else if (cmd == G_DESCRIBE) {
        if (rn_kadmin_group_describe(a, group, &g, err) < 0) {
            rn_error("%s", err);
            status = 1;
        } else {
            if (g.describe_error)
                rn_warn("%s: members and state unknown: %s", group, g.describe_error);
            if (state)
                printf("%s\t%s\t%zu\n", group, g.state, g.nmembers);
            else
                describe_group(group, &g);
            rn_kgroup_free(&g);
        }
    } else if (rn_kadmin_group_reset(a, group, topic, to, val, execute, &g, err) < 0) {
        rn_error("%s", err);
        status = 1;
    } else {
        /* GROUP TOPIC PARTITION NEW-OFFSET, as Kafka's tool prints the plan. */
        if (g.describe_error)
            rn_warn("%s: cannot tell whether the group has members: %s", group,
                    g.describe_error);
        for (size_t i = 0; i < g.nparts; i++)
            printf("%s\t%s\t%" PRId32 "\t%" PRId64 "\n", group, g.parts[i].topic,
                   g.parts[i].partition, g.parts[i].target);
        if (!execute)
            rn_warn("dry run: nothing changed (--execute to reset)");
        rn_kgroup_free(&g);
    }
    if (fflush(stdout) == EOF)
        rn_die("stdout: write error");
    rn_kadmin_free(a);
    rn_kprops_free(props);
    return rn_cli_exit(status);
}

/* ---- brokerd serve ---- */

static const char usage_text[] =
    "usage: brokerd serve [-l ADDR:PORT] [--advertise HOST[:PORT]] [--data-dir DIR]\n"
    "                     [--partitions N] [--auto-create yes|no] [--segment-bytes SIZE]\n"
    "                     [--segment-age DURATION] [--retention DURATION]\n"
    "                     [--retention-bytes SIZE] [--flush none|always|DURATION]\n"
    "                     [--max-request SIZE] [--max-conn-buffer SIZE]\n"
    "                     [--max-partial SIZE] [--max-connections N]\n"
    "                     [--idle-timeout DURATION] [--max-partitions N]\n"
    "                     [--max-group-members N] [--group-initial-delay DURATION]\n"
    "                     [--metrics ADDR] [-v | -q]\n"
    "       brokerd topics -b BROKERS [--timeout DURATION] [-X NAME=VALUE ...]\n"
    "                      [-F FILE] [-v | -q] {--list | --describe [TOPIC ...] |\n"
    "                      --create TOPIC [--partitions N] [--replication-factor N] |\n"
    "                      --delete TOPIC}\n"
    "       brokerd groups -b BROKERS [--timeout DURATION] [-X NAME=VALUE ...]\n"
    "                      [-F FILE] [-v | -q] {--list | --describe GROUP [--state] |\n"
    "                      --reset-offsets GROUP --topic TOPIC {--to-earliest |\n"
    "                      --to-latest | --to-offset N | --to-datetime TIME}\n"
    "                      [--execute]}\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nserve: the Kafka protocol (one node: leader of every partition, controller\n"
          "and group coordinator) over partitions stored in DIR.\n\n"
          "  -l, --listen ADDR:PORT     listen there (default 127.0.0.1:9092)\n"
          "      --advertise HOST[:PORT]\n"
          "                             tell clients to connect there (default: the listen\n"
          "                             address, or this machine's name for 0.0.0.0 and ::)\n"
          "      --data-dir DIR         partitions and group offsets (default ./data)\n"
          "      --partitions N         partitions of auto-created topics (default 1)\n"
          "      --auto-create yes|no   create unknown topics on Metadata/Produce (default yes)\n"
          "      --segment-bytes SIZE   roll a segment at this size (default 1GiB)\n"
          "      --segment-age DURATION roll a segment at this age (default 7d)\n"
          "      --retention DURATION   delete closed segments older than this (default 7d)\n"
          "      --retention-bytes SIZE keep at most this much per partition (default: no limit)\n"
          "      --flush POLICY         none (page cache), always (fsync before acking), or\n"
          "                             an interval such as 1s (default none)\n"
          "      --max-request SIZE     close connections sending larger requests\n"
          "                             (default 100MiB)\n"
          "      --max-conn-buffer SIZE stop reading a connection while its requests and\n"
          "                             unread answers hold more (default 1MiB)\n"
          "      --max-partial SIZE     partial requests held in all connections\n"
          "                             (default 256MiB)\n"
          "      --max-connections N    accept and close connections over N (default 4096,\n"
          "                             or half the open-file limit if lower)\n"
          "      --idle-timeout DURATION\n"
          "                             close connections idle this long, 0 never (default 10m)\n"
          "      --max-partitions N     partitions in all topics; more are refused (default\n"
          "                             10000, or what the descriptor limit allows)\n"
          "      --max-group-members N  members of one consumer group (default 1000)\n"
          "      --group-initial-delay DURATION\n"
          "                             an empty group's first rebalance waits this long for\n"
          "                             more members (default 3s, as Kafka's)\n"
          "      --metrics ADDR         serve counters for Prometheus on http://ADDR/metrics\n"
          "                             (HOST:PORT, or :PORT for 127.0.0.1:PORT)\n"
          "  -v, --verbose              print the counters at exit\n"
          "  -q, --quiet                no warnings, unless brokerd then fails\n"
          "  -h, --help                 show this help\n"
          "  -V, --version              show the version\n"
          "\ntopics: list, describe, create or delete topics on any Kafka broker.\n\n"
          "  -b, --brokers BROKERS      bootstrap brokers, HOST:PORT[,HOST:PORT...]\n"
          "      --timeout DURATION     give up after this long (default 10s)\n"
          "      --list                 topic names, one a line, sorted\n"
          "      --describe [TOPIC ...] TOPIC PARTITION LEADER REPLICAS ISR, tab-separated\n"
          "      --create TOPIC         create TOPIC\n"
          "      --partitions N, --replication-factor N\n"
          "                             with --create (default: the broker's defaults)\n"
          "      --delete TOPIC\n"
          "  -X, --property NAME=VALUE  a librdkafka property (repeatable), e.g.\n"
          "                             -X security.protocol=SASL_SSL\n"
          "  -F, --property-file FILE   librdkafka properties, NAME=VALUE lines\n"
          "\ngroups: list, describe or reset consumer groups on any Kafka broker\n"
          "(-b, --timeout, -X, -F, -v and -q as for topics).\n\n"
          "      --list                 group names, one a line, sorted\n"
          "      --describe GROUP       GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET\n"
          "                             LAG CONSUMER-ID HOST CLIENT-ID, tab-separated\n"
          "      --state                with --describe: GROUP STATE MEMBERS\n"
          "      --reset-offsets GROUP  plan new offsets for --topic TOPIC's partitions\n"
          "                             (only while the group has no members), to:\n"
          "      --to-earliest, --to-latest, --to-offset N,\n"
          "      --to-datetime YYYY-MM-DDTHH:MM:SS[.fff]Z|+HH:MM or @EPOCH_MS\n"
          "      --topic TOPIC          with --reset-offsets: the topic\n"
          "      --execute              commit the plan (default: print it only)\n", stdout);
    exit(0);
}

/* Descriptors a partition holds at least (its directory, and .log, .index
 * and .timeindex of its active segment), and those kept for the rest
 * (connections, closed segments of the busiest logs, fsync duplicates). */
#define FDS_PER_PARTITION 4
#define FDS_SPARE 256
#define DEFAULT_MAX_PARTITIONS 10000

/* Raise the soft descriptor limit to the hard one, where allowed, and return
 * the soft limit then in force. */
static uint64_t raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = { rl.rlim_max, rl.rlim_max };
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    return rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
}

/* The partitions that fit in the descriptor limit: --max-partitions' default
 * is the smaller of this and 10000, and an explicit one must fit. */
static int32_t max_partitions(int64_t asked)
{
    uint64_t fds = raise_fd_limit();
    uint64_t fit = fds > FDS_SPARE ? (fds - FDS_SPARE) / FDS_PER_PARTITION : 0;
    if (asked < 0)
        return (int32_t)(fit < DEFAULT_MAX_PARTITIONS ? (fit ? fit : 1) : DEFAULT_MAX_PARTITIONS);
    if ((uint64_t)asked > fit)
        rn_die("--max-partitions %" PRId64 " needs %" PRIu64 " descriptors; the limit is %"
               PRIu64 " (ulimit -n), which allows %" PRIu64, asked,
               (uint64_t)asked * FDS_PER_PARTITION + FDS_SPARE, fds, fit);
    return (int32_t)asked;
}

typedef struct app {
    rn_broker *b;
    uv_signal_t sigs[4];
} app;

static void on_log(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

static void on_stopped(void *data)
{
    app *a = data;
    for (int i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&a->sigs[i], NULL);
}

static void print_counters(app *a, void (*say)(const char *, ...))
{
    char buf[1024];
    rn_counters_format(rn_broker_counters(a->b), buf, sizeof buf);
    say("%s", buf);
}

static void collect(void *data, rn_prom *p)
{
    app *a = data;
    rn_broker_metrics(a->b, p, "runnel_brokerd");
}

static void on_signal(uv_signal_t *h, int sig)
{
    app *a = h->data;
    if (sig == SIGUSR1) {
        print_counters(a, rn_report);
        return;
    }
    rn_broker_stop(a->b, on_stopped, a);
}

static int yesno(const char *opt, const char *arg)
{
    if (!strcmp(arg, "yes"))
        return 1;
    if (!strcmp(arg, "no"))
        return 0;
    rn_usage_error("%s: '%s' is neither 'yes' nor 'no'", opt, arg);
}

/* ADDR:PORT, as every runnel listener takes it (rn_hop_addr_parse); with
 * port_optional a HOST or [V6] alone too, with port 0: the one listened on. */
static void addr_opt(const char *opt, const char *arg, int port_optional, rn_hop_target *t)
{
    char full[300], err[RN_ERRLEN];
    size_t n = strlen(arg);
    if (port_optional && n < sizeof full - 2 &&
        (!strchr(arg, ':') || (arg[0] == '[' && arg[n - 1] == ']'))) {
        snprintf(full, sizeof full, "%s:0", arg);
        arg = full;
    }
    if (rn_hop_addr_parse(arg, t, err) < 0)
        rn_usage_error("%s: %s", opt, err);
}

int main(int argc, char **argv)
{
    enum { OPT_DATADIR = 256, OPT_PARTS, OPT_AUTO, OPT_SEGB, OPT_SEGA, OPT_RET, OPT_RETB, OPT_FLUSH, OPT_MAXREQ,
           OPT_CONNBUF, OPT_PARTIAL, OPT_MAXCONN, OPT_IDLE, OPT_MAXPARTS, OPT_MAXMEMBERS,
           OPT_INITDELAY, OPT_METRICS, OPT_ADVERTISE };
    static const struct option longopts[] = {
        { "listen", required_argument, NULL, 'l' },
        { "advertise", required_argument, NULL, OPT_ADVERTISE },
        { "data-dir", required_argument, NULL, OPT_DATADIR },
        { "partitions", required_argument, NULL, OPT_PARTS },
        { "auto-create", required_argument, NULL, OPT_AUTO },
        { "segment-bytes", required_argument, NULL, OPT_SEGB },
        { "segment-age", required_argument, NULL, OPT_SEGA },
        { "retention", required_argument, NULL, OPT_RET },
        { "retention-bytes", required_argument, NULL, OPT_RETB },
        { "flush", required_argument, NULL, OPT_FLUSH },
        { "max-request", required_argument, NULL, OPT_MAXREQ },
        { "max-conn-buffer", required_argument, NULL, OPT_CONNBUF },
        { "max-partial", required_argument, NULL, OPT_PARTIAL },
        { "max-connections", required_argument, NULL, OPT_MAXCONN },
        { "idle-timeout", required_argument, NULL, OPT_IDLE },
        { "max-partitions", required_argument, NULL, OPT_MAXPARTS },
        { "max-group-members", required_argument, NULL, OPT_MAXMEMBERS },
        { "group-initial-delay", required_argument, NULL, OPT_INITDELAY },
        { "metrics", required_argument, NULL, OPT_METRICS },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    rn_broker_opts o = {
        .host = "127.0.0.1", .port = 9092, .data_dir = "data", .partitions = 1,
        .auto_create = 1, .flush = RN_FLUSH_NONE, .max_request = 100u << 20,
        .max_conn_buffer = 1u << 20, .max_partial = 256u << 20, .max_connections = -1,
        .idle_timeout_ns = 600 * 1000000000LL,
        .max_group_members = 1000, .group_initial_delay_ns = 3000000000LL,
        .klog = { .segment_bytes = 1ull << 30, .segment_age_ns = 7 * 86400 * 1000000000LL,
                  .retention_ns = 7 * 86400 * 1000000000LL, .retention_bytes = 0,
                  .index_interval = 4096 },
        .on_log = on_log,
    };
    rn_hop_target listen, advertise;
    char err[RN_ERRLEN];
    const char *metrics = NULL;
    int64_t max_parts = -1;
    int c;
    app a;

    memset(&a, 0, sizeof a);
    rn_cli_init("brokerd");
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
        usage();
    if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")))
        rn_version();
    if (argc > 1 && !strcmp(argv[1], "topics"))
        return brokerd_topics(argc, argv, usage);
    if (argc > 1 && !strcmp(argv[1], "groups"))
        return brokerd_groups(argc, argv, usage);
    if (argc < 2 || strcmp(argv[1], "serve") != 0)
        rn_usage_error(argc < 2 ? "missing command (serve, topics or groups)" : "unknown command '%s'",
                       argv[1]);
    optind = 2;
    while ((c = rn_getopt(argc, argv, "l:d:p:vqhV", longopts)) != -1) {
        switch (c) {
        case 'l':
            addr_opt("--listen", optarg, 0, &listen);
            o.host = listen.host;
            o.port = listen.port;
            break;
        case OPT_ADVERTISE:
            addr_opt("--advertise", optarg, 1, &advertise);
            o.advertise_host = advertise.host;
            o.advertise_port = advertise.port;
            break;
        case 'd':
            rn_old_option("-d DIR", "--data-dir DIR");
            /* fall through */
        case OPT_DATADIR: o.data_dir = optarg; break;
        case 'p':
            rn_old_option("-p N (the partitions)", "--partitions N");
            /* fall through */
        case OPT_PARTS:
            o.partitions = (int32_t)rn_opt_uint("--partitions", optarg, 100000);
            if (o.partitions < 1)
                rn_usage_error("--partitions: must be at least 1");
            break;
        case OPT_AUTO: o.auto_create = yesno("--auto-create", optarg); break;
        case OPT_SEGB: o.klog.segment_bytes = rn_opt_size("--segment-bytes", optarg); break;
        case OPT_SEGA: o.klog.segment_age_ns = rn_opt_duration("--segment-age", optarg); break;
        case OPT_RET: o.klog.retention_ns = rn_opt_duration("--retention", optarg); break;
        case OPT_RETB: o.klog.retention_bytes = rn_opt_size("--retention-bytes", optarg); break;
        case OPT_FLUSH:
            if (!strcmp(optarg, "none")) {
                o.flush = RN_FLUSH_NONE;
            } else if (!strcmp(optarg, "always")) {
                o.flush = RN_FLUSH_ALWAYS;
            } else {
                o.flush = RN_FLUSH_INTERVAL;
                o.flush_interval_ns = rn_opt_duration("--flush", optarg);
                if (o.flush_interval_ns < 1000000)
                    rn_usage_error("--flush: an interval must be at least 1ms");
            }
            break;
        case OPT_MAXREQ:
            o.max_request = (size_t)rn_opt_size("--max-request", optarg);
            if (o.max_request < 1024 || o.max_request > (1u << 30))
                rn_usage_error("--max-request: must be between 1KiB and 1GiB");
            break;
        case OPT_CONNBUF:
            o.max_conn_buffer = (size_t)rn_opt_size("--max-conn-buffer", optarg);
            if (o.max_conn_buffer < (16u << 10) || o.max_conn_buffer > (1u << 30))
                rn_usage_error("--max-conn-buffer: must be between 16KiB and 1GiB");
            break;
        case OPT_PARTIAL:
            o.max_partial = (size_t)rn_opt_size("--max-partial", optarg);
            if (o.max_partial < (64u << 10))
                rn_usage_error("--max-partial: must be at least 64KiB");
            break;
        case OPT_MAXCONN:
            o.max_connections = (int)rn_opt_uint("--max-connections", optarg, 1000000);
            if (o.max_connections < 1)
                rn_usage_error("--max-connections: must be at least 1");
            break;
        case OPT_IDLE: o.idle_timeout_ns = rn_opt_duration("--idle-timeout", optarg); break;
        case OPT_MAXPARTS:
            max_parts = (int64_t)rn_opt_uint("--max-partitions", optarg, 1000000);
            if (max_parts < 1)
                rn_usage_error("--max-partitions: must be at least 1");
            break;
        case OPT_INITDELAY:
            o.group_initial_delay_ns = rn_opt_duration("--group-initial-delay", optarg);
            break;
        case OPT_METRICS: metrics = rn_cli_metrics_opt(optarg); break;
        case OPT_MAXMEMBERS:
            o.max_group_members = (int32_t)rn_opt_uint("--max-group-members", optarg, 1000000);
            if (o.max_group_members < 1)
                rn_usage_error("--max-group-members: must be at least 1");
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (optind < argc)
        rn_usage_error("unexpected argument '%s'", argv[optind]);
    if (o.klog.segment_bytes < 1024)
        rn_usage_error("--segment-bytes: must be at least 1KiB");
    if (o.partitions > (max_parts < 0 ? 100000 : max_parts))
        rn_usage_error("--partitions: more than --max-partitions");
    if (rn_sig_ignore_pipe(err) < 0)
        rn_die("%s", err);
    o.max_partitions = max_partitions(max_parts);
    /* A compressed batch may decompress to 4 times the largest request
     * before its records are refused as a decompression bomb. */
    o.klog.max_inflated = 4 * (uint64_t)o.max_request;
    if (o.max_connections < 0) {
        /* Each connection takes a descriptor, and one per file slice of an
         * answer it waits to send: leave the other half to the logs (the
         * limit as raised by max_partitions). */
        struct rlimit rl;
        o.max_connections = 4096;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            rl.rlim_cur / 2 < (rlim_t)o.max_connections)
            o.max_connections = rl.rlim_cur / 2 > 0 ? (int)(rl.rlim_cur / 2) : 1;
    }

    uv_loop_t *loop = uv_default_loop();
    o.data = &a;
    a.b = rn_broker_new(loop, &o, err);
    if (!a.b)
        rn_die("%s", err);
    if (rn_broker_start(a.b, err) < 0)
        rn_die("%s", err);
    char adv[300] = "";
    if (strcmp(rn_broker_advertised_host(a.b), o.host) != 0 ||
        rn_broker_advertised_port(a.b) != rn_broker_port(a.b))
        snprintf(adv, sizeof adv, ", advertised as %s:%d", rn_broker_advertised_host(a.b),
                 rn_broker_advertised_port(a.b));
    if (o.port == 0)            /* the port the kernel picked is needed, -q or not */
        rn_report("listening on %s:%d, data in %s%s", o.host, rn_broker_port(a.b), o.data_dir, adv);
    else
        rn_warn("listening on %s:%d, data in %s%s", o.host, rn_broker_port(a.b), o.data_dir, adv);
    rn_metrics *m = rn_cli_metrics_start(loop, metrics, 1, collect, &a);

    int signums[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
    for (int i = 0; i < 4; i++) {
        uv_signal_init(loop, &a.sigs[i]);
        a.sigs[i].data = &a;
        uv_signal_start(&a.sigs[i], on_signal, signums[i]);
    }
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_close(m);
    uv_run(loop, UV_RUN_DEFAULT);
    rn_metrics_free(m);
    int status = rn_broker_failed(a.b) ? 1 : 0;
    print_counters(&a, rn_info);
    rn_broker_free(a.b);
    uv_loop_close(loop);
    return rn_cli_exit(status);
}
