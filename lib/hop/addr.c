/* addr.c -- hop addresses: "tcp://HOST:PORT,...?mode=" URLs and HOST:PORT
 * parsing, the names warnings give to addresses, and the resolution of a
 * listener's address. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>

#include "hop/hop_int.h"

static int host_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9')
        || ch == '.' || ch == '-' || ch == '_';
}

/* s[0..n) as HOST:PORT into t; what is wrong into why (RN_ERRLEN). */
static int parse_hostport(const char *s, size_t n, rn_hop_target *t, int port0_ok, char *why)
{
    const char *host, *port;
    size_t hn, pn;
    char tmp[64];

    memset(t, 0, sizeof *t);
    if (n == 0)
        return rn_seterr(why, "missing host and port");
    if (s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close)
            return rn_seterr(why, "missing ']' after the IPv6 address");
        host = s + 1;
        hn = (size_t)(close - host);
        if (hn == 0)
            return rn_seterr(why, "missing host");
        if (hn >= sizeof tmp)
            return rn_seterr(why, "bad IPv6 address '%.*s'", (int)hn, host);
        memcpy(tmp, host, hn);
        tmp[hn] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1)
            return rn_seterr(why, "bad IPv6 address '%s'", tmp);
        if ((size_t)(close + 1 - s) == n || close[1] != ':')
            return rn_seterr(why, (size_t)(close + 1 - s) == n ? "missing port"
                                  : "junk after the IPv6 address (expected ':PORT')");
        port = close + 2;
    } else {
        const char *colon = NULL;
        for (size_t i = n; i > 0; i--) {
            if (s[i - 1] == ':') {
                colon = s + i - 1;
                break;
            }
        }
        if (!colon)
            return rn_seterr(why, "missing port");
        host = s;
        hn = (size_t)(colon - s);
        if (memchr(host, ':', hn))
            return rn_seterr(why, "an IPv6 address must be in brackets, as in [::1]:4141");
        if (hn == 0)
            return rn_seterr(why, "missing host");
        if (hn >= sizeof t->host)
            return rn_seterr(why, "host name of %zu bytes is too long", hn);
        int numeric = 1;
        for (size_t i = 0; i < hn; i++) {
            if (!host_char(host[i]))
                return rn_seterr(why, "bad host name '%.*s'", (int)hn, host);
            if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
                numeric = 0;
        }
        if (numeric) {
            struct in_addr a4;
            memcpy(t->host, host, hn);
            if (inet_pton(AF_INET, t->host, &a4) != 1)
                return rn_seterr(why, "bad IPv4 address '%.*s'", (int)hn, host);
        }
        port = colon + 1;
    }
    pn = (size_t)(s + n - port);
    if (pn == 0)
        return rn_seterr(why, "missing port");
    unsigned long v = 0;
    for (size_t i = 0; i < pn; i++) {
        if (port[i] < '0' || port[i] > '9' || pn > 5)
            return rn_seterr(why, "bad port '%.*s'", (int)pn, port);
        v = v * 10 + (unsigned long)(port[i] - '0');
    }
    if (v > 65535)
        return rn_seterr(why, "port %lu is above 65535", v);
    if (v == 0 && !port0_ok)
        return rn_seterr(why, "port 0 is not a receiver's port");
    memcpy(t->host, host, hn);
    t->host[hn] = '\0';
    t->port = (int)v;
    return 0;
}

int rn_hop_addr_parse(const char *s, rn_hop_target *t, char *err)
{
    char why[RN_ERRLEN];

    if (parse_hostport(s, strlen(s), t, 1, why) < 0)
        return rn_seterr(err, "%s: %s", s, why);
    return 0;
}

