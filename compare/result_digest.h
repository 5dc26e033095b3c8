#pragma once

// The digest of one store's result of one shadowed read, built as the backend messages stream
// past: columns, row count, an order-insensitive hash of the rows (duplicates counted), an
// ordered hash, the first rows up to a byte budget (to show differing rows), or the error.
// Memory is the sample plus the column list, whatever the row count; a DataRow costs no heap
// allocation.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/normalise.h"

namespace cutover::compare {

struct ResultColumn {
  std::string name;       // "" when no RowDescription was seen
  uint32_t type_oid = 0;  // 0 when no RowDescription was seen
  int16_t format = 0;     // 0 text, 1 binary
  bool ignored = false;   // named in the rules' ignore_columns: left out of the comparison
  ValueKind kind = ValueKind::Exact;
};

// An ErrorResponse's SQLSTATE and primary message.
struct StoreError {
  std::string sqlstate;
  std::string message;
};

// Order-insensitive hash of a multiset of rows: two sums of the 64-bit row hashes, one of them
// remixed, so {a, a, b} and {a, b, b} differ (as xor would not for {a, a} and {b, b}).
struct MultisetHash {
  uint64_t sum = 0;
  uint64_t mixed_sum = 0;
  bool operator==(const MultisetHash&) const = default;
};

// One row's values, views into its DataRow body; nullopt = NULL.
using RowValues = std::vector<std::optional<std::string_view>>;

// Splits a DataRow body (Int16 count, then per value Int32 length, -1 for NULL, and the bytes)
// into `values`, reusing its capacity. False, with the reason in `why`, if the body is malformed.
bool splitDataRow(std::span<const uint8_t> body, RowValues& values, std::string* why);

// Feed it one result: an optional RowDescription, DataRows, then CommandComplete (or
// EmptyQueryResponse), or an ErrorResponse at any point. Message bodies are the bytes after the
// type byte and the length (as protocol::decode takes them). Messages out of that order, or
// malformed, make the digest malformed(); later messages are then ignored. Not thread-safe.
class ResultDigester {
 public:
  // `rules` must outlive the digester.
  explicit ResultDigester(const CompareRules& rules);

  // `result_formats` are the Bind's result-column format codes when the RowDescription came from
  // a statement Describe (whose formats are all 0): empty = as described, one = for every
  // column, else one per column.
  void onRowDescription(std::span<const uint8_t> body, std::span<const int16_t> result_formats = {});
  // Without a RowDescription (an Execute whose Describe came earlier) every value is compared
  // byte for byte and no column can be ignored.
  void onDataRow(std::span<const uint8_t> body);
  void onCommandComplete(std::span<const uint8_t> body);
  void onEmptyQueryResponse();
  void onError(std::span<const uint8_t> body);

  // CommandComplete, EmptyQueryResponse or ErrorResponse seen.
  bool finished() const { return finished_; }
  // Why the messages fed do not make a result ("DataRow has 3 values, RowDescription 4
  // columns"); empty when they do.
  const std::string& malformed() const { return malformed_; }
  const std::optional<StoreError>& error() const { return error_; }

  bool described() const { return described_; }
  const std::vector<ResultColumn>& columns() const { return columns_; }
  uint64_t rows() const { return rows_; }
  const std::string& commandTag() const { return command_tag_; }
  MultisetHash multisetHash() const { return multiset_; }
  uint64_t orderedHash() const { return ordered_; }

  // The first rows, in arrival order, as long as they fit the rules' sample_bytes; sampling
  // stops at the first row that does not fit, so the sample is always a prefix.
  std::vector<std::span<const uint8_t>> sampledRows() const;
  // Every row is in the sample.
  bool sampleComplete() const { return sample_complete_; }
  // Heap bytes held for rows (the sample's buffer): never more than the rules' sample_bytes.
  size_t retainedRowBytes() const { return sample_.capacity(); }

  // The hash a row contributes to the digest (normalised, ignored columns left out); for rows
  // of this result, e.g. sampled ones. False if the body is malformed.
  bool rowHash(std::span<const uint8_t> body, uint64_t& hash, std::string* why = nullptr) const;

  const CompareRules& rules() const { return *rules_; }

 private:
  // A column that takes part in the comparison, in column order.
  struct Compared {
    uint16_t index;
    ValueKind kind;
    uint64_t seed;       // by position among compared columns: an ignored column shifts nothing
    uint64_t null_hash;  // what a NULL contributes
  };

  void fail(std::string reason);
  void describeUndescribed(size_t count);
  void prepareCompared();
  void sample(std::span<const uint8_t> body);

  const CompareRules* rules_;
  std::vector<ResultColumn> columns_;
  std::vector<Compared> compared_;
  bool described_ = false;
  bool finished_ = false;
  std::string malformed_;
  std::optional<StoreError> error_;
  std::string command_tag_;

  uint64_t rows_ = 0;
  MultisetHash multiset_;
  uint64_t ordered_ = 0;

  // Sampled rows, each as a 4-byte length (host order) and the DataRow body.
  std::vector<uint8_t> sample_;
  bool sample_complete_ = true;
};

}  // namespace cutover::compare
