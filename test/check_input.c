/* check_input.c -- unit tests for lib/core/input.c: the wait (readable,
 * deadline, signals, the end of the input) on one descriptor and on
 * several, and the loop over one input and over several at once. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/core.h"

#define MS 1000000LL
#define PROMPT_MS 1000      /* "at once", with room for a loaded machine and ASan */

static rn_input in;
static sigset_t saved;
static int fds[2];

static void setup(void)
{
    char err[RN_ERRLEN];
    pthread_sigmask(SIG_SETMASK, NULL, &saved);
    ck_assert_msg(rn_input_init(&in, err) == 0, "%s", err);
    rn_sig_stop = 0;
    rn_sig_usr1 = 0;
    ck_assert_int_eq(pipe(fds), 0);
}

static void teardown(void)
{
    close(fds[0]);
    if (fds[1] >= 0)
        close(fds[1]);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static int64_t since_ms(int64_t t0) { return (rn_mono_ns() - t0) / MS; }

/* ---- a thread that acts later ---------------------------------------- */

typedef struct later {
    pthread_t t;
    int ms;
    int sig;                /* raised at the process, as kill(1) does */
    const char *bytes;      /* written to fd, or to fds[1] when fd is 0 */
    int fd;
    int close_writer;
} later;

static void *later_main(void *p)
{
    later *l = p;
    usleep((useconds_t)l->ms * 1000);
    int w = l->fd ? l->fd : fds[1];
    if (l->bytes && write(w, l->bytes, strlen(l->bytes)) != (ssize_t)strlen(l->bytes))
        return "write";     /* no ck_assert off the test's thread */
    if (l->close_writer) {
        close(fds[1]);
        fds[1] = -1;
    }
    if (l->sig)
        kill(getpid(), l->sig);
    return NULL;
}

static void later_start(later *l) { ck_assert_int_eq(pthread_create(&l->t, NULL, later_main, l), 0); }
static void later_join(later *l)
{
    void *r;
    pthread_join(l->t, &r);
    ck_assert_msg(r == NULL, "the helper thread's %s failed", (const char *)r);
}

/* ---- the wait ---------------------------------------------------------- */

START_TEST(readable)
{
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], rn_mono_ns() + 50 * MS), RN_INPUT_TIMEOUT);
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], rn_mono_ns() + 10000 * MS), RN_INPUT_READY);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    /* Readable from another thread while waiting. */
    char c;
    ck_assert_int_eq(read(fds[0], &c, 1), 1);
    later l = { .ms = 100, .bytes = "y" };
    later_start(&l);
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], -1), RN_INPUT_READY);
    ck_assert_int_ge(since_ms(t0), 90);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    later_join(&l);
}
END_TEST

START_TEST(deadline)
{
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], t0 + 200 * MS), RN_INPUT_TIMEOUT);
    int64_t took = since_ms(t0);
    ck_assert_int_ge(took, 200);
    ck_assert_int_lt(took, 200 + 500);
    /* A deadline that has passed: a look that does not sleep. */
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], 0), RN_INPUT_TIMEOUT);
    ck_assert_int_lt(since_ms(t0), 50);
    /* No descriptor: the deadline alone. */
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, -1, t0 + 100 * MS), RN_INPUT_TIMEOUT);
    ck_assert_int_ge(since_ms(t0), 100);
}
END_TEST

START_TEST(signal_from_thread)
{
    later l = { .ms = 100, .sig = SIGTERM };
    later_start(&l);
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], t0 + 10000 * MS), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    later_join(&l);
}
END_TEST

START_TEST(signal_from_timer)
{
    timer_t tm;
    struct sigevent sev = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
    struct itimerspec its = { .it_value = { 0, 100 * MS } };
    ck_assert_int_eq(timer_create(CLOCK_MONOTONIC, &sev, &tm), 0);
    ck_assert_int_eq(timer_settime(tm, 0, &its, NULL), 0);
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], t0 + 10000 * MS), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(rn_sig_usr1, 1);
    ck_assert_int_eq(rn_sig_stop, 0);
    timer_delete(tm);
}
END_TEST

/* The race: the flags were checked, a signal comes, then the wait begins.
 * Blocked, the signal waits for the wait, which returns at once. */
