/* check_kproto.c -- unit tests for lib/kproto: primitives round trip, bounded
 * decoding of truncated and oversized input, request headers from captured
 * bytes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "broker/broker_int.h"

START_TEST(ints_round_trip)
{
    rn_buf b = { 0 };
    rn_kw w;
    rn_kw_init(&w, &b);
    rn_kw_i8(&w, -5);
    rn_kw_i16(&w, -12345);
    rn_kw_i32(&w, 0x12345678);
    rn_kw_i64(&w, -1234567890123LL);
    rn_kw_varint(&w, -300);
    rn_kw_uvarint(&w, UINT64_MAX);
    ck_assert(!w.oom);
    rn_kr r;
    rn_kr_init(&r, b.p, b.len);
    ck_assert_int_eq(rn_kr_i8(&r), -5);
    ck_assert_int_eq(rn_kr_i16(&r), -12345);
    ck_assert_int_eq(rn_kr_i32(&r), 0x12345678);
    ck_assert_int_eq(rn_kr_i64(&r), -1234567890123LL);
    ck_assert_int_eq(rn_kr_varint(&r), -300);
    ck_assert(rn_kr_uvarint(&r) == UINT64_MAX);
    ck_assert(rn_kr_ok(&r));
    ck_assert_uint_eq(rn_kr_left(&r), 0);
    rn_kr_i8(&r);
    ck_assert(!rn_kr_ok(&r));
    rn_buf_free(&b);
}
END_TEST

START_TEST(strings_round_trip)
{
    rn_buf b = { 0 };
    rn_kw w;
    rn_kw_init(&w, &b);
    rn_kw_strz(&w, "topic");
    rn_kw_nstr(&w, NULL, 0);
    rn_kw_bytes(&w, "\0\1\2", 3);
    rn_kw_cstr(&w, "abc", 3);
    rn_kw_cstr(&w, NULL, 0);
    rn_kw_carray(&w, 1);
    rn_kw_i8(&w, 7);
    rn_kw_tags(&w);
    rn_kr r;
    rn_kr_init(&r, b.p, b.len);
    rn_kstr s = rn_kr_str(&r);
    ck_assert(s.n == 5 && !memcmp(s.p, "topic", 5));
    ck_assert(rn_kr_nstr(&r).null);
    s = rn_kr_bytes(&r);
    ck_assert(s.n == 3 && !memcmp(s.p, "\0\1\2", 3));
    s = rn_kr_cstr(&r);
    ck_assert(s.n == 3 && !memcmp(s.p, "abc", 3));
    ck_assert(rn_kr_cstr(&r).null);
    ck_assert_int_eq(rn_kr_carray(&r, 1), 1);
    ck_assert_int_eq(rn_kr_i8(&r), 7);
    rn_kr_skip_tags(&r);
    ck_assert(rn_kr_ok(&r));
    rn_buf_free(&b);
}
END_TEST

START_TEST(bounded)
{
    rn_kr r;
    /* A string claiming more bytes than there are. */
    rn_kr_init(&r, "\x00\x10" "abc", 5);
    rn_kr_str(&r);
    ck_assert(!rn_kr_ok(&r));
    /* A non-nullable string of length -1, and -2 for a nullable one. */
    rn_kr_init(&r, "\xff\xff", 2);
    rn_kr_str(&r);
    ck_assert(!rn_kr_ok(&r));
    rn_kr_init(&r, "\xff\xfe", 2);
    rn_kr_nstr(&r);
    ck_assert(!rn_kr_ok(&r));
    /* An array of 2^31-1 elements in 8 bytes. */
    rn_kr_init(&r, "\x7f\xff\xff\xff\0\0\0\0", 8);
    rn_kr_array(&r, 4, NULL);
    ck_assert(!rn_kr_ok(&r));
    /* A null array where none is allowed. */
    rn_kr_init(&r, "\xff\xff\xff\xff", 4);
    rn_kr_array(&r, 4, NULL);
    ck_assert(!rn_kr_ok(&r));
    /* BYTES of 2 GiB. */
    rn_kr_init(&r, "\x7f\xff\xff\xff", 4);
    rn_kr_bytes(&r);
    ck_assert(!rn_kr_ok(&r));
    /* A varint that never ends, and one of 11 bytes. */
    rn_kr_init(&r, "\x80\x80\x80", 3);
    rn_kr_uvarint(&r);
    ck_assert(!rn_kr_ok(&r));
    rn_kr_init(&r, "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11);
    rn_kr_uvarint(&r);
    ck_assert(!rn_kr_ok(&r));
    /* Tagged fields whose size passes the end. */
    rn_kr_init(&r, "\x01\x00\x05\x00", 4);
    rn_kr_skip_tags(&r);
    ck_assert(!rn_kr_ok(&r));
    /* After an error everything reads as zero. */
    ck_assert_int_eq(rn_kr_i32(&r), 0);
}
END_TEST

