#pragma once

#include <string>

#include "common/status.h"

namespace cutover::config {

// The whole file; on failure the Status message is the system's reason ("No such file or
// directory").
Result<std::string> readWholeFile(const std::string& path);

// A secret kept in a file (password_file, token_file): trailing CR/LF removed, so files written
// by `echo` work. Errors name the path but never the content.
Result<std::string> readSecretFile(const std::string& path);

}  // namespace cutover::config
