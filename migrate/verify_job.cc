#include "migrate/verify_job.h"

#include <fmt/format.h>

namespace cutover::migrate {
namespace {

constexpr int64_t kControlDeadlineMs = 60000;

// Under an advisory lock: two processes creating the tables at once would otherwise collide on
// the catalog's unique indexes.
constexpr const char* kSchemaSql = R"(
BEGIN;
SELECT pg_advisory_xact_lock(hashtext('cutover.verify_schema'));
CREATE SCHEMA IF NOT EXISTS cutover;
CREATE TABLE IF NOT EXISTS cutover.verify_jobs (
  id text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  created_by text NOT NULL,
  finished_at timestamptz,
  state text NOT NULL DEFAULT 'running',
  tables jsonb NOT NULL DEFAULT '[]',
  schema_differences jsonb NOT NULL DEFAULT '[]',
  summary jsonb,
  filtered boolean NOT NULL DEFAULT false);
CREATE TABLE IF NOT EXISTS cutover.verify_chunks (
  job_id text NOT NULL REFERENCES cutover.verify_jobs (id) ON DELETE CASCADE,
  table_name text NOT NULL,
  chunk int NOT NULL,
  kind text NOT NULL,
  lo jsonb,
  hi jsonb,
  state text NOT NULL DEFAULT 'pending',
  lease_owner text,
  lease_until timestamptz,
  done_count int NOT NULL DEFAULT 0,
  claims int NOT NULL DEFAULT 0,
  rows_old bigint,
  rows_new bigint,
  result jsonb,
  finished_at timestamptz,
  PRIMARY KEY (job_id, table_name, chunk));
CREATE INDEX IF NOT EXISTS verify_chunks_open ON cutover.verify_chunks (job_id) WHERE state <> 'done';
-- Columns added since the first release, for a control database that has the older tables. Only
-- when missing: ALTER TABLE takes an exclusive lock even when it has nothing to do, and would
-- deadlock with a process creating its job while this one starts.
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'cutover.verify_chunks'::regclass
                 AND attname = 'claims' AND NOT attisdropped) THEN
    ALTER TABLE cutover.verify_chunks ADD COLUMN claims int NOT NULL DEFAULT 0;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'cutover.verify_jobs'::regclass
                 AND attname = 'filtered' AND NOT attisdropped) THEN
    ALTER TABLE cutover.verify_jobs ADD COLUMN filtered boolean NOT NULL DEFAULT false;
  END IF;
END $$;
COMMIT)";

constexpr const char* kClaimSql = R"(
UPDATE cutover.verify_chunks c
   SET state = 'leased', lease_owner = $2, lease_until = now() + make_interval(secs => $3::int),
       claims = claims + 1
 WHERE (c.job_id, c.table_name, c.chunk) =
       (SELECT job_id, table_name, chunk FROM cutover.verify_chunks
         WHERE job_id = $1 AND (state = 'pending' OR (state = 'leased' AND lease_until < now()))
         ORDER BY table_name, chunk LIMIT 1 FOR UPDATE SKIP LOCKED)
RETURNING table_name, chunk, kind, lo, hi)";

constexpr const char* kFinishSql = R"(
UPDATE cutover.verify_chunks
   SET state = 'done', done_count = done_count + 1, rows_old = $4, rows_new = $5,
       result = $6::jsonb, finished_at = now(), lease_until = NULL
 WHERE job_id = $1 AND table_name = $2 AND chunk = $3::int AND state = 'leased'
   AND lease_owner = $7)";

nlohmann::json keyJson(const std::optional<KeyValues>& key) {
  if (!key) return nullptr;
  return nlohmann::json(*key);
}

std::optional<KeyValues> keyFrom(const pgclient::Reply& reply, int row, int column) {
  if (reply.isNull(row, column)) return std::nullopt;
  auto parsed = nlohmann::json::parse(reply.value(row, column), nullptr, false);
  if (!parsed.is_array()) return std::nullopt;
  KeyValues key;
  for (const auto& v : parsed) key.push_back(v.get<std::string>());
  return key;
}

}  // namespace

