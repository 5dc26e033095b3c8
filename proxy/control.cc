#include "proxy/control.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <condition_variable>
#include <future>
#include <mutex>

#include <nlohmann/json.hpp>

#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "config/build_support.h"
#include "migrate/ramp_gate.h"
#include "migrate/sequence_level.h"
#include "router/decide.h"

namespace cutover::proxy {
namespace {

using nlohmann::json;

// Levelling sequences before authority moves: a flag change waits at most this long for it; a
// rollback (which never waits on new) much less.
constexpr int64_t kLevelDeadlineMs = 10000;
constexpr int64_t kRollbackLevelDeadlineMs = 2000;

constexpr auto kApplyTimeout = std::chrono::seconds(5);
constexpr auto kAuditWait = std::chrono::seconds(2);
constexpr size_t kDefaultLimit = 100;
constexpr size_t kMaxLimit = 1000;
constexpr size_t kGroupedRecords = 10000;   // GET /mismatches groups the last this many records

admin::Response jsonResponse(int status, const json& body) {
  admin::Response response;
  response.status = status;
  response.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return response;
}

// "limit=N" from the query string of `target`; kDefaultLimit when absent.
Result<size_t> limitOf(const std::string& target) {
  const size_t q = target.find('?');
  if (q == std::string::npos) return kDefaultLimit;
  std::string_view query = std::string_view(target).substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (!pair.starts_with("limit=")) continue;
    std::string_view value = pair.substr(6);
    size_t limit = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
    if (ec != std::errc{} || end != value.data() + value.size() || limit == 0 || limit > kMaxLimit) {
      return Status::error(fmt::format("limit must be an integer from 1 to {}, not '{}'", kMaxLimit, value));
    }
    return limit;
  }
  return kDefaultLimit;
}

int httpStatus(ControlPlane::Refusal refusal) {
  switch (refusal) {
    case ControlPlane::Refusal::None: return 200;
    case ControlPlane::Refusal::Invalid: return 400;
    case ControlPlane::Refusal::Unsupported:
    case ControlPlane::Refusal::PointOfNoReturn:
    case ControlPlane::Refusal::Conflict:
    case ControlPlane::Refusal::Gated: return 409;
    case ControlPlane::Refusal::Unavailable: return 503;
    case ControlPlane::Refusal::Internal: return 500;
  }
  return 500;
}

// The JSON of a snapshot without the bookkeeping keys, for "what changed" in the audit record.
json flagValues(const flags::FlagSnapshot& snapshot) {
  json values = flags::toJson(snapshot);
  for (const char* key : {"version", "changed_at", "changed_by", "reason"}) values.erase(key);
  return values;
}

}  // namespace

ControlPlane::ControlPlane(Parts parts, std::unique_ptr<compare::Journal> audit)
    : parts_(std::move(parts)), audit_(std::move(audit)) {}

Result<std::unique_ptr<ControlPlane>> ControlPlane::open(Parts parts) {
  auto audit = compare::Journal::open(parts.config->journal_dir, "audit.jsonl");
  if (!audit.isOk()) return Status::error("journal_dir: " + audit.status().message());
  return std::unique_ptr<ControlPlane>(new ControlPlane(std::move(parts), std::move(audit.value())));
}

ControlPlane::Applied ControlPlane::applyToWorkers(flags::FlagSnapshotPtr flags, std::chrono::milliseconds timeout) {
  struct Confirmations {
    std::mutex mutex;
    std::condition_variable done;
    int count = 0;
  };
  auto confirmations = std::make_shared<Confirmations>();
  const auto start = std::chrono::steady_clock::now();
  Applied applied;
  applied.flags = flags;
  applied.worker_total = static_cast<int>(parts_.workers->size());
  for (const auto& w : *parts_.workers) {
    Worker* worker = w.get();
    worker->post([worker, flags, confirmations] {
      worker->setFlags(flags);
      {
        std::lock_guard lock(confirmations->mutex);
        ++confirmations->count;
      }
      confirmations->done.notify_all();
    });
  }
  std::unique_lock lock(confirmations->mutex);
  confirmations->done.wait_for(lock, timeout, [&] { return confirmations->count >= applied.worker_total; });
  applied.workers = confirmations->count;
  applied.applied_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto& registry = metrics::global();
  registry.flagsVersion().Set(static_cast<double>(flags->version));
  registry.readsNewPercent().Set(flags->reads_new_percent);
  return applied;
}

