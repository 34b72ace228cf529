#pragma once
// CRL partitions (crl.partitions: N > 1): each certificate belongs to one of N partitions, fixed
// by its serial number (so chosen at issuance and stable for its life), and names that partition's
// CRL in its CRL distribution point. Each partition's CRL lists only that partition's revoked
// serials and carries an Issuing Distribution Point naming its own URL (RFC 5280 5.2.5); a relying
// party downloads 1/N of the revoked entries. The complete CRL (MasterCRL.crl) is published as well,
// for certificates issued before partitioning and for clients that want everything.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/certificate_builder.hpp"
#include "crypto/crl_builder.hpp"

namespace ca::authority {

// FNV-1a over the serial's magnitude bytes, modulo the partition count: sequential serials from
// range allocation spread evenly, and the same serial always lands in the same partition.
inline std::size_t crl_partition_of(const crypto::CrlEntry& entry, std::size_t partitions) {
  if (partitions <= 1) return 0;
  uint64_t hash = 1469598103934665603ull;
  for (uint8_t b : entry.serial_bytes()) {
    hash ^= b;
    hash *= 1099511628211ull;
  }
  return static_cast<std::size_t>(hash % partitions);
}

inline std::optional<std::size_t> crl_partition_of_serial(std::string_view serial_hex, std::size_t partitions) {
  auto entry = crypto::CrlEntry::from_hex(serial_hex, 0, 0);
  if (!entry) return std::nullopt;
  return crl_partition_of(*entry, partitions);
}

// The file names CRLs are served under (/crl/<name>): MasterCRL.crl, MasterCRL-delta.crl,
// MasterCRL-<k>.crl, MasterCRL-<k>-delta.crl.
inline std::string crl_file_name(std::optional<std::size_t> partition, bool delta) {
  std::string name = "MasterCRL";
  if (partition) {
    name += '-';
    name += std::to_string(*partition);
  }
  if (delta) name += "-delta";
  return name + ".crl";
}

// Dogtag's issuing point name of a partition (getCRL?crlIssuingPoint=MasterCRL-<k>).
inline std::string crl_issuing_point_name(std::optional<std::size_t> partition) {
  return partition ? "MasterCRL-" + std::to_string(*partition) : std::string("MasterCRL");
}

// The CRL distribution point and Freshest CRL of a new certificate: its partition's CRLs, or the
// complete ones when the CA is not partitioned.
inline void point_to_crls(crypto::CertificateSpec& spec, const std::string& base_url, std::string_view serial_hex,
                          std::size_t partitions) {
  std::optional<std::size_t> partition;
  if (partitions > 1) partition = crl_partition_of_serial(serial_hex, partitions);
  spec.crl_distribution_points = {base_url + "/crl/" + crl_file_name(partition, false)};
  spec.freshest_crl = {base_url + "/crl/" + crl_file_name(partition, true)};
}

}  // namespace ca::authority
