/* winagg.c -- per-key aggregates over tumbling and sliding windows. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "window/window.h"
#include "core/core.h"

static const char usage_text[] =
    "usage: winagg (-k REGEX | -f N [-d DELIM] | --json-key PATH) [--urldecode] [--lower]\n"
    "              [-a count|sum|min|max|avg] [--value REGEX | --value-field N]\n"
    "              -w DURATION [-s DURATION] [--time arrival|header|REGEX] [--time-format FMT]\n"
    "              [--until REGEX] [--lateness DURATION] [--late-out FILE] [--tz ZONE]\n"
    "              [--emit all|changed|final] [--fill] [--fill-key KEY ...]\n"
    "              [--state FILE] [--max-keys N] [-o tsv|json|frames] [-v | -q]\n"
    "              [FILE ...]\n";

static void usage(void)
{
    fputs(usage_text, stdout);
    fputs("\nAggregate events per key over windows of length -w sliding every -s\n"
          "(default: tumbling), aligned to the epoch; print a row per window and key.\n\n"
          "  -k, --key REGEX        key: the first capture group (or the whole match)\n"
          "  -f, --field N          key: field N, split on -d (default: runs of blanks)\n"
          "  -d, --delimiter DELIM  field delimiter for -f and --value-field\n"
          "      --json-key PATH    key: a member of a JSON body (dotted path)\n"
          "      --urldecode        URL-decode the key (%XX, + as a space)\n"
          "      --lower            fold the key to lower case\n"
          "  -a, --agg AGG          count (default), sum, min, max or avg\n"
          "      --value REGEX      value: the first capture group of REGEX\n"
          "      --value-field N    value: field N\n"
          "  -w, --window DURATION  window length (500ms, 10s, 5m, 1h ...)\n"
          "  -s, --slide DURATION   slide; the length must be a multiple of it\n"
          "      --time WHAT        arrival (default), header (the ts header), or a\n"
          "                         REGEX whose group is the event time\n"
          "      --time-format FMT  strptime format of that time (default: nginx's\n"
          "                         %d/%b/%Y:%H:%M:%S %z), or epoch, epoch_ms,\n"
          "                         epoch_ns, iso8601\n"
          "      --until REGEX      the event's end time (as --time REGEX): it counts\n"
          "                         in every slice from its time to its end\n"
          "      --lateness DURATION\n"
          "                         how far event time may run behind (default 0)\n"
          "      --late-out FILE    append late events to FILE\n"
          "      --tz ZONE          align windows to local time in ZONE (Europe/Berlin,\n"
          "                         +08:00) and print times with its offset\n"
          "      --emit WHICH       all keys of a window (default), changed ones, or\n"
          "                         final: each window once, when it is closed\n"
          "      --fill             a 0 row for each key of the last window with data\n"
          "                         that a window lacks, so charts have no holes\n"
          "      --fill-key KEY     a row for KEY in every window, 0 when absent\n"
          "      --state FILE       keep the window state in FILE across restarts\n"
          "      --max-keys N       bound the keys held; new keys beyond are dropped\n"
          "  -o, --output FORMAT    tsv (default), json or frames\n"
          "  -v, --verbose          print the counters at exit\n"
          "  -q, --quiet            no warnings, unless winagg then fails\n"
          "  -h, --help             show this help\n"
          "  -V, --version          show the version\n", stdout);
    exit(0);
}

typedef struct app {
    rn_wagg *agg;
    rn_rowwriter *out;
    int late_fd;
    int out_failed, status;
    int save_failing;           /* the last save of --state failed */
    int64_t wm_out;             /* the last watermark written; INT64_MIN: none */
    const char *state_path;
    char optsig[4096];
    /* the input being read */
    rn_decoder *dec;
    const char *name;
    int64_t next_tick, next_save;      /* rn_mono_ns */
    int nokey_warned;           /* said, or no longer to be said */
    int fill_cut_said;
    int partial_warned;
    rn_tz *tz;                  /* --tz, for messages (the job owns it) */
    char key_desc[256];                 /* the key option, for messages */
} app;

#define TICK_NS 100000000LL        /* idle input: the clock is looked at this often */
#define SAVE_NS 5000000000LL        /* --state is written this often */

/* A write to stdout failed with r: no more output; a reader that went away
 * is no error. Returns -1. */
