/*
 * sha256.c — SHA-256 with the algorithm fetched once (sha256.h).
 */
#include "yongjin/sha256.h"

#include <pthread.h>

static pthread_once_t once = PTHREAD_ONCE_INIT;
static EVP_MD *md; /* written once, under `once`; read-only after */

static void fetch(void)
{
    md = EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

const EVP_MD *yj_sha256_md(void)
{
    pthread_once(&once, fetch);
    return md;
}

int yj_sha256(const void *data, size_t len, uint8_t out[YJ_SHA256_BYTES])
{
    const EVP_MD *m = yj_sha256_md();
    unsigned int n = 0;
    return m && EVP_Digest(data, len, out, &n, m, NULL) == 1 && n == YJ_SHA256_BYTES;
}
