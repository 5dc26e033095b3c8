#pragma once

// The routing decision: a pure function of (statement, flag snapshot, session state).
// No I/O, no clock, no randomness: the same inputs always give the same Route.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "router/statement_info.h"

namespace cutover::router {

enum class Store { Old, New };

// What decide() needs of the flag snapshot (the proxy fills it from its snapshot).
struct FlagView {
  config::WritesMode writes = config::WritesMode::Old;
  config::MirrorMode mirror = config::MirrorMode::Sync;
  int reads_new_percent = 0;   // clamped to 0..100
  int shadow_percent = 0;
  config::Sticky sticky = config::Sticky::Session;
  // Per-table overrides, keyed as in the config: "orders" or "schema.orders". A statement's
  // "s.t" matches key "s.t", then "t"; an unqualified "t" matches "t", then "public.t".
  const std::map<std::string, config::TableFlags>* tables = nullptr;
};

struct SessionView {
  bool in_transaction = false;                 // ReadyForQuery 'T' or 'E' from the authoritative store
  std::optional<Store> transaction_authority;  // fixed at BEGIN: the txn's statements go there (+ mirror)
  bool mirror_pending = false;                 // async mirror work queued: reads go to the authoritative
  bool new_store_available = true;             // false when new is down: ramp reads fall back to old
  uint64_t session_hash = 0;                   // stable hash of the session id (sticky: session)
  // The store missed one of this session's writes (journaled): reads are not served by it.
  bool missed_write_on_old = false;
  bool missed_write_on_new = false;
};

struct Route {
  Store serve = Store::Old;    // whose answer the client gets
  bool mirror = false;         // also run on the other store
  bool both = false;           // session state: run on every held backend, client gets serve's answer
  bool read_fallback = false;  // a read meant for new went to old because new is unavailable
  bool shadow = false;         // a read outside a transaction also run on the other store and compared
  const char* reason = "";     // static string for logs/metrics
};

Store authoritative(config::WritesMode writes);  // Old for old/dual, New for dual-new/new
bool mirrors(config::WritesMode writes);         // dual, dual-new
Store otherStore(Store store);
std::string_view toString(Store store);          // "old" / "new"

// FNV-1a 64 over the bytes (offset basis 14695981039346656037, prime 1099511628211): the same
// value on every run, build and platform. Use it for session ids and statement texts.
uint64_t stableHash(std::string_view text);
// 0..9999 (basis points): the hash's bits mixed by MurmurHash3's 64-bit finaliser, then modulo
// 10000, so raw counters spread as well as hashes. Served by new when bucket < percent * 100.
int rampBucket(uint64_t hash);

// False in pure pass-through (writes: old, no read ramp, no shadow, no per-table override
// asking for any): the proxy then need not classify at all.
bool needsClassification(const FlagView& flags);

// Rules (DESIGN.md "Guarantees"):
// - Write / Ddl / Transaction: serve the authoritative store; mirror when the mode mirrors.
//   Outside a transaction, per-table `writes` overrides are honoured when every table of the
//   statement has the same effective mode (override, or the global mode); otherwise the global
//   mode serves and the statement is also mirrored if any of its tables' modes needs the other
//   store (a write is never silently kept from a store that a table's mode says must have it).
// - Inside a transaction everything is served by transaction_authority (default: the global
//   authoritative). Reads are mirrored too when the transaction is: a statement that fails on
//   the authoritative aborts its transaction, so the secondary must run (and fail) it as well,
//   or a later COMMIT would commit on the secondary what rolled back on the authoritative; it
//   also keeps both transactions' snapshots taken at the same statement. Transaction commands
//   are mirrored when the global mode or any per-table override needs the other store, so the
//   secondary transaction exists whenever a statement in it may be mirrored.
// - Session: both = true, serve the authoritative (mirror is false: both supersedes it).
// - Read outside a transaction: mirror_pending → the authoritative store (read-your-writes);
//   writes: new (for the statement's tables) → new, never shadowed (old is stale, unmirrored);
//   else ramp by rampBucket(session_hash) (sticky: session) or rampBucket(stableHash(text))
//   (sticky: statement) against the smallest reads_new_percent of its tables (global value for
//   tables without an override). A read meant for new goes to old with read_fallback when new is
//   unavailable, unless new is authoritative (then it goes to new: the proxy answers with an
//   error, never with the other store's data). Such a read is also shadowed (run on the other
//   store and compared) when its own bucket — the session hash and text, salted — falls under
//   the smallest shadow_percent of its tables; never while read-your-writes holds it, and never
//   when it fell back for want of the new store.
// - parse_error statements are Writes: authoritative, mirrored so both transactions fail alike.
Route decide(const StatementInfo& statement, std::string_view statement_text, const FlagView& flags,
             const SessionView& session);

}  // namespace cutover::router
