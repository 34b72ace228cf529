// ca-clone prepare: the clone bundle (Dogtag's `pki-server ca-clone-prepare`).
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <string>

#include <fmt/format.h>

#include "commands.hpp"
#include "core/config.hpp"
#include "crypto/pem.hpp"
#include "crypto/pkcs12_bundle.hpp"

namespace ca::clone_tools {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage = R"(usage: ca-clone prepare --instance DIR --pkcs12-file FILE --pkcs12-password-file PWFILE
                        [--instance-id ID | --config YAML] [--no-key] [--overwrite]

Exports what a clone takes from its master into one PKCS#12 file, named as Dogtag names them
(<ID> is the instance ID):
  caSigningCert cert-<ID> CA       certs/ca_signing.pem    + private/ca_signing.key
  ocspSigningCert cert-<ID> CA     certs/ocsp_signing.pem  + private/ocsp_signing.key
  subsystemCert cert-<ID>          certs/subsystem.pem     + private/subsystem.key
  auditSigningCert cert-<ID> CA    certs/audit_signing.pem + private/audit_signing.key
  storageCert cert-<ID> KRA        certs/kra_storage.pem   (+ key), when present
  transportCert cert-<ID> KRA      certs/kra_transport.pem (+ key), when present
  the issuers in certs/ca_chain.pem (a subordinate CA's chain), when present, without keys
The TLS server (sslserver) and agent certificates are not exported: every clone gets its own.

Options:
  --instance DIR               the instance folder made by `ca-server init` (holds certs/, private/)
  --config YAML                the instance's YAML file (as given to `ca-server init`): the folder
                               is its instance.dir (unless --instance) and the ID its instance.id
  --instance-id ID             the ID in the nicknames. Default: instance.id of --config, else of
                               DIR/instance.yaml when that file exists; required otherwise
  --pkcs12-file FILE           the bundle to write: mode 0600, written atomically
  --pkcs12-password-file PWFILE
                               the bundle's password: the first line of PWFILE ("-": standard input).
                               Passwords are never taken from the command line.
  --no-key                     certificates only, without private keys
  --overwrite                  replace FILE when it exists (default: refuse)
  -h, --help                   show this help

Protection: keys and certificates are encrypted with PBES2 (PBKDF2-HMAC-SHA-256, 600000
iterations, AES-256-CBC); the file's MAC is HMAC-SHA-256 with the same iteration count.
Trust: each certificate carries Dogtag's trust-flags attribute (OID 2.16.840.1.113730.5.1.1.1):
CTu,Cu,Cu for the CA signing certificate (CT,C,C with --no-key), u,u,Pu for audit signing,
u,u,u for the others. OpenSSL and NSS's pk12util ignore it; after `pk12util -i`, trust the CA with
  certutil -M -d DB -n 'caSigningCert cert-<ID> CA' -t CTu,Cu,Cu
List a bundle with `ca-clone p12-find`, `openssl pkcs12 -info -nokeys` or `pk12util -l`.

Exit status: 0 written, 1 failed (nothing written), 2 usage error.
)";

static_assert(crypto::kDefaultPkcs12Iterations == 600'000, "the usage text states the iteration count");

bool valid_instance_id(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_')) return false;
  return true;
}

}  // namespace

int run_prepare(Args args) {
  std::string instance_dir, config_file, instance_id, bundle_file, password_file;
  bool no_key = false, overwrite = false;
  OptionParser options("ca-clone prepare", kUsage);
  options.value("--instance", &instance_dir)
      .value("--config", &config_file)
      .value("--instance-id", &instance_id)
      .value("--pkcs12-file", &bundle_file)
      .value("--pkcs12-password-file", &password_file)
      .flag("--no-key", &no_key)
      .flag("--overwrite", &overwrite);
  if (auto done = options.parse(args)) return *done;

  if (instance_dir.empty() && config_file.empty())
    return options.usage_error("--instance DIR (or --config YAML) is required");
  if (bundle_file.empty()) return options.usage_error("--pkcs12-file FILE is required");
  if (password_file.empty()) return options.usage_error("--pkcs12-password-file PWFILE is required");
  if (options.given("--instance-id") && !valid_instance_id(instance_id))
    return options.usage_error(fmt::format("--instance-id '{}': expected letters, digits, '-' or '_'", instance_id));

  // The instance's YAML, when we have one, names the folder and the ID.
  fs::path yaml = config_file;
  if (yaml.empty() && fs::exists(fs::path(instance_dir) / "instance.yaml")) yaml = fs::path(instance_dir) / "instance.yaml";
  if (!yaml.empty()) {
    auto config = load_instance_config(yaml);
    if (!config) return options.failure(config.error());
    if (instance_dir.empty()) instance_dir = config->dir.string();
    if (instance_id.empty()) instance_id = config->instance_id;
  }
  if (instance_id.empty())
    return options.usage_error(fmt::format(
        "cannot tell the instance ID: '{}' does not exist; give --instance-id ID (instance.id of the instance's "
        "YAML) or --config YAML",
        (fs::path(instance_dir) / "instance.yaml").string()));
  if (!fs::is_directory(instance_dir))
    return options.failure(Error::not_found(fmt::format("'{}' is not a folder", instance_dir)));
  if (!overwrite && fs::exists(bundle_file))
    return options.failure(Error::conflict(fmt::format("'{}' already exists; use --overwrite to replace it", bundle_file)));

  auto password = crypto::read_password(password_file);
  if (!password) return options.failure(password.error());
  auto items = crypto::collect_clone_bundle({instance_dir, instance_id, !no_key});
  if (!items) return options.failure(items.error());
  auto der = crypto::encode_pkcs12(*items, password->view());
  if (!der) return options.failure(der.error());
  if (auto st = crypto::write_pkcs12_file(bundle_file, *der, overwrite); !st) {
    Error e = st.error();
    if (e.is(ErrorCode::conflict)) e.message += "; use --overwrite to replace it";
    return options.failure(e);
  }

  std::size_t keys = 0;
  for (const auto& item : *items) keys += item.key ? 1 : 0;
  std::printf("Exported %zu certificate(s) and %zu key(s) of instance '%s' (%s) to %s:\n", items->size(), keys,
              instance_id.c_str(), instance_dir.c_str(), bundle_file.c_str());
  for (const auto& item : *items)
    std::printf("  %-36s %-9s %s\n", item.friendly_name.c_str(), item.key ? "with key" : "cert only",
                crypto::name_to_string(X509_get_subject_name(item.cert.get())).c_str());
  return kExitOk;
}

}  // namespace ca::clone_tools
