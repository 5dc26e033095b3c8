// COPY FROM STDIN in routed mode of ClientSession (dual-write). The serve store's CopyInResponse
// opens the stream; the client's CopyData/CopyDone/CopyFail then go, as they arrive, to every
// store running the COPY: the secondary too in sync mode (which got the statement at that
// moment), the queued copy in async mode (bounded by mirror_queue_bytes; beyond it the miss is
// journaled as queue_full).
//
// The edges follow PostgreSQL (protocol 55.2.6 "COPY Operations"): copy messages that no COPY
// takes are dropped, and after an error in copy-in mode (a simple Query) the store answers
// ErrorResponse and ReadyForQuery at once and drops the client's remaining copy messages. A
// COPY on the secondary that will get no data from the client (the serve store failed it first,
// or refused it before taking data) is ended with a CopyFail, so the secondary never waits for
// data that is not coming.
//
// Memory: a COPY is never gathered in the proxy. While a store has more than kCopyHighWatermark
// of it unsent, the client is not read (onBackendDrained resumes); a secondary that takes no
// data for mirror_timeout_ms is given up like one that does not answer (its miss journaled).
#include "common/log.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using router::Store;

constexpr size_t kCopyHighWatermark = 512 * 1024;

std::string copyFail(std::string message) { return protocol::encode(protocol::CopyFail{std::move(message)}); }

}  // namespace

ClientSession::CopyStep ClientSession::takeCopyMessage(evbuffer* in, const protocol::Frame& frame) {
  if (frame.type == protocol::Sync::kType) {
    // An extended-protocol COPY: during copy-in the store ignores Sync, so the batch's own was
    // taken by the COPY; after the client's CopyDone/CopyFail (or an error, after which the
    // store discards messages until a Sync) the client's next Sync ends the unit on every store.
    if (copy_in_ == CopyIn::Streaming) return CopyStep::NotCopy;
    if (evbuffer_get_length(in) < frame.totalSize()) return CopyStep::Wait;
    unit_->copy_sync_owed = false;
  } else if (copy_in_ == CopyIn::Idle && unit_) {
    // Behind a running unit whose COPY has not started: sent early for it, or stray; which one
    // is known once the serve store answers (CopyInResponse, or the unit ends and they are dropped).
    return CopyStep::NotCopy;
  } else {
    if (evbuffer_get_length(in) < frame.totalSize()) return CopyStep::Wait;
    if (copy_in_ != CopyIn::Streaming) {
      evbuffer_drain(in, frame.totalSize());   // no COPY takes it: dropped, as PostgreSQL does
      return CopyStep::Taken;
    }
    if (copyBackedUp()) return CopyStep::Wait;
  }
  Unit& u = *unit_;
  std::string bytes(frame.totalSize(), '\0');
  evbuffer_remove(in, bytes.data(), bytes.size());
  if (frame.type == protocol::CopyDone::kType || frame.type == protocol::CopyFail::kType) {
    copy_in_ = CopyIn::Idle;   // the client ended this COPY
    ++u.copy_streams;
  }
  Lane& serve = lane(u.serve);
  append(serve.backend->output(), bytes);
  serve.backend->flush();
  if (u.async && !u.mirror_overflow) {
    // mirror: async: kept with the write, applied from the queue later (bounded).
    if (u.copy_data.size() + bytes.size() > static_cast<size_t>(worker_.context().config().mirror_queue_bytes)) {
      u.mirror_overflow = true;
      u.copy_data.clear();
      u.copy_data.shrink_to_fit();
    } else {
      u.copy_data += bytes;
    }
  }
  if (feedsSecondary()) {
    // COPY FROM only inserts, so there is no lock order to protect: the data streams to both
    // stores as it arrives.
    Lane& secondary = lane(router::otherStore(u.serve));
    append(secondary.backend->output(), bytes);
    secondary.backend->flush();
  }
  return CopyStep::Taken;
}

