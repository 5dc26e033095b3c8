#pragma once

// Durability of mirrored writes across a crash of the proxy: the write-ahead record of writes one
// store has (or is about to have) that the other may lack if the proxy dies now.
//
// mirror: async — before the authoritative store's COMMIT of a write is sent, the journal line
// that write becomes if it is lost is written here (intent; write(2) before the COMMIT goes, so a
// kill of the process cannot lose it), and the client's answer waits until it is fsync'd too
// (whenDurable: group commit, one fsync for every record written meanwhile). When the secondary
// has applied the write, or its miss went to the divergence journal, or the COMMIT failed, a
// short "done" record follows (written at once, not fsync'd).
// mirror: sync — before the secondary commits its part ahead of the authoritative store (an
// explicit COMMIT, an autocommit write the secondary runs alone), the same kind of intent is
// written (not fsync'd: the answer does not wait), and its done once the authoritative store's
// COMMIT answered. A kill in between leaves a write on one store only: it is reported.
//
// At start-up, recover() returns every intent without a done. The proxy journals them as
// `unclean_stop` divergences before it serves anyone, then removes the files. This is not a
// replay queue: a statement-mirrored write is not idempotent (UPDATE … SET n = n + 1 applied
// twice is wrong), so what a crash left in doubt is reported exactly, for repair, rather than
// guessed at. A done record is written with write(2) but not fsync'd, so a crash of the machine
// (not of the process) can lose it, and recovery then names a write that did reach both stores;
// its line says "not confirmed", which stays true. Intents are written before the store commits,
// so a kill just before that commit names a write neither store has: the line says so too.
//
// Files: <directory>/async-queue.<n>.jsonl, a new segment once the current one has taken
// segment_bytes. An intent's done is written after it (the caller marks done only what
// intentNow() wrote), in the same or a later segment, so segments are deleted oldest first, once
// neither they nor any older one holds an intent without its done.

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

  // Any thread: `record` is in the file when this returns (not yet fsync'd). nullopt: it could
  // not be written (logged); the write goes on unprotected.
  std::optional<Mark> intentNow(const nlohmann::json& record);
  // Any thread: `on_durable` runs on the writer thread once `mark`'s intent is fsync'd (false:
  // fsync failed). False when there is nothing to wait for (its segment is gone: every intent in
  // it is done) or the writer's queue is full: then it is not called.
  bool whenDurable(const Mark& mark, std::function<void(bool durable)> on_durable);
  // Any thread, once per Mark intentNow() returned: the write is on both stores, or its miss is
  // journaled, or it was never committed.
  void done(const Mark& mark);

  uint64_t pending() const;          // intents without their done
  size_t segments() const;           // segment files open
  uint64_t refused() const;          // intents that could not be written

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
