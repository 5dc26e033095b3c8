#include "flags/state_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/log.h"
#include "common/unique_handle.h"

namespace cutover::flags {

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  // close(2) reports deferred write errors (NFS); the caller checks it.
  int release() {
    int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }

 private:
  int fd_;
};

std::string directoryOf(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string baseNameOf(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string errnoText(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

Status failure(std::string_view step, const std::string& file, int err) {
  return Status::error(fmt::format("cannot {} {}: {}", step, file, errnoText(err)));
}

void closeDir(DIR* d) { ::closedir(d); }

}  // namespace

Status writeFileAtomically(const std::string& path, std::string_view contents) {
  std::string temp_name = path + ".tmp-XXXXXX";
  Fd temp(::mkostemp(temp_name.data(), O_CLOEXEC));
  if (temp.get() < 0) return failure("create a temp file", temp_name, errno);
  auto fail = [&temp_name](Status status) {
    ::unlink(temp_name.c_str());
    return status;
  };
  if (::fchmod(temp.get(), 0640) != 0) return fail(failure("chmod", temp_name, errno));
  size_t done = 0;
  while (done < contents.size()) {
    ssize_t n = ::write(temp.get(), contents.data() + done, contents.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail(failure("write", temp_name, errno));
    done += static_cast<size_t>(n);
  }
  if (::fsync(temp.get()) != 0) return fail(failure("fsync", temp_name, errno));
  if (temp.release() != 0) return fail(failure("close", temp_name, errno));
  if (::rename(temp_name.c_str(), path.c_str()) != 0) {
    return fail(failure(fmt::format("rename {} over", temp_name), path, errno));
  }
  // The rename is durable only once the directory entry is.
  const std::string dir = directoryOf(path);
  Fd dir_fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (dir_fd.get() < 0) return failure("open the directory", dir, errno);
  if (::fsync(dir_fd.get()) != 0) return failure("fsync the directory", dir, errno);
  return Status::ok();
}

Result<std::optional<FlagSnapshot>> readStateFile(const std::string& path) {
  auto corrupt = [&path](std::string_view what) {
    return Status::error(fmt::format(
        "flags state file {} is unusable: {} (repair it, or remove it to start again from the "
        "config's flags)",
        path, what));
  };
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return std::optional<FlagSnapshot>();
    return corrupt(fmt::format("cannot open it: {}", errnoText(errno)));
  }
  std::string text;
  char buffer[8192];
  for (;;) {
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return corrupt(fmt::format("cannot read it: {}", errnoText(errno)));
    if (n == 0) break;
    text.append(buffer, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) return corrupt("it is larger than 16 MiB");
  }
  nlohmann::json json;
  try {
    json = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return corrupt(fmt::format("not valid JSON ({})", e.what()));
  }
  auto snapshot = fromJson(json);
  if (!snapshot) return corrupt(snapshot.status().message());
  if (Status valid = validate(*snapshot); !valid) return corrupt(valid.message());
  if (snapshot->changed_by.empty()) snapshot->changed_by = "state-file";
  return std::optional<FlagSnapshot>(std::move(*snapshot));
}

void removeStaleTempFiles(const std::string& path) {
  const std::string dir = directoryOf(path);
  const std::string prefix = baseNameOf(path) + ".tmp-";
  UniqueHandle<DIR, closeDir> d(::opendir(dir.c_str()));
  if (!d) return;
  std::vector<std::string> stale;
  while (dirent* entry = ::readdir(d.get())) {
    std::string_view name = entry->d_name;
    if (name.size() == prefix.size() + 6 && name.starts_with(prefix)) stale.emplace_back(name);
  }
  for (const std::string& name : stale) {
    const std::string full = dir + "/" + name;
    if (::unlink(full.c_str()) == 0) log::info("removed {} left by an interrupted flags write", full);
  }
}

}  // namespace cutover::flags
