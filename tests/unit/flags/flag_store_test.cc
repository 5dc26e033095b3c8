#include "flags/flag_store.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "flags/state_file.h"

namespace cutover::flags {
namespace {

using config::MirrorMode;
using config::WritesMode;

class FlagStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = ::testing::TempDir() + "flags_test_XXXXXX";
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
    config_.state_file = dir_ + "/cutover-flags.json";
    config_.writes = WritesMode::Dual;
    config_.reads_new_percent = 5;
  }
  void TearDown() override {
    ::chmod(dir_.c_str(), 0700);
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<FlagStore> openStore() {
    auto store = FlagStore::open(config_);
    EXPECT_TRUE(store) << store.status().message();
    return store ? std::move(*store) : nullptr;
  }

  void writeStateFile(const std::string& text) {
    std::ofstream(config_.state_file) << text;
  }

  std::string readStateFileText() {
    std::ifstream in(config_.state_file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::vector<std::string> filesInDir() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
      names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
  }

  std::string dir_;
  config::FlagsConfig config_;
};

TEST_F(FlagStoreTest, WithoutAStateFileTheConfigFlagsApply) {
  auto store = openStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->stateFile(), config_.state_file);
  auto flags = store->current();
  EXPECT_EQ(flags->version, 1u);
  EXPECT_EQ(flags->writes, WritesMode::Dual);
  EXPECT_EQ(flags->reads_new_percent, 5);
  EXPECT_EQ(flags->changed_by, "config");
  // Opening writes nothing: the state file appears with the first publish.
  EXPECT_TRUE(filesInDir().empty());
}

TEST_F(FlagStoreTest, StateFileWinsOverTheConfig) {
  writeStateFile(R"({"version": 12, "writes": "dual-new", "mirror": "async",
                     "reads_new_percent": 40, "shadow_percent": 3, "sticky": "statement",
                     "tables": {"orders": {"reads_new_percent": 60}},
                     "changed_at": "2026-11-21T07:50:01.123Z", "changed_by": "admin 10.0.0.1",
                     "reason": "ramp"})");
  auto store = openStore();
  ASSERT_TRUE(store);
  auto flags = store->current();
  EXPECT_EQ(flags->version, 12u);
  EXPECT_EQ(flags->writes, WritesMode::DualNew);
  EXPECT_EQ(flags->mirror, MirrorMode::Async);
  EXPECT_EQ(flags->reads_new_percent, 40);
  EXPECT_EQ(flags->shadow_percent, 3);
  EXPECT_EQ(flags->sticky, config::Sticky::Statement);
  EXPECT_EQ(flags->tables.at("orders").reads_new_percent, 60);
  EXPECT_EQ(flags->changed_by, "admin 10.0.0.1");
  EXPECT_EQ(flags->reason, "ramp");
}

TEST_F(FlagStoreTest, StateFileWithoutChangedByIsAttributedToTheStateFile) {
  writeStateFile(R"({"version": 3, "writes": "old", "mirror": "sync", "reads_new_percent": 0,
                     "shadow_percent": 0, "sticky": "session"})");
  auto store = openStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(store->current()->changed_by, "state-file");
}

