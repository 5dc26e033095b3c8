#pragma once

// The flags state file: the last published snapshot as JSON, replaced atomically so a crash at
// any point leaves either the previous or the new file, never a torn one.

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "flags/flag_snapshot.h"

namespace cutover::flags {

// Writes `contents` to a temp file in the same directory ("<path>.tmp-XXXXXX"), fsyncs it,
// renames it over `path` and fsyncs the directory. On failure the temp file is removed, `path`
// is untouched, and the error names the step and errno.
Status writeFileAtomically(const std::string& path, std::string_view contents);

// nullopt when `path` does not exist; an error when it exists but cannot be read or parsed.
Result<std::optional<FlagSnapshot>> readStateFile(const std::string& path);

// Removes "<path>.tmp-*" files a crash between create and rename left behind.
void removeStaleTempFiles(const std::string& path);

}  // namespace cutover::flags
