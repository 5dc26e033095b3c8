#include "router/decide.h"

#include <algorithm>

namespace cutover::router {
namespace {

using config::WritesMode;

// Whether a writes mode wants the statement applied on `store` (as authoritative or mirror).
bool needs(WritesMode mode, Store store) {
  return store == Store::Old ? mode != WritesMode::New : mode != WritesMode::Old;
}

const config::TableFlags* tableFlags(const FlagView& flags, const std::string& table) {
  if (flags.tables == nullptr || flags.tables->empty()) return nullptr;
  if (auto found = flags.tables->find(table); found != flags.tables->end()) return &found->second;
  size_t dot = table.rfind('.');
  std::string fallback = dot == std::string::npos ? "public." + table : table.substr(dot + 1);
  if (auto found = flags.tables->find(fallback); found != flags.tables->end()) return &found->second;
  return nullptr;
}

WritesMode tableWrites(const FlagView& flags, const std::string& table) {
  const config::TableFlags* overrides = tableFlags(flags, table);
  return overrides != nullptr && overrides->writes ? *overrides->writes : flags.writes;
}

// The mode that picks the authoritative store: the tables' common mode, else the global one.
WritesMode agreedWrites(const StatementInfo& statement, const FlagView& flags) {
  if (statement.tables.empty()) return flags.writes;
  WritesMode first = tableWrites(flags, statement.tables.front());
  for (const std::string& table : statement.tables) {
    if (tableWrites(flags, table) != first) return flags.writes;
  }
  return first;
}

bool tablesNeed(const StatementInfo& statement, const FlagView& flags, Store store) {
  for (const std::string& table : statement.tables) {
    if (needs(tableWrites(flags, table), store)) return true;
  }
  return false;
}

bool anyOverrideNeeds(const FlagView& flags, Store store) {
  if (flags.tables == nullptr) return false;
  for (const auto& [name, overrides] : *flags.tables) {
    if (overrides.writes && needs(*overrides.writes, store)) return true;
  }
  return false;
}

int clampPercent(int percent) { return std::clamp(percent, 0, 100); }

// The smallest percent of the statement's tables: the table's override, or the global value.
int tablePercent(const StatementInfo& statement, const FlagView& flags, int global,
                 std::optional<int> config::TableFlags::*field) {
  int percent = clampPercent(global);
  if (statement.tables.empty()) return percent;
  int smallest = 100;
  for (const std::string& table : statement.tables) {
    const config::TableFlags* overrides = tableFlags(flags, table);
    int table_percent = overrides != nullptr && overrides->*field ? clampPercent(*(overrides->*field)) : percent;
    smallest = std::min(smallest, table_percent);
  }
  return smallest;
}

int readPercent(const StatementInfo& statement, const FlagView& flags) {
  return tablePercent(statement, flags, flags.reads_new_percent, &config::TableFlags::reads_new_percent);
}

// Shadow sampling: its own bucket (the key salted, so the sample does not coincide with the
// ramp's), stable per session and statement text.
bool shadowed(const StatementInfo& statement, std::string_view text, const FlagView& flags,
              const SessionView& session) {
  const int percent = tablePercent(statement, flags, flags.shadow_percent, &config::TableFlags::shadow_percent);
  if (percent <= 0) return false;
  const uint64_t key = stableHash(text) ^ (session.session_hash * 0x9e3779b97f4a7c15ull) ^ 0x5348414430574eull;
  return rampBucket(key) < percent * 100;
}

Route inTransaction(const StatementInfo& statement, const FlagView& flags, const SessionView& session) {
  Route route;
  route.serve = session.transaction_authority.value_or(authoritative(flags.writes));
  Store other = otherStore(route.serve);
  if (statement.kind == StatementKind::Session) {
    route.both = true;
    route.reason = "session state inside a transaction: every backend";
    return route;
  }
  if (statement.kind == StatementKind::Read && statement.catalog) {
    // The catalog, OIDs, pg_* and txid_* functions are each store's own facts: run on the other
    // store too, the answer differs by nature (its own OIDs, statistics, transaction ids), and
    // the read changes nothing there to keep in step.
    route.reason = "catalog read inside a transaction: transaction authority only (store-local facts)";
    return route;
  }
  route.mirror = needs(flags.writes, other) || tablesNeed(statement, flags, other) ||
                 (statement.kind == StatementKind::Transaction && anyOverrideNeeds(flags, other));
  switch (statement.kind) {
    case StatementKind::Read: route.reason = "read inside a transaction: transaction authority"; break;
    case StatementKind::Transaction: route.reason = "transaction control: transaction authority"; break;
    default: route.reason = "write inside a transaction: transaction authority"; break;
  }
  return route;
}

Route outsideWrite(const StatementInfo& statement, const FlagView& flags) {
  Route route;
  route.serve = authoritative(agreedWrites(statement, flags));
  Store other = otherStore(route.serve);
  if (statement.kind == StatementKind::Transaction) {
    route.mirror = needs(flags.writes, other) || anyOverrideNeeds(flags, other);
    route.reason = "transaction control: authoritative";
    return route;
  }
  route.mirror = statement.tables.empty() ? needs(flags.writes, other) : tablesNeed(statement, flags, other);
  if (statement.parse_error) {
    route.reason = "unparsable: authoritative answers with its error";
  } else if (statement.kind == StatementKind::Ddl) {
    route.reason = "ddl: authoritative";
  } else {
    route.reason = "write: authoritative";
  }
  return route;
}

Route outsideRead(const StatementInfo& statement, std::string_view text, const FlagView& flags,
                  const SessionView& session) {
  Route route;
  Store authority = authoritative(agreedWrites(statement, flags));
  if (statement.catalog) {
    route.serve = authority;
    route.reason = "catalog read: authoritative (store-local facts: never ramped or shadowed)";
    return route;
  }
  if (session.mirror_pending) {
    route.serve = authority;
    route.reason = "read with mirror work pending: authoritative (read-your-writes)";
    return route;
  }
  route.shadow = shadowed(statement, text, flags, session);
  if (agreedWrites(statement, flags) == WritesMode::New) {
    // Old is no longer mirrored: its data is stale, whatever reads_new_percent says.
    route.serve = Store::New;
    route.shadow = false;
    route.reason = "read: writes new, old is stale";
    return route;
  }
  uint64_t key = flags.sticky == config::Sticky::Session ? session.session_hash : stableHash(text);
  bool to_new = rampBucket(key) < readPercent(statement, flags) * 100;
  const bool missed_there = to_new ? session.missed_write_on_new : session.missed_write_on_old;
  if (missed_there && (to_new ? Store::New : Store::Old) != authority) {
    // The store may lack a write this session made (or hold one old refused): its rows can be
    // stale for this session, so it reads from the authoritative store, uncompared.
    route.serve = authority;
    route.shadow = false;
    route.reason = "read: the ramp's store missed a write of this session, authoritative";
    return route;
  }
  if (!to_new) {
    route.serve = Store::Old;
    route.reason = "read: ramp bucket served by old";
  } else if (session.new_store_available || authority == Store::New) {
    route.serve = Store::New;
    route.reason = "read: ramp bucket served by new";
  } else {
    route.serve = Store::Old;
    route.read_fallback = true;
    route.shadow = false;   // nothing to compare with
    route.reason = "read: new unavailable, fell back to old";
  }
  // A store that missed one of this session's writes is not compared with either.
  if (otherStore(route.serve) == Store::New ? session.missed_write_on_new : session.missed_write_on_old) {
    route.shadow = false;
  }
  return route;
}

}  // namespace

Store authoritative(WritesMode writes) {
  return writes == WritesMode::DualNew || writes == WritesMode::New ? Store::New : Store::Old;
}

bool mirrors(WritesMode writes) { return writes == WritesMode::Dual || writes == WritesMode::DualNew; }

Store otherStore(Store store) { return store == Store::Old ? Store::New : Store::Old; }

std::string_view toString(Store store) { return store == Store::Old ? "old" : "new"; }

uint64_t stableHash(std::string_view text) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char byte : text) {
    hash ^= byte;
    hash *= 1099511628211ull;
  }
  return hash;
}

