/* check_posfile.c -- unit tests for lib/posfile: identities, fingerprints,
 * save and load round trips, malformed files, atomic replacement, and the
 * saver that writes off the loop thread. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tail/tail.h"
#include "core/core.h"

static char dir[] = "/tmp/check_posfile.XXXXXX";
static char path[256];

static void setup(void)
{
    strcpy(dir, "/tmp/check_posfile.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/pos", dir);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int write_file(const char *name, const char *content)
{
    char p[300];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rn_write_all(fd, content, strlen(content)), 0);
    return fd;
}

START_TEST(identity_and_fingerprint)
{
    char err[RN_ERRLEN];
    rn_fileid id;
    int fd = write_file("a", "hello world\n");
    ck_assert_int_eq(rn_fileid_of(fd, &id, err), 0);
    ck_assert_uint_eq(id.fplen, 12);
    ck_assert_int_eq(rn_fileid_match(&id, fd, err), 1);
    /* Growing keeps the identity. */
    ck_assert_int_eq(rn_write_all(fd, "more\n", 5), 0);
    ck_assert_int_eq(rn_fileid_match(&id, fd, err), 1);
    /* Rewriting the first bytes in place (same inode) does not. */
    ck_assert_int_eq(pwrite(fd, "J", 1, 0), 1);
    ck_assert_int_eq(rn_fileid_match(&id, fd, err), 0);
    /* Nor does shrinking below the fingerprint. */
    ck_assert_int_eq(rn_fileid_of(fd, &id, err), 0);
    ck_assert_int_eq(ftruncate(fd, 3), 0);
    ck_assert_int_eq(rn_fileid_match(&id, fd, err), 0);
    /* The fingerprint covers at most RN_FP_MAX bytes. */
    char big[1000];
    memset(big, 'z', sizeof big);
    ck_assert_int_eq(pwrite(fd, big, sizeof big, 0), (ssize_t)sizeof big);
    ck_assert_int_eq(rn_fileid_of(fd, &id, err), 0);
    ck_assert_uint_eq(id.fplen, RN_FP_MAX);
    ck_assert_int_eq(pwrite(fd, "changed after the fingerprint", 29, 500), 29);
    ck_assert_int_eq(rn_fileid_match(&id, fd, err), 1);
    close(fd);
    /* Another file is another identity. */
    int fd2 = write_file("b", "hello world\n");
    ck_assert_int_eq(rn_fileid_match(&id, fd2, err), 0);
    close(fd2);
}
END_TEST

START_TEST(round_trip)
{
    char err[RN_ERRLEN];
    rn_posfile pf = { 0 }, back = { 0 };
    rn_fileid a = { 1, 2, 3, 0xdeadbeefcafef00dULL }, b = { 7, 8, 256, 42 };
    ck_assert_int_eq(rn_posfile_add(&pf, &a, 1234, "/var/log/access.log"), 0);
    ck_assert_int_eq(rn_posfile_add(&pf, &b, 0, "/odd path/with%percent\nand newline"), 0);
    ck_assert_int_eq(rn_posfile_save(&pf, path, err), 0);
    ck_assert_int_eq(rn_posfile_load(&back, path, err), 0);
    ck_assert_uint_eq(back.n, 2);
    rn_posentry *e = rn_posfile_find(&back, 1, 2);
    ck_assert_ptr_nonnull(e);
    ck_assert_uint_eq(e->offset, 1234);
    ck_assert_uint_eq(e->id.fplen, 3);
    ck_assert_uint_eq(e->id.fphash, 0xdeadbeefcafef00dULL);
    ck_assert_str_eq(e->path, "/var/log/access.log");
    e = rn_posfile_find(&back, 7, 8);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->path, "/odd path/with%percent\nand newline");
    ck_assert_ptr_null(rn_posfile_find(&back, 7, 9));
    /* No temporary file is left behind. */
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);
    /* Saving again replaces the content. */
    rn_posfile_clear(&pf);
    ck_assert_int_eq(rn_posfile_save(&pf, path, err), 0);
    rn_posfile_free(&back);
    ck_assert_int_eq(rn_posfile_load(&back, path, err), 0);
    ck_assert_uint_eq(back.n, 0);
    rn_posfile_free(&back);
    rn_posfile_free(&pf);
}
END_TEST