std::optional<ControlPlane::Outcome> ControlPlane::gate(const flags::FlagSnapshot& before,
                                                        const flags::FlagSnapshot& next, bool force, json& audit) {
  if (!parts_.config->verify.require_for_ramp || parts_.jobs == nullptr) return std::nullopt;
  // Whether anything is raised is known without the control database: a change that raises
  // nothing (a rollback-like lowering, a mirror mode change) never waits for it.
  if (migrate::rampGate(before, next, {}, {parts_.config->verify.max_age_s}).raised.empty()) return std::nullopt;
  // The control database's view now, not the last poll's: a verify that just finished counts.
  const JobsView view = parts_.jobs->refresh();
  migrate::RampGateDecision decision;
  std::string refused;
  Refusal refusal = Refusal::Gated;
  if (view.read) {
    decision = migrate::rampGate(before, next, view.recent, {parts_.config->verify.max_age_s});
    if (!decision.allowed) refused = decision.reason;
  } else {
    // Raised or not is known without the control database; only a raise needs it.
    decision = migrate::rampGate(before, next, {}, {parts_.config->verify.max_age_s});
    if (!decision.raised.empty()) {
      refusal = Refusal::Unavailable;
      refused = fmt::format(
          "verify.require_for_ramp: cannot read the verify results from the control database {}: {}; nothing "
          "changed (lowering reads_new_percent and POST /rollback are never gated)",
          parts_.jobs->where(), view.error);
    }
  }
  if (decision.raised.empty()) return std::nullopt;
  audit = {{"raised", decision.raised}};
  if (!view.recent.empty()) audit["last_verify"] = view.recent.front().id;
  if (refused.empty()) {
    audit["result"] = "passed";
    return std::nullopt;
  }
  if (force) {
    audit["result"] = "forced";
    audit["refused_because"] = refused;
    log::warn("flag change forced past the read-ramp gate: {}", refused);
    return std::nullopt;
  }
  return Outcome{refusal, refused, {}};
}

std::optional<ControlPlane::Outcome> ControlPlane::levelSequences(const flags::FlagSnapshot& before,
                                                                const flags::FlagSnapshot& next, bool force,
                                                                int64_t deadline_ms, json& audit) {
  const router::Store from = router::authoritative(before.writes);
  const router::Store to = router::authoritative(next.writes);
  if (from == to || !parts_.config->new_store) return std::nullopt;
  const auto started = std::chrono::steady_clock::now();
  auto levelled = migrate::levelSequences(*parts_.config, to == router::Store::New, deadline_ms);
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  last_level_ = {{"at", nowRfc3339Ms()},
                 {"from", std::string(router::toString(from))},
                 {"to", std::string(router::toString(to))},
                 {"ms", ms},
                 {"ok", levelled.isOk()}};
  if (levelled.isOk()) {
    last_level_["databases"] = levelled->databases;
    last_level_["checked"] = levelled->checked;
    last_level_["raised"] = levelled->raised;
    audit = {{"result", "levelled"}, {"summary", levelled->describe()}};
    log::info("sequences levelled before authority moves to the {} store: {} ({:.0f} ms)", router::toString(to),
              levelled->describe(), ms);
    return std::nullopt;
  }
  const std::string why = fmt::format(
      "writes: {} → {} moves authority to the {} store, whose sequences must first be levelled with the {} store's "
      "(else it hands out keys already used): {}",
      config::toString(before.writes), config::toString(next.writes), router::toString(to), router::toString(from),
      levelled.status().message());
  last_level_["error"] = levelled.status().message();
  if (force) {
    audit = {{"result", "forced"}, {"error", levelled.status().message()}};
    log::warn("{}; moving anyway (forced)", why);
    return std::nullopt;
  }
  return Outcome{Refusal::Unavailable, why + "; nothing changed (send it again with force and a reason to move anyway)",
                 {}};
}

