#include "flags/flag_snapshot.h"

#include <sys/time.h>
#include <time.h>

#include <fmt/format.h>

#include <vector>

namespace cutover::flags {

namespace {

using nlohmann::json;
using config::MirrorMode;
using config::Sticky;
using config::WritesMode;

constexpr WritesMode kWritesModes[] = {WritesMode::Old, WritesMode::Dual, WritesMode::DualNew,
                                       WritesMode::New};
constexpr MirrorMode kMirrorModes[] = {MirrorMode::Sync, MirrorMode::Async, MirrorMode::Strict};
constexpr Sticky kStickies[] = {Sticky::Session, Sticky::Statement};

constexpr std::string_view kStrictRefused =
    "\"strict\" is refused: two-phase commit is not available yet (use sync or async)";

// Every problem found in one body, so an operator fixes them all in one go.
class Errors {
 public:
  void add(std::string_view key, std::string_view what) {
    items_.push_back(fmt::format("{}: {}", key, what));
  }
  bool empty() const { return items_.empty(); }
  Status status() const {
    return Status::error(fmt::format("invalid flags: {}", fmt::join(items_, "; ")));
  }

 private:
  std::vector<std::string> items_;
};

// A JSON value as it appears in an error message, cut short so a huge body cannot flood it.
std::string shown(const json& value) {
  // ASCII only, so cutting it short cannot split a UTF-8 sequence.
  std::string text = value.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() > 64) {
    text.resize(61);
    text += "...";
  }
  return text;
}

template <typename E, size_t N>
std::string choices(const E (&values)[N]) {
  std::string out;
  for (E e : values) {
    if (!out.empty()) out += ", ";
    out += config::toString(e);
  }
  return out;
}

template <typename E, size_t N>
bool readEnum(const json& value, const E (&values)[N], std::string_view key, Errors& errors,
              E& out) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    for (E e : values) {
      if (config::toString(e) == text) {
        out = e;
        return true;
      }
    }
  }
  errors.add(key, fmt::format("{} is not one of {}", shown(value), choices(values)));
  return false;
}

bool readPercent(const json& value, std::string_view key, Errors& errors, int& out) {
  if (!value.is_number_integer()) {
    errors.add(key, fmt::format("{} is not an integer 0-100", shown(value)));
    return false;
  }
  // A parsed non-negative integer is number_unsigned, one built from an int number_integer.
  const bool in_range = value.is_number_unsigned()
                            ? value.get<uint64_t>() <= 100
                            : value.get<int64_t>() >= 0 && value.get<int64_t>() <= 100;
  if (!in_range) {
    errors.add(key, fmt::format("{} is out of range (0-100)", shown(value)));
    return false;
  }
  out = static_cast<int>(value.get<int64_t>());
  return true;
}

// A version number: a non-negative integer.
bool readVersion(const json& value, std::string_view key, Errors& errors, uint64_t& out) {
  if (value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0)) {
    out = value.get<uint64_t>();
    return true;
  }
  errors.add(key, fmt::format("{} is not a non-negative integer", shown(value)));
  return false;
}

bool readString(const json& value, std::string_view key, Errors& errors, std::string& out) {
  if (!value.is_string()) {
    errors.add(key, fmt::format("{} is not a string", shown(value)));
    return false;
  }
  out = value.get<std::string>();
  return true;
}

bool isEmpty(const config::TableFlags& t) {
  return !t.reads_new_percent && !t.shadow_percent && !t.writes;
}

// Merges `patch` into `tables` (JSON Merge Patch: null removes).
void mergeTables(const json& patch, Errors& errors,
                 std::map<std::string, config::TableFlags>& tables) {
  if (!patch.is_object()) {
    errors.add("tables", fmt::format("{} is not an object mapping table names to overrides",
                                     shown(patch)));
    return;
  }
  for (const auto& [name, overrides] : patch.items()) {
    if (name.empty()) {
      errors.add("tables", "a table name is empty");
      continue;
    }
    const std::string path = fmt::format("tables.{}", name);
    if (overrides.is_null()) {
      tables.erase(name);
      continue;
    }
    if (!overrides.is_object()) {
      errors.add(path, fmt::format("{} is not an object of overrides (or null)", shown(overrides)));
      continue;
    }
    config::TableFlags table;
    if (auto it = tables.find(name); it != tables.end()) table = it->second;
    for (const auto& [key, value] : overrides.items()) {
      const std::string field = fmt::format("{}.{}", path, key);
      if (key == "reads_new_percent" || key == "shadow_percent") {
        std::optional<int>& slot =
            key == "reads_new_percent" ? table.reads_new_percent : table.shadow_percent;
        int percent = 0;
        if (value.is_null()) {
          slot.reset();
        } else if (readPercent(value, field, errors, percent)) {
          slot = percent;
        }
      } else if (key == "writes") {
        WritesMode writes = WritesMode::Old;
        if (value.is_null()) {
          table.writes.reset();
        } else if (readEnum(value, kWritesModes, field, errors, writes)) {
          table.writes = writes;
        }
      } else {
        errors.add(field, "unknown key");
      }
    }
    if (isEmpty(table)) {
      tables.erase(name);
    } else {
      tables[name] = table;
    }
  }
}

