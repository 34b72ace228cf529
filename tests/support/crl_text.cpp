#include "support/crl_text.hpp"

#include <cctype>
#include <string_view>

namespace ca::testing {

std::string openssl_serial_hex(std::string serial) {
  if (serial.size() > 2 && serial[0] == '0' && (serial[1] == 'x' || serial[1] == 'X')) serial = serial.substr(2);
  std::size_t zeros = 0;
  while (zeros + 1 < serial.size() && serial[zeros] == '0') ++zeros;
  serial = serial.substr(zeros);
  for (auto& c : serial) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (serial.size() % 2) serial.insert(serial.begin(), '0');
  return serial;
}

CrlListing crl_listing(const std::string& crl_text, const std::string& serial) {
  const std::string needle = "Serial Number: " + openssl_serial_hex(serial);
  std::size_t at = 0;
  while ((at = crl_text.find(needle, at)) != std::string::npos) {
    const std::size_t end_of_serial = at + needle.size();
    // The whole number, not a prefix of a longer one.
    if (end_of_serial < crl_text.size() && std::isxdigit(static_cast<unsigned char>(crl_text[end_of_serial]))) {
      at = end_of_serial;
      continue;
    }
    std::size_t next = crl_text.find("Serial Number:", end_of_serial);
    const std::size_t signature = crl_text.find("Signature Algorithm", end_of_serial);
    if (next == std::string::npos || (signature != std::string::npos && signature < next)) next = signature;
    const std::string_view entry(crl_text.data() + at, (next == std::string::npos ? crl_text.size() : next) - at);
    return entry.find("Remove From CRL") != std::string_view::npos ? CrlListing::removed_from_crl : CrlListing::listed;
  }
  return CrlListing::absent;
}

bool listed_by_full_and_delta(const std::string& full_text, const std::string& delta_text, const std::string& serial) {
  switch (crl_listing(delta_text, serial)) {
    case CrlListing::listed: return true;
    case CrlListing::removed_from_crl: return false;
    case CrlListing::absent: break;
  }
  return crl_listing(full_text, serial) == CrlListing::listed;
}

long long crl_number_of(const std::string& crl_text) {
  for (std::string_view key : {"crlNumber=", "X509v3 CRL Number: \n"}) {
    auto at = crl_text.find(key);
    if (at == std::string::npos) continue;
    at += key.size();
    while (at < crl_text.size() && std::isspace(static_cast<unsigned char>(crl_text[at]))) ++at;
    try {
      return std::stoll(crl_text.substr(at), nullptr, key == "crlNumber=" ? 16 : 10);
    } catch (...) {
      return -1;
    }
  }
  return -1;
}

}  // namespace ca::testing
