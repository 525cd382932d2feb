/* json.h -- the little JSON runnel needs: string escaping that round-trips any
 * bytes, and a bounded cursor parser for the objects of a json line.
 *
 * Bytes that are not valid UTF-8 are escaped as \udcXX, XX being the byte
 * (80..ff), as Python's "surrogateescape" does; the decoder turns a lone
 * \udc80..\udcff back into that byte. Valid UTF-8 passes through unchanged. */
#ifndef RN_JSON_H
#define RN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* Append the JSON string literal for s[0..n) (with quotes) to b. -1 on ENOMEM. */
int rn_json_put_string(rn_buf *b, const char *s, size_t n);

/* The same, written at o, which has room for RN_JSON_STRING_MAX(n) bytes
 * (\udcXX, six bytes a byte, is the worst case); returns the end. For an
 * encoder that reserves room for a whole object at once. */
#define RN_JSON_STRING_MAX(n) ((n) * 6 + 2)
char *rn_json_write_string(char *o, const char *s, size_t n);

/* Decode the string literal that starts at p[0] == '"' within p[0..end).
 * The decoded bytes are appended to out; *next is set past the closing quote.
 * Returns 0, or -1 with err naming the problem and its offset from p.
 * Raw bytes >= 0x80 are kept as they are, valid UTF-8 or not. The decoded
 * bytes are never more than the literal's, so out, once it has room for the
 * whole text, does not move while a text's strings are decoded into it. */
int rn_json_get_string(const char *p, const char *end, rn_buf *out,
                       const char **next, char *err);

/* ---- a cursor over one JSON text, for reading our json lines ------------
 *
 * Every call skips leading whitespace. Errors read "byte offset N: reason",
 * N being base plus the position in the text, so a caller that sets base to
 * the text's place in its stream reports stream offsets. Only skipping
 * recurses, and it stops at RN_JSON_MAX_DEPTH levels of nesting. */

#define RN_JSON_MAX_DEPTH 64

typedef struct rn_json {
    const char *start, *p, *end;    /* the text and the next byte to read */
    uint64_t base;                  /* stream offset of start */
} rn_json;

void rn_json_init(rn_json *j, const char *p, size_t n, uint64_t base);
void rn_json_skip_ws(rn_json *j);
uint64_t rn_json_offset(const rn_json *j);     /* stream offset of j->p */

/* Enter an object: consume its '{'. */
int rn_json_object(rn_json *j, char *err);

/* The i-th member (from 0) of the object entered last: 1 with the key decoded
 * into key (appended; NULL to drop it) and the cursor before the value; 0
 * when the object's closing '}' was consumed instead; -1 on error. */
int rn_json_member(rn_json *j, size_t i, rn_buf *key, char *err);

/* An integer that fits int64_t; a fraction or exponent is an error. */
int rn_json_get_int64(rn_json *j, int64_t *v, char *err);

/* A string, decoded as rn_json_get_string does, appended to out (NULL to
 * only check it). */
int rn_json_get_str(rn_json *j, rn_buf *out, char *err);

/* Any value, checked but not kept. */
int rn_json_skip_value(rn_json *j, char *err);

#endif
