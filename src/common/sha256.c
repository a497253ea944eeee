/*
 * sha256.c — SHA-256 with the algorithm fetched once (sha256.h).
 */
#include "yongjin/sha256.h"

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

int yj_sha256(const void *data, size_t len, uint8_t out[YJ_SHA256_BYTES])
{
    const EVP_MD *m = yj_sha256_md();
    unsigned int n = 0;
    return m && EVP_Digest(data, len, out, &n, m, NULL) == 1 && n == YJ_SHA256_BYTES;
}
