#pragma once
// Group commit. slapd fsyncs once per write (≈1,000 writes/s on this disk), so concurrent write
// units (one enrollment = request record + certificate record) are queued and written in batches:
//
// - default (sync_file set, embedded directory): slapd runs with olcDbNoSync; a batch's operations
//   are pipelined on one connection, and once slapd has answered all of them the writer
//   fdatasync()s the LMDB data file once. A unit's `done` (and so the client's 2xx) comes only
//   after that sync: many records, one fsync. See docs/architecture.md for the trade-offs.
// - no sync_file: the same pipelining; slapd syncs each write itself (external directories).
// RFC 5805 transactions were tried and dropped: slapd 2.5.13 crashes (SIGSEGV, glibc tpp
// assertion) or stops accepting connections under concurrent transactions.
//
// A unit is all-or-nothing: if one of its operations fails, the others of that unit that went
// through are deleted again (compensation) and only that unit fails.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/ldap/ldap_connection.hpp"

namespace ca::store {

struct WriteOp {
  enum class Kind { add, modify };
  Kind kind = Kind::add;
  std::string dn;
  std::vector<LdapAttribute> attributes;        // add
  std::vector<LdapModification> modifications;  // modify
};

struct WriteUnit {
  std::vector<WriteOp> ops;
  std::function<void(Status)> done;  // called once, on a writer thread
};

struct GroupCommitOptions {
  int max_batch = 64;
  int writers = 2;
  std::string sync_file;         // fdatasync() this file after each batch (the embedded LMDB data.mdb)
  std::size_t max_queue = 4096;  // units waiting; a submit beyond it fails at once (unavailable)
};

struct GroupCommitStats {
  uint64_t units = 0;
  uint64_t batches = 0;
  uint64_t failed_units = 0;
};

// One written batch, as the batch observer sees it.
struct BatchReport {
  std::size_t units = 0;
  std::chrono::steady_clock::duration write_time{};  // sending, the directory's answers and the sync
  bool written = false;                              // false: the whole batch failed
};

class GroupCommitWriter {
 public:
  GroupCommitWriter(LdapEndpoint endpoint, GroupCommitOptions options);
  ~GroupCommitWriter();  // drains the queue, then stops the writers

  // Operations appended to every batch, built when the batch is formed (e.g. a checkpoint of the
  // instance's counters). Set before the first submit.
  void set_batch_epilogue(std::function<std::vector<WriteOp>()> epilogue) { epilogue_ = std::move(epilogue); }
  // Called on a writer thread after every batch (metrics). May be set at any time; must be cheap.
  void set_batch_observer(std::function<void(const BatchReport&)> observer);

  void submit(WriteUnit unit);
  // Blocking convenience for callers that have nothing else to do meanwhile.
  Status commit(std::vector<WriteOp> ops);
  GroupCommitStats stats() const;
  // Units waiting for a writer now (not those being written).
  std::size_t queued() const;
  void stop();

 private:
  void writer_loop();
  // What a failed batch may have left in the directory.
  struct BatchOutcome {
    bool uncertain = false;               // adds may have landed without being confirmed durable
    std::set<std::string> rejected_adds;  // adds the directory refused: not ours to clean up
  };
  // Pipelined batch: per-unit results in `results`; the returned Status is a batch-wide failure
  // (connection lost, sync failed) that overrides them.
  Status write_pipelined(LdapConnection& conn, std::vector<WriteUnit*>& units, const std::vector<WriteOp>& epilogue,
                         std::vector<Status>& results, BatchOutcome& outcome);
  Status sync_data_file();
  Status remove_orphans(LdapConnection& conn);
  Status ensure_connection(std::unique_ptr<LdapConnection>& conn);

  LdapEndpoint endpoint_;
  GroupCommitOptions options_;
  std::function<std::vector<WriteOp>()> epilogue_;
  mutable std::mutex mutex_;
  std::condition_variable queued_;
  std::deque<WriteUnit> queue_;
  bool stopping_ = false;
  GroupCommitStats stats_;
  std::shared_ptr<const std::function<void(const BatchReport&)>> observer_;  // under mutex_
  std::vector<std::string> orphans_;  // adds of a batch cut off by a directory failure, to remove
  std::vector<std::thread> writers_;
  std::atomic<int> sync_fd_{-1};  // opened at construction or, failing that, at the first sync
  std::mutex sync_fd_mutex_;
};

}  // namespace ca::store
