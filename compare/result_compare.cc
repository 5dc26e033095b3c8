#include "compare/result_compare.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "compare/divergence.h"

namespace cutover::compare {
namespace {

// A shown value longer than this is cut (log_values only; redacted values are short anyway).
constexpr size_t kMaxShownBytes = 256;
// The tolerance recheck pairs leftover rows greedily; beyond this many pairs it gives up.
constexpr size_t kMaxTolerancePairs = size_t{1} << 20;

std::string_view typeName(uint32_t oid) {
  switch (oid) {
    case 16: return "bool";
    case 17: return "bytea";
    case 20: return "int8";
    case 21: return "int2";
    case 23: return "int4";
    case 25: return "text";
    case 26: return "oid";
    case 114: return "json";
    case 700: return "float4";
    case 701: return "float8";
    case 1042: return "bpchar";
    case 1043: return "varchar";
    case 1082: return "date";
    case 1083: return "time";
    case 1114: return "timestamp";
    case 1184: return "timestamptz";
    case 1186: return "interval";
    case 1700: return "numeric";
    case 2950: return "uuid";
    case 3802: return "jsonb";
    default: return {};
  }
}

std::string describeType(uint32_t oid) {
  std::string_view name = typeName(oid);
  return name.empty() ? fmt::format("type {}", oid) : std::string(name);
}

std::string describeSide(const ResultDigester& side) {
  if (side.error()) return fmt::format("ERROR {} {}", side.error()->sqlstate, side.error()->message);
  return fmt::format("{} rows", side.rows());
}

// The compared columns of each side line up one to one once columnsDiffer() found nothing.
struct Layout {
  std::vector<uint16_t> old_columns, new_columns;
  std::vector<ValueKind> kinds;
  bool has_float = false;
};

std::vector<uint16_t> comparedColumns(const ResultDigester& side) {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < side.columns().size(); ++i) {
    if (!side.columns()[i].ignored) out.push_back(static_cast<uint16_t>(i));
  }
  return out;
}

// Type OIDs below FirstNormalObjectId are fixed by initdb and the same on every cluster. A
// user-defined type (enum, domain, composite, extension type) gets its OID when it is created, so
// the same type has another OID on each store: such columns are compared by their values only.
constexpr uint32_t kFirstNormalObjectId = 16384;

bool sameType(uint32_t old_oid, uint32_t new_oid) {
  return old_oid == new_oid || (old_oid >= kFirstNormalObjectId && new_oid >= kFirstNormalObjectId);
}

// Empty when the compared columns agree; else what differs.
std::string columnsDiffer(const ResultDigester& old_side, const ResultDigester& new_side, const Layout& layout) {
  const size_t old_count = layout.old_columns.size(), new_count = layout.new_columns.size();
  if (old_count != new_count) return fmt::format("old {} columns, new {}", old_count, new_count);
  if (!old_side.described() || !new_side.described()) return {};  // nothing but the count is known
  for (size_t k = 0; k < old_count; ++k) {
    const ResultColumn& a = old_side.columns()[layout.old_columns[k]];
    const ResultColumn& b = new_side.columns()[layout.new_columns[k]];
    if (a.name != b.name || !sameType(a.type_oid, b.type_oid)) {
      return fmt::format("column {}: old {} {}, new {} {}", k + 1, a.name, describeType(a.type_oid), b.name,
                         describeType(b.type_oid));
    }
    if (a.format != b.format) {
      return fmt::format("column {} {}: old format {}, new format {}", k + 1, a.name, a.format, b.format);
    }
  }
  return {};
}

struct Sample {
  std::vector<RowValues> rows;
  std::vector<uint64_t> hashes;
};

Sample splitSample(const ResultDigester& side) {
  Sample sample;
  for (std::span<const uint8_t> body : side.sampledRows()) {
    RowValues values;
    uint64_t hash = 0;
    // Sampled rows were checked when they arrived; a failure here would be a bug, not input.
    if (!splitDataRow(body, values, nullptr) || !side.rowHash(body, hash)) break;
    sample.rows.push_back(std::move(values));
    sample.hashes.push_back(hash);
  }
  return sample;
}

class Differ {
 public:
  Differ(const ResultDigester& old_side, const ResultDigester& new_side, const CompareRules& rules,
         const Layout& layout)
      : old_(old_side), new_(new_side), rules_(rules), layout_(layout) {}

