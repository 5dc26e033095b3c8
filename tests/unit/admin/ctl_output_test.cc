// The readable text `cutover ctl` prints for the admin API's answers.
#include "admin/ctl_output.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cutover::admin {
namespace {

using nlohmann::json;

const char* const kSnapshot = R"({"version":7,"writes":"dual","mirror":"sync","reads_new_percent":10,
  "shadow_percent":0,"sticky":"session","tables":{"users":{"writes":"dual"},"orders":{"reads_new_percent":50}},
  "changed_at":"2026-11-21T07:50:01.123Z","changed_by":"admin 127.0.0.1:5555","reason":"ramp"})";

TEST(CtlOutputTest, FlagsOneKeyPerLineTablesIndented) {
  EXPECT_EQ(renderFlags(json::parse(kSnapshot)),
            "version: 7\n"
            "writes: dual\n"
            "mirror: sync\n"
            "reads_new_percent: 10\n"
            "shadow_percent: 0\n"
            "sticky: session\n"
            "tables:\n"
            "  orders:\n"
            "    reads_new_percent: 50\n"
            "  users:\n"
            "    writes: dual\n"
            "changed_at: 2026-11-21T07:50:01.123Z\n"
            "changed_by: admin 127.0.0.1:5555\n"
            "reason: ramp\n");
}

TEST(CtlOutputTest, UnknownKeysMissingKeysAndOddValuesArePrinted) {
  json snapshot = json::parse(R"({"writes":"old","tables":{},"zeta":[1,"a",null],"reason":"",
                                  "note":"two\nlines","nested":[{"a":1}],"colour":null})");
  EXPECT_EQ(renderFlags(snapshot),
            "writes: old\n"
            "tables: {}\n"
            "reason: \"\"\n"
            "colour: null\n"
            "nested:\n"
            "  -:\n"
            "    a: 1\n"
            "note: \"two\\nlines\"\n"
            "zeta: [1, a, null]\n");
  EXPECT_EQ(renderFlags(json::object()), "");
  EXPECT_EQ(renderFlags(json("just text")), "just text\n");
}

TEST(CtlOutputTest, StatusPrintsWhateverIsThere) {
  json status = json::parse(std::string(R"({"flags":)") + kSnapshot + R"(,
      "stores":{"old":{"up":true},"new":{"up":false}},"sessions":3,"divergences":0,"mismatches":0,
      "flag_store":{"kind":"file","ok":true,"detail":"/var/lib/cutover/flags.json"},"uptime_s":12.5})");
  std::string text = renderStatus(status);
  EXPECT_EQ(text.substr(0, text.find("stores:")),
            "flags:\n"
            "  version: 7\n"
            "  writes: dual\n"
            "  mirror: sync\n"
            "  reads_new_percent: 10\n"
            "  shadow_percent: 0\n"
            "  sticky: session\n"
            "  tables:\n"
            "    orders:\n"
            "      reads_new_percent: 50\n"
            "    users:\n"
            "      writes: dual\n"
            "  changed_at: 2026-11-21T07:50:01.123Z\n"
            "  changed_by: admin 127.0.0.1:5555\n"
            "  reason: ramp\n");
  EXPECT_EQ(text.substr(text.find("stores:")),
            "stores:\n"
            "  old:\n"
            "    up: true\n"
            "  new:\n"
            "    up: false\n"
            "sessions: 3\n"
            "divergences: 0\n"
            "mismatches: 0\n"
            "flag_store:\n"
            "  kind: file\n"
            "  ok: true\n"
            "  detail: /var/lib/cutover/flags.json\n"
            "uptime_s: 12.5\n");
  EXPECT_EQ(renderStatus(json::parse(R"({"sessions":0})")), "sessions: 0\n");
}

TEST(CtlOutputTest, RollbackOneLine) {
  json answer = json::parse(std::string(R"({"flags":)") + kSnapshot + R"(,"workers":2,"applied_ms":0.41})");
  answer["flags"]["version"] = 8;
  answer["flags"]["reads_new_percent"] = 0;
  EXPECT_EQ(renderRollback(answer),
            "rolled back: flags v8, reads_new_percent 0, writes dual; applied by 2 workers in 0.4 ms\n");
  EXPECT_EQ(renderRollback(json::parse(R"({"workers":1,"applied_ms":0.041})")),
            "rolled back; applied by 1 worker in 0.04 ms\n");
  EXPECT_EQ(renderRollback(json::parse(R"({"applied_ms":12.26})")), "rolled back; applied in 12.3 ms\n");
  EXPECT_EQ(renderRollback(json::parse(R"({"flags":{"writes":"old"},"applied_ms":"fast"})")),
            "rolled back: writes old\n");
  EXPECT_EQ(renderRollback(json::object()), "rolled back\n");
  EXPECT_EQ(renderRollback(json::array()), "rolled back\n");
}

}  // namespace
}  // namespace cutover::admin
