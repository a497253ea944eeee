/*
 * auth.h — API keys and roles (docs/security.md).
 *
 * The key file has one key a line: `<sha256-hex of the key> <tenant|*> <role>`,
 * with blank lines and `#` comments allowed. Keys travel as
 * `authorization: Bearer <key>`; the server keeps only their SHA-256 and
 * compares digests in constant time (CRYPTO_memcmp, every entry visited).
 * On SIGHUP the server loads the file again into a new table and puts it in
 * force only when it parses (src/main.c); a file that does not parse leaves
 * the keys in force unchanged.
 */
#ifndef YONGJIN_AUTH_H
#define YONGJIN_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "yongjin/err.h"

typedef enum yj_role {
    YJ_ROLE_NONE = 0,
    YJ_ROLE_STOREFRONT = 1 << 0,
    YJ_ROLE_FINANCE = 1 << 1,
    YJ_ROLE_ADMIN = 1 << 2,
    YJ_ROLE_AUDITOR = 1 << 3,
} yj_role;

#define YJ_AUTH_MAX_KEYS 10000

typedef struct yj_auth yj_auth;

/* Reads the key file. INVALID_ARGUMENT names the file and line. */
yj_err yj_auth_load(const char *path, yj_auth **out, yj_msg *msg);
size_t yj_auth_count(const yj_auth *auth);
void yj_auth_free(yj_auth *auth);

/* The role and tenant ("*" = any) of a presented key, or UNAUTHENTICATED. */
yj_err yj_auth_check(const yj_auth *auth, const uint8_t *key, size_t key_len, yj_role *role,
                     const char **tenant);

/* The role named in a key file ("storefront", "finance", "admin", "auditor"). */
yj_role yj_role_parse(const char *name);
const char *yj_role_name(yj_role role);

#endif
