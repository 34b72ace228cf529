#include "store/ldap/ldap_pool.hpp"

#include <chrono>

namespace ca::store {

LdapPool::LdapPool(LdapEndpoint endpoint, int size) : endpoint_(std::move(endpoint)), size_(size) {}

Result<LdapPool::Lease> LdapPool::acquire() {
  std::unique_ptr<LdapConnection> conn;
  {
    std::unique_lock lock(mutex_);
    bool got = freed_.wait_for(lock, std::chrono::milliseconds(endpoint_.timeout_ms),
                               [&] { return !idle_.empty() || outstanding_ < size_; });
    if (!got) return fail(Error::unavailable("all directory connections are busy; try again"));
    ++outstanding_;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (!conn || conn->stale()) {
    auto opened = LdapConnection::open(endpoint_);
    if (!opened) {
      std::lock_guard lock(mutex_);
      --outstanding_;
      freed_.notify_one();
      return fail(opened.error());
    }
    conn = std::move(*opened);
  }
  return Lease(this, std::move(conn));
}

void LdapPool::give_back(std::unique_ptr<LdapConnection> c) {
  std::lock_guard lock(mutex_);
  --outstanding_;
  if (!c->broken()) idle_.push_back(std::move(c));
  freed_.notify_one();
}

}  // namespace ca::store
