#include "compare/async_wal.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace cutover::compare {
namespace {

namespace fs = std::filesystem;

class AsyncWalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "async_wal_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  // Writes an intent and waits until it is durable.
  static AsyncWal::Mark durableIntent(AsyncWal& wal, nlohmann::json record) {
    auto mark = wal.intentNow(record);
    EXPECT_TRUE(mark.has_value());
    if (!mark) return {};
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false, durable = false;
    EXPECT_TRUE(wal.whenDurable(*mark, [&](bool ok) {
      std::lock_guard lock(mutex);
      done = true;
      durable = ok;
      cv.notify_one();
    }));
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return done; });
    EXPECT_TRUE(durable);
    return *mark;
  }

  std::string dir_;
};

TEST_F(AsyncWalTest, NothingToRecoverInAnEmptyOrMissingDirectory) {
  auto missing = AsyncWal::recover(dir_ + "/absent");
  ASSERT_TRUE(missing.isOk());
  EXPECT_TRUE(missing.value().lost.empty());
  auto empty = AsyncWal::recover(dir_);
  ASSERT_TRUE(empty.isOk());
  EXPECT_EQ(empty.value().segments, 0u);
}

TEST_F(AsyncWalTest, IntentsWithoutDoneAreLostInOrder) {
  {
    auto wal = AsyncWal::open(dir_);
    ASSERT_TRUE(wal.isOk());
    AsyncWal::Mark a = durableIntent(*wal.value(), {{"statement", "a"}});
    durableIntent(*wal.value(), {{"statement", "b"}});
    durableIntent(*wal.value(), {{"statement", "c"}});
    wal.value()->done(a);
    EXPECT_EQ(wal.value()->pending(), 2u);
  }   // closed with writes pending: the files stay
  auto found = AsyncWal::recover(dir_);
  ASSERT_TRUE(found.isOk());
  ASSERT_EQ(found.value().lost.size(), 2u);
  EXPECT_EQ(found.value().lost[0]["statement"], "b");
  EXPECT_EQ(found.value().lost[1]["statement"], "c");
  EXPECT_EQ(found.value().intents, 3u);
  EXPECT_EQ(found.value().dones, 1u);
  ASSERT_TRUE(AsyncWal::removeSegments(dir_).isOk());
  EXPECT_TRUE(files().empty());
}

TEST_F(AsyncWalTest, ACleanCloseLeavesNoFile) {
  {
    auto wal = AsyncWal::open(dir_);
    ASSERT_TRUE(wal.isOk());
    AsyncWal::Mark a = durableIntent(*wal.value(), {{"statement", "a"}});
    wal.value()->done(a);
    wal.value()->done(a);   // a second done for one mark changes nothing
    EXPECT_EQ(wal.value()->pending(), 0u);
  }
  EXPECT_TRUE(files().empty());
}

TEST_F(AsyncWalTest, FinishedSegmentsAreDeletedOldestFirst) {
  auto opened = AsyncWal::open(dir_, 4096);   // the smallest segment: a few records each
  ASSERT_TRUE(opened.isOk());
  AsyncWal& wal = *opened.value();
  const std::string text(1500, 'x');
  AsyncWal::Mark first = durableIntent(wal, {{"statement", "first " + text}});
  std::vector<AsyncWal::Mark> rest;
  for (int i = 0; i < 8; ++i) rest.push_back(durableIntent(wal, {{"statement", std::to_string(i) + text}}));
  const size_t segments = wal.segments();
  EXPECT_GE(segments, 3u);
  // Everything but the oldest record done: no segment can go (the first holds a pending intent).
  for (const auto& m : rest) wal.done(m);
  EXPECT_EQ(wal.segments(), segments);
  // Done records are not waited for: they reach the files a moment later.
  auto found = AsyncWal::recover(dir_);
  for (int i = 0; i < 500 && found.isOk() && found.value().lost.size() > 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    found = AsyncWal::recover(dir_);
  }
  ASSERT_TRUE(found.isOk());
  ASSERT_EQ(found.value().lost.size(), 1u);
  EXPECT_EQ(found.value().lost[0]["statement"], "first " + text);
  wal.done(first);
  EXPECT_EQ(wal.segments(), 1u);   // only the current one is left
  EXPECT_EQ(files().size(), 1u);
}

TEST_F(AsyncWalTest, AnIntentIsInTheFileWhenIntentNowReturns) {
  auto wal = AsyncWal::open(dir_);
  ASSERT_TRUE(wal.isOk());
  ASSERT_TRUE(wal.value()->intentNow({{"statement", "written"}}).has_value());
  auto found = AsyncWal::recover(dir_);   // no wait: the process could be killed right here
  ASSERT_TRUE(found.isOk());
  ASSERT_EQ(found.value().lost.size(), 1u);
  EXPECT_EQ(found.value().lost[0]["statement"], "written");
}

TEST_F(AsyncWalTest, ATornLastLineIsSkipped) {
  {
    std::ofstream out(dir_ + "/async-queue.1.jsonl");
    out << R"({"intent":1,"record":{"statement":"kept"}})" << "\n" << R"({"intent":2,"rec)";
  }
  auto found = AsyncWal::recover(dir_);
  ASSERT_TRUE(found.isOk());
  ASSERT_EQ(found.value().lost.size(), 1u);
  EXPECT_EQ(found.value().lost[0]["statement"], "kept");
  EXPECT_EQ(found.value().bad_lines, 1u);
}

}  // namespace
}  // namespace cutover::compare
