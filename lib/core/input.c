/* input.c -- the input loop of the tools that read a stream: wait for a
 * descriptor, a deadline or a signal, with signals blocked but in ppoll. */
#include "core/core.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int rn_input_init(rn_input *in, char *err)
{
    sigset_t block;
    int e;

    if (rn_sig_install(err) < 0)
        return RN_ERR;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGUSR1);
    if ((e = pthread_sigmask(SIG_BLOCK, &block, &in->waitmask)) != 0)
        return rn_seterr(err, "pthread_sigmask: %s", strerror(e));
    sigdelset(&in->waitmask, SIGINT);
    sigdelset(&in->waitmask, SIGTERM);
    sigdelset(&in->waitmask, SIGUSR1);
    return 0;
}

int rn_input_signals(const rn_input *in)
{
    sigset_t pending, old;

    if (sigpending(&pending) < 0
        || !(sigismember(&pending, SIGINT) || sigismember(&pending, SIGTERM)
             || sigismember(&pending, SIGUSR1)))
        return 0;
    /* Unblocking delivers what is pending before the call returns: the
     * handlers have run once the mask is back. */
    pthread_sigmask(SIG_SETMASK, &in->waitmask, &old);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return 1;
}

int rn_input_wait(const rn_input *in, int fd, int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    struct pollfd p = { .fd = fd, .events = POLLIN };

    if (deadline >= 0) {
        int64_t left = deadline - rn_mono_ns();
        if (left < 0)
            left = 0;
        ts.tv_sec = (time_t)(left / 1000000000);
        ts.tv_nsec = (long)(left % 1000000000);
        tp = &ts;
    }
    int r = ppoll(&p, 1, tp, &in->waitmask);
    if (r < 0)
        return errno == EINTR ? RN_EINTR : RN_ERR;
    /* A descriptor that is ready wins over a pending signal in ppoll, which
     * then returns with the signal still pending: behind a busy input it
     * would wait for ever. */
    if (rn_input_signals(in))
        return RN_EINTR;
    if (r == 0)
        return RN_INPUT_TIMEOUT;
    if (p.revents & POLLNVAL) {
        errno = EBADF;
        return RN_ERR;
    }
    return RN_INPUT_READY;
}

int rn_input_run(const rn_input *in, int fd, const char *name, const rn_input_ops *ops,
                 void *data, char *err)
{
    char buf[RN_INPUT_READ];

    for (;;) {
        if (rn_sig_stop)
            return RN_EINTR;
        if (rn_sig_usr1 && ops->on_usr1) {
            rn_sig_usr1 = 0;
            ops->on_usr1(data);
        }
        int64_t deadline = ops->deadline ? ops->deadline(data) : -1;
        int r = RN_INPUT_TIMEOUT;
        if (ops->on_idle) {
            /* A look without sleeping first: only an input with nothing
             * waiting is idle. */
            r = rn_input_wait(in, fd, 0);
            if (r == RN_INPUT_TIMEOUT && ops->on_idle(data) != 0)
                return RN_INPUT_STOPPED;
        }
        if (r == RN_INPUT_TIMEOUT)
            r = rn_input_wait(in, fd, deadline);
        if (r == RN_EINTR)
            continue;
        if (r == RN_ERR)
            return rn_seterr(err, "%s: poll: %s", name, strerror(errno));
        if (r == RN_INPUT_TIMEOUT) {
            if (ops->on_deadline && ops->on_deadline(data) != 0)
                return RN_INPUT_STOPPED;
            continue;
        }
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return rn_seterr(err, "%s: %s", name, strerror(errno));
        }
        if (n == 0)
            return RN_INPUT_END;
        if (ops->on_bytes(data, buf, (size_t)n) != 0)
            return RN_INPUT_STOPPED;
    }
}
