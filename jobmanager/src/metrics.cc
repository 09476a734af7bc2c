#include "weir/jobmanager/metrics.h"

#include <map>

#include "weir/prometheus_families.h"

namespace weir::jm {
namespace {

void AddCheckpointMetrics(FamilyBuilder& b, const MetricLabels& l, const proto::CheckpointStats& c) {
  b.Counter("weir_job_checkpoints_completed_total", "Completed checkpoints of the job", l,
            static_cast<double>(c.completed()));
  b.Counter("weir_job_checkpoints_failed_total", "Failed checkpoints of the job", l,
            static_cast<double>(c.failed()));
  b.Gauge("weir_job_checkpoints_in_progress", "Checkpoints in progress", l,
          static_cast<double>(c.in_progress()));
  if (!c.has_latest_completed()) return;
  const proto::CheckpointSummary& s = c.latest_completed();
  b.Gauge("weir_job_last_checkpoint_id", "Id of the latest completed checkpoint", l,
          static_cast<double>(s.id()));
  b.Gauge("weir_job_last_checkpoint_timestamp_seconds",
          "When the latest completed checkpoint was triggered (epoch seconds)", l,
          static_cast<double>(s.trigger_time_ms()) / 1000.0);
  b.Gauge("weir_job_last_checkpoint_duration_seconds",
          "Trigger to durable metadata, latest completed checkpoint", l,
          static_cast<double>(s.duration_ms()) / 1000.0);
  b.Gauge("weir_job_last_checkpoint_size_bytes", "State referenced by the latest checkpoint", l,
          static_cast<double>(s.state_size()));
  b.Gauge("weir_job_last_checkpoint_incremental_size_bytes",
          "State uploaded by the latest checkpoint", l, static_cast<double>(s.incremental_size()));
  b.Gauge("weir_job_last_checkpoint_alignment_seconds",
          "Longest barrier alignment of the latest checkpoint", l,
          static_cast<double>(s.alignment_ms()) / 1000.0);
  b.Gauge("weir_job_last_checkpoint_sync_seconds",
          "Longest synchronous part of the latest checkpoint", l,
          static_cast<double>(s.sync_ms()) / 1000.0);
  b.Gauge("weir_job_last_checkpoint_async_seconds",
          "Longest asynchronous part (uploads) of the latest checkpoint", l,
          static_cast<double>(s.async_ms()) / 1000.0);
  for (const auto& [kind, n] : s.counts()) {
    MetricLabels kl = l;
    kl.push_back({"kind", kind});
    b.Gauge("weir_job_checkpointed_records",
            "Reconciliation counts at the latest checkpoint's barrier (read, committed, late, "
            "dirty, filtered)",
            kl, static_cast<double>(n));
  }
}

void AddJobMetrics(FamilyBuilder& b, const proto::JobInfo& j, int64_t now_ms) {
  const MetricLabels l{{"job", j.job_id()}};
  MetricLabels sl{{"job", j.job_id()}, {"name", j.name()},
                  {"state", proto::JobInfo::State_Name(j.state())}};
  b.Gauge("weir_job_status", "1 for the job's current state (label state)", sl, 1);
  b.Counter("weir_job_restarts_total", "Restarts of the job (failovers)", l, j.restarts());
  const bool running = j.state() == proto::JobInfo::RUNNING;
  b.Gauge("weir_job_uptime_seconds", "Seconds since the job was submitted, while it runs", l,
          running ? static_cast<double>(now_ms - j.submit_time_ms()) / 1000.0 : 0.0);
  b.Gauge("weir_job_attempt_uptime_seconds",
          "Seconds since the current attempt was deployed, while it runs", l,
          running && j.attempt_start_time_ms() > 0
              ? static_cast<double>(now_ms - j.attempt_start_time_ms()) / 1000.0
              : 0.0);
  AddCheckpointMetrics(b, l, j.checkpoints());
  if (!running) return;
  std::map<std::string, std::pair<double, double>> rates;  // task -> (in, out)
  std::map<std::string, double> bp, busy;
  for (const auto& s : j.subtasks()) {
    auto& r = rates[s.task_id()];
    r.first += s.metrics().records_in_per_second();
    r.second += s.metrics().records_out_per_second();
    bp[s.task_id()] = std::max(bp[s.task_id()], s.metrics().backpressured_ms_per_second());
    busy[s.task_id()] = std::max(busy[s.task_id()], s.metrics().busy_ms_per_second());
  }
  for (const auto& [task, r] : rates) {
    const MetricLabels vl{{"job", j.job_id()}, {"vertex", task}};
    b.Gauge("weir_vertex_records_in_per_second", "Records in per second, summed over subtasks",
            vl, r.first);
    b.Gauge("weir_vertex_records_out_per_second", "Records out per second, summed over subtasks",
            vl, r.second);
    b.Gauge("weir_vertex_max_busy_time_ms_per_second", "Busiest subtask's busy ms per second",
            vl, busy[task]);
    b.Gauge("weir_vertex_max_backpressured_time_ms_per_second",
            "Most back-pressured subtask's ms per second", vl, bp[task]);
  }
}

}  // namespace

std::string JobManagerMetricsText(const JobManager& jm, int64_t now_ms) {
  FamilyBuilder b;
  AddProcessMetrics(b, {{"component", "jobmanager"}});
  const std::vector<proto::TaskManagerInfo> tms = jm.ListTaskManagers();
  int slots = 0, free = 0;
  for (const auto& t : tms) {
    slots += t.slots();
    free += t.free_slots();
  }
  b.Gauge("weir_jobmanager_taskmanagers", "Registered task managers", {},
          static_cast<double>(tms.size()));
  b.Gauge("weir_jobmanager_slots_total", "Slots of all registered task managers", {}, slots);
  b.Gauge("weir_jobmanager_slots_available", "Free slots", {}, free);
  std::map<std::string, int> by_state;
  const std::vector<proto::JobInfo> jobs = jm.ListJobs();
  for (const auto& j : jobs) {
    ++by_state[proto::JobInfo::State_Name(j.state())];
    AddJobMetrics(b, j, now_ms);
  }
  for (const auto& [state, count] : by_state) {
    b.Gauge("weir_jobmanager_jobs", "Jobs held by the job manager, by state", {{"state", state}},
            count);
  }
  return PrometheusText(b.Take());
}

}  // namespace weir::jm
