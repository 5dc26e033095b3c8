#pragma once

// An append-only, fsync'd JSON-lines file (divergences.jsonl, later mismatches.jsonl).
//
// Workers call append() and never touch the disk: a dedicated writer thread takes everything
// queued, writes it with one write(2), fsyncs once (group commit), and only then runs each
// record's callback. Memory is bounded: records and bytes accepted but not yet written and
// called back count against the limits, and append() refuses beyond them.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"

namespace cutover::compare {

class Journal {
 public:
  // Creates `directory` (and its parents, mode 0750) when missing and opens
  // <directory>/<file_name> with O_APPEND|O_CLOEXEC, mode 0640. A torn last line a crash left
  // (never reported durable) is cut off so the file stays valid JSONL.
  static Result<std::unique_ptr<Journal>> open(const std::string& directory,
                                               const std::string& file_name,
                                               size_t max_queued_records = 10000,
                                               size_t max_queued_bytes = 64u << 20);
  // Writes, fsyncs and calls back everything queued, then joins the writer thread.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Any thread; never blocks on the disk. False when the queue is full (or the journal is
  // closing): the record is not kept, dropped() counts it, and `on_durable` is not called.
  // Otherwise `on_durable(true)` runs on the writer thread once the record is fsync'd, or
  // `on_durable(false)` if writing or fsyncing it failed (disk full...; logged once a minute).
  // Callbacks run in append order and must not block for long: the next batch waits for them.
  bool append(nlohmann::json record, std::function<void(bool durable)> on_durable = {});

  // Any thread: writes `line` (one serialised JSON record, without its '\n') to the file before
  // it returns (write(2), no fsync): it survives the process being killed, and is fsync'd with
  // the writer's next batch (barrier() asks for one). False when writing failed (logged like the
  // writer's errors).
  bool writeLineNow(std::string line);
  // Any thread: `on_durable` runs on the writer thread once everything written or queued before
  // it is fsync'd. False when the queue is full or closing (then it is not called).
  bool barrier(std::function<void(bool durable)> on_durable);

  uint64_t written() const { return written_.load(std::memory_order_relaxed); }  // fsync'd
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }  // refused
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }    // I/O error
  uint64_t fsyncs() const { return fsyncs_.load(std::memory_order_relaxed); }
  // Bytes of every record append() accepted since open (written or still queued).
  uint64_t bytesAccepted() const { return accepted_bytes_.load(std::memory_order_relaxed); }

  // The last `limit` records in the file, oldest first (lines that do not parse are skipped).
  // Reads the file, so records still queued are not included. Any thread.
  std::vector<nlohmann::json> tail(size_t limit) const { return tailFile(path_, limit); }
  // The same for any JSON-lines file; a missing file has no records.
  static std::vector<nlohmann::json> tailFile(const std::string& path, size_t limit);

  const std::string& path() const { return path_; }

 private:
  struct Pending {
    std::string line;  // serialised record with its '\n'
    std::function<void(bool)> on_durable;
  };

  Journal(std::string path, int fd, uint64_t size, size_t max_records, size_t max_bytes);
  void run();  // the writer thread
  bool writeAndSync(const std::string& bytes);
  bool writeWhole(const std::string& bytes);   // write_mutex_ held
  void reportError(std::string_view what, int err);

  const std::string path_;
  const int fd_;
  const size_t max_records_, max_bytes_;
  std::mutex write_mutex_;   // one write(2) of the writer or of writeNow() at a time
  uint64_t size_;           // file size after the last complete write; guarded by write_mutex_

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Pending> queue_;  // guarded by mutex_
  size_t held_records_ = 0;    // queued + being written; guarded by mutex_
  size_t held_bytes_ = 0;      // guarded by mutex_
  bool closing_ = false;       // guarded by mutex_

  std::atomic<uint64_t> written_{0}, dropped_{0}, failed_{0}, fsyncs_{0}, accepted_bytes_{0};

  // Error logging at most once a minute; guarded by error_mutex_ (writeNow reports too).
  std::chrono::steady_clock::time_point last_error_log_{};
  uint64_t errors_since_log_ = 0;
  std::mutex error_mutex_;

  std::thread writer_;  // last: starts after every member above is initialised
};

}  // namespace cutover::compare
