/* genlog.c -- test and demo data for runnel: nginx "combined" access-log lines
 * whose search terms follow a Zipf law, written as fast as possible or at a
 * steady rate, into stdout or a file that it rotates the way logrotate does.
 *
 * It also carries small helpers for the tests and scripts/bench-*, which may
 * not ship C of their own: --vocab (each rank's word and probability, to
 * compute expected counts), --latency-read (reads lines made with --stamp and
 * prints delivery latency percentiles) and --rusage (runs a command and
 * reports its peak RSS when /usr/bin/time is missing).
 *
 * Standalone on purpose: libc and libm only, no librunnel, so that it builds
 * and runs before any of the tools it feeds work.
 *
 * Speed matters (the benchmarks need hundreds of MB): lines are assembled with
 * memcpy and hand-written integer formatting straight into a 1 MiB output
 * buffer, the timestamp is formatted only when the second changes, and the
 * vocabulary, its CDF and a pool of clients are built once at start. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE    /* clock_nanosleep, wait4; configure may have set it */
#endif
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_CONFIG_H
#include "config.h"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "dev"
#endif

#define PROG "genlog"

#define OUTBUF_SIZE   (1u << 20)   /* bytes buffered before a write(2) */
#define MAX_LINE      1024         /* no generated line is longer */
#define SIM_LPS       1000         /* simulated lines per second without -r */
#define KEYED_PERMILLE 900         /* lines with Input=, of 1000 */
#define NCLIENTS      4096         /* distinct client IPs (each with one agent) */
#define MAX_TERMS     10000000u
#define DEFAULT_TERMS 1000u
#define DEFAULT_ZIPF  1.1
#define DEFAULT_SEED  1u
#define DEFAULT_KEEP  5u
#define MAX_KEEP      1000u

/* ---- random numbers: xoshiro256** seeded through splitmix64 -------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

typedef struct { uint64_t s[4]; } rng_t;

static void rng_seed(rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3];
    s[2] ^= t; s[3] = rotl(s[3], 45);
    return out;
}

/* A small uniform integer in [0, n) from 32 random bits (Lemire's multiply;
 * the bias is below 2^-20 for every n used here, which a log does not show). */
static inline uint32_t pick(uint32_t bits, uint32_t n)
{
    return (uint32_t)(((uint64_t)bits * n) >> 32);
}

/* ---- vocabulary: a pronounceable word for every rank --------------------- */

/* A word is 2..4 consonant-vowel syllables and an optional final consonant.
 * 'h' only occurs in the digraphs and the coda comes last, so every string
 * parses one way only: distinct indices give distinct words. Index x falls
 * in the block of words with the fewest syllables that still has room, and
 * is scrambled there by an affine bijection so that consecutive words do not
 * all start with "ba". */
static const char *const onsets[] = {
    "b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
    "ch", "sh", "th",
};
static const char vowels[] = "aeiou";
static const char *const codas[] = { "", "n", "r", "s", "l" };
#define NONSETS (sizeof onsets / sizeof onsets[0])
#define NSYL    (NONSETS * 5)
#define NCODAS  (sizeof codas / sizeof codas[0])

static size_t word_for_index(uint64_t x, char *out)
{
    uint64_t block = NSYL * NSYL * NCODAS;
    unsigned nsyl = 2;
    char *p = out;

    while (x >= block) {        /* 36125, 3070625, 261003125 words */
        x -= block;
        block *= NSYL;
        nsyl++;
    }
    /* 2654435761 is prime and neither 5 nor 17, so coprime to every block
     * size (5^(n+1) * 17^n): the map is a permutation of the block. Products
     * stay below 2^64 because block < 2^32 for the indices we reach. */
    uint32_t y = (uint32_t)((x * 2654435761ULL + 1234567ULL) % block);
    unsigned coda = (unsigned)(y % NCODAS);
    y /= NCODAS;
    for (unsigned i = 0; i < nsyl; i++) {
        unsigned syl = (unsigned)(y % NSYL);
        y /= NSYL;
        const char *on = onsets[syl / 5];
        while (*on)
            *p++ = *on++;
        *p++ = vowels[syl % 5];
    }
    for (const char *c = codas[coda]; *c; c++)
        *p++ = *c;
    *p = '\0';
    return (size_t)(p - out);
}

/* Random syllables spell rude words now and then; demo output should not.
 * A word containing one of these is skipped. */
static const char *const unwanted[] = {
    "shit", "fag", "nig", "rape", "nazi", "tit", "kum", "anal", "anus", "piss",
    "dik", "kok", "fuk", "penis", "vagin", "kike", "paki", "homo", "pedo",
    "semen", "sex", "porn", "slut", "bitch",
};

static inline bool starts_with(const char *s, const char *prefix)
{
    while (*prefix && *s == *prefix)
        s++, prefix++;
    return *prefix == '\0';
}

#define NUNWANTED (sizeof unwanted / sizeof unwanted[0])

/* Called for every word of a vocabulary of up to 10M, so the patterns are
 * bucketed by first letter: each position tries only its own few. */
static bool word_unwanted(const char *w)
{
    static uint8_t bucket[26][NUNWANTED + 1];   /* indices, ended by 0xff */
    static bool ready;

    if (!ready) {
        uint8_t n[26] = { 0 };
        for (size_t i = 0; i < NUNWANTED; i++) {
            unsigned l = (unsigned)(unwanted[i][0] - 'a');
            bucket[l][n[l]++] = (uint8_t)i;
        }
        for (unsigned l = 0; l < 26; l++)
            bucket[l][n[l]] = 0xff;
        ready = true;
    }
    for (const char *p = w; *p; p++)
        for (const uint8_t *b = bucket[*p - 'a']; *b != 0xff; b++)
            if (starts_with(p, unwanted[*b]))
                return true;
    return false;
}

typedef struct {
    uint32_t n;          /* terms */
    char *text;          /* all words, back to back */
    uint32_t *off;       /* word i at text + off[i] ... */
    uint8_t *len;        /* ... of len[i] bytes */
    double *cdf;         /* cdf[i] = P(rank <= i + 1); cdf[n - 1] = 1 */
    double total;        /* sum of k^-s: P(rank k) = k^-s / total */
    double s;
} vocab_t;

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, PROG ": out of memory\n");
        exit(1);
    }
    return p;
}

