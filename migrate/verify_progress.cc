#include "migrate/verify_progress.h"

#include <fmt/format.h>

#include <chrono>

namespace cutover::migrate {

VerifyProgress::VerifyProgress(VerifyJob job, std::ostream& err, bool tty)
    : job_(std::move(job)), err_(err), tty_(tty) {
  ticker_.emplace(tty ? std::chrono::milliseconds(500) : std::chrono::milliseconds(5000), Ticker::First::AfterPeriod,
                  [this] { report(); });
}

VerifyProgress::~VerifyProgress() {
  ticker_.reset();   // stopped first: no report runs while the bar is finished
  if (drew_) err_ << "\n" << std::flush;
}

void VerifyProgress::report() {
  using Clock = std::chrono::steady_clock;
  auto progress = job_.progress();
  if (!progress) return;
  if (first_done_ < 0) {
    first_done_ = progress->done;
    first_rows_ = progress->rows_done;
  }
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double rate = static_cast<double>(progress->rows_done - first_rows_) / std::max(elapsed, 1e-3);
  const int64_t finished_here = progress->done - first_done_;
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
    drew_ = true;
  } else {
    err_ << fmt::format("verify {}: {}/{} chunks ({:.0f}%), {} rows, {:.0f} rows/s, ETA {}\n",
                        job_.id(), progress->done, progress->chunks, fraction * 100, progress->rows_done,
                        rate, eta)
         << std::flush;
  }
}

}  // namespace cutover::migrate
