#include "db/availability.h"

#include <spdlog/spdlog.h>

namespace larder::db {

bool is_unavailable(const Error& e) {
  return e.code == "db.unavailable" || e.code == "db.auth";
}

Availability::Availability(std::string name) : name_(std::move(name)) {}

void Availability::failed(const Error& cause) {
  if (down_.exchange(true, std::memory_order_acq_rel)) return;  // already down: said once
  spdlog::warn("{}: PostgreSQL is unreachable; calls are refused (lock database) until it is back: {} [{}]",
               name_, cause.message, cause.code);
}

void Availability::succeeded() {
  if (!down_.load(std::memory_order_acquire)) return;  // the common case: no write
  if (!down_.exchange(false, std::memory_order_acq_rel)) return;
  spdlog::info("{}: PostgreSQL is reachable again; calls are served", name_);
}

}  // namespace larder::db