const char* toString(ChunkKind kind) {
  switch (kind) {
    case ChunkKind::Range: return "range";
    case ChunkKind::Multiset: return "multiset";
    case ChunkKind::Sample: return "sample";
    case ChunkKind::Aggregates: return "aggregates";
    case ChunkKind::Check: return "check";
  }
  return "range";
}

std::optional<ChunkKind> chunkKindFrom(std::string_view text) {
  for (ChunkKind k : {ChunkKind::Range, ChunkKind::Multiset, ChunkKind::Sample,
                      ChunkKind::Aggregates, ChunkKind::Check}) {
    if (text == toString(k)) return k;
  }
  return std::nullopt;
}

Result<pgclient::Connection> connectControl(const config::ControlConfig& control,
                                            std::string_view application_name, pgclient::Deadline deadline) {
  pgclient::ConnectParams params = pgclient::paramsFor(control, application_name);
  if (params.get("user").empty()) params.set("user", "postgres");
  params.setting("client_min_messages", "warning");  // no NOTICEs of CREATE ... IF NOT EXISTS
  auto conn = pgclient::Connection::connect(params, deadline);
  if (!conn) return Status::error(fmt::format("the control database: {}", conn.status().message()));
  return conn;
}

Result<VerifyJob> VerifyJob::open(const config::ControlConfig& control, std::string id,
                                  std::string owner, int lease_s) {
  auto conn = connectControl(control, "cutover-verify-control", pgclient::deadlineIn(kControlDeadlineMs));
  if (!conn) return conn.status();
  VerifyJob job(std::move(conn.value()), std::move(id), std::move(owner), lease_s);
  if (auto created = job.run(kSchemaSql, {}); !created) return created.status();
  return job;
}

Result<pgclient::Reply> VerifyJob::run(const std::string& sql, const std::vector<std::string>& params) {
  pgclient::Reply reply = conn_.exec(sql, params, pgclient::deadlineIn(kControlDeadlineMs));
  if (!reply.ok()) {
    if (conn_.isOpen()) conn_.exec("ROLLBACK", {}, pgclient::deadlineIn(kControlDeadlineMs));
    return Status::error(fmt::format("the control database {}: {}", conn_.where(), reply.error));
  }
  return reply;
}

Result<bool> VerifyJob::createOrJoin(const std::function<Result<JobPlan>()>& plan) {
  if (auto r = run("BEGIN", {}); !r) return r.status();
  auto inserted = run(
      "INSERT INTO cutover.verify_jobs (id, created_by) VALUES ($1, $2) "
      "ON CONFLICT (id) DO NOTHING RETURNING id",
      {id_, owner_});
  if (!inserted) return inserted.status();
  if (inserted->rows() == 0) {
    if (auto r = run("COMMIT", {}); !r) return r.status();
    return false;
  }
  Result<JobPlan> planned = plan();
  if (!planned) {
    run("ROLLBACK", {});
    return planned.status();
  }
  nlohmann::json chunks = nlohmann::json::array();
  for (const ChunkTask& c : planned->chunks) {
    chunks.push_back({{"t", c.table}, {"c", c.chunk}, {"k", toString(c.kind)},
                      {"lo", keyJson(c.range.lo)}, {"hi", keyJson(c.range.hi)}});
  }
  auto stored = run(
      "INSERT INTO cutover.verify_chunks (job_id, table_name, chunk, kind, lo, hi) "
      "SELECT $1, x.t, x.c, x.k, x.lo, x.hi "
      "FROM jsonb_to_recordset($2::jsonb) AS x(t text, c int, k text, lo jsonb, hi jsonb)",
      {id_, chunks.dump()});
  if (!stored) return stored.status();
  auto described = run(
      "UPDATE cutover.verify_jobs SET tables = $2::jsonb, schema_differences = $3::jsonb, "
      "filtered = $4::boolean WHERE id = $1",
      {id_, nlohmann::json(planned->tables).dump(), planned->schema_differences.dump(),
       planned->filtered ? "true" : "false"});
  if (!described) return described.status();
  if (auto r = run("COMMIT", {}); !r) return r.status();
  return true;
}

