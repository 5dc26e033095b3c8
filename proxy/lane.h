#pragma once

// A lane: this session's connection to one store, with the plan its answers are consumed
// against (one Segment per ReadyForQuery the store will send, strictly in order), the fence a
// given-up read raises on it, and the outcome of the running unit there.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "compare/write_outcome.h"
#include "proxy/backend.h"
#include "proxy/lane_reader.h"

namespace cutover::proxy {

// What one store's replies to a piece of work are for. Replies are consumed strictly in order,
// one segment per ReadyForQuery the store will send.
enum class Reply {
  Forward,   // to the client (rows streamed); CommandComplete/ErrorResponse also recorded
  Record,    // consumed by the proxy: the outcome is recorded for comparison
  Swallow,   // consumed by the proxy: the answer to a message the proxy injected
  Commit,    // the proxy's COMMIT of a wrapped unit: errors and ReadyForQuery go to the client
  Capture,   // the proxy's query of the session's state: rows kept in captured_ (see enterRouted)
  Shadow,    // the other store's answer to a shadowed read: digested into shadow_, dropped
  Apply,        // mirror: async: the secondary's answer to a queued write: recorded, compared
  ApplyCommit,  // mirror: async: the commit that ends a queued write (errors recorded, no tag)
  Discard,      // a ramped read given up after ramp_read_timeout_ms: its late answer is dropped
  Schema,       // the proxy's catalog query for a write's target table: rows kept in captured_
  Hazards,      // the proxy's catalog query of what can make a read write (router/read_hazards.h)
};
struct Segment {
  Reply reply;
  bool hold_ready = false;   // Forward, Commit: keep the ReadyForQuery back until the unit completes
  bool digest = false;       // Forward: the serve side of shadow_, digested as it streams
  bool rows = false;         // Apply: RETURNING rows of a write, digested for the comparison
};
struct Lane {
  std::unique_ptr<Backend> backend;
  bool up = false;                   // logged in and in step with this session
  std::deque<Segment> plan;
  LaneReader reader;                 // the store's bytes as messages (what is left of one being streamed)
  compare::WriteOutcome outcome;
  int parse_completes = 0;           // ParseComplete answers to the running unit
  size_t results = 0;                // its statements' results ended (CommandComplete and kin)
  char last_status = 'I';
  bool connecting = false;           // a connection is being opened (login, then replay)
  uint64_t opened_for = 0;           // flags version of this session's last attempt to open it
  std::string error;                 // why the last attempt failed
  // A ramped read given up here (ramp_read_timeout_ms) was cancelled; until its answer is in
  // (abandoned) and the store confirmed the cancel (cancel_pending), nothing else is sent on
  // this connection, so the cancel cannot hit a later statement.
  int abandoned = 0;
  bool cancel_pending = false;
  bool fenced() const { return abandoned > 0 || cancel_pending; }
};
}  // namespace cutover::proxy
