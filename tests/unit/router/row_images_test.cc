#include <gtest/gtest.h>

#include <string>

#include "router/row_images.h"

namespace cutover::router {
namespace {

using Rows = std::vector<Row>;

// nspname, relname, relkind, attname, attidentity, attgenerated, default, key, trigger, type,
// other trigger, relpersistence
Row column(const char* name, const char* identity, const char* generated, std::optional<std::string> def,
           bool key, bool trigger = false, const char* kind = "r", bool after_trigger = false) {
  const bool text = std::string_view(name) == "state" || std::string_view(name) == "note";
  return {"app", "orders", kind, name, identity, generated, def, key ? "t" : "f", trigger ? "t" : "f",
          text ? "text" : "integer", after_trigger ? "t" : "f", "p"};
}

bool constant(std::string_view expr) { return expr == "0" || expr == "'new'::text"; }

TableFacts orders(bool trigger = false) {
  return tableFactsFrom({column("id", "", "", "nextval('orders_id_seq'::regclass)", true, trigger),
                         column("n", "a", "", std::nullopt, false, trigger),
                         column("state", "", "", "'new'::text", false, trigger),
                         column("qty", "", "", "0", false, trigger),
                         column("twice", "", "s", "(qty * 2)", false, trigger),
                         column("note", "", "", std::nullopt, false, trigger)},
                        constant);
}

WriteShape shapeOf(const char* sql) {
  auto shape = writeShape(sql);
  EXPECT_TRUE(shape.has_value()) << sql;
  return shape.value_or(WriteShape{});
}

TEST(TableFacts, ATemporaryTableIsAppliedInTheOtherConnectionsOwnTemporarySchema) {
  Row id = column("id", "", "", "nextval('t_id_seq'::regclass)", true);
  Row note = column("note", "", "", std::nullopt, false);
  id[0] = note[0] = "pg_temp_3";   // this connection's; the other store's connection has another
  id[11] = note[11] = "t";
  TableFacts facts = tableFactsFrom({id, note}, constant);
  ASSERT_TRUE(facts.found);
  EXPECT_EQ(facts.schema, "pg_temp");
  const std::string sql = imageApplyStatement(facts, {"id", "note"}, shapeOf("INSERT INTO orders (note) VALUES ('x')"),
                                              {Row{"1", "x"}});
  EXPECT_TRUE(sql.starts_with(R"(INSERT INTO "pg_temp"."orders" )")) << sql;
}

TEST(PlanImages, OverridingUserValueAndSetToDefaultLeaveTheIdentityToTheStore) {
  // PostgreSQL's identity regression test: both were mirrored as their text, in silence, and
  // each store took the next value of its own sequence (new's is behind: images write keys).
  Row a = column("a", "d", "", std::nullopt, false);
  Row b = column("b", "", "", std::nullopt, false);
  a[1] = "itest1";
  b[1] = "itest1";
  TableFacts facts = tableFactsFrom({column("id", "", "", std::nullopt, true), a, b}, constant);
  ImagePlan given = planImages(shapeOf("INSERT INTO itest1 (id, a, b) VALUES (1, 30, 'xyz')"), facts, false);
  EXPECT_FALSE(given.images);
  ImagePlan overriding =
      planImages(shapeOf("INSERT INTO itest1 (id, a, b) OVERRIDING USER VALUE VALUES (1, 30, 'xyz')"), facts, false);
  EXPECT_TRUE(overriding.images);
  EXPECT_EQ(overriding.why, "a: identity");
  ImagePlan set_default = planImages(shapeOf("UPDATE itest1 SET a = DEFAULT WHERE id = 2"), facts, false);
  EXPECT_TRUE(set_default.images);
  EXPECT_EQ(set_default.why, "a = DEFAULT: identity");
  EXPECT_FALSE(planImages(shapeOf("UPDATE itest1 SET b = DEFAULT WHERE id = 2"), facts, false).images);
  // Applied by key, the BY DEFAULT identity column is set to the authoritative store's value.
  const std::string apply = imageApplyStatement(facts, {"id", "a", "b"}, shapeOf("UPDATE itest1 SET a = DEFAULT WHERE id = 2"),
                                                {Row{"2", "3", "y"}});
  EXPECT_NE(apply.find(R"("a" = "cutover:v"."a")"), std::string::npos) << apply;
  // GENERATED ALWAYS: the secondary cannot be given the value; said, not silent.
  a[4] = "a";
  TableFacts always = tableFactsFrom({column("id", "", "", std::nullopt, true), a, b}, constant);
  ImagePlan refused = planImages(shapeOf("UPDATE itest1 SET a = DEFAULT WHERE id = 2"), always, false);
  EXPECT_FALSE(refused.images);
  EXPECT_NE(refused.inexact.find("GENERATED ALWAYS"), std::string::npos) << refused.inexact;
}

TEST(TableFacts, FromCatalogRows) {
  TableFacts facts = orders();
  ASSERT_TRUE(facts.found);
  EXPECT_EQ(facts.schema, "app");
  ASSERT_EQ(facts.columns.size(), 6u);
  EXPECT_TRUE(facts.columns[0].store_picked);   // nextval
  EXPECT_TRUE(facts.columns[0].key);
  EXPECT_TRUE(facts.columns[1].store_picked);   // identity
  EXPECT_FALSE(facts.columns[2].store_picked);  // a constant
  EXPECT_FALSE(facts.columns[4].store_picked);  // generated: each store computes it
  EXPECT_TRUE(facts.columns[4].generated);
  EXPECT_FALSE(facts.before_row_trigger);
  EXPECT_FALSE(tableFactsFrom({column("a", "", "", std::nullopt, false, false, "v")}, constant).found);
  EXPECT_FALSE(tableFactsFrom({}, constant).found);
}

TEST(PlanInsertImages, WhatTheStorePicks) {
  // Every store-picked column given, no DEFAULT, deterministic text: the statement is enough.
  ImagePlan plan = planImages(shapeOf("INSERT INTO app.orders (id, n, note) VALUES (1, 2, 'x')"), orders(), false);
  EXPECT_FALSE(plan.images);
  EXPECT_TRUE(plan.inexact.empty());
  // Omitted serial.
  plan = planImages(shapeOf("INSERT INTO app.orders (n, note) VALUES (2, 'x')"), orders(), false);
  EXPECT_TRUE(plan.images);
  EXPECT_EQ(plan.why, "id: nextval('orders_id_seq'::regclass)");
  EXPECT_TRUE(writtenByImages(orders(), "id"));
  EXPECT_FALSE(writtenByImages(orders(), "twice"));
  EXPECT_TRUE(writtenByImages(orders(), "added_since"));
  // DEFAULT in VALUES.
  plan = planImages(shapeOf("INSERT INTO app.orders (id, n, note) VALUES (1, DEFAULT, 'x')"), orders(), false);
  EXPECT_TRUE(plan.images);
  // now() in the text.
  plan = planImages(shapeOf("INSERT INTO app.orders (id, n, note) VALUES (1, 2, now()::text)"), orders(), true);
  EXPECT_TRUE(plan.images);
  // A BEFORE ROW trigger.
  plan = planImages(shapeOf("INSERT INTO app.orders (id, n, note) VALUES (1, 2, 'x')"), orders(true), false);
  EXPECT_TRUE(plan.images);
  EXPECT_EQ(plan.why, "a BEFORE ROW trigger may set values");
}

TEST(PlanInsertImages, TriggersWritingElsewhereAreNeverSilent) {
  TableFacts audited = tableFactsFrom({column("id", "", "", "nextval('s'::regclass)", true, false, "r", true),
                                       column("note", "", "", std::nullopt, false, false, "r", true)},
                                      constant);
  EXPECT_TRUE(audited.other_write_trigger);
  // Exact for the table itself (given key, deterministic): mirrored as its text, and said so.
  ImagePlan plan = planImages(shapeOf("INSERT INTO orders (id, note) VALUES (1, 'x')"), audited, false);
  EXPECT_FALSE(plan.images);
  EXPECT_NE(plan.side_effects.find("AFTER or per-statement triggers"), std::string::npos) << plan.side_effects;
  // Imaged for its own rows, and still said so.
  plan = planImages(shapeOf("INSERT INTO orders (note) VALUES ('x')"), audited, false);
  EXPECT_TRUE(plan.images);
  EXPECT_FALSE(plan.side_effects.empty());
  EXPECT_TRUE(planImages(shapeOf("INSERT INTO orders (note) VALUES ('x')"), orders(), false).side_effects.empty());
}

TEST(PlanInsertImages, InexactWithoutAKeyOrATable) {
  TableFacts keyless = tableFactsFrom({column("id", "", "", "nextval('s'::regclass)", false)}, constant);
  ImagePlan plan = planImages(shapeOf("INSERT INTO orders (note) VALUES ('x') ON CONFLICT (note) DO UPDATE SET "
                                            "note = 'y'"),
                                    keyless, false);
  EXPECT_FALSE(plan.images);
  EXPECT_NE(plan.inexact.find("without a primary key"), std::string::npos);
  // A plain INSERT needs no key: the rows are inserted as they are.
  EXPECT_TRUE(planImages(shapeOf("INSERT INTO orders (note) VALUES ('x')"), keyless, false).images);
  plan = planImages(shapeOf("INSERT INTO v VALUES (now())"), TableFacts{}, true);
  EXPECT_FALSE(plan.images);
  EXPECT_FALSE(plan.inexact.empty());
  EXPECT_TRUE(planImages(shapeOf("INSERT INTO v VALUES (1)"), TableFacts{}, false).inexact.empty());
}

TEST(ImageApplyStatement, InsertUpsertAndNothing) {
  TableFacts facts = orders();
  WriteShape shape = shapeOf("INSERT INTO app.orders (note) VALUES ('it''s'), (NULL)");
  const std::vector<std::string> plan{"id", "n", "state", "qty", "note"};
  std::vector<Row> rows{{"1", "10", "new", "0", "it's"}, {"2", "11", "new", "0", std::nullopt}};
  EXPECT_EQ(imageApplyStatement(facts, plan, shape, rows),
            "INSERT INTO \"app\".\"orders\" (\"id\", \"n\", \"state\", \"qty\", \"note\") OVERRIDING SYSTEM VALUE "
            "VALUES ('1', '10', 'new', '0', 'it''s'), ('2', '11', 'new', '0', NULL) "
            "RETURNING \"id\", \"n\", \"state\", \"qty\", \"note\"");
  EXPECT_EQ(imageApplyStatement(facts, plan, shape, {}),
            "INSERT INTO \"app\".\"orders\" (\"id\", \"n\", \"state\", \"qty\", \"note\") OVERRIDING SYSTEM VALUE "
            "SELECT \"id\", \"n\", \"state\", \"qty\", \"note\" FROM \"app\".\"orders\" WHERE false "
            "RETURNING \"id\", \"n\", \"state\", \"qty\", \"note\"");
  WriteShape upsert = shapeOf("INSERT INTO app.orders (note) VALUES ('x') ON CONFLICT (id) DO UPDATE SET note = 'y'");
  std::string sql = imageApplyStatement(facts, plan, upsert, {rows[0]});
  // The identity column n is not updated (GENERATED ALWAYS refuses it).
  EXPECT_NE(sql.find(" ON CONFLICT (\"id\") DO UPDATE SET \"state\" = EXCLUDED.\"state\", "
                     "\"qty\" = EXCLUDED.\"qty\", \"note\" = EXCLUDED.\"note\" RETURNING"),
            std::string::npos)
      << sql;
  WriteShape nothing = shapeOf("INSERT INTO app.orders (note) VALUES ('x') ON CONFLICT DO NOTHING");
  sql = imageApplyStatement(facts, plan, nothing, {rows[0]});
  EXPECT_NE(sql.find("') ON CONFLICT DO NOTHING RETURNING"), std::string::npos) << sql;
  sql = imageApplyStatement(orders(true), plan, shape, {rows[0]});
  EXPECT_TRUE(sql.starts_with("SET LOCAL session_replication_role = replica; INSERT INTO")) << sql;
  EXPECT_TRUE(sql.ends_with("; SET LOCAL session_replication_role TO DEFAULT")) << sql;
}

TEST(PlanInsertImages, WithoutAColumnListTheRowsSupplyTheLeadingColumns) {
  EXPECT_FALSE(planImages(shapeOf("INSERT INTO app.orders VALUES (1, 2)"), orders(), false).images);
  EXPECT_FALSE(planImages(shapeOf("INSERT INTO app.orders SELECT a, b FROM x"), orders(), false).images);
  ImagePlan plan = planImages(shapeOf("INSERT INTO app.orders VALUES (1)"), orders(), false);
  EXPECT_TRUE(plan.images);
  EXPECT_EQ(plan.why, "n: identity");
  EXPECT_TRUE(planImages(shapeOf("INSERT INTO app.orders SELECT * FROM x"), orders(), false).images);
  EXPECT_TRUE(planImages(shapeOf("INSERT INTO app.orders DEFAULT VALUES"), orders(), false).images);
}

TEST(PlanImages, CopyFromIsNeverImagedButSaidSo) {
  ImagePlan plan = planImages(shapeOf("COPY app.orders (n, note) FROM STDIN"), orders(), false);
  EXPECT_FALSE(plan.images);
  EXPECT_EQ(plan.inexact, "COPY FROM leaves id: nextval('orders_id_seq'::regclass) to each store (not imaged)");
  plan = planImages(shapeOf("COPY app.orders (id, n, note) FROM STDIN"), orders(), false);
  EXPECT_TRUE(plan.inexact.empty());
  EXPECT_FALSE(writeShape("COPY app.orders TO STDOUT").has_value());
}

TEST(PlanImages, Update) {
  // Deterministic text, no trigger: the statement is enough.
  EXPECT_FALSE(planImages(shapeOf("UPDATE app.orders SET qty = qty + 1"), orders(), false).images);
  ImagePlan plan = planImages(shapeOf("UPDATE app.orders SET note = now()::text WHERE random() < 0.5"), orders(), true);
  EXPECT_TRUE(plan.images);
  EXPECT_TRUE(planImages(shapeOf("UPDATE app.orders SET qty = 1"), orders(true), false).images);
  plan = planImages(shapeOf("UPDATE app.orders SET id = id + 1, note = now()::text"), orders(), true);
  EXPECT_FALSE(plan.images);
  EXPECT_NE(plan.inexact.find("changes the primary key"), std::string::npos);
  TableFacts keyless = tableFactsFrom({column("note", "", "", std::nullopt, false)}, constant);
  plan = planImages(shapeOf("UPDATE app.orders SET note = now()::text"), keyless, true);
  EXPECT_FALSE(plan.images);
  EXPECT_NE(plan.inexact.find("without a primary key"), std::string::npos);
}

TEST(PlanImages, DeleteIsNeverImagedButItsTriggersAndClockAreSaid) {
  EXPECT_EQ(shapeOf("DELETE FROM app.orders o WHERE o.id = 1 RETURNING o.id").kind, WriteKind::Delete);
  EXPECT_TRUE(shapeOf("DELETE FROM app.orders RETURNING id").has_returning);
  EXPECT_FALSE(writeShape("WITH d AS (DELETE FROM s RETURNING *) DELETE FROM t").has_value());
  EXPECT_FALSE(writeShape("DELETE FROM t WHERE CURRENT OF c").has_value());
  ImagePlan plan = planImages(shapeOf("DELETE FROM app.orders WHERE id = 1"), orders(), false);
  EXPECT_FALSE(plan.images);
  EXPECT_TRUE(plan.inexact.empty());
  EXPECT_TRUE(plan.side_effects.empty());
  plan = planImages(shapeOf("DELETE FROM app.orders WHERE note < now()::text"), orders(), true);
  EXPECT_NE(plan.inexact.find("a DELETE whose text calls a function"), std::string::npos);
  plan = planImages(shapeOf("DELETE FROM app.orders WHERE id = 1"), orders(true), false);   // BEFORE ROW
  EXPECT_NE(plan.inexact.find("BEFORE ROW DELETE trigger"), std::string::npos);
  TableFacts audited = orders();
  audited.other_write_trigger = true;
  EXPECT_NE(planImages(shapeOf("DELETE FROM app.orders WHERE id = 1"), audited, false).side_effects, "");
  // The facts query asks for the statement's own trigger events.
  EXPECT_NE(tableFactsQuery(shapeOf("DELETE FROM app.orders")).find("g.tgtype & 8 <> 0"), std::string::npos);
  EXPECT_NE(tableFactsQuery(shapeOf("UPDATE app.orders SET qty = 1")).find("g.tgtype & 20 <> 0"), std::string::npos);
}

TEST(ImageApplyStatement, UpdateByKey) {
  WriteShape shape = shapeOf("UPDATE app.orders SET note = now()::text");
  const std::vector<std::string> names{"id", "n", "state", "note"};
  EXPECT_EQ(imageApplyStatement(orders(), names, shape, {{"1", "10", "new", "x"}, {"2", "11", std::nullopt, "y"}}),
            "UPDATE \"app\".\"orders\" AS \"cutover:t\" SET \"state\" = \"cutover:v\".\"state\", "
            "\"note\" = \"cutover:v\".\"note\" FROM (VALUES ('1'::integer, '10'::integer, 'new'::text, 'x'::text), "
            "('2'::integer, '11'::integer, NULL::text, 'y'::text)) AS \"cutover:v\" (\"id\", \"n\", \"state\", \"note\") "
            "WHERE \"cutover:t\".\"id\" = \"cutover:v\".\"id\" RETURNING \"cutover:t\".\"id\", \"cutover:t\".\"n\", "
            "\"cutover:t\".\"state\", \"cutover:t\".\"note\"");
  EXPECT_EQ(imageApplyStatement(orders(), names, shape, {}),
            "UPDATE \"app\".\"orders\" AS \"cutover:t\" SET \"state\" = \"cutover:t\".\"state\", "
            "\"note\" = \"cutover:t\".\"note\" WHERE false RETURNING \"cutover:t\".\"id\", \"cutover:t\".\"n\", "
            "\"cutover:t\".\"state\", \"cutover:t\".\"note\"");
}

}  // namespace
}  // namespace cutover::router
