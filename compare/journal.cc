#include "compare/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cerrno>
#include <string.h>  // memrchr (GNU)

#include <algorithm>
#include <cstring>

#include "common/log.h"

namespace cutover::compare {

namespace {

std::string errnoText(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

// mkdir -p with `mode` for every directory it creates.
Status makeDirectories(const std::string& directory, mode_t mode) {
  for (size_t pos = 0; pos != std::string::npos;) {
    pos = directory.find('/', pos + 1);
    const std::string prefix = directory.substr(0, pos);
    if (prefix.empty() || ::mkdir(prefix.c_str(), mode) == 0 || errno == EEXIST) continue;
    struct stat st;  // an existing parent may refuse mkdir with EACCES rather than EEXIST
    if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
    return Status::error(fmt::format("cannot create the journal directory {}: {}", prefix,
                                     errnoText(errno)));
  }
  struct stat st;
  if (::stat(directory.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return Status::error(fmt::format("journal directory {} is not a directory", directory));
  }
  return Status::ok();
}

bool fsyncDirectory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

// Reads [offset, offset + length) fully; false on error.
bool readAt(int fd, uint64_t offset, size_t length, char* out) {
  size_t done = 0;
  while (done < length) {
    ssize_t n = ::pread(fd, out + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Cuts a torn last line (no '\n') off the file; returns the resulting size.
Result<uint64_t> dropTornTail(int fd, const std::string& path) {
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    return Status::error(fmt::format("cannot stat {}: {}", path, errnoText(errno)));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t end = size;
  char buffer[4096];
  while (end > 0) {
    size_t chunk = static_cast<size_t>(std::min<uint64_t>(end, sizeof buffer));
    if (!readAt(fd, end - chunk, chunk, buffer)) {
      return Status::error(fmt::format("cannot read {}: {}", path, errnoText(errno)));
    }
    if (const void* nl = ::memrchr(buffer, '\n', chunk)) {
      end = end - chunk + static_cast<uint64_t>(static_cast<const char*>(nl) - buffer) + 1;
      break;
    }
    end -= chunk;
  }
  if (end == size) return size;
  if (::ftruncate(fd, static_cast<off_t>(end)) != 0 || ::fsync(fd) != 0) {
    return Status::error(
        fmt::format("cannot cut the torn last line off {}: {}", path, errnoText(errno)));
  }
  log::warn("{}: cut off a torn last line of {} bytes (a crash before it was fsync'd)", path,
            size - end);
  return end;
}

}  // namespace

Result<std::unique_ptr<Journal>> Journal::open(const std::string& directory,
                                               const std::string& file_name,
                                               size_t max_queued_records,
                                               size_t max_queued_bytes) {
  if (directory.empty() || file_name.empty() || file_name.find('/') != std::string::npos) {
    return Status::error(fmt::format("journal: bad directory '{}' or file name '{}'", directory,
                                     file_name));
  }
  if (max_queued_records == 0 || max_queued_bytes == 0) {
    return Status::error("journal: the queue limits must be positive");
  }
  if (Status made = makeDirectories(directory, 0750); !made) return made;
  const std::string path =
      directory.back() == '/' ? directory + file_name : directory + "/" + file_name;
  // O_RDWR rather than O_WRONLY: the torn-tail check reads the file back.
  int fd = ::open(path.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status::error(fmt::format("cannot open the journal {}: {}", path, errnoText(errno)));
  }
  auto size = dropTornTail(fd, path);
  if (!size) {
    ::close(fd);
    return size.status();
  }
  // A new file's directory entry must be durable too, or a crash could lose the whole file.
  if (!fsyncDirectory(directory)) {
    Status status = Status::error(
        fmt::format("cannot fsync the journal directory {}: {}", directory, errnoText(errno)));
    ::close(fd);
    return status;
  }
  return std::unique_ptr<Journal>(
      new Journal(path, fd, *size, max_queued_records, max_queued_bytes));
}

Journal::Journal(std::string path, int fd, uint64_t size, size_t max_records, size_t max_bytes)
    : path_(std::move(path)),
      fd_(fd),
      max_records_(max_records),
      max_bytes_(max_bytes),
      size_(size),
      writer_([this] { run(); }) {}

Journal::~Journal() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  wake_.notify_one();
  writer_.join();
  ::close(fd_);
}

bool Journal::append(nlohmann::json record, std::function<void(bool durable)> on_durable) {
  Pending pending;
  try {
    // replace: statement text in a non-UTF-8 client_encoding must not make dump() throw.
    pending.line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } catch (const nlohmann::json::exception&) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  pending.line += '\n';
  pending.on_durable = std::move(on_durable);
  {
    std::lock_guard lock(mutex_);
    if (closing_ || held_records_ + 1 > max_records_ ||
        held_bytes_ + pending.line.size() > max_bytes_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    ++held_records_;
    held_bytes_ += pending.line.size();
    accepted_bytes_.fetch_add(pending.line.size(), std::memory_order_relaxed);
    queue_.push_back(std::move(pending));
  }
  wake_.notify_one();
  return true;
}

void Journal::run() {
  for (;;) {
    std::deque<Pending> batch;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;  // closing, and everything is written
      batch.swap(queue_);
    }
    std::string bytes;
    size_t batch_bytes = 0;
    for (const Pending& p : batch) batch_bytes += p.line.size();
    bytes.reserve(batch_bytes);
    for (const Pending& p : batch) bytes += p.line;

    const bool durable = writeAndSync(bytes);
    (durable ? written_ : failed_).fetch_add(batch.size(), std::memory_order_relaxed);
    for (Pending& p : batch) {
      if (p.on_durable) p.on_durable(durable);
    }
    // Released only now, so records being written count against the bound too.
    std::lock_guard lock(mutex_);
    held_records_ -= batch.size();
    held_bytes_ -= batch_bytes;
  }
}

bool Journal::writeLineNow(std::string line) {
  line += '\n';
  accepted_bytes_.fetch_add(line.size(), std::memory_order_relaxed);
  std::lock_guard lock(write_mutex_);
  return writeWhole(line);
}

bool Journal::barrier(std::function<void(bool durable)> on_durable) {
  Pending pending;   // no line: the batch it joins is fsync'd, nothing more
  pending.on_durable = std::move(on_durable);
  {
    std::lock_guard lock(mutex_);
    if (closing_ || held_records_ + 1 > max_records_) return false;
    ++held_records_;
    queue_.push_back(std::move(pending));
  }
  wake_.notify_one();
  return true;
}

bool Journal::writeAndSync(const std::string& bytes) {
  {
    std::lock_guard lock(write_mutex_);
    if (!writeWhole(bytes)) return false;
  }
  fsyncs_.fetch_add(1, std::memory_order_relaxed);
  if (::fsync(fd_) != 0) {
    // After a failed fsync the kernel may have dropped the dirty pages: nothing is durable.
    reportError("fsync", errno);
    return false;
  }
  return true;
}

bool Journal::writeWhole(const std::string& bytes) {
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      // Remove a partial batch so the file stays whole lines; none of it is reported durable.
      if (done > 0 && ::ftruncate(fd_, static_cast<off_t>(size_)) != 0) {
        reportError("cannot cut off a partial write", errno);
      }
      reportError("write", err);
      return false;
    }
    done += static_cast<size_t>(n);
  }
  size_ += bytes.size();
  return true;
}

void Journal::reportError(std::string_view what, int err) {
  std::lock_guard lock(error_mutex_);
  ++errors_since_log_;
  const auto now = std::chrono::steady_clock::now();
  if (last_error_log_ != std::chrono::steady_clock::time_point{} &&
      now - last_error_log_ < std::chrono::minutes(1)) {
    return;
  }
  log::error("journal {}: {} failed: {} ({} I/O errors since the last report; records are "
             "reported not durable)",
             path_, what, errnoText(err), errors_since_log_);
  last_error_log_ = now;
  errors_since_log_ = 0;
}

std::vector<nlohmann::json> Journal::tailFile(const std::string& path, size_t limit) {
  std::vector<nlohmann::json> out;
  if (limit == 0) return out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return out;
  }
  // Read backwards until limit + 1 newlines are in hand (or the start of the file).
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t start = size;
  std::vector<std::string> pieces;  // newest first
  size_t newlines = 0;
  constexpr size_t kChunk = 64 * 1024;
  while (start > 0 && newlines <= limit) {
    const size_t chunk = static_cast<size_t>(std::min<uint64_t>(start, kChunk));
    std::string piece(chunk, '\0');
    if (!readAt(fd, start - chunk, chunk, piece.data())) break;
    start -= chunk;
    for (char c : piece) newlines += c == '\n';
    pieces.push_back(std::move(piece));
  }
  ::close(fd);
  std::string text;
  for (auto it = pieces.rbegin(); it != pieces.rend(); ++it) text += *it;
  // Whole lines only: a line cut by where reading began, or one still being written, is skipped.
  size_t begin = 0;
  if (start > 0) {
    begin = text.find('\n');
    begin = begin == std::string::npos ? text.size() : begin + 1;
  }
  std::vector<std::string_view> lines;
  for (size_t pos = begin; pos < text.size();) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;
    lines.emplace_back(text.data() + pos, nl - pos);
    pos = nl + 1;
  }
  const size_t first = lines.size() > limit ? lines.size() - limit : 0;
  for (size_t i = first; i < lines.size(); ++i) {
    nlohmann::json record = nlohmann::json::parse(lines[i], nullptr, /*allow_exceptions=*/false);
    if (!record.is_discarded()) out.push_back(std::move(record));
  }
  return out;
}

}  // namespace cutover::compare
