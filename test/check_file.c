/* check_file.c -- unit tests for lib/core's durable files (file.c), the event
 * batch (batch.c) and the seeded hash (hash.c). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/core.h"

#define LIT(s) s, sizeof(s) - 1

static char dir[64];
static int dirfd_;

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/check_file.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    dirfd_ = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ck_assert_int_ge(dirfd_, 0);
}

static void teardown(void)
{
    char cmd[128];
    close(dirfd_);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* The whole content of dir/name, NUL-terminated, in a static buffer; NULL
 * when it does not exist. */
static const char *slurp(const char *name)
{
    static char buf[4096];
    int fd = openat(dirfd_, name, O_RDONLY);
    if (fd < 0)
        return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
    return buf;
}

static int exists(const char *name)
{
    return faccessat(dirfd_, name, F_OK, 0) == 0;
}

static void put(const char *name, const char *content)
{
    int fd = openat(dirfd_, name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rn_write_all(fd, content, strlen(content)), 0);
    close(fd);
}

/* ---- durable replace ---------------------------------------------------- */

START_TEST(replace_creates_and_replaces)
{
    char err[RN_ERRLEN] = "";
    for (int sync = 0; sync <= 1; sync++) {
        ck_assert_int_eq(rn_file_replace(dirfd_, dir, "state", LIT("one\n"), sync, err), 0);
        ck_assert_str_eq(slurp("state"), "one\n");
        ck_assert_int_eq(rn_file_replace(dirfd_, dir, "state", LIT("two, longer\n"), sync,
                                         err), 0);
        ck_assert_str_eq(slurp("state"), "two, longer\n");
        ck_assert(!exists("state.tmp"));
    }
}
END_TEST

START_TEST(replace_by_path)
{
    char err[RN_ERRLEN] = "", path[128];
    snprintf(path, sizeof path, "%s/pos", dir);
    ck_assert_int_eq(rn_file_replace(AT_FDCWD, NULL, path, LIT("runnel-pos 1\n"), 1, err), 0);
    ck_assert_str_eq(slurp("pos"), "runnel-pos 1\n");
    ck_assert(!exists("pos.tmp"));
}
END_TEST

START_TEST(replace_in_missing_dir_names_it)
{
    char err[RN_ERRLEN] = "", path[128];
    snprintf(path, sizeof path, "%s/no/such/pos", dir);
    ck_assert_int_eq(rn_file_replace(AT_FDCWD, NULL, path, LIT("x"), 1, err), RN_ERR);
    ck_assert_msg(strstr(err, "no/such/pos.tmp: No such file or directory"), "%s", err);
}
END_TEST

START_TEST(afile_tmpname_and_abort)
{
    char err[RN_ERRLEN] = "";
    rn_afile f;
    put("group", "old\n");
    ck_assert_int_eq(rn_afile_open(&f, dirfd_, dir, "group", ".group", err), 0);
    ck_assert(exists(".group"));
    ck_assert_int_eq(rn_afile_write(&f, LIT("new\n"), err), 0);
    rn_afile_abort(&f);
    ck_assert(!exists(".group"));
    ck_assert_str_eq(slurp("group"), "old\n");

    ck_assert_int_eq(rn_afile_open(&f, dirfd_, dir, "group", ".group", err), 0);
    ck_assert_int_eq(rn_afile_write(&f, LIT("new\n"), err), 0);
    ck_assert_int_eq(rn_write_all(f.fd, LIT("direct\n")), 0);
    ck_assert_int_eq(rn_afile_commit(&f, 1, err), 0);
    ck_assert_str_eq(slurp("group"), "new\ndirect\n");
    ck_assert(!exists(".group"));
}
END_TEST

START_TEST(afile_failed_rename_removes_temporary)
{
    char err[RN_ERRLEN] = "";
    rn_afile f;
    /* A non-empty directory cannot be renamed over. */
    ck_assert_int_eq(mkdirat(dirfd_, "busy", 0755), 0);
    put("busy/inside", "x");
    ck_assert_int_eq(rn_afile_open(&f, dirfd_, dir, "busy", NULL, err), 0);
    ck_assert_int_eq(rn_afile_write(&f, LIT("data"), err), 0);
    ck_assert_int_eq(rn_afile_commit(&f, 1, err), RN_ERR);
    ck_assert_msg(strstr(err, "/busy: rename: "), "%s", err);
    ck_assert(!exists("busy.tmp"));
    ck_assert_str_eq(slurp("busy/inside"), "x");
}
END_TEST

