/*
 * sha256.c — SHA-256 with the algorithm fetched once (sha256.h).
 */
#include "yongjin/sha256.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic(EVP_MD *) md; /* NULL until a fetch succeeds; then never changes */

const EVP_MD *yj_sha256_md(void)
{
    EVP_MD *m = atomic_load_explicit(&md, memory_order_acquire);
    if (m) return m;
    /* not once for good: a fetch that fails (memory, a provider) is tried
     * again by the next caller, as a lookup per digest was */
    EVP_MD *fetched = EVP_MD_fetch(NULL, "SHA2-256", NULL), *none = NULL;
    if (!fetched) return NULL;
    if (atomic_compare_exchange_strong_explicit(&md, &none, fetched, memory_order_acq_rel, memory_order_acquire))
        return fetched;
    EVP_MD_free(fetched); /* another thread's came first */
    return none;
}

/* The calling thread's context: made on its first digest, freed by the
 * key's destructor when the thread ends (the main thread's is reachable
 * from its key until the process exits). NULL when it cannot be made. */
static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;
static int ctx_key_ok;

static void ctx_free(void *c)
{
    EVP_MD_CTX_free(c);
}

static void ctx_key_make(void)
{
    ctx_key_ok = pthread_key_create(&ctx_key, ctx_free) == 0;
}

static EVP_MD_CTX *thread_ctx(void)
{
    pthread_once(&ctx_once, ctx_key_make);
    if (!ctx_key_ok) return NULL;
    EVP_MD_CTX *c = pthread_getspecific(ctx_key);
    if (c) return c;
    c = EVP_MD_CTX_new();
    if (c && pthread_setspecific(ctx_key, c) != 0) {
        EVP_MD_CTX_free(c);
        return NULL;
    }
    return c;
}

static int digest_on(EVP_MD_CTX *c, const EVP_MD *m, size_t n, const void *const part[],
                     const size_t len[], uint8_t out[YJ_SHA256_BYTES])
{
    if (EVP_DigestInit_ex(c, m, NULL) != 1) return 0;
    for (size_t i = 0; i < n; i++)
        if (EVP_DigestUpdate(c, part[i], len[i]) != 1) return 0;
    unsigned int got = 0;
    return EVP_DigestFinal_ex(c, out, &got) == 1 && got == YJ_SHA256_BYTES;
}

int yj_sha256_parts(size_t n, const void *const part[], const size_t len[],
                    uint8_t out[YJ_SHA256_BYTES])
{
    const EVP_MD *m = yj_sha256_md();
    if (!m) return 0;
    EVP_MD_CTX *c = thread_ctx();
    if (c) return digest_on(c, m, n, part, len, out);
    /* no context of the thread's (its key could not be made, or memory):
     * one for this digest alone */
    c = EVP_MD_CTX_new();
    int ok = c && digest_on(c, m, n, part, len, out);
    EVP_MD_CTX_free(c);
    return ok;
}

int yj_sha256(const void *data, size_t len, uint8_t out[YJ_SHA256_BYTES])
{
    const void *part[1] = {data};
    return yj_sha256_parts(1, part, &len, out);
}
