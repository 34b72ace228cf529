#include "store/ldap/ldap_peer_directory.hpp"

#include <cstdlib>

#include "core/files.hpp"
#include "store/ldap/ldap_ca_store.hpp"
#include "store/ldap/replication.hpp"

namespace ca::store {

LdapPeerDirectory::LdapPeerDirectory(std::shared_ptr<LdapPool> pool, std::string suffix)
    : pool_(std::move(pool)), suffix_(std::move(suffix)) {}

Result<std::map<int, std::string>> LdapPeerDirectory::change_stamps() {
  return pool_->with_connection([&](LdapConnection& c) { return context_csns(c, suffix_); });
}

Result<std::optional<PeerCrlNumbers>> LdapPeerDirectory::crl_numbers() {
  CA_TRY(auto entry, pool_->with_connection([&](LdapConnection& c) {
    return c.read(DirectoryLayout{suffix_}.crl_dn("MasterCRL"), peer_crl_number_attributes());
  }));
  if (!entry) return std::optional<PeerCrlNumbers>{};
  return std::optional<PeerCrlNumbers>(peer_crl_numbers_from(*entry));
}

std::vector<std::string> peer_crl_number_attributes() { return {"caCrlNumber", "caDeltaCrlNumber", "caCrlServeFrom"}; }

PeerCrlNumbers peer_crl_numbers_from(const LdapEntry& issuing_point) {
  auto number = [&](const char* a) { return std::strtoull(issuing_point.first_or(a, "0").c_str(), nullptr, 10); };
  PeerCrlNumbers out;
  out.crl_number = number("caCrlNumber");
  out.delta_number = number("caDeltaCrlNumber");
  out.serve_from = TimePoint(std::chrono::milliseconds(number("caCrlServeFrom")));
  return out;
}

PeerDirectoryOpener replication_peer_opener(const InstanceConfig& config, int timeout_ms) {
  const auto password_file = config.dir / "secrets" / "replication.pass";
  const std::string account = replication_account_dn(config.directory.suffix, config.ranges.replica_id);
  const std::string tls_ca = config.cert_file("ca_signing").string();
  const std::string suffix = config.directory.suffix;
  return [=](const std::string& url) -> std::shared_ptr<PeerDirectory> {
    auto password = read_secret_file(password_file);
    if (!password) return nullptr;  // no replication account yet: nobody to compare with
    auto pool = std::make_shared<LdapPool>(LdapEndpoint{url, account, *password, timeout_ms, tls_ca}, 1);
    return std::make_shared<LdapPeerDirectory>(std::move(pool), suffix);
  };
}

}  // namespace ca::store
