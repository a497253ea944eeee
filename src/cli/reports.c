/*
 * reports.c — `yj export`, `yj report` and `yj payouts`: finance's month
 * files, read straight from a store directory (read-only, safe while
 * yongjind runs: LMDB readers never block the writer). They print what
 * Finance.ExportStatement, GetPeriodReport and GetPayoutBatch answer, through
 * the same functions: the ledger's on a store it wrote, the typed states'
 * view (and the store's history) on one yongjind --typed-writer wrote
 * (open.c).
 *
 * Amounts are shown in the tenant's currency (its policy's ISO 4217 code,
 * docs/rules.md "Currency"): the headers name the code, and amounts have
 * its minor unit digits (CNY 2, JPY 0, BHD 3; integer arithmetic, no
 * float). The CSV files give each amount twice: so formatted
 * (`amount_<CODE>`) and in minor units as stored (`amount_minor`).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state/pub.h"
#include "yongjin/cli.h"
#include "yongjin/currency.h"
#include "yongjin/ledger.h"
#include "yongjin/v1/finance.pb-c.h"
#include "yongjin/v1/policy.pb-c.h"
#include "yongjin/v1/query.pb-c.h"

typedef struct opts {
    const char *dir, *month, *tenant, *out, *batch, *format;
    int bom, all;
} opts;

static int parse(const char *verb, int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->tenant = "default";
    o->format = "csv";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **slot = !strcmp(a, "--month") ? &o->month : !strcmp(a, "--tenant") ? &o->tenant
                          : !strcmp(a, "--out") || !strcmp(a, "-o") ? &o->out : !strcmp(a, "--batch") ? &o->batch
                          : !strcmp(a, "--format") ? &o->format : NULL;
        if (slot) {
            if (i + 1 == argc) {
                fprintf(stderr, "yj %s: %s needs a value\n", verb, a);
                return 2;
            }
            *slot = argv[++i];
        } else if (!strcmp(a, "--bom")) {
            o->bom = 1;
        } else if (!strcmp(a, "--all")) {
            o->all = 1;
        } else if (a[0] != '-' && !o->dir) {
            o->dir = a;
        } else {
            fprintf(stderr, "yj %s: unknown argument %s\n", verb, a);
            return 2;
        }
    }
    if (!o->dir) {
        fprintf(stderr, "yj %s: which store directory?\n", verb);
        return 2;
    }
    /* a flag the verb does not use is a mistake, not something to ignore */
    int is_report = !strcmp(verb, "report"), is_payouts = !strcmp(verb, "payouts");
    const char *stray = is_report && (o->out || o->bom || o->all) ? "--out, --bom, --all"
                      : !is_payouts && o->batch ? "--batch"
                      : is_payouts && o->month ? "--month"
                      : !is_payouts && o->all ? "--all" : NULL;
    if (stray) {
        fprintf(stderr, "yj %s: %s do not apply to this verb\n", verb, stray);
        return 2;
    }
    if (!yj_tenant_valid(o->tenant, strlen(o->tenant))) {
        fprintf(stderr, "yj %s: --tenant %s: a tenant is 1..%d bytes of [a-z0-9_-]\n", verb, o->tenant, YJ_TENANT_MAX);
        return 2;
    }
    if (strcmp(o->format, "csv") != 0) {
        fprintf(stderr, "yj %s: --format %s: only csv is written\n", verb, o->format);
        return 2;
    }
    return 0;
}

/* The store (and, for one --typed-writer wrote, its typed states) and a
 * read snapshot on it. */
typedef struct session {
    yj_cli_store st;
    yj_rtxn r;
} session;

static int open_session(const char *verb, const char *dir, session *s)
{
    yj_msg msg = {{0}};
    if (yj_cli_store_open(verb, dir, 1, &s->st)) return 1;
    if (yj_cli_store_state(verb, &s->st)) {
        yj_cli_store_close(&s->st);
        return 1;
    }
    if (yj_store_read_begin(s->st.store, &s->r, &msg) != YJ_OK) {
        fprintf(stderr, "yj %s: %s\n", verb, msg.text);
        yj_cli_store_close(&s->st);
        return 1;
    }
    return 0;
}

