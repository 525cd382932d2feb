/* check_tailhop.c -- the specification of logtail --to (lib/tail/tailhop.c),
 * as tests: the follow engine's lines go to an rn_hop_server on the same
 * private loop, wired as logtail wires them (a uv_check ends each turn, the
 * engine's on_stop finishes the hop). The position file is saved only for
 * batches the receiver acknowledged, never for a NACK, a BUSY or a receiver
 * that went away; the engine pauses at the unacknowledged limits (32 batches,
 * 16 MiB); --once waits for every acknowledgement unless a stop bounds it. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "core/core.h"
#include "hop/hop.h"
#include "tail/tail.h"
#include "ckutil.h"

/* ---- the receiver ---------------------------------------------------------------- */

enum { RX_ACK, RX_HOLD, RX_NACK, RX_BUSY, RX_GONE };

static struct {
    uv_loop_t loop;
    rn_hop_server *srv, *gone;  /* the receiver; one that went away */
    char addr[64];
    int policy;
    char got[65536];            /* every batch taken, its bodies */
    char last[8192];            /* the last batch offered */
    unsigned offers;
    uint64_t held_conn[128], held_serial[128];
    size_t nheld;
    rn_tail *tail;
    rn_tailhop *hop;
    uv_check_t check;
    int tail_stopped;
    char file[512], pos[512];
} T;

static int on_batch(void *data, const rn_hop_batch *b)
{
    (void)data;
    T.offers++;
    T.last[0] = '\0';
    ck_events_text(b->events, b->len, b->count, 0, T.last, sizeof T.last);
    if (T.policy == RX_BUSY)
        return RN_HOP_BUSY;
    size_t n = strlen(T.got);
    snprintf(T.got + n, sizeof T.got - n, "%s", T.last);
    switch (T.policy) {
    case RX_ACK:
        rn_hop_server_ack(T.srv, b->conn, b->serial, RN_HOP_STORED);
        break;
    case RX_HOLD:
        ck_assert_uint_lt(T.nheld, 128);
        T.held_conn[T.nheld] = b->conn;
        T.held_serial[T.nheld++] = b->serial;
        break;
    case RX_NACK:
        rn_hop_server_nack(T.srv, b->conn, b->serial, "not now");
        break;
    default:        /* taken, and the receiver goes away before it answers */
        rn_hop_server_close(T.srv);
        T.gone = T.srv;
        T.srv = NULL;
        break;
    }
    return RN_HOP_TAKEN;
}

/* Listen on addr ("127.0.0.1:0" for a new port). */
static void receiver(const char *addr, int policy)
{
    char err[RN_ERRLEN];
    rn_hop_server_opts o = { .on_batch = on_batch, .on_warn = ck_warn };
    T.srv = rn_hop_server_new(&T.loop, &o, err);
    ck_assert_msg(T.srv != NULL, "%s", err);
    ck_assert_msg(rn_hop_server_listen(T.srv, addr, err) == 0, "%s", err);
    snprintf(T.addr, sizeof T.addr, "%s", rn_hop_server_address(T.srv));
    T.policy = policy;
}

/* Acknowledge the first n held batches; n = -1: all, and the ones that
 * come later as they come. */
static void ack_held(long n)
{
    size_t k = n < 0 || (size_t)n > T.nheld ? T.nheld : (size_t)n;
    for (size_t i = 0; i < k; i++)
        rn_hop_server_ack(T.srv, T.held_conn[i], T.held_serial[i], RN_HOP_STORED);
    memmove(T.held_conn, T.held_conn + k, (T.nheld - k) * sizeof T.held_conn[0]);
    memmove(T.held_serial, T.held_serial + k, (T.nheld - k) * sizeof T.held_serial[0]);
    T.nheld -= k;
    if (n < 0)
        T.policy = RX_ACK;
}

/* ---- the engine and the hop, as logtail wires them ------------------------------------ */

static int on_line(void *data, const rn_line *l)
{
    rn_event ev;
    (void)data;
    rn_event_clear(&ev);
    ev.ts = l->ts;
    ev.body = (rn_str){ l->data, l->len };
    return rn_tailhop_put(T.hop, &ev) < 0 ? -1 : 0;
}

static int on_flush(void *data)
{
    (void)data;
    return 0;
}

