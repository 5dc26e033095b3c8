// Routed mode: running a unit on its stores, judging the outcomes, releasing the client's answer.
#include <malloc.h>

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

// After a request this large, the worker gives freed memory back (malloc_trim).
constexpr size_t kTrimAfterBytes = 16 << 20;

}  // namespace

// --- running a unit ------------------------------------------------------------------------

void ClientSession::sendToLane(Store store, const std::string& bytes, Segment segment) {
  Lane& l = lane(store);
  l.plan.push_back(segment);
  append(l.backend->output(), bytes);
  l.backend->flush();
}

void ClientSession::sendToLane(Store store, const SharedBytes& bytes, Segment segment) {
  Lane& l = lane(store);
  l.plan.push_back(segment);
  bytes.appendTo(l.backend->output());   // the stores share the client's bytes: no copy each
  l.backend->flush();
}

void ClientSession::startUnit() {
  Unit& u = *unit_;
  const Store secondary = router::otherStore(u.serve);
  if (u.mirrored && !lane(secondary).up) {
    u.wait = Wait::Reconnect;   // classifyUnit kept it mirrored: reconnectEnded resumes it
    return;
  }
  if (u.mirrored && lane(secondary).fenced()) {
    // A ramped read given up there is still being cancelled: this unit's work for that store
    // waits (onFenceTimeout bounds the wait; then the store is given up like a lost one).
    u.wait = Wait::Fence;
    armFenceTimer();
    return;
  }
  if (readHazardsHold(u)) return;   // the catalog answers first, or it runs as a write now
  if (u.mirrored && prepareImages(u)) return;   // the catalog answers first: schemaLoaded resumes
  if (u.checked < Checked::Noted) {
    u.checked = Checked::Noted;
    noteTransactionStatement(u);
  }
  u.serve_started = std::chrono::steady_clock::now();
  lane(u.serve).outcome = Outcome{};
  lane(u.serve).parse_completes = 0;
  lane(u.serve).results = 0;
  lane(secondary).outcome = Outcome{};
  lane(secondary).results = 0;
  if (u.async) return startAsyncUnit();
  if (!u.mirrored) {
    u.secondary_progress = Progress::Done;
    u.serve_progress = Progress::Sent;
    // A read served by the store that is not authoritative runs in a read-only transaction there,
    // and its shadow on the authoritative one too: PostgreSQL, not the classifier, guarantees
    // that it writes nothing; what it refuses (25006) runs again as a write (refusedAsWrite).
    // A batch flushed before its Sync (a cursor reading in pieces) too: its answer goes to the
    // client at each flushed answer's end (answerFlushed), its transaction ends after the Sync.
    u.read_only = u.serve != authority_ && u.status_before == 'I' && !u.info.multi_statement;
    if (u.read_only) {
      u.wrapped = true;
      sendToLane(u.serve, injectedStatement(Injected::BeginReadOnly), Segment{Reply::Swallow});
    }
    sendToLane(u.serve, u.bytes, Segment{Reply::Forward, u.read_only, u.shadowed});
    // A read takes no locks: the shadow runs at the same time, on the other store.
    // The shadow on the store that is not authoritative is read-only too (what it refuses is a
    // write the authoritative store ran as a read: hiddenWriteInShadow).
    if (u.shadowed) {
      const Store other = router::otherStore(u.serve);
      const bool shadow_read_only = u.read_only || (other != authority_ && u.status_before == 'I');
      if (shadow_read_only) sendToLane(other, injectedStatement(Injected::BeginReadOnly), Segment{Reply::Swallow});
      sendToLane(other, u.bytes, Segment{Reply::Shadow});
      if (shadow_read_only) sendToLane(other, injectedStatement(Injected::Commit), Segment{Reply::Swallow});
    }
    if (u.serve != authority_) armRampTimer();
    return;
  }
  u.held = true;
  if (u.secondary_first) {
    sendToSecondary();
    return;
  }
  u.serve_progress = Progress::Sent;
  // The serve store runs the unit first and keeps the locks it took; only then does the
  // secondary run it (advanceUnit). Running both at once would let two transactions take the
  // same rows' locks in opposite orders on the two stores: a deadlock across stores.
  if (u.wrapped) sendToLane(u.serve, injectedStatement(Injected::Begin), Segment{Reply::Swallow});
  if (u.images) {
    if (!u.images->prologue.empty()) sendToLane(u.serve, u.images->prologue, Segment{Reply::Swallow});
    sendToLane(u.serve, u.images->statement, Segment{Reply::Forward, true});
  } else {
    sendToLane(u.serve, u.bytes, Segment{Reply::Forward, true});
  }
}

