#include "gate/audit_log.h"
#include "base/files.h"

#include "base/json.h"
#include "base/time.h"
#include "gate/digest.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace larder::gate {
namespace {

constexpr const char* kGenesis = "0000000000000000000000000000000000000000000000000000000000000000";

Error io_error(const std::string& what, const std::string& path) {
  return make_error("audit.io", what + " " + path + ": " + std::strerror(errno));
}

// Writes `data` fully at the end of fd (O_APPEND).
bool write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) { ok_ = ::flock(fd_, LOCK_EX) == 0; }
  ~FileLock() {
    if (ok_) ::flock(fd_, LOCK_UN);
  }
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_;
};

// Splits the file into lines; a final line without '\n' is returned with `complete=false`.
struct Line {
  std::string text;
  bool complete;
};
std::vector<Line> read_lines(const std::string& path, bool& readable) {
  auto text = read_file(path);
  readable = text.ok();
  std::vector<Line> lines;
  if (!readable) return lines;
  const std::string& content = *text;
  size_t start = 0;
  while (start < content.size()) {
    size_t nl = content.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back({content.substr(start), false});
      break;
    }
    lines.push_back({content.substr(start, nl - start), true});
    start = nl + 1;
  }
  return lines;
}

// `text` cut to at most `max` bytes (at a UTF-8 character boundary), saying how much was cut.
std::string bounded(const std::string& text, std::size_t max) {
  if (text.size() <= max) return text;
  std::size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut) + "…[" + std::to_string(text.size() - cut) + " more bytes]";
}

}  // namespace

std::string default_audit_anchor_id(const std::string& audience, const std::string& path) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::error_code ec;
  auto absolute = std::filesystem::absolute(path, ec);
  return audience + "@" + host + ":" + (ec ? path : absolute.lexically_normal().string());
}

nlohmann::json to_json(const AuditRecord& r) {
  auto field = [](const std::string& s) { return bounded(s, kMaxAuditFieldBytes); };
  nlohmann::json ids = nlohmann::json::array();
  for (std::size_t i = 0; i < r.revocation_ids.size() && i < kMaxAuditRevocationIds; ++i)
    ids.push_back(field(r.revocation_ids[i]));
  nlohmann::json j = {
      {"time", field(r.time)},
      {"client_cert_sha256", field(r.client_cert_sha256)},
      {"client_cert_cn", field(r.client_cert_cn)},
      {"lineage", field(r.lineage)},
      {"revocation_ids", std::move(ids)},
      {"server_audience", field(r.server_audience)},
      {"method", field(r.method)},
      {"tool", field(r.tool)},
      {"sql_fingerprint", field(r.sql_fingerprint)},
      {"rows", r.rows ? nlohmann::json(*r.rows) : nlohmann::json(nullptr)},
      {"decision", field(r.decision)},
      {"lock", field(r.lock)},
      {"reason", bounded(r.reason, kMaxAuditReasonBytes)},
      {"taint", field(r.taint)},
  };
  if (r.revocation_ids.size() > kMaxAuditRevocationIds) j["revocation_ids_total"] = r.revocation_ids.size();
  nlohmann::json us = nlohmann::json::object();
  const std::pair<const char*, int64_t> stages[] = {
      {"guard", r.timings.guard_us},         {"verify", r.timings.verify_us}, {"ledger", r.timings.ledger_us},
      {"authorize", r.timings.authorize_us}, {"tool", r.timings.tool_us},     {"taint", r.timings.taint_us}};
  for (const auto& [name, value] : stages)
    if (value >= 0) us[name] = value;
  if (!us.empty()) j["us"] = std::move(us);
  if (!r.request_id.empty()) j["request_id"] = field(r.request_id);
  if (!r.trace_id.empty()) j["trace_id"] = field(r.trace_id);
  return j;
}

AuditLog::AuditLog(std::string path, int fd, bool sync) : path_(std::move(path)), fd_(fd), sync_(sync) {}

