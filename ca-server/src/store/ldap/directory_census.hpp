#pragma once
// What ca-clone reads straight from a directory to compare directories (status) and to follow a
// clone's initial copy (spawn): the certificate records as stored, range claims, entry counts.
#include <functional>
#include <string>

#include "store/ldap/ldap_connection.hpp"
#include "store/records.hpp"

namespace ca::store {

// A certificate record as a directory holds it (the texts as stored).
struct CertificateSighting {
  std::string serial;      // fixed-width hex
  std::string replica_id;  // with contents only
  std::string der;         // with contents only
};
Status each_certificate_record(LdapConnection& conn, const std::string& suffix, bool with_contents,
                               const std::function<void(const CertificateSighting&)>& visit);

// Each range entry of `kind`: the beginning of the range and the replica that claimed it ("?" unnamed).
Status each_range_claim(LdapConnection& conn, const std::string& suffix, RangeKind kind,
                        const std::function<void(const std::string& begin, const std::string& replica)>& visit);

// Every entry under the suffix.
Result<std::size_t> count_entries(LdapConnection& conn, const std::string& suffix);

// The name of an embedded directory's configuration tree, and its administrator's endpoint (the
// directory password binds there too).
std::string config_tree_name();
LdapEndpoint config_admin_endpoint(const std::string& url, const std::string& password, int timeout_ms);

}  // namespace ca::store
