#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "common/ssl_errors.h"
#include "common/status.h"
#include "common/unique_handle.h"
#include "config/config.h"

namespace cutover::proxy {

using SslCtxPtr = UniqueHandle<SSL_CTX, SSL_CTX_free>;
using SslPtr = UniqueHandle<SSL, SSL_free>;

// TLS towards clients: certificate and key from files, TLS 1.2 or newer. Immutable once built;
// a reload (SIGHUP) builds a new one and new connections pick it up, open ones keep theirs.
class TlsServerContext {
 public:
  static Result<std::shared_ptr<const TlsServerContext>> load(const config::TlsConfig& tls);
  SslPtr newSession() const;
  // tls-server-end-point channel binding data (RFC 5929): the certificate's hash with its
  // signature digest, SHA-256 when that digest is MD5 or SHA-1. Used by SCRAM-SHA-256-PLUS.
  const std::string& endPointHash() const { return end_point_hash_; }

 private:
  SslCtxPtr ctx_;
  std::string end_point_hash_;
};

// TLS towards a store, as libpq's sslmode: require encrypts without checking the certificate,
// verify-ca checks it against sslrootcert, verify-full also checks the host name.
class TlsClientContext {
 public:
  static Result<std::shared_ptr<const TlsClientContext>> load(const config::StoreConfig& store);
  SslPtr newSession() const;

 private:
  SslCtxPtr ctx_;
  std::string host_;
  bool verify_host_ = false;
};

using cutover::takeSslErrors;   // common/ssl_errors.h

}  // namespace cutover::proxy
