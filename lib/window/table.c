/* table.c -- the open-addressing hash table of keys that winagg's slices and
 * running window are made of (see window_int.h for how it is laid out). */
#include <stdlib.h>
#include <string.h>

#include "window/window_int.h"

static size_t slots_for(size_t n)
{
    size_t cap = 16;
    while (cap / 10 * 7 < n && cap < ((size_t)1 << 32))
        cap <<= 1;
    return cap;
}

int rn_wtab__init(rn_wtab *t, size_t esz, size_t hint_n, size_t hint_k)
{
    memset(t, 0, sizeof *t);
    t->esz = esz;
    size_t cap = slots_for(hint_n);
    t->ecap = hint_n > 8 ? hint_n : 8;
    t->kcap = hint_k > 64 ? hint_k : 64;
    t->slot = calloc(cap, sizeof *t->slot);
    t->ent = malloc(t->ecap * esz);
    t->key = malloc(t->kcap);
    if (!t->slot || !t->ent || !t->key) {
        free(t->slot);
        free(t->ent);
        free(t->key);
        memset(t, 0, sizeof *t);
        return -1;
    }
    t->mask = cap - 1;
    return 0;
}

void rn_wtab__free(rn_wtab *t)
{
    free(t->slot);
    free(t->ent);
    free(t->key);
    memset(t, 0, sizeof *t);
}

void rn_wtab__reset(rn_wtab *t)
{
    size_t want = slots_for(t->n);
    if (want * 4 < t->mask + 1) {
        uint64_t *s = calloc(want, sizeof *s);
        if (s) {
            free(t->slot);
            t->slot = s;
            t->mask = want - 1;
        }
    }
    memset(t->slot, 0, (t->mask + 1) * sizeof *t->slot);
    t->n = t->klen = t->kdead = 0;
}

int rn_wtab__grow(rn_wtab *t)
{
    size_t cap = (t->mask + 1) * 2, m = cap - 1;
    uint64_t *s = calloc(cap, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i <= t->mask; i++) {
        uint64_t v = t->slot[i];
        if (!v)
            continue;
        size_t j = (v >> 32) & m;
        while (s[j])
            j = (j + 1) & m;
        s[j] = v;
    }
    free(t->slot);
    t->slot = s;
    t->mask = m;
    return 0;
}

size_t rn_wtab__insert(rn_wtab *t, size_t pos, uint32_t h, const char *key, size_t klen)
{
    if (t->n == t->ecap) {
        size_t cap = t->ecap * 2;
        char *e = realloc(t->ent, cap * t->esz);
        if (!e)
            return RN_WTAB_NONE;
        t->ent = e;
        t->ecap = cap;
    }
    rn_wtab_ent *e = rn_wtab__ent(t, t->n);
    memset(e, 0, t->esz);
    e->hash = h;
    e->klen = (uint32_t)klen;
    if (klen <= RN_WTAB_INLINE) {
        if (klen)
            memcpy(e->k.kin, key, klen);
        t->slot[pos] = ((uint64_t)h << 32) | (uint64_t)(t->n + 1);
        return t->n++;
    }
    if (klen > t->kcap - t->klen) {
        size_t cap = t->kcap * 2;
        while (cap - t->klen < klen)
            cap *= 2;
        char *k = realloc(t->key, cap);
        if (!k)
            return RN_WTAB_NONE;
        t->key = k;
        t->kcap = cap;
    }
    memcpy(t->key + t->klen, key, klen);
    e->k.koff = t->klen;
    t->klen += klen;
    t->slot[pos] = ((uint64_t)h << 32) | (uint64_t)(t->n + 1);
    return t->n++;
}

static size_t slot_of(const rn_wtab *t, size_t idx)
{
    size_t i = rn_wtab__ent(t, idx)->hash & t->mask;
    while ((uint32_t)t->slot[i] != idx + 1)
        i = (i + 1) & t->mask;
    return i;
}

void rn_wtab__delete(rn_wtab *t, size_t idx)
{
    size_t i = slot_of(t, idx), j = i;
    for (;;) {
        j = (j + 1) & t->mask;
        uint64_t v = t->slot[j];
        if (!v)
            break;
        /* v may fill the hole at i unless its home is cyclically in (i, j]. */
        size_t home = (v >> 32) & t->mask;
        int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->slot[i] = v;
            i = j;
        }
    }
    t->slot[i] = 0;
    rn_wtab_ent *e = rn_wtab__ent(t, idx);
    if (e->klen > RN_WTAB_INLINE)
        t->kdead += e->klen;
    size_t last = t->n - 1;
    if (idx != last) {
        size_t s = slot_of(t, last);
        t->slot[s] = (t->slot[s] & RN_WTAB_TAGMASK) | (uint64_t)(idx + 1);
        memcpy(e, rn_wtab__ent(t, last), t->esz);
    }
    t->n--;
}

void rn_wtab__compact_keys(rn_wtab *t)
{
    if (t->kdead < 4096 || t->kdead * 2 < t->klen)
        return;
    size_t live = t->klen - t->kdead, cap = live > 64 ? live : 64;
    char *k = malloc(cap);
    if (!k)
        return;         /* keep the old arena; it still works */
    size_t off = 0;
    for (size_t i = 0; i < t->n; i++) {
        rn_wtab_ent *e = rn_wtab__ent(t, i);
        if (e->klen <= RN_WTAB_INLINE)
            continue;
        memcpy(k + off, t->key + e->k.koff, e->klen);
        e->k.koff = off;
        off += e->klen;
    }
    free(t->key);
    t->key = k;
    t->kcap = cap;
    t->klen = off;
    t->kdead = 0;
}