ControlPlane::Outcome ControlPlane::change(flags::FlagSnapshot next, const std::string& changed_by,
                                           const std::string& reason, bool force) {
  std::lock_guard lock(change_mutex_);
  const config::FlagValues values{next.writes, next.mirror, next.reads_new_percent, next.shadow_percent, &next.tables};
  if (auto refusal = config::checkFlagsSupported(values, parts_.config->new_store.has_value())) {
    return Outcome{Refusal::Unsupported, fmt::format("{}: {}", refusal->key_path, refusal->message), {}};
  }
  if (force && reason.empty()) {
    return Outcome{Refusal::Invalid, "force: needs a reason (why the read-ramp gate is overridden; it is audited)", {}};
  }
  flags::FlagSnapshotPtr before = parts_.flag_store->current();
  json gate_audit;
  if (auto refused = gate(*before, next, force, gate_audit)) return std::move(*refused);
  json level_audit;
  if (auto refused = levelSequences(*before, next, force, kLevelDeadlineMs, level_audit)) return std::move(*refused);
  if (!level_audit.is_null()) gate_audit["sequences"] = level_audit;
  flags::FlagStore::Share share;
  if (parts_.fleet != nullptr) {
    // A change takes effect nowhere unless the fleet store took it: instances never disagree
    // because one of them could not reach the control database.
    share = [this](const flags::FlagSnapshot& stamped, uint64_t previous) -> Status {
      auto stored = parts_.fleet->publish(stamped, previous);
      return stored.isOk() ? Status::ok() : stored.status();
    };
  }
  auto result = parts_.flag_store->publish(std::move(next), changed_by, reason, share);
  if (!result.isOk() && result.status().message().find("not shared") != std::string::npos) {
    const std::string& message = result.status().message();
    const bool conflict = message.find("published version") != std::string::npos;
    return Outcome{conflict ? Refusal::Conflict : Refusal::Unavailable,
                   conflict ? message + " (GET /flags shows the newer flags; send the change again)"
                            : message + "; nothing changed on any instance (POST /rollback still works: it applies "
                                        "locally when the control database is down)",
                   {}, {}};
  }
  return published(std::move(result), before, "flag change", "api", gate_audit);
}

void ControlPlane::adoptRemote(flags::FlagSnapshot remote) {
  std::lock_guard lock(change_mutex_);
  flags::FlagSnapshotPtr before = parts_.flag_store->current();
  if (remote.version <= before->version) return;
  if (unshared_rollback_) {
    log::warn("flags v{} from the fleet flag store are not applied: this instance's rollback (v{}) goes to the fleet "
              "store first", remote.version, before->version);
    return;
  }
  const config::FlagValues values{remote.writes, remote.mirror, remote.reads_new_percent, remote.shadow_percent,
                                  &remote.tables};
  if (auto refusal = config::checkFlagsSupported(values, parts_.config->new_store.has_value())) {
    log::error("flags v{} from the fleet flag store are not applied here: {}: {}; this instance keeps v{}",
               remote.version, refusal->key_path, refusal->message, before->version);
    return;
  }
  const uint64_t version = remote.version;
  Outcome outcome = published(parts_.flag_store->adopt(std::move(remote)), before, "fleet flag change", "fleet");
  if (outcome.refusal != Refusal::None) {
    log::error("flags v{} from the fleet flag store are not applied here: {}", version, outcome.error);
  }
}

