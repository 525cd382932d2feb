/* check_stream.c -- the specification of lib/json.c and lib/stream.c, as tests. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/core.h"

#define FRAMES_HEADER RN_FRAMES_HEADER   /* 8 bytes with its NULs */
#define LIT(s) (s), sizeof(s) - 1

/* ---- helpers ------------------------------------------------------------- */

static char all_bytes[256];

/* Events that every format must carry: headers, an empty body, every byte
 * value, bytes that are not UTF-8, and extreme timestamps. */
static const rn_event *samples(size_t *n)
{
    static rn_event ev[7];
    static const char bad_utf8[] = "ok \xc0\x80 \xed\xa0\x80 \xf4\x90\x80\x80 \xe2\x82 \xff\xfe end";

    for (int i = 0; i < 256; i++)
        all_bytes[i] = (char)i;
    for (size_t i = 0; i < 7; i++)
        rn_event_clear(&ev[i]);
    ev[0].ts = 1763881641123456789LL;
    rn_event_add_header(&ev[0], LIT("file"), LIT("/var/log/app.log"));
    rn_event_add_header(&ev[0], LIT("offset"), LIT("12345"));
    rn_event_add_header(&ev[0], LIT("host"), LIT("web-01"));
    rn_event_add_header(&ev[0], LIT("ts"), LIT("2026-11-23T07:07:21.123Z"));
    ev[0].body = (rn_str){ LIT("GET /index.html 200 \"quoted\" \\ tab\there") };
    ev[1].ts = 0;
    ev[2].ts = -1;
    rn_event_add_header(&ev[2], LIT("k\"\\\n\x01\xff"), LIT("v\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    ev[2].body = (rn_str){ all_bytes, 256 };
    ev[3].ts = INT64_MAX;
    rn_event_add_header(&ev[3], LIT(""), LIT(""));
    ev[3].body = (rn_str){ LIT(bad_utf8) };
    ev[4].ts = INT64_MIN;
    ev[4].body = (rn_str){ LIT("x") };
    ev[5].ts = 300;
    ev[6].ts = -40000;
    *n = 7;
    return ev;
}

static void assert_str(rn_str s, const char *p, size_t n)
{
    ck_assert_uint_eq(s.n, n);
    ck_assert(n == 0 || memcmp(s.p, p, n) == 0);
}

static void assert_same_event(const rn_event *got, const rn_event *want, int with_ts)
{
    if (with_ts)
        ck_assert_int_eq(got->ts, want->ts);
    ck_assert_uint_eq(got->nhdr, want->nhdr);
    for (size_t i = 0; i < want->nhdr; i++) {
        assert_str(got->hdr[i].key, want->hdr[i].key.p, want->hdr[i].key.n);
        assert_str(got->hdr[i].val, want->hdr[i].val.p, want->hdr[i].val.n);
    }
    assert_str(got->body, want->body.p, want->body.n);
}

/* A whole stream of events in fmt, with the frames stream header. */
static rn_buf encode_stream(rn_format fmt, const rn_event *ev, size_t n)
{
    rn_buf b = { 0 };
    if (fmt == RN_FMT_FRAMES)
        ck_assert_int_eq(rn_buf_append(&b, FRAMES_HEADER, RN_FRAMES_HEADER_LEN), 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(rn_encode_event(&b, fmt, &ev[i]), 0);
    return b;
}

/* Feed data in pieces of `piece` bytes (all at once when 0), draining after
 * each, then EOF. Every event is appended to out re-encoded as a frame (ts
 * zeroed for lines, which are stamped with the clock). Returns the last
 * result of rn_decoder_next: 0 or RN_ERR. */
static int decode_all(rn_format fmt, size_t max_event, const void *data, size_t len,
                      size_t piece, rn_buf *out, size_t *nev, char *err)
{
    rn_decoder *d = rn_decoder_new(fmt, max_event);
    const char *p = data;
    size_t off = 0;
    rn_event ev;
    int r;

    ck_assert_ptr_nonnull(d);
    *nev = 0;
    do {
        size_t n = piece && piece < len - off ? piece : len - off;
        ck_assert_int_eq(rn_decoder_feed(d, p + off, n, err), 0);
        off += n;
        if (off == len)
            rn_decoder_eof(d);
        while ((r = rn_decoder_next(d, &ev, err)) == 1) {
            if (rn_decoder_format(d) == RN_FMT_LINES)
                ev.ts = 0;
            ck_assert_int_eq(rn_encode_event(out, RN_FMT_FRAMES, &ev), 0);
            (*nev)++;
        }
    } while (off < len && r != RN_ERR);
    rn_decoder_free(d);
    return r;
}

/* Decode a whole buffer and expect an error with exactly this message. */
static void expect_error(rn_format fmt, size_t max_event, const void *data,
                         size_t len, const char *msg)
{
    char err[RN_ERRLEN] = "";
    rn_buf out = { 0 };
    size_t n;

    ck_assert_int_eq(decode_all(fmt, max_event, data, len, 0, &out, &n, err), RN_ERR);
    ck_assert_str_eq(err, msg);
    /* ... and the same, however the bytes arrive */
    err[0] = 0;
    ck_assert_int_eq(decode_all(fmt, max_event, data, len, 1, &out, &n, err), RN_ERR);
    ck_assert_str_eq(err, msg);
    rn_buf_free(&out);
}

static void put_be32(rn_buf *b, uint32_t v)
{
    unsigned char p[4] = { (unsigned char)(v >> 24), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 8), (unsigned char)v };
    ck_assert_int_eq(rn_buf_append(b, p, 4), 0);
}

/* Append a frame holding whatever msgpack-c packed into sb. */
static void append_frame(rn_buf *b, msgpack_sbuffer *sb)
{
    put_be32(b, (uint32_t)sb->size);
    ck_assert_int_eq(rn_buf_append(b, sb->data, sb->size), 0);
    msgpack_sbuffer_clear(sb);
}

static rn_buf frames_with_one_good_event(void)
{
    size_t n;
    return encode_stream(RN_FMT_FRAMES, samples(&n), 1);
}

/* ---- json strings -------------------------------------------------------- */

static void expect_json(const char *in, size_t n, const char *want)
{
    rn_buf b = { 0 };
    ck_assert_int_eq(rn_json_put_string(&b, in, n), 0);
    ck_assert_int_eq(rn_buf_append(&b, "", 1), 0);
    ck_assert_str_eq(b.p, want);
    rn_buf_free(&b);
}

START_TEST(test_put_escapes)
{
    expect_json(LIT("plain text"), "\"plain text\"");
    expect_json(LIT(""), "\"\"");
    expect_json(LIT("q\"b\\n\nt\tr\rb\bf\f"), "\"q\\\"b\\\\n\\nt\\tr\\rb\\bf\\f\"");
    expect_json(LIT("\x01\x1f\x7f"), "\"\\u0001\\u001f\x7f\"");
    expect_json("a\0b", 3, "\"a\\u0000b\"");
    expect_json(LIT("/"), "\"/\"");
}
END_TEST

START_TEST(test_put_valid_utf8_passes)
{
    static const char *ok[] = {
        "\xc2\x80", "\xc3\xa9", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf",
        "\xee\x80\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf",
    };
    char want[16];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(want, sizeof want, "\"%s\"", ok[i]);
        expect_json(ok[i], strlen(ok[i]), want);
    }
}
END_TEST

START_TEST(test_put_invalid_utf8_escaped)
{
    static const struct { const char *in, *want; } t[] = {
        { "\x80", "\"\\udc80\"" },                                   /* stray continuation */
        { "\xff", "\"\\udcff\"" },
        { "\xc0\x80", "\"\\udcc0\\udc80\"" },                        /* overlong NUL */
        { "\xc1\xbf", "\"\\udcc1\\udcbf\"" },
        { "\xe0\x80\x80", "\"\\udce0\\udc80\\udc80\"" },             /* overlong */
        { "\xf0\x80\x80\x80", "\"\\udcf0\\udc80\\udc80\\udc80\"" },
        { "\xed\xa0\x80", "\"\\udced\\udca0\\udc80\"" },             /* surrogate D800 */
        { "\xed\xbf\xbf", "\"\\udced\\udcbf\\udcbf\"" },             /* surrogate DFFF */
        { "\xf4\x90\x80\x80", "\"\\udcf4\\udc90\\udc80\\udc80\"" },  /* U+110000 */
        { "\xf5\x80\x80\x80", "\"\\udcf5\\udc80\\udc80\\udc80\"" },
        { "\xe2\x82", "\"\\udce2\\udc82\"" },                        /* truncated at end */
        { "\xe2\x82z", "\"\\udce2\\udc82z\"" },                      /* truncated mid-text */
        { "\xf0\x9f\x98", "\"\\udcf0\\udc9f\\udc98\"" },
        { "\xc3", "\"\\udcc3\"" },
        { "a\xc3\xa9\xc3", "\"a\xc3\xa9\\udcc3\"" },
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        expect_json(t[i].in, strlen(t[i].in), t[i].want);
}
END_TEST

/* The encoder goes 16 bytes a step, the last step overlapping, and
 * strings under 16 bytes in one go: what comes out must not depend on where
 * a byte that is not plain falls. One or two such tokens at every place in
 * plain text of every length up to 70, against the text pieced together. */
START_TEST(test_put_any_position)
{
    static const struct { const char *in, *out; } tok[] = {
        { "\"", "\\\"" }, { "\\", "\\\\" }, { "\n", "\\n" }, { "\x01", "\\u0001" },
        { "\x7f", "\x7f" }, { "\x80", "\\udc80" }, { "\xc3\xa9", "\xc3\xa9" },
        { "\xe2\x82\xac", "\xe2\x82\xac" }, { "\xe2\x82", "\\udce2\\udc82" },
        { "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
    };
    size_t ntok = sizeof tok / sizeof tok[0];
    char in[128], want[512];

    for (size_t n = 0; n <= 70; n++) {
        for (size_t t = 0; t < ntok; t++) {
            for (size_t at = 0; at <= n; at++) {
                /* tok[t] at `at`, and tok[t2] (one in three) near the end */
                size_t t2 = (t + at) % ntok, at2 = n - (at % 5 < n ? at % 5 : 0);
                int two = at % 3 == 0 && at2 > at;
                size_t i = 0, w = 0;
                want[w++] = '"';
                for (size_t k = 0; k <= n; k++) {
                    const char *tin = NULL, *tout = NULL;
                    if (k == at) {
                        tin = tok[t].in;
                        tout = tok[t].out;
                    } else if (two && k == at2) {
                        tin = tok[t2].in;
                        tout = tok[t2].out;
                    }
                    if (tin) {
                        memcpy(in + i, tin, strlen(tin));
                        i += strlen(tin);
                        memcpy(want + w, tout, strlen(tout));
                        w += strlen(tout);
                    }
                    if (k < n) {
                        in[i++] = (char)('a' + k % 26);
                        want[w++] = (char)('a' + k % 26);
                    }
                }
                want[w++] = '"';
                want[w] = '\0';
                expect_json(in, i, want);
            }
        }
    }
}
END_TEST

static void roundtrip_string(const char *s, size_t n)
{
    rn_buf lit = { 0 }, out = { 0 };
    const char *next;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_json_put_string(&lit, s, n), 0);
    ck_assert_int_eq(rn_json_get_string(lit.p, lit.p + lit.len, &out, &next, err), 0);
    ck_assert_ptr_eq(next, lit.p + lit.len);
    ck_assert_uint_eq(out.len, n);
    ck_assert(n == 0 || memcmp(out.p, s, n) == 0);
    rn_buf_free(&lit);
    rn_buf_free(&out);
}

START_TEST(test_string_roundtrip_any_bytes)
{
    uint32_t x = 12345;
    char s[64];

    samples(&(size_t){ 0 });
    roundtrip_string(all_bytes, 256);
    roundtrip_string("", 0);
    for (int i = 0; i < 5000; i++) {
        size_t n = (size_t)(i % 64);
        for (size_t k = 0; k < n; k++) {
            x = x * 1103515245 + 12345;
            /* biased toward UTF-8 lead and continuation bytes */
            s[k] = (char)((x >> 16) % 3 ? 0x80 + (x >> 8) % 0x78 : (x >> 20));
        }
        roundtrip_string(s, n);
    }
}
END_TEST

START_TEST(test_get_escapes)
{
    static const char lit[] = "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\u00e9\\u20AC"
                              "\\ud83d\\ude00\\udc80\\udcff\xc3\xa9\xff\" tail";
    static const char want[] = "\"\\/\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
                               "\x80\xff\xc3\xa9\xff";
    rn_buf out = { 0 };
    const char *next;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_json_get_string(lit, lit + sizeof lit - 1, &out, &next, err), 0);
    ck_assert_uint_eq(out.len, sizeof want - 1);
    ck_assert(memcmp(out.p, want, out.len) == 0);
    ck_assert_str_eq(next, " tail");
    rn_buf_free(&out);
}
END_TEST

START_TEST(test_get_errors_name_offset)
{
    static const struct { const char *lit, *msg; } t[] = {
        { "\"ab\\ud800\"", "offset 3: high surrogate without a low surrogate" },
        { "\"\\ud800\\u0041\"", "offset 1: high surrogate without a low surrogate" },
        { "\"\\udbff", "offset 1: high surrogate without a low surrogate" },
        { "\"x\\udc7f\"", "offset 2: lone low surrogate outside \\udc80..\\udcff" },
        { "\"\\udd00\"", "offset 1: lone low surrogate outside \\udc80..\\udcff" },
        { "\"\\udfff\"", "offset 1: lone low surrogate outside \\udc80..\\udcff" },
        { "\"abc\x01\"", "offset 4: control character in a string" },
        { "\"a\nb\"", "offset 2: control character in a string" },
        { "\"abc", "offset 4: unterminated string" },
        { "\"abc\\", "offset 4: bad escape" },
        { "\"\\x41\"", "offset 1: bad escape" },
        { "\"\\u12\"", "offset 1: bad \\u escape" },
        { "\"\\u12g4\"", "offset 1: bad \\u escape" },
        { "abc", "offset 0: expected a string" },
    };
    rn_buf out = { 0 };
    const char *next;
    char err[RN_ERRLEN];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        const char *p = t[i].lit;
        ck_assert_int_eq(rn_json_get_string(p, p + strlen(p), &out, &next, err), -1);
        ck_assert_str_eq(err, t[i].msg);
    }
    rn_buf_free(&out);
}
END_TEST

