#pragma once

// What a store connection opened later in a session's life needs to be in step with it (a
// reconnection to a lost secondary, the other store when the session leaves pass-through): the
// startup parameters, the session commands that changed its state (SET, LISTEN, SQL PREPARE, in
// order), and its named protocol statements (Parse messages as the client sent them). Recorded
// once the store accepted them; bounded (kMaxReplayed commands and statements; a client's command
// longer than kMaxReplayedBytes is not kept). Past a bound the replay is incomplete, and a connection opened from it would not match the session:
// then it is not opened at all (the store's misses are journaled instead).
//
// No sockets: ClientSession sends what replay() gives.

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "proxy/backend.h"

namespace cutover::proxy {

class SessionReplay {
 public:
  static constexpr size_t kMaxReplayed = 1000;           // commands, and named statements
  static constexpr size_t kMaxReplayedBytes = 64 * 1024;  // a longer command of the client's is not kept

  // The startup parameters every connection of the session logs in with.
  void setStartup(Backend::Parameters parameters) { startup_ = std::move(parameters); }
  const Backend::Parameters& startup() const { return startup_; }

  // A session command the store accepted (SET, RESET, LISTEN, PREPARE, …), replayed in order
  // (past kMaxReplayed, the replay is incomplete).
  void addCommand(std::string_view sql);
  // DISCARD ALL / RESET ALL: what came before is undone, nothing of it replays.
  void clearCommands() { commands_.clear(); }
  const std::vector<std::string>& commands() const { return commands_; }

  // Whether a Parse of the named statement `name` can be kept (its name is known, or there is room).
  bool canKeepStatement(const std::string& name) const;
  // A named statement the store created: `parse` is its Parse message, whole.
  void keepStatement(const std::string& name, std::string parse);
  // Closed (Close 'S'), or replaced: a later connection does not get it.
  void dropStatement(const std::string& name) { statements_.erase(name); }
  // The Parse message of `name`, or null.
  const std::string* statement(const std::string& name) const;
  size_t statementCount() const { return statements_.size(); }

  // Something of the session could not be recorded: a connection opened from here on would
  // not match it.
  void markIncomplete() { complete_ = false; }
  bool complete() const { return complete_; }

  // The named statements' Parse messages then a Sync ("" when there are none): one segment.
  std::string parses() const;

 private:
  Backend::Parameters startup_;
  std::vector<std::string> commands_;
  std::unordered_map<std::string, std::string> statements_;
  bool complete_ = true;
};

}  // namespace cutover::proxy
