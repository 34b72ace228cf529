#pragma once
// The store as the authority layer uses it: one narrow interface per record kind (a class that needs
// one kind takes that interface), and CaStore, the whole of them. One implementation talks LDAP
// (store/ldap/ldap_ca_store.hpp); unit tests of the authority use a fake.
#include "store/audit_trail_store.hpp"
#include "store/certificate_store.hpp"
#include "store/enrollment_code_store.hpp"
#include "store/group_store.hpp"
#include "store/key_archive_store.hpp"
#include "store/profile_store.hpp"
#include "store/replica_store.hpp"
#include "store/revocation_store.hpp"

namespace ca::store {

class CaStore : public CertificateStore,
                public ReplicaStore,
                public RevocationStore,
                public GroupStore,
                public KeyArchiveStore,
                public EnrollmentCodeStore,
                public AuditTrailStore,
                public ProfileStore {
 public:
  ~CaStore() override = default;
};

}  // namespace ca::store
