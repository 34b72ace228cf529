#pragma once
// A master and clones, each a real ca-server with its own real slapd, set up with the real
// `ca-clone prepare` and `ca-clone spawn`, replicating multi-provider on loopback (each clone spawned
// against the master; the instances then connect as a mesh unless directory.mesh is false).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "store/ldap/ldap_connection.hpp"
#include "support/ca_server_fixture.hpp"
#include "support/temp_dir.hpp"

namespace ca::testing {

std::filesystem::path ca_clone_binary();

struct CaClusterOptions {
  std::string ranges_yaml;            // extra lines of every instance's ranges section
  std::string crl_yaml;               // extra lines of every instance's crl section
  std::string directory_yaml;         // extra lines of every instance's directory section ("  mesh: false\n")
  std::string master_directory_yaml;  // extra lines of the master's directory section only
  std::string
      profiles_yaml;  // the master's profiles at init (default: kTestProfiles); clones read them from the directory
};

struct CaCluster {
  explicit CaCluster(CaClusterOptions options = {}) : options(std::move(options)) {}

  // Initializes and starts the master (replica 1), then prepares a bundle for, spawns and starts
  // each clone. Returns an empty string on success, else what went wrong.
  std::string build(int clone_count);
  // The master first.
  std::vector<CaServer*> all();

  CaClusterOptions options;
  TempDir work{"ca-cluster"};
  std::unique_ptr<CaServer> master;
  std::vector<std::unique_ptr<CaServer>> clones;
};

// cn=config of an instance's embedded directory (its replication agreements), over its unix socket.
store::LdapEndpoint config_admin_endpoint(const CaServer& server);

}  // namespace ca::testing
