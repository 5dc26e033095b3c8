#include "compare/journal.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "compare/divergence.h"

namespace cutover::compare {
namespace {

// Blocks the writer thread inside a callback until release() (to fill the queue on purpose).
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mutex_);
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
  }
  void waitUntilEntered() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [this] { return entered_; });
  }
  void release() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool entered_ = false, open_ = false;
};

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "journal_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    root_ = templ;
    dir_ = root_ + "/journal";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  std::unique_ptr<Journal> openJournal(size_t max_records = 10000,
                                       size_t max_bytes = 64u << 20) {
    auto journal = Journal::open(dir_, "divergences.jsonl", max_records, max_bytes);
    EXPECT_TRUE(journal) << journal.status().message();
    return journal ? std::move(*journal) : nullptr;
  }

  std::vector<std::string> fileLines() {
    std::ifstream in(dir_ + "/divergences.jsonl");
    std::vector<std::string> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
  }

  std::string fileText() {
    std::ifstream in(dir_ + "/divergences.jsonl");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  // Polls (no timing assertion): fails the test only after a generous deadline.
  template <typename Pred>
  void waitFor(Pred pred) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (!pred()) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "timed out";
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  std::string root_, dir_;
};

TEST_F(JournalTest, OpenCreatesTheDirectoryAndFileWithTheirModes) {
  dir_ = root_ + "/a/b/journal/";
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  EXPECT_EQ(journal->path(), root_ + "/a/b/journal/divergences.jsonl");
  struct stat st;
  const mode_t umask_now = ::umask(0);
  ::umask(umask_now);
  ASSERT_EQ(::stat((root_ + "/a/b/journal").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u & ~umask_now);
  ASSERT_EQ(::stat((root_ + "/a").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0750u & ~umask_now);
  ASSERT_EQ(::stat(journal->path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u & ~umask_now);
}

TEST_F(JournalTest, OpenRefusesAFileInPlaceOfTheDirectory) {
  std::ofstream(dir_) << "x";
  auto journal = Journal::open(dir_, "divergences.jsonl");
  ASSERT_FALSE(journal);
  EXPECT_EQ(journal.status().message(), "journal directory " + dir_ + " is not a directory");
}

TEST_F(JournalTest, RecordsInOrderEachCallbackAfterItsFsync) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  std::mutex mutex;
  std::vector<std::string> seen;  // what each callback observed, in call order
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(journal->append({{"seq", i}}, [&, i](bool durable) {
      // By the time a callback runs, its line is in the file and an fsync has completed.
      const std::string text = fileText();
      const bool in_file = text.find("{\"seq\":" + std::to_string(i) + "}\n") != std::string::npos;
      std::lock_guard lock(mutex);
      seen.push_back(std::to_string(i) + (durable ? " durable" : " NOT durable") +
                     (in_file ? " in file" : " MISSING") +
                     (journal->fsyncs() >= 1 ? "" : " before any fsync"));
    }));
  }
  waitFor([&] { std::lock_guard lock(mutex); return seen.size() == 5; });
  EXPECT_EQ(seen, (std::vector<std::string>{"0 durable in file", "1 durable in file",
                                            "2 durable in file", "3 durable in file",
                                            "4 durable in file"}));
  EXPECT_EQ(fileLines(), (std::vector<std::string>{"{\"seq\":0}", "{\"seq\":1}", "{\"seq\":2}",
                                                   "{\"seq\":3}", "{\"seq\":4}"}));
  EXPECT_EQ(journal->written(), 5u);
  EXPECT_GE(journal->fsyncs(), 1u);
  EXPECT_LE(journal->fsyncs(), 5u);
  EXPECT_EQ(journal->dropped(), 0u);
}

TEST_F(JournalTest, CallbacksFollowAppendOrderWithinABatchAndTheFsyncCount) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  Gate gate;
  ASSERT_TRUE(journal->append({{"seq", 0}}, [&](bool) { gate.wait(); }));
  gate.waitUntilEntered();  // record 0 is fsync'd; the writer waits in its callback
  EXPECT_EQ(journal->fsyncs(), 1u);
  std::mutex mutex;
  std::vector<std::pair<int, uint64_t>> calls;  // (seq, fsyncs when called back)
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(journal->append({{"seq", i}}, [&, i](bool) {
      std::lock_guard lock(mutex);
      calls.emplace_back(i, journal->fsyncs());
    }));
  }
  EXPECT_EQ(fileLines().size(), 1u);  // queued, not yet written
  gate.release();
  waitFor([&] { std::lock_guard lock(mutex); return calls.size() == 3; });
  // One batch: one more fsync, before any of its callbacks.
  EXPECT_EQ(calls, (std::vector<std::pair<int, uint64_t>>{{1, 2}, {2, 2}, {3, 2}}));
  EXPECT_EQ(fileLines().size(), 4u);
}

