#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "protocol/messages.h"
#include "protocol/scram.h"
#include "proxy/connection.h"
#include "proxy/libevent_handles.h"
#include "proxy/session_context.h"

namespace cutover::proxy {

class Backend;

// Event sink of a Backend; implemented by the session that owns it.
class BackendCallbacks {
 public:
  virtual ~BackendCallbacks() = default;
  // Login finished (its ReadyForQuery consumed); parameters() and key() are filled.
  virtual void onBackendReady(Backend& backend) = 0;
  // Connect or login failed. `error` is the store's own ErrorResponse when it sent one, else one
  // made by the proxy (SQLSTATE 08006/08001/28000) naming the store.
  virtual void onBackendLoginFailed(Backend& backend, protocol::ErrorResponse error) = 0;
  // After login: bytes arrived in input(), or output() drained below the low watermark.
  virtual void onBackendReadable(Backend& backend) = 0;
  virtual void onBackendDrained(Backend& backend) = 0;
  // After login: the connection ended (store closed it, or a socket error).
  virtual void onBackendClosed(Backend& backend, const std::string& reason) = 0;
};

// One server connection to a store, owned by a session on one worker. It connects, logs in as
// the configured (or the client's) user with trust, cleartext, md5 or SCRAM-SHA-256, collects the
// startup ParameterStatus and BackendKeyData, then hands its buffers to the session for relaying.
class Backend : public ConnectionCallbacks {
 public:
  using Parameters = std::vector<std::pair<std::string, std::string>>;

  // `tls` (may be null: sslmode disable) must outlive the Backend.
  Backend(event_base* base, const StoreAddress& address, const TlsClientContext* tls, BackendCallbacks& callbacks);
  ~Backend() override;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;

  // `startup` holds the client's startup parameters; user and database are replaced by the
  // store's configured ones when set.
  void connect(const Parameters& startup, int timeout_ms);

  const config::StoreConfig& store() const { return *address_.store; }
  const StoreAddress& address() const { return address_; }
  const Parameters& parameters() const { return parameters_; }
  const protocol::BackendKeyData& key() const { return key_; }
  const std::string& user() const { return user_; }
  bool ready() const { return state_ == State::Ready; }

  evbuffer* input() const { return connection_.input(); }
  evbuffer* output() const { return connection_.output(); }
  void flush() { connection_.flush(); }
  void enableRead(bool on) { connection_.setReading(on); }
  // Sends Terminate and closes the connection.
  void terminate();
  std::string describe() const;   // "old store 127.0.0.1:5432"

 private:
  enum class State { Connecting, NegotiatingTls, Authenticating, Starting, Ready, Closed };

  // ConnectionCallbacks
  void onConnected(Connection&) override;
  void onTlsReady(Connection&) override;
  void handleTlsAnswer();
  void sendStartup();
  void onReadable(Connection&) override;
  void onDrained(Connection&) override;
  void onClosed(Connection&, const std::string& reason) override;
  static void onTimeout(evutil_socket_t, short, void* arg);
  void handleLoginMessages();
  bool handleAuthentication(const protocol::Authentication& auth);
  protocol::ErrorResponse explainLoginError(protocol::ErrorResponse error) const;
  void failLogin(protocol::ErrorResponse error);
  void failLogin(const char* sqlstate, std::string message, std::string hint = {});

  StoreAddress address_;
  const TlsClientContext* tls_;
  std::string startup_message_;   // encoded; sent once the connection (and TLS) is up
  BackendCallbacks& callbacks_;
  Connection connection_;
  EventPtr timer_;
  State state_ = State::Connecting;
  Parameters startup_;
  std::string user_;
  Parameters parameters_;
  protocol::BackendKeyData key_{};
  std::unique_ptr<protocol::ScramClient> scram_;
  int timeout_ms_ = 0;
};

}  // namespace cutover::proxy
