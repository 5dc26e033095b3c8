#include "proxy/tls.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

namespace cutover::proxy {

namespace {

Result<std::string> certificateEndPointHash(X509* cert) {
  int digest_nid = NID_undef;
  if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &digest_nid, nullptr) || digest_nid == NID_undef) {
    return Status::error("cannot tell the certificate's signature digest (needed for channel binding)");
  }
  if (digest_nid == NID_md5 || digest_nid == NID_sha1) digest_nid = NID_sha256;   // RFC 5929 4.1
  const EVP_MD* md = EVP_get_digestbynid(digest_nid);
  if (md == nullptr) return Status::error("unsupported certificate digest for channel binding");
  unsigned char hash[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (X509_digest(cert, md, hash, &length) != 1) return Status::error("cannot hash the certificate");
  return std::string(reinterpret_cast<char*>(hash), length);
}

}  // namespace

Result<std::shared_ptr<const TlsServerContext>> TlsServerContext::load(const config::TlsConfig& tls) {
  auto context = std::make_shared<TlsServerContext>();
  context->ctx_.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* ctx = context->ctx_.get();
  if (ctx == nullptr) return Status::error("cannot create a TLS context: " + takeSslErrors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  if (SSL_CTX_use_certificate_chain_file(ctx, tls.cert_file.c_str()) != 1) {
    return Status::error(fmt::format("tls.cert_file: cannot load certificate '{}': {}", tls.cert_file, takeSslErrors()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, tls.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return Status::error(fmt::format("tls.key_file: cannot load private key '{}': {}", tls.key_file, takeSslErrors()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return Status::error(fmt::format("tls.key_file '{}' does not match tls.cert_file '{}'", tls.key_file, tls.cert_file));
  }
  auto hash = certificateEndPointHash(SSL_CTX_get0_certificate(ctx));
  if (!hash.isOk()) return Status::error("tls.cert_file: " + hash.status().message());
  context->end_point_hash_ = std::move(hash.value());
  return std::shared_ptr<const TlsServerContext>(std::move(context));
}

SslPtr TlsServerContext::newSession() const { return SslPtr(SSL_new(ctx_.get())); }

Result<std::shared_ptr<const TlsClientContext>> TlsClientContext::load(const config::StoreConfig& store) {
  auto context = std::make_shared<TlsClientContext>();
  context->ctx_.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* ctx = context->ctx_.get();
  if (ctx == nullptr) return Status::error("cannot create a TLS context: " + takeSslErrors());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  const bool verify = store.sslmode == config::SslMode::VerifyCa || store.sslmode == config::SslMode::VerifyFull;
  if (verify) {
    if (store.sslrootcert.empty()) {
      return Status::error(fmt::format("stores.{}.sslmode {} needs stores.{}.sslrootcert (the CA that signed the "
                                       "store's certificate)",
                                       store.name, config::toString(store.sslmode), store.name));
    }
    if (SSL_CTX_load_verify_locations(ctx, store.sslrootcert.c_str(), nullptr) != 1) {
      return Status::error(fmt::format("stores.{}.sslrootcert: cannot load '{}': {}", store.name, store.sslrootcert,
                                       takeSslErrors()));
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  context->host_ = store.host;
  context->verify_host_ = store.sslmode == config::SslMode::VerifyFull;
  return std::shared_ptr<const TlsClientContext>(std::move(context));
}

SslPtr TlsClientContext::newSession() const {
  SslPtr ssl(SSL_new(ctx_.get()));
  if (!ssl) return ssl;
  unsigned char ip[16];
  const bool is_ip = inet_pton(AF_INET, host_.c_str(), ip) == 1 || inet_pton(AF_INET6, host_.c_str(), ip) == 1;
  if (!is_ip) SSL_set_tlsext_host_name(ssl.get(), host_.c_str());
  if (verify_host_) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
    if (is_ip) {
      X509_VERIFY_PARAM_set1_ip_asc(param, host_.c_str());
    } else {
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      X509_VERIFY_PARAM_set1_host(param, host_.c_str(), 0);
    }
  }
  return ssl;
}

}  // namespace cutover::proxy