static void on_stop(void *data)
{
    (void)data;
    T.tail_stopped = 1;
    rn_tailhop_finish(T.hop);
}

static void on_check(uv_check_t *h)
{
    (void)h;
    rn_tailhop_turn(T.hop);
}

typedef struct start_opts {
    int once;
    uint32_t batch;
    int64_t drain_ns;
    size_t max_line;
    const char *pos;            /* default T.pos; "" for none */
    int manual_turns;           /* the test calls rn_tailhop_turn itself */
} start_opts;

static void start(start_opts so)
{
    char err[RN_ERRLEN], url[128];
    const char *pos = !so.pos ? T.pos : so.pos[0] ? so.pos : NULL;
    rn_tailhop_opts ho = { .pos_path = pos, .batch = so.batch, .commit_ns = 20 * MS,
                           .drain_ns = so.drain_ns ? so.drain_ns : 10000 * MS,
                           .on_warn = ck_warn };
    snprintf(url, sizeof url, "tcp://%s", T.addr);
    ck_assert_msg(rn_hop_url_parse(url, &ho.url, err) == 0, "%s", err);
    T.hop = rn_tailhop_new(&T.loop, &ho, err);
    ck_assert_msg(T.hop != NULL, "%s", err);
    rn_tail_opts o = {
        .once = so.once, .max_line = so.max_line ? so.max_line : 1 << 20,
        .scan_ns = 20 * MS, .rotate_wait_ns = 100 * MS, .commit_ns = 20 * MS,
        .restart_ns = 100 * MS, .pos_path = pos, .on_line = on_line, .on_flush = on_flush,
        .on_warn = ck_warn, .on_stop = on_stop, .manual_commit = 1,
    };
    T.tail = rn_tail_new(&T.loop, &o, err);
    ck_assert_msg(T.tail != NULL, "%s", err);
    rn_tailhop_attach(T.hop, T.tail);
    ck_assert_int_eq(rn_tail_add_path(T.tail, T.file, err), 0);
    uv_check_init(&T.loop, &T.check);
    if (!so.manual_turns)
        uv_check_start(&T.check, on_check);
    uv_unref((uv_handle_t *)&T.check);
    ck_assert_msg(rn_tail_start(T.tail, err) == 0, "%s", err);
}

static void close_receiver(void)
{
    if (T.srv)
        rn_hop_server_close(T.srv);
    ck_script_close();
}

/* The script gave up: stop everything without waiting. */
static void force_stop(void)
{
    rn_tailhop_stop(T.hop);
    rn_tailhop_stop(T.hop);
    rn_tail_stop(T.tail);
    close_receiver();
}

/* Run the loop to its end (the engine, the hop and the receiver all
 * closed), with script; nothing may be left open. */
static void run(int (*script)(int step))
{
    ck_script_start(&T.loop, script, force_stop);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&T.check, NULL);
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
    ck_assert_msg(!ck_script_timed_out(), "timed out at step %d; received %s; %s",
                  ck_script_step(), T.got, ck_warns());
}

static uint64_t xc(const char *name)
{
    return rn_counter_get(rn_tailhop_counters(T.hop), name);
}

static uint64_t lines(void)
{
    return rn_counter_get(rn_tail_counters(T.tail), "lines");
}

/* The last step of most scripts: once the engine has stopped and every
 * batch is acknowledged, the hop has closed; close the receiver. */
static int done_when_acked(void)
{
    if (!T.tail_stopped || xc("acked") != xc("batches"))
        return 0;
    close_receiver();
    return 1;
}

/* The saved offset of T.file, or -1 when there is no position file. */
static int64_t pos_offset(void)
{
    rn_posfile pf = { 0 };
    rn_fileid id;
    char err[RN_ERRLEN];

    if (access(T.pos, F_OK) != 0)
        return -1;
    ck_assert_msg(rn_posfile_load(&pf, T.pos, err) == 0, "%s", err);
    ck_assert_uint_eq(pf.n, 1);
    ck_assert_str_eq(pf.e[0].path, T.file);
    int fd = open(T.file, O_RDONLY);
    ck_assert_int_eq(rn_fileid_of(fd, &id, err), 0);
    close(fd);
    ck_assert(pf.e[0].id.dev == id.dev && pf.e[0].id.ino == id.ino);
    int64_t off = (int64_t)pf.e[0].offset;
    rn_posfile_free(&pf);
    return off;
}