TEST_F(FlagStoreTest, CorruptStateFileIsAnErrorNamingTheFile) {
  const std::string prefix = "flags state file " + config_.state_file + " is unusable: ";
  const std::string suffix =
      " (repair it, or remove it to start again from the config's flags)";
  auto errorFor = [&](const std::string& text) {
    writeStateFile(text);
    auto store = FlagStore::open(config_);
    return store ? std::string("<opened>") : store.status().message();
  };
  EXPECT_EQ(errorFor("{\"version\": 3, \"writes\": "),
            prefix +
                "not valid JSON ([json.exception.parse_error.101] parse error at line 1, column "
                "26: syntax error while parsing value - unexpected end of input; expected '[', "
                "'{', or a literal)" +
                suffix);
  EXPECT_EQ(errorFor(""), prefix +
                              "not valid JSON ([json.exception.parse_error.101] parse error at "
                              "line 1, column 1: syntax error while parsing value - unexpected "
                              "end of input; expected '[', '{', or a literal)" +
                              suffix);
  EXPECT_EQ(errorFor(R"({"version": 3, "writes": "sideways", "mirror": "sync",
                         "reads_new_percent": 0, "shadow_percent": 0, "sticky": "session"})"),
            prefix +
                "invalid flags: writes: \"sideways\" is not one of old, dual, dual-new, new" +
                suffix);
  EXPECT_EQ(errorFor(R"({"version": 3, "writes": "old"})"),
            prefix +
                "invalid flags: mirror: missing; reads_new_percent: missing; shadow_percent: "
                "missing; sticky: missing" +
                suffix);
  EXPECT_EQ(errorFor(R"({"version": 3, "writes": "old", "mirror": "strict",
                         "reads_new_percent": 0, "shadow_percent": 0, "sticky": "session"})"),
            prefix +
                "invalid flags: mirror: \"strict\" is refused: two-phase commit is not "
                "available yet (use sync or async)" +
                suffix);
}

TEST_F(FlagStoreTest, PublishPersistsAtomicallyThenPublishes) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot next = *store->current();
  next.reads_new_percent = 25;
  auto published = store->publish(next, "admin 127.0.0.1", "ramp to 25%");
  ASSERT_TRUE(published) << published.status().message();
  EXPECT_EQ((*published)->version, 2u);
  EXPECT_EQ((*published)->changed_by, "admin 127.0.0.1");
  EXPECT_EQ((*published)->reason, "ramp to 25%");
  EXPECT_EQ(store->current(), *published);

  // The file holds exactly the published snapshot; no temp file is left.
  auto onDisk = fromJson(nlohmann::json::parse(readStateFileText()));
  ASSERT_TRUE(onDisk) << onDisk.status().message();
  EXPECT_EQ(toJson(*onDisk), toJson(**published));
  EXPECT_EQ(filesInDir(), std::vector<std::string>{"cutover-flags.json"});
  struct stat st;
  ASSERT_EQ(::stat(config_.state_file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u);

  // A restart sees it.
  store.reset();
  auto reopened = openStore();
  ASSERT_TRUE(reopened);
  EXPECT_EQ(toJson(*reopened->current()), toJson(**published));
}

TEST_F(FlagStoreTest, PublishRefusesInvalidFlags) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot next = *store->current();
  next.mirror = MirrorMode::Strict;
  next.shadow_percent = 101;
  auto published = store->publish(next, "admin", "");
  ASSERT_FALSE(published);
  EXPECT_EQ(published.status().message(),
            "invalid flags: mirror: \"strict\" is refused: two-phase commit is not available yet "
            "(use sync or async); shadow_percent: 101 is out of range (0-100)");
  EXPECT_EQ(store->current()->version, 1u);
  EXPECT_TRUE(filesInDir().empty());
}

TEST_F(FlagStoreTest, PublishAcceptsEveryNonStrictValue) {
  // The build's pass-through check lives in config/; the store itself takes every flag value.
  auto store = openStore();
  ASSERT_TRUE(store);
  for (WritesMode writes :
       {WritesMode::Old, WritesMode::Dual, WritesMode::DualNew, WritesMode::New}) {
    FlagSnapshot next = *store->current();
    next.writes = writes;
    next.mirror = MirrorMode::Async;
    next.reads_new_percent = 100;
    next.shadow_percent = 100;
    next.tables["t"].writes = writes;
    auto published = store->publish(next, "test", "");
    ASSERT_TRUE(published) << published.status().message();
    EXPECT_EQ((*published)->writes, writes);
  }
  EXPECT_EQ(store->current()->version, 5u);
}

