#include "config/config.h"

#include <fmt/format.h>

#include "config/enum_names.h"

namespace cutover::config {

std::string_view toString(SslMode value) { return enumName<SslMode>(kSslModeNames, value); }
std::string_view toString(AuthMethod value) {
  return enumName<AuthMethod>(kAuthMethodNames, value);
}
std::string_view toString(TlsMode value) { return enumName<TlsMode>(kTlsModeNames, value); }
std::string_view toString(WritesMode value) {
  return enumName<WritesMode>(kWritesModeNames, value);
}
std::string_view toString(MirrorMode value) {
  return enumName<MirrorMode>(kMirrorModeNames, value);
}
std::string_view toString(Sticky value) { return enumName<Sticky>(kStickyNames, value); }
std::string_view toString(FlagStoreKind value) {
  return enumName<FlagStoreKind>(kFlagStoreKindNames, value);
}

ControlConfig controlFromOldStore(const StoreConfig& old_store) {
  ControlConfig control;
  control.host = old_store.host;
  control.port = old_store.port;
  control.user = old_store.user;
  control.database = old_store.database.value_or("postgres");
  control.password = old_store.password;
  control.sslmode = old_store.sslmode;
  control.sslrootcert = old_store.sslrootcert;
  return control;
}

std::string HostPort::toString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace cutover::config
