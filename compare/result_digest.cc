#include "compare/result_digest.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "compare/row_hash.h"
#include "protocol/messages.h"

namespace cutover::compare {
namespace {

constexpr uint64_t kRowSeed = row_hash::kP3;
constexpr uint64_t kNullTag = 0x6e756c6c6e756c6cull;  // "nullnull"

uint16_t readBe16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }

int32_t readBe32(const uint8_t* p) {
  return static_cast<int32_t>((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
}

std::string_view viewOf(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// A NUL-terminated string body (CommandComplete); without its NUL, or up to the end.
std::string_view cString(std::span<const uint8_t> body) {
  std::string_view text = viewOf(body.data(), body.size());
  return text.substr(0, text.find('\0'));
}

}  // namespace

bool splitDataRow(std::span<const uint8_t> body, RowValues& values, std::string* why) {
  const uint8_t* p = body.data();
  const uint8_t* const end = p + body.size();
  if (body.size() < 2) {
    if (why != nullptr) *why = "DataRow ends before its value count";
    return false;
  }
  const uint16_t count = readBe16(p);
  p += 2;
  values.resize(count);
  for (size_t i = 0; i < count; ++i) {
    if (end - p < 4) {
      if (why != nullptr) *why = fmt::format("DataRow ends before the length of value {}", i + 1);
      return false;
    }
    const int32_t length = readBe32(p);
    p += 4;
    if (length == -1) {
      values[i].reset();
      continue;
    }
    if (length < 0 || length > end - p) {
      if (why != nullptr) *why = fmt::format("DataRow value {} has length {}, {} bytes left", i + 1, length, end - p);
      return false;
    }
    values[i] = viewOf(p, static_cast<size_t>(length));
    p += length;
  }
  if (p != end) {
    if (why != nullptr) *why = fmt::format("DataRow has {} bytes after its {} values", end - p, count);
    return false;
  }
  return true;
}

ResultDigester::ResultDigester(const CompareRules& rules) : rules_(&rules) {}

void ResultDigester::fail(std::string reason) {
  if (malformed_.empty()) malformed_ = std::move(reason);
}

void ResultDigester::prepareCompared() {
  compared_.clear();
  uint64_t position = 0;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].ignored) continue;
    const uint64_t seed = row_hash::fmix(++position * row_hash::kP0);
    compared_.push_back({static_cast<uint16_t>(i), columns_[i].kind, seed, row_hash::word(kNullTag, seed)});
  }
}

void ResultDigester::describeUndescribed(size_t count) {
  columns_.assign(count, ResultColumn{});
  prepareCompared();
}

void ResultDigester::onRowDescription(std::span<const uint8_t> body, std::span<const int16_t> result_formats) {
  if (!malformed_.empty()) return;
  if (finished_ || described_ || rows_ > 0) {
    fail(finished_ ? "RowDescription after the end of the result" : "a second RowDescription");
    return;
  }
  auto decoded = protocol::decode<protocol::RowDescription>(body);
  if (!decoded) {
    fail(decoded.reason());
    return;
  }
  const auto& fields = decoded.value().fields;
  if (result_formats.size() > 1 && result_formats.size() != fields.size()) {
    fail(fmt::format("{} result formats for {} columns", result_formats.size(), fields.size()));
    return;
  }
  columns_.clear();
  columns_.reserve(fields.size());
  for (size_t i = 0; i < fields.size(); ++i) {
    ResultColumn column;
    column.name = fields[i].name;
    column.type_oid = fields[i].type_oid;
    column.format = result_formats.empty() ? fields[i].format
                                           : result_formats[result_formats.size() == 1 ? 0 : i];
    column.ignored = rules_->ignores(column.name);
    column.kind = valueKindOf(column.type_oid, column.format, rules_->values);
    columns_.push_back(std::move(column));
  }
  described_ = true;
  prepareCompared();
}