/* A step: once the position file says off, stop the engine. */
static int stop_at(int64_t off)
{
    if (pos_offset() != off)
        return 0;
    rn_tail_stop(T.tail);
    return 1;
}

static void setup(void)
{
    memset(&T, 0, sizeof T);
    ck_tmpdir_make("check_tailhop");
    snprintf(T.file, sizeof T.file, "%s", ck_path("app.log"));
    snprintf(T.pos, sizeof T.pos, "%s", ck_path("pos"));
    ck_assert_int_eq(uv_loop_init(&T.loop), 0);
}

static void teardown(void)
{
    rn_tail_free(T.tail);
    rn_tailhop_free(T.hop);
    if (T.srv)
        rn_hop_server_free(T.srv);
    if (T.gone)
        rn_hop_server_free(T.gone);
    ck_tmpdir_remove();
}

/* ---- --once ------------------------------------------------------------------------ */

static int script_done(int step)
{
    (void)step;
    return done_when_acked();
}

/* batch 2: l1 and l2 go out as a full batch (without positions), l3 at the
 * end of the turn with them. The partial line is not sent; the position is
 * its start. */
START_TEST(once_delivers)
{
    ck_put_file(T.file, "l1\nl2\nl3\npartial", 0);
    receiver("127.0.0.1:0", RX_ACK);
    start((start_opts){ .once = 1, .batch = 2 });
    run(script_done);
    ck_assert_str_eq(T.got, "l1|l2|l3|");
    ck_assert_uint_eq(xc("batches"), 2);
    ck_assert_uint_eq(xc("events"), 3);
    ck_assert_uint_eq(xc("acked"), 2);
    ck_assert_int_eq(pos_offset(), 9);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
    ck_assert_int_eq(ck_nwarns(), 0);
}
END_TEST

/* The end of input waits as long as it takes for the acknowledgement. */
static int script_ack_late(int step)
{
    if (step == 0) {
        if (!T.tail_stopped || strcmp(T.got, "l1|l2|l3|") != 0 || ck_step_ms() < 300)
            return 0;
        ck_assert_int_eq(pos_offset(), -1);
        ack_held(-1);
        return 1;
    }
    return done_when_acked();
}

START_TEST(once_waits_for_acks)
{
    ck_put_file(T.file, "l1\nl2\nl3\n", 0);
    receiver("127.0.0.1:0", RX_HOLD);
    start((start_opts){ .once = 1 });
    run(script_ack_late);
    ck_assert_int_eq(pos_offset(), 9);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
    ck_assert_uint_eq(xc("acked"), 1);
}
END_TEST

/* A stop bounds that wait to drain_ns (case 0), a second stop ends it now
 * (case 1, drain_ns a minute): unfinished, and no positions saved. */
static int stop_case;

static int script_stop_unacked(int step)
{
    if (step == 0) {
        if (!T.tail_stopped || strcmp(T.got, "l1|l2|l3|") != 0)
            return 0;
        rn_tailhop_stop(T.hop);
        if (stop_case == 1)
            rn_tailhop_stop(T.hop);
        return 1;
    }
    if (ck_step_ms() < 300)
        return 0;
    close_receiver();
    return 1;
}

START_TEST(stop_bounds_the_wait)
{
    ck_put_file(T.file, "l1\nl2\nl3\n", 0);
    receiver("127.0.0.1:0", RX_HOLD);
    stop_case = _i;
    start((start_opts){ .once = 1, .drain_ns = _i == 0 ? 100 * MS : 60000 * MS });
    run(script_stop_unacked);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 1);
    ck_assert_int_eq(pos_offset(), -1);
    ck_assert_uint_eq(xc("acked"), 0);
}
END_TEST

