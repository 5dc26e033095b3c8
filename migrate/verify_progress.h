#pragma once

// verify's progress output: on a terminal a bar redrawn twice a second with rows/s and ETA; on
// anything else a log line every few seconds. Reads the job's progress from the control
// database, so it counts the chunks of every process sharing the job.

#include <chrono>
#include <cstdint>
#include <optional>
#include <ostream>

#include "common/ticker.h"
#include "config/config.h"
#include "migrate/verify_job.h"

namespace cutover::migrate {

class VerifyProgress {
 public:
  // Starts the reporting thread; `job` is a connection of its own.
  VerifyProgress(VerifyJob job, std::ostream& err, bool tty);
  ~VerifyProgress();  // stops and joins; a bar is finished with a newline

 private:
  void report();

  VerifyJob job_;
  std::ostream& err_;
  bool tty_;
  const std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  int64_t first_done_ = -1, first_rows_ = 0;   // the job's progress at the first report
  bool drew_ = false;
  std::optional<Ticker> ticker_;   // last: its thread reads the members above
};

}  // namespace cutover::migrate
