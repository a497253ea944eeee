/*
 * test_auth.c — the API key table: parsing (comments, blank lines, every
 * malformed line refused with its line number), lookups by the presented
 * key, tenants and roles, and a reload that fails keeping the old keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "yongjin/auth.h"

/* a well-formed digest, so each bad line below is refused for its own fault */
#define HA "5e3c1a4f4fb8b5d8f0a0d1b3b1b0a2f0c7f3c1a5b0d2e4f6a8c0e2f4a6c8e0f2"

static char path[64];

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void sha_hex(const char *key, char out[65])
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "printf %%s '%s' | sha256sum", key);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(out, 65, p));
    pclose(p);
}

static int setup(void **state)
{
    snprintf(path, sizeof path, "/tmp/yj-auth-test.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static int teardown(void **state)
{
    unlink(path);
    return 0;
}

static void test_keys_map_to_their_tenant_and_role(void **state)
{
    char a[65], b[65], text[512];
    sha_hex("secret-a", a);
    sha_hex("secret-b", b);
    snprintf(text, sizeof text, "# keys\n\n%s shop-a storefront  # the mall\n%s * auditor\n", a, b);
    write_file(text);
    yj_auth *auth;
    yj_msg msg;
    assert_int_equal(yj_auth_load(path, &auth, &msg), YJ_OK);
    assert_int_equal(yj_auth_count(auth), 2);
    yj_role role;
    const char *tenant;
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"secret-a", 8, &role, &tenant), YJ_OK);
    assert_int_equal(role, YJ_ROLE_STOREFRONT);
    assert_string_equal(tenant, "shop-a");
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"secret-b", 8, &role, &tenant), YJ_OK);
    assert_int_equal(role, YJ_ROLE_AUDITOR);
    assert_string_equal(tenant, "*");
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"secret-c", 8, &role, &tenant), YJ_UNAUTHENTICATED);
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"secret-a", 7, &role, &tenant), YJ_UNAUTHENTICATED);
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"", 0, &role, &tenant), YJ_UNAUTHENTICATED);
    yj_auth_free(auth);
}

static void test_malformed_lines_are_refused_with_their_number(void **state)
{
    const char *bad[] = {
        "abc shop-a admin\n",                                       /* short digest */
        HA " Shop-A admin\n",                                        /* tenant charset */
        HA " shop-a superuser\n",                                    /* unknown role */
        HA " shop-a\n",                                              /* missing role */
        HA " shop-a admin extra\n",                                  /* trailing field */
        HA " aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa admin\n",             /* tenant of 33 bytes */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "# first line\n%s", bad[i]);
        write_file(text);
        yj_auth *auth = NULL;
        yj_msg msg;
        assert_int_equal(yj_auth_load(path, &auth, &msg), YJ_INVALID_ARGUMENT);
        assert_non_null(strstr(msg.text, ":2:"));
        assert_null(auth);
    }
}

/* What SIGHUP relies on (src/main.c swaps tables; test_security.py's
 * test_sighup_rereads_the_key_file proves the swap end to end): a file that
 * does not parse gives no table at all, a file that parses a whole new one. */
static void test_a_file_that_does_not_parse_gives_no_table(void **state)
{
    char a[65], text[256];
    sha_hex("secret-a", a);
    snprintf(text, sizeof text, "%s shop-a finance\n", a);
    write_file(text);
    yj_auth *auth;
    yj_msg msg;
    assert_int_equal(yj_auth_load(path, &auth, &msg), YJ_OK);
    /* SIGHUP loads the file again into a new table: one that does not parse
     * is refused, and the table in force answers as before */
    write_file("not a key line\n");
    yj_auth *fresh = NULL;
    assert_int_equal(yj_auth_load(path, &fresh, &msg), YJ_INVALID_ARGUMENT);
    assert_null(fresh);
    yj_role role;
    const char *tenant;
    assert_int_equal(yj_auth_check(auth, (const uint8_t *)"secret-a", 8, &role, &tenant), YJ_OK);
    assert_int_equal(role, YJ_ROLE_FINANCE);
    write_file("");
    assert_int_equal(yj_auth_load(path, &fresh, &msg), YJ_OK);
    assert_int_equal(yj_auth_count(fresh), 0);
    assert_int_equal(yj_auth_check(fresh, (const uint8_t *)"secret-a", 8, &role, &tenant), YJ_UNAUTHENTICATED);
    yj_auth_free(fresh);
    yj_auth_free(auth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_map_to_their_tenant_and_role, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed_lines_are_refused_with_their_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_file_that_does_not_parse_gives_no_table, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
