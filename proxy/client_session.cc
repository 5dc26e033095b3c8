#include "proxy/client_session.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/log.h"
#include "common/metrics.h"
#include "protocol/md5.h"
#include "proxy/cancel_forwarder.h"
#include "proxy/frame_scanner.h"
#include "proxy/message_io.h"
#include "proxy/routed_support.h"
#include "proxy/socket_util.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using protocol::DecodeStatus;
using protocol::Direction;

// A closing client that does not read its last messages within this is dropped.
constexpr int kFlushLimitMs = 5000;

timeval millis(int ms) { return timeval{ms / 1000, (ms % 1000) * 1000}; }

}  // namespace

ClientSession::ClientSession(Worker& worker, uint64_t id, int fd)
    : shadows_(worker.shadowBudget()),
      worker_(worker),
      id_(id),
      relay_(worker.context().config().max_message_bytes) {
  client_ = std::make_unique<Connection>(worker.base(), fd, *this);
  timer_.reset(evtimer_new(worker.base(), &ClientSession::onTimer, this));
  const auto& ctx = worker.context();
  ctx.client_connections->fetch_add(1, std::memory_order_relaxed);
  counted_ = true;
}

ClientSession::~ClientSession() {
  if (user_counted_) worker_.context().user_connections->release(user_);
  if (key_minted_) worker_.context().cancel_registry->release(key_.process_id);
  if (counted_) worker_.context().client_connections->fetch_sub(1, std::memory_order_relaxed);
  releaseSlot();
  if (missed_on_old_ || missed_on_new_) worker_.context().sessions_missed_writes.fetch_sub(1, std::memory_order_relaxed);
}

void ClientSession::missedWriteOn(router::Store store, std::string_view kind) {
  bool& missed = store == router::Store::Old ? missed_on_old_ : missed_on_new_;
  if (missed) return;
  if (!missed_on_old_ && !missed_on_new_) {
    worker_.context().sessions_missed_writes.fetch_add(1, std::memory_order_relaxed);
  }
  missed = true;
  log::warn("session {}: the {} store missed a write of this session ({}, journaled): the session's reads are no "
            "longer served by it (cutover verify / repair the store; new sessions are not affected)",
            id_, router::toString(store), kind);
}

void ClientSession::releaseSlot() {
  if (admitted_) worker_.context().admitted_connections->fetch_sub(1, std::memory_order_relaxed);
  admitted_ = false;
}

void ClientSession::start() {
  timeval tv = millis(worker_.context().config().login_timeout_ms);
  evtimer_add(timer_.get(), &tv);
}

void ClientSession::onTimer(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  if (self->state_ == State::Closing) {
    self->finish();   // the client did not read its last messages in time
    return;
  }
  log::info("session {}: login timeout ({} ms) before the client finished its startup", self->id_,
            self->worker_.context().config().login_timeout_ms);
  self->fatal("08006", "cutover: timeout expired before the client completed login",
              "raise login_timeout_ms if clients are legitimately slow to log in");
}

void ClientSession::onReadable(Connection&) {
  switch (state_) {
    case State::Startup: handleStartupPackets(); break;
    case State::Authenticating: handleAuthMessages(); break;
    case State::Relaying:
      if (routed_) {
        routedClientInput();
      } else {
        relayClientToBackend();
      }
      break;
    case State::LoggingIn:   // reads are off while the store login runs
    case State::Closing: break;
  }
}

void ClientSession::onDrained(Connection&) {
  if (state_ == State::Closing) return finish();
  // The client caught up: resume reading the store.
  if (backend_paused_ && routed_) {
    backend_paused_ = false;
    for (auto& l : lanes_) {
      if (l.up) l.backend->enableRead(true);
    }
    drainLane(router::Store::Old);
    drainLane(router::Store::New);
    return;
  }
  if (backend_paused_ && backend_) {
    backend_paused_ = false;
    backend_->enableRead(true);
    relayBackendToClient();
  }
}

