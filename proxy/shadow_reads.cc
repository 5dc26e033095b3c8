#include "proxy/shadow_reads.h"

#include <algorithm>

#include "common/metrics.h"
#include "protocol/messages.h"

namespace cutover::proxy {
namespace {

using router::Store;

void countDropped() { metrics::global().shadowComparisons(metrics::ShadowResult::Dropped).Increment(); }

}  // namespace

void ShadowRead::digest(Store store, char type, std::span<const uint8_t> body) {
  if (!spoiled.empty()) return;
  compare::ResultDigester& d = store == Store::Old ? *old_side : *new_side;
  switch (type) {
    case protocol::RowDescription::kType:
      d.onRowDescription(body, result_formats);
      break;
    case protocol::DataRow::kType:
      d.onDataRow(body);
      break;
    case protocol::CommandComplete::kType:
      d.onCommandComplete(body);
      break;
    case protocol::EmptyQueryResponse::kType:
      d.onEmptyQueryResponse();
      break;
    case protocol::ErrorResponse::kType:
      d.onError(body);
      break;
    case protocol::CopyOutResponse::kType:
    case protocol::CopyBothResponse::kType:
      spoiled = "COPY output is not compared";
      break;
    default:
      break;   // ParseComplete, BindComplete, NoData, notices...: not part of the result
  }
}

bool ShadowReads::start(std::shared_ptr<ShadowRead> shadow) {
  if (shadows_.size() >= kMaxPerSession || !budget_.acquire(shadow->budget)) {
    countDropped();
    return false;
  }
  shadows_.push_back(std::move(shadow));
  return true;
}

ShadowRead* ShadowReads::sideFor(Store store, bool serve_side) const {
  if (serve_side) {
    if (shadows_.empty() || shadows_.back()->serve_done || shadows_.back()->serve != store) return nullptr;
    return shadows_.back().get();
  }
  for (const auto& s : shadows_) {
    if (!s->other_done && s->serve != store) return s.get();
  }
  return nullptr;
}

std::shared_ptr<ShadowRead> ShadowReads::leave(std::deque<std::shared_ptr<ShadowRead>>::iterator it) {
  std::shared_ptr<ShadowRead> done = std::move(*it);
  shadows_.erase(it);
  budget_.release(done->budget);
  return done;
}

std::shared_ptr<ShadowRead> ShadowReads::sideDone(Store store, bool serve_side) {
  ShadowRead* shadow = sideFor(store, serve_side);
  if (shadow == nullptr) return nullptr;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - shadow->started).count();
  (store == Store::Old ? shadow->old_ms : shadow->new_ms) = seconds * 1000;
  metrics::global().shadowDuration(store == Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).observe(seconds);
  (serve_side ? shadow->serve_done : shadow->other_done) = true;
  if (!shadow->serve_done || !shadow->other_done) return nullptr;
  return leave(std::find_if(shadows_.begin(), shadows_.end(), [shadow](const auto& s) { return s.get() == shadow; }));
}

std::shared_ptr<ShadowRead> ShadowReads::abandon(uint64_t unit) {
  auto it = std::find_if(shadows_.begin(), shadows_.end(), [unit](const auto& s) { return s->unit == unit; });
  if (it == shadows_.end()) return nullptr;
  ShadowRead& s = **it;
  s.abandoned = true;
  s.serve_done = true;   // nothing more comes for its served side; the other side finishes it
  return s.other_done ? leave(it) : nullptr;
}

void ShadowReads::cancel(uint64_t unit) {
  auto it = std::find_if(shadows_.begin(), shadows_.end(), [unit](const auto& s) { return s->unit == unit; });
  if (it == shadows_.end()) return;
  leave(it);
  countDropped();
}

size_t ShadowReads::dropAll() {
  const size_t dropped = shadows_.size();
  while (!shadows_.empty()) {
    leave(shadows_.begin());
    countDropped();
  }
  return dropped;
}

}  // namespace cutover::proxy
