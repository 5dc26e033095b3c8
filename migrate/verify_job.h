#pragma once

// A verify job's state in the control database (DESIGN.md "Jobs around the proxy"): one row in
// cutover.verify_jobs and one per chunk in cutover.verify_chunks. Processes sharing a job id
// claim chunks with FOR UPDATE SKIP LOCKED leases; a chunk whose lease ran out (its process was
// killed) is claimed again; a chunk is marked done only by the holder of its current lease, so
// each chunk's result is recorded once (done_count counts it).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "config/config.h"
#include "migrate/chunk_sql.h"
#include "pgclient/connection.h"

namespace cutover::migrate {

enum class ChunkKind { Range, Multiset, Sample, Aggregates, Check };
const char* toString(ChunkKind kind);
std::optional<ChunkKind> chunkKindFrom(std::string_view text);

struct ChunkTask {
  std::string table;  // "schema.name"; for a Check, the check's name
  int chunk = 0;
  ChunkKind kind = ChunkKind::Range;
  KeyRange range;     // Range chunks only
};

struct ChunkRecord {
  ChunkTask task;
  bool done = false;
  int done_count = 0;
  int64_t rows_old = 0, rows_new = 0;
  nlohmann::json result;
};

// What the process that creates the job stores with it.
struct JobPlan {
  std::vector<std::string> tables;
  nlohmann::json schema_differences = nlohmann::json::array();
  std::vector<ChunkTask> chunks;
  bool filtered = false;  // --table/--exclude narrowed it: it does not prove the whole database
};

struct JobProgress {
  int64_t chunks = 0, done = 0, leased = 0;  // leased: held by a live lease (any process)
  int64_t rows_done = 0;
};

struct LastVerify {
  std::string id, state, finished_at;  // state: equal | differences
  std::vector<std::string> tables;
  bool filtered = false;
  int64_t age_s = 0;                   // seconds since it finished, by the control database's clock
  nlohmann::json summary;
};

// The newest verify job (running or finished) and its chunks by state, for /status and metrics.
struct VerifyJobState {
  std::string id, state;                  // state: running | equal | differences
  int64_t pending = 0, leased = 0, done = 0;  // an expired lease counts as pending
  int64_t rows_done = 0;
};

// A connection to the control database for the jobs' tables: as flags.control (or the old store)
// says, user postgres when none is configured, NOTICEs of IF NOT EXISTS silenced.
Result<pgclient::Connection> connectControl(const config::ControlConfig& control,
                                            std::string_view application_name, pgclient::Deadline deadline);

class VerifyJob {
 public:
  // Connects to the control database and creates the cutover schema's job tables if missing.
  static Result<VerifyJob> open(const config::ControlConfig& control, std::string id,
                                std::string owner, int lease_s);

  const std::string& id() const { return id_; }

  // Creates the job and its chunks in one transaction, calling `plan` for them, unless the job
  // exists; a second process starting at once waits for the first's commit. true = created here.
  Result<bool> createOrJoin(const std::function<Result<JobPlan>()>& plan);
  // The next pending chunk (or one whose lease expired), leased to this owner; nullopt = none.
  Result<std::optional<ChunkTask>> claim();
  // Records a leased chunk's result. false: the lease was lost (the chunk is someone else's now).
  Result<bool> finish(const ChunkTask& task, int64_t rows_old, int64_t rows_new,
                      const nlohmann::json& result);
  // Extends the leases of every chunk held by an owner starting with `owner_prefix` (this
  // process's workers), so a chunk that runs longer than the lease is not claimed twice.
  Result<int64_t> renewLeases(const std::string& owner_prefix);
  // Returns those chunks to pending at once (an interrupted process), for any process to claim.
  Result<int64_t> releaseLeases(const std::string& owner_prefix);
  Result<JobProgress> progress();
  Result<std::vector<ChunkRecord>> chunks();
  Result<nlohmann::json> schemaDifferences();
  // Marks the job finished (the first process to get here wins); `state` equal|differences.
  Status complete(const std::string& state, const nlohmann::json& summary);

  // The finished verify jobs, newest first, at most `limit` (empty when none ever ran: the
  // tables do not exist yet).
  static Result<std::vector<LastVerify>> recent(pgclient::Connection& control, int limit,
                                                pgclient::Deadline deadline);
  static Result<std::optional<VerifyJobState>> latest(pgclient::Connection& control,
                                                      pgclient::Deadline deadline);

 private:
  VerifyJob(pgclient::Connection conn, std::string id, std::string owner, int lease_s)
      : conn_(std::move(conn)), id_(std::move(id)), owner_(std::move(owner)), lease_s_(lease_s) {}
  Result<pgclient::Reply> run(const std::string& sql, const std::vector<std::string>& params);

  pgclient::Connection conn_;
  std::string id_, owner_;
  int lease_s_;
};

}  // namespace cutover::migrate