  bool sameCell(size_t k, const std::optional<std::string_view>& a, const std::optional<std::string_view>& b) const {
    if (!a || !b) return !a && !b;
    return sameValue(layout_.kinds[k], *a, *b, rules_.values);
  }

  bool rowsEqual(const RowValues& a, const RowValues& b) const {
    for (size_t k = 0; k < layout_.kinds.size(); ++k) {
      if (!sameCell(k, a[layout_.old_columns[k]], b[layout_.new_columns[k]])) return false;
    }
    return true;
  }

  // A row difference: both rows given lists the differing columns, one lists all of them.
  RowDifference difference(const RowValues* a, std::optional<uint64_t> old_row, const RowValues* b,
                           std::optional<uint64_t> new_row) const {
    RowDifference row{old_row, new_row, {}};
    for (size_t k = 0; k < layout_.kinds.size(); ++k) {
      const uint16_t old_index = layout_.old_columns[k], new_index = layout_.new_columns[k];
      std::optional<std::string_view> x = a ? (*a)[old_index] : std::nullopt;
      std::optional<std::string_view> y = b ? (*b)[new_index] : std::nullopt;
      if (a != nullptr && b != nullptr && sameCell(k, x, y)) continue;
      row.values.push_back(ValueDifference{label(old_index, new_index),
                                           a ? shown(x, old_.columns()[old_index]) : std::nullopt,
                                           b ? shown(y, new_.columns()[new_index]) : std::nullopt});
    }
    return row;
  }

  std::optional<std::string> shown(const std::optional<std::string_view>& value, const ResultColumn& column) const {
    if (!value) return std::nullopt;
    if (!rules_.log_values) return fmt::format("<redacted {} bytes>", value->size());
    std::string text = column.format == 1 ? hexParameter(*value) : std::string(*value);
    if (text.size() > kMaxShownBytes) {
      text.resize(kMaxShownBytes);
      text += fmt::format("… ({} bytes)", value->size());
    }
    return text;
  }

  std::string label(uint16_t old_index, uint16_t new_index) const {
    if (old_.described()) return old_.columns()[old_index].name;
    if (new_.described()) return new_.columns()[new_index].name;
    return fmt::format("column {}", old_index + 1);
  }

