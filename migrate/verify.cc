#include "migrate/verify.h"

#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <ctime>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <thread>

#include "config/config.h"
#include "migrate/store_pair.h"
#include "migrate/table_schema.h"
#include "migrate/verify_chunk.h"
#include "migrate/verify_job.h"
#include "migrate/verify_progress.h"
#include "migrate/verify_report.h"
#include "pgclient/conninfo.h"

namespace cutover::migrate {
namespace {

using Clock = std::chrono::steady_clock;

std::string newJobId() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  return fmt::format("verify-{}-{}", stamp, ::getpid());
}

// Lease owners are "host:pid:worker"; this process's leases are those starting with "host:pid:".
std::string ownerPrefix() {
  char host[256] = "host";
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{}:{}:", host, ::getpid());
}

std::string ownerName(int worker) { return fmt::format("{}{}", ownerPrefix(), worker); }

// SIGINT/SIGTERM: the main thread returns this process's chunks to pending and exits 2. The
// handler is reset once it has run, so a second Ctrl-C ends the process at once.
volatile std::sig_atomic_t g_interrupt = 0;

extern "C" void onInterrupt(int signal_number) { g_interrupt = signal_number; }

void catchInterrupts() {
  struct sigaction action {};
  action.sa_handler = onInterrupt;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, nullptr);
  ::sigaction(SIGTERM, &action, nullptr);
}

nlohmann::json schemaJson(const std::vector<SchemaDifference>& differences) {
  nlohmann::json out = nlohmann::json::array();
  for (const SchemaDifference& d : differences) {
    out.push_back({{"table", d.table}, {"column", d.column}, {"what", d.what}});
  }
  return out;
}

// The chunks of a new job: key ranges of chunk_rows keys (ends read from old), a multiset chunk
// for a table without key, a sample and an aggregates chunk per table, one chunk per check.
Result<JobPlan> planJob(const VerifyPlan& plan, const config::Config& config, int64_t chunk_rows,
                        int64_t sample, bool filtered, StorePair& stores) {
  JobPlan job;
  job.schema_differences = schemaJson(plan.schema);
  job.filtered = filtered;
  for (const TablePlan& table : plan.tables) {
    const std::string name = table.table.qualified();
    job.tables.push_back(name);
    if (!table.hasKey()) {
      job.chunks.push_back({name, 0, ChunkKind::Multiset, {}});
    } else {
      auto ends = stores.one(true, boundariesSql(table, {}, static_cast<long>(chunk_rows)));
      if (!ends) return ends.status();
      std::optional<KeyValues> lo;
      int chunk = 0;
      for (int r = 0; r < ends->rows(); ++r) {
        KeyValues key;
        for (int c = 0; c < ends->columns(); ++c) key.emplace_back(ends->value(r, c));
        job.chunks.push_back({name, chunk++, ChunkKind::Range, {lo, key}});
        lo = std::move(key);
      }
      job.chunks.push_back({name, chunk, ChunkKind::Range, {lo, std::nullopt}});
      if (sample > 0) job.chunks.push_back({name, kSampleChunk, ChunkKind::Sample, {}});
    }
    job.chunks.push_back({name, kAggregatesChunk, ChunkKind::Aggregates, {}});
  }
  for (const config::VerifyCheck& check : config.verify.checks) {
    job.chunks.push_back({std::string(kCheckPrefix) + check.name, 0, ChunkKind::Check, {}});
  }
  return job;
}

// Shared by the worker threads: the first error stops them all; rows feed the throttle. A worker
// claims under `claiming` (shared), so once the main thread has taken it exclusively with `stop`
// set, no chunk can be claimed behind its back while it releases this process's leases.
struct Shared {
  std::mutex mutex;
  std::optional<Status> error;
  std::atomic<bool> stop{false};
  std::atomic<int> finished{0};  // workers that returned
  std::shared_mutex claiming;
  std::atomic<int64_t> rows{0};
  Clock::time_point start = Clock::now();