START_TEST(afile_long_name_refused)
{
    char err[RN_ERRLEN] = "", name[5000];
    rn_afile f;
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    ck_assert_int_eq(rn_afile_open(&f, dirfd_, dir, name, NULL, err), RN_ERR);
    ck_assert_msg(strstr(err, "path too long"), "%s", err);
}
END_TEST

START_TEST(fsync_dir_of_path)
{
    char err[RN_ERRLEN] = "", path[128];
    snprintf(path, sizeof path, "%s/anything", dir);
    ck_assert_int_eq(rn_fsync_dir(AT_FDCWD, path, err), 0);
    ck_assert_int_eq(rn_fsync_dir(dirfd_, dir, err), 0);
    snprintf(path, sizeof path, "%s/gone/anything", dir);
    ck_assert_int_eq(rn_fsync_dir(AT_FDCWD, path, err), RN_ERR);
    ck_assert_msg(strstr(err, "/gone: No such file"), "%s", err);
}
END_TEST

START_TEST(mkdir_p_nested_and_blocked)
{
    char err[RN_ERRLEN] = "", path[128];
    struct stat st;
    snprintf(path, sizeof path, "%s/a/b/c", dir);
    ck_assert_int_eq(rn_mkdir_p(path, err), 0);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    ck_assert_int_eq(rn_mkdir_p(path, err), 0);     /* again: nothing to do */
    put("file", "x");
    snprintf(path, sizeof path, "%s/file/sub", dir);
    ck_assert_int_eq(rn_mkdir_p(path, err), RN_ERR);
    ck_assert_msg(strstr(err, "file/sub: Not a directory"), "%s", err);
}
END_TEST

/* ---- whole reads and writes --------------------------------------------- */

START_TEST(pread_full_and_short)
{
    char buf[16];
    put("f", "0123456789");
    int fd = openat(dirfd_, "f", O_RDONLY);
    ck_assert_int_eq(rn_pread_full(fd, buf, 4, 3), 0);
    ck_assert_int_eq(memcmp(buf, "3456", 4), 0);
    ck_assert_int_eq(rn_pread_full(fd, buf, 8, 5), RN_ESHORT);
    ck_assert_str_eq(rn_io_strerror(RN_ESHORT), "file too short");
    close(fd);
    errno = 0;
    ck_assert_int_eq(rn_pread_full(fd, buf, 1, 0), RN_ERR);
    ck_assert_int_eq(errno, EBADF);
    ck_assert_str_eq(rn_io_strerror(RN_ERR), strerror(EBADF));
    errno = 0;
    ck_assert_int_eq(rn_write_all(fd, "x", 1), RN_ERR);
    ck_assert_int_eq(errno, EBADF);
}
END_TEST

