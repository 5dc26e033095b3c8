// Fuzz target for client authentication: the input is "<mechanism>\0<client-first>\0<client-final>"
// (missing parts are empty) and drives ScramServer as a real user's exchange without and with
// channel binding and as a mock exchange; the whole input is also read as a users file and as
// md5 and SCRAM verifier text. Besides "no crash, no out-of-bounds read" it checks: every failure
// has a reason, a success returns "v=<44 base64 chars>", and a mock exchange never succeeds.
// Seeds in tests/fuzz/corpus/auth/ are written by make_auth_corpus.py (full valid exchanges).

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/users_file.h"
#include "protocol/md5.h"
#include "protocol/scram.h"
#include "protocol/scram_server.h"

namespace {

using namespace cutover;
using namespace cutover::protocol;

// Must match make_auth_corpus.py: PostgreSQL 15's verifier for "pencil", a fixed server nonce
// and SHA-256("cutover test certificate") as the certificate hash.
constexpr std::string_view kVerifier =
    "SCRAM-SHA-256$4096:g/OEYcqE/kCt3+VFdZtXew==$zpG8yoCV2O3pwYvXp/aS9ejsaVKNesxiPFolncrPwLw=:"
    "QDHR8tqYu982nIcoxzsb/u5IUkCxKD19CVUQ6Q22pGI=";
constexpr std::string_view kServerNonce = "3rfcNHYJY1ZVvWVs7j";

void check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "fuzz_auth: %s\n", what);
    std::abort();
  }
}

const ScramVerifier& verifier() {
  static const ScramVerifier parsed = *parseScramVerifier(kVerifier);
  return parsed;
}

const std::string& cbindData() {
  static const std::string data = [] {
    Sha256Digest digest = sha256("cutover test certificate");
    return std::string(reinterpret_cast<const char*>(digest.data()), digest.size());
  }();
  return data;
}

// Returns true when the exchange succeeded.
bool drive(ScramServer& server, std::string_view mechanism, std::string_view client_first,
           std::string_view client_final) {
  check(!server.mechanisms().empty(), "no mechanisms offered");
  Result<std::string> server_first = server.handleClientFirst(mechanism, client_first);
  if (!server_first.isOk()) {
    check(!server_first.status().message().empty(), "client-first failed without a reason");
    check(!server.succeeded(), "succeeded after a failed client-first");
    return false;
  }
  check(server_first->starts_with("r="), "server-first does not start with r=");
  check(!server.succeeded(), "succeeded before the client-final");
  Result<std::string> server_final = server.handleClientFinal(client_final);
  if (!server_final.isOk()) {
    check(!server_final.status().message().empty(), "client-final failed without a reason");
    check(!server.succeeded(), "succeeded after a failed client-final");
    return false;
  }
  check(server.succeeded(), "server-final returned but not succeeded");
  check(server_final->size() == 2 + 44 && server_final->starts_with("v="), "malformed server-final");
  // The exchange is over: another message must fail.
  check(!server.handleClientFinal(client_final).isOk(), "second client-final accepted");
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t first_nul = input.find('\0');
  std::string_view mechanism = input.substr(0, first_nul);
  std::string_view rest = first_nul == std::string_view::npos ? std::string_view() : input.substr(first_nul + 1);
  size_t second_nul = rest.find('\0');
  std::string_view client_first = rest.substr(0, second_nul);
  std::string_view client_final = second_nul == std::string_view::npos ? std::string_view() : rest.substr(second_nul + 1);

  ScramServer plain(verifier(), "", std::string(kServerNonce));
  drive(plain, mechanism, client_first, client_final);
  ScramServer tls(verifier(), cbindData(), std::string(kServerNonce));
  drive(tls, mechanism, client_first, client_final);
  ScramServer mock = ScramServer::mock("fuzz", "fuzz secret", cbindData());
  check(!drive(mock, mechanism, client_first, client_final), "mock exchange succeeded");

  // One PBKDF2 iteration per plaintext entry keeps the run fast; the parsing is the same.
  Result<config::UsersFile> users = config::UsersFile::parse(input, "fuzz", 1);
  if (!users.isOk()) check(users.status().message().starts_with("fuzz:"), "users-file error without location");

  Result<ScramVerifier> parsed = parseScramVerifier(input);
  if (parsed.isOk()) {
    Result<ScramVerifier> again = parseScramVerifier(formatScramVerifier(*parsed));
    check(again.isOk() && again->iterations == parsed->iterations && again->salt == parsed->salt &&
              again->stored_key == parsed->stored_key && again->server_key == parsed->server_key,
          "verifier does not survive format and parse");
  }
  verifyMd5Response(mechanism, client_first, {1, 2, 3, 4});
  return 0;
}
