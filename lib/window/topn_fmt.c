/* topn_fmt.c -- the text of a top N: aligned tables for a person, TSV and
 * JSON for programs, RESP commands for `redis-cli --pipe`. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "window/window.h"

int rn_topn_out_parse(const char *s, rn_topn_out *out, char *err)
{
    static const char *names[] = { "table", "tsv", "json", "redis" };
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (rn_topn_out)(RN_TOPN_TABLE + i);
            return 0;
        }
    return rn_seterr(err, "unknown output '%s' (use table, tsv, json or redis)", s);
}

static int put(rn_buf *b, const char *s, size_t n) { return rn_buf_append(b, s, n); }
static int puts_(rn_buf *b, const char *s) { return rn_buf_append(b, s, strlen(s)); }

/* ---- aligned tables ------------------------------------------------------
 *
 * Cells are collected first (their text in one buffer), then written with
 * every column as wide as its widest cell, two spaces apart. Width is what
 * a terminal shows: one column a character, two for East Asian wide and
 * full-width characters (CJK, Hangul, kana, full-width forms, most emoji),
 * none for combining marks. Bytes that are not UTF-8 count one each. */

#define TBL_MAXCOL 5

typedef struct cell {
    size_t off, len, width;
} cell;

typedef struct table {
    size_t ncol;
    const char *align;      /* 'l' or 'r' per column */
    rn_buf text;
    cell *c;
    size_t n, cap;          /* cells */
    size_t width[TBL_MAXCOL];
} table;

/* Columns of code point u (after Unicode's East_Asian_Width W and F, and
 * the common combining ranges; not every corner of wcwidth). */
static size_t cp_width(uint32_t u)
{
    static const uint32_t zero[][2] = {
        { 0x0300, 0x036f }, { 0x0483, 0x0489 }, { 0x0591, 0x05bd }, { 0x0610, 0x061a },
        { 0x064b, 0x065f }, { 0x200b, 0x200f }, { 0x20d0, 0x20ff }, { 0xfe00, 0xfe0f },
        { 0xfe20, 0xfe2f },
    };
    static const uint32_t wide[][2] = {
        { 0x1100, 0x115f }, { 0x231a, 0x231b }, { 0x2329, 0x232a }, { 0x23e9, 0x23ec },
        { 0x25fd, 0x25fe }, { 0x2614, 0x2615 }, { 0x2e80, 0x303e }, { 0x3041, 0x33ff },
        { 0x3400, 0x4dbf }, { 0x4e00, 0x9fff }, { 0xa000, 0xa4cf }, { 0xa960, 0xa97f },
        { 0xac00, 0xd7a3 }, { 0xf900, 0xfaff }, { 0xfe10, 0xfe19 }, { 0xfe30, 0xfe6f },
        { 0xff00, 0xff60 }, { 0xffe0, 0xffe6 }, { 0x1f300, 0x1f64f }, { 0x1f900, 0x1f9ff },
        { 0x20000, 0x2fffd }, { 0x30000, 0x3fffd },
    };
    for (size_t i = 0; i < sizeof zero / sizeof *zero; i++)
        if (u >= zero[i][0] && u <= zero[i][1])
            return 0;
    if (u < 0x1100)
        return 1;
    for (size_t i = 0; i < sizeof wide / sizeof *wide; i++)
        if (u >= wide[i][0] && u <= wide[i][1])
            return 2;
    return 1;
}

/* The character at p[0..n) (n > 0): its length in bytes, and its columns
 * in *w. A byte that does not start whole UTF-8 is one column. */
static size_t char_at(const unsigned char *p, size_t n, size_t *w)
{
    unsigned char c = p[0];
    size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4 : 0;
    uint32_t u = len == 1 ? c : len == 2 ? c & 0x1fu : len == 3 ? c & 0x0fu : c & 0x07u;
    size_t k = 1;
    for (; len > 1 && k < len && k < n && (p[k] & 0xc0) == 0x80; k++)
        u = u << 6 | (p[k] & 0x3fu);
    if (len == 0 || k != len) {
        *w = 1;
        return 1;
    }
    *w = cp_width(u);
    return len;
}

static size_t text_width(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t w = 0, i = 0, cw;
    while (i < n) {
        i += char_at(p + i, n - i, &cw);
        w += cw;
    }
    return w;
}

/* The key column is at most this wide: one huge key would otherwise pad
 * every row to its width (a 16 MiB key, 16 MB rows). A longer key is cut to
 * KEY_COLS - 1 columns and an ellipsis; at most KEY_BYTES of it are kept
 * (zero-width characters take no column but bytes). Tables only: tsv, json
 * and redis keep whole keys. */
