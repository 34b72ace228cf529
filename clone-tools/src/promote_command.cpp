// ca-clone promote: makes this instance the registrar (the one that registers clones and assigns
// replica IDs), for when the instance that did it is lost for good.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>

#include <unistd.h>

#include "authority/audit/audit_log.hpp"
#include "authority/instance/clone_registry.hpp"
#include "authority/instance/instance_setup.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "core/log.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/ldap_connection.hpp"
#include "store/ldap/replication.hpp"

namespace ca::clone_tools {

namespace {

constexpr std::string_view kPromoteUsage = R"(usage: ca-clone promote --config INSTANCE.yaml [--gap N]

Makes the instance configured in INSTANCE.yaml (normally a clone) the registrar: the instance that
registers new clones (`ca-clone spawn` against its URL, join tokens from `ca-clone prepare` on it)
and assigns their replica IDs. Use it when the instance that did this (the master) is lost for good.
This is Dogtag's clone-to-master conversion, in one command.

Replica IDs stay unique: before naming itself, the instance reads the highest replica ID known to
its own directory and to every directory it replicates with (the replica counter, every registered
instance and every claimed replica range) and moves its replica counter above all of them by
--gap (default 10), which leaves room for IDs the lost instance handed out without their
replicating here. Directories that cannot be reached are listed; promote still goes ahead on what
it could read, so say --gap larger if an unreachable one may know of more clones.

The instance's directory must be running (its ca-server may be running). The old registrar, if it
ever comes back, refuses to register clones from then on. The lost instance stays in the topology
(and `ca-clone status` exits 1 naming it) until it is retired with `ca-clone remove --config
INSTANCE.yaml --instance-id ID`.

Options:
  --config FILE  the instance to promote
  --gap N        replica IDs left unused above the highest known one (default 10)
  -h, --help     show this help

Exit status: 0 promoted, 1 failure (nothing changed), 2 usage error.
)";

// The highest replica ID this directory and those it replicates with know of.
struct HighestReplicaId {
  uint64_t highest = 0;
  int unreachable = 0;  // directories that could not be read
};

// What the directory of `peer` knows, read with this instance's own replication account; why not.
Result<uint64_t> highest_known_by_peer(const InstanceConfig& c, const store::ReplicationPeer& peer,
                                       const Result<std::string>& replication_password) {
  if (!replication_password) return fail(replication_password.error());
  store::LdapEndpoint endpoint{peer.provider_url,
                               store::replication_account_dn(c.directory.suffix, c.ranges.replica_id),
                               *replication_password, 3000, c.cert_file("ca_signing").string()};
  CA_TRY(auto conn, store::LdapConnection::open(endpoint));
  return store::highest_replica_id_known(*conn, c.directory.suffix);
}

Result<HighestReplicaId> highest_replica_id_everywhere(const InstanceConfig& c, store::LdapConnection& tree) {
  // The directories this one replicates with, read with this instance's own replication account.
  CA_TRY(auto password, read_secret_file(c.directory.bind_password_file));
  store::EmbeddedDirectory own(authority::embedded_directory_options(c, password));
  auto peers = store::replication_peers(own.config_endpoint(5000));
  if (!peers) return fail(peers.error().context("reading this directory's replication agreements"));
  auto replication_password = read_secret_file(c.dir / "secrets" / "replication.pass");

  CA_TRY(uint64_t here, store::highest_replica_id_known(tree, c.directory.suffix));
  std::printf("this directory (replica %d): highest replica ID known %llu\n", c.ranges.replica_id,
              static_cast<unsigned long long>(here));
  HighestReplicaId out{here, 0};
  for (const auto& peer : *peers) {
    auto known = highest_known_by_peer(c, peer, replication_password);
    if (known) {
      std::printf("directory of replica %d (%s): highest replica ID known %llu\n", peer.replica_id,
                  peer.provider_url.c_str(), static_cast<unsigned long long>(*known));
      out.highest = std::max(out.highest, *known);
      continue;
    }
    ++out.unreachable;
    std::printf("directory of replica %d (%s): not read (%s)\n", peer.replica_id, peer.provider_url.c_str(),
                known.error().message.c_str());
  }
  return out;
}

void print_promotion(const InstanceConfig& c, const authority::Promotion& promoted, uint64_t gap, int unreachable,
                     const std::string& config_file) {
  std::printf("\ninstance '%s' is now the registrar (before: %s).\n", c.instance_id.c_str(),
              promoted.previous_registrar ? ("'" + *promoted.previous_registrar + "'").c_str() : "not named");
  std::printf("new clones get replica IDs from %llu on (highest known %llu, gap %llu).\n",
              static_cast<unsigned long long>(promoted.next_replica_id),
              static_cast<unsigned long long>(promoted.highest_known), static_cast<unsigned long long>(gap));
  if (unreachable)
    std::printf(
        "warning: %d directory(ies) could not be read; if they may know of newer clones, run again with a "
        "larger --gap.\n",
        unreachable);
  std::printf("Spawn new clones against https://%s:%u (ca-clone prepare --config %s).\n", c.server.address.c_str(),
              c.server.port, config_file.c_str());
  // Until the lost instance is retired it stays in the topology, and `ca-clone status` fails on it.
  if (promoted.previous_registrar)
    std::printf(
        "Retire the lost instance once it is gone for good (an administrator's certificate): ca-clone remove "
        "--config %s --instance-id %s --cert ADMIN.pem --key ADMIN.key\n",
        config_file.c_str(), promoted.previous_registrar->c_str());
  else
    std::printf(
        "Retire the lost instance once it is gone for good (an administrator's certificate): ca-clone remove "
        "--config %s --instance-id ID --cert ADMIN.pem --key ADMIN.key (ca-clone status --config %s names it)\n",
        config_file.c_str(), config_file.c_str());
}

}  // namespace

