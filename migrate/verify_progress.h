#pragma once

// verify's progress output: on a terminal a bar redrawn twice a second with rows/s and ETA; on
// anything else a log line every few seconds. Reads the job's progress from the control
// database, so it counts the chunks of every process sharing the job.

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <ostream>
#include <thread>

#include "config/config.h"
#include "migrate/verify_job.h"

namespace cutover::migrate {

class VerifyProgress {
 public:
  // Starts the reporting thread; `job` is a connection of its own.
  VerifyProgress(VerifyJob job, std::ostream& err, bool tty);
  ~VerifyProgress();  // stops and joins; a bar is finished with a newline

 private:
  void run();

  VerifyJob job_;
  std::ostream& err_;
  bool tty_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace cutover::migrate
