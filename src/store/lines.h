/*
 * lines.h — a layer's history lines (yj_apply_hook.history: a member's
 * statement lines) kept by bucket instead of in the layer's ordered map.
 *
 * A history line is a key put once and then only read in order with the
 * other lines of its bucket: the key's first bytes, which the hook names
 * (a member's statement: tenant, kind, member). The writer made two or
 * three of them an order, each a new key at its own place in the whole
 * key order, and each went into the group's tree and was merged into the
 * published layer's (a descent of a tree of up to millions of keys) at
 * every group: 1.3-2.7 us of the writer's ~12 an order (performance.md,
 * twenty-third session). Here a line is a copy in the layer's arena and a
 * pointer in its bucket's array, the bucket found by a hash of its prefix;
 * a merge copies each line into the bucket of the same prefix in the other
 * layer. No order among buckets is kept: a cursor reads one bucket (a
 * cursor bounded to it, yj_cursor_open_bounded), and a checkpoint sorts
 * the buckets once (store_lines_sorted).
 *
 * Within a bucket the lines are in key order (store_key_cmp): most come in
 * order (an order's lines are dated after the last), a late one is
 * inserted; a bucket whose lines come far out of order (a member's orders
 * sent newest first) moves them into an ordered map of its own
 * (store_lines_tree), so a line costs O(log n) whatever the order. A key
 * put again replaces its line. Lines are never deleted.
 *
 * What the hook's bucket_len must answer (yj_apply_hook.history): a
 * function of the key's bytes alone; no bucket's prefix starts another's
 * (the ledger's end with a length-prefixed member); every key that starts
 * with a bucket's prefix and is longer is one of its lines.
 *
 * Memory: lines, buckets and their arrays come from the layer's arena and
 * go back all at once (clear, free); the bucket table from malloc. Not
 * thread-safe: the writer changes a layer's, readers read the published
 * ones under the store's view_lock (store_internal.h), as its maps.
 * Errors: -1 only for ENOMEM, the structure then as it was (put), or see
 * store_lines_merge.
 */
#ifndef YONGJIN_STORE_LINES_H
#define YONGJIN_STORE_LINES_H

#include <stddef.h>
#include <stdint.h>

#include "store/memmap.h"

typedef struct store_lines store_lines;
typedef struct store_lines_bucket store_lines_bucket;

/* The length of the bucket prefix key starts with, else 0: key is a
 * history line when it is longer than that (yj_apply_hook.history). */
typedef size_t (*store_lines_fn)(const void *key, size_t klen);

/* An empty one, or NULL on ENOMEM. Its table's hash (hash.h) is keyed by
 * a seed drawn when the process starts, the same for every one (a merge
 * reuses a bucket's hash): a client cannot choose prefixes that collide. */
store_lines *store_lines_new(store_lines_fn bucket_len);
void store_lines_free(store_lines *h); /* NULL ok */
/* Frees about n more lines' memory (blocks of the arena), and h once
 * none is left: 1 then, else 0. After the first call, h goes only to this
 * or store_lines_free. (A checkpoint's layer of a million lines, freed by
 * the writer a step at a time between groups.) */
int store_lines_free_some(store_lines *h, size_t n);
/* Drops every line; a table of up to 16,384 slots (12,288 buckets) is kept,
 * emptied, for a layer filled again and again (the group's). */
void store_lines_clear(store_lines *h);
/* Whether key is a history line of bucket_len: it answers more than 0,
 * less than klen (what store_lines_takes and Verify's sink, sink.h, ask). */
int store_lines_is_line(store_lines_fn bucket_len, const void *key, size_t klen);
/* Whether key is a history line h keeps (store_lines_is_line with h's
 * bucket_len). */
int store_lines_takes(const store_lines *h, const void *key, size_t klen);
/* What h's bucket_len answers for key: the length of the bucket prefix
 * it starts with (a cursor's bound: yj_cursor_open_bounded), or 0. */
size_t store_lines_bucket_len(const store_lines *h, const void *key, size_t klen);
size_t store_lines_count(const store_lines *h);   /* lines; 0 for NULL */
/* Heap bytes; 0 for NULL, and for one emptied (the room it keeps, as a
 * map's kept index, is not counted). */
size_t store_lines_bytes(const store_lines *h);
size_t store_lines_buckets(const store_lines *h); /* 0 for NULL */

/* Puts a copy of a line (store_lines_takes(key) must be 1), replacing
 * the line of the same key: 0, or -1 on ENOMEM with no line added or
 * replaced (its bucket may have been made, empty). */
int store_lines_put(store_lines *h, const void *key, size_t klen, const void *val, size_t vlen);

/* Copies every line of src into dst (src's win a key both have), then
 * empties src: 0, or -1 on ENOMEM, when dst holds some of src's lines
 * and src all of them (the caller drops the group, or fails the store
 * when dst is the published layer). */
int store_lines_merge(store_lines *dst, store_lines *src);

/* Makes room in the table for n buckets: a hint for a layer known to grow
 * to about n (the published layer after a checkpoint's). */
void store_lines_reserve(store_lines *h, size_t n);
/* The memory of h's table of buckets (NULL and 0: none), valid until it
 * grows or h is cleared or freed; one store_lines_reserve made has
 * untouched pages (memmap.h's yj_memmap_index_span). */
void store_lines_table_span(const store_lines *h, void **p, size_t *n);

/* The bucket of prefix (plen bytes), or NULL when h (may be NULL) has no
 * line in it. */
const store_lines_bucket *store_lines_find(const store_lines *h, const void *prefix, size_t plen);
/* How many lines b holds. */
size_t store_lines_lines(const store_lines_bucket *b);
/* The ordered map holding b's lines when they came far out of order
 * (DEEP in lines.c): read them through it (memmap.h). NULL: they are the
 * array below. */
const yj_memmap *store_lines_tree(const store_lines_bucket *b);
/* Asks the cache for what a walk of b's lines reads, a stage at a time
 * (a checkpoint's walk looking ahead): stage 0 b itself, stage 1 its
 * first lines. Reads nothing else, changes nothing. */
void store_lines_prefetch(const store_lines_bucket *b, int stage);
/* b's line i (< store_lines_lines; b without a map), in key order. */
void store_lines_line(const store_lines_bucket *b, size_t i, const void **key, size_t *klen,
                      const void **val, size_t *vlen);
/* The index of b's first line whose key is >= key (> key when after);
 * store_lines_lines(b) when none is (b without a map). */
size_t store_lines_seek(const store_lines_bucket *b, const void *key, size_t klen, int after);

/* h's bucket i (< store_lines_buckets(h)), in the order they were made. */
const store_lines_bucket *store_lines_bucket_at(const store_lines *h, size_t i);

/* The buckets of h in their prefixes' key order (so their lines, bucket
 * after bucket, are in key order): a malloc'd array the caller frees, of
 * *n buckets. 0 (NULL and 0 when h is empty), or -1 on ENOMEM. For the
 * checkpoint thread, which sorts a frozen layer's buckets once. */
int store_lines_sorted(const store_lines *h, const store_lines_bucket ***out, size_t *n);

#endif
