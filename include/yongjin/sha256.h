/*
 * sha256.h — SHA-256 through OpenSSL, with the algorithm fetched once.
 *
 * OpenSSL 3 looks a digest named by EVP_sha256() up in its providers at
 * every EVP_DigestInit (a lock and a table lookup): 2.6% of the writer's
 * profile at two digests an order, and one per call on the event loop for
 * the API key. An EVP_MD fetched once skips that. The handle is fetched
 * on first use (a failed fetch is tried again on the next), then never
 * changes nor is freed, and may be used by any thread at once.
 *
 * A digest also needs a context: each thread keeps one, made on its first
 * digest and freed when the thread ends, instead of one allocated and
 * freed per digest (the writer's two a call: thirtieth session,
 * performance.md).
 */
#ifndef YONGJIN_SHA256_H
#define YONGJIN_SHA256_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#define YJ_SHA256_BYTES 32

/* SHA-256 for EVP_DigestInit_ex; NULL when OpenSSL cannot give it (the
 * caller's init then fails, as with any other OpenSSL failure). */
const EVP_MD *yj_sha256_md(void);
/* out = SHA-256(data): 1, or 0 when OpenSSL fails. */
int yj_sha256(const void *data, size_t len, uint8_t out[YJ_SHA256_BYTES]);
/* out = SHA-256 of the n parts one after the other (part[i], len[i]
 * bytes): 1, or 0 when OpenSSL fails. */
int yj_sha256_parts(size_t n, const void *const part[], const size_t len[],
                    uint8_t out[YJ_SHA256_BYTES]);

#endif
