// mirror: async of ClientSession (issue 4). The authoritative store answers the client as in
// sync mode; the secondary applies the session's writes later, in order, from a bounded queue.
//
// Order across sessions: a write takes its MirrorTicket while the authoritative store still holds
// its row locks (an autocommit write runs inside an injected BEGIN/COMMIT there, an explicit
// transaction takes it just before its COMMIT is sent), so conflicting writes hold tickets in the
// order the authoritative store applied them; the secondary applies a ticket's write only once
// every lower ticket's write has completed there (MirrorSequencer). A write that PostgreSQL will
// not run inside a transaction block (DDL such as CREATE INDEX CONCURRENTLY, a multi-statement
// query) takes its ticket when the authoritative store has finished it: best effort.
//
// An explicit transaction is gathered while it runs and queued whole when it ends; the secondary
// runs it in one round trip. Reads of a session whose queue is not empty go to the authoritative
// store (read-your-writes), and flag changes wait until the queue has drained, so authority never
// moves to a store that has not applied everything acknowledged. A client that leaves with writes
// queued keeps its session (without the client) until they are applied.
#include "common/log.h"
#include "common/metrics.h"
#include "compare/divergence.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/routed_support.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using router::Store;

constexpr size_t kMaxItemText = 8192;   // statement text kept per queued write, for the journal
constexpr const char* kNotConfirmed =
    "not confirmed applied: the proxy stopped before this acknowledged write was applied here (it may be missing, "
    "or applied in its last moments; if the stop came just before the authoritative COMMIT, neither store has it)";


void addText(std::string& into, const std::string& text) {
  if (into.size() >= kMaxItemText) return;
  if (!into.empty()) into += "; ";
  into += text.substr(0, kMaxItemText - std::min(into.size(), kMaxItemText));
}

}  // namespace

void ClientSession::startAsyncUnit() {
  Unit& u = *unit_;
  u.serve_progress = Progress::Sent;   // the secondary gets it from mirror_queue_, after the client's answer
  if (u.status_before != 'I' && u.info.transaction == router::TransactionCommand::Commit && !u.info.multi_statement) {
    // The transaction's locks are held until this COMMIT: its place in the order is taken now.
    MirrorSequencer* sequencer = worker_.context().sequencer;
    u.ticket = MirrorTicket(sequencer, sequencer->take());
  }
  if (u.wrapped) {
    u.held = true;   // the client's ReadyForQuery comes from the COMMIT (releaseUnit)
    sendToLane(u.serve, injectedStatement(Injected::Begin), Segment{Reply::Swallow});
    if (u.images) {
      if (!u.images->prologue.empty()) sendToLane(u.serve, u.images->prologue, Segment{Reply::Swallow});
    sendToLane(u.serve, u.images->statement, Segment{Reply::Forward, true});
    } else {
      sendToLane(u.serve, u.bytes, Segment{Reply::Forward, true});
    }
    return;
  }
  // The ReadyForQuery is held: a write that ends here is acknowledged only once its write-ahead
  // record is durable (advanceUnit, awaitWal). A unit that may commit has its intent written
  // before it is sent: queueMirror hands it to the queued item.
  u.held = true;
  // (BEGIN alone commits nothing; a ROLLBACK neither.)
  const auto txn = u.info.transaction;
  const bool may_commit = u.info.multi_statement || txn == router::TransactionCommand::Commit ||
                          (u.status_before == 'I' && txn == router::TransactionCommand::None);
  if (u.route.mirror && u.info.kind != router::StatementKind::Read && may_commit) {
    const bool in_txn = u.status_before != 'I' && mirror_txn_;
    u.wal = writeIntent(divergenceOf(in_txn ? mirror_txn_->unit : u.number,
                                     in_txn ? mirror_txn_->text + "; " + u.text : u.text.substr(0, kMaxItemText),
                                     u.parameters, compare::divergence_kind::kUncleanStop, authority_, "acknowledged",
                                     kNotConfirmed));
  }
  if (u.images) {
    if (!u.images->prologue.empty()) sendToLane(u.serve, u.images->prologue, Segment{Reply::Swallow});
    sendToLane(u.serve, u.images->statement, Segment{Reply::Forward, true});
  } else {
    sendToLane(u.serve, u.bytes, Segment{Reply::Forward, true});
  }
}

