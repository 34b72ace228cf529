#pragma once
// The master's side of cloning: handing out replica IDs, subsystem certificates and replication
// accounts to new clones, adding the agreement through which this directory consumes from a
// clone, and retiring clones. Called through the admin endpoints: a new clone presents a join
// token (made by `ca-clone prepare`), a registered instance its own subsystem certificate.
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "authority/audit/audit_log.hpp"
#include "authority/revocation/revocation.hpp"
#include "core/config.hpp"
#include "store/ca_store.hpp"
#include "store/ldap/replication.hpp"

namespace ca::authority {

class CertificateAuthority;

struct RegistrationRequest {
  std::string instance_id;
  std::string url;            // https://host:port where the clone will serve
  std::string subsystem_csr;  // PEM, made by the clone (its key never leaves it); required with a join token
  std::string join_token;     // "<id>.<secret>", or empty when a registered instance calls
};

// Who calls the admin API, as authenticated for this request: a registered instance (its own
// subsystem certificate), an administrator (caAdminCert), or neither (a new clone with a join token).
// An instance's certificate authorizes only operations on that instance itself.
struct RegistryCaller {
  std::optional<store::ReplicaRecord> instance;
  std::optional<AgentIdentity> administrator;
  std::string display() const;
};

struct CloneRegistration {
  int replica_id = 0;
  std::string instance_id;
  std::string suffix;
  std::string replication_bind_dn;   // the clone's own account...
  std::string replication_password;  // ...and its password (new on every registration)
  std::string master_directory_url;  // where the clone's directory consumes from
  int master_replica_id = 0;
  std::string master_instance_id;
  std::string subsystem_certificate;  // PEM, when one was issued from the request's CSR
};

// What the admin API writes into cn=config or replica entries must be plain: these refuse
// anything else (bad_request naming the value).
Status check_instance_id(std::string_view id);
Status check_https_url(std::string_view url);
Status check_directory_url(std::string_view url);  // ldaps://host:port/

// `ca-clone promote`: makes the instance `instance_id` the one that registers clones and assigns
// replica IDs. Before it names itself (caRegistrar, replicated), it moves the replica counter of
// its own directory above every replica ID any reachable directory knows (`highest_known`: this
// directory's and each peer's, from highest_replica_id_known) plus `gap`, so an ID the old master
// handed out just before it was lost, and not yet replicated here, is not handed out again.
struct Promotion {
  std::optional<std::string> previous_registrar;
  uint64_t highest_known = 0;
  uint64_t next_replica_id = 0;
};
Result<Promotion> promote_registrar(store::LdapConnection& tree, const std::string& suffix,
                                    const std::string& instance_id, uint64_t highest_known, uint64_t gap);

struct TopologyMember {
  store::ReplicaRecord replica;
  bool agreement = false;  // this directory consumes from it
  std::string directory_url;
};

class CloneRegistry {
 public:
  // `tree`: this instance's directory; `config_admin`: its cn=config (embedded directory only).
  CloneRegistry(const InstanceConfig& config, store::CaStore& store, CertificateAuthority& authority,
                store::LdapEndpoint tree, std::optional<store::LdapEndpoint> config_admin);

  // A new instance ID: with a join token (works once, before its expiry, for the ID it names if
  // any) or by an administrator, with the CSR of the clone's subsystem certificate. An existing ID:
  // only that instance itself, with its own current certificate (a re-run of spawn); it keeps its
  // replica ID and gets a fresh password, and with a CSR a new subsystem certificate, the old one
  // revoked in the same step. A retired ID is never handed out again. Refusals to callers who are
  // not authenticated (a bad join token) say nothing about which IDs exist.
  Result<CloneRegistration> register_clone(const RegistrationRequest& request, const RegistryCaller& caller);
  // `ca-clone prepare`: a join token for one clone, stored as a salted hash; returns "<id>.<secret>".
  static Result<std::string> create_join_token(store::CaStore& store, std::chrono::seconds lifetime,
                                               const std::string& for_instance_id, const std::string& created_by);
  // This directory starts consuming from the clone's directory at `directory_url`: that instance
  // itself (its own directory URL) or an administrator.
  Status connect_clone(int replica_id, const std::string& directory_url, const RegistryCaller& caller);
  // Marks the clone retired, drops the agreement with it and its replication account, and revokes
  // its own certificates (subsystem, TLS server, directory): from then on its calls are refused.
  // An administrator only: no instance retires another (or itself) through the API.
  Status retire_clone(int replica_id, const RegistryCaller& caller);
  Result<std::vector<TopologyMember>> topology();
  // Registrations and retirements, done or refused, are recorded here (set once at start-up).
  void set_audit_log(AuditLog* audit) { audit_ = audit; }

  // --- A mesh that heals itself ---
  // Every instance records in its replica entry where its directory listens (caDirectoryUrl), and
  // every instance with an embedded directory consumes from every other registered, non-retired
  // instance that has one: the agreements follow the registry, which replicates. So a new clone,
  // once registered with any instance, is soon connected with all of them, and losing any one
  // instance (the master included) does not cut the others off from each other.
  Status advertise_directory_url(const std::string& url);
  // At start: this instance's directory certificate subject joins the directory peers (so the
  // others' directories may replicate from it, hashes included), and every ldaps:// agreement of
  // this directory binds with that certificate (store/replication.hpp).
  Status join_directory_peers();
  // One pass: adds the agreements the registry calls for and drops those with retired instances.
  // Returns how many agreements it changed.
  Result<int> reconcile_mesh();

 private:
  Result<CloneRegistration> register_clone_unaudited(const RegistrationRequest& request, const RegistryCaller& caller);
  // The steps of a registration: the join token (its ID when the caller has one), the instance's
  // registration if it has one (and whether the caller may register it), a replica ID for a new
  // instance, the subsystem certificate, the replication account.
  Result<std::string> check_join_token(const RegistrationRequest& request, bool authenticated);
  Result<std::optional<store::ReplicaRecord>> registration_to_renew(const std::string& instance_id,
                                                                    const RegistryCaller& caller);
  Result<int> assign_replica_id(const RegistrationRequest& request, const RegistryCaller& caller,
                                const std::string& token_id);
  Status certify_subsystem(const RegistrationRequest& request, int replica_id, const std::string& replaced_serial,
                           CloneRegistration& reg);
  Status open_replication_to(CloneRegistration& reg, const std::string& master_url);
  Status revoke_replaced_subsystem_certificate(const std::string& serial_hex, int replica_id);
  Status retire_clone_unaudited(int replica_id);
  Result<std::string> own_replication_password();
  // The agreement this directory makes to consume from `replica_id` at `directory_url`.
  Result<store::ReplicationPeer> agreement_with(int replica_id, const std::string& directory_url);
  Result<std::unique_ptr<store::LdapConnection>> open_tree() const;

  const InstanceConfig& config_;
  store::CaStore& store_;
  CertificateAuthority& authority_;
  store::LdapEndpoint tree_;
  std::optional<store::LdapEndpoint> config_admin_;
  // One topology change at a time: agreements are rewritten as a whole list in cn=config, and a
  // registration reads the replicas before it claims an ID.
  std::mutex changes_mutex_;
  AuditLog* audit_ = nullptr;
};

}  // namespace ca::authority
