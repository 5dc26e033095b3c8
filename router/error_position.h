#pragma once

#include <optional>
#include <string_view>

namespace cutover::router {

// A statement cutover rewrote (row images: libpg_query's deparse of the client's statement with
// more RETURNING items) that fails reports its error position (ErrorResponse 'P': 1-based, in
// characters) in cutover's text, and the client's driver marks that place in the text it sent
// (psql's "LINE 1: …" caret). Mapped token by token: the deparser keeps the client's tokens in
// their order, only spacing and case differ. Returns the 1-based position in `original` of the
// token at `position` in `rewritten`, or nothing when the token sequences differ before it (the
// caller then drops the position rather than point at the wrong place). Positions count UTF-8
// characters, as PostgreSQL counts them in a UTF-8 database.
std::optional<int> mapErrorPosition(std::string_view original, std::string_view rewritten, int position);

}  // namespace cutover::router
