#pragma once
// CRL numbers that two CRL masters can never share.
//
// Every takeover of the CRL master lease mints a new epoch:
//   epoch  = (generation << 12) | replica ID of the instance that mints it
//   number = (epoch << 32) | sequence (1, 2, ... within the epoch)
// The generation is one above every generation the minting instance can see (in the lease and in
// the stored CRL numbers), so a new master's first number is above every number it can see; the
// replica ID (unique per instance, assigned by the registrar, < 4096) makes two epochs minted at
// once on the two sides of a partition differ. Two masters with different epochs therefore never
// produce the same number, and numbers stay below 2^63 (generations below 2^19).
// Numbers from before epochs existed (below 2^32) count as epoch 0.
#include <cstdint>

namespace ca::authority {

inline constexpr int kCrlSequenceBits = 32;
inline constexpr int kCrlReplicaBits = 12;
inline constexpr uint64_t kCrlMaxGeneration = (uint64_t{1} << 19) - 1;

constexpr uint64_t crl_epoch(uint64_t generation, int replica_id) {
  return (generation << kCrlReplicaBits) | (static_cast<uint64_t>(replica_id) & ((1u << kCrlReplicaBits) - 1));
}
constexpr uint64_t epoch_generation(uint64_t epoch) { return epoch >> kCrlReplicaBits; }
constexpr int epoch_replica_id(uint64_t epoch) {
  return static_cast<int>(epoch & ((uint64_t{1} << kCrlReplicaBits) - 1));
}
constexpr uint64_t epoch_of_crl_number(uint64_t number) { return number >> kCrlSequenceBits; }
constexpr uint64_t sequence_of_crl_number(uint64_t number) { return number & ((uint64_t{1} << kCrlSequenceBits) - 1); }
constexpr uint64_t first_crl_number(uint64_t epoch) { return (epoch << kCrlSequenceBits) + 1; }
// The last number of an epoch: a master that reaches it must mint a new epoch.
constexpr uint64_t last_crl_number(uint64_t epoch) {
  return (epoch << kCrlSequenceBits) | ((uint64_t{1} << kCrlSequenceBits) - 1);
}

}  // namespace ca::authority
