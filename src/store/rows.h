/*
 * rows.h — the writer's rows: records of derived state the writer owns in
 * memory and changes in place, instead of writing each change into a
 * layer that is merged into the group's, then into the published one
 * (docs/storage.md "The writer's rows").
 *
 * Which keys are rows is the apply hook's choice (yj_apply_hook.row_cap):
 * fixed-size counters every order adds to (a member's balance, team
 * record, month counters and earnings, the tenant's totals, a month's
 * totals), whose value is never
 * longer than the capacity the hook gives for the key. A row holds two
 * values:
 *   cur  what the writer reads and writes: every accepted write applied,
 *        durable or not (the writer's thread only);
 *   pub  what readers see: the value as of the last published group,
 *        written only with the store's view lock held exclusively.
 * Absent (STORE_ROW_NONE) means the row says nothing: a reader, or the
 * writer for cur, reads the layers and LMDB instead, which then hold the
 * key's value (or its absence) as of that point.
 *
 * Undo: the first time a write (then a group) changes a row, the row and
 * its value before are logged in the write's (the group's) layer
 * (store_layer.rowlog). A refused write or a failed group puts every value
 * it changed back (store_rows_undo, from store_layer_clear); an accepted
 * write's log goes into its group's (store_rows_absorb); its publish makes
 * each row's value at the group's end the row's pub (store_rows_publish):
 * cur, when nothing was applied since; when the group is synced by the log
 * thread while the next one applies, its log records those values first
 * (store_rows_seal), so that a group applied on top of one still being
 * synced changes cur, never what the one below publishes.
 *
 * Checkpoints: a published row is listed dirty until the next checkpoint
 * takes its pub value (store_rows_freeze) into the records it writes into
 * LMDB after the checkpoint's layer (store_rows_each), so LMDB gets the
 * row's newest value. The key itself is in the layers or LMDB from its
 * first write on (view.c puts the value there when the key was new), so
 * cursors find it in order and read the row's value (view.c, give()).
 *
 * Links: a row's `link` is the writer's note of the row an add reached
 * from it last (the team tree's parent, view.c); it is never trusted
 * unchecked (store_row_is compares the key wanted with the linked row's
 * own), and stays pointing into live memory because rows are freed only
 * all together (a dropped set's links point into that set).
 *
 * Memory: one heap block per row (the map's entry: its header, the key
 * padded to 8 bytes, then the row: header, cur, pub). Past the writer's cache budget, the writer drops them all
 * between groups when no checkpoint is running, after putting the dirty
 * ones' values into the published layer (store_rows_flush): reads then
 * find every value in the layers or LMDB, and rows are made again as
 * writes come.
 *
 * Threads: the writer alone calls everything here but store_rows_find and
 * store_row_value(.., 0, ..), which readers call holding the view lock
 * shared; store_rows_add takes the lock exclusively itself, and the
 * callers of store_rows_publish and store_rows_flush (which change what
 * readers see) hold it.
 */
#ifndef YONGJIN_STORE_ROWS_H
#define YONGJIN_STORE_ROWS_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/hashmap.h"
#include "store/memmap.h"
#include "yongjin/buf.h"
#include "yongjin/err.h"

#define STORE_ROW_NONE 0xFF /* a length: no value */
#define STORE_ROW_CAP_MAX 128

typedef struct store_row {
    uint64_t ev_gen;  /* the write whose log last took it (writer) */
    uint64_t grp_gen; /* the group whose log last took it (writer) */
    uint64_t ck_gen;  /* the checkpoint interval it was last listed dirty in (writer) */
    struct store_row *link; /* the writer's only: the row an add through a chase
                               reached from this one last (view.c, yj_state_add_i64);
                               a hint, checked against the key before each use */
    uint8_t cur_len;  /* the writer's thread only */
    uint8_t pub_len;  /* written under the view lock held exclusively */
    uint8_t cap;
    uint8_t pad_;
    uint16_t klen;    /* its key's length (the key is the map entry's, store_row_is) */
    uint8_t pad2_[2];
    uint8_t val[];    /* cur[cap], then pub[cap] */
} store_row;

typedef struct store_rows {
    yj_hashmap *map;        /* key -> store_row (its size fixed by its cap) */
    pthread_rwlock_t *lock; /* the store's view lock */
    uint64_t gen;           /* the last generation handed out (writes and groups) */
    uint64_t ck_gen;        /* the current checkpoint interval */
    yj_buf dirty;           /* published since the last freeze: {row*, klen u16, key} */
} store_rows;

