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
#include "proxy/lane.h"
#include "proxy/pass_through_relay.h"
#include "proxy/ramp_hold.h"
#include "proxy/session_replay.h"
#include "proxy/shadow_reads.h"
#include "proxy/unit.h"
#include "proxy/mirror_sequencer.h"
#include "proxy/cancel_registry.h"
#include "proxy/connection.h"
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
  // Reply, Segment, Lane: proxy/lane.h; Unit and its phases, MirrorItem: proxy/unit.h.
  using Shadow = ShadowRead;
  using Outcome = compare::WriteOutcome;

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
  // Large objects (client_session_images.cc): a FunctionCall of lo_creat or lo_create(0), whose
  // OID the store picks; and the secondary's lo_create(oid) of the OID the serve store picked
  // ("" when there is none: the call failed there, or it is not such a call).
  static bool picksLargeObject(const protocol::FunctionCall& call);
  static std::string largeObjectCreate(const Unit& u);
  // `u` is the client's COMMIT of a transaction the authoritative store had failed (the session
  // was in 'E', or it answered ROLLBACK: `served`): the secondary must roll back as well.
  static bool commitRolledBack(const Unit& u, const compare::WriteOutcome& served);
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
  struct LaneEvents;   // drainLane's handler of the lane's reader (client_session_lanes.cc)
  LaneReader::Action laneMessage(router::Store store, const protocol::Frame& frame, LaneReader::MessageView& view);
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
  // Appends a divergence of a write to the journal; the unit in flight, if any, is answered only
  // once it is on disk (Unit::journaled). False when there is no journal or it is full.
  bool journalWrite(const compare::Divergence& d);
  // Journal per transaction: the transaction's id and the statements mirrored in it so far.
  void noteTransactionStatement(const Unit& u);
  uint64_t txn_id_ = 0;
  std::string txn_statements_;
  uint64_t txn_last_noted_ = 0;   // the unit txn_statements_ ends with
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
  // The queued item of unit `number` may be applied: its authoritative COMMIT answered. Returns
  // the item, or null.
  MirrorItem* commitAnswered(uint64_t number);
  // The authoritative connection is gone (or the client left) with a COMMIT unanswered: queued
  // writes waiting for it are applied, as they were queued (in doubt: authorityLost journals it).
  void applyUnansweredCommits();
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
  // The serve store's ErrorResponse of an imaged unit, as the client is to see it: its position
  // in the client's text, not cutover's rewritten one. Nothing when it needs no change.
  static std::optional<std::string> errorForClient(const Unit& u, std::span<const uint8_t> error_body);
  // The Query message the secondary runs for `u`: its images' statement, or "" for the client's
  // own bytes (no images, the serve store failed, too many rows: then u.inexact says why).
  std::string secondaryStatement(Unit& u);
  // A write mirrored as its text although the store picks values (u.inexact): journaled.
  void journalInexact(const Unit& u, router::Store serve);
  // DDL ran: every session reads its tables' facts again.
  static void schemaChanged();
  // Shadow reads (client_session_shadow.cc; their lifecycle: proxy/shadow_reads.h).
  bool startShadow(const Unit& unit);
  // One result message of `store`'s side of `shadow`: digested; a 25006 on the read-only side
  // is a write the authoritative store ran as a read (hiddenWriteInShadow).
  void digestShadow(Shadow& shadow, router::Store store, char type, std::span<const uint8_t> body);
  void hiddenWriteInShadow(Shadow& shadow, std::span<const uint8_t> error_body);
  // A side ended, or the served read of `unit` was given up: a shadow with both sides in is judged.
  void shadowSideDone(router::Store store, bool serve_side);
  void abandonShadow(uint64_t unit);
  void dropShadows(const char* why);
  // Judges a finished shadow: compared, rechecked, journaled as a mismatch when confirmed.
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
  ShadowReads shadows_;
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
  RampHold ramp_hold_;     // a ramped read's answer until complete (or large)
  // Reconnecting a lost secondary: what to replay so the new connection matches the session.
  SessionReplay replay_;
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
  PassThroughRelay relay_;         // pass-through: the frames relayed both ways
  char transaction_status_ = 'I';
  bool draining_ = false;
  bool client_paused_ = false;     // client reads stopped: backend output is full
  bool backend_paused_ = false;    // backend reads stopped: client output is full
};

}  // namespace cutover::proxy
