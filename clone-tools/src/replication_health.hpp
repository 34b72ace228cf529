#pragma once
// Whether the directories of a topology replicate, judged from two looks at each of them taken an
// interval apart. Pure: status_command.cpp reads the directories and hands the values in; the
// tests fabricate them.
//
// contextCSN says, per provider (server ID = replica ID), the newest change of that provider a
// directory holds. Every CSN of one provider is stamped by that provider's clock, so lag is the
// difference of two CSNs of the same provider: how far this directory's copy is behind the newest
// copy seen anywhere. Never "now minus CSN": an idle provider is not behind.
//
// One look cannot tell a slow directory from a cut-off one; two can. A directory that, at the
// second look, still lacks changes some directory already held at the first look, and whose CSN
// for that provider did not move in between, is not receiving that provider's changes (a
// partition or a broken agreement). A change made a moment before the second look is not held
// against anyone: only what was already there a whole interval earlier counts. Every running
// ca-server writes its heartbeat (caHeartbeat on its replica entry) once a second, so a live
// provider always has such changes.
#include <chrono>
#include <compare>
#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace ca::clone_tools {

// A change sequence number as slapd writes it: YYYYmmddHHMMSS.ffffffZ#count#sid#mod (count, sid
// and mod in hex). Ordered as slapd orders the CSNs of one provider: time, then count.
struct Csn {
  std::chrono::sys_time<std::chrono::microseconds> time{};
  unsigned long count = 0;
  int server_id = 0;
  unsigned long mod = 0;

  auto operator<=>(const Csn&) const = default;
};

[[nodiscard]] Result<Csn> parse_csn(std::string_view text);
// Seconds from `older` to `newer` (negative when `newer` is the older one).
double seconds_between(const Csn& older, const Csn& newer);
// "2026-11-30 17:30:01.123456Z": the timestamp of a CSN, for people.
std::string csn_time_text(const Csn& csn);

// One look at one directory: its contextCSN values by provider server ID, or why it could not
// be read.
struct DirectoryLook {
  bool reached = false;
  std::string error;
  std::map<int, std::string> context_csns;
};

struct DirectorySamples {
  std::string name;  // how the tool names the directory (an agreement's provider URL names its provider)
  DirectoryLook first;
  DirectoryLook second;  // at least the interval after every first look
};

// A replication agreement (olcSyncrepl) of a directory whose cn=config the tool could read.
struct Agreement {
  std::string consumer;  // the directory it belongs to
  int replica_id = 0;    // its rid: the provider's replica ID
  std::string provider;  // the provider's URL: a DirectorySamples::name when the tool looked there
};

struct HealthOptions {
  double interval_seconds = 2;  // between the two looks
  double max_lag_seconds = 10;
  // How to name provider N in messages ("replica 2 (clone1)"); "replica N" when missing.
  std::map<int, std::string> provider_labels;
};

enum class FindingKind {
  unreachable,            // the tool could not read a directory
  agreement_unreachable,  // an agreement consumes from a provider the tool cannot reach
  not_receiving,          // a directory gets none of a provider's changes: partition or broken agreement
  lagging,                // it gets them, but more than max_lag_seconds late
  records_missing,        // certificate records held elsewhere at both looks are not in it
  bad_csn,                // a contextCSN value that does not parse
};
std::string_view finding_kind_name(FindingKind kind);

struct Finding {
  FindingKind kind = FindingKind::unreachable;
  std::string directory;
  std::optional<int> replica_id;  // the provider it is about, if any
  std::string message;
};

// One provider as one directory holds it (second look).
struct ProviderState {
  int replica_id = 0;
  std::optional<Csn> csn;             // none: this directory holds none of its changes
  std::optional<double> lag_seconds;  // behind the newest CSN of this provider anywhere; none without a CSN
  bool advanced = false;              // this directory's CSN for it moved between the looks
  bool provider_writing = false;      // the newest CSN for it anywhere moved between the looks
  bool receiving = true;              // false: flagged not_receiving
};

struct DirectoryHealth {
  std::string name;
  bool reachable = false;  // at both looks
  std::string error;
  std::vector<ProviderState> providers;  // by replica ID
  double lag_seconds = 0;                // the largest of the providers' lags
};

struct ReplicationHealth {
  std::vector<DirectoryHealth> directories;  // in the order of the samples
  std::vector<Finding> findings;
};

ReplicationHealth judge_replication(const std::vector<DirectorySamples>& samples,
                                    const std::vector<Agreement>& agreements, const HealthOptions& options);

// The certificate records (their serial numbers) each directory held at the two looks; only
// directories read at both.
using SerialSet = std::set<std::string, std::less<>>;
struct RecordLooks {
  std::string directory;
  SerialSet first;
  SerialSet second;
};

struct RecordCount {
  std::string directory;
  std::size_t records = 0;       // at the second look
  std::size_t missing_here = 0;  // held by another directory at the second look, not by this one
  std::size_t only_here = 0;     // held by no other directory at the second look
  std::size_t not_arriving = 0;  // held elsewhere at both looks and still not here: not replicated
};

struct RecordComparison {
  std::vector<RecordCount> directories;
  bool compared = false;     // at least two directories: with one, missing_here and only_here stay 0
  bool same_records = true;  // every directory held the same records at the second look
  std::vector<Finding> findings;
};

// Counts alone hide divergence (two sides of a partition that each issued 60 certificates hold
// equal counts); this compares the records themselves. A record still missing here although
// other directories held it at both looks had a whole interval to arrive: that is a finding.
// Records merely in flight (missing_here) are reported, not flagged.
RecordComparison compare_records(const std::vector<RecordLooks>& looks, const HealthOptions& options);

}  // namespace ca::clone_tools
