#include "support/directory_fixture.hpp"

#include <stdexcept>

namespace ca::testing {

TestDirectory::TestDirectory(int server_id, bool fsync, bool load_base_dit, const DirectoryTls* tls) {
  store::EmbeddedDirectoryOptions o;
  o.dir = dir.path();
  o.root_password = store::random_password(20);
  o.port = free_port();
  o.server_id = server_id;
  o.fsync = fsync;
  o.schema_dir = std::filesystem::path(CA_SOURCE_DIR) / "schema";
  if (tls) {
    o.tls_cert_file = tls->cert_file;
    o.tls_key_file = tls->key_file;
    o.tls_ca_file = tls->ca_file;
  }
  slapd = std::make_unique<store::EmbeddedDirectory>(o);
  if (auto st = slapd->initialize(); !st) throw std::runtime_error(st.error().message);
  if (auto st = slapd->start(false); !st) throw std::runtime_error(st.error().message);
  if (!load_base_dit) return;
  if (auto st = slapd->load_base_dit(); !st) throw std::runtime_error(st.error().message);
}

TestDirectory::~TestDirectory() { slapd->stop(); }

}  // namespace ca::testing
