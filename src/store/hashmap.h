/*
 * hashmap.h — an unordered map of byte keys to byte values, with
 * tombstones: the writer's cache of derived state (store.c, view.c), read
 * and written tens of times per order over up to millions of keys. Unlike
 * memmap.h it keeps no order (nothing iterates it), so a new key costs one
 * slot and one block, not a B+tree descent.
 *
 * Keys are 1..YJ_HASHMAP_KEY_MAX bytes and may hold zero bytes; values
 * 0..YJ_HASHMAP_VAL_MAX bytes. A tombstone is an entry that says "deleted"
 * (yj_hashmap_get answers 2 for it).
 *
 * Ownership: the map copies every key and value it is given. A pointer
 * yj_hashmap_get or yj_hashmap_ref hands out points into the map, is
 * aligned to 8 bytes, and stays valid until that same key is put again,
 * or the map is cleared or freed. A put of a different key never moves nor
 * frees another key's bytes (the slots move when the table grows; the
 * entries they point to do not).
 *
 * The hash is keyed by a seed the caller gives (the store draws one at
 * random per process): keys a client chooses cannot be made to collide on
 * purpose, and since nothing iterates the map, its layout changes no
 * answer.
 *
 * Threads: none inside; functions taking a const map only read it.
 *
 * Errors: -1 only for ENOMEM, and then the map's entries are as they were
 * (a step of a growth may have been taken, so yj_hashmap_bytes can be
 * smaller: see hashmap.c). Broken preconditions (NULL map, key length 0
 * or above the limit) assert.
 *
 * The design (hashmap.c): open addressing with linear probing over 16-byte
 * slots (the key's 64-bit hash beside the entry's pointer, so a probe
 * reads one cache line for both), at most half full, grown a step per put
 * (no put waits for a whole table to be copied; the next table is made
 * ahead and zeroed a page per put, so a growth hands no probe untouched
 * memory); one heap block per entry (header, key, value: a probe's compare
 * reads the header's cache line).
 */
#ifndef YONGJIN_STORE_HASHMAP_H
#define YONGJIN_STORE_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

#define YJ_HASHMAP_KEY_MAX 65535
#define YJ_HASHMAP_VAL_MAX ((size_t)16 << 20)

typedef struct yj_hashmap yj_hashmap;

/* An empty map whose hash is keyed by seed, or NULL on ENOMEM. Free it
 * with yj_hashmap_free. */
yj_hashmap *yj_hashmap_new(uint64_t seed);

/* Frees the map and every entry in it. NULL is allowed. */
void yj_hashmap_free(yj_hashmap *m);

/* Removes every entry and gives the table's memory back; the map stays
 * usable. */
void yj_hashmap_clear(yj_hashmap *m);

/* Frees up to n of the map's entries, then, once none is left, the map
 * itself: returns 1 when the map is gone, 0 when entries are left (call
 * again). After the first call the map may only be given to this
 * function (or yj_hashmap_free): a large map is freed a step at a time
 * by a thread that cannot stop for it all at once. */
int yj_hashmap_free_some(yj_hashmap *m, size_t n);

/* Sets key -> value, copying both; tomb = 1 records a tombstone instead (val
 * and vlen ignored, may be NULL/0). Replaces the key's entry if it has one
 * (a value of the same size is rewritten in place; val may point into the
 * map itself). Returns 0, or -1 on ENOMEM with the map unchanged. */
int yj_hashmap_put(yj_hashmap *m, const void *key, size_t klen, const void *val, size_t vlen, int tomb);

/* Loads ahead, without waiting for it, what a lookup of key will read:
 * entry 0 the key's home slot; entry 1 the entry that slot points to, when
 * it is the key's (call with 0 first, for a batch of keys, then with 1:
 * their loads overlap instead of following one another). Changes nothing,
 * answers nothing. */
void yj_hashmap_prefetch(const yj_hashmap *m, const void *key, size_t klen, int entry);

/* Exact lookup: 0 absent, 1 found a value (*val, *vlen set; *val is never
 * NULL, even for an empty value), 2 found a tombstone (*val NULL, *vlen
 * 0). val and vlen may be NULL when not wanted. */
int yj_hashmap_get(const yj_hashmap *m, const void *key, size_t klen, const void **val, size_t *vlen);

/* The value of key, writable in place (its size is fixed: a put of
 * another size moves it), or NULL when the key is absent or a
 * tombstone. A writer that changes the bytes while another thread reads
 * the map must exclude that reader itself (store/rows.c). */
void *yj_hashmap_ref(yj_hashmap *m, const void *key, size_t klen);

/* The key of the entry whose value is val (a pointer yj_hashmap_get or
 * yj_hashmap_ref handed out, still valid), given the key's length klen,
 * which must be that entry's: the entry keeps its key just before its
 * value. */
const void *yj_hashmap_value_key(const void *val, size_t klen);

/* Entries, tombstones included. */
size_t yj_hashmap_count(const yj_hashmap *m);

/* Heap bytes the map holds (header, slots, entry blocks), as requested from
 * malloc: the allocator's own overhead per block is not included. */
size_t yj_hashmap_bytes(const yj_hashmap *m);

#endif
