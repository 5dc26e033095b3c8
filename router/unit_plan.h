#pragma once

// How the proxy runs one unit of client work (a simple Query, a FunctionCall, or an extended
// batch up to its Sync) once decide() has routed its statement: the facts of the session's
// connections that decide() does not see, folded in by one pure function. No I/O, no clock.

#include "config/config.h"
#include "router/decide.h"
#include "router/statement_info.h"

namespace cutover::router {

// One store connection of the session, as the unit finds it.
struct LaneState {
  bool up = false;            // logged in and in step with the session
  bool fenced = false;        // a given-up ramped read is still being cancelled there
  bool reconnecting = false;  // a lost connection is being opened again (login, then replay)
};

struct UnitFacts {
  Route route;                          // decide()'s answer for the unit's statement
  const StatementInfo* info = nullptr;  // the unit's most write-like statement
  bool all_wrappable = false;           // every statement of the unit is StatementInfo::wrappable
  Store authority = Store::Old;
  config::MirrorMode mirror = config::MirrorMode::Sync;
  LaneState old_lane, new_lane;
  bool in_transaction = false;          // the session's status before the unit: 'T' or 'E'
  bool names_statement = false;         // it creates or closes a named statement (Parse/Close)
  bool open = false;                    // an extended batch flushed before its Sync: more may come
  bool function_call = false;           // a FunctionCall message
  // In a transaction that ran some mirrored work without the secondary (it was down, or still
  // logging back in under async): the rest of it is not mirrored either.
  bool transaction_unmirrored = false;
};

struct UnitPlan {
  Store serve = Store::Old;     // whose answer the client gets
  bool both = false;            // Route::both, or a named statement made or dropped
  bool mirrored = false;        // the secondary runs it too (and its outcome is compared)
  // It should have been mirrored but the secondary is down and not being reconnected: the miss
  // is journaled (secondary_unavailable) when the route mirrors a write, and it runs unmirrored.
  bool secondary_unavailable = false;
  bool async = false;           // mirror: async: the secondary gets it later, from the queue
  // Explicit COMMIT under sync: the secondary commits before the serve store, so what the
  // authoritative store committed is never missing on the secondary for a client that saw it.
  bool secondary_first = false;
  // Autocommit write under sync or async: run inside BEGIN … COMMIT on the serve store so its
  // row locks are held until the secondary applied it (conflicting writes reach the secondary in
  // the authoritative store's order).
  bool wrapped = false;
  bool shadow = false;          // a read outside a transaction, also run on the other store
  // It creates temporary objects that the other store's connection will not have.
  bool temporary_on_serve_only = false;
};

// The rules, in order:
// - A unit that makes or drops a named statement runs on every store (a read too); the
//   authoritative store answers it, so a slow other store holds the client only as long as
//   mirrored work may (mirror_timeout_ms).
// - A store that is down, or fenced while not authoritative, does not serve: the authoritative
//   store does (a ramped read already fell back in decide(); this is a lost secondary).
// - Mirrored work whose secondary is down waits for it only under sync while it is being
//   reconnected; otherwise the unit runs unmirrored (secondary_unavailable).
// - A transaction is mirrored whole or not at all: once part of it ran without the secondary,
//   the rest runs without it too (secondary_unavailable), even if the secondary is back: its
//   later statements alone there would be a transaction the authoritative store never ran.
// - Only a write that is wrappable, alone in its unit, complete (not open), outside a transaction
//   and not a FunctionCall is wrapped in BEGIN/COMMIT.
UnitPlan planUnit(const UnitFacts& facts);

}  // namespace cutover::router
