#include "compare/normalise.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cutover::compare {
namespace {

TEST(Normalise, ValueKindByTypeAndFormat) {
  ValueRules rules;
  EXPECT_EQ(valueKindOf(701, 0, rules), ValueKind::Float8);
  EXPECT_EQ(valueKindOf(700, 0, rules), ValueKind::Float4);
  EXPECT_EQ(valueKindOf(1700, 0, rules), ValueKind::Numeric);
  EXPECT_EQ(valueKindOf(1184, 0, rules), ValueKind::Timestamptz);
  EXPECT_EQ(valueKindOf(1114, 0, rules), ValueKind::Exact);  // timestamp without time zone
  EXPECT_EQ(valueKindOf(701, 1, rules), ValueKind::Exact);   // binary: bytes
  rules.numeric_trailing_zeros = false;
  rules.timestamps_utc = false;
  EXPECT_EQ(valueKindOf(1700, 0, rules), ValueKind::Exact);
  EXPECT_EQ(valueKindOf(1184, 0, rules), ValueKind::Exact);
}

TEST(Normalise, ParseFloatSpellings) {
  EXPECT_EQ(parseFloat("1.5", false), 1.5);
  EXPECT_EQ(parseFloat("1e+20", false), 1e20);
  EXPECT_EQ(parseFloat("-Infinity", false), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(parseFloat("Infinity", false), std::numeric_limits<double>::infinity());
  EXPECT_TRUE(std::isnan(*parseFloat("NaN", false)));
  EXPECT_EQ(parseFloat("abc", false), std::nullopt);
  EXPECT_EQ(parseFloat("1.5x", false), std::nullopt);
  EXPECT_EQ(parseFloat("", false), std::nullopt);
  // float4: PostgreSQL 11 printed 6 digits, 12+ the shortest exact ones; both name one float4.
  EXPECT_EQ(parseFloat("0.1", true), parseFloat("0.100000001", true));
}

TEST(Normalise, FloatsClose) {
  EXPECT_TRUE(floatsClose(0.5, 0.5 + 1e-10, 1e-9));
  EXPECT_FALSE(floatsClose(0.5, 0.5 + 1e-8, 1e-9));
  EXPECT_TRUE(floatsClose(1e12, 1e12 + 100, 1e-9));  // relative above 1
  EXPECT_FALSE(floatsClose(1e12, 1e12 + 10000, 1e-9));
  EXPECT_TRUE(floatsClose(0.0, -0.0, 0));
  EXPECT_TRUE(floatsClose(NAN, NAN, 0));
  EXPECT_FALSE(floatsClose(NAN, 1, 1));
  EXPECT_FALSE(floatsClose(INFINITY, 1e308, 1));
}

TEST(Normalise, OneCellMeansClose) {
  // Sweep values and a few tolerances: whenever two values share a cell they are close.
  for (double tolerance : {1e-9, 1e-3, 0.1, 0.5}) {
    for (double base : {-3.7, -0.42, 0.0, 0.001, 0.73, 1.0, 1.9, 123.456, 9.9e15}) {
      for (double delta : {1e-12, 1e-10, 1e-6, 1e-3, 0.05, 0.2}) {
        const double a = base, b = base + delta * std::max(1.0, std::fabs(base));
        if (floatCell(a, tolerance) == floatCell(b, tolerance)) {
          EXPECT_TRUE(floatsClose(a, b, tolerance)) << a << " " << b << " tolerance " << tolerance;
        }
      }
    }
  }
  EXPECT_EQ(floatCell(-0.0, 0), floatCell(0.0, 0));
  EXPECT_EQ(floatCell(NAN, 0.1), floatCell(-NAN, 0.1));
  EXPECT_NE(floatCell(INFINITY, 0.1), floatCell(-INFINITY, 0.1));
  // A tolerance finer than the values: compared exactly rather than overflowing into one cell.
  EXPECT_NE(floatCell(0.5, 1e-320), floatCell(0.25, 1e-320));
}

TEST(Normalise, TrimNumeric) {
  EXPECT_EQ(trimNumeric("1.500"), "1.5");
  EXPECT_EQ(trimNumeric("2.000"), "2");
  EXPECT_EQ(trimNumeric("-0.10"), "-0.1");
  EXPECT_EQ(trimNumeric("100"), "100");
  EXPECT_EQ(trimNumeric("NaN"), "NaN");
  EXPECT_EQ(trimNumeric("0.0"), "0");
}

TEST(Normalise, ParseTimestamptz) {
  EXPECT_EQ(parseTimestamptz("1970-01-01 00:00:00+00"), 0);
  EXPECT_EQ(parseTimestamptz("1970-01-01 01:00:00+01"), 0);
  EXPECT_EQ(parseTimestamptz("1969-12-31 19:00:00-05"), 0);
  EXPECT_EQ(parseTimestamptz("1970-01-01 05:30:00.5+05:30"), 500'000);
  EXPECT_EQ(parseTimestamptz("1970-01-01 00:53:28+00:53:28"), 0);
  EXPECT_EQ(parseTimestamptz("2000-03-01 00:00:00+00"), int64_t{951868800} * 1'000'000);
  EXPECT_EQ(parseTimestamptz("2024-02-29 23:59:59.999999+00"), int64_t{1709251199} * 1'000'000 + 999'999);
  EXPECT_EQ(parseTimestamptz("infinity"), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(parseTimestamptz("-infinity"), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(*parseTimestamptz("0001-01-01 00:00:00+00 BC") + int64_t{366} * 86400 * 1'000'000,
            *parseTimestamptz("0001-01-01 00:00:00+00"));  // 1 BC was a leap year
  EXPECT_EQ(parseTimestamptz("12345-01-01 00:00:00+00").has_value(), true);
  // Other DateStyles and garbage are not parsed (then compared as bytes).
  EXPECT_EQ(parseTimestamptz("Mon Jan 01 10:00:00 2024 CET"), std::nullopt);
  EXPECT_EQ(parseTimestamptz("2024-01-01 10:00:00"), std::nullopt);
  EXPECT_EQ(parseTimestamptz("2024-13-01 10:00:00+00"), std::nullopt);
  EXPECT_EQ(parseTimestamptz("2024-01-01 10:00:00.1234567+00"), std::nullopt);
  EXPECT_EQ(parseTimestamptz("2024-01-01 10:00:00+00x"), std::nullopt);
}

TEST(Normalise, HashAgreesWithSameValue) {
  const ValueRules t;  // float_tolerance 1e-9
  ValueRules exact;
  exact.float_tolerance = 0;
  EXPECT_EQ(hashValue(ValueKind::Numeric, "1.50", 7, t), hashValue(ValueKind::Numeric, "1.5", 7, t));
  EXPECT_NE(hashValue(ValueKind::Numeric, "1.50", 7, t), hashValue(ValueKind::Numeric, "1.50", 8, t));  // seed
  EXPECT_EQ(hashValue(ValueKind::Timestamptz, "2024-01-01 10:00:00+02", 1, t),
            hashValue(ValueKind::Timestamptz, "2024-01-01 08:00:00+00", 1, t));
  EXPECT_EQ(hashValue(ValueKind::Float8, "1e+20", 1, exact), hashValue(ValueKind::Float8, "100000000000000000000", 1, exact));
  EXPECT_NE(hashValue(ValueKind::Exact, "1.50", 1, t), hashValue(ValueKind::Exact, "1.5", 1, t));
  EXPECT_TRUE(sameValue(ValueKind::Float8, "not a float", "not a float", t));  // bytes then
  EXPECT_FALSE(sameValue(ValueKind::Float8, "1", "not a float", t));
}

TEST(Normalise, RoundMicrosAsPostgreSQL) {
  // SELECT '…'::timestamp(3): .1234 -> .123, .1235 -> .124, and the same away from zero below 1970.
  EXPECT_EQ(roundMicros(123'400, 1000), 123'000);
  EXPECT_EQ(roundMicros(123'500, 1000), 124'000);
  EXPECT_EQ(roundMicros(-123'400, 1000), -123'000);
  EXPECT_EQ(roundMicros(-123'500, 1000), -124'000);
  EXPECT_EQ(roundMicros(123'456, 1), 123'456);
  EXPECT_EQ(roundMicros(std::numeric_limits<int64_t>::max(), 1000), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(roundMicros(std::numeric_limits<int64_t>::min(), 1000), std::numeric_limits<int64_t>::min());
}

TEST(Normalise, TimestampPrecision) {
  ValueRules ms;
  ms.timestamp_precision_us = 1000;
  const ValueRules us;
  // timestamptz(6) on old, timestamptz(3) on new: equal at millisecond precision only.
  const std::string_view six = "2024-01-01 10:00:00.123456+00", three = "2024-01-01 10:00:00.123+00";
  EXPECT_FALSE(sameValue(ValueKind::Timestamptz, six, three, us));
  EXPECT_TRUE(sameValue(ValueKind::Timestamptz, six, three, ms));
  EXPECT_EQ(hashValue(ValueKind::Timestamptz, six, 3, ms), hashValue(ValueKind::Timestamptz, three, 3, ms));
  EXPECT_FALSE(sameValue(ValueKind::Timestamptz, "2024-01-01 10:00:00.1235+00", three, ms));  // rounds to .124
  // timestamp without time zone gets its own kind only when a precision applies.
  EXPECT_EQ(valueKindOf(type_oid::kTimestamp, 0, us), ValueKind::Exact);
  EXPECT_EQ(valueKindOf(type_oid::kTimestamp, 0, ms), ValueKind::Timestamp);
  EXPECT_TRUE(sameValue(ValueKind::Timestamp, "2024-01-01 10:00:00.000400", "2024-01-01 10:00:00", ms));
  EXPECT_EQ(hashValue(ValueKind::Timestamp, "2024-01-01 10:00:00.000400", 3, ms),
            hashValue(ValueKind::Timestamp, "2024-01-01 10:00:00", 3, ms));
  EXPECT_FALSE(sameValue(ValueKind::Timestamp, "2024-01-01 10:00:00.0006", "2024-01-01 10:00:00", ms));
  EXPECT_EQ(parseTimestamp("1970-01-01 00:00:01.5"), 1'500'000);
  EXPECT_EQ(parseTimestamp("1970-01-01 00:00:00+00"), std::nullopt);  // an offset is timestamptz's
}

}  // namespace
}  // namespace cutover::compare
