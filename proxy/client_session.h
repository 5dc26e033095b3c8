#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "protocol/messages.h"
#include "protocol/scram_server.h"
#include "proxy/auth_query.h"
#include "proxy/backend.h"
#include "proxy/cancel_registry.h"
#include "proxy/connection.h"
#include "proxy/frame_scanner.h"
#include "proxy/libevent_handles.h"

namespace cutover::proxy {

class Worker;

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
  AuthStep auth_step_ = AuthStep::Md5Password;
  std::unique_ptr<protocol::ScramServer> scram_;
  std::array<uint8_t, 4> md5_salt_{};
  std::string md5_stored_;                   // "md5…" of the user, or empty for an unknown user
  bool user_counted_ = false;
  bool awaiting_lookup_ = false;             // auth.query answer pending
  std::optional<config::UserCredential> looked_up_;
  std::shared_ptr<const TlsServerContext> tls_server_;   // the context this client's TLS uses
  bool counted_ = false;
  bool key_minted_ = false;
  CancelRegistry::MintedKey key_{};

  // Relay state. Messages are forwarded in runs, a large one in pieces as it arrives.
  FrameScanner client_scanner_;
  FrameScanner backend_scanner_;
  int pending_ready_ = 0;          // Query/Sync/FunctionCall relayed, ReadyForQuery not yet seen
  bool extended_open_ = false;     // extended-protocol messages relayed since the last Sync
  char transaction_status_ = 'I';
  bool draining_ = false;
  bool client_paused_ = false;     // client reads stopped: backend output is full
  bool backend_paused_ = false;    // backend reads stopped: client output is full
};

}  // namespace cutover::proxy