void ClientSession::onClosed(Connection&, const std::string& reason) {
  if (state_ == State::Relaying) log::debug("session {}: client disconnected: {}", id_, reason);
  finish();
}

// --- relay ---------------------------------------------------------------------------------

void ClientSession::relayClientToBackend() {
  if (state_ != State::Relaying || client_paused_) return;
  if (!replication_ && worker_.flags() != flags_ && relay_.atBoundary() && transaction_status_ == 'I' &&
      !backend_paused_ && evbuffer_get_length(backend_->output()) == 0) {
    // Between requests, outside a transaction, nothing in flight: flags flipped since this
    // session took them apply from here on.
    if (!refreshFlags()) return;   // the router takes over once the session's state is copied
    if (routed_) return routedClientInput();
  }
  const PassThroughRelay::ClientPass pass = relay_.clientToStore(clientInput(), backend_->output());
  if (pass.forwarded > 0) backend_->flush();
  if (pass.terminate) {
    log::debug("session {}: client sent Terminate", id_);
    return finish();
  }
  if (pass.invalid) {
    log::info("session {}: protocol violation from client: {}", id_, pass.reason);
    return fatal("08P01", "invalid frontend message: " + pass.reason);
  }
  if (evbuffer_get_length(backend_->output()) > kHighWatermark) {
    client_paused_ = true;
    client_->setReading(false);
  }
}

void ClientSession::onBackendDrained(Backend&) {
  if (client_paused_ && state_ == State::Relaying) {
    client_paused_ = false;
    client_->setReading(true);
    if (routed_) return routedClientInput();
    relayClientToBackend();
  }
}

void ClientSession::onBackendReadable(Backend& backend) {
  if (routed_) return drainLane(storeOf(backend));
  relayBackendToClient();
}

void ClientSession::relayBackendToClient() {
  if (state_ != State::Relaying || backend_paused_) return;
  const PassThroughRelay::StorePass pass = relay_.storeToClient(backend_->input(), clientOutput());
  if (pass.saw_ready) transaction_status_ = relay_.transactionStatus();
  if (pass.forwarded > 0) client_->flush();
  if (pass.invalid) {
    log::error("session {}: protocol violation from the {}: {}", id_, backend_->describe(), pass.reason);
    return fatal("08P01", fmt::format("cutover received an invalid message from the {}", backend_->describe()));
  }
  if (evbuffer_get_length(clientOutput()) > kHighWatermark) {
    backend_paused_ = true;
    backend_->enableRead(false);
  }
  if (pass.saw_ready && draining_) closeIfDrainedAndIdle();
}

void ClientSession::onBackendClosed(Backend& backend, const std::string& reason) {
  if (routed_) {
    const router::Store store = storeOf(backend);
    if (store != authority_) return secondaryLost(reason);
    authorityLost(reason);
    applyUnansweredCommits();
    drainLane(store);
    metrics::global().storeUp(store == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).Set(0);
    log::info("session {}: the {} closed the connection: {}", id_, backend.describe(), reason);
    return closeAfterFlush("authoritative store closed the connection");
  }
  // Whatever the store sent last (often a FATAL ErrorResponse) is relayed before closing.
  relayBackendToClient();
  log::info("session {}: the {} closed the connection: {}", id_, backend.describe(), reason);
  closeAfterFlush("store closed the connection");
}

// --- shutdown ------------------------------------------------------------------------------

bool ClientSession::idle() const {
  return state_ == State::Relaying && relay_.clientIdle() && transaction_status_ == 'I' &&
         evbuffer_get_length(clientInput()) == 0;
}

void ClientSession::beginDrain() {
  draining_ = true;
  if (state_ == State::Startup || state_ == State::Authenticating) {
    return fatal("57P03", "cutover is shutting down and accepts no new connections");
  }
  closeIfDrainedAndIdle();
}

