/* ssebench.c -- the clients of scripts/bench-topk: open N Server-Sent Events
 * streams on a dashboard (GET /events) at once and, for every window event
 * each client receives, print when it came.
 *
 *   ssebench -c N -t SECONDS HOST:PORT
 *
 * stdout: "connected N" once every client has its response header, then a
 * line "CLIENT RECV_MS END" per window event (RECV_MS: ms since the epoch,
 * END: the window's "end" as the event's JSON has it). Exit status 1 when a
 * client cannot connect or its stream closes early. Not installed; no
 * librunnel: one thread, epoll, plain sockets. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct client {
    int fd, id, header;
    char buf[1 << 16];
    size_t len;
} client;

static void die(const char *what)
{
    fprintf(stderr, "ssebench: %s: %s\n", what, strerror(errno));
    exit(1);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Complete lines of c's buffer: the header's end, then "data:" lines. */
static void lines(client *c, int *connected)
{
    char *p = c->buf, *end = c->buf + c->len, *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        *nl = '\0';
        if (!c->header) {
            if (p[0] == '\r' || p[0] == '\0') {
                c->header = 1;
                (*connected)++;
            }
        } else if (strncmp(p, "data:", 5) == 0) {
            char *e = strstr(p, "\"end\":\"");
            if (e) {
                e += 7;
                char *q = strchr(e, '"');
                if (q)
                    printf("%d %lld %.*s\n", c->id, now_ms(), (int)(q - e), e);
            }
        }
        p = nl + 1;
    }
    c->len = (size_t)(end - p);
    memmove(c->buf, p, c->len);
}

int main(int argc, char **argv)
{
    int n = 200, secs = 30, opt;
    while ((opt = getopt(argc, argv, "c:t:")) != -1) {
        if (opt == 'c')
            n = atoi(optarg);
        else if (opt == 't')
            secs = atoi(optarg);
        else
            return 2;
    }
    if (optind != argc - 1 || n < 1) {
        fprintf(stderr, "usage: ssebench -c N -t SECONDS HOST:PORT\n");
        return 2;
    }
    char host[256];
    snprintf(host, sizeof host, "%s", argv[optind]);
    char *colon = strrchr(host, ':');
    if (!colon)
        return 2;
    *colon = '\0';
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return 2;

    int ep = epoll_create1(0);
    client *cs = calloc((size_t)n, sizeof *cs);
    if (ep < 0 || !cs)
        die("setup");
    static const char req[] = "GET /events HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n";
    for (int i = 0; i < n; i++) {
        client *c = &cs[i];
        c->id = i;
        if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
            die("socket");
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0)
            die("connect");
        if (write(c->fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
            die("write");
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }
    int connected = 0, told = 0;
    long long stop = now_ms() + secs * 1000LL;
    struct epoll_event evs[64];
    while (now_ms() < stop) {
        int k = epoll_wait(ep, evs, 64, 100);
        for (int i = 0; i < k; i++) {
            client *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, c->buf + c->len, sizeof c->buf - c->len - 1);
            if (r <= 0) {
                fprintf(stderr, "ssebench: client %d: stream closed\n", c->id);
                return 1;
            }
            c->len += (size_t)r;
            lines(c, &connected);
        }
        if (!told && connected == n) {
            printf("connected %d\n", n);
            told = 1;
        }
        fflush(stdout);
    }
    return told ? 0 : 1;
}