bool ClientSession::commitRolledBack(const Unit& u, const Outcome& served) {
  if (u.info.transaction != router::TransactionCommand::Commit || u.info.multi_statement) return false;
  // Known before the COMMIT is sent (sync sends it to the secondary first) or from its answer.
  return u.status_before == 'E' || (served.tags.size() == 1 && served.tags[0] == "ROLLBACK");
}

void ClientSession::sendToSecondary() {
  Unit& u = *unit_;
  const Store secondary = router::otherStore(u.serve);
  const Outcome& served = lane(u.serve).outcome;
  // The authoritative store failed a wrapped write: nothing of it commits there, and the client
  // is told so. The secondary still runs it, to tell whether it fails alike (journaled when not),
  // but in a transaction of its own that rolls back: it never keeps a write the client was told
  // failed.
  const bool rolled_back = u.wrapped && !u.secondary_first && served.failed;
  if ((u.wrapped || u.secondary_first) && u.route.mirror && !u.wal && !rolled_back) {
    // The secondary commits its part now, ahead of the authoritative store's COMMIT: were the
    // proxy to die in between, the write would be on the secondary only. Written first.
    u.wal = writeIntent(divergenceOf(u, compare::divergence_kind::kUncleanStop, authority_,
                                     "its COMMIT had not answered when the proxy stopped: committed or not, check the rows",
                                     "sent ahead of the authoritative COMMIT: committed here, or about to be"));
  }
  u.secondary_progress = Progress::Sent;
  u.secondary_started = std::chrono::steady_clock::now();
  if (rolled_back) sendToLane(secondary, injectedStatement(Injected::Begin), Segment{Reply::Swallow});
  if (std::string images = secondaryStatement(u); !images.empty()) {
    sendToLane(secondary, images, Segment{Reply::Record});
    // The apply (a simple Query) dropped the unnamed statement the client's batch made there.
    if (!u.images->restore.empty()) sendToLane(secondary, u.images->restore, Segment{Reply::Swallow});
  } else if (std::string created = largeObjectCreate(u); !created.empty()) {
    sendToLane(secondary, created, Segment{Reply::Record});   // the large object the serve store created, by its OID
  } else if (commitRolledBack(u, served)) {
    // The client's COMMIT of a transaction that failed on the authoritative store (PostgreSQL
    // answered ROLLBACK): the secondary, where the same statements may have succeeded, rolls
    // back too instead of committing them.
    sendToLane(secondary, queryMessage(u.info.chain ? "ROLLBACK AND CHAIN" : "ROLLBACK"), Segment{Reply::Record});
  } else {
    sendToLane(secondary, u.bytes, Segment{Reply::Record});
  }
  if (rolled_back) sendToLane(secondary, injectedStatement(Injected::Rollback), Segment{Reply::Swallow});
  armMirrorTimer();
}

// mirror_timeout_ms bounds how long the client waits on the secondary alone: the clock starts
// once the serve store is done (a COPY running on both stores is not cut short by it).
void ClientSession::armMirrorTimer() {
  Unit& u = *unit_;
  if (!u.mirrored || u.secondary_progress != Progress::Sent) return;
  if (u.serve_progress != Progress::Done && !u.secondary_first) return;
  const int ms = worker_.context().config().mirror_timeout_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(mirror_timer_.get(), &tv);
}