// 4 appending threads, 250 records each, the writer running freely.
TEST_F(JournalTest, GroupCommitUnderConcurrentAppends) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  constexpr int kThreads = 4, kPerThread = 250, kTotal = kThreads * kPerThread;
  std::atomic<int> durable{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Divergence d;
        d.time = nowRfc3339Ms();
        d.session_id = uint64_t(t);
        d.transaction_id = uint64_t(i);
        d.kind = std::string(divergence_kind::kSecondaryUnavailable);
        d.statement = "INSERT INTO t VALUES ($1)";
        d.parameters = {std::to_string(i)};
        d.authoritative_store = "old";
        d.secondary_store = "new";
        d.authoritative_outcome = "INSERT 0 1";
        d.secondary_outcome = "not sent: new store down";
        EXPECT_TRUE(journal->append(toJson(d), [&](bool ok) { durable += ok; }));
      }
    });
  }
  for (auto& t : threads) t.join();
  waitFor([&] { return durable.load() == kTotal; });
  const uint64_t fsyncs = journal->fsyncs();
  std::printf("[ group commit ] %d records, %llu fsyncs\n", kTotal,
              static_cast<unsigned long long>(fsyncs));
  EXPECT_EQ(journal->written(), uint64_t(kTotal));
  EXPECT_LT(fsyncs, uint64_t(kTotal));
  // Every record present once, valid JSON, and each thread's records in its own order.
  std::vector<int> next(kThreads, 0);
  const auto lines = fileLines();
  ASSERT_EQ(lines.size(), size_t(kTotal));
  for (const std::string& line : lines) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    ASSERT_FALSE(record.is_discarded()) << line;
    const int t = record["session_id"].get<int>();
    EXPECT_EQ(record["transaction_id"].get<int>(), next[t]++);
  }
  for (int n : next) EXPECT_EQ(n, kPerThread);
}

// The same load while the disk is "busy" (the writer held): everything queued meanwhile is
// written with a single fsync.
TEST_F(JournalTest, GroupCommitOneFsyncForEverythingQueuedMeanwhile) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  Gate gate;
  ASSERT_TRUE(journal->append({{"first", true}}, [&](bool) { gate.wait(); }));
  gate.waitUntilEntered();
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 250; ++i) EXPECT_TRUE(journal->append({{"t", t}, {"i", i}}));
    });
  }
  for (auto& t : threads) t.join();
  gate.release();
  waitFor([&] { return journal->written() == 1001; });
  std::printf("[ group commit ] 1001 records, %llu fsyncs (writer held)\n",
              static_cast<unsigned long long>(journal->fsyncs()));
  EXPECT_EQ(journal->fsyncs(), 2u);
  EXPECT_EQ(fileLines().size(), 1001u);
}

TEST_F(JournalTest, BoundedQueueRefusesAndCountsDrops) {
  auto journal = openJournal(/*max_records=*/4);
  ASSERT_TRUE(journal);
  Gate gate;
  std::atomic<int> callbacks{0};
  ASSERT_TRUE(journal->append({{"seq", 0}}, [&](bool) { gate.wait(); ++callbacks; }));
  gate.waitUntilEntered();
  // Record 0 still counts (it is being called back); three more fit, then the queue is full.
  for (int i = 1; i <= 3; ++i) {
    EXPECT_TRUE(journal->append({{"seq", i}}, [&](bool) { ++callbacks; }));
  }
  EXPECT_FALSE(journal->append({{"seq", 4}}, [&](bool) { ++callbacks; }));
  EXPECT_FALSE(journal->append({{"seq", 5}}));
  EXPECT_EQ(journal->dropped(), 2u);
  gate.release();
  waitFor([&] { return callbacks.load() == 4; });
  waitFor([&] { return journal->append({{"seq", 6}}); });  // room again once written
  waitFor([&] { return journal->written() == 5; });
  EXPECT_EQ(journal->dropped(), 2u);
  EXPECT_EQ(callbacks.load(), 4);  // refused records are never called back
  EXPECT_EQ(fileLines(), (std::vector<std::string>{"{\"seq\":0}", "{\"seq\":1}", "{\"seq\":2}",
                                                   "{\"seq\":3}", "{\"seq\":6}"}));
}

