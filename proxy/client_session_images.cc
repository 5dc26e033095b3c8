// Exact mirroring of ClientSession by row images (DESIGN.md "Exact mirroring", issue 13).
//
// A single INSERT (a simple Query, or the unnamed statement of an extended batch) whose values
// the store picks — an omitted column with a serial, identity or non-constant default, DEFAULT in
// its VALUES, now()/random()… in its text, a BEFORE ROW trigger on its table — or an UPDATE whose
// text is nondeterministic or whose table has such a trigger, runs on the serve store rewritten
// (libpg_query's deparser)
// to return, after the client's own RETURNING items, a marker column and every column of the
// rows it wrote. The client gets its own columns only (no RowDescription or rows when it asked
// for none); the rest are the row images, which the secondary then writes as they are
// (INSERT … OVERRIDING SYSTEM VALUE, by key for ON CONFLICT DO UPDATE and UPDATE), returning them so the
// comparison proves both stores hold the same values. The target's catalog facts are read once
// per session and table on the serve store's connection (the session's own search_path).
//
// What is not imaged is said so: a write the store picks values for that is mirrored as its
// statement (a named statement, a multi-statement string, too many rows, a table without a
// primary key for an upsert or UPDATE, an UPDATE of the key) is journaled `nondeterministic` with
// its table and the reason.
#include <fmt/ranges.h>

#include <atomic>
#include <charconv>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

#include "common/log.h"
#include "common/metrics.h"
#include "compare/divergence.h"
#include "proxy/client_session.h"
#include "proxy/message_io.h"
#include "proxy/worker.h"
#include "router/error_position.h"
#include "router/read_hazards.h"

