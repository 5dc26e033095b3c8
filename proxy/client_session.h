#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "compare/async_wal.h"
#include "compare/compare_rules.h"
#include "compare/divergence.h"
#include "compare/result_compare.h"
#include "compare/result_digest.h"
#include "compare/write_outcome.h"
#include "flags/flag_snapshot.h"
#include "protocol/messages.h"
#include "router/classifier.h"
#include "router/decide.h"
#include "router/prepared_statements.h"
#include "router/read_hazards.h"
#include "router/row_images.h"
#include "protocol/scram_server.h"
#include "proxy/auth_query.h"
#include "proxy/backend.h"
#include "proxy/mirror_sequencer.h"
#include "proxy/cancel_registry.h"
#include "proxy/connection.h"
#include "proxy/frame_scanner.h"
#include "proxy/libevent_handles.h"
#include "proxy/shared_bytes.h"

namespace cutover::proxy {

class Worker;

// What a database defines that can make a read write (router/read_hazards.h), as read from one
// store's catalog: shared by the process's sessions (client_session_images.cc), copied by each.
struct CachedReadHazards {
  std::shared_ptr<const router::ReadHazards> hazards;
  std::chrono::steady_clock::time_point read_at;
  uint64_t generation = 0;   // the schema generation it was read in (DDL through cutover)
};

// A shadowed read (issue 5): the serve store's answer streams to the client while it is
// digested; the other store runs the same messages on this session's connection to it, and its
// answer is digested and dropped. Compared once both are complete.
struct ShadowRead {
  uint64_t unit = 0;
  router::Store serve = router::Store::Old;
  std::string text;
  router::StatementInfo info;
  std::vector<std::optional<std::string>> parameters;
  std::vector<int16_t> param_formats, result_formats;
  std::vector<uint32_t> param_types;
  compare::CompareRules rules;                        // before the digesters, which point to it
  std::optional<compare::ResultDigester> old_side, new_side;
  std::chrono::steady_clock::time_point started{};
  double old_ms = 0, new_ms = 0;
  bool serve_done = false, other_done = false;
  bool abandoned = false;                             // the served read was given up: dropped
  std::string spoiled;                                // why it cannot be compared ("" = it can)
  size_t budget = 0;                                  // bytes charged to the worker's shadow budget
};

// One client connection and the backend connection(s) serving it, on one worker. Pass-through:
// after login every message is relayed frame by frame to the old store and back, streamed (a
// message is forwarded as its bytes arrive, never gathered whole), with backpressure both ways.
class ClientSession : public BackendCallbacks, public ConnectionCallbacks {
 public:
  ClientSession(Worker& worker, uint64_t id, int fd);
  ~ClientSession() override;
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  void start();
  uint64_t id() const { return id_; }
  // Shutdown: close at the next moment the session is idle (no transaction, nothing in flight).
  void beginDrain();
  // Close now, telling a logged-in client why (FATAL 57P01).
  void terminate(const char* reason);

  // BackendCallbacks
  void onBackendReady(Backend& backend) override;
  void onBackendLoginFailed(Backend& backend, protocol::ErrorResponse error) override;
  void onBackendReadable(Backend& backend) override;
  void onBackendDrained(Backend& backend) override;
  void onBackendClosed(Backend& backend, const std::string& reason) override;

 private:
  // Startup → (TLS) → Authenticating (client proves who it is) → LoggingIn (cutover logs in to
  // the store) → Relaying. Nothing reaches a store before Authenticating succeeds.
  enum class State { Startup, Authenticating, LoggingIn, Relaying, Closing };
  enum class AuthStep { Md5Password, SaslInitial, SaslFinal };

  // ConnectionCallbacks, for the client socket.
  void onReadable(Connection&) override;
  void onDrained(Connection&) override;
  void onClosed(Connection&, const std::string& reason) override;
  void onTlsReady(Connection&) override;
  static void onTimer(evutil_socket_t, short, void* arg);

