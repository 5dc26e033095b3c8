#include "flags/flag_store.h"

#include <fmt/format.h>

#include <vector>

#include "common/log.h"
#include "flags/state_file.h"

namespace cutover::flags {

namespace {

// "reads_new_percent 50→0, writes dual-new→dual" for the log line of a flip.
std::string describeChanges(const FlagSnapshot& before, const FlagSnapshot& after) {
  const nlohmann::json a = toJson(before);
  const nlohmann::json b = toJson(after);
  std::vector<std::string> changes;
  for (const char* key :
       {"writes", "mirror", "reads_new_percent", "shadow_percent", "sticky", "tables"}) {
    if (a[key] != b[key]) changes.push_back(fmt::format("{} {}→{}", key, a[key].dump(), b[key].dump()));
  }
  return changes.empty() ? "no change" : fmt::format("{}", fmt::join(changes, ", "));
}

}  // namespace

FlagStore::FlagStore(std::string state_file, FlagSnapshotPtr initial)
    : state_file_(std::move(state_file)), current_(std::move(initial)) {}

Result<std::unique_ptr<FlagStore>> FlagStore::open(const config::FlagsConfig& config) {
  if (config.state_file.empty()) return Status::error("flags.state_file is empty");
  removeStaleTempFiles(config.state_file);
  auto stored = readStateFile(config.state_file);
  if (!stored) return stored.status();
  FlagSnapshot initial;
  if (stored->has_value()) {
    initial = std::move(**stored);
    log::info("flags v{} from the state file {} (it wins over the config's flags)",
              initial.version, config.state_file);
  } else {
    initial = fromConfig(config);
    log::info("flags from the config ({} does not exist yet)", config.state_file);
  }
  auto ptr = std::make_shared<const FlagSnapshot>(std::move(initial));
  return std::unique_ptr<FlagStore>(new FlagStore(config.state_file, std::move(ptr)));
}

FlagSnapshotPtr FlagStore::current() const {
  std::lock_guard lock(current_mutex_);
  return current_;
}

Result<FlagSnapshotPtr> FlagStore::publish(FlagSnapshot next, std::string changed_by,
                                           std::string reason, const Share& share) {
  std::lock_guard lock(publish_mutex_);
  return publishLocked(std::move(next), std::move(changed_by), std::move(reason), share);
}

Result<FlagSnapshotPtr> FlagStore::adopt(FlagSnapshot remote) {
  std::lock_guard lock(publish_mutex_);
  FlagSnapshotPtr before = current();
  if (remote.version <= before->version) return before;
  if (Status valid = validate(remote); !valid) return valid;
  return persistAndSwap(std::move(remote), before);
}

Result<FlagSnapshotPtr> FlagStore::publishLocked(FlagSnapshot next, std::string changed_by,
                                                 std::string reason, const Share& share) {
  if (Status valid = validate(next); !valid) return valid;
  FlagSnapshotPtr before = current();
  next.version = before->version + 1;
  next.changed_at = nowRfc3339();
  next.changed_by = std::move(changed_by);
  next.reason = std::move(reason);
  if (share) {
    if (Status shared = share(next, before->version); !shared) {
      return Status::error(fmt::format("flags v{} not shared: {}", next.version, shared.message()));
    }
  }
  return persistAndSwap(std::move(next), before);
}

Result<FlagSnapshotPtr> FlagStore::persistAndSwap(FlagSnapshot next, const FlagSnapshotPtr& before) {
  const std::string text =
      toJson(next).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  if (Status saved = writeFileAtomically(state_file_, text); !saved) {
    return Status::error(
        fmt::format("flags v{} not published: {}", next.version, saved.message()));
  }
  auto published = std::make_shared<const FlagSnapshot>(std::move(next));
  {
    std::lock_guard lock(current_mutex_);
    current_ = published;
  }
  log::info("flags v{} published by {}: {} (reason: {})", published->version,
            published->changed_by, describeChanges(*before, *published),
            published->reason.empty() ? "none given" : published->reason);
  return FlagSnapshotPtr(published);
}

Result<FlagSnapshotPtr> FlagStore::rollback(std::string changed_by, std::string reason,
                                            bool force, const Share& share) {
  // Held from read to publish, so a concurrent flip cannot be overwritten with stale values.
  std::lock_guard lock(publish_mutex_);
  FlagSnapshot next = *current();
  std::vector<std::string> no_return;
  auto backToOld = [&no_return, force](config::WritesMode& writes, std::string_view where) {
    if (writes == config::WritesMode::DualNew) writes = config::WritesMode::Dual;
    if (writes == config::WritesMode::New) {
      if (!force) no_return.emplace_back(where);
      writes = config::WritesMode::Dual;
    }
  };
  backToOld(next.writes, "writes");
  next.reads_new_percent = 0;
  for (auto& [name, table] : next.tables) {
    if (table.reads_new_percent) table.reads_new_percent = 0;
    if (table.writes) backToOld(*table.writes, fmt::format("tables.{}.writes", name));
  }
  if (!no_return.empty()) {
    return Status::error(fmt::format(
        "rollback refused ({} = new): the old store has missed every write since authority left "
        "it (point of no return); force the rollback to make old authoritative again anyway "
        "(writes: dual)",
        fmt::join(no_return, ", ")));
  }
  return publishLocked(std::move(next), std::move(changed_by), std::move(reason), share);
}

}  // namespace cutover::flags
