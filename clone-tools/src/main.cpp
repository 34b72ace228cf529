// ca-clone: prepares clone bundles and (later) spawns and manages clones. A dispatcher over the
// subcommands in kCommands; each lives in its own <name>_command.cpp.
#include <csignal>
#include <cstdio>
#include <span>
#include <string_view>

#include "commands.hpp"

namespace {

using ca::clone_tools::Args;

struct Command {
  std::string_view name;
  std::string_view summary;
  int (*run)(Args args);  // null: listed, not yet available in this build
};

constexpr Command kCommands[] = {
    {"prepare", "export the certificates and keys a clone needs into a PKCS#12 bundle", ca::clone_tools::run_prepare},
    {"p12-find", "list the certificates of a PKCS#12 bundle", ca::clone_tools::run_p12_find},
    {"spawn", "create a clone from a bundle and a YAML file", ca::clone_tools::run_spawn},
    {"status", "show the topology and whether its directories replicate", ca::clone_tools::run_status},
    {"remove", "retire a clone", ca::clone_tools::run_remove},
    {"promote", "make this instance the one that registers clones (the master is lost)", ca::clone_tools::run_promote},
    {"crl-master", "show the CRL master role, move it (promote, demote) or pin it to an instance",
     ca::clone_tools::run_crl_master},
};

void print_usage(std::FILE* out) {
  std::fputs("usage: ca-clone <command> [options]      (ca-clone <command> --help for its options)\n\nCommands:\n",
             out);
  for (const auto& c : kCommands)
    std::fprintf(out, "  %-10s %.*s%s\n", std::string(c.name).c_str(), static_cast<int>(c.summary.size()),
                 c.summary.data(), "");
  std::fputs(
      "\nOptions:\n"
      "  -h, --help  show this help\n"
      "  --version   print the version\n"
      "\nExit status: 0 success, 1 failure, 2 usage error.\n",
      out);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    print_usage(stderr);
    return ca::kExitUsage;
  }
  std::string_view name = argv[1];
  if (name == "-h" || name == "--help" || name == "help") {
    print_usage(stdout);
    return ca::kExitOk;
  }
  if (name == "--version") {
    std::puts("ca-clone 0.1.0");
    return ca::kExitOk;
  }
  for (const auto& c : kCommands) {
    if (c.name != name) continue;
    try {
      return c.run(Args(argv + 2, static_cast<std::size_t>(argc - 2)));
    } catch (const std::exception& e) {
      // E.g. an answer of the master's that is not shaped as expected (boost::json accessors throw).
      std::fprintf(stderr, "ca-clone %s: unexpected failure: %s\n", argv[1], e.what());
      return ca::kExitFailure;
    }
  }
  std::fprintf(stderr, "ca-clone: unknown command '%s'\n\n", argv[1]);
  print_usage(stderr);
  return ca::kExitUsage;
}
