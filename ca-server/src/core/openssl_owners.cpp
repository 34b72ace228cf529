#include "core/openssl_owners.hpp"

#include <openssl/err.h>

namespace ca::ossl {

std::string drain_errors() {
  std::string out;
  unsigned long e;
  char buf[256];
  while ((e = ERR_get_error()) != 0) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "no OpenSSL error recorded" : out;
}

}  // namespace ca::ossl
