#include "proxy/backend.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "protocol/md5.h"
#include "proxy/message_io.h"
#include "proxy/socket_util.h"

namespace cutover::proxy {
namespace {

using protocol::Authentication;
using protocol::DecodeStatus;
using protocol::Direction;

// Login replies are small (authentication, ParameterStatus, BackendKeyData, errors); a store that
// sends more than this before ReadyForQuery is not speaking the protocol.
constexpr uint32_t kLoginMessageLimit = 1 << 20;

}  // namespace

Backend::Backend(event_base* base, const StoreAddress& address, const TlsClientContext* tls,
                 BackendCallbacks& callbacks)
    : address_(address), tls_(tls), callbacks_(callbacks), connection_(base, -1, *this) {
  timer_.reset(evtimer_new(base, &Backend::onTimeout, this));
}

Backend::~Backend() = default;

std::string Backend::describe() const {
  return store().name + " store " + store().host + ":" + std::to_string(store().port);
}

void Backend::connect(const Parameters& startup, int timeout_ms) {
  const auto& store = *address_.store;
  protocol::StartupMessage message;
  message.protocol_version = protocol::kProtocolVersion3;
  for (const auto& [name, value] : startup) {
    if (name == "user" && store.user) continue;
    if (name == "database" && store.database) continue;
    message.parameters.emplace_back(name, value);
  }
  if (store.user) message.parameters.emplace_back("user", *store.user);
  if (store.database) message.parameters.emplace_back("database", *store.database);
  user_ = message.get("user").value_or("");
  startup_ = startup;

  timeout_ms_ = timeout_ms;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  evtimer_add(timer_.get(), &tv);
  startup_message_ = protocol::encode(message);
  if (tls_ != nullptr) {
    append(output(), protocol::encode(protocol::SslRequest{}));   // sent once the connect completes
  } else {
    append(output(), startup_message_);
  }
  if (!connection_.connect(reinterpret_cast<const sockaddr*>(&address_.address), address_.address_length)) {
    failLogin("08001", fmt::format("cutover could not connect to the {}: {}", describe(), std::strerror(errno)),
              fmt::format("check that the {} store is running and that stores.{}.host/port are right", store.name,
                          store.name));
    return;
  }
}

void Backend::onTimeout(evutil_socket_t, short, void* arg) {
  auto* self = static_cast<Backend*>(arg);
  const char* phase = self->state_ == State::Connecting ? "connecting to" : "logging in to";
  self->failLogin("08006",
                  fmt::format("cutover timed out {} the {} (connect_timeout_ms = {})", phase, self->describe(),
                              self->timeout_ms_),
                  "check the store's health and load, or raise connect_timeout_ms");
}

void Backend::onConnected(Connection&) { state_ = tls_ != nullptr ? State::NegotiatingTls : State::Authenticating; }

void Backend::handleTlsAnswer() {
  evbuffer* in = input();
  unsigned char answer = 0;
  if (evbuffer_remove(in, &answer, 1) != 1) return;
  if (answer == 'S') {
    if (evbuffer_get_length(in) > 0) {
      // Bytes before the handshake were not protected by TLS (CVE-2021-23214 class).
      return failLogin("08P01", fmt::format("the {} sent unencrypted data after accepting TLS", describe()));
    }
    connection_.startTls(tls_->newSession(), /*server_side=*/false);
    return;
  }
  if (answer == 'N' && store().sslmode == config::SslMode::Prefer) {
    log::debug("the {} does not offer TLS; continuing in plaintext (sslmode prefer)", describe());
    return sendStartup();
  }
  if (answer == 'N') {
    return failLogin("08001",
                     fmt::format("the {} does not accept TLS, but stores.{}.sslmode is {}", describe(), store().name,
                                 config::toString(store().sslmode)),
                     fmt::format("enable ssl on the store, or lower stores.{}.sslmode", store().name));
  }
  failLogin("08P01", fmt::format("the {} answered the TLS request with '{}'", describe(), static_cast<char>(answer)));
}

void Backend::onTlsReady(Connection&) {
  log::debug("TLS to the {} established ({})", describe(), SSL_get_version(connection_.ssl()));
  sendStartup();
}

void Backend::sendStartup() {
  state_ = State::Authenticating;
  append(output(), startup_message_);
  startup_message_.clear();
  flush();
}

void Backend::onClosed(Connection&, const std::string& reason) {
  if (state_ == State::Ready) {
    state_ = State::Closed;
    callbacks_.onBackendClosed(*this, reason);
    return;
  }
  if (state_ == State::Closed) return;
  if (state_ == State::NegotiatingTls && reason.starts_with("TLS handshake failed")) {
    return failLogin("08001", fmt::format("cutover could not establish TLS with the {}: {}", describe(), reason),
                     fmt::format("check stores.{}.sslmode/sslrootcert against the store's certificate", store().name));
  }
  const bool connecting = state_ == State::Connecting;
  const std::string why = reason == "connection closed by peer" ? "connection closed by the store" : reason;
  failLogin(connecting ? "08001" : "08006",
            fmt::format("cutover could not {} the {}: {}", connecting ? "connect to" : "log in to", describe(), why),
            connecting ? fmt::format("check that the {} store is running and that stores.{}.host/port are right",
                                     store().name, store().name)
                       : std::string("see the store's log for the reason it closed the connection"));
}

void Backend::onReadable(Connection&) {
  if (state_ == State::Ready) {
    callbacks_.onBackendReadable(*this);
  } else if (state_ == State::NegotiatingTls) {
    handleTlsAnswer();
  } else if (state_ != State::Closed) {
    handleLoginMessages();
  }
}

void Backend::onDrained(Connection&) {
  if (state_ == State::Ready) callbacks_.onBackendDrained(*this);
}

void Backend::handleLoginMessages() {
  evbuffer* in = input();
  for (;;) {
    protocol::Frame frame = peekMessage(in, Direction::Backend, kLoginMessageLimit);
    if (frame.status == DecodeStatus::NeedMoreData) return;
    if (frame.status == DecodeStatus::Invalid) {
      return failLogin("08P01", fmt::format("the {} sent an invalid message during login: {}", describe(), frame.reason));
    }
    if (evbuffer_get_length(in) < frame.totalSize()) return;
    std::span<const uint8_t> body = pullBody(in, frame);
    bool keep_going = true;
    switch (frame.type) {
      case Authentication::kType: {
        auto auth = protocol::decode<Authentication>(body);
        if (!auth.isOk()) return failLogin("08P01", fmt::format("bad authentication message from the {}: {}", describe(), auth.reason()));
        keep_going = handleAuthentication(auth.value());
        break;
      }
      case protocol::ParameterStatus::kType: {
        auto ps = protocol::decode<protocol::ParameterStatus>(body);
        if (ps.isOk()) parameters_.emplace_back(ps.value().name, ps.value().value);
        break;
      }
      case protocol::BackendKeyData::kType: {
        auto key = protocol::decode<protocol::BackendKeyData>(body);
        if (key.isOk()) key_ = key.value();
        break;
      }
      case protocol::ErrorResponse::kType: {
        auto error = protocol::decode<protocol::ErrorResponse>(body);
        evbuffer_drain(in, frame.totalSize());
        if (!error.isOk()) return failLogin("08P01", fmt::format("the {} rejected the login", describe()));
        return failLogin(explainLoginError(std::move(error.value())));
      }
      case protocol::NoticeResponse::kType:
      case protocol::NegotiateProtocolVersion::kType:
        break;   // informational during login; nothing the client asked for
      case protocol::ReadyForQuery::kType:
        evbuffer_drain(in, frame.totalSize());
        evtimer_del(timer_.get());
        state_ = State::Ready;
        scram_.reset();
        callbacks_.onBackendReady(*this);
        // Bytes that followed ReadyForQuery (none in practice) belong to the relay.
        if (state_ == State::Ready && evbuffer_get_length(in) > 0) callbacks_.onBackendReadable(*this);
        return;
      default:
        return failLogin("08P01", fmt::format("the {} sent unexpected message '{}' during login", describe(), frame.type));
    }
    if (!keep_going) return;
    evbuffer_drain(in, frame.totalSize());
  }
}

bool Backend::handleAuthentication(const Authentication& auth) {
  const auto& password = store().password;
  auto needPassword = [&](const char* method) {
    if (password) return true;
    failLogin("28P01",
              fmt::format("the {} asks for {} authentication of user \"{}\" but stores.{} has no password",
                          describe(), method, user_, store().name),
              fmt::format("set stores.{}.password_env or stores.{}.password_file", store().name, store().name));
    return false;
  };
  switch (auth.kind) {
    case Authentication::Kind::Ok:
      state_ = State::Starting;
      return true;
    case Authentication::Kind::CleartextPassword:
      if (!needPassword("password")) return false;
      append(output(), protocol::encode(protocol::PasswordMessage{*password}));
      flush();
      return true;
    case Authentication::Kind::Md5Password:
      if (!needPassword("md5")) return false;
      append(output(), protocol::encode(protocol::PasswordMessage{protocol::md5PasswordResponse(user_, *password, auth.md5_salt)}));
      flush();
      return true;
    case Authentication::Kind::Sasl: {
      if (!needPassword("SCRAM-SHA-256")) return false;
      bool offered = false;
      for (const auto& m : auth.sasl_mechanisms) offered = offered || m == "SCRAM-SHA-256";
      if (!offered) {
        failLogin("28000", fmt::format("the {} offers no SASL mechanism cutover supports (it needs SCRAM-SHA-256)", describe()));
        return false;
      }
      scram_ = std::make_unique<protocol::ScramClient>(*password);
      append(output(), protocol::encode(protocol::SaslInitialResponse{"SCRAM-SHA-256", scram_->clientFirstMessage()}));
      flush();
      return true;
    }
    case Authentication::Kind::SaslContinue: {
      if (!scram_) break;
      auto final_message = scram_->handleServerFirst(auth.data);
      if (!final_message.isOk()) {
        failLogin("28000", fmt::format("SCRAM exchange with the {} failed: {}", describe(), final_message.status().message()));
        return false;
      }
      append(output(), protocol::encode(protocol::SaslResponse{final_message.value()}));
      flush();
      return true;
    }
    case Authentication::Kind::SaslFinal: {
      if (!scram_) break;
      Status verified = scram_->verifyServerFinal(auth.data);
      if (!verified.isOk()) {
        // The store could not prove it knows the password: it may not be the store we think.
        failLogin("28000", fmt::format("the {} failed SCRAM server verification: {}", describe(), verified.message()));
        return false;
      }
      return true;
    }
    default:
      break;
  }
  failLogin("28000", fmt::format("the {} asks for an authentication method cutover does not support (code {})",
                                 describe(), static_cast<int>(auth.kind)),
            fmt::format("allow trust, password, md5 or scram-sha-256 for cutover's user in the {} store's pg_hba.conf",
                        store().name));
  return false;
}

protocol::ErrorResponse Backend::explainLoginError(protocol::ErrorResponse error) const {
  const std::string_view sqlstate = error.field('C');
  const bool own_credentials = store().user.has_value() || store().password.has_value();
  if (own_credentials && sqlstate.starts_with("28")) {
    // The client cannot fix cutover's own credentials: say whose login failed and where.
    return protocol::ErrorResponse::make(
        "FATAL", sqlstate,
        fmt::format("the {} rejected cutover's login as \"{}\": {}", describe(), user_, error.field('M')), {},
        fmt::format("check stores.{}.user and stores.{}.password_env/password_file in cutover's config", store().name,
                    store().name));
  }
  // Anything else (unknown database, too many connections…) reaches the client as the store
  // raised it, so drivers see PostgreSQL's own SQLSTATE and text; the proxy log names the store.
  return error;
}

void Backend::failLogin(const char* sqlstate, std::string message, std::string hint) {
  failLogin(protocol::ErrorResponse::make("FATAL", sqlstate, message, {}, hint));
}

void Backend::failLogin(protocol::ErrorResponse error) {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  evtimer_del(timer_.get());
  connection_.close();
  callbacks_.onBackendLoginFailed(*this, std::move(error));
}

void Backend::terminate() {
  if (connection_.connected() && state_ == State::Ready) {
    // Written now: the session that owns us is about to be destroyed. The store then ends the
    // backend cleanly instead of logging an unexpected EOF.
    append(output(), protocol::encode(protocol::Terminate{}));
    connection_.flush();
  }
  state_ = State::Closed;
  evtimer_del(timer_.get());
  connection_.close();
}

}  // namespace cutover::proxy
