// Routed mode: a store lost, reconnected and given its session state again; a ramped read
// given up (ramp_read_timeout_ms) and the fence on its store.
#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "common/metrics.h"
#include "compare/divergence.h"
#include "router/unit_plan.h"
#include "proxy/cancel_forwarder.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/routed_support.h"
#include "proxy/worker.h"

namespace cutover::proxy {

using protocol::DecodeStatus;
using protocol::Direction;
using router::Store;

// The secondary store is gone (closed, failed, or too slow): the session goes on with the
// authoritative store alone, and every write it can no longer mirror is journaled.
// An explicit COMMIT runs on the secondary first; an autocommit write runs there on its own once
// the authoritative store has run it inside BEGIN … COMMIT (sync), or is queued for it before
// that COMMIT (async). When the authoritative store's connection dies from then on, the secondary
// has the write (or gets it) while the authoritative store may have committed it or not (dying
// during its COMMIT) or surely not (dying before): in doubt, journaled with the whole transaction.
void ClientSession::authorityLost(const std::string& why) {
  if (!unit_ || unit_->ending == Ending::Released) return;
  Unit& u = *unit_;
  const Store secondary = router::otherStore(authority_);
  if (u.serve != authority_ || !u.route.mirror || !(u.mirrored || u.async)) return;
  const bool committing_first = u.secondary_first && u.secondary_progress != Progress::Unsent;       // sync explicit COMMIT
  // (A statement that failed on the authoritative store and not on the secondary is journaled by
  // the comparison.)
  const bool failed_here = u.ending != Ending::Running ? u.failed_before_commit
                                                          : u.serve_progress == Progress::Done && lane(authority_).outcome.failed;
  const bool ran_alone = u.wrapped && u.secondary_progress != Progress::Unsent && !failed_here;
  if (!committing_first && !ran_alone) return;
  const Outcome& there = lane(secondary).outcome;
  if (u.secondary_progress == Progress::Done && there.failed) return;   // it failed there too: neither has it
  metrics::global().divergences(metrics::DivergenceKindLabel::ErrorOneSide).Increment();
  metrics::global().mirrorWrites(metrics::MirrorResult::Diverged).Increment();
  const std::string secondary_outcome =
      u.async ? "queued for it before the authoritative COMMIT: applied"
              : (u.secondary_progress == Progress::Done ? there.describe() + " (committed)" : "sent, its answer not yet in (it may commit)");
  log::warn("session {}: the {} store's connection died ({}) while it held a write the {} store has: in doubt, "
            "journaled",
            id_, router::toString(authority_), why, router::toString(secondary));
  journalWrite(divergenceOf(u, compare::divergence_kind::kErrorOneSide, authority_,
                            "connection lost before its COMMIT answered (" + why + "): committed or not, check the rows",
                            secondary_outcome));
  if (u.wal && !u.wal->queued) settle(u.wal);   // journaled: the next start need not report it
}

void ClientSession::secondaryLost(const std::string& why) {
  const Store secondary = router::otherStore(authority_);
  Lane& l = lane(secondary);
  if (!l.up) return;
  log::warn("session {}: lost the {} ({}); continuing on the {} store alone, misses are journaled", id_,
            l.backend->describe(), why, router::toString(authority_));
  metrics::global().storeUp(label(secondary)).Set(0);
  metrics::global().backendConnections(label(secondary)).Decrement();
  l.up = false;
  l.plan.clear();
  l.reader.reset();
  l.abandoned = 0;
  l.cancel_pending = false;   // a confirmation still to come finds the lane unfenced
  evtimer_del(fence_timer_.get());
  if (why.starts_with("no answer")) {
    // A statement stuck there (a lock wait) would not notice the closed connection and could
    // still apply later: cancel it first.
    CancelForwarder::send(worker_.base(), cancelTargetOf(*l.backend), worker_.context().config().connect_timeout_ms);
  }
  l.backend->terminate();
  if (transaction_status_ != 'I') transaction_unmirrored_ = true;   // a reconnection cannot rejoin it
  if (transaction_status_ != 'I' && !txn_statements_.empty() && router::mirrors(flags_->writes)) {
    // Its open transaction died with the connection: what it had run of it is lost there.
    missedWriteOn(secondary, compare::divergence_kind::kSecondaryUnavailable);
    metrics::global().divergences(metrics::DivergenceKindLabel::SecondaryUnavailable).Increment();
    journalWrite(divergenceOf(txn_id_, txn_statements_, {}, compare::divergence_kind::kSecondaryUnavailable, authority_,
                              "sent", "lost with the connection (" + why + "): its transaction was rolled back there"));
    txn_statements_.clear();
  }
  dropShadows("a store connection was lost");
  dropMirrorQueue(why.starts_with("no answer") ? compare::divergence_kind::kSecondaryTimeout
                                               : compare::divergence_kind::kSecondaryUnavailable,
                  "not applied: " + why);
  if (mirror_draining_) return finish();
  if (unit_ && unit_->wait == Wait::Fence) {
    // It waited for this store's fence: it runs on the authoritative store alone, its miss
    // journaled like any write the lost store did not get.
    Unit& u = *unit_;
    u.wait = Wait::None;
    if (u.route.mirror) {
      journalMiss(u, why.starts_with("no answer") ? compare::divergence_kind::kSecondaryTimeout
                                                  : compare::divergence_kind::kSecondaryUnavailable,
                  "not sent: " + why);
    }
    u.mirrored = false;
    u.async = false;
    u.secondary_first = false;
    u.wrapped = false;
    return startUnit();
  }
  if (unit_ && unit_->serve == secondary && unit_->ending != Ending::Released) {
    // The lost store was serving this unit (a ramped read): the client must still get an answer.
    Unit& u = *unit_;
    if (u.delivery == Delivery::Nothing) {
      ramp_hold_.discard();
      metrics::global().readFallbacks().Increment();
      u.serve = authority_;
      u.mirrored = false;
      u.read_only = false;   // its read-only transaction died with the store
      u.wrapped = false;
      u.held = false;
      u.serve_progress = Progress::Sent;
      u.secondary_progress = Progress::Done;
      sendToLane(authority_, u.bytes, Segment{Reply::Forward, false});
      return;
    }
    // Part of the result already reached the client: it cannot be replayed silently.
    append(clientOutput(),
           protocol::encode(protocol::ErrorResponse::make(
               "ERROR", "08006", fmt::format("the {} failed while serving this read: {}", lane(secondary).backend->describe(), why),
               {}, "run the statement again; it will be served by the other store")));
    append(clientOutput(), protocol::encode(protocol::ReadyForQuery{'I'}));
    client_->flush();
    u.ending = Ending::Released;
    return advanceUnit();
  }
  if (unit_ && unit_->mirrored && !unit_->async && unit_->secondary_progress != Progress::Done) {
    // A write is a divergence; a read that only made or dropped a named statement is not (a
    // reconnection replays the session's named statements).
    if (unit_->route.mirror) {
      journalMiss(*unit_, why.starts_with("no answer") ? compare::divergence_kind::kSecondaryTimeout
                                               : compare::divergence_kind::kSecondaryUnavailable,
                  "not applied: " + why);
    }
    unit_->secondary_progress = Progress::Done;
    unit_->mirrored = false;
    if (unit_->secondary_first && unit_->serve_progress != Progress::Done) return advanceUnit();
    advanceUnit();
  }
  resumeCopyInput();   // a COPY that waited for the lost store's output goes on
}


// At a unit boundary outside a transaction: if the secondary was lost and the health check sees
// its store again, open a new connection to it (with backoff). Units go on without the mirror,
// journaled, until it is logged in and the session's statements and settings are replayed.
void ClientSession::maybeReconnectSecondary() {
  const Store secondary = router::otherStore(authority_);
  Lane& l = lane(secondary);
  const auto& ctx = worker_.context();
  if (l.up || reconnecting_ || ctx.health == nullptr || !replay_.complete()) return;
  const bool healthy = secondary == Store::New ? ctx.health->newUp() : ctx.health->oldUp();
  const auto now = std::chrono::steady_clock::now();
  if (!healthy || now < next_reconnect_) return;
  reconnecting_ = true;
  next_reconnect_ = now + std::chrono::milliseconds(reconnect_backoff_ms_);
  reconnect_backoff_ms_ = std::min(reconnect_backoff_ms_ * 2, 30000);
  openLane(secondary);
}

bool ClientSession::reconnectEnded(const std::string* error) {
  if (!unit_ || unit_->wait != Wait::Reconnect) return false;
  Unit& u = *unit_;
  u.wait = Wait::None;
  if (error != nullptr) {
    if (u.route.mirror) journalMiss(u, compare::divergence_kind::kSecondaryUnavailable, "not sent: " + *error);
    transaction_unmirrored_ = true;   // a transaction it begins or is in goes on without the secondary
    u.mirrored = false;
    u.secondary_first = false;
    u.wrapped = false;
  }
  startUnit();
  return true;
}

void ClientSession::replayOnto(Store store) {
  if (std::string parses = replay_.parses(); !parses.empty()) sendToLane(store, parses, Segment{Reply::Swallow});
  for (const auto& sql : replay_.commands()) sendToLane(store, queryMessage(sql), Segment{Reply::Swallow});
  log::info("session {}: reconnected to the {}; replayed {} prepared statements and {} session commands", id_,
            lane(store).backend->describe(), replay_.statementCount(), replay_.commands().size());
}


// --- ramp_read_timeout_ms ------------------------------------------------------------------

void ClientSession::armRampTimer() {
  const int ms = worker_.context().config().ramp_read_timeout_ms;
  if (ms <= 0) return;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(ramp_timer_.get(), &tv);
}

void ClientSession::onRampReadTimeout(evutil_socket_t, short, void* arg) {
  static_cast<ClientSession*>(arg)->abandonRampedRead();
}

// The read is run again on the authoritative store, as when its store is lost, but the
// connection stays: the store is usually slow rather than gone (a missing index on new), and
// dropping the connection would leave the session's writes unmirrored until it is back. Its late
// answer is dropped (Reply::Discard) and, until it is in and the cancel confirmed, nothing else
// goes to that store (fenced), so the cancel cannot reach a statement sent after it.
void ClientSession::abandonRampedRead() {
  if (state_ != State::Relaying || !unit_) return;
  Unit& u = *unit_;
  // Done, already falling back, or some of the answer reached the client (a large result is
  // streaming: the store is alive, and a half-sent answer cannot be replaced).
  if (u.ending == Ending::Released || u.serve == authority_ || u.serve_progress == Progress::Done ||
      u.delivery != Delivery::Nothing || u.mirrored) {
    return;
  }
  const Store slow = u.serve;
  Lane& l = lane(slow);
  if (!l.up) return;
  auto it = std::find_if(l.plan.begin(), l.plan.end(), [](const Segment& s) { return s.reply == Reply::Forward; });
  if (it == l.plan.end()) return;
  if (it == l.plan.begin() && l.reader.streaming()) l.reader.forwardRest(false);   // the rest of a message
  it->reply = Reply::Discard;
  it->digest = false;
  ++l.abandoned;
  ramp_hold_.discard();
  if (u.shadowed) abandonShadow(u.number);
  const auto& config = worker_.context().config();
  log::warn("session {}: the {} did not answer a ramped read within ramp_read_timeout_ms ({} ms); cancelled there "
            "and served by the {} store",
            id_, l.backend->describe(), config.ramp_read_timeout_ms, router::toString(authority_));
  metrics::global().readFallbacks().Increment();
  // For auto-rollback, a statement of that store that failed, and took at least this long: its
  // error rate and its latency quantiles see a stalled store, whose statements never complete.
  metrics::global().storeErrors(label(slow)).Increment();
  metrics::global().statementDuration(label(slow)).observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - u.serve_started).count());
  l.cancel_pending = true;
  std::weak_ptr<char> alive = life_;
  CancelForwarder::sendAndConfirm(worker_.base(), cancelTargetOf(*l.backend), config.connect_timeout_ms,
                                  [this, alive, slow] {
                                    if (alive.expired()) return;
                                    lane(slow).cancel_pending = false;
                                    fenceMaybeLifted(slow);
                                  });
  if (u.open) {
    // The client has not sent its Sync yet (it goes to the authoritative store now): the slow
    // store gets one of cutover's, so its discarded answer ends with a ReadyForQuery.
    append(l.backend->output(), protocol::encode(protocol::Sync{}));
    l.backend->flush();
  }
  if (u.read_only) {
    // Its read-only transaction there ends once the cancelled read is answered.
    sendToLane(slow, injectedStatement(Injected::Rollback), Segment{Reply::Swallow});
    u.read_only = false;
    u.wrapped = false;
  }
  u.serve = authority_;
  u.held = false;
  u.serve_progress = Progress::Sent;
  u.secondary_progress = Progress::Done;
  u.serve_started = std::chrono::steady_clock::now();
  sendToLane(authority_, u.bytes, Segment{Reply::Forward, false});
}

void ClientSession::armFenceTimer() {
  if (evtimer_pending(fence_timer_.get(), nullptr)) return;
  const int ms = worker_.context().config().mirror_timeout_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(fence_timer_.get(), &tv);
}

// Work waited mirror_timeout_ms for a fenced store: its given-up read is still not answered, the
// store is stalled. It is given up like a store that does not answer a mirrored write.
void ClientSession::onFenceTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  if (!self->anyLaneFenced() || self->state_ != State::Relaying) return;
  self->secondaryLost(fmt::format("no answer within mirror_timeout_ms ({} ms) after a ramped read was cancelled there",
                                  self->worker_.context().config().mirror_timeout_ms));
  if (self->state_ == State::Relaying && !self->unit_) self->routedClientInput();
}

void ClientSession::fenceMaybeLifted(Store store) {
  if (lane(store).fenced() || state_ != State::Relaying) return;
  evtimer_del(fence_timer_.get());
  if (unit_ && unit_->wait == Wait::Fence) {
    unit_->wait = Wait::None;
    return startUnit();
  }
  if (!unit_) routedClientInput();
}

}  // namespace cutover::proxy
