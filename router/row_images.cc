#include "router/row_images.h"

#include <algorithm>

#include "pgclient/quote.h"

namespace cutover::router {
namespace {

bool flag(const std::optional<std::string>& value) { return value && *value == "t"; }

std::string joined(const std::vector<std::string>& columns, std::string_view prefix = {}) {
  std::string out;
  for (const std::string& c : columns) {
    if (!out.empty()) out += ", ";
    out += prefix;
    out += pgclient::quoteIdentifier(c);
  }
  return out;
}

}  // namespace

std::string tableFactsQuery(const WriteShape& shape) {
  const std::string name = pgclient::quoteLiteral(pgclient::quoteQualified(shape.schema, shape.table));
  // A row per column; triggers: tgtype bit 1 ROW, 2 BEFORE, 4 INSERT, 8 DELETE, 16 UPDATE (the
  // first EXISTS: BEFORE ROW ones, the last: any other — AFTER, or per statement — but a
  // CONSTRAINT TRIGGER, taken for the check it is made for); of the statement's own events.
  const std::string events = shape.kind == WriteKind::Delete ? "8" : "20";
  return "SELECT n.nspname, c.relname, c.relkind, a.attname, a.attidentity, a.attgenerated, "
         "pg_catalog.pg_get_expr(d.adbin, d.adrelid), "
         "coalesce(a.attnum = ANY ((SELECT i.indkey FROM pg_catalog.pg_index i "
         "WHERE i.indrelid = c.oid AND i.indisprimary)::int2[]), false), "
         "EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal "
         "AND g.tgenabled <> 'D' AND g.tgtype & 3 = 3 AND g.tgtype & " + events + " <> 0), "
         "pg_catalog.format_type(a.atttypid, a.atttypmod), "
         "EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal "
         "AND g.tgenabled <> 'D' AND g.tgtype & 3 <> 3 AND g.tgtype & " + events + " <> 0 AND g.tgconstraint = 0), "
         "c.relpersistence "
         "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
         "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
         "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum "
         "WHERE c.oid = pg_catalog.to_regclass(" + name + ") ORDER BY a.attnum";
}

TableFacts tableFactsFrom(const std::vector<Row>& rows, const std::function<bool(std::string_view)>& constant) {
  TableFacts facts;
  for (const Row& row : rows) {
    if (row.size() < 11 || !row[0] || !row[1] || !row[2] || !row[3]) return TableFacts{};
    if (*row[2] != "r" && *row[2] != "p") return TableFacts{};   // a view, a foreign table: not ours to image
    facts.found = true;
    // A temporary table lives in this connection's own pg_temp_N: the other store's connection
    // has another N, and names its own temporary schema pg_temp.
    facts.schema = row.size() > 11 && row[11] == "t" ? "pg_temp" : *row[0];
    facts.name = *row[1];
    ColumnFacts column;
    column.name = *row[3];
    column.identity = row[4] && !row[4]->empty();
    column.identity_always = row[4] && *row[4] == "a";
    column.generated = row[5] && !row[5]->empty();
    column.default_expr = row[6].value_or("");
    column.key = flag(row[7]);
    column.type = row[9].value_or("");
    column.store_picked = column.identity || (!column.generated && !column.default_expr.empty() &&
                                              !constant(column.default_expr));
    facts.before_row_trigger = flag(row[8]);
    facts.other_write_trigger = flag(row[10]);
    facts.columns.push_back(std::move(column));
  }
  return facts;
}

namespace {

// planImages for the table's own rows only (side_effects never set).
ImagePlan planRowImages(const WriteShape& shape, const TableFacts& facts, bool text_nondeterministic) {
  ImagePlan plan;
  if (!facts.found) {
    if (text_nondeterministic) plan.inexact = "its target is not a table cutover knows (a view, a foreign table)";
    return plan;
  }
  const bool keyed = std::any_of(facts.columns.begin(), facts.columns.end(), [](const ColumnFacts& c) { return c.key; });
  if (shape.kind == WriteKind::Delete) {
    // Not imaged: a DELETE is mirrored as its text; which rows it removes is each store's doing
    // when its text is nondeterministic, and a BEFORE ROW DELETE trigger may keep rows or write
    // elsewhere on each store alike or not.
    if (text_nondeterministic) {
      plan.inexact = "a DELETE whose text calls a function each store evaluates itself (it may remove other rows "
                     "there); not imaged";
    } else if (facts.before_row_trigger) {
      plan.inexact = "a BEFORE ROW DELETE trigger runs on each store (it may keep rows, or write elsewhere what each "
                     "store picks); not imaged";
    }
    return plan;
  }
  if (shape.kind == WriteKind::Update) {
    const auto defaulted = std::find_if(facts.columns.begin(), facts.columns.end(), [&](const ColumnFacts& c) {
      return c.store_picked &&
             std::find(shape.defaulted.begin(), shape.defaulted.end(), c.name) != shape.defaulted.end();
    });
    if (text_nondeterministic) {
      plan.why = "the statement calls a function each store evaluates itself";
    } else if (defaulted != facts.columns.end()) {
      plan.why = defaulted->name + " = DEFAULT: " + (defaulted->identity ? std::string("identity") : defaulted->default_expr);
      if (defaulted->identity_always) {
        plan.inexact = "an UPDATE setting a GENERATED ALWAYS identity column to DEFAULT (" + plan.why +
                       "): the secondary can only take DEFAULT there, its own sequence's value";
        return plan;
      }
    } else if (facts.before_row_trigger) {
      plan.why = "a BEFORE ROW trigger may set values";
    } else {
      return plan;
    }
    const bool sets_key = std::any_of(facts.columns.begin(), facts.columns.end(), [&](const ColumnFacts& c) {
      return c.key && std::find(shape.columns.begin(), shape.columns.end(), c.name) != shape.columns.end();
    });
    if (!keyed) {
      plan.inexact = "an UPDATE of a table without a primary key cannot be applied by key (" + plan.why + ")";
    } else if (sets_key) {
      plan.inexact = "the UPDATE changes the primary key, so its rows cannot be found by key (" + plan.why + ")";
    } else {
      plan.images = true;
    }
    return plan;
  }
  // Omitted columns, or all of them when DEFAULT appears in the VALUES (it may stand anywhere).
  for (size_t i = 0; i < facts.columns.size(); ++i) {
    const ColumnFacts& c = facts.columns[i];
    if (!c.store_picked) continue;
    const bool listed = shape.columns.empty()
                            ? shape.width >= 0 && i < static_cast<size_t>(shape.width)
                            : std::find(shape.columns.begin(), shape.columns.end(), c.name) != shape.columns.end();
    // OVERRIDING USER VALUE: an identity column takes its sequence's value, whatever was given.
    if (!listed || shape.uses_default || (c.identity && shape.overriding_user_value)) {
      plan.why = c.name + ": " + (c.identity ? std::string("identity") : c.default_expr);
      break;
    }
  }
  if (shape.kind == WriteKind::CopyFrom) {
    // Not imaged: COPY's data is mirrored as it is, the values the store fills in are its own.
    if (plan.why.empty() && facts.before_row_trigger) plan.why = "a BEFORE ROW trigger may set values";
    if (!plan.why.empty()) plan.inexact = "COPY FROM leaves " + plan.why + " to each store (not imaged)";
    return plan;
  }
  if (plan.why.empty() && text_nondeterministic) plan.why = "the statement calls a function each store evaluates itself";
  if (plan.why.empty() && facts.before_row_trigger) plan.why = "a BEFORE ROW trigger may set values";
  if (plan.why.empty()) return plan;
  if (shape.on_conflict == OnConflict::Update && !keyed) {
    plan.inexact = "INSERT … ON CONFLICT DO UPDATE into a table without a primary key (" + plan.why + ")";
    return plan;
  }
  plan.images = true;
  return plan;
}

}  // namespace

ImagePlan planImages(const WriteShape& shape, const TableFacts& facts, bool text_nondeterministic) {
  ImagePlan plan = planRowImages(shape, facts, text_nondeterministic);
  if (facts.other_write_trigger && plan.inexact.empty()) {
    plan.side_effects = plan.images && facts.before_row_trigger
                            ? "the table's AFTER or per-statement triggers do not run on the secondary (the row "
                              "images are applied with session_replication_role = replica): what they write elsewhere "
                              "is on the authoritative store only"
                            : "the table has AFTER or per-statement triggers: what they write into other tables is "
                              "each store's own doing, not imaged";
  }
  return plan;
}

bool writtenByImages(const TableFacts& facts, std::string_view name) {
  auto it = std::find_if(facts.columns.begin(), facts.columns.end(), [&](const ColumnFacts& c) { return c.name == name; });
  return it == facts.columns.end() || !it->generated;
}

namespace {

const ColumnFacts* columnOf(const TableFacts& facts, const std::string& name) {
  auto it = std::find_if(facts.columns.begin(), facts.columns.end(), [&](const ColumnFacts& c) { return c.name == name; });
  return it == facts.columns.end() ? nullptr : &*it;
}

std::string updateApply(const TableFacts& facts, const std::vector<std::string>& names, const std::vector<Row>& rows) {
  const std::string table = pgclient::quoteQualified(facts.schema, facts.name);
  const std::string t = pgclient::quoteIdentifier("cutover:t");
  const std::string v = pgclient::quoteIdentifier("cutover:v");
  std::vector<std::string> keys, sets;
  for (const std::string& name : names) {
    const ColumnFacts* c = columnOf(facts, name);
    if (c != nullptr && c->key) {
      keys.push_back(name);
    } else if (c == nullptr || !c->identity_always) {   // ALWAYS refuses any value but DEFAULT
      sets.push_back(name);
    }
  }
  if (sets.empty()) sets = keys;   // every column is the key: set it to itself, the row is still returned
  std::string sql = "UPDATE " + table + " AS " + t + " SET ";
  for (size_t i = 0; i < sets.size(); ++i) {
    if (i > 0) sql += ", ";
    const std::string c = pgclient::quoteIdentifier(sets[i]);
    sql += c + " = " + (rows.empty() ? t : v) + "." + c;
  }
  if (rows.empty()) {
    sql += " WHERE false";   // nothing to write; the same tag ("UPDATE 0") keeps the outcomes comparable
  } else {
    sql += " FROM (VALUES ";
    for (size_t r = 0; r < rows.size(); ++r) {
      if (r > 0) sql += ", ";
      sql += '(';
      for (size_t i = 0; i < rows[r].size() && i < names.size(); ++i) {
        if (i > 0) sql += ", ";
        sql += rows[r][i] ? pgclient::quoteLiteral(*rows[r][i]) : std::string("NULL");
        const ColumnFacts* c = columnOf(facts, names[i]);
        if (c != nullptr && !c->type.empty()) sql += "::" + c->type;
      }
      sql += ')';
    }
    sql += ") AS " + v + " (" + joined(names) + ") WHERE ";
    for (size_t i = 0; i < keys.size(); ++i) {
      if (i > 0) sql += " AND ";
      const std::string k = pgclient::quoteIdentifier(keys[i]);
      sql += t + "." + k + " = " + v + "." + k;
    }
  }
  sql += " RETURNING " + joined(names, t + ".");
  return sql;
}

}  // namespace

std::string imageApplyStatement(const TableFacts& facts, const std::vector<std::string>& names,
                                const WriteShape& shape, const std::vector<Row>& rows) {
  if (shape.kind == WriteKind::Update) {
    std::string sql = updateApply(facts, names, rows);
    if (facts.before_row_trigger) {
      sql = "SET LOCAL session_replication_role = replica; " + sql + "; SET LOCAL session_replication_role TO DEFAULT";
    }
    return sql;
  }
  const std::string table = pgclient::quoteQualified(facts.schema, facts.name);
  const std::string columns = joined(names);
  std::string sql = "INSERT INTO " + table + " (" + columns + ") OVERRIDING SYSTEM VALUE ";
  if (rows.empty()) {
    // Nothing to write; the same tag ("INSERT 0 0") keeps the outcomes comparable.
    sql += "SELECT " + columns + " FROM " + table + " WHERE false";
  } else {
    sql += "VALUES ";
    for (size_t r = 0; r < rows.size(); ++r) {
      if (r > 0) sql += ", ";
      sql += '(';
      for (size_t i = 0; i < rows[r].size(); ++i) {
        if (i > 0) sql += ", ";
        sql += rows[r][i] ? pgclient::quoteLiteral(*rows[r][i]) : std::string("NULL");
      }
      sql += ')';
    }
  }
  if (shape.on_conflict == OnConflict::Nothing) {
    sql += " ON CONFLICT DO NOTHING";
  } else if (shape.on_conflict == OnConflict::Update) {
    std::vector<std::string> key, rest;
    for (const std::string& name : names) {
      auto it = std::find_if(facts.columns.begin(), facts.columns.end(), [&](const ColumnFacts& c) { return c.name == name; });
      const bool known = it != facts.columns.end();
      if (known && it->key) {
        key.push_back(name);
      } else if (!known || !it->identity) {
        rest.push_back(name);   // an identity column is not updated (ALWAYS refuses it): the row keeps its own
      }
    }
    if (rest.empty()) rest = key;   // a table of key columns only: the row is still returned
    sql += " ON CONFLICT (" + joined(key) + ") DO UPDATE SET ";
    for (size_t i = 0; i < rest.size(); ++i) {
      if (i > 0) sql += ", ";
      const std::string c = pgclient::quoteIdentifier(rest[i]);
      sql += c + " = EXCLUDED." + c;
    }
  }
  sql += " RETURNING " + columns;
  if (facts.before_row_trigger) {
    sql = "SET LOCAL session_replication_role = replica; " + sql + "; SET LOCAL session_replication_role TO DEFAULT";
  }
  return sql;
}

}  // namespace cutover::router
