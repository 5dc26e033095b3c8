#include "migrate/store_pair.h"

#include <fmt/format.h>

namespace cutover::migrate {
namespace {

pgclient::ConnectParams paramsOf(const config::StoreConfig& store, const config::Config& config,
                                 const std::string& application_name) {
  pgclient::ConnectParams params = pgclient::paramsFor(
      store, application_name, store.database.value_or(config.verify.database));
  if (params.get("user").empty()) params.set("user", "postgres");
  for (const auto& [name, value] : sessionSettings()) params.setting(name, value);
  return params;
}

Status failed(const char* store, const pgclient::Connection& conn, const pgclient::Reply& reply) {
  return Status::error(fmt::format("the {} store {}: {}", store, conn.where(), reply.error));
}

}  // namespace

Result<StorePair> StorePair::connect(const config::Config& config,
                                     const std::string& application_name) {
  if (!config.new_store) return Status::error("stores.new is not configured: nothing to verify against");
  const auto deadline = pgclient::deadlineIn(config.connect_timeout_ms);
  auto o = pgclient::Connection::connect(paramsOf(config.old_store, config, application_name), deadline);
  if (!o) return Status::error(fmt::format("the old store: {}", o.status().message()));
  auto n = pgclient::Connection::connect(paramsOf(*config.new_store, config, application_name), deadline);
  if (!n) return Status::error(fmt::format("the new store: {}", n.status().message()));
  return StorePair(std::move(o.value()), std::move(n.value()));
}

Result<PairReply> StorePair::both(const Sql& old_sql, const Sql& new_sql) {
  if (Status s = old_.send(old_sql.text, old_sql.params); !s) {
    return Status::error(fmt::format("the old store {}: {}", old_.where(), s.message()));
  }
  if (Status s = new_.send(new_sql.text, new_sql.params); !s) {
    old_.finish(pgclient::deadlineIn(kStatementDeadlineMs));
    return Status::error(fmt::format("the new store {}: {}", new_.where(), s.message()));
  }
  const auto deadline = pgclient::deadlineIn(kStatementDeadlineMs);
  PairReply reply{old_.finish(deadline), new_.finish(deadline)};
  if (!reply.old_reply.ok()) return failed("old", old_, reply.old_reply);
  if (!reply.new_reply.ok()) return failed("new", new_, reply.new_reply);
  return reply;
}

Result<pgclient::Reply> StorePair::one(bool on_old, const Sql& sql) {
  pgclient::Connection& conn = on_old ? old_ : new_;
  if (Status s = conn.send(sql.text, sql.params); !s) {
    return Status::error(fmt::format("the {} store {}: {}", on_old ? "old" : "new", conn.where(),
                                     s.message()));
  }
  pgclient::Reply reply = conn.finish(pgclient::deadlineIn(kStatementDeadlineMs));
  if (!reply.ok()) return failed(on_old ? "old" : "new", conn, reply);
  return reply;
}

}  // namespace cutover::migrate