static void vocab_build(vocab_t *v, uint32_t n, double s)
{
    v->n = n;
    v->text = xmalloc((size_t)n * 16);   /* 4 syllables of 3 + a coda < 16 */
    v->off = xmalloc((size_t)n * sizeof *v->off);
    v->len = xmalloc(n);
    v->cdf = xmalloc((size_t)n * sizeof *v->cdf);

    /* Rank r gets the r-th wanted word of the index sequence, so the word
     * of a rank depends on nothing else: not the seed, -T or -z. Rank 1 is
     * the same word in every run. */
    size_t at = 0;
    uint64_t x = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t len;
        while (len = word_for_index(x++, v->text + at), word_unwanted(v->text + at))
            ;
        v->off[i] = (uint32_t)at;
        v->len[i] = (uint8_t)len;
        at += len;
    }
    /* The weights go into cdf[] first; summed from the smallest up, which
     * loses less precision. */
    double total = 0;
    for (uint32_t i = 0; i < n; i++)
        v->cdf[i] = pow((double)i + 1, -s);
    for (uint32_t i = n; i-- > 0;)
        total += v->cdf[i];
    double acc = 0;
    for (uint32_t i = 0; i < n; i++) {
        acc += v->cdf[i];
        v->cdf[i] = acc / total;
    }
    v->total = total;
    v->s = s;
    v->cdf[n - 1] = 1.0;     /* so that every u in [0, 1) finds a rank */
}

static void vocab_free(vocab_t *v)
{
    free(v->text);
    free(v->off);
    free(v->len);
    free(v->cdf);
}

/* The 0-based rank of the first CDF entry above u: a branch-free binary
 * search, ~log2(n) steps with no mispredicted branches. */
static inline uint32_t vocab_draw(const vocab_t *v, uint64_t bits)
{
    double u = (double)(bits >> 11) * 0x1.0p-53;
    const double *base = v->cdf;
    uint32_t len = v->n;

    while (len > 1) {
        uint32_t half = len / 2;
        base = base[half - 1] <= u ? base + half : base;
        len -= half;
    }
    return (uint32_t)(base - v->cdf);
}

/* ---- the pieces of a line ------------------------------------------------ */

static const char *const agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64)",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/7.88.1",
    "python-requests/2.31.0",
};
#define NAGENTS (sizeof agents / sizeof agents[0])

/* No referer carries "Input=": a line has exactly one key or none. */
static const char *const referers[] = {
    "-", "-", "-", "-", "-", "-",
    "https://www.example.com/", "https://www.example.com/",
    "https://www.google.com/", "https://shop.example.com/cart",
};
#define NREFERERS (sizeof referers / sizeof referers[0])

typedef struct {
    char ip[16];
    uint8_t iplen;
    uint8_t agent;
} client_t;

#define PUT(p, lit) (memcpy((p), (lit), sizeof(lit) - 1), (p) + sizeof(lit) - 1)

static inline char *put_mem(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

static inline char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n)
        *p++ = tmp[--n];
    return p;
}

/* At least 10 digits, zero-padded, so that --seq lines sort as text too. */
static inline char *put_seq(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n < 10)
        tmp[n++] = '0';
    while (n)
        *p++ = tmp[--n];
    return p;
}

static inline uint32_t lo32(uint64_t x) { return (uint32_t)x; }
static inline uint32_t hi32(uint64_t x) { return (uint32_t)(x >> 32); }

/* A fixed pool of clients, each with its own address and user agent, as a
 * real site sees the same visitors again and again. It does not follow
 * --seed, like the vocabulary. */
static void clients_build(client_t *c)
{
    uint64_t h = 0x5eed;
    for (unsigned i = 0; i < NCLIENTS; i++) {
        uint64_t r1 = splitmix64(&h), r2 = splitmix64(&h);
        uint32_t o[4] = {
            1 + pick(lo32(r1), 223),              /* 1..223: unicast */
            pick(hi32(r1), 256),
            pick(lo32(r2), 256),
            1 + pick(hi32(r2), 254),
        };
        char *p = c[i].ip;
        for (int k = 0; k < 4; k++) {
            p = put_u64(p, o[k]);
            if (k < 3)
                *p++ = '.';
        }
        c[i].iplen = (uint8_t)(p - c[i].ip);
        c[i].agent = (uint8_t)pick(lo32(splitmix64(&h)), NAGENTS);
    }
}

/* ---- the generator --------------------------------------------------------- */

typedef struct {
    rng_t rng;
    vocab_t voc;
    client_t clients[NCLIENTS];
    size_t agent_len[NAGENTS];
    size_t referer_len[NREFERERS];
    bool seq, stamp;
    uint64_t seqno;       /* of the next line, from 1 */
    int64_t stamp_ns;     /* CLOCK_REALTIME put into the next line */
    int64_t date_sec;     /* the second that date[] shows */
    char date[29];        /* "[14/Nov/2023:22:13:20 +0000]" */
} gen_t;

static void gen_set_time(gen_t *g, int64_t sec)
{
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    struct tm tm;
    time_t t = (time_t)sec;
    char *p = g->date;

    if (sec == g->date_sec)
        return;
    g->date_sec = sec;
    gmtime_r(&t, &tm);
    *p++ = '[';
    *p++ = (char)('0' + tm.tm_mday / 10); *p++ = (char)('0' + tm.tm_mday % 10);
    *p++ = '/';
    memcpy(p, months + 3 * tm.tm_mon, 3); p += 3;
    *p++ = '/';
    int y = tm.tm_year + 1900;
    *p++ = (char)('0' + y / 1000 % 10); *p++ = (char)('0' + y / 100 % 10);
    *p++ = (char)('0' + y / 10 % 10);   *p++ = (char)('0' + y % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_hour / 10); *p++ = (char)('0' + tm.tm_hour % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_min / 10); *p++ = (char)('0' + tm.tm_min % 10);
    *p++ = ':';
    *p++ = (char)('0' + tm.tm_sec / 10); *p++ = (char)('0' + tm.tm_sec % 10);
    memcpy(p, " +0000]", 7);
}

/* Every field takes its own 32 random bits: sharing bits between fields
 * would correlate them (say, page numbers with statuses). */

