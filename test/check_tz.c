/* check_tz.c -- unit tests for lib/window/tz.c: fixed offsets and tz
 * database zones, offsets across daylight saving changes, local wall times
 * back to instants, times with offsets in rows, and winagg's windows of a
 * local day and hour. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "window/window.h"

#define S 1000000000LL
/* 2026-03-29T01:00:00Z and 2026-10-25T01:00:00Z: Europe/Berlin's changes */
#define SPRING 1774746000LL
#define FALL 1792890000LL

static rn_tz *zone(const char *spec)
{
    char err[RN_ERRLEN];
    rn_tz *z = rn_tz_new(spec, err);
    ck_assert_msg(z != NULL, "%s: %s", spec, err);
    return z;
}

START_TEST(fixed_offsets)
{
    static const struct { const char *s; int32_t off; } ok[] = {
        { "+08:00", 28800 }, { "-0530", -19800 }, { "+08", 28800 }, { "-00:30", -1800 },
        { "+05:30:15", 19815 },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        rn_tz *z = zone(ok[i].s);
        ck_assert_int_eq(rn_tz_offset(z, 1700000000 * S), ok[i].off);
        ck_assert_int_eq(rn_tz_step(z), 0);
        ck_assert(!rn_tz_is_utc(z));
        ck_assert_int_eq(rn_tz_from_local(z, 1700000000 * S), (1700000000LL - ok[i].off) * S);
        rn_tz_free(z);
    }
    static const char *bad[] = { "+8", "+24:00", "08:00", "+08:", "+08:60", "+0800x", "+", "" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[RN_ERRLEN] = "";
        ck_assert_msg(rn_tz_new(bad[i], err) == NULL, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, "time zone"), "%s: %s", bad[i], err);
    }
    rn_tz *z = zone("Z");
    ck_assert(rn_tz_is_utc(z));
    ck_assert_int_eq(rn_tz_offset(z, 0), 0);
    rn_tz_free(z);
}
END_TEST

