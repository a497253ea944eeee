/*
 * sm_snapshot.c — one tenant's typed state as bytes and back (sm.h,
 * yj_sm_save and yj_sm_load): what a checkpoint will keep so that a
 * restart loads the state instead of replaying the whole journal (issue
 * 16 items 6 and 7).
 *
 * Layout: a header — "YJSM", the format's version, a fingerprint of this
 * build's table layouts, the body's length, the body's SHA-256, the
 * state's digest (yj_sm_digest) — then the body: the policy, the tree,
 * the scalars, the balances, every u64-keyed map (rows in the order they
 * were made), every id table (ids in number order, so that a load numbers
 * them alike), then each table in number order; tables of plain values are
 * written as they lie in memory, strings (line ids, reasons, references,
 * names, hosts, a guide's stores) by their bytes.
 *
 * A load checks the header, the length and the body's hash before it
 * reads a byte of the body, checks every count against what is left and
 * every reference against what it points into, and at the end the state's
 * digest against the one recorded: a damaged or foreign snapshot is
 * DATA_LOSS (msg says which check), never a state.
 */
#include <assert.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger_internal.h"
#include "state/sm_internal.h"
#include "state/snap.h"
#include "yongjin/sha256.h"

#define SNAP_MAGIC "YJSM"
/* 2: lines' SKU, category and quantity; orders' entries; 3: a payout
 * batch's month as written; 4: bindings' whole sources; 5: cold orders
 * (the orders' stubs, the hot ones in slots, the digest's sum of hashes);
 * 6: each hot order with its detail (its block's); 7: the order ids'
 * seed, and a forgotten order id (a cold order's) as its hash; 8: an
 * order's hash, which the digest's sum takes, XXH3's of its record
 * (sm_cold.c) instead of a SHA-256 of its content */
#define SNAP_VERSION 8u
/* a hot order's stub as a snapshot writes it (its slot is the orders
 * table's, which names its number) */
#define STUB_HOT (SM_COLD - 1)
#define SNAP_HEADER (4 + 4 + 8 + 8 + 32 + 32)

/* The layout of every table written as it lies in memory: a snapshot of
 * another layout is not read (its tables would be misread). */
