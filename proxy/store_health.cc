#include "proxy/store_health.h"

#include <libpq-fe.h>

#include <string>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "pgclient/conninfo.h"

namespace cutover::proxy {

StoreHealth::StoreHealth(const config::Config& config) : config_(config), thread_([this] { run(); }) {}

StoreHealth::~StoreHealth() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

bool StoreHealth::ping(const config::StoreConfig& store) {
  // The store's configured user and database; without them "postgres", not libpq's default (the
  // proxy's OS user, e.g. root), which would make the store log a FATAL unknown role every second.
  // Any answer, even a refusal, counts as up.
  pgclient::ConnectParams params = pgclient::paramsFor(store, "cutover-health");
  if (!store.user) params.set("user", "postgres");
  params.set("connect_timeout", "2");
  const std::vector<const char*> keywords = params.keywords();
  const std::vector<const char*> values = params.values();
  const PGPing result = PQpingParams(keywords.data(), values.data(), 0);
  return result == PQPING_OK || result == PQPING_REJECT;
}

void StoreHealth::run() {
  auto& registry = metrics::global();
  for (;;) {
    const bool old_up = ping(config_.old_store);
    if (old_up != old_up_.exchange(old_up)) {
      log::warn("health: the old store {}:{} is {}", config_.old_store.host, config_.old_store.port,
                old_up ? "up again" : "not answering");
    }
    registry.storeUp(metrics::StoreLabel::Old).Set(old_up ? 1 : 0);
    if (config_.new_store) {
      const bool new_up = ping(*config_.new_store);
      if (new_up != new_up_.exchange(new_up)) {
        log::warn("health: the new store {}:{} is {}", config_.new_store->host, config_.new_store->port,
                  new_up ? "up again" : "not answering");
      }
      registry.storeUp(metrics::StoreLabel::New).Set(new_up ? 1 : 0);
    }
    std::unique_lock lock(mutex_);
    if (wake_.wait_for(lock, std::chrono::seconds(1), [this] { return stopping_; })) return;
  }
}

}  // namespace cutover::proxy
