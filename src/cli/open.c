/*
 * open.c — a store directory opened read-only for a `yj` verb, whichever
 * writer wrote it (cli.h, yj_cli_store).
 *
 * A store the keyed ledger wrote holds its derived state: the verbs read
 * it through the ledger's functions, a running server's log after its last
 * checkpoint applied again in memory by the ledger's hook. A store
 * `yongjind --typed-writer` wrote holds the journal and its history
 * (statement lines, order records, each month's entries) and none of that
 * state: the typed states are loaded from the newest typed checkpoint in
 * the directory and the journal after it (a running server's log
 * included, through the typed states, which also put its history rows),
 * and the verbs read them through the readers' view the server answers
 * from (state/pub.h). Nothing in the directory is written either way.
 */
#include <stdio.h>
#include <string.h>

#include "state/shadow.h"
#include "yongjin/cli.h"
#include "yongjin/ledger.h"

int yj_cli_store_open(const char *verb, const char *dir, int state, yj_cli_store *out)
{
    memset(out, 0, sizeof *out);
    out->dir = dir;
    yj_shadow *sh = yj_shadow_new(yj_ledger_hook());
    if (!sh || yj_shadow_set_checkpoint(sh, dir, 0) != YJ_OK) {
        fprintf(stderr, "yj %s: out of memory\n", verb);
        yj_shadow_free(sh);
        return 1;
    }
    yj_shadow_set_writer(sh, 1);
    yj_shadow_set_reader(sh);
    yj_store_config c = {0};
    yj_msg msg = {{0}};
    c.dir = dir;
    c.read_only = 1;
    c.hook = *yj_ledger_hook();
    c.typed_hook = *yj_shadow_hook(sh);
    if (yj_store_open(&c, NULL, &out->store, &msg) != YJ_OK) {
        fprintf(stderr, "yj %s: %s\n", verb, msg.text);
        yj_shadow_free(sh);
        return 1;
    }
    if (!yj_store_typed(out->store)) {
        yj_shadow_free(sh); /* (the ledger's hook read it) */
        return 0;
    }
    out->typed = sh;
    if (!state) { /* (built only to read a running server's log) */
        yj_shadow_release(sh);
        out->released = 1;
    }
    return 0;
}

int yj_cli_store_state(const char *verb, yj_cli_store *s)
{
    if (!s->typed || s->built) return 0;
    if (s->released) { /* (opened without state: its states were freed) */
        fprintf(stderr, "yj %s: the typed states of %s were not kept\n", verb, s->dir);
        return 1;
    }
    yj_msg msg = {{0}};
    if (yj_shadow_build(s->typed, s->store, &msg) != YJ_OK) {
        fprintf(stderr, "yj %s: cannot build the typed states of %s: %s\n", verb, s->dir, msg.text);
        return 1;
    }
    s->built = 1;
    return 0;
}

struct yj_pub *yj_cli_store_view(const yj_cli_store *s)
{
    return s->built ? yj_shadow_pub(s->typed) : NULL;
}

void yj_cli_store_close(yj_cli_store *s)
{
    yj_store_close(s->store); /* (before the shadow: its hook is the store's) */
    yj_shadow_free(s->typed);
    memset(s, 0, sizeof *s);
}
