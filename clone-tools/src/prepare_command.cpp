// ca-clone prepare: the clone bundle (Dogtag's `pki-server ca-clone-prepare`).
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <unistd.h>

#include <fmt/format.h>

#include "authority/audit/audit_log.hpp"
#include "authority/instance/clone_registry.hpp"
#include "authority/instance/instance_setup.hpp"
#include "commands.hpp"
#include "core/config.hpp"
#include "crypto/pem.hpp"
#include "crypto/pkcs12_bundle.hpp"
#include "store/ldap/ldap_ca_store.hpp"

namespace ca::clone_tools {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kUsage =
    R"(usage: ca-clone prepare --config YAML --pkcs12-file FILE --pkcs12-password-file PWFILE
                        [--instance DIR] [--instance-id ID] [--no-key] [--overwrite]
                        [--join-token-file FILE] [--join-token-lifetime SECONDS] [--clone-id ID]

Exports what a clone takes from its master into one PKCS#12 file, named as Dogtag names them
(<ID> is the instance ID):
  caSigningCert cert-<ID> CA       certs/ca_signing.pem    + private/ca_signing.key
  ocspSigningCert cert-<ID> CA     certs/ocsp_signing.pem  + private/ocsp_signing.key
  auditSigningCert cert-<ID> CA    certs/audit_signing.pem + private/audit_signing.key
  storageCert cert-<ID> KRA        certs/kra_storage.pem   (+ key), when present
  transportCert cert-<ID> KRA      certs/kra_transport.pem (+ key), when present
  the issuers in certs/ca_chain.pem (a subordinate CA's chain), when present, without keys
The subsystem, TLS server, directory and agent certificates are not exported: every instance has
its own. A new clone gets its subsystem certificate from the master when it registers, with the
join token prepare also writes:
  <FILE>.join-token (mode 0600): one registration, within --join-token-lifetime (default one day),
  for --clone-id only when given. The directory keeps only a salted hash of it. Hand it to the
  clone's operator with the bundle; `ca-clone spawn` presents it (clone.join_token_file).

Options:
  --instance DIR               the instance folder made by `ca-server init` (holds certs/, private/)
  --config YAML                the instance's YAML file (as given to `ca-server init`): the folder
                               is its instance.dir (unless --instance) and the ID its instance.id
  --instance-id ID             the ID in the nicknames. Default: instance.id of --config, else of
                               DIR/instance.yaml
  --pkcs12-file FILE           the bundle to write: mode 0600, written atomically
  --pkcs12-password-file PWFILE
                               the bundle's password: the first line of PWFILE ("-": standard input).
                               Passwords are never taken from the command line.
  --join-token-file FILE       where to write the join token (default: FILE.join-token)
  --join-token-lifetime SECONDS
                               60 to 2592000 (30 days); default 86400
  --clone-id ID                the token registers only the clone with this instance ID
  --no-key                     certificates only, without private keys
  --overwrite                  replace FILE and its join token file when they exist (default: refuse)
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

// What `ca-clone prepare` was asked for, as checked.
struct PrepareRequest {
  std::string instance_dir, config_file, instance_id, bundle_file, password_file, token_file;
  std::string lifetime_text = "86400", clone_id;
  bool no_key = false, overwrite = false;
  fs::path yaml;      // the instance's YAML
  long lifetime = 0;  // of the join token, seconds
};

// Checks the options and fills in what the instance's YAML names; an exit status when they do not do.
std::optional<int> check_request(const OptionParser& options, PrepareRequest& r) {
  if (r.instance_dir.empty() && r.config_file.empty())
    return options.usage_error("--instance DIR (or --config YAML) is required");
  if (r.bundle_file.empty()) return options.usage_error("--pkcs12-file FILE is required");
  if (r.password_file.empty()) return options.usage_error("--pkcs12-password-file PWFILE is required");
  if (options.given("--instance-id") && !valid_instance_id(r.instance_id))
    return options.usage_error(fmt::format("--instance-id '{}': expected letters, digits, '-' or '_'", r.instance_id));
  // The instance's YAML, when we have one, names the folder and the ID.
  r.yaml = r.config_file;
  if (r.yaml.empty() && fs::exists(fs::path(r.instance_dir) / "instance.yaml"))
    r.yaml = fs::path(r.instance_dir) / "instance.yaml";
  if (!r.yaml.empty()) {
    auto config = load_instance_config(r.yaml);
    if (!config) return options.failure(config.error());
    if (r.instance_dir.empty()) r.instance_dir = config->dir.string();
    if (r.instance_id.empty()) r.instance_id = config->instance_id;
  }
  if (r.yaml.empty())
    return options.usage_error(
        "--config YAML (or DIR/instance.yaml) is required: the join token is stored in the instance's directory");
  try {
    std::size_t used = 0;
    r.lifetime = std::stol(r.lifetime_text, &used);
    if (used != r.lifetime_text.size()) r.lifetime = 0;
  } catch (...) {
    r.lifetime = 0;  // not a number: refused just below
  }
  if (r.lifetime < 60 || r.lifetime > 30L * 86400)
    return options.usage_error(
        fmt::format("--join-token-lifetime '{}': expected 60 to 2592000 seconds", r.lifetime_text));
  if (!r.clone_id.empty() && !valid_instance_id(r.clone_id))
    return options.usage_error(fmt::format("--clone-id '{}': expected letters, digits, '-' or '_'", r.clone_id));
  if (r.token_file.empty()) r.token_file = r.bundle_file + ".join-token";
  if (!r.overwrite && fs::exists(r.token_file))
    return options.failure(
        Error::conflict(fmt::format("'{}' already exists; use --overwrite to replace it", r.token_file)));
  if (r.instance_id.empty())
    return options.usage_error(fmt::format(
        "cannot tell the instance ID: '{}' does not exist; give --instance-id ID (instance.id of the instance's "
        "YAML) or --config YAML",
        (fs::path(r.instance_dir) / "instance.yaml").string()));
  if (!fs::is_directory(r.instance_dir))
    return options.failure(Error::not_found(fmt::format("'{}' is not a folder", r.instance_dir)));
  if (!r.overwrite && fs::exists(r.bundle_file))
    return options.failure(
        Error::conflict(fmt::format("'{}' already exists; use --overwrite to replace it", r.bundle_file)));
  return std::nullopt;
}

// The join token first (stored hashed in the instance's directory), then its 0600 file, then the
// bundle: a failure leaves no bundle without its token, and an existing bundle untouched.
// Returns the token.
Result<std::string> write_token_and_bundle(const PrepareRequest& r, const std::vector<uint8_t>& der) {
  CA_TRY(auto config, load_instance_config(r.yaml));
  auto directory = authority::open_local_directory(config);
  if (!directory) return fail(directory.error().context("the instance's directory"));
  std::string token;
  Status written = ok();
  {
    store::GroupCommitOptions no_writes;
    no_writes.writers = 1;
    store::LdapCaStore store(directory->endpoint, config.directory.suffix, 1, no_writes);
    CA_TRY(token,
           authority::CloneRegistry::create_join_token(store, std::chrono::seconds(r.lifetime), r.clone_id,
                                                       "ca-clone prepare on instance '" + config.instance_id + "'"));
    // A join token lets a new instance in: it is a security event of the instance that made it.
    if (auto audit = authority::open_instance_audit_log(config))
      (*audit)->record("join_token_created", fmt::format("ca-clone prepare (uid {})", ::getuid()),
                       fmt::format("join token {} for {}", token.substr(0, token.find('.')),
                                   r.clone_id.empty() ? std::string("any new clone") : "clone '" + r.clone_id + "'"),
                       fmt::format("valid {} s; bundle {}", r.lifetime, r.bundle_file));
    written = crypto::write_text_file_atomic(r.token_file, token + "\n", 0600);
    if (written) {
      written = crypto::write_pkcs12_file(r.bundle_file, der, r.overwrite);
      if (!written) {
        std::error_code ec;
        fs::remove(r.token_file, ec);
      }
    }
    // A token whose file or bundle could not be written is spent at once: nobody can use it.
    if (!written) (void)store.consume_join_token(token.substr(0, token.find('.')), 0);
  }
  if (directory->started && directory->started->embedded) directory->started->embedded->stop();
  if (!written) {
    Error e = written.error();
    if (e.is(ErrorCode::conflict)) e.message += "; use --overwrite to replace it";
    return fail(e);
  }
  return token;
}

}  // namespace

int run_prepare(Args args) {
  PrepareRequest r;
  OptionParser options("ca-clone prepare", kUsage);
  options.value("--instance", &r.instance_dir)
      .value("--config", &r.config_file)
      .value("--instance-id", &r.instance_id)
      .value("--pkcs12-file", &r.bundle_file)
      .value("--pkcs12-password-file", &r.password_file)
      .value("--join-token-file", &r.token_file)
      .value("--join-token-lifetime", &r.lifetime_text)
      .value("--clone-id", &r.clone_id)
      .flag("--no-key", &r.no_key)
      .flag("--overwrite", &r.overwrite);
  if (auto done = options.parse(args)) return *done;
  if (auto refused = check_request(options, r)) return *refused;

  auto password = crypto::read_password(r.password_file);
  if (!password) return options.failure(password.error());
  auto items = crypto::collect_clone_bundle({r.instance_dir, r.instance_id, !r.no_key});
  if (!items) return options.failure(items.error());
  auto der = crypto::encode_pkcs12(*items, password->view());
  if (!der) return options.failure(der.error());
  auto token = write_token_and_bundle(r, *der);
  if (!token) return options.failure(token.error());

  std::size_t keys = 0;
  for (const auto& item : *items) keys += item.key ? 1 : 0;
  std::printf("Exported %zu certificate(s) and %zu key(s) of instance '%s' (%s) to %s:\n", items->size(), keys,
              r.instance_id.c_str(), r.instance_dir.c_str(), r.bundle_file.c_str());
  for (const auto& item : *items)
    std::printf("  %-36s %-9s %s\n", item.friendly_name.c_str(), item.key ? "with key" : "cert only",
                crypto::name_to_string(X509_get_subject_name(item.cert.get())).c_str());
  std::printf("Join token (one registration, %ld s%s): %s (mode 0600)\n", r.lifetime,
              r.clone_id.empty() ? "" : (", clone '" + r.clone_id + "' only").c_str(), r.token_file.c_str());
  return kExitOk;
}

}  // namespace ca::clone_tools
