/*
 * tree.h — one tenant's member tree as typed tables: the first of issue
 * 16 item 2's typed tables (docs/architecture.md "Typed state").
 *
 * What it holds, for every member the tenant named: its bindings (each
 * referrer, time, lapse and journal position, newest first), its team
 * record (direct count, team size, team GMV, own GMV, height, team parent:
 * the latest binding's referrer) and how many of its direct members have
 * each height. Members are numbered densely in the order they were first
 * named (a uint32 index), and everything refers to a member by that index:
 * a walk up the tree follows indexes, never keys.
 *
 * Counters add modulo 2^64, as the keyed ledger's do. Deterministic: the
 * same calls in the same order give the same members,
 * numbers and values on any build, whatever the hash seed (the seed moves
 * only slots of the id index, which nothing outside this file sees);
 * yj_tree_digest is a digest of the state in the ids' byte order.
 *
 * What it is not yet: the writer's. The ledger still keeps this state as
 * keyed records (src/ledger/members.c); tests/unit/test_state_tree.c
 * applies the same events to both and requires the same answers. Writes
 * are all or nothing (memory is taken before anything changes), but there
 * is no undo of an accepted write yet (a group that fails after it): that
 * comes with the switch of the writer.
 *
 * Not thread-safe: one owner.
 */
#ifndef YONGJIN_STATE_TREE_H
#define YONGJIN_STATE_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "state/undo.h"
#include "yongjin/err.h"
#include "yongjin/rules.h"

#define YJ_TREE_NONE UINT32_MAX
/* The most members one tree numbers (indexes below YJ_TREE_NONE). */
#define YJ_TREE_MEMBERS_MAX (UINT32_MAX - 1)

typedef struct yj_tree yj_tree;

/* A member's team record and what it was upserted with. */
typedef struct yj_tree_member {
    int64_t direct;    /* direct members: bound under it by their latest binding */
    int64_t team_size; /* everyone below it, any depth */
    int64_t team_gmv;  /* the paid minus refunded of the orders of everyone below */
    int64_t own_gmv;   /* of its own orders */
    int32_t height;    /* the longest path down from it (0: no one below) */
    uint32_t parent;   /* its team parent (latest binding's referrer, lapsed or not), or NONE */
    uint32_t last;     /* its latest binding (yj_tree_binding_at), or NONE */
    int32_t tier;      /* UpsertMember's */
    uint8_t distributor;
    uint8_t upserted; /* an UpsertMember named it */
    uint8_t seen;     /* an accepted event named it, or posted to it (yj_sm's "seen" marks) */
} yj_tree_member;

/* One binding: made by an accepted bind, kept for the times before the
 * next (GetParent at a time, the chain of an order dated back). */
typedef struct yj_tree_binding {
    int64_t bound_at_ms;
    int64_t expires_at_ms; /* 0: never lapses */
    uint64_t seq;          /* the journal entry that made it */
    uint32_t referrer;
    uint32_t prev; /* the member's binding before it in journal order, or NONE */
} yj_tree_binding;

/* An empty tree whose id index hashes with seed (any value; a test gives
 * two trees different seeds to show the state does not depend on it).
 * NULL on ENOMEM. */
yj_tree *yj_tree_new(uint64_t seed);
void yj_tree_free(yj_tree *t); /* NULL ok */

/* The member numbered for id (n bytes, 1..YJ_ID_MAX), or YJ_TREE_NONE
 * when the tree has never named it. */
uint32_t yj_tree_find(const yj_tree *t, const char *id, size_t n);
/* Asks the cache for what a walk up the tree reads, a stage at a time (a
 * writer looking ahead in its group; each stage once the one before has
 * had time to arrive). yj_tree_prefetch_id: stage 0 the id's slot, 1 its
 * copy and its member record; returns the member's number as its slot
 * says (a guess, from stage 1; else NONE). yj_tree_prefetch_up: stage 0
 * m's latest binding, 1 returns that binding's referrer (a guess: the
 * latest, whatever its time; NONE when none) and asks for its record.
 * yj_tree_prefetch_str: stage 0 where member m's id is, 1 the id (what
 * the rules' walk up copies of each referrer: yj_tree_view).
 * They read nothing else and change nothing. */
uint32_t yj_tree_prefetch_id(const yj_tree *t, const char *id, size_t n, int stage);
uint32_t yj_tree_prefetch_up(const yj_tree *t, uint32_t m, int stage);
void yj_tree_prefetch_str(const yj_tree *t, uint32_t m, int stage);
/* The member numbered for id, numbered now (the next index) when new:
 * OK, or RESOURCE_EXHAUSTED (ENOMEM, or YJ_TREE_MEMBERS_MAX named) with
 * nothing changed. id must be 1..YJ_ID_MAX bytes (asserted: ids are
 * validated before they reach a table). */
yj_err yj_tree_intern(yj_tree *t, const char *id, size_t n, uint32_t *out);
/* Room for n more members and n more bindings, so that the next n
 * yj_tree_intern cannot fail: OK or RESOURCE_EXHAUSTED. (A bind takes
 * what it needs itself, before it changes anything.) */
yj_err yj_tree_reserve(yj_tree *t, size_t n);

