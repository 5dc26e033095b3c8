// Shadow reads of ClientSession (issue 5): a sampled read outside a transaction runs on both
// stores; the serve store's answer streams to the client as always while it is digested, the
// other store's answer is digested and dropped, and the two digests are compared once both are
// complete (compare/). The client's answer is never held for it. Each session keeps at most
// ShadowReads::kMaxPerSession in flight (its other store connection answers them in order), and each
// worker bounds the shadows in flight and the memory their samples may take: beyond any bound the
// shadow is dropped and counted.
#include <algorithm>
#include <atomic>
#include <chrono>

#include "common/log.h"
#include "common/metrics.h"
#include "compare/mismatch.h"
#include "compare/noise.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/rechecker.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using router::Store;
using metrics::ShadowResult;

void count(ShadowResult result) { metrics::global().shadowComparisons(result).Increment(); }

// At most one line a minute per kind of event, with how many were not logged. Any thread.
class RateLimitedLog {
 public:
  // True when the caller should log now; `suppressed` is how many were skipped since the last.
  bool take(uint64_t& suppressed) {
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch()).count();
    int64_t last = last_ms_.load(std::memory_order_relaxed);
    if (last != 0 && now - last < 60000) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    if (!last_ms_.compare_exchange_strong(last, now)) {
      skipped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    suppressed = skipped_.exchange(0, std::memory_order_relaxed);
    return true;
  }

 private:
  std::atomic<int64_t> last_ms_{0};
  std::atomic<uint64_t> skipped_{0};
};

RateLimitedLog unconfirmed_log, queue_full_log;
RateLimitedLog not_compared_log[4];   // one per form a read is not compared in (startShadow)

// Writes one mismatched shadow read to mismatches.jsonl and the log (never values: the journal
// redacts them unless compare.log_values).
void recordMismatch(compare::Journal* journal, uint64_t session_id, const ShadowRead& s,
                    const compare::ResultComparison& comparison, std::string_view result, std::string_view noise) {
  compare::Mismatch m = compare::mismatchOf(comparison, *s.old_side, *s.new_side, s.text, s.rules);
  m.session_id = session_id;
  m.result = std::string(result);
  m.noise = std::string(noise);
  m.old_ms = s.old_ms;
  m.new_ms = s.new_ms;
  log::warn("session {}: shadow read {} ({}) on query {}: {}", session_id, result, m.kind,
            m.fingerprint.empty() ? "(unparsable)" : m.fingerprint, m.detail);
  if (journal != nullptr && !journal->append(compare::toJson(m))) {
    log::error("session {}: mismatches journal is full; the mismatch is in this log only", session_id);
  }
}

}  // namespace

bool ClientSession::startShadow(const Unit& u) {
  const auto& ctx = worker_.context();
  const Store other = router::otherStore(u.serve);
  // What is not compared, by its form: said at info level (once a minute each), counted as dropped.
  static constexpr const char* kForms[] = {"a batch flushed before its Sync (a cursor reading in pieces)",
                                           "several statements in one Query",
                                           "a pipeline of several statements before one Sync",
                                           "a statement too long to keep for a recheck"};
  const int form_index = u.open ? 0 : u.info.multi_statement ? 1 : u.execute_writes.size() > 1 ? 2 : u.text_cut ? 3 : -1;
  if (form_index >= 0) {
    const char* form = kForms[form_index];
    uint64_t suppressed = 0;
    if (not_compared_log[form_index].take(suppressed)) {
      log::info("session {}: a sampled read is not shadow-compared: {} (only one statement per request is; counted "
                "as dropped; {} more in the last minute)", id_, form, suppressed);
    }
    count(ShadowResult::Dropped);
    return false;
  }
  // Nothing to compare with, or this session's other connection is busy enough.
  if (shadows_.inFlight() >= ShadowReads::kMaxPerSession || !lane(other).up || ctx.config().compare.sample_bytes == 0) {
    count(ShadowResult::Dropped);
    return false;
  }
  auto s = std::make_shared<Shadow>();
  s->rules = compare::compareRulesFor(ctx.config().compare, u.info);
  s->budget = 2 * s->rules.sample_bytes + 8192;
  s->unit = u.number;
  s->serve = u.serve;
  s->text = u.text;
  s->info = u.info;
  s->parameters = u.parameters;
  // The Bind's parameter and result formats and the Parse's parameter types, for the recheck and
  // for digesting results described by a statement Describe.
  forEachMessage(u.bytes.span(), [&s](char type, std::span<const uint8_t> body, std::span<const uint8_t>) {
    if (type == protocol::Bind::kType) {
      if (auto b = protocol::decode<protocol::Bind>(body); b.isOk()) {
        s->param_formats = b.value().param_formats;
        s->result_formats = b.value().result_formats;
      }
    } else if (type == protocol::Parse::kType) {
      if (auto p = protocol::decode<protocol::Parse>(body); p.isOk()) s->param_types = p.value().param_types;
    }
  });
  s->old_side.emplace(s->rules);
  s->new_side.emplace(s->rules);
  s->started = std::chrono::steady_clock::now();
  return shadows_.start(std::move(s));   // within this session's and the worker's bounds, or dropped
}

