#include "command_line.hpp"

#include <charconv>
#include <cstdio>

#include <fmt/format.h>

namespace ca::clone_tools {

std::optional<double> seconds_option(const std::string& text, double max) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(value > 0) || value > max)
    return std::nullopt;
  return value;
}

OptionParser& OptionParser::value(std::string name, std::string* out) {
  options_.push_back(Option{std::move(name), out, nullptr});
  return *this;
}

OptionParser& OptionParser::flag(std::string name, bool* out) {
  options_.push_back(Option{std::move(name), nullptr, out});
  return *this;
}

OptionParser::Option* OptionParser::find(std::string_view name) {
  for (auto& o : options_)
    if (o.name == name) return &o;
  return nullptr;
}

bool OptionParser::given(std::string_view name) const {
  for (const auto& o : options_)
    if (o.name == name) return o.seen;
  return false;
}

std::optional<int> OptionParser::parse(Args args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::fwrite(usage_.data(), 1, usage_.size(), stdout);
      return kExitOk;
    }
    if (!arg.starts_with("--")) return usage_error(fmt::format("unexpected argument '{}'", arg));
    std::string_view name = arg;
    std::optional<std::string_view> inline_value;
    if (auto eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      inline_value = arg.substr(eq + 1);
    }
    Option* option = find(name);
    if (!option && name.ends_with("password") && find(fmt::format("{}-file", name)))
      return usage_error(
          fmt::format("passwords are never taken from the command line (other users can read it); "
                      "use {}-file FILE, or {}-file - for standard input",
                      name, name));
    if (!option) return usage_error(fmt::format("unknown option '{}'", name));
    if (option->seen) return usage_error(fmt::format("{} is given twice", name));
    option->seen = true;
    if (option->flag) {
      if (inline_value) return usage_error(fmt::format("{} takes no value", name));
      *option->flag = true;
      continue;
    }
    if (inline_value) {
      *option->value = std::string(*inline_value);
    } else {
      if (i + 1 >= args.size()) return usage_error(fmt::format("{} needs a value", name));
      *option->value = args[++i];
    }
  }
  return std::nullopt;
}

int OptionParser::usage_error(std::string_view message) const {
  std::fprintf(stderr, "%s: %.*s\n\n%.*s", program_.c_str(), static_cast<int>(message.size()), message.data(),
               static_cast<int>(usage_.size()), usage_.data());
  return kExitUsage;
}

int OptionParser::failure(const Error& error) const {
  std::fprintf(stderr, "%s: %s\n", program_.c_str(), error.message.c_str());
  return kExitFailure;
}

}  // namespace ca::clone_tools