int run_promote(Args args) {
  std::string config_file, gap_text = "10";
  OptionParser options("ca-clone promote", kPromoteUsage);
  options.value("--config", &config_file).value("--gap", &gap_text);
  if (auto done = options.parse(args)) return *done;
  if (config_file.empty()) return options.usage_error("--config is required");
  if (gap_text.empty() || gap_text.size() > 3 || gap_text.find_first_not_of("0123456789") != std::string::npos)
    return options.usage_error("--gap expects a number from 0 to 999");
  const uint64_t gap = std::stoull(gap_text);
  log::set_level(log::Level::warn);
  auto config = load_instance_config(config_file);
  if (!config) return std::fprintf(stderr, "ca-clone promote: %s\n", config.error().message.c_str()), kExitUsage;
  const InstanceConfig& c = *config;
  if (c.directory.mode != DirectoryMode::embedded)
    return options.failure(
        Error::config("promote works on an instance with an embedded directory (its agreements "
                      "name the directories to check)"));

  auto local = authority::open_local_directory(c);
  if (!local) return options.failure(local.error().context("this instance's directory"));
  auto tree = store::LdapConnection::open(local->endpoint);
  if (!tree) return options.failure(tree.error().context("this instance's directory"));
  auto known = highest_replica_id_everywhere(c, **tree);
  if (!known) return options.failure(known.error());

  auto promoted = authority::promote_registrar(**tree, c.directory.suffix, c.instance_id, known->highest, gap);
  auto audit = authority::open_instance_audit_log(c);
  const std::string who = fmt::format("ca-clone promote (uid {})", ::getuid());
  if (!promoted) {
    if (audit) (*audit)->record("registrar_promote_failed", who, c.instance_id, promoted.error().message);
    return options.failure(promoted.error());
  }
  if (audit)
    (*audit)->record("registrar_promoted", who, c.instance_id,
                     fmt::format("registrar (was {}); replica IDs from {}",
                                 promoted->previous_registrar.value_or("not named"), promoted->next_replica_id));
  print_promotion(c, *promoted, gap, known->unreachable, config_file);
  if (local->started && local->started->embedded) local->started->embedded->stop();
  return kExitOk;
}

}  // namespace ca::clone_tools
