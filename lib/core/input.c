/* input.c -- the input loop of the tools that read a stream: wait for a
 * descriptor (or several), a deadline or a signal, with signals blocked but
 * in ppoll. */
#include "core/core.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The signals blocked but in the wait: the stops and SIGUSR1. */
static const int waited[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1 };
#define NWAITED (sizeof waited / sizeof waited[0])

int rn_input_init(rn_input *in, char *err)
{
    sigset_t block;
    int e;

    if (rn_sig_install(err) < 0)
        return RN_ERR;
    sigemptyset(&block);
    for (size_t i = 0; i < NWAITED; i++)
        sigaddset(&block, waited[i]);
    if ((e = pthread_sigmask(SIG_BLOCK, &block, &in->waitmask)) != 0)
        return rn_seterr(err, "pthread_sigmask: %s", strerror(e));
    for (size_t i = 0; i < NWAITED; i++)
        sigdelset(&in->waitmask, waited[i]);
    return 0;
}

int rn_input_signals(const rn_input *in)
{
    sigset_t pending, old;
    size_t i = 0;

    if (sigpending(&pending) < 0)
        return 0;
    while (i < NWAITED && !sigismember(&pending, waited[i]))
        i++;
    if (i == NWAITED)
        return 0;
    /* Unblocking delivers what is pending before the call returns: the
     * handlers have run once the mask is back. */
    pthread_sigmask(SIG_SETMASK, &in->waitmask, &old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 1;
}

int rn_input_waitv(const rn_input *in, const int *fd, int *ready, size_t n, int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    struct pollfd one, *p = &one;

    if (n > 1 && !(p = calloc(n, sizeof *p))) {
        errno = ENOMEM;
        return RN_ERR;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fd[i], .events = POLLIN };
    if (deadline >= 0) {
        int64_t left = deadline - rn_mono_ns();
        if (left < 0)
            left = 0;
        ts.tv_sec = (time_t)(left / 1000000000);
        ts.tv_nsec = (long)(left % 1000000000);
        tp = &ts;
    }
    int r = ppoll(p, (nfds_t)n, tp, &in->waitmask), e = errno;
    for (size_t i = 0; i < n; i++) {
        ready[i] = r > 0 && p[i].fd >= 0 && p[i].revents != 0;
        if (r > 0 && (p[i].revents & POLLNVAL))
            r = -2;
    }
    if (p != &one)
        free(p);
    if (r == -1) {
        errno = e;
        return e == EINTR ? RN_EINTR : RN_ERR;
    }
    /* A descriptor that is ready wins over a pending signal in ppoll, which
     * then returns with the signal still pending: behind a busy input it
     * would wait for ever. */
    if (rn_input_signals(in))
        return RN_EINTR;
    if (r == -2) {
        errno = EBADF;
        return RN_ERR;
    }
    return r == 0 ? RN_INPUT_TIMEOUT : RN_INPUT_READY;
}

int rn_input_wait(const rn_input *in, int fd, int64_t deadline)
{
    int ready;
    return rn_input_waitv(in, &fd, &ready, 1, deadline);
}

/* 1 when every input is a regular file: always readable, so the loop
 * reads without polling (and without a side source to wait on). */
static int all_regular(const int *fd, size_t n, int *reg)
{
    int all = 1;
    for (size_t i = 0; i < n; i++) {
        struct stat sb;
        reg[i] = fstat(fd[i], &sb) == 0 && S_ISREG(sb.st_mode);
        all &= reg[i];
    }
    return all;
}

int rn_input_runv(const rn_input *in, const int *fds, const char *const *name, size_t n,
                  const rn_input_ops *ops, const rn_inputv_ops *vops, void *data, char *err)
{
    char buf[RN_INPUT_READ], why[RN_ERRLEN], *fbuf = NULL;
    int64_t sig_next = 0;       /* nopoll: when to look at the signals next */
    /* fd[n]: the side source's descriptor, or -1. */
    int *fd = malloc((n + 1) * sizeof *fd), *ready = malloc((n + 1) * sizeof *ready);
    int *reg = malloc((n + 1) * sizeof *reg), nopoll = 0;
    size_t open = n;
    int ret;

    if (!fd || !ready || !reg) {
        ret = rn_seterr(err, "out of memory");
        goto out;
    }
    memcpy(fd, fds, n * sizeof *fd);
    fd[n] = -1;
    /* Regular files are read in larger pieces and without a poll before
     * each read: both save system calls, which are dear in a VM (7-12 us
     * each on the machine this was measured on). */
    nopoll = all_regular(fd, n, reg) && !ops->side_fd;
    for (;;) {
        if (!open) {
            ret = RN_INPUT_END;
            goto out;
        }
        if (rn_sig_stop) {
            ret = RN_EINTR;
            goto out;
        }
        if (rn_sig_usr1 && ops->on_usr1) {
            rn_sig_usr1 = 0;
            ops->on_usr1(data);
        }
        int r = RN_INPUT_TIMEOUT;
        size_t nw = n;
        if (nopoll) {
            /* A look every RN_INPUT_SIGNAL_NS, not every read: the clock
             * is read without a system call. */
            r = RN_INPUT_READY;
            if (rn_mono_ns() >= sig_next) {
                if (rn_input_signals(in))
                    r = RN_EINTR;
                sig_next = rn_mono_ns() + RN_INPUT_SIGNAL_NS;
            }
            for (size_t i = 0; i < n; i++)
                ready[i] = fd[i] >= 0;
        } else {
            int64_t deadline = ops->deadline ? ops->deadline(data) : -1;
            if (ops->side_fd && (fd[n] = ops->side_fd(data)) >= 0)
                nw = n + 1;
            if (ops->on_idle) {
                /* A look without sleeping first: only an input with nothing
                 * waiting is idle. */
                r = rn_input_waitv(in, fd, ready, n, 0);
                if (r == RN_INPUT_TIMEOUT && ops->on_idle(data) != 0) {
                    ret = RN_INPUT_STOPPED;
                    goto out;
                }
            }
            if (r == RN_INPUT_TIMEOUT)
                r = rn_input_waitv(in, fd, ready, nw, deadline);
        }
        if (ops->on_side && r != RN_ERR)
            ops->on_side(data);
        if (r == RN_EINTR)
            continue;
        if (r == RN_ERR) {
            ret = rn_seterr(err, "%s: poll: %s", n == 1 ? name[0] : "inputs", strerror(errno));
            goto out;
        }
        if (r == RN_INPUT_TIMEOUT) {
            if (ops->on_deadline && ops->on_deadline(data) != 0) {
                ret = RN_INPUT_STOPPED;
                goto out;
            }
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            if (!ready[i])
                continue;
            size_t want = reg[i] ? RN_INPUT_READ_FILE : RN_INPUT_READ, room = sizeof buf;
            char *p = buf;
            if (!vops && ops->read_buf) {
                p = ops->read_buf(data, want, &room);
            } else if (reg[i]) {
                p = fbuf = fbuf ? fbuf : malloc(RN_INPUT_READ_FILE);
                room = RN_INPUT_READ_FILE;
            }
            if (!p) {
                ret = rn_seterr(err, "out of memory");
                goto out;
            }
            ssize_t got = read(fd[i], p, room < want ? room : want);
            int v;
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got > 0 && !vops) {
                v = ops->on_bytes(data, p, (size_t)got) != 0;
            } else if (got > 0) {
                v = vops->on_bytes(data, i, p, (size_t)got);
                if (v == RN_INPUT_CLOSE) {
                    fd[i] = -1;
                    open--;
                    continue;
                }
            } else {
                if (got < 0)
                    snprintf(why, sizeof why, "%s: %s", name[i], strerror(errno));
                fd[i] = -1;
                open--;
                if (!vops && got < 0) {         /* one input: its failure is the loop's */
                    ret = rn_seterr(err, "%s", why);
                    goto out;
                }
                v = vops ? vops->on_end(data, i, got < 0 ? why : NULL) : 0;
            }
            if (v != 0) {
                ret = RN_INPUT_STOPPED;
                goto out;
            }
        }
    }
out:
    free(fd);
    free(ready);
    free(reg);
    free(fbuf);
    return ret;
}

int rn_input_run(const rn_input *in, int fd, const char *name, const rn_input_ops *ops,
                 void *data, char *err)
{
    return rn_input_runv(in, &fd, &name, 1, ops, NULL, data, err);
}