AuditLog::~AuditLog() {
  {
    std::lock_guard lock(anchor_mu_);
    anchor_stop_ = true;
  }
  anchor_cv_.notify_all();
  if (anchor_thread_.joinable()) anchor_thread_.join();  // after one last try to anchor the head
  if (fd_ >= 0) ::close(fd_);
  if (head_fd_ >= 0) ::close(head_fd_);
}

// The head is one fixed-width line, "<seq, 20 digits> <64 hex>\n" (86 bytes), rewritten in
// place with a single pwrite() at offset 0: it always lies within one disk sector, so it is
// never seen half-written, and an append costs no file creation or rename. The descriptor is
// reopened when the file at the path is no longer the one we hold (deleted or replaced).
Result<void> AuditLog::write_head_locked() {
  const std::string head = path_ + ".head";
  struct stat at_path {
  }, held{};
  bool same = head_fd_ >= 0 && ::stat(head.c_str(), &at_path) == 0 && ::fstat(head_fd_, &held) == 0 &&
              at_path.st_ino == held.st_ino && at_path.st_dev == held.st_dev;
  if (!same) {
    if (head_fd_ >= 0) ::close(head_fd_);
    head_fd_ = ::open(head.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (head_fd_ < 0) return io_error("cannot write audit head", head);
  }
  char content[96];
  int n = std::snprintf(content, sizeof content, "%020llu %s\n", static_cast<unsigned long long>(seq_),
                        last_hash_.c_str());
  if (n != 86) return make_error("audit.io", "audit head record has an unexpected size");
  if (::pwrite(head_fd_, content, static_cast<size_t>(n), 0) != n)
    return io_error("cannot write audit head", head);
  if (sync_ && ::fdatasync(head_fd_) != 0) return io_error("cannot sync audit head", head);
  return {};
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(std::string path, bool sync) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return io_error("cannot open audit log", path);
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(path), fd, sync));
  FileLock lock(fd);
  if (!lock.ok()) return io_error("cannot lock audit log", log->path_);
  auto loaded = log->load_tail_locked();
  if (!loaded) return loaded.error();
  return log;
}

// Finds the last record's seq and hash. Called with the flock held.
Result<void> AuditLog::load_tail_locked() {
  bool readable = false;
  auto lines = read_lines(path_, readable);
  if (!readable) return io_error("cannot read audit log", path_);
  seq_ = 0;
  last_hash_ = kGenesis;
  if (!lines.empty()) {
    const Line& last = lines.back();
    if (!last.complete) {
      return make_error("audit.corrupt", "audit log " + path_ +
                                             " ends in a partial record; run `larder audit verify " + path_ +
                                             "` and move the file aside before appending");
    }
    auto parsed = parse_json_bounded(last.text);
    const nlohmann::json j = parsed ? std::move(*parsed) : nlohmann::json();
    if (!j.is_object() || !j.contains("seq") || !j["seq"].is_number_unsigned()) {
      return make_error("audit.corrupt", "the last record of " + path_ + " is not a valid audit record");
    }
    seq_ = j["seq"].get<uint64_t>();
    last_hash_ = sha256_hex(last.text);
  }
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_error("cannot stat audit log", path_);
  known_size_ = st.st_size;
  return {};
}

Result<AuditAnchorPoint> AuditLog::current_head() {
  std::lock_guard guard(mutex_);
  FileLock lock(fd_);
  if (!lock.ok()) return io_error("cannot lock audit log", path_);
  if (auto loaded = load_tail_locked(); !loaded) return loaded.error();
  return AuditAnchorPoint{seq_, last_hash_};
}

void AuditLog::set_anchor(std::string log_id, AuditAnchorWriter writer, std::chrono::milliseconds max_lag,
                          std::chrono::milliseconds interval) {
  {
    std::lock_guard chain(mutex_);
    std::lock_guard lock(anchor_mu_);
    anchor_id_ = std::move(log_id);
    anchor_writer_ = std::move(writer);
    anchor_max_lag_ = max_lag;
    anchor_interval_ = interval;
    head_seq_ = seq_;
    head_hash_ = last_hash_;
    anchored_seq_ = 0;
    unanchored_since_ = std::chrono::steady_clock::now();
  }
  anchor_thread_ = std::thread([this] { anchor_loop(); });
}