/* An empty set of rows whose map is keyed by seed; lock is the store's
 * view lock. NULL on ENOMEM. */
store_rows *store_rows_new(uint64_t seed, pthread_rwlock_t *lock);
void store_rows_free(store_rows *r); /* NULL ok */

/* The row of key, or NULL. */
store_row *store_rows_find(const store_rows *r, const void *key, size_t klen);
/* 1 when w is the row of key (its map entry's key is these bytes), else 0.
 * Reads only w's header and its key, which sit side by side: how a link is
 * checked before it is followed. */
int store_row_is(const store_row *w, const void *key, size_t klen);
/* A new row for key (absent: must not exist), with room for values of up
 * to cap (1..STORE_ROW_CAP_MAX) bytes, cur and pub absent. Takes the view
 * lock exclusively for the insert. NULL on ENOMEM. */
store_row *store_rows_add(store_rows *r, const void *key, size_t klen, unsigned cap);
/* The row's cur (writer = 1) or pub (writer = 0): 1 with *v and *n set, 0
 * when absent. *v points into the row: valid until the value is changed. */
int store_row_value(const store_row *w, int writer, const void **v, size_t *n);
/* Sets cur (n <= cap). */
void store_row_set(store_row *w, const void *v, size_t n);

/* A new generation, for a write or a group (store_layer.gen). */
uint64_t store_rows_gen(store_rows *r);

/* Logs row (of key) in log, whose owner has generation gen, unless that
 * log has it already: its value now is what store_rows_undo puts back.
 * OK or RESOURCE_EXHAUSTED. */
yj_err store_rows_log(yj_buf *log, uint64_t gen, store_row *w, const void *key, size_t klen);
/* Puts back the value before of every row in log, and empties it. */
void store_rows_undo(yj_buf *log);
/* Moves the rows of an accepted write's log into its group's (generation
 * group_gen) that it has not yet, with their values before the write;
 * empties log. OK or RESOURCE_EXHAUSTED (then nothing moved). */
yj_err store_rows_absorb(yj_buf *group_log, uint64_t group_gen, yj_buf *log);
/* Records each logged row's value now as the group's result. */
void store_rows_seal(yj_buf *log);
/* Makes room in the dirty list for the rows of a group's log that
 * store_rows_publish will list (room for every row of the log, listed
 * already or not: a bound read from the log alone, without reading the
 * rows): OK, or RESOURCE_EXHAUSTED with nothing
 * changed (a publish that cannot happen is fatal to the store, but no
 * reader sees half of it). */
yj_err store_rows_reserve(store_rows *r, const yj_buf *log);
/* The group's results become the rows' pub, each row listed dirty for
 * the next checkpoint; empties log. sealed: the results are the log's
 * (store_rows_seal, when another group was applied since); else they are
 * the rows' cur (nothing applied since the group's end). Cannot fail:
 * store_rows_reserve made the room. The caller holds the view lock
 * exclusively. */
void store_rows_publish(store_rows *r, yj_buf *log, int sealed);
/* Appends every dirty row's key and pub to out ({klen u16, key, vlen u8,
 * value}, store_rows_each reads them) and starts a new checkpoint
 * interval. OK or RESOURCE_EXHAUSTED (nothing changed then). */
yj_err store_rows_freeze(store_rows *r, yj_buf *out);
/* Steps through the records of store_rows_freeze: 1 with the key and the
 * value (and their lengths) set and off moved past it, 0 at the end. */
int store_rows_each(const yj_buf *frozen, size_t *off, const void **key, size_t *klen, const void **val,
                    size_t *vlen);

/* Puts every dirty row's pub into m (a layer's state map): with no
 * checkpoint running, the layers and LMDB then hold every row's value, and
 * the rows can be dropped (writer.c). 0, or -1 on ENOMEM (m has some of
 * them then: the same values the rows have). */
int store_rows_flush(const store_rows *r, yj_memmap *m);
/* Frees up to n rows, then the set: 1 when it is gone (yj_hashmap_free_some). */
int store_rows_free_some(store_rows *r, size_t n);

size_t store_rows_count(const store_rows *r);
size_t store_rows_bytes(const store_rows *r);

#endif