// The serve store finished `u` (for a wrapped write: its statement, before the COMMIT).
void ClientSession::queueMirror(Unit& u) {
  const Outcome& served = lane(u.serve).outcome;
  u.failed_before_commit = served.failed;
  std::string bytes = secondaryStatement(u);   // the row images' statement, when imaged
  int units = 1;                               // ReadyForQuery the secondary gives for `bytes`
  if (bytes.empty()) {
    bytes = largeObjectCreate(u);   // a large object the serve store created, by its OID
    if (bytes.empty()) {
      bytes = u.bytes.release();
    } else {
      u.bytes.release();
    }
  } else {
    u.bytes.release();
    if (!u.images->restore.empty()) {
      bytes += u.images->restore;   // the apply dropped the unnamed statement the client's batch made
      ++units;
    }
  }
  const bool nondeterministic = (u.info.nondeterministic || !u.inexact.empty()) && !u.images;
  if (!u.inexact.empty() && !served.failed && u.route.mirror) journalInexact(u, u.serve);
  bytes += u.copy_data;
  u.copy_data.clear();
  u.copy_data.shrink_to_fit();
  if (u.mirror_overflow) {
    // Its COPY data or its batch outgrew mirror_queue_bytes: the secondary cannot have it.
    if (mirror_txn_) {
      mirror_txn_->overflow = true;
    } else {
      metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
      metrics::global().divergences(metrics::DivergenceKindLabel::QueueFull).Increment();
      MirrorItem lost;
      lost.unit = u.number;
      lost.text = u.text.substr(0, kMaxItemText);
      lost.serve = served;
      journalItem(lost, compare::divergence_kind::kQueueFull, served.describe(),
                  "not applied: the statement's data (COPY or an extended batch) is larger than mirror_queue_bytes");
      return;
    }
  }
  MirrorSequencer* sequencer = worker_.context().sequencer;
  if (u.status_before == 'I' && (u.serve_status == 'I' || u.wrapped)) {
    // One write (or session command) on its own.
    MirrorItem item;
    if (u.route.mirror) item.ticket = MirrorTicket(sequencer, sequencer->take());   // a wrapped write: locks held
    item.unit = u.number;
    item.body = std::move(bytes);
    item.body_units = units;
    item.compare = u.route.mirror;
    item.rows = u.route.mirror && u.info.kind == router::StatementKind::Write && u.info.unrepeatable.empty();
    item.execute_writes = u.execute_writes;
    item.nondeterministic = nondeterministic;
    item.copy_streams = u.copy_streams;
    item.text = u.text.substr(0, kMaxItemText);
    item.parameters = u.parameters;
    item.serve = served;
    item.awaiting_commit = u.wrapped;
    if (u.wrapped && served.failed) {
      item.rolled_back = true;
      item.commit = queryMessage("ROLLBACK");
    }
    attachWal(u, item);
    return enqueueMirror(std::move(item));
  }
  if (u.status_before == 'I') {
    // A transaction began: gathered until it ends.
    mirror_txn_.emplace();
    mirror_txn_->unit = u.number;
    mirror_txn_->body = std::move(bytes);
    mirror_txn_->body_units = units;
    mirror_txn_->compare = u.route.mirror;
    mirror_txn_->execute_writes = u.execute_writes;
    mirror_txn_->nondeterministic = nondeterministic;
    mirror_txn_->copy_streams = u.copy_streams;
    addText(mirror_txn_->text, compare::withParameters(u.text, u.parameters));
    mirror_txn_->serve.add(served);
    return;
  }
  if (!mirror_txn_) {
    // The transaction began while this session could not mirror it (the secondary was down):
    // its misses were journaled then.
    return;
  }
  MirrorItem& txn = *mirror_txn_;
  txn.compare = txn.compare || u.route.mirror;
  txn.nondeterministic = txn.nondeterministic || nondeterministic;
  if (!txn.ticket && u.ticket) txn.ticket = std::move(u.ticket);
  txn.copy_streams += u.copy_streams;
  if (u.serve_status != 'I') {
    // COMMIT AND CHAIN of a transaction the authoritative store had failed: ROLLBACK AND CHAIN
    // there (PostgreSQL's answer), so the secondary rolls back too, and chains alike.
    if (commitRolledBack(u, served)) bytes = queryMessage("ROLLBACK AND CHAIN");
    if (!txn.overflow) {
      txn.body += bytes;
      txn.body_units += units;
      if (txn.bytes() > static_cast<size_t>(worker_.context().config().mirror_queue_bytes)) {
        txn.overflow = true;
        txn.body.clear();
        txn.body.shrink_to_fit();
      }
    }
    addText(txn.text, compare::withParameters(u.text, u.parameters));
    txn.serve.add(served);
    return;
  }
  // The transaction ended (COMMIT, ROLLBACK, or a statement that ended it): queued whole.
  MirrorItem item = std::move(txn);
  mirror_txn_.reset();
  // A COMMIT the authoritative store answered with ROLLBACK (its transaction had failed): the
  // secondary, where the same statements may have succeeded, rolls back too.
  item.commit = commitRolledBack(u, served) ? queryMessage(u.info.chain ? "ROLLBACK AND CHAIN" : "ROLLBACK") : std::move(bytes);
  addText(item.text, compare::withParameters(u.text, u.parameters));
  if (served.failed && !item.serve.failed) {
    item.serve.failed = true;   // its COMMIT failed on the authoritative store
    item.serve.error = served.error;
  }
  if (!item.ticket) item.ticket = MirrorTicket(sequencer, sequencer->take());
  if (!item.overflow) attachWal(u, item);
  if (item.overflow) {
    metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
    metrics::global().divergences(metrics::DivergenceKindLabel::QueueFull).Increment();
    journalItem(item, compare::divergence_kind::kQueueFull, item.serve.describe(),
                fmt::format("not applied: the transaction is larger than mirror_queue_bytes ({} bytes)",
                            worker_.context().config().mirror_queue_bytes));
    return;
  }
  enqueueMirror(std::move(item));
}