// A ramped read that PostgreSQL refused in its read-only transaction (25006: it calls a function
// that writes, a view over one…) is a write the classifier did not see: its answer, held back
// until complete, is dropped, the transaction rolled back, and the unit runs again as a write on
// the authoritative store, mirrored, so the client sees only that answer. An answer already
// streaming to the client (beyond the holding buffer) cannot be replaced: it keeps its error.
bool ClientSession::refusedAsWrite(Unit& u) {
  const Lane& served = lane(u.serve);
  if (!served.outcome.error.starts_with("25006")) return false;
  u.info.kind = router::StatementKind::Write;
  u.info.reason = "refused in a read-only transaction (25006): a write";
  // Remembered: the next run of this shape is a write from the start, wherever it is served
  // (the authoritative store runs no read in a read-only transaction, so it would not tell).
  if (!u.text_cut) {
    worker_.classifier().learnWrite(u.text, u.info.reason);
    for (const auto& [name, text] : parsed_text_) {   // the session's statements of that text
      if (text != u.text) continue;
      router::StatementInfo& recorded = parsed_[name];
      recorded.kind = router::StatementKind::Write;
      recorded.reason = u.info.reason;
      recorded.wrappable = !recorded.multi_statement;
    }
  }
  if (u.delivery != Delivery::Nothing) {
    log::info("session {}: the {} refused a ramped read as a write in its read-only transaction ({}) after some of "
              "its answer reached the client, who gets the error; from now on it runs as a write: \"{}\"",
              id_, served.backend->describe(), served.outcome.error, u.text.substr(0, 200));
    return false;
  }
  const Store ramped = u.serve;
  evtimer_del(ramp_timer_.get());
  ramp_hold_.discard();
  sendToLane(ramped, injectedStatement(Injected::Rollback), Segment{Reply::Swallow});
  if (u.shadowed) {
    abandonShadow(u.number);
    u.shadowed = false;
  }
  log::info("session {}: the {} refused a ramped read as a write in its read-only transaction ({}); it runs as a "
            "write on the {} store: \"{}\"",
            id_, served.backend->describe(), served.outcome.error, router::toString(authority_), u.text.substr(0, 200));
  u.pending_statements.clear();   // the store refused the batch: nothing of it was created
  routeAsWrite(u);
  metrics::global().statements(kindLabel(u.info.kind), label(u.serve)).Increment();   // it runs a second time
  return true;
}

void ClientSession::routeAsWrite(Unit& u) {
  u.info.wrappable = !u.info.multi_statement;   // a SELECT does the same inside BEGIN … COMMIT
  u.read_only = false;
  // Routed again as the write it is, so per-table `writes` overrides count as for any write (the
  // unit runs outside any transaction).
  router::SessionView view = storeView();
  u.route = router::decide(u.info, u.text, viewOf(*flags_), view);
  u.route.shadow = false;
  u.serve = u.route.serve;
  const Store secondary = router::otherStore(u.serve);
  u.mirrored = u.route.mirror && lane(secondary).up;
  if (u.route.mirror && !u.mirrored) {
    journalMiss(u, compare::divergence_kind::kSecondaryUnavailable, "not sent: store down");
  }
  // As router::planUnit plans an autocommit write outside a transaction.
  u.async = u.mirrored && flags_->mirror == config::MirrorMode::Async;
  u.wrapped = u.mirrored && u.info.wrappable && !u.open;
  u.held = false;
  u.serve_progress = u.secondary_progress = Progress::Unsent;
  u.checked = Checked::Hazards;   // its row images are checked now, as for any write
  startUnit();
}

// Whether the rows of the unit's result number `result` are a write's (RETURNING), compared
// between the stores. mirror: async compares the whole queued batch's rows on its own path.
bool ClientSession::writesRows(const Unit& u, size_t result) {
  // mirror: async: the first unit of a queued item is judged per result on both sides
  // (MirrorItem::execute_writes); the later units of a queued transaction whole.
  if (u.execute_writes.empty() || (u.async && u.status_before != 'I')) return true;
  return result < u.execute_writes.size() ? u.execute_writes[result] : true;
}

