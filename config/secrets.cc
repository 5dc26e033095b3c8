#include "config/secrets.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace cutover::config {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

Result<std::string> readWholeFile(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (!file) return Status::error(std::strerror(errno));
  std::string out;
  char buffer[8192];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, file.get())) out.append(buffer, n);
  // A directory opens fine on Linux and fails here with EISDIR.
  if (std::ferror(file.get())) return Status::error(std::strerror(errno));
  return out;
}

Result<std::string> readSecretFile(const std::string& path) {
  auto text = readWholeFile(path);
  if (!text) {
    return Status::error(fmt::format("cannot read '{}': {}", path, text.status().message()));
  }
  std::string secret = std::move(*text);
  while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
  if (secret.empty()) return Status::error(fmt::format("'{}' is empty", path));
  return secret;
}

}  // namespace cutover::config