  void handleStartupPackets();
  void handleStartupMessage(const protocol::StartupMessage& startup);
  void handleCancelRequest(const protocol::CancelRequest& cancel);
  void handleSslRequest();
  void beginClientAuth();
  void onAuthLookup(const AuthQuery::Answer& answer);
  // Sends the authentication request for `credential` (null: unknown user, mock exchange).
  void challenge(const config::UserCredential* credential);
  void handleAuthMessages();
  // Every way authentication can fail answers the same FATAL 28P01; `why` is for the log only.
  void authenticationFailed(const std::string& why);
  void connectBackend();
  // Greets the client as the store `backend` greeted us (ParameterStatus), with our own key.
  void completeLogin(Backend& backend);
  // Registers `backend`'s cancel key under this client's minted key (one slot per store).
  void bindCancel(const Backend& backend);
  static CancelTarget cancelTargetOf(const Backend& backend);
  void relayClientToBackend();
  void relayBackendToClient();
  bool idle() const;
  void closeIfDrainedAndIdle();

  // Sends a FATAL ErrorResponse, then closes once it is flushed.
  void fatal(const char* sqlstate, const std::string& message, const std::string& hint = {});
  void fatal(const protocol::ErrorResponse& error);
  // Stops reading, closes the backend, and closes the client once its output is flushed.
  void closeAfterFlush(const std::string& reason);
  void finish();
  // Gives back this session's slot of max_client_connections (at most once).
  void releaseSlot();

  // --- routed mode (client_session_routed.cc): dual-write and the read ramp ------------------
  // What one store's replies to a piece of work are for. Replies are consumed strictly in order,
  // one segment per ReadyForQuery the store will send.
  enum class Reply {
    Forward,   // to the client (rows streamed); CommandComplete/ErrorResponse also recorded
    Record,    // consumed by the proxy: the outcome is recorded for comparison
    Swallow,   // consumed by the proxy: the answer to a message the proxy injected
    Commit,    // the proxy's COMMIT of a wrapped unit: errors and ReadyForQuery go to the client
    Capture,   // the proxy's query of the session's state: rows kept in captured_ (see enterRouted)
    Shadow,    // the other store's answer to a shadowed read: digested into shadow_, dropped
    Apply,        // mirror: async: the secondary's answer to a queued write: recorded, compared
    ApplyCommit,  // mirror: async: the commit that ends a queued write (errors recorded, no tag)
    Discard,      // a ramped read given up after ramp_read_timeout_ms: its late answer is dropped
    Schema,       // the proxy's catalog query for a write's target table: rows kept in captured_
    Hazards,      // the proxy's catalog query of what can make a read write (router/read_hazards.h)
  };
  struct Segment {
    Reply reply;
    bool hold_ready = false;   // Forward, Commit: keep the ReadyForQuery back until the unit completes
    bool digest = false;       // Forward: the serve side of shadow_, digested as it streams
    bool rows = false;         // Apply: RETURNING rows of a write, digested for the comparison
  };
  using Shadow = ShadowRead;
  using Outcome = compare::WriteOutcome;
  struct Lane {
    std::unique_ptr<Backend> backend;
    bool up = false;                   // logged in and in step with this session
    std::deque<Segment> plan;
    size_t remaining = 0;              // bytes of a message being streamed (forwarded or dropped)
    bool remaining_forward = false;
    char remaining_type = 0;           // … and its type
    Outcome outcome;
    int parse_completes = 0;           // ParseComplete answers to the running unit
    size_t results = 0;                // its statements' results ended (CommandComplete and kin)
    char last_status = 'I';
    bool connecting = false;           // a connection is being opened (login, then replay)
    uint64_t opened_for = 0;           // flags version of this session's last attempt to open it
    std::string error;                 // why the last attempt failed
    // A ramped read given up here (ramp_read_timeout_ms) was cancelled; until its answer is in
    // (abandoned) and the store confirmed the cancel (cancel_pending), nothing else is sent on
    // this connection, so the cancel cannot hit a later statement.
    int abandoned = 0;
    bool cancel_pending = false;
    bool fenced() const { return abandoned > 0 || cancel_pending; }
  };
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
    bool serve_done = false, secondary_done = false, released = false;
    bool held = false;
    bool serve_sent = false, secondary_sent = false;
    bool forwarded = false;            // some of the serve store's answer already went to the client
    bool shadowed = false;             // a shadow read of it runs on the other store (shadow_)
    bool streaming = false;            // a ramped read's answer outgrew the holding buffer
    bool waiting_fence = false;        // mirrored, waiting for the secondary's fence (Lane::fenced)
    bool waiting_reconnect = false;    // sync mirror: waiting for the secondary's reconnection
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
    bool commit_sent = false;          // … and its COMMIT was sent
    bool simple_query = false;         // the unit is a simple Query
    bool flush_only = false;           // Parse/Describe/Close + Flush, ended by a Sync of cutover's (not answered)
    std::string held_complete;         // a wrapped simple Query's CommandComplete, until its COMMIT succeeded
    std::shared_ptr<WalEntry> wal;     // async: its queued write's record; the answer waits for it
    bool wal_waiting = false;          // … being fsync'd: the client's ReadyForQuery waits
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
    bool checking_statements = false;  // the catalog query under way is checkStatements'
    bool images_checked = false;       // prepareImages ran (it may have asked the catalog first)
    bool hazards_checked = false;      // readHazardsHold looked at it
    bool hazards_loading = false;      // … and waits for the catalog's answer
    bool noted = false;                // noteTransactionStatement ran
    std::optional<Images> images;
    std::string inexact;               // statement-mirrored although the store picks values: why
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
    // The first unit's Unit::execute_writes: which of the body's first results are a write's (a
    // pipelined SELECT's tag and rows are not compared, as under sync).
    std::vector<bool> execute_writes;
    bool nondeterministic = false;
    bool overflow = false;             // an explicit transaction outgrew the queue's bytes
    int copy_streams = 0;              // COPY FROM STDIN streams the body carries, each ended
    std::string text;
    std::vector<std::optional<std::string>> parameters;
    Outcome serve;                     // the authoritative store's outcome of the same messages
    std::shared_ptr<WalEntry> wal;     // its write-ahead record, settled when it leaves the queue
    size_t bytes() const { return body.size() + commit.size() + text.size() + 256; }
  };

