/*
 * map64.h — rows of a fixed number of i64 counters keyed by a u64: how the
 * typed tables (src/state) keep what the keyed ledger keeps as counter
 * records ('E' a member's earnings by month, program and level; 'm' a
 * member's month; 'n' a month's totals).
 *
 * Rows sit in one array in the order they were made (so the same calls
 * give the same array on any build); an index of open addressing (linear
 * probing, at most half full, each slot the row's number + 1) finds a key.
 * The key is hashed with a seed (hash.h); no number depends on it.
 * Rows are never removed. Not thread-safe: one owner.
 */
#ifndef YONGJIN_STATE_MAP64_H
#define YONGJIN_STATE_MAP64_H

#include <stddef.h>
#include <stdint.h>

#include "state/undo.h"
#include "yongjin/err.h"

#define YJ_MAP64_WIDTH_MAX 8 /* counters a row */

typedef struct yj_map64 yj_map64;

/* An empty map of rows of width (1..YJ_MAP64_WIDTH_MAX) counters. NULL on
 * ENOMEM. */
yj_map64 *yj_map64_new(unsigned width, uint64_t seed);
void yj_map64_free(yj_map64 *m); /* NULL ok */

/* key's counters, or NULL when it has no row. Valid until the next
 * yj_map64_reserve (which may move the rows). */
int64_t *yj_map64_find(const yj_map64 *m, uint64_t key);
/* Asks the cache for what a lookup of key will read: stage 0 the slot its
 * probe starts at; stage 1 (that slot read) the row it names, when it
 * names one. Reads nothing else, changes nothing. */
void yj_map64_prefetch(const yj_map64 *m, uint64_t key, int stage);
/* Room for n more rows, so that the next n yj_map64_row cannot fail: OK
 * or RESOURCE_EXHAUSTED (nothing changed). */
yj_err yj_map64_reserve(yj_map64 *m, size_t n);
/* key's counters, a row of zeros made for it when it has none: there must
 * be room (yj_map64_reserve). The accessor of a row about to change: with
 * an undo log, the row's values are logged first (or its making). */
int64_t *yj_map64_row(yj_map64 *m, uint64_t key);
/* yj_map64_row for a caller that logs the inverse of its change itself
 * (undo.h's logical records): only a row's making is logged. */
int64_t *yj_map64_counter(yj_map64 *m, uint64_t key);
/* With an undo log (NULL: none), what yj_map64_row is about to change. */
void yj_map64_set_undo(yj_map64 *m, yj_undo *u);

size_t yj_map64_count(const yj_map64 *m);
/* Row i (in the order made): its key and counters. */
uint64_t yj_map64_key_at(const yj_map64 *m, size_t i);
const int64_t *yj_map64_at(const yj_map64 *m, size_t i);
/* Row i's counters to change in place, not logged: a map without an undo
 * log only. Valid until the next yj_map64_reserve. */
int64_t *yj_map64_row_at(yj_map64 *m, size_t i);
unsigned yj_map64_width(const yj_map64 *m);
/* The number (in the order made) of a row yj_map64_row, _counter or
 * _find gave. */
size_t yj_map64_index(const yj_map64 *m, const int64_t *row);
size_t yj_map64_bytes(const yj_map64 *m); /* heap bytes */

#endif