Result<std::optional<ChunkTask>> VerifyJob::claim() {
  auto reply = run(kClaimSql, {id_, owner_, std::to_string(lease_s_)});
  if (!reply) return reply.status();
  if (reply->rows() == 0) return std::optional<ChunkTask>();
  ChunkTask task;
  task.table = std::string(reply->value(0, 0));
  task.chunk = std::stoi(std::string(reply->value(0, 1)));
  task.kind = chunkKindFrom(reply->value(0, 2)).value_or(ChunkKind::Range);
  task.range = KeyRange{keyFrom(*reply, 0, 3), keyFrom(*reply, 0, 4)};
  return std::optional<ChunkTask>(std::move(task));
}

Result<bool> VerifyJob::finish(const ChunkTask& task, int64_t rows_old, int64_t rows_new,
                               const nlohmann::json& result) {
  auto reply = run(kFinishSql, {id_, task.table, std::to_string(task.chunk),
                                std::to_string(rows_old), std::to_string(rows_new), result.dump(),
                                owner_});
  if (!reply) return reply.status();
  return std::string_view(PQcmdTuples(reply->result.get())) == "1";
}

Result<int64_t> VerifyJob::renewLeases(const std::string& owner_prefix) {
  auto reply = run(
      "UPDATE cutover.verify_chunks SET lease_until = now() + make_interval(secs => $3::int) "
      "WHERE job_id = $1 AND state = 'leased' AND starts_with(lease_owner, $2)",
      {id_, owner_prefix, std::to_string(lease_s_)});
  if (!reply) return reply.status();
  return std::stoll(PQcmdTuples(reply->result.get()));
}

Result<int64_t> VerifyJob::releaseLeases(const std::string& owner_prefix) {
  auto reply = run(
      "UPDATE cutover.verify_chunks SET state = 'pending', lease_owner = NULL, lease_until = NULL "
      "WHERE job_id = $1 AND state = 'leased' AND starts_with(lease_owner, $2)",
      {id_, owner_prefix});
  if (!reply) return reply.status();
  return std::stoll(PQcmdTuples(reply->result.get()));
}

Result<JobProgress> VerifyJob::progress() {
  auto reply = run(
      "SELECT count(*), count(*) FILTER (WHERE state = 'done'), "
      "count(*) FILTER (WHERE state = 'leased' AND lease_until >= now()), "
      "coalesce(sum(rows_old) FILTER (WHERE state = 'done'), 0) "
      "FROM cutover.verify_chunks WHERE job_id = $1",
      {id_});
  if (!reply) return reply.status();
  return JobProgress{std::stoll(std::string(reply->value(0, 0))),
                     std::stoll(std::string(reply->value(0, 1))),
                     std::stoll(std::string(reply->value(0, 2))),
                     std::stoll(std::string(reply->value(0, 3)))};
}

Result<std::vector<ChunkRecord>> VerifyJob::chunks() {
  auto reply = run(
      "SELECT table_name, chunk, kind, lo, hi, state = 'done', done_count, "
      "coalesce(rows_old, 0), coalesce(rows_new, 0), coalesce(result, 'null') "
      "FROM cutover.verify_chunks WHERE job_id = $1 ORDER BY table_name, chunk",
      {id_});
  if (!reply) return reply.status();
  std::vector<ChunkRecord> out;
  for (int r = 0; r < reply->rows(); ++r) {
    ChunkRecord record;
    record.task.table = std::string(reply->value(r, 0));
    record.task.chunk = std::stoi(std::string(reply->value(r, 1)));
    record.task.kind = chunkKindFrom(reply->value(r, 2)).value_or(ChunkKind::Range);
    record.task.range = KeyRange{keyFrom(*reply, r, 3), keyFrom(*reply, r, 4)};
    record.done = reply->value(r, 5) == "t";
    record.done_count = std::stoi(std::string(reply->value(r, 6)));
    record.rows_old = std::stoll(std::string(reply->value(r, 7)));
    record.rows_new = std::stoll(std::string(reply->value(r, 8)));
    record.result = nlohmann::json::parse(reply->value(r, 9), nullptr, false);
    out.push_back(std::move(record));
  }
  return out;
}

