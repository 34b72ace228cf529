#pragma once
// A real slapd for a test: fresh config and data in a temporary folder, base DIT loaded,
// listening on a free loopback port; stopped by PID when the fixture goes (also on failure).
#include <memory>

#include "store/ldap/embedded_directory.hpp"
#include "support/temp_dir.hpp"

namespace ca::testing {

// TLS of a test directory's TCP port (ldaps:// only): its certificate, key and the CA its peers'
// certificates must chain to.
struct DirectoryTls {
  std::filesystem::path cert_file, key_file, ca_file;
};

struct TestDirectory {
  // load_base_dit: false for a directory that will receive the tree by replication.
  explicit TestDirectory(int server_id = 1, bool fsync = false, bool load_base_dit = true,
                         const DirectoryTls* tls = nullptr);
  ~TestDirectory();
  TempDir dir{"ca-slapd"};
  std::unique_ptr<store::EmbeddedDirectory> slapd;
  store::LdapEndpoint endpoint() const { return slapd->endpoint(3000); }
  std::string suffix() const { return slapd->options().suffix; }
};

}  // namespace ca::testing
