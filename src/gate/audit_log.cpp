#include "gate/audit_log.h"
#include "base/files.h"

#include "base/encoding.h"
#include "base/json.h"
#include "base/text.h"
#include "base/time.h"

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
#include <map>
#include <optional>
#include <set>
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

// The first line of the file open at `fd` (`complete` false when it has no newline); reads
// no more than it needs.
bool read_first_line(int fd, std::string& out) {
  out.clear();
  char buf[4096];
  for (off_t at = 0;; at += static_cast<off_t>(sizeof buf)) {
    ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) return true;
    const char* nl = static_cast<const char*>(std::memchr(buf, '\n', static_cast<size_t>(n)));
    out.append(buf, nl ? static_cast<size_t>(nl - buf) : static_cast<size_t>(n));
    if (nl) return true;
  }
}

// The last line of the file open at `fd`, `size` bytes long, without its newline; false when
// it cannot be read. `complete` is false when the file does not end in a newline.
bool read_last_line(int fd, off_t size, std::string& out, bool& complete) {
  out.clear();
  complete = true;
  if (size == 0) return true;
  char last = 0;
  if (::pread(fd, &last, 1, size - 1) != 1) return false;
  complete = last == '\n';
  const off_t end = complete ? size - 1 : size;  // the line's bytes are [start, end)
  off_t window = 16 * 1024;
  while (true) {
    const off_t from = end > window ? end - window : 0;
    std::string chunk(static_cast<size_t>(end - from), '\0');
    size_t got = 0;
    while (got < chunk.size()) {
      ssize_t n = ::pread(fd, chunk.data() + got, chunk.size() - got, from + static_cast<off_t>(got));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      got += static_cast<size_t>(n);
    }
    const size_t nl = chunk.rfind('\n');
    if (nl != std::string::npos) {
      out = chunk.substr(nl + 1);
      return true;
    }
    if (from == 0) {
      out = std::move(chunk);
      return true;
    }
    window *= 4;
  }
}

struct ChainPoint {
  uint64_t seq = 0;
  std::string prev;  // the record's "prev"
  std::string time;
};
// The chain fields of one record line; nullopt when it is not a record.
std::optional<ChainPoint> chain_point(const std::string& line) {
  auto parsed = parse_json_bounded(line);
  if (!parsed || !parsed->is_object()) return std::nullopt;
  const nlohmann::json& j = *parsed;
  if (!j.contains("seq") || !j["seq"].is_number_unsigned()) return std::nullopt;
  ChainPoint p;
  p.seq = j["seq"].get<uint64_t>();
  if (j.contains("prev") && j["prev"].is_string()) p.prev = j["prev"].get<std::string>();
  if (j.contains("time") && j["time"].is_string()) p.time = j["time"].get<std::string>();
  return p;
}

// Syncs the directory holding `path`, so a rename or creation in it survives a power loss.
void sync_directory_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

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

std::string rotated_audit_file(const std::string& path, uint64_t first_seq) {
  char digits[24];
  std::snprintf(digits, sizeof digits, "%020llu", static_cast<unsigned long long>(first_seq));
  return path + "." + digits;
}

