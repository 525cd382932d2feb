/* kbench.c -- the Kafka client of scripts/bench-brokerd: produce COUNT
 * messages of SIZE bytes as fast as librdkafka batches them, or consume COUNT
 * messages from the beginning of every partition of a topic, and print the
 * rate. Works against brokerd and against any Kafka broker.
 *
 *   kbench produce -b HOST:PORT -t TOPIC -n COUNT -s SIZE [--acks N] [--linger MS]
 *   kbench consume -b HOST:PORT -t TOPIC -n COUNT [-s SIZE] [--timeout S]
 *
 * stdout gets one line of key=value figures (MB are 10^6 bytes of payload);
 * diagnostics go to stderr. Exit status 1 on any delivery failure, consume
 * error, wrong message size, or a consumer that stalls for --timeout seconds
 * (default 30). Not installed; librdkafka only, no librunnel. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

static const char *me = "kbench";

static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", me);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: kbench produce -b host:port -t topic -n count -s size [--acks n] [--linger ms]\n"
            "       kbench consume -b host:port -t topic -n count [-s size] [--timeout s]\n"
            "                      [--min-bytes n]\n");
    exit(2);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long num(const char *s, long long min, long long max, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < min || v > max)
        die("%s: '%s' is not a number in %lld..%lld", what, s, min, max);
    return v;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char errstr[512];
    if (rd_kafka_conf_set(conf, k, v, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        die("%s=%s: %s", k, v, errstr);
}

static void report(const char *mode, long long n, long long bytes, double secs)
{
    if (secs <= 0)
        secs = 1e-9;
    printf("kbench %s: messages=%lld bytes=%lld seconds=%.3f msg_per_s=%.0f MB_per_s=%.1f\n",
           mode, n, bytes, secs, n / secs, bytes / secs / 1e6);
}

/* ---- produce ---- */

static long long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        if (failed++ == 0)
            fprintf(stderr, "%s: delivery failed: %s\n", me, rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static int produce(const char *brokers, const char *topic, long long n, long long size,
                   const char *acks, const char *linger)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    set(conf, "bootstrap.servers", brokers);
    set(conf, "acks", acks);
    set(conf, "linger.ms", linger);
    set(conf, "batch.num.messages", "100000");
    set(conf, "batch.size", "1000000");
    set(conf, "queue.buffering.max.messages", "1000000");
    set(conf, "queue.buffering.max.kbytes", "262144");
    set(conf, "enable.idempotence", "false");
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!rk)
        die("%s", errstr);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    if (!rkt)
        die("%s: %s", topic, rd_kafka_err2str(rd_kafka_last_error()));
    char *payload = malloc((size_t)size + 1);
    if (!payload)
        die("out of memory");
    for (long long i = 0; i < size; i++)
        payload[i] = (char)('a' + i % 26);

    double t0 = now_s();
    for (long long i = 0; i < n; i++) {
        if (size >= 12) {                           /* a sequence number, for eyes */
            char seq[24];
            snprintf(seq, sizeof seq, "%012lld", i % 1000000000000LL);
            memcpy(payload, seq, 12);
        }
        while (rd_kafka_produce(rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, payload,
                                (size_t)size, NULL, 0, NULL) < 0) {
            rd_kafka_resp_err_t e = rd_kafka_last_error();
            if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                die("produce: %s", rd_kafka_err2str(e));
            rd_kafka_poll(rk, 1);
        }
        if ((i & 1023) == 0)
            rd_kafka_poll(rk, 0);
    }
    rd_kafka_resp_err_t fe = rd_kafka_flush(rk, 120 * 1000);
    double t1 = now_s();
    if (fe)
        fprintf(stderr, "%s: flush: %s (%d messages not delivered)\n", me, rd_kafka_err2str(fe),
                rd_kafka_outq_len(rk));
    report("produce", delivered, delivered * size, t1 - t0);
    free(payload);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    if (failed || fe || delivered != n) {
        fprintf(stderr, "%s: %lld of %lld messages delivered, %lld failed\n", me, delivered, n,
                failed);
        return 1;
    }
    return 0;
}

