/* fuzz_batch.c -- libFuzzer target for an event batch body (rn_batch_each);
 * not built by make (scripts/fuzz builds it).
 *
 * The first 4 input bytes are the batch's event count, the rest its body.
 * Whatever the bytes, the walk must either fail with a byte offset or give
 * exactly count events, which, encoded again as frames, make the same body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static int again(void *arg, const rn_event *ev)
{
    return rn_encode_event(arg, RN_FMT_FRAMES, ev) < 0 ? -2 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[RN_ERRLEN];
    if (size < 4)
        return 0;
    uint32_t count = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16
                   | (uint32_t)data[2] << 8 | data[3];
    const char *body = (const char *)data + 4;
    size_t len = size - 4;
    rn_buf b = { 0 };
    size_t at = SIZE_MAX;
    int r = rn_batch_each(body, len, count, again, &b, &at, err);
    if (r == 0) {
        /* A valid body re-encodes to something valid of the same count. */
        if (rn_batch_each(b.p, b.len, count, NULL, NULL, NULL, err) != 0)
            abort();
    } else if (r == RN_ECORRUPT && at > len) {
        abort();
    }
    rn_buf_free(&b);
    return 0;
}
