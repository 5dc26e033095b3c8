#include "tests/unit/admin/test_certs.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>

namespace cutover::admin {
namespace {

struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct CertFree {
  void operator()(X509* cert) const { X509_free(cert); }
};
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyFree>;
using CertPtr = std::unique_ptr<X509, CertFree>;

void require(bool ok, const char* what) {
  if (!ok) throw std::runtime_error(std::string("test certificates: ") + what);
}

KeyPtr newKey() {
  KeyPtr key(EVP_EC_gen("P-256"));
  require(key != nullptr, "EVP_EC_gen");
  return key;
}

void addExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
  require(extension != nullptr, value.c_str());
  X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
}

// A certificate for `key` named CN=`name`, signed by issuer/issuer_key (null: self-signed).
CertPtr newCert(EVP_PKEY* key, const std::string& name, X509* issuer, EVP_PKEY* issuer_key, bool ca,
                const std::string& alt_names, long serial) {
  CertPtr cert(X509_new());
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 2 * 86400);
  X509_set_pubkey(cert.get(), key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1, 0);
  X509* signer = issuer ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(signer));
  if (ca) {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:TRUE");
    addExtension(cert.get(), signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExtension(cert.get(), signer, NID_basic_constraints, "critical,CA:FALSE");
    addExtension(cert.get(), signer, NID_ext_key_usage, "serverAuth");
    if (!alt_names.empty()) addExtension(cert.get(), signer, NID_subject_alt_name, alt_names);
  }
  addExtension(cert.get(), signer, NID_subject_key_identifier, "hash");
  require(X509_sign(cert.get(), issuer_key ? issuer_key : key, EVP_sha256()) > 0, "X509_sign");
  return cert;
}

void writePem(const std::string& path, X509* cert, EVP_PKEY* key) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  require(file != nullptr, path.c_str());
  bool ok = cert ? PEM_write_X509(file, cert) == 1
                 : PEM_write_PrivateKey(file, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(file);
  require(ok, path.c_str());
}

}  // namespace

TestCerts::TestCerts(const std::vector<std::string>& server_names) {
  std::string pattern = ::testing::TempDir() + "admin_tls_XXXXXX";
  require(mkdtemp(pattern.data()) != nullptr, "mkdtemp");
  dir_ = pattern;

  KeyPtr ca_key = newKey();
  CertPtr ca = newCert(ca_key.get(), "cutover test CA", nullptr, nullptr, true, "", 1);
  KeyPtr other_ca_key = newKey();
  CertPtr other_ca = newCert(other_ca_key.get(), "cutover other test CA", nullptr, nullptr, true, "", 1);
  std::string alt_names;
  for (const std::string& name : server_names) alt_names += (alt_names.empty() ? "" : ",") + name;
  KeyPtr server_key = newKey();
  CertPtr server = newCert(server_key.get(), "cutover admin", ca.get(), ca_key.get(), false, alt_names, 2);
  KeyPtr other_key = newKey();

  writePem(caFile(), ca.get(), nullptr);
  writePem(otherCaFile(), other_ca.get(), nullptr);
  writePem(certFile(), server.get(), nullptr);
  writePem(keyFile(), nullptr, server_key.get());
  writePem(otherKeyFile(), nullptr, other_key.get());
}

TestCerts::~TestCerts() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

std::string TestCerts::write(const std::string& name, const std::string& content) const {
  std::string path = dir_ + "/" + name;
  std::ofstream(path) << content;
  return path;
}

}  // namespace cutover::admin