static uint64_t layout(void)
{
    const uint64_t sizes[] = {sizeof(yj_tree_member),
                              sizeof(yj_tree_binding),
                              sizeof(sm_order),
                              sizeof(sm_ostub),
                              sizeof(sm_comm),
                              sizeof(sm_credit),
                              sizeof(sm_due),
                              sizeof(sm_batch),
                              sizeof(sm_gbind),
                              sizeof(sm_gexp),
                              offsetof(sm_group, joined),
                              offsetof(yj_sm, scalars_end) - offsetof(yj_sm, closed_through),
                              YJ_SM_BALANCE_FIELDS,
                              YJ_TREE_NONE};
    uint64_t h = 1469598103934665603ull; /* FNV-1a over the sizes */
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (sizes[i] >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    return h;
}

/* Whether text (len bytes) is a source as sm_source_text writes it: a
 * channel byte (a SourceChannel + 1), a campaign, '/', a variant, each
 * empty or an id (the reader of the view parses it so). */
static int source_text_valid(const char *text, size_t len)
{
    if (len < 2 || len > SM_SOURCE_TEXT_MAX ||
        (uint8_t)text[0] - 1u > (unsigned)YONGJIN__V1__SOURCE__SOURCE_CHANNEL__OTHER)
        return 0;
    const char *slash = memchr(text + 1, '/', len - 1);
    if (!slash) return 0;
    size_t cl = (size_t)(slash - text - 1), vl = len - 2 - cl;
    return (cl == 0 || yj_ledger_valid_id(text + 1, cl)) &&
           (vl == 0 || yj_ledger_valid_id(slash + 1, vl));
}

/* The maps and id tables, in the snapshot's order. */
#define SNAP_MAPS 10
#define SNAP_IDS 12
static void maps_of(const yj_sm *s, yj_map64 *out[SNAP_MAPS])
{
    yj_map64 *m[SNAP_MAPS] = {s->earn,      s->month,      s->mtot, s->pline_of, s->perf,
                              s->invite_of, s->live_stats, s->camp, s->bind_src, s->bind_source};
    memcpy(out, m, sizeof m);
}

static void ids_of(const yj_sm *s, yj_ids *out[SNAP_IDS])
{
    yj_ids *t[SNAP_IDS] = {s->order_ids,    s->refund_ids,   s->wd_ids,      s->batch_ids,
                           s->store_ids,    s->guide_ids,    s->session_ids, s->group_ids,
                           s->invite_pairs, s->campaign_ids, s->seen_ids,    s->source_ids};
    memcpy(out, t, sizeof t);
}

static size_t count(const yj_ids *t)
{
    return yj_ids_count(t);
}

/* ---- save ---- */

/* The hot orders, in their slots' order with the free slots left out:
 * each one's slot as it lies (its pointers are the load's to set), then
 * its strings' bytes, its lines, commissions, credits and entries; then
 * every order's stub. */
static void save_orders(const yj_sm *s, snap_w *w)
{
    for (size_t i = 0; i < s->n_hot; i++) {
        const sm_order *o = &s->orders[i];
        if (o->num == SM_COLD) continue;
        sm_order x; /* (its pointers not written: no address of this process in a file) */
        memcpy(&x, o, sizeof x);
        x.lines = NULL;
        x.comms = NULL;
        x.credits = NULL;
        x.seqs = NULL;
        x.block = NULL;
        memset(x.rh, 0, sizeof x.rh); /* (not state: a replay's order has none noted) */
        x.rh_ok = 0;
        sw_bytes(w, &x, sizeof x);
        size_t str_bytes = 0;
        for (uint32_t j = 0; j < o->n_lines; j++)
            str_bytes +=
                strlen(o->lines[j].id) + strlen(o->lines[j].sku) + strlen(o->lines[j].category) + 3;
        sw_u64(w, str_bytes);
        for (uint32_t j = 0; j < o->n_lines; j++) {
            const sm_line *l = &o->lines[j];
            sw_str(w, l->id);
            sw_u64(w, (uint64_t)l->amount_fen);
            sw_u64(w, (uint64_t)l->refunded_fen);
            sw_u64(w, (uint64_t)l->base_fen);
            sw_str(w, l->sku);
            sw_str(w, l->category);
            sw_u64(w, (uint64_t)l->quantity);
        }
        sw_bytes(w, o->comms, o->n_comm * sizeof *o->comms);
        sw_bytes(w, o->credits, o->n_credits * sizeof *o->credits);
        sw_bytes(w, o->seqs, o->n_seqs * sizeof *o->seqs);
    }
    for (size_t i = 0; i < count(s->order_ids); i++) {
        sm_ostub x = s->ostub[i];
        if (x.hot != SM_COLD) x = (sm_ostub){STUB_HOT, 0};
        sw_bytes(w, &x, sizeof x);
    }
}

static void save_body(const yj_sm *s, snap_w *w)
{
    sw_u64(w, s->policy_len);
    sw_bytes(w, s->policy_raw, s->policy_len);
    yj_tree_save(s->tree, w);
    { /* the scalars, with the slots as save_orders writes them: none free */
        yj_sm c;
        size_t off = offsetof(yj_sm, closed_through),
               len = (size_t)(s->scalars_end - (const char *)&s->closed_through);
        memcpy((char *)&c + off, &s->closed_through, len);
        c.n_hot = 0;
        c.free_slot = SM_COLD;
        c.hq_tail = 0;      /* (the load queues the hot orders anew) */
        c.detail_bytes = 0; /* (and counts their blocks) */
        for (size_t i = 0; i < s->n_hot; i++)
            c.n_hot += s->orders[i].num != SM_COLD;
        sw_bytes(w, (const char *)&c + off, len);
    }
    sw_bytes(w, s->bal, s->bal_n * sizeof s->bal[0]);
    yj_map64 *maps[SNAP_MAPS];
    maps_of(s, maps);
    for (int i = 0; i < SNAP_MAPS; i++) {
        size_t n = yj_map64_count(maps[i]);
        sw_u64(w, n);
        for (size_t r = 0; r < n; r++) {
            sw_u64(w, yj_map64_key_at(maps[i], r));
            sw_bytes(w, yj_map64_at(maps[i], r), yj_map64_width(maps[i]) * sizeof(int64_t));
        }
    }
    yj_ids *ids[SNAP_IDS];
    ids_of(s, ids);
    /* the order ids' seed and hashes: a forgotten id (ids.h) is written as
     * no bytes and its hash, which places it in an index of that seed */
    uint64_t *hashes = NULL;
    if (yj_ids_gone_count(s->order_ids) && yj_ids_hashes(s->order_ids, &hashes) != YJ_OK)
        w->fail = 1;
    sw_u64(w, yj_ids_seed(s->order_ids));
    for (int i = 0; i < SNAP_IDS; i++) {
        sw_u64(w, count(ids[i]));
        for (size_t k = 0; k < count(ids[i]); k++) {
            const char *id = yj_ids_str(ids[i], (uint32_t)k);
            sw_str(w, id);
            if (!id) sw_u64(w, hashes ? hashes[k] : 0); /* (only the order ids forget) */
        }
    }
    free(hashes);
    save_orders(s, w);
    sw_bytes(w, s->refund_seq, count(s->refund_ids) * sizeof *s->refund_seq);
    sw_bytes(w, s->due, s->n_due * sizeof *s->due);
    for (size_t i = 0; i < count(s->wd_ids); i++) {
        const sm_withdrawal *x = &s->wds[i];
        const uint64_t v[] = {x->member,
                              (uint64_t)x->status,
                              (uint64_t)x->amount,
                              (uint64_t)x->fee,
                              (uint64_t)x->requested_at_ms,
                              (uint64_t)x->reviewed_at_ms,
                              (uint64_t)x->paid_at_ms,
                              x->requested_seq};
        sw_bytes(w, v, sizeof v);
        sw_str(w, x->reason);
        sw_str(w, x->external_ref);
    }
    sw_bytes(w, s->batches, count(s->batch_ids) * sizeof *s->batches);
    for (size_t i = 0; i < s->n_plines; i++) {
        sw_u64(w, (uint64_t)s->plines[i].amount);
        sw_u64(w, (uint64_t)s->plines[i].status);
        sw_str(w, s->plines[i].external_ref);
    }
    for (size_t i = 0; i < count(s->store_ids); i++)
        sw_str(w, s->store_names[i]);
    for (size_t i = 0; i < count(s->guide_ids); i++) {
        sw_u64(w, s->guides[i].n_stores);
        for (uint32_t k = 0; k < s->guides[i].n_stores; k++)
            sw_str(w, s->guides[i].stores[k]);
    }
    sw_bytes(w, s->gb, s->n_gb * sizeof *s->gb);
    sw_bytes(w, s->gb_last, s->gb_n * sizeof *s->gb_last);
    for (size_t i = 0; i < count(s->session_ids); i++) {
        const sm_session *x = &s->sessions[i];
        sw_str(w, x->host_guide);
        sw_str(w, x->host_store);
        const uint64_t v[] = {(uint64_t)x->opened_at_ms, (uint64_t)x->closed_at_ms,
                              (uint64_t)x->closed};
        sw_bytes(w, v, sizeof v);
    }
    for (size_t i = 0; i < count(s->group_ids); i++) {
        const sm_group *g = &s->groups[i];
        sw_bytes(w, g, offsetof(sm_group, joined));
        sw_bytes(w, g->joined, g->n_joined * sizeof *g->joined);
        sw_bytes(w, g->missed, g->n_missed * sizeof *g->missed);
    }
    sw_bytes(w, s->gexp, s->n_gexp * sizeof *s->gexp);
}

_Static_assert(SNAP_HEADER == YJ_SM_SNAP_HEADER, "the header's size, as sm.h says it");

/* The header: magic, version, layout, the body's length and SHA-256, the
 * state's digest. */
static void fill_header(uint8_t h[SNAP_HEADER], uint64_t body_len, const uint8_t sha[32],
                        const uint8_t digest[32])
{
    uint64_t lay = layout();
    uint32_t version = SNAP_VERSION;
    memcpy(h, SNAP_MAGIC, 4);
    memcpy(h + 4, &version, 4);
    memcpy(h + 8, &lay, 8);
    memcpy(h + 16, &body_len, 8);
    memcpy(h + 24, sha, 32);
    memcpy(h + 56, digest, 32);
}

yj_err yj_sm_save(const yj_sm *s, yj_buf *out)
{
    uint8_t digest[32], sha[32];
    if (!yj_sm_digest(s, digest)) return YJ_RESOURCE_EXHAUSTED;
    size_t start = out->len;
    snap_w w = {out, 0, NULL, NULL, 0};
    uint8_t header[SNAP_HEADER] = {0};
    sw_bytes(&w, header, sizeof header); /* (filled in below) */
    save_body(s, &w);
    if (w.fail) {
        out->len = start;
        return YJ_RESOURCE_EXHAUSTED;
    }
    uint8_t *h = out->data + start, *body = h + SNAP_HEADER;
    uint64_t body_len = out->len - start - SNAP_HEADER;
    if (!yj_sha256(body, body_len, sha)) {
        out->len = start;
        return YJ_RESOURCE_EXHAUSTED;
    }
    fill_header(h, body_len, sha, digest);
    return YJ_OK;
}

typedef struct fd_sink {
    int fd, err; /* errno of the write that failed */
    EVP_MD_CTX *md;
    uint64_t n;
} fd_sink;

static int fd_put(void *ctx, const void *p, size_t n)
{
    fd_sink *k = ctx;
    if (EVP_DigestUpdate(k->md, p, n) != 1) {
        k->err = ENOMEM;
        return -1;
    }
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(k->fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            k->err = w == 0 ? EIO : errno;
            return -1;
        }
        b += w;
        n -= (size_t)w;
        k->n += (uint64_t)w;
    }
    return 0;
}

