#include "store/group_commit.hpp"

#include <cstring>
#include <future>

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::store {

GroupCommitWriter::GroupCommitWriter(LdapEndpoint endpoint, GroupCommitOptions options)
    : endpoint_(std::move(endpoint)), options_(options) {
  if (!options_.sync_file.empty()) {
    sync_fd_ = ::open(options_.sync_file.c_str(), O_RDONLY | O_CLOEXEC);
    if (sync_fd_ < 0)
      log::warn("group-commit", "cannot open {} for syncing ({}); relying on the directory's own sync",
                options_.sync_file, std::strerror(errno));
  }
  for (int i = 0; i < std::max(1, options_.writers); ++i) writers_.emplace_back([this] { writer_loop(); });
}

GroupCommitWriter::~GroupCommitWriter() {
  stop();
  if (sync_fd_ >= 0) ::close(sync_fd_);
}

Status GroupCommitWriter::sync_data_file() {
  if (sync_fd_ < 0) return ok();
  if (::fdatasync(sync_fd_) != 0)
    return fail(Error::unavailable(fmt::format("fdatasync of {} failed: {}", options_.sync_file, std::strerror(errno))));
  return ok();
}

Status GroupCommitWriter::write_pipelined(LdapConnection& conn, std::vector<WriteUnit*>& units,
                                          const std::vector<WriteOp>& epilogue, std::vector<Status>& results) {
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
    if (id == 0) return fail(e);
    sent.push_back({unit, &op, id});
    return ok();
  };
  for (std::size_t u = 0; u < units.size(); ++u)
    for (const auto& op : units[u]->ops) CA_CHECK(send(u, op));
  for (const auto& op : epilogue) CA_CHECK(send(units.size(), op));
  // Results, in order of sending (slapd answers in any order; ldap_result picks by id).
  std::vector<std::vector<std::string>> added(units.size());
  Status transport = ok();
  for (const auto& s : sent) {
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
    if (!st && results[s.unit]) results[s.unit] = st;
  }
  if (!transport) return transport;
  // Undo the parts of failed units so that no half-written unit stays behind.
  for (std::size_t u = 0; u < units.size(); ++u) {
    if (results[u]) continue;
    for (auto it = added[u].rbegin(); it != added[u].rend(); ++it) {
      Status undone = conn.remove(*it);
      if (!undone) log::error("group-commit", "could not remove {} after a failed unit: {}", *it, undone.error().message);
    }
  }
  return sync_data_file();
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

void GroupCommitWriter::submit(WriteUnit unit) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.push_back(std::move(unit));
      queued_.notify_one();
      return;
    }
  }
  unit.done(fail(Error::unavailable("the server is shutting down")));
}

Status GroupCommitWriter::commit(std::vector<WriteOp> ops) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  submit(WriteUnit{std::move(ops), [promise](Status st) { promise->set_value(std::move(st)); }});
  return future.get();
}

GroupCommitStats GroupCommitWriter::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

Status GroupCommitWriter::ensure_connection(std::unique_ptr<LdapConnection>& conn) {
  if (conn && !conn->broken()) return ok();
  CA_TRY(conn, LdapConnection::open(endpoint_));
  return ok();
}

Status GroupCommitWriter::apply_ops(LdapConnection& conn, const std::vector<WriteOp>& ops, LDAPControl** controls,
                                    std::vector<std::string>* added) {
  for (const auto& op : ops) {
    if (op.kind == WriteOp::Kind::add) {
      CA_CHECK(conn.add(op.dn, op.attributes, controls));
      if (added) added->push_back(op.dn);
    } else {
      CA_CHECK(conn.modify(op.dn, op.modifications, controls));
    }
  }
  return ok();
}

