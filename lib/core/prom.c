/* prom.c -- the Prometheus text exposition format (0.0.4): families, samples,
 * escaping, and the checks that keep a scrape parseable. */
#include "core/core.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

void rn_prom_init(rn_prom *p, rn_buf *out)
{
    memset(p, 0, sizeof *p);
    p->out = out;
}

void rn_prom_free(rn_prom *p) { rn_buf_free(&p->seen); }

static void fail(rn_prom *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(rn_prom *p, int code, const char *fmt, ...)
{
    va_list ap;
    if (p->err)
        return;
    p->err = code;
    va_start(ap, fmt);
    vsnprintf(p->why, sizeof p->why, fmt, ap);
    va_end(ap);
}

static void put(rn_prom *p, const void *s, size_t n)
{
    if (!p->err && rn_buf_append(p->out, s, n) < 0)
        fail(p, RN_ENOMEM, "out of memory");
}

static void puts_(rn_prom *p, const char *s) { put(p, s, strlen(s)); }

static int first_ok(char c, int colon)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

/* [a-zA-Z_:][a-zA-Z0-9_:]* for a metric (colon), [a-zA-Z_][a-zA-Z0-9_]* for
 * a label. */
static int name_ok(const char *s, int colon)
{
    if (!first_ok(s[0], colon))
        return 0;
    for (s++; *s; s++)
        if (!first_ok(*s, colon) && !(*s >= '0' && *s <= '9'))
            return 0;
    return 1;
}

/* HELP text: \ and newline escaped. */
static void put_help(rn_prom *p, const char *s)
{
    for (const char *run = s;; s++) {
        if (*s && *s != '\\' && *s != '\n')
            continue;
        put(p, run, (size_t)(s - run));
        if (!*s)
            return;
        put(p, *s == '\\' ? "\\\\" : "\\n", 2);
        run = s + 1;
    }
}

/* A label value: \, " and newline escaped; what is not UTF-8, U+FFFD. */
static void put_value(rn_prom *p, const char *v, size_t n)
{
    const unsigned char *s = (const unsigned char *)v;
    size_t i = 0, run = 0;

    while (i < n) {
        unsigned c = s[i];
        size_t len = 1;
        const char *rep = NULL;
        if (c == '\\')
            rep = "\\\\";
        else if (c == '"')
            rep = "\\\"";
        else if (c == '\n')
            rep = "\\n";
        else if (c >= 0x80 && !(len = rn_utf8_len(s + i, n - i))) {
            rep = "\xef\xbf\xbd";
            len = 1;
        }
        if (rep) {
            put(p, v + run, i - run);
            puts_(p, rep);
            run = i + len;
        }
        i += len;
    }
    put(p, v + run, n - run);
}

/* Whether full may open a family: 0, or -1 with the writer failed. */
static int family_ok(rn_prom *p, const char *full, size_t len, int type)
{
    if (!name_ok(full, 1))
        fail(p, RN_ERR, "bad metric name '%s'", full);
    else if (type != RN_PROM_COUNTER && type != RN_PROM_GAUGE)
        fail(p, RN_ERR, "%s: unknown metric type %d", full, type);
    else if (type == RN_PROM_COUNTER && (len < 6 || strcmp(full + len - 6, "_total") != 0))
        fail(p, RN_ERR, "counter %s: its name does not end in _total", full);
    for (size_t at = 0; !p->err && at < p->seen.len; at += strlen(p->seen.p + at) + 1)
        if (strcmp(p->seen.p + at, full) == 0)
            fail(p, RN_ERR, "metric %s: its family is written twice", full);
    if (!p->err && rn_buf_append(&p->seen, full, len + 1) < 0)
        fail(p, RN_ENOMEM, "out of memory");
    return p->err ? -1 : 0;
}

void rn_prom_family(rn_prom *p, const char *prefix, const char *name, int type,
                    const char *help)
{
    char full[sizeof p->fam];
    int n = snprintf(full, sizeof full, "%s%s%s", prefix ? prefix : "", prefix ? "_" : "", name);

    if (p->err)
        return;
    if (n < 0 || (size_t)n >= sizeof full) {
        fail(p, RN_ERR, "metric name too long (%d bytes): %.60s...", n, full);
        return;
    }
    if (family_ok(p, full, (size_t)n, type) < 0)
        return;
    memcpy(p->fam, full, (size_t)n + 1);
    puts_(p, "# HELP ");
    puts_(p, full);
    puts_(p, " ");
    put_help(p, help ? help : "");
    puts_(p, "\n# TYPE ");
    puts_(p, full);
    puts_(p, type == RN_PROM_COUNTER ? " counter\n" : " gauge\n");
}

/* The sample's name and labels, up to the space before the value. */
static void sample_head(rn_prom *p, const rn_prom_label *l, size_t n)
{
    if (!p->err && !p->fam[0])
        fail(p, RN_ERR, "a sample before any family");
    for (size_t i = 0; i < n && !p->err; i++) {
        if (!name_ok(l[i].name, 0) || strncmp(l[i].name, "__", 2) == 0)
            fail(p, RN_ERR, "%s: bad label name '%s'", p->fam, l[i].name);
        for (size_t j = 0; j < i && !p->err; j++)
            if (strcmp(l[i].name, l[j].name) == 0)
                fail(p, RN_ERR, "%s: label %s twice", p->fam, l[i].name);
    }
    puts_(p, p->fam);
    for (size_t i = 0; i < n; i++) {
        puts_(p, i ? "," : "{");
        puts_(p, l[i].name);
        puts_(p, "=\"");
        put_value(p, l[i].v, l[i].n);
        puts_(p, "\"");
    }
    puts_(p, n ? "} " : " ");
}

void rn_prom_sample(rn_prom *p, const rn_prom_label *l, size_t n, uint64_t v)
{
    char num[24];
    sample_head(p, l, n);
    put(p, num, rn_u64_dec(v, num));
    put(p, "\n", 1);
}

void rn_prom_sample_i64(rn_prom *p, const rn_prom_label *l, size_t n, int64_t v)
{
    char num[24];
    sample_head(p, l, n);
    put(p, num, (size_t)snprintf(num, sizeof num, "%" PRId64, v));
    put(p, "\n", 1);
}

void rn_prom_one(rn_prom *p, const char *prefix, const char *name, int type,
                 const char *help, uint64_t v)
{
    rn_prom_family(p, prefix, name, type, help);
    rn_prom_sample(p, NULL, 0, v);
}

void rn_prom_counters(rn_prom *p, const char *prefix, const rn_counters *cs,
                      const rn_prom_desc *d, size_t n)
{
    for (size_t i = 0; i < n && !p->err; i++) {
        const uint64_t *v = rn_counter_find(cs, d[i].counter);
        if (!v)
            fail(p, RN_ERR, "no counter '%s' for %s_%s", d[i].counter, prefix ? prefix : "",
                 d[i].name);
        else
            rn_prom_one(p, prefix, d[i].name, d[i].type, d[i].help, *v);
    }
}

int rn_prom_error(const rn_prom *p, char *err)
{
    if (p->err)
        rn_seterr(err, "%s", p->why);
    return p->err;
}
