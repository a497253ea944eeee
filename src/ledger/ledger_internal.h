/*
 * ledger_internal.h — the layout of the "state" database and the helpers
 * the ledger's files share.
 *
 * Every key starts with the tenant (u8 length + bytes) and a one-byte kind;
 * strings inside keys are length-prefixed and integers big-endian, so byte
 * order is the natural order and a tenant's state is one key range:
 *
 *   kind  key after tenant+kind          value
 *   'B'   member                         balance: 6 × i64 (see ledger_balance)
 *   'T'   (nothing)                      tenant totals per account: 6 × i64
 *   'S'   member, time_ms, seq, idx      one statement line (StatementLine)
 *   'E'   member, yyyymm, program, level earnings: accrued, reversed, settled
 *   'M'   member                         member record (rules' encoding)
 *   ...   the rest belongs to the rules' state (see ledger.c)
 */
#ifndef YONGJIN_LEDGER_INTERNAL_H
#define YONGJIN_LEDGER_INTERNAL_H

#include <stdint.h>

#include "yongjin/ledger.h"
#include "yongjin/v1/common.pb-c.h"

#define LKEY_MAX 511

typedef struct lkey {
    uint8_t b[LKEY_MAX + 1];
    size_t n;
} lkey;

void lkey_start(lkey *k, const char *tenant, size_t tenant_len, uint8_t kind);
void lkey_str(lkey *k, const char *s, size_t len);
void lkey_u8(lkey *k, uint8_t v);
void lkey_u32(lkey *k, uint32_t v);
void lkey_u64(lkey *k, uint64_t v);
/* i64 with the sign bit flipped, so that byte order is numeric order. */
void lkey_i64(lkey *k, int64_t v);

/* Big-endian integer codecs for values. */
void put_be64(uint8_t *p, uint64_t v);
uint64_t get_be64(const uint8_t *p);
void put_be32(uint8_t *p, uint32_t v);
uint32_t get_be32(const uint8_t *p);

/* Accounts of the double entry (RULES.md §6), in the order of the totals. */
enum {
    ACC_COMMISSION_EXPENSE = 0,
    ACC_FEE_INCOME,
    ACC_PENDING,
    ACC_AVAILABLE,
    ACC_WITHDRAWING,
    ACC_PAID,
    ACC_COUNT
};
extern const char *const ledger_account_names[ACC_COUNT];
/* The index of an account name, or -1. */
int ledger_account_index(const char *name);

/* A member's balance record. */
typedef struct ledger_balance {
    int64_t pending, available, withdrawing, paid, earned_total, reversed_total;
} ledger_balance;

/* The month (yyyy*100+mm) of a Unix ms time in a zone offset_min east of UTC. */
uint32_t ledger_month_of(int64_t time_ms, int32_t offset_min);

/* Context of one event being applied: who, when, where the effects go. */
typedef struct ledger_event_ctx {
    yj_wtxn *wtxn;
    const char *tenant;
    size_t tenant_len;
    int64_t time_ms;
    int32_t tz_offset_min;
    uint16_t n_postings; /* postings written so far for this entry */
    yj_buf *effects;
} ledger_event_ctx;

/* Encodes the posting into the entry's effects and applies it to the
 * balances, the tenant totals, the member's statement and earnings. The
 * caller asserts that an entry's postings sum to zero. */
yj_err ledger_post(ledger_event_ctx *ec, const Yongjin__V1__Posting *p);

/* Reads a member's balance (zeros when none) in any transaction. */
yj_err ledger_read_balance(MDB_txn *txn, MDB_dbi dbi, const char *tenant, size_t tenant_len,
                           const char *member, size_t member_len, ledger_balance *out);

#endif
