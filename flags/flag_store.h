#pragma once

// The current flag snapshot and its state file. Lives on the main thread; the admin thread and
// auto-rollback may publish too (publishes are serialised). Workers never call it on the data
// path: the proxy hands each worker the pointer returned by current()/publish() through its own
// task queue.

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "config/config.h"
#include "flags/flag_snapshot.h"

namespace cutover::flags {

class FlagStore {
 public:
  // Loads the state file when it exists (it wins over the config, DESIGN.md "Configuration"),
  // else the config's flags (version 1). A state file that cannot be read, parsed or validated
  // is an error naming the file and what is wrong. Removes temp files a crash left behind.
  static Result<std::unique_ptr<FlagStore>> open(const config::FlagsConfig& config);

  // Any thread; never null.
  FlagSnapshotPtr current() const;

  // Called with the stamped snapshot (final version, changed_at/_by, reason) before it is
  // persisted: the fleet flag store shares it there. An error publishes nothing.
  using Share = std::function<Status(const FlagSnapshot& stamped, uint64_t previous_version)>;

  // Validates `next` (see validate()), sets version = current + 1, stamps changed_at (now),
  // changed_by and reason, shares it (when `share` is given), persists it atomically to the
  // state file, then publishes it. If validation, sharing or persisting fails nothing is
  // published and the error says why.
  Result<FlagSnapshotPtr> publish(FlagSnapshot next, std::string changed_by, std::string reason,
                                  const Share& share = {});

  // A snapshot another instance published (the fleet flag store): persisted and published as
  // it is, version included, when its version is newer than the current one; otherwise
  // nothing happens and the current snapshot is returned.
  Result<FlagSnapshotPtr> adopt(FlagSnapshot remote);

  // Publishes the current flags with reads_new_percent 0 (table overrides included) and
  // authority back to old: dual-new → dual (globally and per table). From new (global or a
  // table) the old store is stale: refused with a "point of no return" error unless `force`,
  // which moves it to dual (old authoritative, new still mirrored). old/dual and shadow_percent
  // are left as they are.
  Result<FlagSnapshotPtr> rollback(std::string changed_by, std::string reason, bool force,
                                   const Share& share = {});

  const std::string& stateFile() const { return state_file_; }

 private:
  FlagStore(std::string state_file, FlagSnapshotPtr initial);
  // Requires publish_mutex_.
  Result<FlagSnapshotPtr> publishLocked(FlagSnapshot next, std::string changed_by,
                                        std::string reason, const Share& share);
  // Requires publish_mutex_: persists `next` to the state file, then makes it current.
  Result<FlagSnapshotPtr> persistAndSwap(FlagSnapshot next, const FlagSnapshotPtr& before);

  const std::string state_file_;
  std::mutex publish_mutex_;  // one publish at a time, so versions never repeat
  // A plain mutex rather than std::atomic<std::shared_ptr>: current() is off the data path, and
  // libstdc++ 12's lock-bit implementation is opaque to ThreadSanitizer (false race reports).
  mutable std::mutex current_mutex_;
  FlagSnapshotPtr current_;  // guarded by current_mutex_; never null
};

}  // namespace cutover::flags
