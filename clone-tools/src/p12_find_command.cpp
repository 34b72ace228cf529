// ca-clone p12-find: what a PKCS#12 bundle holds (Dogtag's `pki pkcs12-cert-find`).
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "commands.hpp"
#include "crypto/pkcs12_bundle.hpp"

namespace ca::clone_tools {

namespace {

constexpr std::string_view kUsage =
    R"(usage: ca-clone p12-find --pkcs12-file FILE --pkcs12-password-file PWFILE [--json]

Lists every certificate in a PKCS#12 bundle: certificate ID (SHA-1 fingerprint of the DER
certificate, hex), serial number, friendly name, subject DN, issuer DN, trust flags (Dogtag's
trust attribute, NSS notation) and whether the bundle holds its private key.

Options:
  --pkcs12-file FILE           the bundle to read
  --pkcs12-password-file PWFILE
                               its password: the first line of PWFILE ("-": standard input).
                               Passwords are never taken from the command line.
  --json                       one JSON object: {"certificates": [{"id", "serial_number",
                               "friendly_name", "subject_dn", "issuer_dn", "trust_flags",
                               "has_key"}, ...]}
  -h, --help                   show this help

Exit status: 0 listed, 1 failed (unreadable file, wrong password or damaged file), 2 usage error.
)";

}  // namespace

int run_p12_find(Args args) {
  std::string bundle_file, password_file;
  bool json = false;
  OptionParser options("ca-clone p12-find", kUsage);
  options.value("--pkcs12-file", &bundle_file).value("--pkcs12-password-file", &password_file).flag("--json", &json);
  if (auto done = options.parse(args)) return *done;
  if (bundle_file.empty()) return options.usage_error("--pkcs12-file FILE is required");
  if (password_file.empty()) return options.usage_error("--pkcs12-password-file PWFILE is required");

  auto password = crypto::read_password(password_file);
  if (!password) return options.failure(password.error());
  auto certs = crypto::read_pkcs12_file(bundle_file, password->view());
  if (!certs) return options.failure(certs.error());

  if (json) {
    boost::json::array list;
    for (const auto& c : *certs)
      list.push_back(boost::json::object{{"id", c.id},
                                         {"serial_number", "0x" + c.serial_hex},
                                         {"friendly_name", c.friendly_name},
                                         {"subject_dn", c.subject_dn},
                                         {"issuer_dn", c.issuer_dn},
                                         {"trust_flags", c.trust_flags},
                                         {"has_key", c.has_key}});
    std::string out = boost::json::serialize(boost::json::object{{"certificates", std::move(list)}});
    std::printf("%s\n", out.c_str());
    return kExitOk;
  }
  std::string rule(16, '-');
  std::printf("%s\n%zu entr%s found\n%s\n", rule.c_str(), certs->size(), certs->size() == 1 ? "y" : "ies",
              rule.c_str());
  for (const auto& c : *certs) {
    std::printf("  Certificate ID: %s\n", c.id.c_str());
    std::printf("  Serial Number: 0x%s\n", c.serial_hex.c_str());
    std::printf("  Friendly Name: %s\n", c.friendly_name.c_str());
    std::printf("  Subject DN: %s\n", c.subject_dn.c_str());
    std::printf("  Issuer DN: %s\n", c.issuer_dn.c_str());
    std::printf("  Trust Flags: %s\n", c.trust_flags.c_str());
    std::printf("  Has Key: %s\n\n", c.has_key ? "true" : "false");
  }
  return kExitOk;
}

}  // namespace ca::clone_tools
