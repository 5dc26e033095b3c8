#pragma once

// A unit: one client request in routed mode (a simple Query, a FunctionCall, or an extended batch
// up to its Sync) and what the session needs to run it on its stores; a queued write of mirror:
// async (MirrorItem) and its write-ahead record.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compare/async_wal.h"
#include "compare/write_outcome.h"
#include "router/classifier.h"
#include "router/decide.h"
#include "router/row_images.h"
#include "proxy/mirror_sequencer.h"
#include "proxy/shared_bytes.h"

namespace cutover::proxy {

// mirror: async durability: the write-ahead record of one queued write (compare/async_wal.h),
// shared by the unit whose answer waits for it and the queued item that settles it.
struct WalEntry {
  nlohmann::json record;                         // its divergence line, were it lost
  compare::AsyncWal::Mark mark;                  // its intent, written
  bool settled = false;                          // done: on both stores, journaled, or never committed
  bool queued = false;                           // a queued item settles it (else its unit does)
};
struct PendingStatement {
  bool sql = false;                  // PREPARE (else a protocol Parse)
  std::string name;
  router::StatementInfo info;
  std::string text;                  // Parse: its query, for the journal
  std::string replay;                // what a reconnection replays (PREPARE text, Parse message)
  bool replayable = true;            // within the replay limits
  int parse_ordinal = 0;             // Parse: its place among the unit's Parses
};
// Exact mirroring of one INSERT whose values the store picks (client_session_images.cc): the
// serve store runs it with the target's columns appended to RETURNING; those columns are cut
// from the client's answer and kept as the rows the secondary then writes as they are.
struct Images {
  router::WriteShape shape;
  router::ImagePlan plan;
  std::shared_ptr<const router::TableFacts> facts;
  std::string statement;             // the Query message the serve store runs
  size_t client_columns = 0;         // the first columns of each row: the client's RETURNING
  std::vector<std::string> columns;  // the image columns written on the secondary (not generated ones)
  std::vector<size_t> keep;          // their places in the serve store's rows
  std::vector<router::Row> rows;
  size_t bytes = 0;
  bool overflow = false;             // the rows outgrew kMaxImageBytes: statement-mirrored, journaled
  bool extended = false;             // an extended-protocol batch
  bool imageable_batch = false;      // … of the form imaged ([Parse] Bind Execute Sync of one statement)
  bool hidden_describe = false;      // cutover added the Describe: its RowDescription is not forwarded
  std::string prologue;              // serve store: Close + Parse of cutover's rewritten copy + Sync, before the batch
  std::string restore;               // secondary: the batch's Parses + Sync, so it holds the client's statement
  std::vector<uint32_t> param_types; // of the client's statement
};
// Where one store stands with a unit. A store the unit does not need (it is not mirrored there,
// or was given up) is Done.
enum class Progress : uint8_t {
  Unsent,   // not sent yet: the other store goes first, or the unit waits (Wait)
  Sent,     // sent; its answer (up to ReadyForQuery) is not all in
  Queued,   // mirror: async: handed to the session's queue; the client's answer does not wait for it
  Done,     // answered, or nothing is awaited from it
};

// What the unit waits for before it goes on; the event named resumes it.
enum class Wait : uint8_t {
  None,
  Reconnect,    // its secondary's reconnection (reconnectEnded)
  Fence,        // its secondary's fence: a given-up read there still being cancelled (fenceMaybeLifted)
  Hazards,      // the database's read hazards, from the catalog (readHazardsLoaded)
  TableFacts,   // its target table's facts, for row images (schemaLoaded)
  CheckFacts,   // a table's facts, for the statements it mirrors as their text (schemaLoaded)
  Wal,          // mirror: async: its write-ahead record's fsync; the client's ReadyForQuery waits (walDurable)
};

// How far its end has come.
enum class Ending : uint8_t {
  Running,
  Committing,   // cutover's COMMIT of a wrapped unit was sent; its ReadyForQuery completes the unit
  // … sent before the outcomes were judged: the secondary failed what the serve store had not
  // committed yet, and that COMMIT may fail alike (a deferred constraint): judged once it answered.
  JudgeAtCommit,
  Released,     // the client has its answer: the session takes the next unit
};

// How much of the serve store's answer reached the client.
enum class Delivery : uint8_t {
  Nothing,     // none: a ramped read's answer waits in the holding buffer, it can still run elsewhere
  Forwarded,   // some: it cannot be replaced by another store's
  Streaming,   // a ramped read's answer outgrew the holding buffer or was flushed: streamed from here on
};

// startUnit's one-time steps done so far, in this order (a unit routed again as a write goes back
// to Hazards: its row images are checked, as for any write).
enum class Checked : uint8_t {
  Nothing,
  Hazards,   // readHazardsHold looked at it
  Images,    // prepareImages ran (it may have asked the catalog first)
  Noted,     // noteTransactionStatement ran
};

// The client's request, as it came.
enum class Form : uint8_t {
  Query,          // a simple Query
  FunctionCall,
  Batch,          // extended-protocol messages up to a Sync (or an open one, see Unit::open)
  FlushOnly,      // Parse/Describe/Close + Flush, ended by a Sync of cutover's (not answered)
};

// One client request in routed mode: a simple Query, a FunctionCall, or an extended batch up to
// its Sync. Units run one at a time per session.
struct Unit {
  uint64_t number = 0;
  SharedBytes bytes;                 // the client's messages, shared by the stores that run them
  std::string text;                  // statement text(s), for the journal (journalText: a huge one
                                     // cut short with a note of its size)
  bool text_cut = false;             // text is not the whole statement (so not for a recheck)
  std::vector<std::optional<std::string>> parameters;
  router::StatementInfo info;
  router::Route route;
  router::Store serve = router::Store::Old;
  bool mirrored = false;             // the secondary runs it too and its outcome is compared
  bool wrapped = false;              // BEGIN/COMMIT injected around it on the serve store
  bool read_only = false;            // wrapped in BEGIN READ ONLY: a ramped read, PostgreSQL
                                     // refuses any write in it (25006), see refusedAsWrite
  bool secondary_first = false;      // explicit COMMIT: the secondary commits before the serve store
  bool open = false;                 // extended batch flushed before its Sync: more may come
  bool held = false;                 // the serve store's ReadyForQuery is held back: cutover sends it
                                     // on release (releaseUnit)
  bool shadowed = false;             // a shadow read of it runs on the other store (shadow_)
  bool journaled = false;            // a journal line was appended while it ran: its answer waits
                                     // until the line is on disk (releaseUnit)
  // Its phases (one transition per event; see the enums above).
  Progress serve_progress = Progress::Unsent;
  Progress secondary_progress = Progress::Unsent;
  Wait wait = Wait::None;
  Ending ending = Ending::Running;
  Delivery delivery = Delivery::Nothing;
  Checked checked = Checked::Nothing;
  Form form = Form::Batch;
  char serve_status = 'I';
  std::chrono::steady_clock::time_point serve_started{}, secondary_started{};
  // mirror: async (client_session_async.cc)
  bool async = false;                // the secondary gets it later, from mirror_queue_
  char status_before = 'I';          // the session's transaction status when it arrived
  MirrorTicket ticket;               // an explicit COMMIT's place in the cross-session order
  std::string copy_data;             // COPY FROM STDIN data, for the queued copy
  int copy_streams = 0;              // COPY FROM STDIN streams ended (by the client, or by a
                                     // CopyFail of cutover's when the serve store failed first)
  int secondary_copies = 0;          // sync: CopyInResponses of the secondary for this unit
  bool copy_sync_owed = false;       // extended-protocol COPY: its batch's Sync was taken by the
                                     // COPY, the store answers the client's next Sync
  bool mirror_overflow = false;      // its COPY data or batch outgrew mirror_queue_bytes: the
                                     // secondary cannot get it, the miss is journaled
  bool cut = false;                  // an extended batch taken before its Sync (input full)
  bool failed_before_commit = false; // a wrapped write: the serve store's outcome before COMMIT
  std::string held_complete;         // a wrapped simple Query's CommandComplete, until its COMMIT succeeded
  std::shared_ptr<WalEntry> wal;     // async: its queued write's record; the answer waits for it
  // PREPAREs and named Parses of this unit: they enter the session's state (what EXECUTE or
  // Bind runs, the replay after a reconnection) only once the serve store accepted them, so a
  // statement PostgreSQL refused (42P05: the name is taken; a syntax error) changes nothing.
  std::vector<PendingStatement> pending_statements;
  // An extended batch, per Execute in order: whether its statement writes, so its rows are
  // RETURNING rows compared between the stores. A pipelined SELECT's rows are not: beside other
  // sessions' writes they may differ without any divergence. Empty: every row compared.
  std::vector<bool> execute_writes;
  std::vector<std::string> execute_texts;   // the writing Executes' statements ("" unknown)
  int facts_loads = 0;               // catalog queries checkStatements sent for this unit
  std::optional<Images> images;
  std::string inexact;               // statement-mirrored although the store picks values: why
  // A FunctionCall that creates a large object whose OID the store picks (lo_creat, lo_create(0):
  // libpq's lo_import, pgjdbc's LargeObjectManager): the secondary creates it with the OID the
  // serve store's FunctionCallResponse gave (`picked`), as lo_create(oid).
  struct LargeObjectCreate {
    int16_t result_format = 0;
    std::optional<std::string> picked;
  };
  std::optional<LargeObjectCreate> large_object;
};

// mirror: async: a write acknowledged to the client and queued for the secondary store, which
// applies a session's queue in order; the ticket orders it against other sessions' writes.
struct MirrorItem {
  MirrorTicket ticket;               // empty: session state only, no order to keep
  uint64_t unit = 0;                 // the client unit that completed it
  std::string body;                  // messages the secondary runs (an explicit transaction: all
                                     // its units but the last)
  int body_units = 0;                // ReadyForQuery the body yields
  std::string commit;                // the unit that ended an explicit transaction
  bool compare = false;              // outcomes compared (writes), not only applied (session state)
  bool rows = false;                 // one write: its RETURNING rows compared too
  // A wrapped write, queued while the authoritative store still held its locks (its place in the
  // order), before cutover's COMMIT there answered: not applied until it did (asyncCommitDone),
  // for that COMMIT may fail (a deferred constraint), and then the secondary must fail alike.
  bool awaiting_commit = false;
  // The authoritative store failed this wrapped write before its COMMIT: the secondary runs it
  // between BEGIN and ROLLBACK (`commit`), to compare its outcome without keeping it.
  bool rolled_back = false;
  // The first unit's Unit::execute_writes: which of the body's first results are a write's (a
  // pipelined SELECT's tag and rows are not compared, as under sync).
  std::vector<bool> execute_writes;
  bool nondeterministic = false;
  bool overflow = false;             // an explicit transaction outgrew the queue's bytes
  int copy_streams = 0;              // COPY FROM STDIN streams the body carries, each ended
  std::string text;
  std::vector<std::optional<std::string>> parameters;
  compare::WriteOutcome serve;                     // the authoritative store's outcome of the same messages
  std::shared_ptr<WalEntry> wal;     // its write-ahead record, settled when it leaves the queue
  size_t bytes() const { return body.size() + commit.size() + text.size() + 256; }
};

}  // namespace cutover::proxy