void AuditLog::anchor_loop() {
  std::unique_lock lock(anchor_mu_);
  bool failing = false;
  while (true) {
    anchor_cv_.wait(lock, [&] { return anchor_stop_ || head_seq_ > anchored_seq_; });
    if (head_seq_ <= anchored_seq_) break;  // stopping, and nothing left to anchor
    const uint64_t seq = head_seq_;
    const std::string hash = head_hash_;
    lock.unlock();
    auto written = anchor_writer_(anchor_id_, seq, hash);
    lock.lock();
    if (written) {
      if (failing) spdlog::warn("audit anchor for {} is written again (record {})", anchor_id_, seq);
      failing = false;
      anchored_seq_ = std::max(anchored_seq_, seq);
      // Records appended meanwhile wait for the next write; count their lag from now.
      unanchored_since_ = std::chrono::steady_clock::now();
      anchor_cv_.notify_all();
      // The next write waits out the interval (stopping cuts it short: one last write).
      if (anchor_interval_.count() > 0 && !anchor_stop_) {
        anchor_cv_.wait_for(lock, anchor_interval_, [&] { return anchor_stop_; });
      }
      continue;
    }
    if (!failing)
      spdlog::error("audit anchor for {} cannot be written: {}", anchor_id_, written.error().message);
    failing = true;
    if (anchor_stop_) break;
    anchor_cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return anchor_stop_; });
  }
}

bool AuditLog::flush_anchor(std::chrono::milliseconds timeout) {
  std::unique_lock lock(anchor_mu_);
  if (!anchor_writer_) return false;
  return anchor_cv_.wait_for(lock, timeout, [&] { return anchored_seq_ >= head_seq_; });
}

Result<void> AuditLog::sync() {
  std::lock_guard guard(mutex_);
  if (::fdatasync(fd_) != 0) return io_error("cannot sync audit log", path_);
  if (head_fd_ >= 0 && ::fdatasync(head_fd_) != 0) return io_error("cannot sync audit head", path_ + ".head");
  return {};
}

Result<void> AuditLog::append(AuditRecord record) {
  if (record.time.empty()) record.time = rfc3339_utc(std::chrono::system_clock::now(), true);
  {
    std::lock_guard lock(anchor_mu_);
    if (anchor_writer_ && anchored_seq_ < head_seq_ &&
        std::chrono::steady_clock::now() - unanchored_since_ > anchor_max_lag_) {
      return make_error("audit.anchor",
                        "the audit log's anchor in PostgreSQL has not been written for over " +
                            std::to_string(anchor_max_lag_.count()) +
                            " ms; nothing is carried out until it is (is the database reachable?)");
    }
  }
  // The record is serialized before taking the locks; only the chain fields (the previous
  // record's hash, the sequence number) are appended under them.
  std::string body = to_json(record).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  body.pop_back();  // the closing brace; the chain fields follow
  std::lock_guard guard(mutex_);
  FileLock lock(fd_);
  if (!lock.ok()) return io_error("cannot lock audit log", path_);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_error("cannot stat audit log", path_);
  if (st.st_size != known_size_) {  // another process appended since we last looked
    auto loaded = load_tail_locked();
    if (!loaded) return loaded.error();
  }
  std::string line = body + (body.size() > 1 ? "," : "") + "\"prev\":\"" + last_hash_ +
                     "\",\"seq\":" + std::to_string(seq_ + 1) + "}";
  std::string with_newline = line + "\n";
  if (!write_all(fd_, with_newline)) return io_error("cannot append to audit log", path_);
  if (sync_ && ::fdatasync(fd_) != 0) return io_error("cannot sync audit log", path_);
  seq_ += 1;
  last_hash_ = sha256_hex(line);
  known_size_ = st.st_size + static_cast<off_t>(with_newline.size());

  auto head = write_head_locked();
  if (!head) return head;
  {
    std::lock_guard anchor(anchor_mu_);
    if (anchor_writer_) {
      if (anchored_seq_ >= head_seq_) unanchored_since_ = std::chrono::steady_clock::now();
      head_seq_ = seq_;
      head_hash_ = last_hash_;
    }
  }
  anchor_cv_.notify_all();
  if (observer_) observer_(record, with_newline.size());
  return {};
}

