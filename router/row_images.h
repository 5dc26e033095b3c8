#pragma once

// Exact mirroring of INSERTs by row images (DESIGN.md "Exact mirroring", "Schema cache"): what
// the authoritative store's catalog says about a target table, whether an INSERT's values are
// picked by the store, and the statement that applies the store's resulting rows on the
// secondary. Pure: the catalog rows come from the proxy, which runs tableFactsQuery on the
// session's own connection (so the name resolves by the session's search_path).

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "router/write_shape.h"

namespace cutover::router {

struct ColumnFacts {
  std::string name;
  bool identity = false;        // GENERATED … AS IDENTITY: the store picks it when omitted
  bool identity_always = false; // GENERATED ALWAYS: an UPDATE can only SET it to DEFAULT
  bool generated = false;       // GENERATED ALWAYS AS (…) STORED: each store computes it, never written
  bool key = false;             // part of the primary key
  std::string default_expr;     // pg_get_expr of its default, "" when none
  std::string type;             // format_type: what its image literals are cast to
  bool store_picked = false;    // omitted, the store picks its value (identity, a non-constant default)
};

struct TableFacts {
  bool found = false;           // the name resolved to a table (or partitioned table)
  std::string schema, name;     // as the catalog spells them; a temporary table's schema: pg_temp
  std::vector<ColumnFacts> columns;   // in attnum order
  bool before_row_trigger = false;    // a BEFORE … FOR EACH ROW trigger on INSERT or UPDATE
  bool other_write_trigger = false;   // an AFTER or per-statement trigger on INSERT or UPDATE (not a
                                      // CONSTRAINT TRIGGER: taken for a check)
};

// One row per column of `shape`'s target, resolved by the session's search_path, in attnum
// order: nspname, relname, relkind, attname, attidentity, attgenerated, default expression,
// in primary key, has a BEFORE ROW INSERT/UPDATE trigger, format_type, has another INSERT/UPDATE
// trigger (AFTER, or per statement), relpersistence. No row: not a table.
std::string tableFactsQuery(const WriteShape& shape);

// `rows` of tableFactsQuery. `constant(expr)` tells whether a default expression is a constant
// (the same value on every store and every run); anything else is store-picked.
TableFacts tableFactsFrom(const std::vector<std::vector<std::optional<std::string>>>& rows,
                          const std::function<bool(std::string_view)>& constant);

struct ImagePlan {
  bool images = false;              // run with RETURNING on the serve store, apply the rows on the secondary
  std::string why;                  // what the store picks ("id: nextval('t_id_seq'::regclass)")
  std::string inexact;              // images needed but not possible: why (a nondeterministic divergence)
  // Exact for this table, but its triggers write elsewhere what cutover does not image: why (also
  // journaled nondeterministic, beside the images when there are some).
  std::string side_effects;
};

// Whether the INSERT or UPDATE `shape` (text nondeterministic: it calls now(), random() …) needs
// row images to leave the secondary with the authoritative store's values. An UPDATE is imaged
// when its text is nondeterministic or a BEFORE ROW trigger may set values; it needs a primary key
// it does not change (the images are applied by key).
ImagePlan planImages(const WriteShape& shape, const TableFacts& facts, bool text_nondeterministic);

using Row = std::vector<std::optional<std::string>>;

// Whether the column `name` is written by the images (generated columns are each store's own).
// A column the facts do not know (added since they were read) is written.
bool writtenByImages(const TableFacts& facts, std::string_view name);

// The statement that writes `rows` (text values of `columns`, in order) into the secondary's copy
// of the table: INSERT … OVERRIDING SYSTEM VALUE VALUES …, an upsert by primary key for ON
// CONFLICT DO UPDATE, for an UPDATE `UPDATE … FROM (VALUES …) WHERE key = …` (typed literals),
// RETURNING the same columns so its rows are compared with the images.
// A table with a BEFORE ROW trigger gets the statement between `SET LOCAL
// session_replication_role = replica` and `… TO DEFAULT` (kTriggerBracketTags more tags): the
// secondary's own trigger would pick its own values again. Needs superuser or, on PostgreSQL 15,
// GRANT SET ON PARAMETER session_replication_role for the secondary's user.
std::string imageApplyStatement(const TableFacts& facts, const std::vector<std::string>& columns,
                                const WriteShape& shape, const std::vector<Row>& rows);
inline constexpr std::string_view kTriggerBracketTag = "SET";

}  // namespace cutover::router