static int stdout_failed(app *a, int r, const char *err)
{
    a->out_failed = 1;
    if (r != RN_EPIPE) {
        rn_error("stdout: %s", err);
        a->status = 1;
    }
    return -1;
}

static int emit(void *data, const rn_row *row)
{
    app *a = data;
    char err[RN_ERRLEN];
    if (a->out_failed)
        return -1;
    if (row->partial && !a->partial_warned) {
        char s[RN_TIMELEN], e[RN_TIMELEN];
        size_t sn = rn_time_format_tz(row->start, a->tz, s);
        size_t en = rn_time_format_tz(row->end, a->tz, e);
        rn_warn("no --state: window %.*s..%.*s began before this run's first event; its rows "
                "count only what this run read (--state FILE keeps windows across restarts)",
                (int)sn, s, (int)en, e);
        a->partial_warned = 1;
    }
    int r = rn_rowwriter_put(a->out, row, err);
    return r < 0 ? stdout_failed(a, r, err) : 0;
}

static void put_watermark_at(app *a, int64_t closed);

/* After the rows of a close: the watermark, when it moved (the end of the
 * last window passed: no row of a window ending by then will follow).
 * Inline: after every event nothing moved, the common case. */
static inline void put_watermark(app *a)
{
    int64_t closed = rn_wagg_closed(a->agg);
    if (!a->out_failed && closed != INT64_MIN && closed > a->wm_out)
        put_watermark_at(a, closed);
}

static void put_watermark_at(app *a, int64_t closed)
{
    char err[RN_ERRLEN];
    rn_window_stats st;
    rn_window_stats_get(rn_wagg_window(a->agg), &st);
    if (st.fill_cut && !a->fill_cut_said) {
        rn_warn("--fill: more than %d empty windows in a row; only the first %d were "
                "filled", RN_WIN_FILL_MAX, RN_WIN_FILL_MAX);
        a->fill_cut_said = 1;
    }
    a->wm_out = closed;
    int r = rn_rowwriter_watermark(a->out, closed, err);
    if (r < 0)
        stdout_failed(a, r, err);
}

static void flush_out(app *a)
{
    char err[RN_ERRLEN];
    if (a->out_failed)
        return;
    int r = rn_rowwriter_flush(a->out, err);
    if (r < 0)
        stdout_failed(a, r, err);
}

/* Save the state. A failure (a full disk: the old file stays whole) is said
 * once and tried again at the next save, which says when it works again;
 * the exit status is 1 when the last save failed. */
static void save_state(app *a)
{
    char err[RN_ERRLEN];
    if (!a->state_path)
        return;
    if (rn_window_save(rn_wagg_window(a->agg), a->state_path, a->optsig, err) < 0) {
        if (!a->save_failing)
            rn_warn("state not saved: %s; trying again at the next save", err);
        a->save_failing = 1;
    } else if (a->save_failing) {
        rn_warn("%s: state saved again", a->state_path);
        a->save_failing = 0;
    }
}

/* The counters: said when asked (SIGUSR1), with -v, or when events were
 * late, evicted or unreadable. */
static void report(app *a, int asked)
{
    rn_wagg_stats st;
    rn_wagg_stats_get(a->agg, &st);
    void (*say)(const char *, ...) = asked ? rn_report : rn_verbose ? rn_info
                                   : st.late || st.evicted || st.badvalue || st.badtime ? rn_warn
                                   : NULL;
    if (say)
        say("events=%" PRIu64 " nokey=%" PRIu64 " badvalue=%" PRIu64 " badtime=%" PRIu64
                " late=%" PRIu64 " evicted=%" PRIu64 " windows=%" PRIu64 " rows=%" PRIu64,
                st.events, st.nokey, st.badvalue, st.badtime, st.late, st.evicted, st.windows,
                st.rows);
}

static void write_late(app *a, const rn_event *ev)
{
    if (a->late_fd < 0)
        return;
    if (rn_write_all(a->late_fd, ev->body.p, ev->body.n) < 0
        || rn_write_all(a->late_fd, "\n", 1) < 0) {
        rn_error("--late-out: write: %s", strerror(errno));
        a->status = 1;
        close(a->late_fd);
        a->late_fd = -1;
    }
}

/* Events decoded so far into the windows. 0, or -1 when the input is
 * corrupt (reported: the exit status is 1). */
