/*
 * undo.h — the typed state's undo log: what a group of accepted events
 * changed, so that a group that fails after its events were applied (its
 * log record not written or not synced, the disk full) is taken back and
 * the state is again what the last durable group left (issue 16 items 2
 * and 3; docs/architecture.md "Typed state").
 *
 * Every change to a table is preceded by a record of the bytes it
 * overwrites, addressed by the table (a function that gives the table's
 * current base, and an owner and a sub-index for it) and the offset in
 * it, never by a pointer: a later event's reservation may move a table
 * (realloc), and the record must still find its bytes. An element
 * appended past a table's count needs no record (the count's record
 * takes it back); a row or an id added to a map or an index is taken
 * back by a call (its newest removed). Memory a change frees is freed
 * only when the group is committed, memory it allocates is freed if it is
 * taken back.
 *
 * A record is appended with memory taken as it goes: an event never
 * fails for its undo log. When that memory runs out the log notes where
 * it lost a record, and a rollback to a mark before that point refuses
 * (the owner must then drop the state: the shadow stops; the writer, once
 * it owns the state, will rebuild it from the journal).
 * Not thread-safe: one owner (the writer).
 */
#ifndef YONGJIN_STATE_UNDO_H
#define YONGJIN_STATE_UNDO_H

#include <stddef.h>
#include <stdint.h>

typedef struct yj_undo {
    uint8_t *buf;
    size_t len, cap;
    size_t lost; /* the log's length when a record was lost, SIZE_MAX: none */
    size_t frees_on_commit;
} yj_undo;

#define YJ_UNDO_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, SIZE_MAX, 0                                                                    \
    }

/* The current base of table `sub` of owner (the address its offsets are
 * from). */
typedef void *(*yj_undo_base_fn)(void *owner, uint32_t sub);
/* Takes back one change of owner (e.g. removes the newest row). */
typedef void (*yj_undo_fn)(void *owner);

/* Before len bytes at `at` in table (base, owner, sub) change: a record
 * of them. u may be NULL (no log: the caller keeps none). */
void yj_undo_bytes(yj_undo *u, yj_undo_base_fn base, void *owner, uint32_t sub, const void *at,
                   size_t len);
/* After a change that fn(owner) takes back (a row or an id added). */
void yj_undo_call(yj_undo *u, yj_undo_fn fn, void *owner);
/* After a change that fn(owner, args) takes back, args (len bytes, kept
 * in the record) saying what it was: a logical record, one for what
 * would take many (a GMV added up a walk of ancestors is subtracted up
 * the same walk, which every later change, taken back first, left as it
 * was). fn must not log. */
typedef void (*yj_undo_args_fn)(void *owner, const void *args);
void yj_undo_call_args(yj_undo *u, yj_undo_args_fn fn, void *owner, const void *args, size_t len);
/* Memory the change allocated (freed if it is taken back) or made
 * unreachable (freed when the group is committed). */
void yj_undo_free_on_rollback(yj_undo *u, void *p);
void yj_undo_free_on_commit(yj_undo *u, void *p);

/* Where the log is now (a group's start). */
size_t yj_undo_mark(const yj_undo *u);
/* Takes back every change after mark, newest first: 1, or 0 (nothing
 * done) when a record after mark was lost. */
int yj_undo_rollback(yj_undo *u, size_t mark);
/* Forgets every record (the changes stay), freeing what they made
 * unreachable. */
void yj_undo_commit(yj_undo *u);
void yj_undo_free(yj_undo *u);
size_t yj_undo_bytes_held(const yj_undo *u);

#endif