// Reads one global flag into `out`; false when `key` is not a flag name.
bool readFlag(const std::string& key, const json& value, Errors& errors, FlagSnapshot& out) {
  if (key == "writes") {
    readEnum(value, kWritesModes, key, errors, out.writes);
  } else if (key == "mirror") {
    readEnum(value, kMirrorModes, key, errors, out.mirror);
  } else if (key == "reads_new_percent") {
    readPercent(value, key, errors, out.reads_new_percent);
  } else if (key == "shadow_percent") {
    readPercent(value, key, errors, out.shadow_percent);
  } else if (key == "sticky") {
    readEnum(value, kStickies, key, errors, out.sticky);
  } else if (key == "tables") {
    mergeTables(value, errors, out.tables);
  } else {
    return false;
  }
  return true;
}

}  // namespace

nlohmann::json toJson(const FlagSnapshot& s) {
  json tables = json::object();
  for (const auto& [name, t] : s.tables) {
    json overrides = json::object();
    if (t.reads_new_percent) overrides["reads_new_percent"] = *t.reads_new_percent;
    if (t.shadow_percent) overrides["shadow_percent"] = *t.shadow_percent;
    if (t.writes) overrides["writes"] = std::string(config::toString(*t.writes));
    tables[name] = std::move(overrides);
  }
  return json{
      {"version", s.version},
      {"writes", std::string(config::toString(s.writes))},
      {"mirror", std::string(config::toString(s.mirror))},
      {"reads_new_percent", s.reads_new_percent},
      {"shadow_percent", s.shadow_percent},
      {"sticky", std::string(config::toString(s.sticky))},
      {"tables", std::move(tables)},
      {"changed_at", s.changed_at},
      {"changed_by", s.changed_by},
      {"reason", s.reason},
  };
}

Result<FlagSnapshot> fromJson(const nlohmann::json& j) {
  if (!j.is_object()) return Status::error("invalid flags: not a JSON object");
  FlagSnapshot out;
  Errors errors;
  for (const char* required :
       {"version", "writes", "mirror", "reads_new_percent", "shadow_percent", "sticky"}) {
    if (!j.contains(required)) errors.add(required, "missing");
  }
  for (const auto& [key, value] : j.items()) {
    if (readFlag(key, value, errors, out)) continue;
    if (key == "version") {
      readVersion(value, key, errors, out.version);
    } else if (key == "changed_at") {
      readString(value, key, errors, out.changed_at);
    } else if (key == "changed_by") {
      readString(value, key, errors, out.changed_by);
    } else if (key == "reason") {
      readString(value, key, errors, out.reason);
    } else {
      errors.add(key, "unknown key");
    }
  }
  if (!errors.empty()) return errors.status();
  return out;
}

Result<FlagSnapshot> applyJson(const FlagSnapshot& base, std::string_view json_body) {
  // nlohmann reports bad JSON by exception; it stays inside this function.
  json body;
  try {
    body = json::parse(json_body);
  } catch (const json::exception& e) {
    // The parser quotes the bytes it last read, which may be anything: keep the message ASCII.
    std::string what = e.what();
    for (char& c : what) {
      if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
    }
    return Status::error(fmt::format("invalid flags: the body is not valid JSON ({})", what));
  }
  if (!body.is_object()) {
    return Status::error(
        fmt::format("invalid flags: the body must be a JSON object, not {}", shown(body)));
  }
  FlagSnapshot out = base;
  Errors errors;
  for (const auto& [key, value] : body.items()) {
    if (readFlag(key, value, errors, out)) {
      if (key == "mirror" && value == "strict") errors.add(key, kStrictRefused);
      continue;
    }
    if (key == "reason") {
      readString(value, key, errors, out.reason);
    } else if (key == "version") {
      uint64_t version = 0;
      if (readVersion(value, key, errors, version) && version != base.version) {
        errors.add(key, fmt::format("{} is not the current version {} (the flags changed "
                                    "meanwhile: read them again)",
                                    version, base.version));
      }
    } else if (key == "changed_at" || key == "changed_by") {
      // Stamped by publish(); accepted so that a GET /flags answer can be sent back as is.
    } else {
      errors.add(key, "unknown key");
    }
  }
  if (!errors.empty()) return errors.status();
  return out;
}

FlagSnapshot fromConfig(const config::FlagsConfig& config) {
  FlagSnapshot out;
  out.version = 1;
  out.writes = config.writes;
  out.mirror = config.mirror;
  out.reads_new_percent = config.reads_new_percent;
  out.shadow_percent = config.shadow_percent;
  out.sticky = config.sticky;
  out.tables = config.tables;
  out.changed_at = nowRfc3339();
  out.changed_by = "config";
  return out;
}

Status validate(const FlagSnapshot& s) {
  Errors errors;
  auto checkPercent = [&errors](std::string_view key, int value) {
    if (value < 0 || value > 100) errors.add(key, fmt::format("{} is out of range (0-100)", value));
  };
  if (s.mirror == MirrorMode::Strict) errors.add("mirror", kStrictRefused);
  checkPercent("reads_new_percent", s.reads_new_percent);
  checkPercent("shadow_percent", s.shadow_percent);
  for (const auto& [name, t] : s.tables) {
    if (name.empty()) errors.add("tables", "a table name is empty");
    if (t.reads_new_percent) {
      checkPercent(fmt::format("tables.{}.reads_new_percent", name), *t.reads_new_percent);
    }
    if (t.shadow_percent) {
      checkPercent(fmt::format("tables.{}.shadow_percent", name), *t.shadow_percent);
    }
  }
  if (!errors.empty()) return errors.status();
  return Status::ok();
}


}  // namespace cutover::flags
