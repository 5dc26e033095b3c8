#include "compare/async_wal.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <system_error>

#include "common/log.h"

namespace cutover::compare {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kPrefix = "async-queue.";
constexpr std::string_view kSuffix = ".jsonl";

std::string segmentName(uint64_t number) { return fmt::format("{}{}{}", kPrefix, number, kSuffix); }

// The segments in `directory` by number; a missing directory has none.
Result<std::map<uint64_t, fs::path>> listSegments(const std::string& directory) {
  std::map<uint64_t, fs::path> out;
  std::error_code ec;
  if (!fs::exists(directory, ec)) return out;
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= kPrefix.size() + kSuffix.size() || !name.starts_with(kPrefix) || !name.ends_with(kSuffix)) {
      continue;
    }
    const std::string digits = name.substr(kPrefix.size(), name.size() - kPrefix.size() - kSuffix.size());
    if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    out.emplace(std::stoull(digits), it->path());
  }
  if (ec) return Status::error(fmt::format("cannot list the journal directory {}: {}", directory, ec.message()));
  return out;
}

}  // namespace

Result<AsyncWal::Recovered> AsyncWal::recover(const std::string& directory) {
  auto segments = listSegments(directory);
  if (!segments.isOk()) return segments.status();
  Recovered out;
  std::map<uint64_t, nlohmann::json> intents;   // by id: the order they were taken
  std::set<uint64_t> dones;
  for (const auto& [number, path] : segments.value()) {
    std::ifstream in(path);
    if (!in) return Status::error(fmt::format("cannot read the async write-ahead record {}", path.string()));
    ++out.segments;
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded() || !record.is_object()) {
        ++out.bad_lines;
        continue;
      }
      if (auto id = record.find("done"); id != record.end() && id->is_number_unsigned()) {
        dones.insert(id->get<uint64_t>());
        ++out.dones;
      } else if (auto intent = record.find("intent");
                 intent != record.end() && intent->is_number_unsigned() && record.contains("record")) {
        intents.emplace(intent->get<uint64_t>(), std::move(record["record"]));
        ++out.intents;
      } else {
        ++out.bad_lines;
      }
    }
  }
  for (auto& [id, record] : intents) {
    if (!dones.contains(id)) out.lost.push_back(std::move(record));
  }
  return out;
}

Status AsyncWal::removeSegments(const std::string& directory) {
  auto segments = listSegments(directory);
  if (!segments.isOk()) return segments.status();
  for (const auto& [number, path] : segments.value()) {
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) return Status::error(fmt::format("cannot remove {}: {}", path.string(), ec.message()));
  }
  return Status::ok();
}

Result<std::unique_ptr<AsyncWal>> AsyncWal::open(std::string directory, uint64_t segment_bytes) {
  std::unique_ptr<AsyncWal> wal(new AsyncWal(std::move(directory), std::max<uint64_t>(segment_bytes, 4096)));
  std::lock_guard lock(wal->mutex_);
  if (Status added = wal->addSegment(1); !added) return added;
  return wal;
}

AsyncWal::~AsyncWal() {
  // Journals drain and fsync what is queued as they close. Every intent has its done after a
  // clean stop (sessions journal or apply their queues first), so the files are not needed.
  std::lock_guard lock(mutex_);
  const bool clean = pending_ == 0;
  std::vector<std::string> paths;
  for (Segment& s : segments_) paths.push_back(s.journal->path());
  segments_.clear();
  if (!clean) {
    log::warn("async write-ahead record: {} acknowledged writes were not confirmed applied at exit; they are "
              "journaled at the next start",
              pending_);
    return;
  }
  for (const std::string& path : paths) {
    std::error_code ec;
    fs::remove(path, ec);
  }
}

Status AsyncWal::addSegment(uint64_t number) {
  // Bounded like the divergence journal, with room for a burst of writes behind one fsync.
  auto journal = Journal::open(directory_, segmentName(number), 100000, 256u << 20);
  if (!journal.isOk()) return journal.status();
  segments_.push_back(Segment{number, std::move(journal.value()), 0});
  return Status::ok();
}

std::optional<AsyncWal::Mark> AsyncWal::intentNow(const nlohmann::json& record) {
  std::lock_guard lock(mutex_);
  if (current().journal->bytesAccepted() >= segment_bytes_) {
    if (Status added = addSegment(current().number + 1); !added) {
      log::error("async write-ahead record: cannot start a new segment ({}); going on with {}", added.message(),
                 current().journal->path());
    }
  }
  const Mark mark{next_id_, current().number};
  // The record is dumped once, inside the line (no copy of the tree).
  std::string line;
  try {
    line = fmt::format("{{\"intent\":{},\"record\":{}}}", mark.id,
                       record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  } catch (const nlohmann::json::exception&) {
    ++refused_;
    return std::nullopt;
  }
  if (!current().journal->writeLineNow(std::move(line))) {
    ++refused_;
    return std::nullopt;
  }
  ++next_id_;
  ++current().pending;
  ++pending_;
  return mark;
}

bool AsyncWal::whenDurable(const Mark& mark, std::function<void(bool durable)> on_durable) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(segments_.begin(), segments_.end(), [&](const Segment& s) { return s.number == mark.segment; });
  if (it == segments_.end()) return false;
  return it->journal->barrier(std::move(on_durable));
}

void AsyncWal::done(const Mark& mark) {
  std::lock_guard lock(mutex_);
  auto it = std::find_if(segments_.begin(), segments_.end(), [&](const Segment& s) { return s.number == mark.segment; });
  if (it == segments_.end() || it->pending == 0) return;   // not ours: a second done for one mark
  --it->pending;
  --pending_;
  // Written at once, not fsync'd (the next async barrier syncs it along): no writer wake-up, no
  // fsync of its own. Lost with the machine, it names a write recovery cannot confirm, no more.
  current().journal->writeLineNow(fmt::format("{{\"done\":{}}}", mark.id));
  dropFinishedSegments();
}

void AsyncWal::dropFinishedSegments() {
  while (segments_.size() > 1 && segments_.front().pending == 0) {
    const std::string path = segments_.front().journal->path();
    segments_.pop_front();   // drains its writer first
    std::error_code ec;
    fs::remove(path, ec);
    if (ec) log::warn("async write-ahead record: cannot remove the finished segment {}: {}", path, ec.message());
  }
}

uint64_t AsyncWal::pending() const {
  std::lock_guard lock(mutex_);
  return pending_;
}

size_t AsyncWal::segments() const {
  std::lock_guard lock(mutex_);
  return segments_.size();
}

uint64_t AsyncWal::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

}  // namespace cutover::compare
