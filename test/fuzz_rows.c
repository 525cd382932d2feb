/* fuzz_rows.c -- libFuzzer target for the rows reader (topk's input: tsv,
 * json or frames rows and watermarks); not built by make (scripts/fuzz
 * builds it).
 *
 * The input is fed in two pieces cut where its first byte says. Whatever
 * the bytes, the reader must give rows, watermarks, or an error naming a
 * line or byte offset, and stop. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "window/window.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[RN_ERRLEN];
    if (size < 1)
        return 0;
    size_t cut = size > 1 ? data[0] % size : 0;
    rn_rowreader *r = rn_rowreader_new("fuzz");
    if (!r)
        abort();
    int rc = rn_rowreader_feed(r, data + 1, cut ? cut - 1 : 0, err);
    int fed_all = 0;
    for (int guard = 0; rc >= 0 && guard < 100000; guard++) {
        rn_row row;
        int64_t wm;
        rc = rn_rowreader_next(r, &row, &wm, err);
        if (rc == RN_ROWS_ROW && row.key.n > (1u << 26))
            abort();
        if (rc == 0) {
            if (fed_all == 2)
                break;
            if (fed_all == 0)
                rc = rn_rowreader_feed(r, data + (cut ? cut : 1), size - (cut ? cut : 1), err);
            else
                rn_rowreader_eof(r);
            fed_all++;
        }
    }
    if (rc == RN_ERR && !strstr(err, "line") && !strstr(err, "offset"))
        abort();            /* an error must say where */
    rn_rowreader_free(r);
    return 0;
}
