// AuditLog: the append-only, hash-chained record of every authorization decision.
//
// Format: JSON Lines. Every line is one JSON object with, besides the decision fields,
//   "seq":  1, 2, 3, ... (no gaps)
//   "prev": lowercase hex SHA-256 of the previous line's bytes (without its newline);
//           64 zeros for the first record.
// A sidecar file `<path>.head` holds `<seq> <sha256 of the last line>` and is rewritten in
// place on every append, so cutting records off the end is detected too (the chain alone cannot see
// a truncated tail). verify_audit_log() detects an edited, deleted, inserted or reordered
// record, and a head that does not match the last record.
//
// Several processes may append to the same log: every append holds an exclusive flock() on
// the head file (its inode never changes: it is rewritten in place), re-reads the tail when
// another writer moved it, and reopens the active file when another writer rotated it.
//
// Anchoring: the chain and the head file alone cannot show a log whose tail was cut and whose
// head was rewritten to match. With an anchor (set_anchor), a background thread copies the
// head — (seq, hash) — to a place the log's writer does not control (PostgreSQL:
// larder_gate.audit_anchors, see TaintLedger), soon after every append; verification
// against it (verify_audit_anchor) fails when the log holds fewer records than the anchor
// saw, or another record at the anchored position. The records written after the last
// anchor write (milliseconds under load) are the only ones a cut can remove unseen. When
// the anchor cannot be written for longer than its `max_lag`, append() fails, and with it
// every call (fail closed).
//
// Rotation and retention (AuditLogOptions; [audit] rotate_bytes, rotate_interval_s,
// keep_files, keep_days). The log is a family of files in one directory:
//   <path>                    the active file, appended to;
//   <path>.<first seq>        rotated files, the seq of their first record in 20 digits
//                             (audit.jsonl.00000000000000000001): name order is chain order;
//   <path>.head               the head, and the lock every writer takes.
// Before an append that would take the active file past rotate_bytes, or when its first record
// is rotate_interval old, the writer renames it to <path>.<its first seq> and creates an empty
// active file (both under the lock). The chain simply continues: the next record's `seq` is
// the last one's + 1 and its `prev` the hash of the rotated file's last line (a writer whose
// active file is empty takes its tail from the newest rotated file). So a missing middle file
// is a gap in seq and a broken link, and swapped files break the chain and their names.
// Rotation never loses a record: when the rename or the new file fails, the rename is undone,
// the error is logged and the record goes to the active file, which keeps growing until a
// later rotation succeeds (a record that cannot be written at all fails the call as before).
//
// Retention (keep_files / keep_days, applied at each rotation) deletes the oldest rotated files.
// Before deleting, the writer appends a retention record to the chain:
//   {"time":…, "event":"audit.retention", "pruned_files":N, "pruned_first_seq":A,
//    "first_kept_seq":S, "first_kept_prev":H, "prev":…, "seq":…}
// saying records before S (the first record of the oldest file kept) may be gone, and that the
// record at S follows H. Verification accepts a family whose oldest present record is not
// seq 1 only when a retention record in the verified chain says so (start seq <= its
// first_kept_seq; at S exactly, `prev` must be H). The retention record is itself chained,
// and covered by the head and the anchor, so deleting the oldest files is not enough to fake
// retention: a forged one must be appended after the real last record, which breaks the
// head; and when the head is rewritten to match, the anchor check (verify_audit_log with an
// anchor) still refuses it: a retention record counts there only at or before the anchored
// seq, i.e. once the writer has anchored it (a record after the anchor is not vouched for;
// a legitimate one is anchored within anchor_interval). Deleting the oldest files beyond a
// retention boundary, a middle file, or the newest ones, reordering or renaming files, all
// fail verification. A crash between the
// retention record and the deletions leaves files retention was allowed to delete: they are
// checked like any other.
//
// Every record is bounded: each text field is cut at kMaxAuditFieldBytes (the reason at
// kMaxAuditReasonBytes), the revocation ids at kMaxAuditRevocationIds, so no request can make
// a record larger than a few kilobytes.
#pragma once

#include "base/result.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace larder::gate {

// Server-side time per stage of one call, in microseconds; -1 = the stage was not reached.
// Stages follow the request path: SQL guard (lock 3, before authorization so its tables
// become facts), Biscuit verification (lock 2, cached by token hash), revocation and taint
// ledger lookups, authorization (lock 2: facts + policy), the tool body (locks 3-4: RLS
// context + query), recording the taint. `make bench` aggregates these from the audit log.
struct StageTimings {
  int64_t guard_us = -1;
  int64_t verify_us = -1;
  int64_t ledger_us = -1;
  int64_t authorize_us = -1;
  int64_t tool_us = -1;
  int64_t taint_us = -1;
};

// Microseconds since `start` on the steady clock: how each StageTimings field is measured.
inline int64_t micros_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start)
      .count();
}

