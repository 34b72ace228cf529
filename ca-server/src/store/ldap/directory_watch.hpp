#pragma once
// Push instead of poll: follows the entries under a base in the directory with an RFC 4533
// refreshAndPersist search (slapd's syncprov overlay, which replication already uses) and calls
// `on_change` from its own thread, at once, when any of them is added, changed or deleted, here or
// by replication from another instance (`on_change` must be cheap: set a flag, wake a thread).
// The first call comes after the initial refresh, so a caller
// that reloads on every call also catches what changed while it was not watching. A lost
// connection is re-opened (with backoff) and followed by another call, so nothing is missed across
// an outage: callers treat a call as "look again", never as a description of the change.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

class DirectoryWatch {
 public:
  // The filter that matches every entry under the base.
  static constexpr std::string_view kEveryEntry = "(objectClass=*)";
  DirectoryWatch(LdapEndpoint endpoint, std::string base, SearchScope scope, std::string filter,
                 std::function<void()> on_change);
  ~DirectoryWatch();
  DirectoryWatch(const DirectoryWatch&) = delete;
  DirectoryWatch& operator=(const DirectoryWatch&) = delete;

  // Also hands over the entries themselves, with `attributes` read: refresh_begin, then every
  // matching entry of the refresh phase (refresh_entry), refresh_end, and from then on every entry
  // added or changed (changed; an entry that left the filter or was deleted comes with its DN and no
  // attributes). Every (re)connection runs a whole refresh again, so a caller that rebuilds its view
  // from refresh_begin..refresh_end misses nothing across an outage. Set before start().
  enum class Event { refresh_begin, refresh_entry, refresh_end, changed };
  void set_entry_handler(std::vector<std::string> attributes, std::function<void(Event, const LdapEntry*)> on_entry) {
    attributes_ = std::move(attributes);
    on_entry_ = std::move(on_entry);
  }

  void start();
  void stop();
  // Changes seen since start (tests and metrics).
  uint64_t changes_seen() const { return changes_.load(); }

 private:
  void loop();
  // One persistent search until it breaks or stop(); returns why it ended.
  Status follow_once();
  bool sleep_unless_stopped(std::chrono::milliseconds d);

  LdapEndpoint endpoint_;
  std::string base_;
  SearchScope scope_;
  std::string filter_;
  std::function<void()> on_change_;
  std::vector<std::string> attributes_;
  std::function<void(Event, const LdapEntry*)> on_entry_;
  std::atomic<uint64_t> changes_{0};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace ca::store
