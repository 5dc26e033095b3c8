#include "router/decide.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "router/statement_rules.h"

namespace cutover::router {
namespace {

using config::Sticky;
using config::TableFlags;
using config::WritesMode;
using K = StatementKind;

constexpr WritesMode kModes[] = {WritesMode::Old, WritesMode::Dual, WritesMode::DualNew, WritesMode::New};
constexpr StatementKind kKinds[] = {K::Read, K::Write, K::Ddl, K::Transaction, K::Session};

StatementInfo statementOf(StatementKind kind) {
  StatementInfo info;
  info.kind = kind;
  return info;
}

TEST(Decide, CatalogReadsStayOnTheAuthoritativeStore) {
  StatementInfo catalog = statementOf(K::Read);
  catalog.catalog = true;
  for (WritesMode writes : kModes) {
    FlagView flags;
    flags.writes = writes;
    flags.reads_new_percent = 100;
    flags.shadow_percent = 100;
    SessionView session;
    session.session_hash = 42;
    Route route = decide(catalog, "SELECT * FROM pg_class", flags, session);
    EXPECT_EQ(route.serve, authoritative(writes)) << config::toString(writes);
    EXPECT_FALSE(route.shadow) << config::toString(writes);
    EXPECT_FALSE(route.mirror) << config::toString(writes);
    // The same read of a user table is ramped and shadowed.
    if (writes == WritesMode::Dual) {
      Route user = decide(statementOf(K::Read), "SELECT * FROM items", flags, session);
      EXPECT_EQ(user.serve, Store::New);
      EXPECT_TRUE(user.shadow);
    }
  }
}

TEST(Decide, AStoreThatMissedASessionsWriteServesNoneOfItsReads) {
  FlagView flags;
  flags.writes = WritesMode::Dual;
  flags.reads_new_percent = 100;
  flags.shadow_percent = 100;
  SessionView session;
  session.session_hash = 7;
  session.missed_write_on_new = true;
  Route route = decide(statementOf(K::Read), "SELECT * FROM items", flags, session);
  EXPECT_EQ(route.serve, Store::Old);
  EXPECT_FALSE(route.shadow);
  EXPECT_FALSE(route.read_fallback);
  // Served by old anyway (ramp 0): not compared with new either.
  flags.reads_new_percent = 0;
  route = decide(statementOf(K::Read), "SELECT * FROM items", flags, session);
  EXPECT_EQ(route.serve, Store::Old);
  EXPECT_FALSE(route.shadow);
  // writes: dual-new, old missed a write: a read the ramp sends to old is served by new.
  flags.writes = WritesMode::DualNew;
  session.missed_write_on_new = false;
  session.missed_write_on_old = true;
  route = decide(statementOf(K::Read), "SELECT * FROM items", flags, session);
  EXPECT_EQ(route.serve, Store::New);
  EXPECT_FALSE(route.shadow);
  // The authoritative store serves whatever it missed being the secondary of (it never is).
  flags.writes = WritesMode::Dual;
  flags.reads_new_percent = 0;
  route = decide(statementOf(K::Read), "SELECT * FROM items", flags, session);
  EXPECT_EQ(route.serve, Store::Old);
}

TEST(Decide, AuthorityAndMirroringPerMode) {
  EXPECT_EQ(authoritative(WritesMode::Old), Store::Old);
  EXPECT_EQ(authoritative(WritesMode::Dual), Store::Old);
  EXPECT_EQ(authoritative(WritesMode::DualNew), Store::New);
  EXPECT_EQ(authoritative(WritesMode::New), Store::New);
  EXPECT_FALSE(mirrors(WritesMode::Old));
  EXPECT_TRUE(mirrors(WritesMode::Dual));
  EXPECT_TRUE(mirrors(WritesMode::DualNew));
  EXPECT_FALSE(mirrors(WritesMode::New));
  EXPECT_EQ(otherStore(Store::Old), Store::New);
  EXPECT_EQ(toString(Store::New), "new");
}

// Every writes mode × kind × in-transaction × mirror_pending × new availability × ramp 0/100.
TEST(Decide, Exhaustive) {
  int combinations = 0;
  for (WritesMode mode : kModes) {
    for (StatementKind kind : kKinds) {
      for (bool in_txn : {false, true}) {
        for (bool pending : {false, true}) {
          for (bool available : {false, true}) {
            for (int percent : {0, 100}) {
              FlagView flags{.writes = mode, .reads_new_percent = percent};
              SessionView session{.in_transaction = in_txn, .mirror_pending = pending,
                                  .new_store_available = available, .session_hash = 12345};
              if (in_txn) session.transaction_authority = authoritative(mode);
              Route route = decide(statementOf(kind), "SELECT 1", flags, session);
              ++combinations;

              Store authority = authoritative(mode);
              SCOPED_TRACE(std::string(config::toString(mode)) + " " + std::string(toString(kind)) +
                           " txn=" + std::to_string(in_txn) + " pending=" + std::to_string(pending) +
                           " available=" + std::to_string(available) + " percent=" +
                           std::to_string(percent) + " -> " + route.reason);
              EXPECT_NE(std::string(route.reason), "");
              if (kind == K::Session) {
                EXPECT_EQ(route.serve, authority);
                EXPECT_TRUE(route.both);
                EXPECT_FALSE(route.mirror);
                EXPECT_FALSE(route.read_fallback);
              } else if (kind != K::Read || in_txn) {
                EXPECT_EQ(route.serve, authority);
                EXPECT_EQ(route.mirror, mirrors(mode));
                EXPECT_FALSE(route.both);
                EXPECT_FALSE(route.read_fallback);
              } else if (pending || mode == WritesMode::New) {
                // Read-your-writes; or old is stale once it is no longer mirrored.
                EXPECT_EQ(route.serve, authority);
                EXPECT_FALSE(route.mirror);
                EXPECT_FALSE(route.read_fallback);
              } else if (percent == 0) {
                EXPECT_EQ(route.serve, Store::Old);
                EXPECT_FALSE(route.mirror);
                EXPECT_FALSE(route.read_fallback);
              } else if (available || authority == Store::New) {
                // A down authoritative new store is never replaced by old's answer.
                EXPECT_EQ(route.serve, Store::New);
                EXPECT_FALSE(route.read_fallback);
                EXPECT_FALSE(route.mirror);
              } else {
                EXPECT_EQ(route.serve, Store::Old);
                EXPECT_TRUE(route.read_fallback);
                EXPECT_FALSE(route.mirror);
              }
              if (kind != K::Session) {
                EXPECT_FALSE(route.both);
              }
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(combinations, 4 * 5 * 2 * 2 * 2 * 2);
}

TEST(Decide, CatalogReadsInsideTransactionsAreNotMirrored) {
  // psql's \d inside BEGIN names old's OIDs ("WHERE a.attrelid = '17558'"): run on new too it
  // answered "SELECT 0" there, a false tag_mismatch (PostgreSQL's regression suite: 88 lines).
  for (const char* sql : {"SELECT a.attname FROM pg_catalog.pg_attribute a WHERE a.attrelid = '17558'",
                          "SELECT pg_catalog.pg_get_partition_constraintdef('18428'::oid)",
                          "SELECT txid_current_if_assigned() IS NOT DISTINCT FROM BIGINT '1047'"}) {
    StatementInfo info = classifySql(sql);
    ASSERT_EQ(info.kind, K::Read) << sql;
    ASSERT_TRUE(info.catalog) << sql;
    for (WritesMode writes : {WritesMode::Dual, WritesMode::DualNew}) {
      SessionView session{.in_transaction = true, .transaction_authority = authoritative(writes)};
      Route route = decide(info, sql, FlagView{.writes = writes}, session);
      EXPECT_EQ(route.serve, authoritative(writes)) << sql;
      EXPECT_FALSE(route.mirror) << sql;
    }
  }
  // A read of the application's tables inside a transaction still runs on both stores.
  SessionView session{.in_transaction = true, .transaction_authority = Store::Old};
  EXPECT_TRUE(decide(classifySql("SELECT * FROM orders FOR UPDATE"), "x", FlagView{.writes = WritesMode::Dual}, session).mirror);
}

TEST(Decide, TransactionAuthorityWinsOverFlagsFlippedMidTransaction) {
  FlagView flags{.writes = WritesMode::New, .reads_new_percent = 100};
  SessionView session{.in_transaction = true, .transaction_authority = Store::Old};
  for (StatementKind kind : kKinds) {
    EXPECT_EQ(decide(statementOf(kind), "x", flags, session).serve, Store::Old);
  }
}

TEST(Decide, InTransactionWithoutRecordedAuthorityUsesTheGlobalAuthority) {
  FlagView flags{.writes = WritesMode::DualNew};
  SessionView session{.in_transaction = true};
  Route route = decide(statementOf(K::Read), "SELECT 1", flags, session);
  EXPECT_EQ(route.serve, Store::New);
  EXPECT_TRUE(route.mirror);
}

TEST(Decide, ParseErrorIsAnAuthoritativeMirroredWrite) {
  StatementInfo info = classifySql("SELEC 1");
  ASSERT_TRUE(info.parse_error);
  Route route = decide(info, "SELEC 1", FlagView{.writes = WritesMode::Dual, .reads_new_percent = 100}, {});
  EXPECT_EQ(route.serve, Store::Old);
  EXPECT_TRUE(route.mirror);
  EXPECT_STREQ(route.reason, "unparsable: authoritative answers with its error");
}

TEST(Decide, StableHashIsFnv1a64) {
  EXPECT_EQ(stableHash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(stableHash("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(stableHash("foobar"), 0x85944171f73967e8ull);
}

TEST(Decide, RampBucketIsInRangeAndPinned) {
  for (uint64_t h = 0; h < 1000; ++h) {
    int bucket = rampBucket(h * 0x9e3779b97f4a7c15ull);
    EXPECT_GE(bucket, 0);
    EXPECT_LT(bucket, 10000);
  }
  // Pinned so a change of hash or mixing (which would move sessions between stores) is noticed.
  EXPECT_EQ(rampBucket(0), 0);
  EXPECT_EQ(rampBucket(1), 6604);
  EXPECT_EQ(rampBucket(stableHash("session-1")), 3311);
}

int servedByNew(int percent, uint64_t (*hashOf)(int)) {
  FlagView flags{.writes = WritesMode::Dual, .reads_new_percent = percent, .sticky = Sticky::Session};
  int by_new = 0;
  for (int i = 0; i < 10000; ++i) {
    SessionView session{.session_hash = hashOf(i)};
    if (decide(statementOf(K::Read), "SELECT 1", flags, session).serve == Store::New) ++by_new;
  }
  return by_new;
}

TEST(Decide, RampDistributionOverSessionIdHashes) {
  auto hashed = [](int i) { return stableHash("session-" + std::to_string(i)); };
  int by_new = servedByNew(30, hashed);
  EXPECT_GE(by_new, 2850);
  EXPECT_LE(by_new, 3150);
  EXPECT_EQ(servedByNew(0, hashed), 0);
  EXPECT_EQ(servedByNew(100, hashed), 10000);
  int one = servedByNew(1, hashed);
  EXPECT_GE(one, 50);
  EXPECT_LE(one, 150);
}

TEST(Decide, RampDistributionOverRawCounters) {
  // A proxy that passes a session counter as the hash still gets an even split.
  int by_new = servedByNew(30, [](int i) { return static_cast<uint64_t>(i); });
  EXPECT_GE(by_new, 2850);
  EXPECT_LE(by_new, 3150);
}

TEST(Decide, RampIsMonotonicInPercent) {
  // Raising the percentage only moves sessions from old to new, never back.
  FlagView low{.writes = WritesMode::Dual, .reads_new_percent = 20};
  FlagView high{.writes = WritesMode::Dual, .reads_new_percent = 40};
  for (int i = 0; i < 2000; ++i) {
    SessionView session{.session_hash = stableHash("s" + std::to_string(i))};
    if (decide(statementOf(K::Read), "SELECT 1", low, session).serve == Store::New) {
      EXPECT_EQ(decide(statementOf(K::Read), "SELECT 1", high, session).serve, Store::New);
    }
  }
}

TEST(Decide, StickySessionKeepsASessionOnOneStore) {
  FlagView flags{.writes = WritesMode::Dual, .reads_new_percent = 50, .sticky = Sticky::Session};
  const char* texts[] = {"SELECT 1", "SELECT * FROM users", "SELECT now()", "VALUES (1)", "TABLE t"};
  int sessions_on_new = 0;
  for (int i = 0; i < 500; ++i) {
    SessionView session{.session_hash = stableHash("session-" + std::to_string(i))};
    Store first = decide(statementOf(K::Read), texts[0], flags, session).serve;
    for (const char* text : texts) EXPECT_EQ(decide(statementOf(K::Read), text, flags, session).serve, first);
    if (first == Store::New) ++sessions_on_new;
  }
  EXPECT_GT(sessions_on_new, 150);
  EXPECT_LT(sessions_on_new, 350);
}

TEST(Decide, StickyStatementKeysOnTheText) {
  FlagView flags{.writes = WritesMode::Dual, .reads_new_percent = 50, .sticky = Sticky::Statement};
  int texts_on_new = 0;
  for (int t = 0; t < 400; ++t) {
    std::string text = "SELECT * FROM t WHERE id = " + std::to_string(t);
    Store first = decide(statementOf(K::Read), text, flags, SessionView{.session_hash = 1}).serve;
    for (uint64_t s = 2; s < 10; ++s) {
      EXPECT_EQ(decide(statementOf(K::Read), text, flags, SessionView{.session_hash = s}).serve, first);
    }
    if (first == Store::New) ++texts_on_new;
  }
  EXPECT_GT(texts_on_new, 120);
  EXPECT_LT(texts_on_new, 280);
}

TEST(Decide, ShadowSamplesReadsOutsideTransactionsOnly) {
  FlagView flags{.writes = WritesMode::Dual, .reads_new_percent = 30, .shadow_percent = 10};
  int shadowed = 0, shadowed_on_new = 0;
  for (int i = 0; i < 4000; ++i) {
    SessionView session{.session_hash = stableHash("s" + std::to_string(i % 40))};
    std::string text = "SELECT * FROM t WHERE id = " + std::to_string(i);
    Route route = decide(statementOf(K::Read), text, flags, session);
    // Stable: the same session and text, the same answer.
    EXPECT_EQ(decide(statementOf(K::Read), text, flags, session).shadow, route.shadow);
    if (route.shadow) {
      ++shadowed;
      if (route.serve == Store::New) ++shadowed_on_new;
    }
    for (StatementKind kind : {K::Write, K::Ddl, K::Transaction, K::Session}) {
      EXPECT_FALSE(decide(statementOf(kind), text, flags, session).shadow);
    }
    SessionView in_txn = session;
    in_txn.in_transaction = true;
    EXPECT_FALSE(decide(statementOf(K::Read), text, flags, in_txn).shadow);
    SessionView pending = session;
    pending.mirror_pending = true;
    EXPECT_FALSE(decide(statementOf(K::Read), text, flags, pending).shadow);
  }
  EXPECT_GT(shadowed, 300);   // 10 % of 4000 = 400
  EXPECT_LT(shadowed, 500);
  EXPECT_GT(shadowed_on_new, 0);   // reads served by new are shadowed on old too
  flags.shadow_percent = 0;
  EXPECT_FALSE(decide(statementOf(K::Read), "SELECT 1", flags, SessionView{}).shadow);
  flags.shadow_percent = 100;
  EXPECT_TRUE(decide(statementOf(K::Read), "SELECT 1", flags, SessionView{}).shadow);
  // New down: the read falls back to old and is not shadowed.
  flags.reads_new_percent = 100;
  EXPECT_FALSE(decide(statementOf(K::Read), "SELECT 1", flags, SessionView{.new_store_available = false}).shadow);
}

TEST(Decide, PerTableShadowPercentTakesTheSmallest) {
  std::map<std::string, TableFlags> tables;
  tables["orders"].shadow_percent = 100;
  tables["audit"].shadow_percent = 0;
  FlagView flags{.writes = WritesMode::Dual, .shadow_percent = 0, .tables = &tables};
  EXPECT_TRUE(decide(classifySql("SELECT * FROM orders"), "a", flags, SessionView{}).shadow);
  EXPECT_FALSE(decide(classifySql("SELECT * FROM users"), "b", flags, SessionView{}).shadow);
  flags.shadow_percent = 100;
  EXPECT_FALSE(decide(classifySql("SELECT * FROM orders JOIN audit USING (id)"), "c", flags, SessionView{}).shadow);
}

TEST(Decide, PerTableReadPercentTakesTheSmallest) {
  std::map<std::string, TableFlags> tables;
  tables["orders"].reads_new_percent = 100;
  tables["public.audit"].reads_new_percent = 0;
  FlagView flags{.writes = WritesMode::Dual, .reads_new_percent = 0, .tables = &tables};
  SessionView session{.session_hash = 7};
  EXPECT_EQ(decide(classifySql("SELECT * FROM orders"), "", flags, session).serve, Store::New);
  EXPECT_EQ(decide(classifySql("SELECT * FROM public.orders"), "", flags, session).serve, Store::New);
  EXPECT_EQ(decide(classifySql("SELECT * FROM users"), "", flags, session).serve, Store::Old);
  // orders (100) joined with a table at the global 0 %: the smaller wins.
  EXPECT_EQ(decide(classifySql("SELECT * FROM orders JOIN users USING (id)"), "", flags, session).serve,
            Store::Old);
  // "audit" falls back to the "public.audit" key.
  flags.reads_new_percent = 100;
  EXPECT_EQ(decide(classifySql("SELECT * FROM audit"), "", flags, session).serve, Store::Old);
  EXPECT_EQ(decide(classifySql("SELECT * FROM orders JOIN audit USING (id)"), "", flags, session).serve,
            Store::Old);
  EXPECT_EQ(decide(classifySql("SELECT 1"), "", flags, session).serve, Store::New);
}

TEST(Decide, PerTableWritesHonouredWhenAllTablesAgree) {
  std::map<std::string, TableFlags> tables;
  tables["orders"].writes = WritesMode::New;
  tables["items"].writes = WritesMode::New;
  FlagView flags{.writes = WritesMode::Old, .tables = &tables};
  Route both_new = decide(classifySql("UPDATE orders SET a = 1 FROM items"), "", flags, {});
  EXPECT_EQ(both_new.serve, Store::New);
  EXPECT_FALSE(both_new.mirror);

  Route global = decide(classifySql("UPDATE users SET a = 1"), "", flags, {});
  EXPECT_EQ(global.serve, Store::Old);
  EXPECT_FALSE(global.mirror);
}

TEST(Decide, PerTableWritesDisagreeingFallBackToGlobalButStillReachEveryNeededStore) {
  std::map<std::string, TableFlags> tables;
  tables["orders"].writes = WritesMode::New;
  FlagView flags{.writes = WritesMode::Old, .tables = &tables};
  Route route = decide(classifySql("UPDATE users SET a = 1 FROM orders"), "", flags, {});
  EXPECT_EQ(route.serve, Store::Old);
  EXPECT_TRUE(route.mirror);  // orders lives on new: never silently left out
}

TEST(Decide, PerTableWritesInsideTransactions) {
  std::map<std::string, TableFlags> tables;
  tables["orders"].writes = WritesMode::Dual;
  FlagView flags{.writes = WritesMode::Old, .tables = &tables};
  // BEGIN is mirrored because some table may need the secondary within the transaction.
  Route begin = decide(classifySql("BEGIN"), "", flags, {});
  EXPECT_EQ(begin.serve, Store::Old);
  EXPECT_TRUE(begin.mirror);
  SessionView session{.in_transaction = true, .transaction_authority = Store::Old};
  EXPECT_TRUE(decide(classifySql("INSERT INTO orders VALUES (1)"), "", flags, session).mirror);
  EXPECT_FALSE(decide(classifySql("INSERT INTO users VALUES (1)"), "", flags, session).mirror);
  EXPECT_TRUE(decide(classifySql("COMMIT"), "", flags, session).mirror);
}

TEST(Decide, SessionStatementsRunOnEveryBackend) {
  for (WritesMode mode : kModes) {
    Route route = decide(classifySql("SET search_path = app"), "", FlagView{.writes = mode}, {});
    EXPECT_TRUE(route.both);
    EXPECT_EQ(route.serve, authoritative(mode));
  }
}

TEST(Decide, ReadRampAllowedBeforeDualWrite) {
  // writes: old with reads ramped: the operator's choice, honoured.
  FlagView flags{.writes = WritesMode::Old, .reads_new_percent = 100};
  EXPECT_EQ(decide(statementOf(K::Read), "SELECT 1", flags, {}).serve, Store::New);
  EXPECT_EQ(decide(statementOf(K::Write), "x", flags, {}).serve, Store::Old);
}

TEST(Decide, NeedsClassification) {
  EXPECT_FALSE(needsClassification(FlagView{}));
  EXPECT_TRUE(needsClassification(FlagView{.writes = WritesMode::Dual}));
  EXPECT_TRUE(needsClassification(FlagView{.reads_new_percent = 1}));
  EXPECT_TRUE(needsClassification(FlagView{.shadow_percent = 1}));
  std::map<std::string, TableFlags> tables;
  tables["t"].shadow_percent = 0;
  EXPECT_FALSE(needsClassification(FlagView{.tables = &tables}));
  tables["t"].reads_new_percent = 5;
  EXPECT_TRUE(needsClassification(FlagView{.tables = &tables}));
}

}  // namespace
}  // namespace cutover::router
