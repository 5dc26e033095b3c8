#pragma once

// What one store answered to a mirrored write, and the judgement of two such answers: the
// authoritative store's and the secondary's. Both mirror modes (sync and async) judge with this.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace cutover::compare {

struct WriteOutcome {
  std::vector<std::string> tags;     // CommandComplete tags in order
  std::string error;                 // "SQLSTATE message" of the first ErrorResponse
  bool failed = false;
  uint64_t rows = 0;                 // DataRows of the write (RETURNING)
  uint64_t digest = 0;               // order-insensitive hash of those rows (a multiset)

  // A RETURNING DataRow's body, hashed whole (row_hash, as the result digests use).
  void addRow(std::span<const uint8_t> body);
  // A row too large to keep for hashing: it counts by its length only (memory stays bounded).
  void addRowOfLength(size_t length);
  void addTag(std::string tag) { tags.push_back(std::move(tag)); }
  // The first ErrorResponse counts; later ones (an aborted transaction's) do not.
  void addError(std::string_view sqlstate, std::string_view message);
  // An explicit transaction's next unit: its tags appended, the first error kept.
  void add(const WriteOutcome& later);
  // "INSERT 0 1; ERROR 23505 duplicate key…; 2 rows returned, digest …", for the journal.
  std::string describe() const;
};

struct WriteJudgement {
  // The write's values are picked by the store (now(), serials…): RETURNING rows may differ.
  bool nondeterministic = false;
  bool compare_rows = true;          // RETURNING rows are compared (a write, not session state)
  bool tags_when_failed = false;     // command tags still compared when both sides failed
};

// The divergence kind (compare/divergence.h divergence_kind) when `secondary` differs from
// `authoritative`, "" when they agree.
std::string_view judgeWrite(const WriteOutcome& authoritative, const WriteOutcome& secondary,
                            const WriteJudgement& how);

// For a batch of several statements, the place of the first one whose answer differs: the first
// tag that is not the same, or the statement one side failed on (a batch stops at its error);
// npos when the tags and errors agree (then only rows differ, which the outcome does not place).
size_t firstDifference(const WriteOutcome& authoritative, const WriteOutcome& secondary);

}  // namespace cutover::compare
