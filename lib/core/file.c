/* file.c -- files that must survive a crash: durable replace, whole reads and
 * writes, a read window for scans, and the listing of numbered segments. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/core.h"

/* ---- whole reads and writes ------------------------------------------- */

int rn_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return RN_ERR;
        }
        if (r == 0)
            return RN_ESHORT;
        got += (size_t)r;
    }
    return 0;
}

/* Move *iov (n entries) past r bytes written; the entries left. */
static int iov_advance(struct iovec **iov, int n, size_t r)
{
    struct iovec *v = *iov;
    while (n > 0 && r >= v->iov_len) {
        r -= v->iov_len;
        v++;
        n--;
    }
    if (n > 0) {
        v->iov_base = (char *)v->iov_base + r;
        v->iov_len -= r;
    }
    *iov = v;
    return n;
}

/* The one loop behind the whole writes: at off, or (off < 0) at the file
 * position; EINTR and short writes go on. */
static int writev_whole(int fd, struct iovec *iov, int n, int64_t off)
{
    while (n > 0) {
        ssize_t r = off < 0 ? writev(fd, iov, n) : pwritev(fd, iov, n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return RN_ERR;
        }
        if (off >= 0)
            off += r;
        n = iov_advance(&iov, n, (size_t)r);
    }
    return 0;
}

int rn_write_all(int fd, const void *buf, size_t len)
{
    struct iovec v = { (void *)buf, len };
    return writev_whole(fd, &v, len > 0, -1);
}

int rn_writev_all(int fd, struct iovec *iov, int n)
{
    return writev_whole(fd, iov, n, -1);
}

int rn_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
    struct iovec v = { (void *)buf, n };
    return writev_whole(fd, &v, n > 0, (int64_t)off);
}

int rn_pwritev_full(int fd, struct iovec *iov, int n, uint64_t off)
{
    return writev_whole(fd, iov, n, (int64_t)off);
}

const char *rn_io_strerror(int r)
{
    return r == RN_ESHORT ? "file too short" : strerror(errno);
}

/* ---- read window -------------------------------------------------------- */

void rn_rd_init(rn_rd *r, int fd, uint64_t end, unsigned char *buf, size_t cap)
{
    r->fd = fd;
    r->end = end;
    r->buf = buf;
    r->cap = cap;
    r->at = 0;
    r->len = 0;
}

int rn_rd_get(rn_rd *r, uint64_t off, size_t n, const unsigned char **p)
{
    if (off < r->at || off + n > r->at + r->len) {
        size_t want = r->end - off < r->cap ? (size_t)(r->end - off) : r->cap;
        int e = rn_pread_full(r->fd, r->buf, want, off);
        if (e < 0)
            return e;
        r->at = off;
        r->len = want;
    }
    *p = r->buf + (off - r->at);
    return 0;
}

/* ---- durable replace ---------------------------------------------------- */

/* "dir/name" for messages (name alone without dir). */
static const char *shown(const rn_afile *f, const char *name, char *out, size_t n)
{
    if (!f->dir)
        return name;
    snprintf(out, n, "%s/%s", f->dir, name);
    return out;
}