START_TEST(signal_before_wait)
{
    raise(SIGUSR1);
    ck_assert_int_eq(rn_sig_usr1, 0);      /* blocked: not yet handled */
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], t0 + 10000 * MS), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(rn_sig_usr1, 1);
    /* Taken once: the next wait sleeps to its deadline. */
    ck_assert_int_eq(rn_input_wait(&in, fds[0], rn_mono_ns() + 50 * MS), RN_INPUT_TIMEOUT);
}
END_TEST

/* ppoll lets a ready descriptor win over a pending signal and leaves the
 * signal pending: behind an input that is always readable it would never
 * be handled. */
START_TEST(signal_before_wait_busy)
{
    ck_assert_int_eq(write(fds[1], "x", 1), 1);
    raise(SIGTERM);
    ck_assert_int_eq(rn_input_wait(&in, fds[0], -1), RN_EINTR);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    ck_assert_int_eq(rn_input_wait(&in, fds[0], -1), RN_INPUT_READY);
}
END_TEST

START_TEST(signals_without_wait)
{
    ck_assert_int_eq(rn_input_signals(&in), 0);
    raise(SIGUSR1);
    ck_assert_int_eq(rn_sig_usr1, 0);
    ck_assert_int_eq(rn_input_signals(&in), 1);
    ck_assert_int_eq(rn_sig_usr1, 1);
    ck_assert_int_eq(rn_input_signals(&in), 0);
}
END_TEST

START_TEST(end_and_hangup)
{
    char buf[8];
    ck_assert_int_eq(write(fds[1], "ab", 2), 2);
    close(fds[1]);
    fds[1] = -1;
    ck_assert_int_eq(rn_input_wait(&in, fds[0], -1), RN_INPUT_READY);
    ck_assert_int_eq(read(fds[0], buf, sizeof buf), 2);
    ck_assert_int_eq(rn_input_wait(&in, fds[0], -1), RN_INPUT_READY);
    ck_assert_int_eq(read(fds[0], buf, sizeof buf), 0);
    /* The writer going away while the reader waits wakes it. */
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(fds[0]);
    fds[0] = p[0];
    fds[1] = p[1];
    later l = { .ms = 100, .close_writer = 1 };
    later_start(&l);
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_wait(&in, fds[0], t0 + 10000 * MS), RN_INPUT_READY);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(read(fds[0], buf, sizeof buf), 0);
    later_join(&l);
}
END_TEST

START_TEST(bad_descriptor)
{
    int fd = dup(fds[0]);
    close(fd);
    errno = 0;
    ck_assert_int_eq(rn_input_wait(&in, fd, -1), RN_ERR);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

/* ---- the wait over several descriptors ----------------------------------- */

START_TEST(several_readable)
{
    int q[2];
    ck_assert_int_eq(pipe(q), 0);
    int fd[3] = { fds[0], -1, q[0] }, ready[3] = { 7, 7, 7 };
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 3, rn_mono_ns() + 50 * MS), RN_INPUT_TIMEOUT);
    ck_assert(ready[0] == 0 && ready[1] == 0 && ready[2] == 0);
    /* The second pipe becomes readable from another thread. */
    ck_assert_int_eq(write(q[1], "x", 1), 1);
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 3, -1), RN_INPUT_READY);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert(ready[0] == 0 && ready[1] == 0 && ready[2] == 1);
    later l = { .ms = 100, .bytes = "y" };
    later_start(&l);
    char c;
    ck_assert_int_eq(read(q[0], &c, 1), 1);
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 3, t0 + 10000 * MS), RN_INPUT_READY);
    ck_assert_int_ge(since_ms(t0), 90);
    ck_assert(ready[0] == 1 && ready[2] == 0);
    later_join(&l);
    /* Both at once; the end of one counts as ready. */
    close(q[1]);
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 3, -1), RN_INPUT_READY);
    ck_assert(ready[0] == 1 && ready[1] == 0 && ready[2] == 1);
    /* All negative: the deadline alone. */
    int none[2] = { -1, -1 };
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_waitv(&in, none, ready, 2, t0 + 100 * MS), RN_INPUT_TIMEOUT);
    ck_assert_int_ge(since_ms(t0), 100);
    /* One closed descriptor among open ones. */
    int bad = dup(q[0]);
    close(bad);
    int withbad[2] = { fds[0], bad };
    errno = 0;
    ck_assert_int_eq(rn_input_waitv(&in, withbad, ready, 2, -1), RN_ERR);
    ck_assert_int_eq(errno, EBADF);
    close(q[0]);
}
END_TEST

