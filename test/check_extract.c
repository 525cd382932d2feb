/* check_extract.c -- unit tests for lib/extract: keys and values by regex,
 * field and JSON path; times by strptime formats and named forms. */
#include <check.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <string.h>

#include "window/window.h"

static const char *line =
    "1.2.3.4 - - [14/Nov/2023:22:13:20 +0100] \"GET /search?Input=Foo&page=2 HTTP/1.1\" 200 512";

static void expect(rn_fieldx *x, const char *s, const char *want)
{
    rn_str out;
    char err[RN_ERRLEN];
    int r = rn_fieldx_get(x, s, strlen(s), &out, err);
    if (!want) {
        ck_assert_int_eq(r, 0);
        return;
    }
    ck_assert_int_eq(r, 1);
    ck_assert_uint_eq(out.n, strlen(want));
    ck_assert(memcmp(out.p, want, out.n) == 0);
}

START_TEST(regex)
{
    char err[RN_ERRLEN];
    rn_fieldx *x = rn_fieldx_regex("Input=([^ &]*)", err);
    ck_assert_ptr_nonnull(x);
    expect(x, line, "Foo");
    expect(x, "GET /static/app.js", NULL);
    expect(x, "Input=", "");
    rn_fieldx_free(x);
    /* No group: the whole match. */
    x = rn_fieldx_regex("[0-9]+ [0-9]+$", err);
    expect(x, line, "200 512");
    rn_fieldx_free(x);
    /* An optional group that did not take part is no key. */
    x = rn_fieldx_regex("x(y)?", err);
    expect(x, "x", NULL);
    rn_fieldx_free(x);
    ck_assert_ptr_null(rn_fieldx_regex("a(b", err));
    ck_assert_msg(strstr(err, "regex 'a(b'") && strstr(err, "offset"), "%s", err);
}
END_TEST

/* The fast path for LIT([^SET]*)SUF must find what PCRE2 finds. */
START_TEST(simple_shape_matches_pcre2)
{
    static const char *const pats[] = {
        "Input=([^ &]*)", "\\[([^]]+)\\]", "a=([^;]+);", "ab([^ba]*)b", "x([^-y]*)",
        "k\\.([^ .]+)\\.", "q([^&]*)&e",
    };
    static const char alpha[] = "Input=ab;&[] .-xyqke\\";
    char err[RN_ERRLEN], line[64];
    unsigned seed = 12345;
    for (size_t i = 0; i < sizeof pats / sizeof pats[0]; i++) {
        rn_fieldx *x = rn_fieldx_regex(pats[i], err);
        int code;
        PCRE2_SIZE off;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pats[i], PCRE2_ZERO_TERMINATED, 0, &code,
                                       &off, NULL);
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        ck_assert_ptr_nonnull(x);
        ck_assert_ptr_nonnull(re);
        for (int k = 0; k < 20000; k++) {
            size_t n = (seed = seed * 1103515245 + 12345) % sizeof line;
            for (size_t j = 0; j < n; j++)
                line[j] = alpha[(seed = seed * 1103515245 + 12345) / 65536 % (sizeof alpha - 1)];
            if (k % 3 == 0 && n > 8)   /* plant the literal now and then */
                memcpy(line + (seed / 7) % (n - 7), pats[i], 1);
            rn_str got;
            int r = rn_fieldx_get(x, line, n, &got, err);
            int rc = pcre2_match(re, (PCRE2_SPTR)line, n, 0, 0, md, NULL);
            ck_assert_int_eq(r, rc > 0);
            if (rc > 0) {
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                ck_assert_uint_eq(got.n, ov[3] - ov[2]);
                ck_assert(got.p == line + ov[2]);
            }
        }
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        rn_fieldx_free(x);
    }
}
END_TEST

START_TEST(fields)
{
    char err[RN_ERRLEN];
    rn_fieldx *x = rn_fieldx_field(1, NULL, err);
    expect(x, "  a \t b  c", "a");
    rn_fieldx_free(x);
    x = rn_fieldx_field(3, NULL, err);
    expect(x, "  a \t b  c  ", "c");
    expect(x, "a b", NULL);
    rn_fieldx_free(x);
    x = rn_fieldx_field(2, ",", err);
    expect(x, "a,,c", "");
    expect(x, "a", NULL);
    rn_fieldx_free(x);
    x = rn_fieldx_field(3, "::", err);
    expect(x, "a::b::c::d", "c");
    rn_fieldx_free(x);
    ck_assert_ptr_null(rn_fieldx_field(0, NULL, err));
    ck_assert_ptr_null(rn_fieldx_field(1, "", err));
}
END_TEST

START_TEST(json_path)
{
    char err[RN_ERRLEN];
    rn_fieldx *x = rn_fieldx_json("user.id", err);
    expect(x, "{\"a\":[1,{\"b\":2}],\"user\":{\"name\":\"x\",\"id\":\"u\\u00e9\"}}", "u\xc3\xa9");
    expect(x, "{\"user\":{\"id\":42}}", "42");
    expect(x, "{\"user\":{\"id\":{\"deep\":1}}}", NULL);
    expect(x, "{\"user\":7}", NULL);
    expect(x, "not json", NULL);
    expect(x, "{\"user\":{\"id\":", NULL);
    rn_fieldx_free(x);
    ck_assert_ptr_null(rn_fieldx_json("a..b", err));
}
END_TEST

static int64_t t(rn_timex *x, const char *s)
{
    int64_t ns = -1;
    ck_assert_msg(rn_timex_parse(x, s, strlen(s), &ns) == 0, "%s", s);
    return ns;
}