#define KEY_COLS 64
#define KEY_BYTES (4 * KEY_COLS)
#define ELLIPSIS "\xe2\x80\xa6"   /* U+2026, one column */

/* s escaped for a person's table: \t \n \r \\ as in tsv, other control
 * bytes as \xHH; cut as above, at a character or an escape, never inside
 * one. -1 when out of memory. */
static int table_key(rn_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t start = b->len, w = 0, cut = b->len, i = 0;
    if (rn_buf_reserve(b, KEY_BYTES + 8) < 0)
        return -1;
    char *o = b->p + b->len;
    for (;;) {
        size_t used = (size_t)(o - b->p) - start;
        if (w <= KEY_COLS - 1 && used <= KEY_BYTES - (sizeof ELLIPSIS - 1))
            cut = (size_t)(o - b->p);   /* an ellipsis would still fit here */
        if (w > KEY_COLS || used > KEY_BYTES) {
            b->len = cut;
            return put(b, ELLIPSIS, sizeof ELLIPSIS - 1);
        }
        if (i == n)
            break;
        unsigned char c = p[i];
        if (c == '\t' || c == '\n' || c == '\r' || c == '\\') {
            *o++ = '\\';
            *o++ = c == '\t' ? 't' : c == '\n' ? 'n' : c == '\r' ? 'r' : '\\';
            w += 2;
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
            w += 4;
            i++;
        } else {
            size_t cw, len = char_at(p + i, n - i, &cw);
            memcpy(o, p + i, len);
            o += len;
            w += cw;
            i += len;
        }
    }
    b->len = (size_t)(o - b->p);
    return 0;
}

/* Close the cell whose text starts at off (written into t->text since). */
static int tbl_end_cell(table *t, size_t off)
{
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        cell *nc = realloc(t->c, cap * sizeof *nc);
        if (!nc)
            return -1;
        t->c = nc;
        t->cap = cap;
    }
    cell *c = &t->c[t->n];
    c->off = off;
    c->len = t->text.len - off;
    c->width = text_width(t->text.p + off, c->len);
    size_t col = t->n % t->ncol;
    if (c->width > t->width[col])
        t->width[col] = c->width;
    t->n++;
    return 0;
}

static int tbl_cell(table *t, const char *s, size_t n)
{
    size_t off = t->text.len;
    if (put(&t->text, s, n) < 0)
        return -1;
    return tbl_end_cell(t, off);
}

static int tbl_key(table *t, rn_str key)
{
    size_t off = t->text.len;
    if (table_key(&t->text, key.p, key.n) < 0)
        return -1;
    return tbl_end_cell(t, off);
}

static int pad(rn_buf *b, size_t n)
{
    if (rn_buf_reserve(b, n) < 0)
        return -1;
    memset(b->p + b->len, ' ', n);
    b->len += n;
    return 0;
}

static int tbl_write(table *t, rn_buf *b)
{
    for (size_t i = 0; i < t->n; i++) {
        size_t col = i % t->ncol;
        cell *c = &t->c[i];
        size_t gap = t->width[col] - c->width;
        int last = col == t->ncol - 1;
        if (col && pad(b, 2) < 0)
            return -1;
        if (t->align[col] == 'r' && pad(b, gap) < 0)
            return -1;
        if (put(b, t->text.p + c->off, c->len) < 0)
            return -1;
        if (t->align[col] == 'l' && !last && pad(b, gap) < 0)
            return -1;
        if (last && put(b, "\n", 1) < 0)
            return -1;
    }
    return 0;
}

static void tbl_free(table *t)
{
    rn_buf_free(&t->text);
    free(t->c);
}

static int tbl_u64(table *t, uint64_t v)
{
    char d[24];
    return tbl_cell(t, d, rn_u64_dec(v, d));
}

/* ---- windows ----------------------------------------------------------- */

static int put_time(rn_buf *b, int64_t ns, rn_tz *tz)
{
    char s[RN_TIMELEN];
    return put(b, s, rn_time_format_tz(ns, tz, s));
}

static int put_value(rn_buf *b, rn_value v)
{
    char s[40];
    return put(b, s, rn_value_format(v, s));
}

static int put_u64(rn_buf *b, uint64_t v)
{
    char d[24];
    return put(b, d, rn_u64_dec(v, d));
}

/* "+2" up, "-1" down, "new", "=" for a rank move. */
static int tbl_move(table *t, int m)
{
    char c[16];
    if (m == RN_TOPN_NEW)
        return tbl_cell(t, "new", 3);
    if (m == 0)
        return tbl_cell(t, "=", 1);
    int n = snprintf(c, sizeof c, "%+d", m);
    return tbl_cell(t, c, (size_t)n);
}

