#include "store/ldap/directory_census.hpp"

#include "store/ldap/ldap_ca_store.hpp"

namespace ca::store {

Status each_certificate_record(LdapConnection& conn, const std::string& suffix, bool with_contents,
                               const std::function<void(const CertificateSighting&)>& visit) {
  std::vector<std::string> attributes{"caSerialNumber"};
  if (with_contents) attributes.insert(attributes.end(), {"caReplicaId", "userCertificate;binary"});
  return conn.search_each(DirectoryLayout{suffix}.certificates(), SearchScope::one, "(objectClass=caCertificateRecord)",
                          attributes, [&](const LdapEntry& e) {
                            CertificateSighting seen{e.first_or("caSerialNumber"), {}, {}};
                            if (with_contents) {
                              seen.replica_id = e.first_or("caReplicaId");
                              seen.der = e.first_or("userCertificate;binary");
                            }
                            visit(seen);
                          });
}

Status each_range_claim(LdapConnection& conn, const std::string& suffix, RangeKind kind,
                        const std::function<void(const std::string& begin, const std::string& replica)>& visit) {
  return conn.search_each(DirectoryLayout{suffix}.range_entries(kind), SearchScope::one, "(objectClass=caRangeEntry)",
                          {"caBeginRange", "caReplicaId"}, [&](const LdapEntry& e) {
                            visit(e.first_or("caBeginRange"), e.first_or("caReplicaId", "?"));
                          });
}

Result<std::size_t> count_entries(LdapConnection& conn, const std::string& suffix) {
  std::size_t n = 0;
  CA_CHECK(conn.search_each(suffix, SearchScope::subtree, "(objectClass=*)", {"1.1"}, [&](const LdapEntry&) { ++n; }));
  return n;
}

std::string config_tree_name() { return "cn=config"; }

LdapEndpoint config_admin_endpoint(const std::string& url, const std::string& password, int timeout_ms) {
  return LdapEndpoint{url, "cn=admin," + config_tree_name(), password, timeout_ms};
}

}  // namespace ca::store
