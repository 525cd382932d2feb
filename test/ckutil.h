/* ckutil.h -- what the Check suites of the chanbuf and logtail modules
 * (check_agent, check_sink, check_tailhop) share: a temporary directory per
 * test, warnings collected from any thread, files read and written whole,
 * events encoded and a batch's events written out as text to compare. */
#ifndef RN_TEST_CKUTIL_H
#define RN_TEST_CKUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/core.h"

#define MS 1000000LL

/* ---- the test's directory ---------------------------------------------------- */

/* mkdtemp("/tmp/NAME.XXXXXX") into ck_dir; ck_tmpdir_remove removes it whole. */
extern char ck_dir[128];
void ck_tmpdir_make(const char *name);
void ck_tmpdir_remove(void);

/* ck_dir/name, in one of a few static buffers (several may be used at once). */
const char *ck_path(const char *name);

/* Write s to path (created; appended to, or replaced). */
void ck_put_file(const char *path, const char *s, int append);

/* The whole of path into buf (NUL-terminated); its length, or -1 when it
 * cannot be opened. */
long ck_read_file(const char *path, char *buf, size_t cap);

/* The names in dir (not . and ..), sorted, each followed by ' ', into out. */
void ck_list_dir(const char *dir, char *out, size_t cap);

/* Every file in dir whose name starts with prefix, in name order, read and
 * concatenated into out, each followed by sep; returns how many files. */
int ck_read_files(const char *dir, const char *prefix, const char *sep, char *out,
                  size_t cap);

/* Make fd the process's descriptor target (0 or 1: what an agent or a sink
 * reads or writes); fd is taken. ck_restore_fds puts the originals back. */
void ck_redirect(int target, int fd);
void ck_restore_fds(void);

/* ---- warnings ------------------------------------------------------------------ */

/* An on_warn for any lib object: every message, one a line, under a lock
 * (sinks warn from their threads). */
void ck_warn(void *data, const char *msg);
void ck_warns_reset(void);
int ck_nwarns(void);
/* A copy of what was said so far. */
const char *ck_warns(void);
/* 1 when some warning contains s. */
int ck_warned(const char *s);

/* ---- events --------------------------------------------------------------------- */

/* Append one event as a frame (u32 BE length + msgpack), as channels and
 * hops carry them: ts, body, and up to two headers (k NULL: none). */
void ck_frame(rn_buf *b, int64_t ts, const char *body, const char *k1, const char *v1,
              const char *k2, const char *v2);

/* The events of a batch body as text, appended to out: "body|" for each, or
 * with headers "k=v,k=v:body|"; a body over 64 bytes as its first 16 and
 * "...(N bytes)". */
void ck_events_text(const char *p, size_t len, uint32_t count, int with_headers, char *out,
                    size_t cap);

/* ---- a script on the test's loop ---------------------------------------------------- */

/* fn(step) every 5 ms, from step 0; it returns 1 to go on to the next step.
 * After 8 s the script gives up: ck_script_timed_out is set and on_timeout
 * is called to close everything. ck_script_close closes its timer (call it
 * when the test is done; more than once is fine). */
void ck_script_start(uv_loop_t *loop, int (*fn)(int step), void (*on_timeout)(void));
void ck_script_close(void);
int ck_script_step(void);
int ck_script_timed_out(void);
/* Milliseconds since the current step began. */
int64_t ck_step_ms(void);

/* Wait (sleeping, for sinks that run in threads) until fn(arg) is true or
 * timeout_ms has passed; returns fn's last answer. */
int ck_wait_for(int (*fn)(void *arg), void *arg, int timeout_ms);

#endif
