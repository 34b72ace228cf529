#pragma once
// Another instance's directory, read with this instance's replication account.
#include <memory>
#include <string>

#include "core/config.hpp"
#include "store/ldap/ldap_pool.hpp"
#include "store/peer_directory.hpp"

namespace ca::store {

class LdapPeerDirectory : public PeerDirectory {
 public:
  LdapPeerDirectory(std::shared_ptr<LdapPool> pool, std::string suffix);
  Result<std::map<int, std::string>> change_stamps() override;
  Result<std::optional<PeerCrlNumbers>> crl_numbers() override;

 private:
  std::shared_ptr<LdapPool> pool_;
  std::string suffix_;
};

// The numbers on an issuing point entry (absent numbers are 0; the serve-from time is in ms).
PeerCrlNumbers peer_crl_numbers_from(const LdapEntry& issuing_point);
// The attributes peer_crl_numbers_from reads.
std::vector<std::string> peer_crl_number_attributes();

// Peers bound with this instance's replication account (secrets/replication.pass, read at each
// open: null while there is none), TLS checked against the CA certificate.
PeerDirectoryOpener replication_peer_opener(const InstanceConfig& config, int timeout_ms);

}  // namespace ca::store