  // Both samples hold every row: the verdict from the rows themselves, under the rules'
  // tolerance. `row_count` tells a missing or extra row from a changed one.
  MismatchKind recheck(const Sample& o, const Sample& n, std::vector<RowDifference>& out) const {
    // Exact matches by row hash first (equal hashes are equal rows under the rules), then the
    // tolerance between what is left.
    std::vector<std::pair<uint64_t, size_t>> by_hash;
    by_hash.reserve(n.hashes.size());
    for (size_t j = 0; j < n.hashes.size(); ++j) by_hash.emplace_back(n.hashes[j], j);
    std::sort(by_hash.begin(), by_hash.end());
    std::unordered_map<uint64_t, size_t> next;  // hash -> next unused position in by_hash
    std::vector<bool> new_matched(n.rows.size(), false);
    std::vector<size_t> old_left;
    for (size_t i = 0; i < o.hashes.size(); ++i) {
      auto [cursor, inserted] = next.try_emplace(o.hashes[i], 0);
      if (inserted) {
        cursor->second = static_cast<size_t>(
            std::lower_bound(by_hash.begin(), by_hash.end(), std::make_pair(o.hashes[i], size_t{0})) - by_hash.begin());
      }
      if (cursor->second < by_hash.size() && by_hash[cursor->second].first == o.hashes[i]) {
        new_matched[by_hash[cursor->second++].second] = true;
      } else {
        old_left.push_back(i);
      }
    }
    std::vector<size_t> new_left;
    for (size_t j = 0; j < n.rows.size(); ++j) {
      if (!new_matched[j]) new_left.push_back(j);
    }
    if (layout_.has_float && rules_.values.float_tolerance > 0 && old_left.size() * new_left.size() <= kMaxTolerancePairs) {
      std::vector<size_t> still_left;
      for (size_t i : old_left) {
        auto found = std::find_if(new_left.begin(), new_left.end(),
                                  [&](size_t j) { return rowsEqual(o.rows[i], n.rows[j]); });
        if (found == new_left.end()) {
          still_left.push_back(i);
        } else {
          new_left.erase(found);
        }
      }
      old_left = std::move(still_left);
    }

    if (old_left.empty() && new_left.empty()) {
      if (!rules_.ordered) return MismatchKind::None;
      for (size_t pos = 0; pos < o.rows.size() && out.size() < rules_.max_row_differences; ++pos) {
        if (!rowsEqual(o.rows[pos], n.rows[pos])) out.push_back(difference(&o.rows[pos], pos, &n.rows[pos], pos));
      }
      return out.empty() ? MismatchKind::None : MismatchKind::Order;
    }

    // Pair what is left by the first compared column (usually the key): a changed row shows
    // as one row with its differing columns, a missing or extra one on its side only.
    std::vector<RowDifference> found;
    std::vector<bool> paired(new_left.size(), false);
    for (size_t i : old_left) {
      size_t pair = new_left.size();
      for (size_t p = 0; p < new_left.size() && !layout_.kinds.empty(); ++p) {
        if (!paired[p] && sameCell(0, o.rows[i][layout_.old_columns[0]], n.rows[new_left[p]][layout_.new_columns[0]])) {
          pair = p;
          break;
        }
      }
      if (pair < new_left.size()) {
        paired[pair] = true;
        found.push_back(difference(&o.rows[i], i, &n.rows[new_left[pair]], new_left[pair]));
      } else {
        found.push_back(difference(&o.rows[i], i, nullptr, std::nullopt));
      }
    }
    for (size_t p = 0; p < new_left.size(); ++p) {
      if (!paired[p]) found.push_back(difference(nullptr, std::nullopt, &n.rows[new_left[p]], new_left[p]));
    }
    auto first_position = [](const RowDifference& row) {
      return std::min(row.old_row.value_or(UINT64_MAX), row.new_row.value_or(UINT64_MAX));
    };
    std::stable_sort(found.begin(), found.end(),
                     [&](const RowDifference& a, const RowDifference& b) { return first_position(a) < first_position(b); });
    if (found.size() > rules_.max_row_differences) found.resize(rules_.max_row_differences);
    out = std::move(found);
    return o.rows.size() != n.rows.size() ? MismatchKind::RowCount : MismatchKind::Values;
  }

  // A sample lacks rows: compare the sampled prefixes position by position (meaningful only
  // when order counts), plus rows one complete side lacks within the other's sample.
  void prefixDifferences(const Sample& o, const Sample& n, std::vector<RowDifference>& out) const {
    const size_t common = std::min(o.rows.size(), n.rows.size());
    for (size_t pos = 0; pos < common && out.size() < rules_.max_row_differences; ++pos) {
      if (!rowsEqual(o.rows[pos], n.rows[pos])) out.push_back(difference(&o.rows[pos], pos, &n.rows[pos], pos));
    }
    if (!out.empty()) return;
    if (old_.sampleComplete() && n.rows.size() > common) {
      for (size_t pos = common; pos < n.rows.size() && out.size() < rules_.max_row_differences; ++pos) {
        out.push_back(difference(nullptr, std::nullopt, &n.rows[pos], pos));
      }
    } else if (new_.sampleComplete() && o.rows.size() > common) {
      for (size_t pos = common; pos < o.rows.size() && out.size() < rules_.max_row_differences; ++pos) {
        out.push_back(difference(&o.rows[pos], pos, nullptr, std::nullopt));
      }
    }
  }

 private:
  const ResultDigester& old_;
  const ResultDigester& new_;
  const CompareRules& rules_;
  const Layout& layout_;
};

std::string valuesDetail(uint64_t rows, const std::vector<RowDifference>& differences) {
  std::string detail = fmt::format("{} rows on each side, different values", rows);
  if (!differences.empty() && !differences.front().values.empty()) {
    detail += fmt::format("; first in column {}", differences.front().values.front().column);
  }
  return detail;
}

}  // namespace