/* ---- json cursor --------------------------------------------------------- */

static void cursor(rn_json *j, const char *s)
{
    rn_json_init(j, s, strlen(s), 1000);
}

START_TEST(test_cursor_int64)
{
    static const struct { const char *s; int64_t v; } ok[] = {
        { "0", 0 }, { "-0", 0 }, { " 42 ", 42 }, { "-17", -17 },
        { "9223372036854775807", INT64_MAX }, { "-9223372036854775808", INT64_MIN },
    };
    static const struct { const char *s, *msg; } bad[] = {
        { "9223372036854775808", "byte offset 1000: integer out of range" },
        { "-9223372036854775809", "byte offset 1000: integer out of range" },
        { "  1.5", "byte offset 1002: not an integer" },
        { "1e3", "byte offset 1000: not an integer" },
        { "\"1\"", "byte offset 1000: expected an integer" },
        { "-", "byte offset 1000: bad number" },
        { "", "byte offset 1000: expected an integer" },
    };
    rn_json j;
    int64_t v;
    char err[RN_ERRLEN];

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cursor(&j, ok[i].s);
        ck_assert_int_eq(rn_json_get_int64(&j, &v, err), 0);
        ck_assert_int_eq(v, ok[i].v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cursor(&j, bad[i].s);
        ck_assert_int_eq(rn_json_get_int64(&j, &v, err), -1);
        ck_assert_str_eq(err, bad[i].msg);
    }
}
END_TEST

START_TEST(test_cursor_skip_value)
{
    static const char *ok[] = {
        "{\"a\":[1,2.5e-3,-0.5E+7,true,false,null,{\"b\":\"c\\u0041\"}],\"d\":{}}",
        " [ ] ", "\"s\"", "0", "-1.0", "true", "[[[[]]]]", "{ \"k\" : [ 1 , 2 ] }",
    };
    static const struct { const char *s, *msg; } bad[] = {
        { "[1,]", "byte offset 1003: expected a value" },
        { "tru", "byte offset 1000: expected a value" },
        { "{\"a\" 1}", "byte offset 1005: expected ':' after an object key" },
        { "{\"a\":1 \"b\":2}", "byte offset 1007: expected ',' or '}' in an object" },
        { "[1 2]", "byte offset 1003: expected ',' or ']' in an array" },
        { "{1:2}", "byte offset 1001: expected a string" },
        { "01", "byte offset 1000: expected a value" },
        { "1.", "byte offset 1000: bad number" },
        { "1e+", "byte offset 1000: bad number" },
        { "[\"a\x01\"]", "byte offset 1003: control character in a string" },
        { "", "byte offset 1000: expected a value" },
    };
    rn_json j;
    char err[RN_ERRLEN];

    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        cursor(&j, ok[i]);
        ck_assert_int_eq(rn_json_skip_value(&j, err), 0);
        rn_json_skip_ws(&j);
        ck_assert_ptr_eq(j.p, j.end);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cursor(&j, bad[i].s);
        int r = rn_json_skip_value(&j, err);
        /* "01" is the value 0 followed by junk the caller rejects */
        if (strcmp(bad[i].s, "01") == 0) {
            ck_assert_int_eq(r, 0);
            ck_assert_str_eq(j.p, "1");
            continue;
        }
        ck_assert_int_eq(r, -1);
        ck_assert_str_eq(err, bad[i].msg);
    }
}
END_TEST

