/*
 * be.h — big-endian integers in byte buffers (keys, counters, the log's
 * framing), loaded and stored whole.
 *
 * A loop of byte shifts is what C says; gcc 12 at -O2 left it a loop (in
 * the writer's counter adds, 4.5% of its profile with 1,000 members:
 * docs/performance.md, twenty-eighth session). memcpy of the whole word and
 * one byte swap on a little-endian host say the same in one load. Any
 * alignment; the bytes are the same on every host.
 */
#ifndef YONGJIN_BE_H
#define YONGJIN_BE_H

#include <stdint.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define YJ_BE64(x) __builtin_bswap64(x)
#define YJ_BE32(x) __builtin_bswap32(x)
#elif defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define YJ_BE64(x) (x)
#define YJ_BE32(x) (x)
#else
#error "yongjin needs the compiler's __BYTE_ORDER__ (gcc or clang)"
#endif

static inline uint64_t yj_load_be64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return YJ_BE64(v);
}

static inline void yj_store_be64(uint8_t *p, uint64_t v)
{
    v = YJ_BE64(v);
    memcpy(p, &v, 8);
}

static inline uint32_t yj_load_be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return YJ_BE32(v);
}

static inline void yj_store_be32(uint8_t *p, uint32_t v)
{
    v = YJ_BE32(v);
    memcpy(p, &v, 4);
}

#endif