ControlPlane::Outcome ControlPlane::rollback(bool automatic, const std::string& changed_by, const std::string& reason,
                                             bool force) {
  std::lock_guard lock(change_mutex_);
  flags::FlagSnapshotPtr before = parts_.flag_store->current();
  if (router::authoritative(before->writes) == router::Store::New) {
    // Authority comes back to old: old's sequences are raised first, within a short deadline so
    // that a rollback during an incident is never held up (a failure is logged and in /status).
    flags::FlagSnapshot back = *before;
    back.writes = config::WritesMode::Dual;
    json ignored;
    levelSequences(*before, back, true, kRollbackLevelDeadlineMs, ignored);
  }
  std::string fleet_error;
  flags::FlagStore::Share share;
  if (parts_.fleet != nullptr) {
    // A rollback never waits on the control database: applied here even when the fleet store
    // cannot take it (said in the answer and the log).
    share = [this, &fleet_error](const flags::FlagSnapshot& stamped, uint64_t previous) -> Status {
      auto stored = parts_.fleet->publish(stamped, previous);
      if (!stored.isOk()) {
        fleet_error = stored.status().message();
        log::error("rollback to flags v{} applied on this instance only: the fleet flag store did not take it: {}",
                   stamped.version, fleet_error);
      }
      return Status::ok();
    };
  }
  auto result = parts_.flag_store->rollback(changed_by, reason, force, share);
  if (!result.isOk() && result.status().message().find("point of no return") != std::string::npos) {
    return Outcome{Refusal::PointOfNoReturn, result.status().message(), {}};
  }
  if (result.isOk()) {
    // Counted once published: from here on GET /flags shows it, whatever applying it takes.
    metrics::global().rollbacks(automatic ? metrics::RollbackTrigger::Auto : metrics::RollbackTrigger::Manual).Increment();
  }
  Outcome outcome = published(std::move(result), before, "rollback", automatic ? "auto" : "manual");
  outcome.fleet_error = fleet_error;
  if (!fleet_error.empty() && outcome.applied.flags) unshared_rollback_ = true;
  return outcome;
}

ControlPlane::Outcome ControlPlane::published(Result<flags::FlagSnapshotPtr> result, const flags::FlagSnapshotPtr& before,
                                              const std::string& what, const std::string& trigger,
                                              const json& gate) {
  if (!result.isOk()) {
    // publish() validates first; anything else it refuses is a failure to persist.
    const std::string& message = result.status().message();
    const bool invalid = message.find("not published") == std::string::npos;
    return Outcome{invalid ? Refusal::Invalid : Refusal::Internal, message, {}};
  }
  flags::FlagSnapshotPtr after = result.value();
  metrics::global().flagChanges().Increment();
  Applied applied = applyToWorkers(after, kApplyTimeout);
  json record = {
      {"time", nowRfc3339Ms()},      {"event", what},
      {"trigger", trigger},          {"changed_by", after->changed_by},
      {"reason", after->reason},     {"version_before", before->version},
      {"version", after->version},   {"before", flagValues(*before)},
      {"after", flagValues(*after)}, {"workers_applied", applied.workers},
      {"applied_ms", applied.applied_ms},
  };
  if (!gate.is_null()) record["ramp_gate"] = gate;
  // The change is answered once its audit line is on disk (or after kAuditWait: it is in
  // effect either way, and the log has it too).
  auto durable = std::make_shared<std::promise<bool>>();
  std::future<bool> written = durable->get_future();
  if (!audit_->append(std::move(record), [durable](bool ok) { durable->set_value(ok); })) {
    log::error("the audit journal {} is full; the {} to flags v{} is in this log only", audit_->path(), what,
               after->version);
  } else if (written.wait_for(kAuditWait) != std::future_status::ready || !written.get()) {
    log::error("the audit line of flags v{} is not on disk yet ({}); the change is in effect", after->version,
               audit_->path());
  }
  if (applied.workers < applied.worker_total) {
    return Outcome{Refusal::Internal,
                   fmt::format("flags v{} are published and saved, but only {} of {} workers confirmed within {} s; "
                               "check the proxy's log and GET /flags",
                               after->version, applied.workers, applied.worker_total,
                               std::chrono::duration_cast<std::chrono::seconds>(kApplyTimeout).count()),
                   applied};
  }
  return Outcome{Refusal::None, {}, applied};
}

