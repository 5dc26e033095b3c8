#include "config/users_file.h"

#include <openssl/rand.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace cutover::config {
namespace {

bool isBlank(char c) { return c == ' ' || c == '\t'; }

std::string_view skipBlanks(std::string_view text) {
  while (!text.empty() && isBlank(text.front())) text.remove_prefix(1);
  return text;
}

// Reads one double-quoted field from the front of `text` ("" is a literal quote) and removes it.
// nullopt when the closing quote is missing; `text` must start with '"'.
std::optional<std::string> takeQuoted(std::string_view& text) {
  std::string value;
  size_t i = 1;
  while (i < text.size()) {
    if (text[i] == '"') {
      if (i + 1 < text.size() && text[i + 1] == '"') {
        value.push_back('"');
        i += 2;
        continue;
      }
      text.remove_prefix(i + 1);
      return value;
    }
    value.push_back(text[i]);
    ++i;
  }
  return std::nullopt;
}

bool isMd5Hash(std::string_view secret) {
  if (secret.size() != 3 + 32 || !secret.starts_with("md5")) return false;
  for (char c : secret.substr(3)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

}  // namespace

// Classifies `secret` and fills in the SCRAM verifier. Errors do not repeat the secret.
Result<UserCredential> credentialFromSecret(std::string secret, int plain_iterations) {
  UserCredential credential;
  if (secret.starts_with("SCRAM-SHA-256$")) {
    Result<protocol::ScramVerifier> verifier = protocol::parseScramVerifier(secret);
    if (!verifier.isOk()) return verifier.status();
    credential.kind = UserCredential::Kind::Scram;
    credential.scram = std::move(*verifier);
  } else if (isMd5Hash(secret)) {
    credential.kind = UserCredential::Kind::Md5;
  } else {
    unsigned char salt[protocol::kScramDefaultSaltBytes];
    if (RAND_bytes(salt, sizeof salt) != 1) return Status::error("could not generate a SCRAM salt");
    Result<protocol::ScramVerifier> verifier = protocol::makeScramVerifier(
        secret, {reinterpret_cast<const char*>(salt), sizeof salt}, plain_iterations);
    if (!verifier.isOk()) return verifier.status();
    credential.kind = UserCredential::Kind::Plain;
    credential.scram = std::move(*verifier);
  }
  credential.secret = std::move(secret);
  return credential;
}


Result<UsersFile> UsersFile::load(const std::string& path, int plain_iterations) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::error(fmt::format("cannot read users file {}: {}", path, std::strerror(errno)));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return Status::error(fmt::format("cannot read users file {}: read error", path));
  return parse(text.str(), path, plain_iterations);
}

Result<UsersFile> UsersFile::parse(std::string_view text, std::string_view source_name, int plain_iterations) {
  UsersFile file;
  std::map<std::string, size_t, std::less<>> defined_on;
  size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    size_t newline = text.find('\n');
    std::string_view line = text.substr(0, newline);
    text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);

    auto error = [&](std::string_view what) {
      return Status::error(fmt::format("{}:{}: {}", source_name, line_number, what));
    };
    std::string_view rest = skipBlanks(line);
    if (rest.empty() || rest.front() == '#') continue;
    if (rest.front() != '"') return error("expected a double-quoted user name");
    std::optional<std::string> user = takeQuoted(rest);
    if (!user) return error("unterminated quoted user name");
    if (user->empty()) return error("empty user name");
    rest = skipBlanks(rest);
    // Not naming the user here: in `"alice""pw"` the "" makes the password part of the name.
    if (rest.empty() || rest.front() != '"') return error("expected a double-quoted password after the user name");
    std::optional<std::string> secret = takeQuoted(rest);
    if (!secret) return error(fmt::format("unterminated quoted password for user \"{}\"", *user));
    if (secret->empty()) return error(fmt::format("empty password for user \"{}\"", *user));

    if (auto previous = defined_on.find(*user); previous != defined_on.end()) {
      return error(fmt::format("user \"{}\" is defined twice (lines {} and {})", *user, previous->second,
                               line_number));
    }
    Result<UserCredential> credential = credentialFromSecret(std::move(*secret), plain_iterations);
    if (!credential.isOk()) {
      return error(fmt::format("user \"{}\": {}", *user, credential.status().message()));
    }
    defined_on.emplace(*user, line_number);
    file.users_.emplace(std::move(*user), std::move(*credential));
  }
  return file;
}

const UserCredential* UsersFile::find(std::string_view user) const {
  auto it = users_.find(user);
  return it == users_.end() ? nullptr : &it->second;
}

}  // namespace cutover::config