yj_err yj_sm_save_fd(const yj_sm *s, int fd, size_t run, uint64_t *bytes,
                     uint8_t header[YJ_SM_SNAP_HEADER], yj_msg *msg)
{
    uint8_t digest[32], sha[32];
    if (!yj_sm_digest(s, digest))
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a digest");
    off_t start = lseek(fd, 0, SEEK_CUR);
    if (start < 0) return yj_fail(msg, YJ_INTERNAL, "snapshot: lseek: %s", strerror(errno));
    fd_sink k = {fd, 0, EVP_MD_CTX_new(), 0};
    yj_buf b = {0};
    snap_w w = {&b, 0, fd_put, &k, run ? run : SNAP_FLUSH};
    yj_err err = YJ_OK;
    uint8_t zeros[SNAP_HEADER] = {0};
    if (!k.md || EVP_DigestInit_ex(k.md, yj_sha256_md(), NULL) != 1) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a digest");
        goto out;
    }
    if (fd_put(&k, zeros, sizeof zeros) != 0) { /* (the header's place: written last) */
        err = yj_fail(msg, YJ_INTERNAL, "snapshot: write: %s", strerror(k.err));
        goto out;
    }
    if (EVP_DigestInit_ex(k.md, yj_sha256_md(), NULL) != 1) { /* (the body's alone) */
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a digest");
        goto out;
    }
    uint64_t head = k.n;
    save_body(s, &w);
    sw_flush(&w);
    unsigned sn = 0;
    if (w.fail) {
        err = k.err ? yj_fail(msg, YJ_INTERNAL, "snapshot: write: %s", strerror(k.err))
                    : yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a snapshot's buffer");
        goto out;
    }
    if (EVP_DigestFinal_ex(k.md, sha, &sn) != 1 || sn != 32) {
        err = yj_fail(msg, YJ_INTERNAL, "snapshot: the body's digest failed");
        goto out;
    }
    fill_header(header, k.n - head, sha, digest);
    for (size_t done = 0; done < SNAP_HEADER;) {
        ssize_t r = pwrite(fd, header + done, SNAP_HEADER - done, start + (off_t)done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            err = yj_fail(msg, YJ_INTERNAL, "snapshot: write: %s",
                          r == 0 ? "no progress" : strerror(errno));
            goto out;
        }
        done += (size_t)r;
    }
    *bytes = k.n;
out:
    yj_buf_free(&b);
    EVP_MD_CTX_free(k.md);
    return err;
}

/* ---- load ---- */

/* A NUL-terminated copy of n bytes at p in the state's arena ("" for none). */
static const char *copy(yj_sm *s, snap_r *r, const char *p, size_t n)
{
    if (r->bad) return "";
    char *c = yj_arena_alloc(&s->strs, n + 1);
    if (!c) {
        r->bad = 1;
        return "";
    }
    if (n) memcpy(c, p, n);
    c[n] = 0;
    return c;
}

/* Room for n elements of size each in *a (its capacity in *cap), made once. */
static void *table(snap_r *r, void **a, size_t *cap, size_t n, size_t each)
{
    if (r->bad) return NULL;
    void *p = calloc(n ? n : 1, each);
    if (!p) {
        r->bad = 1;
        return NULL;
    }
    free(*a);
    *a = p;
    *cap = n ? n : 1;
    return p;
}

