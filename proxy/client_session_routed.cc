// Routed mode of ClientSession: dual-write (sync mirror) and the read ramp. See DESIGN.md
// "Guarantees" and "Data path". The pass-through relay lives in client_session.cc.
//
// Every client request becomes a Unit (a simple Query, a FunctionCall, or an extended batch up to
// its Sync); units run one at a time. The router decides which store serves a unit and whether
// the other store runs it too. Each store's replies are consumed in order against a plan of
// Segments, one per ReadyForQuery expected. In sync mode the client's ReadyForQuery is held until
// the secondary finished the unit and any divergence is durable in the journal; an autocommit
// write runs inside BEGIN/COMMIT on the serve store so that its row locks are held until the
// secondary applied it, and an explicit COMMIT reaches the secondary first: conflicting writes
// of different sessions therefore reach the secondary in the order the authoritative store
// serialised them.
#include <malloc.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>

#include "common/log.h"
#include "common/metrics.h"
#include "compare/divergence.h"
#include "router/unit_plan.h"
#include "proxy/cancel_forwarder.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using protocol::DecodeStatus;
using protocol::Direction;
using router::Store;

constexpr size_t kMaxControlMessage = 1 << 20;   // CommandComplete/ErrorResponse/ReadyForQuery
constexpr size_t kHighWatermark = 512 * 1024;
constexpr size_t kMaxDigestedRow = 64 * 1024;
constexpr size_t kRampHoldBytes = 256 * 1024;
constexpr size_t kMaxReplayed = 1000;
constexpr size_t kMaxShadowMessage = 1 << 20;   // named statements / session commands kept for a reconnect
// A session command longer than this is not kept for replay (the replay is then incomplete).
constexpr size_t kMaxReplayedBytes = 64 * 1024;
// Statement text kept for the journal; beyond it cut short, with a note of its size.
constexpr size_t kJournalTextBytes = 64 * 1024;
// After a request this large, the worker gives freed memory back (malloc_trim).
constexpr size_t kTrimAfterBytes = 16 << 20;

// Sets `out` to `sql`, or for a huge statement to its first kJournalTextBytes (at a character
// boundary) and a note of its size: a unit keeps its text only for the journal. True if cut.
bool journalText(std::string_view sql, std::string& out) {
  if (sql.size() <= kJournalTextBytes) {
    out.assign(sql);
    return false;
  }
  size_t keep = kJournalTextBytes;
  while (keep > 0 && (static_cast<unsigned char>(sql[keep]) & 0xC0) == 0x80) --keep;   // UTF-8 continuation
  out = fmt::format("{}… [statement of {} bytes, cut at {} in the journal]", sql.substr(0, keep), sql.size(), keep);
  return true;
}

metrics::StoreLabel label(Store store) { return store == Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New; }

metrics::StatementKindLabel kindLabel(router::StatementKind kind) {
  switch (kind) {
    case router::StatementKind::Read: return metrics::StatementKindLabel::Read;
    case router::StatementKind::Write: return metrics::StatementKindLabel::Write;
    case router::StatementKind::Ddl: return metrics::StatementKindLabel::Ddl;
    case router::StatementKind::Transaction: return metrics::StatementKindLabel::Transaction;
    case router::StatementKind::Session: return metrics::StatementKindLabel::Session;
  }
  return metrics::StatementKindLabel::Write;
}

router::FlagView viewOf(const flags::FlagSnapshot& f) {
  router::FlagView v;
  v.writes = f.writes;
  v.mirror = f.mirror;
  v.reads_new_percent = f.reads_new_percent;
  v.shadow_percent = f.shadow_percent;
  v.sticky = f.sticky;
  v.tables = &f.tables;
  return v;
}


}  // namespace

Store ClientSession::storeOf(const Backend& backend) const {
  return lanes_[1].backend.get() == &backend ? Store::New : Store::Old;
}

// --- login ---------------------------------------------------------------------------------

void ClientSession::initRouted() {
  uint64_t raw = 0;
  RAND_bytes(reinterpret_cast<unsigned char*>(&raw), sizeof raw);
  session_hash_ = raw;   // sticky: session — a random per-session key, stable for its life
  mirror_timer_.reset(evtimer_new(worker_.base(), &ClientSession::onMirrorTimeout, this));
  ramp_timer_.reset(evtimer_new(worker_.base(), &ClientSession::onRampReadTimeout, this));
  fence_timer_.reset(evtimer_new(worker_.base(), &ClientSession::onFenceTimeout, this));
  apply_timer_.reset(evtimer_new(worker_.base(), &ClientSession::onApplyTimeout, this));
}

void ClientSession::startRoutedBackends() {
  initRouted();
  openLane(Store::Old);
  openLane(Store::New);
}

void ClientSession::openLane(Store store) {
  const auto& ctx = worker_.context();
  Lane& l = lane(store);
  const StoreAddress& address = store == Store::New ? ctx.new_store : ctx.old_store;
  const TlsClientContext* tls = store == Store::New ? ctx.new_store_tls.get() : ctx.old_store_tls.get();
  // A connection opened after the session created temporary objects lacks them.
  if (state_ == State::Relaying && temp_objects_) temp_on_authority_only_ = true;
  l.backend = std::make_unique<Backend>(worker_.base(), address, tls, *this);
  l.plan.clear();
  l.remaining = 0;
  l.abandoned = 0;          // a fence belongs to the connection it was raised on
  l.cancel_pending = false;
  l.up = false;
  l.connecting = true;
  l.opened_for = flags_->version;
  l.error.clear();
  l.backend->connect(routed_startup_, ctx.config().connect_timeout_ms);
}

// --- flag flips ----------------------------------------------------------------------------

bool ClientSession::needsRouting(const flags::FlagSnapshot& flags) { return router::needsClassification(viewOf(flags)); }

namespace {

// Whether the flags may send this session's work to the store that is not authoritative.
bool needsOtherStore(const flags::FlagSnapshot& f) {
  if (f.writes == config::WritesMode::New && f.tables.empty() && f.shadow_percent == 0) return false;
  return router::needsClassification(viewOf(f));
}

// The session's state that a new store connection needs, read from the connected store when a
// session leaves pass-through (nothing was parsed until then): settings changed in the session
// (session_authorization and role first), prepared statements, LISTEN channels.
constexpr std::string_view kStateQuery =
    "SELECT kind, name, value, types FROM ("
    " SELECT CASE name WHEN 'session_authorization' THEN 0 WHEN 'role' THEN 1 ELSE 2 END AS o, 'set' AS kind, name,"
    "  pg_catalog.current_setting(name) AS value, NULL::text AS types"
    "  FROM pg_catalog.pg_settings WHERE source = 'session'"
    " UNION ALL SELECT 3, CASE WHEN from_sql THEN 'prepare' ELSE 'parse' END, name, statement,"
    "  pg_catalog.array_to_string(parameter_types::oid[], ',') FROM pg_catalog.pg_prepared_statements"
    " UNION ALL SELECT 4, 'listen', c, NULL, NULL FROM pg_catalog.pg_listening_channels() c"
    " UNION ALL SELECT 5, 'temp', c.relname::text, '', NULL FROM pg_catalog.pg_class c"
    "  WHERE c.relnamespace = pg_catalog.pg_my_temp_schema()"
    ") s ORDER BY o, name";

constexpr size_t kMaxCapturedBytes = 8u << 20;

}  // namespace

