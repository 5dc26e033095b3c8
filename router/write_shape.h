#pragma once

// What exact mirroring needs to know about one INSERT or UPDATE statement's text, and the rewrite
// that makes the authoritative store return the rows it wrote (DESIGN.md "Exact mirroring"). Parsed
// and deparsed with libpg_query: the client's statement is never edited as a string.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace cutover::router {

enum class OnConflict { None, Nothing, Update };
enum class WriteKind { Insert, Update, CopyFrom, Delete };

struct WriteShape {
  WriteKind kind = WriteKind::Insert;
  std::string schema;                 // the target as written ("" when unqualified)
  std::string table;
  std::string refname;                // what RETURNING names the target by: its alias, else its name
  // INSERT, COPY FROM: the explicit column list (empty: every column, in order). UPDATE: the
  // columns it sets.
  std::vector<std::string> columns;
  // Without a column list: how many leading columns the rows supply (VALUES items, SELECT output
  // columns; 0 for DEFAULT VALUES), -1 when the text does not say (SELECT *, UNION …).
  int width = -1;
  bool uses_default = false;          // DEFAULT in VALUES, or DEFAULT VALUES
  bool overriding_user_value = false; // INSERT … OVERRIDING USER VALUE: identity columns pick anyway
  std::vector<std::string> defaulted; // UPDATE: the columns it SETs to DEFAULT
  bool has_returning = false;         // the client asked for rows back
  OnConflict on_conflict = OnConflict::None;
};

// The shape of `sql` when it is exactly one INSERT or UPDATE without WITH (a CTE may write
// elsewhere) and, for an UPDATE, without WHERE CURRENT OF, or a COPY … FROM into a table or a
// DELETE without WITH or WHERE CURRENT OF (neither imaged: their table's facts say whether each
// store's triggers or defaults make them inexact); else nullopt (unparsable text too).
std::optional<WriteShape> writeShape(std::string_view sql);

// The writes of one statement with a WITH clause (WITH a AS (INSERT … RETURNING …) SELECT …,
// INSERT … WITH d AS (DELETE …) SELECT …): the shape of each data-modifying part (the statement
// itself, and every CTE, nested ones too), their own WITH aside. Row images take one plain
// statement, so such a statement is mirrored as its text; these say which tables it writes, so
// that a store-picked value there is journaled rather than silent. Empty (complete) for a
// statement without a data-modifying WITH.
struct CteWrites {
  std::vector<WriteShape> shapes;
  bool complete = true;   // false: a part writes in a form not looked into
};
CteWrites cteWriteShapes(std::string_view sql);

// The statements of a query string of several, as libpg_query's parser splits it (comments and
// strings that hold ';' stay whole); empty when it does not parse.
std::vector<std::string> splitStatements(std::string_view sql);

// The column that separates the client's RETURNING items from the rows cutover asked for.
inline constexpr std::string_view kImageMarker = "cutover:images";

// `sql` (one INSERT or UPDATE, as writeShape accepted) deparsed with `NULL AS "cutover:images",
// refname.*` appended to its RETURNING list. The client's own items come first, unchanged, so its
// answer is every row's columns before the marker; after it come the stored row's columns, named
// in the RowDescription (the catalog as the store sees it at that moment, not as cached).
Result<std::string> withImageReturning(std::string_view sql, const WriteShape& shape);

}  // namespace cutover::router
