/* A string hash for balloon-sim's hash tables and for seeding each guest's workload from its name:
 * 64-bit FNV-1a, the same value in every run and on every machine. Pure. */
#ifndef VB_HASH_H
#define VB_HASH_H

#include <stdint.h>

static inline uint64_t vb_hash_string(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        h = (h ^ *p) * UINT64_C(1099511628211);
    return h;
}

#endif
