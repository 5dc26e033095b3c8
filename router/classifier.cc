#include "router/classifier.h"

#include <algorithm>

#include "router/cache_key.h"
#include "router/statement_rules.h"

namespace cutover::router {

Classifier::Classifier(size_t cache_entries, size_t max_bytes)
    : max_entries_(std::max<size_t>(cache_entries, 1)), max_bytes_(std::max<size_t>(max_bytes, 1)) {
  index_.reserve(max_entries_);
}

const StatementInfo& Classifier::classify(std::string_view sql) {
  if (sql.size() > max_bytes_ / 16) {
    // Never cached, so no key is made (a copy of the text). A long string constant does not
    // change what the statement is: it is classified without it (withoutLongLiterals).
    ++misses_;
    std::string shape;
    uncached_ = withoutLongLiterals(sql, kLongLiteral, shape) ? classifySql(shape) : classifySql(sql);
    return uncached_;
  }
  cacheKey(sql, key_);
  if (auto found = index_.find(key_); found != index_.end()) {
    ++hits_;
    lru_.splice(lru_.begin(), lru_, found->second);
    return found->second->info;
  }
  ++misses_;
  lru_.push_front(Entry{key_, classifySql(sql)});
  applyLearned(lru_.front().info);
  bytes_ += key_.size();
  index_.emplace(lru_.front().text, lru_.begin());
  evict();
  return lru_.front().info;
}

void Classifier::applyLearned(StatementInfo& info) const {
  auto found = learned_.find(key_);
  if (found == learned_.end() || writeRank(info.kind) >= writeRank(StatementKind::Write)) return;
  info.kind = StatementKind::Write;
  info.reason = found->second;
  info.wrappable = !info.multi_statement;
  info.catalog = false;
}

void Classifier::learnWrite(std::string_view sql, std::string reason) {
  if (sql.size() > max_bytes_ / 16) return;   // never cached: each run is refused and re-run
  cacheKey(sql, key_);
  if (!learned_.contains(key_) && learned_.size() >= kMaxLearned) return;
  learned_[key_] = std::move(reason);
  if (auto found = index_.find(key_); found != index_.end()) applyLearned(found->second->info);
}

void Classifier::evict() {
  // Never evicts the entry just inserted at the front.
  while (lru_.size() > 1 && (lru_.size() > max_entries_ || bytes_ > max_bytes_)) {
    Entry& oldest = lru_.back();
    index_.erase(oldest.text);
    bytes_ -= oldest.text.size();
    lru_.pop_back();
  }
}

}  // namespace cutover::router
