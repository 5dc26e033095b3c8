#pragma once

// The users file for client authentication, in PgBouncer's auth_file format: one
//   "name" "secret"
// per line, both fields in double quotes, "" inside quotes standing for one quote. Blank lines and
// lines whose first non-blank character is '#' are ignored, as is anything after the second field
// (PgBouncer reads only the first two). The secret is taken as:
//   SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>   a verifier copied from pg_authid
//   md5<32 lower-case hex>                                 an md5 hash copied from pg_authid
//   anything else                                          a plaintext password
// Error messages name the file and line but never contain a secret.

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "protocol/scram.h"
#include "protocol/scram_server.h"

namespace cutover::config {

struct UserCredential {
  enum class Kind { Scram, Md5, Plain };
  Kind kind = Kind::Plain;
  std::string secret;  // the verifier, hash or password exactly as given
  // Parsed when kind == Scram; derived at load for Plain (random salt, `plain_iterations`) so a
  // plaintext entry can answer SCRAM too. Unset for Md5.
  std::optional<protocol::ScramVerifier> scram;
};

// Classifies one secret as the users file does (SCRAM verifier, md5 hash, or plaintext, for which
// a SCRAM verifier is derived) — also used for secrets found by auth.query. Errors never repeat it.
Result<UserCredential> credentialFromSecret(std::string secret,
                                            int plain_iterations = protocol::kScramDefaultIterations);

class UsersFile {
 public:
  static Result<UsersFile> load(const std::string& path,
                                int plain_iterations = protocol::kScramDefaultIterations);
  // `source_name` prefixes error messages ("<source>:<line>: …"). Lower `plain_iterations` only
  // in tests and fuzzing, where each plaintext entry costs one PBKDF2 run.
  static Result<UsersFile> parse(std::string_view text, std::string_view source_name,
                                 int plain_iterations = protocol::kScramDefaultIterations);

  const UserCredential* find(std::string_view user) const;
  size_t size() const { return users_.size(); }

 private:
  std::map<std::string, UserCredential, std::less<>> users_;
};

}  // namespace cutover::config
