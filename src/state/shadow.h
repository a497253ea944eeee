/*
 * shadow.h — the typed state run beside the keyed ledger in a real server
 * (`yongjind --shadow-typed`; issue 16 item 2's last proof before the
 * switch, docs/architecture.md "Typed state").
 *
 * The shadow is an apply hook that wraps the ledger's: every new write is
 * applied by the ledger (whose answer stands, as without the shadow) and
 * then by one typed state per tenant (yj_sm_apply), and the two must agree
 * on the code, a refusal's words, an accepted write's postings and credits
 * (byte for byte once each is encoded canonically: every posting, then
 * every credit) and the journal entry's added fields. A write the ledger
 * fails with an error, not a refusal, is not applied (its group is
 * dropped). A group the store drops
 * (its log not written, a disk full, a write refused after it wrote) is
 * taken back in the typed states too (yj_sm_rollback), and a durable one
 * committed (yj_sm_commit). The first disagreement is logged at ERROR
 * ("typed state disagrees with the ledger") with what each said, and the
 * shadow stops (the typed states would drift from there). Replays (the
 * store's recovery, Verify) go to the ledger alone: the typed states are
 * built from the whole journal once the store is open (yj_shadow_build).
 *
 * The readers' view (pub.h, yj_shadow_pub) is published from the typed
 * states after every durable group, and whole after the build; the
 * services answer the reads it holds from it too and compare
 * (yj_svc_config.pub).
 *
 * A diagnostic: it costs the writer a second apply an event. Not with the
 * log thread (`--log-thread`): two groups in flight would need a mark each.
 *
 * Checkpoints (ckpt.h; yj_shadow_set_checkpoint): the typed states are
 * written to the store's directory every so many entries, by a child
 * process forked between two groups (the writer waits only for the fork),
 * and at the end (yj_shadow_checkpoint). A build loads the newest one and
 * replays only the journal after it; one that is damaged, or not at an
 * entry of this journal, fails the build (DATA_LOSS naming the file).
 */
#ifndef YONGJIN_STATE_SHADOW_H
#define YONGJIN_STATE_SHADOW_H

#include <stdint.h>

#include "state/pub.h"
#include "yongjin/store.h"

typedef struct yj_shadow yj_shadow;

/* A shadow of inner (copied: its ctx must outlive the shadow), off until
 * yj_shadow_build. NULL on ENOMEM. */
yj_shadow *yj_shadow_new(const yj_apply_hook *inner);
void yj_shadow_free(yj_shadow *sh); /* NULL ok */
/* The hook to open the store with: inner's, its apply and group calls the
 * shadow's. Valid as long as sh. */
const yj_apply_hook *yj_shadow_hook(const yj_shadow *sh);
/* With on, the typed state writes (yongjind's default writer since the
 * forty-second session of issue 16, `--typed-writer`): a new write is applied to the
 * typed state alone, its answer is the write's, and the history rows it
 * leaves (yj_sm_history) are put into the store; the ledger's apply is not
 * called, so the store holds none of its derived state (only reads from
 * the view or from history can be answered). A recovery's replays go to
 * the typed states too, once the hook's recover_begin has built them at
 * the store's checkpointed head (before that, a replay fails); Verify is
 * yj_shadow_verify; no server without this mode, nor a yj tool, opens
 * such a store (store.c's meta mark). Call before the store opens. */
void yj_shadow_set_writer(yj_shadow *sh, int on);
/* (writer) After each durable group, every tenant it touched keeps at
 * most n orders hot: the oldest past it go cold (sm.h, yj_sm_cold_sweep:
 * their detail only in their records, loaded back when an event names
 * one). 0 (the default): every order stays hot. */
void yj_shadow_set_hot_orders(yj_shadow *sh, size_t n);
/* Checkpoints into dir (copied) every `every` entries (0: only at
 * yj_shadow_checkpoint), and a build loads them. Call before
 * yj_shadow_build. OK or RESOURCE_EXHAUSTED. */
yj_err yj_shadow_set_checkpoint(yj_shadow *sh, const char *dir, uint64_t every);
/* Writes a checkpoint of the states now, on the calling thread, once the
 * child writing one has ended; none when the shadow is off (a stopped
 * one may have drifted) or the newest is at the journal's head already.
 * Call after the store closed. OK, or ckpt.h's errors (the newest
 * checkpoint stays). */
yj_err yj_shadow_checkpoint(yj_shadow *sh, yj_msg *msg);
/* For a reader of another process's store (the yj tools): the
 * checkpoints in the directory yj_shadow_set_checkpoint named are read and
 * never written, nor its unfinished ones removed (a server's child may be
 * writing one). Call after yj_shadow_set_checkpoint. */
void yj_shadow_set_reader(yj_shadow *sh);
/* Frees the typed states and makes the view out of date (a reader that
 * needed them only for a store's replay of a running server's log: yj
 * dump, backup, verify). The shadow is off; yj_shadow_verify still
 * works (its states are its own). */
void yj_shadow_release(yj_shadow *sh);
/* With on, a build that starts from a checkpoint also replays the whole
 * journal into states of its own and requires every tenant's digest to
 * be the same (a diagnostic for tests: the start then costs what a build
 * without a checkpoint costs, and a difference fails the build,
 * DATA_LOSS naming the tenant). */
void yj_shadow_check_checkpoint(yj_shadow *sh, int on);
/* Builds the typed states from the store's journal (from the newest
 * checkpoint when one is set and found, then every entry after it, in
 * order, each checked against its entry as written) and turns the shadow
 * on. Call after the store opened and before it takes writes. OK, or the
 * error (the shadow stays off; msg says why). */
yj_err yj_shadow_build(yj_shadow *sh, yj_store *store, yj_msg *msg);
/* Verify over the typed states (Finance.Verify under --typed-writer; one
 * at a time, on a thread of its own, while the writer goes on: short read
 * snapshots of at most 4,096 entries each): every entry of the journal up
 * to the head when it began, linked and hashed as the chain says, then
 * replayed into fresh states, each checked against its entry as written
 * (its postings and credits, its added fields); and the newest checkpoint
 * (a copy of the live states, written by a child forked between two
 * groups), when there is one, compared with the replay at its entry:
 * every tenant's digest the same. rep: ok, or the first problem (naming
 * the entry, the tenant or the checkpoint's file); entries and the head's
 * hash; state_digest, when ok, SHA-256 over each tenant's id (a length
 * byte, its bytes) and its state's digest, the tenants ordered by their
 * ids' length, then bytes; state_records the tenants; replay_bytes the
 * most the states held (with the checkpoint's). OK (a problem is rep's),
 * or RESOURCE_EXHAUSTED (no memory, or past max_bytes; 0: half the
 * machine's memory), INTERNAL, a store error. */
yj_err yj_shadow_verify(yj_shadow *sh, yj_store *store, size_t max_bytes, yj_verify_report *rep,
                        yj_msg *msg);
/* The readers' view of the typed states (pub.h): built with them, then
 * published after every durable group, out of date (UNAVAILABLE) once the
 * shadow stops. Valid as long as sh. */
yj_pub *yj_shadow_pub(const yj_shadow *sh);
/* Writes compared, and disagreements found (0 or 1: it stops at the
 * first). */
uint64_t yj_shadow_compared(const yj_shadow *sh);
uint64_t yj_shadow_disagreements(const yj_shadow *sh);

#endif
