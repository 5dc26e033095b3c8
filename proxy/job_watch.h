#pragma once

// What the jobs around the proxy (DESIGN.md "Jobs around the proxy") left in the control
// database, as the proxy shows it: the last verifies and the newest verify job's chunks, for
// GET /status, `cutover ctl status`, the job_* metrics and the read-ramp gate.
//
// Threads: one thread of its own polls every `period` on its own connection (every query has a
// deadline, so a control database that hangs delays only this thread); refresh() reads at once
// on the caller's thread (the admin thread, for the gate). Both share the connection under a
// mutex.

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/ticker.h"

#include "config/config.h"
#include "migrate/verify_job.h"
#include "pgclient/connection.h"

namespace cutover::proxy {

struct JobsView {
  bool read = false;      // the control database answered (this time)
  std::string error;      // why not, when !read
  std::vector<migrate::LastVerify> recent;     // finished verifies, newest first
  std::optional<migrate::VerifyJobState> latest;
  std::chrono::steady_clock::time_point read_at;
};

class JobWatch {
 public:
  static constexpr int kRecent = 20;   // finished verifies the gate can look back over

  JobWatch(config::ControlConfig control, std::chrono::milliseconds period,
           std::chrono::milliseconds deadline);
  ~JobWatch();
  JobWatch(const JobWatch&) = delete;
  JobWatch& operator=(const JobWatch&) = delete;

  // The last poll's view (any thread); ages in it are as of its read_at.
  JobsView current() const;
  // Reads now, within the deadline, and returns that view (also kept as current()).
  JobsView refresh();

  // "host:port/db" of the control database, for messages.
  std::string where() const;

 private:
  void poll();
  JobsView read();              // under read_mutex_
  void publishMetrics(const JobsView& view);

  const config::ControlConfig control_;
  const std::chrono::milliseconds period_, deadline_;

  std::mutex read_mutex_;       // the connection, and one read at a time
  pgclient::Connection conn_;
  std::optional<migrate::VerifyJobState> counted_;   // metrics: the job rows_total was counted for

  mutable std::mutex view_mutex_;
  JobsView view_;

  std::string last_error_;      // the poller's: logged when it changes
  std::optional<Ticker> ticker_;   // last: its thread uses everything above
};

}  // namespace cutover::proxy
