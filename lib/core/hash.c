/* hash.c -- the seed of the key hash; the hash itself is inline in core.h. */
#include <sys/random.h>
#include <unistd.h>

#include "core/core.h"

uint64_t rn_hash_seed(void)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s)
        s = (uint64_t)rn_mono_ns() ^ ((uint64_t)getpid() << 32);
    return rn_hash_mix(s ^ RN_HASH_P0, RN_HASH_P1);
}