START_TEST(test_cursor_depth_bound)
{
    char s[2 * (RN_JSON_MAX_DEPTH + 1) + 1];
    rn_json j;
    char err[RN_ERRLEN];

    for (int depth = RN_JSON_MAX_DEPTH; depth <= RN_JSON_MAX_DEPTH + 1; depth++) {
        memset(s, '[', (size_t)depth);
        memset(s + depth, ']', (size_t)depth);
        s[2 * depth] = 0;
        cursor(&j, s);
        if (depth == RN_JSON_MAX_DEPTH) {
            ck_assert_int_eq(rn_json_skip_value(&j, err), 0);
        } else {
            ck_assert_int_eq(rn_json_skip_value(&j, err), -1);
            ck_assert_str_eq(err, "byte offset 1064: nested too deeply");
        }
    }
    /* deep nesting far beyond the bound fails the same way, without recursing */
    char *deep = malloc(1000001);
    memset(deep, '{', 1000000);
    deep[1000000] = 0;
    memset(deep, '[', 500000);
    cursor(&j, deep);
    ck_assert_int_eq(rn_json_skip_value(&j, err), -1);
    free(deep);
}
END_TEST

START_TEST(test_cursor_members)
{
    rn_json j;
    rn_buf key = { 0 }, val = { 0 };
    char err[RN_ERRLEN];
    int64_t v;

    cursor(&j, " { \"x\\n\" : 1 , \"y\" : \"z\" } ");
    ck_assert_int_eq(rn_json_object(&j, err), 0);
    ck_assert_int_eq(rn_json_member(&j, 0, &key, err), 1);
    assert_str((rn_str){ key.p, key.len }, LIT("x\n"));
    ck_assert_int_eq(rn_json_get_int64(&j, &v, err), 0);
    ck_assert_int_eq(v, 1);
    key.len = 0;
    ck_assert_int_eq(rn_json_member(&j, 1, &key, err), 1);
    assert_str((rn_str){ key.p, key.len }, LIT("y"));
    ck_assert_int_eq(rn_json_get_str(&j, &val, err), 0);
    assert_str((rn_str){ val.p, val.len }, LIT("z"));
    ck_assert_int_eq(rn_json_member(&j, 2, &key, err), 0);
    rn_json_skip_ws(&j);
    ck_assert_ptr_eq(j.p, j.end);

    cursor(&j, "{}");
    ck_assert_int_eq(rn_json_object(&j, err), 0);
    ck_assert_int_eq(rn_json_member(&j, 0, &key, err), 0);

    cursor(&j, "[]");
    ck_assert_int_eq(rn_json_object(&j, err), -1);
    ck_assert_str_eq(err, "byte offset 1000: expected an object");
    rn_buf_free(&key);
    rn_buf_free(&val);
}
END_TEST

/* ---- formats and detection ----------------------------------------------- */

START_TEST(test_format_names)
{
    rn_format f;
    char err[RN_ERRLEN];

    ck_assert_int_eq(rn_format_parse("lines", &f, err), 0);
    ck_assert_int_eq(f, RN_FMT_LINES);
    ck_assert_int_eq(rn_format_parse("json", &f, err), 0);
    ck_assert_int_eq(f, RN_FMT_JSON);
    ck_assert_int_eq(rn_format_parse("frames", &f, err), 0);
    ck_assert_int_eq(f, RN_FMT_FRAMES);
    ck_assert_int_eq(rn_format_parse("auto", &f, err), -1);
    ck_assert_str_eq(err, "unknown format 'auto' (use lines, json or frames)");
    ck_assert_str_eq(rn_format_name(RN_FMT_FRAMES), "frames");
    ck_assert_str_eq(rn_format_name(RN_FMT_AUTO), "auto");
}
END_TEST

/* Feed the pieces one by one (next returning 0 in between), then EOF; the
 * detected format and the first event's body. */
static rn_format detect(const char *const *pieces, size_t npieces, int eof,
                        rn_str *first)
{
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 4096);
    rn_event ev;
    char err[RN_ERRLEN];
    int r = 0;

    for (size_t i = 0; i < npieces; i++) {
        ck_assert_int_eq(rn_decoder_format(d), RN_FMT_AUTO);
        ck_assert_int_eq(rn_decoder_feed(d, pieces[i], strlen(pieces[i]), err), 0);
        r = rn_decoder_next(d, &ev, err);
        if (i + 1 < npieces)
            ck_assert_int_eq(r, 0);
    }
    if (eof) {
        rn_decoder_eof(d);
        r = rn_decoder_next(d, &ev, err);
    }
    rn_format f = rn_decoder_format(d);
    if (first) {
        ck_assert_int_eq(r, 1);
        static char copy[256];
        memcpy(copy, ev.body.p, ev.body.n);
        *first = (rn_str){ copy, ev.body.n };
    }
    rn_decoder_free(d);
    return f;
}

START_TEST(test_detect_each_format)
{
    const char *frames[] = { "\x89RNF" "\x01" };
    const char *json[] = { "{\"ts\":1,\"body\":\"x\"}\n" };
    const char *json_blanks[] = { "{ \t \"ts\": 1, \"body\": \"x\"}\n" };
    const char *lines[] = { "hello\n" };
    const char *spark[] = { "{\"Event\":\"SparkListenerTaskStart\",\"Stage ID\":0}\n" };
    const char *json_no_ts_first[] = { "{\"body\":\"x\",\"ts\":1}\n" };
    rn_str first;

    ck_assert_int_eq(detect(frames, 1, 0, NULL), RN_FMT_FRAMES);
    ck_assert_int_eq(detect(json, 1, 0, NULL), RN_FMT_JSON);
    ck_assert_int_eq(detect(json_blanks, 1, 0, NULL), RN_FMT_JSON);
    ck_assert_int_eq(detect(lines, 1, 0, &first), RN_FMT_LINES);
    assert_str(first, LIT("hello"));
    ck_assert_int_eq(detect(spark, 1, 0, &first), RN_FMT_LINES);
    assert_str(first, LIT("{\"Event\":\"SparkListenerTaskStart\",\"Stage ID\":0}"));
    ck_assert_int_eq(detect(json_no_ts_first, 1, 0, NULL), RN_FMT_LINES);
}
END_TEST

START_TEST(test_detect_waits_for_enough_bytes)
{
    const char *frames[] = { "\x89", "R", "N", "F" };
    const char *json[] = { "{", " ", "\"", "t", "s", "\"" };
    const char *not_json[] = { "{", " ", "\"t", "x\"\n" };
    const char *not_frames[] = { "\x89", "RX\n" };
    rn_str first;

    ck_assert_int_eq(detect(frames, 4, 0, NULL), RN_FMT_FRAMES);
    ck_assert_int_eq(detect(json, 6, 0, NULL), RN_FMT_JSON);
    ck_assert_int_eq(detect(not_json, 4, 0, &first), RN_FMT_LINES);
    assert_str(first, LIT("{ \"tx\""));
    ck_assert_int_eq(detect(not_frames, 2, 0, &first), RN_FMT_LINES);
    assert_str(first, LIT("\x89RX"));
}
END_TEST

START_TEST(test_detect_at_eof)
{
    const char *short_magic[] = { "\x89RN" };
    const char *brace[] = { "{" };
    const char *nothing[] = { "" };
    rn_str first;

    /* too short to be anything but a line */
    ck_assert_int_eq(detect(short_magic, 1, 1, &first), RN_FMT_LINES);
    assert_str(first, LIT("\x89RN"));
    ck_assert_int_eq(detect(brace, 1, 1, &first), RN_FMT_LINES);
    assert_str(first, LIT("{"));
    /* empty input decides nothing and is no events */
    ck_assert_int_eq(detect(nothing, 1, 1, NULL), RN_FMT_AUTO);
}
END_TEST

/* ---- round trips --------------------------------------------------------- */