namespace {

// "<base>.<20 digits>" → the digits' value.
std::optional<uint64_t> rotated_suffix(const std::string& name, const std::string& base) {
  if (name.size() != base.size() + 21 || name.compare(0, base.size(), base) != 0 || name[base.size()] != '.')
    return std::nullopt;
  uint64_t v = 0;
  for (size_t i = base.size() + 1; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  return v;
}

}  // namespace

std::vector<std::pair<uint64_t, std::string>> rotated_audit_files(const std::string& path) {
  namespace fs = std::filesystem;
  std::vector<std::pair<uint64_t, std::string>> out;
  const fs::path p(path);
  const fs::path dir = p.parent_path().empty() ? fs::path(".") : p.parent_path();
  const std::string base = p.filename().string();
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (auto seq = rotated_suffix(name, base)) out.emplace_back(*seq, (p.parent_path() / name).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

Result<std::string> resolve_audit_log_path(const std::string& dir_or_path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir_or_path, ec)) return dir_or_path;
  // The families: every "<base>.head" and "<base>.<20 digits>"; else the one *.jsonl file.
  std::set<std::string> bases, jsonl;
  for (fs::directory_iterator it(dir_or_path, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.size() > 5 && name.ends_with(".head")) {
      bases.insert(name.substr(0, name.size() - 5));
    } else if (name.size() > 21 && rotated_suffix(name, name.substr(0, name.size() - 21))) {
      bases.insert(name.substr(0, name.size() - 21));
    } else if (name.ends_with(".jsonl")) {
      jsonl.insert(name);
    }
  }
  if (bases.empty()) bases = jsonl;
  if (bases.size() == 1) return (fs::path(dir_or_path) / *bases.begin()).string();
  if (bases.empty()) {
    return make_error("file.not_found", "no audit log in the directory " + dir_or_path +
                                            " (no *.head, rotated or *.jsonl file); give the log's path");
  }
  std::vector<std::string> names(bases.begin(), bases.end());
  return make_error("usage", "the directory " + dir_or_path + " holds several audit logs (" + join(names) +
                                 "); give the path of the one to verify");
}

AuditLog::AuditLog(std::string path, AuditLogOptions options)
    : path_(std::move(path)), options_(std::move(options)) {}

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

std::chrono::system_clock::time_point AuditLog::now() const {
  return options_.clock ? options_.clock() : std::chrono::system_clock::now();
}

// The lock is the head file's: unlike the active file it is never renamed (it is rewritten
// in place), so every writer locks the same inode across rotations. When the file at the path
// is no longer the one locked (deleted or replaced), the lock is taken again on the new one.
Result<void> AuditLog::lock_file() {
  const std::string head = path_ + ".head";
  for (int attempt = 0; attempt < 100; ++attempt) {
    if (head_fd_ < 0) {
      head_fd_ = ::open(head.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
      if (head_fd_ < 0) return io_error("cannot open audit head", head);
    }
    if (::flock(head_fd_, LOCK_EX) != 0) return io_error("cannot lock audit head", head);
    struct stat at_path {
    }, held{};
    if (::stat(head.c_str(), &at_path) == 0 && ::fstat(head_fd_, &held) == 0 &&
        at_path.st_ino == held.st_ino && at_path.st_dev == held.st_dev) {
      return {};
    }
    ::flock(head_fd_, LOCK_UN);
    ::close(head_fd_);
    head_fd_ = -1;
  }
  return make_error("audit.io", "cannot lock audit head " + head + ": it keeps being replaced");
}

void AuditLog::unlock_file() {
  if (head_fd_ >= 0) ::flock(head_fd_, LOCK_UN);
}

namespace {
class FileLockGuard {
 public:
  explicit FileLockGuard(std::function<void()> unlock) : unlock_(std::move(unlock)) {}
  ~FileLockGuard() { unlock_(); }
  FileLockGuard(const FileLockGuard&) = delete;
  FileLockGuard& operator=(const FileLockGuard&) = delete;

 private:
  std::function<void()> unlock_;
};
}  // namespace

// The head is one fixed-width line, "<seq, 20 digits> <64 hex>\n" (86 bytes), rewritten in
// place with a single pwrite() at offset 0: it always lies within one disk sector, so it is
// never seen half-written, and an append costs no file creation or rename.
Result<void> AuditLog::write_head_locked() {
  const std::string head = path_ + ".head";
  char content[96];
  int n = std::snprintf(content, sizeof content, "%020llu %s\n", static_cast<unsigned long long>(seq_),
                        last_hash_.c_str());
  if (n != 86) return make_error("audit.io", "audit head record has an unexpected size");
  if (::pwrite(head_fd_, content, static_cast<size_t>(n), 0) != n)
    return io_error("cannot write audit head", head);
  if (options_.sync && ::fdatasync(head_fd_) != 0) return io_error("cannot sync audit head", head);
  return {};
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(std::string path, bool sync) {
  AuditLogOptions options;
  options.sync = sync;
  return open(std::move(path), std::move(options));
}

Result<std::unique_ptr<AuditLog>> AuditLog::open(std::string path, AuditLogOptions options) {
  std::unique_ptr<AuditLog> log(new AuditLog(std::move(path), std::move(options)));
  AuditLog* raw = log.get();
  if (auto locked = raw->lock_file(); !locked) return locked.error();
  FileLockGuard unlock([raw] { raw->unlock_file(); });
  if (auto followed = raw->follow_locked(); !followed) return followed.error();
  return log;
}

Result<void> AuditLog::follow_locked() {
  struct stat at_path {
  }, held{};
  const bool present = ::stat(path_.c_str(), &at_path) == 0;
  if (!present && errno != ENOENT) return io_error("cannot stat audit log", path_);
  const bool same = fd_ >= 0 && present && ::fstat(fd_, &held) == 0 && held.st_ino == at_path.st_ino &&
                    held.st_dev == at_path.st_dev;
  if (!same) {  // first open, or another writer rotated the file (or it was removed)
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return io_error("cannot open audit log", path_);
    return load_tail_locked();
  }
  if (held.st_size != known_size_) return load_tail_locked();  // another writer appended
  return {};
}

// Finds the last record's seq and hash, and the active file's first record. Called with the
// lock held. An empty active file continues the newest rotated file's chain.
Result<void> AuditLog::load_tail_locked() {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return io_error("cannot stat audit log", path_);
  seq_ = 0;
  last_hash_ = kGenesis;
  active_first_seq_ = 0;
  active_since_.reset();
  std::string last;
  bool complete = true;
  std::string source = path_;
  if (st.st_size > 0) {
    std::string first;
    if (!read_first_line(fd_, first) || !read_last_line(fd_, st.st_size, last, complete))
      return io_error("cannot read audit log", path_);
    auto point = chain_point(first);
    if (!point)
      return make_error("audit.corrupt", "the first record of " + path_ + " is not a valid audit record");
    active_first_seq_ = point->seq;
    active_since_ = parse_rfc3339_utc(point->time);
    if (!active_since_) active_since_ = now();
  } else if (auto rotated = rotated_audit_files(path_); !rotated.empty()) {
    source = rotated.back().second;
    int fd = ::open(source.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return io_error("cannot read audit log", source);
    struct stat rst {};
    bool read = ::fstat(fd, &rst) == 0 && read_last_line(fd, rst.st_size, last, complete);
    ::close(fd);
    if (!read) return io_error("cannot read audit log", source);
  }
  if (!complete) {
    return make_error("audit.corrupt", "audit log " + source +
                                           " ends in a partial record; run `larder audit verify " + path_ +
                                           "` and move the file aside before appending");
  }
  if (!last.empty()) {
    auto point = chain_point(last);
    if (!point)
      return make_error("audit.corrupt", "the last record of " + source + " is not a valid audit record");
    seq_ = point->seq;
    last_hash_ = sha256_hex(last);
  }
  known_size_ = st.st_size;
  return {};
}

Result<AuditAnchorPoint> AuditLog::current_head() {
  std::lock_guard guard(mutex_);
  if (auto locked = lock_file(); !locked) return locked.error();
  FileLockGuard unlock([this] { unlock_file(); });
  if (auto followed = follow_locked(); !followed) return followed.error();
  if (auto loaded = load_tail_locked(); !loaded) return loaded.error();  // even when the size did not change
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
  const auto at = now();
  if (record.time.empty()) record.time = rfc3339_utc(at, true);
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
  std::size_t bytes = 0;
  if (auto written = append_body(body, at, bytes); !written) return written;
  // Outside the locks: the metrics and the log line of this decision.
  if (observer_) observer_(record, bytes);
  return {};
}

Result<void> AuditLog::append_body(const std::string& body, std::chrono::system_clock::time_point at,
                                   std::size_t& bytes) {
  std::lock_guard guard(mutex_);
  if (auto locked = lock_file(); !locked) return locked.error();
  FileLockGuard unlock([this] { unlock_file(); });
  if (auto followed = follow_locked(); !followed) return followed.error();

  // Rotation: before the record that would take the file past rotate_bytes, or once the
  // file's first record is rotate_interval old. A rotation that fails is logged and retried
  // at the next append; the record goes to the active file meanwhile (no record is lost).
  const uint64_t line_bytes = body.size() + 100 + 20;  // + the chain fields and newline
  const bool too_big =
      options_.rotate_bytes > 0 && static_cast<uint64_t>(known_size_) + line_bytes > options_.rotate_bytes;
  const bool too_old = options_.rotate_interval.count() > 0 && active_since_ &&
                       at - *active_since_ >= options_.rotate_interval;
  if (active_first_seq_ > 0 && (too_big || too_old)) {
    auto rotated = rotate_locked();
    if (!rotated) {
      if (!rotation_failing_)
        spdlog::error("audit log {} cannot be rotated, it keeps growing until it can: {}", path_,
                      rotated.error().message);
      rotation_failing_ = true;
      if (fd_ < 0) {  // the rename could not be undone: continue in a new active file
        if (auto followed = follow_locked(); !followed) return followed.error();
      }
    } else {
      if (rotation_failing_) spdlog::warn("audit log {} is rotated again", path_);
      rotation_failing_ = false;
      if (auto pruned = prune_locked(at); !pruned) return pruned;
    }
  }
  const off_t before = known_size_;
  auto written = write_locked(body);
  bytes = static_cast<std::size_t>(known_size_ - before);
  return written;
}

// Called after follow_locked(), so known_size_ is the active file's size.
Result<void> AuditLog::write_locked(const std::string& body) {
  std::string line = body + (body.size() > 1 ? "," : "") + "\"prev\":\"" + last_hash_ +
                     "\",\"seq\":" + std::to_string(seq_ + 1) + "}";
  std::string with_newline = line + "\n";
  if (!write_all(fd_, with_newline)) return io_error("cannot append to audit log", path_);
  if (options_.sync && ::fdatasync(fd_) != 0) return io_error("cannot sync audit log", path_);
  seq_ += 1;
  last_hash_ = sha256_hex(line);
  known_size_ += static_cast<off_t>(with_newline.size());
  if (active_first_seq_ == 0) {
    active_first_seq_ = seq_;
    active_since_ = now();
  }
  if (options_.on_record) options_.on_record(line);

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
  return {};
}

// Renames the active file to <path>.<its first seq> and puts an empty one in its place. On
// failure nothing changed (the rename is undone) and the active file stays.
Result<void> AuditLog::rotate_locked() {
  const std::string target = rotated_audit_file(path_, active_first_seq_);
  struct stat st {};
  if (::lstat(target.c_str(), &st) == 0) {
    return make_error("audit.rotate", "cannot rotate " + path_ + ": " + target +
                                          " already exists (move it aside: it is not this log's)");
  }
  if (::rename(path_.c_str(), target.c_str()) != 0) return io_error("cannot rename audit log to", target);
  int fd = ::open(path_.c_str(), O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    auto e = io_error("cannot create a new audit log", path_);
    if (::rename(target.c_str(), path_.c_str()) != 0) {
      // The active file is gone; the next append creates it and continues from `target`.
      ::close(fd_);
      fd_ = -1;
    }
    return e;
  }
  if (options_.sync) sync_directory_of(path_);
  ::close(fd_);
  fd_ = fd;
  spdlog::info("audit log {} rotated to {} (records {} to {})", path_, target, active_first_seq_, seq_);
  known_size_ = 0;
  active_first_seq_ = 0;
  active_since_.reset();
  return {};
}

// Retention: the oldest rotated files beyond keep_files, or last written before keep_age,
// are deleted — after a retention record in the chain says which records may be gone (see
// the header comment). Only a run of the oldest files is deleted, so what stays is contiguous.
Result<void> AuditLog::prune_locked(std::chrono::system_clock::time_point now) {
  if (options_.keep_files == 0 && options_.keep_age.count() == 0) return {};
  auto files = rotated_audit_files(path_);
  size_t prune = 0;
  if (options_.keep_files > 0 && files.size() > options_.keep_files)
    prune = files.size() - options_.keep_files;
  if (options_.keep_age.count() > 0) {
    const auto cutoff = now - options_.keep_age;
    size_t old = 0;
    for (; old < files.size(); ++old) {
      struct stat st {};
      if (::stat(files[old].second.c_str(), &st) != 0) break;
      if (std::chrono::system_clock::from_time_t(st.st_mtime) > cutoff) break;
    }
    prune = std::max(prune, old);
  }
  if (prune == 0) return {};
  // The boundary: the first record kept and the hash it follows.
  uint64_t first_kept = seq_ + 1;
  std::string first_kept_prev = last_hash_;
  if (prune < files.size()) {
    const std::string& kept = files[prune].second;
    int fd = ::open(kept.c_str(), O_RDONLY | O_CLOEXEC);
    std::string first;
    const bool read = fd >= 0 && read_first_line(fd, first);
    if (fd >= 0) ::close(fd);
    auto point = read ? chain_point(first) : std::nullopt;
    if (!point) {
      spdlog::error("audit log retention skipped: the first record of {} cannot be read", kept);
      return {};
    }
    first_kept = point->seq;
    first_kept_prev = point->prev;
  }
  nlohmann::json r = {{"time", rfc3339_utc(now, true)}, {"event", "audit.retention"},
                      {"pruned_files", prune},          {"pruned_first_seq", files.front().first},
                      {"first_kept_seq", first_kept},   {"first_kept_prev", first_kept_prev}};
  std::string body = r.dump();
  body.pop_back();
  if (auto written = write_locked(body); !written) return written;
  for (size_t i = 0; i < prune; ++i) {
    if (::unlink(files[i].second.c_str()) != 0 && errno != ENOENT) {
      spdlog::error("audit log retention cannot delete {}: {} (it is kept, and checked)", files[i].second,
                    std::strerror(errno));
      break;
    }
  }
  if (options_.sync) sync_directory_of(path_);
  return {};
}

namespace {

// The chain and head check over every file of the log, oldest first. When `capture` is set,
// `captured` gets the SHA-256 of that record's line (the anchored one), if present. Memory
// stays bounded by the largest file, whatever the number of records.
AuditVerification verify_chain(const std::string& dir_or_path, std::optional<uint64_t> capture,
                               std::string* captured) {
  AuditVerification v;
  auto resolved = resolve_audit_log_path(dir_or_path);
  if (!resolved) {
    v.problem = resolved.error().message;
    v.not_checked = resolved.error();
    return v;
  }
  const std::string path = *resolved;
  // The files in chain order: rotated by the seq in their names, then the active one.
  struct File {
    std::string path;
    std::optional<uint64_t> named_seq;  // rotated files only
  };
  std::vector<File> files;
  for (auto& [seq, file] : rotated_audit_files(path)) files.push_back({file, seq});
  const bool active_present = ::access(path.c_str(), F_OK) == 0;
  if (!active_present && files.empty()) {
    // No file of the log is left; a head saying records were written is evidence of that.
    std::ifstream head(path + ".head");
    uint64_t head_seq = 0;
    if (head && (head >> head_seq) && head_seq > 0) {
      v.problem = "no file of the log is left, and its head file says " + std::to_string(head_seq) +
                  " records were written: the log was deleted";
      return v;
    }
  }
  if (active_present || files.empty()) files.push_back({path, std::nullopt});

  struct Retention {
    uint64_t seq;  // the retention record's own
    uint64_t first_kept_seq;
    std::string first_kept_prev;
  };
  std::vector<Retention> retentions;
  std::map<uint64_t, std::string> file_starts;  // each file's first record: seq -> its prev
  std::string expected_prev;
  uint64_t expected_seq = 0;  // 0: no record seen yet
  for (const File& file : files) {
    bool readable = false;
    auto lines = read_lines(file.path, readable);
    if (!readable) {
      v.problem = "cannot read " + file.path;
      v.not_checked = make_error("file.unreadable", "audit log " + file.path + ": cannot read it");
      return v;
    }
    ++v.files;
    const std::string name = std::filesystem::path(file.path).filename().string();
    if (file.named_seq && lines.empty()) {
      v.problem = name + " is empty: a rotated file always holds records (it was emptied)";
      return v;
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      const std::string where = name + " line " + std::to_string(i + 1) + ": ";
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
      if (!j.contains("seq") || !j["seq"].is_number_unsigned() || j["seq"].get<uint64_t>() == 0) {
        v.problem = where + "no sequence number: not an audit record";
        return v;
      }
      const uint64_t seq = j["seq"].get<uint64_t>();
      if (!j.contains("prev") || !j["prev"].is_string()) {
        v.problem = where + "no hash of the previous record: not an audit record";
        return v;
      }
      const std::string prev = j["prev"].get<std::string>();
      if (i == 0 && file.named_seq && *file.named_seq != seq) {
        v.problem = where + "the file's name says its first record is " + std::to_string(*file.named_seq) +
                    ", it is " + std::to_string(seq) + ": rotated files were renamed or reordered";
        return v;
      }
      if (expected_seq == 0) {  // the oldest record present: seq 1, or a retention boundary
        v.first_seq = seq;
        if (seq == 1 && prev != kGenesis) {
          v.problem = where + "hash chain broken: the first record does not start the chain";
          return v;
        }
      } else if (seq != expected_seq) {
        v.problem = where + "sequence number is " + std::to_string(seq) + ", not " +
                    std::to_string(expected_seq) +
                    (i == 0 && seq > expected_seq
                         ? " (records " + std::to_string(expected_seq) + " to " + std::to_string(seq - 1) +
                               " are missing: a rotated file was deleted, or files were reordered)"
                         : " (a record was deleted, inserted or reordered, or files were reordered)");
        return v;
      } else if (prev != expected_prev) {
        v.problem = where + "hash chain broken: the previous record was edited, deleted or reordered" +
                    (i == 0 ? " (or it is not the previous file's last record)" : "");
        return v;
      }
      if (j.value("event", "") == "audit.retention") {
        if (!j.contains("first_kept_seq") || !j["first_kept_seq"].is_number_unsigned() ||
            !j.contains("first_kept_prev") || !j["first_kept_prev"].is_string()) {
          v.problem = where + "a retention record without its boundary";
          return v;
        }
        retentions.push_back(
            {seq, j["first_kept_seq"].get<uint64_t>(), j["first_kept_prev"].get<std::string>()});
      }
      if (i == 0) file_starts[seq] = prev;
      expected_prev = sha256_hex(lines[i].text);
      if (capture && *capture == seq && captured) *captured = expected_prev;
      expected_seq = seq + 1;
      v.last_seq = seq;
      ++v.records;
    }
  }
  // The retention boundary: records before the oldest one present are gone only when a
  // retention record says retention removed them; where a boundary falls inside the
  // records present, the record there must follow the hash the retention record names.
  bool start_allowed = v.records == 0 || v.first_seq == 1;
  for (const Retention& r : retentions) {
    // A boundary is the first record of a file (retention runs right after a rotation).
    auto at = file_starts.find(r.first_kept_seq);
    if (at == file_starts.end() || r.first_kept_seq > r.seq) continue;
    if (at->second != r.first_kept_prev) {
      v.problem = "the retention record " + std::to_string(r.seq) + " says record " +
                  std::to_string(r.first_kept_seq) + " follows " + r.first_kept_prev.substr(0, 12) +
                  "…, it does not: the log was rewritten";
      return v;
    }
  }
  for (const Retention& r : retentions) {
    if (v.first_seq > 1 && v.first_seq <= r.first_kept_seq) {
      if (!start_allowed) v.retention_seq = r.seq;  // the earliest one: the first to be anchored
      start_allowed = true;
    }
  }
  if (!start_allowed) {
    v.problem = "records 1 to " + std::to_string(v.first_seq - 1) +
                " are missing (the oldest file present, " +
                std::filesystem::path(files.front().path).filename().string() + ", starts at record " +
                std::to_string(v.first_seq) +
                ") and no retention record says retention deleted them: files were deleted";
    return v;
  }
  std::ifstream head(path + ".head");
  uint64_t head_seq = 0;
  std::string head_hash;
  if (head) head >> head_seq >> head_hash;
  if (head_hash.empty()) {
    if (v.records == 0) {
      v.ok = true;
      return v;
    }
    v.problem = "head file " + path + ".head is missing or empty";
    return v;
  }
  const std::string last_hash = v.records ? expected_prev : kGenesis;
  if (head_seq != v.last_seq || head_hash != last_hash) {
    v.problem = "head file says the last record is " + std::to_string(head_seq) + ", ending in " +
                head_hash.substr(0, 12) + "…, the log's last is " + std::to_string(v.last_seq) +
                (head_seq > v.last_seq ? ": records were cut off the end" : ": the last record was changed");
    return v;
  }
  v.ok = true;
  return v;
}

}  // namespace

AuditVerification verify_audit_log(const std::string& path) {
  return verify_chain(path, std::nullopt, nullptr);
}

AuditVerification verify_audit_log(const std::string& path, const std::string& log_id,
                                   const AuditAnchorReader& anchor) {
  // The anchor first (its record's hash is taken during the one pass over the files); a
  // broken chain is reported before an unreachable anchor.
  auto point = anchor(log_id);
  std::optional<uint64_t> anchored_seq;
  if (point && *point) anchored_seq = (*point)->seq;
  std::string anchored_hash;
  AuditVerification v = verify_chain(path, anchored_seq, &anchored_hash);
  if (!v.ok) return v;
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
    if (v.records > 0) {
      v.ok = false;
      v.problem = "no anchor was ever recorded for " + log_id + ", yet the log has " +
                  std::to_string(v.records) + " records: this is not the log that server wrote";
    }
    return v;
  }
  const auto& [seq, hash] = **point;
  if (seq > v.last_seq) {
    v.ok = false;
    v.problem = "the anchor in PostgreSQL says record " + std::to_string(seq) +
                " was written, the log's last is " + std::to_string(v.last_seq) +
                ": records were cut off the end (and the head file rewritten)";
  } else if (seq > 0 && seq >= v.first_seq && anchored_hash != hash) {
    v.ok = false;
    v.problem =
        "record " + std::to_string(seq) + " is not the one anchored in PostgreSQL: the log was rewritten";
  } else if (v.retention_seq > seq) {
    // The records before first_seq are excused only by an anchored retention record: one
    // after the anchor may have been appended, and the head rewritten, by someone else.
    v.ok = false;
    v.problem = "records 1 to " + std::to_string(v.first_seq - 1) +
                " are missing, and the retention record " + std::to_string(v.retention_seq) +
                " that says retention deleted them comes after the anchored record " + std::to_string(seq) +
                ": it was not written by the server, or not yet anchored (verify again in a moment)";
  }
  // An anchored record older than the oldest one present was removed by retention (which
  // verify_chain has accepted): the log goes on past it.
  return v;
}

}  // namespace larder::gate
