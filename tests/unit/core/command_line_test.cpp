// core/command_line: the one parser of ca-server's and ca-clone's command lines, under both
// programs' rules. The exact texts the programs print are checked on the binaries themselves
// (tests/cli/check_command_lines.py).
#include "core/command_line.hpp"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace ca {
namespace {

// argv-style storage for one command line.
class Argv {
 public:
  Argv(std::initializer_list<const char*> args) : text_(args.begin(), args.end()) {
    for (auto& t : text_) pointers_.push_back(t.data());
  }
  CommandArgs args() const { return {pointers_.data(), pointers_.size()}; }

 private:
  std::vector<std::string> text_;
  std::vector<char*> pointers_;
};

constexpr std::string_view kUsage = "usage: test [options]\n";

// The options of a ca-clone subcommand.
struct Subcommand {
  std::string config, password_file;
  bool json = false;
  OptionParser parser{"ca-clone test", kUsage};
  Subcommand() {
    parser.value("--config", &config).value("--pkcs12-password-file", &password_file).flag("--json", &json);
  }
  Result<OptionParser::Parsed> read(std::initializer_list<const char*> args) { return parser.read(Argv(args).args()); }
};

// A ca-server-like command line: words, options between them, -h as a flag.
struct Server {
  std::vector<std::string> words;
  std::string config;
  int port = 0;
  bool help = false, version = false;
  OptionParser parser{"ca-server", kUsage, OptionRules::server()};
  Server() {
    parser.flag("-h", &help).flag("--help", &help).flag("--version", [this] { version = true; });
    parser.value("--config", &config).value("--port", [this](std::string_view v) -> Status {
      if (v != "8443") return fail(Error::bad_request(fmt::format("--port: '{}' is not a port number", v)));
      port = 8443;
      return ok();
    });
    parser.positional([this](std::string_view word) {
      if (words.size() == 2) return false;
      words.emplace_back(word);
      return true;
    });
  }
  Result<OptionParser::Parsed> read(std::initializer_list<const char*> args) { return parser.read(Argv(args).args()); }
};

void expect_refused(const Result<OptionParser::Parsed>& parsed, const std::string& message) {
  ASSERT_FALSE(parsed) << "accepted; expected: " << message;
  EXPECT_EQ(parsed.error().code, ErrorCode::bad_request);
  EXPECT_EQ(parsed.error().message, message);
}

TEST(CommandLine, ASubcommandTakesValuesBothWaysAndFlags) {
  Subcommand c;
  auto parsed = c.read({"--config", "a.yaml", "--pkcs12-password-file=pw", "--json"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, OptionParser::Parsed::go_on);
  EXPECT_EQ(c.config, "a.yaml");
  EXPECT_EQ(c.password_file, "pw");
  EXPECT_TRUE(c.json);
  EXPECT_TRUE(c.parser.given("--config"));
  EXPECT_TRUE(c.parser.given("--json"));
}

TEST(CommandLine, AnEmptyValueIsGivenAndAValueMayLookLikeAnOption) {
  Subcommand c;
  ASSERT_TRUE(c.read({"--config=", "--pkcs12-password-file", "--json"}));
  EXPECT_EQ(c.config, "");
  EXPECT_TRUE(c.parser.given("--config"));
  EXPECT_EQ(c.password_file, "--json");
  EXPECT_FALSE(c.json);
  EXPECT_FALSE(c.parser.given("--json"));
}

TEST(CommandLine, NothingGivenIsNothingSeen) {
  Subcommand c;
  ASSERT_TRUE(c.read({}));
  EXPECT_FALSE(c.parser.given("--config"));
  EXPECT_FALSE(c.parser.given("--no-such-option"));
}

TEST(CommandLine, ASubcommandRefusesEachMistakeWithItsMessage) {
  struct Case {
    std::initializer_list<const char*> args;
    const char* message;
  };
  const Case cases[] = {
      {{"--bogus"}, "unknown option '--bogus'"},
      {{"--bogus=1"}, "unknown option '--bogus'"},
      {{"--"}, "unknown option '--'"},
      {{"-x"}, "unexpected argument '-x'"},
      {{"stray"}, "unexpected argument 'stray'"},
      {{""}, "unexpected argument ''"},
      {{"--config"}, "--config needs a value"},
      {{"--config", "a", "--config=b"}, "--config is given twice"},
      {{"--json", "--json"}, "--json is given twice"},
      {{"--json=yes"}, "--json takes no value"},
      {{"--pkcs12-password", "secret"},
       "passwords are never taken from the command line (other users can read it); use --pkcs12-password-file "
       "FILE, or --pkcs12-password-file - for standard input"},
      {{"--pkcs12-password=secret"},
       "passwords are never taken from the command line (other users can read it); use --pkcs12-password-file "
       "FILE, or --pkcs12-password-file - for standard input"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    Subcommand command;
    expect_refused(command.read(c.args), c.message);
  }
}

TEST(CommandLine, TheFirstMistakeIsTheOneReported) {
  Subcommand c;
  expect_refused(c.read({"--json", "stray", "--bogus"}), "unexpected argument 'stray'");
  EXPECT_TRUE(c.json);
}

TEST(CommandLine, HelpEndsASubcommandsParseBeforeAnyLaterMistake) {
  for (const char* help : {"-h", "--help"}) {
    SCOPED_TRACE(help);
    Subcommand c;
    auto parsed = c.read({"--json", help, "--bogus", "--config"});
    ASSERT_TRUE(parsed) << parsed.error().message;
    EXPECT_EQ(*parsed, OptionParser::Parsed::help);
  }
  Subcommand c;
  expect_refused(c.read({"--bogus", "--help"}), "unknown option '--bogus'");
}

TEST(CommandLine, ServerRulesTakeWordsBetweenOptionsAndTheLastRepeat) {
  Server s;
  auto parsed = s.read({"--config", "a.yaml", "agent", "--port", "8443", "list", "--config", "b.yaml"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, OptionParser::Parsed::go_on);
  EXPECT_EQ(s.words, (std::vector<std::string>{"agent", "list"}));
  EXPECT_EQ(s.config, "b.yaml");
  EXPECT_EQ(s.port, 8443);
}

TEST(CommandLine, ServerRulesMakeHelpAFlagThatDoesNotHideMistakes) {
  Server s;
  auto parsed = s.read({"-h", "--help", "run"});
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(*parsed, OptionParser::Parsed::go_on);
  EXPECT_TRUE(s.help);
  Server later;
  expect_refused(later.read({"--help", "--bogus"}), "unknown option '--bogus'");
  Server missing;
  expect_refused(missing.read({"--help", "--config"}), "--config needs a value");
}

TEST(CommandLine, ServerRulesRefuseEachMistakeWithItsMessage) {
  struct Case {
    std::initializer_list<const char*> args;
    const char* message;
  };
  const Case cases[] = {
      {{"--config=a.yaml"}, "unknown option '--config=a.yaml'"},
      {{"-x"}, "unknown option '-x'"},
      {{"-"}, "unknown option '-'"},
      {{"--version=1"}, "unknown option '--version=1'"},
      {{"run", "--config"}, "--config needs a value"},
      {{"agent", "list", "extra"}, "unexpected argument 'extra'"},
      {{"--port", "80", "--bogus"}, "--port: '80' is not a port number"},
      {{"--bogus", "--port", "80"}, "unknown option '--bogus'"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    Server s;
    expect_refused(s.read(c.args), c.message);
  }
}

TEST(CommandLine, AFlagMayRunAnAction) {
  Server s;
  ASSERT_TRUE(s.read({"run", "--version"}));
  EXPECT_TRUE(s.version);
  EXPECT_EQ(s.words, std::vector<std::string>{"run"});
}

TEST(CommandLine, AnEmptyArgumentIsAWordUnderServerRules) {
  Server s;
  ASSERT_TRUE(s.read({"", "run"}));
  EXPECT_EQ(s.words, (std::vector<std::string>{"", "run"}));
}

TEST(CommandLine, AUsageErrorNamesTheProgramThenShowsTheUsage) {
  EXPECT_EQ(usage_error_text("ca-clone spawn", "--config is required", "usage: ca-clone spawn ...\n"),
            "ca-clone spawn: --config is required\n\nusage: ca-clone spawn ...\n");
}

TEST(CommandLine, SecondsAreMoreThanZeroAndAtMostTheLimit) {
  EXPECT_EQ(seconds_option("1.5", 10), 1.5);
  EXPECT_EQ(seconds_option("10", 10), 10.0);
  for (const char* refused : {"", "0", "-1", "10.5", "abc", "5s", " 5", "nan", "inf"}) {
    SCOPED_TRACE(refused);
    EXPECT_FALSE(seconds_option(refused, 10));
  }
}

}  // namespace
}  // namespace ca