static void roundtrip(rn_format fmt, rn_format decode_as)
{
    size_t n, got = 0;
    const rn_event *want = samples(&n);
    rn_buf b = encode_stream(fmt, want, n);
    rn_decoder *d = rn_decoder_new(decode_as, RN_DEFAULT_MAX_EVENT);
    rn_event ev;
    char err[RN_ERRLEN];
    int r;

    ck_assert_int_eq(rn_decoder_feed(d, b.p, b.len, err), 0);
    rn_decoder_eof(d);
    while ((r = rn_decoder_next(d, &ev, err)) == 1) {
        ck_assert_uint_lt(got, n);
        assert_same_event(&ev, &want[got++], 1);
    }
    ck_assert_msg(r == 0, "%s: %s", rn_format_name(fmt), err);
    ck_assert_uint_eq(got, n);
    ck_assert_int_eq(rn_decoder_format(d), fmt);
    ck_assert_uint_eq(rn_decoder_offset(d), b.len);
    rn_decoder_free(d);
    rn_buf_free(&b);
}

START_TEST(test_roundtrip_frames) { roundtrip(RN_FMT_FRAMES, RN_FMT_AUTO); roundtrip(RN_FMT_FRAMES, RN_FMT_FRAMES); }
END_TEST

START_TEST(test_roundtrip_json) { roundtrip(RN_FMT_JSON, RN_FMT_AUTO); roundtrip(RN_FMT_JSON, RN_FMT_JSON); }
END_TEST

START_TEST(test_roundtrip_lines)
{
    /* lines carry the body only; every byte but '\n' survives */
    char body[255];
    rn_event ev[3];
    rn_buf b = { 0 };
    size_t k = 0, got = 0;

    for (int i = 0; i < 256; i++)
        if (i != '\n')
            body[k++] = (char)i;
    for (int i = 0; i < 3; i++)
        rn_event_clear(&ev[i]);
    ev[0].body = (rn_str){ body, sizeof body };
    ev[2].body = (rn_str){ LIT("last \r") };
    rn_event_add_header(&ev[2], LIT("dropped"), LIT("by lines"));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(rn_encode_event(&b, RN_FMT_LINES, &ev[i]), 0);
    ck_assert_uint_eq(b.len, sizeof body + 1 + 1 + 7);

    rn_decoder *d = rn_decoder_new(RN_FMT_LINES, 4096);
    rn_event out;
    char err[RN_ERRLEN];
    int64_t before = rn_now_ns();
    ck_assert_int_eq(rn_decoder_feed(d, b.p, b.len, err), 0);
    int64_t after = rn_now_ns();
    while (rn_decoder_next(d, &out, err) == 1) {
        ck_assert_uint_eq(out.nhdr, 0);
        ck_assert(out.ts >= before && out.ts <= after);
        assert_str(out.body, ev[got].body.p, ev[got].body.n);
        got++;
    }
    ck_assert_uint_eq(got, 3);
    rn_decoder_free(d);
    rn_buf_free(&b);
}
END_TEST

/* Our frames are what msgpack-c, the reference implementation, reads. */
START_TEST(test_frames_match_msgpack_c)
{
    size_t n;
    const rn_event *ev = samples(&n);

    for (size_t i = 0; i < n; i++) {
        rn_buf b = { 0 };
        msgpack_unpacked u;
        size_t off = 0;

        ck_assert_int_eq(rn_encode_event(&b, RN_FMT_FRAMES, &ev[i]), 0);
        uint32_t len = (uint32_t)(unsigned char)b.p[0] << 24 | (uint32_t)(unsigned char)b.p[1] << 16
                     | (uint32_t)(unsigned char)b.p[2] << 8 | (unsigned char)b.p[3];
        ck_assert_uint_eq(len, b.len - 4);
        msgpack_unpacked_init(&u);
        ck_assert_int_eq(msgpack_unpack_next(&u, b.p + 4, len, &off), MSGPACK_UNPACK_SUCCESS);
        ck_assert_uint_eq(off, len);
        msgpack_object o = u.data;
        ck_assert_int_eq(o.type, MSGPACK_OBJECT_ARRAY);
        ck_assert_uint_eq(o.via.array.size, 3);
        msgpack_object *a = o.via.array.ptr;
        int64_t ts = a[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)a[0].via.u64 : a[0].via.i64;
        ck_assert_int_eq(ts, ev[i].ts);
        ck_assert_int_eq(a[1].type, MSGPACK_OBJECT_MAP);
        ck_assert_uint_eq(a[1].via.map.size, ev[i].nhdr);
        for (size_t h = 0; h < ev[i].nhdr; h++) {
            msgpack_object_kv *kv = &a[1].via.map.ptr[h];
            ck_assert_int_eq(kv->key.type, MSGPACK_OBJECT_STR);
            ck_assert_int_eq(kv->val.type, MSGPACK_OBJECT_STR);
            assert_str((rn_str){ kv->key.via.str.ptr, kv->key.via.str.size },
                       ev[i].hdr[h].key.p, ev[i].hdr[h].key.n);
            assert_str((rn_str){ kv->val.via.str.ptr, kv->val.via.str.size },
                       ev[i].hdr[h].val.p, ev[i].hdr[h].val.n);
        }
        ck_assert_int_eq(a[2].type, MSGPACK_OBJECT_BIN);
        assert_str((rn_str){ a[2].via.bin.ptr, a[2].via.bin.size }, ev[i].body.p, ev[i].body.n);
        msgpack_unpacked_destroy(&u);
        rn_buf_free(&b);
    }
}
END_TEST

/* And what msgpack-c writes, in any of its integer and length forms, we read. */
START_TEST(test_frames_from_msgpack_c)
{
    static const int64_t ts[] = { 0, 127, 128, 255, 256, 65536, 1LL << 32, -1, -33, -129,
                                  -40000, INT64_MIN, INT64_MAX };
    static char big[70000];
    msgpack_sbuffer sb;
    msgpack_packer pk;
    rn_buf b = { 0 };
    char key[20][8];

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    rn_buf_append(&b, FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int64(&pk, ts[i]);
        msgpack_pack_map(&pk, 0);
        msgpack_pack_bin_with_body(&pk, "b", 1);
        append_frame(&b, &sb);
    }
    /* map16 of 20 headers, a str body of 70000 bytes (str32) */
    memset(big, 'x', sizeof big);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_uint8(&pk, 7);
    msgpack_pack_map(&pk, 20);
    for (int h = 0; h < 20; h++) {
        snprintf(key[h], sizeof key[h], "k%d", h);
        msgpack_pack_str_with_body(&pk, key[h], strlen(key[h]));
        msgpack_pack_str_with_body(&pk, big, 300);
    }
    msgpack_pack_str_with_body(&pk, big, sizeof big);
    append_frame(&b, &sb);

    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 1 << 20);
    rn_event ev;
    char err[RN_ERRLEN];
    rn_decoder_feed(d, b.p, b.len, err);
    rn_decoder_eof(d);
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
        ck_assert_int_eq(ev.ts, ts[i]);
        ck_assert_uint_eq(ev.nhdr, 0);
        assert_str(ev.body, LIT("b"));
    }
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_int_eq(ev.ts, 7);
    ck_assert_uint_eq(ev.nhdr, 20);
    assert_str(ev.hdr[19].key, LIT("k19"));
    assert_str(ev.hdr[19].val, big, 300);
    assert_str(ev.body, big, sizeof big);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    rn_decoder_free(d);
    msgpack_sbuffer_destroy(&sb);
    rn_buf_free(&b);
}
END_TEST

/* Byte by byte, in odd pieces, or all at once: the same events. */
START_TEST(test_any_split_same_events)
{
    static const rn_format fmts[] = { RN_FMT_FRAMES, RN_FMT_JSON, RN_FMT_LINES };
    static const size_t pieces[] = { 1, 2, 3, 7, 64, 4096 };
    size_t n;
    const rn_event *ev = samples(&n);

    for (size_t f = 0; f < 3; f++) {
        rn_buf in = encode_stream(fmts[f], ev, n), whole = { 0 };
        size_t nwhole, nsplit;
        char err[RN_ERRLEN];

        ck_assert_int_eq(decode_all(RN_FMT_AUTO, 1 << 20, in.p, in.len, 0, &whole, &nwhole, err), 0);
        ck_assert_uint_ge(nwhole, n);
        for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
            rn_buf split = { 0 };
            ck_assert_int_eq(decode_all(RN_FMT_AUTO, 1 << 20, in.p, in.len, pieces[p],
                                        &split, &nsplit, err), 0);
            ck_assert_uint_eq(nsplit, nwhole);
            ck_assert_uint_eq(split.len, whole.len);
            ck_assert(memcmp(split.p, whole.p, whole.len) == 0);
            rn_buf_free(&split);
        }
        rn_buf_free(&in);
        rn_buf_free(&whole);
    }
}
END_TEST