std::string_view toString(MismatchKind kind) {
  switch (kind) {
    case MismatchKind::None: return "match";
    case MismatchKind::Columns: return "columns";
    case MismatchKind::RowCount: return "row_count";
    case MismatchKind::Values: return "values";
    case MismatchKind::Order: return "order";
    case MismatchKind::ErrorOneSide: return "error_one_side";
    case MismatchKind::ErrorDiffers: return "error_differs";
    case MismatchKind::Incomparable: return "incomparable";
  }
  return "unknown";
}

ResultComparison compareResults(const ResultDigester& old_side, const ResultDigester& new_side,
                                const CompareRules& rules) {
  ResultComparison result;
  for (const auto& [side, name] : {std::pair{&old_side, "old"}, std::pair{&new_side, "new"}}) {
    if (!side->malformed().empty()) {
      result.kind = MismatchKind::Incomparable;
      result.detail = fmt::format("{}: {}", name, side->malformed());
      return result;
    }
    if (!side->finished()) {
      result.kind = MismatchKind::Incomparable;
      result.detail = fmt::format("{}: the result did not finish", name);
      return result;
    }
  }

  if (old_side.error() || new_side.error()) {
    if (old_side.error() && new_side.error() && old_side.error()->sqlstate == new_side.error()->sqlstate) {
      result.detail = fmt::format("both failed with SQLSTATE {}", old_side.error()->sqlstate);
      return result;
    }
    result.kind = old_side.error() && new_side.error() ? MismatchKind::ErrorDiffers : MismatchKind::ErrorOneSide;
    result.detail = fmt::format("old: {}; new: {}", describeSide(old_side), describeSide(new_side));
    return result;
  }

  Layout layout{comparedColumns(old_side), comparedColumns(new_side), {}, false};
  if (std::string differ = columnsDiffer(old_side, new_side, layout); !differ.empty()) {
    result.kind = MismatchKind::Columns;
    result.detail = std::move(differ);
    return result;
  }
  for (uint16_t index : layout.old_columns) {
    const ValueKind kind = old_side.columns()[index].kind;
    layout.kinds.push_back(kind);
    layout.has_float = layout.has_float || kind == ValueKind::Float4 || kind == ValueKind::Float8;
  }

  MismatchKind by_hash = MismatchKind::None;
  if (old_side.rows() != new_side.rows()) {
    by_hash = MismatchKind::RowCount;
  } else if (old_side.multisetHash() != new_side.multisetHash()) {
    by_hash = MismatchKind::Values;
  } else if (rules.ordered && old_side.orderedHash() != new_side.orderedHash()) {
    by_hash = MismatchKind::Order;
  }
  if (by_hash == MismatchKind::None) return result;

  const Differ differ(old_side, new_side, rules, layout);
  const Sample old_sample = splitSample(old_side);
  const Sample new_sample = splitSample(new_side);
  if (old_side.sampleComplete() && new_side.sampleComplete()) {
    result.kind = differ.recheck(old_sample, new_sample, result.rows);
    if (result.kind == MismatchKind::None) return result;
  } else {
    result.kind = by_hash;
    if (rules.ordered) differ.prefixDifferences(old_sample, new_sample, result.rows);
  }

  switch (result.kind) {
    case MismatchKind::RowCount:
      result.detail = fmt::format("old {} rows, new {}", old_side.rows(), new_side.rows());
      break;
    case MismatchKind::Values:
      result.detail = valuesDetail(old_side.rows(), result.rows);
      break;
    case MismatchKind::Order:
      result.detail = fmt::format("the same {} rows in a different order", old_side.rows());
      break;
    default:
      break;
  }
  if (result.rows.empty()) {
    result.detail += rules.ordered ? "; no differing row within the sampled rows"
                                   : "; differing rows not shown: unordered and larger than sample_bytes";
  }
  return result;
}

}  // namespace cutover::compare
