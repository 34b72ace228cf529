#include "store/ldap/group_commit.hpp"

#include <cstring>
#include <future>
#include <utility>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::store {

GroupCommitWriter::GroupCommitWriter(LdapEndpoint endpoint, GroupCommitOptions options)
    : endpoint_(std::move(endpoint)), options_(std::move(options)) {
  if (!options_.sync_file.empty()) {
    sync_fd_ = ::open(options_.sync_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (sync_fd_ < 0)
      log::error("group-commit", "cannot open {} for syncing ({}); writes fail until it can be opened",
                 options_.sync_file, std::strerror(errno));
  }
  for (int i = 0; i < std::max(1, options_.writers); ++i) writers_.emplace_back([this] { writer_loop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  stop();
  if (sync_fd_ >= 0) ::close(sync_fd_);
}

Status GroupCommitWriter::sync_data_file() {
  if (options_.sync_file.empty()) return ok();  // the directory syncs each write itself
  if (sync_fd_ < 0) {
    // The directory does not sync (group durability): without this file nothing would, so no
    // write may be reported durable.
    std::lock_guard lock(sync_fd_mutex_);
    if (sync_fd_ < 0) sync_fd_ = ::open(options_.sync_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (sync_fd_ < 0)
      return fail(Error::unavailable(
          fmt::format("cannot open {} to sync the directory's writes: {}", options_.sync_file, std::strerror(errno))));
  }
  if (::fdatasync(sync_fd_) != 0)
    return fail(
        Error::unavailable(fmt::format("fdatasync of {} failed: {}", options_.sync_file, std::strerror(errno))));
  return ok();
}

Status GroupCommitWriter::write_pipelined(LdapConnection& conn, std::vector<WriteUnit*>& units,
                                          const std::vector<WriteOp>& epilogue, std::vector<Status>& results,
                                          BatchOutcome& outcome) {
  struct Sent {
    std::size_t unit;  // units.size() for the epilogue
    const WriteOp* op;
    int msgid;
  };
  std::vector<Sent> sent;
  results.assign(units.size(), ok());
  auto send = [&](std::size_t unit, const WriteOp& op) -> Status {
    Error e;
    int id = op.kind == WriteOp::Kind::add ? conn.add_async(op.dn, op.attributes, &e)
                                           : conn.modify_async(op.dn, op.modifications, &e);
    if (id == 0) {
      if (op.kind == WriteOp::Kind::add) outcome.rejected_adds.insert(op.dn);
      return fail(e);
    }
    sent.push_back({unit, &op, id});
    return ok();
  };
  Status transport = ok();
  for (std::size_t u = 0; u < units.size() && transport; ++u)
    for (const auto& op : units[u]->ops) {
      Status st = send(u, op);
      if (st) continue;
      if (conn.broken())
        transport = st;
      else
        results[u] = st;  // this unit stops here; what it already sent is undone below
      break;
    }
  for (std::size_t i = 0; i < epilogue.size() && transport; ++i) {
    Status st = send(units.size(), epilogue[i]);
    if (!st && conn.broken()) transport = st;
  }
  // Results, in order of sending (slapd answers in any order; ldap_result picks by id).
  std::vector<std::vector<std::string>> added(units.size());
  for (const auto& s : sent) {
    if (!transport) break;
    Status st = conn.wait_result(s.msgid, s.op->kind == WriteOp::Kind::add ? "add" : "modify", s.op->dn);
    if (!st && conn.broken()) {
      transport = st;
      break;
    }
    if (s.unit == units.size()) {
      if (!st) log::warn("group-commit", "checkpoint not written: {}", st.error().message);
      continue;
    }
    if (st && s.op->kind == WriteOp::Kind::add) added[s.unit].push_back(s.op->dn);
    if (!st && s.op->kind == WriteOp::Kind::add) outcome.rejected_adds.insert(s.op->dn);  // e.g. it existed before
    if (!st && results[s.unit]) results[s.unit] = st;
  }
  if (!transport) {
    outcome.uncertain = true;
    return transport;
  }
  // Undo the parts of failed units so that no half-written unit stays behind.
  for (std::size_t u = 0; u < units.size(); ++u) {
    if (results[u]) continue;
    for (auto it = added[u].rbegin(); it != added[u].rend(); ++it) {
      Status undone = conn.remove(*it);
      if (!undone && conn.broken()) {  // the rest of the undo falls to the orphan clean-up
        outcome.uncertain = true;
        return undone;
      }
      if (!undone)
        log::error("group-commit", "could not remove {} after a failed unit: {}", *it, undone.error().message);
    }
  }
  Status synced = sync_data_file();
  if (!synced) outcome.uncertain = true;
  return synced;
}

void GroupCommitWriter::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  queued_.notify_all();
  for (auto& t : writers_)
    if (t.joinable()) t.join();
}

std::size_t GroupCommitWriter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void GroupCommitWriter::submit(WriteUnit unit) {
  bool full = false;
  {
    std::lock_guard lock(mutex_);
    full = queue_.size() >= options_.max_queue;
    if (!stopping_ && !full) {
      queue_.push_back(std::move(unit));
      queued_.notify_one();
      return;
    }
  }
  // Bounded: a directory slower than the clients must not make the queue (and memory) grow.
  if (full)
    unit.done(fail(Error::unavailable(
        fmt::format("the write queue is full ({} units waiting for the directory)", options_.max_queue))));
  else
    unit.done(fail(Error::unavailable("the server is shutting down")));
}

Status GroupCommitWriter::commit(std::vector<WriteOp> ops) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  submit(WriteUnit{std::move(ops), [promise](Status st) { promise->set_value(std::move(st)); }});
  return future.get();
}

void GroupCommitWriter::set_batch_observer(std::function<void(const BatchReport&)> observer) {
  auto shared =
      observer ? std::make_shared<const std::function<void(const BatchReport&)>>(std::move(observer)) : nullptr;
  std::lock_guard lock(mutex_);
  observer_ = std::move(shared);
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

Status GroupCommitWriter::ensure_connection(std::unique_ptr<LdapConnection>& conn) {
  // A connection the directory closed while we were idle (a restart) is replaced before anything is
  // sent on it, so a batch never fails just because the previous one ran before the restart.
  if (conn && !conn->stale()) return ok();
  CA_TRY(conn, LdapConnection::open(endpoint_));
  return ok();
}

Status GroupCommitWriter::remove_orphans(LdapConnection& conn) {
  std::vector<std::string> orphans;
  {
    std::lock_guard lock(mutex_);
    if (orphans_.empty()) return ok();
    orphans.swap(orphans_);
  }
  log::warn("group-commit", "removing {} entries of a batch cut off by a directory failure", orphans.size());
  while (!orphans.empty()) {
    Status removed = conn.remove(orphans.back());
    if (!removed && !removed.error().is(ErrorCode::not_found)) {
      if (conn.broken()) {  // keep the rest for the next connection
        std::lock_guard lock(mutex_);
        orphans_.insert(orphans_.end(), orphans.begin(), orphans.end());
        return removed;
      }
      log::error("group-commit", "could not remove {}: {}", orphans.back(), removed.error().message);
    }
    orphans.pop_back();
  }
  return sync_data_file();
}

void GroupCommitWriter::writer_loop() {
  std::unique_ptr<LdapConnection> conn;
  while (true) {
    std::vector<WriteUnit> batch;
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {  // stopping and drained
        if (orphans_.empty()) return;
        lock.unlock();
        // A batch cut off by a directory failure left entries that only this process knows of:
        // one last try, so that stopping does not leave a half-written unit behind.
        Status st = ensure_connection(conn);
        if (st) st = remove_orphans(*conn);
        if (!st) log::error("group-commit", "stopping with entries of a cut-off batch left: {}", st.error().message);
        return;
      }
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<WriteUnit*> all;
    all.reserve(batch.size());
    for (auto& u : batch) all.push_back(&u);
    std::vector<Status> results;
    BatchOutcome outcome;
    const auto write_started = std::chrono::steady_clock::now();
    Status st = ensure_connection(conn);
    if (st) st = remove_orphans(*conn);
    if (st) st = write_pipelined(*conn, all, epilogue_ ? epilogue_() : std::vector<WriteOp>{}, results, outcome);
    if (!st && outcome.uncertain) {
      // The directory went away in the middle of the batch, or its writes could not be synced:
      // some adds may have landed, so every unit is reported unavailable (the client retries) and
      // the batch's entries are removed before anything else is written: no half-written or
      // unconfirmed enrollment stays behind. Entries the directory refused (they existed
      // before) are not ours to remove.
      std::lock_guard lock(mutex_);
      for (auto* u : all)
        for (const auto& op : u->ops)
          if (op.kind == WriteOp::Kind::add && !outcome.rejected_adds.contains(op.dn)) orphans_.push_back(op.dn);
    }
    const BatchReport report{batch.size(), std::chrono::steady_clock::now() - write_started, static_cast<bool>(st)};
    if (!st && conn && conn->broken()) conn.reset();
    uint64_t failed = 0;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      Status unit_status = st ? results[i] : st;
      if (!unit_status) ++failed;
      batch[i].done(unit_status);
    }
    std::shared_ptr<const std::function<void(const BatchReport&)>> observer;
    {
      std::lock_guard lock(mutex_);
      stats_.units += batch.size();
      stats_.batches += 1;
      stats_.failed_units += failed;
      observer = observer_;
    }
    if (observer) (*observer)(report);
  }
}

}  // namespace ca::store