/* A search: GET with Input=TERM in one of three URL shapes, mostly 200. */
static char *gen_search(gen_t *g, char *p)
{
    uint32_t rank = vocab_draw(&g->voc, rng_next(&g->rng));
    const char *w = g->voc.text + g->voc.off[rank];
    size_t wlen = g->voc.len[rank];
    uint64_t r1 = rng_next(&g->rng), r2 = rng_next(&g->rng);
    uint32_t shape = pick(lo32(r1), 10);
    uint32_t lettercase = pick(hi32(r1), 100);
    uint32_t status = pick(lo32(r2), 1000);
    uint32_t page = pick(hi32(r2), 10);

    p = PUT(p, "GET /search?");
    if (shape == 9)
        p = PUT(p, "type=all&");
    p = PUT(p, "Input=");
    char *term = p;
    p = put_mem(p, w, wlen);
    /* 5% of searches are typed with capitals: 4% "Word", 1% "WORD", so
     * that a tool's --lower visibly changes the counts. */
    if (lettercase < 5) {
        term[0] = (char)(term[0] - 'a' + 'A');
        if (lettercase == 4)
            for (size_t i = 1; i < wlen; i++)
                term[i] = (char)(term[i] - 'a' + 'A');
    }
    if (shape < 7 || shape == 9) {
        p = PUT(p, "&page=");
        *p++ = (char)('0' + (page < 7 ? 1 : page - 5));   /* 1 mostly, up to 4 */
    }
    p = PUT(p, " HTTP/1.1\" ");
    if (status < 940) {
        p = PUT(p, "200 ");
        p = put_u64(p, 512 + pick(lo32(rng_next(&g->rng)), 24000));
    } else if (status < 970) {
        p = PUT(p, "304 0");
    } else if (status < 985) {
        p = PUT(p, "404 153");
    } else if (status < 995) {
        p = PUT(p, "500 177");
    } else {
        p = PUT(p, "502 157");
    }
    return p;
}

/* Anything but a search: static files, orders, health checks. No Input=. */
static char *gen_other(gen_t *g, char *p)
{
    uint64_t r1 = rng_next(&g->rng), r2 = rng_next(&g->rng);
    uint32_t what = pick(lo32(r1), 100);
    uint32_t hit = pick(hi32(r1), 8);         /* 0: the other status */

    if (what < 30) {
        p = PUT(p, "GET /static/app.js HTTP/1.1\" ");
        p = hit ? PUT(p, "200 48213") : PUT(p, "304 0");
    } else if (what < 45) {
        p = PUT(p, "GET /static/style.css HTTP/1.1\" ");
        p = hit ? PUT(p, "200 9341") : PUT(p, "304 0");
    } else if (what < 55) {
        p = PUT(p, "GET /favicon.ico HTTP/1.1\" ");
        p = hit > 1 ? PUT(p, "200 1150") : PUT(p, "404 153");
    } else if (what < 75) {
        /* For the "orders per product per minute" demo. */
        uint32_t prod = pick(lo32(r2), 100);
        p = PUT(p, "POST /api/order?product=p");
        *p++ = (char)('0' + prod / 10);
        *p++ = (char)('0' + prod % 10);
        p = PUT(p, "&amount=");
        p = put_u64(p, 1 + pick(hi32(r2), 20));
        p = PUT(p, " HTTP/1.1\" 201 ");
        p = put_u64(p, 40 + pick(lo32(rng_next(&g->rng)), 64));
    } else if (what < 90) {
        p = PUT(p, "GET / HTTP/1.1\" 200 ");
        p = put_u64(p, 14000 + pick(lo32(r2), 1024));
    } else {
        p = PUT(p, "GET /healthz HTTP/1.1\" 200 2");
    }
    return p;
}

/* Writes one line, newline included, at p and returns its length. The
 * longest possible line is about 330 bytes (a 20-digit --seq and stamp, the
 * longest URL, referer and agent), well inside MAX_LINE. */
static size_t gen_line(gen_t *g, char *p)
{
    char *start = p;
    uint64_t r1 = rng_next(&g->rng), r2 = rng_next(&g->rng);
    const client_t *c = &g->clients[pick(lo32(r1), NCLIENTS)];
    uint32_t ref = pick(lo32(r2), NREFERERS);

    if (g->seq) {
        p = PUT(p, "SEQ ");
        p = put_seq(p, g->seqno);
        *p++ = ' ';
        if (g->stamp) {
            p = put_u64(p, (uint64_t)g->stamp_ns);
            *p++ = ' ';
        }
    }
    g->seqno++;
    p = put_mem(p, c->ip, c->iplen);
    p = PUT(p, " - - ");
    p = put_mem(p, g->date, 28);
    p = PUT(p, " \"");
    if (pick(hi32(r1), 1000) < KEYED_PERMILLE)
        p = gen_search(g, p);
    else
        p = gen_other(g, p);
    p = PUT(p, " \"");
    p = put_mem(p, referers[ref], g->referer_len[ref]);
    p = PUT(p, "\" \"");
    p = put_mem(p, agents[c->agent], g->agent_len[c->agent]);
    p = PUT(p, "\"\n");
    return (size_t)(p - start);
}

/* ---- output: a buffer, a file, rotation ----------------------------------- */

enum rotate_mode { ROT_RENAME, ROT_COPYTRUNCATE, ROT_RECREATE };

typedef struct {
    int fd;
    const char *path;     /* NULL: stdout */
    char *buf;
    size_t len;
    enum rotate_mode mode;
    unsigned keep;
    unsigned highest;     /* the highest FILE.i that exists (0: none) */
} out_t;

static void die_errno(const char *what, const char *path)
{
    if (path)
        fprintf(stderr, PROG ": %s %s: %s\n", what, path, strerror(errno));
    else
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(errno));
    exit(1);
}

static void out_flush(out_t *o)
{
    const char *p = o->buf;
    size_t left = o->len;

    while (left > 0) {
        ssize_t n = write(o->fd, p, left);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            /* The reader went away (genlog | head): that is how a pipeline
             * says "enough", so stop quietly and successfully. Exit 0 rather
             * than 141 keeps `set -o pipefail` scripts and tests simple. */
            if (errno == EPIPE)
                exit(0);
            die_errno("write", o->path ? o->path : "stdout");
        }
        p += n;
        left -= (size_t)n;
    }
    o->len = 0;
}

