// Routed mode: each store's answers consumed in order against its lane's plan of segments.
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

namespace {

constexpr size_t kMaxControlMessage = 1 << 20;   // CommandComplete/ErrorResponse/ReadyForQuery
constexpr size_t kMaxDigestedRow = 64 * 1024;    // a RETURNING row digested whole; larger: by length
constexpr size_t kMaxShadowMessage = 1 << 20;    // a shadowed result message digested whole
// Rows of the session-state or catalog query kept (the read-hazards query bounds its own).
constexpr size_t kMaxCapturedBytes = 8u << 20;

}  // namespace

// A read served by the store that is not authoritative (the ramp) is answered from a holding
// buffer (proxy/ramp_hold.h) until it is complete or large: if that store dies before then,
// nothing has reached the client and the read is simply run again on the authoritative store.
evbuffer* ClientSession::forwardTarget(Store store) {
  if (unit_ && store == unit_->serve && unit_->serve != authority_ && unit_->delivery != Delivery::Streaming) {
    return ramp_hold_.buffer();
  }
  if (unit_ && store == unit_->serve && unit_->delivery == Delivery::Nothing) unit_->delivery = Delivery::Forwarded;
  return clientOutput();
}

void ClientSession::releaseHeldRead(bool complete) {
  if (ramp_hold_.release(clientOutput(), complete) && unit_) {
    unit_->delivery = Delivery::Streaming;   // a large answer: streamed from here on
  }
}

// An open unit (the client flushed before its Sync, as pg-cursor and pg-query-stream do: Execute
// with a row limit, then Flush) waits for what it flushed, and the store's ReadyForQuery comes
// only after the client's Sync. So a ramped read's held answer goes to the client at the end of
// each flushed answer (an Execute's end, an error, or the last answer the store has sent to a
// Parse/Bind/Describe/Close), and streams from then on: the read can no longer be run again
// elsewhere, but nothing stalls. Its read-only transaction still guarantees it writes nothing.
void ClientSession::answerFlushed(Store store, char type, bool more_buffered) {
  if (!unit_ || !unit_->open || store != unit_->serve || unit_->delivery == Delivery::Streaming ||
      !ramp_hold_.holding() || !RampHold::endsFlushedAnswer(type, more_buffered)) {
    return;
  }
  evtimer_del(ramp_timer_.get());   // the store answered
  ramp_hold_.releaseFlushed(clientOutput());
  unit_->delivery = Delivery::Streaming;
}

// The lane's reader streams what this does not take whole (lane_reader.h); one handler per call.
struct ClientSession::LaneEvents {
  ClientSession& session;
  Store store;
  bool reading() const { return session.state_ == State::Relaying || session.mirror_draining_; }
  LaneReader::Action onMessage(const protocol::Frame& frame, LaneReader::MessageView& view) {
    return session.laneMessage(store, frame, view);
  }
  evbuffer* streamTarget() { return session.forwardTarget(store); }
  void pieceStreamed() { session.releaseHeldRead(false); }
  void messageStreamed(char type, bool more_buffered) { session.answerFlushed(store, type, more_buffered); }
  void invalid(const std::string& reason) {
    Lane& l = session.lane(store);
    log::error("session {}: protocol violation from the {}: {}", session.id_, l.backend->describe(), reason);
    session.fatal("08P01", fmt::format("cutover received an invalid message from the {}", l.backend->describe()));
  }
};

void ClientSession::drainLane(Store store) {
  Lane& l = lane(store);
  if (!l.backend) return;
  LaneEvents events{*this, store};
  if (!l.reader.read(l.backend->input(), events)) return;   // the session moved on (or closes)
  client_->flush();
  if (evbuffer_get_length(clientOutput()) > kHighWatermark) {
    backend_paused_ = true;
    l.backend->enableRead(false);
  }
}