// The unit's PREPAREs and named Parses the serve store accepted enter the session's state. A
// batch runs in order and stops at its first error, so the first parse_completes Parses of the
// unit are those PostgreSQL created; a PREPARE (alone in its Query) succeeded when it was tagged.
void ClientSession::recordAccepted(Unit& u) {
  if (u.pending_statements.empty()) return;
  const Lane& served = lane(u.serve);
  const bool prepared = !served.outcome.failed && std::find(served.outcome.tags.begin(), served.outcome.tags.end(),
                                                            "PREPARE") != served.outcome.tags.end();
  for (PendingStatement& p : u.pending_statements) {
    if (p.sql) {
      if (!prepared) continue;
      sql_prepared_.apply(p.info);
      if (p.replayable) {
        replay_.addCommand(p.replay);
      } else {
        replay_.markIncomplete();
      }
      continue;
    }
    if (p.parse_ordinal >= served.parse_completes) continue;   // refused, or after the batch's error
    parsed_[p.name] = std::move(p.info);
    parsed_text_[p.name] = std::move(p.text);
    if (p.replayable) {
      replay_.keepStatement(p.name, std::move(p.replay));
    } else {
      replay_.markIncomplete();
    }
  }
  u.pending_statements.clear();
}

// What decide() needs of the session's stores: which can serve reads. A store that missed a write
// of this session, or acknowledged async writes before the last unclean stop, serves none.
router::SessionView ClientSession::storeView() const {
  const SessionContext& ctx = worker_.context();
  router::SessionView view;
  view.new_store_available = lanes_[1].up && !lanes_[1].fenced();
  view.session_hash = session_hash_;
  view.missed_write_on_old = missed_on_old_ || ctx.lost_at_start_old > 0;
  view.missed_write_on_new = missed_on_new_ || ctx.lost_at_start_new > 0;
  return view;
}

void ClientSession::advanceUnit() {
  if (!unit_) return;
  Unit& u = *unit_;
  if (u.ending == Ending::Released) {
    if (u.wal && !u.wal->queued) settle(u.wal);   // both stores answered: nothing in doubt
    const bool large = u.bytes.size() >= kTrimAfterBytes;
    unit_.reset();   // `u` dangles from here on
    copy_in_ = CopyIn::Idle;
    // glibc keeps the freed heap pages of this thread's arena (the client input's chains, the
    // parser's memory) for reuse: after a huge request they go back to the system.
    if (large) malloc_trim(0);
    evtimer_del(mirror_timer_.get());
    evtimer_del(ramp_timer_.get());
    client_->flush();
    if (draining_) return closeIfDrainedAndIdle();
    return routedClientInput();
  }
  if (u.async) {
    // The client's answer does not wait for the secondary: the write is queued for it.
    if (u.serve_progress != Progress::Done || u.secondary_progress == Progress::Queued) return;
    u.secondary_progress = Progress::Queued;
    queueMirror(u);
    if (!u.wrapped && awaitWal(u)) return;   // a wrapped write's waits for its COMMIT first
    return releaseUnit();
  }
  if (u.secondary_first && u.secondary_progress == Progress::Done && u.serve_progress == Progress::Unsent) {
    // The secondary committed (or failed to): now the authoritative store, whose answer the
    // client gets.
    u.serve_progress = Progress::Sent;
    u.serve_started = std::chrono::steady_clock::now();
    sendToLane(u.serve, u.bytes, Segment{Reply::Forward, true});
    return;
  }
  if (!u.secondary_first && u.serve_progress == Progress::Done && u.secondary_progress == Progress::Unsent) {
    if (u.mirror_overflow) {
      journalMiss(u, compare::divergence_kind::kQueueFull,
                  fmt::format("not applied: the batch before its Sync is larger than mirror_queue_bytes ({})",
                              worker_.context().config().mirror_queue_bytes));
      u.secondary_progress = Progress::Done;
      u.mirrored = false;
      return advanceUnit();
    }
    return sendToSecondary();
  }
  if (u.serve_progress == Progress::Done && u.secondary_progress != Progress::Done) return armMirrorTimer();   // COPY: sent earlier, now only S is awaited
  if (u.serve_progress != Progress::Done || u.secondary_progress != Progress::Done) return;
  evtimer_del(mirror_timer_.get());
  finishComparison();
}

