#pragma once

// mirror: async durability (DESIGN.md "Guarantees"): the write-ahead record of acknowledged
// writes the secondary store has not applied yet.
//
// Before the client hears that an async write committed, the journal line that write would
// become if it were lost is appended here (intent) and fsync'd — group commit: the Journal's
// writer thread syncs everything queued at once, and the client's answer waits for its record.
// When the secondary has applied the write, or its miss went to the divergence journal, a short
// "done" record follows (not waited for). At start-up, recover() returns every intent without a
// done: acknowledged to a client, never confirmed applied on the secondary. The proxy journals
// them as `unclean_stop` divergences before it serves anyone, then removes the files.
//
// This is not a replay queue: a statement-mirrored write is not idempotent (UPDATE … SET n = n + 1
// applied twice is wrong), so what a crash left unapplied is reported exactly, for repair, rather
// than guessed at. A done record still in the writer's queue when the process is killed is lost
// with it, so recovery can name a write the secondary did apply in the last milliseconds; its line
// says "not confirmed applied", which stays true.
//
// Files: <directory>/async-queue.<n>.jsonl, a new segment once the current one has taken
// segment_bytes. An intent's done is written after it (the caller marks done only what intent()
// accepted), in the same or a later segment, so segments are deleted oldest first, once neither
// they nor any older one holds an intent without its done.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "compare/journal.h"

namespace cutover::compare {

class AsyncWal {
 public:
  struct Mark {
    uint64_t id = 0;
    uint64_t segment = 0;
  };
  struct Recovered {
    std::vector<nlohmann::json> lost;   // intents without a done, oldest first
    size_t segments = 0;                // files read
    size_t intents = 0, dones = 0;      // records read
    size_t bad_lines = 0;               // lines that did not parse (a torn tail after a crash)
  };

  // Reads every segment in `directory` (none: nothing lost). Does not change them.
  static Result<Recovered> recover(const std::string& directory);
  // Deletes every segment in `directory`, once recover()'s findings are journaled.
  static Status removeSegments(const std::string& directory);
  // Starts segment 1 in `directory` (call removeSegments first: ids restart).
  static Result<std::unique_ptr<AsyncWal>> open(std::string directory, uint64_t segment_bytes = 64u << 20);
  ~AsyncWal();
  AsyncWal(const AsyncWal&) = delete;
  AsyncWal& operator=(const AsyncWal&) = delete;

  // Any thread. `on_durable(true)` runs on the writer thread once `record` is fsync'd
  // (false: writing it failed). nullopt: the record was refused (the writer's queue is full):
  // `on_durable` is not called and the write is not protected.
  std::optional<Mark> intent(const nlohmann::json& record, std::function<void(bool durable)> on_durable);
  // Any thread, once per Mark intent() returned: the secondary applied it, or its miss is journaled.
  void done(const Mark& mark);

  uint64_t pending() const;          // intents without their done
  size_t segments() const;           // segment files open
  uint64_t refused() const;          // intents the writer refused

 private:
  struct Segment {
    uint64_t number = 0;
    std::unique_ptr<Journal> journal;
    uint64_t pending = 0;
  };
  AsyncWal(std::string directory, uint64_t segment_bytes) : directory_(std::move(directory)), segment_bytes_(segment_bytes) {}
  Status addSegment(uint64_t number);   // mutex_ held
  Segment& current() { return segments_.back(); }
  void dropFinishedSegments();          // mutex_ held

  const std::string directory_;
  const uint64_t segment_bytes_;
  mutable std::mutex mutex_;
  std::deque<Segment> segments_;   // oldest first; never empty after open
  uint64_t next_id_ = 1;
  uint64_t pending_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace cutover::compare