static int open_append(const char *path, bool trunc)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0),
                  0644);
    if (fd < 0)
        die_errno("open", path);
    return fd;
}

static char *numbered(const char *path, unsigned i)
{
    size_t n = strlen(path) + 16;
    char *s = xmalloc(n);
    snprintf(s, n, "%s.%u", path, i);
    return s;
}

/* Where the copies end, looked up once; after that out_rotate keeps count.
 * It spares each rotation K - 1 renames of files that are not there, which
 * adds up with --keep 1000 and a rotation every 100 lines. */
static void find_rotated(out_t *o)
{
    o->highest = 0;
    for (unsigned i = 1; i <= o->keep; i++) {
        char *name = numbered(o->path, i);
        if (access(name, F_OK) == 0)
            o->highest = i;
        free(name);
    }
}

/* FILE.(K-1) -> FILE.K, ..., FILE.1 -> FILE.2 (from the highest that exists
 * down); the rename onto FILE.K drops the oldest. Gaps (a missing FILE.i)
 * are fine, as with logrotate. */
static void shift_rotated(out_t *o)
{
    unsigned top = o->highest < o->keep ? o->highest : o->keep - 1;

    for (unsigned i = top; i >= 1; i--) {
        char *from = numbered(o->path, i), *to = numbered(o->path, i + 1);
        if (rename(from, to) < 0 && errno != ENOENT)
            die_errno("rename", from);
        free(from);
        free(to);
    }
    o->highest = top + 1;    /* FILE.1 is about to be made */
}

static void copy_file(const char *from, const char *to)
{
    static char buf[1 << 16];
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        die_errno("open", from);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0)
        die_errno("open", to);
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("read", from);
        }
        if (n == 0)
            break;
        for (ssize_t done = 0; done < n;) {
            ssize_t w = write(out, buf + done, (size_t)(n - done));
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                die_errno("write", to);
            }
            done += w;
        }
    }
    if (close(out) < 0)
        die_errno("close", to);
    close(in);
}

/* Always called between lines with the buffer flushed, so that no line is
 * ever split across two files. */
static void out_rotate(out_t *o)
{
    char *first = numbered(o->path, 1);

    out_flush(o);
    switch (o->mode) {
    case ROT_RENAME:              /* logrotate's default "create" */
        shift_rotated(o);
        if (rename(o->path, first) < 0)
            die_errno("rename", o->path);
        close(o->fd);
        o->fd = open_append(o->path, false);
        break;
    case ROT_COPYTRUNCATE:
        /* logrotate loses what the writer appends between its copy and its
         * truncate; here the writer is the rotator, so nothing is lost. The
         * descriptor stays open and O_APPEND puts the next line at 0. */
        shift_rotated(o);
        copy_file(o->path, first);
        if (ftruncate(o->fd, 0) < 0)
            die_errno("truncate", o->path);
        break;
    case ROT_RECREATE:            /* the old lines are gone, on purpose */
        if (unlink(o->path) < 0 && errno != ENOENT)
            die_errno("unlink", o->path);
        close(o->fd);
        o->fd = open_append(o->path, true);
        break;
    }
    free(first);
}

/* ---- clocks and signals ---------------------------------------------------- */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;      /* no SA_RESTART: wake the pacing sleep */
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);     /* EPIPE instead, handled in out_flush */
}

/* ---- the run ---------------------------------------------------------------- */

typedef struct {
    uint64_t max_lines, max_bytes;   /* UINT64_MAX: no limit */
    double rate;                     /* 0: as fast as possible */
    int64_t start_sec;
    uint64_t rotate_every;           /* 0: never */
} run_t;

typedef struct {
    uint64_t lines, bytes, in_file;
} count_t;

static inline bool run_done(const run_t *r, const count_t *c)
{
    return stop_requested || c->lines >= r->max_lines || c->bytes >= r->max_bytes;
}

static inline void emit(gen_t *g, out_t *o, const run_t *r, count_t *c)
{
    if (r->rotate_every && c->in_file == r->rotate_every) {
        out_rotate(o);
        c->in_file = 0;
    }
    if (OUTBUF_SIZE - o->len < MAX_LINE)
        out_flush(o);
    size_t n = gen_line(g, o->buf + o->len);
    o->len += n;
    c->lines++;
    c->bytes += n;
    c->in_file++;
}

/* As fast as possible, simulated time: line i is stamped start + i / 1000. */
static void run_fast(gen_t *g, out_t *o, const run_t *r)
{
    count_t c = { 0, 0, 0 };

    while (!run_done(r, &c)) {
        gen_set_time(g, r->start_sec + (int64_t)(c.lines / SIM_LPS));
        if (g->stamp)
            g->stamp_ns = clock_ns(CLOCK_REALTIME);
        emit(g, o, r, &c);
    }
    out_flush(o);
}

/* Paced: line i is due at t0 + i / rate on the monotonic clock. We sleep until
 * about a millisecond's worth of lines is due, then write all that are due
 * in one write(2): smooth at 100k lines/s (a sleep per line would overshoot
 * by its own latency), never more than ~1 ms late to a follower (well under
 * the 10 ms we promise), and a writer that fell behind catches up in bursts
 * so that the average rate holds. */
static void run_paced(gen_t *g, out_t *o, const run_t *r)
{
    count_t c = { 0, 0, 0 };
    double ns_per_line = 1e9 / r->rate;
    uint64_t burst_max = OUTBUF_SIZE / MAX_LINE;   /* lines per write at most */
    uint64_t batch = r->rate >= 2000 ? (uint64_t)(r->rate / 1000) : 1;
    if (batch > burst_max)
        batch = burst_max;
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);

    while (!run_done(r, &c)) {
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        uint64_t due = (uint64_t)((double)(now - t0) / ns_per_line) + 1;
        uint64_t want = c.lines + batch;      /* write when a batch is due */
        if (want > r->max_lines)
            want = r->max_lines;
        if (due < want) {
            int64_t wake = t0 + (int64_t)((double)(want - 1) * ns_per_line);
            struct timespec ts = { (time_t)(wake / 1000000000), (long)(wake % 1000000000) };
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);   /* EINTR: loop */
            continue;
        }
        uint64_t n = due - c.lines;
        if (n > burst_max)
            n = burst_max;
        /* One wall-clock reading per write: the lines of a batch leave
         * together, so they share the timestamp and the --stamp value, and
         * the stamp is taken within microseconds of the write(2). */
        g->stamp_ns = clock_ns(CLOCK_REALTIME);
        gen_set_time(g, g->stamp_ns / 1000000000);
        for (uint64_t i = 0; i < n && !run_done(r, &c); i++)
            emit(g, o, r, &c);
        out_flush(o);
    }
    out_flush(o);
}