/* ---- frames -------------------------------------------------------------- */

START_TEST(test_frames_concatenated_streams)
{
    size_t n, got;
    const rn_event *ev = samples(&n);
    rn_buf a = encode_stream(RN_FMT_FRAMES, ev, 2);
    rn_buf b = encode_stream(RN_FMT_FRAMES, ev + 2, 3);
    rn_buf empty = encode_stream(RN_FMT_FRAMES, ev, 0);
    rn_buf cat = { 0 }, out = { 0 };
    char err[RN_ERRLEN];

    /* cat a empty b empty */
    rn_buf_append(&cat, a.p, a.len);
    rn_buf_append(&cat, empty.p, empty.len);
    rn_buf_append(&cat, b.p, b.len);
    rn_buf_append(&cat, empty.p, empty.len);
    ck_assert_int_eq(decode_all(RN_FMT_AUTO, 4096, cat.p, cat.len, 0, &out, &got, err), 0);
    ck_assert_uint_eq(got, 5);
    ck_assert_int_eq(decode_all(RN_FMT_FRAMES, 4096, empty.p, empty.len, 0, &out, &got, err), 0);
    ck_assert_uint_eq(got, 0);
    ck_assert_int_eq(decode_all(RN_FMT_FRAMES, 4096, "", 0, 0, &out, &got, err), 0);
    ck_assert_uint_eq(got, 0);
    rn_buf_free(&a);
    rn_buf_free(&b);
    rn_buf_free(&empty);
    rn_buf_free(&cat);
    rn_buf_free(&out);
}
END_TEST

START_TEST(test_frames_bad_stream_header)
{
    rn_buf b = frames_with_one_good_event();
    size_t first = b.len;

    expect_error(RN_FMT_AUTO, 4096, LIT("\x89RNF" "\x02\0\0\0"),
                 "byte offset 4: unsupported frames version 2");
    expect_error(RN_FMT_AUTO, 4096, LIT("\x89RNF" "\x01\0\x07\0"),
                 "byte offset 6: reserved byte of the stream header is not 0");
    expect_error(RN_FMT_FRAMES, 4096, LIT("hello\n"),
                 "byte offset 0: not a frames stream (no \\x89RNF header)");
    expect_error(RN_FMT_AUTO, 4096, LIT("\x89RNF" "\x01\0"),
                 "byte offset 0: truncated stream header");
    expect_error(RN_FMT_FRAMES, 4096, LIT("\x89R"),
                 "byte offset 0: truncated stream header");

    /* a second header, after a frame, is checked the same way */
    rn_buf_append(&b, LIT("\x89RNF" "\x01\0\0\x01"));
    char msg[RN_ERRLEN];
    snprintf(msg, sizeof msg, "byte offset %zu: reserved byte of the stream header is not 0",
             first + 7);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);
    rn_buf_free(&b);
}
END_TEST

START_TEST(test_frames_bad_length)
{
    rn_buf b = frames_with_one_good_event();
    size_t first = b.len;
    char msg[RN_ERRLEN];

    put_be32(&b, 5000);
    rn_buf_append(&b, LIT("xxxx"));
    snprintf(msg, sizeof msg,
             "byte offset %zu: frame of 5000 bytes exceeds the maximum of 4096", first);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);

    b.len = first;
    put_be32(&b, 0);
    snprintf(msg, sizeof msg, "byte offset %zu: frame of 0 bytes", first);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);

    /* a length starting with the magic's first byte but not the magic */
    b.len = first;
    rn_buf_append(&b, LIT("\x89RNX"));
    snprintf(msg, sizeof msg,
             "byte offset %zu: frame of 2303872600 bytes exceeds the maximum of 4096", first);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);

    /* cut short at EOF: in the length, in the frame */
    b.len = first;
    rn_buf_append(&b, LIT("\0\0"));
    snprintf(msg, sizeof msg, "byte offset %zu: truncated frame length", first);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);
    b.len = first;
    put_be32(&b, 10);
    rn_buf_append(&b, LIT("\x93\x01\x80"));
    snprintf(msg, sizeof msg, "byte offset %zu: truncated frame (3 of 10 bytes)", first);
    expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);
    rn_buf_free(&b);
}
END_TEST

START_TEST(test_frames_bad_msgpack)
{
    static const struct { const char *mp; size_t n; const char *why; } t[] = {
        { LIT("\x93\x01\x80\xc4\x01" "b" "!"), "bytes left after the msgpack value" },
        { LIT("\x93\x01\x80\xc4\x05" "b"), "the msgpack value is cut short" },
        { LIT("\x93\x01\x80"), "the msgpack value is cut short" },
        { LIT("\x93\x01"), "the msgpack value is cut short" },
        { LIT("\xdd\x7f\xff\xff\xff"), "not an array [ts, headers, body]" },
        { LIT("\x92\x01\x80"), "not an array [ts, headers, body]" },
        { LIT("\x83\x01\x80\xc4"), "not an array [ts, headers, body]" },
        { LIT("\x93\xa1" "1" "\x80\xc4\x00"), "ts is not an integer" },
        { LIT("\x93\xcb\0\0\0\0\0\0\0\0\x80\xc4\x00"), "ts is not an integer" },
        { LIT("\x93\xcf\x80\0\0\0\0\0\0\0\x80\xc4\x00"), "ts out of range" },
        { LIT("\x93\x01\x90\xc4\x00"), "headers is not a map" },
        { LIT("\x93\x01\xdf\xff\xff\xff\xff"), "more than 64 headers" },
        { LIT("\x93\x01\x81\x01\xa1" "v" "\xc4\x00"), "a header name is not a string" },
        { LIT("\x93\x01\x81\xa1" "k" "\xc4\x01" "v" "\xc4\x00"), "a header value is not a string" },
        { LIT("\x93\x01\x81\xa1" "k" "\xdb\xff\xff\xff\xff"), "the msgpack value is cut short" },
        { LIT("\x93\x01\x80\xc0"), "body is not bin or str" },
        { LIT("\x93\x01\x80\x93\x01\x80\xc4\x00"), "body is not bin or str" },
    };
    rn_buf b = frames_with_one_good_event();
    size_t first = b.len;
    char msg[RN_ERRLEN];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        b.len = first;
        put_be32(&b, (uint32_t)t[i].n);
        rn_buf_append(&b, t[i].mp, t[i].n);
        snprintf(msg, sizeof msg, "byte offset %zu: bad frame: %s", first, t[i].why);
        expect_error(RN_FMT_AUTO, 4096, b.p, b.len, msg);
    }
    rn_buf_free(&b);
}
END_TEST

START_TEST(test_frames_header_limit)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    rn_buf b = { 0 }, out = { 0 };
    size_t got;
    char err[RN_ERRLEN], key[8], msg[RN_ERRLEN];
    size_t second = 0;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    rn_buf_append(&b, FRAMES_HEADER, RN_FRAMES_HEADER_LEN);
    for (int nhdr = RN_MAX_HEADERS; nhdr <= RN_MAX_HEADERS + 1; nhdr++) {
        second = b.len;
        msgpack_pack_array(&pk, 3);
        msgpack_pack_int(&pk, 1);
        msgpack_pack_map(&pk, (size_t)nhdr);
        for (int h = 0; h < nhdr; h++) {
            snprintf(key, sizeof key, "h%d", h);
            msgpack_pack_str_with_body(&pk, key, strlen(key));
            msgpack_pack_str_with_body(&pk, "v", 1);
        }
        msgpack_pack_bin_with_body(&pk, "b", 1);
        append_frame(&b, &sb);
    }
    ck_assert_int_eq(decode_all(RN_FMT_AUTO, 4096, b.p, b.len, 0, &out, &got, err), RN_ERR);
    ck_assert_uint_eq(got, 1);
    snprintf(msg, sizeof msg, "byte offset %zu: bad frame: more than 64 headers", second);
    ck_assert_str_eq(err, msg);
    msgpack_sbuffer_destroy(&sb);
    rn_buf_free(&b);
    rn_buf_free(&out);
}
END_TEST

START_TEST(test_errors_are_sticky)
{
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 4096);
    rn_event ev;
    char err[RN_ERRLEN], again[RN_ERRLEN];

    rn_decoder_feed(d, LIT("\x89RNF" "\x03\0\0\0"), err);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), RN_ERR);
    ck_assert_int_eq(rn_decoder_feed(d, LIT("more"), again), 0);
    ck_assert_int_eq(rn_decoder_next(d, &ev, again), RN_ERR);
    ck_assert_str_eq(again, err);
    ck_assert_int_eq(rn_decoder_next(d, &ev, NULL), RN_ERR);
    rn_decoder_free(d);
}
END_TEST

