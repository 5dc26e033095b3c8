#include "proxy/session_replay.h"

#include "protocol/messages.h"

namespace cutover::proxy {

void SessionReplay::addCommand(std::string_view sql) {
  if (commands_.size() >= kMaxReplayed) {
    complete_ = false;
    return;
  }
  commands_.emplace_back(sql);
}

bool SessionReplay::canKeepStatement(const std::string& name) const {
  return statements_.size() < kMaxReplayed || statements_.contains(name);
}

void SessionReplay::keepStatement(const std::string& name, std::string parse) {
  if (!canKeepStatement(name)) {
    complete_ = false;
    return;
  }
  statements_[name] = std::move(parse);
}

const std::string* SessionReplay::statement(const std::string& name) const {
  auto it = statements_.find(name);
  return it == statements_.end() ? nullptr : &it->second;
}

std::string SessionReplay::parses() const {
  std::string out;
  for (const auto& [name, bytes] : statements_) out += bytes;
  if (!out.empty()) out += protocol::encode(protocol::Sync{});
  return out;
}

}  // namespace cutover::proxy