/* A line's string copied to *at in its order's block, which ends at end
 * ("" for none; bad past the block's room). */
static const char *read_block_str(snap_r *r, char **at, const char *end)
{
    size_t n;
    const char *p = sr_str(r, YJ_ID_MAX, &n);
    if (r->bad || !n) return "";
    if ((size_t)(end - *at) < n + 1) {
        r->bad = 1;
        return "";
    }
    char *c = *at;
    memcpy(c, p, n);
    c[n] = 0;
    *at += n + 1;
    return c;
}

/* The hot orders' slots and detail (save_orders): each one's block made
 * and filled; a count past its limits, or a block's strings past their
 * bytes, is bad. Every slot read is whole (its block, or NULL) when it
 * returns, so that a state refused frees what it made. */
static void load_orders(yj_sm *s, snap_r *r)
{
    if (!table(r, (void **)&s->orders, &s->orders_cap, s->n_hot, sizeof *s->orders)) return;
    for (size_t i = 0; i < s->n_hot && !r->bad; i++) {
        sm_order *o = &s->orders[i];
        sr_bytes(r, o, sizeof *o);
        o->block = NULL;
        o->seqs_own = 0;
        o->rh_ok = 0; /* (a drop encodes it afresh: nothing of a file is taken for its hash) */
        size_t str_bytes = sr_u64(r);
        if (r->bad || o->num == SM_COLD || o->n_lines < 1 || o->n_lines > YJ_LINES_MAX ||
            o->n_comm > o->cap_comm || o->n_comm > YJ_COMMISSIONS_MAX ||
            o->cap_comm > YJ_COMMISSIONS_MAX + YJ_LINES_MAX || o->n_credits > YJ_CREDITS_MAX ||
            o->n_seqs < 1 || o->n_seqs > SM_SEQS_MAX ||
            str_bytes > (size_t)o->n_lines * 3 * (YJ_ID_MAX + 1)) {
            r->bad = 1;
            for (size_t k = i; k < s->n_hot; k++) /* (none of these has a block) */
                s->orders[k].num = SM_COLD;
            break;
        }
        uint32_t cap_seqs = o->n_seqs > SM_SEQS_INLINE ? o->n_seqs : SM_SEQS_INLINE;
        size_t bytes =
            (size_t)o->n_lines * sizeof(sm_line) + (size_t)o->cap_comm * sizeof(sm_comm) +
            (size_t)o->n_credits * sizeof(sm_credit) + cap_seqs * sizeof(uint64_t) + str_bytes;
        void *block = malloc(bytes);
        if (!block) {
            r->bad = 1;
            for (size_t k = i; k < s->n_hot; k++)
                s->orders[k].num = SM_COLD;
            break;
        }
        uint32_t n_comm = o->n_comm, n_credits = o->n_credits, n_seqs = o->n_seqs;
        sm_order_block(o, block, o->n_lines, o->cap_comm, n_credits);
        o->bytes = (uint32_t)bytes;
        s->detail_bytes += bytes;
        o->cap_seqs = cap_seqs; /* (sm_order_block's room is the inline one: cap_seqs fits) */
        char *str = (char *)(o->seqs + cap_seqs), *end = (char *)block + bytes;
        for (uint32_t j = 0; j < o->n_lines && !r->bad; j++) {
            sm_line *l = &o->lines[j];
            l->id = read_block_str(r, &str, end);
            l->amount_fen = (int64_t)sr_u64(r);
            l->refunded_fen = (int64_t)sr_u64(r);
            l->base_fen = (int64_t)sr_u64(r);
            l->sku = read_block_str(r, &str, end);
            l->category = read_block_str(r, &str, end);
            l->quantity = (int64_t)sr_u64(r);
        }
        o->n_comm = n_comm;
        o->n_credits = n_credits;
        o->n_seqs = n_seqs;
        sr_bytes(r, o->comms, n_comm * sizeof *o->comms);
        sr_bytes(r, o->credits, n_credits * sizeof *o->credits);
        sr_bytes(r, o->seqs, n_seqs * sizeof *o->seqs);
    }
}

static const char *read_str(yj_sm *s, snap_r *r, size_t max)
{
    size_t n;
    const char *p = sr_str(r, max, &n);
    return copy(s, r, p, n);
}