START_TEST(missing_is_empty)
{
    char err[RN_ERRLEN];
    rn_posfile pf = { 0 };
    ck_assert_int_eq(rn_posfile_load(&pf, path, err), 0);
    ck_assert_uint_eq(pf.n, 0);
    rn_posfile_free(&pf);
}
END_TEST

static void expect_bad(const char *content, const char *msg)
{
    char err[RN_ERRLEN] = "";
    rn_posfile pf = { 0 };
    close(write_file("pos", content));
    ck_assert_int_eq(rn_posfile_load(&pf, path, err), -1);
    ck_assert_msg(strstr(err, msg), "'%s' gave '%s'", content, err);
    ck_assert_uint_eq(pf.n, 0);
    rn_posfile_free(&pf);
}

START_TEST(malformed)
{
    expect_bad("", "empty");
    expect_bad("runnel-pos 2\n", "line 1");
    expect_bad("something else\n", "line 1");
    expect_bad("runnel-pos 1\n1 2 3 ff 4 /a\nbroken\n", "line 3");
    expect_bad("runnel-pos 1\n1 2 999 ff 4 /a\n", "line 2");
    expect_bad("runnel-pos 1\n1 2 3 ff 4 /a%zz\n", "line 2");
    expect_bad("runnel-pos 1\n1 x 3 ff 4 /a\n", "line 2");
}
END_TEST

START_TEST(unwritable_dir)
{
    char err[RN_ERRLEN] = "";
    rn_posfile pf = { 0 };
    ck_assert_int_eq(rn_posfile_save(&pf, "/nonexistent-dir/pos", err), -1);
    ck_assert_msg(strstr(err, "/nonexistent-dir/pos.tmp"), "%s", err);
}
END_TEST

/* ---- rn_possaver ---------------------------------------------------------- */

static int warnings;
static char last_warning[512];

static void count_warning(void *data, const char *msg)
{
    (void)data;
    warnings++;
    snprintf(last_warning, sizeof last_warning, "%s", msg);
}

/* One entry at offset off, as a follower's snapshot would hold. */
static void snapshot(rn_posfile *pf, uint64_t off)
{
    rn_fileid id = { 1, 2, 3, 4 };
    rn_posfile_clear(pf);
    ck_assert_int_eq(rn_posfile_add(pf, &id, off, "/var/log/a.log"), 0);
}

static uint64_t saved_offset(const char *p)
{
    char err[RN_ERRLEN];
    rn_posfile back = { 0 };
    ck_assert_int_eq(rn_posfile_load(&back, p, err), 0);
    ck_assert_uint_eq(back.n, 1);
    uint64_t off = back.e[0].offset;
    rn_posfile_free(&back);
    return off;
}

/* A loop and a saver of p on it; warnings counted from 0. */
static void saver_open(uv_loop_t *loop, rn_possaver *sv, const char *p)
{
    ck_assert_int_eq(uv_loop_init(loop), 0);
    ck_assert_int_eq(rn_possaver_init(sv, loop, p, count_warning, NULL), 0);
    warnings = 0;
}

/* ... and gone, with nothing left on the loop. */
static void saver_close(uv_loop_t *loop, rn_possaver *sv)
{
    rn_possaver_destroy(sv);
    ck_assert_int_eq(uv_loop_close(loop), 0);
}

START_TEST(saver_keeps_the_newest)
{
    char err[RN_ERRLEN];
    uv_loop_t loop;
    rn_possaver sv;
    rn_posfile pf = { 0 };
    saver_open(&loop, &sv, path);
    /* Queued while one runs: the newest waits and replaces the others. */
    for (uint64_t off = 1; off <= 5; off++) {
        snapshot(&pf, off);
        ck_assert_int_eq(rn_possaver_queue(&sv, &pf, err), 0);
    }
    snapshot(&pf, 99);          /* the caller's copy may change at once */
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_uint_eq(saved_offset(path), 5);
    ck_assert_int_eq(warnings, 0);
    ck_assert_int_eq(sv.failing, 0);
    saver_close(&loop, &sv);
    rn_posfile_free(&pf);
}
END_TEST

