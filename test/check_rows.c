/* check_rows.c -- unit tests for lib/rows: values, times, and rows and
 * watermarks written and read back in tsv, json and frames; malformed rows
 * named by line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "window/window.h"

static const rn_row *samples(size_t *n)
{
    static rn_row r[6];
    r[0] = (rn_row){ 1700000000000000000LL, 1700000030000000000LL, { "alpha", 5 }, { 0, 42, 0, 0 }, 0 };
    r[1] = (rn_row){ 1700000010000000000LL, 1700000040000000000LL, { "tab\there\nnl\\bs", 14 },
                     { 0, -7, 0, 0 }, 0 };
    r[2] = (rn_row){ 1700000000500000000LL, 1700000001000000000LL, { "caf\xc3\xa9 \xff", 7 },
                     { 1, 0, 0.1, 0 }, 0 };
    r[3] = (rn_row){ 0, 1000000000LL, { "", 0 }, { 0, INT64_MIN, 0, 0 }, 0 };
    r[4] = (rn_row){ 1700000000000000000LL, 1700003600000000000LL, { "big", 3 },
                     { 1, 0, 1.0 / 3.0, 0 }, 0 };
    r[5] = (rn_row){ 1700000000000000000LL, 1700000030000000000LL, { "money", 5 },
                     { 0, -123450, 0, 2 }, 0 };                   /* -1234.50 */
    *n = 6;
    return r;
}

START_TEST(values)
{
    char out[32];
    rn_value v;
    ck_assert_int_eq(rn_value_parse("123", 3, &v), 0);
    ck_assert(!v.is_float && v.i == 123);
    ck_assert_int_eq(rn_value_parse("-9223372036854775808", 20, &v), 0);
    ck_assert(!v.is_float && v.i == INT64_MIN);
    ck_assert_int_eq(rn_value_parse("9223372036854775808", 19, &v), 0);
    ck_assert(v.is_float);   /* too big for int64: a double */
    /* A decimal point makes a decimal: mantissa and scale, exactly. */
    ck_assert_int_eq(rn_value_parse("2.5", 3, &v), 0);
    ck_assert(!v.is_float && v.i == 25 && v.scale == 1);
    ck_assert(rn_value_double(v) == 2.5);
    ck_assert_int_eq(rn_value_parse("1e3", 3, &v), 0);
    ck_assert(v.is_float && v.f == 1000);
    ck_assert_int_eq(rn_value_parse("", 0, &v), -1);
    ck_assert_int_eq(rn_value_parse("12x", 3, &v), -1);
    ck_assert_int_eq(rn_value_parse("nan", 3, &v), -1);
    ck_assert_int_eq(rn_value_parse("inf", 3, &v), -1);
    ck_assert_int_eq(rn_value_parse("1e999", 5, &v), -1);
    out[rn_value_format((rn_value){ 1, 0, 0.1, 0 }, out)] = '\0';
    ck_assert_str_eq(out, "0.1");
    out[rn_value_format((rn_value){ 1, 0, 1.0 / 3.0, 0 }, out)] = '\0';
    ck_assert_int_eq(rn_value_parse(out, strlen(out), &v), 0);
    ck_assert(rn_value_double(v) == 1.0 / 3.0);     /* 17 decimals: a decimal */
    out[rn_value_format((rn_value){ 0, INT64_MIN, 0, 0 }, out)] = '\0';
    ck_assert_str_eq(out, "-9223372036854775808");
    ck_assert(rn_value_double((rn_value){ 0, 3, 0, 0 }) == 3.0);
}
END_TEST

