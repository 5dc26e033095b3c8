#include "router/write_shape.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <limits>
#include <memory>

namespace cutover::router {
namespace {

// The protobuf parse tree of one statement text, freed with it.
class ProtobufTree {
 public:
  explicit ProtobufTree(std::string_view sql) : result_(pg_query_parse_protobuf(std::string(sql).c_str())) {
    if (result_.error == nullptr) {
      tree_ = pg_query__parse_result__unpack(nullptr, result_.parse_tree.len,
                                             reinterpret_cast<const uint8_t*>(result_.parse_tree.data));
    }
  }
  ~ProtobufTree() {
    if (tree_ != nullptr) pg_query__parse_result__free_unpacked(tree_, nullptr);
    pg_query_free_protobuf_parse_result(result_);
  }
  ProtobufTree(const ProtobufTree&) = delete;
  ProtobufTree& operator=(const ProtobufTree&) = delete;

  PgQuery__ParseResult* tree() const { return tree_; }
  // The statement when the text is exactly one statement, else null.
  PgQuery__Node* statement() const {
    if (tree_ == nullptr || tree_->n_stmts != 1) return nullptr;
    return tree_->stmts[0]->stmt;
  }
  PgQuery__InsertStmt* insert() const {
    PgQuery__Node* node = statement();
    return node != nullptr && node->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ? node->insert_stmt : nullptr;
  }
  PgQuery__UpdateStmt* update() const {
    PgQuery__Node* node = statement();
    return node != nullptr && node->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ? node->update_stmt : nullptr;
  }

 private:
  PgQueryProtobufParseResult result_;
  PgQuery__ParseResult* tree_ = nullptr;
};

std::string text(const char* s) { return s != nullptr ? std::string(s) : std::string(); }

bool valuesUseDefault(const PgQuery__Node* select) {
  if (select == nullptr) return true;   // DEFAULT VALUES
  if (select->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) return false;
  const PgQuery__SelectStmt* s = select->select_stmt;
  for (size_t i = 0; i < s->n_values_lists; ++i) {
    const PgQuery__Node* row = s->values_lists[i];
    if (row->node_case != PG_QUERY__NODE__NODE_LIST) continue;
    for (size_t j = 0; j < row->list->n_items; ++j) {
      if (row->list->items[j]->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) return true;
    }
  }
  return false;
}

int rowWidth(const PgQuery__Node* select) {
  if (select == nullptr) return 0;   // DEFAULT VALUES
  if (select->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) return -1;
  const PgQuery__SelectStmt* s = select->select_stmt;
  if (s->n_values_lists > 0) {
    size_t width = 0;
    for (size_t i = 0; i < s->n_values_lists; ++i) {
      const PgQuery__Node* row = s->values_lists[i];
      if (row->node_case == PG_QUERY__NODE__NODE_LIST) width = std::max(width, row->list->n_items);
    }
    return static_cast<int>(width);
  }
  if (s->larg != nullptr || s->n_target_list == 0) return -1;
  for (size_t i = 0; i < s->n_target_list; ++i) {
    const PgQuery__Node* item = s->target_list[i];
    if (item->node_case != PG_QUERY__NODE__NODE_RES_TARGET || item->res_target->val == nullptr) return -1;
    const PgQuery__Node* value = item->res_target->val;
    if (value->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
      const PgQuery__ColumnRef* ref = value->column_ref;
      if (ref->n_fields > 0 && ref->fields[ref->n_fields - 1]->node_case == PG_QUERY__NODE__NODE_A_STAR) return -1;
    }
  }
  return static_cast<int>(s->n_target_list);
}

// Nodes built for the rewrite: owned here, lent to the tree only while it is packed.
struct Built {
  std::vector<std::unique_ptr<PgQuery__Node>> nodes;
  std::vector<std::unique_ptr<PgQuery__String>> strings;
  std::vector<std::unique_ptr<PgQuery__ColumnRef>> refs;
  std::vector<std::unique_ptr<PgQuery__ResTarget>> targets;
  std::vector<std::unique_ptr<PgQuery__AConst>> constants;
  std::vector<std::unique_ptr<PgQuery__AStar>> stars;
  std::vector<std::unique_ptr<PgQuery__Node*[]>> arrays;
  std::vector<std::string> names;   // reserved up front: the tree points into these

