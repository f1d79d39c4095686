#include "db/replica_set.h"

#include <algorithm>

namespace larder::db {

namespace {

std::optional<std::uint32_t> parse_hex32(std::string_view s) {
  if (s.empty() || s.size() > 8) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : s) {
    std::uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<std::uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<std::uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<std::uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    v = (v << 4) | d;
  }
  return v;
}

std::string target_name(const ConnParams& p) {
  return p.get("host").value_or("?") + ":" + p.get("port").value_or("5432") + "/" +
         p.get("dbname").value_or("");
}

// Consecutive samples share one entry while the primary's LSN does not move; enough entries to
// cover a few times max_lag at one sample per probe interval (bounded: a ring, not a log).
std::size_t ring_capacity(const ReplicaSetOptions& o) {
  const auto interval = std::max<std::int64_t>(1, o.probe_interval.count());
  const auto wanted =
      static_cast<std::size_t>(std::max<std::int64_t>(0, 4 * o.max_lag.count() / interval)) + 16;
  return std::min<std::size_t>(wanted, 4096);
}

}  // namespace

std::optional<std::uint64_t> parse_lsn(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto hi = parse_hex32(text.substr(0, slash));
  auto lo = parse_hex32(text.substr(slash + 1));
  if (!hi || !lo) return std::nullopt;
  return (static_cast<std::uint64_t>(*hi) << 32) | *lo;
}

ReplicaSet::ReplicaSet(ConnParams primary, std::vector<ConnParams> replicas, ReplicaSetOptions options)
    : options_(std::move(options)), ring_capacity_(ring_capacity(options_)) {
  primary_.params = std::move(primary);
  for (auto& r : replicas) {
    ReplicaState st;
    st.name = target_name(r);
    states_.push_back(std::move(st));
    replicas_.push_back(Target{std::move(r), nullptr});
  }
  probe_now();
  thread_ = std::thread([this] { run(); });
}

