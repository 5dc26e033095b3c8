#pragma once

// The statements verify runs on both stores, built from a TablePlan. Pure text, no connection.
//
// A key range is half-open, (lo, hi]: lo exclusive, hi inclusive, either end open. Key columns
// of a collatable type are compared under COLLATE "C" on both stores, so a range holds the same
// keys whatever collation each store's column has. Parameters are the key values as text, cast
// to the old store's column types.
//
// The row encoding is ROW(c1, c2, ...)::text: record output quotes any value holding a
// separator, a quote or a parenthesis and writes "" for an empty string and nothing for NULL, so
// it is separator-safe and NULL-safe; numeric columns are trim_scale()d when
// compare.numeric_trailing_zeros holds. A row's hash is hashtextextended(encoding, 0) and a set's
// hash the sum of its rows' hashes (order-independent, so also the multiset hash of a table
// without a primary key). Session settings are pinned (sessionSettings) so text forms agree.

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "migrate/table_schema.h"

namespace cutover::migrate {

using KeyValues = std::vector<std::string>;

struct KeyRange {
  std::optional<KeyValues> lo;  // exclusive; nullopt = from the first key
  std::optional<KeyValues> hi;  // inclusive; nullopt = to the last key
  bool operator==(const KeyRange&) const = default;
};

// A statement and its parameters.
struct Sql {
  std::string text;
  std::vector<std::optional<std::string>> params;
};

// The settings both stores' verify sessions run with, as (name, value) pairs.
const std::vector<std::pair<std::string, std::string>>& sessionSettings();

// count(*) and the hash sum (text) of the rows in `range`.
Sql checksumSql(const TablePlan& plan, const KeyRange& range);
// count(*) and the hash sum of the whole table (tables without a key).
Sql multisetSql(const TablePlan& plan);
// Every row's encoding with its number of copies (tables without a key, to show the rows that
// differ).
Sql multisetRowsSql(const TablePlan& plan);
// The key of every `step`-th row in `range`, in key order: the ends of chunks of `step` rows.
Sql boundariesSql(const TablePlan& plan, const KeyRange& range, long step);
// The compared columns of the rows in `range`, in key order.
Sql rowsSql(const TablePlan& plan, const KeyRange& range);
// The compared columns of the rows with these keys.
Sql rowsByKeySql(const TablePlan& plan, const std::vector<KeyValues>& keys);
// The keys of up to `n` rows picked at random.
Sql sampleKeysSql(const TablePlan& plan, long n);
// count(*), then sum, min and max of every numeric column (integers, numeric, floats).
Sql aggregatesSql(const TablePlan& plan);
// The names aggregatesSql's columns stand for: "count", "sum(amount)", "min(amount)", ...
std::vector<std::string> aggregateNames(const TablePlan& plan);

// The row encoding expression (exposed for tests).
std::string rowEncoding(const TablePlan& plan);

}  // namespace cutover::migrate
