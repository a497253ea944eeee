/*
 * ids.h — ids numbered densely in the order they were first seen: the
 * one way the typed tables (src/state) refer to a member, an order or
 * any other id: a uint32 index into their arrays.
 *
 * An id is 1..YJ_IDS_KEY_MAX bytes (an id validated before it reaches a
 * table, at most YJ_ID_MAX, or a key made of two, as a refund's "order
 * refund": asserted here). Its copy lives in blocks of 64 KiB that never move, so
 * yj_ids_str's pointer is valid until yj_ids_free (or until the id is taken
 * back by an undo log: its bytes are then another id's). A table holds at
 * most 65,535 blocks of copies (4 GiB: an id's place is four bytes);
 * past them an add is RESOURCE_EXHAUSTED. The index is open
 * addressing with linear probing, at most three quarters full; a slot holds the
 * hash's top 32 bits and the number + 1, so a probe compares an id only
 * when the tags agree. The hash is keyed by the caller's seed: given one
 * drawn at random per process (store_hash_seed, hash.h), a client cannot
 * choose ids that collide; the numbers never depend on it.
 *
 * An owner that keeps some ids' bytes elsewhere (the typed state keeps a
 * cold order's id in its record) may forget them (yj_ids_forget): the
 * number and its place in the index stay, with the id's 64-bit hash, and
 * its copy's memory comes back. A find cannot compare a forgotten id:
 * yj_ids_find_gone names the one forgotten id whose hash is the asked
 * one's (there is at most one: only the first id added of a 64-bit hash
 * is ever forgotten, the later ones are kept), and the owner confirms it (its record is id's)
 * before it takes that answer; yj_ids_find asserts the table forgets nothing.
 *
 * Not thread-safe: one owner.
 */
#ifndef YONGJIN_STATE_IDS_H
#define YONGJIN_STATE_IDS_H

#include <stddef.h>
#include <stdint.h>

#include "state/undo.h"
#include "yongjin/err.h"

#define YJ_IDS_NONE UINT32_MAX
#define YJ_IDS_MAX (UINT32_MAX - 1) /* the most ids one table numbers */
#define YJ_IDS_KEY_MAX 255          /* bytes of one id */

typedef struct yj_ids yj_ids;

/* An empty table hashing with seed; NULL on ENOMEM. */
yj_ids *yj_ids_new(uint64_t seed);
void yj_ids_free(yj_ids *t); /* NULL ok */

/* The number of id (n bytes), or YJ_IDS_NONE when never seen. The table
 * must have forgotten none. */
uint32_t yj_ids_find(const yj_ids *t, const char *id, size_t n);
/* The number of id when the table has its copy; else NONE, and *gone the
 * forgotten id with id's hash (NONE: none), which may be id. */
uint32_t yj_ids_find_gone(const yj_ids *t, const char *id, size_t n, uint32_t *gone);
/* Asks the cache for what yj_ids_find(t, id, n) will read, a stage at a
 * time, each once the one before has had time to arrive (a writer that
 * looks ahead in its group): stage 0 the slot its probe starts at;
 * stage 1 reads that slot and, when its tag is id's, asks for the id's
 * copy and returns its number (a guess: not compared; else NONE). Reads
 * nothing else, changes nothing. */
uint32_t yj_ids_prefetch(const yj_ids *t, const char *id, size_t n, int stage);
/* The same for what yj_ids_str(t, i) reads: stage 0 where i's copy is,
 * stage 1 the copy (none for a forgotten id; nothing past the count). */
void yj_ids_prefetch_str(const yj_ids *t, uint32_t i, int stage);
/* Room for n more ids (their copies of up to YJ_IDS_KEY_MAX bytes each and
 * their slots), so that the next n yj_ids_add cannot fail: OK or
 * RESOURCE_EXHAUSTED. */
yj_err yj_ids_reserve(yj_ids *t, size_t n);
/* Room in the index for n more ids, not their copies (a load that knows
 * how many come: no index made again as it grows): OK or
 * RESOURCE_EXHAUSTED. */
yj_err yj_ids_reserve_index(yj_ids *t, size_t n);
/* Numbers id as the next number: OK with *out set; ALREADY_EXISTS when
 * the table has its copy (a caller that asked yj_ids_find first never sees
 * this; a forgotten id is the caller's to rule out: yj_ids_find_gone), or
 * RESOURCE_EXHAUSTED, with nothing changed. */
yj_err yj_ids_add(yj_ids *t, const char *id, size_t n, uint32_t *out);
/* With an undo log (NULL: none), every add is logged, so that a rollback
 * removes it (newest first). */
void yj_ids_set_undo(yj_ids *t, yj_undo *u);
/* id i (NUL-terminated) and its length; NULL and 0 when forgotten. */
const char *yj_ids_str(const yj_ids *t, uint32_t i);
size_t yj_ids_len(const yj_ids *t, uint32_t i);

/* Forgets id i's copy: 1; 0 (kept) when another id had its 64-bit hash
 * when i was added (only the first of a hash is forgotten). Not logged: between groups only (no
 * record of the undo log may name a copy: a compaction moves them, and every pointer yj_ids_str
 * gave is then stale). Never allocates. */
int yj_ids_forget(yj_ids *t, uint32_t i);
int yj_ids_gone(const yj_ids *t, uint32_t i);
size_t yj_ids_gone_count(const yj_ids *t);
/* Whether id (n bytes) may be id i: its copy equal, or, forgotten, its
 * hash i's (the caller confirms). */
int yj_ids_is(const yj_ids *t, uint32_t i, const char *id, size_t n);
/* Forgotten id i's copy back, from id (whose hash must be i's:
 * INVALID_ARGUMENT), logged in u (NULL: not logged): OK,
 * FAILED_PRECONDITION (not forgotten), RESOURCE_EXHAUSTED. */
yj_err yj_ids_recall(yj_ids *t, uint32_t i, const char *id, size_t n, yj_undo *u);
/* A snapshot's: the seed; a new seed for an empty table (0 when not
 * empty); every number's 64-bit hash into *out (malloc'd, count
 * entries); a forgotten id numbered next from its hash, not logged (OK,
 * ALREADY_EXISTS when an id has that hash: a forgotten one is its hash's
 * first, RESOURCE_EXHAUSTED). */
uint64_t yj_ids_seed(const yj_ids *t);
int yj_ids_reseed(yj_ids *t, uint64_t seed);
yj_err yj_ids_hashes(const yj_ids *t, uint64_t **out);
yj_err yj_ids_add_gone(yj_ids *t, uint64_t h, uint32_t *out);
/* Tests only: the hash every table uses from here on (NULL: the real
 * one), to make ids collide. */
void yj_ids_test_hash(uint64_t (*fn)(const void *id, size_t n, uint64_t seed));
size_t yj_ids_count(const yj_ids *t);
size_t yj_ids_bytes(const yj_ids *t); /* heap bytes */

#endif