// One message of `store`'s answer, at the front of its input: what becomes of it.
LaneReader::Action ClientSession::laneMessage(Store store, const protocol::Frame& frame, LaneReader::MessageView& view) {
  using Action = LaneReader::Action;
  Lane& l = lane(store);
  evbuffer* in = view.buffer();
  const char type = frame.type;
  if (l.plan.empty() || type == protocol::NotificationResponse::kType) {
    // Asynchronous messages: notifications of the authoritative store reach the client
    // whenever they come (LISTEN deliveries come from it only), and between units its notices
    // and parameter changes too; the other store's are dropped.
    return store == authority_ && (type == 'A' || type == 'N' || type == 'S') ? Action::Forward : Action::Drop;
  }
  const Segment segment = l.plan.front();
  // A shadowed read's result messages, on either side, are digested whole (one larger than
  // kMaxShadowMessage spoils the comparison; the client's copy still streams).
  Shadow* shadow = segment.reply == Reply::Shadow || segment.digest
                       ? shadows_.sideFor(store, segment.reply != Reply::Shadow)
                       : nullptr;
  if (shadow != nullptr &&
      (type == protocol::RowDescription::kType || type == protocol::DataRow::kType ||
       type == protocol::EmptyQueryResponse::kType || type == protocol::CopyOutResponse::kType ||
       type == protocol::CopyBothResponse::kType)) {
    if (frame.totalSize() > kMaxShadowMessage) {
      if (shadow->spoiled.empty()) shadow->spoiled = "a result message over 1 MiB";
    } else {
      if (!view.whole()) return Action::Wait;
      digestShadow(*shadow, store, type, *view.body());
    }
  }
  // An imaged INSERT's answer: the client's columns go on, the row images are kept.
  if (unit_ && unit_->images && store == unit_->serve && segment.reply == Reply::Forward &&
      (type == protocol::RowDescription::kType || type == protocol::DataRow::kType)) {
    if (!view.whole()) return Action::Wait;
    imageMessage(store, type, *view.body());
    if (state_ != State::Relaying) return Action::Stop;
    evbuffer_drain(in, frame.totalSize());
    return Action::Consumed;
  }
  // The OID the serve store picked for a large object created by FunctionCall (largeObjectCreate).
  if (type == protocol::FunctionCallResponse::kType && unit_ && unit_->large_object && store == unit_->serve &&
      segment.reply == Reply::Forward) {
    if (!view.whole()) return Action::Wait;
    if (auto r = protocol::decode<protocol::FunctionCallResponse>(*view.body()); r.isOk()) {
      unit_->large_object->picked = r.value().result;
    }
  }
  // RETURNING rows of a mirrored write are digested on both stores (small rows whole; a row
  // over kMaxDigestedRow counts by its length only, so memory stays bounded).
  const bool applying = segment.reply == Reply::Apply || segment.reply == Reply::ApplyCommit;
  Outcome& outcome = applying ? mirror_outcome_ : l.outcome;
  const bool own_result = segment.reply == Reply::Forward || segment.reply == Reply::Record;
  const bool applied_read = segment.reply == Reply::Apply && !appliedWritesRows();   // a pipelined SELECT's
  const bool digest_row = type == protocol::DataRow::kType &&
                          ((unit_ && unit_->route.mirror && unit_->info.kind == router::StatementKind::Write &&
                            own_result && writesRows(*unit_, l.results)) ||
                           (segment.reply == Reply::Apply && segment.rows && !applied_read));
  if (digest_row && frame.totalSize() <= kMaxDigestedRow) {
    if (!view.whole()) return Action::Wait;
    outcome.addRow(*view.body());
  } else if (digest_row) {
    outcome.addRowOfLength(frame.totalSize());
  }
  const bool control = type == protocol::ReadyForQuery::kType || type == protocol::CommandComplete::kType ||
                       type == protocol::ErrorResponse::kType;
  const bool catalog_rows = segment.reply == Reply::Schema || segment.reply == Reply::Hazards;
  if ((segment.reply == Reply::Capture || catalog_rows) && type == protocol::DataRow::kType &&
      frame.totalSize() <= kMaxControlMessage) {
    if (!view.whole()) return Action::Wait;
    auto row = protocol::decode<protocol::DataRow>(*view.body());
    captured_bytes_ += frame.totalSize();
    if (row.isOk() && (captured_bytes_ <= kMaxCapturedBytes || segment.reply == Reply::Hazards)) {
      captured_.push_back(std::move(row.value().columns));   // the hazards query bounds its own rows
    } else if (catalog_rows) {
      schema_failed_ = true;
    } else {
      replay_.markIncomplete();
    }
    evbuffer_drain(in, frame.totalSize());
    return Action::Consumed;
  }
  if (!control) {
    if (type == protocol::CopyInResponse::kType) copyStarted(store, segment);
    if (type == protocol::ParseComplete::kType && segment.reply == Reply::Forward) ++l.parse_completes;
    if (type == protocol::EmptyQueryResponse::kType || type == protocol::PortalSuspended::kType) {
      if (own_result) ++l.results;
      if (segment.reply == Reply::Apply) ++mirror_results_;
    }
    // The wrap's COMMIT is the client's statement's commit: what it raises (a deferred trigger's
    // NOTICE) reaches the client, as the notices of an autocommit statement's commit do.
    if (segment.reply == Reply::Commit && type == protocol::NoticeResponse::kType) return Action::Forward;
    return segment.reply == Reply::Forward ? Action::Forward : Action::Drop;
  }
  if (frame.totalSize() > kMaxControlMessage) {
    fatal("08P01", fmt::format("the {} sent an oversized control message", l.backend->describe()));
    return Action::Stop;
  }
  if (!view.whole()) return Action::Wait;
  std::span<const uint8_t> body = *view.body();
  bool forward = segment.reply == Reply::Forward;
  std::optional<std::string> replaced;   // what the client gets instead of the store's message
  if (type == protocol::ErrorResponse::kType && forward && unit_ && unit_->images && store == unit_->serve) {
    replaced = errorForClient(*unit_, body);
  }
  char status = 0;
  if (shadow != nullptr && type != protocol::ReadyForQuery::kType) digestShadow(*shadow, store, type, body);
  // A shadow read's or the proxy's own queries' answers are never part of a write's outcome:
  // a shadow still running on the other store when the next write starts there would
  // otherwise add its "SELECT n" to that write's tags (a false tag_mismatch).
  const bool own_work = segment.reply == Reply::Swallow || segment.reply == Reply::Discard ||
                        segment.reply == Reply::Shadow || segment.reply == Reply::Capture || catalog_rows;
  if (type == protocol::CommandComplete::kType) {
    auto tag = protocol::decode<protocol::CommandComplete>(body);
    // A pipelined read's tag ("SELECT 2") counts rows that may differ beside other writes.
    const bool read_beside_writes = own_result && unit_ && !writesRows(*unit_, l.results);
    // "SET" says nothing of data: not compared, so the SET LOCAL pair around a row image
    // apply (router::imageApplyStatement) does not count as a difference either.
    if (tag.isOk() && !own_work && !read_beside_writes && !applied_read && segment.reply != Reply::Commit &&
        segment.reply != Reply::ApplyCommit && tag.value().tag != router::kTriggerBracketTag) {
      outcome.addTag(tag.value().tag);
    }
    if (own_result) ++l.results;
    if (segment.reply == Reply::Apply) ++mirror_results_;
  } else if (type == protocol::ErrorResponse::kType) {
    auto error = protocol::decode<protocol::ErrorResponse>(body);
    if (error.isOk() && !own_work) {
      outcome.addError(error.value().field('C'), error.value().field('M'));
    }
    if (segment.reply == Reply::Commit) forward = true;
    if (segment.reply == Reply::Forward && copy_in_ == CopyIn::Streaming && unit_ && store == unit_->serve) {
      serveCopyFailed(outcome.error);
    }
    if ((segment.reply == Reply::Swallow || segment.reply == Reply::Capture || catalog_rows) && error.isOk()) {
      if (segment.reply == Reply::Capture) replay_.markIncomplete();
      if (catalog_rows) schema_failed_ = true;
      log::warn("session {}: the {} rejected a statement cutover injected: {}", id_, l.backend->describe(),
                error.value().field('M'));
    }
  } else {
    status = static_cast<char>(body[0]);
    l.last_status = status;
    forward = (segment.reply == Reply::Forward || segment.reply == Reply::Commit) && !segment.hold_ready;
    if (forward && segment.reply == Reply::Forward && unit_ && unit_->form == Form::FlushOnly && store == unit_->serve) {
      forward = false;   // the answer to cutover's own Sync: the client sent a Flush
      transaction_status_ = status;
    }
  }
  // Acknowledge after commit: the CommandComplete of a wrapped simple Query waits for the
  // injected COMMIT, as PostgreSQL reports an autocommit statement complete only once committed
  // (a driver that resolves on CommandComplete must not read before the commit). A COMMIT
  // error replaces it, as PostgreSQL sends the error instead.
  if (forward && unit_ && unit_->wrapped && !unit_->read_only && store == unit_->serve) {
    if (type == protocol::CommandComplete::kType && segment.reply == Reply::Forward && unit_->form == Form::Query) {
      unit_->held_complete.resize(frame.totalSize());
      evbuffer_remove(in, unit_->held_complete.data(), frame.totalSize());
      return Action::Consumed;
    }
    if (segment.reply == Reply::Commit && type == protocol::ErrorResponse::kType) unit_->held_complete.clear();
    if (segment.reply == Reply::Commit && type == protocol::ReadyForQuery::kType && !unit_->held_complete.empty() &&
        !segment.hold_ready) {
      append(forwardTarget(store), unit_->held_complete);   // behind its rows, wherever they wait
      unit_->held_complete.clear();
    }
  }
  if (forward && replaced) {
    evbuffer_drain(in, frame.totalSize());
    append(forwardTarget(store), *replaced);
    releaseHeldRead(false);
    if (segment.reply == Reply::Forward) answerFlushed(store, type, evbuffer_get_length(in) > 0);
  } else if (forward) {
    evbuffer_remove_buffer(in, forwardTarget(store), frame.totalSize());
    releaseHeldRead(type == protocol::ReadyForQuery::kType);
    if (segment.reply == Reply::Forward) answerFlushed(store, type, evbuffer_get_length(in) > 0);
  } else {
    evbuffer_drain(in, frame.totalSize());
  }
  if (type == protocol::ReadyForQuery::kType) {
    l.plan.pop_front();
    if (forward) transaction_status_ = status;
    segmentDone(store, segment, status);
    if (state_ != State::Relaying && !mirror_draining_) return Action::Stop;
  }
  return Action::Consumed;
}

