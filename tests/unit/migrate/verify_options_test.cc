#include "migrate/verify_options.h"

#include <gtest/gtest.h>

namespace cutover::migrate {
namespace {

TEST(VerifyOptions, EveryOption) {
  auto o = parseVerifyArgs({"--config", "c.yaml", "--table", "a", "--table=s.b", "--exclude", "c",
                            "--sample", "1000", "--chunk-rows=500", "--workers", "3",
                            "--max-rows-per-sec", "2500.5", "--json", "out.json", "--job", "j1",
                            "--show-values", "--lease-s", "5", "--quiet"});
  ASSERT_TRUE(o.isOk()) << o.status().message();
  EXPECT_EQ(o->config_path, "c.yaml");
  EXPECT_EQ(o->tables, (std::vector<std::string>{"a", "s.b"}));
  EXPECT_EQ(o->exclude, (std::vector<std::string>{"c"}));
  EXPECT_EQ(o->sample, 1000);
  EXPECT_EQ(o->chunk_rows, 500);
  EXPECT_EQ(o->workers, 3);
  EXPECT_DOUBLE_EQ(o->max_rows_per_sec, 2500.5);
  EXPECT_EQ(o->json_path, "out.json");
  EXPECT_EQ(o->job_id, "j1");
  EXPECT_TRUE(o->show_values);
  EXPECT_EQ(o->lease_s, 5);
  EXPECT_TRUE(o->quiet);
}

TEST(VerifyOptions, Errors) {
  EXPECT_EQ(parseVerifyArgs({}).status().message(), "cutover verify: --config FILE is required");
  EXPECT_EQ(parseVerifyArgs({"--config"}).status().message(), "cutover verify: --config needs a value");
  EXPECT_EQ(parseVerifyArgs({"--config", "c", "--workers", "0"}).status().message(),
            "cutover verify: --workers must be a number >= 1, got '0'");
  EXPECT_EQ(parseVerifyArgs({"--config", "c", "--sample", "x"}).status().message(),
            "cutover verify: --sample must be a number >= 0, got 'x'");
  EXPECT_EQ(parseVerifyArgs({"--config", "c", "--frobnicate"}).status().message(),
            "cutover verify: unknown argument '--frobnicate'");
}

}  // namespace
}  // namespace cutover::migrate
