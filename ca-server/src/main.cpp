// ca-server: the CA daemon. `init` creates an instance, `run` serves it.
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include <fmt/format.h>

#include "app/ca_instance.hpp"
#include "authority/audit/audit_checkpoints.hpp"
#include "authority/audit/audit_log.hpp"
#include "authority/instance/agent_admin.hpp"
#include "authority/instance/instance_setup.hpp"
#include "core/command_line.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "crypto/pem.hpp"
#include "store/ldap/ldap_ca_store.hpp"

namespace {

constexpr const char* kUsage = R"(usage: ca-server <command> [options]

Commands:
  init --config FILE          create the instance described by FILE: CA signing key and
                              certificate, subsystem certificates, directory (embedded slapd
                              by default), base DIT, profiles, replica entry. Safe to re-run:
                              finished steps are skipped.
  run --config FILE           serve the instance over HTTPS until SIGINT/SIGTERM.
  check-config --config FILE  validate FILE and exit (0 = valid).
  sample-config [--dir DIR] [--port N]
                              print a commented instance.yaml with every default.
  agent list --config FILE    the agents: certificates (serial, subject, status) in the
                              agents group of the instance's directory.
  agent add --config FILE --cert PEM
                              make an existing certificate of this CA an agent.
  agent add --config FILE --subject DN --out DIR
                              issue a new agent certificate (caAgentCert) with a key made
                              here, write both to DIR and make it an agent: the way back in
                              when every agent credential is lost.
  agent remove --config FILE --serial HEX [--revoke]
                              take the agent's rights away (and revoke its certificate).
  admin list|add|remove ...   the same for administrators (they approve agent, administrator
                              and auditor certificates and manage instances; caAdminCert).
  auditor list|add|remove ... the same for auditors (they read and verify the audit trail;
                              caAuditorCert).
                              These commands work on the directory directly, local to this
                              machine; the server may be running.
  audit verify --config FILE [--instance ID] [--file PATH] [--no-directory]
                              check the signed, hash-chained audit log (default
                              <dir>/logs/audit.log): seq continuity, every prev hash, every
                              signature (audit signing certificate, itself checked against
                              the CA certificate), and the file against the instance's
                              checkpoints in the directory: a missing tail, an emptied file,
                              a cut continued, a cut the instance recorded. --instance ID:
                              the trail of another instance (give its file with --file).
                              --no-directory: the file alone (a cut cannot be seen).
                              Exit 0 intact and matching every checkpoint, 1 anything found
                              (cut, tampered, unsigned records after the last signature:
                              unverified), 2 usage or configuration error.

Options:
  -h, --help                  show this help (also: ca-server <command> --help)
  --version                   print the version

Exit status: 0 success, 1 runtime failure, 2 usage or configuration error.
)";

struct Args {
  std::string command;
  std::string subcommand;  // agent|admin|auditor list|add|remove, audit verify
  std::string cert, subject, out, serial;
  std::string file;           // audit verify --file
  std::string instance;       // audit verify --instance
  bool no_directory = false;  // audit verify --no-directory
  bool revoke = false;
  std::string config;
  std::string dir = "var/demo";
  uint16_t port = 8443;
  bool help = false;
};

int usage_error(const std::string& message) { return ca::print_usage_error("ca-server", message, kUsage); }

// A port number as strtol reads it (leading spaces and a sign are taken, as they always were).
ca::Status take_port(std::string_view text, uint16_t& port) {
  const std::string v(text);
  char* end = nullptr;
  long p = std::strtol(v.c_str(), &end, 10);
  if (*end || p < 1 || p > 65535)
    return ca::fail(ca::Error::bad_request(fmt::format("--port: '{}' is not a port number", v)));
  port = static_cast<uint16_t>(p);
  return ca::ok();
}

// The command words: the command, and the role and audit commands' own (list, verify, ...).
bool take_word(Args& a, std::string_view word) {
  if (a.command.empty())
    a.command = word;
  else if ((a.command == "agent" || a.command == "admin" || a.command == "auditor" || a.command == "audit") &&
           a.subcommand.empty())
    a.subcommand = word;
  else
    return false;
  return true;
}

// Options anywhere between the command words; --version is a command of its own.
ca::OptionParser command_line(Args& a) {
  ca::OptionParser p("ca-server", kUsage, ca::OptionRules::server());
  p.flag("-h", &a.help).flag("--help", &a.help).flag("--version", [&a] { a.command = "version"; });
  p.value("--config", &a.config).value("--dir", &a.dir);
  p.value("--port", [&a](std::string_view v) { return take_port(v, a.port); });
  p.value("--cert", &a.cert).value("--subject", &a.subject).value("--out", &a.out).value("--serial", &a.serial);
  p.value("--file", &a.file).value("--instance", &a.instance);
  p.flag("--no-directory", &a.no_directory).flag("--revoke", &a.revoke);
  p.positional([&a](std::string_view word) { return take_word(a, word); });
  return p;
}

