/*
 * tls.h — the server's TLS context (TLS 1.2+, ALPN h2 only, optional mTLS).
 */
#ifndef YONGJIN_NET_TLS_H
#define YONGJIN_NET_TLS_H

#include <openssl/ssl.h>

#include "yongjin/err.h"

/* A context with the certificate chain and key loaded; client_ca_file may
 * be NULL (no client certificates). INVALID_ARGUMENT names the bad file. */
yj_err yj_tls_context_new(const char *cert_file, const char *key_file, const char *client_ca_file,
                          SSL_CTX **out, yj_msg *msg);

#endif