/* ---- json lines ---------------------------------------------------------- */

START_TEST(test_json_lines_accepted)
{
    static const char in[] =
        "{\"ts\":5,\"headers\":{\"a\":\"1\",\"b\\u0041\":\"\\udcff\"},\"body\":\"x\"}\n"
        "\n   \r\n"
        "{ \"ts\" : -7 , \"extra\" : [1, {\"deep\": [true, null, 1.5e3]}], "
        "\"body\" : \"y\" , \"more\": \"z\" }\r\n"
        "{\"ts\":1,\"body\":\"\",\"headers\":{}}\n";
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 4096);
    rn_event ev;
    char err[RN_ERRLEN];

    rn_decoder_feed(d, LIT(in), err);
    rn_decoder_eof(d);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_int_eq(ev.ts, 5);
    ck_assert_uint_eq(ev.nhdr, 2);
    assert_str(ev.hdr[1].key, LIT("bA"));
    assert_str(ev.hdr[1].val, LIT("\xff"));
    assert_str(ev.body, LIT("x"));
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert_int_eq(ev.ts, -7);
    ck_assert_uint_eq(ev.nhdr, 0);
    assert_str(ev.body, LIT("y"));
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    assert_str(ev.body, LIT(""));
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    rn_decoder_free(d);
}
END_TEST

START_TEST(test_json_missing_ts_is_feed_time)
{
    rn_decoder *d = rn_decoder_new(RN_FMT_JSON, 4096);
    rn_event ev;
    char err[RN_ERRLEN];
    int64_t before = rn_now_ns();

    rn_decoder_feed(d, LIT("{\"body\":\"x\"}\n"), err);
    int64_t after = rn_now_ns();
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    ck_assert(ev.ts >= before && ev.ts <= after);
    rn_decoder_free(d);
}
END_TEST

START_TEST(test_json_lines_errors)
{
    /* after a good first line of 21 bytes; offsets are of the bad byte */
    static const char good[] = "{\"ts\":1,\"body\":\"ok\"}\n";
    static const struct { const char *line, *msg; } t[] = {
        { "{\"ts\":1}\n", "byte offset 21: no \"body\" in the object" },
        { "{\"ts\":1,\"body\":\"a\\qb\"}\n", "byte offset 38: bad escape" },
        { "{\"ts\":1.5,\"body\":\"\"}\n", "byte offset 27: not an integer" },
        { "{\"ts\":1,\"ts\":2,\"body\":\"\"}\n", "byte offset 34: duplicate key" },
        { "{\"ts\":1,\"body\":\"\"} x\n", "byte offset 40: junk after the object" },
        { "{\"ts\":1,\"body\":\"\",\"headers\":{\"k\":1}}\n", "byte offset 54: expected a string" },
        { "{\"ts\":1,\"body\":\"\",\"headers\":[]}\n", "byte offset 49: expected an object" },
        { "{\"ts\":1,\"body\":\"\"", "byte offset 21: truncated json line (no newline at the end)" },
        { "{\"ts\":1,\"body\":\"\\ud800\"}\n", "byte offset 37: high surrogate without a low surrogate" },
        { "{\"ts\":1,\"body\":\"a\tb\"}\n", "byte offset 38: control character in a string" },
        { "{\"ts\":1,\"x\":[[[[", "byte offset 21: truncated json line (no newline at the end)" },
        { "{\"ts\":1,\"x\":[[[[\n", "byte offset 37: expected a value" },
    };
    char in[256];

    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int n = snprintf(in, sizeof in, "%s%s", good, t[i].line);
        expect_error(RN_FMT_AUTO, 4096, in, (size_t)n, t[i].msg);
    }
}
END_TEST

START_TEST(test_json_line_too_long)
{
    rn_buf b = { 0 };
    char msg[RN_ERRLEN];

    rn_buf_append(&b, LIT("{\"ts\":1,\"body\":\"ok\"}\n{\"ts\":1,\"body\":\""));
    while (b.len < 200)
        rn_buf_append(&b, "x", 1);
    snprintf(msg, sizeof msg, "byte offset 21: json line longer than the maximum of 100 bytes");
    expect_error(RN_FMT_AUTO, 100, b.p, b.len, msg);     /* no newline needed */
    rn_buf_append(&b, LIT("\"}\n"));
    expect_error(RN_FMT_AUTO, 100, b.p, b.len, msg);
    rn_buf_free(&b);
}
END_TEST

START_TEST(test_json_header_limit)
{
    rn_buf b = { 0 };
    char h[32];
    size_t got;
    rn_buf out = { 0 };
    char err[RN_ERRLEN];

    size_t second = 0;
    char msg[RN_ERRLEN];

    for (int nhdr = RN_MAX_HEADERS; nhdr <= RN_MAX_HEADERS + 1; nhdr++) {
        second = b.len;
        rn_buf_append(&b, LIT("{\"ts\":1,\"headers\":{"));
        for (int i = 0; i < nhdr; i++) {
            int n = snprintf(h, sizeof h, "%s\"h%d\":\"v\"", i ? "," : "", i);
            rn_buf_append(&b, h, (size_t)n);
        }
        rn_buf_append(&b, LIT("},\"body\":\"b\"}\n"));
    }
    ck_assert_int_eq(decode_all(RN_FMT_AUTO, 4096, b.p, b.len, 0, &out, &got, err), RN_ERR);
    ck_assert_uint_eq(got, 1);
    /* the offset of the second line's headers object */
    snprintf(msg, sizeof msg, "byte offset %zu: more than 64 headers", second + 18);
    ck_assert_str_eq(err, msg);
    rn_buf_free(&b);
    rn_buf_free(&out);
}
END_TEST

/* ---- lines --------------------------------------------------------------- */

START_TEST(test_lines_split)
{
    static const char in[] = "a\r\n\nlast without newline";
    rn_decoder *d = rn_decoder_new(RN_FMT_LINES, 4096);
    rn_event ev;
    char err[RN_ERRLEN];

    rn_decoder_feed(d, LIT(in), err);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    assert_str(ev.body, LIT("a\r"));
    int64_t ts = ev.ts;
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    assert_str(ev.body, LIT(""));
    ck_assert_int_eq(ev.ts, ts);     /* one clock reading per feed */
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    ck_assert_uint_eq(rn_decoder_offset(d), 4);
    rn_decoder_eof(d);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    assert_str(ev.body, LIT("last without newline"));
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 0);
    ck_assert_uint_eq(rn_decoder_offset(d), sizeof in - 1);
    ck_assert_uint_eq(rn_decoder_cut(d), 0);
    rn_decoder_free(d);
}
END_TEST

START_TEST(test_lines_cut_and_counted)
{
    static const char in[] = "12345678\n123456789abcdef\nshort\n123456789";
    static const size_t pieces[] = { 0, 1, 3 };

    for (size_t p = 0; p < 3; p++) {
        char err[RN_ERRLEN];
        rn_decoder *d = rn_decoder_new(RN_FMT_LINES, 8);
        rn_event ev;
        const char *want[] = { "12345678", "12345678", "short", "12345678" };
        size_t k = 0;

        for (size_t off = 0; off < sizeof in - 1;) {
            size_t n = pieces[p] ? pieces[p] : sizeof in - 1;
            if (n > sizeof in - 1 - off)
                n = sizeof in - 1 - off;
            rn_decoder_feed(d, in + off, n, err);
            off += n;
            while (rn_decoder_next(d, &ev, err) == 1) {
                ck_assert_uint_lt(k, 4);
                assert_str(ev.body, want[k], strlen(want[k]));
                k++;
            }
        }
        rn_decoder_eof(d);
        while (rn_decoder_next(d, &ev, err) == 1) {
            ck_assert_uint_lt(k, 4);
            assert_str(ev.body, want[k], strlen(want[k]));
            k++;
        }
        ck_assert_uint_eq(k, 4);
        ck_assert_uint_eq(rn_decoder_cut(d), 2);
        rn_decoder_free(d);
    }
}
END_TEST

START_TEST(test_lines_memory_stays_bounded)
{
    /* a 100 MB line fed in 64 KiB pieces is cut and passed on at once, not
     * when its newline comes: the decoder never holds more than a piece */
    static char piece[65536];
    rn_decoder *d = rn_decoder_new(RN_FMT_AUTO, 1000);
    rn_event ev;
    char err[RN_ERRLEN];
    size_t events = 0;

    memset(piece, 'x', sizeof piece);
    for (int i = 0; i < 1600; i++) {
        ck_assert_int_eq(rn_decoder_feed(d, piece, sizeof piece, err), 0);
        while (rn_decoder_next(d, &ev, err) == 1) {
            ck_assert_uint_eq(ev.body.n, 1000);
            events++;
        }
    }
    rn_decoder_feed(d, LIT("\nnext\n"), err);
    ck_assert_int_eq(rn_decoder_next(d, &ev, err), 1);
    assert_str(ev.body, LIT("next"));
    ck_assert_uint_eq(events, 1);
    ck_assert_uint_eq(rn_decoder_cut(d), 1);
    ck_assert_uint_eq(rn_decoder_offset(d), 1600ull * sizeof piece + 6);
    rn_decoder_free(d);
}
END_TEST

