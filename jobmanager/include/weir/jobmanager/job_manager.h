// JobManager: the cluster's control logic, without any networking of its own.
//
// It keeps the task manager registry (slots, heartbeats), accepts jobs, schedules their
// subtasks onto slots (slot sharing: slot j of a job hosts subtask j of every task, slots spread
// across task managers), follows subtask state reports, and drives each job through its
// lifecycle (weir/lifecycle.h). Calls to task managers go through a TaskManagerGateway on an
// executor, one lane per task manager (one that hangs delays no other), never under the lock.
// No disk I/O happens under the lock either: checkpoint metadata, HA records, pruning and
// reading a restore point's metadata run on the executor's I/O lane (heartbeats never wait
// for a disk). Time comes from an injected clock so tests control it. Finished jobs are kept
// up to `retained_jobs`, the oldest forgotten first. All public methods are thread-safe.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <deque>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "weir.pb.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/checkpoint_coordinator.h"
#include "weir/jobmanager/gateway.h"
#include "weir/jobmanager/restart_strategy.h"
#include "weir/lifecycle.h"
#include "weir/status.h"

namespace weir::jm {

struct JobManagerOptions {
  int64_t heartbeat_interval_ms = 1000;
  int64_t heartbeat_timeout_ms = 5000;  // a silent task manager is lost after this
  int64_t slot_wait_timeout_ms = 30000;  // a job waiting for slots fails after this
  // A registering task manager's advertised RPC address must answer a Ping within this, or
  // the registration is refused (FAILED_PRECONDITION naming the address).
  int64_t registration_probe_timeout_ms = 2000;
  CheckpointSettings checkpoints;        // defaults for jobs (directory, interval, ...)
  std::string savepoint_dir;             // default parent directory of savepoints
  // High availability: jobs and their latest checkpoint are recorded here, so a restarted
  // job manager resumes them. Empty: off.
  std::string ha_dir;
  // Terminal jobs (FINISHED, CANCELED, FAILED) kept for `list` and `status`; beyond this the
  // oldest are forgotten and their memory freed.
  int retained_jobs = 100;
  // security.allowed_paths (weir/security.h): file sink outputs, a job's checkpointing.dir and
  // a savepoint request's directory must lie under one of these (weir/paths.h). Restore paths
  // are read, not written, and are not checked. Empty: any path.
  std::vector<std::string> allowed_paths;
};

using Clock = std::function<int64_t()>;  // milliseconds
// Runs work later, never inline, in order per lane (weir/executor.h).
using Executor = CheckpointCoordinator::Executor;

class JobManager {
 public:
  JobManager(JobManagerOptions options, std::unique_ptr<TaskManagerGateway> gateway, Clock clock,
             Executor executor, const OperatorRegistry* registry);

  // Dials the task manager's advertised RPC address first (without the lock): if nobody
  // answers there within registration_probe_timeout_ms, or another task manager does, the
  // registration is refused with FAILED_PRECONDITION naming the address.
  Result<proto::RegisterTaskManagerResponse> RegisterTaskManager(
      const proto::RegisterTaskManagerRequest& req);
  // The heartbeat's answer also lists the attempts in `req.attempts` that are not current
  // (fencing: the task manager cancels their tasks).
  proto::HeartbeatResponse Heartbeat(const proto::HeartbeatRequest& req);
  void UpdateTaskState(const proto::TaskStateUpdate& update);

  // Validates and accepts a job; returns its id. Nothing is kept if validation fails. With a
  // restore path (a savepoint or retained checkpoint directory), the job starts from it.
  // Validation and reading the restore point happen before the lock is taken.
  Result<std::string> SubmitJob(const proto::JobGraph& graph, const std::string& restore_path = "",
                                bool allow_non_restored_state = false);
  // By value: the caller's copy (or move) happens before the lock is taken.
  void AcknowledgeCheckpoint(proto::AcknowledgeCheckpointRequest ack);
  void DeclineCheckpoint(const proto::DeclineCheckpointRequest& decline);
  // Takes a savepoint (then stops the job if `stop`); `done` runs on the executor.
  void TriggerSavepoint(const proto::SavepointRequest& req,
                        CheckpointCoordinator::SavepointDone done);
  std::vector<proto::JobInfo> ListJobs() const;
  Result<proto::JobInfo> GetJob(const std::string& job_id) const;
  Result<JobState> CancelJob(const std::string& job_id);
  std::vector<proto::TaskManagerInfo> ListTaskManagers() const;
  // Records per second of each task over the last minutes (oldest first; one sample per
  // heartbeat interval, at most kThroughputSamples). NotFound for an unknown job.
  Result<std::vector<proto::ThroughputSample>> ThroughputHistory(const std::string& job_id) const;
  static constexpr size_t kThroughputSamples = 300;
  // Tests: jobs held in memory (running and retained finished ones).
  size_t jobs_held() const;

