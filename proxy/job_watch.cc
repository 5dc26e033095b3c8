#include "proxy/job_watch.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/metrics.h"

namespace cutover::proxy {

JobWatch::JobWatch(config::ControlConfig control, std::chrono::milliseconds period,
                   std::chrono::milliseconds deadline)
    : control_(std::move(control)), period_(period), deadline_(deadline) {
  ticker_.emplace(period_, Ticker::First::Now, [this] { poll(); });
}

JobWatch::~JobWatch() { ticker_.reset(); }

JobsView JobWatch::current() const {
  std::lock_guard lock(view_mutex_);
  return view_;
}

JobsView JobWatch::refresh() {
  JobsView view;
  {
    std::lock_guard lock(read_mutex_);
    view = read();
  }
  {
    std::lock_guard lock(view_mutex_);
    view_ = view;
  }
  return view;
}

std::string JobWatch::where() const {
  return fmt::format("{}:{}/{}", control_.host, control_.port, control_.database);
}

JobsView JobWatch::read() {
  JobsView view;
  view.read_at = std::chrono::steady_clock::now();
  const pgclient::Deadline deadline = view.read_at + deadline_;
  if (!conn_.isOpen()) {
    auto conn = migrate::connectControl(control_, "cutover-proxy-jobs", deadline);
    if (!conn) {
      view.error = conn.status().message();
      return view;
    }
    conn_ = std::move(conn.value());
  }
  auto recent = migrate::VerifyJob::recent(conn_, kRecent, deadline);
  if (!recent) {
    view.error = recent.status().message();
    return view;
  }
  auto latest = migrate::VerifyJob::latest(conn_, deadline);
  if (!latest) {
    view.error = latest.status().message();
    return view;
  }
  view.read = true;
  view.recent = std::move(recent.value());
  view.latest = std::move(latest.value());
  publishMetrics(view);
  return view;
}

void JobWatch::publishMetrics(const JobsView& view) {
  auto& registry = metrics::global();
  using metrics::ChunkStateLabel;
  using metrics::JobLabel;
  const migrate::VerifyJobState none;
  const migrate::VerifyJobState& job = view.latest ? *view.latest : none;
  registry.jobChunks(JobLabel::Verify, ChunkStateLabel::Pending).Set(static_cast<double>(job.pending));
  registry.jobChunks(JobLabel::Verify, ChunkStateLabel::Leased).Set(static_cast<double>(job.leased));
  registry.jobChunks(JobLabel::Verify, ChunkStateLabel::Done).Set(static_cast<double>(job.done));
  // A counter across jobs: the rows the newest job verified since the last poll (all of them
  // when it is a job not seen before).
  if (view.latest) {
    int64_t before = 0;
    if (counted_ && counted_->id == job.id) before = counted_->rows_done;
    if (job.rows_done > before) {
      registry.jobRows(JobLabel::Verify).Increment(static_cast<double>(job.rows_done - before));
    }
    counted_ = job;
  }
}

void JobWatch::poll() {
  JobsView view = refresh();
  if (!view.read && view.error != last_error_) {
    log::warn("jobs: cannot read the verify state from the control database: {}; /status shows it, retrying "
              "every {} s",
              view.error, period_.count() / 1000);
  } else if (view.read && !last_error_.empty()) {
    log::info("jobs: the control database answers again");
  }
  last_error_ = view.read ? "" : view.error;
}

}  // namespace cutover::proxy
