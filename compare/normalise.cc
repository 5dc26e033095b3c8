#include "compare/normalise.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <limits>

#include "compare/row_hash.h"

namespace cutover::compare {
namespace {

const uint8_t* bytesOf(std::string_view text) { return reinterpret_cast<const uint8_t*>(text.data()); }

uint64_t hashExact(std::string_view value, uint64_t seed) {
  return row_hash::bytes(bytesOf(value), value.size(), seed);
}

// Fixed-width unsigned decimal at `pos`; advances it.
bool digits(std::string_view text, size_t& pos, size_t count, int64_t& out) {
  if (pos + count > text.size()) return false;
  int64_t value = 0;
  for (size_t i = 0; i < count; ++i) {
    const char c = text[pos + i];
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  pos += count;
  out = value;
  return true;
}

bool expect(std::string_view text, size_t& pos, char c) {
  if (pos >= text.size() || text[pos] != c) return false;
  ++pos;
  return true;
}

// Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H. Hinnant's algorithm).
int64_t daysFromCivil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2 ? 1 : 0;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

}  // namespace

ValueKind valueKindOf(uint32_t type_oid, int16_t format, const ValueRules& rules) {
  if (format != 0) return ValueKind::Exact;
  switch (type_oid) {
    case type_oid::kFloat4:
      return ValueKind::Float4;
    case type_oid::kFloat8:
      return ValueKind::Float8;
    case type_oid::kNumeric:
      return rules.numeric_trailing_zeros ? ValueKind::Numeric : ValueKind::Exact;
    case type_oid::kTimestamptz:
      return rules.timestamps_utc ? ValueKind::Timestamptz : ValueKind::Exact;
    case type_oid::kTimestamp:
      return rules.timestamp_precision_us > 1 ? ValueKind::Timestamp : ValueKind::Exact;
    default:
      return ValueKind::Exact;
  }
}

std::optional<double> parseFloat(std::string_view text, bool float4) {
  // from_chars takes no leading '+' and spells infinity "inf"/"infinity" in any case, which
  // covers PostgreSQL's "Infinity" / "-Infinity" / "NaN".
  const char* begin = text.data();
  const char* end = begin + text.size();
  if (float4) {
    float value = 0;
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (ec != std::errc() || ptr != end) return std::nullopt;
    return static_cast<double>(value);
  }
  double value = 0;
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

bool floatsClose(double a, double b, double tolerance) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  if (a == b) return true;
  const double scale = std::max({1.0, std::fabs(a), std::fabs(b)});
  return std::fabs(a - b) <= tolerance * scale;
}

FloatCell floatCell(double value, double tolerance) {
  if (std::isnan(value)) return {FloatCell::kSpecial, 0};
  if (std::isinf(value)) return {FloatCell::kSpecial, value > 0 ? 1.0 : -1.0};
  const FloatCell exact{0, value + 0.0};  // + 0.0 turns -0 into 0
  if (tolerance <= 0) return exact;
  double scaled = 0;
  int exponent = FloatCell::kAbsolute;
  if (std::fabs(value) < 1) {
    scaled = value / tolerance;
  } else {
    scaled = std::frexp(value, &exponent) / (tolerance / 2);  // |mantissa| in [0.5, 1)
  }
  // A tolerance so small the division overflows is finer than the values: compare them exactly.
  if (!std::isfinite(scaled)) return exact;
  return {exponent, std::floor(scaled) + 0.0};
}

std::string_view trimNumeric(std::string_view text) {
  if (text.find('.') == std::string_view::npos) return text;
  while (!text.empty() && text.back() == '0') text.remove_suffix(1);
  if (!text.empty() && text.back() == '.') text.remove_suffix(1);
  return text;
}

namespace {

// YYYY[Y…]-MM-DD HH:MM:SS[.ffffff][±HH[:MM[:SS]]][ BC]; the offset required exactly when
// `with_offset`.
std::optional<int64_t> parseIsoTimestamp(std::string_view text, bool with_offset) {
  if (text == "infinity") return std::numeric_limits<int64_t>::max();
  if (text == "-infinity") return std::numeric_limits<int64_t>::min();
  bool bc = false;
  if (text.ends_with(" BC")) {
    bc = true;
    text.remove_suffix(3);
  }
  // YYYY[Y…]-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]
  size_t pos = 0;
  size_t year_digits = 0;
  while (year_digits < text.size() && text[year_digits] >= '0' && text[year_digits] <= '9') ++year_digits;
  if (year_digits < 4 || year_digits > 7) return std::nullopt;
  int64_t year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(text, pos, year_digits, year) || !expect(text, pos, '-') || !digits(text, pos, 2, month) ||
      !expect(text, pos, '-') || !digits(text, pos, 2, day) || !expect(text, pos, ' ') ||
      !digits(text, pos, 2, hour) || !expect(text, pos, ':') || !digits(text, pos, 2, minute) ||
      !expect(text, pos, ':') || !digits(text, pos, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 24 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  int64_t micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    size_t count = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (++count > 6) return std::nullopt;
      micros = micros * 10 + (text[pos++] - '0');
    }
    if (count == 0) return std::nullopt;
    for (; count < 6; ++count) micros *= 10;
  }
  int64_t offset = 0;
  if (with_offset) {
    if (pos >= text.size() || (text[pos] != '+' && text[pos] != '-')) return std::nullopt;
    const int64_t sign = text[pos++] == '-' ? -1 : 1;
    int64_t offset_hours = 0, offset_minutes = 0, offset_seconds = 0;
    if (!digits(text, pos, 2, offset_hours)) return std::nullopt;
    if (pos < text.size() && (!expect(text, pos, ':') || !digits(text, pos, 2, offset_minutes))) return std::nullopt;
    if (pos < text.size() && (!expect(text, pos, ':') || !digits(text, pos, 2, offset_seconds))) return std::nullopt;
    offset = sign * ((offset_hours * 60 + offset_minutes) * 60 + offset_seconds);
  }
  if (pos != text.size()) return std::nullopt;
  if (bc) year = 1 - year;  // 1 BC is year 0
  const int64_t local_seconds = ((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second;
  return (local_seconds - offset) * 1'000'000 + micros;
}

// A timestamp kind's value as the instant it names, rounded to the precision; nullopt when the
// text is not in that form (then it is compared as its bytes).
std::optional<int64_t> instantOf(ValueKind kind, std::string_view value, const ValueRules& rules) {
  auto instant = kind == ValueKind::Timestamptz ? parseTimestamptz(value) : parseTimestamp(value);
  if (!instant) return std::nullopt;
  return roundMicros(*instant, rules.timestamp_precision_us);
}

}  // namespace

std::optional<int64_t> parseTimestamptz(std::string_view text) { return parseIsoTimestamp(text, true); }

std::optional<int64_t> parseTimestamp(std::string_view text) { return parseIsoTimestamp(text, false); }

int64_t roundMicros(int64_t micros, int64_t precision_us) {
  if (precision_us <= 1 || micros == std::numeric_limits<int64_t>::max() ||
      micros == std::numeric_limits<int64_t>::min()) {
    return micros;
  }
  const int64_t half = precision_us / 2;
  if (micros >= 0) return (micros + half) / precision_us * precision_us;
  return -((-micros + half) / precision_us * precision_us);
}

uint64_t hashValue(ValueKind kind, std::string_view value, uint64_t seed, const ValueRules& rules) {
  switch (kind) {
    case ValueKind::Exact:
      return hashExact(value, seed);
    case ValueKind::Float4:
    case ValueKind::Float8: {
      auto parsed = parseFloat(value, kind == ValueKind::Float4);
      if (!parsed) return hashExact(value, seed);
      const FloatCell cell = floatCell(*parsed, rules.float_tolerance);
      return row_hash::word(std::bit_cast<uint64_t>(cell.cell),
                            seed ^ row_hash::word(static_cast<uint32_t>(cell.exponent), row_hash::kP2));
    }
    case ValueKind::Numeric:
      return hashExact(trimNumeric(value), seed);
    case ValueKind::Timestamptz:
    case ValueKind::Timestamp: {
      auto instant = instantOf(kind, value, rules);
      if (!instant) return hashExact(value, seed);
      return row_hash::word(static_cast<uint64_t>(*instant), seed ^ row_hash::kP3);
    }
  }
  return hashExact(value, seed);
}

bool sameValue(ValueKind kind, std::string_view a, std::string_view b, const ValueRules& rules) {
  switch (kind) {
    case ValueKind::Exact:
      return a == b;
    case ValueKind::Float4:
    case ValueKind::Float8: {
      auto x = parseFloat(a, kind == ValueKind::Float4);
      auto y = parseFloat(b, kind == ValueKind::Float4);
      if (!x || !y) return a == b;
      return floatsClose(*x, *y, rules.float_tolerance);
    }
    case ValueKind::Numeric:
      return trimNumeric(a) == trimNumeric(b);
    case ValueKind::Timestamptz:
    case ValueKind::Timestamp: {
      auto x = instantOf(kind, a, rules);
      auto y = instantOf(kind, b, rules);
      if (!x || !y) return a == b;
      return *x == *y;
    }
  }
  return a == b;
}

}  // namespace cutover::compare