int rn_hop_url_parse(const char *url, rn_hop_url *u, char *err)
{
    static const char scheme[] = "tcp://";
    char why[RN_ERRLEN];

    memset(u, 0, sizeof *u);
    if (strncmp(url, scheme, sizeof scheme - 1) != 0)
        return rn_seterr(err, "%s: not a tcp:// URL (expected tcp://HOST:PORT)", url);
    const char *p = url + sizeof scheme - 1;
    const char *q = strchr(p, '?');
    const char *end = q ? q : p + strlen(p);

    if (p == end)
        return rn_seterr(err, "%s: no receiver (expected tcp://HOST:PORT)", url);
    int several = memchr(p, ',', (size_t)(end - p)) != NULL;
    while (p <= end) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *e = comma ? comma : end;
        if (u->n == RN_HOP_MAX_TARGETS)
            return rn_seterr(err, "%s: more than %d receivers", url, RN_HOP_MAX_TARGETS);
        if (parse_hostport(p, (size_t)(e - p), &u->t[u->n], 0, why) < 0) {
            if (several)
                return rn_seterr(err, "%s: receiver %zu '%.*s': %s", url, u->n + 1,
                                 (int)(e - p), p, why);
            return rn_seterr(err, "%s: %s", url, why);
        }
        u->n++;
        p = e + 1;
    }
    if (!q)
        return 0;
    for (p = q + 1; *p;) {
        size_t n = strcspn(p, "&");
        const char *eq = memchr(p, '=', n);
        size_t kn = eq ? (size_t)(eq - p) : n;
        if (kn == 4 && memcmp(p, "mode", 4) == 0 && eq) {
            const char *v = eq + 1;
            size_t vn = n - kn - 1;
            if (vn == 8 && memcmp(v, "failover", 8) == 0)
                u->balance = 0;
            else if (vn == 7 && memcmp(v, "balance", 7) == 0)
                u->balance = 1;
            else
                return rn_seterr(err, "%s: unknown mode '%.*s' (use failover or balance)",
                                 url, (int)vn, v);
        } else {
            return rn_seterr(err, "%s: unknown parameter '%.*s' (only mode= is known)",
                             url, (int)n, p);
        }
        p += n;
        if (*p == '&')
            p++;
    }
    return 0;
}

/* "1.2.3.4:5" or "[::1]:5" of a socket address. */
void rn_hop_sockaddr_name(const struct sockaddr *sa, char *out, size_t n)
{
    char ip[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)sa;
        uv_ip6_name(a, ip, sizeof ip);
        snprintf(out, n, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
        uv_ip4_name(a, ip, sizeof ip);
        snprintf(out, n, "%s:%d", ip, ntohs(a->sin_port));
    }
}

void rn_hop__target_name(const rn_hop_target *t, char *out, size_t n)
{
    if (strchr(t->host, ':'))
        snprintf(out, n, "[%s]:%d", t->host, t->port);
    else
        snprintf(out, n, "%s:%d", t->host, t->port);
}

/* An IP literal straight into ss; 0 when host is a name. */
int rn_hop__ip_literal(const rn_hop_target *t, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (uv_ip4_addr(t->host, t->port, (struct sockaddr_in *)ss) == 0)
        return 1;
    if (uv_ip6_addr(t->host, t->port, (struct sockaddr_in6 *)ss) == 0)
        return 1;
    return 0;
}

/* The listener's address: an IP literal, or a name resolved here, once, at
 * start-up (blocking is harmless then). */
int rn_hop_listen_addr(uv_loop_t *loop, const rn_hop_target *t,
                       struct sockaddr_storage *ss, char *err)
{
    struct addrinfo hints, *ai;
    uv_getaddrinfo_t req;
    char port[8];

    if (rn_hop__ip_literal(t, ss))
        return 0;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(port, sizeof port, "%d", t->port);
    int r = uv_getaddrinfo(loop, &req, NULL, t->host, port, &hints);
    if (r < 0)
        return rn_seterr(err, "%s: %s", t->host, uv_strerror(r));
    ai = req.addrinfo;
    if (!ai || ai->ai_addrlen > sizeof *ss) {
        uv_freeaddrinfo(ai);
        return rn_seterr(err, "%s: no address", t->host);
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    uv_freeaddrinfo(ai);
    return 0;
}
