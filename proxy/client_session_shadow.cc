// Shadow reads of ClientSession (issue 5): a sampled read outside a transaction runs on both
// stores; the serve store's answer streams to the client as always while it is digested, the
// other store's answer is digested and dropped, and the two digests are compared once both are
// complete (compare/). The client's answer is never held for it. Each session keeps at most
// kMaxShadowsPerSession in flight (its other store connection answers them in order), and each
// worker bounds the shadows in flight and the memory their samples may take: beyond any bound the
// shadow is dropped and counted.
#include <algorithm>
#include <chrono>

#include "common/log.h"
#include "common/metrics.h"
#include "compare/mismatch.h"
#include "compare/noise.h"
#include "proxy/client_session.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using router::Store;
using metrics::ShadowResult;

void count(ShadowResult result) { metrics::global().shadowComparisons(result).Increment(); }

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
  // Nothing to compare with, or this session's other connection is busy enough.
  if (shadows_.size() >= kMaxShadowsPerSession || !lane(other).up || u.open || u.info.multi_statement || ctx.config().compare.sample_bytes == 0) {
    count(ShadowResult::Dropped);
    return false;
  }
  auto s = std::make_shared<Shadow>();
  s->rules = compare::compareRulesFor(ctx.config().compare, u.info);
  s->budget = 2 * s->rules.sample_bytes + 8192;
  if (!worker_.acquireShadow(s->budget)) {
    count(ShadowResult::Dropped);
    return false;
  }
  s->unit = u.number;
  s->serve = u.serve;
  s->text = u.text;
  s->info = u.info;
  s->parameters = u.parameters;
  // The Bind's parameter and result formats and the Parse's parameter types, for the recheck and
  // for digesting results described by a statement Describe.
  auto span = protocol::asBytes(u.bytes);
  for (size_t at = 0; at + 5 <= span.size();) {
    const char type = static_cast<char>(span[at]);
    const uint32_t length = (uint32_t{span[at + 1]} << 24) | (uint32_t{span[at + 2]} << 16) |
                            (uint32_t{span[at + 3]} << 8) | span[at + 4];
    auto body = span.subspan(at + 5, length - 4);
    at += 1 + length;
    if (type == protocol::Bind::kType) {
      if (auto b = protocol::decode<protocol::Bind>(body); b.isOk()) {
        s->param_formats = b.value().param_formats;
        s->result_formats = b.value().result_formats;
      }
    } else if (type == protocol::Parse::kType) {
      if (auto p = protocol::decode<protocol::Parse>(body); p.isOk()) s->param_types = p.value().param_types;
    }
  }
  s->old_side.emplace(s->rules);
  s->new_side.emplace(s->rules);
  s->started = std::chrono::steady_clock::now();
  shadows_.push_back(std::move(s));
  return true;
}

ClientSession::Shadow* ClientSession::shadowFor(Store store, bool serve_side) const {
  if (serve_side) {
    if (shadows_.empty() || shadows_.back()->serve_done || shadows_.back()->serve != store) return nullptr;
    return shadows_.back().get();
  }
  // Each store answers the shadows it runs in the order they were sent.
  for (const auto& s : shadows_) {
    if (!s->other_done && s->serve != store) return s.get();
  }
  return nullptr;
}

void ClientSession::digestShadow(Shadow& shadow, Store store, char type, std::span<const uint8_t> body) {
  if (!shadow.spoiled.empty()) return;
  compare::ResultDigester& d = store == Store::Old ? *shadow.old_side : *shadow.new_side;
  switch (type) {
    case protocol::RowDescription::kType:
      d.onRowDescription(body, shadow.result_formats);
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
      shadow.spoiled = "COPY output is not compared";
      break;
    default:
      break;   // ParseComplete, BindComplete, NoData, notices...: not part of the result
  }
}

void ClientSession::shadowSideDone(Store store, bool serve_side) {
  Shadow* shadow = shadowFor(store, serve_side);
  if (shadow == nullptr) return;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - shadow->started).count();
  (store == Store::Old ? shadow->old_ms : shadow->new_ms) = seconds * 1000;
  metrics::global().shadowDuration(store == Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).observe(seconds);
  (serve_side ? shadow->serve_done : shadow->other_done) = true;
  if (!shadow->serve_done || !shadow->other_done) return;
  auto it = std::find_if(shadows_.begin(), shadows_.end(), [shadow](const auto& s) { return s.get() == shadow; });
  std::shared_ptr<Shadow> done = std::move(*it);
  shadows_.erase(it);
  finishShadow(std::move(done));
}

void ClientSession::dropShadows(const char* why) {
  for (const auto& s : shadows_) {
    log::debug("session {}: shadow of unit {} dropped: {}", id_, s->unit, why);
    worker_.releaseShadow(s->budget);
    count(ShadowResult::Dropped);
  }
  shadows_.clear();
}

void ClientSession::finishShadow(std::shared_ptr<Shadow> s) {
  worker_.releaseShadow(s->budget);
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
  count(ShadowResult::Mismatch);
  recordMismatch(ctx.mismatches, id_, *s, comparison, compare::mismatch_result::kMismatch, "");
}

}  // namespace cutover::proxy
