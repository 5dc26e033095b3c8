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
#include "proxy/routed_support.h"
#include "proxy/worker.h"

namespace cutover::proxy {

using protocol::DecodeStatus;
using protocol::Direction;
using router::Store;

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
  l.reader.reset();
  l.abandoned = 0;          // a fence belongs to the connection it was raised on
  l.cancel_pending = false;
  l.up = false;
  l.connecting = true;
  l.opened_for = flags_->version;
  l.error.clear();
  l.backend->connect(replay_.startup(), ctx.config().connect_timeout_ms);
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
    if (o.opened_for != flags_->version && healthy && replay_.complete()) {
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
      replay_.addCommand(
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
      replay_.keepStatement(name, protocol::encode(parse));
    } else if (kind == "prepare") {
      // The text the client sent to create it; replayed only when it is that PREPARE alone.
      router::StatementInfo info = classifier.classify(value);
      if (info.kind != router::StatementKind::Session || info.session != router::SessionCommand::Prepare ||
          info.multi_statement) {
        log::warn("session {}: prepared statement \"{}\" came with other statements; it is not copied to the other store",
                  id_, name);
        replay_.markIncomplete();
        continue;
      }
      if (std::find(prepares.begin(), prepares.end(), value) != prepares.end()) continue;
      prepares.push_back(value);
      sql_prepared_.apply(info);
      replay_.addCommand(value);
    } else if (kind == "listen") {
      replay_.addCommand("LISTEN " + sqlIdentifier(name));
    } else if (kind == "temp" && !temp_on_authority_only_) {
      temp_objects_ = temp_on_authority_only_ = true;
      log::info("session {}: it has temporary tables (\"{}\"…) on the old store only; its reads stay there", id_, name);
    }
  }
  captured_.clear();
  captured_.shrink_to_fit();
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

}  // namespace cutover::proxy