/* ---- consume ---- */

static int consume(const char *brokers, const char *topic, long long n, long long size,
                   int timeout_s, const char *min_bytes)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    set(conf, "bootstrap.servers", brokers);
    /* librdkafka's assign() wants a group id; partitions are assigned here
     * (no rebalance) and nothing is committed. */
    char group[64];
    snprintf(group, sizeof group, "kbench-%ld", (long)getpid());
    set(conf, "group.id", group);
    set(conf, "enable.auto.commit", "false");
    set(conf, "enable.partition.eof", "false");
    set(conf, "fetch.wait.max.ms", "100");
    if (min_bytes)
        set(conf, "fetch.min.bytes", min_bytes);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (!rk)
        die("%s", errstr);
    rd_kafka_poll_set_consumer(rk);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10 * 1000);
    if (e)
        die("metadata for %s: %s", topic, rd_kafka_err2str(e));
    if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        die("%s: %s", topic, md->topic_cnt == 1 && md->topics[0].err
                                 ? rd_kafka_err2str(md->topics[0].err) : "no partitions");
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (int i = 0; i < md->topics[0].partition_cnt; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);

    double t0 = now_s(), last = t0;
    if ((e = rd_kafka_assign(rk, parts)))
        die("assign: %s", rd_kafka_err2str(e));
    rd_kafka_topic_partition_list_destroy(parts);
    long long got = 0, bytes = 0, bad = 0;
    int rc = 0;
    while (got < n) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        double t = now_s();
        if (!m) {
            if (t - last > timeout_s) {
                fprintf(stderr, "%s: no message for %d s after %lld of %lld\n", me, timeout_s,
                        got, n);
                rc = 1;
                break;
            }
            continue;
        }
        last = t;
        if (m->err) {
            fprintf(stderr, "%s: consume: %s\n", me, rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            rc = 1;
            break;
        }
        if (size >= 0 && (long long)m->len != size && bad++ == 0)
            fprintf(stderr, "%s: partition %d offset %" PRId64 ": %zu bytes, expected %lld\n",
                    me, m->partition, m->offset, m->len, size);
        got++;
        bytes += (long long)m->len;
        rd_kafka_message_destroy(m);
    }
    double t1 = now_s();
    report("consume", got, bytes, t1 - t0);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    if (bad) {
        fprintf(stderr, "%s: %lld messages of the wrong size\n", me, bad);
        rc = 1;
    }
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "acks", required_argument, NULL, 'a' },
        { "linger", required_argument, NULL, 'l' },
        { "timeout", required_argument, NULL, 'T' },
        { "min-bytes", required_argument, NULL, 'm' },
        { NULL, 0, NULL, 0 },
    };
    if (argc < 2)
        usage();
    const char *mode = argv[1];
    int prod = !strcmp(mode, "produce");
    if (!prod && strcmp(mode, "consume"))
        usage();
    const char *brokers = NULL, *topic = NULL, *acks = "1", *linger = "5", *min_bytes = NULL;
    long long n = -1, size = -1;
    int timeout_s = 30, c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "b:t:n:s:", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'n': n = num(optarg, 1, 1LL << 40, "-n"); break;
        case 's': size = num(optarg, 0, 100 << 20, "-s"); break;
        case 'a': num(optarg, -1, 1, "--acks"); acks = optarg; break;
        case 'l': num(optarg, 0, 60000, "--linger"); linger = optarg; break;
        case 'T': timeout_s = (int)num(optarg, 1, 3600, "--timeout"); break;
        case 'm': num(optarg, 1, 100000000, "--min-bytes"); min_bytes = optarg; break;
        default: usage();
        }
    }
    if (optind != argc || !brokers || !topic || n < 0)
        usage();
    if (prod && size < 0)
        die("produce needs -s SIZE");
    if (!prod && (strcmp(acks, "1") || strcmp(linger, "5")))
        die("--acks and --linger are for produce");
    if (prod && min_bytes)
        die("--min-bytes is for consume");
    return prod ? produce(brokers, topic, n, size, acks, linger)
                : consume(brokers, topic, n, size, timeout_s, min_bytes);
}
