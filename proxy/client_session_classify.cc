// Routed mode: the client's messages taken as units and classified (router::decide and
// router::planUnit say which store serves a unit and whether the other runs it too).
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
    unit.form = Form::FlushOnly;
    has_sync = true;
  }
  unit.number = next_unit_++;
  unit.cut = cut;
  if (unit.form != Form::FlushOnly && !unit.bytes.span().empty()) {
    const char first = static_cast<char>(unit.bytes.span()[0]);
    if (first == protocol::Query::kType) unit.form = Form::Query;
    if (first == protocol::FunctionCall::kType) unit.form = Form::FunctionCall;
  }
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
        pending.replayable = sql->size() <= SessionReplay::kMaxReplayedBytes;
        if (pending.replayable) pending.replay = std::string(*sql);
        unit.pending_statements.push_back(std::move(pending));
      } else if (info.kind == router::StatementKind::Session && !info.multi_statement && !info.transaction_scoped) {
        if (info.all && (info.session == router::SessionCommand::Discard || info.session == router::SessionCommand::Reset)) {
          replay_.clearCommands();
        } else if (sql->size() <= SessionReplay::kMaxReplayedBytes) {
          replay_.addCommand(*sql);
        } else {
          replay_.markIncomplete();
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
        pending.replayable = replay_.canKeepStatement(p.value().name);
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
        replay_.dropStatement(c.value().name);
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
      if (auto call = protocol::decode<protocol::FunctionCall>(body); call.isOk() && picksLargeObject(call.value())) {
        unit.large_object.emplace();
        unit.large_object->result_format = call.value().result_format;
        unit.text = "<FunctionCall lo_creat>";
      }
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
  unit.wrapped = plan.wrapped && unit.form != Form::FlushOnly;   // nothing runs yet: no locks to hold
  if (plan.shadow) unit.shadowed = startShadow(unit);
  metrics::global().statements(kindLabel(unit.info.kind), label(unit.serve)).Increment();
  if (unit.route.read_fallback) metrics::global().readFallbacks().Increment();
}

}  // namespace cutover::proxy