void ClientSession::countMirrorWrite(bool diverged, bool failed, bool nondeterministic) {
  auto& registry = metrics::global();
  if (diverged) {
    registry.mirrorWrites(metrics::MirrorResult::Diverged).Increment();
  } else if (failed) {
    registry.mirrorWrites(metrics::MirrorResult::Error).Increment();
  } else if (nondeterministic) {
    registry.mirrorWrites(metrics::MirrorResult::Nondeterministic).Increment();
  } else {
    registry.mirrorWrites(metrics::MirrorResult::Ok).Increment();
  }
}

void ClientSession::finishComparison() {
  Unit& u = *unit_;
  const Store secondary = router::otherStore(u.serve);
  const Outcome& a = lane(u.serve).outcome;
  const Outcome& b = lane(secondary).outcome;
  if (u.wrapped && !u.async && u.ending == Ending::Running && u.mirrored && u.route.mirror && lane(secondary).up &&
      !a.failed && b.failed) {
    // The secondary ran it on its own and failed at its commit or before; the serve store has
    // not committed yet, and its COMMIT may fail alike (a DEFERRABLE constraint): judged with the
    // COMMIT's answer, which the client's ReadyForQuery waits for (segmentDone).
    u.failed_before_commit = false;
    u.ending = Ending::JudgeAtCommit;
    sendToLane(u.serve, injectedStatement(Injected::Commit), Segment{Reply::Commit, true});
    return;
  }
  std::string_view kind;
  // A store's own errors, for auto-rollback: one side failing where the other did not, or a
  // failure of a read the store served alone.
  // (Not a 25006 of a ramped read's read-only transaction: that is cutover's enforcement.)
  if (!u.mirrored && a.failed && !(u.read_only && a.error.starts_with("25006"))) {
    metrics::global().storeErrors(label(u.serve)).Increment();
  } else if (u.mirrored && lane(secondary).up && a.failed != b.failed) {
    metrics::global().storeErrors(label(a.failed ? u.serve : secondary)).Increment();
  }
  if (u.mirrored && u.route.mirror && lane(secondary).up) {
    // Rows of an EXPLAIN ANALYZE (timings) and the like are not the write's values: not compared.
    // Row images make the store-picked values the same on both: their rows are compared.
    const bool nondeterministic = (u.info.nondeterministic || !u.inexact.empty()) && !u.images;
    kind = compare::judgeWrite(a, b, {.nondeterministic = nondeterministic,
                                      .compare_rows = u.info.unrepeatable.empty()});
    countMirrorWrite(!kind.empty(), a.failed, nondeterministic);
    // Mirrored as its text although the store picked values: said so, never silent.
    if (kind.empty() && !u.inexact.empty() && !a.failed) kind = compare::divergence_kind::kNondeterministic;
  }
  const bool diverged = !kind.empty();
  if (!diverged) return releaseUnit();
  metrics::global().divergences(compare::kindLabel(kind)).Increment();
  compare::Divergence d = divergenceOf(u, kind, u.serve, a.describe(), b.describe());
  if (u.wrapped && !u.secondary_first && u.ending == Ending::Running && a.failed && !b.failed) {
    d.secondary_outcome += " (rolled back: the authoritative store failed it, and the client was told so)";
  }
  if (kind == compare::divergence_kind::kNondeterministic) {
    d.table = fmt::format("{}", fmt::join(u.info.tables, ", "));
    d.reason = u.inexact;
  } else if (u.execute_texts.size() > 1 && u.status_before == 'I') {
    // A pipelined batch: the line names the statement that diverged, not the batch's first.
    const size_t at = compare::firstDifference(a, b);
    if (at < u.execute_texts.size()) {
      d.statement = u.execute_texts[at];
      d.reason = fmt::format("statement {} of the {} writes of one pipelined batch (up to its Sync)", at + 1,
                             u.execute_texts.size());
    }
  }
  missedWriteOn(router::otherStore(u.serve), kind);
  log::warn("session {}: divergence ({}) on \"{}\": {} {} vs {} {}", id_, kind, u.text.substr(0, 200),
            d.authoritative_store, d.authoritative_outcome, d.secondary_store, d.secondary_outcome);
  compare::Journal* journal = worker_.context().journal;
  if (journal == nullptr) return releaseUnit();
  // Sync mode: the client hears back only once the divergence is on disk.
  Worker* worker = &worker_;
  ClientSession* self = this;
  const uint64_t id = id_;
  const bool queued = journal->append(compare::toJson(d), [worker, self, id](bool) {
    worker->post([worker, self, id] {
      if (worker->sessionAlive(self, id)) self->releaseUnit();
    });
  });
  if (!queued) {
    metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
    log::error("session {}: divergence journal is full; divergence logged above only", id_);
    releaseUnit();
  }
}

