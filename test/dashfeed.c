/* dashfeed.c -- the server of the dashboard's browser test (dashboard.sh):
 * rn_dash on ADDR (default 127.0.0.1:0) fed with winagg rows (tsv) read
 * from stdin through rn_topn, as topk will feed it. A blank line publishes
 * every window that has rows not yet published. Prints "listening ADDR" once
 * it listens, and "published START END" for each window it publishes; ends
 * at the end of its input.
 *
 *   usage: dashfeed [ADDR [N]]      (N: keys per window, default 10) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core/core.h"
#include "results/results.h"
#include "window/window.h"

typedef struct feed {
    uv_loop_t loop;
    uv_pipe_t in;
    rn_dash *dash;
    rn_topn *topn;
    rn_rowreader *rows;
    rn_buf line;
    char rbuf[64 * 1024];
    int failed;
} feed;

static void say(void *data, const char *msg)
{
    (void)data;
    fprintf(stderr, "dashfeed: %s\n", msg);
}

static int publish(void *data, const rn_topn_window *w)
{
    feed *f = data;
    char err[RN_ERRLEN], s[32], e[32];

    if (rn_dash_publish(f->dash, w, err) < 0) {
        fprintf(stderr, "dashfeed: %s\n", err);
        return -1;
    }
    s[rn_time_format(w->start, s)] = '\0';
    e[rn_time_format(w->end, e)] = '\0';
    printf("published %s %s\n", s, e);
    fflush(stdout);
    return 0;
}

static void stop(feed *f)
{
    rn_dash_close(f->dash);
    if (!uv_is_closing((uv_handle_t *)&f->in))
        uv_close((uv_handle_t *)&f->in, NULL);
}

static void fail(feed *f, const char *err)
{
    fprintf(stderr, "dashfeed: %s\n", err);
    f->failed = 1;
    stop(f);
}

static void one_line(feed *f, const char *p, size_t n)
{
    char err[RN_ERRLEN];
    rn_row row;
    int r;

    if (n == 0) {
        if (rn_topn_flush(f->topn, 1, publish, f, err) < 0)
            fail(f, "publishing failed");
        return;
    }
    if (rn_rowreader_feed(f->rows, p, n + 1, err) < 0) {    /* with its '\n' */
        fail(f, err);
        return;
    }
    int64_t wm;
    while ((r = rn_rowreader_next(f->rows, &row, &wm, err)) > 0) {
        if (r == RN_ROWS_WATERMARK)
            continue;       /* a blank line publishes, not the watermark */
        if (rn_topn_add(f->topn, &row, err) < 0) {
            fail(f, err);
            return;
        }
    }
    if (r < 0)
        fail(f, err);
}

static void in_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    feed *f = h->data;
    (void)hint;
    *buf = uv_buf_init(f->rbuf, sizeof f->rbuf);
}

static void in_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    feed *f = st->data;

    if (n < 0) {
        stop(f);
        return;
    }
    if (rn_buf_append(&f->line, buf->base, (size_t)n) < 0) {
        fail(f, "out of memory");
        return;
    }
    size_t off = 0;
    char *nl;
    while (!f->failed && (nl = memchr(f->line.p + off, '\n', f->line.len - off))) {
        one_line(f, f->line.p + off, (size_t)(nl - (f->line.p + off)));
        off = (size_t)(nl - f->line.p) + 1;
    }
    memmove(f->line.p, f->line.p + off, f->line.len - off);
    f->line.len -= off;
}

int main(int argc, char **argv)
{
    static feed f;
    const char *addr = argc > 1 ? argv[1] : "127.0.0.1:0";
    size_t n = argc > 2 ? (size_t)atoi(argv[2]) : 10;
    rn_dash_opts o = { .on_warn = say };
    char err[RN_ERRLEN];

    if (uv_loop_init(&f.loop) < 0 || !(f.topn = rn_topn_new(n ? n : 10, 0))
        || !(f.rows = rn_rowreader_new("stdin"))) {
        fprintf(stderr, "dashfeed: out of memory\n");
        return 1;
    }
    if (!(f.dash = rn_dash_new(&f.loop, &o, err)) || rn_dash_listen(f.dash, addr, err) < 0) {
        fprintf(stderr, "dashfeed: %s\n", err);
        return 1;
    }
    uv_pipe_init(&f.loop, &f.in, 0);
    f.in.data = &f;
    if (uv_pipe_open(&f.in, 0) < 0
        || uv_read_start((uv_stream_t *)&f.in, in_alloc, in_read) < 0) {
        fprintf(stderr, "dashfeed: stdin is not a pipe\n");
        return 1;
    }
    printf("listening %s\n", rn_dash_address(f.dash));
    fflush(stdout);
    uv_run(&f.loop, UV_RUN_DEFAULT);
    rn_dash_free(f.dash);
    rn_topn_free(f.topn);
    rn_rowreader_free(f.rows);
    rn_buf_free(&f.line);
    if (uv_loop_close(&f.loop) != 0) {
        fprintf(stderr, "dashfeed: handles left open\n");
        return 1;
    }
    return f.failed;
}
