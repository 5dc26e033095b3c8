#include "pgclient/conninfo.h"

#include <gtest/gtest.h>

#include <string>

namespace cutover::pgclient {
namespace {

config::StoreConfig store() {
  config::StoreConfig s;
  s.name = "new";
  s.host = "10.0.0.7";
  s.port = 5433;
  s.user = "app";
  s.password = "s3cret";
  s.database = "app_v2";
  s.sslmode = config::SslMode::Require;
  s.sslrootcert = "/etc/ca.pem";
  return s;
}

TEST(ConnectParams, FromStore) {
  const ConnectParams p = paramsFor(store(), "cutover-verify");
  EXPECT_EQ(p.toString(),
            "host=10.0.0.7 port=5433 dbname=app_v2 user=app sslmode=require "
            "sslrootcert=/etc/ca.pem application_name=cutover-verify");
  EXPECT_EQ(p.get("password"), "s3cret");
  EXPECT_EQ(p.describe(), "10.0.0.7:5433/app_v2");
}

TEST(ConnectParams, DatabaseOverrideAndDefaults) {
  config::StoreConfig s;
  s.port = 5432;
  EXPECT_EQ(paramsFor(s, "x").toString(),
            "host=127.0.0.1 port=5432 dbname=postgres sslmode=prefer application_name=x");
  s.database = "app";
  EXPECT_EQ(paramsFor(s, "x", "other").get("dbname"), "other");
  EXPECT_EQ(paramsFor(s, "x").get("dbname"), "app");
  EXPECT_EQ(paramsFor(s, "x").get("user"), "");
}

TEST(ConnectParams, SettingsAppendToOptionsEscaped) {
  ConnectParams p;
  p.setting("TimeZone", "UTC").setting("DateStyle", "ISO, YMD").setting("search_path", "a\\b");
  EXPECT_EQ(p.get("options"), "-c TimeZone=UTC -c DateStyle=ISO,\\ YMD -c search_path=a\\\\b");
}

TEST(ConnectParams, SetReplacesAndArraysAreNullTerminated) {
  ConnectParams p;
  p.set("host", "a").set("port", "1").set("host", "b");
  const auto keys = p.keywords();
  const auto values = p.values();
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_STREQ(keys[0], "host");
  EXPECT_STREQ(values[0], "b");
  EXPECT_STREQ(keys[1], "port");
  EXPECT_EQ(keys[2], nullptr);
  EXPECT_EQ(values[2], nullptr);
}

TEST(ControlFor, OldStoreWhenNoControlConfigured) {
  config::Config c;
  c.old_store = store();
  const config::ControlConfig control = controlFor(c);
  EXPECT_EQ(control.host, "10.0.0.7");
  EXPECT_EQ(control.port, 5433);
  EXPECT_EQ(control.database, "app_v2");
  EXPECT_EQ(control.user, std::optional<std::string>("app"));
  EXPECT_EQ(control.password, std::optional<std::string>("s3cret"));
  EXPECT_EQ(control.sslmode, config::SslMode::Require);
  EXPECT_EQ(paramsFor(control, "j").describe(), "10.0.0.7:5433/app_v2");
}

TEST(ControlFor, FlagsControlWins) {
  config::Config c;
  c.old_store = store();
  config::ControlConfig control;
  control.host = "ctl";
  control.port = 6000;
  control.database = "cutover";
  c.flags.control = control;
  EXPECT_EQ(paramsFor(controlFor(c), "j").describe(), "ctl:6000/cutover");
}

}  // namespace
}  // namespace cutover::pgclient
