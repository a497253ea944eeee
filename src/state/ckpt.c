/*
 * ckpt.c — the typed states' checkpoint file (ckpt.h).
 */
#include "state/ckpt.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "yongjin/be.h"
#include "yongjin/buf.h"
#include "yongjin/sha256.h"
#include "yongjin/tenant.h"

static const char MAGIC[8] = {'y', 'j', 't', 'c', 'k', 'p', 't', '\n'};
#define FORMAT 2u /* 2: the body's hash over the frames and the states' headers */
/* magic 8, format 4, zero 4, seq 8, hash 32, tenants 8, body length 8,
 * body SHA-256 32, then the SHA-256 of those 104 bytes */
#define HEAD_FIELDS 104
#define HEAD (HEAD_FIELDS + 32)

static yj_err file_fail(yj_msg *msg, const char *what, const char *path)
{
    return yj_fail(msg, YJ_INTERNAL, "typed checkpoint: %s %s: %s", what, path, strerror(errno));
}

static int write_all(int fd, const void *p, size_t n, EVP_MD_CTX *body)
{
    if (body && n && EVP_DigestUpdate(body, p, n) != 1) {
        errno = ENOMEM;
        return -1;
    }
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = EIO;
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int pwrite_all(int fd, const uint8_t *p, size_t n, off_t at)
{
    while (n) {
        ssize_t w = pwrite(fd, p, n, at);
        if (w < 0 && errno == EINTR) continue;
        if (w == 0) errno = EIO;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int r = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return r;
}

/* 0 when its digest fails. */
static int put_header(uint8_t h[HEAD], uint64_t seq, const uint8_t hash[YJ_CKPT_HASH], uint64_t n,
                      uint64_t body_len, const uint8_t body_sha[32])
{
    memcpy(h, MAGIC, 8);
    yj_store_be32(h + 8, FORMAT);
    yj_store_be32(h + 12, 0);
    yj_store_be64(h + 16, seq);
    memcpy(h + 24, hash, YJ_CKPT_HASH);
    yj_store_be64(h + 56, n);
    yj_store_be64(h + 64, body_len);
    memcpy(h + 72, body_sha, 32);
    return yj_sha256(h, HEAD_FIELDS, h + HEAD_FIELDS);
}

yj_err yj_ckpt_write(const char *dir, uint64_t seq, const uint8_t hash[YJ_CKPT_HASH],
                     const yj_ckpt_tenant *t, size_t n, uint64_t *bytes, yj_msg *msg)
{
    if (n > YJ_CKPT_TENANTS_MAX)
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "typed checkpoint: %zu tenants (at most %u)", n,
                       YJ_CKPT_TENANTS_MAX);
    for (size_t i = 0; i < n; i++)
        if (!yj_tenant_valid(t[i].id, t[i].len))
            return yj_fail(msg, YJ_INVALID_ARGUMENT, "typed checkpoint: tenant %zu's id is not one",
                           i);
    char tmp[4096], path[4096], prev[4096], prev_tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s.%ld.tmp", dir, YJ_CKPT_FILE, (long)getpid()) >=
            sizeof tmp ||
        (size_t)snprintf(path, sizeof path, "%s/%s", dir, YJ_CKPT_FILE) >= sizeof path ||
        (size_t)snprintf(prev, sizeof prev, "%s/%s", dir, YJ_CKPT_PREV_FILE) >= sizeof prev ||
        (size_t)snprintf(prev_tmp, sizeof prev_tmp, "%s/%s.%ld.tmp", dir, YJ_CKPT_PREV_FILE,
                         (long)getpid()) >= sizeof prev_tmp)
        return yj_fail(msg, YJ_INVALID_ARGUMENT,
                       "typed checkpoint: the directory's name is too long");
    EVP_MD_CTX *body = EVP_MD_CTX_new();
    if (!body || EVP_DigestInit_ex(body, yj_sha256_md(), NULL) != 1) {
        EVP_MD_CTX_free(body);
        return yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: no memory for a digest");
    }
    yj_err err = YJ_OK;
    uint64_t body_len = 0;
    unlink(tmp); /* (one an earlier process of this pid left) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = file_fail(msg, "cannot create", tmp);
        goto out;
    }
    uint8_t h[HEAD] = {0};
    if (write_all(fd, h, HEAD, NULL) != 0) { /* (its place: written last) */
        err = file_fail(msg, "cannot write", tmp);
        goto out;
    }
    for (size_t i = 0; i < n; i++) { /* a frame, then the state straight into the file */
        uint8_t frame[4 + YJ_TENANT_MAX + 8], inner[YJ_SM_SNAP_HEADER];
        size_t fn = 4 + t[i].len + 8;
        yj_store_be32(frame, (uint32_t)t[i].len);
        memcpy(frame + 4, t[i].id, t[i].len);
        yj_store_be64(frame + 4 + t[i].len, 0); /* (its length: known after it) */
        uint64_t sn = 0;
        yj_msg why = {{0}};
        if (write_all(fd, frame, fn, NULL) != 0) {
            err = file_fail(msg, "cannot write", tmp);
            goto out;
        }
        yj_err e = yj_sm_save_fd(t[i].sm, fd, 0, &sn, inner, &why);
        if (e != YJ_OK) {
            err = yj_fail(msg, e, "typed checkpoint %s: tenant %.*s: %s", tmp, (int)t[i].len,
                          t[i].id, why.text);
            goto out;
        }
        yj_store_be64(frame + 4 + t[i].len, sn);
        if (pwrite_all(fd, frame + 4 + t[i].len, 8, (off_t)(HEAD + body_len + 4 + t[i].len)) != 0) {
            err = file_fail(msg, "cannot write", tmp);
            goto out;
        }
        /* the hash binds each frame and its state's header (which holds the
         * state's length and the SHA-256 of the rest of it) */
        if (EVP_DigestUpdate(body, frame, fn) != 1 ||
            EVP_DigestUpdate(body, inner, YJ_SM_SNAP_HEADER) != 1) {
            err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: no memory for a digest");
            goto out;
        }
        body_len += fn + sn;
    }
    uint8_t sha[32];
    unsigned sn = 0;
    if (EVP_DigestFinal_ex(body, sha, &sn) != 1 || sn != 32) {
        err = yj_fail(msg, YJ_INTERNAL, "typed checkpoint: the body's digest failed");
        goto out;
    }
    if (!put_header(h, seq, hash, n, body_len, sha)) {
        err = yj_fail(msg, YJ_INTERNAL, "typed checkpoint: the header's digest failed");
        goto out;
    }
    if (pwrite_all(fd, h, HEAD, 0) != 0) {
        err = file_fail(msg, "cannot write the header of", tmp);
        goto out;
    }
    if (fsync(fd) != 0) {
        err = file_fail(msg, "cannot sync", tmp);
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        err = file_fail(msg, "cannot close", tmp);
        goto out;
    }
    fd = -1;
    /* the one it replaces kept as the previous (a second name, then renamed
     * over the previous one: the newest stays in place throughout) */
    unlink(prev_tmp);
    if (link(path, prev_tmp) == 0) {
        if (rename(prev_tmp, prev) != 0) {
            err = file_fail(msg, "cannot rename over", prev);
            unlink(prev_tmp);
            goto out;
        }
    } else if (errno != ENOENT) {
        err = file_fail(msg, "cannot link", path);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        err = file_fail(msg, "cannot rename over", path);
        goto out;
    }
    if (sync_dir(dir) !=
        0) { /* the new file is in place; whether its name is durable is not known */
        err = file_fail(msg, "cannot sync the directory", dir);
        goto out;
    }
    if (bytes) *bytes = HEAD + body_len;