ca::Result<ca::InstanceConfig> load_config(const Args& a) {
  if (a.config.empty()) return ca::fail(ca::Error::config("--config FILE is required"));
  CA_TRY(auto config, ca::load_instance_config(a.config));
  ca::log::Level level;
  if (ca::log::parse_level(config.log_level, level)) ca::log::set_level(level);
  return config;
}

int fail_with(const ca::Error& e) {
  ca::log::error("ca-server", "{}", e.message);
  return e.is(ca::ErrorCode::config) ? 2 : 1;
}

// One holder of a role, as the role commands list them.
void print_role_holder(const ca::authority::AgentEntry& e) {
  std::printf("0x%s  %-8s  %s\n", e.serial_hex.c_str(), e.status.c_str(),
              e.subject_dn.empty() ? "(no certificate record)" : e.subject_dn.c_str());
}

// `ca-server agent|admin|auditor list|add|remove`: the holders of one role.
int run_role_command(const Args& a, const ca::InstanceConfig& config, const ca::authority::Role& role) {
  const std::string& sub = a.subcommand;
  const std::string command(role.command);
  if (sub != "list" && sub != "add" && sub != "remove")
    return usage_error(sub.empty() ? command + ": say list, add or remove"
                                   : fmt::format("{}: unknown command '{}'", command, sub));
  if (sub == "add" && a.cert.empty() == (a.subject.empty() || a.out.empty()))
    return usage_error(command + " add: give either --cert PEM, or --subject DN and --out DIR");
  if (sub == "remove" && a.serial.empty()) return usage_error(command + " remove: --serial HEX is required");
  ca::log::set_level(ca::log::Level::warn);
  auto audit = ca::authority::open_instance_audit_log(config);
  if (!audit) return fail_with(audit.error().context("the audit log"));
  const std::string operator_name = fmt::format("ca-server {} {} (uid {})", command, sub, ::getuid());
  auto directory = ca::authority::open_local_directory(config);
  if (!directory) return fail_with(directory.error().context("the instance's directory"));
  int status = 0;
  {
    ca::store::GroupCommitOptions writes;
    writes.writers = 1;
    if (directory->started) writes = ca::authority::group_commit_options(config), writes.writers = 1;
    ca::store::LdapCaStore store(directory->endpoint, config.directory.suffix, 1, writes);
    ca::authority::AuditCheckpointPublisher audit_checkpoints(store, config.instance_id);
    ca::authority::AuditCheckpointAttachment audit_checkpoints_attached(**audit, audit_checkpoints);
    // The signature of what this command records, in the directory before it goes.
    struct SignBeforeLeaving {
      ca::authority::AuditLog& log;
      ca::authority::AuditCheckpointPublisher& publisher;
      ~SignBeforeLeaving() {
        log.sign_now();
        (void)publisher.drain(std::chrono::seconds(3));
      }
    } sign_before_leaving{**audit, audit_checkpoints};
    const auto print = print_role_holder;
    if (sub == "list") {
      auto agents = ca::authority::list_agents(store, role);
      if (!agents)
        status = fail_with(agents.error());
      else {
        for (const auto& e : *agents) print(e);
        if (agents->empty()) std::printf("no %ss\n", std::string(role.name).c_str());
      }
    } else if (sub == "add") {
      auto added = a.cert.empty() ? ca::authority::issue_agent_certificate(store, config, a.subject, a.out, role)
                                  : ca::authority::add_agent_certificate(store, config, a.cert, role);
      const std::string what =
          a.cert.empty() ? fmt::format("a new {} certificate for '{}'", role.name, a.subject) : "certificate " + a.cert;
      if (added)
        (*audit)->record(command + "_added", operator_name, what,
                         fmt::format("{} 0x{} ('{}')", role.name, added->serial_hex, added->subject_dn));
      else
        (*audit)->record(command + "_add_failed", operator_name, what, added.error().message);
      if (!added)
        status = fail_with(added.error());
      else {
        std::printf("added %s: ", std::string(role.name).c_str());
        print(*added);
        if (!a.out.empty())
          std::printf("key and certificate: %s/%s-%s.key, %s/%s-%s.pem\n", a.out.c_str(), command.c_str(),
                      added->serial_hex.c_str(), a.out.c_str(), command.c_str(), added->serial_hex.c_str());
      }
    } else {
      auto removed = ca::authority::remove_agent(store, a.serial, a.revoke, role);
      const std::string what = command + " 0x" + a.serial + (a.revoke ? " (and revoke its certificate)" : "");
      if (removed)
        (*audit)->record(command + "_removed", operator_name, what, fmt::format("removed '{}'", removed->subject_dn));
      else
        (*audit)->record(command + "_remove_failed", operator_name, what, removed.error().message);
      if (!removed)
        status = fail_with(removed.error());
      else {
        std::printf("removed %s%s: ", std::string(role.name).c_str(), a.revoke ? " and revoked its certificate" : "");
        print(*removed);
      }
    }
  }
  if (directory->started && directory->started->embedded) directory->started->embedded->stop();
  return status;
}

