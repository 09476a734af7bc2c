// The job manager's Prometheus metrics (docs/metrics.md): jobs (state, restarts, uptime),
// checkpoints (counts and the last one's duration, size and parts), reconciliation counts,
// per-vertex rates summed from the task managers' heartbeats, the cluster's task managers and
// slots, and the process. Built from JobManager's thread-safe accessors at each scrape: any
// thread may call it.
#pragma once

#include <string>

#include "weir/jobmanager/job_manager.h"

namespace weir::jm {

// The Prometheus text exposition of `jm`'s metrics, `now_ms` being the wall clock.
std::string JobManagerMetricsText(const JobManager& jm, int64_t now_ms);

}  // namespace weir::jm