out:
    if (fd >= 0) close(fd);
    if (err != YJ_OK) unlink(tmp); /* (gone already after a rename) */
    EVP_MD_CTX_free(body);
    return err;
}

size_t yj_ckpt_clean(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t removed = 0, pre = strlen(YJ_CKPT_FILE);
    int dfd = dirfd(d);
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        if (n > pre + 5 && !strncmp(e->d_name, YJ_CKPT_FILE, pre) && e->d_name[pre] == '.' &&
            !strcmp(e->d_name + n - 4, ".tmp") && unlinkat(dfd, e->d_name, 0) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static yj_err damaged(yj_msg *msg, const char *path, const char *check)
{
    return yj_fail(msg, YJ_DATA_LOSS,
                   "typed checkpoint %s is damaged (%s): remove it to build the typed state from "
                   "the journal",
                   path, check);
}

yj_err yj_ckpt_read(const char *dir, uint64_t seed, yj_ckpt_at_fn at_fn, yj_ckpt_tenant_fn fn,
                    void *ctx, uint64_t *seq, uint8_t hash[YJ_CKPT_HASH], uint64_t *bytes,
                    yj_msg *msg)
{
    return yj_ckpt_read_file(dir, YJ_CKPT_FILE, seed, at_fn, fn, ctx, seq, hash, bytes, msg);
}

yj_err yj_ckpt_read_file(const char *dir, const char *name, uint64_t seed, yj_ckpt_at_fn at_fn,
                         yj_ckpt_tenant_fn fn, void *ctx, uint64_t *seq, uint8_t hash[YJ_CKPT_HASH],
                         uint64_t *bytes, yj_msg *msg)
{
    return yj_ckpt_read_beside(dir, name, seed, at_fn, NULL, fn, ctx, seq, hash, bytes, msg);
}

/* A tenant's id beside its state, for yj_sm_load_beside. */
typedef struct beside_arg {
    yj_ckpt_beside_fn fn;
    void *ctx;
    const char *id;
    size_t len;
} beside_arg;

static yj_err tenant_beside(void *arg, yj_sm *sm)
{
    beside_arg *b = arg;
    return b->fn(b->ctx, b->id, b->len, sm);
}

yj_err yj_ckpt_read_beside(const char *dir, const char *name, uint64_t seed, yj_ckpt_at_fn at_fn,
                           yj_ckpt_beside_fn beside, yj_ckpt_tenant_fn fn, void *ctx, uint64_t *seq,
                           uint8_t hash[YJ_CKPT_HASH], uint64_t *bytes, yj_msg *msg)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path)
        return yj_fail(msg, YJ_INVALID_ARGUMENT,
                       "typed checkpoint: the directory's name is too long");
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return yj_fail(msg, YJ_NOT_FOUND, "no typed checkpoint in %s", dir);
        if (errno == ELOOP) return damaged(msg, path, "a symbolic link, not a file");
        return file_fail(msg, "cannot open", path);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        yj_err e = file_fail(msg, "cannot stat", path);
        close(fd);
        return e;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return damaged(msg, path, "not a regular file");
    }
    if (st.st_size < HEAD) {
        close(fd);
        return damaged(msg, path, "shorter than its header");
    }
    size_t size = (size_t)st.st_size;
    const uint8_t *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return file_fail(msg, "cannot map", path);
    yj_err err = YJ_OK;
    uint8_t sha[32];
    if (memcmp(p, MAGIC, 8) != 0) {
        err = damaged(msg, path, "not a typed checkpoint: its magic");
        goto out;
    }
    if (!yj_sha256(p, HEAD_FIELDS, sha)) {
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: a digest failed");
        goto out;
    }
    if (memcmp(sha, p + HEAD_FIELDS, 32) != 0) {
        err = damaged(msg, path, "its header's SHA-256");
        goto out;
    }
    if (yj_load_be32(p + 8) != FORMAT || yj_load_be32(p + 12) != 0) {
        err = damaged(msg, path, "a format this build does not read");
        goto out;
    }
    uint64_t n = yj_load_be64(p + 56), body_len = yj_load_be64(p + 64);
    if (body_len != size - HEAD) {
        err = damaged(msg, path, "its length is not the one its header records");
        goto out;
    }
    if (n > YJ_CKPT_TENANTS_MAX) {
        err = damaged(msg, path, "a count of tenants past the limit");
        goto out;
    }
    /* first every frame walked and the hash over the frames and the
     * states' headers checked; only then is a state loaded (each checks
     * its own body's hash) */
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!md || EVP_DigestInit_ex(md, yj_sha256_md(), NULL) != 1) {
        EVP_MD_CTX_free(md);
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: no memory for a digest");
        goto out;
    }
    size_t at = HEAD;
    for (uint64_t i = 0; i < n && err == YJ_OK; i++) {
        if (size - at < 4) {
            err = damaged(msg, path, "a tenant's frame past the end");
            break;
        }
        uint32_t idn = yj_load_be32(p + at);
        if (idn > YJ_TENANT_MAX || size - at - 4 < (size_t)idn + 8 ||
            !yj_tenant_valid((const char *)p + at + 4, idn)) {
            err = damaged(msg, path, "a tenant's id");
            break;
        }
        size_t fl = 4 + (size_t)idn + 8;
        uint64_t sn = yj_load_be64(p + at + 4 + idn);
        if (sn > size - at - fl || sn < YJ_SM_SNAP_HEADER) {
            err = damaged(msg, path, "a tenant's state past the end");
            break;
        }
        if (EVP_DigestUpdate(md, p + at, fl + YJ_SM_SNAP_HEADER) != 1)
            err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: a digest failed");
        at += fl + (size_t)sn;
    }
    unsigned sl = 0;
    if (err == YJ_OK && at != size) err = damaged(msg, path, "bytes past its last tenant");
    if (err == YJ_OK && (EVP_DigestFinal_ex(md, sha, &sl) != 1 || sl != 32))
        err = yj_fail(msg, YJ_RESOURCE_EXHAUSTED, "typed checkpoint: a digest failed");
    EVP_MD_CTX_free(md);
    if (err != YJ_OK) goto out;
    if (memcmp(sha, p + 72, 32) != 0) {
        err = damaged(msg, path, "the SHA-256 of its tenants and their states' headers");
        goto out;
    }
    if (at_fn && (err = at_fn(ctx, yj_load_be64(p + 16), p + 24, msg)) != YJ_OK) goto out;
    at = HEAD;
    for (uint64_t i = 0; i < n; i++) { /* (the frames are as walked above) */
        uint32_t idn = yj_load_be32(p + at);
        const char *id = (const char *)p + at + 4;
        uint64_t sn = yj_load_be64(p + at + 4 + idn);
        at += 4 + (size_t)idn + 8;
        yj_sm *sm = NULL;
        yj_msg why = {{0}};
        beside_arg ba = {beside, ctx, id, idn};
        err = yj_sm_load_beside(p + at, (size_t)sn, seed ^ i, beside ? tenant_beside : NULL, &ba,
                                &sm, &why);
        if (err == YJ_DATA_LOSS) {
            char check[YJ_MSG_MAX + 48];
            snprintf(check, sizeof check, "tenant %.*s: %s", (int)idn, id, why.text);
            err = damaged(msg, path, check);
            goto out;
        }
        if (err != YJ_OK) {
            yj_fail(msg, err, "typed checkpoint %s: tenant %.*s: %s", path, (int)idn, id, why.text);
            goto out;
        }
        at += (size_t)sn;
        if ((err = fn(ctx, id, idn, sm)) != YJ_OK) goto out;
    }
    *seq = yj_load_be64(p + 16);
    memcpy(hash, p + 24, YJ_CKPT_HASH);
    if (bytes) *bytes = size;
out:
    munmap((void *)p, size);
    return err;
}