/* ---- mutation fuzzing ------------------------------------------------------ */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

START_TEST(test_fuzz_mutations)
{
    static const rn_format fmts[] = { RN_FMT_FRAMES, RN_FMT_JSON, RN_FMT_LINES };
    size_t n, errors = 0, events = 0;
    const rn_event *ev = samples(&n);
    rn_buf seed[3], buf = { 0 };

    for (int f = 0; f < 3; f++)
        seed[f] = encode_stream(fmts[f], ev, n);
    for (int iter = 0; iter < 20000; iter++) {
        const rn_buf *s = &seed[iter % 3];
        buf.len = 0;
        rn_buf_append(&buf, s->p, s->len);
        for (int m = 1 + (int)(rnd() % 4); m > 0 && buf.len; m--) {
            size_t at = rnd() % buf.len;
            switch (rnd() % 4) {
            case 0: buf.p[at] ^= (char)(1 << rnd() % 8); break;
            case 1: buf.p[at] = (char)rnd(); break;
            case 2:
                rn_buf_reserve(&buf, 1);
                memmove(buf.p + at + 1, buf.p + at, buf.len - at);
                buf.p[at] = (char)rnd();
                buf.len++;
                break;
            default:
                memmove(buf.p + at, buf.p + at + 1, buf.len - at - 1);
                buf.len--;
            }
        }
        if (rnd() % 8 == 0)
            buf.len = rnd() % (buf.len + 1);    /* truncate */

        rn_format fmt = rnd() % 4 ? RN_FMT_AUTO : fmts[rnd() % 3];
        size_t max_event = rnd() % 2 ? 4096 : 64;
        rn_decoder *d = rn_decoder_new(fmt, max_event);
        rn_event out;
        char err[RN_ERRLEN];
        int r = 0;
        for (size_t off = 0; off <= buf.len && r != RN_ERR;) {
            size_t piece = 1 + rnd() % 64;
            if (off == buf.len) {
                rn_decoder_eof(d);
                off++;
            } else {
                piece = piece < buf.len - off ? piece : buf.len - off;
                ck_assert_int_eq(rn_decoder_feed(d, buf.p + off, piece, err), 0);
                off += piece;
            }
            while ((r = rn_decoder_next(d, &out, err)) == 1) {
                ck_assert_uint_le(out.nhdr, RN_MAX_HEADERS);
                ck_assert_uint_le(out.body.n, max_event);
                events++;
            }
            ck_assert(r == 0 || r == RN_ERR);
        }
        if (r == RN_ERR) {
            ck_assert_msg(strncmp(err, "byte offset ", 12) == 0, "%s", err);
            ck_assert_int_eq(rn_decoder_next(d, &out, NULL), RN_ERR);
            errors++;
        }
        rn_decoder_free(d);
    }
    /* the mutations exercised both outcomes */
    ck_assert_uint_gt(errors, 1000);
    ck_assert_uint_gt(events, 10000);
    for (int f = 0; f < 3; f++)
        rn_buf_free(&seed[f]);
    rn_buf_free(&buf);
}
END_TEST

/* ---- reader and writer --------------------------------------------------- */

START_TEST(test_reader_over_pipe)
{
    int fd[2];
    char err[RN_ERRLEN];
    rn_event ev;
    size_t n;
    const rn_event *want = samples(&n);
    rn_buf b = encode_stream(RN_FMT_FRAMES, want, n);

    ck_assert_int_eq(pipe(fd), 0);
    ck_assert_int_eq(rn_write_all(fd[1], b.p, b.len), 0);  /* well under a pipe's buffer */
    close(fd[1]);
    rn_reader *r = rn_reader_new(fd[0], "stdin", RN_FMT_AUTO, 4096);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(rn_reader_next(r, &ev, err), 1);
        assert_same_event(&ev, &want[i], 1);
    }
    ck_assert_int_eq(rn_reader_next(r, &ev, err), 0);
    ck_assert_int_eq(rn_reader_next(r, &ev, err), 0);
    ck_assert_int_eq(rn_decoder_format(rn_reader_decoder(r)), RN_FMT_FRAMES);
    rn_reader_free(r);
    close(fd[0]);

    /* errors name the input */
    ck_assert_int_eq(pipe(fd), 0);
    ck_assert_int_eq(rn_write_all(fd[1], LIT("\x89RNF" "\x09\0\0\0")), 0);
    close(fd[1]);
    r = rn_reader_new(fd[0], "in.frames", RN_FMT_AUTO, 4096);
    ck_assert_int_eq(rn_reader_next(r, &ev, err), RN_ERR);
    ck_assert_str_eq(err, "in.frames: byte offset 4: unsupported frames version 9");
    rn_reader_free(r);
    close(fd[0]);

    ck_assert_int_eq(pipe(fd), 0);
    r = rn_reader_new(fd[1], "out", RN_FMT_AUTO, 4096);     /* not readable */
    ck_assert_int_eq(rn_reader_next(r, &ev, err), RN_ERR);
    ck_assert_str_eq(err, "out: read: Bad file descriptor");
    rn_reader_free(r);
    close(fd[0]);
    close(fd[1]);
    rn_buf_free(&b);
}
END_TEST

static void on_alarm(int sig) { (void)sig; }

START_TEST(test_reader_eintr)
{
    int fd[2];
    char err[RN_ERRLEN];
    rn_event ev;
    struct sigaction sa = { .sa_handler = on_alarm };   /* no SA_RESTART */
    struct itimerval in_50ms = { .it_value = { .tv_usec = 50000 } };

    ck_assert_int_eq(pipe(fd), 0);
    sigaction(SIGALRM, &sa, NULL);
    rn_reader *r = rn_reader_new(fd[0], "stdin", RN_FMT_LINES, 4096);
    setitimer(ITIMER_REAL, &in_50ms, NULL);
    ck_assert_int_eq(rn_reader_next(r, &ev, err), RN_EINTR);
    rn_write_all(fd[1], LIT("after\n"));
    ck_assert_int_eq(rn_reader_next(r, &ev, err), 1);
    assert_str(ev.body, LIT("after"));
    rn_reader_free(r);
    close(fd[0]);
    close(fd[1]);
}
END_TEST

/* What a writer puts out, read back from a file. */
static rn_buf write_file(rn_format fmt, const rn_event *ev, size_t n)
{
    FILE *f = tmpfile();
    rn_writer *w = rn_writer_new(fileno(f), fmt);
    char err[RN_ERRLEN];
    rn_buf b = { 0 };

    ck_assert_int_eq(rn_writer_wants_headers(w), fmt != RN_FMT_LINES);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(rn_writer_put(w, &ev[i], err), 0);
    ck_assert_int_eq(rn_writer_flush(w, err), 0);
    rn_writer_free(w);
    off_t size = lseek(fileno(f), 0, SEEK_END);
    rn_buf_reserve(&b, (size_t)size + 1);
    ck_assert_int_eq(pread(fileno(f), b.p, (size_t)size, 0), size);
    b.len = (size_t)size;
    fclose(f);
    return b;
}

START_TEST(test_writer_output_is_the_encoding)
{
    static const rn_format fmts[] = { RN_FMT_FRAMES, RN_FMT_JSON, RN_FMT_LINES };
    static char big[300000];
    static rn_event ev[2000];
    size_t n;
    const rn_event *s = samples(&n);

    /* many small events (several buffers' worth) and some bodies bigger
     * than the buffer, written through */
    memset(big, 'b', sizeof big);
    for (size_t i = 0; i < 2000; i++) {
        ev[i] = s[i % 2 ? 0 : 3];
        if (i % 500 == 7)
            ev[i].body = (rn_str){ big, sizeof big - i };
    }
    for (size_t f = 0; f < 3; f++) {
        rn_buf got = write_file(fmts[f], ev, 2000), want = encode_stream(fmts[f], ev, 2000);
        ck_assert_uint_eq(got.len, want.len);
        ck_assert(memcmp(got.p, want.p, got.len) == 0);
        rn_buf_free(&got);
        rn_buf_free(&want);
    }
    /* a frames writer with nothing to write writes nothing, not a header */
    rn_buf none = write_file(RN_FMT_FRAMES, ev, 0);
    ck_assert_uint_eq(none.len, 0);
    rn_buf_free(&none);
}
END_TEST

