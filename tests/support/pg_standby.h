// PgStandby: a hot-standby replica of a running PgCluster for tests and benchmarks of read
// routing — a PgCluster started with Options::standby_of (pg_cluster.h says how), under the
// name the tests use. Its constructor returns once the standby accepts connections and
// pg_is_in_recovery() is true. It must not outlive its primary.
#pragma once

#include "support/pg_cluster.h"

namespace larder::test {

class PgStandby : public PgCluster {
 public:
  explicit PgStandby(const PgCluster& primary) : PgCluster(standby_options(primary)) {}

 private:
  static Options standby_options(const PgCluster& primary) {
    Options o;
    o.standby_of = &primary;
    return o;
  }
};

}  // namespace larder::test
