#include "support/ca_cluster_fixture.hpp"

#include <fmt/format.h>

#include "store/ldap/embedded_directory.hpp"

namespace ca::testing {

std::filesystem::path ca_clone_binary() { return std::filesystem::path(CA_BIN_DIR) / "ca-clone"; }

std::string CaCluster::build(int clone_count) {
  master = std::make_unique<CaServer>(
      CaServerOptions{.instance_id = "master",
                      .replica_id = 1,
                      .ranges_yaml = options.ranges_yaml,
                      .crl_yaml = options.crl_yaml,
                      .directory_yaml = options.directory_yaml + options.master_directory_yaml,
                      .profiles_yaml = options.profiles_yaml});
  auto init = master->init();
  if (init.exit_code != 0) return "master init: " + init.output;
  if (!master->start()) return "master start: " + master->log();
  auto password = write_file(work.path() / "bundle.pass", "bundle-secret\n");
  for (int i = 1; i <= clone_count; ++i) {
    // One bundle (and join token) per clone: a join token registers one instance.
    auto bundle = work.path() / (i == 1 ? std::string("bundle.p12") : fmt::format("bundle{}.p12", i));
    auto prepared = shell(fmt::format("{} prepare --config {} --pkcs12-file {} --pkcs12-password-file {}",
                                      ca_clone_binary().string(), master->config_file().string(), bundle.string(),
                                      password.string()));
    if (prepared.exit_code != 0) return "prepare: " + prepared.output;
    auto clone = std::make_unique<CaServer>(CaServerOptions{.instance_id = fmt::format("clone{}", i),
                                                            .ranges_yaml = options.ranges_yaml,
                                                            .crl_yaml = options.crl_yaml,
                                                            .directory_yaml = options.directory_yaml,
                                                            .clone_master_url = master->https_url(),
                                                            .clone_bundle = bundle,
                                                            .clone_password_file = password});
    clone->use_credentials_of(*master);
    auto spawned = clone->init();
    if (spawned.exit_code != 0) return fmt::format("spawn of clone{}: {}", i, spawned.output);
    if (!clone->start()) return fmt::format("clone{} start: {}", i, clone->log());
    clones.push_back(std::move(clone));
  }
  return {};
}

std::vector<CaServer*> CaCluster::all() {
  std::vector<CaServer*> out{master.get()};
  for (auto& c : clones) out.push_back(c.get());
  return out;
}

store::LdapEndpoint config_admin_endpoint(const CaServer& server) {
  return store::LdapEndpoint{store::ldapi_url_for(server.dir() / "slapd" / "ldapi"), "cn=admin,cn=config",
                             read_file(server.password_file()), 20000};
}

}  // namespace ca::testing