void ControlPlane::reconcileFleet() {
  if (parts_.fleet == nullptr) return;
  std::lock_guard lock(change_mutex_);
  if (!unshared_rollback_) return;
  const flags::PgFlagStoreHealth health = parts_.fleet->health();
  if (!health.connected) return;
  flags::FlagSnapshotPtr local = parts_.flag_store->current();
  auto stored = parts_.fleet->publish(*local, health.last_version);
  if (!stored.isOk()) {
    log::warn("the rollback to flags v{} is not in the fleet flag store yet: {}; retrying", local->version,
              stored.status().message());
    return;
  }
  unshared_rollback_ = false;
  log::info("the rollback made while the control database was unreachable is now in the fleet flag store as v{}",
            stored->version);
  if (stored->version > local->version) {
    flags::FlagSnapshotPtr before = local;
    Outcome outcome = published(parts_.flag_store->adopt(std::move(stored.value())), before, "fleet resync", "fleet");
    if (outcome.refusal != Refusal::None) log::error("fleet resync: {}", outcome.error);
  }
}

admin::Response ControlPlane::status() const {
  auto& registry = metrics::global();
  json stores = json::object();
  auto storeJson = [](bool configured, bool up) {
    json s = {{"configured", configured}};
    if (configured) s["up"] = up;
    return s;
  };
  const bool checked = parts_.health != nullptr;
  stores["old"] = storeJson(true, checked ? parts_.health->oldUp() : true);
  if (!checked) stores["old"]["checked"] = false;   // health checks run only when stores.new is set
  stores["new"] = storeJson(parts_.config->new_store.has_value(), checked && parts_.health->newUp());
  json body = {
      {"flags", flags::toJson(*parts_.flag_store->current())},
      {"stores", stores},
      {"sessions", parts_.live_sessions ? parts_.live_sessions() : 0},
      {"sessions_missed_writes", parts_.sessions_missed_writes ? parts_.sessions_missed_writes() : 0},
      {"workers", parts_.workers->size()},
      {"draining", parts_.shutting_down != nullptr && parts_.shutting_down->load()},
      {"divergences", static_cast<uint64_t>(registry.divergencesTotal())},
      {"mismatches", static_cast<uint64_t>(registry.shadowComparisons(metrics::ShadowResult::Mismatch).Value())},
  };
  if (parts_.jobs != nullptr) body["verify"] = verifyStatus();
  if (parts_.lost_at_start_old + parts_.lost_at_start_new > 0) {
    // The last stop was unclean and lost acknowledged async writes (journaled unclean_stop): the
    // store that missed them serves no reads until cutover is restarted after repair.
    body["unclean_stop"] = {{"lost_writes", {{"old", parts_.lost_at_start_old}, {"new", parts_.lost_at_start_new}}},
                            {"reads_held_from", parts_.lost_at_start_new > 0
                                                    ? (parts_.lost_at_start_old > 0 ? "old, new" : "new")
                                                    : "old"}};
  }
  {
    std::lock_guard lock(change_mutex_);
    if (!last_level_.is_null()) body["sequences"] = last_level_;
  }
  if (parts_.fleet == nullptr) {
    body["flag_store"] = {{"kind", "file"}, {"ok", true}, {"state_file", parts_.flag_store->stateFile()}};
  } else {
    const flags::PgFlagStoreHealth health = parts_.fleet->health();
    const uint64_t local = parts_.flag_store->current()->version;
    bool unshared = false;
    {
      std::lock_guard lock(change_mutex_);
      unshared = unshared_rollback_;
    }
    body["flag_store"] = {{"kind", "postgres"},
                          {"ok", health.connected && health.last_error.empty() && !unshared},
                          {"unshared_rollback", unshared},
                          {"connected", health.connected},
                          {"table", parts_.fleet->table()},
                          {"fleet_version", health.last_version},
                          {"local_version", local},
                          {"last_sync_at", health.last_sync_at},
                          {"last_error", health.last_error},
                          {"state_file", parts_.flag_store->stateFile()}};
    if (!health.connected) {
      body["flag_store"]["detail"] = "the control database is unreachable: this instance keeps flags v" +
                                     std::to_string(local) + " (state file) until it is back";
    }
  }
  return jsonResponse(200, body);
}

