/* check_tail.c -- unit tests for lib/tail, the follow engine, run on a private
 * libuv loop: line splitting and offsets, partial and over-long lines,
 * positions, --once, rotation and truncation while following, stopping. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "tail/tail.h"
#include "core/core.h"

static char dir[64];
static char got[65536];     /* "offset:line|" for every line, in order */
static size_t ncut, nlines;
static int stop_after = -1, flush_fails;
static rn_tail *cur;

static void setup(void)
{
    strcpy(dir, "/tmp/check_tail.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    got[0] = '\0';
    ncut = nlines = 0;
    stop_after = -1;
    flush_fails = 0;
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static const char *p(const char *name)
{
    static char buf[8][256];   /* a few at once, e.g. in one call */
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "%s/%s", dir, name);
    return buf[i];
}

static void put(const char *name, const char *s, int append)
{
    int fd = open(p(name), O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rn_write_all(fd, s, strlen(s)), 0);
    close(fd);
}

static int on_line(void *data, const rn_line *l)
{
    (void)data;
    size_t n = strlen(got);
    snprintf(got + n, sizeof got - n, "%llu:%.*s|", (unsigned long long)l->offset,
             (int)l->len, l->data);
    ncut += l->cut;
    if (++nlines == (size_t)stop_after)
        return -1;
    return 0;
}

static int on_flush(void *data)
{
    (void)data;
    return flush_fails ? -1 : 0;
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    (void)msg;
}

static rn_tail_opts opts(void)
{
    rn_tail_opts o = {
        .max_line = 1 << 20, .scan_ns = 20000000, .rotate_wait_ns = 100000000,
        .commit_ns = 1000000000, .restart_ns = 100000000,
        .on_line = on_line, .on_flush = on_flush, .on_warn = on_warn,
    };
    return o;
}

/* Run the engine over the loop until it stops by itself. */
static rn_tail *run(uv_loop_t *loop, rn_tail_opts o, const char *const *paths)
{
    char err[RN_ERRLEN];
    rn_tail *t = rn_tail_new(loop, &o, err);
    ck_assert_ptr_nonnull(t);
    for (; *paths; paths++)
        ck_assert_int_eq(rn_tail_add_path(t, *paths, err), 0);
    ck_assert_msg(rn_tail_start(t, err) == 0, "%s", err);
    cur = t;
    uv_run(loop, UV_RUN_DEFAULT);
    return t;
}

static void finish(uv_loop_t *loop, rn_tail *t)
{
    rn_tail_free(t);
    ck_assert_int_eq(uv_loop_close(loop), 0);   /* every handle was closed */
}

START_TEST(once_lines_offsets_partial)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("a", "one\ntwo\n\nthree-partial", 0);
    rn_tail_opts o = opts();
    o.once = 1;
    static char pos[256];
    snprintf(pos, sizeof pos, "%s", p("pos"));
    o.pos_path = pos;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("a"), NULL });
    ck_assert_str_eq(got, "0:one|4:two|8:|");
    ck_assert_int_eq(rn_tail_failed(t), 0);
    finish(&loop, t);

    /* The position is the start of the held partial line. */
    rn_posfile pf = { 0 };
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_posfile_load(&pf, p("pos"), err), 0);
    ck_assert_uint_eq(pf.n, 1);
    ck_assert_uint_eq(pf.e[0].offset, 9);
    rn_posfile_free(&pf);

    /* The next run picks up there once the line is complete. */
    put("a", " done\nfour\n", 1);
    got[0] = '\0';
    uv_loop_init(&loop);
    t = run(&loop, o, (const char *const[]){ p("a"), NULL });
    ck_assert_str_eq(got, "9:three-partial done|28:four|");
    finish(&loop, t);
}
END_TEST

START_TEST(max_line_cut)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("a", "short\n0123456789abcdef\nok\n0123456789", 0);
    rn_tail_opts o = opts();
    o.once = 1;
    o.start_at_end = 0;
    o.max_line = 8;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("a"), NULL });
    /* The trailing 10 bytes without '\n' exceed the limit: cut now, rest skipped. */
    ck_assert_str_eq(got, "0:short|6:01234567|23:ok|26:01234567|");
    ck_assert_uint_eq(ncut, 2);
    finish(&loop, t);
}
END_TEST

START_TEST(start_at_end_and_missing)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("a", "old\n", 0);
    rn_tail_opts o = opts();
    o.once = 1;
    o.start_at_end = 1;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("a"), p("missing"), NULL });
    ck_assert_str_eq(got, "");
    ck_assert_int_eq(rn_tail_failed(t), 0);   /* not existing yet is no error */
    finish(&loop, t);
}
END_TEST

START_TEST(directory_is_an_error)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("a", "x\n", 0);
    ck_assert_int_eq(mkdir(p("d"), 0755), 0);
    rn_tail_opts o = opts();
    o.once = 1;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("d"), p("a"), NULL });
    ck_assert_str_eq(got, "0:x|");
    ck_assert_int_eq(rn_tail_failed(t), 1);
    finish(&loop, t);
}
END_TEST

