#include "config/users_file.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "protocol/scram.h"
#include "protocol/scram_server.h"

namespace cutover::config {
namespace {

// Written by a real PostgreSQL 15 for password "pencil" (see tests/unit/protocol/scram_server_test.cc).
constexpr std::string_view kVerifier =
    "SCRAM-SHA-256$4096:g/OEYcqE/kCt3+VFdZtXew==$zpG8yoCV2O3pwYvXp/aS9ejsaVKNesxiPFolncrPwLw=:"
    "QDHR8tqYu982nIcoxzsb/u5IUkCxKD19CVUQ6Q22pGI=";
constexpr std::string_view kMd5 = "md5e4f70fb0b8f2745aa7a69557c80cbd0c";

// Plaintext entries cost one PBKDF2 run each; tests use a single iteration.
Result<UsersFile> parse(std::string_view text) { return UsersFile::parse(text, "users.txt", 1); }

std::string errorOf(std::string_view text) {
  Result<UsersFile> result = parse(text);
  if (result.isOk()) return "<parsed without error>";
  return result.status().message();
}

TEST(UsersFileTest, ClassifiesSecrets) {
  std::string text = fmt::format(
      "\"alice\" \"{}\"\n"
      "\"bob\" \"{}\"\n"
      "\"carol\" \"correct horse\"\n",
      kVerifier, kMd5);
  Result<UsersFile> file = parse(text);
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->size(), 3u);

