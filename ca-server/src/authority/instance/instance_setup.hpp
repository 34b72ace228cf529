#pragma once
// Creating and opening an instance: its folder, keys, subsystem certificates, the directory
// (embedded slapd or an external one), the base DIT, the profiles and its replica entry.
#include <memory>
#include <optional>

#include "core/config.hpp"
#include "core/files.hpp"
#include "store/ca_store.hpp"
#include "store/ldap/embedded_directory.hpp"
#include "store/ldap/group_commit.hpp"
#include "store/ldap/ldap_connection.hpp"

namespace ca::authority {

// The directory an instance uses; owns the embedded slapd when there is one.
struct InstanceDirectory {
  std::unique_ptr<store::EmbeddedDirectory> embedded;  // null for an external directory
  store::LdapEndpoint endpoint;
};

// Builds the endpoint from the config (reads the bind password file) and, for an embedded
// directory, starts slapd (supervised when `supervise`). `tcp`: also open the directory's TCP
// port for other instances' directories (ldaps:// once the directory certificate exists).
Result<InstanceDirectory> open_instance_directory(const InstanceConfig& config, bool supervise, bool tcp = true);

// A certificate for this instance signed here with the CA key of the instance folder (every
// instance holds it), with a random 127-bit serial checked by nobody: for certificates needed
// before the directory can record them (a clone's directory certificate, before its directory
// exists). `record_local_certificate` records it later. Kinds: "directory" (TLS of the
// directory's TCP port: CN=Directory <instance id>, SANs listen_address, 127.0.0.1, localhost).
Status issue_local_certificate(const InstanceConfig& config, std::string_view file);
// The subject of an instance's directory certificate, "CN=Directory <instance id>" under the CA's
// own O, OU...: the identity its directory replicates with (store/replication.hpp), in RFC 4514 form.
Result<std::string> directory_certificate_subject(const InstanceConfig& config, std::string_view instance_id);
// Adds the certificate record (and a request record) of certs/<file>.pem if the directory has none.
Status record_local_certificate(store::CaStore& store, const InstanceConfig& config, std::string_view file);

// The instance's directory for a local tool (`ca-server agent`, `ca-clone prepare`): the running
// server's slapd over its unix socket when there is one, otherwise the embedded slapd started
// for the duration of the tool (socket only), or the external directory.
struct LocalDirectory {
  std::optional<InstanceDirectory> started;
  store::LdapEndpoint endpoint;
};
Result<LocalDirectory> open_local_directory(const InstanceConfig& config);

// The embedded slapd of an instance (for tools that set it up before ca-server runs).
store::EmbeddedDirectoryOptions embedded_directory_options(const InstanceConfig& config, const std::string& password);
// Creates a folder (and its parents) with these permissions; existing ones get the permissions too.
Status ensure_dir(const std::filesystem::path& dir, std::filesystem::perms perms);
// Writes a fresh random password to `file` (0600, folder 0700) unless the file exists.
Status ensure_password_file(const std::filesystem::path& file);

// How records are committed, from directory.durability and directory.group_commit.
store::GroupCommitOptions group_commit_options(const InstanceConfig& config);

// `ca-server init`: idempotent; every step that is already done is skipped, so a re-run after a
// failure finishes the job. Prints progress through the log.
Status initialize_instance(const InstanceConfig& config);

// The YAML written by `ca-server init --write-config` / quickstart: every key with its default.
std::string sample_instance_yaml(const std::string& instance_dir, uint16_t port);

}  // namespace ca::authority