  // Periodic work: lost task managers, jobs waiting for slots. Call every ~100 ms.
  void Tick();
  // Resumes the jobs recorded in the HA directory (call once, before serving). Each resumes
  // from its latest checkpoint as a new attempt when task managers offer slots. Returns how
  // many; a record that cannot be read is reported and left in place.
  Result<int> RecoverJobs();
  // This job manager's session id (a new one at every start).
  const std::string& session() const { return session_; }

 private:
  struct TaskManagerEntry {
    proto::RegisterTaskManagerRequest info;
    int64_t last_heartbeat_ms = 0;
    int64_t registered_ms = 0;
    int free_slots = 0;
  };
  struct Subtask {
    std::string task_id;
    int index = 0;
    TaskState state = TaskState::kDeploying;
    std::string tm_id;
    std::string error;
    int64_t records_in = 0, records_out = 0;
    proto::SubtaskMetrics metrics;  // its task manager's latest heartbeat figures
  };
  // A job, in parts: who it is and where its lifecycle stands, then one part per concern. The
  // part a field lives in says which code owns it; all of it is guarded by mu_.
  struct Scheduling {
    std::vector<Subtask> subtasks;
    std::map<std::string, int> slots_held;  // tm id -> slots
    int64_t waiting_since_ms = 0;           // CREATED since
  };
  struct Checkpointing {
    CheckpointSettings settings;
    std::unique_ptr<CheckpointCoordinator> coordinator;  // while RUNNING
    proto::CheckpointStats last_stats;                   // kept after the attempt ends
    std::deque<CompletedCheckpoint> retained;            // handed to the next attempt
    std::string latest_dir;  // the newest completed checkpoint (the restart point)
    int64_t next_id = 1;
    int64_t reserved_ids_until = 0;  // ids below it are recorded in HA as possibly used
    bool stop_after_savepoint = false;
    // Checkpoints being made durable on the I/O lane: a restart waits for them (it must
    // restore from the newest one if it became durable).
    int finalizing = 0;
    bool persist_deferred = false;  // an HA write waits for `finalizing` to reach 0
  };
  struct Failover {
    std::unique_ptr<RestartBackoff> backoff;
    int restarts = 0;
    std::string last_failure;
    int64_t last_failure_ms = 0;
    // False while the job's `failure` holds only a secondary cause (a subtask cut off because
    // its consumer stopped); the first root cause reported in the attempt replaces it.
    bool root_cause_known = false;
    int64_t restart_at_ms = 0;       // RESTARTING: redeploy not before this
    int64_t cancel_deadline_ms = 0;  // RESTARTING: stop waiting for old subtasks after this
    std::set<std::pair<std::string, int>> old_pending;  // old-attempt subtasks not yet gone
    bool restart_planning = false;   // RESTARTING: the restore point is being read
  };
  // Where the job started from: the savepoint it was submitted with, and the restore plan of
  // the current attempt.
  struct Origin {
    std::string savepoint;
    bool allow_non_restored_state = false;
    std::map<std::pair<std::string, int>, proto::RestoreInfo> restore;
    std::string restored_from;
  };
  // What the job's observers see besides its state: throughput over the last minutes and the
  // failures of its attempts (both bounded).
  struct Monitoring {
    std::deque<proto::ThroughputSample> throughput;  // oldest first, <= kThroughputSamples
    int64_t last_sample_ms = 0;
    std::deque<proto::JobException> exceptions;  // newest first, <= kExceptionsKept
    int64_t attempt_start_ms = 0;
  };
  static constexpr size_t kExceptionsKept = 20;
  struct Job {
    std::string id;
    proto::JobGraph graph;
    std::shared_ptr<const ExecutionPlan> plan;
    JobState state = JobState::kCreated;
    int attempt = 0;
    int64_t submit_ms = 0, end_ms = 0;
    std::string failure;  // why the job failed, or why it waits
    Scheduling sched;
    Checkpointing ckpt;
    Failover failover;
    Origin origin;
    Monitoring monitor;
  };