  // COPY FROM STDIN of the running unit, as its serve store sees it (protocol 55.2.6 "COPY
  // Operations"; client_session_copy.cc).
  enum class CopyIn {
    Idle,        // no COPY taking data: copy messages wait behind a running unit (sent early), and
                 // are dropped when no unit runs, as PostgreSQL drops them
    Streaming,   // the serve store sent CopyInResponse: the client's copy messages go to the stores
    Aborted,     // the serve store ended it with an error: the client's remaining copy messages
                 // are dropped, as PostgreSQL drops them after an error
  };
  // What routedClientInput does with a copy message at the front of the client's input.
  enum class CopyStep { NotCopy, Taken, Wait };

  bool routed() const { return routed_; }
  // True when flags need the router (anything but writes: old with no ramp, shadow or override).
  static bool needsRouting(const flags::FlagSnapshot& flags);
  // At a boundary outside any transaction: takes the worker's flags if they changed since this
  // session's, and brings the session in line (pass-through → routed, authority moves, a store
  // connection opened). Returns false while the session waits for a store connection (then
  // client input waits too, and resumes by itself).
  bool refreshFlags();
  bool settleFlags();
  void enterRouted();
  void capturedState();
  void openLane(router::Store store);
  void initRouted();
  void startRoutedBackends();
  void routedClientInput();
  bool takeUnit(Unit& unit);
  void classifyUnit(Unit& unit, bool has_sync);
  void startUnit();
  void sendToSecondary();
  void armMirrorTimer();
  void sendToLane(router::Store store, const std::string& bytes, Segment segment);
  void sendToLane(router::Store store, const SharedBytes& bytes, Segment segment);
  // COPY FROM STDIN in routed mode (client_session_copy.cc).
  CopyStep takeCopyMessage(evbuffer* in, const protocol::Frame& frame);
  bool copyBackedUp();
  bool feedsSecondary() const;
  void copyStarted(router::Store store, const Segment& segment);
  void serveCopyFailed(const std::string& why);
  void endUnfedCopies();
  void resumeCopyInput();
  void drainLane(router::Store store);
  evbuffer* forwardTarget(router::Store store);
  void releaseHeldRead(bool complete);
  void answerFlushed(router::Store store, char type, bool more_buffered);
  void segmentDone(router::Store store, const Segment& segment, char status);
  void advanceUnit();
  void recordAccepted(Unit& u);
  bool refusedAsWrite(Unit& u);
  // `u`, found to write although classified a read (u.info says why), is routed again as the
  // write it is and started: mirrored, on its tables' authoritative store.
  void routeAsWrite(Unit& u);
  // The database's read hazards (router/read_hazards.h), from the process-wide schema cache: a
  // read outside a transaction that names one runs as a write. True while the unit waits for
  // the catalog, or was started again as a write.
  bool readHazardsHold(Unit& u);
  void readHazardsLoaded();
  static bool writesRows(const Unit& u, size_t result);
  void finishComparison();
  void releaseUnit();
  void secondaryLost(const std::string& why);
  // ramp_read_timeout_ms (client_session_routed.cc): a ramped read that sent the client nothing
  // in time is cancelled on its store and served by the authoritative one; that store's lane is
  // fenced until the late answer and the cancel's confirmation are in.
  void armRampTimer();
  static void onRampReadTimeout(evutil_socket_t, short, void* arg);
  void abandonRampedRead();
  bool anyLaneFenced() const { return lanes_[0].fenced() || lanes_[1].fenced(); }
  void armFenceTimer();
  static void onFenceTimeout(evutil_socket_t, short, void* arg);
  void fenceMaybeLifted(router::Store store);
  void maybeReconnectSecondary();
  // The secondary's reconnection ended (logged in, or failed with `error`): a unit waiting for it
  // runs, mirrored or (failed) journaled. True when there was one.
  bool reconnectEnded(const std::string* error);
  void replayOnto(router::Store store);
  void journalMiss(const Unit& unit, std::string_view kind, const std::string& outcome);
  // Journal per transaction: the transaction's id and the statements mirrored in it so far.
  void noteTransactionStatement(const Unit& u);
  uint64_t txn_id_ = 0;
  std::string txn_statements_;
  bool transaction_unmirrored_ = false;   // router::UnitFacts::transaction_unmirrored
  static void countMirrorWrite(bool diverged, bool failed, bool nondeterministic);
  // mirror: async (client_session_async.cc).
  bool mirrorPending() const { return !mirror_queue_.empty(); }
  void startAsyncUnit();
  void queueMirror(Unit& unit);
  void enqueueMirror(MirrorItem item);
  void pumpMirror();
  void mirrorSegmentDone(const Segment& segment);
  void finishMirrorItem();
  void dropMirrorQueue(std::string_view kind, const std::string& why);
  void journalItem(const MirrorItem& item, std::string_view kind, std::string serve_outcome,
                   std::string secondary_outcome);
  void asyncCommitDone(Unit& unit);
  // The write-ahead record (compare/async_wal.h). writeIntent: the line a write becomes if the
  // proxy dies before it is on both stores, written before the store that commits first does.
  // awaitWal: async, after the authoritative COMMIT: true when the client's answer now waits for
  // the intent's fsync (walDurable releases it). settle: its done.
  std::shared_ptr<WalEntry> writeIntent(const compare::Divergence& line);
  bool awaitWal(Unit& unit);
  void walDurable(uint64_t unit, bool durable);
  void ackAsyncCommit();         // a wrapped async write's held answer to the client
  void settle(std::shared_ptr<WalEntry>& entry);
  void attachWal(Unit& unit, MirrorItem& item);
  void unitEndsInDoubt(Unit& unit, const std::string& why);
  // The authoritative store's connection died with a write in flight that the secondary has
  // committed, or will: journaled as in doubt there.
  void authorityLost(const std::string& why);
  // mirror: sync: the injected COMMIT of a wrapped write failed after the secondary applied it.
  void syncCommitDone(Unit& unit);
  static void onApplyTimeout(evutil_socket_t, short, void* arg);
  // Exact mirroring (client_session_images.cc). True while the unit waits for the catalog.
  bool prepareImages(Unit& u);
  // A unit of several statements: whether any leaves values to the store (then journaled). True
  // while it waits for a table's facts.
  bool checkStatements(Unit& u, const std::vector<std::string>& statements);
  // A statement whose WITH writes (router::cteWriteShapes): its parts checked alike.
  bool checkCteWrites(Unit& u, const router::CteWrites& writes);
  struct CheckedPart {
    std::string label;                          // how the journal names it
    std::optional<router::WriteShape> shape;    // of a write whose table's facts matter
    bool nondeterministic = false;              // its text calls a function each store evaluates
    bool known = true;                          // false: a statement cutover does not know
  };
  // The parts' tables' facts (loaded one at a time: true while one is being read) say whether
  // any leaves values to the store; then u.inexact is `what` and why.
  bool checkParts(Unit& u, const std::vector<CheckedPart>& parts, const std::string& what);
  void schemaLoaded();
  void planImages(Unit& u, std::shared_ptr<const router::TableFacts> facts);
  // A RowDescription or DataRow of the serve store's answer to an imaged unit: the image columns
  // are kept, the client's part forwarded.
  void imageMessage(router::Store store, char type, std::span<const uint8_t> body);
  // The Query message the secondary runs for `u`: its images' statement, or "" for the client's
  // own bytes (no images, the serve store failed, too many rows: then u.inexact says why).
  std::string secondaryStatement(Unit& u);
  // A write mirrored as its text although the store picks values (u.inexact): journaled.
  void journalInexact(const Unit& u, router::Store serve);
  // DDL ran: every session reads its tables' facts again.
  static void schemaChanged();
  // Shadow reads (client_session_shadow.cc).
  bool startShadow(const Unit& unit);
  // The shadow that `store`'s next result messages belong to: the serve side of the newest
  // (units run one at a time), or the oldest whose other side is pending. Null if none.
  Shadow* shadowFor(router::Store store, bool serve_side) const;
  void digestShadow(Shadow& shadow, router::Store store, char type, std::span<const uint8_t> body);
  void hiddenWriteInShadow(Shadow& shadow, std::span<const uint8_t> error_body);
  void shadowSideDone(router::Store store, bool serve_side);
  void dropShadows(const char* why);
  // The shadow of `unit`, whose served side will not be digested (its read was given up there):
  // dropped once its other side is in.
  void abandonShadow(uint64_t unit);
  // The shadow of `unit`, not sent yet (the unit turned out to be a write): dropped, counted.
  void cancelShadow(uint64_t unit);
  void finishShadow(std::shared_ptr<Shadow> shadow);
  std::vector<std::string> recheckSetup() const;
  // The journal record of `unit`: served by `serve`, compared with the other store.
  compare::Divergence divergenceOf(const Unit& unit, std::string_view kind, router::Store serve,
                                   std::string serve_outcome, std::string secondary_outcome) const;
  compare::Divergence divergenceOf(uint64_t unit, std::string text, std::vector<std::optional<std::string>> parameters,
                                   std::string_view kind, router::Store serve, std::string serve_outcome,
                                   std::string secondary_outcome) const;
  router::SessionView storeView() const;
  Lane& lane(router::Store store) { return lanes_[store == router::Store::Old ? 0 : 1]; }
  router::Store storeOf(const Backend& backend) const;
  static void onMirrorTimeout(evutil_socket_t, short, void* arg);