namespace {

// The chain and head check; `hashes` gets the SHA-256 of each record line, in order.
AuditVerification verify_chain(const std::string& path, std::vector<std::string>* hashes) {
  AuditVerification v;
  bool readable = false;
  auto lines = read_lines(path, readable);
  if (!readable) {
    v.problem = "cannot read " + path;
    v.not_checked = make_error("file.unreadable", "audit log " + path + ": cannot read it");
    return v;
  }
  std::string expected_prev = kGenesis;
  uint64_t expected_seq = 1;
  for (size_t i = 0; i < lines.size(); ++i) {
    const std::string where = "line " + std::to_string(i + 1) + ": ";
    if (!lines[i].complete) {
      v.problem = where + "partial record (no newline): the file was cut";
      return v;
    }
    auto parsed = parse_json_bounded(lines[i].text);
    if (!parsed || !parsed->is_object()) {
      v.problem = where + (parsed ? std::string("not a JSON object")
                                  : "not a JSON object (" + parsed.error().message + ")");
      return v;
    }
    const nlohmann::json& j = *parsed;
    if (!j.contains("seq") || !j["seq"].is_number_unsigned() || j["seq"].get<uint64_t>() != expected_seq) {
      v.problem = where + "sequence number is not " + std::to_string(expected_seq) +
                  " (a record was deleted, inserted or reordered)";
      return v;
    }
    if (!j.contains("prev") || !j["prev"].is_string() || j["prev"].get<std::string>() != expected_prev) {
      v.problem = where + "hash chain broken: the previous record was edited, deleted or reordered";
      return v;
    }
    expected_prev = sha256_hex(lines[i].text);
    if (hashes) hashes->push_back(expected_prev);
    ++expected_seq;
    ++v.records;
  }
  std::ifstream head(path + ".head");
  if (!head) {
    if (v.records == 0) {
      v.ok = true;
      return v;
    }
    v.problem = "head file " + path + ".head is missing";
    return v;
  }
  uint64_t head_seq = 0;
  std::string head_hash;
  head >> head_seq >> head_hash;
  if (head_seq != v.records || head_hash != expected_prev) {
    v.problem = "head file says " + std::to_string(head_seq) + " records ending in " +
                head_hash.substr(0, 12) + "…, the log has " + std::to_string(v.records) +
                (head_seq > v.records ? ": records were cut off the end" : ": the last record was changed");
    return v;
  }
  v.ok = true;
  return v;
}

}  // namespace

AuditVerification verify_audit_log(const std::string& path) {
  return verify_chain(path, nullptr);
}

AuditVerification verify_audit_log(const std::string& path, const std::string& log_id,
                                   const AuditAnchorReader& anchor) {
  std::vector<std::string> hashes;
  AuditVerification v = verify_chain(path, &hashes);
  if (!v.ok) return v;
  auto point = anchor(log_id);
  if (!point) {
    v.ok = false;
    v.problem = "cannot read the audit anchor for " + log_id + ": " + point.error().message;
    v.not_checked = make_error(
        "db.unavailable",
        "cannot read the audit anchor for " + log_id +
            " from PostgreSQL (database unavailable, retry later); the hash chain itself is intact",
        point.error().message);
    return v;
  }
  if (!*point) {
    if (!hashes.empty()) {
      v.ok = false;
      v.problem = "no anchor was ever recorded for " + log_id + ", yet the log has " +
                  std::to_string(hashes.size()) + " records: this is not the log that server wrote";
    }
    return v;
  }
  const auto& [seq, hash] = **point;
  if (seq > hashes.size()) {
    v.ok = false;
    v.problem = "the anchor in PostgreSQL says record " + std::to_string(seq) + " was written, the log has " +
                std::to_string(hashes.size()) +
                ": records were cut off the end (and the head file rewritten)";
  } else if (seq > 0 && hashes[seq - 1] != hash) {
    v.ok = false;
    v.problem =
        "record " + std::to_string(seq) + " is not the one anchored in PostgreSQL: the log was rewritten";
  }
  return v;
}

}  // namespace larder::gate