json ControlPlane::verifyStatus() const {
  const JobsView view = parts_.jobs->current();
  json out = {{"require_for_ramp", parts_.config->verify.require_for_ramp}};
  if (parts_.config->verify.require_for_ramp) out["max_age_s"] = parts_.config->verify.max_age_s;
  if (view.read_at == std::chrono::steady_clock::time_point{}) {
    out["ok"] = false;
    out["detail"] = "not read from the control database yet";
    return out;
  }
  out["ok"] = view.read;
  if (!view.read) {
    out["detail"] = fmt::format("cannot read the control database {}: {}", parts_.jobs->where(), view.error);
    return out;
  }
  const int64_t since_read =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - view.read_at).count();
  if (view.recent.empty()) {
    out["last"] = nullptr;
    out["detail"] = "no verify has finished yet: run cutover verify --config FILE";
  } else {
    const migrate::LastVerify& last = view.recent.front();
    out["last"] = {{"id", last.id},         {"state", last.state},     {"finished_at", last.finished_at},
                   {"age_s", last.age_s + since_read}, {"filtered", last.filtered}, {"tables", last.tables},
                   {"summary", last.summary}};
  }
  if (view.latest) {
    out["latest"] = {{"id", view.latest->id},
                     {"state", view.latest->state},
                     {"chunks", {{"pending", view.latest->pending}, {"leased", view.latest->leased},
                                 {"done", view.latest->done}}},
                     {"rows_done", view.latest->rows_done}};
  }
  return out;
}

std::string ControlPlane::journalPath(const std::string& file) const {
  std::string directory = parts_.config->journal_dir;
  if (!directory.empty() && directory.back() != '/') directory += '/';
  return directory + file;
}