// The audit trail of `instance` in the instance's directory (the running server's, or the
// embedded one started for the command).
ca::Result<ca::store::AuditTrail> read_audit_trail(const ca::InstanceConfig& config, const std::string& instance) {
  CA_TRY(auto directory, ca::authority::open_local_directory(config));
  ca::Result<ca::store::AuditTrail> trail = [&] {
    ca::store::GroupCommitOptions writes;
    writes.writers = 1;
    ca::store::LdapCaStore store(directory.endpoint, config.directory.suffix, 1, writes);
    return store.audit_trail(instance);
  }();
  if (directory.started && directory.started->embedded) directory.started->embedded->stop();
  return trail;
}

// The file against the instance's checkpoints in the directory, and the cuts the log records of
// itself; true when a cut was found (printed with its first missing record).
bool print_cuts(const ca::authority::AuditVerification& v, const std::optional<ca::store::AuditTrail>& trail,
                const std::string& instance) {
  const auto seq_text = [](uint64_t seq) { return static_cast<unsigned long long>(seq); };
  std::optional<ca::authority::AuditTrailComparison> comparison;
  if (!trail) {
    std::printf(
        "directory:  NOT CHECKED (--no-directory): a log cut back to a signed point, emptied, or cut and "
        "continued cannot be seen from the file alone\n");
  } else {
    comparison = ca::authority::compare_audit_trail(v.last_seq, v.last_signed_seq, v.hashes, *trail);
    if (comparison->highest_checkpoint == 0)
      std::printf("directory:  no checkpoints of '%s' (nothing signed yet, or written by a version before them)\n",
                  instance.c_str());
    else
      std::printf("directory:  %zu checkpoint(s) matched, highest seq %llu\n", comparison->checkpoints_matched,
                  seq_text(comparison->highest_checkpoint));
    if (comparison->signed_beyond_checkpoints)
      std::printf(
          "note:       the file is signed up to seq %llu, ahead of the directory's checkpoints (written "
          "asynchronously; late while the directory is unreachable)\n",
          seq_text(comparison->signed_beyond_checkpoints));
    for (const auto& f : comparison->findings) std::printf("cut:        %s\n", f.text.c_str());
  }
  for (const auto& c : v.cuts) std::printf("cut record: %s\n", c.c_str());
  if ((comparison && !comparison->matches()) || !v.cuts.empty()) {
    // A cut the instance recorded names its first missing record exactly: it wins over the
    // earliest possible one a continued cut shows.
    uint64_t first_missing = 0;
    bool recorded = false;
    if (comparison)
      for (const auto& f : comparison->findings) {
        const bool exact = f.kind == ca::authority::AuditTrailFinding::Kind::recorded_cut;
        if (exact && !recorded) first_missing = 0, recorded = true;
        if (exact == recorded && (!first_missing || f.first_missing_seq < first_missing))
          first_missing = f.first_missing_seq;
      }
    if (first_missing)
      std::printf("result:     CUT: first missing seq %llu\n", seq_text(first_missing));
    else
      std::printf("result:     CUT: the log records a cut of itself (see the cut record)\n");
    return true;
  }
  return false;
}

