#include "store/group_commit.hpp"

#include <future>

#include <fmt/format.h>

#include "core/log.hpp"

namespace ca::store {

GroupCommitWriter::GroupCommitWriter(LdapEndpoint endpoint, GroupCommitOptions options)
    : endpoint_(std::move(endpoint)), options_(options) {
  for (int i = 0; i < std::max(1, options_.writers); ++i) writers_.emplace_back([this] { writer_loop(); });
}

GroupCommitWriter::~GroupCommitWriter() { stop(); }

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
