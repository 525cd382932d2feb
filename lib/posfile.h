/* posfile.h -- logtail's position file: how far each followed file has been
 * read and written out, keyed by file identity, saved atomically.
 *
 * A file's identity is its device and inode plus a fingerprint of its first
 * bytes (up to RN_FP_MAX): an inode number the filesystem hands out again after
 * a delete is then not mistaken for the old file, and a file truncated and
 * rewritten in place (copytruncate) is noticed as new.
 *
 * Format (text, one entry a line, versioned by its first line):
 *     runnel-pos 1
 *     DEV INO FPLEN FPHASH OFFSET PATH
 * PATH is informative (where the file was last seen) and %XX-escapes bytes
 * <= 0x20, '%' and 0x7f. Saving writes a temporary file in the same
 * directory, fsyncs it, renames it over the old one and fsyncs the directory,
 * so a crash at any moment leaves either the old or the new positions. */
#ifndef RN_POSFILE_H
#define RN_POSFILE_H

#include <stddef.h>
#include <stdint.h>

#define RN_FP_MAX 256

typedef struct rn_fileid {
    uint64_t dev, ino;
    uint32_t fplen;     /* how many leading bytes the fingerprint covers */
    uint64_t fphash;    /* FNV-1a of those bytes */
} rn_fileid;

typedef struct rn_posentry {
    rn_fileid id;
    uint64_t offset;
    char *path;         /* owned by the entry set it belongs to */
} rn_posentry;

typedef struct rn_posfile {
    size_t n, cap;
    rn_posentry *e;
} rn_posfile;

/* Identity of an open file: fstat plus a fingerprint of min(size, RN_FP_MAX)
 * leading bytes. */
int rn_fileid_of(int fd, rn_fileid *id, char *err);

/* 1 when fd is the file id describes (same dev/ino and the same leading
 * fplen bytes), 0 when not, -1 on a read error. */
int rn_fileid_match(const rn_fileid *id, int fd, char *err);

/* Load path into pf (zero-initialised). A missing file is an empty set; a
 * malformed one is an error naming the line. */
int rn_posfile_load(rn_posfile *pf, const char *path, char *err);

/* The entry for (dev, ino), or NULL. */
rn_posentry *rn_posfile_find(rn_posfile *pf, uint64_t dev, uint64_t ino);

/* Add an entry (path copied). -1 when out of memory. */
int rn_posfile_add(rn_posfile *pf, const rn_fileid *id, uint64_t offset,
                   const char *path);

/* Atomically replace path with the entries of pf. */
int rn_posfile_save(const rn_posfile *pf, const char *path, char *err);

void rn_posfile_clear(rn_posfile *pf);   /* drop entries, keep the allocation */
void rn_posfile_free(rn_posfile *pf);

#endif