static void load_body(yj_sm *s, snap_r *r)
{
    size_t plen;
    const char *pol = sr_str(r, 1 << 20, &plen);
    if (!r->bad && plen) {
        Yongjin__V1__Policy *pb;
        s->policy_raw = malloc(plen);
        if (!s->policy_raw || ledger_policy_unpack((const uint8_t *)pol, plen, &pb) != YJ_OK) {
            r->bad = 1;
            return;
        }
        memcpy(s->policy_raw, pol, plen);
        s->policy_len = plen;
        ledger_policy_to_rules(pb, &s->policy);
        yongjin__v1__policy__free_unpacked(pb, NULL);
    }
    if (r->bad || !yj_tree_load(s->tree, r)) {
        r->bad = 1;
        return;
    }
    size_t members = yj_tree_count(s->tree), nb = 0;
    sr_bytes(r, &s->closed_through, (size_t)(s->scalars_end - (char *)&s->closed_through));
    /* every count a table is made by: none more than bytes are left (each
     * element takes at least one), nor than the members for theirs */
    size_t left = r->n - r->at;
    if (r->bad || s->bal_n > members || s->gb_n > members || s->n_due > left ||
        s->n_plines > left || s->n_gb > left || s->n_gexp > left || s->n_hot > left) {
        s->n_hot = 0; /* (no slot read: none to free) */
        r->bad = 1;
        return;
    }
    if (table(r, (void **)&s->bal, &s->bal_cap, members + 1, sizeof s->bal[0]))
        sr_bytes(r, s->bal, s->bal_n * sizeof s->bal[0]);
    yj_map64 *maps[SNAP_MAPS];
    maps_of(s, maps);
    for (int i = 0; i < SNAP_MAPS && !r->bad; i++) {
        size_t width = yj_map64_width(maps[i]), n = sr_count(r, 8 + width * 8);
        if (r->bad || yj_map64_reserve(maps[i], n) != YJ_OK) {
            r->bad = 1;
            break;
        }
        for (size_t k = 0; k < n && !r->bad; k++) {
            uint64_t key = sr_u64(r);
            if (yj_map64_find(maps[i], key)) { /* (a key once) */
                r->bad = 1;
                break;
            }
            sr_bytes(r, yj_map64_row(maps[i], key), width * sizeof(int64_t));
        }
    }
    yj_ids *ids[SNAP_IDS];
    ids_of(s, ids);
    if (!yj_ids_reseed(s->order_ids, sr_u64(r))) r->bad = 1; /* (a forgotten id's place) */
    for (int i = 0; i < SNAP_IDS && !r->bad; i++) {
        size_t n = sr_count(r, 9); /* (the index's room for n: the copies' as they come,
                                     a reserve would make blocks for n of the longest) */
        if (!r->bad && yj_ids_reserve_index(ids[i], n) != YJ_OK) r->bad = 1;
        for (size_t k = 0; k < n && !r->bad; k++) {
            size_t len;
            const char *id = sr_str(r, YJ_IDS_KEY_MAX, &len);
            uint32_t got;
            yj_err err = r->bad   ? YJ_DATA_LOSS
                         : len    ? yj_ids_add(ids[i], id, len, &got)
                         : i == 0 ? yj_ids_add_gone(ids[i], sr_u64(r), &got) /* (forgotten) */
                                  : YJ_DATA_LOSS;
            if (r->bad || err != YJ_OK || got != k) /* (an id twice: ALREADY_EXISTS) */
                r->bad = 1;
        }
    }
    if (r->bad) return;
    size_t orders = count(s->order_ids), refunds = count(s->refund_ids), wds = count(s->wd_ids),
           batches = count(s->batch_ids), stores = count(s->store_ids),
           guides = count(s->guide_ids), sessions = count(s->session_ids),
           groups = count(s->group_ids), campaigns = count(s->campaign_ids);
    if (s->n_hot > orders || s->n_cold != orders - s->n_hot) r->bad = 1;
    if (s->free_slot != SM_COLD || s->hq_tail || s->detail_bytes)
        r->bad = 1; /* (a snapshot's: none free, none queued, none counted) */
    load_orders(s, r);
    if (table(r, (void **)&s->ostub, &s->ostub_cap, orders, sizeof *s->ostub))
        sr_bytes(r, s->ostub, orders * sizeof *s->ostub);
    if (table(r, (void **)&s->refund_seq, &s->refund_cap, refunds, sizeof *s->refund_seq))
        sr_bytes(r, s->refund_seq, refunds * sizeof *s->refund_seq);
    if (table(r, (void **)&s->due, &s->due_cap, s->n_due, sizeof *s->due))
        sr_bytes(r, s->due, s->n_due * sizeof *s->due);
    if (table(r, (void **)&s->wds, &s->wd_cap, wds, sizeof *s->wds))
        for (size_t i = 0; i < wds && !r->bad; i++) {
            sm_withdrawal *x = &s->wds[i];
            uint64_t v[8];
            sr_bytes(r, v, sizeof v);
            *x = (sm_withdrawal){(uint32_t)v[0], (int)v[1],     (int64_t)v[2], (int64_t)v[3],
                                 (int64_t)v[4],  (int64_t)v[5], (int64_t)v[6], v[7],
                                 NULL,           NULL};
            sr_ref(r, v[0], members, 0);
            x->reason = read_str(s, r, 4096);
            x->external_ref = read_str(s, r, 4096);
        }
    if (table(r, (void **)&s->batches, &s->batch_cap, batches, sizeof *s->batches))
        sr_bytes(r, s->batches, batches * sizeof *s->batches);
    if (table(r, (void **)&s->plines, &s->pline_cap, s->n_plines, sizeof *s->plines))
        for (size_t i = 0; i < s->n_plines && !r->bad; i++) {
            s->plines[i].amount = (int64_t)sr_u64(r);
            s->plines[i].status = (int)sr_u64(r);
            s->plines[i].external_ref = read_str(s, r, 4096);
        }
    if (table(r, (void **)&s->store_names, &s->store_cap, stores, sizeof *s->store_names))
        for (size_t i = 0; i < stores && !r->bad; i++)
            s->store_names[i] = read_str(s, r, 4096);
    if (table(r, (void **)&s->guides, &s->guide_cap, guides, sizeof *s->guides))
        for (size_t i = 0; i < guides && !r->bad; i++) {
            size_t n = sr_count(r, 8);
            const char **list = n ? yj_arena_alloc(&s->strs, n * sizeof *list) : NULL;
            if (n && !list) r->bad = 1;
            for (size_t k = 0; k < n && !r->bad;
                 k++) { /* a store's own copy, as UpsertGuide keeps */
                size_t len;
                const char *id = sr_str(r, YJ_ID_MAX, &len);
                uint32_t st = r->bad || !len ? YJ_IDS_NONE : yj_ids_find(s->store_ids, id, len);
                if (st == YJ_IDS_NONE)
                    r->bad = 1;
                else
                    list[k] = yj_ids_str(s->store_ids, st);
            }
            s->guides[i] = (sm_guide){list, (uint32_t)n};
        }
    if (table(r, (void **)&s->gb, &s->gb_cap, s->n_gb, sizeof *s->gb))
        sr_bytes(r, s->gb, s->n_gb * sizeof *s->gb);
    if (s->gb_n > members) r->bad = 1;
    if (table(r, (void **)&s->gb_last, &s->gb_last_cap, members + 1, sizeof *s->gb_last))
        sr_bytes(r, s->gb_last, s->gb_n * sizeof *s->gb_last);
    if (table(r, (void **)&s->sessions, &s->session_cap, sessions, sizeof *s->sessions))
        for (size_t i = 0; i < sessions && !r->bad; i++) {
            sm_session *x = &s->sessions[i];
            x->host_guide = read_str(s, r, YJ_ID_MAX);
            x->host_store = read_str(s, r, YJ_ID_MAX);
            uint64_t v[3];
            sr_bytes(r, v, sizeof v);
            x->opened_at_ms = (int64_t)v[0];
            x->closed_at_ms = (int64_t)v[1];
            x->closed = (int)v[2];
        }
    if (table(r, (void **)&s->groups, &s->group_cap, groups, sizeof *s->groups))
        for (size_t i = 0; i < groups && !r->bad; i++) {
            sm_group *g = &s->groups[i];
            sr_bytes(r, g, offsetof(sm_group, joined));
            size_t nj = g->n_joined, nm = g->n_missed;
            if (r->bad || nj > (r->n - r->at) / 4 || nm > (r->n - r->at) / 4) {
                r->bad = 1;
                break;
            }
            g->joined = malloc((nj ? nj : 1) * sizeof *g->joined);
            g->missed = malloc((nm ? nm : 1) * sizeof *g->missed);
            s->groups_made = i + 1; /* (its lists are freed with the state) */
            if (!g->joined || !g->missed) {
                r->bad = 1;
                break;
            }
            g->cap_joined = (uint32_t)(nj ? nj : 1);
            g->cap_missed = (uint32_t)(nm ? nm : 1);
            sr_bytes(r, g->joined, nj * sizeof *g->joined);
            sr_bytes(r, g->missed, nm * sizeof *g->missed);
            sr_ref(r, g->leader, members, 0);
            for (size_t k = 0; k < nj; k++)
                sr_ref(r, g->joined[k], orders, 0);
            for (size_t k = 0; k < nm; k++)
                sr_ref(r, g->missed[k], orders, 0);
        }
    if (table(r, (void **)&s->gexp, &s->gexp_cap, s->n_gexp, sizeof *s->gexp))
        sr_bytes(r, s->gexp, s->n_gexp * sizeof *s->gexp);
    if (r->bad) return;
    /* every reference in range (defense in depth: the body's hash already
     * said these are the bytes written) */
    nb = s->n_gb;
    /* the stubs: each hot one named by one slot, the cold ones counted */
    size_t cold = 0;
    for (size_t i = 0; i < orders && !r->bad; i++)
        if (s->ostub[i].hot == SM_COLD)
            cold++;
        else if (s->ostub[i].hot != STUB_HOT || s->ostub[i].h ||
                 yj_ids_gone(s->order_ids, (uint32_t)i)) /* (a hot order's id is kept) */
            r->bad = 1;
    if (cold != s->n_cold) r->bad = 1;
    for (size_t i = 0; i < s->n_hot && !r->bad; i++) { /* (no queue: yj_sm_cold_on) */
        uint32_t num = s->orders[i].num;
        if (num >= orders || s->ostub[num].hot != STUB_HOT)
            r->bad = 1;
        else
            s->ostub[num].hot = (uint32_t)i;
    }
    for (size_t i = 0; i < s->n_hot && !r->bad; i++) {
        const sm_order *o = &s->orders[i];
        sr_ref(r, o->buyer, members, 0);
        for (uint32_t k = 0; k < o->n_comm && !r->bad; k++) { /* a commission's line and level */
            const sm_comm *c = &o->comms[k];
            sr_ref(r, c->member, members, 0);
            if ((c->line != YJ_LINE_ORDER && (c->line < 0 || (uint32_t)c->line >= o->n_lines)) ||
                c->level >= 16)
                r->bad = 1;
        }
        for (uint32_t k = 0; k < o->n_credits && !r->bad; k++) {
            sr_ref(r, o->credits[k].guide, guides, 0);
            sr_ref(r, o->credits[k].store, stores, 0);
        }
        sr_ref(r, o->session, sessions, 1);
        sr_ref(r, o->inviter, members, 1);
        sr_ref(r, o->group, groups, 1);
        sr_ref(r, o->missed, groups, 1);
        sr_ref(r, o->campaign, campaigns, 1);
        for (uint32_t k = 1; k < o->n_seqs && !r->bad; k++) /* its entries, in journal order */
            if (o->seqs[k] <= o->seqs[k - 1]) r->bad = 1;
    }
    for (size_t i = 0; i < s->n_due && !r->bad; i++) { /* (a due order is hot: sm_cold.c) */
        sr_ref(r, s->due[i].order, orders, 0);
        if (!r->bad && s->ostub[s->due[i].order].hot == SM_COLD) r->bad = 1;
    }
    for (size_t i = 0; i < groups && !r->bad; i++) { /* (a group's orders keep their ids) */
        for (uint32_t k = 0; k < s->groups[i].n_joined; k++)
            if (yj_ids_gone(s->order_ids, s->groups[i].joined[k])) r->bad = 1;
        for (uint32_t k = 0; k < s->groups[i].n_missed; k++)
            if (yj_ids_gone(s->order_ids, s->groups[i].missed[k])) r->bad = 1;
    }
    for (size_t i = 0; i < groups && !r->bad; i++) /* (an open group's orders too, with room
                                                       for their retro commissions) */
        for (uint32_t k = 0; s->groups[i].status == YJ_GROUP_OPEN && k < s->groups[i].n_joined;
             k++) {
            uint32_t slot = s->ostub[s->groups[i].joined[k]].hot;
            if (slot == SM_COLD ||
                s->orders[slot].n_comm + s->orders[slot].n_lines > s->orders[slot].cap_comm)
                r->bad = 1;
        }
    for (size_t i = 0; i < nb && !r->bad; i++) {
        sr_ref(r, s->gb[i].guide, guides, 0);
        sr_ref(r, s->gb[i].prev, i, 1);
    }
    for (size_t i = 0; i < s->gb_n && !r->bad; i++)
        sr_ref(r, s->gb_last[i], nb, 1);
    for (size_t i = 0; i < s->n_gexp && !r->bad; i++)
        sr_ref(r, s->gexp[i].group, groups, 0);
    if (s->n_plines > yj_map64_count(s->pline_of) || s->n_due > orders) r->bad = 1;
    for (size_t i = 0; i < yj_map64_count(s->pline_of) && !r->bad; i++)
        sr_ref(r, (uint64_t)yj_map64_at(s->pline_of, i)[0], s->n_plines, 0);
    /* the maps' keys and values name members, orders' batches, sessions,
     * guides and stores, bindings and campaigns (the digest walks them) */
    size_t bindings = 0;
    for (size_t m = 0; m < members; m++)
        for (uint32_t b = yj_tree_get(s->tree, (uint32_t)m)->last; b != YJ_TREE_NONE && !r->bad;
             b = yj_tree_binding_at(s->tree, b)->prev)
            bindings++;
    for (size_t i = 0; i < yj_map64_count(s->bind_src) && !r->bad; i++) {
        sr_ref(r, yj_map64_key_at(s->bind_src, i), bindings, 0);
        sr_ref(r, (uint64_t)yj_map64_at(s->bind_src, i)[0], campaigns, 0);
    }
    for (size_t i = 0; i < yj_map64_count(s->bind_source) && !r->bad; i++) {
        sr_ref(r, yj_map64_key_at(s->bind_source, i), bindings, 0);
        sr_ref(r, (uint64_t)yj_map64_at(s->bind_source, i)[0], count(s->source_ids), 0);
    }
    for (size_t i = 0; i < count(s->source_ids) && !r->bad; i++)
        r->bad = !source_text_valid(yj_ids_str(s->source_ids, (uint32_t)i),
                                    yj_ids_len(s->source_ids, (uint32_t)i));
    for (size_t i = 0; i < batches && !r->bad;
         i++) { /* each month as written, as the check reads it */
        const sm_batch *b = &s->batches[i];
        uint32_t m;
        yj_msg ignored;
        r->bad = memchr(b->month_text, 0, sizeof b->month_text) != b->month_text + 7 ||
                 ledger_parse_month_as_written("", b->month_text, &m, &ignored) != YJ_OK ||
                 m != b->month;
    }
    for (size_t i = 0; i < yj_map64_count(s->camp) && !r->bad; i++)
        sr_ref(r, yj_map64_key_at(s->camp, i), campaigns, 0);
    yj_map64 *by_member[2] = {s->earn, s->month};
    for (int j = 0; j < 2; j++)
        for (size_t i = 0; i < yj_map64_count(by_member[j]) && !r->bad; i++)
            sr_ref(r, yj_map64_key_at(by_member[j], i) >> 32, members, 0);
    for (size_t i = 0; i < yj_map64_count(s->pline_of) && !r->bad; i++) {
        uint64_t k = yj_map64_key_at(s->pline_of, i);
        sr_ref(r, k >> 32, batches, 0);
        sr_ref(r, (uint32_t)k, members, 0);
        if (!r->bad) { /* the line's own key (pline_of's values were checked above) */
            sm_pline *l = &s->plines[yj_map64_at(s->pline_of, i)[0]];
            l->batch = (uint32_t)(k >> 32);
            l->member = (uint32_t)k;
        }
    }
    for (size_t i = 0; i < yj_map64_count(s->perf) && !r->bad; i++) {
        uint64_t k = yj_map64_key_at(s->perf, i), who = k >> 56, num = (k >> 24) & 0xffffffffu;
        if (who == 1)
            sr_ref(r, num, guides, 0);
        else if (who == 2)
            sr_ref(r, num, stores, 0);
        else
            r->bad = 1;
    }
    for (size_t i = 0; i < yj_map64_count(s->invite_of) && !r->bad; i++) {
        uint64_t k = yj_map64_key_at(s->invite_of, i);
        sr_ref(r, k >> 32, sessions, 0);
        sr_ref(r, (uint32_t)k, members, 0);
        sr_ref(r, (uint64_t)yj_map64_at(s->invite_of, i)[0], members, 0);
    }
    for (size_t i = 0; i < yj_map64_count(s->live_stats) && !r->bad; i++) {
        uint64_t k = yj_map64_key_at(s->live_stats, i), who = (uint32_t)k;
        sr_ref(r, k >> 32, sessions, 0);
        if (who) sr_ref(r, who - 1, members, 0);
    }
    if (r->at != r->n) r->bad = 1; /* (nothing after the last table) */
}