static void close_session(session *s)
{
    yj_store_read_end(s->st.store, &s->r);
    yj_cli_store_close(&s->st);
}

/* A session on a tenant the store holds: an unknown tenant (a typo) is an
 * error, not an empty file. */
static int open_tenant(const char *verb, const char *dir, const char *tenant, session *s)
{
    if (open_session(verb, dir, s)) return 1;
    if (!yj_ledger_tenant_known(&s->r, tenant)) {
        fprintf(stderr, "yj %s: the store at %s has no tenant %s\n", verb, dir, tenant);
        close_session(s);
        return 1;
    }
    return 0;
}

/* One read, as the ledger answers it (a store the keyed ledger wrote) and
 * as the typed states' view does (one --typed-writer wrote; pub_r: with
 * the store's history too). */
typedef struct read_fns {
    yj_ledger_query_fn ledger;
    yj_err (*pub)(yj_pub *v, const char *tenant, const void *req, yj_buf *out, uint64_t *seq,
                  yj_msg *msg);
    yj_err (*pub_r)(yj_pub *v, const yj_rtxn *r, const char *tenant, const void *req, yj_buf *out,
                    uint64_t *seq, yj_msg *msg);
} read_fns;

static const read_fns read_policy = {yj_ledger_get_policy, yj_pub_get_policy, NULL};
static const read_fns read_report = {yj_ledger_period_report, NULL, yj_pub_period_report};
static const read_fns read_batch = {yj_ledger_get_payout_batch, yj_pub_get_payout_batch, NULL};

/* Runs one read and decodes its answer (NULL and a message when it
 * fails). */
static ProtobufCMessage *query(const char *verb, session *s, const char *tenant, const read_fns *fn,
                               const ProtobufCMessage *req, const ProtobufCMessageDescriptor *resp)
{
    yj_buf out = {0};
    yj_msg msg = {{0}};
    yj_pub *view = yj_cli_store_view(&s->st);
    uint64_t at;
    yj_err err = !view       ? fn->ledger(&s->r, tenant, req, &out, &msg)
                 : fn->pub_r ? fn->pub_r(view, &s->r, tenant, req, &out, &at, &msg)
                             : fn->pub(view, tenant, req, &out, &at, &msg);
    ProtobufCMessage *m = NULL;
    if (err == YJ_OK) m = protobuf_c_message_unpack(resp, NULL, out.len, out.data);
    if (err != YJ_OK) fprintf(stderr, "yj %s: %s\n", verb, msg.text[0] ? msg.text : yj_err_name(err));
    else if (!m) fprintf(stderr, "yj %s: the answer does not decode\n", verb);
    yj_buf_free(&out);
    return m;
}

/* What the tenant's policy says about showing its amounts. */
typedef struct tenant_view {
    int32_t tz_min; /* the zone of its months, minutes east of UTC */
    char code[8];   /* its currency, an ISO 4217 code */
    int digits;     /* the currency's minor unit digits */
} tenant_view;

/* Reads the tenant's policy in force (the defaults when none was set):
 * 1 and a message when it cannot be read, for a wrong currency must not
 * be guessed. A code outside the table (a version 1 policy could set one)
 * is shown with YJ_CURRENCY_DIGITS_UNKNOWN digits. */
static int tenant_view_read(const char *verb, session *s, const char *tenant, tenant_view *out)
{
    Yongjin__V1__GetPolicyRequest req = YONGJIN__V1__GET_POLICY_REQUEST__INIT;
    Yongjin__V1__Policy *p = (Yongjin__V1__Policy *)query(verb, s, tenant, &read_policy, &req.base,
                                                          &yongjin__v1__policy__descriptor);
    if (!p) return 1;
    out->tz_min = p->timezone_offset_minutes;
    snprintf(out->code, sizeof out->code, "%s", p->currency ? p->currency : "CNY");
    int digits = yj_currency_digits(out->code);
    out->digits = digits >= 0 ? digits : YJ_CURRENCY_DIGITS_UNKNOWN;
    protobuf_c_message_free_unpacked(&p->base, NULL);
    return 0;
}