namespace cutover::proxy {
namespace {

using router::Store;

// Row images kept for one statement; beyond it the statement is mirrored as it is, journaled.
constexpr size_t kMaxImageBytes = 8u << 20;
// Facts of a table are read again after this long: DDL run beside cutover is seen within it.
constexpr auto kFactsMaxAge = std::chrono::seconds(60);
// A unit of several statements: how many different ones, and how many tables not yet cached, are
// checked for values the store picks; beyond, it is journaled as not checked.
constexpr size_t kMaxCheckedStatements = 64;
constexpr int kMaxFactsLoads = 8;

// Bumped when any session of the process ran DDL: every session's table facts are read again.
std::atomic<uint64_t> g_schema_generation{1};

// The read hazards of each database (router/read_hazards.h), shared by every session of the
// process: read again after DDL through cutover, and after kHazardsMaxAge (DDL beside it).
constexpr auto kHazardsMaxAge = std::chrono::seconds(30);
std::mutex g_hazards_mutex;
std::unordered_map<std::string, CachedReadHazards> g_hazards;   // by database and store

bool fresh(const CachedReadHazards& cached) {
  return cached.hazards && cached.generation == g_schema_generation.load(std::memory_order_relaxed) &&
         std::chrono::steady_clock::now() - cached.read_at < kHazardsMaxAge;
}

std::string hazardsKey(const std::string& database, Store store) {
  return database + '\0' + std::string(router::toString(store));
}

// A DELETE's facts name its DELETE triggers (tableFactsQuery): kept apart from the others'.
std::string factsKey(const router::WriteShape& shape) {
  return shape.schema + '\0' + shape.table + (shape.kind == router::WriteKind::Delete ? "\0delete" : "");
}

// cutover's own copy of an imaged statement on the serve store: the client's statement (named or
// unnamed) stays as the client made it on both stores, its Bind is pointed at this one.
constexpr std::string_view kImageStatement = "cutover:image";

// The extended-protocol form that is imaged: [Parse S] Bind(unnamed portal of S, text results)
// Execute(all rows) Sync, Describes anywhere; S named or unnamed. Drivers send it for a statement
// with parameters (node-postgres, psycopg 3, libpq, pgx, postgres.js, pgjdbc, asyncpg).
struct ImageBatch {
  std::string statement;                  // S
  std::optional<protocol::Parse> parse;   // the batch's own Parse of S
  bool describes_portal = false;          // the client's Describe of the portal (answered by the rewrite)
};

std::optional<ImageBatch> imageBatch(std::span<const uint8_t> bytes) {
  ImageBatch batch;
  std::string order;   // the message types, in order, Describes left out
  bool ok = true;
  forEachMessage(bytes, [&](char type, std::span<const uint8_t> body, std::span<const uint8_t>) {
    if (type == protocol::Describe::kType) {
      auto describe = protocol::decode<protocol::Describe>(body);
      ok = ok && describe.isOk();
      if (describe.isOk() && describe.value().target == 'P') {
        ok = ok && describe.value().name.empty();
        batch.describes_portal = true;
      }
      return;
    }
    order += type;
    if (type == protocol::Parse::kType) {
      auto parse = protocol::decode<protocol::Parse>(body);
      ok = ok && parse.isOk();
      if (parse.isOk()) batch.parse = std::move(parse.value());
    } else if (type == protocol::Bind::kType) {
      auto bind = protocol::decode<protocol::Bind>(body);
      ok = ok && bind.isOk() && bind.value().portal.empty() &&
           std::all_of(bind.value().result_formats.begin(), bind.value().result_formats.end(),
                       [](int16_t f) { return f == 0; });
      if (bind.isOk()) batch.statement = bind.value().statement;
    } else if (type == protocol::Execute::kType) {
      auto execute = protocol::decode<protocol::Execute>(body);
      ok = ok && execute.isOk() && execute.value().portal.empty() && execute.value().max_rows == 0;
    } else if (type != protocol::Sync::kType) {
      ok = false;
    }
  });
  if (!ok || !(order == "PBES" || order == "BES")) return std::nullopt;
  if (batch.parse && batch.parse->name != batch.statement) return std::nullopt;
  return batch;
}

// The client's batch with its Bind pointed at cutover's statement and text results for every
// column (the client asked for text only), and a Describe of the portal before the Execute when
// the client sent none: the image columns are known by name only from a RowDescription.
std::string imagedBatch(std::span<const uint8_t> bytes, bool add_describe) {
  std::string out;
  forEachMessage(bytes, [&](char type, std::span<const uint8_t> body, std::span<const uint8_t> whole) {
    if (type == protocol::Bind::kType) {
      auto bind = protocol::decode<protocol::Bind>(body);
      bind.value().statement = std::string(kImageStatement);
      bind.value().result_formats.clear();
      out += protocol::encode(bind.value());
      return;
    }
    if (type == protocol::Execute::kType && add_describe) out += protocol::encode(protocol::Describe{'P', ""});
    out.append(reinterpret_cast<const char*>(whole.data()), whole.size());
  });
  return out;
}

// The batch's Parse messages and a Sync: what the secondary runs beside the images' statement,
// so that it holds the client's statement as the client made it.
std::string parsesOf(std::span<const uint8_t> bytes) {
  std::string out;
  forEachMessage(bytes, [&](char type, std::span<const uint8_t>, std::span<const uint8_t> whole) {
    if (type == protocol::Parse::kType) out.append(reinterpret_cast<const char*>(whole.data()), whole.size());
  });
  if (!out.empty()) out += protocol::encode(protocol::Sync{});
  return out;
}

}  // namespace

void ClientSession::schemaChanged() { g_schema_generation.fetch_add(1, std::memory_order_relaxed); }

bool ClientSession::prepareImages(Unit& u) {
  if (u.checked >= Checked::Images) return false;
  u.checked = Checked::Images;
  if (u.status_before == 'E') return false;   // a failed transaction writes nothing: the store refuses it (25P02)
  if (u.route.mirror && u.info.fills_from_query && u.info.nondeterministic) {
    // Its rows come from its query on each store (PostgreSQL's CREATE TABLE … AS SELECT random(),
    // 'now'::timestamp): not imaged, said.
    u.inexact = "it fills a table from a query that calls a function each store evaluates itself (random(), now(), "
                "'now'…): each store computes its own rows; mirrored as its text";
    return false;
  }
  if (!u.route.mirror || u.info.kind != router::StatementKind::Write) return false;
  auto span = u.bytes.span();
  const bool one_query = !span.empty() && static_cast<char>(span[0]) == protocol::Query::kType;
  // An extended batch of one statement: imaged in the unnamed form (unnamedBatch); for any other
  // the facts still say whether the store picks values, so that it is journaled as mirrored by
  // its text rather than passed in silence.
  const bool one_execute = !one_query && u.execute_writes.size() == 1 && !u.open && !u.cut;
  if (!one_query && u.execute_writes.empty()) return false;   // Parse/Describe only: nothing runs yet
  std::optional<router::WriteShape> shape;
  if ((one_query || one_execute) && !u.info.multi_statement && !u.text_cut && u.status_before != 'E') {
    shape = router::writeShape(u.text);
  }
  if (!shape) {
    // Several statements: mirrored as their text; which of them the store picks values for is
    // checked against their tables' facts, so that it is journaled and not silent.
    std::vector<std::string> statements;
    if (one_query && u.info.multi_statement && !u.text_cut) statements = router::splitStatements(u.text);
    if (!one_query && u.execute_texts.size() > 1) statements = u.execute_texts;
    if (!statements.empty()) return checkStatements(u, statements);
    if ((one_query || one_execute) && !u.info.multi_statement && !u.text_cut) {
      const router::CteWrites writes = router::cteWriteShapes(u.text);
      if (!writes.complete || !writes.shapes.empty()) return checkCteWrites(u, writes);
    }
    if (u.info.nondeterministic) {
      u.inexact = "the statement calls a function each store evaluates itself; only a single INSERT or UPDATE (a "
                  "simple Query or one unnamed extended-protocol statement) is mirrored by row images, this is "
                  "mirrored as its text";
    }
    return false;
  }
  const uint64_t generation = g_schema_generation.load(std::memory_order_relaxed);
  if (generation != table_facts_generation_) {
    table_facts_.clear();
    table_facts_generation_ = generation;
  }
  u.images.emplace();
  u.images->shape = std::move(*shape);
  u.images->extended = !one_query;
  if (!one_query) {
    if (auto batch = imageBatch(span)) {
      // The statement's parameter types: from the batch's Parse, else from the session's record.
      std::optional<protocol::Parse> parse = batch->parse;
      if (!parse && batch->statement.empty()) parse = unnamed_statement_;
      if (!parse) {
        if (const std::string* kept = replay_.statement(batch->statement); kept != nullptr && kept->size() > 5) {
          auto decoded = protocol::decode<protocol::Parse>(
              std::span(reinterpret_cast<const uint8_t*>(kept->data()) + 5, kept->size() - 5));
          if (decoded.isOk()) parse = std::move(decoded.value());
        }
      }
      if (parse) {
        u.images->imageable_batch = true;
        u.images->param_types = parse->param_types;
        u.images->hidden_describe = !batch->describes_portal;
        u.images->restore = parsesOf(span);
      }
    }
  }
  auto cached = table_facts_.find(factsKey(u.images->shape));
  if (cached != table_facts_.end() && std::chrono::steady_clock::now() - cached->second.read_at < kFactsMaxAge) {
    planImages(u, cached->second.facts);
    return false;
  }
  captured_.clear();
  captured_bytes_ = 0;
  schema_failed_ = false;
  // Through a statement of cutover's own: a simple Query would drop the client's unnamed one.
  u.wait = Wait::TableFacts;
  sendToLane(u.serve, injectedQuery(router::tableFactsQuery(u.images->shape)), Segment{Reply::Schema});
  return true;
}

bool ClientSession::checkStatements(Unit& u, const std::vector<std::string>& statements) {
  std::vector<CheckedPart> parts;
  for (const std::string& sql : statements) {
    CheckedPart part{.label = sql, .known = !sql.empty()};
    if (part.known) {
      part.shape = router::writeShape(sql);
      part.nondeterministic = part.shape && worker_.classifier().classify(sql).nondeterministic;
    }
    parts.push_back(std::move(part));
  }
  const char* form = u.info.multi_statement ? "query string" : "extended-protocol batch";
  return checkParts(u, parts, fmt::format("{} statements in one {} are mirrored as their text (row images take one "
                                          "statement)", statements.size(), form));
}

bool ClientSession::checkCteWrites(Unit& u, const router::CteWrites& writes) {
  const std::string what = "a statement whose WITH writes is mirrored as its text (row images take one plain statement)";
  if (!writes.complete) {
    u.inexact = what + ": one of its writes is of a form cutover does not look into";
    return false;
  }
  std::vector<CheckedPart> parts;
  for (const router::WriteShape& shape : writes.shapes) {
    parts.push_back({.label = "its write of " + (shape.schema.empty() ? shape.table : shape.schema + "." + shape.table),
                     .shape = shape, .nondeterministic = u.info.nondeterministic});
  }
  return checkParts(u, parts, what);
}

bool ClientSession::checkParts(Unit& u, const std::vector<CheckedPart>& parts, const std::string& what) {
  auto inexact = [&](const std::string& why) {
    u.inexact = fmt::format("{}: {}", what, why);
    return false;
  };
  std::unordered_set<std::string> seen;
  for (const CheckedPart& part : parts) {
    if (!part.known) return inexact("one of them is not known to cutover (a statement prepared before it was routed)");
    if (!seen.insert(part.label).second) continue;
    if (seen.size() > kMaxCheckedStatements) {
      return inexact(fmt::format("more than {} different ones, not all checked for values the store picks",
                                 kMaxCheckedStatements));
    }
    if (!part.shape) continue;   // not an INSERT, UPDATE, DELETE or COPY FROM: nothing the store fills in
    auto cached = table_facts_.find(factsKey(*part.shape));
    if (cached == table_facts_.end() || std::chrono::steady_clock::now() - cached->second.read_at >= kFactsMaxAge) {
      // A batch already streaming to the store (larger than the input buffer before its Sync):
      // a catalog query now would land inside it. Checked only against facts already cached.
      if (u.open || u.cut) continue;
      if (u.facts_loads >= kMaxFactsLoads) {
        return inexact(fmt::format("they write more than {} tables, not all checked", kMaxFactsLoads));
      }
      ++u.facts_loads;
      u.images.emplace();
      u.images->shape = *part.shape;
      u.wait = Wait::CheckFacts;
      captured_.clear();
      captured_bytes_ = 0;
      schema_failed_ = false;
      sendToLane(u.serve, injectedQuery(router::tableFactsQuery(u.images->shape)), Segment{Reply::Schema});
      return true;   // schemaLoaded checks again with the facts cached
    }
    const router::ImagePlan plan = router::planImages(*part.shape, *cached->second.facts, part.nondeterministic);
    const std::string why = plan.images ? plan.why : !plan.inexact.empty() ? plan.inexact : plan.side_effects;
    if (!why.empty()) return inexact(fmt::format("\"{}\" leaves {} to each store", part.label.substr(0, 120), why));
  }
  if (u.info.nondeterministic) return inexact("a statement calls a function each store evaluates itself");
  return false;
}

void ClientSession::schemaLoaded() {
  if (!unit_ || !unit_->images) return;
  Unit& u = *unit_;
  router::Classifier& classifier = worker_.classifier();
  // A default is a constant when it reads nothing and calls nothing that differs between runs.
  auto constant = [&classifier](std::string_view expr) {
    router::StatementInfo info = classifier.classify("SELECT " + std::string(expr));
    return info.kind == router::StatementKind::Read && !info.nondeterministic && !info.catalog;
  };
  auto facts = std::make_shared<const router::TableFacts>(
      schema_failed_ ? router::TableFacts{} : router::tableFactsFrom(captured_, constant));
  captured_.clear();
  captured_.shrink_to_fit();
  if (!schema_failed_) table_facts_[factsKey(u.images->shape)] = {facts, std::chrono::steady_clock::now()};
  if (u.wait == Wait::CheckFacts) {
    // checkStatements again, from the start, with this table's facts cached.
    u.wait = Wait::None;
    u.images.reset();
    if (schema_failed_) {
      u.inexact = "the request is mirrored as its text (several statements, or a WITH that writes), and the "
                  "catalog query that checks its tables for values the store picks failed";
    } else {
      u.checked = Checked::Hazards;
    }
    return startUnit();
  }
  u.wait = Wait::None;
  planImages(u, std::move(facts));
  startUnit();
}

bool ClientSession::readHazardsHold(Unit& u) {
  if (u.checked >= Checked::Hazards || u.wait == Wait::Hazards || u.status_before != 'I' || u.mirrored ||
      u.info.kind != router::StatementKind::Read) {
    return u.wait == Wait::Hazards;
  }
  // The session's copy, else the process's (one lock per session and refresh, not per read).
  if (!fresh(read_hazards_)) {
    std::lock_guard lock(g_hazards_mutex);
    auto it = g_hazards.find(hazardsKey(database_, authority_));
    read_hazards_ = it != g_hazards.end() && fresh(it->second) ? it->second : CachedReadHazards{};
  }
  const std::shared_ptr<const router::ReadHazards> hazards = read_hazards_.hazards;
  if (!hazards) {
    u.wait = Wait::Hazards;
    captured_.clear();
    captured_bytes_ = 0;
    schema_failed_ = false;
    // On the authoritative store, through a statement of cutover's own (the client's unnamed
    // statement stays); nothing of the unit has been sent yet.
    sendToLane(authority_, injectedQuery(router::readHazardsQuery()), Segment{Reply::Hazards});
    return true;
  }
  u.checked = Checked::Hazards;
  std::string why = router::hazardOf(u.info, *hazards);
  if (why.empty()) return false;
  log::debug("session {}: a read runs as a write: it {}: \"{}\"", id_, why, u.text.substr(0, 200));
  if (u.shadowed) {
    shadows_.cancel(u.number);
    u.shadowed = false;
  }
  u.info.kind = router::StatementKind::Write;
  u.info.reason = std::move(why);
  routeAsWrite(u);
  return true;
}

void ClientSession::readHazardsLoaded() {
  std::shared_ptr<const router::ReadHazards> hazards;
  if (schema_failed_) {
    // Unknown stays a write: every read outside a transaction is mirrored until the catalog is
    // read again (after kHazardsMaxAge).
    log::warn("session {}: the catalog query for what can make a read write failed on the {} store (database {}); "
              "reads are mirrored as writes until it is tried again (in 30 s)",
              id_, router::toString(authority_), database_);
    router::ReadHazards unknown;
    unknown.unreadable = "the database's catalog could not be read for what can make a read write: taken for a write";
    hazards = std::make_shared<const router::ReadHazards>(std::move(unknown));
  } else {
    hazards = std::make_shared<const router::ReadHazards>(router::readHazardsFrom(captured_));
    if (hazards->overflow) {
      log::error("database {}: more than {} volatile functions and objects calling them: every read outside a "
                 "transaction is mirrored as a write", database_, router::ReadHazards::kMaxReadHazards);
    }
  }
  captured_.clear();
  captured_.shrink_to_fit();
  read_hazards_ = {hazards, std::chrono::steady_clock::now(), g_schema_generation.load(std::memory_order_relaxed)};
  {
    std::lock_guard lock(g_hazards_mutex);
    g_hazards[hazardsKey(database_, authority_)] = read_hazards_;
  }
  if (!unit_ || unit_->wait != Wait::Hazards) return;
  unit_->wait = Wait::None;
  startUnit();
}

void ClientSession::planImages(Unit& u, std::shared_ptr<const router::TableFacts> facts) {
  Images& im = *u.images;
  im.plan = router::planImages(im.shape, *facts, u.info.nondeterministic);
  u.inexact = im.plan.side_effects;   // beside the images, if any: never silent
  if (!im.plan.images) {
    if (!im.plan.inexact.empty()) u.inexact = im.plan.inexact;
    u.images.reset();
    return;
  }
  if (im.extended && !im.imageable_batch) {
    u.inexact = im.plan.why + "; an extended-protocol batch with several statements, a named portal, a row limit or "
                              "binary results is mirrored as its text (row images: a simple Query, or one "
                              "Parse/Bind/Execute)";
    u.images.reset();
    return;
  }
  Result<std::string> rewritten = router::withImageReturning(u.text, im.shape);
  if (!rewritten) {
    u.inexact = im.plan.why + "; the statement could not be rewritten to return its rows: " +
                rewritten.status().message();
    u.images.reset();
    return;
  }
  im.facts = std::move(facts);
  if (im.extended) {
    // The client's own statement stays as it made it; this run binds cutover's rewritten copy,
    // parsed just before in a batch of cutover's own (its answers swallowed).
    im.statement = imagedBatch(u.bytes.span(), im.hidden_describe);
    im.prologue = protocol::encode(protocol::Close{'S', std::string(kImageStatement)}) +
                  protocol::encode(protocol::Parse{std::string(kImageStatement), *rewritten, im.param_types}) +
                  protocol::encode(protocol::Sync{});
  } else {
    im.statement = queryMessage(*rewritten);
  }
}

std::optional<std::string> ClientSession::errorForClient(const Unit& u, std::span<const uint8_t> error_body) {
  // A simple Query ran as cutover's rewritten text: a position in it is mapped back to the
  // client's. (An extended batch keeps the client's own Parse, whose errors point into its text.)
  if (!u.images || u.images->extended || u.text_cut || u.images->statement.size() <= 5) return std::nullopt;
  auto error = protocol::decode<protocol::ErrorResponse>(error_body);
  if (!error.isOk()) return std::nullopt;
  auto& fields = error.value().fields;
  auto position = std::find_if(fields.begin(), fields.end(), [](const auto& f) { return f.first == 'P'; });
  if (position == fields.end()) return std::nullopt;
  const auto statement = std::span(reinterpret_cast<const uint8_t*>(u.images->statement.data()) + 5,
                                   u.images->statement.size() - 5);
  const std::optional<std::string_view> rewritten = protocol::queryTextOf(statement);
  std::optional<int> mapped;
  if (rewritten) mapped = router::mapErrorPosition(u.text, *rewritten, std::atoi(position->second.c_str()));
  if (mapped) {
    position->second = std::to_string(*mapped);
  } else {
    fields.erase(position);   // no place in the client's text: better none than a wrong one
  }
  return protocol::encode(error.value());
}

void ClientSession::imageMessage(Store store, char type, std::span<const uint8_t> body) {
  Images& im = *unit_->images;
  evbuffer* out = forwardTarget(store);
  if (type == protocol::RowDescription::kType) {
    auto description = protocol::decode<protocol::RowDescription>(body);
    if (!description.isOk()) return fatal("08P01", "cutover could not read the store's RowDescription of a write");
    auto& fields = description.value().fields;
    auto marker = std::find_if(fields.begin(), fields.end(),
                               [](const auto& f) { return f.name == router::kImageMarker; });
    if (marker == fields.end()) {
      // The client's Describe of its own statement (as it made it): its answer as it is.
      append(out, protocol::encode(description.value()));
      return;
    }
    im.client_columns = static_cast<size_t>(marker - fields.begin());
    im.columns.clear();
    im.keep.clear();
    for (size_t i = im.client_columns + 1; i < fields.size(); ++i) {
      if (!router::writtenByImages(*im.facts, fields[i].name)) continue;
      im.columns.push_back(fields[i].name);
      im.keep.push_back(i);
    }
    if (im.hidden_describe) return;       // cutover's own Describe
    if (im.client_columns == 0) {
      // The client asked for no rows: it sees none (its Describe of an INSERT: NoData).
      if (im.extended) append(out, protocol::encode(protocol::NoData{}));
      return;
    }
    fields.resize(im.client_columns);
    append(out, protocol::encode(description.value()));
    return;
  }
  auto row = protocol::decode<protocol::DataRow>(body);
  if (!row.isOk() || row.value().columns.size() < im.client_columns + 1) {
    return fatal("08P01", "cutover could not read the store's row of a write");
  }
  auto& columns = row.value().columns;
  protocol::DataRow image;
  size_t bytes = 16;
  for (size_t i : im.keep) {
    if (i >= columns.size()) return fatal("08P01", "the store's row of a write is shorter than its RowDescription");
    bytes += columns[i] ? columns[i]->size() + 4 : 4;
    image.columns.push_back(std::move(columns[i]));
  }
  // Digested as the secondary's RETURNING row of the same columns will be.
  const std::string encoded = protocol::encode(image);
  lane(store).outcome.addRow(std::span(reinterpret_cast<const uint8_t*>(encoded.data()), encoded.size()).subspan(5));
  if (!im.overflow) {
    im.bytes += bytes;
    if (im.bytes > kMaxImageBytes) {
      im.overflow = true;
      im.rows.clear();
      im.rows.shrink_to_fit();
    } else {
      im.rows.push_back(std::move(image.columns));
    }
  }
  if (im.client_columns == 0) return;
  columns.resize(im.client_columns);
  append(out, protocol::encode(row.value()));
}

namespace {

// pg_proc OIDs of the built-ins (fixed across clusters of a major version; libpq and pgjdbc call
// them by these OIDs, which they look up once).
constexpr uint32_t kLoCreat = 957;    // lo_creat(integer mode) returns oid
constexpr uint32_t kLoCreate = 715;   // lo_create(oid) returns oid; 0 = the store picks

std::optional<uint32_t> oidOf(const std::string& value, bool binary) {
  if (binary) {
    if (value.size() != 4) return std::nullopt;
    const auto* b = reinterpret_cast<const unsigned char*>(value.data());
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }
  uint32_t oid = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), oid);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return oid;
}

}  // namespace

