#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "compare/compare_rules.h"
#include "compare/result_digest.h"
#include "router/classifier.h"
#include "router/decide.h"

namespace cutover::proxy {

// What a worker's shadow reads may take together: beyond kMaxShadows in flight or kMaxShadowBytes
// of digest samples a shadow is dropped (and counted), never queued. One per worker, worker thread.
class ShadowBudget {
 public:
  static constexpr int kMaxShadows = 256;
  static constexpr size_t kMaxShadowBytes = 64u << 20;
  ShadowBudget(int max_shadows = kMaxShadows, size_t max_bytes = kMaxShadowBytes)
      : max_shadows_(max_shadows), max_bytes_(max_bytes) {}

  bool acquire(size_t bytes) {
    if (shadows_ >= max_shadows_ || bytes_ + bytes > max_bytes_) return false;
    ++shadows_;
    bytes_ += bytes;
    return true;
  }
  void release(size_t bytes) {
    --shadows_;
    bytes_ -= bytes;
  }
  int inFlight() const { return shadows_; }
  size_t bytes() const { return bytes_; }

 private:
  const int max_shadows_;
  const size_t max_bytes_;
  int shadows_ = 0;
  size_t bytes_ = 0;
};

// A shadowed read (issue 5): the serve store's answer streams to the client while it is
// digested; the other store runs the same messages on this session's connection to it, and its
// answer is digested and dropped. Compared once both are complete.
struct ShadowRead {
  uint64_t unit = 0;
  router::Store serve = router::Store::Old;
  std::string text;
  router::StatementInfo info;
  std::vector<std::optional<std::string>> parameters;
  std::vector<int16_t> param_formats, result_formats;
  std::vector<uint32_t> param_types;
  compare::CompareRules rules;                        // before the digesters, which point to it
  std::optional<compare::ResultDigester> old_side, new_side;
  std::chrono::steady_clock::time_point started{};
  double old_ms = 0, new_ms = 0;
  bool serve_done = false, other_done = false;
  bool abandoned = false;                             // the served read was given up: dropped
  std::string spoiled;                                // why it cannot be compared ("" = it can)
  size_t budget = 0;                                  // bytes charged to the worker's shadow budget

  // One result message of `store`'s answer: digested on that side (an ErrorResponse too; COPY
  // output spoils the comparison). Messages that are not part of a result are ignored.
  void digest(router::Store store, char type, std::span<const uint8_t> body);
};

// One session's shadow reads in flight, oldest first, and their lifecycle: started (within the
// session's and the worker's bounds), each side's answer matched to its shadow (each store
// answers the shadows it runs in the order they were sent), finished when both sides are in, or
// given up. Judging a finished shadow (compare, recheck, journal) is the session's
// (client_session_shadow.cc). No sockets: unit-tested alone.
class ShadowReads {
 public:
  static constexpr size_t kMaxPerSession = 8;
  explicit ShadowReads(ShadowBudget& budget) : budget_(budget) {}
  ~ShadowReads() { dropAll(); }
  ShadowReads(const ShadowReads&) = delete;
  ShadowReads& operator=(const ShadowReads&) = delete;

  // Takes `shadow` (its digesters made, `budget` set) in flight, or drops it — counted as
  // dropped — beyond kMaxPerSession or the worker's budget. True when it is in flight.
  bool start(std::shared_ptr<ShadowRead> shadow);
  // The shadow that `store`'s next result messages belong to: the serve side of the newest
  // (units run one at a time), or the oldest whose other side is pending. Null if none.
  ShadowRead* sideFor(router::Store store, bool serve_side) const;
  // `store`'s side of its current shadow ended (its ReadyForQuery): the shadow, once both of its
  // sides are in, leaves the flight and is returned to be judged (its budget given back).
  std::shared_ptr<ShadowRead> sideDone(router::Store store, bool serve_side);
  // The served read of `unit` was given up (its served side will not be digested): returned
  // once its other side is in, marked abandoned (judging it only counts it dropped).
  std::shared_ptr<ShadowRead> abandon(uint64_t unit);
  // The shadow of `unit`, not sent yet (the unit turned out to be a write): dropped, counted.
  void cancel(uint64_t unit);
  // Every shadow in flight dropped, counted (a store lost, the session closed). How many.
  size_t dropAll();
  size_t inFlight() const { return shadows_.size(); }

 private:
  std::shared_ptr<ShadowRead> leave(std::deque<std::shared_ptr<ShadowRead>>::iterator it);

  ShadowBudget& budget_;
  std::deque<std::shared_ptr<ShadowRead>> shadows_;
};

}  // namespace cutover::proxy
