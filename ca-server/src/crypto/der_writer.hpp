#pragma once
// A minimal DER writer for the structures we emit in bulk (CRLs with a million entries), where
// building one OpenSSL object per entry would cost time and memory (docs/crl.md).
#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ca::crypto {

class DerWriter {
 public:
  // Tag + length + content. Content is appended by the caller between begin() and end().
  std::size_t begin(uint8_t tag);  // returns a marker for end()
  void end(std::size_t marker);    // patches the length (moves the content if needed)
  // Where the content of an open (not yet ended) value starts.
  static std::size_t content_start(std::size_t marker) { return marker + kReserved; }
  static constexpr std::size_t kReserved = 5;  // room for a long-form length up to 2^32 - 1 bytes
  void raw(std::span<const uint8_t> bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }
  void raw(std::string_view bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }
  void integer(uint64_t value);
  // A positive INTEGER from big-endian magnitude bytes (leading zeros stripped, 0x00 added if needed).
  void unsigned_integer(std::span<const uint8_t> magnitude);
  void enumerated(int value);
  void boolean(bool value);
  void octet_string(std::span<const uint8_t> bytes);
  void bit_string(std::span<const uint8_t> bytes);  // no unused bits
  void oid(std::string_view dotted);
  void null();
  // UTCTime before 2050, GeneralizedTime from 2050 (RFC 5280 4.1.2.5).
  void time(std::chrono::system_clock::time_point t);
  void generalized_time(std::chrono::system_clock::time_point t);

  std::vector<uint8_t>& bytes() { return out_; }
  void reserve(std::size_t n) { out_.reserve(n); }

  static void append_length(std::vector<uint8_t>& out, std::size_t length);

 private:
  void tlv(uint8_t tag, std::span<const uint8_t> content);
  std::vector<uint8_t> out_;
};

}  // namespace ca::crypto