/* ---- --latency-read ------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static double pct_us(const int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)ceil(p * (double)n);
    return (double)v[k ? k - 1 : 0] / 1000.0;
}

/* Parses "SEQ <digits> <digits> " at the start of a line. Returns how many of
 * seq and stamp it found (0, 1 or 2). */
static int parse_seq_stamp(const char *s, const char *end, uint64_t *seq, int64_t *stamp)
{
    uint64_t v[2] = { 0, 0 };
    int found = 0;

    if (end - s < 4 || memcmp(s, "SEQ ", 4) != 0)
        return 0;
    s += 4;
    for (int k = 0; k < 2; k++) {
        const char *d = s;
        while (s < end && *s >= '0' && *s <= '9' && s - d < 19)
            v[k] = v[k] * 10 + (uint64_t)(*s++ - '0');
        if (s == d || s == end || *s != ' ')
            break;
        s++;
        found++;
    }
    *seq = v[0];
    *stamp = (int64_t)v[1];
    return found;
}

typedef struct {
    bool pass;            /* copy the lines to stdout */
    const char *report;   /* NULL: the report to stdout */
    uint64_t count;       /* report once this many lines arrived (0: at EOF) */
    uint64_t warmup;      /* lines with seq <= warmup are not timed */
} latread_t;

typedef struct {
    uint64_t lines, expect, missing, reordered, first, last, negative;
    uint64_t distinct;    /* seq numbers seen at least once */
    uint64_t *seen;       /* a bit per seq number */
    size_t seencap;       /* words of it */
    int64_t *lat;         /* in arrival order */
    size_t nlat, latcap;
} latstat_t;

static double median_us(int64_t *v, size_t n)
{
    qsort(v, n, sizeof *v, cmp_i64);
    return pct_us(v, n, 0.5);
}

/* The report: one line of key=value. q1_median_us and q4_median_us are the
 * medians of the first and the last quarter of the timed lines in arrival
 * order: at a steady rate, a backlog that grows shows as q4 well above q1.
 * Written to a temporary name and renamed, so a reader of FILE never sees
 * half a report. */
static void latency_report(const latread_t *o, latstat_t *st)
{
    size_t n = st->nlat, q = n / 4;
    double q1 = 0, q4 = 0;
    if (q > 0) {
        int64_t *tmp = xmalloc(q * sizeof *tmp);
        memcpy(tmp, st->lat, q * sizeof *tmp);
        q1 = median_us(tmp, q);
        memcpy(tmp, st->lat + n - q, q * sizeof *tmp);
        q4 = median_us(tmp, q);
        free(tmp);
    }
    int64_t *v = xmalloc((n ? n : 1) * sizeof *v);
    memcpy(v, st->lat, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_i64);

    char tmpname[4096];
    FILE *f = stdout;
    if (o->report) {
        snprintf(tmpname, sizeof tmpname, "%s.tmp", o->report);   /* a path fits */
        if (!(f = fopen(tmpname, "w")))
            die_errno("open", tmpname);
    }
    fprintf(f, "lines=%" PRIu64 " stamped=%zu first_seq=%" PRIu64 " last_seq=%" PRIu64
            " missing=%" PRIu64 " reordered=%" PRIu64 " distinct=%" PRIu64
            " min_us=%.1f median_us=%.1f"
            " p90_us=%.1f p99_us=%.1f p999_us=%.1f max_us=%.1f"
            " q1_median_us=%.1f q4_median_us=%.1f\n",
            st->lines, n, st->first, st->last, st->missing, st->reordered, st->distinct,
            n ? (double)v[0] / 1000.0 : 0.0, pct_us(v, n, 0.5), pct_us(v, n, 0.9),
            pct_us(v, n, 0.99), pct_us(v, n, 0.999),
            n ? (double)v[n - 1] / 1000.0 : 0.0, q1, q4);
    free(v);
    if (st->negative)
        fprintf(stderr, PROG ": %" PRIu64 " lines arrived before their stamp "
                "(clock stepped?); counted as 0\n", st->negative);
    if (o->report) {
        if (fclose(f) != 0)
            die_errno("write", tmpname);
        if (rename(tmpname, o->report) < 0)
            die_errno("rename", tmpname);
    } else if (fflush(stdout) != 0) {
        die_errno("write", "stdout");
    }
}

/* One line's seq and latency into the figures. */
static void latency_line(const latread_t *o, latstat_t *st, const char *s, const char *nl,
                         int64_t now)
{
    uint64_t seq;
    int64_t stamp;
    int f = parse_seq_stamp(s, nl, &seq, &stamp);
    st->lines++;
    if (f >= 1) {
        if (!st->first)
            st->first = seq;
        if (seq == st->expect) {
            st->expect++;
        } else if (seq > st->expect) {
            st->missing += seq - st->expect;
            st->expect = seq + 1;
        } else {
            st->reordered++;              /* a duplicate or a late line */
        }
        if (seq > st->last)
            st->last = seq;
        size_t w = (size_t)(seq / 64);
        if (w >= st->seencap) {
            size_t cap = st->seencap ? st->seencap : 1024;
            while (cap <= w)
                cap *= 2;
            uint64_t *nb = realloc(st->seen, cap * sizeof *nb);
            if (!nb) {
                fprintf(stderr, PROG ": out of memory\n");
                exit(1);
            }
            memset(nb + st->seencap, 0, (cap - st->seencap) * sizeof *nb);
            st->seen = nb;
            st->seencap = cap;
        }
        if (!(st->seen[w] & (1ULL << (seq % 64)))) {
            st->seen[w] |= 1ULL << (seq % 64);
            st->distinct++;
        }
    }
    if (f == 2 && seq > o->warmup) {
        int64_t d = now - stamp;
        if (d < 0) {                      /* clocks never go back here... */
            st->negative++;
            d = 0;
        }
        if (st->nlat == st->latcap) {
            st->latcap *= 2;
            int64_t *nv = realloc(st->lat, st->latcap * sizeof *st->lat);
            if (!nv) {
                fprintf(stderr, PROG ": out of memory\n");
                exit(1);
            }
            st->lat = nv;
        }
        st->lat[st->nlat++] = d;
    }
}

