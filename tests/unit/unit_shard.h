/*
 * unit_shard.h — one shard of a unit binary's tests, for tools/test.sh.
 *
 * YJ_UNIT_SHARD=i/n runs the tests whose place in the binary's list, from
 * 0, leaves i when divided by n; unset, every test runs. tools/test.sh runs
 * the shards of its longest binaries side by side (the ASan build's
 * test_state_sm took 72 s alone on 2 vCPUs). A malformed value (not two
 * numbers, n of 0 or over 64, i not below n) fails the binary, so a typo
 * cannot run no test and pass. TF=<pattern> (cmocka's filter) still
 * applies inside the shard.
 */
#ifndef YJ_UNIT_SHARD_H
#define YJ_UNIT_SHARD_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies the tests of YJ_UNIT_SHARD's shard of all[0..n) into out (room for
 * n) and returns how many; every test when YJ_UNIT_SHARD is unset; -1 (after
 * a message on stderr) when it is malformed. */
static inline int unit_shard_pick(const struct CMUnitTest *all, size_t n, struct CMUnitTest *out)
{
    const char *s = getenv("YJ_UNIT_SHARD");
    unsigned long i = 0, of = 1;
    if (s) {
        char *end;
        i = strtoul(s, &end, 10);
        if (end == s || *end != '/') goto bad;
        const char *d = end + 1;
        of = strtoul(d, &end, 10);
        if (end == d || *end || of == 0 || of > 64 || i >= of) goto bad;
    }
    if (getenv("TF"))
        cmocka_set_test_filter(getenv("TF")); /* TF=<name pattern>: those tests alone */
    size_t k = 0;
    for (size_t t = 0; t < n; t++)
        if (t % of == i) out[k++] = all[t];
    return (int)k;
bad:
    fprintf(stderr, "YJ_UNIT_SHARD=%s: expected i/n with n in 1..64 and i < n\n", s);
    return -1;
}

/* cmocka_run_group_tests over the shard's tests (the group named after the
 * array, as cmocka names it). */
#define unit_run_shard(tests, setup, teardown)                                                     \
    __extension__({                                                                                \
        struct CMUnitTest picked_[sizeof(tests) / sizeof((tests)[0])];                             \
        int n_ = unit_shard_pick(tests, sizeof(tests) / sizeof((tests)[0]), picked_);              \
        n_ < 0 ? 2 : _cmocka_run_group_tests(#tests, picked_, (size_t)n_, setup, teardown);        \
    })

#endif