void ClientSession::syncCommitDone(Unit& u) {
  const Outcome& served = lane(u.serve).outcome;
  const Store secondary = router::otherStore(u.serve);
  if (!u.mirrored || u.failed_before_commit || !served.failed || lane(secondary).outcome.failed) return;
  // The secondary ran it outside a transaction block (committed); the authoritative store's
  // COMMIT failed (a deferred constraint, a serialization failure): the row is on one store only.
  metrics::global().divergences(metrics::DivergenceKindLabel::ErrorOneSide).Increment();
  metrics::global().mirrorWrites(metrics::MirrorResult::Diverged).Increment();
  missedWriteOn(secondary, compare::divergence_kind::kErrorOneSide);
  log::warn("session {}: the {} store's COMMIT failed after the {} store applied the write: {}", id_,
            router::toString(u.serve), router::toString(secondary), served.error);
  journalWrite(divergenceOf(u, compare::divergence_kind::kErrorOneSide, u.serve, "COMMIT failed: " + served.error,
                            lane(secondary).outcome.describe() + " (committed)"));
}

void ClientSession::releaseUnit() {
  if (!unit_ || state_ != State::Relaying) return;
  Unit& u = *unit_;
  if (u.wrapped && u.ending == Ending::Running) {
    if (!u.async) u.failed_before_commit = lane(u.serve).outcome.failed;
    u.ending = Ending::Committing;
    // Async: the ReadyForQuery waits for the write-ahead record too (ackAsyncCommit).
    sendToLane(u.serve, injectedStatement(Injected::Commit), Segment{Reply::Commit, u.async});
    return;   // its ReadyForQuery completes the unit
  }
  if (u.journaled) {
    // Sync mode: a miss or divergence journaled while it ran is on disk before the client hears
    // back, as a compared write's divergence is (finishComparison).
    u.journaled = false;
    Worker* worker = &worker_;
    ClientSession* self = this;
    const uint64_t id = id_;
    const uint64_t number = u.number;
    compare::Journal* journal = worker_.context().journal;
    if (journal != nullptr && journal->barrier([worker, self, id, number](bool) {
          worker->post([worker, self, id, number] {
            if (worker->sessionAlive(self, id) && self->unit_ && self->unit_->number == number) self->releaseUnit();
          });
        })) {
      return;
    }
  }
  if (u.held) {
    releaseHeldRead(true);   // a ramped answer waiting in the holding buffer goes first
    // The held ReadyForQuery of the serve store goes to the client now (not for cutover's own
    // Sync after a flushed batch: the client sent none).
    transaction_status_ = u.serve_status;
    // A wrapped simple Query judged at its COMMIT: its CommandComplete, kept until the COMMIT
    // succeeded (a COMMIT error took its place).
    if (!u.held_complete.empty()) append(clientOutput(), u.held_complete);
    u.held_complete.clear();
    if (u.form != Form::FlushOnly) append(clientOutput(), protocol::encode(protocol::ReadyForQuery{u.serve_status}));
  }
  u.ending = Ending::Released;
  advanceUnit();
}