void ClientSession::enqueueMirror(MirrorItem item) {
  const auto& config = worker_.context().config();
  if (mirror_queue_.size() >= static_cast<size_t>(config.mirror_queue_units) ||
      mirror_queue_bytes_ + item.bytes() > static_cast<size_t>(config.mirror_queue_bytes)) {
    // Never unbounded memory, never a silent drop: the miss is a divergence on record.
    metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
    metrics::global().divergences(metrics::DivergenceKindLabel::QueueFull).Increment();
    const std::string why = fmt::format(
        "not applied: this session's mirror queue is full ({} writes, {} bytes; limits mirror_queue_units {}, "
        "mirror_queue_bytes {})",
        mirror_queue_.size(), mirror_queue_bytes_, config.mirror_queue_units, config.mirror_queue_bytes);
    if (!mirror_overflow_logged_) {
      mirror_overflow_logged_ = true;
      log::warn("session {}: the {} store falls behind: {}; writes are journaled as queue_full until it catches up",
                id_, router::toString(router::otherStore(authority_)), why);
    }
    journalItem(item, compare::divergence_kind::kQueueFull, item.serve.describe(), why);
    settle(item.wal);
    return;
  }
  mirror_queue_bytes_ += item.bytes();
  mirror_queue_.push_back(std::move(item));
  metrics::global().mirrorQueueUnits().Increment();
  pumpMirror();
}

