// ReplicaSet: health and replication lag of hot-standby read replicas, so that read queries
// can go to a replica that is up and fresh enough, and fall back to the primary otherwise.
//
// A probe thread (every probe_interval; one synchronous round at construction) keeps one
// persistent connection per target, reopened on failure, and bounds every round trip by
// probe_timeout (connection and statement; the targets one after another, so a round takes at
// most (1 + replicas) x probe_timeout, plus libpq's 2 s connect_timeout floor). Each round:
//   * reads the primary's pg_current_wal_lsn() and records (steady time of the request, LSN)
//     in a small ring of samples (consecutive equal LSNs share one sample, its time moved on);
//   * reads each replica's pg_is_in_recovery(), pg_last_wal_replay_lsn() and
//     pg_is_wal_replay_paused().
// Lag, without writes and without trusting any clock but our own steady clock: the time since
// the newest primary sample whose LSN the replica's replay LSN has reached — 0 when it has
// reached the newest sample. Its resolution is one probe interval (a replica that lags by a
// few milliseconds under constant writes can show up to ~probe_interval), so probe_interval
// should be well below max_lag. Behind the oldest sample in the ring, the lag is at least the
// oldest sample's age, and that is what is reported.
// pg_current_wal_lsn() is the primary's WAL *write* position: with synchronous_commit = off a
// commit is visible on the primary before its WAL is written, for up to wal_writer_delay
// (200 ms by default), so the lag can be underestimated by that much. (The insert position,
// pg_current_wal_insert_lsn(), is not a fix: after a record that ends on a page boundary, or a
// WAL switch, it points past a page header that a resting replica never replays to, and an
// idle replica would look ever more behind.)
//
// Rules (pick()):
//   * a replica is eligible when its last probe succeeded, it is in recovery, and its lag is
//     at most max_lag; eligible replicas are used round-robin; none -> the primary;
//   * a replica that is not in recovery (promoted, or a primary by mistake) is not a replica:
//     down, with last_error saying so;
//   * report_failure(i) marks replica i down until a probe of it succeeds (its probe
//     connection is reopened on the next round);
//   * when the primary cannot be reached (or has never been), the lag is unknown and replicas
//     that answer ARE used: their data is the freshest available, and refusing them would turn
//     a primary outage into a read outage too. Their Status::lag is then nullopt.
#pragma once

#include "db/availability.h"
#include "db/connection.h"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace larder::db {

// "16/B374D848" -> 0x16B374D848; nullopt when it is not an LSN ("X/Y", 1-8 hex digits each).
std::optional<std::uint64_t> parse_lsn(std::string_view text);

struct ReplicaSetOptions {
  std::chrono::milliseconds max_lag{1000};  // [database] max_replica_lag_ms
  std::chrono::milliseconds probe_interval{200};
  std::chrono::milliseconds probe_timeout{1000};
  std::shared_ptr<Availability> availability;  // optional: told about the primary's probes
};

class ReplicaSet {
 public:
  // primary: connection used only to read pg_current_wal_lsn(); replicas: one ConnParams
  // each (any role that can log in and call pg_last_wal_replay_lsn()). Runs one probe round
  // before returning, then probes in the background.
  ReplicaSet(ConnParams primary, std::vector<ConnParams> replicas, ReplicaSetOptions options);
  ~ReplicaSet();  // stops the probe thread (woken at once; a round in progress is bounded by probe_timeout)
  ReplicaSet(const ReplicaSet&) = delete;
  ReplicaSet& operator=(const ReplicaSet&) = delete;

  std::size_t size() const { return replicas_.size(); }
  // A replica to send the next read to: round-robin among eligible replicas (see above);
  // nullopt -> use the primary. Never blocks on I/O (a short mutex).
  std::optional<std::size_t> pick();
  // A request on replica i failed with a connection error: mark it down until a probe succeeds.
  void report_failure(std::size_t i);

  struct Status {
    bool up = false;  // last probe succeeded, in recovery, not reported failed since
    std::optional<std::chrono::milliseconds> lag;  // nullopt: unknown (down, or the primary unreachable)
    std::string last_error;                        // "" when up
    std::string name;                              // host:port/dbname (no password)
    bool replay_paused = false;                    // pg_is_wal_replay_paused()
  };
  std::vector<Status> status() const;  // for logs, metrics and /readyz
  // The primary as last probed: "" when reachable, else why not.
  std::string primary_error() const;
  void probe_now();  // one synchronous probe round (tests; also used at start)

 private:
  struct Sample {
    Clock::time_point time;
    std::uint64_t lsn;
  };
  struct Target {
    ConnParams params;
    PgConn conn;  // under probe_mu_
  };
  struct ReplicaState {
    bool up = false;
    bool paused = false;
    std::string last_error = "not probed yet";
    std::string name;
    // Freshness as of the last probe: caught_up (reached the newest sample), or else the time
    // of the newest sample reached (or the oldest sample's, when behind all of them).
    bool caught_up = false;
    std::optional<Clock::time_point> reached;
    // report_failure(): drop the probe connection before the next probe; `failures` counts the
    // reports, so a probe round that began before one cannot mark the replica up again.
    bool reopen = false;
    std::uint64_t failures = 0;
  };

  Result<PgResult> probe_query(Target& t, std::string_view sql);
  std::optional<std::chrono::milliseconds> lag_locked(const ReplicaState& r, Clock::time_point now) const;
  bool eligible_locked(const ReplicaState& r, Clock::time_point now) const;
  void run();

  ReplicaSetOptions options_;
  std::size_t ring_capacity_;

  std::mutex probe_mu_;  // one probe round at a time; owns the connections
  Target primary_;
  std::vector<Target> replicas_;

  mutable std::mutex mu_;  // the probe results below
  std::deque<Sample> samples_;
  bool primary_ok_ = false;
  std::string primary_error_ = "not probed yet";
  std::vector<ReplicaState> states_;
  std::size_t next_ = 0;  // round-robin cursor

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace larder::db
