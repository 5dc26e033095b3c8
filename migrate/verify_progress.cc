#include "migrate/verify_progress.h"

#include <fmt/format.h>

#include <chrono>

namespace cutover::migrate {

VerifyProgress::VerifyProgress(VerifyJob job, std::ostream& err, bool tty)
    : job_(std::move(job)), err_(err), tty_(tty), thread_([this] { run(); }) {}

VerifyProgress::~VerifyProgress() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void VerifyProgress::run() {
  using Clock = std::chrono::steady_clock;
  const auto period = tty_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5000);
  const auto start = Clock::now();
  int64_t first_done = -1, first_rows = 0;
  bool drew = false;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, period, [this] { return stopping_; })) break;
    }
    auto progress = job_.progress();
    if (!progress) continue;
    if (first_done < 0) {
      first_done = progress->done;
      first_rows = progress->rows_done;
    }
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = static_cast<double>(progress->rows_done - first_rows) / std::max(elapsed, 1e-3);
    const int64_t finished_here = progress->done - first_done;
    std::string eta = "?";
    if (finished_here > 0) {
      const double left = static_cast<double>(progress->chunks - progress->done) * elapsed /
                          static_cast<double>(finished_here);
      eta = fmt::format("{:.0f}s", left);
    }
    const double fraction = progress->chunks > 0 ? static_cast<double>(progress->done) /
                                                       static_cast<double>(progress->chunks)
                                                 : 0.0;
    if (tty_) {
      const int width = 30, filled = static_cast<int>(fraction * width);
      err_ << fmt::format("\r[{}{}] {}/{} chunks, {} rows, {:.0f} rows/s, ETA {}   ",
                          std::string(static_cast<size_t>(filled), '#'),
                          std::string(static_cast<size_t>(width - filled), '.'), progress->done,
                          progress->chunks, progress->rows_done, rate, eta)
           << std::flush;
      drew = true;
    } else {
      err_ << fmt::format("verify {}: {}/{} chunks ({:.0f}%), {} rows, {:.0f} rows/s, ETA {}\n",
                          job_.id(), progress->done, progress->chunks, fraction * 100,
                          progress->rows_done, rate, eta)
           << std::flush;
    }
  }
  if (drew) err_ << "\n" << std::flush;
}

}  // namespace cutover::migrate