// Sends the oldest queued write to the secondary once its ticket's turn has come.
void ClientSession::pumpMirror() {
  if (mirror_busy_ || mirror_waiting_ || mirror_queue_.empty()) return;
  Lane& l = lane(router::otherStore(authority_));
  if (!l.up) return dropMirrorQueue(compare::divergence_kind::kSecondaryUnavailable, "not applied: store connection lost");
  MirrorItem& item = mirror_queue_.front();
  if (item.awaiting_commit) return;   // asyncCommitDone pumps again
  if (item.ticket) {
    Worker* worker = &worker_;
    ClientSession* self = this;
    const uint64_t id = id_;
    const bool ready = worker_.context().sequencer->readyOrWait(item.ticket.number(), [worker, self, id] {
      worker->post([worker, self, id] {
        if (!worker->sessionAlive(self, id)) return;
        self->mirror_waiting_ = false;
        self->pumpMirror();
      });
    });
    if (!ready) {
      mirror_waiting_ = true;
      return;
    }
  }
  mirror_busy_ = true;
  mirror_outcome_ = Outcome{};
  mirror_results_ = 0;
  mirror_copies_ = 0;
  if (item.rolled_back) {
    l.plan.push_back(Segment{Reply::Swallow});
    append(l.backend->output(), injectedStatement(Injected::Begin));
  }
  for (int i = 0; i < item.body_units; ++i) l.plan.push_back(Segment{Reply::Apply, false, false, item.rows});
  append(l.backend->output(), item.body);
  if (!item.commit.empty()) {
    l.plan.push_back(Segment{Reply::ApplyCommit});
    append(l.backend->output(), item.commit);
  }
  mirror_segments_ = item.body_units + (item.commit.empty() ? 0 : 1);
  l.backend->flush();
  const int ms = worker_.context().config().mirror_timeout_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(apply_timer_.get(), &tv);
}

bool ClientSession::appliedWritesRows() const {
  if (mirror_queue_.empty()) return true;
  const std::vector<bool>& writes = mirror_queue_.front().execute_writes;
  return mirror_results_ >= writes.size() || writes[mirror_results_];
}

void ClientSession::mirrorSegmentDone(const Segment&) {
  if (mirror_busy_ && --mirror_segments_ == 0) finishMirrorItem();
}

void ClientSession::finishMirrorItem() {
  evtimer_del(apply_timer_.get());
  MirrorItem item = std::move(mirror_queue_.front());
  mirror_queue_.pop_front();
  mirror_queue_bytes_ -= item.bytes();
  metrics::global().mirrorQueueUnits().Decrement();
  mirror_busy_ = false;
  item.ticket.release();   // lower tickets done, this one too: the next write in the order may start
  settle(item.wal);         // applied (a divergence is journaled below, as any other)
  if (item.compare) {
    const std::string_view kind = compare::judgeWrite(item.serve, mirror_outcome_,
                              {.nondeterministic = item.nondeterministic, .compare_rows = item.rows, .tags_when_failed = true});
    countMirrorWrite(!kind.empty(), item.serve.failed, item.nondeterministic);
    if (item.serve.failed != mirror_outcome_.failed) {
      metrics::global().storeErrors(label(item.serve.failed ? authority_ : router::otherStore(authority_))).Increment();
    }
    if (!kind.empty()) {
      metrics::global().divergences(compare::kindLabel(kind)).Increment();
      log::warn("session {}: divergence ({}) applying \"{}\": {} {} vs {} {}", id_, kind, item.text.substr(0, 200),
                router::toString(authority_), item.serve.describe(), router::toString(router::otherStore(authority_)),
                mirror_outcome_.describe());
      journalItem(item, kind, item.serve.describe(),
                  mirror_outcome_.describe() +
                      (item.rolled_back && !mirror_outcome_.failed
                           ? " (rolled back: the authoritative store failed it, and the client was told so)" : ""));
    }
  }
  if (!mirror_queue_.empty()) return pumpMirror();
  mirror_overflow_logged_ = false;
  if (mirror_draining_) return finish();
  // Flag changes wait for an empty queue (refreshFlags): client input may be waiting for it.
  if (!unit_ && state_ == State::Relaying) routedClientInput();
}

