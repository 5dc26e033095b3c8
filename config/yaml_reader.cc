#include "config/yaml_reader.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <set>

namespace cutover::config {

namespace {

std::string_view describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return "a single value";
    default:
      return "nothing";
  }
}

// "(0-100)", or "(at least 1)" when the upper bound is only the type's limit.
std::string rangeText(int64_t min, int64_t max) {
  if (max >= std::numeric_limits<int32_t>::max()) return fmt::format("(at least {})", min);
  return fmt::format("({}-{})", min, max);
}

std::string rangeText(double min, double max) {
  if (std::isinf(max)) return fmt::format("(at least {})", min);
  return fmt::format("({}-{})", min, max);
}

}  // namespace

int lineOf(const YAML::Node& node, int fallback) {
  YAML::Mark mark = node.Mark();
  if (mark.is_null() || mark.line < 0) return fallback;
  return mark.line + 1;
}

void Diagnostics::fail(int line, std::string_view message) {
  if (failed()) return;
  status_ = Status::error(fmt::format("{}:{}: {}", source_, line, message));
}

int Diagnostics::lineOf(const std::string& path) const {
  std::string prefix = path;
  while (!prefix.empty()) {
    if (auto it = lines_.find(prefix); it != lines_.end()) return it->second;
    auto dot = prefix.rfind('.');
    if (dot == std::string::npos) break;
    prefix.resize(dot);
  }
  return 1;
}

MapReader::MapReader(const YAML::Node& node, std::string path, int line, Diagnostics& diag)
    : path_(std::move(path)), line_(line), diag_(&diag) {
  for (auto it = node.begin(); it != node.end(); ++it) {
    Entry entry;
    entry.line = config::lineOf(it->first, line_);
    if (it->first.IsScalar()) entry.key = it->first.Scalar();
    entry.value = it->second;
    if (!entry.key.empty()) diag_->noteKey(pathOf(entry.key), entry.line);
    entries_.push_back(std::move(entry));
  }
}

std::string MapReader::pathOf(std::string_view key) const {
  if (path_.empty()) return std::string(key);
  return fmt::format("{}.{}", path_, key);
}

std::vector<std::string> MapReader::keys() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) {
    if (!e.key.empty()) out.push_back(e.key);
  }
  return out;
}

bool MapReader::checkKeys(std::initializer_list<std::string_view> allowed) {
  std::map<std::string_view, int> seen;
  for (const auto& e : entries_) {
    if (e.key.empty()) {
      diag_->fail(e.line, fmt::format("{}: keys must be plain names, not lists or mappings",
                                      path_.empty() ? "top level" : path_));
      return false;
    }
    if (allowed.size() != 0) {
      bool known = false;
      for (auto a : allowed) known = known || a == e.key;
      if (!known) {
        diag_->fail(e.line, fmt::format("unknown key '{}' (expected one of: {})", pathOf(e.key),
                                        fmt::join(allowed, ", ")));
        return false;
      }
    }
    auto [it, inserted] = seen.emplace(e.key, e.line);
    if (!inserted) {
      diag_->fail(e.line, fmt::format("duplicate key '{}' (first given on line {}); keep one",
                                      pathOf(e.key), it->second));
      return false;
    }
  }
  return true;
}

const MapReader::Entry* MapReader::find(std::string_view key) const {
  for (const auto& e : entries_) {
    if (e.key == key) return &e;
  }
  return nullptr;
}

int MapReader::lineOf(std::string_view key) const {
  const Entry* e = find(key);
  return e ? e->line : line_;
}

void MapReader::fail(std::string_view key, std::string_view message) {
  diag_->fail(lineOf(key), fmt::format("{}: {}", pathOf(key), message));
}

