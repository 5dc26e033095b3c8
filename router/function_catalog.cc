#include "router/function_catalog.h"

#include <array>
#include <string_view>
#include <unordered_set>

namespace cutover::router {
namespace {

using namespace std::string_view_literals;

// Built-in functions that read at most: aggregates, window functions, maths, strings, dates,
// JSON, arrays, ranges, catalogue and size lookups. Volatile ones (now, random, pg_sleep) are here
// too: volatile is not the same as writing. Deliberately absent: anything that changes a sequence,
// a lock, a setting, a large object, another backend, or the server's files.
constexpr std::array kReadOnly = {
    // aggregates and window functions
    "count"sv, "sum"sv, "avg"sv, "min"sv, "max"sv, "array_agg"sv, "string_agg"sv, "json_agg"sv,
    "jsonb_agg"sv, "json_object_agg"sv, "jsonb_object_agg"sv, "json_agg_strict"sv,
    "jsonb_agg_strict"sv, "bool_and"sv, "bool_or"sv, "every"sv, "bit_and"sv, "bit_or"sv,
    "bit_xor"sv, "stddev"sv, "stddev_pop"sv, "stddev_samp"sv, "variance"sv, "var_pop"sv,
    "var_samp"sv, "corr"sv, "covar_pop"sv, "covar_samp"sv, "regr_avgx"sv, "regr_avgy"sv,
    "regr_count"sv, "regr_intercept"sv, "regr_r2"sv, "regr_slope"sv, "regr_sxx"sv, "regr_sxy"sv,
    "regr_syy"sv, "percentile_cont"sv, "percentile_disc"sv, "mode"sv, "xmlagg"sv, "range_agg"sv,
    "range_intersect_agg"sv, "any_value"sv, "row_number"sv, "rank"sv, "dense_rank"sv,
    "percent_rank"sv, "cume_dist"sv, "ntile"sv, "lag"sv, "lead"sv, "first_value"sv,
    "last_value"sv, "nth_value"sv, "grouping"sv,
    // conditionals and comparison
    "coalesce"sv, "nullif"sv, "greatest"sv, "least"sv, "num_nulls"sv, "num_nonnulls"sv,
    // maths
    "abs"sv, "cbrt"sv, "ceil"sv, "ceiling"sv, "degrees"sv, "div"sv, "exp"sv, "factorial"sv,
    "floor"sv, "gcd"sv, "lcm"sv, "ln"sv, "log"sv, "log10"sv, "min_scale"sv, "mod"sv, "pi"sv,
    "power"sv, "pow"sv, "radians"sv, "round"sv, "scale"sv, "sign"sv, "sqrt"sv, "trim_scale"sv,
    "trunc"sv, "width_bucket"sv, "random"sv, "random_normal"sv, "acos"sv, "asin"sv, "atan"sv,
    "atan2"sv, "cos"sv, "cot"sv, "sin"sv, "tan"sv, "acosd"sv, "asind"sv, "atand"sv, "atan2d"sv,
    "cosd"sv, "cotd"sv, "sind"sv, "tand"sv, "sinh"sv, "cosh"sv, "tanh"sv, "asinh"sv, "acosh"sv,
    "atanh"sv, "erf"sv, "erfc"sv,
    // casts spelled as calls
    "int2"sv, "int4"sv, "int8"sv, "float4"sv, "float8"sv, "numeric"sv, "text"sv, "varchar"sv,
    "bpchar"sv, "char"sv, "bool"sv, "date"sv, "time"sv, "timetz"sv, "timestamp"sv,
    "timestamptz"sv, "interval"sv, "name"sv, "oid"sv, "uuid"sv, "inet"sv, "cidr"sv, "macaddr"sv,
    "money"sv, "bytea"sv, "bit"sv, "varbit"sv,
    // strings and bytes
    "ascii"sv, "bit_length"sv, "btrim"sv, "char_length"sv, "character_length"sv, "chr"sv,
    "concat"sv, "concat_ws"sv, "convert"sv, "convert_from"sv, "convert_to"sv, "decode"sv,
    "encode"sv, "format"sv, "initcap"sv, "left"sv, "length"sv, "lower"sv, "lpad"sv, "ltrim"sv,
    "md5"sv, "normalize"sv, "is_normalized"sv, "octet_length"sv, "overlay"sv, "parse_ident"sv,
    "position"sv, "quote_ident"sv, "quote_literal"sv, "quote_nullable"sv, "regexp_count"sv,
    "regexp_instr"sv, "regexp_like"sv, "regexp_match"sv, "regexp_matches"sv,
    "regexp_replace"sv, "regexp_split_to_array"sv, "regexp_split_to_table"sv,
    "regexp_substr"sv, "repeat"sv, "replace"sv, "reverse"sv, "right"sv, "rpad"sv, "rtrim"sv,
    "split_part"sv, "starts_with"sv, "string_to_array"sv, "string_to_table"sv, "strpos"sv,
    "substr"sv, "substring"sv, "to_ascii"sv, "to_hex"sv, "translate"sv, "trim"sv, "unistr"sv,
    "upper"sv, "sha224"sv, "sha256"sv, "sha384"sv, "sha512"sv, "get_bit"sv, "get_byte"sv,
    "set_bit"sv, "set_byte"sv, "bit_count"sv, "similar_to_escape"sv, "like_escape"sv,
    "textlen"sv, "pg_collation_for"sv,
    // formatting
    "to_char"sv, "to_date"sv, "to_number"sv, "to_timestamp"sv,
    // dates and times
    "age"sv, "clock_timestamp"sv, "date_bin"sv, "date_part"sv, "date_trunc"sv, "extract"sv,
    "isfinite"sv, "justify_days"sv, "justify_hours"sv, "justify_interval"sv, "make_date"sv,
    "make_interval"sv, "make_time"sv, "make_timestamp"sv, "make_timestamptz"sv, "now"sv,
    "statement_timestamp"sv, "timeofday"sv, "transaction_timestamp"sv, "timezone"sv,
    "overlaps"sv, "pg_sleep"sv, "pg_sleep_for"sv, "pg_sleep_until"sv,
    // enums, geometry, network
    "enum_first"sv, "enum_last"sv, "enum_range"sv, "area"sv, "center"sv, "diameter"sv,
    "height"sv, "width"sv, "radius"sv, "npoints"sv, "isclosed"sv, "isopen"sv, "point"sv,
    "box"sv, "circle"sv, "line"sv, "lseg"sv, "path"sv, "polygon"sv, "abbrev"sv, "broadcast"sv,
    "family"sv, "host"sv, "hostmask"sv, "masklen"sv, "netmask"sv, "network"sv,
    "set_masklen"sv, "inet_merge"sv, "inet_same_family"sv,
    // text search
    "to_tsvector"sv, "to_tsquery"sv, "plainto_tsquery"sv, "phraseto_tsquery"sv,
    "websearch_to_tsquery"sv, "ts_rank"sv, "ts_rank_cd"sv, "ts_headline"sv, "setweight"sv,
    "strip"sv, "numnode"sv, "querytree"sv, "array_to_tsvector"sv, "tsvector_to_array"sv,
    "get_current_ts_config"sv, "ts_lexize"sv, "ts_debug"sv, "ts_parse"sv, "ts_token_type"sv,
    // UUIDs
    "gen_random_uuid"sv,
    // JSON
    "to_json"sv, "to_jsonb"sv, "array_to_json"sv, "row_to_json"sv, "json_build_array"sv,
    "jsonb_build_array"sv, "json_build_object"sv, "jsonb_build_object"sv, "json_object"sv,
    "jsonb_object"sv, "json_array_elements"sv, "jsonb_array_elements"sv,
    "json_array_elements_text"sv, "jsonb_array_elements_text"sv, "json_array_length"sv,
    "jsonb_array_length"sv, "json_each"sv, "jsonb_each"sv, "json_each_text"sv,
    "jsonb_each_text"sv, "json_extract_path"sv, "jsonb_extract_path"sv,
    "json_extract_path_text"sv, "jsonb_extract_path_text"sv, "json_object_keys"sv,
    "jsonb_object_keys"sv, "json_populate_record"sv, "jsonb_populate_record"sv,
    "json_populate_recordset"sv, "jsonb_populate_recordset"sv, "json_to_record"sv,
    "jsonb_to_record"sv, "json_to_recordset"sv, "jsonb_to_recordset"sv, "json_strip_nulls"sv,
    "jsonb_strip_nulls"sv, "jsonb_set"sv, "jsonb_set_lax"sv, "jsonb_insert"sv, "jsonb_pretty"sv,
    "json_typeof"sv, "jsonb_typeof"sv, "jsonb_path_exists"sv, "jsonb_path_match"sv,
    "jsonb_path_query"sv, "jsonb_path_query_array"sv, "jsonb_path_query_first"sv,
    "jsonb_path_exists_tz"sv, "jsonb_path_match_tz"sv, "jsonb_path_query_tz"sv,
    "jsonb_path_query_array_tz"sv, "jsonb_path_query_first_tz"sv, "jsonb_contains"sv,
    "jsonb_exists"sv, "jsonb_exists_any"sv, "jsonb_exists_all"sv, "jsonb_concat"sv,
    "json_scalar"sv, "json_serialize"sv,
    // arrays, ranges, set-returning
    "array_append"sv, "array_cat"sv, "array_dims"sv, "array_fill"sv, "array_length"sv,
    "array_lower"sv, "array_ndims"sv, "array_position"sv, "array_positions"sv,
    "array_prepend"sv, "array_remove"sv, "array_replace"sv, "array_to_string"sv,
    "array_upper"sv, "cardinality"sv, "trim_array"sv, "unnest"sv, "generate_subscripts"sv,
    "generate_series"sv, "isempty"sv, "lower_inc"sv, "upper_inc"sv, "lower_inf"sv,
    "upper_inf"sv, "range_merge"sv, "int4range"sv, "int8range"sv, "numrange"sv, "tsrange"sv,
    "tstzrange"sv, "daterange"sv, "int4multirange"sv, "int8multirange"sv, "nummultirange"sv,
    "tsmultirange"sv, "tstzmultirange"sv, "datemultirange"sv, "multirange"sv,
    // XML (reading)
    "xmlexists"sv, "xpath"sv, "xpath_exists"sv, "xml_is_well_formed"sv, "xmlcomment"sv,
    "xmltext"sv,
    // session and system information
    "current_database"sv, "current_catalog"sv, "current_query"sv, "current_role"sv,
    "current_schema"sv, "current_schemas"sv, "current_user"sv, "session_user"sv, "user"sv,
    "current_setting"sv, "inet_client_addr"sv, "inet_client_port"sv, "inet_server_addr"sv,
    "inet_server_port"sv, "pg_backend_pid"sv, "pg_blocking_pids"sv, "pg_conf_load_time"sv,
    "pg_current_logfile"sv, "pg_my_temp_schema"sv, "pg_is_other_temp_schema"sv,
    "pg_jit_available"sv, "pg_listening_channels"sv, "pg_notification_queue_usage"sv,
    "pg_postmaster_start_time"sv, "pg_safe_snapshot_blocking_pids"sv, "pg_trigger_depth"sv,
    "version"sv, "pg_is_in_recovery"sv, "pg_current_wal_lsn"sv, "pg_last_wal_receive_lsn"sv,
    "pg_last_wal_replay_lsn"sv, "pg_current_snapshot"sv, "pg_snapshot_xmin"sv,
    "pg_snapshot_xmax"sv, "pg_snapshot_xip"sv, "pg_visible_in_snapshot"sv,
    "txid_current_snapshot"sv, "txid_snapshot_xmin"sv, "txid_snapshot_xmax"sv, "txid_current_if_assigned"sv,
    "pg_current_xact_id_if_assigned"sv, "pg_xact_status"sv, "txid_status"sv,
    // privileges and catalogue lookups
    "has_table_privilege"sv, "has_column_privilege"sv, "has_any_column_privilege"sv,
    "has_database_privilege"sv, "has_function_privilege"sv, "has_schema_privilege"sv,
    "has_sequence_privilege"sv, "has_foreign_data_wrapper_privilege"sv,
    "has_language_privilege"sv, "has_server_privilege"sv, "has_tablespace_privilege"sv,
    "has_type_privilege"sv, "has_parameter_privilege"sv, "pg_has_role"sv,
    "row_security_active"sv, "pg_get_constraintdef"sv, "pg_get_expr"sv,
    "pg_get_functiondef"sv, "pg_get_function_arguments"sv,
    "pg_get_function_identity_arguments"sv, "pg_get_function_result"sv, "pg_get_indexdef"sv,
    "pg_get_keywords"sv, "pg_get_ruledef"sv, "pg_get_serial_sequence"sv,
    "pg_get_statisticsobjdef"sv, "pg_get_triggerdef"sv, "pg_get_userbyid"sv,
    "pg_get_viewdef"sv, "pg_get_partkeydef"sv, "pg_get_partition_constraintdef"sv,
    "pg_get_statisticsobjdef_columns"sv, "pg_get_statisticsobjdef_expressions"sv, "pg_get_function_sqlbody"sv,
    "pg_relation_is_publishable"sv, "pg_get_publication_tables"sv, "pg_get_object_address"sv, "format_type"sv,
    "pg_typeof"sv, "pg_table_is_visible"sv, "pg_type_is_visible"sv,
    "pg_function_is_visible"sv, "pg_operator_is_visible"sv, "pg_opclass_is_visible"sv,
    "pg_opfamily_is_visible"sv, "pg_collation_is_visible"sv, "pg_conversion_is_visible"sv,
    "pg_statistics_obj_is_visible"sv, "pg_ts_config_is_visible"sv, "pg_ts_dict_is_visible"sv,
    "pg_ts_parser_is_visible"sv, "pg_ts_template_is_visible"sv, "obj_description"sv,
    "col_description"sv, "shobj_description"sv, "pg_describe_object"sv, "pg_identify_object"sv,
    "pg_identify_object_as_address"sv, "to_regclass"sv, "to_regtype"sv, "to_regproc"sv,
    "to_regprocedure"sv, "to_regoper"sv, "to_regoperator"sv, "to_regnamespace"sv,
    "to_regrole"sv, "to_regcollation"sv, "pg_index_column_has_property"sv,
    "pg_index_has_property"sv, "pg_indexam_has_property"sv, "pg_options_to_table"sv,
    "pg_tablespace_location"sv, "pg_encoding_to_char"sv, "pg_char_to_encoding"sv,
    "pg_client_encoding"sv, "pg_column_compression"sv, "pg_partition_tree"sv,
    "pg_partition_root"sv, "pg_partition_ancestors"sv,
    // sizes
    "pg_size_pretty"sv, "pg_size_bytes"sv, "pg_column_size"sv, "pg_database_size"sv,
    "pg_indexes_size"sv, "pg_relation_size"sv, "pg_table_size"sv, "pg_total_relation_size"sv,
    "pg_relation_filenode"sv, "pg_relation_filepath"sv, "pg_tablespace_size"sv,
    // statistics views' functions (reading counters)
    "pg_stat_get_activity"sv, "pg_stat_get_backend_pid"sv, "pg_stat_get_numscans"sv,
    "pg_stat_get_live_tuples"sv, "pg_stat_get_dead_tuples"sv,
};

struct KnownWriter {
  std::string_view name;
  const char* reason;
};

// Built-ins that change state somewhere; named so the reason is precise. Everything else not on
// the allow-list is a write too, with a generic reason.
constexpr std::array kWriters = {
    KnownWriter{"nextval", "nextval changes a sequence"},
    KnownWriter{"setval", "setval changes a sequence"},
    // currval/lastval read state that exists only on the store where nextval ran.
    KnownWriter{"currval", "currval reads this session's sequence state (authoritative store)"},
    KnownWriter{"lastval", "lastval reads this session's sequence state (authoritative store)"},
    KnownWriter{"set_config", "set_config changes a setting"},
    KnownWriter{"pg_notify", "pg_notify sends a notification"},
    KnownWriter{"txid_current", "txid_current assigns a transaction id"},
    KnownWriter{"pg_current_xact_id", "pg_current_xact_id assigns a transaction id"},
    KnownWriter{"setseed", "setseed changes the session's random state"},
    KnownWriter{"pg_terminate_backend", "pg_terminate_backend signals another backend"},
    KnownWriter{"pg_cancel_backend", "pg_cancel_backend signals another backend"},
};

bool isAdvisoryLock(std::string_view name) {
  return name.starts_with("pg_advisory_") || name.starts_with("pg_try_advisory_");
}

bool isNondeterministic(std::string_view name) {
  static const std::unordered_set<std::string_view> names = {
      "now"sv, "random"sv, "random_normal"sv, "gen_random_uuid"sv, "uuid_generate_v1"sv,
      "uuid_generate_v1mc"sv, "uuid_generate_v4"sv, "gen_random_bytes"sv, "nextval"sv,
      "setval"sv, "currval"sv, "lastval"sv, "clock_timestamp"sv, "statement_timestamp"sv,
      "transaction_timestamp"sv, "timeofday"sv, "txid_current"sv, "pg_current_xact_id"sv,
      "pg_backend_pid"sv, "inet_client_addr"sv, "inet_client_port"sv, "inet_server_addr"sv,
      "inet_server_port"sv, "pg_postmaster_start_time"sv, "pg_conf_load_time"sv};
  return names.contains(name);
}

}  // namespace

bool isClockFunction(std::string_view name) {
  return name == "now" || name == "clock_timestamp" || name == "statement_timestamp" ||
         name == "transaction_timestamp" || name == "timeofday";
}

FunctionVerdict lookupFunction(std::string_view schema, std::string_view name) {
  static const std::unordered_set<std::string_view> read_only(kReadOnly.begin(), kReadOnly.end());
  FunctionVerdict verdict;
  verdict.nondeterministic = isNondeterministic(name);
  const bool builtin_schema = schema.empty() || schema == "pg_catalog";
  if (!builtin_schema) return verdict;
  for (const KnownWriter& writer : kWriters) {
    if (writer.name == name) {
      verdict.write_reason = writer.reason;
      return verdict;
    }
  }
  if (isAdvisoryLock(name)) {
    verdict.write_reason = "advisory locks live on one store";
    return verdict;
  }
  if (name.starts_with("lo_")) {
    verdict.write_reason = "large-object functions change pg_largeobject";
    return verdict;
  }
  verdict.read_only = read_only.contains(name);
  return verdict;
}

}  // namespace cutover::router