  // All private helpers run under mu_ (except PrepareJob).
  // Lifecycle and admission.
  bool TransitionLocked(Job& job, JobState to, const std::string& why);
  // Builds a job (validation, plan, restore point): no lock, may read files.
  Result<std::unique_ptr<Job>> PrepareJob(const proto::JobGraph& graph,
                                          const std::string& restore_path,
                                          bool allow_non_restored_state, const std::string& job_id,
                                          int attempt, const std::string& resume_from,
                                          int restarts, int64_t next_checkpoint_id) const;
  std::string AddJobLocked(std::unique_ptr<Job> job);
  // Scheduling (Job::sched).
  void TryScheduleLocked(Job& job);
  // Takes the job's slots, spread over the task managers; false (and `failure` says why) if
  // there are not enough.
  bool TakeSlotsLocked(Job& job);
  // Sends every subtask's DeployTask on its task manager's lane.
  void DeployLocked(Job& job);
  // A DeployTask's outcome (on the task manager's lane, without the lock).
  void OnDeployed(const std::string& addr, const std::string& tm,
                  const proto::DeployTaskRequest& req, const Status& s);
  // Checkpointing of a job that just went RUNNING.
  void StartCoordinatorLocked(Job& job);
  void ReleaseSlotsLocked(Job& job);
  void CancelTasksLocked(Job& job);
  void MaybeCompleteLocked(Job& job);
  // Checkpointing (Job::ckpt).
  // `fence`: the attempt is being replaced or failed; queued triggers and notifications of
  // its coordinator are dropped (CheckpointCoordinator::Fence).
  void EndCheckpointingLocked(Job& job, const std::string& reason, bool fence = false);
  void NoteCheckpointLocked(Job& job);
  // The outcome of a checkpoint's finalization (on the I/O lane), under the lock.
  void OnFinalizedLocked(Job& job, int attempt, const std::shared_ptr<Finalizing>& f,
                         const Status& st);
  // Records the job for HA (or removes its record once terminal) on the I/O lane.
  void PersistLocked(Job& job);
  // The write (for the I/O lane) of the job's HA record naming `latest_checkpoint`, with ids
  // reserved ahead of `next_id`.
  std::function<Status()> HaWriteLocked(Job& job, const std::string& latest_checkpoint,
                                        int64_t next_id);
  // Failover (Job::failover).
  void FailJobLocked(Job& job, const std::string& cause, bool root_cause = true);
  void NoteExceptionLocked(Job& job, const std::string& cause, bool root_cause);
  // Live figures: a heartbeat's subtask reports, and a throughput sample per interval.
  void ApplyMetricsLocked(const proto::HeartbeatRequest& req);
  void SampleThroughputLocked(Job& job, int64_t now);
  // A failure of the current attempt: restart it (per its restart strategy) or fail the job.
  void HandleFailureLocked(Job& job, const std::string& cause, bool root_cause);
  // Redeploys a RESTARTING job as a new attempt from its latest checkpoint.
  void RestartLocked(Job& job);
  // Redeploys once the restore plan (read on the I/O lane) is known.
  void FinishRestartLocked(Job& job, const std::string& from,
                           Result<proto::CheckpointMetadata> md,
                           Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>> plan);
  // The task manager is gone (silent, unreachable or restarted): forget it, fail over its jobs.
  void LoseTaskManagerLocked(const std::string& tm_id, const std::string& reason);
  void EvictFinishedJobsLocked();
  void Rpc(const std::string& tm_rpc_address, std::function<void()> fn) {
    executor_(TaskManagerLane(tm_rpc_address), std::move(fn));
  }
  proto::JobInfo InfoLocked(const Job& job) const;
  int FreeSlotsLocked() const;

  const JobManagerOptions options_;
  std::unique_ptr<TaskManagerGateway> gateway_;
  Clock clock_;
  Executor executor_;
  const OperatorRegistry* registry_;
  std::string session_;

  mutable std::mutex mu_;
  std::map<std::string, TaskManagerEntry> tms_;
  std::map<std::string, std::unique_ptr<Job>> jobs_;
  std::vector<std::string> job_order_;
  uint64_t job_counter_ = 0;
  bool evict_pending_ = false;  // a job ended: Tick() applies retained_jobs
};

}  // namespace weir::jm
