/* check_util.c -- unit tests for lib/util (durations, sizes, numbers, buffers,
 * time format) and lib/counters. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int64_t dur(const char *s)
{
    int64_t ns = -1;
    char err[RN_ERRLEN];
    ck_assert_msg(rn_parse_duration(s, &ns, err) == 0, "%s: %s", s, err);
    return ns;
}

static void dur_bad(const char *s, const char *msg_part)
{
    int64_t ns;
    char err[RN_ERRLEN] = "";
    ck_assert_int_eq(rn_parse_duration(s, &ns, err), -1);
    ck_assert_msg(strstr(err, msg_part), "'%s' gave '%s'", s, err);
}

START_TEST(durations)
{
    ck_assert_int_eq(dur("500ms"), 500000000LL);
    ck_assert_int_eq(dur("10s"), 10000000000LL);
    ck_assert_int_eq(dur("10"), 10000000000LL);
    ck_assert_int_eq(dur("5m"), 300000000000LL);
    ck_assert_int_eq(dur("10min"), 600000000000LL);
    ck_assert_int_eq(dur("1h"), 3600000000000LL);
    ck_assert_int_eq(dur("2d"), 172800000000000LL);
    ck_assert_int_eq(dur("250us"), 250000LL);
    ck_assert_int_eq(dur("7ns"), 7LL);
    ck_assert_int_eq(dur("1.5s"), 1500000000LL);
    ck_assert_int_eq(dur("0.1s"), 100000000LL);
    ck_assert_int_eq(dur("0"), 0);
    dur_bad("", "empty");
    dur_bad("ms", "number");
    dur_bad("-1s", "number");
    dur_bad("5x", "unknown unit");
    dur_bad("5 s", "unknown unit");
    dur_bad("10MiB", "unknown unit");
    dur_bad("999999999999999999999s", "too large");
    dur_bad("300000d", "too large");
}
END_TEST

START_TEST(sizes)
{
    uint64_t v;
    char err[RN_ERRLEN];
    struct { const char *s; uint64_t v; } ok[] = {
        { "512", 512 }, { "512B", 512 }, { "10b", 10 }, { "64KiB", 65536 },
        { "64KB", 65536 }, { "64kb", 65536 }, { "64kib", 65536 }, { "1MiB", 1048576 },
        { "10MB", 10485760 }, { "2GiB", 2147483648ULL }, { "1TiB", 1099511627776ULL },
        { "1.5KiB", 1536 }, { "0.5GiB", 536870912 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        ck_assert_msg(rn_parse_size(ok[i].s, &v, err) == 0, "%s: %s", ok[i].s, err);
        ck_assert_uint_eq(v, ok[i].v);
    }
    /* The old spellings, a unit without its B: the value, and the new
     * spelling in err. */
    struct { const char *s; uint64_t v; const char *now; } old[] = {
        { "64k", 65536, "64KiB" }, { "64K", 65536, "64KiB" }, { "1m", 1048576, "1MiB" },
        { "2g", 2147483648ULL, "2GiB" }, { "1t", 1099511627776ULL, "1TiB" },
        { "1.5k", 1536, "1.5KiB" },
    };
    for (size_t i = 0; i < sizeof old / sizeof old[0]; i++) {
        ck_assert_msg(rn_parse_size(old[i].s, &v, err) == RN_SIZE_OLD, "%s: %s", old[i].s, err);
        ck_assert_uint_eq(v, old[i].v);
        ck_assert_str_eq(err, old[i].now);
    }
    const char *bad[] = { "", "k", "KiB", "12q", "1kx", "1bb", "1Mi", "1MiBB", "10ms", "1h",
                          "99999999999999999999", "20000000000TiB", "-5", "5 KiB" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(rn_parse_size(bad[i], &v, err) == -1, "%s accepted", bad[i]);
    rn_parse_size("10s", &v, err);
    ck_assert_msg(strstr(err, "use B, KiB, MiB, GiB or TiB"), "%s", err);
}
END_TEST

START_TEST(uints)
{
    uint64_t v;
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_parse_uint("42", 100, &v, err), 0);
    ck_assert_uint_eq(v, 42);
    ck_assert_int_eq(rn_parse_uint("100", 100, &v, err), 0);
    ck_assert_int_eq(rn_parse_uint("101", 100, &v, err), -1);
    ck_assert_int_eq(rn_parse_uint("18446744073709551615", UINT64_MAX, &v, err), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_int_eq(rn_parse_uint("18446744073709551616", UINT64_MAX, &v, err), -1);
    ck_assert_int_eq(rn_parse_uint("4x", 100, &v, err), -1);
    ck_assert_int_eq(rn_parse_uint("", 100, &v, err), -1);
    ck_assert_int_eq(rn_parse_uint("-1", 100, &v, err), -1);
}
END_TEST

START_TEST(buffers)
{
    rn_buf b = { 0 };
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(rn_buf_append(&b, "abc", 3), 0);
    ck_assert_uint_eq(b.len, 30000);
    ck_assert(b.cap >= b.len);
    ck_assert_int_eq(memcmp(b.p + 29997, "abc", 3), 0);
    rn_buf_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
}
END_TEST