// Every queued write is lost to the secondary (its connection failed or the session ends):
// each is journaled, so the divergence is on record for repair.
void ClientSession::dropMirrorQueue(std::string_view kind, const std::string& why) {
  if (!mirror_queue_.empty()) {
    log::warn("session {}: {} queued writes not applied to the {} store ({}); each is in the divergence journal", id_,
              mirror_queue_.size(), router::toString(router::otherStore(authority_)), why);
  }
  bool running = mirror_busy_;   // the head was sent: it may have been applied, or be applied yet
  for (MirrorItem& item : mirror_queue_) {
    metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
    metrics::global().divergences(compare::kindLabel(kind)).Increment();
    journalItem(item, kind, item.serve.describe(),
                running ? "outcome unknown (it was running there and was cancelled; check the rows): " + why : why);
    settle(item.wal);
    running = false;
  }
  metrics::global().mirrorQueueUnits().Decrement(static_cast<double>(mirror_queue_.size()));
  mirror_queue_.clear();   // their tickets are released: other sessions' writes go on
  mirror_queue_bytes_ = 0;
  mirror_busy_ = false;
  mirror_waiting_ = false;
  mirror_segments_ = 0;
  if (apply_timer_) evtimer_del(apply_timer_.get());
  if (mirror_txn_) {
    // The transaction in progress cannot be applied whole any more: what it did so far is
    // journaled now; its later statements are journaled one by one as they come (classifyUnit).
    metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
    metrics::global().divergences(compare::kindLabel(kind)).Increment();
    journalItem(*mirror_txn_, kind, mirror_txn_->serve.describe(), why + " (the transaction was still open)");
    mirror_txn_.reset();
  }
}

void ClientSession::journalItem(const MirrorItem& item, std::string_view kind, std::string serve_outcome,
                                std::string secondary_outcome) {
  missedWriteOn(router::otherStore(authority_), kind);
  compare::Journal* journal = worker_.context().journal;
  if (journal == nullptr) return;
  // Async: the client was answered already; the record is written behind it.
  journal->append(compare::toJson(divergenceOf(item.unit, item.text, item.parameters, kind, authority_,
                                               std::move(serve_outcome), std::move(secondary_outcome))));
}

// A wrapped write's COMMIT on the authoritative store answered. The write was queued for the
// secondary when its statement succeeded; a COMMIT that failed now leaves it on the secondary only.
void ClientSession::asyncCommitDone(Unit& u) {
  const Outcome& served = lane(u.serve).outcome;
  MirrorItem* item = commitAnswered(u.number);
  if (item == nullptr || u.failed_before_commit || !served.failed) return pumpMirror();
  // The COMMIT failed (a deferred constraint, a serialization failure): neither store is to have
  // the write. The secondary, applying it on its own, is expected to fail alike; it is judged
  // against this outcome — a success there is the row on that store alone (error_one_side).
  // A simple Query's CommandComplete never reached the client: the error took its place.
  log::info("session {}: the {} store's COMMIT failed ({}); the queued write is expected to fail on the other store "
            "too", id_, router::toString(u.serve), served.error);
  item->serve = served;
  if (u.form == Form::Query && !item->serve.tags.empty()) item->serve.tags.pop_back();
  pumpMirror();
}

void ClientSession::applyUnansweredCommits() {
  for (MirrorItem& item : mirror_queue_) item.awaiting_commit = false;
  pumpMirror();
}

MirrorItem* ClientSession::commitAnswered(uint64_t number) {
  for (MirrorItem& item : mirror_queue_) {
    if (item.unit != number || !item.awaiting_commit) continue;
    item.awaiting_commit = false;
    return &item;
  }
  return nullptr;
}

std::shared_ptr<WalEntry> ClientSession::writeIntent(const compare::Divergence& line) {
  compare::AsyncWal* wal = worker_.context().async_wal;
  if (wal == nullptr) return nullptr;
  auto entry = std::make_shared<WalEntry>();
  entry->record = compare::toJson(line);
  auto mark = wal->intentNow(entry->record);
  if (!mark) {
    log::error("session {}: cannot write the write-ahead record (see the journal error): this write goes on "
               "unprotected, a crash now could lose it silently",
               id_);
    return nullptr;
  }
  entry->mark = *mark;
  return entry;
}

