/* extract.h -- pulling a key, a value or a time out of an event's body.
 *
 * A field extractor finds a piece of a line: the first capture group of a
 * PCRE2 regex (JIT compiled; the whole match when the regex has no group),
 * field N (from 1) split on a delimiter (default: runs of blanks, as awk
 * does), or a member of a JSON body named by a dotted path ("user.id").
 * A time extractor turns a piece into ns since the epoch with a strptime(3)
 * format (%z honoured), or one of the names "epoch" (seconds, fractions
 * allowed), "epoch_ms", "epoch_ns", "iso8601". */
#ifndef RN_EXTRACT_H
#define RN_EXTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

typedef struct rn_fieldx rn_fieldx;

rn_fieldx *rn_fieldx_regex(const char *re, char *err);
rn_fieldx *rn_fieldx_field(unsigned n, const char *delim, char *err);
rn_fieldx *rn_fieldx_json(const char *path, char *err);
void rn_fieldx_free(rn_fieldx *x);

/* 1: *out is the piece of s (or of an internal buffer, valid until the next
 * call); 0: the line has none; -1: a regex matching error (err). */
int rn_fieldx_get(rn_fieldx *x, const char *s, size_t n, rn_str *out, char *err);

/* The nginx/Apache time form, "14/Nov/2023:22:13:20 +0000". */
#define RN_TIME_NGINX "%d/%b/%Y:%H:%M:%S %z"

typedef struct rn_timex rn_timex;

rn_timex *rn_timex_new(const char *format, char *err);
void rn_timex_free(rn_timex *x);

/* 0 with *ns set, -1 when s does not parse. Consecutive equal strings are
 * parsed once (log lines share their second). */
int rn_timex_parse(rn_timex *x, const char *s, size_t n, int64_t *ns);

/* ASCII lower case of s into b (replacing its content). */
int rn_lower(rn_buf *b, const char *s, size_t n);

#endif