/* Events without a key are normal (most lines of an access log have no
 * search term), but when none has one the key is wrong (a regex in the
 * wrong case): said once, early, after NOKEY_EARLY events, or at the end. */
#define NOKEY_EARLY 10000

static void check_keys(app *a, int at_end)
{
    rn_wagg_stats st;
    if (a->nokey_warned)
        return;
    rn_wagg_stats_get(a->agg, &st);
    if (st.nokey != st.events) {
        a->nokey_warned = 1;    /* keys match: nothing to say, now or later */
        return;
    }
    if (st.events && (at_end || st.events >= NOKEY_EARLY)) {
        rn_warn("%s%" PRIu64 " events and none had a key: does the key (%s) match them?",
                at_end ? "" : "the first ", st.events, a->key_desc);
        a->nokey_warned = 1;
    }
}

static int drain(app *a)
{
    char err[RN_ERRLEN];
    rn_event ev;
    int64_t now = rn_now_ns();
    int r;
    while ((r = rn_decoder_next(a->dec, &ev, err)) == 1) {
        int k = rn_wagg_event(a->agg, &ev, now, err);
        if (k < 0)
            rn_die("%s", err);
        if (k == RN_WAGG_LATE)
            write_late(a, &ev);
        /* The watermark moves with every event, so what is late does
         * not depend on how the input was cut into reads. */
        if (rn_wagg_tick(a->agg, now, emit, a) < 0 && !a->out_failed)
            rn_die("out of memory");
        put_watermark(a);   /* after the rows of each close (a few loads) */
    }
    check_keys(a, 0);
    if (r == RN_ERR) {
        rn_error("%s: %s", a->name, err);
        a->status = 1;
        return -1;
    }
    return 0;
}

/* After every read, and every TICK_NS while the input is idle: emit the windows the
 * clock has closed, and save the state when it is due. */
static int tick(void *data)
{
    app *a = data;
    if (rn_wagg_tick(a->agg, rn_now_ns(), emit, a) < 0 && !a->out_failed)
        rn_die("out of memory");
    put_watermark(a);
    a->next_tick = rn_mono_ns() + TICK_NS;
    if (a->state_path && rn_mono_ns() >= a->next_save) {
        save_state(a);
        a->next_save = rn_mono_ns() + SAVE_NS;
    }
    return a->out_failed;
}

static int on_bytes(void *data, const char *buf, size_t n)
{
    app *a = data;
    char err[RN_ERRLEN];
    if (rn_decoder_feed(a->dec, buf, n, err) < 0)
        rn_die("%s", err);
    if (drain(a) < 0)
        return -1;
    return tick(a);
}

static int64_t next_tick(void *data) { return ((app *)data)->next_tick; }

static char *read_buf(void *data, size_t want, size_t *room)   /* the decoder's own */
{
    return rn_decoder_space(((app *)data)->dec, want, room);
}

static void on_warn(void *data, const char *msg)
{
    (void)data;
    rn_warn("%s", msg);
}

/* Whether an input is a regular file (a batch run over it is whole), not a
 * pipe or socket that a restart resumes mid-stream. */
