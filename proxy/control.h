#pragma once

// The proxy's control plane: flag changes (admin API, and whatever else publishes) go to the flag
// store, then to every worker, with an audit record; and the admin endpoints of DESIGN.md
// "Admin HTTP API" that need the running proxy (flags, rollback, status, journals).
//
// Threads: change()/rollback() run on the caller's thread (the admin thread) and block until
// every worker confirms it routes by the new snapshot, or a timeout passes.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_server.h"
#include "common/status.h"
#include "compare/journal.h"
#include "config/config.h"
#include "flags/flag_store.h"
#include "flags/pg_flag_store.h"
#include "proxy/job_watch.h"
#include "proxy/store_health.h"
#include "proxy/worker.h"

namespace cutover::proxy {

class ControlPlane {
 public:
  struct Parts {
    const config::Config* config = nullptr;
    flags::FlagStore* flag_store = nullptr;
    const std::vector<std::unique_ptr<Worker>>* workers = nullptr;   // fixed once the admin API serves
    const StoreHealth* health = nullptr;                              // null without stores.new
    std::function<int()> live_sessions;
    std::function<int()> sessions_missed_writes;   // open sessions whose writes a store missed
    uint64_t lost_at_start_old = 0, lost_at_start_new = 0;   // unclean_stop writes found at start-up
    const std::atomic<bool>* shutting_down = nullptr;
    flags::PgFlagStore* fleet = nullptr;                              // flags.store: postgres
    JobWatch* jobs = nullptr;                                         // null without stores.new
  };

  // Opens journal_dir/audit.jsonl, where every flag change is recorded.
  static Result<std::unique_ptr<ControlPlane>> open(Parts parts);

  struct Applied {
    flags::FlagSnapshotPtr flags;
    int workers = 0;          // workers that confirmed
    int worker_total = 0;
    double applied_ms = 0;    // from publish to the last confirmation
  };

  // Refuses (FailedPrecondition-like error, answered 409) what this build or this config cannot
  // route, then publishes (validation errors: 400), applies to every worker and audits.
  // Gated: verify.require_for_ramp and no clean, fresh verify for a raise of reads to new.
  enum class Refusal { None, Invalid, Unsupported, PointOfNoReturn, Conflict, Gated, Unavailable, Internal };
  struct Outcome {
    Refusal refusal = Refusal::None;
    std::string error;
    Applied applied;
    std::string fleet_error;   // a rollback applied here that the fleet flag store did not take
  };
  // `force` (with a non-empty reason) overrides the read-ramp gate; the audit line says so.
  Outcome change(flags::FlagSnapshot next, const std::string& changed_by, const std::string& reason,
                 bool force = false);
  Outcome rollback(bool automatic, const std::string& changed_by, const std::string& reason, bool force);

  // A snapshot another instance published through the fleet flag store (any thread): adopted
  // when newer and routable by this instance, applied to every worker, audited.
  void adoptRemote(flags::FlagSnapshot remote);

  // Once a second (main thread): a rollback applied here while the fleet store could not take it
  // is published to the fleet store as soon as the control database answers again, so the other
  // instances roll back too. Until then this instance keeps its flags and ignores the fleet's.
  void reconcileFleet();

  // Sends `flags` to every worker and waits (up to `timeout`) until each has taken it.
  Applied applyToWorkers(flags::FlagSnapshotPtr flags, std::chrono::milliseconds timeout);

  void registerRoutes(admin::AdminServer& admin);

 private:
  explicit ControlPlane(Parts parts, std::unique_ptr<compare::Journal> audit);
  Outcome published(Result<flags::FlagSnapshotPtr> result, const flags::FlagSnapshotPtr& before,
                    const std::string& what, const std::string& trigger,
                    const nlohmann::json& gate = nullptr);
  // The read-ramp gate for before → next: null when it does not apply or lets the change through
  // (then `audit` says what it checked), else the refusal.
  std::optional<Outcome> gate(const flags::FlagSnapshot& before, const flags::FlagSnapshot& next, bool force,
                              nlohmann::json& audit);
  nlohmann::json verifyStatus() const;
  // Sequences level before authority moves (migrate/sequence_level.h): when before → next moves
  // `writes` authority, the store taking it has its sequences raised first. Null when nothing
  // had to be done or it was done (`audit` says which), else the refusal (force overrides).
  std::optional<Outcome> levelSequences(const flags::FlagSnapshot& before, const flags::FlagSnapshot& next, bool force,
                                        int64_t deadline_ms, nlohmann::json& audit);
  admin::Response status() const;
  std::string journalPath(const std::string& file) const;   // journal_dir/file

  Parts parts_;
  std::unique_ptr<compare::Journal> audit_;
  mutable std::mutex change_mutex_;   // one change at a time: audit lines and worker order match versions
  bool unshared_rollback_ = false;   // guarded by change_mutex_; see reconcileFleet()
  nlohmann::json last_level_;        // guarded by change_mutex_: the last sequence levelling, for /status
};

}  // namespace cutover::proxy