/* A CSV field: quoted when it holds a comma, a quote or a line break. */
static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

/* --out FILE is written as FILE.part and renamed over FILE only when the
 * whole file was written: a failed run never leaves a truncated or partial
 * file where a good one was. */
static int to_file(const opts *o)
{
    return o->out && strcmp(o->out, "-") != 0;
}

static void part_name(const opts *o, char *out, size_t cap)
{
    snprintf(out, cap, "%s.part", o->out);
}

static FILE *open_out(const char *verb, const opts *o)
{
    if (!to_file(o)) return stdout;
    char part[4200];
    part_name(o, part, sizeof part);
    FILE *f = fopen(part, "w");
    if (!f) fprintf(stderr, "yj %s: cannot write %s: %s\n", verb, part, strerror(errno));
    return f;
}

/* Finishes the output: 0 when written (and, for a file, renamed into place);
 * with ok == 0 the partial file is removed. */
static int close_out(const char *verb, const opts *o, FILE *f, int ok)
{
    int bad = ferror(f) || fflush(f) != 0;
    if (f != stdout && fclose(f) != 0) bad = 1;
    if (bad) fprintf(stderr, "yj %s: writing %s failed\n", verb, to_file(o) ? o->out : "stdout");
    if (!to_file(o)) return bad;
    char part[4200];
    part_name(o, part, sizeof part);
    if (bad || !ok) {
        unlink(part);
        return 1;
    }
    if (rename(part, o->out) != 0) {
        fprintf(stderr, "yj %s: cannot rename %s to %s: %s\n", verb, part, o->out, strerror(errno));
        unlink(part);
        return 1;
    }
    return 0;
}

/* ---- yj export ---- */

typedef struct export_ctx {
    FILE *f;
    tenant_view tv;
    uint64_t rows;
} export_ctx;

static const char *program_name(int p)
{
    static const char *const n[] = {"", "REFERRAL", "GROUP_LEADER", "LIVE_INVITE", "GUIDE"};
    return p >= 0 && p <= 4 ? n[p] : "?";
}

static yj_err export_csv_row(void *ctx, const Yongjin__V1__StatementRow *row)
{
    export_ctx *x = ctx;
    /* the time in the tenant's zone, ISO 8601 with the offset */
    int32_t tz_min = x->tv.tz_min;
    int64_t local = row->time_ms + (int64_t)tz_min * 60000;
    time_t secs = (time_t)(local >= 0 ? local / 1000 : -((-local + 999) / 1000));
    struct tm tm;
    char when[96], amount[YJ_CURRENCY_TEXT_MAX];
    gmtime_r(&secs, &tm);
    int off = tz_min < 0 ? -tz_min : tz_min;
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(local - (int64_t)secs * 1000),
             tz_min < 0 ? '-' : '+', off / 60, off % 60);
    yj_currency_format(amount, row->amount, x->tv.digits);
    csv_field(x->f, row->member);
    fprintf(x->f, ",%llu,%s,", (unsigned long long)row->seq, when);
    csv_field(x->f, row->order_id);
    fprintf(x->f, ",%s,%d,%s,%lld,", program_name(row->program), row->level, amount, (long long)row->amount);
    csv_field(x->f, row->kind);
    fputc(',', x->f);
    csv_field(x->f, row->account);
    fprintf(x->f, ",%s\r\n", row->adjustment ? "true" : "false");
    x->rows++;
    return ferror(x->f) ? YJ_INTERNAL : YJ_OK;
}

