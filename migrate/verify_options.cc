#include "migrate/verify_options.h"

#include <fmt/format.h>

#include <charconv>

namespace cutover::migrate {
namespace {

template <typename T>
bool parseNumber(const std::string& text, T& out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

Result<VerifyOptions> parseVerifyArgs(const std::vector<std::string>& args) {
  VerifyOptions o;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string arg = args[i];
    std::string value;
    bool has_value = false;
    if (auto eq = arg.find('='); arg.starts_with("--") && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg.resize(eq);
      has_value = true;
    }
    auto next = [&]() -> Result<std::string> {
      if (has_value) return value;
      if (i + 1 >= args.size()) return Status::error(fmt::format("cutover verify: {} needs a value", arg));
      return args[++i];
    };
    auto number = [&](auto& out, auto min) -> Status {
      auto text = next();
      if (!text) return text.status();
      if (!parseNumber(*text, out) || out < min) {
        return Status::error(fmt::format("cutover verify: {} must be a number >= {}, got '{}'", arg, min, *text));
      }
      return Status::ok();
    };
    Status status;
    if (arg == "--config" || arg == "-c") {
      auto v = next();
      if (!v) return v.status();
      o.config_path = *v;
    } else if (arg == "--table" || arg == "--exclude") {
      auto v = next();
      if (!v) return v.status();
      (arg == "--table" ? o.tables : o.exclude).push_back(*v);
    } else if (arg == "--json") {
      auto v = next();
      if (!v) return v.status();
      o.json_path = *v;
    } else if (arg == "--job") {
      auto v = next();
      if (!v) return v.status();
      if (v->empty()) return Status::error("cutover verify: --job needs a job id");
      o.job_id = *v;
    } else if (arg == "--sample") {
      status = number(o.sample, int64_t{0});
    } else if (arg == "--chunk-rows") {
      status = number(o.chunk_rows, int64_t{1});
    } else if (arg == "--workers") {
      status = number(o.workers, 1);
    } else if (arg == "--lease-s") {
      status = number(o.lease_s, 1);
    } else if (arg == "--max-rows-per-sec") {
      status = number(o.max_rows_per_sec, 0.0);
    } else if (arg == "--show-values" && !has_value) {
      o.show_values = true;
    } else if (arg == "--quiet" && !has_value) {
      o.quiet = true;
    } else {
      return Status::error(fmt::format("cutover verify: unknown argument '{}'", args[i]));
    }
    if (!status) return status;
  }
  if (o.config_path.empty()) return Status::error("cutover verify: --config FILE is required");
  return o;
}

}  // namespace cutover::migrate
