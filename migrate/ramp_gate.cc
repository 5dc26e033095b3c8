#include "migrate/ramp_gate.h"

#include <fmt/format.h>

#include <set>

namespace cutover::migrate {
namespace {

int effectivePercent(const flags::FlagSnapshot& flags, const std::string& table) {
  auto found = flags.tables.find(table);
  if (found != flags.tables.end() && found->second.reads_new_percent) return *found->second.reads_new_percent;
  return flags.reads_new_percent;
}

// A flags.tables key names a verified table ("schema.name") as the router matches them: the same
// name, or a key without schema and the table's name part.
bool covers(const LastVerify& verify, const std::string& key) {
  for (const std::string& table : verify.tables) {
    if (table == key) return true;
    const size_t dot = table.find('.');
    if (key.find('.') == std::string::npos && dot != std::string::npos && table.substr(dot + 1) == key) return true;
  }
  return false;
}

std::string describe(const LastVerify& verify) {
  return fmt::format("verify {} (finished {}{})", verify.id, verify.finished_at,
                     verify.filtered ? ", --table/--exclude" : "");
}

std::string differencesText(const LastVerify& verify) {
  const auto count = [&](const char* key) -> int64_t {
    return verify.summary.is_object() ? verify.summary.value(key, int64_t{0}) : 0;
  };
  return fmt::format("{} differing table(s), {} schema difference(s), {} failed check(s)",
                     count("differing_tables"), count("schema_differences"), count("failed_checks"));
}

// "" when `verify` is evidence enough, else why not.
std::string unfit(const LastVerify& verify, const RampGateRules& rules) {
  if (verify.state != "equal") {
    return fmt::format("{} found differences ({}); repair them and verify again", describe(verify),
                       differencesText(verify));
  }
  if (verify.age_s > rules.max_age_s) {
    return fmt::format("{} is {} s old, more than verify.max_age_s ({} s); verify again", describe(verify),
                       verify.age_s, rules.max_age_s);
  }
  return "";
}

}  // namespace

RampGateDecision rampGate(const flags::FlagSnapshot& before, const flags::FlagSnapshot& after,
                          const std::vector<LastVerify>& recent, const RampGateRules& rules) {
  RampGateDecision decision;
  std::vector<std::string> problems;
  if (after.reads_new_percent > before.reads_new_percent) {
    decision.raised.push_back("reads_new_percent");
    const LastVerify* complete = nullptr;
    const LastVerify* newer_differences = nullptr;
    for (const LastVerify& verify : recent) {
      if (!verify.filtered) {
        complete = &verify;
        break;
      }
      if (verify.state != "equal" && newer_differences == nullptr) newer_differences = &verify;
    }
    if (complete == nullptr) {
      problems.push_back(
          "reads_new_percent: no complete verify on record (one without --table/--exclude); run cutover verify "
          "--config FILE");
    } else if (std::string why = unfit(*complete, rules); !why.empty()) {
      problems.push_back("reads_new_percent: " + why);
    } else if (newer_differences != nullptr) {
      problems.push_back(fmt::format("reads_new_percent: the newer {} found differences ({})",
                                     describe(*newer_differences), differencesText(*newer_differences)));
    }
  }
  std::set<std::string> keys;
  for (const auto& [name, overrides] : before.tables) keys.insert(name);
  for (const auto& [name, overrides] : after.tables) keys.insert(name);
  for (const std::string& key : keys) {
    if (effectivePercent(after, key) <= effectivePercent(before, key)) continue;
    const std::string path = fmt::format("tables.{}.reads_new_percent", key);
    decision.raised.push_back(path);
    const LastVerify* newest = nullptr;
    for (const LastVerify& verify : recent) {
      if (covers(verify, key)) {
        newest = &verify;
        break;
      }
    }
    if (newest == nullptr) {
      problems.push_back(fmt::format("{}: no verify on record covers {}; run cutover verify --config FILE "
                                     "(or --table {})",
                                     path, key, key));
    } else if (std::string why = unfit(*newest, rules); !why.empty()) {
      problems.push_back(fmt::format("{}: {}", path, why));
    }
  }
  if (!problems.empty()) {
    decision.allowed = false;
    decision.reason = fmt::format(
        "verify.require_for_ramp: more reads to the new store need a clean, fresh verify: {} (lowering is never "
        "gated; \"force\": true with a reason overrides, audited)",
        fmt::join(problems, "; "));
  }
  return decision;
}

}  // namespace cutover::migrate