TEST_F(FlagStoreTest, FailedPersistPublishesNothing) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot first = *store->current();
  first.reads_new_percent = 10;
  ASSERT_TRUE(store->publish(first, "admin", "to 10"));
  const std::string before = readStateFileText();

  ASSERT_EQ(::chmod(dir_.c_str(), 0500), 0);
  FlagSnapshot next = *store->current();
  next.reads_new_percent = 90;
  // root ignores directory permissions; a thread with an unprivileged filesystem uid does not
  // (fsuid is per thread, and leaving uid 0 drops CAP_DAC_OVERRIDE for that thread).
  Result<FlagSnapshotPtr> result = Status::error("not run");
  std::thread([&] {
    if (::geteuid() == 0) ::setfsuid(65534);
    result = store->publish(next, "admin", "to 90");
  }).join();
  ASSERT_FALSE(result);
  // mkostemp leaves random letters in place of XXXXXX even when it fails.
  const std::string message = result.status().message();
  const std::string head = "flags v3 not published: cannot create a temp file " +
                           config_.state_file + ".tmp-";
  const std::string tail = ": Permission denied (errno 13)";
  EXPECT_EQ(message.size(), head.size() + 6 + tail.size()) << message;
  EXPECT_EQ(message.rfind(head, 0), 0u) << message;
  EXPECT_TRUE(message.ends_with(tail)) << message;
  EXPECT_EQ(store->current()->version, 2u);
  EXPECT_EQ(store->current()->reads_new_percent, 10);
  EXPECT_EQ(readStateFileText(), before);
  EXPECT_EQ(filesInDir(), std::vector<std::string>{"cutover-flags.json"});

  // Once the directory is writable again the next publish gets the next version.
  ASSERT_EQ(::chmod(dir_.c_str(), 0700), 0);
  auto retried = store->publish(next, "admin", "to 90");
  ASSERT_TRUE(retried) << retried.status().message();
  EXPECT_EQ((*retried)->version, 3u);
}

TEST_F(FlagStoreTest, OpenRemovesTempFilesACrashLeft) {
  std::ofstream(config_.state_file + ".tmp-abc123") << "{\"half";
  std::ofstream(dir_ + "/unrelated.tmp-abc123") << "keep";
  auto store = openStore();
  ASSERT_TRUE(store);
  EXPECT_EQ(filesInDir(), std::vector<std::string>{"unrelated.tmp-abc123"});
}

TEST_F(FlagStoreTest, RollbackFromDualNew) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot ramped = *store->current();
  ramped.writes = WritesMode::DualNew;
  ramped.reads_new_percent = 50;
  ramped.shadow_percent = 10;
  ramped.tables["orders"] = config::TableFlags{80, 20, WritesMode::DualNew};
  ramped.tables["users"] = config::TableFlags{std::nullopt, 5, std::nullopt};
  ASSERT_TRUE(store->publish(ramped, "admin", "ramp"));

  auto rolled = store->rollback("admin 127.0.0.1", "incident 42", false);
  ASSERT_TRUE(rolled) << rolled.status().message();
  const FlagSnapshot& r = **rolled;
  EXPECT_EQ(r.version, 3u);
  EXPECT_EQ(r.writes, WritesMode::Dual);
  EXPECT_EQ(r.reads_new_percent, 0);
  EXPECT_EQ(r.shadow_percent, 10);  // shadows never answer clients: left as is
  EXPECT_EQ(r.tables.at("orders").reads_new_percent, 0);
  EXPECT_EQ(r.tables.at("orders").shadow_percent, 20);
  EXPECT_EQ(r.tables.at("orders").writes, WritesMode::Dual);
  EXPECT_FALSE(r.tables.at("users").reads_new_percent);  // inherits the global 0
  EXPECT_EQ(r.changed_by, "admin 127.0.0.1");
  EXPECT_EQ(r.reason, "incident 42");
  EXPECT_EQ(store->current(), *rolled);
}

TEST_F(FlagStoreTest, RollbackKeepsOldAndDual) {
  auto store = openStore();  // dual, 5%
  ASSERT_TRUE(store);
  auto rolled = store->rollback("auto-rollback", "mismatch rate 0.02 > 0.001", false);
  ASSERT_TRUE(rolled) << rolled.status().message();
  EXPECT_EQ((*rolled)->writes, WritesMode::Dual);
  EXPECT_EQ((*rolled)->reads_new_percent, 0);

  FlagSnapshot old = *store->current();
  old.writes = WritesMode::Old;
  ASSERT_TRUE(store->publish(old, "admin", ""));
  auto again = store->rollback("admin", "", false);
  ASSERT_TRUE(again) << again.status().message();
  EXPECT_EQ((*again)->writes, WritesMode::Old);
  EXPECT_EQ((*again)->version, 4u);
}

