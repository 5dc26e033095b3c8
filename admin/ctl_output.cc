#include "admin/ctl_output.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <string_view>
#include <vector>

namespace cutover::admin {
namespace {

using nlohmann::json;

// Flag snapshot keys, then /status keys, then /status's nested keys.
constexpr std::array<std::string_view, 27> kKeyOrder = {
    "version",  "writes",      "mirror",     "reads_new_percent", "shadow_percent", "sticky",
    "tables",   "changed_at",  "changed_by", "reason",            "flags",          "stores",
    "old",      "new",         "up",         "sessions",          "divergences",    "mismatches",
    "verify",   "flag_store",  "kind",       "ok",                "detail",         "last",
    "latest",   "id",          "state"};

size_t rankOf(std::string_view key) {
  auto found = std::find(kKeyOrder.begin(), kKeyOrder.end(), key);
  return static_cast<size_t>(found - kKeyOrder.begin());  // unknown keys rank last, together
}

bool isScalar(const json& value) { return !value.is_object() && !value.is_array(); }

std::string scalarText(const json& value) {
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    bool plain = !text.empty() && std::none_of(text.begin(), text.end(), [](char c) {
      return static_cast<unsigned char>(c) < 0x20;
    });
    return plain ? text : value.dump();  // "" and control characters quoted, so lines stay lines
  }
  return value.dump();
}

void renderValue(std::string& out, std::string_view key, const json& value, int indent, bool sort_children);

void renderChildren(std::string& out, const json& object, int indent, bool sort) {
  std::vector<json::const_iterator> items;
  for (auto it = object.begin(); it != object.end(); ++it) items.push_back(it);
  if (sort) {
    std::stable_sort(items.begin(), items.end(),
                     [](const auto& a, const auto& b) { return rankOf(a.key()) < rankOf(b.key()); });
  }
  for (const auto& it : items) {
    // A table's name is data, not a key of ours: "tables" children keep the server's order.
    renderValue(out, it.key(), it.value(), indent, it.key() != "tables");
  }
}

void renderValue(std::string& out, std::string_view key, const json& value, int indent, bool sort_children) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (value.is_object()) {
    if (value.empty()) {
      out += fmt::format("{}{}: {{}}\n", pad, key);
      return;
    }
    out += fmt::format("{}{}:\n", pad, key);
    renderChildren(out, value, indent + 2, sort_children);
    return;
  }
  if (value.is_array()) {
    if (std::all_of(value.begin(), value.end(), isScalar)) {
      std::vector<std::string> parts;
      for (const auto& item : value) parts.push_back(scalarText(item));
      out += fmt::format("{}{}: [{}]\n", pad, key, fmt::join(parts, ", "));
      return;
    }
    out += fmt::format("{}{}:\n", pad, key);
    for (const auto& item : value) renderValue(out, "-", item, indent + 2, true);
    return;
  }
  out += fmt::format("{}{}: {}\n", pad, key, scalarText(value));
}

// The value at `key` of an object as text, or "" when absent.
std::string field(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto found = object.find(key);
  return found == object.end() ? "" : scalarText(*found);
}

}  // namespace

std::string renderTree(const json& value) {
  std::string out;
  if (value.is_object()) {
    renderChildren(out, value, 0, true);
  } else {
    out = scalarText(value) + "\n";  // not what the API answers, but printed rather than lost
  }
  return out;
}

std::string renderRollback(const json& answer) {
  const json empty = json::object();
  const json& flags = answer.is_object() && answer.contains("flags") ? answer["flags"] : empty;
  std::vector<std::string> state;
  if (auto version = field(flags, "version"); !version.empty()) state.push_back("flags v" + version);
  for (const char* key : {"reads_new_percent", "writes"}) {
    if (auto text = field(flags, key); !text.empty()) state.push_back(fmt::format("{} {}", key, text));
  }
  std::string line = "rolled back";
  if (!state.empty()) line += fmt::format(": {}", fmt::join(state, ", "));

  std::string applied;
  if (auto workers = field(answer, "workers"); !workers.empty()) {
    applied = fmt::format("applied by {} worker{}", workers, workers == "1" ? "" : "s");
  }
  if (answer.is_object() && answer.contains("applied_ms") && answer["applied_ms"].is_number()) {
    double ms = answer["applied_ms"].get<double>();
    applied += fmt::format("{}in {:.{}f} ms", applied.empty() ? "applied " : " ", ms, ms < 0.1 ? 2 : 1);
  }
  if (!applied.empty()) line += "; " + applied;
  line += "\n";
  // flags.store: postgres and the control database did not take it: other instances still route
  // by the old flags until it is shared (the proxy retries once the control database is back).
  if (answer.is_object() && answer.contains("fleet") && answer["fleet"].is_object() &&
      answer["fleet"].value("shared", true) == false) {
    line += fmt::format("WARNING: this instance only; the fleet flag store did not take the rollback: {}\n"
                        "         roll back the other instances too (cutover ctl --admin URL rollback)\n",
                        answer["fleet"].value("error", std::string("unknown error")));
  }
  return line;
}

}  // namespace cutover::admin