START_TEST(unknown_zones)
{
    static const char *bad[] = { "Mars/Olympus", "Europe", "../../etc/passwd", "/etc/localtime" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char err[RN_ERRLEN] = "";
        ck_assert_msg(rn_tz_new(bad[i], err) == NULL, "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, bad[i]), "%s: %s", bad[i], err);
    }
    char err[RN_ERRLEN];
    rn_tz_new("Mars/Olympus", err);
    ck_assert_msg(strstr(err, "unknown time zone 'Mars/Olympus'"), "%s", err);
}
END_TEST

/* Every second around both changes, in order and out of order, against
 * the rule: CEST from 01:00Z on the last Sunday of March to 01:00Z on the
 * last Sunday of October. */
START_TEST(berlin_offsets)
{
    rn_tz *z = zone("Europe/Berlin");
    ck_assert_int_eq(rn_tz_step(z), 3600);
    ck_assert_int_eq(rn_tz_offset_1970(z), 3600);
    int64_t at[] = { SPRING, FALL };
    for (int k = 0; k < 2; k++)
        for (int64_t s = at[k] - 7200; s < at[k] + 7200; s += 7) {
            int32_t want = (s >= SPRING && s < FALL) ? 7200 : 3600;
            ck_assert_int_eq(rn_tz_offset(z, s * S), want);
            ck_assert_int_eq(rn_tz_offset(z, (2 * at[k] - s) * S),
                             (2 * at[k] - s >= SPRING && 2 * at[k] - s < FALL) ? 7200 : 3600);
        }
    ck_assert_int_eq(rn_tz_offset(z, SPRING * S - 1), 3600);    /* the last ns before */
    ck_assert_int_eq(rn_tz_offset(z, FALL * S - 1), 7200);
    rn_tz_free(z);
}
END_TEST

START_TEST(wall_to_instant)
{
    rn_tz *z = zone("Europe/Berlin");
    int64_t day = 1774742400LL;     /* 2026-03-29T00:00:00 as a wall time */
    /* midnight: CET */
    ck_assert_int_eq(rn_tz_from_local(z, day * S), (day - 3600) * S);
    /* 02:30 does not exist: the end of the gap, 03:00 CEST */
    ck_assert_int_eq(rn_tz_from_local(z, (day + 9000) * S), SPRING * S);
    ck_assert_int_eq(rn_tz_from_local(z, (day + 10800) * S), SPRING * S);
    /* 2026-10-25 02:30 happens twice: the first, CEST */
    int64_t fday = 1792886400LL;
    ck_assert_int_eq(rn_tz_from_local(z, (fday + 9000) * S), (fday + 9000 - 7200) * S);
    /* 03:00 follows the second 02:59 */
    ck_assert_int_eq(rn_tz_from_local(z, (fday + 10800) * S), (fday + 10800 - 3600) * S);
    /* the next midnight: a 25-hour day */
    ck_assert_int_eq(rn_tz_from_local(z, (fday + 86400) * S) - rn_tz_from_local(z, fday * S),
                     25 * 3600 * S);
    rn_tz_free(z);
}
END_TEST

/* glibc holds one zone: two objects in turn each still get their own. */
START_TEST(two_zones)
{
    rn_tz *b = zone("Europe/Berlin"), *n = zone("America/New_York"), *sh = zone("Asia/Shanghai");
    for (int i = 0; i < 3; i++) {
        int64_t t = (1780000000LL + i * 86400 * 30) * S;   /* summer 2026 */
        ck_assert_int_eq(rn_tz_offset(b, t), 7200);
        ck_assert_int_eq(rn_tz_offset(n, t), -4 * 3600);
        ck_assert_int_eq(rn_tz_offset(sh, t), 8 * 3600);
        ck_assert_int_eq(rn_tz_from_local(n, t), t + 4 * 3600 * S);
    }
    ck_assert_int_eq(rn_tz_step(sh) % 3600, 0);
    rn_tz_free(b);
    rn_tz_free(n);
    rn_tz_free(sh);
}
END_TEST

START_TEST(times_with_offsets)
{
    char out[RN_TIMELEN];
    int64_t ns;
    rn_tz *z = zone("Europe/Berlin");
    int64_t mid = (1774742400LL - 3600) * S;
    size_t n = rn_time_format_tz(mid, z, out);
    ck_assert_str_eq(out, "2026-03-29T00:00:00+01:00");
    ck_assert_int_eq(n, strlen(out));
    ck_assert_int_eq(rn_time_parse(out, n, &ns), 0);
    ck_assert_int_eq(ns, mid);
    rn_time_format_tz(SPRING * S + 5 * S / 10, z, out);
    ck_assert_str_eq(out, "2026-03-29T03:00:00.500+02:00");
    rn_time_format_tz(mid, NULL, out);
    ck_assert_str_eq(out, "2026-03-28T23:00:00Z");
    rn_tz_free(z);
    z = zone("-05:30");
    rn_time_format_tz(0, z, out);
    ck_assert_str_eq(out, "1969-12-31T18:30:00-05:30");
    rn_tz_free(z);

    static const struct { const char *s; int64_t ns; } ok[] = {
        { "2026-03-29T00:00:00+0100", (1774742400LL - 3600) * S },
        { "2026-03-29T00:00:00+01", (1774742400LL - 3600) * S },
        { "2026-03-29T00:00:00-05:30", (1774742400LL + 19800) * S },
        { "2026-03-29T00:00:00.250+00:00", 1774742400LL * S + S / 4 },
        { "1893-04-01T00:00:00+00:53:28", (-2422051200LL - 3208) * S },
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ck_assert_msg(rn_time_parse(ok[i].s, strlen(ok[i].s), &ns) == 0, "%s", ok[i].s);
        ck_assert_msg(ns == ok[i].ns, "%s: %lld", ok[i].s, (long long)ns);
    }
    static const char *bad[] = { "2026-03-29T00:00:00+1:00", "2026-03-29T00:00:00+01:",
                                 "2026-03-29T00:00:00+0100:00", "2026-03-29T00:00:00+24:00",
                                 "2026-03-29T00:00:00", "2026-03-29T00:00:00+01:00Z" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        ck_assert_msg(rn_time_parse(bad[i], strlen(bad[i]), &ns) < 0, "%s", bad[i]);
}
END_TEST

/* ---- winagg over a zone --------------------------------------------------- */

typedef struct got {
    rn_row r[64];
    int n;
} got;

static int collect(void *data, const rn_row *row)
{
    got *g = data;
    ck_assert_int_lt(g->n, 64);
    g->r[g->n] = *row;
    g->r[g->n].key.p = NULL;
    g->n++;
    return 0;
}

/* One event every 30 minutes over [from, to) (s), counted per window of
 * width w in zone; the rows into g. */
static void run(const char *zonespec, int64_t w, int64_t from, int64_t to, got *g)
{
    char err[RN_ERRLEN];
    rn_wagg_opts o;
    memset(&o, 0, sizeof o);
    o.key = rn_fieldx_regex("k", err);
    o.time = RN_TIME_HEADER;
    o.tz = zone(zonespec);
    o.win.width_ns = o.win.slide_ns = w;
    o.win.agg = RN_AGG_COUNT;
    rn_wagg *a = rn_wagg_new(&o, err);
    ck_assert_msg(a != NULL, "%s", err);
    memset(g, 0, sizeof *g);
    for (int64_t t = from; t < to; t += 1800) {
        rn_event ev;
        rn_event_clear(&ev);
        ev.ts = t * S;
        ev.body.p = "k";
        ev.body.n = 1;
        ck_assert_int_eq(rn_wagg_event(a, &ev, 0, err), 0);
        ck_assert_int_eq(rn_wagg_tick(a, 0, collect, g), 0);
    }
    ck_assert_int_eq(rn_wagg_finish(a, collect, g), 0);
    ck_assert_int_eq(rn_wagg_closed(a), g->r[g->n - 1].end);
    rn_wagg_free(a);
}

START_TEST(local_days)
{
    got g;
    /* Berlin, 2026-10-24T00:00 to 2026-10-27T00:00 local */
    int64_t from = 1792792800LL, to = from + 3 * 86400 + 3600;
    run("Europe/Berlin", 86400 * S, from, to, &g);
    ck_assert_int_eq(g.n, 3);
    ck_assert_int_eq((g.r[1].end - g.r[1].start) / S, 25 * 3600);   /* the 25th */
    ck_assert_int_eq(g.r[1].value.i, 50);
    ck_assert_int_eq(g.r[0].value.i, 48);
    ck_assert_int_eq(g.r[2].value.i, 48);
    ck_assert_int_eq(g.r[0].start, from * S);
    ck_assert_int_eq(g.r[2].end, to * S);
    for (int i = 1; i < g.n; i++)
        ck_assert_int_eq(g.r[i].start, g.r[i - 1].end);
    /* and the spring: 2026-03-28 to 2026-03-31 local, the 29th has 23 hours */
    from = 1774652400LL;
    to = from + 3 * 86400 - 3600;
    run("Europe/Berlin", 86400 * S, from, to, &g);
    ck_assert_int_eq(g.n, 3);
    ck_assert_int_eq(g.r[1].value.i, 46);
    ck_assert_int_eq((g.r[1].end - g.r[1].start) / S, 23 * 3600);
    /* a fixed +08:00: days start at 16:00Z */
    run("+08:00", 86400 * S, 1792800000LL, 1792800000LL + 86400, &g);
    ck_assert_int_eq(g.n, 2);
    ck_assert_int_eq(g.r[0].end, (1792800000LL + 16 * 3600) * S);
    ck_assert_int_eq(g.r[0].value.i, 32);
    ck_assert_int_eq(g.r[1].value.i, 16);
}
END_TEST

START_TEST(local_hours_at_fall_back)
{
    got g;
    char a[RN_TIMELEN], b[RN_TIMELEN];
    rn_tz *z = zone("Europe/Berlin");
    run("Europe/Berlin", 3600 * S, FALL - 7200, FALL + 7200, &g);
    ck_assert_int_eq(g.n, 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(g.r[i].start, (FALL - 7200 + 3600 * i) * S);
        ck_assert_int_eq(g.r[i].value.i, 2);
    }
    rn_time_format_tz(g.r[1].start, z, a);
    rn_time_format_tz(g.r[2].start, z, b);
    ck_assert_str_eq(a, "2026-10-25T02:00:00+02:00");
    ck_assert_str_eq(b, "2026-10-25T02:00:00+01:00");
    rn_tz_free(z);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tz");
    TCase *tc = tcase_create("zones");
    tcase_add_test(tc, fixed_offsets);
    tcase_add_test(tc, unknown_zones);
    tcase_add_test(tc, berlin_offsets);
    tcase_add_test(tc, wall_to_instant);
    tcase_add_test(tc, two_zones);
    suite_add_tcase(s, tc);
    tc = tcase_create("rows");
    tcase_add_test(tc, times_with_offsets);
    suite_add_tcase(s, tc);
    tc = tcase_create("winagg");
    tcase_add_test(tc, local_days);
    tcase_add_test(tc, local_hours_at_fall_back);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