/* No position file: nothing saved. One that cannot be written: said. */
START_TEST(positions_optional_and_save_error)
{
    char want[600];

    ck_put_file(T.file, "l1\n", 0);
    receiver("127.0.0.1:0", RX_ACK);
    if (_i == 0) {
        start((start_opts){ .once = 1, .pos = "" });
    } else {
        snprintf(T.pos, sizeof T.pos, "%s", ck_path("no/such/pos"));
        start((start_opts){ .once = 1 });
    }
    run(script_done);
    ck_assert_str_eq(T.got, "l1|");
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
    char names[256];
    ck_list_dir(ck_dir, names, sizeof names);
    ck_assert_str_eq(names, "app.log ");
    if (_i == 0) {
        ck_assert_int_eq(ck_nwarns(), 0);
        return;
    }
    snprintf(want, sizeof want, "positions not saved: %s.tmp: No such file or directory; "
             "trying again at the next save\n", T.pos);
    ck_assert_int_ge(ck_nwarns(), 1);
    ck_assert_msg(strncmp(ck_warns(), want, strlen(want)) == 0, "%s", ck_warns());
    ck_assert_int_eq(rn_tailhop_failed(T.hop), 1);     /* the last save failed */
}
END_TEST

START_TEST(new_error)
{
    rn_tailhop_opts ho = { .on_warn = ck_warn };    /* no receiver in url */
    char err[RN_ERRLEN];

    ck_assert_ptr_null(rn_tailhop_new(&T.loop, &ho, err));
    ck_assert_str_eq(err, "hop sender: 0 receivers (1 to 16)");
    uv_run(&T.loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&T.loop), 0);
}
END_TEST

/* ---- following: positions after acknowledgements ---------------------------------------- */

/* batch 1: three lines read in one turn are three batches, and the turn's
 * positions ride the last: acks for the first two save nothing. */
static int script_ack_in_steps(int step)
{
    switch (step) {
    case 0:
        if (T.nheld < 3)
            return 0;
        ck_assert_str_eq(T.got, "l1|l2|l3|");
        ack_held(2);
        return 1;
    case 1:
        if (ck_step_ms() < 200)
            return 0;
        ck_assert_uint_eq(xc("acked"), 2);
        ck_assert_int_eq(pos_offset(), -1);
        ack_held(1);
        return 1;
    case 2:
        if (pos_offset() != 9)
            return 0;
        ck_put_file(T.file, "l4\n", 1);
        return 1;
    case 3:
        if (T.nheld < 1 || ck_step_ms() < 200)
            return 0;
        ck_assert_int_eq(pos_offset(), 9);
        ack_held(1);
        return 1;
    case 4:
        return stop_at(12);
    default:
        return done_when_acked();
    }
}

START_TEST(positions_follow_acks)
{
    ck_put_file(T.file, "l1\nl2\nl3\n", 0);
    receiver("127.0.0.1:0", RX_HOLD);
    start((start_opts){ .batch = 1 });
    run(script_ack_in_steps);
    ck_assert_str_eq(T.got, "l1|l2|l3|l4|");
    ck_assert_uint_eq(xc("batches"), 4);
    ck_assert_int_eq(pos_offset(), 12);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
}
END_TEST

/* Refused (NACK, case 0) or not taken (BUSY, case 1): no positions, until
 * the receiver takes and acknowledges the batch. */
static int script_refuse_then_take(int step)
{
    switch (step) {
    case 0:
        if (T.offers < (T.policy == RX_NACK ? 2u : 1u) || ck_step_ms() < 300)
            return 0;
        ck_assert_int_eq(pos_offset(), -1);
        ck_assert_uint_eq(xc("acked"), 0);
        if (T.policy == RX_NACK) {
            ck_assert_uint_ge(xc("nacks"), 1);
        } else {
            ck_assert_uint_eq(T.offers, 1);
            ck_assert_str_eq(T.got, "");
        }
        T.policy = RX_ACK;
        rn_hop_server_resume(T.srv);
        return 1;
    case 1:
        return stop_at(9);
    default:
        return done_when_acked();
    }
}

START_TEST(refused_does_not_advance)
{
    ck_put_file(T.file, "l1\nl2\nl3\n", 0);
    receiver("127.0.0.1:0", _i == 0 ? RX_NACK : RX_BUSY);
    start((start_opts){ 0 });
    run(script_refuse_then_take);
    ck_assert_str_eq(T.last, "l1|l2|l3|");
    ck_assert_uint_eq(xc("batches"), 1);
    ck_assert_uint_eq(xc("acked"), 1);
    ck_assert_int_eq(pos_offset(), 9);
    if (_i == 1)
        ck_assert_uint_eq(T.offers, 2);
}
END_TEST

/* The receiver takes the batch and goes away without answering: no
 * positions; one that comes back on the same address gets the batch again. */