bool ClientSession::picksLargeObject(const protocol::FunctionCall& call) {
  if (call.function_oid == kLoCreat) return true;
  if (call.function_oid != kLoCreate || call.args.size() != 1 || !call.args[0]) return false;
  const bool binary = !call.arg_formats.empty() && call.arg_formats[0] == protocol::kFormatBinary;
  return oidOf(*call.args[0], binary) == 0u;
}

std::string ClientSession::largeObjectCreate(const Unit& u) {
  if (!u.large_object || !u.large_object->picked) return {};
  const std::optional<uint32_t> oid =
      oidOf(*u.large_object->picked, u.large_object->result_format == protocol::kFormatBinary);
  if (!oid || *oid == 0) return {};
  protocol::FunctionCall create;
  create.function_oid = kLoCreate;
  create.arg_formats = {protocol::kFormatBinary};
  const char be[4] = {static_cast<char>(*oid >> 24), static_cast<char>(*oid >> 16), static_cast<char>(*oid >> 8),
                      static_cast<char>(*oid)};
  create.args = {std::string(be, 4)};
  create.result_format = u.large_object->result_format;
  return protocol::encode(create);
}

std::string ClientSession::secondaryStatement(Unit& u) {
  if (!u.images) return {};
  Images& im = *u.images;
  if (lane(u.serve).outcome.failed) {
    // Nothing was written: the secondary runs the statement, to fail (or not) as a mirror does.
    u.images.reset();
    return {};
  }
  if (im.overflow) {
    u.inexact = im.plan.why + fmt::format("; its row images passed {} MiB, so it is mirrored as its text",
                                          kMaxImageBytes >> 20);
    u.images.reset();
    return {};
  }
  std::string sql = router::imageApplyStatement(*im.facts, im.columns, im.shape, im.rows);
  im.rows.clear();
  im.rows.shrink_to_fit();
  return queryMessage(sql);
}

void ClientSession::journalInexact(const Unit& u, Store serve) {
  metrics::global().divergences(metrics::DivergenceKindLabel::Nondeterministic).Increment();
  compare::Divergence d = divergenceOf(u, compare::divergence_kind::kNondeterministic, serve,
                                       lane(serve).outcome.describe(), "mirrored as the statement");
  d.table = fmt::format("{}", fmt::join(u.info.tables, ", "));
  d.reason = u.inexact;
  missedWriteOn(router::otherStore(serve), compare::divergence_kind::kNondeterministic);
  log::warn("session {}: nondeterministic write on {} mirrored as its text: {}", id_, d.table, u.inexact);
  journalWrite(d);
}

}  // namespace cutover::proxy
