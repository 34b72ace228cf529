#pragma once
// Revocations, the CRLs of an issuing point and the CRL master lease.
#include <functional>
#include <optional>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

class RevocationStore {
 public:
  virtual ~RevocationStore() = default;

  // Revocation: an atomic change of caCertStatus VALID -> REVOKED on the record (so two agents
  // revoking at once get one success and one conflict). not_found / conflict ("already revoked").
  virtual Status revoke_certificate(const Revocation& revocation) = 0;
  // certificateHold -> VALID; conflict when the certificate is not on hold.
  virtual Status unrevoke_certificate(std::string_view serial_hex, std::string_view by) = 0;
  // Every revocation (or unrevocation) modified at or after `since` (all revoked when nullopt),
  // streamed to `visit` without holding them all in memory.
  virtual Status each_revocation_change(std::optional<TimePoint> since,
                                        const std::function<void(const RevocationChange&)>& visit) = 0;
  // The issuing point's numbers and its stored CRLs (complete and partitions). The full CRLs are
  // left out (only their numbers read) when the stored full CRL number is `skip_full_number`: a
  // follower that already serves that full CRL reads only the new delta.
  virtual Result<std::optional<CrlRecord>> load_crl(std::string_view issuing_point, uint64_t skip_full_number = 0) = 0;
  // The numbers and times only (no DER): cheap enough to poll.
  virtual Result<std::optional<CrlRecord>> load_crl_numbers(std::string_view issuing_point) = 0;
  // The lease: the epoch entry with the highest epoch (one entry per epoch, so that replication,
  // which resolves two writes of one entry by the later write, can never bring a lower epoch back
  // over a higher one), with the issuing point's pin and handover.
  virtual Result<CrlLease> read_crl_lease(std::string_view issuing_point) = 0;
  // Writes the lease when the highest epoch here is still `expected`'s (holder and epoch; conflict
  // otherwise): the same epoch renews (or gives back) that epoch's entry, only while it names its
  // holder; a higher epoch adds a new entry (conflict if it exists). An epoch never goes down and
  // changes holder only with a new epoch. A handover request that `expected` carried and `lease`
  // does not is withdrawn; the pin is left alone.
  virtual Status write_crl_lease(std::string_view issuing_point, const CrlLease& expected, const CrlLease& lease) = 0;
  // Sets (or clears, with "") the pin or the handover request of an issuing point's lease.
  enum class CrlRoleHint { pinned, handover };
  virtual Status set_crl_role_hint(std::string_view issuing_point, CrlRoleHint hint, std::string_view instance) = 0;
  // Stores a publication: the numbers on the issuing point entry first (compare-and-set: above the
  // stored ones, and the highest lease epoch is crl.epoch when that is set), then each CRL present in
  // crl.complete / crl.partitions in its own entry. CRLs absent from the record stay as stored.
  virtual Status save_crl(const CrlRecord& crl) = 0;
};

}  // namespace ca::store