START_TEST(times)
{
    char err[RN_ERRLEN];
    rn_timex *x = rn_timex_new(RN_TIME_NGINX, err);
    ck_assert_int_eq(t(x, "14/Nov/2023:22:13:20 +0000"), 1700000000000000000LL);
    ck_assert_int_eq(t(x, "14/Nov/2023:23:13:20 +0100"), 1700000000000000000LL);
    ck_assert_int_eq(t(x, "14/Nov/2023:23:13:20 +0100"), 1700000000000000000LL); /* cached */
    int64_t ns;
    ck_assert_int_eq(rn_timex_parse(x, "yesterday", 9, &ns), -1);
    rn_timex_free(x);
    x = rn_timex_new("epoch", err);
    ck_assert_int_eq(t(x, "1700000000.5"), 1700000000500000000LL);
    rn_timex_free(x);
    x = rn_timex_new("epoch_ms", err);
    ck_assert_int_eq(t(x, "1700000000123"), 1700000000123000000LL);
    rn_timex_free(x);
    x = rn_timex_new("epoch_ns", err);
    ck_assert_int_eq(t(x, "1700000000123456789"), 1700000000123456789LL);
    ck_assert_int_eq(rn_timex_parse(x, "12x", 3, &ns), -1);
    rn_timex_free(x);
    x = rn_timex_new("iso8601", err);
    ck_assert_int_eq(t(x, "2023-11-14T22:13:20Z"), 1700000000000000000LL);
    ck_assert_int_eq(t(x, "2023-11-14T23:13:20.25+01:00"), 1700000000250000000LL);
    ck_assert_int_eq(rn_timex_parse(x, "2023-11-14T22:13:20", 19, &ns), -1);
    rn_timex_free(x);
    ck_assert_ptr_null(rn_timex_new("no conversion", err));
}
END_TEST

/* Every format refuses a time outside int64 ns (1677-09-21 to 2262-04-11)
 * instead of wrapping it: 2300 is not 1715. */
START_TEST(times_out_of_range)
{
    char err[RN_ERRLEN];
    int64_t ns;
    struct { const char *fmt, *ok, *bad[4]; } c[] = {
        { RN_TIME_NGINX, "11/Apr/2262:23:47:16 +0000",
          { "12/Apr/2262:00:00:00 +0000", "01/Jan/2300:00:00:00 +0000",
            "01/Jan/1600:00:00:00 +0000", "11/Apr/2262:23:47:16 -0100" } },
        { "%Y-%m-%d %H:%M:%S", "1677-09-21 00:12:44",
          { "1677-09-21 00:12:43", "2300-01-01 00:00:00", "1600-01-01 00:00:00", NULL } },
        { "iso8601", "2262-04-11T23:47:16.854775807Z",
          { "2262-04-11T23:47:16.854775808Z", "2300-01-01T00:00:00Z",
            "1600-01-01T00:00:00Z", "2262-04-12T00:47:16.9+01:00" } },
        { "iso8601", "1677-09-21T00:12:43.145224193Z",
          { "1677-09-21T00:12:43.145224191Z", "1677-09-21T01:12:43+01:00", NULL } },
        { "epoch", "9223372036.854775807",
          { "9223372036.854775808", "9223372037", "-9223372037", "10000000000" } },
        { "epoch_ms", "-9223372036854",
          { "9223372036855", "-9223372036855", "99999999999999999999", NULL } },
        { "epoch_ns", "9223372036854775807",
          { "9223372036854775808", "-9223372036854775809", NULL } },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        rn_timex *x = rn_timex_new(c[i].fmt, err);
        ck_assert_ptr_nonnull(x);
        t(x, c[i].ok);
        for (size_t j = 0; j < 4 && c[i].bad[j]; j++)
            ck_assert_msg(rn_timex_parse(x, c[i].bad[j], strlen(c[i].bad[j]), &ns) == -1,
                          "%s: %s gave %lld", c[i].fmt, c[i].bad[j], (long long)ns);
        rn_timex_free(x);
    }
}
END_TEST

START_TEST(lower)
{
    rn_buf b = { 0 };
    ck_assert_int_eq(rn_lower(&b, "AbC-\xc3\x89", 6), 0);
    ck_assert_uint_eq(b.len, 6);
    ck_assert(memcmp(b.p, "abc-\xc3\x89", 6) == 0);   /* ASCII only */
    rn_buf_free(&b);
}
END_TEST

static void dec(const char *in, const char *want)
{
    rn_buf b = { 0 };
    ck_assert_int_eq(rn_urldecode(&b, in, strlen(in)), 0);
    ck_assert_msg(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
                  "'%s' gave '%.*s', want '%s'", in, (int)b.len, b.p, want);
    rn_buf_free(&b);
}

START_TEST(urldecode)
{
    dec("%E6%89%8B%e6%9c%ba", "\xe6\x89\x8b\xe6\x9c\xba");
    dec("a+b%20c", "a b c");
    dec("%", "%");
    dec("50%", "50%");
    dec("%4", "%4");
    dec("%4g%41", "%4gA");
    dec("%%41", "%A");
    dec("", "");
    rn_buf b = { 0 };       /* a NUL byte decodes like any other */
    ck_assert_int_eq(rn_urldecode(&b, "%00x", 4), 0);
    ck_assert_uint_eq(b.len, 2);
    ck_assert(memcmp(b.p, "\0x", 2) == 0);
    rn_buf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("extract");
    TCase *tc = tcase_create("extract");
    tcase_add_test(tc, regex);
    tcase_add_test(tc, simple_shape_matches_pcre2);
    tcase_add_test(tc, fields);
    tcase_add_test(tc, json_path);
    tcase_add_test(tc, times);
    tcase_add_test(tc, times_out_of_range);
    tcase_add_test(tc, lower);
    tcase_add_test(tc, urldecode);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