  void fail(Status status) {
    std::lock_guard lock(mutex);
    if (!error) error = std::move(status);
    stop = true;
  }
};

// --max-rows-per-sec: sleeps while this process has read more rows than the rate allows.
void throttle(Shared& shared, double max_rows_per_sec) {
  if (max_rows_per_sec <= 0) return;
  for (;;) {
    const double allowed =
        std::chrono::duration<double>(Clock::now() - shared.start).count() * max_rows_per_sec;
    const double over = static_cast<double>(shared.rows.load()) - allowed;
    if (over <= 0 || shared.stop) return;
    std::this_thread::sleep_for(std::chrono::duration<double>(std::min(over / max_rows_per_sec, 0.5)));
  }
}

void work(int worker, const VerifyOptions& options, const config::Config& config,
          const std::vector<TablePlan>& tables, const std::string& job_id, Shared& shared) {
  auto job = VerifyJob::open(pgclient::controlFor(config), job_id, ownerName(worker), options.lease_s);
  if (!job) return shared.fail(job.status());
  auto stores = StorePair::connect(config, "cutover-verify");
  if (!stores) return shared.fail(stores.status());
  const ChunkContext context{tables, config, options.sample, options.show_values};
  for (;;) {
    Result<std::optional<ChunkTask>> task = std::optional<ChunkTask>();
    {
      std::shared_lock lock(shared.claiming);
      if (shared.stop) return;
      task = job->claim();
    }
    if (!task) return shared.fail(task.status());
    if (!*task) {
      auto progress = job->progress();
      if (!progress) return shared.fail(progress.status());
      if (progress->done == progress->chunks) return;
      // Chunks leased by other processes: wait, they finish or their lease runs out.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    throttle(shared, options.max_rows_per_sec);
    auto result = runChunk(**task, context, *stores);
    if (!result) {
      return shared.fail(Status::error(fmt::format("{} chunk {}: {}", (*task)->table, (*task)->chunk,
                                                   result.status().message())));
    }
    shared.rows += std::max(result->rows_old, result->rows_new);
    auto recorded = job->finish(**task, result->rows_old, result->rows_new, result->result);
    if (!recorded) return shared.fail(recorded.status());
  }
}

// Runs the workers to the end, renewing this process's leases every third of the lease while
// they work. On SIGINT/SIGTERM: stops claiming, returns this process's chunks to pending and
// exits 2 (chunks being checked at that moment are checked again by whoever resumes).
void runWorkers(const VerifyOptions& options, const config::Config& config,
                const std::vector<TablePlan>& tables, const std::string& job_id, VerifyJob& job,
                Shared& shared, std::ostream& err) {
  g_interrupt = 0;
  catchInterrupts();
  std::vector<std::thread> workers;
  for (int w = 0; w < options.workers; ++w) {
    workers.emplace_back([&, w] {
      work(w, options, config, tables, job_id, shared);
      ++shared.finished;
    });
  }
  const auto renew_every = std::chrono::milliseconds(std::max(100, options.lease_s * 1000 / 3));
  auto next_renewal = Clock::now() + renew_every;
  while (shared.finished < options.workers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    if (g_interrupt != 0) {
      shared.stop = true;
      std::unique_lock lock(shared.claiming);
      auto released = job.releaseLeases(ownerPrefix());
      err << fmt::format("\ncutover verify: interrupted by {}: {}; resume with: cutover verify "
                         "--config {} --job {}\n",
                         g_interrupt == SIGINT ? "SIGINT" : "SIGTERM",
                         released ? fmt::format("{} chunk(s) in progress returned to pending", *released)
                                  : fmt::format("could not return this process's chunks ({}); their "
                                                "leases run out in {} s",
                                                released.status().message(), options.lease_s),
                         options.config_path, job_id)
          << std::flush;
      std::_Exit(2);  // the workers are blocked in queries; nothing of theirs needs to finish
    }
    if (Clock::now() >= next_renewal) {
      // A failed renewal is not fatal here: the workers' own statements meet the same trouble
      // and report it; at worst a chunk is checked twice, and recorded once.
      job.renewLeases(ownerPrefix());
      next_renewal = Clock::now() + renew_every;
    }
  }
  for (std::thread& t : workers) t.join();
  ::signal(SIGINT, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
}

Status writeJson(const std::string& path, const nlohmann::json& document, std::ostream& out) {
  if (path == "-") {
    out << document.dump(2) << "\n";
    return Status::ok();
  }
  std::ofstream file(path, std::ios::trunc);
  file << document.dump(2) << "\n";
  file.close();
  if (!file) return Status::error(fmt::format("cannot write {}", path));
  return Status::ok();
}

int couldNotRun(std::ostream& err, const std::string& why) {
  err << "cutover verify: could not run: " << why << "\n";
  return 2;
}

}  // namespace

int runVerify(const VerifyOptions& options, std::ostream& out, std::ostream& err) {
  auto loaded = config::loadFile(options.config_path);
  if (!loaded) return couldNotRun(err, loaded.status().message());
  const config::Config& config = *loaded;
  if (!config.new_store) return couldNotRun(err, "stores.new is not configured: nothing to compare old with");
  const std::string job_id = options.job_id.empty() ? newJobId() : options.job_id;
  const int64_t chunk_rows = options.chunk_rows > 0 ? options.chunk_rows : config.verify.chunk_rows;

  auto stores = StorePair::connect(config, "cutover-verify");
  if (!stores) return couldNotRun(err, stores.status().message());
  auto old_tables = loadTables(stores->oldStore(), config.verify.schemas);
  if (!old_tables) return couldNotRun(err, old_tables.status().message());
  auto new_tables = loadTables(stores->newStore(), config.verify.schemas);
  if (!new_tables) return couldNotRun(err, new_tables.status().message());
  const VerifyPlan plan = planTables(*old_tables, *new_tables, options.tables, options.exclude,
                                     config.compare, options.show_values);
  for (const std::string& wanted : options.tables) {
    bool found = false;
    for (const auto& t : *old_tables) found = found || tableSelected(t, {wanted}, {});
    for (const auto& t : *new_tables) found = found || tableSelected(t, {wanted}, {});
    if (!found) return couldNotRun(err, fmt::format("--table {}: no such table on either store", wanted));
  }

  auto job = VerifyJob::open(pgclient::controlFor(config), job_id, ownerName(-1), options.lease_s);
  if (!job) return couldNotRun(err, job.status().message());
  auto created = job->createOrJoin(
      [&] { return planJob(plan, config, chunk_rows, options.sample,
                   !options.tables.empty() || !options.exclude.empty(), *stores); });
  if (!created) return couldNotRun(err, created.status().message());
  if (!options.quiet) {
    err << fmt::format("verify {}: {} job, {} table(s)\n", job_id, *created ? "new" : "joined", plan.tables.size());
  }

  Shared shared;
  {
    std::optional<VerifyProgress> progress;
    if (!options.quiet) {
      auto progress_job = VerifyJob::open(pgclient::controlFor(config), job_id, ownerName(-2), options.lease_s);
      if (progress_job) progress.emplace(std::move(*progress_job), err, ::isatty(STDERR_FILENO) == 1);
    }
    runWorkers(options, config, plan.tables, job_id, *job, shared, err);
  }
  if (shared.error) return couldNotRun(err, shared.error->message());

  auto chunks = job->chunks();
  if (!chunks) return couldNotRun(err, chunks.status().message());
  auto schema = job->schemaDifferences();
  if (!schema) return couldNotRun(err, schema.status().message());
  const VerifyReport report = buildReport(job_id, *schema, *chunks);
  if (Status s = job->complete(report.verdict(), reportSummary(report)); !s) {
    return couldNotRun(err, s.message());
  }
  printReport(report, out);
  if (!options.json_path.empty()) {
    if (Status s = writeJson(options.json_path, reportJson(report), out); !s) {
      return couldNotRun(err, s.message());
    }
  }
  return report.differs() ? 1 : 0;
}

}  // namespace cutover::migrate