/* Decimals read and written back byte for byte. */
START_TEST(decimals)
{
    static const struct { const char *in, *out; int64_t i; int scale; } ok[] = {
        { "1234.56", "1234.56", 123456, 2 },
        { "-0.5", "-0.5", -5, 1 },
        { "1.10", "1.10", 110, 2 },
        { "+.25", "0.25", 25, 2 },
        { "-.05", "-0.05", -5, 2 },
        { "007.000", "7.000", 7000, 3 },
        { "3.", "3", 3, 0 },
        { "-0.0", "0.0", 0, 1 },
        { "0.000000000000000001", "0.000000000000000001", 1, 18 },
        { "-9.223372036854775808", "-9.223372036854775808", INT64_MIN, 18 },
        { "922337203685477580.7", "922337203685477580.7", INT64_MAX, 1 },
    };
    char out[32];
    rn_value v;
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ck_assert_msg(rn_value_parse(ok[i].in, strlen(ok[i].in), &v) == 0, "%s", ok[i].in);
        ck_assert_msg(!v.is_float && v.i == ok[i].i && v.scale == ok[i].scale,
                      "%s: %lld scale %d", ok[i].in, (long long)v.i, v.scale);
        out[rn_value_format(v, out)] = '\0';
        ck_assert_str_eq(out, ok[i].out);
    }
    /* Not decimals: 19 decimals, a mantissa past int64, an exponent. */
    static const char *dbl[] = { "0.1000000000000000000", "92233720368547758.08",
                                 "1.5e2", "-2.5E-1" };
    for (size_t i = 0; i < sizeof dbl / sizeof *dbl; i++) {
        ck_assert_msg(rn_value_parse(dbl[i], strlen(dbl[i]), &v) == 0, "%s", dbl[i]);
        ck_assert_msg(v.is_float && v.f == strtod(dbl[i], NULL), "%s", dbl[i]);
    }
    ck_assert_int_eq(rn_value_parse(".", 1, &v), -1);
    ck_assert_int_eq(rn_value_parse("-", 1, &v), -1);
    ck_assert_int_eq(rn_value_parse("1.2.3", 5, &v), -1);
    ck_assert_int_eq(rn_value_parse("1. 5", 4, &v), -1);
    /* The double of a decimal is the nearest, also past 2^53. */
    ck_assert(rn_value_double((rn_value){ 0, 1, 0, 1 }) == 0.1);
    ck_assert(rn_value_double((rn_value){ 0, INT64_MAX, 0, 18 }) == 9.223372036854775807);
    ck_assert(rn_value_double((rn_value){ 0, -123456789012345678, 0, 3 })
              == -123456789012345.678);
}
END_TEST