static int is_regular(const char *name)
{
    struct stat sb;
    if (strcmp(name, "-") == 0)
        return fstat(STDIN_FILENO, &sb) == 0 && S_ISREG(sb.st_mode);
    return stat(name, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int on_idle(void *data)          /* nothing waiting: what is out goes out now */
{
    app *a = data;
    flush_out(a);
    return a->out_failed;
}

static void on_usr1(void *data) { report(data, 1); }

static const rn_input_ops input_ops = {
    .on_bytes = on_bytes,
    .deadline = next_tick,
    .on_deadline = tick,
    .on_idle = on_idle,
    .on_usr1 = on_usr1,
    .read_buf = read_buf,
};

/* Read one input to its end (or a stop signal); a failure is reported and
 * makes the exit status 1. */
static void run_input(app *a, const rn_input *in, int fd, const char *name)
{
    char err[RN_ERRLEN];

    if (!(a->dec = rn_decoder_new(RN_FMT_AUTO, RN_DEFAULT_MAX_EVENT)))
        rn_die("out of memory");
    a->name = name;
    a->next_tick = rn_mono_ns() + TICK_NS;
    a->next_save = rn_mono_ns() + SAVE_NS;
    int r = rn_input_run(in, fd, name, &input_ops, a, err);
    if (r == RN_INPUT_END) {
        rn_decoder_eof(a->dec);
        if (drain(a) == 0)
            tick(a);
    } else if (r == RN_ERR) {
        rn_error("%s", err);
        a->status = 1;
    }
    uint64_t cut = rn_decoder_cut(a->dec);
    if (cut)
        rn_warn("%s: %" PRIu64 " lines longer than %u bytes cut", name, cut,
                RN_DEFAULT_MAX_EVENT);
    rn_decoder_free(a->dec);
    a->dec = NULL;
}

/* ---- the old spellings of the value options ----------------------------
 *
 * The value was -v REGEX and -V N; -v is --verbose and -V --version now, as
 * in every tool. Until the next release the old ones still work where they
 * cannot be the new ones: -V followed by a number, and -v followed by a word
 * while -a asks for a value, once, and neither --value nor --value-field is
 * given.
 * They are rewritten into the new spellings before getopt reads argv. */

/* The "--value=..." string made of an attached old value ("-vREGEX"), kept
 * to the end. One at most: only the first old value option is rewritten. */
static char *made;

/* Whether argv element x is an option whose value is the next element. */
static int value_follows(const char *x, const char *shortopts, const struct option *longopts)
{
    if (x[0] != '-' || !x[1])
        return 0;
    if (x[1] == '-') {
        size_t n = strcspn(x + 2, "=");
        if (x[2 + n] == '=')
            return 0;
        for (const struct option *o = longopts; o->name; o++)
            if (strncmp(o->name, x + 2, n) == 0)
                return o->has_arg == required_argument;
        return 0;
    }
    for (const char *p = x + 1; *p; p++) {
        const char *s = strchr(shortopts, *p);
        if (s && s[1] == ':')
            return p[1] == '\0';       /* else the rest is its value */
    }
    return 0;
}

static int all_digits(const char *s) { return *s && strspn(s, "0123456789") == strlen(s); }

static char *joined(const char *a, const char *b)
{
    if (!(made = malloc(strlen(a) + strlen(b) + 1)))
        rn_die("out of memory");
    return strcat(strcpy(made, a), b);
}

static void old_value_options(int argc, char **argv, const char *shortopts,
                              const struct option *longopts)
{
    int needs_value = 0, has_new = 0;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        const char *x = argv[i], *agg = NULL;
        if (!strcmp(x, "-a") || !strcmp(x, "--agg"))
            agg = i + 1 < argc ? argv[i + 1] : NULL;
        else if (!strncmp(x, "--agg=", 6))
            agg = x + 6;
        else if (x[0] == '-' && x[1] == 'a')
            agg = x + 2;
        if (agg && strcmp(agg, "count") != 0)
            needs_value = 1;
        if (!strncmp(x, "--value", 7))
            has_new = 1;
        if (value_follows(x, shortopts, longopts))
            i++;
    }
    if (has_new)
        return;
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        char *x = argv[i];
        if (!strcmp(x, "-V") && i + 1 < argc && all_digits(argv[i + 1])) {
            argv[i] = "--value-field";
        } else if (!strncmp(x, "-V", 2) && all_digits(x + 2)) {
            argv[i] = joined("--value-field=", x + 2);
        } else if (needs_value && !strcmp(x, "-v") && i + 1 < argc && argv[i + 1][0] != '-') {
            argv[i] = "--value";
        } else if (needs_value && !strncmp(x, "-v", 2) && x[2]
                   && strspn(x + 2, "vq") != strlen(x + 2)) {
            argv[i] = joined("--value=", x + 2);
        } else {
            if (value_follows(x, shortopts, longopts))
                i++;
            continue;
        }
        rn_old_option(x[1] == 'V' ? "-V N (the value field)" : "-v REGEX (the value)",
                      x[1] == 'V' ? "--value-field N" : "--value REGEX");
        return;         /* a value is given once: another -v is --verbose */
    }
}

