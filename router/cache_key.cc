#include "router/cache_key.h"

#include <cctype>

namespace cutover::router {
namespace {

constexpr char kNumber = '\x01';   // cannot appear in SQL outside a string
constexpr char kString = '\x02';   // a string constant whose value cannot matter (cacheKey)

// Non-ASCII bytes are identifier characters, as in PostgreSQL's scanner ("tä1" is one name).
bool identChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$' || static_cast<unsigned char>(c) >= 0x80;
}
bool identStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || static_cast<unsigned char>(c) >= 0x80; }
bool digit(char c) { return c >= '0' && c <= '9'; }

// End of a numeric constant starting at i (a digit, or '.' then a digit), as PostgreSQL lexes
// integer / decimal / real.
size_t numberEnd(std::string_view s, size_t i) {
  while (i < s.size() && digit(s[i])) ++i;
  if (i < s.size() && s[i] == '.' && !(i + 1 < s.size() && s[i + 1] == '.')) {   // "1..2" is 1 then ..
    ++i;
    while (i < s.size() && digit(s[i])) ++i;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    size_t j = i + 1;
    if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
    if (j < s.size() && digit(s[j])) {
      i = j;
      while (i < s.size() && digit(s[i])) ++i;
    }
  }
  return i;
}

// End of a quoted run starting at the opening quote i, or npos if unterminated. Doubled quotes
// stay inside; with `backslash`, \x escapes too.
size_t quotedEnd(std::string_view s, size_t i, char quote, bool backslash) {
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (backslash && s[j] == '\\') {
      ++j;
      continue;
    }
    if (s[j] == quote) {
      if (j + 1 < s.size() && s[j + 1] == quote) {
        ++j;
        continue;
      }
      return j + 1;
    }
  }
  return std::string_view::npos;
}

enum class Token { Number, String, DollarString, Comment, Other };

// Calls fn(token, begin, end) for each lexical piece of `s`, in order and covering all of it
// (whitespace and punctuation come one byte at a time as Other). False when something is not
// followed to its end (an unterminated string or comment): then the caller gives up on `s`.
template <typename Fn>
bool scan(std::string_view s, Fn&& fn) {
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    size_t end = i + 1;
    Token token = Token::Other;
    if (c == '\'') {
      const bool escapes = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') && (i < 2 || !identChar(s[i - 2]));
      end = quotedEnd(s, i, '\'', escapes);
      token = Token::String;
    } else if (c == '"') {
      end = quotedEnd(s, i, '"', false);
    } else if (c == '-' && i + 1 < s.size() && s[i + 1] == '-') {
      end = s.find('\n', i);
      end = end == std::string_view::npos ? s.size() : end + 1;
      token = Token::Comment;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      int depth = 1;
      size_t j = i + 2;
      while (j < s.size() && depth > 0) {
        if (s[j] == '/' && j + 1 < s.size() && s[j + 1] == '*') {
          ++depth;
          j += 2;
        } else if (s[j] == '*' && j + 1 < s.size() && s[j + 1] == '/') {
          --depth;
          j += 2;
        } else {
          ++j;
        }
      }
      end = depth == 0 ? j : std::string_view::npos;
      token = Token::Comment;
    } else if (c == '$' && (i == 0 || !identChar(s[i - 1])) && i + 1 < s.size() && !digit(s[i + 1])) {
      // $tag$ … $tag$ (tag empty or an identifier); "$1" is a parameter, copied below.
      size_t j = i + 1;
      if (j < s.size() && identStart(s[j])) {
        while (j < s.size() && (identChar(s[j]) && s[j] != '$')) ++j;
      }
      if (j < s.size() && s[j] == '$') {
        const std::string_view tag = s.substr(i, j - i + 1);
        const size_t close = s.find(tag, j + 1);
        end = close == std::string_view::npos ? std::string_view::npos : close + tag.size();
        token = Token::DollarString;
      }
    } else if ((digit(c) || (c == '.' && i + 1 < s.size() && digit(s[i + 1]))) && (i == 0 || !identChar(s[i - 1]))) {
      end = numberEnd(s, i);
      token = Token::Number;
    } else if (identChar(c)) {
      while (end < s.size() && identChar(s[end])) ++end;
    }
    if (end == std::string_view::npos) return false;
    fn(token, i, end);
    i = end;
  }
  return true;
}

bool equalsLower(std::string_view word, std::string_view lower) {
  if (word.size() != lower.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(word[i])) != lower[i]) return false;
  }
  return true;
}