/* Arrival time is taken once per read(2): every line in the chunk had arrived
 * by then, and none can be timed more finely from the outside. With --pass
 * the chunk's whole lines go on to stdout after they are timed. */
static int latency_read(const latread_t *o)
{
    size_t cap = 1 << 16, have = 0;
    char *buf = xmalloc(cap);
    latstat_t st = { .expect = 1, .latcap = 1 << 16 };
    bool reported = false;

    st.lat = xmalloc(st.latcap * sizeof *st.lat);
    signal(SIGPIPE, SIG_IGN);     /* EPIPE instead */
    for (;;) {
        if (have == cap) {                    /* a line longer than the buffer */
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) {
                fprintf(stderr, PROG ": out of memory\n");
                return 1;
            }
            buf = nb;
        }
        ssize_t n = read(0, buf + have, cap - have);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die_errno("read", "stdin");
        }
        int64_t now = clock_ns(CLOCK_REALTIME);
        if (n == 0)
            break;
        have += (size_t)n;
        char *s = buf, *end = buf + have, *nl;
        while ((nl = memchr(s, '\n', (size_t)(end - s))) != NULL) {
            if (!reported)
                latency_line(o, &st, s, nl, now);
            s = nl + 1;
        }
        if (o->pass) {
            out_t out = { .fd = 1, .buf = buf, .len = (size_t)(s - buf) };
            out_flush(&out);
        }
        have = (size_t)(end - s);
        memmove(buf, s, have);
        /* Numbered lines count once each: a duplicate is not progress. */
        if (!reported && o->count && (st.distinct ? st.distinct : st.lines) >= o->count) {
            latency_report(o, &st);
            reported = true;
            if (!o->pass)
                break;
        }
    }
    if (!reported)
        latency_report(o, &st);
    free(buf);
    free(st.lat);
    free(st.seen);
    return 0;
}

/* ---- --rusage -------------------------------------------------------------- */

/* Like `/usr/bin/time -f %M -o FILE`, for machines without it: runs the
 * command, waits, writes "maxrss_kb=... wall_s=... user_s=... sys_s=...
 * status=..." to FILE, and exits with the command's status (128 + signal
 * when it was killed). */
static int run_rusage(const char *outpath, char **argv)
{
    int64_t t0 = clock_ns(CLOCK_MONOTONIC);
    pid_t pid = fork();

    if (pid < 0)
        die_errno("fork", NULL);
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, PROG ": %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    /* As time(1) does: a ^C goes to the command, and we report after it. */
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR)
            die_errno("wait", NULL);
    }
    double wall = (double)(clock_ns(CLOCK_MONOTONIC) - t0) / 1e9;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    FILE *f = fopen(outpath, "w");
    if (!f)
        die_errno("open", outpath);
    fprintf(f, "maxrss_kb=%ld wall_s=%.6f user_s=%.6f sys_s=%.6f status=%d\n",
            ru.ru_maxrss, wall,
            (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, code);
    if (fclose(f) != 0)
        die_errno("write", outpath);
    return code;
}

/* ---- options ---------------------------------------------------------------- */

static const char usage_text[] =
"Usage: genlog [-n LINES] [-b SIZE] [-r RATE] [-T TERMS] [-z EXPONENT] [--seed N]\n"
"              [--start EPOCH_SECONDS] [--seq] [--stamp] [-o FILE]\n"
"              [--rotate-every N] [--rotate-mode rename|copytruncate|recreate] [--keep K]\n"
"       genlog --vocab [-T TERMS] [-z EXPONENT]\n"
"       genlog --latency-read [-n LINES] [--warmup N] [--pass -o FILE]\n"
"       genlog --rusage FILE COMMAND [ARG...]\n"
"       genlog --help | --version\n"
"\n"
"Writes nginx \"combined\" access-log lines for testing and demonstrating runnel:\n"
"  127.0.0.1 - - [14/Nov/2023:22:13:20 +0000] \"GET /search?Input=chofur&page=1 HTTP/1.1\" 200 512 \"-\" \"curl/7.88.1\"\n"
"90% are searches whose TERM after Input= follows a Zipf law over TERMS words\n"
"(rank k has probability ~ 1/k^EXPONENT; the word of a rank never changes, see\n"
"--vocab); 5% of searches capitalise the term (4% Word, 1% WORD). The other 10%\n"
"have no Input= (static files, POST /api/order?product=pNN&amount=N, /healthz).\n"
"Same seed and options, same lines (except the timestamps under -r).\n"
"\n"
"Generating:\n"
"  -n, --lines LINES         stop after LINES lines\n"
"  -b, --bytes SIZE          stop once at least SIZE bytes are out, on a line end\n"
"                            (suffixes k, m, g, t: powers of 1024). Without -n and\n"
"                            -b, run until SIGINT or SIGTERM, which end the line\n"
"                            in hand, flush and exit 0\n"
"  -r, --rate RATE           RATE lines per second (fractions allowed), paced on the\n"
"                            monotonic clock in ~1 ms batches and written at once;\n"
"                            timestamps are the wall clock. Without -r: as fast as\n"
"                            possible, with simulated timestamps: 1000 lines per\n"
"                            second of log, from --start on\n"
"  -T, --terms TERMS         vocabulary size (default 1000, at most 10000000)\n"
"  -z, --zipf EXPONENT       the Zipf exponent (default 1.1; 0 is uniform)\n"
"      --seed N              random seed (default 1)\n"
"      --start EPOCH_SECONDS first simulated second (default: now; not with -r)\n"
"      --seq                 begin each line with \"SEQ NNNNNNNNNN \": 1, 2, 3, ...\n"
"                            zero-padded to 10 digits\n"
"      --stamp               implies --seq; put the CLOCK_REALTIME nanoseconds of\n"
"                            the line's write after the number (for --latency-read;\n"
"                            meaningful with -r, where each batch is written as\n"
"                            soon as it is made)\n"
"  -o, --output FILE         append to FILE (created 0644) instead of stdout\n"
"      --rotate-every N      with -o: rotate FILE after every N lines, between lines,\n"
"                            when one more line follows\n"
"      --rotate-mode MODE    rename: FILE -> FILE.1, open a new FILE (default);\n"
"                            copytruncate: copy FILE to FILE.1, truncate FILE and\n"
"                            keep writing to it; recreate: unlink FILE and create\n"
"                            it again (no copy kept). Older copies shift to FILE.2..\n"
"      --keep K              rotated copies kept, FILE.1 .. FILE.K (default 5)\n"
"\n"
"Helpers for tests and benchmarks:\n"
"      --vocab               print \"RANK TERM PROBABILITY\" for every term and exit\n"
"      --latency-read        read lines made with --stamp from stdin; at EOF print\n"
"                            lines, lost and reordered ones, the distinct numbers\n"
"                            seen, and latency (arrival minus stamp) percentiles\n"
"                            in microseconds, also the\n"
"                            median of the first and of the last quarter (q1, q4:\n"
"                            a growing backlog shows as q4 above q1). With it:\n"
"                            -n LINES: report once LINES lines arrived (distinct\n"
"                            numbers, when the lines have them);\n"
"                            --warmup N: lines numbered N or lower are not timed;\n"
"                            --pass: copy the lines to stdout, the report to\n"
"                            -o FILE (written whole, by a rename)\n"
"      --rusage FILE         run COMMAND; then write its peak RSS (kB) and times to\n"
"                            FILE, and exit with its status (for when time(1) is\n"
"                            missing)\n"
"  -h, --help                print this help\n"
"  -V, --version             print the version\n"
"\n"
"Output is written through a 1 MiB buffer: when full, at every rotation, at\n"
"exit, and under -r after every batch (at least every 10 ms).\n"
"Exit status: 0 done, also when the reader of the output goes away (EPIPE);\n"
"1 on an I/O error; 2 on a usage error.\n";

