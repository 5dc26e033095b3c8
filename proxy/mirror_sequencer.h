#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>

namespace cutover::proxy {

// The order in which `mirror: async` applies writes of all sessions to the secondary store.
//
// A session takes a ticket while the authoritative store still holds the row locks of the write
// (an autocommit write runs inside an injected BEGIN/COMMIT there; an explicit transaction takes
// its ticket just before its COMMIT is sent). Two writes that touch the same row are serialised
// by those locks, so their tickets come in the order the authoritative store applied them. On the
// secondary, the write holding ticket t starts only once every lower ticket is released: its
// statements have run there and hold their own locks (or it was abandoned). Conflicting writes
// therefore take their locks on the secondary in the authoritative store's order, while writes
// that do not conflict still commit concurrently. One instance per process, shared by workers.
class MirrorSequencer {
 public:
  uint64_t take();
  // The ticket's write holds its locks on the secondary, or will never run there. Each ticket is
  // released exactly once (MirrorTicket does it).
  void release(uint64_t ticket);
  // True when every ticket below `ticket` is released. Otherwise `wake` runs once they are, on
  // the thread that releases the last of them (post to your own thread from it).
  bool readyOrWait(uint64_t ticket, std::function<void()> wake);
  // Tickets taken and not yet released, for the status page and tests.
  uint64_t outstanding() const;

 private:
  mutable std::mutex mutex_;
  uint64_t next_ = 1;
  uint64_t floor_ = 1;                       // every ticket below it is released
  std::set<uint64_t> released_;              // released tickets at or above floor_
  std::map<uint64_t, std::function<void()>> waiters_;
};

// A ticket owned by the write it orders: released when that write holds its locks on the
// secondary (release()), or when it is dropped without running there (destructor).
class MirrorTicket {
 public:
  MirrorTicket() = default;
  MirrorTicket(MirrorSequencer* sequencer, uint64_t number) : sequencer_(sequencer), number_(number) {}
  MirrorTicket(MirrorTicket&& other) noexcept { *this = std::move(other); }
  MirrorTicket& operator=(MirrorTicket&& other) noexcept {
    if (this != &other) {
      release();
      sequencer_ = other.sequencer_;
      number_ = other.number_;
      other.number_ = 0;
    }
    return *this;
  }
  MirrorTicket(const MirrorTicket&) = delete;
  MirrorTicket& operator=(const MirrorTicket&) = delete;
  ~MirrorTicket() { release(); }

  uint64_t number() const { return number_; }
  explicit operator bool() const { return number_ != 0; }
  void release() {
    if (number_ != 0 && sequencer_ != nullptr) sequencer_->release(number_);
    number_ = 0;
  }

 private:
  MirrorSequencer* sequencer_ = nullptr;
  uint64_t number_ = 0;
};

}  // namespace cutover::proxy