START_TEST(times)
{
    char out[32];
    int64_t ns;
    rn_time_format(1700000000000000000LL, out);
    ck_assert_str_eq(out, "2023-11-14T22:13:20Z");
    rn_time_format(1700000000250000000LL, out);
    ck_assert_str_eq(out, "2023-11-14T22:13:20.250Z");
    ck_assert_int_eq(rn_time_parse(out, strlen(out), &ns), 0);
    ck_assert_int_eq(ns, 1700000000250000000LL);
    ck_assert_int_eq(rn_time_parse("2023-11-14T22:13:20Z", 20, &ns), 0);
    ck_assert_int_eq(ns, 1700000000000000000LL);
    const char *bad[] = { "2023-11-14T22:13:20", "2023-11-14 22:13:20Z", "2023-13-14T22:13:20Z",
                          "2023-11-14T22:13:20.5Z", "x", "2023-11-14T22:13:20Zjunk" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(rn_time_parse(bad[i], strlen(bad[i]), &ns) == -1, "%s", bad[i]);
}
END_TEST

/* rn_time_parse counts days by arithmetic, not timegm: it reads back what
 * gmtime_r gives for every day an int64 of ns reaches, and runs on past a
 * month's end or into a 60th second as timegm does. */
START_TEST(times_every_day)
{
    char s[40];
    int64_t ns;
    struct tm tm;
    for (time_t t = -9214560000 + 45296; t < 9214646400; t += 86400) {  /* 1678 to 2261 */
        gmtime_r(&t, &tm);
        int n = snprintf(s, sizeof s, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        ck_assert_msg(rn_time_parse(s, (size_t)n, &ns) == 0 && ns == (int64_t)t * 1000000000,
                      "%s", s);
    }
    const char *odd[] = { "2023-02-30T00:00:00Z", "2024-02-31T12:00:00Z", "2023-04-31T23:59:60Z",
                          "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z", "2023-12-31T23:59:60Z" };
    for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
        memset(&tm, 0, sizeof tm);
        ck_assert(strptime(odd[i], "%Y-%m-%dT%H:%M:%SZ", &tm) != NULL);
        ck_assert_msg(rn_time_parse(odd[i], strlen(odd[i]), &ns) == 0
                      && ns == (int64_t)timegm(&tm) * 1000000000, "%s", odd[i]);
    }
}
END_TEST

static void expect_bad(const char *in, const char *msg);

/* ns since the epoch in an int64 reach from 1677-09-21T00:12:43.145224192Z
 * to 2262-04-11T23:47:16.854775807Z: a time outside is refused, never
 * wrapped (2300 read as 1715). */
START_TEST(times_out_of_range)
{
    int64_t ns;
    ck_assert_int_eq(rn_time_parse("2262-04-11T23:47:16.854Z", 24, &ns), 0);
    ck_assert_int_eq(ns, 9223372036854000000LL);
    ck_assert_int_eq(rn_time_parse("2262-04-12T00:47:16.854+01:00", 29, &ns), 0);
    ck_assert_int_eq(ns, 9223372036854000000LL);
    ck_assert_int_eq(rn_time_parse("1677-09-21T00:12:43.146Z", 24, &ns), 0);
    ck_assert_int_eq(ns, -9223372036854000000LL);
    char out[32];
    rn_time_format(INT64_MAX, out);
    ck_assert_str_eq(out, "2262-04-11T23:47:16.854Z");
    rn_time_format(INT64_MIN, out);
    ck_assert_str_eq(out, "1677-09-21T00:12:43.145Z");
    const char *bad[] = { "2262-04-11T23:47:16.855Z", "2262-04-11T23:47:16.855+00:00",
                          "2262-04-11T23:47:16.854-00:01", "2300-01-01T00:00:00Z",
                          "9999-12-31T23:59:59.999Z", "1677-09-21T00:12:43.145Z",
                          "1600-01-01T00:00:00Z", "0000-01-01T00:00:00Z" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(rn_time_parse(bad[i], strlen(bad[i]), &ns) == -1, "%s", bad[i]);
    expect_bad("2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\t1\n"
               "2300-01-01T00:00:00Z\t2300-01-01T00:00:30Z\ta\t1\n",
               "rows.tsv: line 2: the window start is not an ISO 8601 UTC time");
    expect_bad("1600-01-01T00:00:00Z\t2023-11-14T22:13:50Z\ta\t1\n",
               "rows.tsv: line 1: the window start is not an ISO 8601 UTC time");
    expect_bad("2023-11-14T22:13:20Z\t2262-04-12T00:00:00Z\ta\t1\n",
               "rows.tsv: line 1: the window end is not an ISO 8601 UTC time");
    expect_bad("{\"start\":\"2300-01-01T00:00:00Z\",\"end\":\"2300-01-01T00:00:30Z\","
               "\"key\":\"a\",\"value\":1}\n",
               "line 1: \"start\" is not an ISO 8601 UTC time");
    expect_bad("{\"watermark\":\"2300-01-01T00:00:00Z\"}\n",
               "line 1: \"watermark\" is not an ISO 8601 UTC time");
}
END_TEST

/* Rows written in fmt; with wm, the watermark wm[i] (when >= 0) before row
 * i, and wm[n] after the last. */
static rn_buf write_rows(rn_rowfmt fmt, const rn_row *r, size_t n, const int64_t *wm)
{
    FILE *f = tmpfile();
    char err[RN_ERRLEN];
    rn_rowwriter *w = rn_rowwriter_new(fileno(f), fmt);
    for (size_t i = 0; i <= n; i++) {
        if (wm && wm[i] >= 0)
            ck_assert_int_eq(rn_rowwriter_watermark(w, wm[i], err), 0);
        if (i < n)
            ck_assert_int_eq(rn_rowwriter_put(w, &r[i], err), 0);
    }
    ck_assert_int_eq(rn_rowwriter_flush(w, err), 0);
    rn_rowwriter_free(w);
    rn_buf b = { 0 };
    off_t size = lseek(fileno(f), 0, SEEK_END);
    rn_buf_reserve(&b, (size_t)size + 1);
    ck_assert_int_eq(pread(fileno(f), b.p, (size_t)size, 0), size);
    b.len = (size_t)size;
    fclose(f);
    return b;
}

/* Read rows fed in pieces of `piece` bytes, each watermark of wm (as in
 * write_rows) in its place; returns how many rows matched want. */
static size_t read_rows(const rn_buf *b, size_t piece, const rn_row *want, size_t n,
                        const int64_t *wm)
{
    rn_rowreader *r = rn_rowreader_new("test");
    char err[RN_ERRLEN];
    rn_row row;
    int64_t got_wm;
    size_t got = 0, off = 0;
    int wm_due = wm && wm[0] >= 0, k;
    do {
        size_t len = piece && piece < b->len - off ? piece : b->len - off;
        ck_assert_int_eq(rn_rowreader_feed(r, b->p + off, len, err), 0);
        off += len;
        if (off == b->len)
            rn_rowreader_eof(r);
        while ((k = rn_rowreader_next(r, &row, &got_wm, err)) > 0) {
            if (wm_due) {
                ck_assert_int_eq(k, RN_ROWS_WATERMARK);
                ck_assert_int_eq(got_wm, wm[got]);
                wm_due = 0;
                continue;
            }
            ck_assert_int_eq(k, RN_ROWS_ROW);
            ck_assert_uint_lt(got, n);
            const rn_row *w = &want[got++];
            ck_assert_int_eq(row.start, w->start);
            ck_assert_int_eq(row.end, w->end);
            ck_assert_uint_eq(row.key.n, w->key.n);
            ck_assert(memcmp(row.key.p, w->key.p, w->key.n) == 0);
            /* A double's text reads back as the same double (as a decimal
             * when it has a point and no exponent). */
            if (w->value.is_float) {
                ck_assert(rn_value_double(row.value) == w->value.f);
            } else {
                ck_assert_int_eq(row.value.is_float, 0);
                ck_assert_int_eq(row.value.i, w->value.i);
                ck_assert_int_eq(row.value.scale, w->value.scale);
            }
            wm_due = wm && wm[got] >= 0;
        }
        ck_assert_msg(k == 0, "%s", err);
    } while (off < b->len);
    ck_assert_int_eq(wm_due, 0);
    rn_rowreader_free(r);
    return got;
}

/* Watermarks between the sample rows, as write_rows takes them. */
static const int64_t WM[] = { -1, 1700000030000000000LL, -1, 1700000040000000000LL,
                              1700000040500000000LL, -1, 1700003600000000000LL };

/* Rows alone, and rows with watermarks between them, in every format. */
START_TEST(round_trips)
{
    size_t n;
    const rn_row *r = samples(&n);
    rn_rowfmt fmts[] = { RN_ROW_TSV, RN_ROW_JSON, RN_ROW_FRAMES };
    const int64_t *wms[] = { NULL, WM };
    for (size_t f = 0; f < 6; f++) {
        const int64_t *wm = wms[f % 2];
        rn_buf b = write_rows(fmts[f / 2], r, n, wm);
        ck_assert_uint_eq(read_rows(&b, 0, r, n, wm), n);
        ck_assert_uint_eq(read_rows(&b, 1, r, n, wm), n);
        ck_assert_uint_eq(read_rows(&b, 7, r, n, wm), n);
        rn_buf_free(&b);
    }
}
END_TEST

START_TEST(tsv_and_json_shapes)
{
    size_t n;
    const rn_row *r = samples(&n);
    rn_buf b = write_rows(RN_ROW_TSV, r, 2, NULL);
    const char *want = "2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\talpha\t42\n"
                       "2023-11-14T22:13:30Z\t2023-11-14T22:14:00Z\ttab\\there\\nnl\\\\bs\t-7\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert(memcmp(b.p, want, b.len) == 0);
    rn_buf_free(&b);
    b = write_rows(RN_ROW_JSON, r, 1, NULL);
    want = "{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
           "\"key\":\"alpha\",\"value\":42}\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert(memcmp(b.p, want, b.len) == 0);
    rn_buf_free(&b);
}
END_TEST

static void expect_bad(const char *in, const char *msg)
{
    rn_rowreader *r = rn_rowreader_new("rows.tsv");
    char err[RN_ERRLEN] = "";
    rn_row row;
    int64_t wm;
    int k;
    ck_assert_int_eq(rn_rowreader_feed(r, in, strlen(in), err), 0);
    rn_rowreader_eof(r);
    while ((k = rn_rowreader_next(r, &row, &wm, err)) > 0)
        ;
    ck_assert_int_eq(k, RN_ERR);
    ck_assert_msg(strstr(err, msg), "'%s' gave '%s'", in, err);
    rn_rowreader_free(r);
}

START_TEST(malformed)
{
    const char *ok = "2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\t1\n";
    char in[512];
    snprintf(in, sizeof in, "# comment\n\n%s%s", ok, "garbage\n");
    expect_bad(in, "rows.tsv: line 4: expected 4 tab-separated fields");
    snprintf(in, sizeof in, "%s2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\tx\n", ok);
    expect_bad(in, "line 2: the value is not a number");
    expect_bad("2023-11-14T22:13:20Z\tyesterday\ta\t1\n", "line 1: the window end");
    expect_bad("2023-11-14T22:13:50Z\t2023-11-14T22:13:20Z\ta\t1\n", "line 1: the window ends before");
    expect_bad("2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\t1\t2\n", "more than 4");
    expect_bad("2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\\q\t1\n", "bad escape");
    expect_bad("{\"start\":\"2023-11-14T22:13:20Z\",\"key\":\"a\",\"value\":1}\n", "needs");
    expect_bad("{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
               "\"key\":\"a\",\"value\":\"1\"}\n", "\"value\" is not a number");
}
END_TEST

/* The partial mark: json and frames carry it and read it back; tsv has
 * no room for it. */
START_TEST(partial_marks)
{
    size_t n;
    rn_row r = samples(&n)[0];
    r.partial = 1;
    rn_buf b = write_rows(RN_ROW_JSON, &r, 1, NULL);
    const char *want = "{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
                       "\"key\":\"alpha\",\"value\":42,\"partial\":true}\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert(memcmp(b.p, want, b.len) == 0);
    rn_buf_free(&b);
    for (int f = RN_ROW_TSV; f <= RN_ROW_FRAMES; f++) {
        b = write_rows((rn_rowfmt)f, &r, 1, NULL);
        rn_rowreader *rd = rn_rowreader_new("test");
        char err[RN_ERRLEN];
        rn_row row;
        int64_t wm;
        ck_assert_int_eq(rn_rowreader_feed(rd, b.p, b.len, err), 0);
        rn_rowreader_eof(rd);
        ck_assert_int_eq(rn_rowreader_next(rd, &row, &wm, err), RN_ROWS_ROW);
        ck_assert_int_eq(row.partial, f != RN_ROW_TSV);
        ck_assert_int_eq(row.value.i, 42);
        rn_rowreader_free(rd);
        rn_buf_free(&b);
    }
    /* "partial":false is a whole row; anything but true or false is an error. */
    const char *in = "{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
                     "\"key\":\"a\",\"value\":1,\"partial\":false}\n";
    rn_rowreader *rd = rn_rowreader_new("test");
    char err[RN_ERRLEN];
    rn_row row;
    int64_t wm;
    row.partial = 1;
    ck_assert_int_eq(rn_rowreader_feed(rd, in, strlen(in), err), 0);
    rn_rowreader_eof(rd);
    ck_assert_int_eq(rn_rowreader_next(rd, &row, &wm, err), RN_ROWS_ROW);
    ck_assert_int_eq(row.partial, 0);
    rn_rowreader_free(rd);
    expect_bad("{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
               "\"key\":\"a\",\"value\":1,\"partial\":1}\n", "\"partial\" is not true or false");
}
END_TEST

/* ---- watermarks ------------------------------------------------------------ */

START_TEST(watermark_shapes)
{
    size_t n;
    const rn_row *r = samples(&n);
    rn_buf b = write_rows(RN_ROW_TSV, r, 2, WM);
    const char *want = "2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\talpha\t42\n"
                       "# watermark 2023-11-14T22:13:50Z\n"
                       "2023-11-14T22:13:30Z\t2023-11-14T22:14:00Z\ttab\\there\\nnl\\\\bs\t-7\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert(memcmp(b.p, want, b.len) == 0);
    rn_buf_free(&b);

    b = write_rows(RN_ROW_JSON, r, 1, WM);
    want = "{\"start\":\"2023-11-14T22:13:20Z\",\"end\":\"2023-11-14T22:13:50Z\","
           "\"key\":\"alpha\",\"value\":42}\n"
           "{\"watermark\":\"2023-11-14T22:13:50Z\"}\n";
    ck_assert_uint_eq(b.len, strlen(want));
    ck_assert(memcmp(b.p, want, b.len) == 0);
    rn_buf_free(&b);

    /* frames: an event with the watermark header alone, ts = W, and the
     * tsv comment as body. */
    b = write_rows(RN_ROW_FRAMES, r, 1, WM);
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, RN_DEFAULT_MAX_EVENT);
    char err[RN_ERRLEN];
    rn_event ev;
    ck_assert_int_eq(rn_decoder_feed(d, b.p, b.len, err), 0);
    rn_decoder_eof(d);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_ptr_nonnull(rn_event_header(&ev, "key"));
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_int_eq(ev.ts, 1700000030000000000LL);
    ck_assert_ptr_null(rn_event_header(&ev, "key"));
    const rn_str *h = rn_event_header(&ev, "watermark");
    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(h->n, 20);
    ck_assert(memcmp(h->p, "2023-11-14T22:13:50Z", 20) == 0);
    ck_assert_uint_eq(ev.body.n, 32);
    ck_assert(memcmp(ev.body.p, "# watermark 2023-11-14T22:13:50Z", 32) == 0);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    rn_decoder_free(d);
    rn_buf_free(&b);
}
END_TEST

/* Comments that only look like a watermark stay comments; a json record
 * with a bad watermark is an error. */
START_TEST(watermark_lookalikes)
{
    const char *in = "# watermark soon\n# watermark 2023-11-14T22:13:20Z junk\n"
                     "#watermark 2023-11-14T22:13:20Z\n"
                     "2023-11-14T22:13:20Z\t2023-11-14T22:13:50Z\ta\t1\n";
    rn_rowreader *r = rn_rowreader_new("rows.tsv");
    char err[RN_ERRLEN];
    rn_row row;
    int64_t wm;
    ck_assert_int_eq(rn_rowreader_feed(r, in, strlen(in), err), 0);
    rn_rowreader_eof(r);
    ck_assert_int_eq(rn_rowreader_next(r, &row, &wm, err), RN_ROWS_ROW);
    ck_assert_int_eq(rn_rowreader_next(r, &row, &wm, err), 0);
    rn_rowreader_free(r);
    expect_bad("{\"watermark\":\"later\"}\n", "line 1: \"watermark\" is not an ISO 8601");
    expect_bad("{\"watermark\":\"2023-11-14T22:13:20Z\",\"key\":\"a\"}\n",
               "line 1: a watermark record has no other member");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rows");
    TCase *tc = tcase_create("rows");
    tcase_add_test(tc, values);
    tcase_add_test(tc, decimals);
    tcase_add_test(tc, times);
    tcase_add_test(tc, times_out_of_range);
    tcase_add_test(tc, times_every_day);
    tcase_add_test(tc, round_trips);
    tcase_add_test(tc, tsv_and_json_shapes);
    tcase_add_test(tc, malformed);
    tcase_add_test(tc, watermark_shapes);
    tcase_add_test(tc, watermark_lookalikes);
    tcase_add_test(tc, partial_marks);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
