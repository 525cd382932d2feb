/* ckutil.c -- helpers shared by check_agent, check_sink and check_tailhop
 * (see ckutil.h). */
#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckutil.h"
#include "hop/hop.h"

char ck_dir[128];

void ck_tmpdir_make(const char *name)
{
    snprintf(ck_dir, sizeof ck_dir, "/tmp/%s.XXXXXX", name);
    ck_assert_ptr_nonnull(mkdtemp(ck_dir));
    ck_warns_reset();
}

void ck_tmpdir_remove(void)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", ck_dir);
    ck_assert_int_eq(system(cmd), 0);
}

const char *ck_path(const char *name)
{
    static char buf[8][512];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", ck_dir, name);
    return buf[i];
}

void ck_put_file(const char *path, const char *s, int append)
{
    int fd = open(path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    ck_assert_msg(fd >= 0, "%s: cannot create", path);
    ck_assert_int_eq(rn_write_all(fd, s, strlen(s)), 0);
    close(fd);
}

long ck_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    size_t n = 0;
    if (fd < 0) {
        buf[0] = '\0';
        return -1;
    }
    for (;;) {
        ck_assert_msg(n < cap - 1, "%s: larger than %zu bytes", path, cap - 1);
        ssize_t k = read(fd, buf + n, cap - 1 - n);
        ck_assert_int_ge(k, 0);
        if (k == 0)
            break;
        n += (size_t)k;
    }
    close(fd);
    buf[n] = '\0';
    return (long)n;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dots(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

void ck_list_dir(const char *dir, char *out, size_t cap)
{
    struct dirent **de;
    int n = scandir(dir, &de, not_dots, by_name);
    out[0] = '\0';
    ck_assert_msg(n >= 0, "%s: cannot list", dir);
    for (int i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s ", de[i]->d_name);
        free(de[i]);
    }
    free(de);
}

int ck_read_files(const char *dir, const char *prefix, const char *sep, char *out,
                  size_t cap)
{
    struct dirent **de;
    int n = scandir(dir, &de, not_dots, by_name), files = 0;
    char path[1024];
    out[0] = '\0';
    ck_assert_msg(n >= 0, "%s: cannot list", dir);
    for (int i = 0; i < n; i++) {
        if (strncmp(de[i]->d_name, prefix, strlen(prefix)) == 0) {
            size_t len = strlen(out);
            snprintf(path, sizeof path, "%s/%s", dir, de[i]->d_name);
            ck_assert_int_ge(ck_read_file(path, out + len, cap - len), 0);
            len = strlen(out);
            snprintf(out + len, cap - len, "%s", sep);
            files++;
        }
        free(de[i]);
    }
    free(de);
    return files;
}

static int saved_fd[2] = { -1, -1 };

void ck_redirect(int target, int fd)
{
    ck_assert(target == 0 || target == 1);
    ck_assert_int_ge(fd, 0);
    fflush(stdout);
    if (saved_fd[target] < 0)
        ck_assert_int_ge(saved_fd[target] = dup(target), 0);
    ck_assert_int_eq(dup2(fd, target), target);
    close(fd);
}

void ck_restore_fds(void)
{
    for (int i = 0; i < 2; i++) {
        if (saved_fd[i] >= 0) {
            dup2(saved_fd[i], i);
            close(saved_fd[i]);
            saved_fd[i] = -1;
        }
    }
}

/* ---- warnings ------------------------------------------------------------------ */

static pthread_mutex_t warn_lock = PTHREAD_MUTEX_INITIALIZER;
static char warns[16384], warns_copy[16384];
static int nwarns;

void ck_warn(void *data, const char *msg)
{
    (void)data;
    pthread_mutex_lock(&warn_lock);
    size_t n = strlen(warns);
    snprintf(warns + n, sizeof warns - n, "%s\n", msg);
    nwarns++;
    pthread_mutex_unlock(&warn_lock);
}

void ck_warns_reset(void)
{
    pthread_mutex_lock(&warn_lock);
    warns[0] = '\0';
    nwarns = 0;
    pthread_mutex_unlock(&warn_lock);
}

int ck_nwarns(void)
{
    pthread_mutex_lock(&warn_lock);
    int n = nwarns;
    pthread_mutex_unlock(&warn_lock);
    return n;
}

const char *ck_warns(void)
{
    pthread_mutex_lock(&warn_lock);
    memcpy(warns_copy, warns, sizeof warns);
    pthread_mutex_unlock(&warn_lock);
    return warns_copy;
}

int ck_warned(const char *s)
{
    pthread_mutex_lock(&warn_lock);
    int r = strstr(warns, s) != NULL;
    pthread_mutex_unlock(&warn_lock);
    return r;
}

/* ---- events --------------------------------------------------------------------- */

void ck_frame(rn_buf *b, int64_t ts, const char *body, const char *k1, const char *v1,
              const char *k2, const char *v2)
{
    rn_event ev;
    rn_event_clear(&ev);
    ev.ts = ts;
    ev.body = (rn_str){ body, strlen(body) };
    if (k1)
        rn_event_add_header(&ev, k1, strlen(k1), v1, strlen(v1));
    if (k2)
        rn_event_add_header(&ev, k2, strlen(k2), v2, strlen(v2));
    ck_assert_int_eq(rn_encode_event(b, RN_FMT_FRAMES, &ev), 0);
}

typedef struct text_arg {
    char *out;
    size_t cap;
    int with_headers;
} text_arg;

static int text_one(void *arg, const rn_event *ev)
{
    text_arg *a = arg;
    size_t n = strlen(a->out);
    for (size_t i = 0; a->with_headers && i < ev->nhdr; i++, n = strlen(a->out))
        snprintf(a->out + n, a->cap - n, "%s%.*s=%.*s", i ? "," : "",
                 (int)ev->hdr[i].key.n, ev->hdr[i].key.p, (int)ev->hdr[i].val.n,
                 ev->hdr[i].val.p);
    const char *colon = a->with_headers && ev->nhdr ? ":" : "";
    if (ev->body.n <= 64)
        snprintf(a->out + n, a->cap - n, "%s%.*s|", colon, (int)ev->body.n, ev->body.p);
    else
        snprintf(a->out + n, a->cap - n, "%s%.16s...(%zu bytes)|", colon, ev->body.p,
                 ev->body.n);
    return 0;
}

void ck_events_text(const char *p, size_t len, uint32_t count, int with_headers, char *out,
                    size_t cap)
{
    char err[RN_ERRLEN];
    text_arg a = { out, cap, with_headers };
    ck_assert_msg(rn_batch_each(p, len, count, text_one, &a, NULL, err) == 0, "%s", err);
}

/* ---- a script on the test's loop ---------------------------------------------------- */

static struct {
    uv_timer_t timer;
    int open, step, timed_out;
    int (*fn)(int step);
    void (*on_timeout)(void);
    int64_t started, step_at;
} S;

static void script_tick(uv_timer_t *h)
{
    (void)h;
    if (rn_mono_ns() - S.started > 8000 * MS) {
        S.timed_out = 1;
        ck_script_close();
        if (S.on_timeout)
            S.on_timeout();
        return;
    }
    if (S.fn(S.step)) {
        S.step++;
        S.step_at = rn_mono_ns();
    }
}

void ck_script_start(uv_loop_t *loop, int (*fn)(int step), void (*on_timeout)(void))
{
    memset(&S, 0, sizeof S);
    S.fn = fn;
    S.on_timeout = on_timeout;
    S.started = S.step_at = rn_mono_ns();
    ck_assert_int_eq(uv_timer_init(loop, &S.timer), 0);
    ck_assert_int_eq(uv_timer_start(&S.timer, script_tick, 5, 5), 0);
    S.open = 1;
}

void ck_script_close(void)
{
    if (S.open)
        uv_close((uv_handle_t *)&S.timer, NULL);
    S.open = 0;
}

int ck_script_step(void) { return S.step; }
int ck_script_timed_out(void) { return S.timed_out; }
int64_t ck_step_ms(void) { return (rn_mono_ns() - S.step_at) / MS; }

int ck_wait_for(int (*fn)(void *arg), void *arg, int timeout_ms)
{
    int64_t end = rn_mono_ns() + timeout_ms * MS;
    while (!fn(arg) && rn_mono_ns() < end)
        usleep(2000);
    return fn(arg);
}