Status GroupCommitWriter::commit_batch(std::unique_ptr<LdapConnection>& conn, std::vector<WriteUnit*>& units,
                                       bool with_epilogue) {
  CA_CHECK(ensure_connection(conn));
  std::vector<WriteOp> epilogue;
  if (with_epilogue && epilogue_) epilogue = epilogue_();
  if (!options_.transactions) {
    // Without transactions a unit is made atomic by compensation: undo its adds if a later op fails.
    for (auto* u : units) {
      std::vector<std::string> added;
      Status st = apply_ops(*conn, u->ops, nullptr, &added);
      if (!st) {
        for (auto it = added.rbegin(); it != added.rend(); ++it) (void)conn->remove(*it);
        return st;
      }
    }
    return apply_ops(*conn, epilogue, nullptr, nullptr);
  }
  CA_TRY(std::string txn, conn->txn_start());
  TxnControl control(txn);
  Status st = ok();
  for (auto* u : units) {
    st = apply_ops(*conn, u->ops, control.controls(), nullptr);
    if (!st) break;
  }
  if (st) st = apply_ops(*conn, epilogue, control.controls(), nullptr);
  if (!st) {
    if (!conn->broken()) (void)conn->txn_end(txn, false);
    return st;
  }
  return conn->txn_end(txn, true);
}

// slapd's answer to a failed commit does not say which operation failed (libldap even reports a
// decoding error), so look for the usual cause ourselves: an entry that already exists.
Status GroupCommitWriter::explain_failure(std::unique_ptr<LdapConnection>& conn, const WriteUnit& unit,
                                          const Error& original) {
  if (!ensure_connection(conn)) return fail(original);
  for (const auto& op : unit.ops) {
    if (op.kind != WriteOp::Kind::add) continue;
    auto existing = conn->read(op.dn, {"objectClass"});
    if (existing && *existing) return fail(Error::conflict(fmt::format("entry {} already exists", op.dn)));
  }
  return fail(original);
}

void GroupCommitWriter::writer_loop() {
  std::unique_ptr<LdapConnection> conn;
  while (true) {
    std::vector<WriteUnit> batch;
    {
      std::unique_lock lock(mutex_);
      queued_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      while (!queue_.empty() && static_cast<int>(batch.size()) < options_.max_batch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    std::vector<WriteUnit*> all;
    for (auto& u : batch) all.push_back(&u);
    if (!options_.transactions) {
      std::vector<Status> results;
      Status st = ensure_connection(conn);
      if (st) st = write_pipelined(*conn, all, epilogue_ ? epilogue_() : std::vector<WriteOp>{}, results);
      if (!st && conn && conn->broken()) {
        // A stale connection after a directory restart: nothing of it can be trusted to be
        // durable; report the batch as unavailable (the client retries) and reconnect next time.
        conn.reset();
      }
      uint64_t failed = 0;
      for (std::size_t i = 0; i < batch.size(); ++i) {
        Status unit_status = st ? results[i] : st;
        if (!unit_status) ++failed;
        batch[i].done(unit_status);
      }
      std::lock_guard lock(mutex_);
      stats_.units += batch.size();
      stats_.batches += 1;
      stats_.failed_units += failed;
      continue;
    }
    Status st = commit_batch(conn, all, true);
    if (!st && st.error().is(ErrorCode::unavailable) && conn && conn->broken()) {
      // A stale connection after a directory restart: one retry on a fresh one.
      conn.reset();
      st = commit_batch(conn, all, true);
    }
    uint64_t failed = 0;
    if (st || batch.size() == 1 || st.error().is(ErrorCode::unavailable)) {
      if (!st) failed = batch.size();
      for (auto& u : batch) u.done(st);
    } else {
      // One unit spoiled the batch: find it by committing each unit alone.
      log::warn("group-commit", "batch of {} failed ({}); committing its units one by one", batch.size(),
                st.error().message);
      for (auto& u : batch) {
        std::vector<WriteUnit*> one{&u};
        Status single = commit_batch(conn, one, false);
        if (!single && !single.error().is(ErrorCode::unavailable)) single = explain_failure(conn, u, single.error());
        if (!single) ++failed;
        u.done(single);
      }
    }
    std::lock_guard lock(mutex_);
    stats_.units += batch.size();
    stats_.batches += 1;
    stats_.failed_units += failed;
  }
}

}  // namespace ca::store
