#pragma once

// The Classifier's cache key: the statement text with every numeric constant replaced by one
// placeholder byte, so `... WHERE aid = 17` and `... WHERE aid = 98213` share one cache entry.
// Safe because nothing a StatementInfo records depends on a number's value (kinds, tables,
// functions, locking, ORDER BY/LIMIT presence; `'now'`-style string casts are strings, kept).
// Lexing follows PostgreSQL 15's scanner where it matters: string constants ('…', E'…' with
// backslash escapes, U&'…'), quoted identifiers ("…"), dollar quotes ($tag$…$tag$), comments
// (-- and nested /* */), parameters ($1) and digits inside identifiers (t1) are copied as they
// are. Anything it does not follow to its end (an unterminated string or comment) makes it give
// the text unchanged.

#include <string>
#include <string_view>

namespace cutover::router {

// Writes the key of `sql` into `out` (cleared first; its capacity is reused).
void cacheKey(std::string_view sql, std::string& out);

// `sql` with every string constant ('…', E'…', $tag$…$tag$) and comment longer than
// `long_literal` bytes replaced by an empty one ('', $$$$, a space), lexed as cacheKey lexes.
// What a statement is (its kind, tables, functions, locks) does not depend on a long constant's
// contents, so a 100 MB bytea literal is classified from a few bytes, never copied into the
// parser. False (and `out` empty) when nothing is that long or the text has an unterminated
// string or comment.
bool withoutLongLiterals(std::string_view sql, size_t long_literal, std::string& out);

}  // namespace cutover::router
