#include "crypto/der_writer.hpp"
#include "core/time_text.hpp"

#include <algorithm>
#include <charconv>
#include <ctime>

namespace ca::crypto {

namespace {

std::size_t length_size(std::size_t n) {
  if (n < 0x80) return 1;
  std::size_t bytes = 0;
  for (std::size_t v = n; v; v >>= 8) ++bytes;
  return 1 + bytes;
}
}  // namespace

void DerWriter::append_length(std::vector<uint8_t>& out, std::size_t n) {
  if (n < 0x80) {
    out.push_back(static_cast<uint8_t>(n));
    return;
  }
  uint8_t buf[8];
  int k = 0;
  for (std::size_t v = n; v; v >>= 8) buf[k++] = static_cast<uint8_t>(v & 0xff);
  out.push_back(static_cast<uint8_t>(0x80 | k));
  while (k) out.push_back(buf[--k]);
}

std::size_t DerWriter::begin(uint8_t tag) {
  out_.push_back(tag);
  std::size_t marker = out_.size();
  out_.insert(out_.end(), kReserved, 0);
  return marker;
}

void DerWriter::end(std::size_t marker) {
  std::size_t content_start = marker + kReserved;
  std::size_t n = out_.size() - content_start;
  std::size_t need = length_size(n);
  std::vector<uint8_t> len;
  append_length(len, n);
  if (need < kReserved) {
    // Shift the content left over the unused reserved bytes (one memmove per constructed value).
    std::copy(len.begin(), len.end(), out_.begin() + static_cast<std::ptrdiff_t>(marker));
    std::move(out_.begin() + static_cast<std::ptrdiff_t>(content_start), out_.end(),
              out_.begin() + static_cast<std::ptrdiff_t>(marker + need));
    out_.resize(out_.size() - (kReserved - need));
  } else if (need == kReserved) {
    std::copy(len.begin(), len.end(), out_.begin() + static_cast<std::ptrdiff_t>(marker));
  } else {
    out_.insert(out_.begin() + static_cast<std::ptrdiff_t>(content_start), need - kReserved, 0);
    std::copy(len.begin(), len.end(), out_.begin() + static_cast<std::ptrdiff_t>(marker));
  }
}

void DerWriter::tlv(uint8_t tag, std::span<const uint8_t> content) {
  out_.push_back(tag);
  append_length(out_, content.size());
  out_.insert(out_.end(), content.begin(), content.end());
}

void DerWriter::integer(uint64_t value) {
  uint8_t buf[9];
  int k = 0;
  do {
    buf[k++] = static_cast<uint8_t>(value & 0xff);
    value >>= 8;
  } while (value);
  if (buf[k - 1] & 0x80) buf[k++] = 0;
  std::vector<uint8_t> content(buf, buf + k);
  std::reverse(content.begin(), content.end());
  tlv(0x02, content);
}

void DerWriter::unsigned_integer(std::span<const uint8_t> magnitude) {
  std::size_t i = 0;
  while (i + 1 < magnitude.size() && magnitude[i] == 0) ++i;
  auto m = magnitude.subspan(i);
  out_.push_back(0x02);
  bool pad = m.empty() || (m[0] & 0x80);
  append_length(out_, m.size() + (pad ? 1 : 0));
  if (pad) out_.push_back(0);
  out_.insert(out_.end(), m.begin(), m.end());
}

void DerWriter::enumerated(int value) {
  uint8_t v = static_cast<uint8_t>(value);
  tlv(0x0a, std::span<const uint8_t>(&v, 1));
}

void DerWriter::boolean(bool value) {
  uint8_t v = value ? 0xff : 0x00;
  tlv(0x01, std::span<const uint8_t>(&v, 1));
}

void DerWriter::octet_string(std::span<const uint8_t> bytes) { tlv(0x04, bytes); }

void DerWriter::bit_string(std::span<const uint8_t> bytes) {
  out_.push_back(0x03);
  append_length(out_, bytes.size() + 1);
  out_.push_back(0);
  out_.insert(out_.end(), bytes.begin(), bytes.end());
}

void DerWriter::null() {
  out_.push_back(0x05);
  out_.push_back(0x00);
}

void DerWriter::oid(std::string_view dotted) {
  std::vector<uint64_t> arcs;
  std::size_t pos = 0;
  while (pos <= dotted.size()) {
    auto dot = dotted.find('.', pos);
    if (dot == std::string_view::npos) dot = dotted.size();
    uint64_t v = 0;
    std::from_chars(dotted.data() + pos, dotted.data() + dot, v);
    arcs.push_back(v);
    pos = dot + 1;
  }
  std::vector<uint8_t> content;
  auto base128 = [&](uint64_t v) {
    uint8_t buf[10];
    int k = 0;
    do {
      buf[k++] = static_cast<uint8_t>(v & 0x7f);
      v >>= 7;
    } while (v);
    while (k) {
      uint8_t b = buf[--k];
      content.push_back(k ? (b | 0x80) : b);
    }
  };
  base128(arcs[0] * 40 + (arcs.size() > 1 ? arcs[1] : 0));
  for (std::size_t i = 2; i < arcs.size(); ++i) base128(arcs[i]);
  tlv(0x06, content);
}

void DerWriter::time(std::chrono::system_clock::time_point t) {
  if (utc_year(t) >= 2050) return generalized_time(t);
  const std::string text = utc_text(t, kUtcTime);
  tlv(0x17, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

void DerWriter::generalized_time(std::chrono::system_clock::time_point t) {
  const std::string text = utc_text(t, kGeneralizedTime);
  tlv(0x18, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
}

}  // namespace ca::crypto
