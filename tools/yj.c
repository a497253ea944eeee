/*
 * yj — yongjin's command line for operators and finance.
 *
 *   yj verify DIR              hash chain, density, and a full rebuild of the
 *                              derived state compared byte for byte (a store
 *                              yongjind --typed-writer wrote: the journal
 *                              replayed into fresh typed states and compared
 *                              with its newest typed checkpoint); prints the
 *                              state digest and the rebuild's memory
 *   yj backup DIR DEST         hot, consistent, compacted copy (mdb_env_copy2)
 *   yj dump DIR [--from SEQ]   journal entries as JSON, one per line
 *   yj call [options] SERVICE/METHOD [JSON | -]
 *                              one gRPC call to a running yongjind, JSON in
 *                              and JSON out (src/cli/call.c)
 *   yj export DIR --month M    a month's statement rows as CSV
 *   yj report DIR --month M    a month's reconciliation as a table
 *   yj payouts DIR --batch B   a payout batch as a bank-upload CSV
 *                              (src/cli/reports.c)
 *
 * Every store verb opens the store read-only (src/cli/open.c), so it is
 * safe while yongjind runs (LMDB readers never block the writer). Exit codes: 0 ok, 1 a problem
 * was found or the verb failed, 2 usage; `yj call` also 3: an event of an
 * Append or AppendStream was refused (include/yongjin/cli.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "state/shadow.h"
#include "yongjin/cli.h"
#include "yongjin/ledger.h"
#include "yongjin/pbjson.h"
#include "yongjin/store.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/ledger.pb-c.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: yj verify DIR\n"
                 "       yj backup DIR DEST\n"
                 "       yj dump DIR [--from SEQ]\n"
                 "       yj call [--addr HOST:PORT] [--tenant T] [--key KEY] [--tls] [--ca FILE]\n"
                 "               [--timeout-ms N] [--max-messages N] SERVICE/METHOD [JSON | -]\n"
                 "               (yj call --help lists the methods)\n"
                 "       yj export DIR --month YYYY-MM [--tenant T] [--format csv] [--out FILE] [--bom]\n"
                 "       yj report DIR --month YYYY-MM [--tenant T]\n"
                 "       yj payouts DIR --batch ID [--tenant T] [--out FILE] [--all] [--bom]\n"
                 "       yj --help\n");
}

static void hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) printf("%02x", p[i]);
}

static int cmd_verify(const char *dir)
{
    yj_cli_store s;
    if (yj_cli_store_open("verify", dir, 0, &s)) return 1;
    yj_verify_report rep;
    yj_msg msg = {{0}};
    /* a store --typed-writer wrote: its journal replayed into fresh typed
     * states, and its newest typed checkpoint compared with them */
    int typed = s.typed != NULL;
    yj_err err = typed ? yj_shadow_verify(s.typed, s.store, 0, &rep, &msg)
                       : yj_store_verify(s.store, yj_ledger_hook(), &rep, &msg);
    yj_cli_store_close(&s);
    if (err != YJ_OK) {
        fprintf(stderr, "yj verify: cannot verify %s: %s\n", dir, msg.text);
        return 1;
    }
    if (!rep.ok) {
        printf("FAILED after %llu good entries: %s\n", (unsigned long long)rep.entries, rep.problem);
    } else {
        printf("ok: %llu entries, head ", (unsigned long long)rep.entries);
        hex(rep.head_hash, YJ_HASH_BYTES);
        printf("\n");
    }
    if (rep.has_state_digest) {
        printf("state digest: ");
        hex(rep.state_digest, YJ_HASH_BYTES);
        if (typed)
            printf(" (the typed states of %llu tenants)\n", (unsigned long long)rep.state_records);
        else
            printf(" (%llu records of idem and state%s)\n", (unsigned long long)rep.state_records,
                   rep.ok ? "" : "; the rebuild's");
    }
    printf("replay memory: %llu bytes held by the rebuilt state at its largest, RssAnon grew %llu bytes\n",
           (unsigned long long)rep.replay_bytes, (unsigned long long)rep.rss_growth_bytes);
    return rep.ok ? 0 : 1;
}

