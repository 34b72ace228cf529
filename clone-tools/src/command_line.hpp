#pragma once
// What every ca-clone subcommand shares: exit codes, option parsing, error reporting.
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace ca::clone_tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // the command ran and failed (nothing half-made is left)
inline constexpr int kExitUsage = 2;    // the command line is wrong

// The arguments after the subcommand's name.
using Args = std::span<char* const>;

// Seconds from the command line: a number more than 0 and at most `max`; nullopt otherwise.
[[nodiscard]] std::optional<double> seconds_option(const std::string& text, double max);

// "--name VALUE", "--name=VALUE" and "--flag" options of one subcommand; "-h"/"--help" print
// `usage` to stdout. Anything else (unknown options, positional arguments, an option given
// twice) is a usage error, printed with `usage` to stderr.
class OptionParser {
 public:
  OptionParser(std::string program, std::string_view usage) : program_(std::move(program)), usage_(usage) {}

  OptionParser& value(std::string name, std::string* out);
  OptionParser& flag(std::string name, bool* out);

  // nullopt: go on. Otherwise the command is over and this is its exit code (0 after --help).
  [[nodiscard]] std::optional<int> parse(Args args);
  // Whether a value option was given (even as "").
  [[nodiscard]] bool given(std::string_view name) const;

  // Prints "<program>: <message>" and the usage to stderr; returns kExitUsage.
  int usage_error(std::string_view message) const;
  // Prints "<program>: <message>" to stderr; returns kExitFailure.
  int failure(const Error& error) const;

  const std::string& program() const { return program_; }

 private:
  struct Option {
    std::string name;
    std::string* value = nullptr;  // null for a flag
    bool* flag = nullptr;
    bool seen = false;
  };
  Option* find(std::string_view name);

  std::string program_;
  std::string_view usage_;
  std::vector<Option> options_;
};

}  // namespace ca::clone_tools
