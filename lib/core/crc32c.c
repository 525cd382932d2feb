/* crc32c.c -- CRC-32C: SSE4.2 instruction when present (three streams at a
 * time over large buffers), slicing-by-8 otherwise. */
#include "core/core.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define POLY 0x82F63B78u   /* Castagnoli, bit-reversed */

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void make_table(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

uint32_t rn_crc32c_sw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    pthread_once(&table_once, make_table);
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        /* Little-endian word order is what the tables assume; the byte
         * loads keep it right on any host. */
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 |
                             (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        crc = table[7][lo & 0xff] ^ table[6][(lo >> 8) & 0xff] ^
              table[5][(lo >> 16) & 0xff] ^ table[4][lo >> 24] ^
              table[3][p[4]] ^ table[2][p[5]] ^ table[1][p[6]] ^ table[0][p[7]];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

#if defined(__x86_64__)
/* The crc32 instruction takes 3 cycles and can start one every cycle: one
 * chain of them runs at a third of the speed the unit allows. Over a large
 * buffer three chains run side by side, over three blocks of LANE bytes,
 * and are joined. The register after a block is linear in the register
 * before it: crc(s, block) = s * x^(8 LANE) mod P ^ crc(0, block). So the
 * second and third chains start from 0 and are joined as
 * ((a * X) ^ b) * X ^ c, with X = x^(8 LANE) mod P. Multiplying by the
 * constant X is linear too: four table lookups, one per byte. */
#define LANE 8192                   /* 8 * LANE = 2^16: X is x^1 squared 16 times */

static uint32_t shift_tab[4][256];  /* s * X mod P, by the bytes of s */
static pthread_once_t shift_once = PTHREAD_ONCE_INIT;

/* a * b mod P, bit-reversed as the CRC is (bit 31 holds x^0). */
static uint32_t mulmod(uint32_t a, uint32_t b)
{
    uint32_t r = 0;
    for (int i = 0; i < 32; i++) {
        if (a & (0x80000000u >> i))
            r ^= b;
        b = (b & 1) ? (b >> 1) ^ POLY : b >> 1;     /* b * x */
    }
    return r;
}

static void make_shift(void)
{
    uint32_t x = 0x40000000u;       /* x^1 */
    for (int i = 0; i < 16; i++)
        x = mulmod(x, x);
    for (int k = 0; k < 4; k++)
        for (uint32_t v = 0; v < 256; v++)
            shift_tab[k][v] = mulmod(x, v << (8 * k));
}

static inline uint32_t shift_lane(uint32_t s)
{
    return shift_tab[0][s & 0xff] ^ shift_tab[1][(s >> 8) & 0xff] ^
           shift_tab[2][(s >> 16) & 0xff] ^ shift_tab[3][s >> 24];
}

__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = _mm_crc32_u8((uint32_t)c, *p++);
        n--;
    }
    if (n >= 3 * LANE)
        pthread_once(&shift_once, make_shift);
    while (n >= 3 * LANE) {
        uint64_t a = c, b = 0, d = 0;
        for (size_t i = 0; i < LANE; i += 8) {
            uint64_t va, vb, vd;
            memcpy(&va, p + i, 8);
            memcpy(&vb, p + LANE + i, 8);
            memcpy(&vd, p + 2 * LANE + i, 8);
            a = _mm_crc32_u64(a, va);
            b = _mm_crc32_u64(b, vb);
            d = _mm_crc32_u64(d, vd);
        }
        c = shift_lane(shift_lane((uint32_t)a) ^ (uint32_t)b) ^ (uint32_t)d;
        p += 3 * LANE;
        n -= 3 * LANE;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = _mm_crc32_u64(c, v);
        p += 8;
        n -= 8;
    }
    while (n--)
        c = _mm_crc32_u8((uint32_t)c, *p++);
    return ~(uint32_t)c;
}

static int have_hw(void)
{
    /* Cached: __builtin_cpu_supports is cheap but not free on every batch.
     * Atomic because threads may race to fill it (with the same answer). */
    static int have = -1;
    int h = __atomic_load_n(&have, __ATOMIC_RELAXED);
    if (h < 0) {
        __builtin_cpu_init();
        h = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        __atomic_store_n(&have, h, __ATOMIC_RELAXED);
    }
    return h;
}
#endif

uint32_t rn_crc32c(uint32_t crc, const void *p, size_t n)
{
#if defined(__x86_64__)
    if (have_hw())
        return crc_hw(crc, p, n);
#endif
    return rn_crc32c_sw(crc, p, n);
}