/* Writing with shared headers gives the same bytes as writing each event
 * with those headers first; put_raw is the lines encoding itself. */
START_TEST(test_writer_shared_headers_and_raw)
{
    static const rn_format fmts[] = { RN_FMT_FRAMES, RN_FMT_JSON };
    rn_event full, own;
    rn_header shared[2] = { { { "file", 4 }, { "/var/log/a b\xff", 14 } },
                            { { "host", 4 }, { "h", 1 } } };
    char err[RN_ERRLEN];

    rn_event_clear(&full);
    full.ts = 1700000000123456789LL;
    full.body = (rn_str){ "GET /?Input=x", 13 };
    full.hdr[0] = shared[0];
    full.hdr[1] = shared[1];
    full.hdr[2] = (rn_header){ { "offset", 6 }, { "42", 2 } };
    full.nhdr = 3;
    own = full;
    own.hdr[0] = full.hdr[2];
    own.nhdr = 1;
    for (size_t f = 0; f < 2; f++) {
        rn_buf want = write_file(fmts[f], &full, 1);
        FILE *fp = tmpfile();
        rn_writer *w = rn_writer_new(fileno(fp), fmts[f]);
        rn_hdrset hs = { 0 };
        ck_assert_int_eq(rn_hdrset_set(&hs, fmts[f], shared, 2), 0);
        ck_assert_int_eq(rn_writer_put_with(w, &hs, &own, err), 0);
        ck_assert_int_eq(rn_writer_flush(w, err), 0);
        off_t size = lseek(fileno(fp), 0, SEEK_END);
        ck_assert_int_eq(size, (off_t)want.len);
        char *got = malloc((size_t)size);
        ck_assert_int_eq(pread(fileno(fp), got, (size_t)size, 0), size);
        ck_assert(memcmp(got, want.p, want.len) == 0);
        /* a set made for another format is refused, not misencoded */
        rn_hdrset other = { 0 };
        ck_assert_int_eq(rn_hdrset_set(&other, fmts[1 - f], shared, 2), 0);
        ck_assert_int_eq(rn_writer_put_with(w, &other, &own, err), RN_ERR);
        rn_hdrset_free(&other);
        free(got);
        rn_hdrset_free(&hs);
        rn_writer_free(w);
        fclose(fp);
        rn_buf_free(&want);
    }

    FILE *fp = tmpfile();
    rn_writer *w = rn_writer_new(fileno(fp), RN_FMT_LINES);
    static char big[200000];
    memset(big, 'x', sizeof big);
    big[sizeof big - 1] = '\n';
    ck_assert_int_eq(rn_writer_put_raw(w, "a\nb\n", 4, err), 0);
    ck_assert_int_eq(rn_writer_put_raw(w, big, sizeof big, err), 0);
    ck_assert_int_eq(rn_writer_put_raw(w, "c\n", 2, err), 0);
    ck_assert_int_eq(rn_writer_flush(w, err), 0);
    ck_assert_int_eq(lseek(fileno(fp), 0, SEEK_END), (off_t)(6 + sizeof big));
    char head[4], tail[2];
    ck_assert_int_eq(pread(fileno(fp), head, 4, 0), 4);
    ck_assert_int_eq(pread(fileno(fp), tail, 2, 4 + (off_t)sizeof big), 2);
    ck_assert(memcmp(head, "a\nb\n", 4) == 0 && memcmp(tail, "c\n", 2) == 0);
    rn_writer_free(w);
    fclose(fp);
}
END_TEST

START_TEST(test_json_output_shape)
{
    rn_event ev;
    rn_buf b = { 0 };

    rn_event_clear(&ev);
    ev.ts = 42;
    rn_event_add_header(&ev, LIT("k"), LIT("v"));
    rn_event_add_header(&ev, LIT("k2"), LIT("v2"));
    ev.body = (rn_str){ LIT("hi \xff") };
    rn_encode_event(&b, RN_FMT_JSON, &ev);
    rn_buf_append(&b, "", 1);
    ck_assert_str_eq(b.p, "{\"ts\":42,\"headers\":{\"k\":\"v\",\"k2\":\"v2\"},\"body\":\"hi \\udcff\"}\n");
    b.len = 0;
    rn_event_clear(&ev);
    ev.ts = INT64_MIN;
    rn_encode_event(&b, RN_FMT_JSON, &ev);
    rn_buf_append(&b, "", 1);
    ck_assert_str_eq(b.p, "{\"ts\":-9223372036854775808,\"headers\":{},\"body\":\"\"}\n");
    rn_buf_free(&b);
}
END_TEST

START_TEST(test_writer_epipe)
{
    int fd[2];
    char err[RN_ERRLEN];
    rn_event ev;
    int r = 0;

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(pipe(fd), 0);
    close(fd[0]);
    rn_writer *w = rn_writer_new(fd[1], RN_FMT_LINES);
    rn_event_clear(&ev);
    ev.body = (rn_str){ LIT("a line nobody reads") };
    for (int i = 0; i < 100000 && r == 0; i++)
        r = rn_writer_put(w, &ev, err);
    if (r == 0)
        r = rn_writer_flush(w, err);
    ck_assert_int_eq(r, RN_EPIPE);
    ck_assert_str_eq(err, "write: Broken pipe");
    rn_writer_free(w);
    close(fd[1]);
}
END_TEST

/* ---- suite --------------------------------------------------------------- */

static Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc;

    tc = tcase_create("json_strings");
    tcase_add_test(tc, test_put_escapes);
    tcase_add_test(tc, test_put_valid_utf8_passes);
    tcase_add_test(tc, test_put_invalid_utf8_escaped);
    tcase_add_test(tc, test_put_any_position);
    tcase_add_test(tc, test_string_roundtrip_any_bytes);
    tcase_add_test(tc, test_get_escapes);
    tcase_add_test(tc, test_get_errors_name_offset);
    suite_add_tcase(s, tc);

    tc = tcase_create("json_cursor");
    tcase_add_test(tc, test_cursor_int64);
    tcase_add_test(tc, test_cursor_skip_value);
    tcase_add_test(tc, test_cursor_depth_bound);
    tcase_add_test(tc, test_cursor_members);
    suite_add_tcase(s, tc);

    tc = tcase_create("detection");
    tcase_add_test(tc, test_format_names);
    tcase_add_test(tc, test_detect_each_format);
    tcase_add_test(tc, test_detect_waits_for_enough_bytes);
    tcase_add_test(tc, test_detect_at_eof);
    suite_add_tcase(s, tc);

    tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip_frames);
    tcase_add_test(tc, test_roundtrip_json);
    tcase_add_test(tc, test_roundtrip_lines);
    tcase_add_test(tc, test_frames_match_msgpack_c);
    tcase_add_test(tc, test_frames_from_msgpack_c);
    tcase_add_test(tc, test_any_split_same_events);
    suite_add_tcase(s, tc);

    tc = tcase_create("frames");
    tcase_add_test(tc, test_frames_concatenated_streams);
    tcase_add_test(tc, test_frames_bad_stream_header);
    tcase_add_test(tc, test_frames_bad_length);
    tcase_add_test(tc, test_frames_bad_msgpack);
    tcase_add_test(tc, test_frames_header_limit);
    tcase_add_test(tc, test_errors_are_sticky);
    suite_add_tcase(s, tc);

    tc = tcase_create("json_lines");
    tcase_add_test(tc, test_json_lines_accepted);
    tcase_add_test(tc, test_json_missing_ts_is_feed_time);
    tcase_add_test(tc, test_json_lines_errors);
    tcase_add_test(tc, test_json_line_too_long);
    tcase_add_test(tc, test_json_header_limit);
    suite_add_tcase(s, tc);

    tc = tcase_create("lines");
    tcase_add_test(tc, test_lines_split);
    tcase_add_test(tc, test_lines_cut_and_counted);
    tcase_add_test(tc, test_lines_memory_stays_bounded);
    suite_add_tcase(s, tc);

    tc = tcase_create("fuzz");
    tcase_set_timeout(tc, 120);     /* 20000 decodes under ASan */
    tcase_add_test(tc, test_fuzz_mutations);
    suite_add_tcase(s, tc);

    tc = tcase_create("io");
    tcase_add_test(tc, test_reader_over_pipe);
    tcase_add_test(tc, test_reader_eintr);
    tcase_add_test(tc, test_writer_output_is_the_encoding);
    tcase_add_test(tc, test_json_output_shape);
    tcase_add_test(tc, test_writer_shared_headers_and_raw);
    tcase_add_test(tc, test_writer_epipe);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stream_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0;
}