void ClientSession::segmentDone(Store store, const Segment& segment, char status) {
  if (segment.reply == Reply::Capture) return capturedState();
  if (segment.reply == Reply::Schema) return schemaLoaded();
  if (segment.reply == Reply::Hazards) return readHazardsLoaded();
  if (segment.reply == Reply::Discard) {
    --lane(store).abandoned;
    return fenceMaybeLifted(store);
  }
  if (segment.reply == Reply::Shadow) return shadowSideDone(store, false);
  if (segment.digest) shadowSideDone(store, true);
  if (segment.reply == Reply::Apply || segment.reply == Reply::ApplyCommit) return mirrorSegmentDone(segment);
  if (!unit_) return;
  Unit& u = *unit_;
  if (segment.reply == Reply::Swallow) return;   // BEGIN answered; the unit's own segment follows
  if (segment.reply == Reply::Commit) {
    if (u.async) {
      asyncCommitDone(u);
      u.serve_status = status;
      if (awaitWal(u)) return;   // its answer goes once the write-ahead record is durable
      return ackAsyncCommit();
    }
    if (u.ending == Ending::JudgeAtCommit) {
      u.serve_status = status;
      return finishComparison();   // then releaseUnit sends the held ReadyForQuery
    }
    syncCommitDone(u);
    u.ending = Ending::Released;
    return advanceUnit();
  }
  const auto now = std::chrono::steady_clock::now();
  if (store == u.serve) {
    if (u.read_only && refusedAsWrite(u)) return;
    u.serve_progress = Progress::Done;
    u.serve_status = status;
    recordAccepted(u);
    if (u.info.kind == router::StatementKind::Ddl) schemaChanged();
    if (copy_in_ == CopyIn::Streaming) serveCopyFailed("it ended the COPY before the client did");
    endUnfedCopies();
    metrics::global().statementDuration(label(store)).observe(std::chrono::duration<double>(now - u.serve_started).count());
  } else {
    u.secondary_progress = Progress::Done;
    metrics::global().statementDuration(label(store)).observe(std::chrono::duration<double>(now - u.secondary_started).count());
  }
  advanceUnit();
}

}  // namespace cutover::proxy
