#include "proxy/recheck_side.h"

#include <fmt/format.h>

#include <string_view>

#include "protocol/backend_messages.h"
#include "protocol/messages.h"
#include "protocol/writer.h"

namespace cutover::proxy::recheck {

using pgclient::firstLine;

bool sessionEnded(PGconn* conn, const PGresult* result) {
  if (PQstatus(conn) == CONNECTION_BAD || PQresultErrorField(result, PG_DIAG_SQLSTATE) == nullptr) return true;
  const char* severity = PQresultErrorField(result, PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string_view level = severity != nullptr ? severity : "";
  return level == "FATAL" || level == "PANIC";
}

Result<BoundParams> bindParams(const RecheckRequest& request) {
  const size_t n = request.params.size();
  const size_t codes = request.param_formats.size();
  if (codes > 1 && codes != n) {
    return Status::error(fmt::format("Bind has {} parameter format codes for {} parameters", codes, n));
  }
  if (request.sql.find('\0') != std::string::npos) return Status::error("the statement text contains a NUL byte");
  BoundParams bound;
  bound.types.assign(n, 0);
  std::copy_n(request.param_types.begin(), std::min(n, request.param_types.size()), bound.types.begin());
  for (size_t i = 0; i < n; ++i) {
    const int16_t format = codes == 0 ? 0 : request.param_formats[codes == 1 ? 0 : i];
    const auto& value = request.params[i];
    if (format != 0 && format != 1)
      return Status::error(fmt::format("parameter ${} has format code {}", i + 1, format));
    if (format == 1 && bound.types[i] == 0 && value) {
      return Status::error(
          fmt::format("parameter ${} is binary and its type unspecified: libpq cannot send it", i + 1));
    }
    if (format == 0 && value && value->find('\0') != std::string::npos) {
      return Status::error(fmt::format("text parameter ${} contains a NUL byte", i + 1));
    }
    bound.values.push_back(value ? value->c_str() : nullptr);
    bound.lengths.push_back(value ? static_cast<int>(value->size()) : 0);
    bound.formats.push_back(format);
  }
  return bound;
}

void describe(AttemptSide& side, const PGresult* result) {
  protocol::RowDescription description;
  const int fields = PQnfields(result);
  for (int i = 0; i < fields; ++i) {
    protocol::RowDescription::Field field;
    field.name = PQfname(result, i);
    field.table_oid = PQftable(result, i);
    field.column_attr = static_cast<int16_t>(PQftablecol(result, i));
    field.type_oid = PQftype(result, i);
    field.type_size = static_cast<int16_t>(PQfsize(result, i));
    field.type_modifier = PQfmod(result, i);
    field.format = 0;  // results are asked for as text
    description.fields.push_back(std::move(field));
  }
  side.buffer.clear();
  protocol::Writer writer(side.buffer);
  description.encodeBody(writer);
  side.digest.onRowDescription(protocol::asBytes(side.buffer));
  side.described = true;
}

void dataRow(AttemptSide& side, const PGresult* result, int row) {
  const int fields = PQnfields(result);
  side.buffer.clear();
  protocol::Writer writer(side.buffer);
  writer.putCount16(static_cast<size_t>(fields));
  for (int i = 0; i < fields; ++i) {
    if (PQgetisnull(result, row, i)) {
      writer.putInt32(-1);
      continue;
    }
    const int length = PQgetlength(result, row, i);
    writer.putInt32(length);
    writer.putBytes(std::string_view(PQgetvalue(result, row, i), static_cast<size_t>(length)));
  }
  side.digest.onDataRow(protocol::asBytes(side.buffer));
}

void commandComplete(AttemptSide& side, PGresult* result) {
  side.buffer.assign(PQcmdStatus(result));
  side.buffer.push_back('\0');
  side.digest.onCommandComplete(protocol::asBytes(side.buffer));
}

void digestResult(AttemptSide& side, PGresult* result) {
  switch (PQresultStatus(result)) {
    case PGRES_SINGLE_TUPLE:
    case PGRES_TUPLES_OK:
      if (!side.described) describe(side, result);
      for (int row = 0; row < PQntuples(result); ++row) dataRow(side, result, row);
      if (PQresultStatus(result) == PGRES_TUPLES_OK) commandComplete(side, result);
      return;
    case PGRES_COMMAND_OK:
      commandComplete(side, result);
      return;
    case PGRES_EMPTY_QUERY:
      side.digest.onEmptyQueryResponse();
      return;
    case PGRES_FATAL_ERROR: {
      if (sessionEnded(side.conn.get(), result)) {
        side.fail(firstLine(PQresultErrorMessage(result)), AttemptSide::Connection::Lost);
        return;
      }
      const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      const char* message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
      side.buffer.clear();
      protocol::Writer writer(side.buffer);
      protocol::ErrorResponse::make("ERROR", sqlstate, message != nullptr ? message : "").encodeBody(writer);
      side.digest.onError(protocol::asBytes(side.buffer));
      return;
    }
    case PGRES_COPY_OUT:
    case PGRES_COPY_IN:
    case PGRES_COPY_BOTH:
      // libpq hands the COPY state back on every PQgetResult; the connection is dropped instead.
      side.fail("a COPY cannot be rechecked", AttemptSide::Connection::Unclean);
      return;
    default:
      side.fail(fmt::format("unexpected result {}", PQresStatus(PQresultStatus(result))), AttemptSide::Connection::Unclean);
      return;
  }
}

void noteSetupResult(AttemptSide& side, PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status == PGRES_COPY_OUT || status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
    side.fail("a COPY in the session setup cannot be rechecked", AttemptSide::Connection::Unclean);
    return;
  }
  if (status != PGRES_FATAL_ERROR || !side.setup_sqlstate.empty()) return;
  if (sessionEnded(side.conn.get(), result)) {
    side.fail(firstLine(PQresultErrorMessage(result)), AttemptSide::Connection::Lost);
    return;
  }
  side.setup_sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
}

void noteCleanupResult(AttemptSide& side, PGresult* result) {
  const ExecStatusType status = PQresultStatus(result);
  if (status != PGRES_COMMAND_OK) side.drop = true;
}

}  // namespace cutover::proxy::recheck