START_TEST(saver_direct_save_is_not_undone)
{
    char err[RN_ERRLEN];
    uv_loop_t loop;
    rn_possaver sv;
    rn_posfile pf = { 0 };
    saver_open(&loop, &sv, path);
    /* The last save of a stop, made while the pool still has an older one
     * (queued, running or about to run): the file keeps the last. */
    for (uint64_t i = 0; i < 20; i++) {
        snapshot(&pf, 2 * i + 1);
        ck_assert_int_eq(rn_possaver_queue(&sv, &pf, err), 0);
        snapshot(&pf, 2 * i + 2);
        ck_assert_int_eq(rn_possaver_save(&sv, &pf, err), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
        ck_assert_uint_eq(saved_offset(path), 2 * i + 2);
    }
    saver_close(&loop, &sv);
    rn_posfile_free(&pf);
}
END_TEST

START_TEST(saver_failure_said_once)
{
    char err[RN_ERRLEN], sub[300], p[320];
    uv_loop_t loop;
    rn_possaver sv;
    rn_posfile pf = { 0 };
    snprintf(sub, sizeof sub, "%s/later", dir);
    snprintf(p, sizeof p, "%s/pos", sub);
    saver_open(&loop, &sv, p);
    snapshot(&pf, 7);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(rn_possaver_queue(&sv, &pf, err), 0);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    ck_assert_int_eq(sv.failing, 1);
    ck_assert_int_eq(warnings, 1);
    ck_assert_msg(strstr(last_warning, "positions not saved") && strstr(last_warning, p),
                  "%s", last_warning);
    /* The directory appears: the next save works, and says so once. */
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    ck_assert_int_eq(rn_possaver_queue(&sv, &pf, err), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(sv.failing, 0);
    ck_assert_int_eq(warnings, 2);
    ck_assert_msg(strstr(last_warning, "saved again"), "%s", last_warning);
    ck_assert_uint_eq(saved_offset(p), 7);
    saver_close(&loop, &sv);
    rn_posfile_free(&pf);
}
END_TEST

START_TEST(saver_superseded_failure_not_said)
{
    char err[RN_ERRLEN], sub[300], p[320];
    uv_loop_t loop;
    rn_possaver sv;
    rn_posfile pf = { 0 };
    snprintf(sub, sizeof sub, "%s/later", dir);
    snprintf(p, sizeof p, "%s/pos", sub);
    saver_open(&loop, &sv, p);
    /* A save in the pool fails (no directory yet), most likely before the
     * stop's direct save, which works; the loop says the pool's result only
     * after that. The direct one is the last word: nothing is said, nothing
     * is failing, and the file holds the direct one. */
    snapshot(&pf, 1);
    ck_assert_int_eq(rn_possaver_queue(&sv, &pf, err), 0);
    usleep(100000);             /* the pool runs without the loop */
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    snapshot(&pf, 2);
    ck_assert_int_eq(rn_possaver_save(&sv, &pf, err), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(sv.failing, 0);
    ck_assert_msg(warnings == 0, "%s", last_warning);
    ck_assert_uint_eq(saved_offset(p), 2);
    saver_close(&loop, &sv);
    rn_posfile_free(&pf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("posfile");
    TCase *tc = tcase_create("posfile");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, identity_and_fingerprint);
    tcase_add_test(tc, round_trip);
    tcase_add_test(tc, missing_is_empty);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, unwritable_dir);
    suite_add_tcase(s, tc);
    TCase *tcs = tcase_create("saver");
    tcase_add_checked_fixture(tcs, setup, teardown);
    tcase_add_test(tcs, saver_keeps_the_newest);
    tcase_add_test(tcs, saver_direct_save_is_not_undone);
    tcase_add_test(tcs, saver_failure_said_once);
    tcase_add_test(tcs, saver_superseded_failure_not_said);
    suite_add_tcase(s, tcs);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