static void usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'genlog --help' for more information.\n");
    va_end(ap);
    exit(2);
}

static uint64_t parse_uint(const char *s, uint64_t min, uint64_t max, const char *what)
{
    uint64_t v = 0;

    if (!*s)
        usage_error("%s: empty number", what);
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9')
            usage_error("'%s' is not a non-negative integer", s);
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            usage_error("'%s' is too large", s);
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v < min || v > max) {
        fprintf(stderr, PROG ": %s must be between %" PRIu64 " and %" PRIu64 "\n",
                what, min, max);
        exit(2);
    }
    return v;
}

static double parse_double(const char *s, double min, double max, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v))
        usage_error("'%s' is not a number", s);
    if (v < min || v > max) {
        fprintf(stderr, PROG ": %s must be between %g and %g\n", what, min, max);
        exit(2);
    }
    return v;
}

/* "512", "64k", "1.5m", "2g", "1t", also "kb", "KiB" and a trailing "b",
 * as the tools' rn_parse_size() takes them: powers of 1024. */
static uint64_t parse_size(const char *s)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    double mult = 1;

    if (end == s || errno || !isfinite(v) || v < 0 || *s == '-' || *s == '+')
        usage_error("'%s' is not a size", s);
    switch (*end | 0x20) {
    case 'k': mult = 0x1p10; end++; break;
    case 'm': mult = 0x1p20; end++; break;
    case 'g': mult = 0x1p30; end++; break;
    case 't': mult = 0x1p40; end++; break;
    default: break;
    }
    if (mult != 1 && (*end | 0x20) == 'i' && (end[1] | 0x20) == 'b')
        end += 2;
    else if (*end && (*end | 0x20) == 'b')
        end++;
    if (*end)
        usage_error("size '%s' has an unknown unit (use k, m, g or t)", s);
    v *= mult;
    if (v >= 0x1p63)
        usage_error("size '%s' is too large", s);
    return (uint64_t)v;
}

enum {
    OPT_SEED = 256, OPT_START, OPT_SEQ, OPT_STAMP, OPT_ROTATE_EVERY, OPT_ROTATE_MODE,
    OPT_KEEP, OPT_VOCAB, OPT_LATENCY_READ, OPT_RUSAGE, OPT_PASS, OPT_WARMUP,
};

