#pragma once

// Normalisation of single result values before they are hashed or compared (config compare:).
// Works on text-format values (format code 0) by type OID; binary-format values and every other
// type compare byte for byte. Nothing here allocates: a value is read where it lies.

#include <cstdint>
#include <optional>
#include <string_view>

namespace cutover::compare {

// PostgreSQL type OIDs that get a normalisation (pg_type.dat).
namespace type_oid {
inline constexpr uint32_t kFloat4 = 700;
inline constexpr uint32_t kFloat8 = 701;
inline constexpr uint32_t kNumeric = 1700;
inline constexpr uint32_t kTimestamp = 1114;
inline constexpr uint32_t kTimestamptz = 1184;
}  // namespace type_oid

// How one column's values are hashed and compared.
enum class ValueKind : uint8_t {
  Exact,        // the bytes as sent
  Float4,       // parsed as float4, compared within float_tolerance
  Float8,       // parsed as float8, compared within float_tolerance
  Numeric,      // trailing fractional zeros dropped: 1.50 = 1.5, 2.0 = 2
  Timestamptz,  // the instant named: 2024-01-01 10:00:00+02 = 2024-01-01 08:00:00+00
  Timestamp,    // timestamp without time zone, as microseconds (to apply the precision)
};

struct ValueRules {
  double float_tolerance = 1e-9;
  bool numeric_trailing_zeros = true;
  bool timestamps_utc = true;
  // timestamp and timestamptz values are compared rounded to this many microseconds, as
  // PostgreSQL rounds into timestamp(p): 1000 makes a timestamp(3) copy of a timestamp(6) column
  // equal. 1 = exact.
  int64_t timestamp_precision_us = 1;
};

ValueKind valueKindOf(uint32_t type_oid, int16_t format, const ValueRules& rules);

// Hash of a non-NULL value under its kind; `seed` tells columns apart. Values equal under the
// kind's rules hash alike — for floats with a non-zero tolerance the converse does not hold (see
// floatCell), so a differing hash of a float column is rechecked with sameValue where possible.
uint64_t hashValue(ValueKind kind, std::string_view value, uint64_t seed, const ValueRules& rules);

// Whether two non-NULL values of a column are equal under its kind (the tolerance itself here).
bool sameValue(ValueKind kind, std::string_view a, std::string_view b, const ValueRules& rules);

// --- the pieces, exposed for tests ---------------------------------------------------------------

// PostgreSQL's float text ("1.5", "1e+20", "-0", "NaN", "Infinity", "-Infinity"); nullopt when
// not a float. float4 text is parsed as float4 and widened, so its spellings of one value agree.
std::optional<double> parseFloat(std::string_view text, bool float4);

// |a - b| <= tolerance * max(1, |a|, |b|): absolute below 1, relative above. NaN equals NaN, an
// infinity only itself.
bool floatsClose(double a, double b, double tolerance);

// The cell of the grid a float is hashed by. Below 1 in magnitude the grid is absolute, of step
// `tolerance`; from 1 up it is relative: the binary exponent and the mantissa in steps of
// tolerance/2 (an absolute step of at most tolerance × |v|). Two values in one cell are always
// floatsClose; two floatsClose values can still straddle a cell boundary (the limitation).
// tolerance 0: the value itself (-0 as 0, every NaN alike).
struct FloatCell {
  int32_t exponent = 0;  // the regime and binary exponent; kAbsolute below 1, kSpecial for NaN/±inf
  double cell = 0;
  bool operator==(const FloatCell&) const = default;
  static constexpr int32_t kAbsolute = INT32_MIN;
  static constexpr int32_t kSpecial = INT32_MIN + 1;
};
FloatCell floatCell(double value, double tolerance);

// numeric text without trailing fractional zeros ("1.500" -> "1.5", "2.000" -> "2"); other
// text as it is ("100", "NaN", "Infinity").
std::string_view trimNumeric(std::string_view text);

// timestamptz text in DateStyle ISO ("2024-03-01 12:34:56.789+05:30", "… BC", "infinity") as
// microseconds since 1970-01-01 00:00:00 UTC; ±infinity as INT64_MAX / INT64_MIN. nullopt for
// any other form (that value is then compared as its bytes).
std::optional<int64_t> parseTimestamptz(std::string_view text);

// timestamp (without time zone) text in DateStyle ISO ("2024-03-01 12:34:56.789", "… BC",
// "infinity") as microseconds since 1970-01-01 00:00:00; nullopt for any other form.
std::optional<int64_t> parseTimestamp(std::string_view text);

// `micros` rounded to a multiple of `precision_us`, half away from zero (PostgreSQL's rounding
// into timestamp(p)); ±infinity and precision 1 unchanged.
int64_t roundMicros(int64_t micros, int64_t precision_us);

}  // namespace cutover::compare
