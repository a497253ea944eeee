/*
 * auth.c — the API key table (see auth.h). Keys are held as SHA-256
 * digests only; a lookup hashes the presented key and compares it with
 * every entry in constant time, so neither timing nor an early exit tells
 * which prefix matched.
 */
#include <assert.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "yongjin/auth.h"
#include "yongjin/sha256.h"
#include "yongjin/tenant.h"

typedef struct key_entry {
    uint8_t digest[YJ_SHA256_BYTES];
    char tenant[33]; /* "*" or a tenant id */
    yj_role role;
} key_entry;

struct yj_auth {
    key_entry *keys;
    size_t n;
};

yj_role yj_role_parse(const char *name)
{
    if (!strcmp(name, "storefront")) return YJ_ROLE_STOREFRONT;
    if (!strcmp(name, "finance")) return YJ_ROLE_FINANCE;
    if (!strcmp(name, "admin")) return YJ_ROLE_ADMIN;
    if (!strcmp(name, "auditor")) return YJ_ROLE_AUDITOR;
    return YJ_ROLE_NONE;
}

const char *yj_role_name(yj_role role)
{
    switch (role) {
    case YJ_ROLE_STOREFRONT: return "storefront";
    case YJ_ROLE_FINANCE: return "finance";
    case YJ_ROLE_ADMIN: return "admin";
    case YJ_ROLE_AUDITOR: return "auditor";
    default: return "none";
    }
}

static int hex_digest(const char *s, uint8_t out[32])
{
    if (strlen(s) != 64) return 0;
    for (int i = 0; i < 64; i++) {
        char c = s[i];
        int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (v < 0) return 0;
        out[i / 2] = (uint8_t)(i % 2 ? (out[i / 2] | v) : (v << 4));
    }
    return 1;
}

static int valid_tenant(const char *t)
{
    return !strcmp(t, "*") || yj_tenant_valid(t, strlen(t));
}

/* Parses the file into a fresh table. */
static yj_err parse_file(const char *path, key_entry **out, size_t *n_out, yj_msg *msg)
{
    FILE *f = fopen(path, "r");
    if (!f) return yj_fail(msg, YJ_INVALID_ARGUMENT, "--auth %s: cannot open it", path);
    key_entry *keys = NULL;
    size_t n = 0, cap = 0;
    char line[512];
    int lineno = 0;
    yj_err err = YJ_OK;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char hex[80], tenant[80], role[80], extra[8];
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        int got = sscanf(line, "%79s %79s %79s %7s", hex, tenant, role, extra);
        if (got <= 0) continue;
        key_entry e;
        if (got != 3 || !hex_digest(hex, e.digest) || !valid_tenant(tenant) ||
            (e.role = yj_role_parse(role)) == YJ_ROLE_NONE) {
            err = yj_fail(msg, YJ_INVALID_ARGUMENT,
                          "--auth %s:%d: expected '<sha256-hex> <tenant|*> <storefront|finance|admin|auditor>'",
                          path, lineno);
            break;
        }
        if (n == YJ_AUTH_MAX_KEYS) {
            err = yj_fail(msg, YJ_INVALID_ARGUMENT, "--auth %s: more than %d keys", path, YJ_AUTH_MAX_KEYS);
            break;
        }
        memcpy(e.tenant, tenant, strlen(tenant) + 1); /* valid_tenant: at most 32 bytes */
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            key_entry *more = realloc(keys, cap * sizeof *keys);
            if (!more) {
                err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
                break;
            }
            keys = more;
        }
        keys[n++] = e;
    }
    fclose(f);
    if (err != YJ_OK) {
        free(keys);
        return err;
    }
    *out = keys;
    *n_out = n;
    return YJ_OK;
}

yj_err yj_auth_load(const char *path, yj_auth **out, yj_msg *msg)
{
    yj_auth *a = calloc(1, sizeof *a);
    if (!a) {
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "out of memory");
    }
    yj_err err = parse_file(path, &a->keys, &a->n, msg);
    if (err != YJ_OK) {
        yj_auth_free(a);
        return err;
    }
    *out = a;
    return YJ_OK;
}

size_t yj_auth_count(const yj_auth *a)
{
    return a->n;
}

void yj_auth_free(yj_auth *a)
{
    if (!a) return;
    free(a->keys);
    free(a);
}

yj_err yj_auth_check(const yj_auth *a, const uint8_t *key, size_t key_len, yj_role *role,
                     const char **tenant)
{
    uint8_t d[YJ_SHA256_BYTES];
    if (key_len == 0 || !yj_sha256(key, key_len, d)) return YJ_UNAUTHENTICATED;
    const key_entry *hit = NULL;
    for (size_t i = 0; i < a->n; i++) /* no early exit: constant time in the table */
        if (CRYPTO_memcmp(d, a->keys[i].digest, YJ_SHA256_BYTES) == 0 && !hit) hit = &a->keys[i];
    if (!hit) return YJ_UNAUTHENTICATED;
    *role = hit->role;
    *tenant = hit->tenant;
    return YJ_OK;
}