bool ClientSession::refreshFlags() {
  const flags::FlagSnapshotPtr& current = worker_.flags();
  if (current == flags_ && !switching_) return true;
  // mirror: async: new flags (another authority, another mirror mode) apply once everything this
  // session had acknowledged is applied on the secondary (finishMirrorItem resumes the input).
  if (current != flags_ && mirrorPending()) return false;
  // Nor while a ramped read given up on a store is still being cancelled there: authority could
  // move onto that connection (fenceMaybeLifted resumes the input; bounded by the fence timer).
  if (current != flags_ && routed_ && anyLaneFenced()) {
    armFenceTimer();
    return false;
  }
  if (current != flags_) {
    log::debug("session {}: flags v{} → v{}", id_, flags_->version, current->version);
    flags_ = current;
  }
  if (!routed_) {
    // Pass-through serves the old store (needsRouting is false only for writes: old).
    if (!needsRouting(*flags_) || worker_.context().new_store.store == nullptr) return true;
    enterRouted();
    return false;
  }
  return settleFlags();
}

// Routed, outside a transaction, no unit running: makes the stores this session holds match
// flags_. Opening a connection makes units wait (switching_) until it is logged in and in step.
bool ClientSession::settleFlags() {
  const auto& ctx = worker_.context();
  const Store want = router::authoritative(flags_->writes);
  if (want != authority_) {
    Lane& w = lane(want);
    if (w.connecting) return switching_ = true, false;
    if (!w.up) {
      if (w.opened_for != flags_->version) {
        openLane(want);
        return switching_ = true, false;
      }
      switching_ = false;
      fatal("08006",
            fmt::format("cutover cannot move this session to the {} store, which flags v{} make authoritative: {}",
                        router::toString(want), flags_->version, w.error.empty() ? "connection lost" : w.error),
            "reconnect once the store is reachable, or roll the flags back (cutover ctl rollback)");
      return false;
    }
    log::info("session {}: flags v{}: the {} store is authoritative from here on", id_, flags_->version,
              router::toString(want));
    authority_ = want;
  }
  const Store other = router::otherStore(authority_);
  Lane& o = lane(other);
  const bool healthy = ctx.health == nullptr || (other == Store::New ? ctx.health->newUp() : ctx.health->oldUp());
  if (needsOtherStore(*flags_) && !o.up) {
    if (o.connecting) return switching_ = true, false;
    if (o.opened_for != flags_->version && healthy && replay_complete_) {
      openLane(other);
      return switching_ = true, false;
    }
    // Down or failed for these flags: units go on without it (misses journaled) and
    // maybeReconnectSecondary() brings it back when its store answers again.
  }
  switching_ = false;
  return true;
}

// Pass-through → routed, at a boundary outside a transaction: the old store's connection becomes
// the old lane, the session's state is read from it, and the other store's connection is opened
// and brought in step before the next unit runs.
void ClientSession::enterRouted() {
  initRouted();
  routed_ = true;
  switching_ = true;
  authority_ = Store::Old;
  Lane& l = lane(Store::Old);
  l.backend = std::move(backend_);
  l.up = true;
  l.last_status = 'I';
  backend_counted_ = false;   // counted from here on as the old lane
  captured_.clear();
  captured_bytes_ = 0;
  log::info("session {}: flags v{} need the router; copying the session's state before opening the other store",
            id_, flags_->version);
  sendToLane(Store::Old, queryMessage(kStateQuery), Segment{Reply::Capture});
}

void ClientSession::capturedState() {
  router::Classifier& classifier = worker_.classifier();
  std::vector<std::string> prepares;
  for (const auto& row : captured_) {
    if (row.size() != 4 || !row[0] || !row[1] || !row[2]) continue;
    const std::string& kind = *row[0];
    const std::string& name = *row[1];
    const std::string& value = *row[2];
    if (kind == "set") {
      session_log_.push_back(
          fmt::format("SELECT pg_catalog.set_config({}, {}, false)", sqlLiteral(name), sqlLiteral(value)));
    } else if (kind == "parse") {
      protocol::Parse parse;
      parse.name = name;
      parse.query = value;
      if (row[3]) {
        std::string_view types = *row[3];
        while (!types.empty()) {
          const size_t comma = types.find(',');
          parse.param_types.push_back(static_cast<uint32_t>(std::strtoul(std::string(types.substr(0, comma)).c_str(), nullptr, 10)));
          types = comma == std::string_view::npos ? std::string_view{} : types.substr(comma + 1);
        }
      }
      parsed_[name] = classifier.classify(value);
      parsed_text_[name] = value;
      parsed_bytes_[name] = protocol::encode(parse);
    } else if (kind == "prepare") {
      // The text the client sent to create it; replayed only when it is that PREPARE alone.
      router::StatementInfo info = classifier.classify(value);
      if (info.kind != router::StatementKind::Session || info.session != router::SessionCommand::Prepare ||
          info.multi_statement) {
        log::warn("session {}: prepared statement \"{}\" came with other statements; it is not copied to the other store",
                  id_, name);
        replay_complete_ = false;
        continue;
      }
      if (std::find(prepares.begin(), prepares.end(), value) != prepares.end()) continue;
      prepares.push_back(value);
      sql_prepared_.apply(info);
      session_log_.push_back(value);
    } else if (kind == "listen") {
      session_log_.push_back("LISTEN " + sqlIdentifier(name));
    } else if (kind == "temp" && !temp_on_authority_only_) {
      temp_objects_ = temp_on_authority_only_ = true;
      log::info("session {}: it has temporary tables (\"{}\"…) on the old store only; its reads stay there", id_, name);
    }
  }
  captured_.clear();
  captured_.shrink_to_fit();
  if (session_log_.size() > kMaxReplayed || parsed_bytes_.size() > kMaxReplayed) replay_complete_ = false;
  if (settleFlags()) routedClientInput();
}

// --- client input --------------------------------------------------------------------------

