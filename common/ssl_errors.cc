#include "common/ssl_errors.h"

#include <openssl/err.h>

namespace cutover {

std::string takeSslErrors() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown TLS error" : out;
}

}  // namespace cutover
