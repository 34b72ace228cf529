#pragma once
// Claim entries: a token spent once in the whole cluster (authority/cluster/single_use_claims.hpp)
// and the Idempotency-Key claims placed beside them (authority/issuance/idempotency.hpp). One
// ClaimStore is one directory: the claims of a token live in its home directory only.
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "store/records.hpp"

namespace ca::store {

// Where a claim lives: single-use tokens (enrollment codes, key retrievals) and Idempotency-Keys
// have a container each.
enum class ClaimContainer { single_use, idempotency_key };

struct ClaimId {
  ClaimContainer container = ClaimContainer::single_use;
  std::string kind;   // single_use: the kind of token ("enrollment_code", ...); empty for idempotency_key
  std::string token;  // the token id, or the hex SHA-256 of an Idempotency-Key
  // The claim's name: "<kind>-<token>", or the token alone when there is no kind.
  std::string name() const { return kind.empty() ? token : kind + "-" + token; }
  bool operator==(const ClaimId&) const = default;
};

struct ClaimRecord {
  ClaimId id;
  std::string digest;  // what was spent ("<kind>:<token>"), or the digest of the keyed request
  std::string state;   // spent, released (single use); pending, done (Idempotency-Key)
  std::string nonce;   // the holder's: every change is a compare-and-set of it
  std::string instance_id;
  TimePoint created_at{};
  TimePoint expires_at{};
  std::string stored_response;           // Idempotency-Key, done: "<status>\n<body>"
  std::optional<TimePoint> modified_at;  // read only: the last change
  bool operator==(const ClaimRecord&) const = default;
};

// What a compare-and-set of the nonce also changes; unset fields stay as stored.
struct ClaimChange {
  std::optional<std::string> state;
  std::optional<std::string> stored_response;
  std::optional<std::string> instance_id;
  std::optional<TimePoint> created_at;
  std::optional<TimePoint> expires_at;
  std::optional<TimePoint> modified_at;
};

class ClaimStore {
 public:
  virtual ~ClaimStore() = default;
  // Adds a claim: conflict when one with its id exists already (atomic in this directory).
  [[nodiscard]] virtual Status add_claim(const ClaimRecord& claim) = 0;
  // nullopt when there is no such claim.
  [[nodiscard]] virtual Result<std::optional<ClaimRecord>> read_claim(const ClaimId& id) = 0;
  // Replaces `nonce` by `new_nonce` (the same one to keep it) and applies `change`, in one
  // modify: conflict when the claim does not hold `nonce` (any more), not_found when it is gone.
  [[nodiscard]] virtual Status swap_claim_nonce(const ClaimId& id, std::string_view nonce, std::string_view new_nonce,
                                                const ClaimChange& change) = 0;
  [[nodiscard]] virtual Status remove_claim(const ClaimId& id) = 0;
  // Deletes the claims of every container that expired at or before `now`; how many went.
  [[nodiscard]] virtual Result<int> remove_expired_claims(TimePoint now) = 0;
};

}  // namespace ca::store