void ClientSession::journalMiss(const Unit& unit, std::string_view kind, const std::string& outcome) {
  // A read inside a transaction is mirrored only to keep the secondary's transaction in step;
  // the secondary missing it changes no data there (its writes and COMMIT are journaled).
  if (unit.info.kind == router::StatementKind::Read) return;
  missedWriteOn(router::otherStore(authority_), kind);
  metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
  metrics::global().divergences(compare::kindLabel(kind)).Increment();
  journalWrite(divergenceOf(unit, kind, authority_, "sent", outcome));
}

bool ClientSession::journalWrite(const compare::Divergence& d) {
  compare::Journal* journal = worker_.context().journal;
  if (journal == nullptr) return false;
  const bool queued = journal->append(compare::toJson(d));
  if (!queued) log::error("session {}: divergence journal is full; divergence logged only: {}", id_, d.statement.substr(0, 200));
  if (queued && unit_) unit_->journaled = true;
  return queued;
}

compare::Divergence ClientSession::divergenceOf(const Unit& unit, std::string_view kind, Store serve,
                                                std::string serve_outcome, std::string secondary_outcome) const {
  // Journal per transaction: a unit inside an explicit transaction is journaled under the
  // transaction's id (its first unit's number); the unit that ends it carries every statement.
  const bool in_transaction = unit.status_before != 'I';
  std::string text = unit.text;
  if (in_transaction && unit.info.kind == router::StatementKind::Transaction && !txn_statements_.empty()) {
    // The COMMIT itself is noted once it was mirrored: not named twice.
    text = txn_last_noted_ == unit.number ? txn_statements_ : txn_statements_ + "; " + unit.text;
  }
  return divergenceOf(in_transaction ? txn_id_ : unit.number, std::move(text), unit.parameters, kind, serve,
                      std::move(serve_outcome), std::move(secondary_outcome));
}

void ClientSession::noteTransactionStatement(const Unit& u) {
  if (u.status_before == 'I') {
    txn_id_ = u.number;
    txn_statements_.clear();
  }
  if (!u.route.mirror || u.info.kind == router::StatementKind::Read) return;
  if (txn_statements_.size() >= kJournalTextBytes) return;
  if (!txn_statements_.empty()) txn_statements_ += "; ";
  txn_statements_ += compare::withParameters(u.text, u.parameters)
                         .substr(0, kJournalTextBytes - std::min(txn_statements_.size(), kJournalTextBytes));
  txn_last_noted_ = u.number;
}

compare::Divergence ClientSession::divergenceOf(uint64_t unit, std::string text,
                                                std::vector<std::optional<std::string>> parameters,
                                                std::string_view kind, Store serve, std::string serve_outcome,
                                                std::string secondary_outcome) const {
  compare::Divergence d;
  d.time = compare::nowRfc3339Ms();
  d.session_id = id_;
  d.transaction_id = unit;
  d.kind = std::string(kind);
  d.statement = std::move(text);
  d.parameters = std::move(parameters);
  d.authoritative_store = std::string(router::toString(serve));
  d.secondary_store = std::string(router::toString(router::otherStore(serve)));
  d.authoritative_outcome = std::move(serve_outcome);
  d.secondary_outcome = std::move(secondary_outcome);
  return d;
}

void ClientSession::onMirrorTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<ClientSession*>(arg);
  self->secondaryLost(fmt::format("no answer within mirror_timeout_ms ({} ms)",
                                  self->worker_.context().config().mirror_timeout_ms));
}

}  // namespace cutover::proxy