void ClientSession::routedClientInput() {
  evbuffer* in = clientInput();
  const uint32_t limit = worker_.context().config().max_message_bytes;
  while (state_ == State::Relaying) {
    protocol::Frame frame = peekMessage(in, Direction::Frontend, limit);
    if (frame.status == DecodeStatus::NeedMoreData) break;
    if (frame.status == DecodeStatus::Invalid) return fatal("08P01", "invalid frontend message: " + frame.reason);
    const char type = frame.type;
    if (type == protocol::CopyData::kType || type == protocol::CopyDone::kType || type == protocol::CopyFail::kType ||
        (type == protocol::Sync::kType && unit_ && unit_->copy_sync_owed)) {
      const CopyStep step = takeCopyMessage(in, frame);   // client_session_copy.cc
      if (step == CopyStep::Wait) break;
      if (step == CopyStep::Taken) continue;
    }
    if (unit_ && !unit_->open) break;   // one unit at a time: the rest waits in the buffer
    if (evbuffer_get_length(in) < frame.totalSize()) break;
    if (type == protocol::Terminate::kType) return finish();
    if (unit_ && unit_->open) {
      // More of an extended batch that was flushed before its Sync: same route, same stores.
      std::string bytes(frame.totalSize(), '\0');
      evbuffer_remove(in, bytes.data(), bytes.size());
      append(lane(unit_->serve).backend->output(), bytes);
      lane(unit_->serve).backend->flush();
      // The secondary gets the whole batch once the serve store is done; kept up to
      // mirror_queue_bytes (beyond it the secondary cannot have it: journaled then).
      if (!unit_->mirror_overflow && unit_->bytes.size() + bytes.size() >
                                         static_cast<size_t>(worker_.context().config().mirror_queue_bytes)) {
        unit_->mirror_overflow = true;
        unit_->bytes.clear();
      }
      if (!unit_->mirror_overflow) unit_->bytes.append(bytes);
      if (type == protocol::Sync::kType) unit_->open = false;
      continue;
    }
    if (!unit_ && transaction_status_ == 'I') {
      if (!refreshFlags()) break;   // resumes once the store connection the flags need is ready
      maybeReconnectSecondary();
    }
    Unit unit;
    if (!takeUnit(unit)) break;
    unit_ = std::move(unit);
    startUnit();
  }
  // Backpressure: stop reading while a unit runs and enough input waits behind it, or while a
  // COPY streams to a store that has too much of it unsent (onBackendDrained resumes). An
  // incomplete unit is always read on: a single message up to max_message_bytes, or a long
  // batch, which takeUnit takes in pieces (an open unit).
  if (state_ == State::Relaying) {
    const bool copy_backed_up = copy_in_ == CopyIn::Streaming && unit_ && copyBackedUp();
    if (copy_backed_up) client_paused_ = true;
    client_->setReading(!copy_backed_up && !(unit_ && !unit_->open && copy_in_ == CopyIn::Idle &&
                                             evbuffer_get_length(in) > kHighWatermark));
  }
}

// Takes the next whole unit from the client's input: a Query, a FunctionCall, or extended
// messages up to a Sync (or up to a Flush, after which the batch stays open).
bool ClientSession::takeUnit(Unit& unit) {
  evbuffer* in = clientInput();
  const uint32_t limit = worker_.context().config().max_message_bytes;
  size_t offset = 0;
  bool has_sync = false;
  bool end = false;
  bool cut = false;
  bool flushed = false;          // the batch ends at a Flush
  bool executes = false;         // it binds or executes something
  while (!end) {
    protocol::Frame frame = peekMessageAt(in, offset, Direction::Frontend, limit);
    if (frame.status != DecodeStatus::Ready || evbuffer_get_length(in) < offset + frame.totalSize()) {
      // A batch longer than the input buffer before its Sync (a large pipeline): what is here
      // runs now as an open unit and the rest streams after it, never gathered whole.
      if (offset == 0 || evbuffer_get_length(in) < kHighWatermark) return false;
      cut = true;
      break;
    }
    switch (frame.type) {
      case protocol::Query::kType:
      case protocol::FunctionCall::kType:
        if (offset > 0) {   // a Query after unsynced extended messages: the batch ends before it
          end = true;
          continue;
        }
        offset += frame.totalSize();
        end = true;
        break;
      case protocol::Sync::kType:
        offset += frame.totalSize();
        has_sync = true;
        end = true;
        break;
      case protocol::Flush::kType:
        offset += frame.totalSize();
        flushed = true;
        end = true;
        break;
      case protocol::Terminate::kType:
      case 'd':
      case 'c':
      case 'f':
        if (offset == 0) {
          // COPY messages outside COPY are ignored by PostgreSQL too (protocol 55.2.6).
          evbuffer_drain(in, frame.totalSize());
          return false;
        }
        end = true;
        continue;
      default:
        if (frame.type == protocol::Bind::kType || frame.type == protocol::Execute::kType) executes = true;
        offset += frame.totalSize();
        break;
    }
  }
  unit.bytes.takeFrom(in, offset);
  if (flushed && !executes && !cut) {
    // Parse/Describe/Close then Flush (postgres.js prepares a statement so, then sends its
    // Bind/Execute/Sync once it has the description): the batch runs as a unit of its own,
    // ended by a Sync of cutover's whose ReadyForQuery the client never sees. So the Bind after it
    // is a unit classified (and imaged) on its own, not the tail of an open one.
    unit.bytes.append(protocol::encode(protocol::Sync{}));
    unit.flush_only = true;
    has_sync = true;
  }
  unit.number = next_unit_++;
  unit.cut = cut;
  unit.simple_query = !unit.bytes.span().empty() && static_cast<char>(unit.bytes.span()[0]) == protocol::Query::kType;
  classifyUnit(unit, has_sync);
  return true;
}

