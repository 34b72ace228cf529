#pragma once
// The certificates an instance holds (Dogtag's "subsystem certificates"), with their file names
// under <instance>/certs and <instance>/private, and the nicknames a clone bundle will use.
#include <array>
#include <string_view>

namespace ca::authority {

struct SubsystemCert {
  std::string_view file;      // certs/<file>.pem and private/<file>.key
  std::string_view nickname;  // Dogtag-style nickname prefix
  bool exported_to_clones;    // the TLS server certificate is per instance
};

inline constexpr std::array<SubsystemCert, 7> kSubsystemCerts{{
    {"ca_signing", "caSigningCert", true},
    {"ocsp_signing", "ocspSigningCert", true},
    {"subsystem", "subsystemCert", false},
    {"audit_signing", "auditSigningCert", true},
    {"sslserver", "sslserverCert", false},
    // Key archival (Dogtag's KRA): the storage key wraps archived keys, the transport certificate
    // receives keys clients send. Both RSA-3072; every instance holds the same ones.
    {"kra_storage", "storageCert", true},
    {"kra_transport", "transportCert", true},
}};

}  // namespace ca::authority