START_TEST(glob_sorted)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("b.log", "b\n", 0);
    put("a.log", "a\n", 0);
    put("c.txt", "c\n", 0);
    rn_tail_opts o = opts();
    o.once = 1;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("*.log"), NULL });
    ck_assert_str_eq(got, "0:a|0:b|");
    finish(&loop, t);
}
END_TEST

/* Follow mode: a script of file operations driven by a timer. */
static int step;
static void (*script)(int step);

static void on_tick(uv_timer_t *h)
{
    if (script)
        script(step++);
    if (step < 0)
        uv_close((uv_handle_t *)h, NULL);
}

static void follow(void (*s)(int))
{
    uv_loop_t loop;
    uv_timer_t timer;
    char err[RN_ERRLEN];
    uv_loop_init(&loop);
    rn_tail_opts o = opts();
    o.start_at_end = 0;
    rn_tail *t = rn_tail_new(&loop, &o, err);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(rn_tail_add_path(t, p("f.log"), err), 0);
    ck_assert_int_eq(rn_tail_start(t, err), 0);
    cur = t;
    step = 0;
    script = s;
    uv_timer_init(&loop, &timer);
    uv_timer_start(&timer, on_tick, 60, 60);
    uv_run(&loop, UV_RUN_DEFAULT);
    finish(&loop, t);
}

static void rename_script(int s)
{
    switch (s) {
    case 0: put("f.log", "a1\n", 1); break;
    case 1: put("f.log", "a2\n", 1); break;
    case 2:
        ck_assert_int_eq(rename(p("f.log"), p("f.log.1")), 0);
        put("f.log.1", "a3-late\n", 1);   /* the writer has not reopened yet */
        put("f.log", "b1\n", 0);
        break;
    case 3: put("f.log", "b2\n", 1); break;
    case 5:
        rn_tail_stop(cur);
        step = -100;
        break;
    }
}

START_TEST(follow_rename)
{
    put("f.log", "a0\n", 0);
    follow(rename_script);
    ck_assert_str_eq(got, "0:a0|3:a1|6:a2|9:a3-late|0:b1|3:b2|");
}
END_TEST

static void truncate_script(int s)
{
    switch (s) {
    case 0: put("f.log", "line one\n", 1); break;
    case 1: put("f.log", "x\n", 0); break;   /* truncated, shorter */
    case 3: put("f.log", "y\n", 1); break;
    case 4:
        rn_tail_stop(cur);
        step = -100;
        break;
    }
}

START_TEST(follow_truncate)
{
    put("f.log", "", 0);
    follow(truncate_script);
    ck_assert_str_eq(got, "0:line one|0:x|2:y|");
}
END_TEST

static void recreate_script(int s)
{
    switch (s) {
    case 0: ck_assert_int_eq(unlink(p("f.log")), 0); break;
    case 2: put("f.log", "new\n", 0); break;
    case 4:
        rn_tail_stop(cur);
        step = -100;
        break;
    }
}

START_TEST(follow_delete_recreate)
{
    put("f.log", "old\n", 0);
    follow(recreate_script);
    ck_assert_str_eq(got, "0:old|0:new|");
}
END_TEST

START_TEST(output_failure_stops_without_commit)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    put("a", "1\n2\n3\n4\n", 0);
    rn_tail_opts o = opts();
    o.once = 1;
    static char pos[256];
    snprintf(pos, sizeof pos, "%s", p("pos"));
    o.pos_path = pos;
    stop_after = 2;
    rn_tail *t = run(&loop, o, (const char *const[]){ p("a"), NULL });
    ck_assert_str_eq(got, "0:1|2:2|");
    finish(&loop, t);
    ck_assert_int_ne(access(p("pos"), F_OK), 0);

    /* A flush that fails also keeps the old positions. */
    got[0] = '\0';
    nlines = 0;
    stop_after = -1;
    flush_fails = 1;
    uv_loop_init(&loop);
    t = run(&loop, o, (const char *const[]){ p("a"), NULL });
    ck_assert_str_eq(got, "0:1|2:2|4:3|6:4|");
    finish(&loop, t);
    ck_assert_int_ne(access(p("pos"), F_OK), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tail");
    TCase *once = tcase_create("once");
    tcase_add_checked_fixture(once, setup, teardown);
    tcase_add_test(once, once_lines_offsets_partial);
    tcase_add_test(once, max_line_cut);
    tcase_add_test(once, start_at_end_and_missing);
    tcase_add_test(once, directory_is_an_error);
    tcase_add_test(once, glob_sorted);
    tcase_add_test(once, output_failure_stops_without_commit);
    suite_add_tcase(s, once);
    TCase *fol = tcase_create("follow");
    tcase_add_checked_fixture(fol, setup, teardown);
    tcase_set_timeout(fol, 20);
    tcase_add_test(fol, follow_rename);
    tcase_add_test(fol, follow_truncate);
    tcase_add_test(fol, follow_delete_recreate);
    suite_add_tcase(s, fol);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
