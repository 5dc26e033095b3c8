#pragma once

// The fleet flag store (flags.store: postgres, docs/configuration.md): the flag snapshot of every
// proxy instance kept in one row of a control database table, with LISTEN/NOTIFY on change, so
// every instance applies a flip within about a second of the others.
//
//   <table> (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL,
//            snapshot jsonb NOT NULL  -- flags::toJson(snapshot)
//            updated_at timestamptz NOT NULL DEFAULT now())
//
// A background thread owns one libpq connection that LISTENs on the channel named like the
// table; on a notification, every 5 s, and on every (re)connection it re-reads the row and hands
// each version newer than any seen to `on_remote_change`. When the control database is
// unreachable the instance keeps its last snapshot (the caller's FlagStore and state file), the
// thread reconnects with backoff (0.5 s doubling to 10 s, one log line per outage), health()
// and cutover_flag_store_up say so. load() and publish() use short-lived connections of their own.
//
// This class does not own the current snapshot: the caller (FlagStore's owner) adopts what
// load() returns and what on_remote_change delivers, and calls publish() before publishing a
// change locally.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"
#include "config/config.h"
#include "flags/flag_snapshot.h"

namespace cutover::pgclient {
class Connection;
}

namespace cutover::flags {

using ControlConnection = pgclient::Connection;

// What GET /status shows about the fleet store.
struct PgFlagStoreHealth {
  bool connected = false;    // the listening connection is up
  std::string last_error;    // the current outage's error (empty while connected), or a row
                             // that was refused ("row v7 ... is not a valid flag snapshot: ...")
  std::string last_sync_at;  // RFC 3339: the row was last read successfully ("" = never)
  uint64_t last_version = 0; // newest version loaded, received or published (0 = none)
};

class PgFlagStore {
 public:
  // Called on the store's background thread, never concurrently with itself; must not call
  // stop() or destroy the store. Post the snapshot to where it is applied.
  using RemoteChange = std::function<void(FlagSnapshot)>;

  // Starts the background thread and returns at once: an unreachable control database is not
  // an error here (health() reports it). The thread creates the table when missing and LISTENs.
  // Errors: an empty table name, or no thread could be started.
  static Result<std::unique_ptr<PgFlagStore>> open(const config::ControlConfig& control,
                                                   RemoteChange on_remote_change);
  ~PgFlagStore();  // stop()
  PgFlagStore(const PgFlagStore&) = delete;
  PgFlagStore& operator=(const PgFlagStore&) = delete;

  // Blocking (≤ ~10 s), any thread; for start-up. The stored snapshot (its version is the
  // row's), or an error saying the row or table does not exist yet, the control database is
  // unreachable, or the row is not a valid snapshot — the caller then keeps its state file.
  // Raises the newest version seen, so on_remote_change does not deliver the same row again.
  Result<FlagSnapshot> load();

  // Blocking (≤ ~10 s), any thread. Stores `next` as version expected_version + 1 (next.version
  // is overwritten; changed_at/changed_by/reason are stored as given) if the row's version is
  // still `expected_version`; when no row exists yet any expected_version is accepted. One
  // transaction: SELECT … FOR UPDATE, compare, upsert, NOTIFY <table>, '<version>', COMMIT.
  // Returns the snapshot as stored. Errors: another instance published first ("... another
  // instance published version N first ..."; reload and retry is the caller's choice), `next`
  // fails validate(), the control database is unreachable or too slow. This instance's
  // on_remote_change is not called for its own publish.
  Result<FlagSnapshot> publish(const FlagSnapshot& next, uint64_t expected_version);

  // Any thread.
  PgFlagStoreHealth health() const;
  const std::string& table() const { return control_.table; }

  // Ends the background thread promptly (< 1 s, whatever it was waiting for). Idempotent;
  // after it no callback runs. load() and publish() still work.
  void stop();

 private:
  PgFlagStore(const config::ControlConfig& control, RemoteChange on_remote_change, int wake_fd);

  // Background thread.
  void run();
  // Connects, creates the table when missing, LISTENs.
  Status connectAndListen(ControlConnection& conn);
  // Reads the row and delivers it when it is new; leaves `conn` closed if the connection broke.
  void sync(ControlConnection& conn);
  bool stopRequested() const;
  void noteDown(const std::string& error);
  void noteUp();

  const config::ControlConfig control_;
  const RemoteChange on_remote_change_;
  const int wake_fd_;  // eventfd: readable once stop() was called
  std::mutex publish_mutex_;  // one publish() of this instance at a time
  std::mutex stop_mutex_;     // serialises stop() (join)

  mutable std::mutex mutex_;  // guards health_ and own_publish_in_flight_
  PgFlagStoreHealth health_;
  // A publish of this instance between its UPDATE and the return of COMMIT: the listener may
  // read the committed row before publish() records it, and must not deliver it as remote.
  uint64_t own_publish_in_flight_ = 0;

  // Background thread only (no lock): what was last logged, so an outage or a bad row is
  // logged once, not on every attempt or re-read.
  bool outage_logged_ = false;
  std::chrono::steady_clock::time_point down_since_{};
  std::string problem_logged_;

  std::thread thread_;
};

}  // namespace cutover::flags
