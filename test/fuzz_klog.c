/* fuzz_klog.c -- libFuzzer target for the validation of a produced
 * RecordBatch (rn_klog_append); not built by make (scripts/fuzz builds it).
 *
 * The input is one batch. Its batchLength, magic and CRC-32C are set from
 * the input before the append, so that the fuzzer's bytes reach the checks
 * behind the checksum: attributes, counts, offset deltas, record lengths,
 * and the decoders of gzip, snappy (raw and xerial), lz4 and zstd (scripts/fuzz
 * seeds a good batch of each). Whatever the bytes, the append must either
 * refuse the batch (RN_ECORRUPT) and leave the log as it was, or take it
 * whole: the log's end moves by lastOffsetDelta + 1 and reading it back gives
 * the batch. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/broker.h"
#include "core/core.h"

static rn_klog *klog;
static unsigned long runs;

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[RN_ERRLEN];
    if (size < RN_KLOG_BATCH_HEADER || size > (1u << 20))
        return 0;
    if (!klog) {
        char dir[] = "/tmp/fuzz_klog.XXXXXX";
        rn_klog_opts o = { .segment_bytes = 1 << 20, .retention_bytes = 32 << 20,
                           .max_inflated = 16 << 20 };
        if (!mkdtemp(dir) || rn_klog_open(dir, &o, &klog, err) < 0) {
            fprintf(stderr, "fuzz_klog: %s\n", err);
            abort();
        }
    }
    unsigned char *b = malloc(size);
    memcpy(b, data, size);
    put32(b + 8, (uint32_t)(size - 12));            /* batchLength */
    b[16] = 2;                                      /* magic */
    put32(b + 17, rn_crc32c(0, b + 21, size - 21)); /* CRC of attributes.. */
    int32_t last_delta = (int32_t)get32(b + 23);
    int64_t end = rn_klog_end(klog), base;
    int r = rn_klog_append(klog, b, size, 0, &base, err);
    if (r == 0) {
        if (base != end || rn_klog_end(klog) != end + (int64_t)last_delta + 1)
            abort();
        rn_klog_slice s;
        if (rn_klog_read(klog, base, size, &s, err) < 0 || s.len < size)
            abort();
        unsigned char *back = malloc(size);
        if (pread(s.fd, back, size, (off_t)s.pos) != (ssize_t)size || memcmp(back, b, size) != 0)
            abort();
        free(back);
    } else if (r != RN_ECORRUPT || rn_klog_end(klog) != end) {
        abort();
    }
    free(b);
    if (++runs % 1000 == 0 && rn_klog_maintain(klog, 0, err) < 0)   /* a bounded disk */
        abort();
    return 0;
}
