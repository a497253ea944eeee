/*
 * tenant.h — what a tenant id is: the x-tenant header, the key file, the
 * store's keys and the yj command line all check it the same way.
 */
#ifndef YONGJIN_TENANT_H
#define YONGJIN_TENANT_H

#include <stddef.h>

#define YJ_TENANT_MAX 32

/* Whether s (len bytes) is a tenant id: 1..YJ_TENANT_MAX bytes of [a-z0-9_-]. */
int yj_tenant_valid(const char *s, size_t len);

#endif