void ClientSession::closeIfDrainedAndIdle() {
  if (!draining_ || !idle()) return;
  fatal("57P01", "terminating connection because cutover is shutting down",
        "reconnect: another cutover instance, or this one after its restart, will serve you");
}

void ClientSession::terminate(const char* reason) {
  if (state_ == State::Closing) return finish();
  if (state_ == State::Relaying) return fatal("57P01", fmt::format("terminating connection: {}", reason));
  finish();
}

void ClientSession::fatal(const char* sqlstate, const std::string& message, const std::string& hint) {
  fatal(protocol::ErrorResponse::make("FATAL", sqlstate, message, {}, hint));
}

void ClientSession::fatal(const protocol::ErrorResponse& error) {
  if (state_ == State::Closing) return;
  append(clientOutput(), protocol::encode(error));
  closeAfterFlush(std::string(error.field('M')));
}

void ClientSession::closeAfterFlush(const std::string& reason) {
  if (state_ == State::Closing) return;
  log::debug("session {}: closing: {}", id_, reason);
  state_ = State::Closing;
  releaseSlot();   // told FATAL or done: the client's last bytes need no slot
  if (backend_) backend_->terminate();
  for (auto& l : lanes_) {
    // mirror: async: the secondary keeps applying what the session had acknowledged (finish()).
    if (l.backend && !(mirrorPending() && l.up && &l == &lane(router::otherStore(authority_)))) l.backend->terminate();
  }
  client_->setReading(false);
  client_->flush();
  if (!client_->open() || evbuffer_get_length(clientOutput()) == 0) return finish();
  timeval tv = millis(kFlushLimitMs);
  evtimer_add(timer_.get(), &tv);
}

void ClientSession::finish() {
  if (!client_) return;
  releaseSlot();   // the client is gone (a session applying its async queue lives on without it)
  const router::Store secondary = router::otherStore(authority_);
  if (routed_ && mirrorPending() && !mirror_draining_ && lane(secondary).up) {
    // The client is gone, but writes it was told are done still wait for the secondary: the
    // session lives on without its client until they are applied (or the secondary fails).
    mirror_draining_ = true;
    log::info("session {}: the client left with {} writes queued for the {} store; applying them before closing",
              id_, mirror_queue_.size(), router::toString(secondary));
    dropShadows("the session closed");
    applyUnansweredCommits();
    evtimer_del(timer_.get());
    client_->close();
    evbuffer_drain(clientOutput(), evbuffer_get_length(clientOutput()));
    evbuffer_drain(clientInput(), evbuffer_get_length(clientInput()));
    Lane& a = lane(authority_);
    if (a.backend) a.backend->terminate();
    if (a.up) metrics::global().backendConnections(authority_ == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).Decrement();
    a.up = false;
    state_ = State::Closing;   // nothing more from or to the client; drainLane still applies the queue
    return;
  }
  if (unit_) unitEndsInDoubt(*unit_, "its connection closed");
  mirror_txn_.reset();   // an explicit transaction that never ended: the authoritative store rolls it back
  if (mirrorPending()) {
    dropMirrorQueue(compare::divergence_kind::kSecondaryUnavailable, "not applied: the session closed first");
  }
  mirror_draining_ = false;
  dropShadows("the session closed");
  if (backend_) backend_->terminate();
  if (backend_counted_) metrics::global().backendConnections(metrics::StoreLabel::Old).Decrement();
  backend_counted_ = false;
  for (auto& l : lanes_) {
    if (!l.backend) continue;
    if (l.up) metrics::global().backendConnections(&l == &lanes_[0] ? metrics::StoreLabel::Old : metrics::StoreLabel::New).Decrement();
    l.up = false;
    l.backend->terminate();
  }
  evtimer_del(timer_.get());
  client_.reset();
  state_ = State::Closing;
  worker_.sessionClosed(this);
}

}  // namespace cutover::proxy
