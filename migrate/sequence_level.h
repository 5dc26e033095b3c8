#pragma once

// Sequences level before authority moves (DESIGN.md "Guarantees", issue 13). While old is
// authoritative, new gets the keys old picked (row images write them as they are), so new's own
// sequences stay behind; the moment new becomes authoritative it would hand out keys old already
// used. Before `writes` moves authority, every sequence of the store taking it is raised to the
// other store's last_value plus a margin (writes still land on the old authority while the flag
// change is being published).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "config/config.h"

namespace cutover::migrate {

// Increments left free above the other store's last_value, for the writes that reach the store
// losing authority while the change is published.
inline constexpr int64_t kSequenceLevelMargin = 1000;

struct SequenceState {
  std::string schema, name;
  std::optional<int64_t> last_value;   // nullopt: never used (or not readable)
  int64_t increment = 1;
  int64_t min_value = 1, max_value = INT64_MAX;
};

struct SequenceRaise {
  std::string schema, name;
  int64_t value = 0;   // setval(…, value, true): the next nextval gives value + increment
};

// Which sequences of `target` to raise so that none hands out a value `source` already did.
std::vector<SequenceRaise> planSequenceLevel(const std::vector<SequenceState>& source,
                                             const std::vector<SequenceState>& target,
                                             int64_t margin = kSequenceLevelMargin);

struct LevelReport {
  std::vector<std::string> databases;
  int checked = 0;                 // sequences found on both stores
  std::vector<std::string> raised; // "db: schema.name → value"
  std::string describe() const;
};

// Levels the sequences of `to` (the store taking authority) from `from`, in stores.*.database
// or, where none is named, every database both stores allow connections to.
Result<LevelReport> levelSequences(const config::Config& config, bool to_new, int64_t deadline_ms);

}  // namespace cutover::migrate
