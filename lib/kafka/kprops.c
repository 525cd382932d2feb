/* kprops.c -- librdkafka properties given by the user (-X NAME=VALUE, -F FILE),
 * checked against librdkafka and against what our clients set themselves. */
#include "kafka/kafka.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

struct rn_kprops {
    char **names, **values;
    size_t n, cap;
};

/* What each client sets itself because its guarantees rest on it, and the
 * option to use instead. Everything else may be overridden (after our own
 * defaults, so the user's value wins). */
typedef struct own { const char *name, *why; } own;

static const own own_all[] = {
    { "bootstrap.servers", "use -b" },
    { "metadata.broker.list", "use -b" },
    { NULL, NULL },
};
static const own own_consumer[] = {
    { "group.id", "use -G" },
    { "enable.auto.offset.store", "offsets are stored only once written out" },
    { "enable.auto.commit", "offsets are committed as they are written out" },
    { "enable.partition.eof", "-e and the commit at a partition's end need it" },
    { "auto.offset.reset", "use --offset" },
    { NULL, NULL },
};
static const own own_sink[] = {
    { "acks", "use the sink's ?acks=" },
    { "message.timeout.ms", "records never time out: the channel keeps them" },
    { NULL, NULL },
};

rn_kprops *rn_kprops_new(void)
{
    return calloc(1, sizeof(rn_kprops));
}

void rn_kprops_free(rn_kprops *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->values[i]);
    }
    free(p->names);
    free(p->values);
    free(p);
}

size_t rn_kprops_count(const rn_kprops *p)
{
    return p ? p->n : 0;
}

/* name and value (lengths given) after librdkafka has accepted them. */
static int add(rn_kprops *p, const char *name, size_t nlen, const char *value, char *err)
{
    char e[512];
    char *k = strndup(name, nlen), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        rn_seterr(err, "out of memory");
        return RN_ENOMEM;
    }
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_res_t r = rd_kafka_conf_set(conf, k, v, e, sizeof e);
    rd_kafka_conf_destroy(conf);
    if (r != RD_KAFKA_CONF_OK) {
        rn_seterr(err, "%s", e);        /* librdkafka's message names it */
        goto err;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        char **ns = realloc(p->names, cap * sizeof *ns);
        if (ns)
            p->names = ns;
        char **vs = ns ? realloc(p->values, cap * sizeof *vs) : NULL;
        if (!vs) {
            rn_seterr(err, "out of memory");
            free(k);
            free(v);
            return RN_ENOMEM;
        }
        p->values = vs;
        p->cap = cap;
    }
    p->names[p->n] = k;
    p->values[p->n++] = v;
    return 0;
err:
    free(k);
    free(v);
    return RN_ERR;
}

int rn_kprops_add(rn_kprops *p, const char *arg, char *err)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        return rn_seterr(err, "'%s' is not NAME=VALUE", arg);
    return add(p, arg, (size_t)(eq - arg), eq + 1, err);
}

int rn_kprops_load(rn_kprops *p, const char *path, char *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return rn_seterr(err, "%s: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int r = 0, lineno = 0;
    while (r == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'
                           || line[len - 1] == ' ' || line[len - 1] == '\t'))
            line[--len] = 0;
        char *s = line + strspn(line, " \t");
        if (!*s || *s == '#')
            continue;
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            r = rn_seterr(err, "%s:%d: '%s' is not NAME=VALUE", path, lineno, s);
            break;
        }
        size_t nlen = (size_t)(eq - s);
        while (nlen > 0 && (s[nlen - 1] == ' ' || s[nlen - 1] == '\t'))
            nlen--;
        const char *v = eq + 1 + strspn(eq + 1, " \t");
        char e[RN_ERRLEN];
        r = add(p, s, nlen, v, e);
        if (r < 0)
            rn_seterr(err, "%s:%d: %s", path, lineno, e);
    }
    if (r == 0 && ferror(f))
        r = rn_seterr(err, "%s: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return r;
}

static const own *find_own(const own *t, const char *name)
{
    for (; t->name; t++)
        if (!strcmp(t->name, name))
            return t;
    return NULL;
}

int rn_kprops_check(const rn_kprops *p, int role, char *err)
{
    for (size_t i = 0; p && i < p->n; i++) {
        const own *o = find_own(own_all, p->names[i]);
        if (!o && role == RN_KPROPS_CONSUMER)
            o = find_own(own_consumer, p->names[i]);
        if (!o && role == RN_KPROPS_SINK)
            o = find_own(own_sink, p->names[i]);
        if (o)
            return rn_seterr(err, "%s: set by the tool itself (%s)", o->name, o->why);
    }
    return 0;
}

int rn_kprops_apply(const rn_kprops *p, int role, struct rd_kafka_conf_s *conf, char *err)
{
    char e[512];
    if (rn_kprops_check(p, role, err) < 0)
        return RN_ERR;
    for (size_t i = 0; p && i < p->n; i++)
        if (rd_kafka_conf_set(conf, p->names[i], p->values[i], e, sizeof e)
            != RD_KAFKA_CONF_OK)
            return rn_seterr(err, "%s", e);
    return 0;
}

int rn_kprops_opt(rn_kprops **p, int opt, const char *arg, char *err)
{
    if (!*p && !(*p = rn_kprops_new())) {
        rn_seterr(err, "out of memory");
        return RN_ENOMEM;
    }
    return opt == 'F' ? rn_kprops_load(*p, arg, err) : rn_kprops_add(*p, arg, err);
}
