/* rows.h -- winagg's output and topk's input: one row per window and key.
 *
 * A row is (window start, window end, key, value). Formats:
 *   tsv     START\tEND\tKEY\tVALUE\n; times in ISO 8601 UTC,
 *           "2026-11-23T07:40:00Z" (".123" only when the milliseconds are
 *           not zero); in KEY a tab, newline, carriage return and backslash are
 *           written \t \n \r \\ .
 *   json    {"start":"...","end":"...","key":"...","value":V}\n (times as in
 *           tsv; keys escaped as in the json event format).
 *   frames  the event frames stream: per row an event with ts = END, headers
 *           start, end, key, value (text as in tsv), body = the tsv row
 *           without its newline.
 * A value is an integer (exact, 64-bit) or a floating point number; it is
 * written as an integer when it is one, else with the fewest digits that
 * read back to the same double.
 *
 * The reader detects the format (frames magic; '{' for json; else tsv),
 * skips blank lines and lines starting with '#', and names the line (or
 * frame offset) of anything malformed. */
#ifndef RN_ROWS_H
#define RN_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "stream.h"
#include "util.h"

typedef struct rn_value {
    int is_float;
    int64_t i;      /* when !is_float */
    double f;       /* when is_float */
} rn_value;

typedef struct rn_row {
    int64_t start, end;     /* ns since the epoch */
    rn_str key;
    rn_value value;
} rn_row;

typedef enum rn_rowfmt { RN_ROW_TSV = 1, RN_ROW_JSON, RN_ROW_FRAMES } rn_rowfmt;

int rn_rowfmt_parse(const char *s, rn_rowfmt *fmt, char *err);  /* tsv|json|frames */

/* Values: the double of v; v formatted (at least 32 bytes of out) returning
 * the length; text parsed (an integer when it is one, exactly). */
double rn_value_double(rn_value v);
size_t rn_value_format(rn_value v, char *out);
int rn_value_parse(const char *s, size_t n, rn_value *v);

/* ISO 8601 UTC as written in rows; parse accepts what format writes
 * (seconds, optional .fff, 'Z'). */
size_t rn_time_format(int64_t ns, char *out);   /* out: at least 32 bytes */
int rn_time_parse(const char *s, size_t n, int64_t *ns);

/* Append key to b escaped as in a tsv row. -1 when out of memory. */
int rn_tsv_key(rn_buf *b, const char *s, size_t n);

/* ---- writing -------------------------------------------------------------- */

typedef struct rn_rowwriter rn_rowwriter;

rn_rowwriter *rn_rowwriter_new(int fd, rn_rowfmt fmt);
void rn_rowwriter_free(rn_rowwriter *w);
int rn_rowwriter_put(rn_rowwriter *w, const rn_row *row, char *err);   /* 0 or -errno */
int rn_rowwriter_flush(rn_rowwriter *w, char *err);

/* ---- reading -------------------------------------------------------------- */

typedef struct rn_rowreader rn_rowreader;

/* name is used in messages ("stdin", a file name). */
rn_rowreader *rn_rowreader_new(const char *name);
void rn_rowreader_free(rn_rowreader *r);
int rn_rowreader_feed(rn_rowreader *r, const void *buf, size_t len, char *err);
void rn_rowreader_eof(rn_rowreader *r);
/* 1: *row is the next row (valid until the next call); 0: needs more input
 * (or the end, after eof); RN_ERR: err says "NAME: line N: what" (or "byte
 * offset N" for frames). */
int rn_rowreader_next(rn_rowreader *r, rn_row *row, char *err);

#endif