// One decision. Every field is what the server knew when it decided; empty strings mean
// "not known at that point" (e.g. no certificate on a stdio connection).
struct AuditRecord {
  std::string time;                // RFC 3339 UTC, filled by append() when empty
  std::string client_cert_sha256;  // hex
  std::string client_cert_cn;
  std::string lineage;  // hex revocation id of the token's authority block
  std::vector<std::string> revocation_ids;
  std::string server_audience;
  std::string method;           // "tools/call", "resources/read", "prompts/get"
  std::string tool;             // tool name, resource URI or prompt name
  std::string sql_fingerprint;  // pg_query fingerprint, when SQL was involved
  std::optional<int64_t> rows;  // rows returned, when rows were returned
  std::string decision;         // "allow" | "deny"
  std::string lock;             // deciding lock: mtls, biscuit, policy, sql-guard, taint, database
  std::string reason;           // human sentence
  std::string taint;            // "clean" | "tainted" | "tainted-now" (this call tainted the lineage)
  StageTimings timings;         // "us": {stage: microseconds} for the stages reached
  // The server's id of the request (its log line and its result's _meta carry it too), and
  // the W3C trace id the caller sent; omitted when empty.
  std::string request_id;
  std::string trace_id;
};

nlohmann::json to_json(const AuditRecord& record);

inline constexpr std::size_t kMaxAuditFieldBytes = 256;
inline constexpr std::size_t kMaxAuditReasonBytes = 1024;
inline constexpr std::size_t kMaxAuditRevocationIds = 16;

// Where the head is anchored: writes (seq, hash of the line with that seq) for `log_id`,
// keeping the greatest seq. Called from the anchor thread only.
using AuditAnchorWriter =
    std::function<Result<void>(const std::string& log_id, uint64_t seq, const std::string& hash)>;
// Reads the anchored (seq, hash) for `log_id`; nullopt when none was ever written.
struct AuditAnchorPoint {
  uint64_t seq = 0;
  std::string hash;
};
using AuditAnchorReader = std::function<Result<std::optional<AuditAnchorPoint>>(const std::string& log_id)>;

// The id a log is anchored under: "<audience>@<host>:<absolute path>", unless configured.
std::string default_audit_anchor_id(const std::string& audience, const std::string& path);

struct AuditLogOptions {
  // fdatasync() every append before returning (durable against power loss, slower).
  bool sync = false;
  // Rotate before an append would take the active file past this size; 0 = never.
  uint64_t rotate_bytes = 0;
  // Rotate when the active file's first record is this old; 0 = never.
  std::chrono::seconds rotate_interval{0};
  // Retention, at each rotation: keep at most this many rotated files (0 = all) ...
  uint64_t keep_files = 0;
  // ... and none whose last write is older than this (0 = no age limit).
  std::chrono::seconds keep_age{0};
  // The wall clock (record times, rotate_interval, keep_age); tests set their own.
  std::function<std::chrono::system_clock::time_point()> clock;
  // Called with each record's line (no newline) once it is written, in chain order, under
  // the log's lock: a copy elsewhere (AuditSyslog). It cannot refuse the record.
  std::function<void(const std::string& line)> on_record;
};

// [audit]: where the log is, how it is kept (rotation, retention), where its head is anchored
// and the copy to syslog — what a server opens its log with (AuditLog::open, set_anchor,
// AuditSyslog).
struct AuditOptions {
  std::string path = ".larder/audit.jsonl";
  AuditLogOptions log;
  // The head is anchored in PostgreSQL (larder_gate.audit_anchors) under this id; empty =
  // default_audit_anchor_id(audience, path). Calls are refused while the anchor cannot be
  // written for longer than anchor_max_lag (fail closed); at most one anchor write per
  // anchor_interval (records appended meanwhile share it).
  std::string anchor_id;
  std::chrono::milliseconds anchor_max_lag{5000};
  std::chrono::milliseconds anchor_interval{100};
  // Each record also to the syslog daemon's socket, facility authpriv (AuditSyslog).
  bool syslog = false;
  std::string syslog_socket = "/dev/log";
};

// The name a rotated file whose first record is `first_seq` gets: "<path>.<20 digits>".
std::string rotated_audit_file(const std::string& path, uint64_t first_seq);
// The rotated files of the log at `path`, oldest first: (first seq from the name, path).
std::vector<std::pair<uint64_t, std::string>> rotated_audit_files(const std::string& path);
// `larder audit verify <dir or log>`: a directory holding one log family gives that log's
// active path; a path is returned as it is. Several families in one directory: an error
// naming them.
Result<std::string> resolve_audit_log_path(const std::string& dir_or_path);

// Where gate::Pipeline writes its decisions. AuditLog is the one production implementation;
// the pipeline's unit tests stand in for it with sinks that fail (a full disk, an anchor
// that lags: failures a real log cannot be made to show on demand).
class AuditSink {
 public:
  virtual ~AuditSink() = default;
  // Writes one record; an error means it was not written (see AuditLog::append).
  virtual Result<void> append(AuditRecord record) = 0;
};