static int fmt_table(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w)
{
    char head[128];
    const int *mv = f->screen ? f->moves : NULL;
    table t = { .ncol = mv ? 4 : 3, .align = mv ? "rlrr" : "rlr" };
    int r = -1;

    /* On a terminal each window replaces the last, as top(1) does: cursor
     * home, clear the screen. */
    if (f->screen && puts_(b, "\033[H\033[2J") < 0)
        return -1;
    if (put_time(b, w->start, f->tz) < 0 || puts_(b, " .. ") < 0
        || put_time(b, w->end, f->tz) < 0)
        return -1;
    snprintf(head, sizeof head, "  top %zu of %zu key%s%s\n", w->n, w->nkeys,
             w->nkeys == 1 ? "" : "s", w->reprint ? ", again" : "");
    if (puts_(b, head) < 0)
        return -1;
    if (tbl_cell(&t, "rank", 4) < 0 || tbl_cell(&t, "key", 3) < 0
        || tbl_cell(&t, "value", 5) < 0 || (mv && tbl_cell(&t, "move", 4) < 0))
        goto err;
    for (size_t i = 0; i < w->n; i++) {
        char v[40];
        if (tbl_u64(&t, i + 1) < 0 || tbl_key(&t, w->top[i].key) < 0
            || tbl_cell(&t, v, rn_value_format(w->top[i].value, v)) < 0
            || (mv && tbl_move(&t, mv[i]) < 0))
            goto err;
    }
    if (tbl_write(&t, b) < 0 || put(b, "\n", 1) < 0)
        goto err;
    r = 0;
err:
    tbl_free(&t);
    return r;
}

/* ---- rank moves ------------------------------------------------------------ */

struct rn_topn_ranks {
    rn_buf keys;            /* the previous window's top keys, back to back */
    size_t *off, *len, n, cap;
};

rn_topn_ranks *rn_topn_ranks_new(void)
{
    return calloc(1, sizeof(rn_topn_ranks));
}

void rn_topn_ranks_free(rn_topn_ranks *r)
{
    if (!r)
        return;
    rn_buf_free(&r->keys);
    free(r->off);
    free(r->len);
    free(r);
}

/* O(n * previous n): tops are short (a person reads them). */
int rn_topn_ranks_moves(rn_topn_ranks *r, const rn_topn_window *w, int *moves)
{
    for (size_t i = 0; i < w->n; i++) {
        moves[i] = RN_TOPN_NEW;
        for (size_t j = 0; j < r->n; j++)
            if (r->len[j] == w->top[i].key.n
                && memcmp(r->keys.p + r->off[j], w->top[i].key.p, r->len[j]) == 0) {
                moves[i] = (int)j - (int)i;
                break;
            }
    }
    if (w->n > r->cap) {
        size_t *o = realloc(r->off, w->n * sizeof *o);
        if (o)
            r->off = o;
        size_t *l = o ? realloc(r->len, w->n * sizeof *l) : NULL;
        if (!l)
            return RN_ENOMEM;
        r->len = l;
        r->cap = w->n;
    }
    r->keys.len = 0;
    r->n = 0;
    for (size_t i = 0; i < w->n; i++) {
        r->off[i] = r->keys.len;
        r->len[i] = w->top[i].key.n;
        if (rn_buf_append(&r->keys, w->top[i].key.p, w->top[i].key.n) < 0)
            return RN_ENOMEM;
        r->n = i + 1;
    }
    return 0;
}

/* START\tEND\tRANK\tKEY\tVALUE per entry; with it (a heavy-hitters report,
 * the items of w's entries), COUNT\tERROR\tyes|no in place of VALUE. */
static int fmt_tsv(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w,
                   const rn_ss_item *it)
{
    char times[2 * RN_TIMELEN];
    size_t n = rn_time_format_tz(w->start, f->tz, times);
    times[n++] = '\t';
    n += rn_time_format_tz(w->end, f->tz, times + n);
    times[n++] = '\t';
    for (size_t i = 0; i < w->n; i++) {
        if (put(b, times, n) < 0 || put_u64(b, i + 1) < 0 || put(b, "\t", 1) < 0
            || rn_tsv_key(b, w->top[i].key.p, w->top[i].key.n) < 0 || put(b, "\t", 1) < 0)
            return -1;
        if (it ? put_u64(b, it[i].count) < 0 || put(b, "\t", 1) < 0
                     || put_u64(b, it[i].error) < 0
                     || puts_(b, it[i].guaranteed ? "\tyes\n" : "\tno\n") < 0
               : put_value(b, w->top[i].value) < 0 || put(b, "\n", 1) < 0)
            return -1;
    }
    return 0;
}

