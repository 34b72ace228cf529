#include "authority/audit/audit_log.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <optional>
#include <span>

#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "core/caller_text.hpp"
#include "core/json_text.hpp"
#include "core/log.hpp"
#include "crypto/encoding.hpp"
#include "crypto/issuer.hpp"
#include "crypto/keys.hpp"
#include "crypto/pem.hpp"

namespace ca::authority {

namespace {

constexpr std::string_view kLog = "audit";
constexpr std::string_view kSignatureEvent = "log_signature";
const std::string kZeroHash(64, '0');
constexpr std::size_t kHeadWindow = std::size_t{64} * 1024;
constexpr std::size_t kLongestLine = std::size_t{16} * 1024 * 1024;

std::vector<unsigned char> sha256(std::string_view bytes) {
  std::vector<unsigned char> digest(EVP_MAX_MD_SIZE);
  unsigned int length = 0;
  if (EVP_Digest(bytes.data(), bytes.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) length = 0;
  digest.resize(length);
  return digest;
}

// Closes a descriptor (and so releases its flock) on every way out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd) : fd_(fd) {}
  ~FileDescriptor() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Lines of the first `limit` bytes of a file, read in large chunks.
class LineReader {
 public:
  LineReader(int fd, std::uintmax_t limit) : fd_(fd), left_(limit) {}

  // The next line without its newline; `terminated` says whether it had one.
  bool next(std::string& line, bool& terminated) {
    for (;;) {
      const auto newline = buffer_.find('\n', pos_);
      if (newline != std::string::npos) {
        line.assign(buffer_, pos_, newline - pos_);
        pos_ = newline + 1;
        terminated = true;
        return true;
      }
      if (left_ == 0 || failed_) {
        if (pos_ >= buffer_.size()) return false;
        line.assign(buffer_, pos_);
        pos_ = buffer_.size();
        terminated = false;
        return true;
      }
      buffer_.erase(0, pos_);
      pos_ = 0;
      const std::size_t chunk = static_cast<std::size_t>(std::min<std::uintmax_t>(left_, 1 << 20));
      const std::size_t old = buffer_.size();
      buffer_.resize(old + chunk);
      const ssize_t n = ::read(fd_, buffer_.data() + old, chunk);
      if (n < 0 && errno == EINTR) {
        buffer_.resize(old);
        continue;
      }
      if (n <= 0) {
        failed_ = n < 0;
        left_ = 0;
        buffer_.resize(old);
        continue;
      }
      buffer_.resize(old + static_cast<std::size_t>(n));
      left_ -= static_cast<std::uintmax_t>(n);
    }
  }
  bool failed() const { return failed_; }

 private:
  int fd_;
  std::uintmax_t left_;
  std::string buffer_;
  std::size_t pos_ = 0;
  bool failed_ = false;
};

bool write_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::write(fd, text.data(), text.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    text.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool read_all_at(int fd, std::string& into, std::uintmax_t offset) {
  std::size_t done = 0;
  while (done < into.size()) {
    const ssize_t n = ::pread(fd, into.data() + done, into.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

// A field of a record read back: a string, or a non-negative integer (seq, signed_seq).
std::optional<std::string_view> string_field(const boost::json::object& record, std::string_view key) {
  const boost::json::value* value = record.if_contains(key);
  if (!value || !value->is_string()) return std::nullopt;
  return std::string_view(value->get_string());
}
std::optional<uint64_t> unsigned_field(const boost::json::object& record, std::string_view key) {
  const boost::json::value* value = record.if_contains(key);
  if (value && value->is_uint64()) return value->get_uint64();
  if (value && value->is_int64() && value->get_int64() >= 0) return static_cast<uint64_t>(value->get_int64());
  return std::nullopt;
}

// The `seq` and `event` of a line, if it is a record at all.
struct LineFacts {
  uint64_t seq = 0;
  bool signature = false;
};
std::optional<LineFacts> line_facts(std::string_view line) {
  auto object = parse_json_object_text(line);
  if (!object) return std::nullopt;
  auto seq = unsigned_field(*object, "seq");
  if (!seq) return std::nullopt;
  return LineFacts{*seq, string_field(*object, "event") == kSignatureEvent};
}

bool verify_digest(EVP_PKEY* key, std::span<const unsigned char> signature, std::span<const unsigned char> data) {
  ossl::UniquePtr<EVP_MD_CTX> md(EVP_MD_CTX_new());
  const bool good = md && EVP_DigestVerifyInit(md.get(), nullptr, crypto::signing_digest_for(key), nullptr, key) == 1 &&
                    EVP_DigestVerify(md.get(), signature.data(), signature.size(), data.data(), data.size()) == 1;
  ERR_clear_error();
  return good;
}

}  // namespace

AuditLog::AuditLog(std::filesystem::path file, std::string instance_id)
    : AuditLog(std::move(file), std::move(instance_id), std::nullopt, {}) {}

AuditLog::AuditLog(std::filesystem::path file, std::string instance_id, crypto::Issuer signer,
                   AuditSigningOptions options)
    : AuditLog(std::move(file), std::move(instance_id), std::optional<crypto::Issuer>(std::move(signer)), options) {}

AuditLog::AuditLog(std::filesystem::path file, std::string instance_id, std::optional<crypto::Issuer> signer,
                   AuditSigningOptions options)
    : file_(std::move(file)),
      instance_id_(std::move(instance_id)),
      signer_(std::move(signer)),
      options_{std::max<std::size_t>(options.records_per_signature, 1), options.interval},
      prev_hex_(kZeroHash),
      prev_hash_(32, 0) {
  writer_ = std::thread([this] { writer_loop(); });
  writer_id_ = writer_.get_id();
}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

// Events that come with every enrollment or agent request: echoed to the service log at debug
// level only, so that a busy CA's log is not one line per certificate. The rest at info.
namespace {
bool is_routine(std::string_view event) {
  return event == "certificate_issued" || event == "request_queued" || event == "enrollment_rejected" ||
         event == "agent_call" || event == "admin_call";
}
}  // namespace

uint64_t AuditLog::enqueue(Entry entry) {
  if (log::enabled(is_routine(entry.event) ? log::Level::debug : log::Level::info))
    log::write(is_routine(entry.event) ? log::Level::debug : log::Level::info, kLog,
               fmt::format("{} by {}: {} ({})", entry.event, entry.who, entry.what, entry.outcome));
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(entry));
  wake_.notify_one();
  return ++queued_count_;
}

void AuditLog::wait_written(uint64_t ticket) {
  // A `then` that records again runs on the writer thread: waiting there would wait for itself.
  if (std::this_thread::get_id() == writer_id_) return;
  std::unique_lock lock(mutex_);
  written_.wait(lock, [&] { return written_count_ >= ticket; });
}

void AuditLog::record(std::string_view event, std::string_view who, std::string_view what, std::string_view outcome) {
  wait_written(enqueue({std::chrono::system_clock::now(), std::string(event), caller_text(who, kMaxFieldBytes),
                        caller_text(what, kMaxFieldBytes), caller_text(outcome, kMaxFieldBytes), nullptr}));
}

void AuditLog::record_then(std::string_view event, std::string_view who, std::string_view what,
                           std::string_view outcome, std::function<void()> then) {
  enqueue({std::chrono::system_clock::now(), std::string(event), caller_text(who, kMaxFieldBytes),
           caller_text(what, kMaxFieldBytes), caller_text(outcome, kMaxFieldBytes), std::move(then)});
}

void AuditLog::flush() {
  uint64_t ticket;
  {
    std::lock_guard lock(mutex_);
    ticket = queued_count_;
  }
  wait_written(ticket);
}

void AuditLog::sign_now() {
  if (std::this_thread::get_id() == writer_id_) return;
  std::unique_lock lock(mutex_);
  const uint64_t ticket = ++sign_requests_;
  wake_.notify_one();
  written_.wait(lock, [&] { return signs_done_ >= ticket; });
}

void AuditLog::set_checkpoint_sink(AuditCheckpointSink* sink) {
  std::lock_guard lock(sink_mutex_);
  sink_ = sink;
}

void AuditLog::writer_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    const auto has_work = [this] { return stopping_ || !queue_.empty() || sign_requests_ > signs_done_; };
    if (signer_ && unsigned_ > 0)
      wake_.wait_until(lock, oldest_unsigned_ + options_.interval, has_work);
    else
      wake_.wait(lock, has_work);
    std::vector<Entry> batch;
    batch.swap(queue_);
    const uint64_t sign_ticket = sign_requests_;
    const bool stopping = stopping_;
    const bool asked_to_sign = sign_requests_ > signs_done_;
    lock.unlock();

    const bool due = unsigned_ > 0 && std::chrono::steady_clock::now() >= oldest_unsigned_ + options_.interval;
    if (!batch.empty() || asked_to_sign || due || stopping) append(batch, asked_to_sign || due || stopping);
    for (auto& entry : batch)
      if (entry.then) entry.then();

    lock.lock();
    written_count_ += batch.size();
    signs_done_ = sign_ticket;
    written_.notify_all();
    if (stopping_ && queue_.empty()) return;
  }
}

void AuditLog::chain_line(std::string& out, const std::string& body) {
  std::string line = fmt::format("{{\"seq\":{},\"prev\":\"{}\",", seq_ + 1, prev_hex_);
  line += body;
  line += '}';
  prev_hash_ = sha256(line);
  prev_hex_ = crypto::to_hex(prev_hash_);
  ++seq_;
  out += line;
  out += '\n';
}

Result<std::string> AuditLog::signature_record(std::chrono::system_clock::time_point now) {
  auto signature = signer_->sign(prev_hash_);
  if (!signature) return fail(signature.error().context("cannot sign with the audit signing key"));
  std::string body = "\"time\":";
  append_json_string(body, log::rfc3339_milliseconds(now));
  body += ",\"instance\":";
  append_json_string(body, instance_id_);
  body += fmt::format(",\"event\":\"{}\",\"signed_seq\":{},\"signature\":\"{}\"", kSignatureEvent, seq_,
                      crypto::base64_encode(*signature));
  return body;
}

std::string AuditLog::record_body(const Entry& e) const {
  std::string body = "\"time\":";
  append_json_string(body, log::rfc3339_milliseconds(e.time));
  for (auto [name, value] : {std::pair<std::string_view, std::string_view>{"instance", instance_id_},
                             {"event", e.event},
                             {"who", e.who},
                             {"what", e.what},
                             {"outcome", e.outcome}}) {
    body += fmt::format(",\"{}\":", name);
    append_json_string(body, value);
  }
  return body;
}

void AuditLog::add_record(std::string& text, const Entry& e) {
  chain_line(text, record_body(e));
  if (unsigned_++ == 0) oldest_unsigned_ = std::chrono::steady_clock::now();
}

void AuditLog::add_signature(std::string& text, std::vector<store::AuditCheckpoint>& signed_here) {
  const auto now = std::chrono::system_clock::now();
  auto body = signature_record(now);
  if (!body) {
    log::error(kLog, "no signature for the audit log: {}", body.error().message);
    return;
  }
  signed_here.push_back({seq_, prev_hex_, now});
  chain_line(text, *body);
  unsigned_ = 0;
}

std::optional<store::AuditCut> AuditLog::catch_up_with_file(int fd, const struct stat& st, std::string& text) {
  if (known_size_ == static_cast<std::intmax_t>(st.st_size) && known_inode_ == st.st_ino) return std::nullopt;
  // Shorter than we left it, or another file: someone cut it (other writers only append).
  const bool cut_under_us =
      known_size_ >= 0 && (static_cast<std::intmax_t>(st.st_size) < known_size_ || known_inode_ != st.st_ino);
  const uint64_t seq_before = seq_;
  load_head(fd, static_cast<std::uintmax_t>(st.st_size));
  // A line cut off by a crash is closed so that ours start on a line of their own.
  if (st.st_size > 0) {
    char last = '\n';
    if (::pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n') text += '\n';
  }
  if (!cut_under_us || seq_ >= seq_before) return std::nullopt;
  const auto now = std::chrono::system_clock::now();
  store::AuditCut cut{seq_ + 1, last_signed_.seq > seq_ ? last_signed_ : store::AuditCheckpoint{}, now};
  log::error(kLog,
             "{} was cut while this process wrote it: records from seq {} to {} are gone; an {} record "
             "says so and the chain goes on after seq {}",
             file_.string(), seq_ + 1, seq_before, kAuditCutEvent, seq_);
  add_record(
      text,
      {now, std::string(kAuditCutEvent), "ca-server audit log",
       fmt::format(
           "the audit log was cut: first missing seq {}; this process had written up to seq {}{}", seq_ + 1, seq_before,
           cut.expected.seq ? fmt::format(" and signed seq {} (hash {})", cut.expected.seq, cut.expected.hash) : ""),
       fmt::format("the chain goes on after seq {}; the cut stays reported", seq_), nullptr});
  return cut;
}

void AuditLog::append(std::vector<Entry>& batch, bool sign) {
  if (batch.empty() && !(signer_ && sign && unsigned_ > 0)) return;
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);
  FileDescriptor fd(::open(file_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    log::error(kLog, "cannot open {}: {}; {} audit record(s) NOT written", file_.string(), std::strerror(errno),
               batch.size());
    known_size_ = -1;
    return;
  }
  // Another process (`ca-server agent ...`) may append too: the lock makes each batch one piece.
  while (::flock(fd.get(), LOCK_EX) != 0 && errno == EINTR) {
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    log::error(kLog, "cannot stat {}: {}; {} audit record(s) NOT written", file_.string(), std::strerror(errno),
               batch.size());
    known_size_ = -1;
    return;
  }
  std::string text;
  std::vector<store::AuditCheckpoint> signed_here;
  const std::optional<store::AuditCut> cut = catch_up_with_file(fd.get(), st, text);
  for (const auto& e : batch) {
    add_record(text, e);
    if (signer_ && unsigned_ >= options_.records_per_signature) add_signature(text, signed_here);
  }
  if (signer_ && sign && unsigned_ > 0) add_signature(text, signed_here);
  if (text.empty()) return;
  if (!write_all(fd.get(), text) || ::fdatasync(fd.get()) != 0) {
    log::error(kLog, "cannot write {}: {}; audit record(s) up to seq {} may be missing", file_.string(),
               std::strerror(errno), seq_);
    known_size_ = -1;
    return;
  }
  known_size_ = static_cast<std::intmax_t>(st.st_size) + static_cast<std::intmax_t>(text.size());
  known_inode_ = st.st_ino;
  if (!signed_here.empty()) last_signed_ = signed_here.back();
  std::lock_guard lock(sink_mutex_);
  if (!sink_) return;
  if (cut) sink_->cut_found(*cut);
  for (const auto& checkpoint : signed_here) sink_->checkpoint_signed(checkpoint);
}

void AuditLog::load_head(int fd, std::uintmax_t size) {
  seq_ = 0;
  prev_hex_ = kZeroHash;
  prev_hash_.assign(32, 0);
  unsigned_ = 0;
  if (size == 0) return;
  // The tail of the file, long enough to hold its whole last line.
  std::string tail;
  std::string_view body;
  for (std::size_t window = kHeadWindow;; window *= 4) {
    window = static_cast<std::size_t>(std::min<std::uintmax_t>(window, size));
    tail.assign(window, '\0');
    if (!read_all_at(fd, tail, size - window)) {
      log::error(kLog, "cannot read the end of {}: {}; the chain starts again", file_.string(), std::strerror(errno));
      return;
    }
    body = tail;
    if (body.ends_with('\n')) body.remove_suffix(1);
    if (body.rfind('\n') != std::string_view::npos || window == size || window >= kLongestLine) break;
  }
  if (!tail.ends_with('\n'))
    log::error(kLog,
               "{} ends with an incomplete record (a crash during a write?): left as it is, the chain goes on "
               "after it",
               file_.string());
  const auto last_start = body.rfind('\n');
  const std::string_view last = last_start == std::string_view::npos ? body : body.substr(last_start + 1);
  prev_hash_ = sha256(last);
  prev_hex_ = crypto::to_hex(prev_hash_);
  // seq: that of the last line that has one, plus the lines after it.
  std::size_t after = 0;
  bool found = false;
  std::size_t unsigned_lines = 0;
  bool signature_seen = false;
  for (std::string_view rest = body;;) {
    const auto start = rest.rfind('\n');
    const std::string_view line = start == std::string_view::npos ? rest : rest.substr(start + 1);
    const auto facts = line_facts(line);
    if (facts && facts->signature) signature_seen = true;
    if (!signature_seen) ++unsigned_lines;
    if (facts && !found) {
      seq_ = facts->seq + after;
      found = true;
    }
    if (!found) ++after;
    if ((found && signature_seen) || start == std::string_view::npos) break;
    rest = rest.substr(0, start);
  }
  if (!found) {
    log::error(kLog, "no readable record at the end of {}: seq goes on from {}", file_.string(), after);
    seq_ = after;
  }
  // Records a previous run left unsigned (it did not stop cleanly) are signed soon.
  if (signer_ && unsigned_lines > 0) {
    unsigned_ = unsigned_lines;
    oldest_unsigned_ = std::chrono::steady_clock::now() - options_.interval;
  }
}

Result<std::unique_ptr<AuditLog>> open_instance_audit_log(const InstanceConfig& config, AuditSigningOptions options) {
  auto file = config.dir / "logs" / "audit.log";
  const auto key_file = config.key_file("audit_signing");
  if (!std::filesystem::exists(key_file)) {
    log::warn(kLog, "{} is missing: the audit log is hash-chained but not signed", key_file.string());
    return std::make_unique<AuditLog>(std::move(file), config.instance_id);
  }
  CA_TRY(auto signer, crypto::Issuer::open(config.cert_file("audit_signing"), config.key_uri("audit_signing")));
  return std::make_unique<AuditLog>(std::move(file), config.instance_id, std::move(signer), options);
}

namespace {

// Follows the chain line by line for verify_audit_log; the first problem ends it.
class AuditChainCheck {
 public:
  AuditChainCheck(AuditVerification& v, EVP_PKEY* audit_key, const std::set<uint64_t>& hashes_wanted)
      : v_(v), audit_key_(audit_key), hashes_wanted_(hashes_wanted) {}

  // False once a problem is found (in v.problem).
  bool next(const std::string& line, bool terminated) {
    ++line_number_;
    auto object = parse_json_object_text(line);
    const auto text = [&](std::string_view key) { return object ? string_field(*object, key) : std::nullopt; };
    const std::optional<uint64_t> seq_value = object ? unsigned_field(*object, "seq") : std::nullopt;
    const std::optional<std::string_view> prev_value = text("prev");
    const std::optional<std::string_view> event_value = text("event");
    if (!object || !seq_value || !prev_value || !event_value) {
      v_.problem = fmt::format("line {}: not an audit record{}", line_number_,
                               !terminated ? " (an incomplete last line: a write cut off?)"
                               : object    ? " (seq, prev or event missing)"
                                           : " (" + object.error().message + ")");
      return false;
    }
    const uint64_t seq = *seq_value;
    if (line_number_ == 1) v_.first_seq = seq;
    if (!check_sequence(seq) || !check_prev(seq, *prev_value)) return false;
    if (*event_value == kSignatureEvent) {
      if (!check_signature(seq, unsigned_field(*object, "signed_seq"), text("signature"))) return false;
    } else {
      ++since_signature_;
      if (*event_value == kAuditCutEvent) {
        const std::optional<std::string_view> what = text("what");
        v_.cuts.push_back(fmt::format("{}: {}", where(seq), what.value_or("(no description)")));
      }
    }
    if (!terminated) {
      v_.problem = fmt::format("{}: incomplete last line (no newline: a write cut off?)", where(seq));
      return false;
    }
    prev_hash_ = sha256(line);
    prev_hex_ = crypto::to_hex(prev_hash_);
    if (hashes_wanted_.contains(seq)) v_.hashes[seq] = prev_hex_;
    prev_seq_ = seq;
    v_.last_seq = seq;
    ++v_.records;
    return true;
  }

  std::size_t since_signature() const { return since_signature_; }

 private:
  // "record 57" or, when the line number differs from the seq, "record 57 (line 56)".
  std::string where(uint64_t seq) const {
    return seq == line_number_ ? fmt::format("record {}", seq) : fmt::format("record {} (line {})", seq, line_number_);
  }

  bool check_sequence(uint64_t seq) {
    if (seq == prev_seq_ + 1) return true;
    if (line_number_ == 1)
      v_.problem = fmt::format("{}: the log starts at seq {}, not 1 (its beginning was removed)", where(seq), seq);
    else if (seq > prev_seq_ + 1)
      v_.problem = fmt::format(
          "{}: seq jumps from {} to {}: record{} {} missing here (removed or reordered)", where(seq), prev_seq_, seq,
          seq - prev_seq_ > 2 ? "s" : "",
          seq - prev_seq_ > 2 ? fmt::format("{}..{}", prev_seq_ + 1, seq - 1) : std::to_string(prev_seq_ + 1));
    else
      v_.problem =
          fmt::format("{}: seq {} follows seq {} (records reordered or duplicated)", where(seq), seq, prev_seq_);
    return false;
  }

  bool check_prev(uint64_t seq, std::string_view prev) {
    if (prev == prev_hex_) return true;
    v_.problem =
        line_number_ == 1
            ? fmt::format("{}: prev hash is not the start of a chain (altered record)", where(seq))
            : fmt::format("{}: prev hash does not match record {} (removed or altered record)", where(seq), prev_seq_);
    return false;
  }

  bool check_signature(uint64_t seq, std::optional<uint64_t> signed_seq,
                       std::optional<std::string_view> signature_text) {
    if (signed_seq != prev_seq_ || !signature_text) {
      v_.problem = fmt::format("{}: a log_signature that does not sign record {}", where(seq), prev_seq_);
      return false;
    }
    auto signature = crypto::base64_decode(*signature_text, "signature");
    if (!signature || !verify_digest(audit_key_, *signature, prev_hash_)) {
      v_.problem = fmt::format(
          "{}: the signature over records 1..{} does not verify with the audit signing "
          "certificate (forged, or records before it altered)",
          where(seq), prev_seq_);
      return false;
    }
    ++v_.signatures;
    v_.last_signed_seq = prev_seq_;
    since_signature_ = 0;
    return true;
  }

  AuditVerification& v_;
  EVP_PKEY* audit_key_;
  const std::set<uint64_t>& hashes_wanted_;
  std::string prev_hex_ = kZeroHash;
  std::vector<unsigned char> prev_hash_ = std::vector<unsigned char>(32, 0);
  uint64_t prev_seq_ = 0;
  std::size_t line_number_ = 0;
  std::size_t since_signature_ = 0;
};

// What a running server has written up to now, at a batch boundary: its writes hold an exclusive
// lock. The log only grows, so reading up to this size needs no lock after.
Result<std::uintmax_t> size_between_batches(int fd, const std::filesystem::path& file) {
  while (::flock(fd, LOCK_SH) != 0 && errno == EINTR) {
  }
  struct stat st {};
  const int stat_result = ::fstat(fd, &st);
  ::flock(fd, LOCK_UN);
  if (stat_result != 0) return fail(Error::io(fmt::format("cannot stat {}: {}", file.string(), std::strerror(errno))));
  return static_cast<std::uintmax_t>(st.st_size);
}

}  // namespace

Result<AuditVerification> verify_audit_log(const std::filesystem::path& file, X509* audit_cert, X509* ca_cert,
                                           const std::set<uint64_t>& hashes_wanted) {
  AuditVerification v;
  EVP_PKEY* ca_key = X509_get0_pubkey(ca_cert);
  if (!ca_key || X509_verify(audit_cert, ca_key) != 1) {
    ERR_clear_error();
    v.problem = fmt::format("the audit signing certificate '{}' is not signed by the CA certificate '{}'",
                            crypto::name_to_string(X509_get_subject_name(audit_cert)),
                            crypto::name_to_string(X509_get_subject_name(ca_cert)));
    return v;
  }
  EVP_PKEY* audit_key = X509_get0_pubkey(audit_cert);
  if (!audit_key) return fail(Error::crypto("the audit signing certificate has no usable public key"));

  FileDescriptor fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  CA_TRY(std::uintmax_t size, size_between_batches(fd.get(), file));
  LineReader in(fd.get(), size);
  AuditChainCheck chain(v, audit_key, hashes_wanted);
  std::string line;
  bool terminated = true;
  while (in.next(line, terminated))
    if (!chain.next(line, terminated)) return v;
  if (in.failed()) return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  v.unsigned_tail = chain.since_signature();
  return v;
}

Result<AuditChainHashes> read_audit_chain_hashes(const std::filesystem::path& file,
                                                 const std::set<uint64_t>& hashes_wanted) {
  AuditChainHashes out;
  FileDescriptor fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return out;  // no file yet: no records
    return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0)
    return fail(Error::io(fmt::format("cannot stat {}: {}", file.string(), std::strerror(errno))));
  LineReader in(fd.get(), static_cast<std::uintmax_t>(st.st_size));
  std::string line;
  bool terminated = true;
  while (in.next(line, terminated)) {
    const auto facts = line_facts(line);
    if (!facts) continue;
    out.last_seq = facts->seq;
    if (hashes_wanted.contains(facts->seq)) out.hashes[facts->seq] = crypto::to_hex(sha256(line));
  }
  if (in.failed()) return fail(Error::io(fmt::format("cannot read {}: {}", file.string(), std::strerror(errno))));
  return out;
}

}  // namespace ca::authority