TEST_F(JournalTest, BoundedQueueCountsBytesToo) {
  auto journal = openJournal(/*max_records=*/100, /*max_bytes=*/64);
  ASSERT_TRUE(journal);
  EXPECT_FALSE(journal->append({{"statement", std::string(100, 'x')}}));
  EXPECT_EQ(journal->dropped(), 1u);
  EXPECT_TRUE(journal->append({{"statement", "short"}}));
}

TEST_F(JournalTest, TailReturnsTheLastRecordsOldestFirst) {
  {
    auto journal = openJournal();
    ASSERT_TRUE(journal);
    for (int i = 0; i < 6; ++i) ASSERT_TRUE(journal->append({{"seq", i}}));
  }
  auto journal = openJournal();  // tail reads the file, earlier runs included
  ASSERT_TRUE(journal);
  for (int i = 6; i < 10; ++i) ASSERT_TRUE(journal->append({{"seq", i}}));
  waitFor([&] { return journal->written() == 4; });
  auto seqs = [&](size_t limit) {
    std::vector<int> out;
    for (const auto& r : journal->tail(limit)) out.push_back(r["seq"].get<int>());
    return out;
  };
  EXPECT_EQ(seqs(3), (std::vector<int>{7, 8, 9}));
  EXPECT_EQ(seqs(1), (std::vector<int>{9}));
  EXPECT_EQ(seqs(0), (std::vector<int>{}));
  EXPECT_EQ(seqs(100), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST_F(JournalTest, TailAcrossReadChunksWithLargeRecords) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  const std::string big(100 * 1024, 'q');  // larger than tail's read chunk
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(journal->append({{"seq", i}, {"statement", big}}));
  waitFor([&] { return journal->written() == 5; });
  auto records = journal->tail(2);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["seq"], 3);
  EXPECT_EQ(records[1]["seq"], 4);
  EXPECT_EQ(records[1]["statement"], big);
  EXPECT_EQ(journal->tail(10).size(), 5u);
}

TEST_F(JournalTest, DestructorDrainsEverythingQueued) {
  std::atomic<int> durable{0};
  {
    auto journal = openJournal();
    ASSERT_TRUE(journal);
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(journal->append({{"seq", i}}, [&](bool ok) { durable += ok; }));
    }
  }
  EXPECT_EQ(durable.load(), 200);
  const auto lines = fileLines();
  ASSERT_EQ(lines.size(), 200u);
  EXPECT_EQ(lines.back(), "{\"seq\":199}");
}

TEST_F(JournalTest, ATornLastLineIsCutOffOnOpen) {
  std::filesystem::create_directories(dir_);
  std::ofstream(dir_ + "/divergences.jsonl") << "{\"seq\":0}\n{\"seq\":1}\n{\"se";
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  ASSERT_TRUE(journal->append({{"seq", 2}}));
  waitFor([&] { return journal->written() == 1; });
  EXPECT_EQ(fileLines(), (std::vector<std::string>{"{\"seq\":0}", "{\"seq\":1}", "{\"seq\":2}"}));
}

TEST_F(JournalTest, WriteErrorsAreReportedNotDurable) {
  // /dev/full fails every write with ENOSPC: the disk-full case.
  std::filesystem::create_directories(dir_);
  std::filesystem::create_symlink("/dev/full", dir_ + "/divergences.jsonl");
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  std::atomic<int> not_durable{0};
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(journal->append({{"seq", i}}, [&](bool ok) { not_durable += !ok; }));
  }
  waitFor([&] { return not_durable.load() == 3; });
  EXPECT_EQ(journal->failed(), 3u);
  EXPECT_EQ(journal->written(), 0u);
}

TEST_F(JournalTest, InvalidUtf8IsWrittenWithReplacementCharacters) {
  auto journal = openJournal();
  ASSERT_TRUE(journal);
  Divergence d;
  d.statement = "SELECT '\xff'";  // e.g. a LATIN1 client
  ASSERT_TRUE(journal->append(toJson(d)));
  waitFor([&] { return journal->written() == 1; });
  auto records = journal->tail(1);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["statement"], "SELECT '\xef\xbf\xbd'");
}

}  // namespace
}  // namespace cutover::compare