/* The signal guarantees hold over several descriptors: one that came
 * before the wait, and one behind a descriptor that is always ready. */
START_TEST(several_signals)
{
    int q[2];
    ck_assert_int_eq(pipe(q), 0);
    int fd[2] = { fds[0], q[0] }, ready[2];
    raise(SIGUSR1);
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 2, t0 + 10000 * MS), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(rn_sig_usr1, 1);
    ck_assert_int_eq(write(q[1], "x", 1), 1);
    raise(SIGTERM);
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 2, -1), RN_EINTR);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 2, -1), RN_INPUT_READY);
    ck_assert(ready[0] == 0 && ready[1] == 1);
    later l = { .ms = 100, .sig = SIGTERM };
    later_start(&l);
    char c;
    ck_assert_int_eq(read(q[0], &c, 1), 1);
    t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_waitv(&in, fd, ready, 2, t0 + 10000 * MS), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    later_join(&l);
    close(q[0]);
    close(q[1]);
}
END_TEST

/* ---- the loop ----------------------------------------------------------- */

typedef struct owner {
    rn_buf got;
    int64_t start, due;         /* due: -1 none */
    int deadlines, idles, usr1s;
    size_t got_at_first_idle;
    int64_t deadline_at_ms;
    int stop_on_bytes;
} owner;

static int o_bytes(void *data, const char *buf, size_t n)
{
    owner *o = data;
    ck_assert_int_eq(rn_buf_append(&o->got, buf, n), 0);
    return o->stop_on_bytes;
}

static int64_t o_deadline(void *data) { return ((owner *)data)->due; }

static int o_on_deadline(void *data)
{
    owner *o = data;
    o->deadlines++;
    o->deadline_at_ms = since_ms(o->start);
    o->due = -1;
    return 0;
}

static int o_idle(void *data)
{
    owner *o = data;
    if (!o->idles++)
        o->got_at_first_idle = o->got.len;
    return 0;
}

static void o_usr1(void *data) { ((owner *)data)->usr1s++; }

static const rn_input_ops ops = {
    .on_bytes = o_bytes,
    .deadline = o_deadline,
    .on_deadline = o_on_deadline,
    .on_idle = o_idle,
    .on_usr1 = o_usr1,
};

static owner owner_new(void)
{
    owner o = { .start = rn_mono_ns(), .due = -1 };
    return o;
}

START_TEST(run_to_end)
{
    char err[RN_ERRLEN];
    owner o = owner_new();
    ck_assert_int_eq(write(fds[1], "abc", 3), 3);
    later l = { .ms = 100, .bytes = "defgh", .close_writer = 1 };
    later_start(&l);
    ck_assert_int_eq(rn_input_run(&in, fds[0], "pipe", &ops, &o, err), RN_INPUT_END);
    later_join(&l);
    ck_assert_int_eq(o.got.len, 8);
    ck_assert_int_eq(memcmp(o.got.p, "abcdefgh", 8), 0);
    /* Idle only once nothing was waiting: after the bytes written first. */
    ck_assert_int_ge(o.idles, 1);
    ck_assert_int_eq(o.got_at_first_idle, 3);
    ck_assert_int_eq(o.deadlines, 0);
    rn_buf_free(&o.got);
}
END_TEST

START_TEST(run_deadline_while_idle)
{
    char err[RN_ERRLEN];
    owner o = owner_new();
    o.due = o.start + 100 * MS;
    later l = { .ms = 400, .close_writer = 1 };
    later_start(&l);
    ck_assert_int_eq(rn_input_run(&in, fds[0], "pipe", &ops, &o, err), RN_INPUT_END);
    later_join(&l);
    ck_assert_int_eq(o.deadlines, 1);
    ck_assert_int_ge(o.deadline_at_ms, 100);
    ck_assert_int_lt(o.deadline_at_ms, 400);
}
END_TEST

