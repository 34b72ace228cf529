#include "core/command_line.hpp"

#include <charconv>
#include <cstdio>
#include <utility>

#include <fmt/format.h>

namespace ca {

std::optional<double> seconds_option(const std::string& text, double max) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !(value > 0) || value > max)
    return std::nullopt;
  return value;
}

std::string usage_error_text(std::string_view program, std::string_view message, std::string_view usage) {
  return fmt::format("{}: {}\n\n{}", program, message, usage);
}

int print_usage_error(std::string_view program, std::string_view message, std::string_view usage) {
  const std::string text = usage_error_text(program, message, usage);
  std::fwrite(text.data(), 1, text.size(), stderr);
  return kExitUsage;
}

OptionParser& OptionParser::value(std::string name, std::string* out) {
  return value(std::move(name), [out](std::string_view v) {
    *out = std::string(v);
    return ok();
  });
}

OptionParser& OptionParser::value(std::string name, ValueSink sink) {
  options_.push_back(Option{std::move(name), std::move(sink), {}});
  return *this;
}

OptionParser& OptionParser::flag(std::string name, bool* out) {
  return flag(std::move(name), [out] { *out = true; });
}

OptionParser& OptionParser::flag(std::string name, std::function<void()> sink) {
  options_.push_back(Option{std::move(name), {}, std::move(sink)});
  return *this;
}

OptionParser& OptionParser::positional(PositionalSink sink) {
  positional_ = std::move(sink);
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

Result<OptionParser::Parsed> OptionParser::read(CommandArgs args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (rules_.help_ends_parse && (arg == "-h" || arg == "--help")) return Parsed::help;
    if (!arg.starts_with(rules_.option_prefix)) {
      if (!positional_ || !positional_(arg))
        return fail(Error::bad_request(fmt::format("unexpected argument '{}'", arg)));
      continue;
    }
    CA_CHECK(read_option(arg, args, i));
  }
  return Parsed::go_on;
}

// One option at args[i]; i moves past its value when the value is the next argument.
Status OptionParser::read_option(std::string_view arg, CommandArgs args, std::size_t& i) {
  std::string_view name = arg;
  std::optional<std::string_view> inline_value;
  if (const auto eq = arg.find('='); rules_.inline_values && eq != std::string_view::npos) {
    name = arg.substr(0, eq);
    inline_value = arg.substr(eq + 1);
  }
  Option* option = find(name);
  if (!option && name.ends_with("password") && find(fmt::format("{}-file", name)))
    return fail(
        Error::bad_request(fmt::format("passwords are never taken from the command line (other users can read it); "
                                       "use {}-file FILE, or {}-file - for standard input",
                                       name, name)));
  if (!option) return fail(Error::bad_request(fmt::format("unknown option '{}'", name)));
  if (option->seen && rules_.refuse_repeats) return fail(Error::bad_request(fmt::format("{} is given twice", name)));
  option->seen = true;
  if (option->flag) {
    if (inline_value) return fail(Error::bad_request(fmt::format("{} takes no value", name)));
    option->flag();
    return ok();
  }
  if (inline_value) return option->value(*inline_value);
  if (i + 1 >= args.size()) return fail(Error::bad_request(fmt::format("{} needs a value", name)));
  return option->value(args[++i]);
}

std::optional<int> OptionParser::parse(CommandArgs args) {
  const Result<Parsed> parsed = read(args);
  if (!parsed) return usage_error(parsed.error().message);
  if (*parsed == Parsed::go_on) return std::nullopt;
  std::fwrite(usage_.data(), 1, usage_.size(), stdout);
  return kExitOk;
}

int OptionParser::usage_error(std::string_view message) const { return print_usage_error(program_, message, usage_); }

int OptionParser::failure(const Error& error) const {
  std::fprintf(stderr, "%s: %s\n", program_.c_str(), error.message.c_str());
  return kExitFailure;
}

}  // namespace ca