START_TEST(pwrite_and_pwritev_at_offsets)
{
    char a[] = "AB", b[] = "CDE", c[] = "F";
    struct iovec iov[3] = { { a, 2 }, { b, 3 }, { c, 1 } };
    int fd = openat(dirfd_, "w", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(rn_pwrite_full(fd, LIT("........"), 0), 0);
    ck_assert_int_eq(rn_pwritev_full(fd, iov, 3, 1), 0);
    ck_assert_int_eq(rn_pwrite_full(fd, LIT("Z"), 9), 0);
    close(fd);
    ck_assert_int_eq(memcmp(slurp("w"), ".ABCDEF.\0Z", 10), 0);
}
END_TEST

static void on_alarm(int sig) { (void)sig; }

/* rn_writev_all goes on after short writes: a timer interrupts the writer
 * (no SA_RESTART) while a slow reader drains the pipe, so writev returns
 * part of a segment, or EINTR, again and again. */
START_TEST(writev_all_after_short_writes)
{
    enum { A = 70000, B = 1, C = 150001 };
    static char a[A], c[C], got[A + B + C + 1];
    char b[B] = { 'b' };
    for (size_t i = 0; i < A; i++)
        a[i] = (char)('a' + i % 26);
    for (size_t i = 0; i < C; i++)
        c[i] = (char)('0' + i % 10);
    int pfd[2];
    ck_assert_int_eq(pipe(pfd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {             /* the reader: 4 KiB at a time, slowly */
        close(pfd[1]);
        size_t n = 0;
        ssize_t r;
        while (n < sizeof got && (r = read(pfd[0], got + n, 4096)) > 0) {
            n += (size_t)r;
            usleep(50);
        }
        _exit(n == A + B + C && memcmp(got, a, A) == 0 && got[A] == 'b'
              && memcmp(got + A + B, c, C) == 0 ? 0 : 1);
    }
    close(pfd[0]);
    struct sigaction sa = { .sa_handler = on_alarm };
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = { { 0, 200 }, { 0, 200 } };
    setitimer(ITIMER_REAL, &it, NULL);
    struct iovec iov[3] = { { a, A }, { b, B }, { c, C } };
    int r = rn_writev_all(pfd[1], iov, 3);
    struct itimerval off = { { 0, 0 }, { 0, 0 } };
    setitimer(ITIMER_REAL, &off, NULL);
    close(pfd[1]);
    ck_assert_int_eq(r, 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}
END_TEST

START_TEST(read_window_matches_file)
{
    enum { N = 10000, CAP = 64 };
    unsigned char data[N], win[CAP];
    for (size_t i = 0; i < N; i++)
        data[i] = (unsigned char)(i * 7 + i / 256);
    int fd = openat(dirfd_, "r", O_RDWR | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_eq(rn_write_all(fd, data, N), 0);
    rn_rd r;
    rn_rd_init(&r, fd, N, win, CAP);
    /* Forward, backward and overlapping reads, of every size up to CAP. */
    uint64_t off = 0;
    for (int k = 0; k < 3000; k++) {
        size_t n = (size_t)(k % CAP) + 1;
        off = (off * 31 + 17) % (N - n + 1);
        const unsigned char *p;
        ck_assert_int_eq(rn_rd_get(&r, off, n, &p), 0);
        ck_assert_int_eq(memcmp(p, data + off, n), 0);
    }
    /* A window that claims more than the file has. */
    rn_rd_init(&r, fd, N + 100, win, CAP);
    const unsigned char *p;
    ck_assert_int_eq(rn_rd_get(&r, N - 10, 20, &p), RN_ESHORT);
    close(fd);
}
END_TEST

/* ---- segment listing ---------------------------------------------------- */

typedef struct seen { char names[8][64]; int n; } seen;

static void other(void *arg, const char *name)
{
    seen *s = arg;
    ck_assert_int_lt(s->n, 8);
    snprintf(s->names[s->n++], 64, "%s", name);
}

START_TEST(seg_list_sorted_with_others)
{
    char err[RN_ERRLEN] = "";
    put("00000000000000000042.log", "");
    put("00000000000000000007.log", "");
    put("00000000000000000007.index", "");
    put("18446744073709551615.log", "");        /* UINT64_MAX */
    put("0000000000000000001.log", "");         /* 19 digits */
    put("00000000000000000001.log.tmp", "");
    uint64_t *b = NULL;
    size_t n = 0;
    seen s = { .n = 0 };
    ck_assert_int_eq(rn_seg_list(dirfd_, dir, "", ".log", &b, &n, other, &s, err), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_uint_eq(b[0], 7);
    ck_assert_uint_eq(b[1], 42);
    ck_assert_uint_eq(b[2], UINT64_MAX);
    free(b);
    ck_assert_int_eq(s.n, 3);

    uint64_t v;
    ck_assert_int_eq(rn_seg_name_parse("wal-00000000000000000009", "wal-", "", &v), 0);
    ck_assert_uint_eq(v, 9);
    ck_assert_int_eq(rn_seg_name_parse("wal-0000000000000000000x", "wal-", "", &v), RN_ERR);
    ck_assert_int_eq(rn_seg_name_parse("wal-000000000000000000091", "wal-", "", &v), RN_ERR);
    ck_assert_int_eq(rn_seg_name_parse("99999999999999999999.log", "", ".log", &v), RN_ERR);
    ck_assert_int_eq(rn_seg_name_parse("00000000000000000009.index", "", ".log", &v), RN_ERR);
}
END_TEST

START_TEST(seg_list_missing_dir)
{
    char err[RN_ERRLEN] = "";
    uint64_t *b;
    size_t n;
    ck_assert_int_eq(rn_seg_list(-1, "/gone", "", ".log", &b, &n, NULL, NULL, err), RN_ERR);
    ck_assert_msg(strstr(err, "/gone: Bad file descriptor"), "%s", err);
}
END_TEST

/* ---- batch -------------------------------------------------------------- */

typedef struct got { int n; char bodies[4][16]; int64_t ts[4]; } got;

static int collect(void *arg, const rn_event *ev)
{
    got *g = arg;
    if (g->n == 2)
        return -42;     /* a callback's stop comes back as it is */
    snprintf(g->bodies[g->n], 16, "%.*s", (int)ev->body.n, ev->body.p);
    g->ts[g->n++] = ev->ts;
    return 0;
}

START_TEST(batch_round_trip_and_corrupt)
{
    rn_batch b = { 0 };
    rn_event ev = { 0 };
    char err[RN_ERRLEN] = "";
    size_t at = 99;
    const char *bodies[] = { "one", "two", "three" };
    for (int i = 0; i < 2; i++) {
        ev.ts = 1000 + i;
        ev.body = (rn_str){ bodies[i], strlen(bodies[i]) };
        ck_assert_int_eq(rn_batch_add(&b, &ev), 0);
    }
    ck_assert_uint_eq(b.count, 2);
    got g = { 0 };
    ck_assert_int_eq(rn_batch_each(b.buf.p, b.buf.len, b.count, collect, &g, &at, err), 0);
    ck_assert_int_eq(g.n, 2);
    ck_assert_str_eq(g.bodies[1], "two");
    ck_assert_int_eq(g.ts[1], 1001);
    /* One more event than there is. */
    ck_assert_int_eq(rn_batch_each(b.buf.p, b.buf.len, 3, NULL, NULL, &at, err), RN_ECORRUPT);
    ck_assert_str_eq(err, "event 3 of 3: missing (the batch ends here)");
    ck_assert_uint_eq(at, b.buf.len);
    ev.body = (rn_str){ "three", 5 };
    ck_assert_int_eq(rn_batch_add(&b, &ev), 0);
    g.n = 0;
    ck_assert_int_eq(rn_batch_each(b.buf.p, b.buf.len, b.count, collect, &g, NULL, err), -42);
    rn_batch_reset(&b);
    ck_assert_uint_eq(b.count, 0);
    ck_assert_uint_eq(b.buf.len, 0);
    ck_assert_int_eq(rn_batch_each(b.buf.p, b.buf.len, 0, NULL, NULL, NULL, err), 0);
    rn_batch_free(&b);
}
END_TEST

/* ---- hash --------------------------------------------------------------- */

START_TEST(hash_seeded)
{
    uint64_t s1 = rn_hash_seed(), s2 = rn_hash_seed();
    ck_assert(s1 != s2);
    const char *keys[] = { "", "a", "abc", "abcd", "0123456789abcdef", "0123456789abcdefg",
                           "a key longer than forty-eight bytes, so that it takes rounds" };
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        size_t n = strlen(keys[i]);
        ck_assert_uint_eq(rn_hash(keys[i], n, s1), rn_hash(keys[i], n, s1));
        ck_assert_uint_ne(rn_hash(keys[i], n, s1), rn_hash(keys[i], n, s2));
        if (n)  /* one byte less hashes differently */
            ck_assert_uint_ne(rn_hash(keys[i], n, s1), rn_hash(keys[i], n - 1, s1));
    }
    /* Keys of a flood: the same under one seed's collisions cannot be
     * chosen without the seed; at least their hashes spread over buckets. */
    int buckets[64] = { 0 };
    for (int i = 0; i < 64000; i++) {
        char k[16];
        int n = snprintf(k, sizeof k, "k%d", i);
        buckets[rn_hash(k, (size_t)n, s1) & 63]++;
    }
    for (int i = 0; i < 64; i++)
        ck_assert_msg(buckets[i] > 800 && buckets[i] < 1200, "bucket %d: %d", i, buckets[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("file");
    TCase *dur = tcase_create("durable");
    tcase_add_checked_fixture(dur, setup, teardown);
    tcase_add_test(dur, replace_creates_and_replaces);
    tcase_add_test(dur, replace_by_path);
    tcase_add_test(dur, replace_in_missing_dir_names_it);
    tcase_add_test(dur, afile_tmpname_and_abort);
    tcase_add_test(dur, afile_failed_rename_removes_temporary);
    tcase_add_test(dur, afile_long_name_refused);
    tcase_add_test(dur, fsync_dir_of_path);
    tcase_add_test(dur, mkdir_p_nested_and_blocked);
    suite_add_tcase(s, dur);
    TCase *io = tcase_create("io");
    tcase_add_checked_fixture(io, setup, teardown);
    tcase_add_test(io, pread_full_and_short);
    tcase_add_test(io, pwrite_and_pwritev_at_offsets);
    tcase_add_test(io, writev_all_after_short_writes);
    tcase_add_test(io, read_window_matches_file);
    tcase_add_test(io, seg_list_sorted_with_others);
    tcase_add_test(io, seg_list_missing_dir);
    suite_add_tcase(s, io);
    TCase *misc = tcase_create("batch and hash");
    tcase_add_test(misc, batch_round_trip_and_corrupt);
    tcase_add_test(misc, hash_seeded);
    suite_add_tcase(s, misc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