START_TEST(run_signals)
{
    char err[RN_ERRLEN];
    owner o = owner_new();
    later l1 = { .ms = 100, .sig = SIGUSR1 };
    later l2 = { .ms = 300, .sig = SIGTERM };
    later_start(&l1);
    later_start(&l2);
    ck_assert_int_eq(rn_input_run(&in, fds[0], "pipe", &ops, &o, err), RN_EINTR);
    int64_t took = since_ms(o.start);
    later_join(&l1);
    later_join(&l2);
    ck_assert_int_eq(o.usr1s, 1);
    ck_assert_int_eq(rn_sig_usr1, 0);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    ck_assert_int_ge(took, 290);
    ck_assert_int_lt(took, 300 + PROMPT_MS);
}
END_TEST

START_TEST(run_stop_pending)
{
    char err[RN_ERRLEN];
    owner o = owner_new();
    ck_assert_int_eq(write(fds[1], "abc", 3), 3);
    raise(SIGTERM);
    ck_assert_int_eq(rn_input_run(&in, fds[0], "pipe", &ops, &o, err), RN_EINTR);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
}
END_TEST

START_TEST(run_stopped_by_owner)
{
    char err[RN_ERRLEN];
    owner o = owner_new();
    o.stop_on_bytes = 7;
    ck_assert_int_eq(write(fds[1], "abc", 3), 3);
    ck_assert_int_eq(rn_input_run(&in, fds[0], "pipe", &ops, &o, err), RN_INPUT_STOPPED);
    ck_assert_int_eq(o.got.len, 3);
    rn_buf_free(&o.got);
}
END_TEST

START_TEST(run_read_error)
{
    char err[RN_ERRLEN] = "";
    owner o = owner_new();
    int fd = open(".", O_RDONLY | O_DIRECTORY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rn_input_run(&in, fd, "here", &ops, &o, err), RN_ERR);
    ck_assert_str_eq(err, "here: Is a directory");
    close(fd);
}
END_TEST

/* ---- a regular file ---------------------------------------------------- */

/* A regular file of n bytes, its contents in *want (to free); the
 * descriptor, open for reading and already unlinked. */
