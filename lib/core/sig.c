/* sig.c -- flag-setting handlers for SIGINT, SIGTERM, SIGHUP, SIGUSR1; SIGPIPE ignored. */
#include "core/core.h"

#include <errno.h>
#include <string.h>


volatile sig_atomic_t rn_sig_stop;
volatile sig_atomic_t rn_sig_usr1;

static void on_stop(int sig) { rn_sig_stop = sig; }
static void on_usr1(int sig) { (void)sig; rn_sig_usr1 = 1; }

static int set(int sig, void (*fn)(int), char *err)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = fn;
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) < 0)
        return rn_seterr(err, "sigaction(%d): %s", sig, strerror(errno));
    return 0;
}

int rn_sig_ignore_pipe(char *err) { return set(SIGPIPE, SIG_IGN, err); }

int rn_sig_install(char *err)
{
    if (set(SIGINT, on_stop, err) < 0 || set(SIGTERM, on_stop, err) < 0
        || set(SIGHUP, on_stop, err) < 0 || set(SIGUSR1, on_usr1, err) < 0 || rn_sig_ignore_pipe(err) < 0)
        return -1;
    return 0;
}
