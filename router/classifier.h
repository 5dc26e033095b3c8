#pragma once

// Statement classification with a bounded cache keyed on the statement text with its numeric
// and value-position string constants blanked (router/cache_key.h): the same statement with
// other literals is a hit.

#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

#include "router/statement_info.h"

namespace cutover::router {

// One per worker thread (not thread-safe): caches by the key so a repeated statement (numbers
// aside) costs one scan, a hash and a lookup: about 135 ns for a 55-byte statement, 850 ns for
// 330 bytes (bench/classifier_bench); a miss parses with libpg_query (8-66 µs for the same).
// The cache is an LRU bounded by entries and by total text bytes; a text longer than
// max_bytes / 16 is classified but not cached.
class Classifier {
 public:
  explicit Classifier(size_t cache_entries = 4096, size_t max_bytes = 4 * 1024 * 1024);
  Classifier(const Classifier&) = delete;
  Classifier& operator=(const Classifier&) = delete;

  // The reference stays valid until the next classify() on this Classifier. A text longer than
  // max_bytes / 16 is parsed without its string constants and comments over kLongLiteral bytes.
  const StatementInfo& classify(std::string_view sql);
  static constexpr size_t kLongLiteral = 1024;

  // A statement PostgreSQL refused as a write in a read-only transaction (25006) although it was
  // classified a read (a view over a writing function, say): from now on this shape (numbers
  // aside) is classified a write, `reason` saying why. At most kMaxLearned shapes are kept.
  void learnWrite(std::string_view sql, std::string reason);
  static constexpr size_t kMaxLearned = 4096;
  size_t learnedWrites() const { return learned_.size(); }

  size_t cacheSize() const { return index_.size(); }
  size_t cacheBytes() const { return bytes_; }
  uint64_t hits() const { return hits_; }
  uint64_t misses() const { return misses_; }

 private:
  struct Entry {
    std::string text;
    StatementInfo info;
  };
  using Lru = std::list<Entry>;  // most recently used first; nodes never move in memory

  void evict();
  void applyLearned(StatementInfo& info) const;

  size_t max_entries_;
  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
  Lru lru_;
  // Keys view Entry::text inside lru_ nodes.
  std::unordered_map<std::string_view, Lru::iterator> index_;
  StatementInfo uncached_;  // the answer for a text too long to cache
  std::string key_;         // the current statement's cache key (capacity reused)
  std::unordered_map<std::string, std::string> learned_;   // cache key → why it is a write
};

}  // namespace cutover::router