// The queued item of a unit that committed on the authoritative store: it settles the intent once
// the secondary applied it (or its miss is journaled). A wrapped write's intent is written now,
// before its COMMIT is sent; any other unit's was written before it was sent (startAsyncUnit).
void ClientSession::attachWal(Unit& u, MirrorItem& item) {
  if (!item.compare || item.serve.failed) return;   // nothing committed: the unit settles its intent
  if (!u.wal && u.wrapped) {
    u.wal = writeIntent(divergenceOf(item.unit, item.text, item.parameters, compare::divergence_kind::kUncleanStop,
                                     authority_, "acknowledged", kNotConfirmed));
  }
  if (!u.wal) return;
  u.wal->queued = true;
  item.wal = u.wal;
}

bool ClientSession::awaitWal(Unit& u) {
  compare::AsyncWal* wal = worker_.context().async_wal;
  if (wal == nullptr || !u.wal || u.wal->settled || !u.wal->queued || lane(u.serve).outcome.failed) return false;
  Worker* worker = &worker_;
  ClientSession* self = this;
  const uint64_t id = id_;
  const uint64_t number = u.number;
  if (!wal->whenDurable(u.wal->mark, [worker, self, id, number](bool durable) {
        worker->post([worker, self, id, number, durable] {
          if (worker->sessionAlive(self, id)) self->walDurable(number, durable);
        });
      })) {
    return false;   // its segment is gone (settled meanwhile), or the writer is full: written is all we have
  }
  u.wait = Wait::Wal;
  return true;
}

void ClientSession::walDurable(uint64_t number, bool durable) {
  if (!unit_ || unit_->number != number || unit_->wait != Wait::Wal) return;
  unit_->wait = Wait::None;
  if (!durable) {
    log::error("session {}: the write-ahead record could not be fsync'd (see the journal error); the write is "
               "acknowledged with its record written but not durable",
               id_);
  }
  if (unit_->wrapped) return ackAsyncCommit();
  releaseUnit();
}

void ClientSession::ackAsyncCommit() {
  if (!unit_ || state_ != State::Relaying) return;
  Unit& u = *unit_;
  releaseHeldRead(true);
  // A COMMIT error went to the client as it came, and took held_complete's place.
  if (!u.held_complete.empty()) append(forwardTarget(u.serve), u.held_complete);
  u.held_complete.clear();
  append(forwardTarget(u.serve), protocol::encode(protocol::ReadyForQuery{u.serve_status}));
  transaction_status_ = u.serve_status;
  u.ending = Ending::Released;
  advanceUnit();
}

void ClientSession::settle(std::shared_ptr<WalEntry>& entry) {
  if (entry && !entry->settled) {
    entry->settled = true;
    if (compare::AsyncWal* wal = worker_.context().async_wal) wal->done(entry->mark);
  }
  entry.reset();
}

// The session ends (its client left, a store's connection died) while a write it wrote an intent
// for is half done: one store may have it, the other not. Journaled now, not at the next start.
void ClientSession::unitEndsInDoubt(Unit& u, const std::string& why) {
  if (!u.wal || u.wal->settled || u.wal->queued) return;
  nlohmann::json record = u.wal->record;
  record["kind"] = compare::divergence_kind::kErrorOneSide;
  record["authoritative_outcome"] = "the session ended (" + why + ") before its COMMIT answered: committed or not, "
                                    "check the rows";
  metrics::global().divergences(metrics::DivergenceKindLabel::ErrorOneSide).Increment();
  missedWriteOn(router::otherStore(authority_), compare::divergence_kind::kErrorOneSide);
  if (compare::Journal* journal = worker_.context().journal) journal->append(std::move(record));
  settle(u.wal);
}

void ClientSession::onApplyTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  const Lane& l = self->lane(router::otherStore(self->authority_));
  log::warn("session {}: a queued write got no complete answer from the {} store: {} of its answers missing, {} "
            "replies planned on that connection, {} bytes unread from it, client output {} bytes{}",
            self->id_, router::toString(router::otherStore(self->authority_)), self->mirror_segments_, l.plan.size(),
            l.backend ? evbuffer_get_length(l.backend->input()) : 0, evbuffer_get_length(self->clientOutput()),
            self->backend_paused_ ? " (reading paused: client output full)" : "");
  self->secondaryLost(fmt::format("no answer within mirror_timeout_ms ({} ms)",
                                  self->worker_.context().config().mirror_timeout_ms));
}

}  // namespace cutover::proxy