/* A body's SHA-256, hashed on a thread of its own by yj_sm_load. */
#define HASH_THREAD_MIN (64 * 1024) /* (a workload's of the unit tests: threaded) */
typedef struct hash_job {
    const uint8_t *p;
    size_t n;
    uint8_t out[32];
    int ok;
    pthread_t th;
} hash_job;

static void *hash_body(void *arg)
{
    hash_job *j = arg;
    j->ok = yj_sha256(j->p, j->n, j->out);
    return NULL;
}

/* beside's run on a thread of its own (yj_sm_load_beside). */
typedef struct beside_job {
    yj_sm_beside_fn fn;
    void *ctx;
    yj_sm *s;
    yj_err err;
    pthread_t th;
} beside_job;

static void *run_beside(void *arg)
{
    beside_job *j = arg;
    j->err = j->fn(j->ctx, j->s);
    return NULL;
}

yj_err yj_sm_load(const uint8_t *p, size_t n, uint64_t seed, yj_sm **out, yj_msg *msg)
{
    return yj_sm_load_beside(p, n, seed, NULL, NULL, out, msg);
}

yj_err yj_sm_load_beside(const uint8_t *p, size_t n, uint64_t seed, yj_sm_beside_fn beside,
                         void *ctx, yj_sm **out, yj_msg *msg)
{
    *out = NULL;
    uint32_t version;
    uint64_t lay, body_len;
    if (n < SNAP_HEADER || memcmp(p, SNAP_MAGIC, 4))
        return yj_fail(msg, YJ_DATA_LOSS, "not a typed state's snapshot (its header)");
    memcpy(&version, p + 4, 4);
    memcpy(&lay, p + 8, 8);
    memcpy(&body_len, p + 16, 8);
    if (version != SNAP_VERSION || lay != layout())
        return yj_fail(msg, YJ_DATA_LOSS,
                       "a snapshot of format %u or another build's layout: this build reads "
                       "format %u of its own layout only (replay the journal instead)",
                       (unsigned)version, SNAP_VERSION);
    if (body_len != n - SNAP_HEADER)
        return yj_fail(msg, YJ_DATA_LOSS, "a snapshot of %llu bytes that says %llu: cut or grown",
                       (unsigned long long)(n - SNAP_HEADER), (unsigned long long)body_len);
    /* the body's hash on a thread of its own while the body is read (a
     * read holds every count and reference to the bytes left, so bytes
     * not the ones written are read safely, then refused): at 10M orders
     * the load 2.62 s against 2.78 (performance.md, fortieth session); a
     * small snapshot is hashed first, as it was */
    hash_job job = {.p = p + SNAP_HEADER, .n = (size_t)body_len};
    int threaded =
        body_len >= HASH_THREAD_MIN && pthread_create(&job.th, NULL, hash_body, &job) == 0;
    if (!threaded) hash_body(&job);
    if (!threaded && (!job.ok || memcmp(job.out, p + 24, 32)))
        return yj_fail(msg, job.ok ? YJ_DATA_LOSS : YJ_RESOURCE_EXHAUSTED,
                       job.ok ? "a snapshot whose bytes are not the ones written (its hash)"
                              : "cannot hash the snapshot");
    yj_sm *s = yj_sm_new(seed);
    snap_r r = {p + SNAP_HEADER, (size_t)body_len, 0, 0};
    if (s) {
        yj_sm_undo_on(s, 0); /* (nothing to take back) */
        load_body(s, &r);
    }
    if (threaded) {
        pthread_join(job.th, NULL);
        if (!job.ok || memcmp(job.out, p + 24, 32)) {
            yj_sm_free(s);
            return yj_fail(msg, job.ok ? YJ_DATA_LOSS : YJ_RESOURCE_EXHAUSTED,
                           job.ok ? "a snapshot whose bytes are not the ones written (its hash)"
                                  : "cannot hash the snapshot");
        }
    }
    if (!s) return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a typed state");
    /* beside (the view made from the state) on a thread while the digest
     * is taken: at a start from 1M members' checkpoint the two took 0.72
     * and 0.78 s one after the other (performance.md, forty-first
     * session); both only read the state (beside takes its changed lists,
     * which the digest does not read) */
    beside_job bj = {.fn = beside, .ctx = ctx, .s = s, .err = YJ_OK};
    int beside_threaded = beside && !r.bad && pthread_create(&bj.th, NULL, run_beside, &bj) == 0;
    uint8_t digest[32];
    int same = !r.bad && yj_sm_digest(s, digest) && !memcmp(digest, p + 56, 32);
    if (beside_threaded)
        pthread_join(bj.th, NULL);
    else if (beside && same)
        run_beside(&bj);
    if (same && bj.err != YJ_OK) {
        yj_sm_free(s);
        return yj_fail(msg, bj.err, "no memory beside the typed state's load");
    }
    if (!same) {
        yj_sm_free(s);
        return yj_fail(msg, YJ_DATA_LOSS,
                       r.bad ? "a snapshot this build cannot read (a table cut short or a "
                               "reference out of range at byte %zu)"
                             : "a snapshot that loads into a state of another digest",
                       r.at);
    }
    /* the changed-balances list's room (sm_room_balances: one place for
     * each member with a balance slot, which a posting assumes) */
    if (sm_room_balances(s, 0) != YJ_OK || sm_room_changed_rows(s, 0, 0) != YJ_OK ||
        sm_dirty_room(&s->dirty_perf, yj_map64_count(s->perf)) != YJ_OK ||
        sm_dirty_room(&s->dirty_camp, yj_ids_count(s->campaign_ids)) != YJ_OK ||
        sm_dirty_room(&s->dirty_live, yj_map64_count(s->live_stats)) != YJ_OK ||
        sm_dirty_room(&s->dirty_sess, yj_ids_count(s->session_ids)) != YJ_OK ||
        sm_dirty_room(&s->dirty_wd, yj_ids_count(s->wd_ids)) != YJ_OK ||
        sm_dirty_room(&s->dirty_grp, yj_ids_count(s->group_ids)) != YJ_OK ||
        sm_dirty_room(&s->dirty_bat, yj_ids_count(s->batch_ids)) != YJ_OK ||
        sm_dirty_room(&s->dirty_pl, s->n_plines) != YJ_OK ||
        /* (any order may be in a group's lists once a group exists) */
        sm_dirty_room(&s->dirty_gord,
                      yj_ids_count(s->group_ids) ? yj_ids_count(s->order_ids) : 0) != YJ_OK) {
        yj_sm_free(s);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "no memory for a typed state");
    }
    yj_sm_undo_on(s, 1);
    *out = s;
    return YJ_OK;
}