int yj_cli_export(int argc, char **argv)
{
    opts o;
    int rc = parse("export", argc, argv, &o);
    if (rc) return rc;
    uint32_t month = o.month ? yj_ledger_month(o.month) : 0;
    if (!month) {
        fprintf(stderr, "yj export: --month YYYY-MM is required (2000..2199)\n");
        return 2;
    }
    session s;
    if (open_tenant("export", o.dir, o.tenant, &s)) return 1;
    export_ctx x = {NULL, {0}, 0};
    if (tenant_view_read("export", &s, o.tenant, &x.tv)) {
        close_session(&s);
        return 1;
    }
    x.f = open_out("export", &o);
    if (!x.f) {
        close_session(&s);
        return 1;
    }
    if (o.bom) fputs("\xEF\xBB\xBF", x.f); /* for spreadsheets that guess the encoding */
    fprintf(x.f, "member,seq,time,order_id,program,level,amount_%s,amount_minor,kind,account,adjustment\r\n",
            x.tv.code);
    uint64_t last = 0;
    int done = 0;
    yj_err err = yj_ledger_export_rows(&s.r, o.tenant, month, 0, SIZE_MAX, export_csv_row, &x, &last, &done);
    rc = close_out("export", &o, x.f, err == YJ_OK);
    close_session(&s);
    if (err != YJ_OK) {
        fprintf(stderr, "yj export: cannot read the entries of %s: %s\n", o.month, yj_err_name(err));
        return 1;
    }
    if (o.out) fprintf(stderr, "yj export: %llu rows of %s written to %s\n", (unsigned long long)x.rows, o.month,
                       o.out);
    return rc;
}

/* ---- yj report ---- */

