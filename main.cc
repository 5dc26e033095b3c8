// cutover: one binary, subcommands as DESIGN.md "Interfaces" names them.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "admin/ctl.h"
#include "common/log.h"
#include "config/config.h"
#include "migrate/verify.h"
#include "proxy/server.h"

namespace {

constexpr const char* kUsage =
    "usage:\n"
    "  cutover proxy --config FILE     run the proxy (the default subcommand)\n"
    "  cutover ctl COMMAND ...         flags | set K=V... | rollback | status (cutover ctl --help)\n"
    "  cutover verify --config FILE    prove old and new hold the same data (cutover verify --help)\n"
    "  cutover --version\n"
    "  cutover help\n";

int runProxy(int argc, char** argv, int first) {
  std::string config_path;
  for (int i = first; i < argc; ++i) {
    std::string_view arg = argv[i];
    if ((arg == "--config" || arg == "-c") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (arg.starts_with("--config=")) {
      config_path = std::string(arg.substr(9));
    } else {
      std::fprintf(stderr, "cutover proxy: unknown argument '%s'\n%s", argv[i], kUsage);
      return 2;
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "cutover proxy: --config FILE is required\n%s", kUsage);
    return 2;
  }
  auto config = cutover::config::loadFile(config_path);
  if (!config.isOk()) {
    std::fprintf(stderr, "cutover: %s\n", config.status().message().c_str());
    return 2;
  }
  cutover::log::Level level;
  if (cutover::log::parseLevel(config->log_level, level)) cutover::log::setLevel(level);
  cutover::proxy::Server server(config.value(), config_path);
  cutover::Status status = server.run();
  if (!status.isOk()) {
    cutover::log::error("{}", status.message());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view command = argv[1];
  if (command == "--version" || command == "version") {
    std::printf("cutover %s\n", CUTOVER_VERSION);
    return 0;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (command == "proxy") return runProxy(argc, argv, 2);
  if (command.starts_with("-")) return runProxy(argc, argv, 1);   // "proxy" is the default subcommand
  if (command == "ctl") {
    cutover::admin::CtlEnvironment environment{std::cout, std::cerr, {}};
    return cutover::admin::runCtl(std::vector<std::string>(argv + 2, argv + argc), environment);
  }
  if (command == "verify") {
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const std::string& arg : args) {
      if (arg == "--help" || arg == "-h") {
        std::fputs(cutover::migrate::kVerifyUsage, stdout);
        return 0;
      }
    }
    auto options = cutover::migrate::parseVerifyArgs(args);
    if (!options.isOk()) {
      std::fprintf(stderr, "%s\n%s", options.status().message().c_str(), cutover::migrate::kVerifyUsage);
      return 2;
    }
    return cutover::migrate::runVerify(options.value(), std::cout, std::cerr);
  }
  if (command == "backfill" || command == "repair") {
    std::fprintf(stderr, "cutover %s: not available in this build yet (pass-through proxy only)\n", argv[1]);
    return 2;
  }
  std::fprintf(stderr, "cutover: unknown command '%s'\n%s", argv[1], kUsage);
  return 2;
}