int rn_afile_open(rn_afile *f, int dirfd, const char *dir, const char *name,
                  const char *tmpname, char *err)
{
    f->fd = -1;
    f->dirfd = dirfd;
    f->dir = dir;
    int n = snprintf(f->name, sizeof f->name, "%s", name);
    int m = tmpname ? snprintf(f->tmp, sizeof f->tmp, "%s", tmpname)
                    : snprintf(f->tmp, sizeof f->tmp, "%s.tmp", name);
    if (n < 0 || m < 0 || (size_t)n >= sizeof f->name || (size_t)m >= sizeof f->tmp)
        return rn_seterr(err, "%.64s...: path too long", name);
    f->fd = openat(dirfd, f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (f->fd < 0) {
        char b[sizeof f->tmp + 4096];
        return rn_seterr(err, "%s: %s", shown(f, f->tmp, b, sizeof b), strerror(errno));
    }
    return 0;
}

int rn_afile_write(rn_afile *f, const void *p, size_t n, char *err)
{
    if (rn_write_all(f->fd, p, n) < 0) {
        char b[sizeof f->tmp + 4096];
        return rn_seterr(err, "%s: write: %s", shown(f, f->tmp, b, sizeof b), strerror(errno));
    }
    return 0;
}

void rn_afile_abort(rn_afile *f)
{
    if (f->fd >= 0) {
        close(f->fd);
        unlinkat(f->dirfd, f->tmp, 0);
    }
    f->fd = -1;
}

int rn_fsync_dir(int dirfd, const char *path, char *err)
{
    if (dirfd != AT_FDCWD)
        return fsync(dirfd) < 0 ? rn_seterr(err, "%s: fsync: %s", path ? path : "directory",
                                            strerror(errno)) : 0;
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    const char *dir = dirname(buf);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return rn_seterr(err, "%s: %s", dir, strerror(errno));
    int r = fsync(fd);
    int e = errno;
    close(fd);
    return r < 0 ? rn_seterr(err, "%s: fsync: %s", dir, strerror(e)) : 0;
}

int rn_afile_commit(rn_afile *f, int sync, char *err)
{
    char b[sizeof f->tmp + 4096];
    if (sync && fsync(f->fd) < 0) {
        rn_seterr(err, "%s: fsync: %s", shown(f, f->tmp, b, sizeof b), strerror(errno));
        rn_afile_abort(f);
        return RN_ERR;
    }
    int r = close(f->fd);
    f->fd = -1;
    if (r < 0) {
        rn_seterr(err, "%s: close: %s", shown(f, f->tmp, b, sizeof b), strerror(errno));
        unlinkat(f->dirfd, f->tmp, 0);
        return RN_ERR;
    }
    if (renameat(f->dirfd, f->tmp, f->dirfd, f->name) < 0) {
        rn_seterr(err, "%s: rename: %s", shown(f, f->name, b, sizeof b), strerror(errno));
        unlinkat(f->dirfd, f->tmp, 0);
        return RN_ERR;
    }
    /* The rename is durable only once the directory is. */
    if (!sync)
        return 0;
    return rn_fsync_dir(f->dirfd, f->dirfd == AT_FDCWD ? f->name : f->dir, err);
}

int rn_file_replace(int dirfd, const char *dir, const char *name, const void *p, size_t n,
                    int sync, char *err)
{
    rn_afile f;
    if (rn_afile_open(&f, dirfd, dir, name, NULL, err) < 0)
        return RN_ERR;
    if (rn_afile_write(&f, p, n, err) < 0) {
        rn_afile_abort(&f);
        return RN_ERR;
    }
    return rn_afile_commit(&f, sync, err);
}

/* ---- directories -------------------------------------------------------- */

int rn_mkdir_p(const char *dir, char *err)
{
    char p[4096];
    if (snprintf(p, sizeof p, "%s", dir) >= (int)sizeof p)
        return rn_seterr(err, "%s: path too long", dir);
    for (char *s = p + 1; ; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0755) < 0 && errno != EEXIST)
                return rn_seterr(err, "mkdir %s: %s", p, strerror(errno));
            *s = c;
            if (!c)
                break;
        }
    }
    return 0;
}

int rn_seg_name_parse(const char *name, const char *prefix, const char *ext, uint64_t *v)
{
    size_t pl = strlen(prefix);
    uint64_t x = 0;
    if (strncmp(name, prefix, pl) != 0)
        return RN_ERR;
    name += pl;
    for (int i = 0; i < 20; i++) {
        uint64_t d = (uint64_t)(name[i] - '0');
        if (name[i] < '0' || name[i] > '9' || x > (UINT64_MAX - d) / 10)
            return RN_ERR;
        x = x * 10 + d;
    }
    if (strcmp(name + 20, ext) != 0)
        return RN_ERR;
    *v = x;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int rn_seg_list(int dirfd, const char *dir, const char *prefix, const char *ext,
                uint64_t **bases, size_t *nb,
                void (*other)(void *arg, const char *name), void *arg, char *err)
{
    int dfd = dup(dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    uint64_t *b = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return rn_seterr(err, "%s: %s", dir, strerror(errno));
    }
    while ((de = readdir(d)) != NULL) {
        uint64_t v;
        if (rn_seg_name_parse(de->d_name, prefix, ext, &v) < 0) {
            if (other && strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                other(arg, de->d_name);
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            uint64_t *nbp = realloc(b, cap * sizeof *b);
            if (!nbp) {
                free(b);
                closedir(d);
                return rn_seterr(err, "%s: out of memory", dir);
            }
            b = nbp;
        }
        b[n++] = v;
    }
    closedir(d);
    if (n)
        qsort(b, n, sizeof *b, cmp_u64);
    *bases = b;
    *nb = n;
    return 0;
}