bool ResultDigester::rowHash(std::span<const uint8_t> body, uint64_t& hash, std::string* why) const {
  const uint8_t* p = body.data();
  const uint8_t* const end = p + body.size();
  if (body.size() < 2) {
    if (why != nullptr) *why = "DataRow ends before its value count";
    return false;
  }
  const uint16_t count = readBe16(p);
  p += 2;
  if (count != columns_.size()) {
    if (why != nullptr) *why = fmt::format("DataRow has {} values, the result {} columns", count, columns_.size());
    return false;
  }
  const ValueRules& values = rules_->values;
  uint64_t h = kRowSeed;
  auto next = compared_.begin();
  for (size_t i = 0; i < count; ++i) {
    if (end - p < 4) {
      if (why != nullptr) *why = fmt::format("DataRow ends before the length of value {}", i + 1);
      return false;
    }
    const int32_t length = readBe32(p);
    p += 4;
    const bool compared = next != compared_.end() && next->index == i;
    if (length == -1) {
      if (compared) h = row_hash::mum(h ^ (next++)->null_hash, row_hash::kP2);
      continue;
    }
    if (length < 0 || length > end - p) {
      if (why != nullptr) *why = fmt::format("DataRow value {} has length {}, {} bytes left", i + 1, length, end - p);
      return false;
    }
    if (compared) {
      const uint64_t value = hashValue(next->kind, viewOf(p, static_cast<size_t>(length)), next->seed, values);
      h = row_hash::mum(h ^ value, row_hash::kP2);
      ++next;
    }
    p += length;
  }
  if (p != end) {
    if (why != nullptr) *why = fmt::format("DataRow has {} bytes after its {} values", end - p, count);
    return false;
  }
  hash = h;
  return true;
}

void ResultDigester::onDataRow(std::span<const uint8_t> body) {
  if (!malformed_.empty()) return;
  if (finished_) {
    fail("DataRow after the end of the result");
    return;
  }
  if (!described_ && rows_ == 0 && body.size() >= 2) describeUndescribed(readBe16(body.data()));
  uint64_t hash = 0;
  std::string why;
  if (!rowHash(body, hash, &why)) {
    fail(std::move(why));
    return;
  }
  ++rows_;
  multiset_.sum += hash;
  multiset_.mixed_sum += row_hash::fmix(hash ^ row_hash::kP1);
  ordered_ = row_hash::mum(ordered_ ^ hash, row_hash::kP1);
  if (sample_complete_) sample(body);
}

void ResultDigester::sample(std::span<const uint8_t> body) {
  const size_t budget = rules_->sample_bytes;
  const size_t need = sizeof(uint32_t) + body.size();
  if (need > budget - std::min(budget, sample_.size())) {
    sample_complete_ = false;  // the sample stays a prefix: no later row is taken either
    return;
  }
  const size_t size = sample_.size();
  if (sample_.capacity() < size + need) {
    // vector::reserve allocates exactly what is asked, so capacity never passes the budget.
    sample_.reserve(std::min(budget, std::max({size + need, 2 * sample_.capacity(), size_t{256}})));
  }
  const uint32_t length = static_cast<uint32_t>(body.size());
  sample_.resize(size + need);
  std::memcpy(sample_.data() + size, &length, sizeof length);
  std::memcpy(sample_.data() + size + sizeof length, body.data(), body.size());
}

std::vector<std::span<const uint8_t>> ResultDigester::sampledRows() const {
  std::vector<std::span<const uint8_t>> rows;
  size_t pos = 0;
  while (pos + sizeof(uint32_t) <= sample_.size()) {
    uint32_t length = 0;
    std::memcpy(&length, sample_.data() + pos, sizeof length);
    pos += sizeof length;
    rows.emplace_back(sample_.data() + pos, length);
    pos += length;
  }
  return rows;
}

void ResultDigester::onCommandComplete(std::span<const uint8_t> body) {
  if (!malformed_.empty()) return;
  if (finished_) {
    fail("CommandComplete after the end of the result");
    return;
  }
  command_tag_ = std::string(cString(body));
  finished_ = true;
}

void ResultDigester::onEmptyQueryResponse() {
  if (!malformed_.empty()) return;
  if (finished_ || described_ || rows_ > 0) {
    fail("EmptyQueryResponse inside a result");
    return;
  }
  finished_ = true;
}

void ResultDigester::onError(std::span<const uint8_t> body) {
  if (!malformed_.empty()) return;
  if (finished_) {
    fail("ErrorResponse after the end of the result");
    return;
  }
  auto decoded = protocol::decode<protocol::ErrorResponse>(body);
  if (!decoded) {
    fail(decoded.reason());
    return;
  }
  error_ = StoreError{std::string(decoded.value().field(protocol::field_code::kSqlState)),
                      std::string(decoded.value().field(protocol::field_code::kMessage))};
  finished_ = true;
}

}  // namespace cutover::compare
