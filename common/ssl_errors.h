#pragma once

#include <string>

namespace cutover {

// The OpenSSL error queue of this thread as one line ("…; …"), and cleared; "unknown TLS error"
// when it is empty. For error messages and logs of every TLS user (data path, admin API, ctl).
std::string takeSslErrors();

}  // namespace cutover