void ClientSession::classifyUnit(Unit& unit, bool has_sync) {
  router::Classifier& classifier = worker_.classifier();
  auto span = unit.bytes.span();
  int rank = -1;
  bool named = false;          // a named statement is created or closed: every store needs it
  int parses = 0;              // Parse messages so far (each answered by a ParseComplete)
  bool bound_writes = true;    // the last Bind's statement writes (unknown: it may)
  std::string bound_text;      // … and its text ("" unknown)
  bool first = true;
  bool all_wrappable = true;    // every statement of the unit may run inside BEGIN … COMMIT
  auto consider = [&](const router::StatementInfo& info) {
    all_wrappable = all_wrappable && info.wrappable;
    if (first || router::writeRank(info.kind) > rank) {
      unit.info = info;
      rank = router::writeRank(info.kind);
      first = false;
    }
  };
  forEachMessage(span, [&](char type, std::span<const uint8_t> body, std::span<const uint8_t> whole) {
    if (type == protocol::Query::kType) {
      // Viewed in the unit's bytes: a huge statement is never copied to be classified.
      std::optional<std::string_view> sql = protocol::queryTextOf(body);
      if (!sql) return;
      router::StatementInfo info = sql_prepared_.resolve(classifier.classify(*sql));
      const bool prepare = info.kind == router::StatementKind::Session &&
                           info.session == router::SessionCommand::Prepare;
      // A PREPARE counts once the store accepted it (recordAccepted); with other statements in
      // the same string it is not recorded at all, and its EXECUTE stays a write (the safe default).
      if (!prepare) sql_prepared_.apply(info);
      unnamed_statement_.reset();   // a simple Query drops the unnamed statement
      if (info.session == router::SessionCommand::Set || info.session == router::SessionCommand::Reset ||
          info.session == router::SessionCommand::Discard) {
        table_facts_.clear();   // search_path may have changed what a table name means
      }
      unit.text_cut = journalText(*sql, unit.text);
      if (prepare && !info.multi_statement) {
        PendingStatement pending{.sql = true, .name = info.prepared_name, .info = info};
        pending.replayable = sql->size() <= kMaxReplayedBytes;
        if (pending.replayable) pending.replay = std::string(*sql);
        unit.pending_statements.push_back(std::move(pending));
      } else if (info.kind == router::StatementKind::Session && !info.multi_statement && !info.transaction_scoped) {
        if (info.all && (info.session == router::SessionCommand::Discard || info.session == router::SessionCommand::Reset)) {
          session_log_.clear();
        } else if (session_log_.size() < kMaxReplayed && sql->size() <= kMaxReplayedBytes) {
          session_log_.emplace_back(*sql);
        } else {
          replay_complete_ = false;
        }
      }
      consider(info);
    } else if (type == protocol::Parse::kType) {
      auto p = protocol::decode<protocol::Parse>(body);
      if (!p.isOk()) return;
      router::StatementInfo info = classifier.classify(p.value().query);
      std::string text;
      const bool cut = journalText(p.value().query, text);
      const int ordinal = parses++;
      if (p.value().name.empty()) {
        // PostgreSQL drops the unnamed statement before parsing its successor: recorded at once.
        parsed_[""] = info;
        parsed_text_[""] = text;
        // What a later Bind of the unnamed statement runs, for row images (client_session_images.cc).
        // Assumed parsed: a Bind after a refused Parse would get 26000 from the store either way.
        unnamed_statement_ = cut ? std::nullopt : std::optional<protocol::Parse>(p.value());
      } else {
        named = true;
        PendingStatement pending{.name = p.value().name, .info = info, .text = text, .parse_ordinal = ordinal};
        pending.replayable = parsed_bytes_.size() < kMaxReplayed || parsed_bytes_.contains(p.value().name);
        if (pending.replayable) pending.replay = std::string(reinterpret_cast<const char*>(whole.data()), whole.size());
        unit.pending_statements.push_back(std::move(pending));
      }
      if (unit.text.empty()) {
        unit.text = text;
        unit.text_cut = cut;
      }
      consider(info);
    } else if (type == protocol::Bind::kType) {
      auto b = protocol::decode<protocol::Bind>(body);
      if (!b.isOk()) return;
      router::StatementInfo info;   // unknown statement: a write (the safe default)
      const std::string* statement_text = nullptr;
      // A statement parsed earlier in this batch, else one the session holds.
      auto pending = std::find_if(unit.pending_statements.rbegin(), unit.pending_statements.rend(),
                                  [&](const PendingStatement& p) { return !p.sql && p.name == b.value().statement; });
      if (pending != unit.pending_statements.rend()) {
        info = pending->info;
        statement_text = &pending->text;
      } else if (auto it = parsed_.find(b.value().statement); it != parsed_.end()) {
        info = it->second;
        if (auto text = parsed_text_.find(b.value().statement); text != parsed_text_.end()) statement_text = &text->second;
      }
      if (unit.text.empty() && statement_text != nullptr) {
        unit.text = *statement_text;
        unit.text_cut = statement_text->size() > kJournalTextBytes;
      }
      if (unit.parameters.empty()) unit.parameters = b.value().params;
      bound_writes = router::writeRank(info.kind) >= router::writeRank(router::StatementKind::Write);
      bound_text = statement_text != nullptr ? *statement_text : std::string();
      consider(info);
    } else if (type == protocol::Close::kType) {
      named = true;
      auto c = protocol::decode<protocol::Close>(body);
      if (c.isOk() && c.value().target == 'S' && c.value().name.empty()) unnamed_statement_.reset();
      if (c.isOk() && c.value().target == 'S') {
        parsed_bytes_.erase(c.value().name);
        parsed_.erase(c.value().name);
        parsed_text_.erase(c.value().name);
        std::erase_if(unit.pending_statements,
                      [&](const PendingStatement& p) { return !p.sql && p.name == c.value().name; });
      }
    } else if (type == protocol::Execute::kType) {
      unit.execute_writes.push_back(bound_writes);
      if (bound_writes) unit.execute_texts.push_back(bound_text);
    } else if (type == protocol::FunctionCall::kType) {
      router::StatementInfo info;   // large objects and the like: a write
      info.reason = "FunctionCall";
      unit.text = "<FunctionCall>";
      consider(info);
    }
  });
  if (first) {
    // Describe/Execute of existing portals only: keep the transaction's route; a read otherwise.
    unit.info.kind = router::StatementKind::Read;
    unit.info.reason = "extended batch without statements";
  }
  if (unit.cut && router::writeRank(unit.info.kind) < router::writeRank(router::StatementKind::Write)) {
    // The rest of the batch is not known yet: not provably a read.
    unit.info.kind = router::StatementKind::Write;
    unit.info.reason = "extended batch larger than the input buffer before its Sync";
  }
  unit.open = !has_sync && static_cast<char>(span.empty() ? 0 : span[0]) != protocol::Query::kType &&
              static_cast<char>(span.empty() ? 0 : span[0]) != protocol::FunctionCall::kType;

  router::SessionView view = storeView();
  view.in_transaction = transaction_status_ != 'I';
  if (view.in_transaction) view.transaction_authority = authority_;
  if (unit.info.creates_temporary) temp_objects_ = true;
  view.mirror_pending = mirrorPending() || temp_on_authority_only_;
  unit.status_before = transaction_status_;
  unit.route = router::decide(unit.info, unit.text, viewOf(*flags_), view);
  router::UnitFacts facts;
  facts.route = unit.route;
  facts.info = &unit.info;
  facts.all_wrappable = all_wrappable;
  facts.authority = authority_;
  facts.mirror = flags_->mirror;
  for (Store store : {Store::Old, Store::New}) {
    const Lane& l = lane(store);
    router::LaneState& state = store == Store::Old ? facts.old_lane : facts.new_lane;
    state = {.up = l.up, .fenced = l.fenced(), .reconnecting = reconnecting_ && l.connecting};
  }
  facts.in_transaction = transaction_status_ != 'I';
  facts.names_statement = named;
  facts.open = unit.open;
  facts.function_call = static_cast<char>(span[0]) == protocol::FunctionCall::kType;
  if (!facts.in_transaction) transaction_unmirrored_ = false;
  facts.transaction_unmirrored = transaction_unmirrored_;
  const router::UnitPlan plan = router::planUnit(facts);
  if (plan.secondary_unavailable) transaction_unmirrored_ = true;   // until the session is outside a transaction
  unit.route.both = plan.both;
  unit.serve = plan.serve;
  unit.mirrored = plan.mirrored;
  if (plan.secondary_unavailable) {
    journalMiss(unit, compare::divergence_kind::kSecondaryUnavailable, "not sent: store down");
  }
  unit.async = plan.async;
  if (plan.temporary_on_serve_only) temp_on_authority_only_ = true;
  unit.secondary_first = plan.secondary_first;
  unit.wrapped = plan.wrapped && !unit.flush_only;   // nothing runs yet: no locks to hold
  if (plan.shadow) unit.shadowed = startShadow(unit);
  metrics::global().statements(kindLabel(unit.info.kind), label(unit.serve)).Increment();
  if (unit.route.read_fallback) metrics::global().readFallbacks().Increment();
}

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
    u.waiting_reconnect = true;   // classifyUnit kept it mirrored: reconnectEnded resumes it
    return;
  }
  if (u.mirrored && lane(secondary).fenced()) {
    // A ramped read given up there is still being cancelled: this unit's work for that store
    // waits (onFenceTimeout bounds the wait; then the store is given up like a lost one).
    u.waiting_fence = true;
    armFenceTimer();
    return;
  }
  if (readHazardsHold(u)) return;   // the catalog answers first, or it runs as a write now
  if (u.mirrored && prepareImages(u)) return;   // the catalog answers first: schemaLoaded resumes
  if (!u.noted) {
    u.noted = true;
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
    u.secondary_done = true;
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

void ClientSession::sendToSecondary() {
  Unit& u = *unit_;
  if ((u.wrapped || u.secondary_first) && u.route.mirror && !u.wal) {
    // The secondary commits its part now, ahead of the authoritative store's COMMIT: were the
    // proxy to die in between, the write would be on the secondary only. Written first.
    u.wal = writeIntent(divergenceOf(u, compare::divergence_kind::kUncleanStop, authority_,
                                     "its COMMIT had not answered when the proxy stopped: committed or not, check the rows",
                                     "sent ahead of the authoritative COMMIT: committed here, or about to be"));
  }
  u.secondary_sent = true;
  u.secondary_started = std::chrono::steady_clock::now();
  if (std::string images = secondaryStatement(u); !images.empty()) {
    sendToLane(router::otherStore(u.serve), images, Segment{Reply::Record});
    // The apply (a simple Query) dropped the unnamed statement the client's batch made there.
    if (!u.images->restore.empty()) sendToLane(router::otherStore(u.serve), u.images->restore, Segment{Reply::Swallow});
  } else {
    sendToLane(router::otherStore(u.serve), u.bytes, Segment{Reply::Record});
  }
  armMirrorTimer();
}

// mirror_timeout_ms bounds how long the client waits on the secondary alone: the clock starts
// once the serve store is done (a COPY running on both stores is not cut short by it).
void ClientSession::armMirrorTimer() {
  Unit& u = *unit_;
  if (!u.mirrored || !u.secondary_sent || u.secondary_done) return;
  if (!u.serve_done && !u.secondary_first) return;
  const int ms = worker_.context().config().mirror_timeout_ms;
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  evtimer_add(mirror_timer_.get(), &tv);
}

// A read served by the store that is not authoritative (the ramp) is answered from a holding
// buffer until it is complete or passes kRampHoldBytes: if that store dies before then, nothing
// has reached the client and the read is simply run again on the authoritative store.
evbuffer* ClientSession::forwardTarget(Store store) {
  if (unit_ && store == unit_->serve && unit_->serve != authority_ && !unit_->streaming) {
    if (!ramp_hold_) ramp_hold_.reset(evbuffer_new());
    return ramp_hold_.get();
  }
  if (unit_ && store == unit_->serve) unit_->forwarded = true;
  return clientOutput();
}

void ClientSession::releaseHeldRead(bool complete) {
  if (!ramp_hold_ || evbuffer_get_length(ramp_hold_.get()) == 0) return;
  if (!complete && evbuffer_get_length(ramp_hold_.get()) <= kRampHoldBytes) return;
  evbuffer_add_buffer(clientOutput(), ramp_hold_.get());
  if (unit_ && !complete) {
    unit_->streaming = true;   // a large answer: streamed from here on
    unit_->forwarded = true;
  }
}

// An open unit (the client flushed before its Sync, as pg-cursor and pg-query-stream do: Execute
// with a row limit, then Flush) waits for what it flushed, and the store's ReadyForQuery comes
// only after the client's Sync. So a ramped read's held answer goes to the client at the end of
// each flushed answer (an Execute's end, an error, or the last answer the store has sent to a
// Parse/Bind/Describe/Close), and streams from then on: the read can no longer be run again
// elsewhere, but nothing stalls. Its read-only transaction still guarantees it writes nothing.
void ClientSession::answerFlushed(Store store, char type, bool more_buffered) {
  if (!unit_ || !unit_->open || store != unit_->serve || unit_->streaming || !ramp_hold_ ||
      evbuffer_get_length(ramp_hold_.get()) == 0) {
    return;
  }
  switch (type) {
    case protocol::PortalSuspended::kType:
    case protocol::CommandComplete::kType:
    case protocol::EmptyQueryResponse::kType:
    case protocol::ErrorResponse::kType:
      break;
    case protocol::ParseComplete::kType:
    case protocol::BindComplete::kType:
    case protocol::CloseComplete::kType:
    case protocol::ParameterDescription::kType:
    case protocol::RowDescription::kType:
    case protocol::NoData::kType:
      if (more_buffered) return;   // the rest of the answer is already here
      break;
    default:
      return;
  }
  evtimer_del(ramp_timer_.get());   // the store answered
  evbuffer_add_buffer(clientOutput(), ramp_hold_.get());
  unit_->streaming = true;
  unit_->forwarded = true;
}

void ClientSession::drainLane(Store store) {
  Lane& l = lane(store);
  if (!l.backend) return;
  evbuffer* in = l.backend->input();
  evbuffer* out = clientOutput();
  while (state_ == State::Relaying || mirror_draining_) {
    if (l.remaining > 0) {
      const size_t n = std::min(l.remaining, evbuffer_get_length(in));
      if (n == 0) break;
      if (l.remaining_forward) {
        evbuffer_remove_buffer(in, forwardTarget(store), n);
        releaseHeldRead(false);
      } else {
        evbuffer_drain(in, n);
      }
      l.remaining -= n;
      if (l.remaining == 0 && l.remaining_forward) answerFlushed(store, l.remaining_type, evbuffer_get_length(in) > 0);
      continue;
    }
    protocol::Frame frame = peekMessage(in, Direction::Backend, protocol::kDefaultMaxMessageLength);
    if (frame.status == DecodeStatus::NeedMoreData) break;
    if (frame.status == DecodeStatus::Invalid) {
      log::error("session {}: protocol violation from the {}: {}", id_, l.backend->describe(), frame.reason);
      return fatal("08P01", fmt::format("cutover received an invalid message from the {}", l.backend->describe()));
    }
    const char type = frame.type;
    if (l.plan.empty() || type == protocol::NotificationResponse::kType) {
      // Asynchronous messages: notifications of the authoritative store reach the client
      // whenever they come (LISTEN deliveries come from it only), and between units its notices
      // and parameter changes too; the other store's are dropped.
      l.remaining = frame.totalSize();
      l.remaining_forward = store == authority_ && (type == 'A' || type == 'N' || type == 'S');
      continue;
    }
    const Segment segment = l.plan.front();
    // A shadowed read's result messages, on either side, are digested whole (one larger than
    // kMaxShadowMessage spoils the comparison; the client's copy still streams).
    Shadow* shadow = segment.reply == Reply::Shadow || segment.digest
                         ? shadowFor(store, segment.reply != Reply::Shadow)
                         : nullptr;
    if (shadow != nullptr &&
        (type == protocol::RowDescription::kType || type == protocol::DataRow::kType ||
         type == protocol::EmptyQueryResponse::kType || type == protocol::CopyOutResponse::kType ||
         type == protocol::CopyBothResponse::kType)) {
      if (frame.totalSize() > kMaxShadowMessage) {
        if (shadow->spoiled.empty()) shadow->spoiled = "a result message over 1 MiB";
      } else {
        if (evbuffer_get_length(in) < frame.totalSize()) break;
        digestShadow(*shadow, store, type, pullBody(in, frame));
      }
    }
    // An imaged INSERT's answer: the client's columns go on, the row images are kept.
    if (unit_ && unit_->images && store == unit_->serve && segment.reply == Reply::Forward &&
        (type == protocol::RowDescription::kType || type == protocol::DataRow::kType)) {
      if (evbuffer_get_length(in) < frame.totalSize()) break;
      imageMessage(store, type, pullBody(in, frame));
      if (state_ != State::Relaying) return;
      evbuffer_drain(in, frame.totalSize());
      continue;
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
      if (evbuffer_get_length(in) < frame.totalSize()) break;
      outcome.addRow(pullBody(in, frame));
    } else if (digest_row) {
      outcome.addRowOfLength(frame.totalSize());
    }
    const bool control = type == protocol::ReadyForQuery::kType || type == protocol::CommandComplete::kType ||
                         type == protocol::ErrorResponse::kType;
    const bool catalog_rows = segment.reply == Reply::Schema || segment.reply == Reply::Hazards;
    if ((segment.reply == Reply::Capture || catalog_rows) && type == protocol::DataRow::kType &&
        frame.totalSize() <= kMaxControlMessage) {
      if (evbuffer_get_length(in) < frame.totalSize()) break;
      auto row = protocol::decode<protocol::DataRow>(pullBody(in, frame));
      captured_bytes_ += frame.totalSize();
      if (row.isOk() && (captured_bytes_ <= kMaxCapturedBytes || segment.reply == Reply::Hazards)) {
        captured_.push_back(std::move(row.value().columns));   // the hazards query bounds its own rows
      } else if (catalog_rows) {
        schema_failed_ = true;
      } else {
        replay_complete_ = false;
      }
      evbuffer_drain(in, frame.totalSize());
      continue;
    }
    if (!control) {
      if (type == protocol::CopyInResponse::kType) copyStarted(store, segment);
      if (type == protocol::ParseComplete::kType && segment.reply == Reply::Forward) ++l.parse_completes;
      if (type == protocol::EmptyQueryResponse::kType || type == protocol::PortalSuspended::kType) {
        if (own_result) ++l.results;
        if (segment.reply == Reply::Apply) ++mirror_results_;
      }
      l.remaining = frame.totalSize();
      l.remaining_forward = segment.reply == Reply::Forward;
      l.remaining_type = type;
      continue;
    }
    if (frame.totalSize() > kMaxControlMessage) {
      return fatal("08P01", fmt::format("the {} sent an oversized control message", l.backend->describe()));
    }
    if (evbuffer_get_length(in) < frame.totalSize()) break;
    std::span<const uint8_t> body = pullBody(in, frame);
    bool forward = segment.reply == Reply::Forward;
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
        if (segment.reply == Reply::Capture) replay_complete_ = false;
        if (catalog_rows) schema_failed_ = true;
        log::warn("session {}: the {} rejected a statement cutover injected: {}", id_, l.backend->describe(),
                  error.value().field('M'));
      }
    } else {
      status = static_cast<char>(body[0]);
      l.last_status = status;
      forward = (segment.reply == Reply::Forward || segment.reply == Reply::Commit) && !segment.hold_ready;
      if (forward && segment.reply == Reply::Forward && unit_ && unit_->flush_only && store == unit_->serve) {
        forward = false;   // the answer to cutover's own Sync: the client sent a Flush
        transaction_status_ = status;
      }
    }
    // Acknowledge after commit: the CommandComplete of a wrapped simple Query waits for the
    // injected COMMIT, as PostgreSQL reports an autocommit statement complete only once committed
    // (a driver that resolves on CommandComplete must not read before the commit). A COMMIT
    // error replaces it, as PostgreSQL sends the error instead.
    if (forward && unit_ && unit_->wrapped && !unit_->read_only && store == unit_->serve) {
      if (type == protocol::CommandComplete::kType && segment.reply == Reply::Forward && unit_->simple_query) {
        unit_->held_complete.resize(frame.totalSize());
        evbuffer_remove(in, unit_->held_complete.data(), frame.totalSize());
        continue;
      }
      if (segment.reply == Reply::Commit && type == protocol::ErrorResponse::kType) unit_->held_complete.clear();
      if (segment.reply == Reply::Commit && type == protocol::ReadyForQuery::kType && !unit_->held_complete.empty() &&
          !segment.hold_ready) {
        append(forwardTarget(store), unit_->held_complete);   // behind its rows, wherever they wait
        unit_->held_complete.clear();
      }
    }
    if (forward) {
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
      if (state_ != State::Relaying && !mirror_draining_) return;
    }
  }
  client_->flush();
  if (evbuffer_get_length(out) > kHighWatermark) {
    backend_paused_ = true;
    l.backend->enableRead(false);
  }
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
    syncCommitDone(u);
    u.released = true;
    return advanceUnit();
  }
  const auto now = std::chrono::steady_clock::now();
  if (store == u.serve) {
    if (u.read_only && refusedAsWrite(u)) return;
    u.serve_done = true;
    u.serve_status = status;
    recordAccepted(u);
    if (u.info.kind == router::StatementKind::Ddl) schemaChanged();
    if (copy_in_ == CopyIn::Streaming) serveCopyFailed("it ended the COPY before the client did");
    endUnfedCopies();
    metrics::global().statementDuration(label(store)).observe(std::chrono::duration<double>(now - u.serve_started).count());
  } else {
    u.secondary_done = true;
    metrics::global().statementDuration(label(store)).observe(std::chrono::duration<double>(now - u.secondary_started).count());
  }
  advanceUnit();
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
  if (u.forwarded) {
    log::info("session {}: the {} refused a ramped read as a write in its read-only transaction ({}) after some of "
              "its answer reached the client, who gets the error; from now on it runs as a write: \"{}\"",
              id_, served.backend->describe(), served.outcome.error, u.text.substr(0, 200));
    return false;
  }
  const Store ramped = u.serve;
  evtimer_del(ramp_timer_.get());
  if (ramp_hold_) evbuffer_drain(ramp_hold_.get(), evbuffer_get_length(ramp_hold_.get()));
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
  u.serve_done = u.secondary_done = u.serve_sent = u.secondary_sent = false;
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
      if (p.replayable && session_log_.size() < kMaxReplayed) {
        session_log_.push_back(std::move(p.replay));
      } else {
        replay_complete_ = false;
      }
      continue;
    }
    if (p.parse_ordinal >= served.parse_completes) continue;   // refused, or after the batch's error
    parsed_[p.name] = std::move(p.info);
    parsed_text_[p.name] = std::move(p.text);
    if (p.replayable) {
      parsed_bytes_[p.name] = std::move(p.replay);
    } else {
      replay_complete_ = false;
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
  if (u.released) {
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
    if (!u.serve_done || u.secondary_sent) return;
    u.secondary_sent = true;
    queueMirror(u);
    if (!u.wrapped && awaitWal(u)) return;   // a wrapped write's waits for its COMMIT first
    return releaseUnit();
  }
  if (u.secondary_first && u.secondary_done && !u.serve_sent) {
    // The secondary committed (or failed to): now the authoritative store, whose answer the
    // client gets.
    u.serve_sent = true;
    u.serve_started = std::chrono::steady_clock::now();
    sendToLane(u.serve, u.bytes, Segment{Reply::Forward, true});
    return;
  }
  if (!u.secondary_first && u.serve_done && !u.secondary_sent && !u.secondary_done) {
    if (u.mirror_overflow) {
      journalMiss(u, compare::divergence_kind::kQueueFull,
                  fmt::format("not applied: the batch before its Sync is larger than mirror_queue_bytes ({})",
                              worker_.context().config().mirror_queue_bytes));
      u.secondary_done = true;
      u.mirrored = false;
      return advanceUnit();
    }
    return sendToSecondary();
  }
  if (u.serve_done && !u.secondary_done) return armMirrorTimer();   // COPY: sent earlier, now only S is awaited
  if (!u.serve_done || !u.secondary_done) return;
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
  if (compare::Journal* journal = worker_.context().journal) {
    journal->append(compare::toJson(divergenceOf(u, compare::divergence_kind::kErrorOneSide, u.serve,
                                                 "COMMIT failed: " + served.error,
                                                 lane(secondary).outcome.describe() + " (committed)")));
  }
}

