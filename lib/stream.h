/* stream.h -- the three event stream formats: lines, json, frames.
 *
 *   lines   the body and '\n'. No headers, no timestamp (a reader stamps each
 *           line with the time it was decoded).
 *   json    one object a line: {"ts":NS,"headers":{"k":"v",...},"body":"..."}.
 *           Bytes that are not valid UTF-8 are written as \udcXX (XX = the byte,
 *           80..ff; Python's "surrogateescape"), so a body round-trips byte for
 *           byte while valid text stays readable by jq.
 *   frames  binary: an 8-byte stream header (RN_FRAMES_MAGIC, version byte,
 *           three zero bytes), then per event a 4-byte big-endian length and a
 *           msgpack value [ts:int, headers:map str->str, body:bin] of that
 *           length. The stream header may appear again between frames, so
 *           `cat a.frames b.frames` is a valid stream. A length above the
 *           decoder's max_event is an error, never an allocation.
 *
 * Detection (RN_FMT_AUTO) looks at the first bytes: the frames magic means
 * frames; `{` followed (after blanks) by `"ts"` means json; anything else is
 * lines. Every decoding error names the byte offset in the stream. */
#ifndef RN_STREAM_H
#define RN_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "event.h"
#include "util.h"

typedef enum rn_format {
    RN_FMT_AUTO = 0,
    RN_FMT_LINES,
    RN_FMT_JSON,
    RN_FMT_FRAMES,
} rn_format;

#define RN_FRAMES_MAGIC "\x89RNF"
#define RN_FRAMES_VERSION 1
#define RN_FRAMES_HEADER_LEN 8
#define RN_FRAMES_HEADER RN_FRAMES_MAGIC "\x01\0\0\0"   /* version 1 */
#define RN_DEFAULT_MAX_EVENT (16u << 20)

/* Return codes besides 1 (an event), 0 (EOF / need more) */
#define RN_ERR   (-1)   /* the reason is in err */
#define RN_EINTR (-2)   /* a read was interrupted by a signal; call again */

/* "lines", "json", "frames" (not "auto"). */
int rn_format_parse(const char *s, rn_format *fmt, char *err);
const char *rn_format_name(rn_format fmt);

/* ---- decoder: push bytes in, pull events out ---------------------------- */

typedef struct rn_decoder rn_decoder;

/* fmt RN_FMT_AUTO detects from the first bytes. max_event bounds one event's
 * encoded size (a frame, a json line) and a lines body: a longer line is cut
 * to max_event bytes, the rest of it skipped, and counted (rn_decoder_cut).
 * max_event 0 means RN_DEFAULT_MAX_EVENT; above 2^31-1 it is lowered to that.
 * A json line without "ts" is stamped with the time it was fed, like a line;
 * one without "body" is an error. Empty input is no events, in any format. */
rn_decoder *rn_decoder_new(rn_format fmt, size_t max_event);
void rn_decoder_free(rn_decoder *d);

/* Append input. -1 only when out of memory. Events returned before stay valid
 * until the next call to rn_decoder_feed or rn_decoder_next. */
int rn_decoder_feed(rn_decoder *d, const void *buf, size_t len, char *err);

/* No more input will come: a last line without '\n' becomes an event, a
 * partial frame or json line becomes an error ("truncated"). */
void rn_decoder_eof(rn_decoder *d);

/* 1: *ev holds the next event; 0: needs more input (or, after eof, the end);
 * RN_ERR: corrupt input, err says what and at which byte offset. After an
 * error the decoder returns RN_ERR again. */
int rn_decoder_next(rn_decoder *d, rn_event *ev, char *err);

rn_format rn_decoder_format(const rn_decoder *d);   /* AUTO until detected */
uint64_t rn_decoder_offset(const rn_decoder *d);    /* bytes consumed so far */
uint64_t rn_decoder_cut(const rn_decoder *d);       /* over-long lines cut */

/* ---- reader: a decoder over a blocking descriptor ----------------------- */

typedef struct rn_reader rn_reader;

/* name is used in error messages ("access.log", "stdin"). */
rn_reader *rn_reader_new(int fd, const char *name, rn_format fmt, size_t max_event);
void rn_reader_free(rn_reader *r);

/* 1: an event; 0: end of input; RN_ERR: read error or corrupt input, err says
 * "NAME: byte offset N: reason"; RN_EINTR: interrupted, call again. */
int rn_reader_next(rn_reader *r, rn_event *ev, char *err);
rn_decoder *rn_reader_decoder(rn_reader *r);

/* ---- writer: buffered encoder onto a descriptor -------------------------- */

typedef struct rn_writer rn_writer;

rn_writer *rn_writer_new(int fd, rn_format fmt);   /* fmt is not AUTO */
void rn_writer_free(rn_writer *w);                  /* does not flush */

/* 0, or -errno of a failed write (-EPIPE when the reader went away). */
int rn_writer_put(rn_writer *w, const rn_event *ev, char *err);
int rn_writer_flush(rn_writer *w, char *err);

/* p[0..n) is already encoded in the writer's format: lines, each with its
 * '\n', or frames (without the stream header, which the writer puts first).
 * They go out as they are: a producer with whole runs of encoded events
 * skips building events. Not for json. */
int rn_writer_put_raw(rn_writer *w, const char *p, size_t n, char *err);

/* Headers that many events share (a file's name, the host), encoded once
 * for one format. rn_writer_put_with writes them before the event's own:
 * producers of many small events save most of the encoding that way. */
typedef struct rn_hdrset {
    rn_format fmt;
    size_t n;
    rn_buf enc;
} rn_hdrset;

int rn_hdrset_set(rn_hdrset *s, rn_format fmt, const rn_header *h, size_t n);
void rn_hdrset_free(rn_hdrset *s);

/* rn_writer_put, with the shared headers of sh (NULL: none) first. */
int rn_writer_put_with(rn_writer *w, const rn_hdrset *sh, const rn_event *ev, char *err);

/* 0 for lines: a producer may skip building headers nobody will see. */
int rn_writer_wants_headers(const rn_writer *w);

/* Decode one frame's msgpack value, p[0..n) without its length prefix, into
 * ev (which then points into p). NULL, or what is wrong with it. For checking
 * frames in place, as hop batches are. */
const char *rn_frame_parse(const char *p, size_t n, rn_event *ev);

/* Encode one event as fmt into b: a lines or json line with its '\n', or a
 * frame (length prefix and msgpack, without the stream header). -1 on ENOMEM. */
int rn_encode_event(rn_buf *b, rn_format fmt, const rn_event *ev);

#endif
