#pragma once
// A bounded pool of directory connections. A connection that broke (server restarted) is
// replaced on the next acquire, so service resumes by itself when the directory is back.
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

class LdapPool {
 public:
  LdapPool(LdapEndpoint endpoint, int size);

  class Lease {
   public:
    Lease(LdapPool* pool, std::unique_ptr<LdapConnection> c) : pool_(pool), conn_(std::move(c)) {}
    Lease(Lease&&) = default;
    Lease& operator=(Lease&&) = delete;
    ~Lease() {
      if (pool_ && conn_) pool_->give_back(std::move(conn_));
    }
    LdapConnection* operator->() { return conn_.get(); }
    LdapConnection& operator*() { return *conn_; }

   private:
    LdapPool* pool_;
    std::unique_ptr<LdapConnection> conn_;
  };

  // Waits for a free slot (at most the endpoint timeout) and returns a bound connection,
  // or Error::unavailable when the directory cannot be reached.
  Result<Lease> acquire();
  const LdapEndpoint& endpoint() const { return endpoint_; }

  // Runs `fn(connection)`; on a transport failure retries once on a fresh connection
  // (the first failure after a directory restart is the stale socket, not the server).
  template <typename Fn>
  auto with_connection(Fn&& fn) -> decltype(fn(std::declval<LdapConnection&>())) {
    for (int attempt = 0;; ++attempt) {
      auto lease = acquire();
      if (!lease) return std::unexpected(lease.error());
      auto result = fn(**lease);
      if (result || !(*lease)->broken() || attempt > 0) return result;
    }
  }

 private:
  void give_back(std::unique_ptr<LdapConnection> c);
  LdapEndpoint endpoint_;
  int size_;
  int outstanding_ = 0;
  std::vector<std::unique_ptr<LdapConnection>> idle_;
  std::mutex mutex_;
  std::condition_variable freed_;
};

}  // namespace ca::store
