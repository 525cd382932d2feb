/* check_prom.c -- the specification of core/prom.c, Prometheus' text
 * exposition format 0.0.4, as tests: what a scrape looks like, how label
 * values and HELP text are escaped, and the names and orders it refuses. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

/* A writer and its text, as the tests read it. */
typedef struct w {
    rn_buf b;
    rn_prom p;
} w;

static void w_init(w *x)
{
    memset(x, 0, sizeof *x);
    rn_prom_init(&x->p, &x->b);
}

/* The text so far, NUL-terminated. */
static const char *text(w *x)
{
    rn_buf_append(&x->b, "", 1);
    x->b.len--;
    return x->b.p ? x->b.p : "";
}

static void w_free(w *x)
{
    rn_prom_free(&x->p);
    rn_buf_free(&x->b);
}

#define L(name, s) ((rn_prom_label){ (name), (s), sizeof(s) - 1 })

/* ---- what a scrape looks like ----------------------------------------------------- */

START_TEST(families_and_samples)
{
    w x;
    w_init(&x);
    rn_prom_family(&x.p, "runnel_chanbuf", "events_out_total", RN_PROM_COUNTER,
                   "Events the sink delivered.");
    rn_prom_label a = L("sink", "stdout"), b = L("sink", "tcp://h:1");
    rn_prom_sample(&x.p, &a, 1, 1000);
    rn_prom_sample(&x.p, &b, 1, UINT64_MAX);
    rn_prom_one(&x.p, "runnel_chanbuf", "events_pending", RN_PROM_GAUGE, "Pending.", 0);
    rn_prom_family(&x.p, NULL, "runnel_consume_lag", RN_PROM_GAUGE, "Lag.");
    rn_prom_label tp[2] = { L("topic", "t"), L("partition", "3") };
    rn_prom_sample_i64(&x.p, tp, 2, -5);
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
    ck_assert_str_eq(text(&x),
                     "# HELP runnel_chanbuf_events_out_total Events the sink delivered.\n"
                     "# TYPE runnel_chanbuf_events_out_total counter\n"
                     "runnel_chanbuf_events_out_total{sink=\"stdout\"} 1000\n"
                     "runnel_chanbuf_events_out_total{sink=\"tcp://h:1\"} 18446744073709551615\n"
                     "# HELP runnel_chanbuf_events_pending Pending.\n"
                     "# TYPE runnel_chanbuf_events_pending gauge\n"
                     "runnel_chanbuf_events_pending 0\n"
                     "# HELP runnel_consume_lag Lag.\n"
                     "# TYPE runnel_consume_lag gauge\n"
                     "runnel_consume_lag{topic=\"t\",partition=\"3\"} -5\n");
    w_free(&x);
}
END_TEST

START_TEST(family_without_samples)
{
    /* No partitions yet: the family is announced, with no samples. */
    w x;
    w_init(&x);
    rn_prom_family(&x.p, "p", "lag", RN_PROM_GAUGE, NULL);
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
    ck_assert_str_eq(text(&x), "# HELP p_lag \n# TYPE p_lag gauge\n");
    w_free(&x);
}
END_TEST

START_TEST(from_counters)
{
    rn_counters cs = { 0 };
    *rn_counter_add(&cs, "lines") = 7;
    *rn_counter_add(&cs, "cut") = 2;
    static const rn_prom_desc d[] = {
        { "cut", "lines_cut_total", RN_PROM_COUNTER, "Cut." },
        { "lines", "lines", RN_PROM_GAUGE, "Lines." },
    };
    w x;
    w_init(&x);
    rn_prom_counters(&x.p, "runnel_logtail", &cs, d, 2);
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
    ck_assert_str_eq(text(&x),
                     "# HELP runnel_logtail_lines_cut_total Cut.\n"
                     "# TYPE runnel_logtail_lines_cut_total counter\n"
                     "runnel_logtail_lines_cut_total 2\n"
                     "# HELP runnel_logtail_lines Lines.\n"
                     "# TYPE runnel_logtail_lines gauge\n"
                     "runnel_logtail_lines 7\n");
    w_free(&x);

    /* A description of a counter the table does not have is an error, not
     * a silent 0: a renamed counter is noticed. */
    static const rn_prom_desc gone[] = { { "bytes", "bytes_total", RN_PROM_COUNTER, "" } };
    char err[RN_ERRLEN];
    w_init(&x);
    rn_prom_counters(&x.p, "runnel_logtail", &cs, gone, 1);
    ck_assert_int_eq(rn_prom_error(&x.p, err), RN_ERR);
    ck_assert_msg(strstr(err, "bytes") != NULL, "%s", err);
    w_free(&x);
}
END_TEST