  PgQuery__Node* node() {
    nodes.push_back(std::make_unique<PgQuery__Node>());
    pg_query__node__init(nodes.back().get());
    return nodes.back().get();
  }
  PgQuery__Node* string(const std::string& value) {
    names.push_back(value);
    strings.push_back(std::make_unique<PgQuery__String>());
    pg_query__string__init(strings.back().get());
    strings.back()->sval = names.back().data();
    PgQuery__Node* n = node();
    n->node_case = PG_QUERY__NODE__NODE_STRING;
    n->string = strings.back().get();
    return n;
  }
  PgQuery__Node* target(PgQuery__Node* value, const std::string* name) {
    targets.push_back(std::make_unique<PgQuery__ResTarget>());
    pg_query__res_target__init(targets.back().get());
    if (name != nullptr) targets.back()->name = const_cast<char*>(name->c_str());
    targets.back()->val = value;
    targets.back()->location = -1;
    PgQuery__Node* n = node();
    n->node_case = PG_QUERY__NODE__NODE_RES_TARGET;
    n->res_target = targets.back().get();
    return n;
  }
  // NULL AS name
  PgQuery__Node* marker(const std::string& name) {
    constants.push_back(std::make_unique<PgQuery__AConst>());
    pg_query__a__const__init(constants.back().get());
    constants.back()->isnull = true;
    constants.back()->location = -1;
    PgQuery__Node* value = node();
    value->node_case = PG_QUERY__NODE__NODE_A_CONST;
    value->a_const = constants.back().get();
    return target(value, &name);
  }
  // relation.*
  PgQuery__Node* everyColumn(const std::string& relation) {
    arrays.push_back(std::make_unique<PgQuery__Node*[]>(2));
    PgQuery__Node** fields = arrays.back().get();
    fields[0] = string(relation);
    stars.push_back(std::make_unique<PgQuery__AStar>());
    pg_query__a__star__init(stars.back().get());
    fields[1] = node();
    fields[1]->node_case = PG_QUERY__NODE__NODE_A_STAR;
    fields[1]->a_star = stars.back().get();
    refs.push_back(std::make_unique<PgQuery__ColumnRef>());
    pg_query__column_ref__init(refs.back().get());
    refs.back()->n_fields = 2;
    refs.back()->fields = fields;
    refs.back()->location = -1;
    PgQuery__Node* ref = node();
    ref->node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    ref->column_ref = refs.back().get();
    return target(ref, nullptr);
  }
};

}  // namespace

namespace {

// A shape of `kind` aimed at `relation`; nullopt for a cross-database name (db.schema.table).
std::optional<WriteShape> aimedAt(WriteKind kind, const PgQuery__RangeVar* relation) {
  if (relation == nullptr || !text(relation->catalogname).empty()) return std::nullopt;
  WriteShape shape;
  shape.kind = kind;
  shape.schema = text(relation->schemaname);
  shape.table = text(relation->relname);
  shape.refname = relation->alias != nullptr ? text(relation->alias->aliasname) : shape.table;
  return shape;
}

std::optional<WriteShape> updateShape(const PgQuery__UpdateStmt* update, bool ignore_with = false) {
  if (update->with_clause != nullptr && !ignore_with) return std::nullopt;
  if (update->where_clause != nullptr && update->where_clause->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR) {
    return std::nullopt;
  }
  std::optional<WriteShape> aimed = aimedAt(WriteKind::Update, update->relation);
  if (!aimed) return std::nullopt;
  WriteShape& shape = *aimed;
  for (size_t i = 0; i < update->n_target_list; ++i) {
    const PgQuery__Node* target = update->target_list[i];
    if (target->node_case != PG_QUERY__NODE__NODE_RES_TARGET) return std::nullopt;
    shape.columns.push_back(text(target->res_target->name));
    const PgQuery__Node* value = target->res_target->val;
    if (value != nullptr && value->node_case == PG_QUERY__NODE__NODE_SET_TO_DEFAULT) {
      shape.defaulted.push_back(shape.columns.back());
    }
  }
  shape.has_returning = update->n_returning_list > 0;
  return aimed;
}

std::optional<WriteShape> deleteShape(const PgQuery__DeleteStmt* del, bool ignore_with = false) {
  if (del->with_clause != nullptr && !ignore_with) return std::nullopt;
  if (del->where_clause != nullptr && del->where_clause->node_case == PG_QUERY__NODE__NODE_CURRENT_OF_EXPR) {
    return std::nullopt;
  }
  std::optional<WriteShape> aimed = aimedAt(WriteKind::Delete, del->relation);
  if (aimed) aimed->has_returning = del->n_returning_list > 0;
  return aimed;
}

std::optional<WriteShape> copyShape(const PgQuery__CopyStmt* copy) {
  if (!copy->is_from) return std::nullopt;
  std::optional<WriteShape> aimed = aimedAt(WriteKind::CopyFrom, copy->relation);
  if (!aimed) return std::nullopt;
  WriteShape& shape = *aimed;
  for (size_t i = 0; i < copy->n_attlist; ++i) {
    const PgQuery__Node* column = copy->attlist[i];
    if (column->node_case != PG_QUERY__NODE__NODE_STRING) return std::nullopt;
    shape.columns.push_back(text(column->string->sval));
  }
  if (shape.columns.empty()) shape.width = std::numeric_limits<int>::max();   // every column, from the data
  return aimed;
}

// An INSERT's shape; with `ignore_with`, its WITH clause (cteWriteShapes looks into it) aside.
std::optional<WriteShape> insertShape(const PgQuery__InsertStmt* insert, bool ignore_with) {
  if (!ignore_with && insert->with_clause != nullptr) return std::nullopt;
  if (insert->select_stmt != nullptr && insert->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT &&
      insert->select_stmt->select_stmt->with_clause != nullptr && !ignore_with) {
    return std::nullopt;   // INSERT … WITH x AS (DELETE …) SELECT: the CTE may write
  }
  std::optional<WriteShape> aimed = aimedAt(WriteKind::Insert, insert->relation);
  if (!aimed) return std::nullopt;
  WriteShape& shape = *aimed;
  for (size_t i = 0; i < insert->n_cols; ++i) {
    const PgQuery__Node* col = insert->cols[i];
    if (col->node_case != PG_QUERY__NODE__NODE_RES_TARGET || col->res_target->n_indirection > 0) {
      return std::nullopt;   // INSERT INTO t (point.x …): a part of a column
    }
    shape.columns.push_back(text(col->res_target->name));
  }
  shape.uses_default = valuesUseDefault(insert->select_stmt);
  shape.overriding_user_value = insert->override == PG_QUERY__OVERRIDING_KIND__OVERRIDING_USER_VALUE;
  shape.width = rowWidth(insert->select_stmt);
  shape.has_returning = insert->n_returning_list > 0;
  if (insert->on_conflict_clause != nullptr) {
    shape.on_conflict = insert->on_conflict_clause->action == PG_QUERY__ON_CONFLICT_ACTION__ONCONFLICT_UPDATE
                            ? OnConflict::Update
                            : OnConflict::Nothing;
  }
  return aimed;
}

}  // namespace

std::optional<WriteShape> writeShape(std::string_view sql) {
  ProtobufTree parsed(sql);
  if (const PgQuery__UpdateStmt* update = parsed.update()) return updateShape(update);
  if (PgQuery__Node* node = parsed.statement(); node != nullptr && node->node_case == PG_QUERY__NODE__NODE_COPY_STMT) {
    return copyShape(node->copy_stmt);
  }
  if (PgQuery__Node* node = parsed.statement(); node != nullptr && node->node_case == PG_QUERY__NODE__NODE_DELETE_STMT) {
    return deleteShape(node->delete_stmt);
  }
  const PgQuery__InsertStmt* insert = parsed.insert();
  if (insert == nullptr) return std::nullopt;
  return insertShape(insert, false);
}

Result<std::string> withImageReturning(std::string_view sql, const WriteShape& shape) {
  ProtobufTree parsed(sql);
  PgQuery__InsertStmt* insert = parsed.insert();
  PgQuery__UpdateStmt* update = parsed.update();
  if (insert == nullptr && update == nullptr) return Status::error("not a single INSERT or UPDATE statement");
  size_t& n_returning = insert != nullptr ? insert->n_returning_list : update->n_returning_list;
  PgQuery__Node**& returning = insert != nullptr ? insert->returning_list : update->returning_list;
  Built built;
  built.names.reserve(1);   // no reallocation: the tree points into the strings
  const std::string marker_name(kImageMarker);
  const size_t client_items = n_returning;
  auto items = std::make_unique<PgQuery__Node*[]>(client_items + 2);
  for (size_t i = 0; i < client_items; ++i) items[i] = returning[i];
  items[client_items] = built.marker(marker_name);
  items[client_items + 1] = built.everyColumn(shape.refname);
  PgQuery__Node** original = returning;
  returning = items.get();
  n_returning = client_items + 2;

  std::string packed(pg_query__parse_result__get_packed_size(parsed.tree()), '\0');
  pg_query__parse_result__pack(parsed.tree(), reinterpret_cast<uint8_t*>(packed.data()));
  returning = original;   // the tree frees only what it unpacked
  n_returning = client_items;

  PgQueryProtobuf protobuf{packed.size(), packed.data()};
  PgQueryDeparseResult deparsed = pg_query_deparse_protobuf(protobuf);
  Result<std::string> out = deparsed.error != nullptr
                                ? Result<std::string>(Status::error(std::string("libpg_query could not deparse the "
                                                                                "statement: ") +
                                                                    deparsed.error->message))
                                : Result<std::string>(std::string(deparsed.query));
  pg_query_free_deparse_result(deparsed);
  return out;
}

std::vector<std::string> splitStatements(std::string_view sql) {
  const std::string text(sql);
  PgQuerySplitResult split = pg_query_split_with_parser(text.c_str());
  std::vector<std::string> out;
  if (split.error == nullptr) {
    for (int i = 0; i < split.n_stmts; ++i) {
      const PgQuerySplitStmt* stmt = split.stmts[i];
      const auto begin = static_cast<size_t>(std::max(stmt->stmt_location, 0));
      if (begin >= text.size()) continue;
      std::string one = text.substr(begin, static_cast<size_t>(std::max(stmt->stmt_len, 0)) ?
                                                static_cast<size_t>(stmt->stmt_len) : std::string::npos);
      const size_t first = one.find_first_not_of(" \t\r\n");
      if (first == std::string::npos) continue;
      out.push_back(one.substr(first));
    }
  }
  pg_query_free_split_result(split);
  return out;
}

namespace {

const PgQuery__WithClause* withOf(const PgQuery__Node* node) {
  if (node == nullptr) return nullptr;
  switch (node->node_case) {
    case PG_QUERY__NODE__NODE_SELECT_STMT: return node->select_stmt->with_clause;
    case PG_QUERY__NODE__NODE_INSERT_STMT: {
      const PgQuery__InsertStmt* insert = node->insert_stmt;
      if (insert->with_clause != nullptr) return insert->with_clause;
      const PgQuery__Node* select = insert->select_stmt;
      return select != nullptr && select->node_case == PG_QUERY__NODE__NODE_SELECT_STMT ? select->select_stmt->with_clause
                                                                                        : nullptr;
    }
    case PG_QUERY__NODE__NODE_UPDATE_STMT: return node->update_stmt->with_clause;
    case PG_QUERY__NODE__NODE_DELETE_STMT: return node->delete_stmt->with_clause;
    default: return nullptr;
  }
}

// The shape of a data-modifying statement node, its own WITH aside; nullopt for anything else
// (`writes` false then when it does not write at all).
std::optional<WriteShape> partShape(const PgQuery__Node* node, bool& writes) {
  writes = true;
  switch (node->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT: return insertShape(node->insert_stmt, true);
    case PG_QUERY__NODE__NODE_UPDATE_STMT: return updateShape(node->update_stmt, true);
    case PG_QUERY__NODE__NODE_DELETE_STMT: return deleteShape(node->delete_stmt, true);
    default:
      writes = false;
      return std::nullopt;
  }
}

void collectWrites(const PgQuery__Node* node, CteWrites& out, int depth) {
  bool writes = false;
  if (std::optional<WriteShape> shape = partShape(node, writes)) {
    out.shapes.push_back(std::move(*shape));
  } else if (writes) {
    out.complete = false;   // a write of a form not looked into (WHERE CURRENT OF, db.schema.t …)
  }
  const PgQuery__WithClause* with = withOf(node);
  if (with == nullptr) return;
  if (depth > 8) {
    out.complete = false;
    return;
  }
  for (size_t i = 0; i < with->n_ctes; ++i) {
    const PgQuery__Node* cte = with->ctes[i];
    if (cte->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR || cte->common_table_expr->ctequery == nullptr) continue;
    collectWrites(cte->common_table_expr->ctequery, out, depth + 1);
  }
}

}  // namespace

CteWrites cteWriteShapes(std::string_view sql) {
  ProtobufTree parsed(sql);
  CteWrites out;
  const PgQuery__Node* node = parsed.statement();
  const PgQuery__WithClause* with = withOf(node);
  if (with == nullptr) return out;
  bool modifying = false;
  for (size_t i = 0; i < with->n_ctes && !modifying; ++i) {
    const PgQuery__Node* cte = with->ctes[i];
    bool writes = false;
    if (cte->node_case == PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR && cte->common_table_expr->ctequery != nullptr) {
      partShape(cte->common_table_expr->ctequery, writes);
    }
    modifying = writes;
  }
  if (!modifying && (node->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)) return out;   // a read's WITH
  collectWrites(node, out, 0);
  return out;
}

}  // namespace cutover::router