  bool routed_ = false;
  bool switching_ = false;
  // mirror: async: queued writes, oldest first; the head runs on the secondary when mirror_busy_.
  std::deque<MirrorItem> mirror_queue_;
  size_t mirror_queue_bytes_ = 0;
  int mirror_segments_ = 0;                 // Apply/ApplyCommit answers the head still owes
  bool mirror_busy_ = false;
  bool mirror_waiting_ = false;             // the head waits for lower tickets (sequencer)
  std::optional<MirrorItem> mirror_txn_;    // the explicit transaction in progress, queued at its end
  bool mirror_draining_ = false;            // the client left; the queue is applied, then the session ends
  bool mirror_overflow_logged_ = false;
  // Temporary tables (views, sequences) this session created. When some exist only on the
  // authoritative store's connection (created before the session was routed, or while the other
  // store's connection was down), its reads stay on the authoritative store: a read ramped or
  // shadowed to the other store would not find them.
  bool temp_objects_ = false;
  bool temp_on_authority_only_ = false;
  // A write of this session that a store missed (journaled): that store may hold other data than
  // the authoritative one, so the session's reads are never served from it again.
  bool missed_on_old_ = false, missed_on_new_ = false;
  void missedWriteOn(router::Store store, std::string_view kind);     // queue_full logged once until the queue empties
  Outcome mirror_outcome_;                  // the secondary's outcome of the head write
  size_t mirror_results_ = 0;               // results of the head item's body ended so far
  bool appliedWritesRows() const;           // … whether the next one is a write's (MirrorItem::execute_writes)
  EventPtr apply_timer_;
  // Shadowed reads in flight, oldest first: each store answers its side in this order.
  std::deque<std::shared_ptr<Shadow>> shadows_;
  static constexpr size_t kMaxShadowsPerSession = 8;
  std::vector<std::vector<std::optional<std::string>>> captured_;   // rows of the state or catalog query
  // Target tables of this session's writes, by the name as written (schema cache, DESIGN.md):
  // looked up on the session's own connection, so names resolve by its search_path. Cleared on
  // SET/RESET and whenever any session of the process ran DDL (ddl generation).
  struct CachedFacts {
    std::shared_ptr<const router::TableFacts> facts;
    std::chrono::steady_clock::time_point read_at;
  };
  std::unordered_map<std::string, CachedFacts> table_facts_;
  CachedReadHazards read_hazards_;         // this session's copy of the database's read hazards
  uint64_t table_facts_generation_ = 0;
  bool schema_failed_ = false;             // the catalog query of the running unit failed
  size_t captured_bytes_ = 0;
  flags::FlagSnapshotPtr flags_;
  router::Store authority_ = router::Store::Old;
  std::array<Lane, 2> lanes_;
  std::optional<Unit> unit_;
  uint64_t next_unit_ = 1;
  uint64_t session_hash_ = 0;
  CopyIn copy_in_ = CopyIn::Idle;      // the running unit's COPY FROM STDIN
  int mirror_copies_ = 0;              // async: CopyInResponses of the secondary for the head item
  router::PreparedStatements sql_prepared_;
  std::unordered_map<std::string, router::StatementInfo> parsed_;   // extended-protocol statements by name
  std::unordered_map<std::string, std::string> parsed_text_;
  std::optional<protocol::Parse> unnamed_statement_;   // the client's last Parse of the unnamed statement
  EventPtr mirror_timer_;
  EventPtr ramp_timer_;    // ramp_read_timeout_ms of the running ramped read
  EventPtr fence_timer_;   // mirror_timeout_ms: the longest work waits for a fenced secondary
  std::shared_ptr<char> life_ = std::make_shared<char>();   // expires with the session (callbacks)
  UniqueHandle<evbuffer, evbuffer_free> ramp_hold_;   // a ramped read's answer until complete
  // Reconnecting a lost secondary: what to replay so the new connection matches the session.
  Backend::Parameters routed_startup_;
  std::unordered_map<std::string, std::string> parsed_bytes_;   // named Parse messages, as sent
  std::vector<std::string> session_log_;                         // SET/PREPARE/LISTEN… queries, in order
  bool replay_complete_ = true;                                  // false once a log overflowed
  bool reconnecting_ = false;
  int reconnect_backoff_ms_ = 500;
  std::chrono::steady_clock::time_point next_reconnect_{};