START_TEST(headers)
{
    char err[RN_ERRLEN];
    rn_kreq_hdr h;
    rn_kr r;
    /* librdkafka 2.0's ApiVersions v3: header v2, then the compact body. */
    static const unsigned char av3[] = {
        0x00, 0x12, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x07, 'r', 'd', 'k', 'a', 'f',
        'k', 'a', 0x00, 0x0b, 'l', 'i', 'b', 'r', 'd', 'k', 'a', 'f', 'k', 'a', 0x06, '2',
        '.', '0', '.', '2', 0x00,
    };
    rn_kr_init(&r, av3, sizeof av3);
    ck_assert_int_eq(rn_kreq_hdr_parse(&r, &h, err), 0);
    ck_assert_int_eq(h.api_key, RN_KAPI_API_VERSIONS);
    ck_assert_int_eq(h.api_version, 3);
    ck_assert_int_eq(h.correlation_id, 1);
    ck_assert(h.flexible && h.client_id.n == 7);
    rn_kstr name = rn_kr_cstr(&r);
    ck_assert(name.n == 10 && !memcmp(name.p, "librdkafka", 10));
    rn_kr_cstr(&r);
    rn_kr_skip_tags(&r);
    ck_assert(rn_kr_ok(&r) && rn_kr_left(&r) == 0);
    /* Metadata v4, null client id, truncated before the correlation id ends. */
    rn_kr_init(&r, "\x00\x03\x00\x04\x00\x00", 6);
    ck_assert_int_eq(rn_kreq_hdr_parse(&r, &h, err), -1);
}
END_TEST

START_TEST(api_versions_answer)
{
    rn_buf b = { 0 };
    rn_kw w;
    rn_kw_init(&w, &b);
    rn_kapi_versions_body(&w, 0, RN_KERR_UNSUPPORTED_VERSION);
    rn_kr r;
    rn_kr_init(&r, b.p, b.len);
    ck_assert_int_eq(rn_kr_i16(&r), 35);
    int32_t n = rn_kr_array(&r, 6, NULL);
    ck_assert_int_eq(n, (int32_t)rn_kapi_nranges);
    ck_assert_int_eq(rn_kr_i16(&r), RN_KAPI_PRODUCE);
    ck_assert_int_eq(rn_kr_i16(&r), 3);
    ck_assert_int_eq(rn_kr_i16(&r), 7);
    ck_assert(rn_kapi_find(RN_KAPI_FETCH)->max == 11);
    ck_assert(rn_kapi_find(99) == NULL);
    rn_buf_free(&b);
}
END_TEST

static Suite *kproto_suite(void)
{
    Suite *s = suite_create("kproto");
    TCase *tc = tcase_create("primitives");
    tcase_add_test(tc, ints_round_trip);
    tcase_add_test(tc, strings_round_trip);
    tcase_add_test(tc, bounded);
    suite_add_tcase(s, tc);
    tc = tcase_create("requests");
    tcase_add_test(tc, headers);
    tcase_add_test(tc, api_versions_answer);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(kproto_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
