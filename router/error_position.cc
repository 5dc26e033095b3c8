#include "router/error_position.h"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <string>
#include <vector>

namespace cutover::router {
namespace {

struct Token {
  int start = 0;   // byte offsets
  int end = 0;
  int kind = 0;
};

// The statement's tokens, or nothing when it does not scan.
std::optional<std::vector<Token>> tokensOf(std::string_view sql) {
  PgQueryScanResult result = pg_query_scan(std::string(sql).c_str());
  std::optional<std::vector<Token>> tokens;
  if (result.error == nullptr) {
    PgQuery__ScanResult* scan = pg_query__scan_result__unpack(nullptr, result.pbuf.len,
                                                              reinterpret_cast<const uint8_t*>(result.pbuf.data));
    if (scan != nullptr) {
      tokens.emplace();
      for (size_t i = 0; i < scan->n_tokens; ++i) {
        tokens->push_back({scan->tokens[i]->start, scan->tokens[i]->end, static_cast<int>(scan->tokens[i]->token)});
      }
      pg_query__scan_result__free_unpacked(scan, nullptr);
    }
  }
  pg_query_free_scan_result(result);
  return tokens;
}

bool continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// The byte offset of the character at 0-based `chars`, or -1 past the end.
int byteOf(std::string_view text, int chars) {
  int seen = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (continuation(static_cast<unsigned char>(text[i]))) continue;
    if (seen == chars) return static_cast<int>(i);
    ++seen;
  }
  return -1;
}

int charsBefore(std::string_view text, int byte) {
  int chars = 0;
  for (int i = 0; i < byte && i < static_cast<int>(text.size()); ++i) {
    if (!continuation(static_cast<unsigned char>(text[i]))) ++chars;
  }
  return chars;
}

}  // namespace

std::optional<int> mapErrorPosition(std::string_view original, std::string_view rewritten, int position) {
  if (position < 1) return std::nullopt;
  const int at = byteOf(rewritten, position - 1);
  if (at < 0) return std::nullopt;
  const auto from = tokensOf(rewritten);
  const auto to = tokensOf(original);
  if (!from || !to) return std::nullopt;
  for (size_t i = 0; i < from->size() && i < to->size(); ++i) {
    if ((*from)[i].kind != (*to)[i].kind) return std::nullopt;
    if (at < (*from)[i].start) {
      // Between tokens (PostgreSQL points at the end of the input, or at a space): the same
      // distance before the original's token.
      const int before = (*from)[i].start - at;
      if (before > (*to)[i].start) return std::nullopt;
      return charsBefore(original, (*to)[i].start - before) + 1;
    }
    if (at < (*from)[i].end) {
      const int into = at - (*from)[i].start;
      if ((*to)[i].start + into >= (*to)[i].end) return charsBefore(original, (*to)[i].start) + 1;
      return charsBefore(original, (*to)[i].start + into) + 1;
    }
  }
  return std::nullopt;   // past the client's tokens: in what cutover added
}

}  // namespace cutover::router