static int regular_file(size_t n, char **want)
{
    char path[] = "/tmp/check_input.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    *want = malloc(n);
    ck_assert_ptr_nonnull(*want);
    for (size_t i = 0; i < n; i++)
        (*want)[i] = (char)('a' + i * 7 % 26);
    ck_assert_int_eq(write(fd, *want, n), (ssize_t)n);
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

typedef struct reader {
    rn_buf got;
    size_t most;            /* the largest read */
    char space[RN_INPUT_READ_FILE + 100];
    int reads_to_space;     /* on_bytes given the owner's space */
} reader;

static int r_bytes(void *data, const char *buf, size_t n)
{
    reader *r = data;
    ck_assert_int_eq(rn_buf_append(&r->got, buf, n), 0);
    r->most = n > r->most ? n : r->most;
    r->reads_to_space += buf == r->space;
    return 0;
}

static char *r_buf(void *data, size_t want, size_t *room)
{
    reader *r = data;
    ck_assert_uint_le(want, sizeof r->space);
    *room = sizeof r->space;
    return r->space;
}

/* Read without a wait, RN_INPUT_READ_FILE bytes at a time, into the
 * owner's buffer when it names one; a stop that is pending still ends it. */
START_TEST(run_regular_file)
{
    char err[RN_ERRLEN], *want;
    size_t n = 2 * RN_INPUT_READ_FILE + 1000;
    int fd = regular_file(n, &want);
    static reader r;
    rn_input_ops rops = { .on_bytes = r_bytes };
    for (int own = 0; own <= 1; own++) {
        memset(&r, 0, sizeof r);
        rops.read_buf = own ? r_buf : NULL;
        ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
        ck_assert_int_eq(rn_input_run(&in, fd, "file", &rops, &r, err), RN_INPUT_END);
        ck_assert_uint_eq(r.got.len, n);
        ck_assert(memcmp(r.got.p, want, n) == 0);
        ck_assert_uint_eq(r.most, RN_INPUT_READ_FILE);
        ck_assert_int_eq(r.reads_to_space, own ? 3 : 0);
        rn_buf_free(&r.got);
    }
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    raise(SIGTERM);
    ck_assert_int_eq(rn_input_run(&in, fd, "file", &rops, &r, err), RN_EINTR);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    rn_buf_free(&r.got);
    free(want);
    close(fd);
}
END_TEST

/* ---- the loop over several inputs ---------------------------------------- */

typedef struct many {
    rn_buf got[3];
    int ended[3];           /* 1: at its end; 2: failed */
    char why[RN_ERRLEN];
    size_t close_at;        /* input closed by its owner after its bytes; 3: none */
    int order;              /* bumped per end */
    int end_order[3];
} many;

static int m_bytes(void *data, size_t i, const char *buf, size_t n)
{
    many *m = data;
    ck_assert_uint_lt(i, 3);
    ck_assert_int_eq(m->ended[i], 0);
    ck_assert_int_eq(rn_buf_append(&m->got[i], buf, n), 0);
    return i == m->close_at ? RN_INPUT_CLOSE : 0;
}

static int m_end(void *data, size_t i, const char *err)
{
    many *m = data;
    ck_assert_int_eq(m->ended[i], 0);
    m->ended[i] = err ? 2 : 1;
    m->end_order[i] = ++m->order;
    if (err)
        snprintf(m->why, sizeof m->why, "%s", err);
    return 0;
}

static const rn_inputv_ops mops = { m_bytes, m_end };
static const rn_input_ops no_ops = { 0 };

/* Three inputs read side by side: the second ends first, the first only
 * after the third has sent more; each one's bytes in order, each end told
 * once, then the loop ends. */
START_TEST(runv_side_by_side)
{
    char err[RN_ERRLEN];
    int q[2], r[2];
    ck_assert_int_eq(pipe(q), 0);
    ck_assert_int_eq(pipe(r), 0);
    many m = { .close_at = 3 };
    ck_assert_int_eq(write(fds[1], "a1", 2), 2);
    ck_assert_int_eq(write(r[1], "c1", 2), 2);
    close(q[1]);
    later l = { .ms = 100, .bytes = "a2", .close_writer = 1 };
    later_start(&l);
    ck_assert_int_eq(write(r[1], "c2", 2), 2);
    close(r[1]);
    int fd[3] = { fds[0], q[0], r[0] };
    const char *name[3] = { "a", "b", "c" };
    ck_assert_int_eq(rn_input_runv(&in, fd, name, 3, &no_ops, &mops, &m, err), RN_INPUT_END);
    later_join(&l);
    ck_assert_int_eq(m.got[0].len, 4);
    ck_assert(memcmp(m.got[0].p, "a1a2", 4) == 0);
    ck_assert_int_eq(m.got[1].len, 0);
    ck_assert_int_eq(m.got[2].len, 4);
    ck_assert(memcmp(m.got[2].p, "c1c2", 4) == 0);
    ck_assert(m.ended[0] == 1 && m.ended[1] == 1 && m.ended[2] == 1);
    /* a ended last: the others were not held up behind it. */
    ck_assert_int_eq(m.end_order[0], 3);
    for (int i = 0; i < 3; i++)
        rn_buf_free(&m.got[i]);
    close(q[0]);
    close(r[0]);
}
END_TEST

/* An input its owner closes, and one that fails, leave the others alone. */
START_TEST(runv_close_and_fail)
{
    char err[RN_ERRLEN];
    many m = { .close_at = 0 };
    int dir = open(".", O_RDONLY | O_DIRECTORY), q[2];
    ck_assert_int_ge(dir, 0);
    ck_assert_int_eq(pipe(q), 0);
    ck_assert_int_eq(write(fds[1], "a", 1), 1);
    later l = { .ms = 100, .bytes = "more" };
    later_start(&l);
    ck_assert_int_eq(write(q[1], "c", 1), 1);
    close(q[1]);
    int fd[3] = { fds[0], dir, q[0] };
    const char *name[3] = { "a", "here", "c" };
    ck_assert_int_eq(rn_input_runv(&in, fd, name, 3, &no_ops, &mops, &m, err), RN_INPUT_END);
    later_join(&l);
    ck_assert_int_eq(m.got[0].len, 1);      /* closed after its first bytes */
    ck_assert_int_eq(m.ended[0], 0);
    ck_assert_int_eq(m.ended[1], 2);
    ck_assert_str_eq(m.why, "here: Is a directory");
    ck_assert_int_eq(m.ended[2], 1);
    ck_assert_int_eq(m.got[2].len, 1);
    for (int i = 0; i < 3; i++)
        rn_buf_free(&m.got[i]);
    close(dir);
    close(q[0]);
}
END_TEST

/* A stop signal ends the loop over inputs that never end. */
START_TEST(runv_stop)
{
    char err[RN_ERRLEN];
    many m = { .close_at = 3 };
    int q[2];
    ck_assert_int_eq(pipe(q), 0);
    later l = { .ms = 100, .sig = SIGINT };
    later_start(&l);
    int fd[2] = { fds[0], q[0] };
    const char *name[2] = { "a", "b" };
    int64_t t0 = rn_mono_ns();
    ck_assert_int_eq(rn_input_runv(&in, fd, name, 2, &no_ops, &mops, &m, err), RN_EINTR);
    ck_assert_int_lt(since_ms(t0), PROMPT_MS);
    ck_assert_int_eq(rn_sig_stop, SIGINT);
    later_join(&l);
    close(q[0]);
    close(q[1]);
}
END_TEST

/* A side source: its descriptor wakes the loop (not read as an input), and
 * on_side runs after every wait; the input's end still ends the loop. */
typedef struct side { int fd, calls, woke; int64_t t0, woke_ms; } side;

static int side_fd(void *data) { return ((side *)data)->fd; }

static void on_side(void *data)
{
    side *s = data;
    char c;
    s->calls++;
    if (read(s->fd, &c, 1) == 1 && !s->woke++) {
        s->woke_ms = since_ms(s->t0);
        ck_assert_int_eq(write(fds[1], "x", 1), 1);
        close(fds[1]);
        fds[1] = -1;
    }
}

static int side_bytes(void *data, size_t i, const char *buf, size_t n)
{
    (void)data;
    ck_assert_uint_eq(i, 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(buf[0], 'x');     /* the side's byte was not read as input */
    return 0;
}

static int side_end(void *data, size_t i, const char *err)
{
    (void)data;
    (void)i;
    ck_assert_ptr_null(err);
    return 0;
}

START_TEST(runv_side_source)
{
    char err[RN_ERRLEN];
    int q[2];
    ck_assert_int_eq(pipe(q), 0);
    ck_assert_int_eq(fcntl(q[0], F_SETFL, O_NONBLOCK), 0);
    side s = { .fd = q[0], .t0 = rn_mono_ns() };
    later l = { .ms = 100, .fd = q[1], .bytes = "s" };
    later_start(&l);
    static const rn_input_ops ops = { .side_fd = side_fd, .on_side = on_side };
    static const rn_inputv_ops vops = { side_bytes, side_end };
    int fd[1] = { fds[0] };
    const char *name[1] = { "a" };
    ck_assert_int_eq(rn_input_runv(&in, fd, name, 1, &ops, &vops, &s, err), RN_INPUT_END);
    later_join(&l);
    ck_assert_int_eq(s.woke, 1);
    ck_assert_int_ge(s.woke_ms, 90);
    ck_assert_int_lt(s.woke_ms, PROMPT_MS);
    ck_assert_int_ge(s.calls, 2);
    close(q[0]);
    close(q[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("input");
    TCase *wait = tcase_create("wait");
    tcase_add_checked_fixture(wait, setup, teardown);
    tcase_add_test(wait, readable);
    tcase_add_test(wait, deadline);
    tcase_add_test(wait, signal_from_thread);
    tcase_add_test(wait, signal_from_timer);
    tcase_add_test(wait, signal_before_wait);
    tcase_add_test(wait, signal_before_wait_busy);
    tcase_add_test(wait, signals_without_wait);
    tcase_add_test(wait, end_and_hangup);
    tcase_add_test(wait, bad_descriptor);
    tcase_add_test(wait, several_readable);
    tcase_add_test(wait, several_signals);
    suite_add_tcase(s, wait);
    TCase *run = tcase_create("run");
    tcase_add_checked_fixture(run, setup, teardown);
    tcase_add_test(run, run_to_end);
    tcase_add_test(run, run_deadline_while_idle);
    tcase_add_test(run, run_signals);
    tcase_add_test(run, run_stop_pending);
    tcase_add_test(run, run_stopped_by_owner);
    tcase_add_test(run, run_read_error);
    tcase_add_test(run, run_regular_file);
    tcase_add_test(run, runv_side_by_side);
    tcase_add_test(run, runv_close_and_fail);
    tcase_add_test(run, runv_stop);
    tcase_add_test(run, runv_side_source);
    suite_add_tcase(s, run);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
