#pragma once
// The metrics of a running instance below the HTTP layer, registered in one place:
//   ca_store_commit_batch_size                 histogram  units per group-commit batch
//   ca_store_commit_sync_seconds               histogram  time to write and sync one batch
//   ca_serial_range_remaining                  gauge      serials left in the current and standby ranges
//   ca_crl_number, ca_crl_age_seconds          gauge      the full CRL served here
//   ca_crl_master                              gauge      1 while this instance holds the CRL lease
//   ca_crl_lease_holder_info{instance}         gauge      1, labelled with the lease holder last seen
//   ca_crl_behind_total                        counter    episodes of serving a CRL below a peer's (not ready)
//   ca_crl_older_stored_total                  counter    CRLs stored below the one served here (two epochs)
//   ca_crl_lease_epoch_regressions_total       counter    lease reads whose epoch went down (never followed)
//   ca_ready                                   gauge      1 when /readyz would answer 200
//   ca_replication_context_csn_age_seconds{server_id}  gauge  age of each provider's contextCSN
// Every gauge reads state these objects keep in memory (the contextCSN values through
// ContextCsnMonitor's cache): a scrape never waits for the directory.
#include "authority/cluster/context_csn_monitor.hpp"
#include "authority/instance/readiness.hpp"
#include "authority/issuance/certificate_authority.hpp"
#include "authority/revocation/crl_consistency.hpp"
#include "authority/revocation/crl_master.hpp"
#include "authority/revocation/crl_publisher.hpp"
#include "core/metrics.hpp"
#include "store/ldap/group_commit.hpp"

namespace ca::authority {

// What the gauges read; each must outlive the registry's scrapes (null: that gauge is left out).
struct InstanceMetricSources {
  const CertificateAuthority* authority = nullptr;
  const CrlPublisher* crls = nullptr;
  const CrlMasterElection* election = nullptr;
  const ReadinessMonitor* readiness = nullptr;
  const ContextCsnMonitor* context_csns = nullptr;
  store::GroupCommitWriter* writer = nullptr;  // gets a batch observer
  const CrlConsistency* crl_consistency = nullptr;
};

void register_instance_metrics(metrics::Registry& registry, const InstanceMetricSources& sources);

// Serials this instance can still hand out without claiming a range: the rest of the current
// range and the whole standby range.
uint64_t serials_remaining(const RangeState& serials);

}  // namespace ca::authority
