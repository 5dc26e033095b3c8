#include "router/fingerprint.h"

#include <pg_query.h>

#include "router/statement_rules.h"

namespace cutover::router {
namespace {

// Own pg_query results from the moment they are returned.
class FingerprintResult {
 public:
  explicit FingerprintResult(const std::string& sql) : result_(pg_query_fingerprint(sql.c_str())) {}
  ~FingerprintResult() { pg_query_free_fingerprint_result(result_); }
  FingerprintResult(const FingerprintResult&) = delete;
  FingerprintResult& operator=(const FingerprintResult&) = delete;
  const PgQueryFingerprintResult& get() const { return result_; }

 private:
  PgQueryFingerprintResult result_;
};

class NormalizeResult {
 public:
  explicit NormalizeResult(const std::string& sql) : result_(pg_query_normalize(sql.c_str())) {}
  ~NormalizeResult() { pg_query_free_normalize_result(result_); }
  NormalizeResult(const NormalizeResult&) = delete;
  NormalizeResult& operator=(const NormalizeResult&) = delete;
  const PgQueryNormalizeResult& get() const { return result_; }

 private:
  PgQueryNormalizeResult result_;
};

std::string errorText(const PgQueryError* error) {
  return error != nullptr && error->message != nullptr ? error->message : "does not parse";
}

}  // namespace

StatementFingerprint fingerprintStatement(std::string_view sql) {
  StatementFingerprint out;
  if (sql.find('\0') != std::string_view::npos) {
    out.error = "text contains a NUL byte";
    return out;
  }
  if (mayNestTooDeep(sql)) {
    out.error = "too many operators to parse safely";
    return out;
  }
  const std::string text(sql);
  FingerprintResult fingerprint(text);
  if (fingerprint.get().error != nullptr || fingerprint.get().fingerprint_str == nullptr) {
    out.error = errorText(fingerprint.get().error);
    return out;
  }
  NormalizeResult normalized(text);
  if (normalized.get().error != nullptr || normalized.get().normalized_query == nullptr) {
    out.error = errorText(normalized.get().error);
    return out;
  }
  out.fingerprint = fingerprint.get().fingerprint_str;
  out.normalized = normalized.get().normalized_query;
  return out;
}

}  // namespace cutover::router