size_t yj_tree_count(const yj_tree *t);
/* Member m's id (NUL-terminated, in the tree's memory) and record. */
const char *yj_tree_id(const yj_tree *t, uint32_t m);
/* yj_tree_id's length (its table keeps it: no strlen). */
size_t yj_tree_id_len(const yj_tree *t, uint32_t m);
const yj_tree_member *yj_tree_get(const yj_tree *t, uint32_t m);
const yj_tree_binding *yj_tree_binding_at(const yj_tree *t, uint32_t b);

/* Member m's referrer at at_ms: the binding last in journal order made at
 * or before at_ms, unless it had lapsed by then (RULES.md §3,
 * docs/rules.md "Members, binds, teams"); *b its binding. YJ_TREE_NONE
 * (and *b NONE) when none was in force. b may be NULL. */
uint32_t yj_tree_parent_at(const yj_tree *t, uint32_t m, int64_t at_ms, uint32_t *b);

/* The rules' view (rules.h) over the tree: parents, member records and
 * heights by id. The view keeps t; a member the tree never named reads as
 * unbound, not upserted, height 0. */
void yj_tree_view(yj_tree *t, yj_view *v);

/* With an undo log (NULL: none), every change the tree makes is logged
 * before it is made (undo.h). Room taken ahead (capacities, a member's
 * empty height vector) is not a change and stays after a rollback. */
void yj_tree_set_undo(yj_tree *t, yj_undo *u);

/* The tree into a snapshot, and back into an empty tree (0: the bytes are
 * not a tree this build wrote, or a reference is out of range; the tree
 * is then to be freed). (sm_snapshot.c; snap.h's writer and reader.) */
struct snap_w;
struct snap_r;
void yj_tree_save(const yj_tree *t, struct snap_w *w);
int yj_tree_load(yj_tree *t, struct snap_r *r);

/* The members whose team record (direct count, team size, team GMV, team
 * parent) changed since the last call, each once, in *members (valid
 * until the next change) and how many; the list is then empty. A change
 * a rollback took back may be listed (and a number past the count). Not
 * state. */
size_t yj_tree_changed_teams(yj_tree *t, const uint32_t **members);
/* Marks m seen (an accepted event named it or posted to it). Cannot fail. */
void yj_tree_mark_seen(yj_tree *t, uint32_t m);

/* UpsertMember: m's distributor flag and tier. Cannot fail. */
void yj_tree_upsert(yj_tree *t, uint32_t m, int distributor, int32_t tier);

/* A Bind the ledger applies (src/ledger/members.c, ledger_bind): checked
 * by the rules over the tree's view (yj_rules_check_bind: the binding in
 * force at at_ms, FIRST_TOUCH, cycles, the depth limit of the rules
 * version), then recorded: a binding made at at_ms by entry seq, lapsing
 * as the policy says, and when the member's team parent changes, its team
 * (size 1 + its team size, GMV its own and its team's) moved from the old
 * parent's ancestors to the new one's, direct counts and heights kept.
 * member and referrer are valid ids (1..YJ_ID_MAX bytes of the id
 * alphabet: asserted). OK; FAILED_PRECONDITION (why set) when the rules
 * refuse; RESOURCE_EXHAUSTED: those changed nothing, not even a number.
 * DATA_LOSS for a tree found damaged (a walk longer than any tree, a
 * height count missing: never in a tree only these functions changed),
 * which may be left changed: its owner drops the tree. */
yj_err yj_tree_apply_bind(yj_tree *t, const yj_policy *p, uint32_t rules, const char *member,
                          const char *referrer, int64_t at_ms, uint64_t seq, yj_msg *why);
/* yj_tree_apply_bind's check alone: OK, or the rules' refusal. Changes
 * nothing. (t is not const only for the view's type.) */
yj_err yj_tree_check_bind(yj_tree *t, const yj_policy *p, uint32_t rules, const char *member,
                          const char *referrer, int64_t at_ms, yj_msg *why);

/* DATA_LOSS when the walk up from m is longer than any tree (damage), else
 * OK: yj_tree_add_own_gmv cannot fail after it. */
yj_err yj_tree_check_up(const yj_tree *t, uint32_t m);
/* Adds gmv (negative for a refund) to m's own GMV and to the team GMV of
 * every ancestor. DATA_LOSS (nothing changed) for a walk longer than any
 * tree; else OK. */
yj_err yj_tree_add_own_gmv(yj_tree *t, uint32_t m, int64_t gmv);
/* yj_tree_add_own_gmv for an m that yj_tree_check_up found OK with no
 * member bound or moved since: it cannot fail, and the walk up is not
 * checked a second time (an order's walks were three: the check, the
 * add's own check and the add). */
void yj_tree_add_own_gmv_checked(yj_tree *t, uint32_t m, int64_t gmv);

/* SHA-256 of the tree's state, its members in their ids' byte order: each
 * id, team record, upsert and bindings (newest first) by ids, never by
 * indexes, so two trees of the same members and history digest the same
 * whatever order or seed numbered them. 1, or 0 on ENOMEM or an OpenSSL
 * failure. */
int yj_tree_digest(const yj_tree *t, uint8_t out[32]);

/* Heap bytes the tree holds (its tables, ids and bindings). */
size_t yj_tree_bytes(const yj_tree *t);

#endif
