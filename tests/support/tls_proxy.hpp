#pragma once
// A real haproxy in TCP mode (TLS passes through to the CA instances, never terminated) on a free
// loopback port, in front of one or more instances, round robin. Stopped by PID with its owner.
#include <filesystem>
#include <string>
#include <vector>

#include "core/child_process.hpp"

namespace ca::testing {

class TlsPassthroughProxy {
 public:
  // Config and log go to `dir`.
  TlsPassthroughProxy(std::filesystem::path dir, std::vector<unsigned short> backend_ports);
  // Starts haproxy and waits until its port accepts connections (false + log() on failure).
  bool start();
  unsigned short port() const { return port_; }
  std::string url() const { return "https://127.0.0.1:" + std::to_string(port_); }
  std::string log() const;

 private:
  std::filesystem::path dir_;
  std::vector<unsigned short> backends_;
  unsigned short port_;
  ChildProcess process_;
};

}  // namespace ca::testing
