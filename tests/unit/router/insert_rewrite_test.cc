#include <gtest/gtest.h>

#include <string>

#include "router/insert_rewrite.h"

namespace cutover::router {
namespace {

TEST(InsertShape, TargetColumnsAndClauses) {
  auto shape = insertShape("INSERT INTO app.orders AS o (id, note) VALUES (1, 'a'), (DEFAULT, 'b') RETURNING id");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->schema, "app");
  EXPECT_EQ(shape->table, "orders");
  EXPECT_EQ(shape->refname, "o");
  EXPECT_EQ(shape->columns, (std::vector<std::string>{"id", "note"}));
  EXPECT_TRUE(shape->uses_default);
  EXPECT_TRUE(shape->has_returning);
  EXPECT_EQ(shape->on_conflict, OnConflict::None);

  shape = insertShape("insert into \"T\" select * from src on conflict (id) do update set n = excluded.n");
  ASSERT_TRUE(shape.has_value());
  EXPECT_EQ(shape->schema, "");
  EXPECT_EQ(shape->table, "T");
  EXPECT_EQ(shape->refname, "T");
  EXPECT_TRUE(shape->columns.empty());
  EXPECT_FALSE(shape->uses_default);
  EXPECT_FALSE(shape->has_returning);
  EXPECT_EQ(shape->on_conflict, OnConflict::Update);

  shape = insertShape("INSERT INTO t DEFAULT VALUES ON CONFLICT DO NOTHING");
  ASSERT_TRUE(shape.has_value());
  EXPECT_TRUE(shape->uses_default);
  EXPECT_EQ(shape->on_conflict, OnConflict::Nothing);
}

TEST(InsertShape, NotOneInsert) {
  EXPECT_FALSE(insertShape("SELECT 1").has_value());
  EXPECT_FALSE(insertShape("INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)").has_value());
  EXPECT_FALSE(insertShape("WITH d AS (DELETE FROM s RETURNING *) INSERT INTO t SELECT * FROM d").has_value());
  EXPECT_FALSE(insertShape("INSERT INTO t WITH d AS (DELETE FROM s RETURNING *) SELECT * FROM d").has_value());
  EXPECT_FALSE(insertShape("INSERT INTO t (p.x) VALUES (1)").has_value());
  EXPECT_FALSE(insertShape("INSERT INTO db.s.t VALUES (1)").has_value());
  EXPECT_FALSE(insertShape("INSERT INTO").has_value());
}

TEST(WithImageReturning, AppendsTheMarkerAndTheRowAfterTheClientsOwn) {
  const char* sql = "INSERT INTO app.orders AS o (note) VALUES ('it''s') RETURNING id * 2 AS twice";
  auto shape = insertShape(sql);
  ASSERT_TRUE(shape.has_value());
  auto rewritten = withImageReturning(sql, *shape);
  ASSERT_TRUE(rewritten.isOk()) << rewritten.status().message();
  EXPECT_EQ(*rewritten,
            "INSERT INTO app.orders AS o (note) VALUES ('it''s') RETURNING id * 2 AS twice, NULL AS \"cutover:images\", o.*");

  const char* plain = "insert into t select g from generate_series(1, 3) g";
  shape = insertShape(plain);
  ASSERT_TRUE(shape.has_value());
  rewritten = withImageReturning(plain, *shape);
  ASSERT_TRUE(rewritten.isOk());
  EXPECT_EQ(*rewritten, "INSERT INTO t SELECT g FROM generate_series(1, 3) g RETURNING NULL AS \"cutover:images\", t.*");
}

TEST(WithImageReturning, RefusesWhatIsNotOneInsert) {
  InsertShape shape;
  EXPECT_FALSE(withImageReturning("UPDATE t SET a = 1", shape).isOk());
}

}  // namespace
}  // namespace cutover::router
