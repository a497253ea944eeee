/*
 * cli.h — verbs of the `yj` command line that live in the library
 * (src/cli/), so that tools/yj.c stays a thin dispatcher.
 */
#ifndef YONGJIN_CLI_H
#define YONGJIN_CLI_H

/* `yj call`: one gRPC call to a running yongjind, JSON in, JSON out.
 *
 *   yj call [--addr HOST:PORT] [--tenant T] [--key KEY] [--tls] [--ca FILE]
 *           [--timeout-ms N] [--max-messages N] SERVICE/METHOD [JSON | -]
 *
 * argv[0] is the verb ("call"); the options and operands follow. The method
 * is looked up in the protobuf-c service descriptors of the contract; the
 * request JSON (the argument, or stdin for "-" or none; for
 * Ledger/AppendStream one request per stdin line) is read with
 * yj_pbjson_read, each response is written to stdout as one JSON line with
 * yj_pbjson_write. A non-OK grpc-status is written to stderr as
 * "ERROR <CODE_NAME> (<code>): <grpc-message>".
 *
 * Returns the process exit code: 0 the call ended OK (or --max-messages
 * responses came), 1 the call failed (a non-OK status, no connection, a
 * TLS failure, the deadline), 2 usage (bad flags, an unknown method, request
 * JSON that does not fit the method's request message), 3 the call ended OK
 * but an event was refused: an AppendResponse (Ledger/Append, AppendStream)
 * holds an EventResult with a non-zero code; then "yj call: N of M events
 * refused (the first: ...)" is written to stderr. Writes only to
 * stdout and stderr; ignores SIGPIPE while it runs. */
int yj_cli_call(int argc, char **argv);

/* Finance's files from a store directory, read-only (src/cli/reports.c);
 * argv[0] is the verb. Exit codes: 0 ok, 1 failed, 2 usage.
 *   yj export DIR --month YYYY-MM [--tenant T] [--format csv] [--out FILE] [--bom]
 *       the month's statement rows (Finance.ExportStatement) as CSV
 *   yj report DIR --month YYYY-MM [--tenant T]
 *       the month's reconciliation (Finance.GetPeriodReport) as a table
 *   yj payouts DIR --batch ID [--tenant T] [--out FILE] [--all] [--bom]
 *       a bank-upload CSV of a payout batch's PENDING lines (--all: every line)
 * --out FILE is written as FILE.part and renamed into place only when all
 * of it was written. yj report exits 1 when the members' rows do not add up
 * to the total (they come from separate counters). A flag a verb does not
 * use is a usage error. */
int yj_cli_export(int argc, char **argv);
int yj_cli_report(int argc, char **argv);
int yj_cli_payouts(int argc, char **argv);

/* A store directory opened read-only for a yj verb (src/cli/open.c),
 * whichever writer wrote it: the keyed ledger (its derived state read
 * through the ledger's functions on the store) or yongjind --typed-writer
 * (typed set: the typed states, loaded by yj_cli_store_state from the
 * newest typed checkpoint in the directory and the journal after it, a
 * running server's log included, and read through their view). Nothing
 * in the directory is written. */
struct yj_store;
struct yj_shadow;
struct yj_pub;
typedef struct yj_cli_store {
    struct yj_store *store;
    struct yj_shadow *typed; /* a store --typed-writer wrote; NULL for the ledger's */
    int built;               /* typed: yj_cli_store_state has loaded the states */
    int released;            /* typed: opened without state (they cannot be loaded) */
    const char *dir;
} yj_cli_store;

/* 0, or 1 with the reason on stderr ("yj VERB: ..."): the store's own
 * (not a store, another schema, not closed cleanly, ...). state: the
 * verb reads the typed states (yj_cli_store_state); without it, states
 * a running server's log had built to be read are freed at once (dump,
 * backup and verify read the journal: the memory is then held only
 * during the open). */
int yj_cli_store_open(const char *verb, const char *dir, int state, yj_cli_store *out);
/* For a store --typed-writer wrote, loads its typed states and their view
 * (a no-op otherwise, and once done): 0, or 1 with the reason on stderr
 * (a damaged checkpoint is not among them: the whole journal is replayed
 * then, as a server's start does). */
int yj_cli_store_state(const char *verb, yj_cli_store *s);
/* The typed states' view once loaded; NULL otherwise. Valid until the
 * close. */
struct yj_pub *yj_cli_store_view(const yj_cli_store *s);
void yj_cli_store_close(yj_cli_store *s);

#endif
