/*
 * digest.c — the canonical digest of the derived state (Verify's
 * state_digest; docs/storage.md "The state digest").
 *
 * One SHA-256 (OpenSSL EVP) over every record of "idem", then every record
 * of "state", each table in key byte order, each record framed so that no
 * two different states give the same byte stream:
 *
 *   tag (1 byte: 'i' idem, 's' state) || key length (4 bytes big-endian)
 *   || key || value length (4 bytes big-endian) || value
 *
 * The value is the logical one, as the in-memory maps hold it and as the
 * rules read it: the CRC-32 trailer LMDB's copy carries (schema 4) is not
 * part of it, so the digest of a rebuild in memory and of the snapshot it
 * is compared with are the same stream of bytes. Tombstones are absent
 * keys: not digested. Verify computes it over the replay's maps
 * (store_state_digest) and, record by record, over the LMDB snapshot while
 * comparing (verify.c), and the two must agree.
 */
#include <assert.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

struct store_digest {
    EVP_MD_CTX *ctx;
    int failed; /* an EVP call failed: store_digest_final says so */
    uint64_t records;
};

store_digest *store_digest_new(void)
{
    store_digest *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->ctx = EVP_MD_CTX_new();
    if (!d->ctx || EVP_DigestInit_ex(d->ctx, yj_sha256_md(), NULL) != 1) {
        EVP_MD_CTX_free(d->ctx);
        free(d);
        return NULL;
    }
    return d;
}

void store_digest_free(store_digest *d)
{
    if (!d) return;
    EVP_MD_CTX_free(d->ctx);
    free(d);
}

void store_digest_record(store_digest *d, uint8_t tag, const void *key, size_t klen, const void *val,
                         size_t vlen)
{
    assert(d && key && klen > 0 && klen <= YJ_MEMMAP_KEY_MAX);
    assert(tag == STORE_DIGEST_TAG_IDEM || tag == STORE_DIGEST_TAG_STATE);
    assert(vlen <= UINT32_MAX && (val || vlen == 0));
    /* the frame up to the value in one update: a record is one or two calls */
    uint8_t head[1 + 4 + YJ_MEMMAP_KEY_MAX + 4];
    head[0] = tag;
    store_put_be(head + 1, klen, 4);
    memcpy(head + 5, key, klen);
    store_put_be(head + 5 + klen, vlen, 4);
    if (EVP_DigestUpdate(d->ctx, head, 5 + klen + 4) != 1) d->failed = 1;
    if (vlen && EVP_DigestUpdate(d->ctx, val, vlen) != 1) d->failed = 1;
    d->records++;
}

void store_digest_map(store_digest *d, uint8_t tag, const yj_memmap *m)
{
    assert(d && m);
    yj_memmap_it it;
    for (yj_memmap_first(m, &it); yj_memmap_valid(&it); yj_memmap_next(&it)) {
        const void *k, *v;
        size_t klen, vlen;
        int tomb;
        yj_memmap_at(&it, &k, &klen, &v, &vlen, &tomb);
        if (!tomb) store_digest_record(d, tag, k, klen, v, vlen);
    }
}

uint64_t store_digest_records(const store_digest *d)
{
    return d->records;
}

int store_digest_final(store_digest *d, uint8_t out[YJ_HASH_BYTES])
{
    assert(d && out);
    unsigned n = 0;
    if (d->failed || EVP_DigestFinal_ex(d->ctx, out, &n) != 1 || n != YJ_HASH_BYTES) {
        memset(out, 0, YJ_HASH_BYTES);
        return -1;
    }
    return 0;
}

int store_state_digest(const yj_memmap *idem, const yj_memmap *state, uint8_t out[YJ_HASH_BYTES])
{
    assert(idem && state && out);
    store_digest *d = store_digest_new();
    if (!d) return -1;
    store_digest_map(d, STORE_DIGEST_TAG_IDEM, idem);
    store_digest_map(d, STORE_DIGEST_TAG_STATE, state);
    int rc = store_digest_final(d, out);
    store_digest_free(d);
    return rc;
}
