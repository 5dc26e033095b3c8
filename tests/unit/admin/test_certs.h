#pragma once

// Throwaway certificates for the admin TLS tests, made in process with OpenSSL: a CA and a
// server certificate it signed, as PEM files in a temporary directory removed by the destructor.

#include <string>
#include <vector>

namespace cutover::admin {

class TestCerts {
 public:
  // The server certificate's subjectAltName entries, e.g. {"DNS:localhost", "IP:127.0.0.1"}.
  explicit TestCerts(const std::vector<std::string>& server_names = {"DNS:localhost", "IP:127.0.0.1"});
  ~TestCerts();
  TestCerts(const TestCerts&) = delete;
  TestCerts& operator=(const TestCerts&) = delete;

  const std::string& dir() const { return dir_; }
  std::string caFile() const { return dir_ + "/ca.pem"; }          // the CA's certificate
  std::string otherCaFile() const { return dir_ + "/other-ca.pem"; }  // a CA that signed nothing here
  std::string certFile() const { return dir_ + "/server.pem"; }
  std::string keyFile() const { return dir_ + "/server.key"; }
  std::string otherKeyFile() const { return dir_ + "/other.key"; }  // not the server certificate's key

  // Writes `content` to dir()/name and returns the path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string dir_;
};

}  // namespace cutover::admin
