/* sig.h -- the signal conventions every runnel tool keeps.
 *
 * SIGINT/SIGTERM ask the tool to stop reading, flush and exit 0; SIGUSR1 asks
 * for the counters; SIGPIPE is ignored so that a write to a closed pipe fails
 * with EPIPE and the tool can exit quietly. The handlers only set flags, and
 * are installed without SA_RESTART so that a blocking read returns EINTR and
 * the tool sees the flag at once. (Tools built on libuv use uv_signal_t for
 * the same signals instead and call only rn_sig_ignore_pipe.) */
#ifndef RN_SIG_H
#define RN_SIG_H

#include <signal.h>

extern volatile sig_atomic_t rn_sig_stop;   /* number of the stop signal, or 0 */
extern volatile sig_atomic_t rn_sig_usr1;   /* set on SIGUSR1; the tool clears it */

int rn_sig_install(char *err);
int rn_sig_ignore_pipe(char *err);

#endif
