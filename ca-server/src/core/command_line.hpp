#pragma once
// The one command-line parser of ca-server and ca-clone: options, positional arguments, --help,
// exit codes and the text of a usage error.
#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace ca {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (nothing half-made is left)
inline constexpr int kExitUsage = 2;    // the command line is wrong

// The arguments a parser reads (for ca-clone: those after the subcommand's name).
using CommandArgs = std::span<char* const>;

// Seconds from the command line: a number more than 0 and at most `max`; nullopt otherwise.
[[nodiscard]] std::optional<double> seconds_option(const std::string& text, double max);

// How a program spells its command line. Both programs keep the rules they always had.
struct OptionRules {
  // An argument starting with this is an option; any other is a positional argument.
  std::string_view option_prefix = "--";
  // "--name=VALUE" as well as "--name VALUE" (otherwise "--name=VALUE" is an unknown option).
  bool inline_values = true;
  // A second "--name" is a usage error; otherwise the last one counts.
  bool refuse_repeats = true;
  // "-h" and "--help" end the parse with Parsed::help wherever they are, before any option after
  // them is looked at. Otherwise they are whatever the program declared them to be.
  bool help_ends_parse = true;

  // ca-clone's subcommands: "--name=VALUE", each option at most once, "-h" answered at once.
  static constexpr OptionRules subcommand() { return {}; }
  // ca-server: options anywhere between the command words ("-x" is an option too), no
  // "--name=VALUE", the last of a repeated option counts, --help is a flag like any other.
  static constexpr OptionRules server() { return {"-", false, false, false}; }
};

// "<program>: <message>\n\n<usage>": what a usage error prints to stderr.
[[nodiscard]] std::string usage_error_text(std::string_view program, std::string_view message, std::string_view usage);
// Prints usage_error_text to stderr; returns kExitUsage.
int print_usage_error(std::string_view program, std::string_view message, std::string_view usage);

// The options and positional arguments of one command. read() looks at the arguments and gives
// the first problem as an Error (bad_request, the message a user sees: "unknown option '--x'",
// "--config needs a value", "--json is given twice", "unexpected argument 'x'", ...); parse()
// prints what read() found the way both programs always did.
class OptionParser {
 public:
  enum class Parsed { go_on, help };
  // Takes a value given to an option; an Error is the usage error to show (e.g. a port that is
  // not one), and ends the parse.
  using ValueSink = std::function<Status(std::string_view value)>;
  // Takes a positional argument; false: not expected here ("unexpected argument 'x'").
  using PositionalSink = std::function<bool(std::string_view argument)>;

  OptionParser(std::string program, std::string_view usage, OptionRules rules = OptionRules::subcommand())
      : program_(std::move(program)), usage_(usage), rules_(rules) {}

  OptionParser& value(std::string name, std::string* out);
  OptionParser& value(std::string name, ValueSink sink);
  OptionParser& flag(std::string name, bool* out);
  OptionParser& flag(std::string name, std::function<void()> sink);
  // Without one, every positional argument is unexpected.
  OptionParser& positional(PositionalSink sink);

  // The first problem of `args`, in their order; Parsed::help when help ended the parse.
  [[nodiscard]] Result<Parsed> read(CommandArgs args);
  // read(), printed: nullopt to go on; otherwise the command is over and this is its exit code:
  // kExitOk after the usage went to stdout for help, kExitUsage after usage_error.
  [[nodiscard]] std::optional<int> parse(CommandArgs args);
  // Whether an option was given (a value option even as "").
  [[nodiscard]] bool given(std::string_view name) const;

  // Prints "<program>: <message>" and the usage to stderr; returns kExitUsage.
  int usage_error(std::string_view message) const;
  // Prints "<program>: <message>" to stderr; returns kExitFailure.
  int failure(const Error& error) const;

  const std::string& program() const { return program_; }

 private:
  struct Option {
    std::string name;
    ValueSink value;             // empty for a flag
    std::function<void()> flag;  // empty for a value option
    bool seen = false;
  };
  Option* find(std::string_view name);
  [[nodiscard]] Status read_option(std::string_view arg, CommandArgs args, std::size_t& i);

  std::string program_;
  std::string_view usage_;
  OptionRules rules_;
  std::vector<Option> options_;
  PositionalSink positional_;
};

}  // namespace ca