TEST_F(FlagStoreTest, RollbackFromNewIsThePointOfNoReturnUnlessForced) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot cut = *store->current();
  cut.writes = WritesMode::New;
  cut.reads_new_percent = 100;
  ASSERT_TRUE(store->publish(cut, "admin", "cut over"));

  auto refused = store->rollback("admin", "oops", false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().message(),
            "rollback refused (writes = new): the old store has missed every write since "
            "authority left it (point of no return); force the rollback to make old "
            "authoritative again anyway (writes: dual)");
  EXPECT_EQ(store->current()->version, 2u);
  EXPECT_EQ(store->current()->reads_new_percent, 100);

  auto forced = store->rollback("admin", "forced", true);
  ASSERT_TRUE(forced) << forced.status().message();
  EXPECT_EQ((*forced)->writes, WritesMode::Dual);
  EXPECT_EQ((*forced)->reads_new_percent, 0);
  EXPECT_EQ((*forced)->version, 3u);
}

TEST_F(FlagStoreTest, RollbackWithATableOnNewIsRefusedToo) {
  auto store = openStore();
  ASSERT_TRUE(store);
  FlagSnapshot cut = *store->current();
  cut.tables["orders"].writes = WritesMode::New;
  cut.tables["users"].writes = WritesMode::New;
  ASSERT_TRUE(store->publish(cut, "admin", ""));
  auto refused = store->rollback("admin", "", false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().message().rfind(
                "rollback refused (tables.orders.writes, tables.users.writes = new): ", 0),
            0u)
      << refused.status().message();
  auto forced = store->rollback("admin", "", true);
  ASSERT_TRUE(forced);
  EXPECT_EQ((*forced)->tables.at("orders").writes, WritesMode::Dual);
}

TEST_F(FlagStoreTest, ConcurrentReadersNeverSeeATornSnapshot) {
  auto store = openStore();
  ASSERT_TRUE(store);
  constexpr int kPublishes = 1000;
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0};
  std::vector<std::thread> readers;
  std::vector<std::string> failures(4);
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&, r] {
      uint64_t last = 0;
      while (!done.load()) {
        std::this_thread::yield();  // 4 spinning readers on few cores would starve the writer
        FlagSnapshotPtr s = store->current();
        const uint64_t v = s->version;
        // Every field is a function of the version, so a mix of two snapshots shows.
        if (v < last || (v > 1 && (s->reads_new_percent != int(v % 101) ||
                                   s->shadow_percent != int((v * 7) % 101) ||
                                   s->changed_by != "writer " + std::to_string(v) ||
                                   s->tables.at("t").reads_new_percent != int(v % 101)))) {
          failures[r] = "inconsistent snapshot at version " + std::to_string(v);
          return;
        }
        last = v;
        reads.fetch_add(1);
      }
    });
  }
  for (int i = 0; i < kPublishes; ++i) {
    FlagSnapshot next = *store->current();
    const uint64_t v = next.version + 1;
    next.reads_new_percent = int(v % 101);
    next.shadow_percent = int((v * 7) % 101);
    next.tables["t"].reads_new_percent = int(v % 101);
    auto published = store->publish(next, "writer " + std::to_string(v), "");
    ASSERT_TRUE(published) << published.status().message();
    ASSERT_EQ((*published)->version, v);
  }
  done = true;
  for (auto& t : readers) t.join();
  for (const auto& f : failures) EXPECT_EQ(f, "");
  EXPECT_EQ(store->current()->version, uint64_t(kPublishes + 1));
  EXPECT_GT(reads.load(), 0u);
  auto onDisk = fromJson(nlohmann::json::parse(readStateFileText()));
  ASSERT_TRUE(onDisk);
  EXPECT_EQ(onDisk->version, uint64_t(kPublishes + 1));
}

}  // namespace
}  // namespace cutover::flags
