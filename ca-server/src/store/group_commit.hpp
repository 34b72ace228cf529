#pragma once
// Group commit: the directory fsyncs once per write transaction (≈1,000 writes/s on this disk),
// so concurrent write units (e.g. one enrollment = request record + certificate record) are
// queued and committed together in one RFC 5805 transaction: many records, one fsync.
//
// Each writer thread owns one connection. Operations inside a transaction are sent one after
// the other: slapd 2.5.13 crashes when operations of one transaction are pipelined.
// A unit is all-or-nothing: if a batch fails for a reason other than the network, every unit of it
// is retried in a transaction of its own so that only the faulty unit fails.
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "store/ldap_connection.hpp"

namespace ca::store {

struct WriteOp {
  enum class Kind { add, modify };
  Kind kind = Kind::add;
  std::string dn;
  std::vector<LdapAttribute> attributes;       // add
  std::vector<LdapModification> modifications; // modify
};

struct WriteUnit {
  std::vector<WriteOp> ops;
  std::function<void(Status)> done;  // called once, on a writer thread
};

struct GroupCommitOptions {
  bool transactions = true;
  int max_batch = 64;
  int writers = 2;
};

struct GroupCommitStats {
  uint64_t units = 0;
  uint64_t batches = 0;
  uint64_t failed_units = 0;
};

class GroupCommitWriter {
 public:
  GroupCommitWriter(LdapEndpoint endpoint, GroupCommitOptions options);
  ~GroupCommitWriter();  // drains the queue, then stops the writers

  // Operations appended to every batch, built when the batch is formed (e.g. a checkpoint of the
  // instance's counters). Set before the first submit.
  void set_batch_epilogue(std::function<std::vector<WriteOp>()> epilogue) { epilogue_ = std::move(epilogue); }

  void submit(WriteUnit unit);
  // Blocking convenience for callers that have nothing else to do meanwhile.
  Status commit(std::vector<WriteOp> ops);
  GroupCommitStats stats() const;
  void stop();

 private:
  void writer_loop();
  Status commit_batch(std::unique_ptr<LdapConnection>& conn, std::vector<WriteUnit*>& units, bool with_epilogue);
  Status apply_ops(LdapConnection& conn, const std::vector<WriteOp>& ops, LDAPControl** controls,
                   std::vector<std::string>* added);
  Status explain_failure(std::unique_ptr<LdapConnection>& conn, const WriteUnit& unit, const Error& original);
  Status ensure_connection(std::unique_ptr<LdapConnection>& conn);

  LdapEndpoint endpoint_;
  GroupCommitOptions options_;
  std::function<std::vector<WriteOp>()> epilogue_;
  mutable std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<WriteUnit> queue_;
  bool stopping_ = false;
  GroupCommitStats stats_;
  std::vector<std::thread> writers_;
};

}  // namespace ca::store