void ClientSession::digestShadow(Shadow& shadow, Store store, char type, std::span<const uint8_t> body) {
  if (!shadow.spoiled.empty()) return;
  shadow.digest(store, type, body);
  if (type == protocol::ErrorResponse::kType && store != authority_ && store != shadow.serve) {
    hiddenWriteInShadow(shadow, body);
  }
}

// The shadow on the store that is not authoritative runs read-only: if PostgreSQL refused it as a
// write there (25006), the authoritative store ran a write the classifier took for a read (a view
// over a writing function, a user function shadowing a built-in…), and the other store does not
// have it. Journaled as error_one_side (never silent), the session reads no more from that store,
// and the shape is remembered as a write: its next runs are mirrored. Not compared.
void ClientSession::hiddenWriteInShadow(Shadow& shadow, std::span<const uint8_t> error_body) {
  auto error = protocol::decode<protocol::ErrorResponse>(error_body);
  if (!error.isOk() || error.value().field('C') != "25006") return;
  const std::string why = fmt::format("ran as a read on the authoritative store, but it writes: its shadow here was "
                                      "refused in a read-only transaction (25006 {}), so this store does not have "
                                      "that write",
                                      error.value().field('M'));
  shadow.spoiled = "the read wrote (refused read-only on the other store)";
  worker_.classifier().learnWrite(shadow.text, "refused in a read-only transaction (25006): a write");
  log::warn("session {}: a read served by the {} store writes; its read-only shadow on the {} store was refused "
            "(25006), so that store misses the write (journaled error_one_side); from now on it runs as a "
            "mirrored write: \"{}\"",
            id_, router::toString(authority_), router::toString(router::otherStore(authority_)),
            shadow.text.substr(0, 200));
  missedWriteOn(router::otherStore(authority_), compare::divergence_kind::kErrorOneSide);
  metrics::global().divergences(compare::kindLabel(compare::divergence_kind::kErrorOneSide)).Increment();
  if (compare::Journal* journal = worker_.context().journal) {
    journal->append(compare::toJson(divergenceOf(shadow.unit, shadow.text, shadow.parameters,
                                                 compare::divergence_kind::kErrorOneSide, authority_,
                                                 "ran as a read (its answer went to the client)", why)));
  }
}

void ClientSession::shadowSideDone(Store store, bool serve_side) {
  if (std::shared_ptr<Shadow> done = shadows_.sideDone(store, serve_side)) finishShadow(std::move(done));
}

void ClientSession::abandonShadow(uint64_t unit) {
  if (std::shared_ptr<Shadow> done = shadows_.abandon(unit)) finishShadow(std::move(done));
}

void ClientSession::dropShadows(const char* why) {
  if (const size_t dropped = shadows_.dropAll(); dropped > 0) {
    log::debug("session {}: {} shadow read{} dropped: {}", id_, dropped, dropped == 1 ? "" : "s", why);
  }
}

