#include "router/unit_plan.h"

#include <gtest/gtest.h>

#include "router/statement_rules.h"

namespace cutover::router {
namespace {

using config::MirrorMode;

// A dual-write session with both stores up, old authoritative, and a statement decide() routed.
struct Case {
  StatementInfo info;
  UnitFacts facts;

  explicit Case(std::string_view sql, Route route = {.serve = Store::Old, .mirror = true}) : info(classifySql(sql)) {
    facts.route = route;
    facts.info = &info;
    facts.all_wrappable = info.wrappable;
    facts.old_lane.up = facts.new_lane.up = true;
  }
  UnitPlan plan() const { return planUnit(facts); }
};

TEST(UnitPlan, AutocommitRowWriteIsWrappedAndMirrored) {
  for (const char* sql : {"INSERT INTO t VALUES (1)", "UPDATE t SET a = 1", "DELETE FROM t", "TRUNCATE t",
                          "COPY t FROM STDIN", "SELECT * FROM t FOR UPDATE", "NOTIFY ch",
                          "EXPLAIN ANALYZE INSERT INTO t VALUES (1)",
                          "MERGE INTO t USING s ON t.a = s.a WHEN MATCHED THEN DELETE",
                          "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d"}) {
    SCOPED_TRACE(sql);
    Case c(sql);
    UnitPlan plan = c.plan();
    EXPECT_TRUE(plan.mirrored);
    EXPECT_TRUE(plan.wrapped);
    EXPECT_EQ(plan.serve, Store::Old);
    EXPECT_FALSE(plan.secondary_unavailable);
  }
}

// PostgreSQL refuses these outside a transaction block (LOCK, DECLARE: 25P01), inside one
// (VACUUM and kin: 25001), or a COMMIT inside them fails in one (CALL, DO): never wrapped.
TEST(UnitPlan, StatementsThatBehaveOtherwiseInsideABlockAreNotWrapped) {
  for (const char* sql : {"LOCK TABLE t", "LOCK t IN SHARE MODE", "DECLARE c CURSOR FOR SELECT * FROM t FOR UPDATE",
                          "VACUUM t", "ANALYZE t", "CLUSTER t", "REINDEX TABLE t", "CHECKPOINT",
                          "REFRESH MATERIALIZED VIEW m", "CALL p()", "DO $$BEGIN COMMIT; END$$",
                          "CREATE INDEX CONCURRENTLY i ON t (a)", "CREATE TABLE x (a int)",
                          "INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", "EXECUTE unknown_name",
                          "this is not sql"}) {
    SCOPED_TRACE(sql);
    Case c(sql);
    UnitPlan plan = c.plan();
    EXPECT_TRUE(plan.mirrored);
    EXPECT_FALSE(plan.wrapped);
  }
}

TEST(UnitPlan, ExecuteOfAPreparedWriteIsWrappedLikeItsQuery) {
  StatementInfo prepare = classifySql("PREPARE p AS INSERT INTO t VALUES ($1)");
  EXPECT_FALSE(prepare.wrappable);
  EXPECT_TRUE(prepare.prepared_wrappable);
  StatementInfo lock = classifySql("PREPARE q AS SELECT pg_sleep(1)");
  EXPECT_FALSE(lock.prepared_wrappable);
}

TEST(UnitPlan, NotWrappedInsideATransactionOrOpenBatchOrMixedBatch) {
  Case in_txn("INSERT INTO t VALUES (1)");
  in_txn.facts.in_transaction = true;
  EXPECT_FALSE(in_txn.plan().wrapped);
  EXPECT_TRUE(in_txn.plan().mirrored);

  Case open("INSERT INTO t VALUES (1)");
  open.facts.open = true;
  EXPECT_FALSE(open.plan().wrapped);

  Case mixed("INSERT INTO t VALUES (1)");   // an extended batch with an INSERT and a LOCK
  mixed.facts.all_wrappable = false;
  EXPECT_FALSE(mixed.plan().wrapped);

  Case call("INSERT INTO t VALUES (1)");
  call.facts.function_call = true;
  EXPECT_FALSE(call.plan().wrapped);
}

TEST(UnitPlan, SecondaryDownMissesAMirroredWriteUnlessSyncWaitsForItsReconnection) {
  Case down("INSERT INTO t VALUES (1)");
  down.facts.new_lane.up = false;
  UnitPlan plan = down.plan();
  EXPECT_FALSE(plan.mirrored);
  EXPECT_TRUE(plan.secondary_unavailable);
  EXPECT_FALSE(plan.wrapped);

  down.facts.new_lane.reconnecting = true;
  plan = down.plan();
  EXPECT_TRUE(plan.mirrored);
  EXPECT_FALSE(plan.secondary_unavailable);

  down.facts.mirror = MirrorMode::Async;   // async never waits for the reconnection
  plan = down.plan();
  EXPECT_FALSE(plan.mirrored);
  EXPECT_TRUE(plan.secondary_unavailable);
}

TEST(UnitPlan, ATransactionBegunWithoutTheSecondaryStaysWithoutIt) {
  Case later("INSERT INTO t VALUES (2)");   // the secondary is up again (its login ended)
  later.facts.in_transaction = true;
  later.facts.transaction_unmirrored = true;
  later.facts.mirror = MirrorMode::Async;
  UnitPlan plan = later.plan();
  EXPECT_FALSE(plan.mirrored);
  EXPECT_TRUE(plan.secondary_unavailable);
  later.facts.mirror = MirrorMode::Sync;
  EXPECT_FALSE(later.plan().mirrored);
  later.facts.in_transaction = false;   // the next transaction is mirrored again
  EXPECT_TRUE(later.plan().mirrored);
}

TEST(UnitPlan, SessionStateOnBothStoresIsNotJournaledWhenTheSecondaryIsDown) {
  Case set("SET search_path = app", Route{.serve = Store::Old, .both = true});
  set.facts.new_lane.up = false;
  UnitPlan plan = set.plan();
  EXPECT_FALSE(plan.mirrored);
  EXPECT_FALSE(plan.secondary_unavailable);
}

TEST(UnitPlan, NamedStatementRunsOnBothStoresAnsweredByTheAuthority) {
  Case read("SELECT 1", Route{.serve = Store::New});   // a ramped read that Parses a named statement
  read.facts.names_statement = true;
  UnitPlan plan = read.plan();
  EXPECT_TRUE(plan.both);
  EXPECT_TRUE(plan.mirrored);
  EXPECT_EQ(plan.serve, Store::Old);
  EXPECT_FALSE(plan.wrapped);
  EXPECT_FALSE(plan.shadow);
}

TEST(UnitPlan, DownOrFencedRampStoreFallsBackToTheAuthority) {
  Case ramped("SELECT 1", Route{.serve = Store::New, .shadow = true});
  EXPECT_EQ(ramped.plan().serve, Store::New);
  EXPECT_TRUE(ramped.plan().shadow);
  ramped.facts.new_lane.fenced = true;
  EXPECT_EQ(ramped.plan().serve, Store::Old);
  ramped.facts.new_lane.fenced = false;
  ramped.facts.new_lane.up = false;
  EXPECT_EQ(ramped.plan().serve, Store::Old);

  Case authority("INSERT INTO t VALUES (1)", Route{.serve = Store::New, .mirror = true});
  authority.facts.authority = Store::New;
  authority.facts.new_lane.fenced = true;   // fenced matters only for a store that is not authoritative
  EXPECT_EQ(authority.plan().serve, Store::New);
}

TEST(UnitPlan, ExplicitCommitUnderSyncReachesTheSecondaryFirst) {
  Case commit("COMMIT");
  commit.facts.in_transaction = true;
  EXPECT_TRUE(commit.plan().secondary_first);
  EXPECT_FALSE(commit.plan().wrapped);
  commit.facts.mirror = MirrorMode::Async;
  EXPECT_TRUE(commit.plan().async);
  EXPECT_FALSE(commit.plan().secondary_first);
  Case autocommit("COMMIT");   // outside a transaction: only a warning on each store
  EXPECT_FALSE(autocommit.plan().secondary_first);
}

TEST(UnitPlan, TemporaryObjectsMadeUnmirroredStayOnTheServeStore) {
  Case temp("CREATE TEMP TABLE x (a int)");
  EXPECT_FALSE(temp.plan().temporary_on_serve_only);
  temp.facts.new_lane.up = false;
  EXPECT_TRUE(temp.plan().temporary_on_serve_only);
}

TEST(UnitPlan, ShadowOnlyForReadsOutsideTransactions) {
  Case read("SELECT 1", Route{.serve = Store::Old, .shadow = true});
  EXPECT_TRUE(read.plan().shadow);
  read.facts.in_transaction = true;
  EXPECT_FALSE(read.plan().shadow);
  Case write("INSERT INTO t VALUES (1)", Route{.serve = Store::Old, .shadow = true});
  write.facts.new_lane.up = false;   // unmirrored now, but a write is never shadowed
  EXPECT_FALSE(write.plan().shadow);
}

}  // namespace
}  // namespace cutover::router