/* {"start":..,"end":..,"top":[{"rank":..,"key":..,"value":..},..]}; with s
 * (a heavy-hitters report, it the items of w's entries) the counts after
 * "end" and each entry's error and guarantee after its value. */
static int fmt_json(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w,
                    const rn_ss *s, const rn_ss_item *it, uint64_t events)
{
    if (puts_(b, "{\"start\":\"") < 0 || put_time(b, w->start, f->tz) < 0
        || puts_(b, "\",\"end\":\"") < 0 || put_time(b, w->end, f->tz) < 0
        || put(b, "\"", 1) < 0)
        return -1;
    if (s && (puts_(b, ",\"events\":") < 0 || put_u64(b, events) < 0
              || puts_(b, ",\"keyed\":") < 0 || put_u64(b, rn_ss_total(s)) < 0
              || puts_(b, ",\"keys\":") < 0 || put_u64(b, rn_ss_size(s)) < 0
              || puts_(b, ",\"capacity\":") < 0
              || (rn_ss_capacity(s) ? put_u64(b, rn_ss_capacity(s)) : puts_(b, "null")) < 0))
        return -1;
    if (puts_(b, ",\"top\":[") < 0)
        return -1;
    for (size_t i = 0; i < w->n; i++) {
        if ((i && put(b, ",", 1) < 0) || puts_(b, "{\"rank\":") < 0
            || put_u64(b, i + 1) < 0 || puts_(b, ",\"key\":") < 0
            || rn_json_put_string(b, w->top[i].key.p, w->top[i].key.n) < 0
            || puts_(b, ",\"value\":") < 0 || put_value(b, w->top[i].value) < 0)
            return -1;
        if (s && (puts_(b, ",\"error\":") < 0 || put_u64(b, it[i].error) < 0
                  || puts_(b, ",\"guaranteed\":") < 0
                  || puts_(b, it[i].guaranteed ? "true" : "false") < 0))
            return -1;
        if (put(b, "}", 1) < 0)
            return -1;
    }
    return puts_(b, "]}\n");
}

int rn_topn_resp(rn_buf *b, size_t argc, const rn_str *argv)
{
    if (put(b, "*", 1) < 0 || put_u64(b, argc) < 0 || put(b, "\r\n", 2) < 0)
        return -1;
    for (size_t i = 0; i < argc; i++) {
        if (put(b, "$", 1) < 0 || put_u64(b, argv[i].n) < 0 || put(b, "\r\n", 2) < 0
            || put(b, argv[i].p, argv[i].n) < 0 || put(b, "\r\n", 2) < 0)
            return -1;
    }
    return 0;
}

/* DEL K; ZADD K score member ...; EXPIRE K ttl; SET PREFIX:latest K. The DEL
 * makes a re-print (late rows) replace the set rather than add to it; redis
 * runs a client's commands in order, so a reader sees the old set or the new
 * one, or for a moment none (MULTI/EXEC would close that gap, at the cost of
 * a reply to skip per window). */
static int fmt_redis(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w)
{
    const char *prefix = f->prefix ? f->prefix : "topk";
    size_t plen = strlen(prefix);
    rn_buf key = { 0 }, latest = { 0 }, scores = { 0 };
    rn_str *argv = NULL;
    int r = -1;

    if (put(&key, prefix, plen) < 0 || put(&key, ":", 1) < 0 || put_time(&key, w->start, f->tz) < 0)
        goto err;
    rn_str k = { key.p, key.len };
    rn_str del[2] = { { "DEL", 3 }, k };
    if (rn_topn_resp(b, 2, del) < 0)
        goto err;
    if (w->n) {
        /* Scores first into one buffer (it may move while growing), then
         * the argument vector pointing into it. */
        size_t *off = malloc((w->n + 1) * sizeof *off);
        argv = malloc((2 + 2 * w->n) * sizeof *argv);
        if (!off || !argv) {
            free(off);
            goto err;
        }
        for (size_t i = 0; i < w->n; i++) {
            off[i] = scores.len;
            if (put_value(&scores, w->top[i].value) < 0) {
                free(off);
                goto err;
            }
        }
        off[w->n] = scores.len;
        argv[0] = (rn_str){ "ZADD", 4 };
        argv[1] = k;
        for (size_t i = 0; i < w->n; i++) {
            argv[2 + 2 * i] = (rn_str){ scores.p + off[i], off[i + 1] - off[i] };
            argv[3 + 2 * i] = w->top[i].key;
        }
        free(off);
        if (rn_topn_resp(b, 2 + 2 * w->n, argv) < 0)
            goto err;
    }
    if (f->ttl > 0) {
        char ttl[24];
        rn_str ex[3] = { { "EXPIRE", 6 }, k, { ttl, rn_u64_dec((uint64_t)f->ttl, ttl) } };
        if (rn_topn_resp(b, 3, ex) < 0)
            goto err;
    }
    if (w->latest) {
        if (put(&latest, prefix, plen) < 0 || put(&latest, ":latest", 7) < 0)
            goto err;
        rn_str set[3] = { { "SET", 3 }, { latest.p, latest.len }, k };
        if (rn_topn_resp(b, 3, set) < 0)
            goto err;
    }
    r = 0;
err:
    free(argv);
    rn_buf_free(&key);
    rn_buf_free(&latest);
    rn_buf_free(&scores);
    return r;
}