std::optional<std::string> MapReader::scalar(std::string_view key, std::string_view expected) {
  const Entry* e = find(key);
  if (!e) return std::nullopt;
  if (e->value.IsNull()) {
    fail(key, fmt::format("no value given (expected {}); remove the key to use the default",
                          expected));
    return std::nullopt;
  }
  if (!e->value.IsScalar()) {
    fail(key, fmt::format("expected {}, got {}", expected, describe(e->value)));
    return std::nullopt;
  }
  return e->value.Scalar();
}

std::optional<std::string> MapReader::string(std::string_view key) {
  return scalar(key, "a string");
}

std::optional<int64_t> MapReader::integer(std::string_view key, int64_t min, int64_t max) {
  auto text = scalar(key, fmt::format("an integer {}", rangeText(min, max)));
  if (!text) return std::nullopt;
  int64_t value = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec == std::errc::result_out_of_range) {
    fail(key, fmt::format("{} is out of range {}", *text, rangeText(min, max)));
    return std::nullopt;
  }
  if (ec != std::errc() || ptr != end) {
    fail(key, fmt::format("'{}' is not an integer; expected a whole number {}", *text,
                          rangeText(min, max)));
    return std::nullopt;
  }
  if (value < min || value > max) {
    fail(key, fmt::format("{} is out of range {}", *text, rangeText(min, max)));
    return std::nullopt;
  }
  return value;
}

std::optional<double> MapReader::number(std::string_view key, double min, double max) {
  auto text = scalar(key, fmt::format("a number {}", rangeText(min, max)));
  if (!text) return std::nullopt;
  double value = 0;
  const char* begin = text->data();
  const char* end = begin + text->size();
  auto [ptr, ec] = std::from_chars(begin, end, value);
  if (ec != std::errc() || ptr != end || !std::isfinite(value)) {
    fail(key, fmt::format("'{}' is not a number; expected a number {}", *text,
                          rangeText(min, max)));
    return std::nullopt;
  }
  if (value < min || value > max) {
    fail(key, fmt::format("{} is out of range {}", *text, rangeText(min, max)));
    return std::nullopt;
  }
  return value;
}

std::optional<std::vector<std::string>> MapReader::stringList(std::string_view key) {
  const Entry* e = find(key);
  if (!e) return std::nullopt;
  if (e->value.IsNull()) return std::vector<std::string>{};
  if (!e->value.IsSequence()) {
    fail(key, fmt::format("expected a list such as [a, b], got {}", describe(e->value)));
    return std::nullopt;
  }
  std::vector<std::string> out;
  for (const auto& item : e->value) {
    if (!item.IsScalar() || item.Scalar().empty()) {
      diag_->fail(config::lineOf(item, e->line),
                  fmt::format("{}: every item must be a non-empty name", pathOf(key)));
      return std::nullopt;
    }
    out.push_back(item.Scalar());
  }
  return out;
}

std::optional<MapReader> MapReader::section(std::string_view key) {
  const Entry* e = find(key);
  if (!e || e->value.IsNull()) return std::nullopt;
  if (!e->value.IsMap()) {
    fail(key, fmt::format("expected a mapping of keys, got {}", describe(e->value)));
    return std::nullopt;
  }
  return MapReader(e->value, pathOf(key), config::lineOf(e->value, e->line), *diag_);
}

std::optional<std::vector<MapReader>> MapReader::sectionList(std::string_view key) {
  const Entry* e = find(key);
  if (!e || e->value.IsNull()) return std::nullopt;
  if (!e->value.IsSequence()) {
    fail(key, fmt::format("expected a list of mappings, got {}", describe(e->value)));
    return std::nullopt;
  }
  std::vector<MapReader> out;
  size_t index = 0;
  for (const auto& item : e->value) {
    const std::string path = fmt::format("{}.{}", pathOf(key), index++);
    if (!item.IsMap()) {
      diag_->fail(config::lineOf(item, e->line),
                  fmt::format("{}: expected a mapping of keys, got {}", path, describe(item)));
      return std::nullopt;
    }
    out.emplace_back(item, path, config::lineOf(item, e->line), *diag_);
  }
  return out;
}

}  // namespace cutover::config
