#include <gtest/gtest.h>

#include <string>

#include "router/write_shape.h"

namespace cutover::router {
namespace {

TEST(WriteShape, TargetColumnsAndClauses) {
  auto shape = writeShape("INSERT INTO app.orders AS o (id, note) VALUES (1, 'a'), (DEFAULT, 'b') RETURNING id");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->schema, "app");
  EXPECT_EQ(shape->table, "orders");
  EXPECT_EQ(shape->refname, "o");
  EXPECT_EQ(shape->columns, (std::vector<std::string>{"id", "note"}));
  EXPECT_TRUE(shape->uses_default);
  EXPECT_TRUE(shape->has_returning);
  EXPECT_EQ(shape->on_conflict, OnConflict::None);

  shape = writeShape("insert into \"T\" select * from src on conflict (id) do update set n = excluded.n");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->schema, "");
  EXPECT_EQ(shape->table, "T");
  EXPECT_EQ(shape->refname, "T");
  EXPECT_TRUE(shape->columns.empty());
  EXPECT_FALSE(shape->uses_default);
  EXPECT_FALSE(shape->has_returning);
  EXPECT_EQ(shape->on_conflict, OnConflict::Update);

  shape = writeShape("INSERT INTO t DEFAULT VALUES ON CONFLICT DO NOTHING");
  ASSERT_TRUE(shape.has_value());
  EXPECT_TRUE(shape->uses_default);
  EXPECT_EQ(shape->on_conflict, OnConflict::Nothing);
}

TEST(WriteShape, NotOneInsert) {
  EXPECT_FALSE(writeShape("SELECT 1").has_value());
  EXPECT_FALSE(writeShape("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)").has_value());
  EXPECT_FALSE(writeShape("WITH d AS (DELETE FROM s RETURNING *) INSERT INTO t SELECT * FROM d").has_value());
  EXPECT_FALSE(writeShape("INSERT INTO t WITH d AS (DELETE FROM s RETURNING *) SELECT * FROM d").has_value());
  EXPECT_FALSE(writeShape("INSERT INTO t (p.x) VALUES (1)").has_value());
  EXPECT_FALSE(writeShape("INSERT INTO db.s.t VALUES (1)").has_value());
  EXPECT_FALSE(writeShape("INSERT INTO").has_value());
}

TEST(CteWriteShapes, EveryDataModifyingPart) {
  CteWrites w = cteWriteShapes("WITH a AS (INSERT INTO s.t (x) VALUES (1) RETURNING id), "
                               "b AS (UPDATE u SET y = 2 RETURNING *), c AS (SELECT 1) "
                               "DELETE FROM v WHERE id IN (SELECT id FROM a)");
  ASSERT_TRUE(w.complete);
  ASSERT_EQ(w.shapes.size(), 3u);
  EXPECT_EQ(w.shapes[0].kind, WriteKind::Delete);
  EXPECT_EQ(w.shapes[0].table, "v");
  EXPECT_EQ(w.shapes[1].kind, WriteKind::Insert);
  EXPECT_EQ(w.shapes[1].schema, "s");
  EXPECT_EQ(w.shapes[1].columns, std::vector<std::string>{"x"});
  EXPECT_EQ(w.shapes[2].kind, WriteKind::Update);
  // INSERT … WITH d AS (DELETE …) SELECT: both.
  w = cteWriteShapes("INSERT INTO t WITH d AS (DELETE FROM s RETURNING *) SELECT * FROM d");
  ASSERT_EQ(w.shapes.size(), 2u);
  EXPECT_EQ(w.shapes[0].table, "t");
  EXPECT_EQ(w.shapes[1].table, "s");
  // A read's WITH, a statement without WITH: nothing.
  EXPECT_TRUE(cteWriteShapes("WITH c AS (SELECT 1) SELECT * FROM c").shapes.empty());
  EXPECT_TRUE(cteWriteShapes("INSERT INTO t VALUES (1)").shapes.empty());
  // A write in a form not looked into.
  EXPECT_FALSE(cteWriteShapes("WITH d AS (DELETE FROM db.s.t RETURNING *) SELECT * FROM d").complete);
}

TEST(WithImageReturning, AppendsTheMarkerAndTheRowAfterTheClientsOwn) {
  const char* sql = "INSERT INTO app.orders AS o (note) VALUES ('it''s') RETURNING id * 2 AS twice";
  auto shape = writeShape(sql);
  ASSERT_TRUE(shape.has_value());
  auto rewritten = withImageReturning(sql, *shape);
  ASSERT_TRUE(rewritten.isOk()) << rewritten.status().message();
  EXPECT_EQ(*rewritten,
            "INSERT INTO app.orders AS o (note) VALUES ('it''s') RETURNING id * 2 AS twice, NULL AS \"cutover:images\", o.*");

  const char* plain = "insert into t select g from generate_series(1, 3) g";
  shape = writeShape(plain);
  ASSERT_TRUE(shape.has_value());
  rewritten = withImageReturning(plain, *shape);
  ASSERT_TRUE(rewritten.isOk());
  EXPECT_EQ(*rewritten, "INSERT INTO t SELECT g FROM generate_series(1, 3) g RETURNING NULL AS \"cutover:images\", t.*");
}

TEST(WithImageReturning, RefusesWhatIsNotOneInsertOrUpdate) {
  WriteShape shape;
  EXPECT_FALSE(withImageReturning("DELETE FROM t", shape).isOk());
}

}  // namespace
}  // namespace cutover::router

namespace cutover::router {
namespace {

TEST(WriteShape, Update) {
  auto shape = writeShape("UPDATE app.orders o SET touched = clock_timestamp(), n = n + 1 FROM x WHERE o.id = x.id");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->kind, WriteKind::Update);
  EXPECT_EQ(shape->schema, "app");
  EXPECT_EQ(shape->refname, "o");
  EXPECT_EQ(shape->columns, (std::vector<std::string>{"touched", "n"}));
  EXPECT_FALSE(shape->has_returning);
  EXPECT_FALSE(writeShape("WITH d AS (DELETE FROM s RETURNING *) UPDATE t SET a = 1").has_value());
  EXPECT_FALSE(writeShape("UPDATE t SET a = 1 WHERE CURRENT OF c").has_value());
  auto rewritten = withImageReturning("UPDATE t SET a = random() WHERE b RETURNING a", *writeShape("UPDATE t SET a = random() WHERE b RETURNING a"));
  ASSERT_TRUE(rewritten.isOk());
  EXPECT_EQ(*rewritten, "UPDATE t SET a = random() WHERE b RETURNING a, NULL AS \"cutover:images\", t.*");
}

}  // namespace
}  // namespace cutover::router