void ClientSession::releaseUnit() {
  if (!unit_ || state_ != State::Relaying) return;
  Unit& u = *unit_;
  if (u.wrapped) {
    if (!u.async) u.failed_before_commit = lane(u.serve).outcome.failed;
    u.commit_sent = true;
    // Async: the ReadyForQuery waits for the write-ahead record too (ackAsyncCommit).
    sendToLane(u.serve, injectedStatement(Injected::Commit), Segment{Reply::Commit, u.async});
    return;   // its ReadyForQuery completes the unit
  }
  if (u.held) {
    releaseHeldRead(true);   // a ramped answer waiting in the holding buffer goes first
    // The held ReadyForQuery of the serve store goes to the client now (not for cutover's own
    // Sync after a flushed batch: the client sent none).
    transaction_status_ = u.serve_status;
    if (!u.flush_only) append(clientOutput(), protocol::encode(protocol::ReadyForQuery{u.serve_status}));
  }
  u.released = true;
  advanceUnit();
}

void ClientSession::journalMiss(const Unit& unit, std::string_view kind, const std::string& outcome) {
  // A read inside a transaction is mirrored only to keep the secondary's transaction in step;
  // the secondary missing it changes no data there (its writes and COMMIT are journaled).
  if (unit.info.kind == router::StatementKind::Read) return;
  missedWriteOn(router::otherStore(authority_), kind);
  metrics::global().mirrorWrites(metrics::MirrorResult::Dropped).Increment();
  metrics::global().divergences(compare::kindLabel(kind)).Increment();
  compare::Journal* journal = worker_.context().journal;
  if (journal == nullptr) return;
  journal->append(compare::toJson(divergenceOf(unit, kind, authority_, "sent", outcome)));
}