void ClientSession::finishShadow(std::shared_ptr<Shadow> s) {
  if (s->abandoned) {
    log::debug("session {}: shadow of unit {} dropped: its served read was given up", id_, s->unit);
    count(ShadowResult::Dropped);
    return;
  }
  const compare::ResultDigester& a = *s->old_side;
  const compare::ResultDigester& b = *s->new_side;
  if (!s->spoiled.empty() || !a.malformed().empty() || !b.malformed().empty() || !a.finished() || !b.finished()) {
    log::debug("session {}: shadow of unit {} not comparable: {}", id_, s->unit,
               !s->spoiled.empty() ? s->spoiled : !a.malformed().empty() ? a.malformed() : b.malformed());
    count(ShadowResult::Error);
    return;
  }
  compare::ResultComparison comparison = compare::compareResults(a, b, s->rules);
  if (comparison.match()) {
    count(ShadowResult::Match);
    return;
  }
  const auto& ctx = worker_.context();
  // Not repeatable by its text (ORDER BY random(), LIMIT without ORDER BY...), or rows tied
  // under a non-total ORDER BY: reported as noise, never as a mismatch.
  std::string_view noise = compare::noiseOf(s->info);
  if (noise.empty() && comparison.kind == compare::MismatchKind::Order && !ctx.config().compare.strict_order) {
    noise = "same rows in another order (ties of a non-total ORDER BY may come back in any order)";
  }
  if (!noise.empty()) {
    count(ShadowResult::Noisy);
    log::debug("session {}: shadow of unit {} differs but is noise: {}", id_, s->unit, noise);
    return;
  }
  const config::RecheckConfig& recheck = ctx.config().compare.recheck;
  if (ctx.rechecker == nullptr || recheck.attempts <= 0) {
    count(ShadowResult::Mismatch);
    recordMismatch(ctx.mismatches, id_, *s, comparison, compare::mismatch_result::kMismatch, "");
    return;
  }
  // Confirmed only if it still differs when run again on both stores, off this session.
  RecheckRequest request;
  request.user = user_;
  request.database = database_;
  request.session_setup = recheckSetup();
  request.sql = s->text;
  request.params = s->parameters;
  request.param_formats = s->param_formats;
  request.param_types = s->param_types;
  request.rules = s->rules;
  request.attempts = recheck.attempts;
  request.delay_ms = recheck.delay_ms;
  compare::Journal* journal = ctx.mismatches;
  const uint64_t id = id_;
  const bool queued = ctx.rechecker->submit(std::move(request), [journal, id, s, comparison](RecheckOutcome outcome) {
    if (outcome.rechecked && (outcome.matched || outcome.moving)) {
      count(ShadowResult::Transient);
      log::debug("session {}: shadow of unit {} differed, then {} on recheck {}: transient", id, s->unit,
                 outcome.matched ? "matched" : "its rows kept changing", outcome.attempts_run);
    } else if (!outcome.rechecked) {
      // Could not tell (a store unreachable, a temporary table the recheck cannot see...):
      // never an alarm on a difference that was not confirmed.
      count(ShadowResult::Error);
      uint64_t suppressed = 0;
      if (unconfirmed_log.take(suppressed)) {
        log::info("session {}: shadow read difference ({}) not confirmed: the recheck could not run: {} "
                  "({} more like it in the last minute)",
                  id, compare::toString(comparison.kind), outcome.error, suppressed);
      }
    } else {
      count(ShadowResult::Mismatch);
      compare::ResultComparison confirmed = comparison;
      confirmed.detail += fmt::format(" (still differs after {} recheck{}: {})", outcome.attempts_run,
                                      outcome.attempts_run == 1 ? "" : "s", outcome.last.detail);
      recordMismatch(journal, id, *s, confirmed, compare::mismatch_result::kMismatch, "");
    }
  });
  if (!queued) {
    // Recheck capacity exhausted: shed like any shadow beyond its bounds.
    count(ShadowResult::Dropped);
    uint64_t suppressed = 0;
    if (queue_full_log.take(suppressed)) {
      log::warn("session {}: shadow read difference ({}) dropped: the recheck queue is full ({} more in the last "
                "minute); lower shadow_percent or compare.recheck.delay_ms",
                id_, compare::toString(comparison.kind), suppressed);
    }
  }
}

// What a recheck connection needs to read like this session: the client's startup settings that
// shape results, then its SET/RESET commands (and settings copied when it left pass-through).
std::vector<std::string> ClientSession::recheckSetup() const {
  std::vector<std::string> setup;
  for (const auto& [name, value] : replay_.startup()) {
    if (name == "user" || name == "database" || name == "options" || name == "replication" ||
        name == "application_name") {
      continue;
    }
    setup.push_back(fmt::format("SELECT pg_catalog.set_config({}, {}, true)", sqlLiteral(name), sqlLiteral(value)));
  }
  router::Classifier& classifier = worker_.classifier();
  for (const std::string& sql : replay_.commands()) {
    if (sql.starts_with("SELECT pg_catalog.set_config(")) {
      setup.push_back(sql);
      continue;
    }
    const router::StatementInfo info = classifier.classify(sql);
    if (!info.multi_statement &&
        (info.session == router::SessionCommand::Set || info.session == router::SessionCommand::Reset)) {
      setup.push_back(sql);
    }
  }
  return setup;
}

}  // namespace cutover::proxy