static int script_come_back(int step)
{
    switch (step) {
    case 0:
        if (!T.gone || ck_step_ms() < 300)
            return 0;
        ck_assert_int_eq(pos_offset(), -1);
        ck_assert_uint_eq(xc("acked"), 0);
        ck_assert_msg(ck_warned("; retrying\n"), "%s", ck_warns());
        T.got[0] = '\0';
        receiver(T.addr, RX_ACK);
        return 1;
    case 1:
        return stop_at(9);
    default:
        return done_when_acked();
    }
}

START_TEST(receiver_goes_away)
{
    ck_put_file(T.file, "l1\nl2\nl3\n", 0);
    receiver("127.0.0.1:0", RX_GONE);
    start((start_opts){ 0 });
    run(script_come_back);
    ck_assert_str_eq(T.got, "l1|l2|l3|");
    ck_assert_uint_eq(xc("batches"), 1);
    ck_assert_uint_ge(xc("retries"), 1);
    ck_assert_uint_ge(xc("reconnects"), 1);
    ck_assert_int_eq(pos_offset(), 9);
}
END_TEST

/* A turn whose batches all went out full (batch 1 here) and were all
 * acknowledged before the turn ended: the loop can do that (a sender whose
 * socket is readable in the same poll phase reads an ack the receiver wrote
 * a moment before). The turn's positions then ride no batch, and are never
 * saved: after --once the position file stayed behind what was delivered,
 * until the turn learned to take such positions as acknowledged. */
static int script_turn_after_ack(int step)
{
    switch (step) {
    case 0:
        if (xc("acked") < 1)
            return 0;
        rn_tailhop_turn(T.hop);     /* the turn ends after the ack */
        return 1;
    case 1:
        if (ck_step_ms() < 200)
            return 0;
        rn_tail_stop(T.tail);
        return 1;
    default:
        return done_when_acked();
    }
}

START_TEST(positions_of_a_turn_acked_early)
{
    ck_put_file(T.file, "l1\n", 0);
    receiver("127.0.0.1:0", RX_ACK);
    start((start_opts){ .batch = 1, .manual_turns = 1 });
    run(script_turn_after_ack);
    ck_assert_str_eq(T.got, "l1|");
    ck_assert_int_eq(pos_offset(), 3);
}
END_TEST

/* ---- pausing ------------------------------------------------------------------------------ */

/* A turn of the engine reads 1 MiB of a file. --once over 70 lines, one a
 * batch, nothing acknowledged: lines of 32 KiB hand out 32 in the first turn,
 * which pause the engine; lines of 33825 bytes hand out 31, which do not, and
 * the next turn brings 62. The rest waits on disk until acks bring the
 * unacknowledged below 16. */
static const size_t pause_len[] = { 32768, 33825 };
static const uint64_t pause_at[] = { 32, 62 };
static int pause_case;

static int script_pause_32(int step)
{
    switch (step) {
    case 0:
        return lines() >= pause_at[pause_case];
    case 1:
        if (ck_step_ms() < 300)
            return 0;
        ck_assert_uint_eq(lines(), pause_at[pause_case]);
        ck_assert_uint_eq(xc("batches"), pause_at[pause_case]);
        ck_assert_uint_eq(T.nheld, 8);      /* the sender's window */
        ck_assert_int_eq(T.tail_stopped, 0);
        return 1;
    default:
        /* Acks from the script's timer, never within the turn that sent
         * the batch (every line is a full batch: see
         * positions_of_a_turn_acked_early). */
        ack_held(T.nheld);
        return done_when_acked();
    }
}

/* n lines of len bytes, "line NN xxx...\n"; what the receiver should
 * show of them into want. */