int rn_topn_format(rn_buf *b, const rn_topn_fmt *f, const rn_topn_window *w)
{
    switch (f->out) {
    case RN_TOPN_TABLE: return fmt_table(b, f, w);
    case RN_TOPN_TSV: return fmt_tsv(b, f, w, NULL);
    case RN_TOPN_JSON: return fmt_json(b, f, w, NULL, NULL, 0);
    case RN_TOPN_REDIS: return fmt_redis(b, f, w);
    }
    return -1;
}

/* ---- Space-Saving ------------------------------------------------------ */

void rn_ss_window(const rn_ss *s, const rn_ss_item *it, size_t n, int64_t start, int64_t end,
                  rn_topn_entry *e, rn_topn_window *w)
{
    for (size_t i = 0; i < n; i++)
        e[i] = (rn_topn_entry){ it[i].key, { .i = (int64_t)it[i].count } };
    *w = (rn_topn_window){ .start = start, .end = end, .nkeys = rn_ss_size(s), .n = n,
                           .top = e, .latest = 1 };
}

static int ss_table(rn_buf *b, const rn_topn_fmt *f, const rn_ss *s, const rn_ss_item *it,
                    const rn_topn_window *w, uint64_t events)
{
    char head[256], when[RN_TIMELEN], cap[48];
    table t = { .ncol = 5, .align = "rlrrl" };
    int r = -1;

    if (f->tz)
        when[rn_time_format_tz(w->end, f->tz, when)] = 0;
    else
        rn_format_time(w->end, when, sizeof when);
    if (rn_ss_capacity(s))
        snprintf(cap, sizeof cap, "capacity %zu", rn_ss_capacity(s));
    else
        snprintf(cap, sizeof cap, "exact");
    snprintf(head, sizeof head,
             "top %zu at %s: %" PRIu64 " events, %" PRIu64 " keyed, %zu keys counted (%s)\n",
             w->n, when, events, rn_ss_total(s), rn_ss_size(s), cap);
    if (puts_(b, head) < 0)
        return -1;
    if (tbl_cell(&t, "rank", 4) < 0 || tbl_cell(&t, "key", 3) < 0
        || tbl_cell(&t, "count", 5) < 0 || tbl_cell(&t, "error", 5) < 0
        || tbl_cell(&t, "guaranteed", 10) < 0)
        goto err;
    for (size_t i = 0; i < w->n; i++) {
        if (tbl_u64(&t, i + 1) < 0 || tbl_key(&t, it[i].key) < 0
            || tbl_u64(&t, it[i].count) < 0 || tbl_u64(&t, it[i].error) < 0
            || tbl_cell(&t, it[i].guaranteed ? "yes" : "no", it[i].guaranteed ? 3 : 2) < 0)
            goto err;
    }
    if (tbl_write(&t, b) < 0 || put(b, "\n", 1) < 0)
        goto err;
    r = 0;
err:
    tbl_free(&t);
    return r;
}

int rn_ss_format(rn_buf *b, const rn_topn_fmt *f, const rn_ss *s, const rn_ss_item *it,
                 const rn_topn_window *w, uint64_t events)
{
    switch (f->out) {
    case RN_TOPN_TABLE: return ss_table(b, f, s, it, w, events);
    case RN_TOPN_TSV: return fmt_tsv(b, f, w, it);
    case RN_TOPN_JSON: return fmt_json(b, f, w, s, it, events);
    case RN_TOPN_REDIS: return fmt_redis(b, f, w);
    }
    return -1;
}