// True while a store running the COPY has more than kCopyHighWatermark of it unsent: the client
// is not read meanwhile. The wait on the secondary is bounded by mirror_timeout_ms (while the
// serve store is still in COPY, mirror_timer_ serves nothing else).
bool ClientSession::copyBackedUp() {
  Unit& u = *unit_;
  bool secondary_full = false;
  if (feedsSecondary()) {
    secondary_full = evbuffer_get_length(lane(router::otherStore(u.serve)).backend->output()) > kCopyHighWatermark;
    if (!secondary_full) {
      evtimer_del(mirror_timer_.get());
    } else if (!evtimer_pending(mirror_timer_.get(), nullptr)) {
      const int ms = worker_.context().config().mirror_timeout_ms;
      timeval tv{ms / 1000, (ms % 1000) * 1000};
      evtimer_add(mirror_timer_.get(), &tv);
    }
  }
  return secondary_full || evbuffer_get_length(lane(u.serve).backend->output()) > kCopyHighWatermark;
}

// sync: the secondary runs the unit now and takes the client's copy messages as they come.
bool ClientSession::feedsSecondary() const {
  const Unit& u = *unit_;
  const Lane& secondary = lanes_[u.serve == Store::Old ? 1 : 0];
  return u.mirrored && !u.async && u.secondary_progress == Progress::Sent && secondary.up;
}

void ClientSession::copyStarted(Store store, const Segment& segment) {
  switch (segment.reply) {
    case Reply::Forward:
      if (!unit_ || store != unit_->serve) return;
      copy_in_ = CopyIn::Streaming;
      if (!unit_->bytes.empty() && unit_->bytes.view()[0] != protocol::Query::kType) unit_->copy_sync_owed = true;
      if (unit_->mirrored && !unit_->async && unit_->secondary_progress == Progress::Unsent && !unit_->secondary_first) sendToSecondary();
      return;
    case Reply::Record:
      if (!unit_) return;
      ++unit_->secondary_copies;
      if (unit_->serve_progress == Progress::Done) endUnfedCopies();
      return;
    case Reply::Apply:
    case Reply::ApplyCommit:
      // mirror: async: the queued body holds the data of every COPY the client fed; one more is
      // a COPY the authoritative store refused before taking data.
      if (!mirror_busy_ || mirror_queue_.empty() || ++mirror_copies_ <= mirror_queue_.front().copy_streams) return;
      append(lane(store).backend->output(),
             copyFail(fmt::format("the {} store did not run this COPY", router::toString(authority_))));
      lane(store).backend->flush();
      return;
    default:
      return;
  }
}

// The serve store failed the COPY while the client was still sending: the client's remaining
// copy messages are dropped from here on, and the secondary's COPY (sync: running now; async:
// the queued body) is ended with a CopyFail after the data it got so far.
void ClientSession::serveCopyFailed(const std::string& why) {
  if (copy_in_ != CopyIn::Streaming || !unit_) return;
  copy_in_ = CopyIn::Aborted;
  Unit& u = *unit_;
  ++u.copy_streams;
  const std::string fail = copyFail(fmt::format("the {} store failed this COPY: {}", router::toString(u.serve), why));
  if (u.async && !u.mirror_overflow) u.copy_data += fail;
  if (feedsSecondary()) {
    Lane& secondary = lane(router::otherStore(u.serve));
    append(secondary.backend->output(), fail);
    secondary.backend->flush();
  }
}

// sync, once the serve store finished the unit: every COPY the secondary entered beyond those
// the client fed (the serve store refused it before taking data) gets a CopyFail. All the
// client's copy data for the unit is in the secondary's output before the serve store's
// ReadyForQuery, so each CopyFail lands after it; one that finds no COPY is dropped by the store.
void ClientSession::endUnfedCopies() {
  Unit& u = *unit_;
  if (!feedsSecondary() || u.copy_streams >= u.secondary_copies) return;
  Lane& secondary = lane(router::otherStore(u.serve));
  while (u.copy_streams < u.secondary_copies) {
    ++u.copy_streams;
    append(secondary.backend->output(),
           copyFail(fmt::format("the {} store did not run this COPY", router::toString(u.serve))));
  }
  secondary.backend->flush();
}

// The client's input was paused for a store that is gone now (secondaryLost): read it again.
void ClientSession::resumeCopyInput() {
  if (!client_paused_ || state_ != State::Relaying) return;
  client_paused_ = false;
  client_->setReading(true);
  routedClientInput();
}

}  // namespace cutover::proxy
