#pragma once

// The Classifier's cache key: the statement text with every numeric constant replaced by one
// placeholder byte, and every string constant in a value's place by another, so `... WHERE aid =
// 17` and `... WHERE aid = 98213`, or `WHERE email = 'a@x.org'` and `WHERE email = 'b@y.org'`,
// share one cache entry (an app that inlines its literals classifies from the cache too).
// Safe because nothing a StatementInfo records depends on such a value (kinds, tables,
// functions, locking, ORDER BY/LIMIT presence). A string constant keeps its own key where its
// value can matter: before `::` ('now'::timestamptz, 'x'::regclass), after a word that is not a
// value keyword (a typed literal `interval '1 day'`, an option `FORMAT 'csv'`, a file name, the
// B'…'/X'…'/N'…' prefixes), and whenever it names a clock value (now, today, tomorrow, yesterday).
// Replaced are constants after an operator, `(`, `,`, `[` or one of AND OR NOT LIKE ILIKE THEN
// ELSE WHEN BETWEEN SELECT IN RETURNING IS (E'…' and U&'…' count as the plain string).
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