int main(int argc, char **argv)
{
    enum { OPT_JSONKEY = 256, OPT_LOWER, OPT_URLDECODE, OPT_TIME, OPT_TFMT, OPT_LATENESS, OPT_LATEOUT,
           OPT_EMIT, OPT_STATE, OPT_MAXKEYS, OPT_UNTIL, OPT_FILL, OPT_FILLKEY, OPT_TZ,
           OPT_VALUE, OPT_VALUE_FIELD };
    static const char shortopts[] = "k:f:F:d:a:w:s:o:vqhV";
    static const struct option longopts[] = {
        { "key", required_argument, NULL, 'k' },
        { "field", required_argument, NULL, 'f' },
        { "delimiter", required_argument, NULL, 'd' },
        { "json-key", required_argument, NULL, OPT_JSONKEY },
        { "lower", no_argument, NULL, OPT_LOWER },
        { "urldecode", no_argument, NULL, OPT_URLDECODE },
        { "agg", required_argument, NULL, 'a' },
        { "value", required_argument, NULL, OPT_VALUE },
        { "value-field", required_argument, NULL, OPT_VALUE_FIELD },
        { "window", required_argument, NULL, 'w' },
        { "slide", required_argument, NULL, 's' },
        { "time", required_argument, NULL, OPT_TIME },
        { "time-format", required_argument, NULL, OPT_TFMT },
        { "until", required_argument, NULL, OPT_UNTIL },
        { "fill", no_argument, NULL, OPT_FILL },
        { "fill-key", required_argument, NULL, OPT_FILLKEY },
        { "lateness", required_argument, NULL, OPT_LATENESS },
        { "late-out", required_argument, NULL, OPT_LATEOUT },
        { "tz", required_argument, NULL, OPT_TZ },
        { "emit", required_argument, NULL, OPT_EMIT },
        { "state", required_argument, NULL, OPT_STATE },
        { "max-keys", required_argument, NULL, OPT_MAXKEYS },
        { "output", required_argument, NULL, 'o' },
        { "verbose", no_argument, NULL, 'v' },
        { "quiet", no_argument, NULL, 'q' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { NULL, 0, NULL, 0 },
    };
    const char *key_re = NULL, *json_key = NULL, *delim = NULL, *value_re = NULL;
    const char *time_spec = "arrival", *tfmt = NULL, *late_path = NULL, *until_re = NULL;
    rn_str *fill_keys = NULL;
    const char *width_arg = NULL, *slide_arg = NULL;
    unsigned key_field = 0, value_field = 0;
    int64_t width = 0, slide = 0, lateness = 0;
    int lateness_set = 0, emit_final = 0, c;
    rn_rowfmt ofmt = RN_ROW_TSV;
    rn_wagg_opts o;
    char err[RN_ERRLEN];
    app a;

    memset(&o, 0, sizeof o);
    memset(&a, 0, sizeof a);
    a.late_fd = -1;
    a.wm_out = INT64_MIN;
    o.win.agg = RN_AGG_COUNT;
    rn_cli_init("winagg");
    old_value_options(argc, argv, shortopts, longopts);
    while ((c = rn_getopt(argc, argv, shortopts, longopts)) != -1) {
        switch (c) {
        case 'k': key_re = optarg; break;
        case 'F':
            rn_old_option("-F N (the key field)", "-f N");
            /* fall through */
        case 'f': key_field = (unsigned)rn_opt_uint("-f", optarg, 1000000); break;
        case 'd': delim = optarg; break;
        case OPT_JSONKEY: json_key = optarg; break;
        case OPT_LOWER: o.lower = 1; break;
        case OPT_URLDECODE: o.urldecode = 1; break;
        case 'a':
            if (rn_agg_parse(optarg, &o.win.agg, err) < 0)
                rn_usage_error("-a: %s", err);
            break;
        case OPT_VALUE: value_re = optarg; break;
        case OPT_VALUE_FIELD:
            value_field = (unsigned)rn_opt_uint("--value-field", optarg, 1000000);
            break;
        case 'w': width = rn_opt_duration("-w", width_arg = optarg); break;
        case 's': slide = rn_opt_duration("-s", slide_arg = optarg); break;
        case OPT_TIME: time_spec = optarg; break;
        case OPT_TFMT: tfmt = optarg; break;
        case OPT_UNTIL: until_re = optarg; break;
        case OPT_FILL: o.win.fill = 1; break;
        case OPT_FILLKEY:
            if (!(fill_keys = realloc(fill_keys, (o.win.nfill_keys + 1) * sizeof *fill_keys)))
                rn_die("out of memory");
            fill_keys[o.win.nfill_keys].p = optarg;
            fill_keys[o.win.nfill_keys++].n = strlen(optarg);
            break;
        case OPT_LATENESS:
            lateness = rn_opt_duration("--lateness", optarg);
            lateness_set = 1;
            break;
        case OPT_LATEOUT: late_path = optarg; break;
        case OPT_TZ:
            rn_tz_free(o.tz);
            if (!(o.tz = rn_tz_new(optarg, err)))
                rn_usage_error("--tz: %s", err);
            break;
        case OPT_EMIT:
            if (strcmp(optarg, "all") != 0 && strcmp(optarg, "changed") != 0
                && strcmp(optarg, "final") != 0)
                rn_usage_error("--emit: '%s' is not 'all', 'changed' or 'final'", optarg);
            o.win.emit_changed = strcmp(optarg, "changed") == 0;
            emit_final = strcmp(optarg, "final") == 0;
            break;
        case OPT_STATE: a.state_path = optarg; break;
        case OPT_MAXKEYS: o.win.max_keys = (size_t)rn_opt_uint("--max-keys", optarg, SIZE_MAX); break;
        case 'o':
            if (rn_rowfmt_parse(optarg, &ofmt, err) < 0)
                rn_usage_error("-o: %s", err);
            break;
        default: rn_opt_common(c, usage);
        }
    }
    rn_opts_done();
    if (!!key_re + !!key_field + !!json_key != 1)
        rn_usage_error("give exactly one key: -k REGEX, -f N or --json-key PATH");
    if (value_re && value_field)
        rn_usage_error("cannot use both --value and --value-field");
    if (o.win.agg == RN_AGG_COUNT && (value_re || value_field))
        rn_usage_error("--value and --value-field need -a sum, min, max or avg");
    if (o.win.agg != RN_AGG_COUNT && !value_re && !value_field)
        rn_usage_error("-a %s needs a value: --value REGEX or --value-field N",
                       rn_agg_name(o.win.agg));
    if (delim && !key_field && !value_field)
        rn_usage_error("-d needs -f or --value-field");
    if (!width)
        rn_usage_error("-w: a window length is required");
    if (!slide)
        slide = width;
    if (slide % 1000000)
        rn_usage_error("-s: the slide must be a whole number of milliseconds");
    if (width % slide)
        rn_usage_error("the window length (-w %s) is not a multiple of the slide (-s %s)",
                       width_arg, slide_arg);
    if (strcmp(time_spec, "arrival") == 0) {
        o.time = RN_TIME_ARRIVAL;
    } else if (strcmp(time_spec, "header") == 0) {
        o.time = RN_TIME_HEADER;
    } else {
        o.time = RN_TIME_FIELD;
        if (!(o.time_field = rn_fieldx_regex(time_spec, err)))
            rn_usage_error("--time: %s", err);
        if (!(o.time_parse = rn_timex_new(tfmt ? tfmt : RN_TIME_NGINX, err)))
            rn_usage_error("--time-format: %s", err);
    }
    if (tfmt && o.time != RN_TIME_FIELD)
        rn_usage_error("--time-format needs --time REGEX");
    if (until_re && o.time != RN_TIME_FIELD)
        rn_usage_error("--until needs --time REGEX");
    if (until_re && !(o.until = rn_fieldx_regex(until_re, err)))
        rn_usage_error("--until: %s", err);
    o.win.fill_keys = fill_keys;
    if (lateness_set && o.time == RN_TIME_ARRIVAL)
        rn_usage_error("--lateness needs event time: --time header or --time REGEX");
    o.lateness_ns = lateness;
    o.on_warn = on_warn;
    o.win.width_ns = width;
    o.win.slide_ns = slide;

    if (key_re && !(o.key = rn_fieldx_regex(key_re, err)))
        rn_usage_error("-k: %s", err);
    if (key_re)
        snprintf(a.key_desc, sizeof a.key_desc, "-k '%s'", key_re);
    else if (key_field)
        snprintf(a.key_desc, sizeof a.key_desc, "-f %u", key_field);
    else
        snprintf(a.key_desc, sizeof a.key_desc, "--json-key %s", json_key);
    if (key_field && !(o.key = rn_fieldx_field(key_field, delim, err)))
        rn_usage_error("-f: %s", err);
    if (json_key && !(o.key = rn_fieldx_json(json_key, err)))
        rn_usage_error("--json-key: %s", err);
    if (value_re && !(o.value = rn_fieldx_regex(value_re, err)))
        rn_usage_error("--value: %s", err);
    if (value_field && !(o.value = rn_fieldx_field(value_field, delim, err)))
        rn_usage_error("--value-field: %s", err);

    /* Everything that gives the state its meaning; a restart with other
     * options must not read it as its own. */
    snprintf(a.optsig, sizeof a.optsig,
             "key=%s|%u|%s lower=%d delim=%s agg=%s value=%s|%u w=%" PRId64 " s=%" PRId64
             " time=%s tfmt=%s lateness=%" PRId64 "%s%s%s",
             key_re ? key_re : "", key_field, json_key ? json_key : "", o.lower,
             delim ? delim : "", rn_agg_name(o.win.agg), value_re ? value_re : "", value_field,
             width, slide, time_spec, tfmt ? tfmt : "", lateness,
             o.urldecode ? " urldecode=1" : "",    /* absent: old state files still match */
             until_re ? " until=" : "", until_re ? until_re : "");
    if (o.tz && !rn_tz_is_utc(o.tz))
        snprintf(a.optsig + strlen(a.optsig), sizeof a.optsig - strlen(a.optsig), " tz=%s",
                 rn_tz_name(o.tz));

    /* Without a state file, a run over a live or resumable input (not a
     * regular file) may start mid-window: its first windows are partial. */
    int nin = argc - optind;
    if (!a.state_path)
        for (int i = 0; i < nin || (nin == 0 && i == 0); i++)
            if (!is_regular(nin ? argv[optind + i] : "-"))
                o.mark_partial = 1;
    a.agg = rn_wagg_new(&o, err);
    if (!a.agg)
        rn_usage_error("%s", err);
    if (a.state_path) {
        /* Its directory is made as chanbuf --dir makes its own: a cron line
         * naming /var/lib/runnel/x.state works the first time. */
        char *dir = strdup(a.state_path), *slash = dir ? strrchr(dir, '/') : NULL;
        if (!dir)
            rn_die("out of memory");
        if (slash && slash != dir) {
            *slash = 0;
            if (rn_mkdir_p(dir, err) < 0)
                rn_die("--state: %s", err);
        }
        free(dir);
        int r = rn_window_load(rn_wagg_window(a.agg), a.state_path, a.optsig, err);
        if (r < 0)
            rn_die("%s", err);
        /* The run that saved it wrote its watermark: a run that reads
         * nothing new writes nothing. */
        a.wm_out = rn_wagg_closed(a.agg);
    }
    if (late_path) {
        a.late_fd = open(late_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (a.late_fd < 0)
            rn_die("--late-out: %s: %s", late_path, strerror(errno));
    }
    a.out = rn_rowwriter_new(STDOUT_FILENO, ofmt);
    if (!a.out)
        rn_die("out of memory");
    rn_rowwriter_set_tz(a.out, o.tz);
    a.tz = o.tz;
    rn_input in;
    if (rn_input_init(&in, err) < 0)
        rn_die("%s", err);

    for (int i = 0; (i < nin || (nin == 0 && i == 0)) && !rn_sig_stop && !a.out_failed; i++) {
        const char *name = nin ? argv[optind + i] : "-";
        int fd = strcmp(name, "-") == 0 ? STDIN_FILENO : open(name, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rn_error("%s: %s", name, strerror(errno));
            a.status = 1;
            continue;
        }
        run_input(&a, &in, fd, strcmp(name, "-") == 0 ? "stdin" : name);
        if (fd != STDIN_FILENO)
            close(fd);
    }

    /* With a state file a stop keeps the open windows for the next run;
     * at the end of the input those that this run added events to are
     * emitted as they are as well (a cron run that read nothing new prints
     * nothing), except with --emit final: the run that closes them emits
     * them. Without a state file nothing else will: the end makes every
     * window final. */
    save_state(&a);
    if (!a.state_path) {
        if (rn_wagg_finish(a.agg, emit, &a) < 0 && !a.out_failed)
            rn_die("out of memory");
    } else if (!rn_sig_stop && !emit_final) {
        if (rn_wagg_finish_fresh(a.agg, emit, &a) < 0 && !a.out_failed)
            rn_die("out of memory");
    }
    flush_out(&a);
    check_keys(&a, 1);
    report(&a, 0);
    if (a.late_fd >= 0)
        close(a.late_fd);
    rn_rowwriter_free(a.out);
    rn_wagg_free(a.agg);
    free(fill_keys);
    free(made);
    return rn_cli_exit(a.save_failing ? 1 : a.status);
}
