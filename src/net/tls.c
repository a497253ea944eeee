/*
 * tls.c — the server's OpenSSL context: TLS 1.2 or later, ALPN "h2" only
 * (a client that offers no h2 fails the handshake), and optional client
 * certificates verified against a CA file (mTLS between services).
 */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "net/tls.h"

static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned int inlen, void *arg)
{
    /* in: a list of length-prefixed protocol names offered by the client */
    for (unsigned int i = 0; i < inlen;) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void last_error(char *buf, size_t cap)
{
    unsigned long e = ERR_get_error();
    if (e) ERR_error_string_n(e, buf, cap);
    else snprintf(buf, cap, "unknown error");
}

yj_err yj_tls_context_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                          SSL_CTX **out, yj_msg *msg)
{
    char why[256];
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return yj_fail(msg, YJ_INTERNAL, "cannot create a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        last_error(why, sizeof why);
        SSL_CTX_free(ctx);
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "--tls-cert %s: %s", cert_file, why);
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        last_error(why, sizeof why);
        SSL_CTX_free(ctx);
        return yj_fail(msg, YJ_INVALID_ARGUMENT, "--tls-key %s: %s", key_file, why);
    }
    if (client_ca_file) {
        if (SSL_CTX_load_verify_locations(ctx, client_ca_file, NULL) != 1) {
            last_error(why, sizeof why);
            SSL_CTX_free(ctx);
            return yj_fail(msg, YJ_INVALID_ARGUMENT, "--tls-client-ca %s: %s", client_ca_file, why);
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    *out = ctx;
    return YJ_OK;
}