int rampBucket(uint64_t hash) {
  hash ^= hash >> 33;
  hash *= 0xff51afd7ed558ccdull;
  hash ^= hash >> 33;
  hash *= 0xc4ceb9fe1a85ec53ull;
  hash ^= hash >> 33;
  return static_cast<int>(hash % 10000);
}

bool needsClassification(const FlagView& flags) {
  if (flags.writes != WritesMode::Old || flags.reads_new_percent > 0 || flags.shadow_percent > 0) return true;
  if (flags.tables == nullptr) return false;
  for (const auto& [name, overrides] : *flags.tables) {
    if (overrides.reads_new_percent.value_or(0) > 0 || overrides.shadow_percent.value_or(0) > 0 ||
        overrides.writes.value_or(WritesMode::Old) != WritesMode::Old) {
      return true;
    }
  }
  return false;
}

Route decide(const StatementInfo& statement, std::string_view statement_text, const FlagView& flags,
             const SessionView& session) {
  if (session.in_transaction) return inTransaction(statement, flags, session);
  switch (statement.kind) {
    case StatementKind::Read:
      return outsideRead(statement, statement_text, flags, session);
    case StatementKind::Session: {
      Route route;
      route.serve = authoritative(flags.writes);
      route.both = true;
      route.reason = "session state: every backend";
      return route;
    }
    default:
      return outsideWrite(statement, flags);
  }
}

}  // namespace cutover::router
