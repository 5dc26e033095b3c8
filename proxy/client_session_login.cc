// ClientSession's login: the startup packet (TLS, cancel requests, replication connections),
// the client's authentication to cutover, and cutover's login to the store(s).
#include "proxy/client_session.h"
#include <openssl/rand.h>
#include <algorithm>
#include <cctype>
#include <optional>
#include "common/log.h"
#include "common/metrics.h"
#include "protocol/md5.h"
#include "proxy/cancel_forwarder.h"
#include "proxy/frame_scanner.h"
#include "proxy/message_io.h"
#include "proxy/routed_support.h"
#include "proxy/socket_util.h"
#include "proxy/worker.h"

namespace cutover::proxy {
namespace {

using protocol::DecodeStatus;
using protocol::Direction;

// PostgreSQL's parse_bool(): a case-insensitive prefix of true/false/yes/no (at least "on"/"of"
// for on/off), or 1/0. Empty when `text` is none of them.
std::optional<bool> parseReplicationBool(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  auto prefixOf = [&lower](std::string_view word, size_t min) {
    return lower.size() >= min && lower.size() <= word.size() && word.starts_with(lower);
  };
  if (prefixOf("true", 1) || prefixOf("yes", 1) || prefixOf("on", 2) || lower == "1") return true;
  if (prefixOf("false", 1) || prefixOf("no", 1) || prefixOf("off", 2) || lower == "0") return false;
  return std::nullopt;
}

}  // namespace

// --- startup -------------------------------------------------------------------------------

void ClientSession::handleStartupPackets() {
  evbuffer* in = clientInput();
  while (state_ == State::Startup) {
    protocol::Frame frame = peekStartup(in, protocol::kStartupPacketLimit);
    if (frame.status == DecodeStatus::NeedMoreData) return;
    if (frame.status == DecodeStatus::Invalid) {
      log::info("session {}: invalid startup packet: {}", id_, frame.reason);
      return fatal("08P01", "invalid startup packet: " + frame.reason);
    }
    if (evbuffer_get_length(in) < frame.totalSize()) return;
    std::span<const uint8_t> body = pullBody(in, frame);
    const uint32_t code = (uint32_t{body[0]} << 24) | (uint32_t{body[1]} << 16) | (uint32_t{body[2]} << 8) | body[3];
    if (code == protocol::kSslRequestCode || code == protocol::kGssEncRequestCode) {
      evbuffer_drain(in, frame.totalSize());
      if (client_->tls()) return fatal("08P01", "encryption negotiation requested twice");
      if (code == protocol::kSslRequestCode) return handleSslRequest();
      // GSS encryption is not offered: 'N' means "go on in plaintext" (protocol docs 53.2.11).
      evbuffer_add(clientOutput(), "N", 1);
      client_->flush();
      continue;
    }
    if (code == protocol::kCancelRequestCode) {
      auto cancel = protocol::decode<protocol::CancelRequest>(body);
      evbuffer_drain(in, frame.totalSize());
      if (cancel.isOk()) handleCancelRequest(cancel.value());
      return finish();   // PostgreSQL answers a cancel connection with nothing and closes it
    }
    auto startup = protocol::decode<protocol::StartupMessage>(body);
    evbuffer_drain(in, frame.totalSize());
    if (!startup.isOk()) return fatal("08P01", "invalid startup packet: " + startup.reason());
    return handleStartupMessage(startup.value());
  }
}

void ClientSession::handleStartupMessage(const protocol::StartupMessage& startup) {
  const auto& ctx = worker_.context();
  const uint32_t major = startup.protocol_version >> 16;
  const uint32_t minor = startup.protocol_version & 0xffff;
  if (major != 3) {
    return fatal("0A000", fmt::format("unsupported frontend protocol {}.{}: cutover supports 3.0", major, minor));
  }
  Backend::Parameters backend_params;
  std::vector<std::string> unrecognized;
  for (const auto& [name, value] : startup.parameters) {
    if (name.starts_with("_pq_.")) {
      unrecognized.push_back(name);   // protocol options: none are supported in 3.0
    } else {
      backend_params.emplace_back(name, value);
    }
  }
  if (minor > 0 || !unrecognized.empty()) {
    protocol::NegotiateProtocolVersion negotiate;
    negotiate.newest_minor_version = 0;
    negotiate.unrecognized_options = unrecognized;
    append(clientOutput(), protocol::encode(negotiate));
  }
  user_ = startup.get("user").value_or("");
  database_ = startup.get("database").value_or(user_);
  if (user_.empty()) return fatal("28000", "no PostgreSQL user name specified in startup packet");
  if (auto replication = startup.get("replication")) {
    // PostgreSQL's values (ProcessStartupPacket): "database" is a logical walsender, a true
    // boolean a physical one, a false boolean a normal backend.
    std::optional<bool> physical = parseReplicationBool(*replication);
    if (*replication != "database" && !physical) {
      return fatal(protocol::ErrorResponse::make(
          "FATAL", "22023", fmt::format("invalid value for parameter \"replication\": \"{}\"", *replication), {},
          "Valid values are: \"false\", \"0\", \"true\", \"1\", \"database\"."));
    }
    replication_ = *replication == "database" || *physical;
    if (replication_ && !ctx.config().allow_replication_connections) {
      // 0A000: cutover does not offer the feature, whatever the role's privileges (42501 would
      // tell the user to get a privilege that would not help).
      log::warn("session {}: refused user \"{}\": replication={} connection (allow_replication_connections is off)",
                id_, user_, *replication);
      return fatal(protocol::ErrorResponse::make(
          "FATAL", "0A000",
          fmt::format("cutover does not accept replication connections (replication={})", *replication),
          "replication commands (CREATE_REPLICATION_SLOT, START_REPLICATION, BASE_BACKUP) through the proxy "
          "would run on both stores of the migration",
          "connect the replication client to the store directly, or set allow_replication_connections: true to "
          "pass replication connections through to the authoritative store only"));
    }
  }
  if (worker_.draining()) {
    return fatal("57P03", "cutover is shutting down and accepts no new connections",
                 "reconnect to another cutover instance or retry shortly");
  }
  if (ctx.config().tls.mode == config::TlsMode::Require && !client_->tls()) {
    log::info("session {}: refused user \"{}\": plaintext connection but tls.mode is require", id_, user_);
    return fatal("28000", "cutover accepts only TLS-encrypted connections (tls.mode: require)",
                 "connect with sslmode=require (or verify-ca/verify-full)");
  }
  // Taking the slot and checking the limit is one atomic step, so a burst of startups admits
  // exactly up to the limit; a refused connection gives its increment back at once.
  const int limit = ctx.config().max_client_connections;
  if (ctx.admitted_connections->fetch_add(1, std::memory_order_relaxed) >= limit) {
    ctx.admitted_connections->fetch_sub(1, std::memory_order_relaxed);
    log::warn("session {}: refused user \"{}\": {} client connections is the limit (max_client_connections)", id_,
              user_, limit);
    return fatal(protocol::ErrorResponse::make(
        "FATAL", "53300", "sorry, too many clients already",
        fmt::format("cutover allows {} client connections (max_client_connections)", limit),
        "raise max_client_connections, or use fewer connections in the application's pool"));
  }
  admitted_ = true;
  if (!ctx.user_connections->tryAcquire(user_, ctx.config().max_connections_per_user)) {
    releaseSlot();
    return fatal("53300", fmt::format("too many connections for role \"{}\"", user_),
                 fmt::format("cutover allows {} connections per user (max_connections_per_user)",
                             ctx.config().max_connections_per_user));
  }
  user_counted_ = true;
  startup_parameters_ = std::move(backend_params);
  beginClientAuth();
}

void ClientSession::handleSslRequest() {
  auto tls = worker_.context().tlsServer();
  if (!tls || worker_.context().config().tls.mode == config::TlsMode::Disable) {
    evbuffer_add(clientOutput(), "N", 1);   // plaintext only, as a server without SSL answers
    client_->flush();
    return handleStartupPackets();
  }
  if (evbuffer_get_length(clientInput()) > 0) {
    // Bytes sent after SSLRequest but before the handshake were not protected by TLS and must
    // not be taken as if they were (CVE-2021-23222 class): a protocol violation.
    log::info("session {}: received unencrypted data after SSLRequest; closing", id_);
    return finish();
  }
  evbuffer_add(clientOutput(), "S", 1);
  client_->flush();
  client_->startTls(tls->newSession(), /*server_side=*/true);
  tls_server_ = std::move(tls);
}

void ClientSession::onTlsReady(Connection&) {
  log::debug("session {}: TLS established ({})", id_, SSL_get_version(client_->ssl()));
  if (evbuffer_get_length(clientInput()) > 0) handleStartupPackets();
}

// --- client authentication -----------------------------------------------------------------

void ClientSession::beginClientAuth() {
  const auto& ctx = worker_.context();
  if (ctx.config().auth.method == config::AuthMethod::Trust) return connectBackend();
  state_ = State::Authenticating;
  auto users = ctx.users();
  const config::UserCredential* credential = users ? users->find(user_) : nullptr;
  if (credential != nullptr || ctx.auth_query == nullptr) return challenge(credential);
  // Not in the users file: ask the old store (auth.query). The answer comes back on this worker;
  // the session may be gone by then, hence the liveness check.
  awaiting_lookup_ = true;
  Worker* worker = &worker_;
  ClientSession* self = this;
  const uint64_t id = id_;
  ctx.auth_query->lookup(user_, [worker, self, id](AuthQuery::Answer answer) {
    worker->post([worker, self, id, answer] {
      if (worker->sessionAlive(self, id)) self->onAuthLookup(answer);
    });
  });
}

void ClientSession::onAuthLookup(const AuthQuery::Answer& answer) {
  if (state_ != State::Authenticating || !awaiting_lookup_) return;
  awaiting_lookup_ = false;
  if (!answer.isOk()) {
    log::warn("session {}: {}", id_, answer.status().message());
    return fatal("08006", fmt::format("cutover could not look up user \"{}\" in the old store", user_),
                 "the old store or auth.query failed; see cutover's log");
  }
  if (answer.value()) {
    auto credential = config::credentialFromSecret(*answer.value());
    if (credential.isOk()) {
      looked_up_ = std::move(credential.value());
      return challenge(&*looked_up_);
    }
    log::warn("session {}: auth.query returned an unusable secret for user \"{}\": {}", id_, user_,
              credential.status().message());
  }
  challenge(nullptr);   // unknown user: the same exchange, failing at the end
}

void ClientSession::challenge(const config::UserCredential* credential) {
  const auto& ctx = worker_.context();
  const config::AuthMethod method = ctx.config().auth.method;
  const std::string cbind = client_->tls() && tls_server_ ? tls_server_->endPointHash() : std::string();
  using Kind = config::UserCredential::Kind;
  // As in PostgreSQL, md5 authentication of a user whose secret is a SCRAM verifier runs SCRAM.
  const bool md5 = method == config::AuthMethod::Md5 && !(credential && credential->kind == Kind::Scram);
  if (md5) {
    if (credential) {
      md5_stored_ = credential->kind == Kind::Md5 ? credential->secret
                                                   : "md5" + protocol::md5Hex(credential->secret + user_);
    }
    RAND_bytes(md5_salt_.data(), static_cast<int>(md5_salt_.size()));
    auth_step_ = AuthStep::Md5Password;
    append(clientOutput(), protocol::encode(protocol::Authentication::md5Password(md5_salt_)));
  } else {
    if (credential && credential->scram) {
      scram_ = std::make_unique<protocol::ScramServer>(*credential->scram, cbind);
    } else {
      // Unknown user, or only an md5 hash on file: a mock exchange that fails at the proof, so
      // the answer does not tell which users exist.
      scram_ = std::make_unique<protocol::ScramServer>(protocol::ScramServer::mock(user_, ctx.mock_auth_secret, cbind));
    }
    auth_step_ = AuthStep::SaslInitial;
    append(clientOutput(), protocol::encode(protocol::Authentication::sasl(scram_->mechanisms())));
  }
  client_->flush();
  if (evbuffer_get_length(clientInput()) > 0) handleAuthMessages();
}

void ClientSession::handleAuthMessages() {
  evbuffer* in = clientInput();
  while (state_ == State::Authenticating && !awaiting_lookup_) {
    // Authentication messages are small; PostgreSQL caps them similarly (PG_MAX_AUTH_TOKEN_LENGTH).
    protocol::Frame frame = peekMessage(in, Direction::Frontend, 65535);
    if (frame.status == DecodeStatus::NeedMoreData) return;
    if (frame.status == DecodeStatus::Invalid) return fatal("08P01", "invalid authentication message: " + frame.reason);
    if (evbuffer_get_length(in) < frame.totalSize()) return;
    if (frame.type != protocol::PasswordMessage::kType) {
      if (frame.type == protocol::Terminate::kType) return finish();
      return fatal("08P01", fmt::format("expected password response, got message type {}", protocol::describeType(frame.type)));
    }
    std::span<const uint8_t> body = pullBody(in, frame);
    std::string why;
    switch (auth_step_) {
      case AuthStep::Md5Password: {
        auto password = protocol::decode<protocol::PasswordMessage>(body);
        if (!password.isOk()) {
          why = "malformed password message";
        } else if (md5_stored_.empty()) {
          why = "no such user in auth.users_file";
        } else if (!protocol::verifyMd5Response(md5_stored_, password.value().password, md5_salt_)) {
          why = "md5 response does not match";
        }
        evbuffer_drain(in, frame.totalSize());
        if (!why.empty()) return authenticationFailed(why);
        return connectBackend();
      }
      case AuthStep::SaslInitial: {
        auto initial = protocol::decode<protocol::SaslInitialResponse>(body);
        evbuffer_drain(in, frame.totalSize());
        if (!initial.isOk() || !initial.value().data) return authenticationFailed("malformed SASLInitialResponse");
        auto server_first = scram_->handleClientFirst(initial.value().mechanism, *initial.value().data);
        if (!server_first.isOk()) return authenticationFailed(server_first.status().message());
        auth_step_ = AuthStep::SaslFinal;
        append(clientOutput(), protocol::encode(protocol::Authentication::saslContinue(server_first.value())));
        client_->flush();
        break;
      }
      case AuthStep::SaslFinal: {
        auto response = protocol::decode<protocol::SaslResponse>(body);
        evbuffer_drain(in, frame.totalSize());
        if (!response.isOk()) return authenticationFailed("malformed SASLResponse");
        auto server_final = scram_->handleClientFinal(response.value().data);
        if (!server_final.isOk() || !scram_->succeeded()) {
          return authenticationFailed(server_final.isOk() ? "unknown user" : server_final.status().message());
        }
        scram_.reset();
        append(clientOutput(), protocol::encode(protocol::Authentication::saslFinal(server_final.value())));
        client_->flush();
        return connectBackend();
      }
    }
  }
}

void ClientSession::authenticationFailed(const std::string& why) {
  // The log says why; the client learns nothing beyond PostgreSQL's own words.
  log::info("session {}: authentication of user \"{}\" failed: {}", id_, user_, why);
  scram_.reset();
  fatal("28P01", fmt::format("password authentication failed for user \"{}\"", user_));
}

void ClientSession::connectBackend() {
  const auto& ctx = worker_.context();
  state_ = State::LoggingIn;
  client_->setReading(false);
  // The worker's flags now; refreshFlags() takes newer ones at each boundary outside a transaction.
  flags_ = worker_.flags();
  authority_ = router::authoritative(flags_->writes);
  routed_ = !replication_ && needsRouting(*flags_) && ctx.new_store.store != nullptr;
  // Kept for the session's life: a later flag flip or a reconnect opens store connections with it.
  replay_.setStartup(startup_parameters_);
  if (routed_) {
    startRoutedBackends();
  } else {
    // Pass-through to the authoritative store: nothing is parsed.
    const bool to_new = authority_ == router::Store::New && ctx.new_store.store != nullptr;
    backend_ = std::make_unique<Backend>(worker_.base(), to_new ? ctx.new_store : ctx.old_store,
                                         to_new ? ctx.new_store_tls.get() : ctx.old_store_tls.get(), *this);
    backend_->connect(startup_parameters_, ctx.config().connect_timeout_ms);
  }
  startup_parameters_ = {};
}

void ClientSession::handleCancelRequest(const protocol::CancelRequest& cancel) {
  auto targets = worker_.context().cancel_registry->lookup(cancel.process_id, cancel.secret_key);
  if (targets.empty()) {
    // Unknown or wrong key: ignored, as PostgreSQL does, and nothing reaches a store.
    log::debug("session {}: cancel request for an unknown key ignored", id_);
    return;
  }
  // Every store the session holds a connection to: its work there (the mirror of a write,
  // a shadow) stops too.
  for (const CancelTarget& target : targets) {
    CancelForwarder::send(worker_.base(), target, worker_.context().config().connect_timeout_ms);
  }
}

void ClientSession::onBackendReady(Backend& backend) {
  if (routed_) {
    const router::Store store = storeOf(backend);
    lane(store).up = true;
    lane(store).connecting = false;
    metrics::global().storeUp(store == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).Set(1);
    metrics::global()
        .backendConnections(store == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New)
        .Increment();
    if (state_ == State::Relaying) {
      // A reconnect, or a connection a flag flip needed: bring it in step, then go on.
      bindCancel(backend);
      reconnecting_ = false;
      reconnect_backoff_ms_ = 500;
      replayOnto(store);
      if (reconnectEnded(nullptr)) return;
      if (switching_ && !unit_ && settleFlags()) routedClientInput();
      return;
    }
    if (state_ != State::LoggingIn) return;
    Lane& authority = lane(authority_);
    Lane& other = lane(router::otherStore(authority_));
    // Wait until the authoritative store is in and the other one is in or out.
    if (!authority.up || (!other.up && other.backend)) return;
    return completeLogin(*authority.backend);
  }
  completeLogin(backend);
}

void ClientSession::completeLogin(Backend& backend) {
  const auto& ctx = worker_.context();
  key_ = ctx.cancel_registry->mint();
  key_minted_ = true;
  if (routed_) {
    for (auto& l : lanes_) {
      if (l.up) bindCancel(*l.backend);
    }
  } else {
    bindCancel(backend);
  }

  evbuffer* out = clientOutput();
  protocol::Authentication ok;
  ok.kind = protocol::Authentication::Kind::Ok;
  append(out, protocol::encode(ok));
  for (const auto& [name, value] : backend.parameters()) {
    append(out, protocol::encode(protocol::ParameterStatus{name, value}));
  }
  append(out, protocol::encode(protocol::BackendKeyData{key_.process_id, key_.secret_key}));
  append(out, protocol::encode(protocol::ReadyForQuery{'I'}));
  client_->flush();

  evtimer_del(timer_.get());
  state_ = State::Relaying;
  if (!routed_) {
    metrics::global().backendConnections(metrics::StoreLabel::Old).Increment();
    backend_counted_ = true;
  }
  log::debug("session {}: user \"{}\" database \"{}\" connected through the {}", id_, user_, database_,
             backend.describe());
  client_->setReading(true);
  if (draining_) return closeIfDrainedAndIdle();
  if (evbuffer_get_length(clientInput()) > 0) onReadable(*client_);
}

CancelTarget ClientSession::cancelTargetOf(const Backend& backend) {
  CancelTarget target;
  target.address = backend.address().address;
  target.address_length = backend.address().address_length;
  target.backend_process_id = backend.key().process_id;
  target.backend_secret_key = backend.key().secret_key;
  return target;
}

void ClientSession::bindCancel(const Backend& backend) {
  if (!key_minted_) return;
  const CancelTarget target = cancelTargetOf(backend);
  const bool is_new = routed_ ? storeOf(backend) == router::Store::New
                              : backend.address().store != nullptr && backend.address().store->name == "new";
  worker_.context().cancel_registry->bind(key_.process_id, is_new ? 1 : 0, target);
}

void ClientSession::onBackendLoginFailed(Backend& backend, protocol::ErrorResponse error) {
  log::warn("session {}: login of user \"{}\" to the {} failed: {} ({})", id_, user_, backend.describe(),
            error.field('M'), error.field('C'));
  if (routed_) {
    const router::Store store = storeOf(backend);
    metrics::global().storeUp(store == router::Store::Old ? metrics::StoreLabel::Old : metrics::StoreLabel::New).Set(0);
    if (store != authority_) {
      // The secondary never fails a client: the session runs on the authoritative store alone
      // and its writes are journaled as misses.
      lane(store).up = false;
      lane(store).connecting = false;
      lane(store).error = std::string(error.field('M'));
      reconnecting_ = false;
      if (state_ == State::Relaying) {
        // A reconnect attempt failed (retried with backoff), or a connection a flag flip needed.
        const std::string why = fmt::format("reconnecting failed: {}", error.field('M'));
        if (reconnectEnded(&why)) return;
        if (switching_ && !unit_ && settleFlags()) routedClientInput();
        return;
      }
      lane(store).backend.reset();
      Lane& authority = lane(authority_);
      if (state_ == State::LoggingIn && authority.up) completeLogin(*authority.backend);
      return;
    }
  }
  fatal(error);
}

}  // namespace cutover::proxy
