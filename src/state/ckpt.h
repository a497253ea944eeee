/*
 * ckpt.h — the typed states' checkpoint: every tenant's state as one file
 * beside the store, at a position in the journal (issue 16 item 6: a
 * restart loads it and replays only the journal's tail; docs/storage.md,
 * "The typed state's checkpoint").
 *
 * The file, `typed.ckpt` in the store's directory, is a header (a magic,
 * the format, the journal position: the last entry's seq and its chain
 * hash, the count of tenants, the body's length, the SHA-256 of every
 * tenant's frame and its state's header, and a SHA-256 of the header
 * itself), then the body: each tenant's frame (its id, its state's
 * length) and its state as yj_sm_save gives it (with its own header: its
 * body's length and SHA-256, the state's digest), streamed into the file
 * (yj_sm_save_fd: a state of any size). So one hash binds the frames and
 * each state's header, and each header binds its state's body. It is
 * written whole under a name of its own (`typed.ckpt.<pid>.tmp`), synced,
 * renamed over the last one and the directory synced: a reader finds the
 * old file or the new, never a part.
 *
 * Both calls keep no state of their own. yj_ckpt_write logs nothing and
 * takes no lock of this program's own; it does call malloc (which glibc
 * and jemalloc make safe after a fork) and OpenSSL's digests (whose
 * initialisation may take a lock of OpenSSL's: a forked child that meets
 * one held at the fork waits for ever, so its owner must bound its time,
 * as shadow.c does).
 */
#ifndef YONGJIN_STATE_CKPT_H
#define YONGJIN_STATE_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "state/sm.h"
#include "yongjin/err.h"

#define YJ_CKPT_FILE "typed.ckpt"
/* the one before the newest (yj_ckpt_write keeps it: a recovery after a
 * crash may need a checkpoint at or before the store's own) */
#define YJ_CKPT_PREV_FILE "typed.ckpt.prev"
#define YJ_CKPT_HASH 32
/* the most tenants a checkpoint holds (a reader refuses a count past it) */
#define YJ_CKPT_TENANTS_MAX 1000000u

typedef struct yj_ckpt_tenant {
    const char *id; /* the tenant's id, len bytes (not NUL-terminated) */
    size_t len;
    const yj_sm *sm;
} yj_ckpt_tenant;

/* Writes n tenants' states as dir/typed.ckpt at the journal position seq
 * (the last entry they hold; 0: none) with that entry's chain hash, and
 * its size into *bytes (may be NULL). OK; INVALID_ARGUMENT for a tenant
 * id that is not one or more than YJ_CKPT_TENANTS_MAX tenants;
 * RESOURCE_EXHAUSTED (no memory for a state's bytes); INTERNAL when a
 * file call fails (msg names it and errno's words). The checkpoint it
 * replaces stays as dir/typed.ckpt.prev (a second link to it, renamed
 * over the previous one: the newest stays in place throughout; the disk
 * holds two). A failure leaves the last checkpoint as it was and removes
 * its own temporary file. */
yj_err yj_ckpt_write(const char *dir, uint64_t seq, const uint8_t hash[YJ_CKPT_HASH],
                     const yj_ckpt_tenant *t, size_t n, uint64_t *bytes, yj_msg *msg);

/* Removes the temporary files a writer left in dir (a process killed
 * while it wrote one): call when no writer can be running (the store's
 * lock held, before the first checkpoint). How many it removed. */
size_t yj_ckpt_clean(const char *dir);

/* For each tenant a checkpoint holds: its id (len bytes, valid until
 * yj_ckpt_read returns) and its state, which the callee owns from the
 * call on (it frees it, even when it fails). Not OK: the read stops with
 * that error. */
typedef yj_err (*yj_ckpt_tenant_fn)(void *ctx, const char *id, size_t len, yj_sm *sm);

/* The journal position a checkpoint was written at, asked before any of
 * its states is loaded (whether the journal has that entry with that
 * hash): not OK stops the read with that error (msg set). */
typedef yj_err (*yj_ckpt_at_fn)(void *ctx, uint64_t seq, const uint8_t hash[YJ_CKPT_HASH],
                                yj_msg *msg);

/* Reads dir/typed.ckpt (mapped): its header checked, every frame walked
 * and the hash over the frames and the states' headers checked, at_fn
 * (may be NULL) asked about its position, then each tenant's state
 * loaded (yj_sm_load, which checks its body's hash; its hash tables keyed
 * by seed ^ its place in the file) and handed to fn in the file's order
 * (a damaged body is found when its tenant loads, after the tenants
 * before it went to fn); then *seq and hash are the journal position it was
 * written at, and *bytes (may be NULL) its size. NOT_FOUND when there is
 * none; DATA_LOSS, msg naming the file and the check, for one that is
 * cut, changed, of another format, not a regular file, or holds a damaged
 * state (fn may have taken states before it: the caller drops them);
 * RESOURCE_EXHAUSTED; INTERNAL for a file call that fails; or at_fn's or
 * fn's error. */
yj_err yj_ckpt_read(const char *dir, uint64_t seed, yj_ckpt_at_fn at_fn, yj_ckpt_tenant_fn fn,
                    void *ctx, uint64_t *seq, uint8_t hash[YJ_CKPT_HASH], uint64_t *bytes,
                    yj_msg *msg);
/* The same for the file name in dir (YJ_CKPT_PREV_FILE: the previous). */
yj_err yj_ckpt_read_file(const char *dir, const char *name, uint64_t seed, yj_ckpt_at_fn at_fn,
                         yj_ckpt_tenant_fn fn, void *ctx, uint64_t *seq, uint8_t hash[YJ_CKPT_HASH],
                         uint64_t *bytes, yj_msg *msg);
/* The same, with beside (NULL: none) given each tenant's id and state
 * while the state's digest is checked (yj_sm_load_beside: on a thread of
 * its own; it may read the state and take its changed lists, nothing
 * else), before fn takes the state. Its error stops the read. A state
 * whose digest does not check is refused after beside saw it: the caller
 * undoes what beside did for every tenant not handed to fn. */
typedef yj_err (*yj_ckpt_beside_fn)(void *ctx, const char *id, size_t len, yj_sm *sm);
yj_err yj_ckpt_read_beside(const char *dir, const char *name, uint64_t seed, yj_ckpt_at_fn at_fn,
                           yj_ckpt_beside_fn beside, yj_ckpt_tenant_fn fn, void *ctx, uint64_t *seq,
                           uint8_t hash[YJ_CKPT_HASH], uint64_t *bytes, yj_msg *msg);

#endif