int run_audit_command(const Args& a, const ca::InstanceConfig& config) {
  if (a.subcommand != "verify")
    return usage_error(a.subcommand.empty() ? "audit: say verify"
                                            : fmt::format("audit: unknown command '{}'", a.subcommand));
  const std::string instance = a.instance.empty() ? config.instance_id : a.instance;
  if (instance != config.instance_id && a.file.empty())
    return usage_error(fmt::format("audit verify --instance {}: give that instance's log with --file PATH", instance));
  const std::filesystem::path file = a.file.empty() ? config.dir / "logs" / "audit.log" : std::filesystem::path(a.file);
  ca::log::set_level(ca::log::Level::warn);
  auto audit_cert = ca::crypto::load_certificate_file(config.cert_file("audit_signing"));
  if (!audit_cert) return fail_with(ca::Error::config(audit_cert.error().message));
  auto ca_cert = ca::crypto::load_certificate_file(config.cert_file("ca_signing"));
  if (!ca_cert) return fail_with(ca::Error::config(ca_cert.error().message));
  std::optional<ca::store::AuditTrail> trail;
  if (!a.no_directory) {
    auto read = read_audit_trail(config, instance);
    if (!read) {
      std::printf(
          "result:     NOT VERIFIED: cannot read the audit checkpoints of '%s' from the directory (%s); "
          "--no-directory checks the file alone\n",
          instance.c_str(), read.error().message.c_str());
      return 1;
    }
    trail = std::move(*read);
  }
  auto checked = ca::authority::verify_audit_log(
      file, audit_cert->get(), ca_cert->get(), trail ? ca::authority::checkpointed_seqs(*trail) : std::set<uint64_t>{});
  if (!checked) return fail_with(ca::Error::config(checked.error().message));
  const auto& v = *checked;
  const auto seq_text = [](uint64_t seq) { return static_cast<unsigned long long>(seq); };
  std::printf("audit log:  %s\n", file.c_str());
  std::printf("instance:   %s\n", instance.c_str());
  std::printf("signed by:  %s\n", ca::crypto::name_to_string(X509_get_subject_name(audit_cert->get())).c_str());
  if (v.records == 0)
    std::printf("records:    none%s\n", v.intact() ? "" : " checked");
  else
    std::printf("records:    %zu (seq %llu..%llu)%s\n", v.records, seq_text(v.first_seq), seq_text(v.last_seq),
                v.intact() ? "" : " checked before the problem");
  std::printf("signatures: %zu verified\n", v.signatures);
  if (!v.intact()) {
    std::printf("result:     TAMPERED OR INVALID: %s\n", v.problem.c_str());
    return 1;
  }
  if (print_cuts(v, trail, instance)) return 1;
  if (v.unsigned_tail > 0) {
    std::printf(
        "result:     UNVERIFIED: %zu record(s) after the last signature (seq %llu..%llu) are not covered by a "
        "signature; a running server signs them within its signature interval\n",
        v.unsigned_tail, seq_text(v.last_seq - v.unsigned_tail + 1), seq_text(v.last_seq));
    return 1;
  }
  std::printf("result:     intact%s\n", trail ? "" : " (file only)");
  return 0;
}

// `ca-server run`: the instance until SIGINT or SIGTERM. Signals are taken by one thread
// (sigwait), so every other thread can ignore them.
int run_server(const ca::InstanceConfig& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // wakes the waiter when run() returned by itself
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  auto instance = ca::app::CaInstance::open(config);
  if (!instance) return fail_with(instance.error());
  std::atomic<bool> stopping{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (stopping || sig == SIGUSR1) return;  // woken after run() returned by itself
    ca::log::info("ca-server", "received {}, stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    (*instance)->stop();
  });
  (*instance)->run();
  stopping = true;
  pthread_kill(signal_waiter.native_handle(), SIGUSR1);
  signal_waiter.join();
  instance->reset();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // A peer that closed its socket (slapd stopping, a client going away) must be an error value,
  // not a signal that kills the process.
  std::signal(SIGPIPE, SIG_IGN);
  Args a;
  ca::OptionParser options = command_line(a);
  if (auto parsed = options.read(ca::CommandArgs(argv + 1, static_cast<std::size_t>(std::max(argc - 1, 0)))); !parsed)
    return options.usage_error(parsed.error().message);
  if (a.help || a.command.empty()) {
    std::fputs(kUsage, a.help ? stdout : stderr);
    return a.help ? 0 : 2;
  }
  if (a.command == "version") {
    std::puts("ca-server 0.1.0");
    return 0;
  }
  if (a.command == "sample-config") {
    std::fputs(ca::authority::sample_instance_yaml(a.dir, a.port).c_str(), stdout);
    return 0;
  }
  if (a.command != "init" && a.command != "run" && a.command != "check-config" && a.command != "agent" &&
      a.command != "admin" && a.command != "auditor" && a.command != "audit")
    return usage_error(fmt::format("unknown command '{}'", a.command));
  auto config = load_config(a);
  if (!config) return fail_with(config.error());
  if (a.command == "check-config") {
    std::printf("%s: valid\n", a.config.c_str());
    return 0;
  }
  if (a.command == "agent") return run_role_command(a, *config, ca::authority::kAgentRole);
  if (a.command == "admin") return run_role_command(a, *config, ca::authority::kAdministratorRole);
  if (a.command == "auditor") return run_role_command(a, *config, ca::authority::kAuditorRole);
  if (a.command == "audit") return run_audit_command(a, *config);
  if (a.command == "init") {
    auto st = ca::authority::initialize_instance(*config);
    return st ? 0 : fail_with(st.error());
  }
  return run_server(*config);
}
