#pragma once

// Process metrics (DESIGN.md "Metrics"), exported in the Prometheus text format at the admin
// server's /metrics.
//
// Every metric is declared once in the X-macro lists below; the Registry turns each entry into a
// prometheus-cpp family (or, for histograms, a WorkerHistogram family) and pre-creates every
// label combination at construction, so a scrape shows a zero series for each combination before
// any traffic and no label value ever comes from user input.
//
// Data-path cost and locking (STYLE.md "Threads": no locks shared between workers):
// - Counters and gauges are prometheus-cpp's: a std::atomic<double> updated with a CAS loop — no
//   lock; workers touching the same series share a cache line, nothing more.
// - prometheus-cpp 1.0's Histogram::Observe takes a std::mutex per series, so latency histograms
//   are not prometheus-cpp histograms: each thread that observes gets its own WorkerHistogram
//   (single writer, relaxed atomics, no lock-prefixed instruction), and serialize() sums the
//   workers' histograms at scrape time.

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace cutover::metrics {

// ---- Label values (bounded: every value is listed here) ----

enum class StoreLabel { Old, New };
enum class StatementKindLabel { Read, Write, Ddl, Transaction, Session };
enum class MirrorResult { Ok, Error, Diverged, Dropped, Nondeterministic };
enum class ShadowResult { Match, Mismatch, Transient, Error, Dropped, Noisy };
enum class RollbackTrigger { Manual, Auto };
enum class JobLabel { Backfill, Verify, Repair };
enum class ChunkStateLabel { Pending, Leased, Done };
// compare/divergence.h divergence_kind, in the same spelling.
enum class DivergenceKindLabel {
  TagMismatch, ErrorOneSide, ReturningMismatch, SecondaryUnavailable, SecondaryTimeout, QueueFull, Nondeterministic,
  UncleanStop
};

// The exported value of each enumerator, in enumerator order.
template <typename Enum>
struct LabelValues;
template <>
struct LabelValues<StoreLabel> {
  static constexpr std::array<std::string_view, 2> kValues{"old", "new"};
};
template <>
struct LabelValues<StatementKindLabel> {
  static constexpr std::array<std::string_view, 5> kValues{"read", "write", "ddl", "transaction",
                                                           "session"};
};
template <>
struct LabelValues<MirrorResult> {
  static constexpr std::array<std::string_view, 5> kValues{"ok", "error", "diverged", "dropped",
                                                           "nondeterministic"};
};
template <>
struct LabelValues<ShadowResult> {
  static constexpr std::array<std::string_view, 6> kValues{"match", "mismatch", "transient",
                                                           "error", "dropped", "noisy"};
};
template <>
struct LabelValues<RollbackTrigger> {
  static constexpr std::array<std::string_view, 2> kValues{"manual", "auto"};
};

template <>
struct LabelValues<JobLabel> {
  static constexpr std::array<std::string_view, 3> kValues{"backfill", "verify", "repair"};
};
template <>
struct LabelValues<ChunkStateLabel> {
  static constexpr std::array<std::string_view, 3> kValues{"pending", "leased", "done"};
};

template <>
struct LabelValues<DivergenceKindLabel> {
  static constexpr std::array<std::string_view, 8> kValues{
      "tag_mismatch", "error_one_side", "returning_mismatch", "secondary_unavailable", "secondary_timeout",
      "queue_full", "nondeterministic", "unclean_stop"};
};

template <typename Enum>
constexpr std::string_view toString(Enum value) {
  return LabelValues<Enum>::kValues[static_cast<size_t>(value)];
}

// ---- Label dimensions: an enum and the label name it is exported under ----

struct Store {
  using Enum = StoreLabel;
  static constexpr std::string_view kName = "store";
};
struct ServedBy {
  using Enum = StoreLabel;
  static constexpr std::string_view kName = "served_by";
};
struct Kind {
  using Enum = StatementKindLabel;
  static constexpr std::string_view kName = "kind";
};
struct MirrorOutcome {
  using Enum = MirrorResult;
  static constexpr std::string_view kName = "result";
};
struct ShadowOutcome {
  using Enum = ShadowResult;
  static constexpr std::string_view kName = "result";
};
struct Trigger {
  using Enum = RollbackTrigger;
  static constexpr std::string_view kName = "trigger";
};
struct Job {
  using Enum = JobLabel;
  static constexpr std::string_view kName = "job";
};
struct ChunkState {
  using Enum = ChunkStateLabel;
  static constexpr std::string_view kName = "state";
};
struct DivergenceKind {
  using Enum = DivergenceKindLabel;
  static constexpr std::string_view kName = "kind";
};

// ---- The metric lists: X(name without the cutover_ prefix, accessor, help, dimensions...) ----

#define CUTOVER_COUNTERS(X)                                                                     \
  X(statements_total, statements, "Statements handled, by kind and the store that served them", \
    Kind, ServedBy)                                                                             \
  X(mirror_writes_total, mirrorWrites,                                                          \
    "Writes mirrored to the secondary store, by outcome", MirrorOutcome)                        \
  X(divergences_total, divergences,                                                             \
    "Divergences journaled, by kind: mirrored writes whose outcome differed between the stores, "  \
    "writes the secondary missed, and writes mirrored as their text whose values the stores "     \
    "picked themselves (nondeterministic)", DivergenceKind)                                     \
  X(shadow_comparisons_total, shadowComparisons,                                                \
    "Shadow reads compared against the authoritative result, by outcome", ShadowOutcome)        \
  X(flag_changes_total, flagChanges, "Flag snapshots published")                                \
  X(rollbacks_total, rollbacks, "Rollbacks to the old store, by trigger", Trigger)              \
  X(read_fallbacks_total, readFallbacks,                                                        \
    "Ramped reads served by the authoritative store instead: the store they were meant for was "  \
    "down, or did not answer within ramp_read_timeout_ms")                                      \
  X(store_errors_total, storeErrors,                                                            \
    "Errors a store returned that the other did not (mirrored work), or on reads it served "    \
    "alone", Store)                                                                             \
  X(job_rows_total, jobRows,                                                                    \
    "Rows the jobs around the proxy checked or copied, as read from the control database "      \
    "(the newest job of each kind)", Job)

#define CUTOVER_GAUGES(X)                                                                    \
  X(client_connections, clientConnections, "Client connections open")                        \
  X(backend_connections, backendConnections, "Backend connections open, by store", Store)    \
  X(flags_version, flagsVersion, "Version of the flag snapshot in force")                    \
  X(reads_new_percent, readsNewPercent, "Percentage of reads routed to the new store")       \
  X(store_up, storeUp, "1 when the store answered its last health check, else 0", Store)    \
  X(flag_store_up, flagStoreUp,                                                              \
    "1 while the fleet flag store (flags.store: postgres) is connected to its control "      \
    "database, else 0")                                                                     \
  X(mirror_queue_units, mirrorQueueUnits,                                                    \
    "mirror: async: writes (statements or whole transactions) acknowledged to clients and "  \
    "not yet applied on the secondary store, all sessions")                                 \
  X(job_chunks, jobChunks,                                                                   \
    "Chunks of the newest job of each kind in the control database, by state (an expired "   \
    "lease counts as pending)", Job, ChunkState)

#define CUTOVER_HISTOGRAMS(X)                                                                  \
  X(statement_duration_seconds, statementDuration,                                             \
    "Statement latency in seconds, from the statement's arrival to its last result byte", Store) \
  X(shadow_duration_seconds, shadowDuration,                                                    \
    "Shadowed reads: each store's time to its complete result, in seconds", Store)

// ---- WorkerHistogram ----

// Latency bucket upper bounds in seconds: 50 us ... 10 s (+Inf is implicit).
inline constexpr std::array<double, 17> kLatencyBuckets{
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
    0.05,    0.1,    0.25,    0.5,    1.0,   2.5,    5.0,   10.0};

// A histogram written by exactly one thread and read by the scraper. Updates are relaxed
// load+store pairs (no read-modify-write, so no lock prefix); the scraper may see a sample in a
// bucket before it sees it in the count or sum, which Prometheus tolerates.
class WorkerHistogram {
 public:
  static constexpr size_t kBuckets = kLatencyBuckets.size() + 1;  // last = +Inf

  void observe(double seconds) {
    size_t i = 0;
    while (i < kLatencyBuckets.size() && seconds > kLatencyBuckets[i]) ++i;
    bump(counts_[i]);
    bump(count_);
    sum_.store(sum_.load(std::memory_order_relaxed) + seconds, std::memory_order_relaxed);
  }

  // Adds this histogram into `into` (non-cumulative counts per bucket). Any thread.
  struct Snapshot {
    std::array<uint64_t, kBuckets> counts{};
    uint64_t count = 0;
    double sum = 0;
  };
  void addTo(Snapshot& into) const;

 private:
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  std::array<std::atomic<uint64_t>, kBuckets> counts_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// ---- Series: the pre-created series of one family, indexed by label enums ----

template <typename Metric, typename... Dims>
class Series {
 public:
  static constexpr size_t kSize = (LabelValues<typename Dims::Enum>::kValues.size() * ... * 1);

  Metric& at(typename Dims::Enum... values) const { return *series_[index(values...)]; }

  // Calls fn(flat index, labels) for every label combination.
  template <typename Fn>
  static void forEachCombination(Fn&& fn) {
    for (size_t flat = 0; flat < kSize; ++flat) {
      std::map<std::string, std::string> labels;
      size_t rest = flat;
      // Mixed radix, last dimension fastest (matches index()).
      size_t stride = kSize;
      ((stride /= LabelValues<typename Dims::Enum>::kValues.size(),
        labels.emplace(std::string(Dims::kName),
                       std::string(LabelValues<typename Dims::Enum>::kValues[rest / stride])),
        rest %= stride),
       ...);
      fn(flat, labels);
    }
  }

  void set(size_t flat, Metric* metric) { series_[flat] = metric; }

 private:
  static size_t index(typename Dims::Enum... values) {
    size_t flat = 0;
    ((flat = flat * LabelValues<typename Dims::Enum>::kValues.size() + static_cast<size_t>(values)),
     ...);
    return flat;
  }
  std::array<Metric*, kSize> series_{};
};

// A histogram family: per label combination, one WorkerHistogram per observing thread.
template <typename... Dims>
class WorkerHistogramSeries {
 public:
  static constexpr size_t kSize = Series<WorkerHistogram, Dims...>::kSize;

  WorkerHistogramSeries() : id_(nextId()) {}

  // The calling thread's histogram for these labels; created on the thread's first call (one
  // short lock), then found through a thread_local cache without a lock.
  WorkerHistogram& at(typename Dims::Enum... values) {
    return threadSlots()[index(values...)];
  }

  // Every thread's histogram for one label combination, summed. Any thread.
  WorkerHistogram::Snapshot sum(size_t flat) const {
    WorkerHistogram::Snapshot out;
    std::lock_guard lock(mutex_);
    for (const auto& slots : workers_) (*slots)[flat].addTo(out);
    return out;
  }

 private:
  using Slots = std::array<WorkerHistogram, kSize>;

  static uint64_t nextId() {
    static std::atomic<uint64_t> next{1};
    return next.fetch_add(1);
  }
  static size_t index(typename Dims::Enum... values) {
    size_t flat = 0;
    ((flat = flat * LabelValues<typename Dims::Enum>::kValues.size() + static_cast<size_t>(values)),
     ...);
    return flat;
  }
  Slots& threadSlots() {
    // A few (series id -> slots) entries per thread. Keyed by a process-unique id, not the
    // address, so a series destroyed and another built at the same address (tests) never reuses
    // a stale entry.
    struct Entry {
      uint64_t id = 0;
      Slots* slots = nullptr;
    };
    thread_local std::array<Entry, 4> cache{};
    thread_local size_t next_victim = 0;
    for (const Entry& e : cache) {
      if (e.id == id_) return *e.slots;
    }
    std::lock_guard lock(mutex_);
    auto& slots = by_thread_[std::this_thread::get_id()];
    if (!slots) {
      workers_.push_back(std::make_unique<Slots>());
      slots = workers_.back().get();
    }
    cache[next_victim] = Entry{id_, slots};
    next_victim = (next_victim + 1) % cache.size();
    return *slots;
  }

  const uint64_t id_;
  mutable std::mutex mutex_;  // guards workers_ and by_thread_; never taken on a cache hit
  // Kept after their thread exits, so their samples stay in the totals.
  std::vector<std::unique_ptr<Slots>> workers_;
  std::map<std::thread::id, Slots*> by_thread_;
};

// ---- Registry ----

// One per process (see global()); tests build their own. Not copyable or movable: the handles
// it returns point into it and stay valid for its lifetime.
//
// Accessors, one per metric, generated from the lists above:
//   prometheus::Counter& statements(StatementKindLabel kind, StoreLabel served_by);
//   prometheus::Counter& mirrorWrites(MirrorResult);     divergences(DivergenceKindLabel);
//   prometheus::Counter& shadowComparisons(ShadowResult); flagChanges();
//   prometheus::Counter& rollbacks(RollbackTrigger);      readFallbacks();
//   prometheus::Gauge& clientConnections();  backendConnections(StoreLabel);  flagsVersion();
//   prometheus::Gauge& readsNewPercent();    storeUp(StoreLabel);  flagStoreUp();
//   WorkerHistogram& statementDuration(StoreLabel);   // the CALLING THREAD's histogram: keep the
//                                                     // reference on that thread (single writer)
// Counters and gauges may be cached by any thread and updated from any thread.
class Registry {
 public:
  Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Prometheus text exposition format 0.0.4.
  std::string serialize() const;

#define CUTOVER_COUNTER_ACCESSOR(name, accessor, help, ...) \
  prometheus::Counter& accessor(auto... labels) { return name##_.at(labels...); }
#define CUTOVER_GAUGE_ACCESSOR(name, accessor, help, ...) \
  prometheus::Gauge& accessor(auto... labels) { return name##_.at(labels...); }
#define CUTOVER_HISTOGRAM_ACCESSOR(name, accessor, help, ...) \
  WorkerHistogram& accessor(auto... labels) { return name##_.at(labels...); }
  CUTOVER_COUNTERS(CUTOVER_COUNTER_ACCESSOR)
  CUTOVER_GAUGES(CUTOVER_GAUGE_ACCESSOR)
  CUTOVER_HISTOGRAMS(CUTOVER_HISTOGRAM_ACCESSOR)
  // cutover_divergences_total over every kind.
  double divergencesTotal() {
    double total = 0;
    for (size_t k = 0; k < LabelValues<DivergenceKindLabel>::kValues.size(); ++k) {
      total += divergences(static_cast<DivergenceKindLabel>(k)).Value();
    }
    return total;
  }
  // statement_duration_seconds{store} of every thread, summed (auto-rollback). Any thread.
  WorkerHistogram::Snapshot statementDurationTotal(StoreLabel store) const {
    return statement_duration_seconds_.sum(static_cast<size_t>(store));
  }
#undef CUTOVER_COUNTER_ACCESSOR
#undef CUTOVER_GAUGE_ACCESSOR
#undef CUTOVER_HISTOGRAM_ACCESSOR

 private:
  std::vector<prometheus::MetricFamily> collectHistograms() const;

  std::shared_ptr<prometheus::Registry> registry_;
#define CUTOVER_COUNTER_MEMBER(name, accessor, help, ...) \
  Series<prometheus::Counter __VA_OPT__(, ) __VA_ARGS__> name##_;
#define CUTOVER_GAUGE_MEMBER(name, accessor, help, ...) \
  Series<prometheus::Gauge __VA_OPT__(, ) __VA_ARGS__> name##_;
#define CUTOVER_HISTOGRAM_MEMBER(name, accessor, help, ...) \
  WorkerHistogramSeries<__VA_ARGS__> name##_;
  CUTOVER_COUNTERS(CUTOVER_COUNTER_MEMBER)
  CUTOVER_GAUGES(CUTOVER_GAUGE_MEMBER)
  CUTOVER_HISTOGRAMS(CUTOVER_HISTOGRAM_MEMBER)
#undef CUTOVER_COUNTER_MEMBER
#undef CUTOVER_GAUGE_MEMBER
#undef CUTOVER_HISTOGRAM_MEMBER
};

// The process's registry, built on first use (thread-safe). Production code reports here;
// main.cc serves global().serialize() at /metrics.
Registry& global();

}  // namespace cutover::metrics