  const UserCredential* alice = file->find("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->kind, UserCredential::Kind::Scram);
  EXPECT_EQ(alice->secret, kVerifier);
  ASSERT_TRUE(alice->scram.has_value());
  EXPECT_EQ(protocol::formatScramVerifier(*alice->scram), kVerifier);

  const UserCredential* bob = file->find("bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(bob->kind, UserCredential::Kind::Md5);
  EXPECT_EQ(bob->secret, kMd5);
  EXPECT_FALSE(bob->scram.has_value());

  const UserCredential* carol = file->find("carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->kind, UserCredential::Kind::Plain);
  EXPECT_EQ(carol->secret, "correct horse");
  ASSERT_TRUE(carol->scram.has_value());
  EXPECT_EQ(carol->scram->iterations, 1);
  EXPECT_EQ(carol->scram->salt.size(), protocol::kScramDefaultSaltBytes);

  EXPECT_EQ(file->find("dave"), nullptr);
  EXPECT_EQ(file->find("Alice"), nullptr);  // names are case-sensitive, as in PostgreSQL
}

TEST(UsersFileTest, PlainPasswordGetsAWorkingVerifier) {
  Result<UsersFile> file = UsersFile::parse("\"carol\" \"correct horse\"\n", "users.txt");
  ASSERT_TRUE(file.isOk());
  const UserCredential* carol = file->find("carol");
  ASSERT_NE(carol, nullptr);
  EXPECT_EQ(carol->scram->iterations, protocol::kScramDefaultIterations);
  protocol::ScramServer server(*carol->scram, "");
  protocol::ScramClient client("correct horse");
  Result<std::string> first = server.handleClientFirst(protocol::kScramSha256, client.clientFirstMessage());
  ASSERT_TRUE(first.isOk());
  Result<std::string> final_message = client.handleServerFirst(*first);
  ASSERT_TRUE(final_message.isOk());
  EXPECT_TRUE(server.handleClientFinal(*final_message).isOk());
  EXPECT_TRUE(server.succeeded());
}

TEST(UsersFileTest, PlainPasswordSaltsAreRandom) {
  Result<UsersFile> a = parse("\"u\" \"pw\"");
  Result<UsersFile> b = parse("\"u\" \"pw\"");
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(a->find("u")->scram->salt, b->find("u")->scram->salt);
}

TEST(UsersFileTest, Md5NeedsLowerCaseHexOfTheRightLength) {
  // Anything that is not exactly "md5" + 32 lower-case hex is a plaintext password.
  for (std::string secret : {std::string("md5E4F70FB0B8F2745AA7A69557C80CBD0C"),
                             std::string(kMd5.substr(0, 34)), std::string(kMd5) + "0",
                             std::string("md5e4f70fb0b8f2745aa7a69557c80cbdzz"), std::string("MD5") +
                             std::string(kMd5.substr(3))}) {
    Result<UsersFile> file = parse(fmt::format("\"u\" \"{}\"", secret));
    ASSERT_TRUE(file.isOk()) << secret;
    EXPECT_EQ(file->find("u")->kind, UserCredential::Kind::Plain) << secret;
  }
}

TEST(UsersFileTest, QuotesCommentsBlankLinesAndSpacing) {
  Result<UsersFile> file = parse(
      "# users for cutover\n"
      "\n"
      "   \t\n"
      "  # indented comment \"x\" \"y\"\n"
      "\"say \"\"hi\"\"\"   \"pa\"\"ss\"\r\n"
      "\t\"tab\"\t\"x\"\n"
      "\"with space\" \"a b\" trailing fields are ignored, as in PgBouncer\n"
      "\"#not a comment\" \"z\"\n"
      "\"last\" \"no newline\"");
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->size(), 5u);
  ASSERT_NE(file->find("say \"hi\""), nullptr);
  EXPECT_EQ(file->find("say \"hi\"")->secret, "pa\"ss");
  EXPECT_EQ(file->find("tab")->secret, "x");
  EXPECT_EQ(file->find("with space")->secret, "a b");
  EXPECT_EQ(file->find("#not a comment")->secret, "z");
  EXPECT_EQ(file->find("last")->secret, "no newline");
}

TEST(UsersFileTest, EmptyFile) {
  Result<UsersFile> file = parse("");
  ASSERT_TRUE(file.isOk());
  EXPECT_EQ(file->size(), 0u);
  EXPECT_EQ(parse("# only a comment\n\n")->size(), 0u);
}

TEST(UsersFileTest, FormatErrorsNameTheLine) {
  EXPECT_EQ(errorOf("alice \"pw\"\n"), "users.txt:1: expected a double-quoted user name");
  EXPECT_EQ(errorOf("# c\n\n'alice' 'pw'\n"), "users.txt:3: expected a double-quoted user name");
  EXPECT_EQ(errorOf("\"alice\" \"pw\"\n\"bob\n"), "users.txt:2: unterminated quoted user name");
  EXPECT_EQ(errorOf("\"alice\"\n"), "users.txt:1: expected a double-quoted password after the user name");
  EXPECT_EQ(errorOf("\"alice\" pw\n"), "users.txt:1: expected a double-quoted password after the user name");
  EXPECT_EQ(errorOf("\"alice\" \"pw\n\"\n"), "users.txt:1: unterminated quoted password for user \"alice\"");
  EXPECT_EQ(errorOf("\"\" \"pw\"\n"), "users.txt:1: empty user name");
  EXPECT_EQ(errorOf("\"alice\" \"\"\n"), "users.txt:1: empty password for user \"alice\"");
  // No blank between the fields: "" is a quote inside the name, which then swallows the password.
  EXPECT_EQ(errorOf("\"tight\"\"y\"\n"), "users.txt:1: expected a double-quoted password after the user name");
}

TEST(UsersFileTest, DuplicateUserNamesBothLines) {
  EXPECT_EQ(errorOf("\"alice\" \"one\"\n# comment\n\"bob\" \"x\"\n\"alice\" \"two\"\n"),
            "users.txt:4: user \"alice\" is defined twice (lines 1 and 4)");
}

TEST(UsersFileTest, BadScramVerifier) {
  EXPECT_EQ(errorOf("\"alice\" \"SCRAM-SHA-256$4096:g/OEYcqE/kCt3+VFdZtXew==$YWI=:YWI=\"\n"),
            "users.txt:1: user \"alice\": invalid SCRAM verifier: keys must be base64 SHA-256 digests");
  EXPECT_EQ(errorOf("\n\"alice\" \"SCRAM-SHA-256$0:g/OEYcqE/kCt3+VFdZtXew==$a:b\"\n"),
            "users.txt:2: user \"alice\": invalid SCRAM verifier: bad iteration count");
  EXPECT_EQ(errorOf("\"alice\" \"SCRAM-SHA-256$hunter2\"\n"),
            "users.txt:1: user \"alice\": invalid SCRAM verifier: expected <iterations>:<salt>$<StoredKey>:<ServerKey>");
}

TEST(UsersFileTest, NoErrorContainsASecret) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\"alice\" \"hunter2-secret\n", "hunter2-secret"},
      {"hunter2-secret\n", "hunter2-secret"},
      {"\"alice\"\"hunter2-secret\"\n", "hunter2-secret"},
      {"\"alice\" hunter2-secret\n", "hunter2-secret"},
      {"\"alice\" \"SCRAM-SHA-256$4096:c2VjcmV0c2FsdA==$hunter2/secret=:x\"\n", "hunter2"},
      {"\"alice\" \"SCRAM-SHA-256$4096:c2VjcmV0c2FsdA==$hunter2/secret=:x\"\n", "c2VjcmV0c2FsdA=="},
      {"\"alice\" \"hunter2-secret\"\n\"alice\" \"other-secret\"\n", "hunter2-secret"},
      {"\"alice\" \"hunter2-secret\"\n\"alice\" \"other-secret\"\n", "other-secret"},
  };
  for (const auto& [text, secret] : cases) {
    std::string message = errorOf(text);
    EXPECT_NE(message, "<parsed without error>") << text;
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
  }
}

class UsersFileLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "users_file_test_XXXXXX";
    dir_ = mkdtemp(pattern.data());
  }
  void TearDown() override {
    for (const auto& path : files_) unlink(path.c_str());
    rmdir(dir_.c_str());
  }
  std::string write(const std::string& name, const std::string& content) {
    std::string path = dir_ + "/" + name;
    std::ofstream(path) << content;
    files_.push_back(path);
    return path;
  }
  std::string dir_;
  std::vector<std::string> files_;
};

TEST_F(UsersFileLoadTest, LoadsAndNamesThePathInErrors) {
  std::string good = write("users.txt", fmt::format("\"alice\" \"{}\"\n", kVerifier));
  Result<UsersFile> file = UsersFile::load(good);
  ASSERT_TRUE(file.isOk()) << file.status().message();
  EXPECT_EQ(file->size(), 1u);

  std::string bad = write("bad.txt", "\"alice\" \"pw\"\n\"bob\" \"never-shown\n");
  EXPECT_EQ(UsersFile::load(bad).status().message(), bad + ":2: unterminated quoted password for user \"bob\"");

  std::string missing = dir_ + "/missing.txt";
  EXPECT_EQ(UsersFile::load(missing).status().message(),
            "cannot read users file " + missing + ": No such file or directory");
}

}  // namespace
}  // namespace cutover::config
