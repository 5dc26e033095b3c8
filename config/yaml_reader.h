#pragma once

// Reading one YAML mapping with precise, actionable errors. Internal to config/: this is the
// only header that names yaml-cpp types, and it is included by config/*.cc files only.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "config/enum_names.h"

namespace cutover::config {

// Collects the first error of one load (later ones are dropped: each usually follows from the
// first) and the line of every key read, so checks on the finished Config can still point at
// the file.
class Diagnostics {
 public:
  explicit Diagnostics(std::string source) : source_(std::move(source)) {}

  // Records "<source>:<line>: <message>" (line is 1-based) unless an error is already recorded.
  void fail(int line, std::string_view message);
  bool failed() const { return !status_.isOk(); }
  const Status& status() const { return status_; }

  void noteKey(const std::string& path, int line) { lines_.emplace(path, line); }
  // 1-based line of a key read earlier, else of its nearest ancestor that was; else 1.
  int lineOf(const std::string& path) const;

 private:
  std::string source_;
  Status status_;
  std::map<std::string, int> lines_;
};

// One YAML mapping under a dotted key path ("stores.old"). Every accessor reports problems to
// the Diagnostics and then returns nullopt, so callers read on and check failed() once.
// The Diagnostics must outlive the reader.
class MapReader {
 public:
  // `node` must be a mapping; `line` is where it starts (1-based), used for missing keys.
  MapReader(const YAML::Node& node, std::string path, int line, Diagnostics& diag);

  // Reports duplicate keys, keys that are not plain scalars, and (unless `allowed` is empty)
  // the first key not in `allowed`. Returns false if anything was reported.
  bool checkKeys(std::initializer_list<std::string_view> allowed);

  const std::string& path() const { return path_; }
  int line() const { return line_; }
  // "stores.old" + "host" -> "stores.old.host"
  std::string pathOf(std::string_view key) const;
  // Keys in document order.
  std::vector<std::string> keys() const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // 1-based line of the key, or of this mapping when the key is absent.
  int lineOf(std::string_view key) const;
  // Records "<line of key>: <path.key>: <message>".
  void fail(std::string_view key, std::string_view message);

  // Absent -> nullopt without error. Present but null, or not a scalar -> error.
  std::optional<std::string> string(std::string_view key);
  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max);
  std::optional<double> number(std::string_view key, double min, double max);
  std::optional<std::vector<std::string>> stringList(std::string_view key);
  template <typename E>
  std::optional<E> choice(std::string_view key, std::span<const EnumName<E>> names);
  // A nested mapping. Absent or null (every sub-key commented out) -> nullopt without error.
  std::optional<MapReader> section(std::string_view key);
  // A list of mappings ("key.0", "key.1", ... in messages). Absent or null -> nullopt without error.
  std::optional<std::vector<MapReader>> sectionList(std::string_view key);

  Diagnostics& diagnostics() { return *diag_; }

 private:
  struct Entry {
    std::string key;  // empty when the key is not a plain scalar
    int line;
    YAML::Node value;
  };
  const Entry* find(std::string_view key) const;
  // The entry's scalar text; reports null values and non-scalars.
  std::optional<std::string> scalar(std::string_view key, std::string_view expected);

  std::vector<Entry> entries_;
  std::string path_;
  int line_;
  Diagnostics* diag_;
};

template <typename E>
std::optional<E> MapReader::choice(std::string_view key, std::span<const EnumName<E>> names) {
  auto text = scalar(key, "one of: " + enumChoices(names));
  if (!text) return std::nullopt;
  if (auto value = parseEnum(names, *text)) return value;
  fail(key, "'" + *text + "' is not valid (expected one of: " + enumChoices(names) + ")");
  return std::nullopt;
}

// 1-based line of a node, or `fallback` when yaml-cpp has no position for it.
int lineOf(const YAML::Node& node, int fallback);

}  // namespace cutover::config