static const struct option longopts[] = {
    { "lines", required_argument, NULL, 'n' },
    { "bytes", required_argument, NULL, 'b' },
    { "rate", required_argument, NULL, 'r' },
    { "terms", required_argument, NULL, 'T' },
    { "zipf", required_argument, NULL, 'z' },
    { "output", required_argument, NULL, 'o' },
    { "seed", required_argument, NULL, OPT_SEED },
    { "start", required_argument, NULL, OPT_START },
    { "seq", no_argument, NULL, OPT_SEQ },
    { "stamp", no_argument, NULL, OPT_STAMP },
    { "rotate-every", required_argument, NULL, OPT_ROTATE_EVERY },
    { "rotate-mode", required_argument, NULL, OPT_ROTATE_MODE },
    { "keep", required_argument, NULL, OPT_KEEP },
    { "vocab", no_argument, NULL, OPT_VOCAB },
    { "latency-read", no_argument, NULL, OPT_LATENCY_READ },
    { "rusage", required_argument, NULL, OPT_RUSAGE },
    { "pass", no_argument, NULL, OPT_PASS },
    { "warmup", required_argument, NULL, OPT_WARMUP },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
    run_t run = { UINT64_MAX, UINT64_MAX, 0, 0, 0 };
    uint64_t seed = DEFAULT_SEED, terms = DEFAULT_TERMS, keep = DEFAULT_KEEP;
    double zipf = DEFAULT_ZIPF;
    bool seq = false, stamp = false, have_start = false, vocab_only = false;
    bool latency = false, have_mode = false, have_keep = false;
    bool gen_opts = false;          /* any option that only generating takes */
    bool lat_opts = false;          /* --pass or --warmup */
    bool other_gen_opts = false;    /* gen_opts other than -n and -o */
    latread_t lr = { 0 };
    bool vocab_opts = false;        /* -T or -z */
    const char *output = NULL, *rusage_out = NULL;
    enum rotate_mode mode = ROT_RENAME;
    int c;

    /* "+": stop at the first operand, so --rusage passes the command's own
     * options through untouched. */
    /* ":" and opterr = 0: we word getopt's complaints ourselves, so that
     * they begin "genlog: " however the program was invoked. */
    opterr = 0;
    while ((c = getopt_long(argc, argv, "+:n:b:r:T:z:o:hV", longopts, NULL)) != -1) {
        switch (c) {
        case 'n': run.max_lines = parse_uint(optarg, 0, UINT64_MAX, "-n"); gen_opts = true; break;
        case 'b': run.max_bytes = parse_size(optarg); gen_opts = other_gen_opts = true; break;
        case 'r': run.rate = parse_double(optarg, 1e-3, 1e9, "-r"); gen_opts = other_gen_opts = true; break;
        case 'T': terms = parse_uint(optarg, 1, MAX_TERMS, "-T"); vocab_opts = true; break;
        case 'z': zipf = parse_double(optarg, 0, 10, "-z"); vocab_opts = true; break;
        case 'o': output = optarg; gen_opts = true; break;
        case OPT_SEED: seed = parse_uint(optarg, 0, UINT64_MAX, "--seed"); gen_opts = other_gen_opts = true; break;
        case OPT_START:
            run.start_sec = (int64_t)parse_uint(optarg, 0, 253402300799u, "--start");
            have_start = gen_opts = other_gen_opts = true;
            break;
        case OPT_SEQ: seq = gen_opts = other_gen_opts = true; break;
        case OPT_STAMP: stamp = seq = gen_opts = other_gen_opts = true; break;
        case OPT_ROTATE_EVERY:
            run.rotate_every = parse_uint(optarg, 1, UINT64_MAX, "--rotate-every");
            gen_opts = other_gen_opts = true;
            break;
        case OPT_ROTATE_MODE:
            if (strcmp(optarg, "rename") == 0)
                mode = ROT_RENAME;
            else if (strcmp(optarg, "copytruncate") == 0)
                mode = ROT_COPYTRUNCATE;
            else if (strcmp(optarg, "recreate") == 0)
                mode = ROT_RECREATE;
            else
                usage_error("unknown rotate mode '%s' (use rename, copytruncate "
                            "or recreate)", optarg);
            have_mode = gen_opts = other_gen_opts = true;
            break;
        case OPT_KEEP: keep = parse_uint(optarg, 1, MAX_KEEP, "--keep"); have_keep = gen_opts = other_gen_opts = true; break;
        case OPT_VOCAB: vocab_only = true; break;
        case OPT_LATENCY_READ: latency = true; break;
        case OPT_RUSAGE: rusage_out = optarg; break;
        case OPT_PASS: lr.pass = lat_opts = true; break;
        case OPT_WARMUP: lr.warmup = parse_uint(optarg, 0, UINT64_MAX, "--warmup"); lat_opts = true; break;
        case 'h': fputs(usage_text, stdout); return fflush(stdout) == 0 ? 0 : 1;
        case 'V': printf("genlog (runnel) %s\n", PACKAGE_VERSION); return 0;
        case ':':
        default: {
            /* optopt names a short option; a long one is only in argv. */
            char shortopt[3] = { '-', (char)optopt, '\0' };
            const char *name = optopt > 0 && optopt < 256 ? shortopt : argv[optind - 1];
            usage_error(c == ':' ? "option '%s' needs an argument"
                                 : "unknown option or bad argument '%s'", name);
            break;
        }
        }
    }

    /* The modes, and the options that conflict, one message each. */
    if (vocab_only + latency + (rusage_out != NULL) > 1)
        usage_error("--vocab, --latency-read and --rusage exclude each other");
    if (rusage_out) {
        if (gen_opts || vocab_opts || lat_opts)
            usage_error("--rusage takes no other options before the command");
        if (optind >= argc)
            usage_error("--rusage needs a command to run");
        return run_rusage(rusage_out, argv + optind);
    }
    if (optind < argc)
        usage_error("unexpected argument '%s'", argv[optind]);
    if (latency) {
        if (other_gen_opts || vocab_opts)
            usage_error("--latency-read takes only -n, -o, --warmup and --pass");
        if (lr.pass && !output)
            usage_error("--pass needs -o FILE for the report");
        lr.report = output;
        lr.count = run.max_lines == UINT64_MAX ? 0 : run.max_lines;
        return latency_read(&lr);
    }
    if (lat_opts)
        usage_error("--pass and --warmup need --latency-read");
    if (vocab_only && gen_opts)
        usage_error("--vocab takes only -T and -z");
    if (run.rate > 0 && have_start)
        usage_error("--start sets simulated time, which -r does not use");
    if (run.rotate_every && !output)
        usage_error("--rotate-every needs -o FILE");
    if ((have_mode || have_keep) && !run.rotate_every)
        usage_error("--rotate-mode and --keep need --rotate-every");

    gen_t *g = xmalloc(sizeof *g);
    memset(g, 0, sizeof *g);
    vocab_build(&g->voc, (uint32_t)terms, zipf);

    if (vocab_only) {
        for (uint32_t i = 0; i < g->voc.n; i++)
            printf("%" PRIu32 " %.*s %.9g\n", i + 1, (int)g->voc.len[i],
                   g->voc.text + g->voc.off[i],
                   pow((double)i + 1, -g->voc.s) / g->voc.total);
        vocab_free(&g->voc);
        free(g);
        return fflush(stdout) == 0 ? 0 : 1;
    }

    rng_seed(&g->rng, seed);
    clients_build(g->clients);
    for (size_t i = 0; i < NAGENTS; i++)
        g->agent_len[i] = strlen(agents[i]);
    for (size_t i = 0; i < NREFERERS; i++)
        g->referer_len[i] = strlen(referers[i]);
    g->seq = seq;
    g->stamp = stamp;
    g->seqno = 1;
    g->date_sec = INT64_MIN;
    if (!have_start)
        run.start_sec = clock_ns(CLOCK_REALTIME) / 1000000000;

    out_t o = { .fd = 1, .path = output, .buf = xmalloc(OUTBUF_SIZE), .mode = mode,
                .keep = (unsigned)keep };
    if (output)
        o.fd = open_append(output, false);
    if (run.rotate_every && mode != ROT_RECREATE)
        find_rotated(&o);
    install_signals();

    if (run.rate > 0)
        run_paced(g, &o, &run);
    else
        run_fast(g, &o, &run);

    if (output && close(o.fd) < 0)
        die_errno("close", output);
    free(o.buf);
    vocab_free(&g->voc);
    free(g);
    return 0;
}
