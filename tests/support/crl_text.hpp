#pragma once
// Reading CRLs the way a relying party does, through the openssl command line (which no one here
// wrote): what `openssl crl -text` says about a serial, and whether a full CRL together with its
// delta CRL (RFC 5280 5.2.4) lists it.
#include <string>

namespace ca::testing {

enum class CrlListing { absent, listed, removed_from_crl };

// The serial as openssl prints it: upper-case hex, an even number of digits. Accepts "0x1a", "1A".
std::string openssl_serial_hex(std::string serial);
// What `openssl crl -text` output says about the serial.
CrlListing crl_listing(const std::string& crl_text, const std::string& serial);
// Listed by the full CRL as completed by its delta: the delta's entry (or removeFromCRL) wins.
bool listed_by_full_and_delta(const std::string& full_text, const std::string& delta_text, const std::string& serial);
// The CRL number in `openssl crl -text` or `-crlnumber` output, or -1.
long long crl_number_of(const std::string& crl_text);

}  // namespace ca::testing
