#include <gtest/gtest.h>

#include "migrate/sequence_level.h"

namespace cutover::migrate {
namespace {

SequenceState seq(const char* name, std::optional<int64_t> last, int64_t increment = 1,
                  int64_t min = 1, int64_t max = INT64_MAX) {
  return {"public", name, last, increment, min, max};
}

TEST(PlanSequenceLevel, RaisesWhatIsBehindByTheMargin) {
  auto raises = planSequenceLevel({seq("a", 500), seq("b", 10), seq("c", std::nullopt), seq("only_source", 9)},
                                  {seq("a", std::nullopt), seq("b", 5000), seq("c", 3), seq("only_target", 1)}, 100);
  ASSERT_EQ(raises.size(), 1u);   // b is ahead, c never used on the source, the others on one side only
  EXPECT_EQ(raises[0].name, "a");
  EXPECT_EQ(raises[0].value, 600);
}

TEST(PlanSequenceLevel, StepsAndBounds) {
  auto raises = planSequenceLevel({seq("by5", 50, 5), seq("down", -10, -1, -1000, -1), seq("small", 90, 1, 1, 100)},
                                  {seq("by5", 40, 5), seq("down", -5, -1, -1000, -1), seq("small", 1, 1, 1, 100)}, 10);
  ASSERT_EQ(raises.size(), 3u);
  EXPECT_EQ(raises[0].value, 100);    // 50 + 10 × 5
  EXPECT_EQ(raises[1].value, -20);    // descending: below the source
  EXPECT_EQ(raises[2].value, 100);    // clamped to max_value
  EXPECT_TRUE(planSequenceLevel({seq("x", 10)}, {seq("x", 1000)}, 10).empty());
}

}  // namespace
}  // namespace cutover::migrate
