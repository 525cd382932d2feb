/* crc32c.h -- CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2. */
#ifndef RN_CRC32C_H
#define RN_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continue a CRC-32C over n more bytes. Start with crc = 0; the pre- and
 * post-inversion happen inside, so rn_crc32c(rn_crc32c(0, a, n), b, m) is the
 * CRC of a followed by b (like zlib's crc32()). "123456789" gives 0xE3069283.
 * Uses the SSE4.2 crc32 instruction when the CPU has it, else slicing-by-8. */
uint32_t rn_crc32c(uint32_t crc, const void *p, size_t n);

/* The portable slicing-by-8 path alone, so tests can compare both. */
uint32_t rn_crc32c_sw(uint32_t crc, const void *p, size_t n);

#endif