static void report_line(const char *who, const Yongjin__V1__MemberPeriod *m, int digits)
{
    char v[7][YJ_CURRENCY_TEXT_MAX];
    yj_currency_format(v[0], m->opening, digits), yj_currency_format(v[1], m->accrued, digits);
    yj_currency_format(v[2], m->reversed, digits), yj_currency_format(v[3], m->settled, digits);
    yj_currency_format(v[4], m->withdrawn, digits), yj_currency_format(v[5], m->paid, digits);
    yj_currency_format(v[6], m->closing, digits);
    printf("%-24s %14s %14s %14s %14s %14s %14s %14s\n", who, v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
}

int yj_cli_report(int argc, char **argv)
{
    opts o;
    int rc = parse("report", argc, argv, &o);
    if (rc) return rc;
    if (!o.month || !yj_ledger_month(o.month)) {
        fprintf(stderr, "yj report: --month YYYY-MM is required (2000..2199)\n");
        return 2;
    }
    session s;
    if (open_tenant("report", o.dir, o.tenant, &s)) return 1;
    tenant_view tv;
    if (tenant_view_read("report", &s, o.tenant, &tv)) {
        close_session(&s);
        return 1;
    }
    char token[80] = "";
    int first = 1, bad = 0;
    Yongjin__V1__MemberPeriod sum = YONGJIN__V1__MEMBER_PERIOD__INIT;
    for (;;) {
        Yongjin__V1__PeriodReportRequest req = YONGJIN__V1__PERIOD_REPORT_REQUEST__INIT;
        req.month = (char *)o.month;
        req.page_size = 10000;
        req.page_token = token;
        Yongjin__V1__PeriodReport *rep =
            (Yongjin__V1__PeriodReport *)query("report", &s, o.tenant, &read_report, &req.base,
                                               &yongjin__v1__period_report__descriptor);
        if (!rep) {
            close_session(&s);
            return 1;
        }
        if (first) {
            printf("period %s, tenant %s, %s, %llu entries, sha256 ", rep->month, o.tenant,
                   rep->closed ? "CLOSED" : "open", (unsigned long long)rep->entries);
            for (size_t i = 0; i < rep->entries_sha256.len; i++) printf("%02x", rep->entries_sha256.data[i]);
            printf("\namounts in %s (%d decimals)\n%-24s %14s %14s %14s %14s %14s %14s %14s\n", tv.code, tv.digits,
                   "member", "opening", "accrued", "reversed", "settled", "withdrawn", "paid", "closing");
            first = 0;
        }
        for (size_t i = 0; i < rep->n_members; i++) {
            const Yongjin__V1__MemberPeriod *m = rep->members[i];
            report_line(m->member, m, tv.digits);
            sum.opening += m->opening, sum.accrued += m->accrued, sum.reversed += m->reversed;
            sum.settled += m->settled, sum.withdrawn += m->withdrawn, sum.paid += m->paid, sum.closing += m->closing;
        }
        snprintf(token, sizeof token, "%s", rep->next_page_token);
        if (!token[0]) {
            Yongjin__V1__MemberPeriod t = YONGJIN__V1__MEMBER_PERIOD__INIT;
            t.opening = rep->opening, t.accrued = rep->accrued, t.reversed = rep->reversed;
            t.settled = rep->settled, t.withdrawn = rep->withdrawn, t.paid = rep->paid, t.closing = rep->closing;
            report_line("TOTAL", &t, tv.digits);
            /* the members' rows and the total come from different counters
             * (per member, per tenant): they must agree */
            bad = sum.opening != t.opening || sum.accrued != t.accrued || sum.reversed != t.reversed ||
                  sum.settled != t.settled || sum.withdrawn != t.withdrawn || sum.paid != t.paid ||
                  sum.closing != t.closing;
            printf("the members' rows add up to the total: %s\n", bad ? "NO: the store needs yj verify" : "yes");
        }
        protobuf_c_message_free_unpacked(&rep->base, NULL);
        if (!token[0]) break;
    }
    close_session(&s);
    return bad;
}

/* ---- yj payouts ---- */

int yj_cli_payouts(int argc, char **argv)
{
    opts o;
    int rc = parse("payouts", argc, argv, &o);
    if (rc) return rc;
    if (!o.batch) {
        fprintf(stderr, "yj payouts: --batch ID is required\n");
        return 2;
    }
    session s;
    if (open_tenant("payouts", o.dir, o.tenant, &s)) return 1;
    tenant_view tv;
    if (tenant_view_read("payouts", &s, o.tenant, &tv)) {
        close_session(&s);
        return 1;
    }
    FILE *f = open_out("payouts", &o);
    if (!f) {
        close_session(&s);
        return 1;
    }
    if (o.bom) fputs("\xEF\xBB\xBF", f);
    fprintf(f, "batch_id,month,member,amount_%s,amount_minor,status,external_ref\r\n", tv.code);
    char token[80] = "";
    int64_t lines = 0, total = 0;
    for (;;) {
        Yongjin__V1__GetPayoutBatchRequest req = YONGJIN__V1__GET_PAYOUT_BATCH_REQUEST__INIT;
        req.batch_id = (char *)o.batch;
        req.page_size = 10000;
        req.page_token = token;
        Yongjin__V1__PayoutBatch *b =
            (Yongjin__V1__PayoutBatch *)query("payouts", &s, o.tenant, &read_batch, &req.base,
                                              &yongjin__v1__payout_batch__descriptor);
        if (!b) {
            rc = 1;
            break;
        }
        for (size_t i = 0; i < b->n_lines; i++) {
            const Yongjin__V1__PayoutLine *l = b->lines[i];
            if (!o.all && strcmp(l->status, "PENDING") != 0) continue;
            char amount[YJ_CURRENCY_TEXT_MAX];
            yj_currency_format(amount, l->amount, tv.digits);
            csv_field(f, b->batch_id);
            fprintf(f, ",%s,", b->month);
            csv_field(f, l->member);
            fprintf(f, ",%s,%lld,%s,", amount, (long long)l->amount, l->status);
            csv_field(f, l->external_ref);
            fputs("\r\n", f);
            lines++;
            total += l->amount;
        }
        snprintf(token, sizeof token, "%s", b->next_page_token);
        if (!token[0] && b->more_members)
            fprintf(stderr, "yj payouts: more members qualified than one batch takes: create another batch\n");
        protobuf_c_message_free_unpacked(&b->base, NULL);
        if (!token[0]) break;
    }
    if (close_out("payouts", &o, f, rc == 0)) rc = 1;
    close_session(&s);
    if (rc == 0 && o.out) {
        char t[YJ_CURRENCY_TEXT_MAX];
        yj_currency_format(t, total, tv.digits);
        fprintf(stderr, "yj payouts: %lld lines, %s %s written to %s\n", (long long)lines, t, tv.code, o.out);
    }
    return rc;
}
