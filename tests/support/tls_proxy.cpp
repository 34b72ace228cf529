#include "support/tls_proxy.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include <fmt/format.h>

#include "support/temp_dir.hpp"

namespace ca::testing {

namespace {

bool accepts(unsigned short port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

}  // namespace

TlsPassthroughProxy::TlsPassthroughProxy(std::filesystem::path dir, std::vector<unsigned short> backend_ports)
    : dir_(std::move(dir)), backends_(std::move(backend_ports)), port_(free_port()) {}

bool TlsPassthroughProxy::start() {
  auto which = shell("command -v haproxy");
  if (which.exit_code != 0) {
    write_file(dir_ / "haproxy.log", "haproxy is not installed (deploy/install-deps.sh installs it)\n");
    return false;
  }
  std::string haproxy = which.output.substr(0, which.output.find_first_of("\r\n"));
  std::string servers;
  for (std::size_t i = 0; i < backends_.size(); ++i)
    servers += fmt::format("  server ca{} 127.0.0.1:{} check inter 500 fall 1 rise 1\n", i, backends_[i]);
  auto cfg = write_file(dir_ / "haproxy.cfg",
                        fmt::format("global\n  maxconn 256\ndefaults\n  mode tcp\n  timeout connect 2s\n"
                                    "  timeout client 60s\n  timeout server 60s\nfrontend ca\n  bind 127.0.0.1:{}\n"
                                    "  default_backend instances\nbackend instances\n  balance roundrobin\n{}",
                                    port_, servers));
  auto proxy = ChildProcess::spawn({haproxy, "-db", "-f", cfg.string()}, dir_ / "haproxy.log", true);
  if (!proxy) {
    write_file(dir_ / "haproxy.log", proxy.error().message + "\n");
    return false;
  }
  process_ = std::move(*proxy);
  for (int i = 0; i < 100; ++i) {
    if (accepts(port_)) {
      // The health checks mark the servers up within one interval.
      std::this_thread::sleep_for(std::chrono::milliseconds(600));
      return true;
    }
    if (process_.try_wait()) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string TlsPassthroughProxy::log() const {
  std::error_code ec;
  if (!std::filesystem::exists(dir_ / "haproxy.log", ec)) return "";
  return read_file(dir_ / "haproxy.log");
}

}  // namespace ca::testing