static int cmd_backup(const char *dir, const char *dest)
{
    yj_cli_store s;
    if (yj_cli_store_open("backup", dir, 0, &s)) return 1;
    yj_msg msg = {{0}};
    yj_err err = yj_store_backup(s.store, dest, &msg);
    yj_cli_store_close(&s);
    if (err != YJ_OK) {
        fprintf(stderr, "yj backup: %s\n", msg.text);
        return 1;
    }
    printf("backed up %s to %s\n", dir, dest);
    return 0;
}

/* One entry: the stored fields, then the event decoded. */
static int dump_entry(const yj_entry *e)
{
    Yongjin__V1__JournalEntry *je = yongjin__v1__journal_entry__unpack(NULL, e->body_len, e->body);
    if (!je) {
        fprintf(stderr, "yj dump: entry %llu does not decode\n", (unsigned long long)e->seq);
        return 1;
    }
    Yongjin__V1__Event *ev = yongjin__v1__event__unpack(NULL, je->event.len, je->event.data);
    printf("{\"seq\":%llu,\"tenant\":", (unsigned long long)e->seq);
    printf("\"%s\",\"event_time_ms\":%lld,\"received_ms\":%lld,\"prev_hash\":\"", je->tenant,
           (long long)je->event_time_ms, (long long)je->received_ms);
    hex(e->prev_hash, YJ_HASH_BYTES);
    printf("\",\"hash\":\"");
    hex(e->hash, YJ_HASH_BYTES);
    printf("\",\"event\":");
    yj_pbjson_write(stdout, ev ? &ev->base : NULL, 0);
    printf(",\"postings\":[");
    for (size_t i = 0; i < je->n_postings; i++) {
        if (i) putchar(',');
        yj_pbjson_write(stdout, &je->postings[i]->base, 0);
    }
    printf("],\"credits\":[");
    for (size_t i = 0; i < je->n_credits; i++) {
        if (i) putchar(',');
        yj_pbjson_write(stdout, &je->credits[i]->base, 0);
    }
    printf("]}\n");
    if (ev) yongjin__v1__event__free_unpacked(ev, NULL);
    yongjin__v1__journal_entry__free_unpacked(je, NULL);
    return 0;
}

static int cmd_dump(const char *dir, uint64_t from)
{
    yj_cli_store st;
    if (yj_cli_store_open("dump", dir, 0, &st)) return 1;
    yj_store *s = st.store;
    yj_rtxn r;
    yj_msg msg = {{0}};
    if (yj_store_read_begin(s, &r, &msg) != YJ_OK) {
        fprintf(stderr, "yj dump: %s\n", msg.text);
        yj_cli_store_close(&st);
        return 1;
    }
    int rc = 0;
    for (uint64_t seq = from ? from : 1;; seq++) {
        yj_entry e;
        yj_err err = yj_store_entry(&r, seq, &e);
        if (err == YJ_NOT_FOUND) break;
        if (err != YJ_OK || dump_entry(&e) != 0) {
            rc = 1;
            break;
        }
    }
    yj_store_read_end(s, &r);
    yj_cli_store_close(&st);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"))) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && !strcmp(argv[1], "call")) return yj_cli_call(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "export")) return yj_cli_export(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "report")) return yj_cli_report(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "payouts")) return yj_cli_payouts(argc - 1, argv + 1);
    if (argc == 3 && !strcmp(argv[1], "verify")) return cmd_verify(argv[2]);
    if (argc == 4 && !strcmp(argv[1], "backup")) return cmd_backup(argv[2], argv[3]);
    if ((argc == 3 || argc == 5) && !strcmp(argv[1], "dump")) {
        uint64_t from = 1;
        if (argc == 5) {
            char *end;
            errno = 0;
            from = strtoull(argv[4], &end, 10);
            if (strcmp(argv[3], "--from") || errno || *end || end == argv[4] || from == 0) {
                usage(stderr);
                return 2;
            }
        }
        return cmd_dump(argv[2], from);
    }
    usage(stderr);
    return 2;
}