Result<nlohmann::json> VerifyJob::schemaDifferences() {
  auto reply = run("SELECT schema_differences FROM cutover.verify_jobs WHERE id = $1", {id_});
  if (!reply) return reply.status();
  if (reply->rows() == 0) return Status::error(fmt::format("verify job '{}' does not exist", id_));
  return nlohmann::json::parse(reply->value(0, 0), nullptr, false);
}

Status VerifyJob::complete(const std::string& state, const nlohmann::json& summary) {
  auto reply = run(
      "UPDATE cutover.verify_jobs SET state = $2, finished_at = now(), summary = $3::jsonb "
      "WHERE id = $1 AND finished_at IS NULL",
      {id_, state, summary.dump()});
  return reply ? Status::ok() : reply.status();
}

namespace {

// The jobs' tables do not exist until the first verify created them: nothing on record.
bool neverRan(const pgclient::Reply& reply) { return reply.sqlstate == "42P01" || reply.sqlstate == "3F000"; }

Status controlError(const pgclient::Connection& control, const pgclient::Reply& reply) {
  return Status::error(fmt::format("the control database {}: {}", control.where(), reply.error));
}

}  // namespace

Result<std::vector<LastVerify>> VerifyJob::recent(pgclient::Connection& control, int limit,
                                                  pgclient::Deadline deadline) {
  pgclient::Reply reply = control.exec(
      "SELECT id, state, to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), "
      "tables, filtered, extract(epoch FROM now() - finished_at)::bigint, coalesce(summary, '{}') "
      "FROM cutover.verify_jobs WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT $1",
      {std::to_string(limit)}, deadline);
  std::vector<LastVerify> out;
  if (!reply.ok()) {
    if (neverRan(reply)) return out;
    return controlError(control, reply);
  }
  for (int r = 0; r < reply.rows(); ++r) {
    LastVerify last;
    last.id = std::string(reply.value(r, 0));
    last.state = std::string(reply.value(r, 1));
    last.finished_at = std::string(reply.value(r, 2));
    auto tables = nlohmann::json::parse(reply.value(r, 3), nullptr, false);
    if (tables.is_array()) {
      for (const auto& t : tables) {
        if (t.is_string()) last.tables.push_back(t.get<std::string>());
      }
    }
    last.filtered = reply.value(r, 4) == "t";
    last.age_s = std::stoll(std::string(reply.value(r, 5)));
    last.summary = nlohmann::json::parse(reply.value(r, 6), nullptr, false);
    out.push_back(std::move(last));
  }
  return out;
}

Result<std::optional<VerifyJobState>> VerifyJob::latest(pgclient::Connection& control,
                                                        pgclient::Deadline deadline) {
  pgclient::Reply reply = control.exec(
      "SELECT j.id, j.state, "
      "count(c.chunk) FILTER (WHERE c.state = 'pending' OR (c.state = 'leased' AND c.lease_until < now())), "
      "count(c.chunk) FILTER (WHERE c.state = 'leased' AND c.lease_until >= now()), "
      "count(c.chunk) FILTER (WHERE c.state = 'done'), "
      "coalesce(sum(c.rows_old) FILTER (WHERE c.state = 'done'), 0) "
      "FROM (SELECT id, state FROM cutover.verify_jobs ORDER BY created_at DESC LIMIT 1) j "
      "LEFT JOIN cutover.verify_chunks c ON c.job_id = j.id GROUP BY j.id, j.state",
      {}, deadline);
  if (!reply.ok()) {
    if (neverRan(reply)) return std::optional<VerifyJobState>();
    return controlError(control, reply);
  }
  if (reply.rows() == 0) return std::optional<VerifyJobState>();
  VerifyJobState state;
  state.id = std::string(reply.value(0, 0));
  state.state = std::string(reply.value(0, 1));
  state.pending = std::stoll(std::string(reply.value(0, 2)));
  state.leased = std::stoll(std::string(reply.value(0, 3)));
  state.done = std::stoll(std::string(reply.value(0, 4)));
  state.rows_done = std::stoll(std::string(reply.value(0, 5)));
  return std::optional<VerifyJobState>(std::move(state));
}

}  // namespace cutover::migrate
