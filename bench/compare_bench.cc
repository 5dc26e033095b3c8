// Cost of compare/ on the shadow-read path: digesting one DataRow (what every row of a shadowed
// read costs, per side) and judging two digests. Run by hand: build-*/bench/compare_bench.
// Report ns/row as the "time" column of BM_DigestRow (one iteration = one DataRow).

#include <benchmark/benchmark.h>

#include <optional>
#include <string>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/result_compare.h"
#include "compare/result_digest.h"
#include "protocol/messages.h"

namespace {

using namespace cutover::compare;
using cutover::protocol::asBytes;

struct Column {
  const char* name;
  uint32_t type_oid;
  const char* value;  // nullptr = NULL
};

// An ORM-shaped 10-column row: keys, text, money as numeric, a float, timestamps, a flag, a NULL.
const Column kOrderRow[] = {
    {"id", 20, "1234567"},
    {"customer_id", 20, "98765"},
    {"email", 25, "someone@example.com"},
    {"status", 1043, "shipped"},
    {"total", 1700, "1234.50"},
    {"weight", 701, "2.7182818284590451"},
    {"created_at", 1184, "2024-05-01 12:34:56.789012+02"},
    {"updated_at", 1184, "2024-05-02 08:00:00+00"},
    {"gift", 16, "f"},
    {"note", 25, nullptr},
};

std::string bodyOf(const std::string& message) { return message.substr(5); }

std::string rowDescription() {
  cutover::protocol::RowDescription description;
  for (const Column& column : kOrderRow) {
    cutover::protocol::RowDescription::Field field;
    field.name = column.name;
    field.type_oid = column.type_oid;
    description.fields.push_back(field);
  }
  return bodyOf(cutover::protocol::encode(description));
}

std::string dataRow(const char* const* values, size_t count) {
  cutover::protocol::DataRow row;
  for (size_t i = 0; i < count; ++i) {
    row.columns.push_back(values[i] ? std::optional<std::string>(values[i]) : std::nullopt);
  }
  return bodyOf(cutover::protocol::encode(row));
}

std::string orderRow(const char* text_only = nullptr) {
  std::vector<const char*> values;
  for (const Column& column : kOrderRow) values.push_back(text_only ? text_only : column.value);
  return dataRow(values.data(), values.size());
}

// Steady state: after the first ~500 rows the 64 KiB sample is full and rows are only hashed.
void BM_DigestRow(benchmark::State& state) {
  CompareRules rules;
  rules.values.float_tolerance = state.range(0) ? 1e-9 : 0;
  const std::string description = rowDescription();
  const std::string row = orderRow();
  ResultDigester digester(rules);
  digester.onRowDescription(asBytes(description));
  for (auto _ : state) digester.onDataRow(asBytes(row));
  benchmark::DoNotOptimize(digester.multisetHash());
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(row.size()));
  state.counters["row_bytes"] = static_cast<double>(row.size());
  state.counters["retained_bytes"] = static_cast<double>(digester.retainedRowBytes());
}
BENCHMARK(BM_DigestRow)->Arg(1)->Arg(0)->ArgName("tolerance");

// The same 10 columns described as text (no normalisation): the floor of parse + hash.
void BM_DigestRowAllText(benchmark::State& state) {
  CompareRules rules;
  cutover::protocol::RowDescription description;
  for (const Column& column : kOrderRow) {
    cutover::protocol::RowDescription::Field field;
    field.name = column.name;
    field.type_oid = 25;
    description.fields.push_back(field);
  }
  const std::string description_body = bodyOf(cutover::protocol::encode(description));
  const std::string row = orderRow();
  ResultDigester digester(rules);
  digester.onRowDescription(asBytes(description_body));
  for (auto _ : state) digester.onDataRow(asBytes(row));
  benchmark::DoNotOptimize(digester.multisetHash());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DigestRowAllText);

// A whole small result per side (100 rows), then the verdict; arg 1 = one value differs, so the
// samples are split and rechecked row by row (the mismatch path).
void BM_DigestAndCompare100Rows(benchmark::State& state) {
  CompareRules rules;
  const std::string description = rowDescription();
  std::vector<std::string> rows;
  for (int i = 0; i < 100; ++i) {
    std::vector<const char*> values;
    for (const Column& column : kOrderRow) values.push_back(column.value);
    std::string id = std::to_string(i);
    values[0] = id.c_str();
    rows.push_back(dataRow(values.data(), values.size()));
  }
  std::vector<std::string> other = rows;
  if (state.range(0)) other[57] = orderRow("x");
  const std::string complete = bodyOf(cutover::protocol::encode(cutover::protocol::CommandComplete{"SELECT 100"}));
  for (auto _ : state) {
    ResultDigester a(rules), b(rules);
    a.onRowDescription(asBytes(description));
    b.onRowDescription(asBytes(description));
    for (const std::string& row : rows) a.onDataRow(asBytes(row));
    for (const std::string& row : other) b.onDataRow(asBytes(row));
    a.onCommandComplete(asBytes(complete));
    b.onCommandComplete(asBytes(complete));
    benchmark::DoNotOptimize(compareResults(a, b, rules));
  }
}
BENCHMARK(BM_DigestAndCompare100Rows)->Arg(0)->Arg(1)->ArgName("differ");

}  // namespace

BENCHMARK_MAIN();