class AuditLog final : public AuditSink {
 public:
  // Opens (creating if needed, mode 0600) the log at `path`. `sync` makes every append
  // fdatasync() before returning (durable against power loss, slower).
  static Result<std::unique_ptr<AuditLog>> open(std::string path, bool sync = false);
  static Result<std::unique_ptr<AuditLog>> open(std::string path, AuditLogOptions options);
  ~AuditLog();
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends one record; thread-safe and safe across processes sharing the file. Fails when
  // the file cannot be written, or when an anchor is set and has been unreachable for more
  // than its max_lag (the record is then not written).
  Result<void> append(AuditRecord record) override;

  // Starts anchoring the head under `log_id` (at once, then after appends). Call once.
  // At most one anchor write per `interval`: records appended meanwhile share the next write,
  // so a busy server costs PostgreSQL a few writes per second, not one per record.
  void set_anchor(std::string log_id, AuditAnchorWriter writer, std::chrono::milliseconds max_lag,
                  std::chrono::milliseconds interval);
  // Waits until the anchor holds the current head or `timeout` passes; true when it does.
  bool flush_anchor(std::chrono::milliseconds timeout);
  // Forces the records written so far to disk (fdatasync), whatever `sync` said: at a stop.
  Result<void> sync();

  const std::string& path() const { return path_; }

  // Called after every record that was written (the record, and the bytes its line took),
  // on the appending thread: metrics. Set before the first append; must not append itself.
  using Observer = std::function<void(const AuditRecord& record, std::size_t bytes)>;
  void set_observer(Observer observer) { observer_ = std::move(observer); }

  // The last record's (seq, hash) as the file holds it now (re-read under the file lock, so
  // records other processes appended count). Compared with the anchor at start: an anchor
  // ahead of it, or another record at its seq, is another log under the same anchor id.
  Result<AuditAnchorPoint> current_head();

 private:
  AuditLog(std::string path, AuditLogOptions options);
  // The cross-process lock (flock on the head file, reopened when the file was replaced).
  Result<void> lock_file();
  void unlock_file();
  // Under the lock: reopens the active file when another writer rotated it, re-reads the
  // tail when another writer appended.
  Result<void> follow_locked();
  Result<void> load_tail_locked();
  Result<void> write_head_locked();
  // Appends `body` (a JSON object without its closing brace) with the chain fields.
  Result<void> write_locked(const std::string& body);
  // append() under the locks: rotation, retention, the record; `bytes` = what its line took.
  Result<void> append_body(const std::string& body, std::chrono::system_clock::time_point at,
                           std::size_t& bytes);
  Result<void> rotate_locked();
  Result<void> prune_locked(std::chrono::system_clock::time_point now);
  std::chrono::system_clock::time_point now() const;

  void anchor_loop();

  std::string path_;
  Observer observer_;
  AuditLogOptions options_;
  int fd_ = -1;       // the active file (O_APPEND)
  int head_fd_ = -1;  // <path>.head, rewritten in place on every append; the lock
  std::mutex mutex_;
  uint64_t seq_ = 0;
  std::string last_hash_;
  off_t known_size_ = -1;
  uint64_t active_first_seq_ = 0;                                      // 0: the active file is empty
  std::optional<std::chrono::system_clock::time_point> active_since_;  // its first record's time
  bool rotation_failing_ = false;

  // The anchor (see the header comment): guarded by anchor_mu_.
  std::mutex anchor_mu_;
  std::condition_variable anchor_cv_;
  std::string anchor_id_;
  AuditAnchorWriter anchor_writer_;
  std::chrono::milliseconds anchor_max_lag_{0};
  std::chrono::milliseconds anchor_interval_{0};
  uint64_t head_seq_ = 0;  // the newest head, for the anchor thread
  std::string head_hash_;
  uint64_t anchored_seq_ = 0;                                 // the newest head the anchor holds
  std::chrono::steady_clock::time_point unanchored_since_{};  // first append not yet anchored
  bool anchor_stop_ = false;
  std::thread anchor_thread_;
};

struct AuditVerification {
  bool ok = false;
  uint64_t records = 0;
  uint64_t files = 0;      // rotated files and the active file checked
  uint64_t first_seq = 0;  // the oldest record present (> 1: retention pruned the ones before)
  uint64_t last_seq = 0;
  // When first_seq > 1: the retention record (its seq) that says the records before were
  // deleted by retention. Checked against the anchor: only an anchored one counts.
  uint64_t retention_seq = 0;
  std::string problem;  // first problem found, with the line number
  // Set when the check could not be made at all — the log cannot be read, its anchor cannot
  // be fetched (file.unreadable, db.unavailable): no evidence of tampering either way.
  std::optional<Error> not_checked;
};

// Re-reads the whole log — every rotated file in order, then the active file — and its head
// file, and checks every link of the chain, the files' names and the retention boundary.
// `path`: the active file's path, or a directory holding one log.
AuditVerification verify_audit_log(const std::string& path);

// verify_audit_log, then the anchor: the log must hold the anchored record, unchanged.
AuditVerification verify_audit_log(const std::string& path, const std::string& log_id,
                                   const AuditAnchorReader& anchor);

}  // namespace larder::gate
