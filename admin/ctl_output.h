#pragma once

// The readable text `cutover ctl` prints for the admin API's answers. Every function takes any
// JSON: keys it does not know are printed as they come, keys it expects may be missing; nothing
// here fails.

#include <string>

#include <nlohmann/json.hpp>

namespace cutover::admin {

// One `key: value` line per scalar, nested objects indented by two spaces under `key:`; known
// keys first in a fixed order (version, writes, mirror, ... for flags; flags, stores, sessions,
// ... for status), then the others as the server sent them. Table names keep the server's order.
std::string renderTree(const nlohmann::json& value);

// GET /flags and PUT /flags answers.
inline std::string renderFlags(const nlohmann::json& snapshot) { return renderTree(snapshot); }

// GET /status answers.
inline std::string renderStatus(const nlohmann::json& status) { return renderTree(status); }

// POST /rollback's answer on one line:
// "rolled back: flags v8, reads_new_percent 0, writes dual; applied by 2 workers in 0.4 ms".
std::string renderRollback(const nlohmann::json& answer);

}  // namespace cutover::admin
