#include "migrate/sequence_level.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "pgclient/conninfo.h"
#include "pgclient/connection.h"
#include "pgclient/quote.h"

namespace cutover::migrate {
namespace {

constexpr const char* kSequencesQuery =
    "SELECT schemaname, sequencename, last_value, increment_by, min_value, max_value FROM pg_catalog.pg_sequences";
constexpr const char* kDatabasesQuery =
    "SELECT datname FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1";

int64_t clampedAdd(int64_t value, int64_t delta, int64_t low, int64_t high) {
  int64_t out = 0;
  if (__builtin_add_overflow(value, delta, &out)) out = delta > 0 ? INT64_MAX : INT64_MIN;
  return std::clamp(out, low, high);
}

pgclient::ConnectParams paramsOf(const config::StoreConfig& store, const std::string& database) {
  pgclient::ConnectParams params = pgclient::paramsFor(store, "cutover sequence level", database);
  if (params.get("user").empty()) params.set("user", "postgres");
  return params;
}

Result<pgclient::Connection> open(const config::StoreConfig& store, const std::string& database,
                                  pgclient::Deadline deadline) {
  auto conn = pgclient::Connection::connect(paramsOf(store, database), deadline);
  if (!conn) return Status::error(fmt::format("the {} store: {}", store.name, conn.status().message()));
  return conn;
}

Result<std::vector<SequenceState>> sequencesOf(pgclient::Connection& conn, pgclient::Deadline deadline) {
  pgclient::Reply reply = conn.exec(kSequencesQuery, {}, deadline);
  if (!reply.ok()) return Status::error(fmt::format("{}: reading pg_sequences: {}", conn.where(), reply.error));
  std::vector<SequenceState> out;
  for (int r = 0; r < reply.rows(); ++r) {
    SequenceState s;
    s.schema = std::string(reply.value(r, 0));
    s.name = std::string(reply.value(r, 1));
    if (!reply.isNull(r, 2)) s.last_value = std::stoll(std::string(reply.value(r, 2)));
    s.increment = std::stoll(std::string(reply.value(r, 3)));
    s.min_value = std::stoll(std::string(reply.value(r, 4)));
    s.max_value = std::stoll(std::string(reply.value(r, 5)));
    out.push_back(std::move(s));
  }
  return out;
}

Result<std::vector<std::string>> databasesOf(pgclient::Connection& conn, pgclient::Deadline deadline) {
  pgclient::Reply reply = conn.exec(kDatabasesQuery, {}, deadline);
  if (!reply.ok()) return Status::error(fmt::format("{}: listing databases: {}", conn.where(), reply.error));
  std::vector<std::string> out;
  for (int r = 0; r < reply.rows(); ++r) out.emplace_back(reply.value(r, 0));
  return out;
}

}  // namespace

std::vector<SequenceRaise> planSequenceLevel(const std::vector<SequenceState>& source,
                                             const std::vector<SequenceState>& target, int64_t margin) {
  std::map<std::pair<std::string, std::string>, const SequenceState*> by_name;
  for (const SequenceState& s : source) by_name[{s.schema, s.name}] = &s;
  std::vector<SequenceRaise> out;
  for (const SequenceState& t : target) {
    auto it = by_name.find({t.schema, t.name});
    if (it == by_name.end() || !it->second->last_value || t.increment == 0) continue;
    const int64_t step = t.increment > 0 ? margin : -margin;
    int64_t delta = 0;
    if (__builtin_mul_overflow(step, t.increment > 0 ? t.increment : -t.increment, &delta)) {
      delta = t.increment > 0 ? INT64_MAX : INT64_MIN;
    }
    const int64_t wanted = clampedAdd(*it->second->last_value, delta, t.min_value, t.max_value);
    const bool behind = !t.last_value || (t.increment > 0 ? *t.last_value < wanted : *t.last_value > wanted);
    if (behind) out.push_back({t.schema, t.name, wanted});
  }
  return out;
}

std::string LevelReport::describe() const {
  std::string out = fmt::format("{} sequences in {} database(s) checked, {} raised", checked, databases.size(),
                                raised.size());
  for (size_t i = 0; i < raised.size() && i < 5; ++i) out += (i == 0 ? ": " : ", ") + raised[i];
  if (raised.size() > 5) out += fmt::format(" and {} more", raised.size() - 5);
  return out;
}

Result<LevelReport> levelSequences(const config::Config& config, bool to_new, int64_t deadline_ms) {
  if (!config.new_store) return Status::error("stores.new is not configured");
  const config::StoreConfig& from = to_new ? config.old_store : *config.new_store;
  const config::StoreConfig& to = to_new ? *config.new_store : config.old_store;
  const pgclient::Deadline deadline = pgclient::deadlineIn(deadline_ms);
  LevelReport report;
  if (from.database && to.database) {
    report.databases.push_back(*to.database);
  } else {
    auto a = open(from, from.database.value_or("postgres"), deadline);
    if (!a) return a.status();
    auto b = open(to, to.database.value_or("postgres"), deadline);
    if (!b) return b.status();
    auto in_a = databasesOf(a.value(), deadline);
    if (!in_a) return in_a.status();
    auto in_b = databasesOf(b.value(), deadline);
    if (!in_b) return in_b.status();
    std::set_intersection(in_a->begin(), in_a->end(), in_b->begin(), in_b->end(), std::back_inserter(report.databases));
  }
  for (const std::string& db : report.databases) {
    auto a = open(from, from.database.value_or(db), deadline);
    if (!a) return a.status();
    auto b = open(to, to.database.value_or(db), deadline);
    if (!b) return b.status();
    auto source = sequencesOf(a.value(), deadline);
    if (!source) return source.status();
    auto target = sequencesOf(b.value(), deadline);
    if (!target) return target.status();
    std::set<std::pair<std::string, std::string>> names;
    for (const SequenceState& s : *source) names.insert({s.schema, s.name});
    for (const SequenceState& t : *target) report.checked += names.contains({t.schema, t.name}) ? 1 : 0;
    for (const SequenceRaise& raise : planSequenceLevel(*source, *target)) {
      const std::string name = pgclient::quoteQualified(raise.schema, raise.name);
      pgclient::Reply reply = b->exec("SELECT pg_catalog.setval($1::regclass, $2, true)",
                                      {name, std::to_string(raise.value)}, deadline);
      if (!reply.ok()) {
        return Status::error(fmt::format("the {} store, database {}: setval({}): {}", to.name, db, name, reply.error));
      }
      report.raised.push_back(fmt::format("{}: {} → {}", db, name, raise.value));
    }
  }
  return report;
}

}  // namespace cutover::migrate
