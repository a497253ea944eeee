/*
 * sink.h — history lines handed to a thread of their own, which builds
 * their ordered map while the replay goes on (Verify's replay, verify.c).
 *
 * Why: a replay puts every statement line (yj_apply_hook.history: two or
 * three new keys an order, each at its own place in the whole key order)
 * into its ordered map, and nothing of the apply reads one back (they are
 * the history the queries read). Those puts were 7.7% of a Verify's
 * profile at 1.77M entries (docs/performance.md, twenty-ninth session), on
 * the replay's one thread while the machine's other core waited. Here the
 * replay copies a line into a ring (a few hundred bytes, no lookup) and a
 * thread puts it into a map of its own; the comparison and the digest then
 * read that map beside the replay's, in key order (verify.c).
 *
 * One producer (the replay's thread: store_sink_put) and one consumer (the
 * sink's thread). A line is copied into the ring whole; a line longer than
 * an eighth of the ring goes as a copy on the heap the thread frees. When
 * the ring is full the producer waits; when it is empty the thread sleeps,
 * woken once a good part of the ring is waiting (not at every line) or at
 * the end. The thread's map keeps no hash index (nothing looks a line up)
 * and takes its memory from a bulk allocator of its own (bulk.h), or malloc
 * (use_bulk 0: the ASan build, which checks malloc's memory).
 *
 * Errors: the thread running out of memory is remembered; every put after
 * it, and store_sink_finish, answer -1 (the replay then stops with
 * RESOURCE_EXHAUSTED), and the thread goes on emptying the ring without
 * keeping the lines, so the producer never waits for ever.
 */
#ifndef YONGJIN_STORE_SINK_H
#define YONGJIN_STORE_SINK_H

#include <stddef.h>

#include "store/lines.h"
#include "store/memmap.h"

typedef struct store_sink store_sink;

/* A sink for the lines bucket_len names (a history line: a key longer
 * than the bucket prefix bucket_len gives it, lines.h), its thread
 * started; NULL when memory or
 * the thread cannot be had (the caller keeps the lines in its own map, as
 * it did before). */
store_sink *store_sink_new(store_lines_fn bucket_len, int use_bulk);
/* Whether key is one of the sink's lines. */
int store_sink_takes(const store_sink *s, const void *key, size_t klen);
/* Whether key is one of the sink's lines or a bucket of them (a seek
 * there would read lines the sink holds). */
int store_sink_in_bucket(const store_sink *s, const void *key, size_t klen);
/* Hands the line key -> val to the thread: 0, or -1 when the thread ran
 * out of memory (nothing kept), the line is longer than a map takes, or
 * the heap copy of a big line cannot be had. Waits while the ring is
 * full. Not after store_sink_finish. */
int store_sink_put(store_sink *s, const void *key, size_t klen, const void *val, size_t vlen);
/* The bytes the thread's map holds (what its bulk handed out, or the
 * map's own count on malloc), as of its last batch; not the ring's fixed
 * 4 MiB. Read from any thread. */
size_t store_sink_bytes(const store_sink *s);
/* Waits until every line handed so far is in the map, then stops the
 * thread: 0, or -1 when it ran out of memory. Called once; after it,
 * store_sink_map gives the map. */
int store_sink_finish(store_sink *s);
/* The lines, in key order (after store_sink_finish; NULL before). Valid
 * until store_sink_free. */
const yj_memmap *store_sink_map(const store_sink *s);
/* Stops the thread if it runs (finish, discarding nothing) and frees the
 * sink, its map and its memory. NULL is allowed. */
void store_sink_free(store_sink *s);

#endif