/* ---- escaping --------------------------------------------------------------------- */

START_TEST(label_values_escaped)
{
    w x;
    w_init(&x);
    rn_prom_family(&x.p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_label l[] = {
        L("a", "back\\slash"), L("b", "say \"hi\""), L("c", "two\nlines"),
        L("d", "\xe6\x90\x9c\xe7\xb4\xa2"),     /* 搜索: valid UTF-8 passes */
        L("e", "tab\there, {braces}, comma=,"),
    };
    rn_prom_sample(&x.p, l, 5, 1);
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
    ck_assert_str_eq(text(&x), "# HELP m h\n# TYPE m gauge\n"
                     "m{a=\"back\\\\slash\",b=\"say \\\"hi\\\"\",c=\"two\\nlines\","
                     "d=\"\xe6\x90\x9c\xe7\xb4\xa2\",e=\"tab\there, {braces}, comma=,\"} 1\n");
    w_free(&x);
}
END_TEST

START_TEST(not_utf8_replaced)
{
    /* A file name that is not UTF-8 is shown, each bad byte as U+FFFD: a
     * lone 0xff, a truncated sequence at the end, an overlong '/', a UTF-16
     * surrogate. The valid bytes around them stay. */
    w x;
    w_init(&x);
    rn_prom_family(&x.p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_label l[] = {
        L("a", "x\xffy"), L("b", "end\xe6\x90"), L("c", "\xc0\xaf"), L("d", "\xed\xa0\x80z"),
    };
    rn_prom_sample(&x.p, l, 4, 1);
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
#define R "\xef\xbf\xbd"
    ck_assert_str_eq(text(&x), "# HELP m h\n# TYPE m gauge\n"
                     "m{a=\"x" R "y\",b=\"end" R R "\",c=\"" R R "\",d=\"" R R R "z\"} 1\n");
#undef R
    w_free(&x);
}
END_TEST

START_TEST(help_escaped)
{
    /* In HELP only \ and newline are escaped; quotes stay. */
    w x;
    w_init(&x);
    rn_prom_family(&x.p, NULL, "m_total", RN_PROM_COUNTER, "a \\ b\n\"c\"");
    ck_assert_int_eq(rn_prom_error(&x.p, NULL), 0);
    ck_assert_str_eq(text(&x), "# HELP m_total a \\\\ b\\n\"c\"\n# TYPE m_total counter\n");
    w_free(&x);
}
END_TEST

START_TEST(label_value_bytes)
{
    /* A value is its n bytes, NUL included, not a C string. */
    w x;
    w_init(&x);
    rn_prom_family(&x.p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_label l = { "g", "a\0b", 3 };
    rn_prom_sample(&x.p, &l, 1, 2);
    ck_assert_uint_eq(x.b.len, strlen("# HELP m h\n# TYPE m gauge\n") + strlen("m{g=\"a") + 1
                                   + strlen("b\"} 2\n"));
    ck_assert(memmem(x.b.p, x.b.len, "m{g=\"a\0b\"} 2\n", 13) != NULL);
    w_free(&x);
}
END_TEST

/* ---- what it refuses ---------------------------------------------------------------- */

/* The error of a writer that did f, then its text. */
static int refused(void (*f)(rn_prom *p), char *err)
{
    w x;
    w_init(&x);
    f(&x.p);
    int r = rn_prom_error(&x.p, err);
    w_free(&x);
    return r;
}

static void counter_without_total(rn_prom *p)
{
    rn_prom_family(p, "runnel_x", "events_in", RN_PROM_COUNTER, "h");
}
static void bad_metric_name(rn_prom *p) { rn_prom_family(p, NULL, "9lives", RN_PROM_GAUGE, "h"); }
static void bad_metric_char(rn_prom *p) { rn_prom_family(p, "a-b", "c", RN_PROM_GAUGE, "h"); }
static void unknown_type(rn_prom *p) { rn_prom_family(p, NULL, "m", 7, "h"); }
static void twice(rn_prom *p)
{
    rn_prom_one(p, "a", "m", RN_PROM_GAUGE, "h", 1);
    rn_prom_one(p, NULL, "a_m", RN_PROM_GAUGE, "h", 2);
}
static void sample_first(rn_prom *p) { rn_prom_sample(p, NULL, 0, 1); }
static void bad_label(rn_prom *p)
{
    rn_prom_label l = L("file-name", "x");
    rn_prom_family(p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_sample(p, &l, 1, 1);
}
static void reserved_label(rn_prom *p)
{
    rn_prom_label l = L("__name__", "x");
    rn_prom_family(p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_sample(p, &l, 1, 1);
}
static void label_twice(rn_prom *p)
{
    rn_prom_label l[2] = { L("a", "x"), L("a", "y") };
    rn_prom_family(p, NULL, "m", RN_PROM_GAUGE, "h");
    rn_prom_sample(p, l, 2, 1);
}
static void too_long(rn_prom *p)
{
    char name[300];
    memset(name, 'a', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    rn_prom_family(p, NULL, name, RN_PROM_GAUGE, "h");
}

START_TEST(names_refused)
{
    char err[RN_ERRLEN];
    static const struct {
        void (*f)(rn_prom *p);
        const char *says;
    } cases[] = {
        { counter_without_total, "_total" }, { bad_metric_name, "9lives" },
        { bad_metric_char, "a-b_c" }, { unknown_type, "type" }, { twice, "twice" },
        { sample_first, "before any family" }, { bad_label, "file-name" },
        { reserved_label, "__name__" }, { label_twice, "twice" }, { too_long, "too long" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(refused(cases[i].f, err), RN_ERR);
        ck_assert_msg(strstr(err, cases[i].says) != NULL, "case %zu: '%s'", i, err);
    }
}
END_TEST

START_TEST(error_is_sticky)
{
    /* After a refusal nothing more is written, and the first error stays. */
    char err[RN_ERRLEN];
    w x;
    w_init(&x);
    rn_prom_one(&x.p, NULL, "ok", RN_PROM_GAUGE, "h", 1);
    size_t len = x.b.len;
    rn_prom_family(&x.p, NULL, "bad_counter", RN_PROM_COUNTER, "h");
    rn_prom_one(&x.p, NULL, "later", RN_PROM_GAUGE, "h", 2);
    rn_prom_family(&x.p, NULL, "9", RN_PROM_GAUGE, "h");
    ck_assert_uint_eq(x.b.len, len);
    ck_assert_int_eq(rn_prom_error(&x.p, err), RN_ERR);
    ck_assert_msg(strstr(err, "bad_counter") != NULL, "%s", err);
    w_free(&x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("prom");

    TCase *fmt = tcase_create("format");
    tcase_add_test(fmt, families_and_samples);
    tcase_add_test(fmt, family_without_samples);
    tcase_add_test(fmt, from_counters);
    suite_add_tcase(s, fmt);

    TCase *esc = tcase_create("escaping");
    tcase_add_test(esc, label_values_escaped);
    tcase_add_test(esc, not_utf8_replaced);
    tcase_add_test(esc, help_escaped);
    tcase_add_test(esc, label_value_bytes);
    suite_add_tcase(s, esc);

    TCase *bad = tcase_create("refusals");
    tcase_add_test(bad, names_refused);
    tcase_add_test(bad, error_is_sticky);
    suite_add_tcase(s, bad);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