// After these a string constant is a plain value (an operand, an argument, a list item): never a
// typed literal's body (`timestamptz '…'`, `interval '…'`), an option value, a file name or a
// prefix's string (E'…' is handled by the caller).
bool valueKeyword(std::string_view word) {
  static constexpr std::string_view kWords[] = {"and", "or", "not", "like", "ilike", "then", "else", "when",
                                                "between", "select", "in", "returning", "is"};
  if (word.size() > 9) return false;
  for (std::string_view w : kWords) {
    if (equalsLower(word, w)) return true;
  }
  return false;
}

bool operatorChar(char c) {
  switch (c) {
    case '=': case '<': case '>': case '!': case '(': case ',': case '+': case '-': case '*': case '/':
    case '%': case '|': case '~': case '@': case '#': case '^': case '&': case '[':
      return true;
    default:
      return false;
  }
}

// 'now', 'today', 'tomorrow', 'yesterday' (alone or with a time) are read from the clock when
// the value is typed: the classifier flags them (nondeterministic, unrepeatable), so they keep
// their own key.
bool readsTheClock(std::string_view body) {
  if (body.size() > 64) return false;   // a special value is short; a long constant is data
  for (size_t i = 0; i < body.size(); ++i) {
    for (std::string_view word : {"now", "today", "tomorrow", "yesterday"}) {
      if (equalsLower(body.substr(i, word.size()), word)) return true;
    }
  }
  return false;
}

// Whether the string constant s[begin, end) stands where its value cannot matter (see the
// header): looked at only when a constant comes, by what is before and after it. A comment
// anywhere before it (`commented`) makes "before" unreliable: kept.
bool valuePosition(std::string_view s, size_t begin, size_t end, Token token, bool commented) {
  const std::string_view piece = s.substr(begin, end - begin);
  std::string_view body;
  if (token == Token::String) {
    body = piece.substr(1, piece.size() - 2);
  } else {
    const size_t tag = piece.find('$', 1) + 1;
    body = piece.substr(tag, piece.size() - 2 * tag);
  }
  if (commented || readsTheClock(body)) return false;
  size_t after = end;
  while (after < s.size() && std::isspace(static_cast<unsigned char>(s[after]))) ++after;
  if (s.substr(after, 2) == "::") return false;
  size_t i = begin;
  if (token == Token::String) {
    // E'…' and U&'…' stand where a plain string does; B'…', X'…', N'…' are kept (a word before).
    if (i >= 1 && (s[i - 1] == 'E' || s[i - 1] == 'e') && (i < 2 || !identChar(s[i - 2]))) {
      i -= 1;
    } else if (i >= 2 && s[i - 1] == '&' && (s[i - 2] == 'U' || s[i - 2] == 'u') && (i < 3 || !identChar(s[i - 3]))) {
      i -= 2;
    }
  }
  while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1]))) --i;
  if (i == 0) return false;
  const char c = s[i - 1];
  if (operatorChar(c)) return true;
  if (!identChar(c)) return false;   // ')', ':', '"', ';', '.': kept
  size_t word = i;
  while (word > 0 && identChar(s[word - 1])) --word;
  return valueKeyword(s.substr(word, i - word));
}

}  // namespace

void cacheKey(std::string_view s, std::string& out) {
  out.clear();
  bool commented = false;
  const bool whole = scan(s, [&](Token token, size_t begin, size_t end) {
    if (token == Token::Number) {
      out += kNumber;
    } else if ((token == Token::String || token == Token::DollarString) &&
               valuePosition(s, begin, end, token, commented)) {
      out += kString;
    } else {
      commented = commented || token == Token::Comment;
      out.append(s.substr(begin, end - begin));
    }
  });
  if (!whole) out.assign(s);   // unterminated: not something to be clever about
}

bool withoutLongLiterals(std::string_view s, size_t long_literal, std::string& out) {
  out.clear();
  bool elided = false;
  const bool whole = scan(s, [&](Token token, size_t begin, size_t end) {
    if (end - begin <= long_literal || !(token == Token::String || token == Token::DollarString ||
                                         token == Token::Comment)) {
      out.append(s.substr(begin, end - begin));
      return;
    }
    elided = true;
    if (token == Token::String) {
      out += "''";
    } else if (token == Token::DollarString) {
      out += "$$$$";
    } else {
      out += ' ';
    }
  });
  if (!whole || !elided) {
    out.clear();
    return false;
  }
  return true;
}

}  // namespace cutover::router