  evbuffer* clientInput() const { return client_->input(); }
  evbuffer* clientOutput() const { return client_->output(); }

  Worker& worker_;
  const uint64_t id_;
  std::unique_ptr<Connection> client_;
  EventPtr timer_;   // login timeout, then the flush-before-close limit
  std::unique_ptr<Backend> backend_;
  State state_ = State::Startup;
  std::string user_;
  std::string database_;
  Backend::Parameters startup_parameters_;   // kept only until the store login starts
  // A replication connection (allow_replication_connections): passed through to the store that
  // was authoritative at login for its whole life; never routed, mirrored or moved by flags.
  bool replication_ = false;
  AuthStep auth_step_ = AuthStep::Md5Password;
  std::unique_ptr<protocol::ScramServer> scram_;
  std::array<uint8_t, 4> md5_salt_{};
  std::string md5_stored_;                   // "md5…" of the user, or empty for an unknown user
  bool user_counted_ = false;
  bool awaiting_lookup_ = false;             // auth.query answer pending
  std::optional<config::UserCredential> looked_up_;
  std::shared_ptr<const TlsServerContext> tls_server_;   // the context this client's TLS uses
  bool counted_ = false;
  bool admitted_ = false;          // holds a slot of max_client_connections (admitted_connections)
  bool backend_counted_ = false;   // pass-through: backend_ counts in backend_connections{store=old}
  bool key_minted_ = false;
  CancelRegistry::MintedKey key_{};

  // Relay state. Messages are forwarded in runs, a large one in pieces as it arrives.
  FrameScanner client_scanner_;
  FrameScanner backend_scanner_;
  int pending_ready_ = 0;          // Query/Sync/FunctionCall relayed, ReadyForQuery not yet seen
  std::chrono::steady_clock::time_point busy_since_{};   // pending_ready_ went 0 → 1 (latency)
  bool extended_open_ = false;     // extended-protocol messages relayed since the last Sync
  char transaction_status_ = 'I';
  bool draining_ = false;
  bool client_paused_ = false;     // client reads stopped: backend output is full
  bool backend_paused_ = false;    // backend reads stopped: client output is full
};

}  // namespace cutover::proxy