ReplicaSet::~ReplicaSet() {
  {
    std::lock_guard lk(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ReplicaSet::run() {
  std::unique_lock lk(stop_mu_);
  while (!stop_cv_.wait_for(lk, options_.probe_interval, [this] { return stopping_; })) {
    lk.unlock();
    probe_now();
    lk.lock();
  }
}

Result<PgResult> ReplicaSet::probe_query(Target& t, std::string_view sql) {
  // Bounded by probe_timeout; note that libpq's connect_timeout has a floor of 2 s, so opening
  // a connection to a host that drops packets can take that long.
  const auto deadline = Clock::now() + options_.probe_timeout;
  if (t.conn && !idle_connection_usable(t.conn.get())) t.conn.reset();
  if (!t.conn) {
    auto conn = t.params.connect(deadline);
    if (!conn) return conn.error();
    t.conn = std::move(*conn);
  }
  auto r = exec_params(t.conn.get(), sql, {}, deadline);
  if (!r) t.conn.reset();  // a timed-out or failed probe: start again from a fresh connection
  return r;
}

void ReplicaSet::probe_now() {
  std::lock_guard probe_lock(probe_mu_);
  const std::size_t n = replicas_.size();
  std::vector<std::uint64_t> failures_at_start(n);
  {
    std::lock_guard lk(mu_);
    for (std::size_t i = 0; i < n; ++i) {
      failures_at_start[i] = states_[i].failures;
      if (states_[i].reopen) {
        replicas_[i].conn.reset();
        states_[i].reopen = false;
      }
    }
  }

  // The primary first: the sample's time is taken before the request, so the sample claims no
  // more freshness than the primary had (its LSN is read at or after that time).
  const auto sample_time = Clock::now();
  std::optional<std::uint64_t> primary_lsn;
  std::string primary_error;
  if (auto r = probe_query(primary_, "SELECT pg_current_wal_lsn()::text"); !r) {
    primary_error = r.error().message;
    if (options_.availability && is_unavailable(r.error())) options_.availability->failed(r.error());
  } else {
    if (options_.availability) options_.availability->succeeded();
    if (PQntuples(r->get()) == 1) primary_lsn = parse_lsn(PQgetvalue(r->get(), 0, 0));
    if (!primary_lsn) primary_error = "the primary's pg_current_wal_lsn() did not return an LSN";
  }

  struct Observation {
    std::string error;  // "" when the replica answered as a replica
    std::uint64_t replay_lsn = 0;
    bool paused = false;
  };
  std::vector<Observation> seen(n);
  for (std::size_t i = 0; i < n; ++i) {
    // pg_is_wal_replay_paused() raises an error outside recovery, hence the CASEs.
    auto r = probe_query(replicas_[i],
                         "SELECT pg_is_in_recovery(), "
                         "CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()::text END, "
                         "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END");
    Observation& o = seen[i];
    if (!r) {
      o.error = r.error().message;
    } else if (PQntuples(r->get()) != 1) {
      o.error = "replica probe returned no row";
    } else if (std::string_view(PQgetvalue(r->get(), 0, 0)) != "t") {
      o.error = "not in recovery: promoted, or not a standby at all; not used as a replica";
    } else if (auto lsn = PQgetisnull(r->get(), 0, 1) ? std::nullopt : parse_lsn(PQgetvalue(r->get(), 0, 1));
               !lsn) {
      o.error = "in recovery but reports no replay position";
    } else {
      o.replay_lsn = *lsn;
      o.paused = std::string_view(PQgetvalue(r->get(), 0, 2)) == "t";
    }
  }

  std::lock_guard lk(mu_);
  primary_ok_ = primary_lsn.has_value();
  primary_error_ = primary_error;
  if (primary_lsn) {
    if (!samples_.empty() && *primary_lsn < samples_.back().lsn)
      samples_.clear();  // a new primary: start over
    if (!samples_.empty() && samples_.back().lsn == *primary_lsn) {
      samples_.back().time = sample_time;  // the newest time at which the primary was at this LSN
    } else {
      samples_.push_back(Sample{sample_time, *primary_lsn});
      while (samples_.size() > ring_capacity_) samples_.pop_front();
    }
  }
  for (std::size_t i = 0; i < n; ++i) {
    ReplicaState& st = states_[i];
    const Observation& o = seen[i];
    st.paused = o.error.empty() && o.paused;
    if (!o.error.empty()) {
      st.up = false;
      st.last_error = o.error;
      st.caught_up = false;
      st.reached.reset();
      continue;
    }
    if (st.failures != failures_at_start[i]) continue;  // reported failed during this round: stays down
    st.up = true;
    st.last_error.clear();
    st.caught_up = false;
    st.reached.reset();
    if (samples_.empty()) continue;  // lag unknown
    auto it = std::find_if(samples_.rbegin(), samples_.rend(),
                           [&](const Sample& s) { return s.lsn <= o.replay_lsn; });
    if (it == samples_.rbegin()) {
      st.caught_up = true;
      st.reached = it->time;
    } else if (it != samples_.rend()) {
      st.reached = it->time;
    } else {
      st.reached = samples_.front().time;  // behind every sample: at least this old
    }
  }
}

std::optional<std::chrono::milliseconds> ReplicaSet::lag_locked(const ReplicaState& r,
                                                                Clock::time_point now) const {
  if (!r.up || !primary_ok_ || !r.reached) return std::nullopt;
  if (r.caught_up) return std::chrono::milliseconds(0);
  return std::max(std::chrono::milliseconds(0),
                  std::chrono::duration_cast<std::chrono::milliseconds>(now - *r.reached));
}

bool ReplicaSet::eligible_locked(const ReplicaState& r, Clock::time_point now) const {
  if (!r.up) return false;
  // The primary is unreachable (or has never answered): lag is unknown, and a replica that
  // answers holds the freshest data there is — use it rather than fail reads too.
  if (!primary_ok_) return true;
  const auto lag = lag_locked(r, now);
  return lag && *lag <= options_.max_lag;
}

std::optional<std::size_t> ReplicaSet::pick() {
  const auto now = Clock::now();
  std::lock_guard lk(mu_);
  const std::size_t n = states_.size();
  for (std::size_t k = 0; k < n; ++k) {
    const std::size_t i = (next_ + k) % n;
    if (eligible_locked(states_[i], now)) {
      next_ = (i + 1) % n;
      return i;
    }
  }
  return std::nullopt;
}

void ReplicaSet::report_failure(std::size_t i) {
  std::lock_guard lk(mu_);
  if (i >= states_.size()) return;
  ReplicaState& st = states_[i];
  st.up = false;
  st.reopen = true;
  ++st.failures;
  st.last_error = "a request reported a connection failure; down until a probe succeeds";
}

std::vector<ReplicaSet::Status> ReplicaSet::status() const {
  const auto now = Clock::now();
  std::lock_guard lk(mu_);
  std::vector<Status> out;
  out.reserve(states_.size());
  for (const auto& st : states_) {
    Status s;
    s.up = st.up;
    s.lag = lag_locked(st, now);
    s.last_error = st.last_error;
    s.name = st.name;
    s.replay_paused = st.paused;
    out.push_back(std::move(s));
  }
  return out;
}

std::string ReplicaSet::primary_error() const {
  std::lock_guard lk(mu_);
  return primary_error_;
}

}  // namespace larder::db