START_TEST(times)
{
    char s[40];
    rn_format_time(1700000000123456789LL, s, sizeof s);
    ck_assert_str_eq(s, "2023-11-14T22:13:20.123Z");
    rn_format_time(0, s, sizeof s);
    ck_assert_str_eq(s, "1970-01-01T00:00:00.000Z");
    ck_assert(rn_now_ns() > 1700000000000000000LL);
    int64_t a = rn_mono_ns(), b = rn_mono_ns();
    ck_assert(b >= a);
}
END_TEST

START_TEST(decimal)
{
    char got[24], want[24];
    uint64_t v[] = { 0, 9, 10, 99, 100, 12345, 999999999, 1000000000,
                     9999999999999999999ULL, 10000000000000000000ULL, UINT64_MAX };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        got[rn_u64_dec(v[i], got)] = '\0';
        snprintf(want, sizeof want, "%llu", (unsigned long long)v[i]);
        ck_assert_str_eq(got, want);
    }
    /* Every power of ten and its neighbours: where the digit count changes. */
    for (uint64_t p = 10; p <= 10000000000000000000ULL; p *= 10) {
        for (uint64_t x = p - 1; x <= p + 1; x++) {
            got[rn_u64_dec(x, got)] = '\0';
            snprintf(want, sizeof want, "%llu", (unsigned long long)x);
            ck_assert_str_eq(got, want);
        }
        if (p > UINT64_MAX / 10)
            break;
    }
}
END_TEST

/* rn_memeq is memcmp() == 0 by overlapping loads: every length up to past
 * its word paths, a difference at every place, and the bytes exactly
 * allocated (ASan sees a load past them). */
START_TEST(memeq)
{
    for (size_t n = 0; n <= 40; n++) {
        char *a = malloc(n ? n : 1), *b = malloc(n ? n : 1);
        ck_assert(a && b);
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] = (char)('a' + i % 26);
        ck_assert_msg(rn_memeq(a, b, n), "n=%zu: equal bytes differ", n);
        for (size_t i = 0; i < n; i++) {
            b[i] ^= (char)(1 << (i % 8));
            ck_assert_msg(!rn_memeq(a, b, n), "n=%zu: a difference at %zu unseen", n, i);
            b[i] = a[i];
        }
        free(a);
        free(b);
    }
}
END_TEST

START_TEST(errors)
{
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_seterr(err, "x=%d", 5), -1);
    ck_assert_str_eq(err, "x=5");
    ck_assert_int_eq(rn_seterr(NULL, "ignored"), -1);
}
END_TEST

START_TEST(counters)
{
    rn_counters cs = { 0 };
    uint64_t *in = rn_counter_add(&cs, "in"), *out = rn_counter_add(&cs, "out");
    *in += 5;
    (*out)++;
    char buf[64];
    ck_assert_uint_eq(rn_counters_format(&cs, buf, sizeof buf), 10);
    ck_assert_str_eq(buf, "in=5 out=1");
    ck_assert_uint_eq(rn_counter_get(&cs, "in"), 5);
    ck_assert_uint_eq(rn_counter_get(&cs, "none"), 0);
    /* Truncation still reports the full length, like snprintf. */
    ck_assert_uint_eq(rn_counters_format(&cs, buf, 4), 10);
    ck_assert_str_eq(buf, "in=");
    for (int i = 2; i < RN_MAX_COUNTERS; i++)
        ck_assert_ptr_nonnull(rn_counter_add(&cs, "x"));
    ck_assert_ptr_null(rn_counter_add(&cs, "one too many"));
}
END_TEST

START_TEST(signals)
{
    char err[RN_ERRLEN];
    ck_assert_int_eq(rn_sig_install(err), 0);
    rn_sig_stop = 0;
    rn_sig_usr1 = 0;
    raise(SIGUSR1);
    ck_assert_int_eq(rn_sig_usr1, 1);
    ck_assert_int_eq(rn_sig_stop, 0);
    raise(SIGTERM);
    ck_assert_int_eq(rn_sig_stop, SIGTERM);
    raise(SIGHUP);      /* the terminal went away: a stop too */
    ck_assert_int_eq(rn_sig_stop, SIGHUP);
    raise(SIGPIPE);   /* ignored: we are still here */
    /* A blocking read is interrupted rather than restarted. */
    int fds[2];
    char c;
    ck_assert_int_eq(pipe(fds), 0);
    rn_sig_usr1 = 0;
    pid_t child = fork();
    if (child == 0) {
        usleep(100000);
        kill(getppid(), SIGUSR1);
        _exit(0);
    }
    errno = 0;
    ck_assert_int_eq(read(fds[0], &c, 1), -1);
    ck_assert_int_eq(errno, EINTR);
    ck_assert_int_eq(rn_sig_usr1, 1);
    waitpid(child, NULL, 0);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *parse = tcase_create("parse");
    tcase_add_test(parse, durations);
    tcase_add_test(parse, sizes);
    tcase_add_test(parse, uints);
    suite_add_tcase(s, parse);
    TCase *misc = tcase_create("misc");
    tcase_add_test(misc, buffers);
    tcase_add_test(misc, times);
    tcase_add_test(misc, decimal);
    tcase_add_test(misc, memeq);
    tcase_add_test(misc, errors);
    tcase_add_test(misc, counters);
    tcase_add_test(misc, signals);
    suite_add_tcase(s, misc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