void ControlPlane::registerRoutes(admin::AdminServer& admin) {
  admin.route("GET", "/flags", [this](const admin::Request&) {
    return jsonResponse(200, flags::toJson(*parts_.flag_store->current()));
  });

  admin.route("PUT", "/flags", [this](const admin::Request& request) {
    // "force" is a request option, not a flag: taken out before the flags are read.
    json body = json::parse(request.body, nullptr, false);
    bool force = false;
    std::string flags_body = request.body;
    if (body.is_object() && body.contains("force")) {
      if (!body["force"].is_boolean()) return admin::errorResponse(400, "invalid flags: force: must be true or false");
      force = body["force"].get<bool>();
      body.erase("force");
      flags_body = body.dump();
    }
    auto next = flags::applyJson(*parts_.flag_store->current(), flags_body);
    if (!next.isOk()) return admin::errorResponse(400, next.status().message());
    // A change without a reason has none (applyJson keeps the previous change's).
    const std::string reason = body.is_object() && body.contains("reason") ? next.value().reason : "";
    Outcome outcome = change(std::move(next.value()), "admin " + request.remote_address, reason, force);
    if (outcome.refusal != Refusal::None) return admin::errorResponse(httpStatus(outcome.refusal), outcome.error);
    return jsonResponse(200, flags::toJson(*outcome.applied.flags));
  });

  admin.route("POST", "/rollback", [this](const admin::Request& request) {
    std::string reason;
    bool force = false;
    if (!request.body.empty()) {
      json body = json::parse(request.body, nullptr, false);
      if (body.is_discarded() || !body.is_object()) {
        return admin::errorResponse(400, "the body must be a JSON object: {\"reason\": \"...\", \"force\": false}");
      }
      for (const auto& [key, value] : body.items()) {
        if (key == "reason" && value.is_string()) {
          reason = value.get<std::string>();
        } else if (key == "force" && value.is_boolean()) {
          force = value.get<bool>();
        } else {
          return admin::errorResponse(
              400, fmt::format("{}: {}", key,
                               key == "reason" || key == "force" ? "wrong type (reason: string, force: boolean)"
                                                                 : "unknown key (reason, force)"));
        }
      }
    }
    Outcome outcome = rollback(false, "admin " + request.remote_address, reason, force);
    if (outcome.refusal != Refusal::None) return admin::errorResponse(httpStatus(outcome.refusal), outcome.error);
    json answer = {{"flags", flags::toJson(*outcome.applied.flags)},
                   {"workers", outcome.applied.workers},
                   {"applied_ms", outcome.applied.applied_ms}};
    if (parts_.fleet != nullptr) {
      answer["fleet"] = outcome.fleet_error.empty()
                            ? json{{"shared", true}}
                            : json{{"shared", false}, {"error", outcome.fleet_error}};
    }
    return jsonResponse(200, answer);
  });

  admin.route("GET", "/status", [this](const admin::Request&) { return status(); });

  admin.route("GET", "/readyz", [this](const admin::Request&) {
    if (parts_.shutting_down != nullptr && parts_.shutting_down->load()) {
      return jsonResponse(503, {{"status", "not ready"}, {"reason", "shutting down"}});
    }
    const flags::FlagSnapshotPtr flags = parts_.flag_store->current();
    const bool new_authoritative = router::authoritative(flags->writes) == router::Store::New;
    if (parts_.health != nullptr && !(new_authoritative ? parts_.health->newUp() : parts_.health->oldUp())) {
      return jsonResponse(503, {{"status", "not ready"},
                                {"reason", fmt::format("the authoritative ({}) store does not answer its health check",
                                                       new_authoritative ? "new" : "old")}});
    }
    return jsonResponse(200, {{"status", "ready"}});
  });

  auto journalRoute = [this](const char* file, const char* key) {
    return [this, file, key](const admin::Request& request) {
      auto limit = limitOf(request.target);
      if (!limit.isOk()) return admin::errorResponse(400, limit.status().message());
      return jsonResponse(200, {{key, compare::Journal::tailFile(journalPath(file), limit.value())}});
    };
  };
  admin.route("GET", "/divergences", journalRoute("divergences.jsonl", "divergences"));
  admin.route("GET", "/mismatches", [this](const admin::Request& request) {
    auto limit = limitOf(request.target);
    if (!limit.isOk()) return admin::errorResponse(400, limit.status().message());
    std::vector<json> records = compare::Journal::tailFile(journalPath("mismatches.jsonl"), kGroupedRecords);
    // Grouped by query fingerprint over the last kGroupedRecords records, most frequent first.
    std::map<std::string, json> groups;
    for (const json& r : records) {
      const std::string fingerprint = r.value("fingerprint", "");
      json& g = groups[fingerprint];
      if (g.is_null()) g = {{"fingerprint", fingerprint}, {"query", r.value("query", "")}, {"count", 0},
                            {"kinds", json::object()}, {"results", json::object()}};
      g["count"] = g["count"].get<uint64_t>() + 1;
      const std::string kind = r.value("kind", "");
      const std::string result = r.value("result", "");
      g["kinds"][kind] = g["kinds"].value(kind, 0) + 1;
      g["results"][result] = g["results"].value(result, 0) + 1;
      g["last_time"] = r.value("time", "");
    }
    json by_fingerprint = json::array();
    for (auto& [fingerprint, g] : groups) by_fingerprint.push_back(std::move(g));
    std::stable_sort(by_fingerprint.begin(), by_fingerprint.end(),
                     [](const json& a, const json& b) { return a["count"].get<uint64_t>() > b["count"].get<uint64_t>(); });
    const size_t keep = std::min(limit.value(), records.size());
    json latest(std::vector<json>(records.end() - static_cast<std::ptrdiff_t>(keep), records.end()));
    return jsonResponse(200, {{"mismatches", latest}, {"by_fingerprint", by_fingerprint},
                              {"grouped_over", records.size()}});
  });
}

}  // namespace cutover::proxy