compare::Divergence ClientSession::divergenceOf(const Unit& unit, std::string_view kind, Store serve,
                                                std::string serve_outcome, std::string secondary_outcome) const {
  // Journal per transaction: a unit inside an explicit transaction is journaled under the
  // transaction's id (its first unit's number); the unit that ends it carries every statement.
  const bool in_transaction = unit.status_before != 'I';
  std::string text = unit.text;
  if (in_transaction && unit.info.kind == router::StatementKind::Transaction && !txn_statements_.empty()) {
    text = txn_statements_ + "; " + unit.text;
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

// The secondary store is gone (closed, failed, or too slow): the session goes on with the
// authoritative store alone, and every write it can no longer mirror is journaled.
// An explicit COMMIT runs on the secondary first; an autocommit write runs there on its own once
// the authoritative store has run it inside BEGIN … COMMIT (sync), or is queued for it before
// that COMMIT (async). When the authoritative store's connection dies from then on, the secondary
// has the write (or gets it) while the authoritative store may have committed it or not (dying
// during its COMMIT) or surely not (dying before): in doubt, journaled with the whole transaction.
void ClientSession::authorityLost(const std::string& why) {
  if (!unit_ || unit_->released) return;
  Unit& u = *unit_;
  const Store secondary = router::otherStore(authority_);
  if (u.serve != authority_ || !u.route.mirror || !(u.mirrored || u.async)) return;
  const bool committing_first = u.secondary_first && u.secondary_sent;       // sync explicit COMMIT
  // (A statement that failed on the authoritative store and not on the secondary is journaled by
  // the comparison.)
  const bool failed_here = u.commit_sent ? u.failed_before_commit : u.serve_done && lane(authority_).outcome.failed;
  const bool ran_alone = u.wrapped && u.secondary_sent && !failed_here;
  if (!committing_first && !ran_alone) return;
  const Outcome& there = lane(secondary).outcome;
  if (u.secondary_done && there.failed) return;   // it failed there too: neither has it
  metrics::global().divergences(metrics::DivergenceKindLabel::ErrorOneSide).Increment();
  metrics::global().mirrorWrites(metrics::MirrorResult::Diverged).Increment();
  const std::string secondary_outcome =
      u.async ? "queued for it before the authoritative COMMIT: applied"
              : (u.secondary_done ? there.describe() + " (committed)" : "sent, its answer not yet in (it may commit)");
  log::warn("session {}: the {} store's connection died ({}) while it held a write the {} store has: in doubt, "
            "journaled",
            id_, router::toString(authority_), why, router::toString(secondary));
  if (compare::Journal* journal = worker_.context().journal) {
    journal->append(compare::toJson(divergenceOf(
        u, compare::divergence_kind::kErrorOneSide, authority_,
        "connection lost before its COMMIT answered (" + why + "): committed or not, check the rows",
        secondary_outcome)));
  }
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
  l.remaining = 0;
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
    if (compare::Journal* journal = worker_.context().journal) {
      journal->append(compare::toJson(divergenceOf(
          txn_id_, txn_statements_, {}, compare::divergence_kind::kSecondaryUnavailable, authority_, "sent",
          "lost with the connection (" + why + "): its transaction was rolled back there")));
    }
    txn_statements_.clear();
  }
  dropShadows("a store connection was lost");
  dropMirrorQueue(why.starts_with("no answer") ? compare::divergence_kind::kSecondaryTimeout
                                               : compare::divergence_kind::kSecondaryUnavailable,
                  "not applied: " + why);
  if (mirror_draining_) return finish();
  if (unit_ && unit_->waiting_fence) {
    // It waited for this store's fence: it runs on the authoritative store alone, its miss
    // journaled like any write the lost store did not get.
    Unit& u = *unit_;
    u.waiting_fence = false;
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
  if (unit_ && unit_->serve == secondary && !unit_->released) {
    // The lost store was serving this unit (a ramped read): the client must still get an answer.
    Unit& u = *unit_;
    if (!u.forwarded) {
      if (ramp_hold_) evbuffer_drain(ramp_hold_.get(), evbuffer_get_length(ramp_hold_.get()));
      metrics::global().readFallbacks().Increment();
      u.serve = authority_;
      u.mirrored = false;
      u.read_only = false;   // its read-only transaction died with the store
      u.wrapped = false;
      u.held = false;
      u.serve_done = false;
      u.secondary_done = true;
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
    u.released = true;
    return advanceUnit();
  }
  if (unit_ && unit_->mirrored && !unit_->secondary_done) {
    // A write is a divergence; a read that only made or dropped a named statement is not (a
    // reconnection replays the session's named statements).
    if (unit_->route.mirror) {
      journalMiss(*unit_, why.starts_with("no answer") ? compare::divergence_kind::kSecondaryTimeout
                                               : compare::divergence_kind::kSecondaryUnavailable,
                  "not applied: " + why);
    }
    unit_->secondary_done = true;
    unit_->mirrored = false;
    if (unit_->secondary_first && !unit_->serve_done) return advanceUnit();
    advanceUnit();
  }
  resumeCopyInput();   // a COPY that waited for the lost store's output goes on
}

}  // namespace cutover::proxy

namespace cutover::proxy {

// At a unit boundary outside a transaction: if the secondary was lost and the health check sees
// its store again, open a new connection to it (with backoff). Units go on without the mirror,
// journaled, until it is logged in and the session's statements and settings are replayed.
void ClientSession::maybeReconnectSecondary() {
  const Store secondary = router::otherStore(authority_);
  Lane& l = lane(secondary);
  const auto& ctx = worker_.context();
  if (l.up || reconnecting_ || ctx.health == nullptr || !replay_complete_) return;
  const bool healthy = secondary == Store::New ? ctx.health->newUp() : ctx.health->oldUp();
  const auto now = std::chrono::steady_clock::now();
  if (!healthy || now < next_reconnect_) return;
  reconnecting_ = true;
  next_reconnect_ = now + std::chrono::milliseconds(reconnect_backoff_ms_);
  reconnect_backoff_ms_ = std::min(reconnect_backoff_ms_ * 2, 30000);
  openLane(secondary);
}

bool ClientSession::reconnectEnded(const std::string* error) {
  if (!unit_ || !unit_->waiting_reconnect) return false;
  Unit& u = *unit_;
  u.waiting_reconnect = false;
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
  std::string parses;
  for (const auto& [name, bytes] : parsed_bytes_) parses += bytes;
  if (!parses.empty()) sendToLane(store, parses + protocol::encode(protocol::Sync{}), Segment{Reply::Swallow});
  for (const auto& sql : session_log_) sendToLane(store, queryMessage(sql), Segment{Reply::Swallow});
  log::info("session {}: reconnected to the {}; replayed {} prepared statements and {} session commands", id_,
            lane(store).backend->describe(), parsed_bytes_.size(), session_log_.size());
}

}  // namespace cutover::proxy

namespace cutover::proxy {

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
  if (u.released || u.serve == authority_ || u.serve_done || u.forwarded || u.mirrored) return;
  const Store slow = u.serve;
  Lane& l = lane(slow);
  if (!l.up) return;
  auto it = std::find_if(l.plan.begin(), l.plan.end(), [](const Segment& s) { return s.reply == Reply::Forward; });
  if (it == l.plan.end()) return;
  if (it == l.plan.begin() && l.remaining > 0) l.remaining_forward = false;   // the rest of a message
  it->reply = Reply::Discard;
  it->digest = false;
  ++l.abandoned;
  if (ramp_hold_) evbuffer_drain(ramp_hold_.get(), evbuffer_get_length(ramp_hold_.get()));
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
  u.serve_done = false;
  u.secondary_done = true;
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
  if (unit_ && unit_->waiting_fence) {
    unit_->waiting_fence = false;
    return startUnit();
  }
  if (!unit_) routedClientInput();
}

}  // namespace cutover::proxy