static void write_long_lines(int n, size_t len, char *want, size_t cap)
{
    char *line = malloc(len);
    int fd = open(T.file, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    ck_assert_ptr_nonnull(line);
    memset(line, 'x', len);
    line[len - 1] = '\n';
    want[0] = '\0';
    for (int i = 1; i <= n; i++) {
        char head[16];
        snprintf(head, sizeof head, "line %02d ", i);
        memcpy(line, head, 8);
        ck_assert_int_eq(rn_write_all(fd, line, len), 0);
        size_t k = strlen(want);
        snprintf(want + k, cap - k, "line %02d xxxxxxxx...(%zu bytes)|", i, len - 1);
    }
    close(fd);
    free(line);
}

START_TEST(pause_at_32_batches)
{
    static char want[8192];

    pause_case = _i;
    write_long_lines(70, pause_len[_i], want, sizeof want);
    receiver("127.0.0.1:0", RX_HOLD);
    start((start_opts){ .once = 1, .batch = 1 });
    run(script_pause_32);
    ck_assert_str_eq(T.got, want);
    ck_assert_uint_eq(lines(), 70);
    ck_assert_int_eq(pos_offset(), 70 * (int64_t)pause_len[_i]);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
}
END_TEST

/* Following: the same limit holds when the file grows while the engine is
 * paused (tail.c once read a file on its inotify event without looking at
 * the pause, so lines written while paused were read and sent at once). */
static void append_lines(int from, int to)
{
    char s[4096] = "";
    for (int i = from; i <= to; i++) {
        size_t n = strlen(s);
        snprintf(s + n, sizeof s - n, "line %02d\n", i);
    }
    ck_put_file(T.file, s, 1);
}

static int script_pause_growing(int step)
{
    switch (step) {
    case 0:
        append_lines(1, 32);
        return 1;
    case 1:
        if (lines() < 32)
            return 0;
        append_lines(33, 37);
        return 1;
    case 2:
        if (ck_step_ms() < 300)
            return 0;
        ck_assert_uint_eq(lines(), 32);
        ack_held(-1);
        return 1;
    case 3:
        return lines() >= 37 && stop_at(37 * 8);
    default:
        return done_when_acked();
    }
}

START_TEST(pause_while_file_grows)
{
    ck_put_file(T.file, "", 0);
    receiver("127.0.0.1:0", RX_HOLD);
    start((start_opts){ .batch = 1 });
    run(script_pause_growing);
    ck_assert_uint_eq(lines(), 37);
}
END_TEST

/* --once over ten lines of 2 MiB: each is a batch; eight are 16 MiB
 * unacknowledged and pause the engine; the rest is read once acks come.
 * A short last line makes the last turn's batch carry the positions even
 * when the receiver acknowledges the big ones within their turn (see
 * positions_of_a_turn_acked_early). */
#define BIG (2u << 20)

static int script_pause_16m(int step)
{
    switch (step) {
    case 0:
        return lines() >= 8;
    case 1:
        if (ck_step_ms() < 300)
            return 0;
        ck_assert_uint_eq(lines(), 8);
        ck_assert_uint_eq(xc("batches"), 8);
        ck_assert_int_eq(T.tail_stopped, 0);
        ack_held(-1);
        return 1;
    default:
        return done_when_acked();
    }
}

START_TEST(pause_at_16_mib)
{
    static char want[4096];

    write_long_lines(10, BIG, want, sizeof want);
    ck_put_file(T.file, "end\n", 1);
    strcat(want, "end|");
    receiver("127.0.0.1:0", RX_HOLD);
    start((start_opts){ .once = 1, .max_line = 2 * BIG });
    run(script_pause_16m);
    ck_assert_str_eq(T.got, want);
    ck_assert_int_eq(pos_offset(), 10 * (int64_t)BIG + 4);
    ck_assert_int_eq(rn_tailhop_unfinished(T.hop), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tailhop");

    signal(SIGPIPE, SIG_IGN);   /* as every tool does (rn_sig_ignore_pipe) */

    TCase *tc = tcase_create("once");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, once_delivers);
    tcase_add_test(tc, once_waits_for_acks);
    tcase_add_loop_test(tc, stop_bounds_the_wait, 0, 2);
    tcase_add_loop_test(tc, positions_optional_and_save_error, 0, 2);
    tcase_add_test(tc, new_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("acks");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, positions_follow_acks);
    tcase_add_loop_test(tc, refused_does_not_advance, 0, 2);
    tcase_add_test(tc, receiver_goes_away);
    tcase_add_test(tc, positions_of_a_turn_acked_early);
    suite_add_tcase(s, tc);

    tc = tcase_create("pause");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, pause_at_32_batches, 0, 2);
    tcase_add_test(tc, pause_at_16_mib);
    tcase_add_test(tc, pause_while_file_grows);
    suite_add_tcase(s, tc);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
