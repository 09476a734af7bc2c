#include "weir/jobmanager/job_manager.h"

#include <algorithm>
#include <random>

#include "weir/logging.h"

namespace weir::jm {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto logger = ModuleLogger("jobmanager");
  return logger;
}

std::string RandomHex(int bytes) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < bytes; ++i) {
    auto b = static_cast<uint8_t>(rng());
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

}  // namespace

JobManager::JobManager(JobManagerOptions options, std::unique_ptr<TaskManagerGateway> gateway,
                       Clock clock, Executor executor, const OperatorRegistry* registry)
    : options_(options),
      gateway_(std::move(gateway)),
      clock_(std::move(clock)),
      executor_(std::move(executor)),
      registry_(registry),
      session_(RandomHex(8)) {}

proto::RegisterTaskManagerResponse JobManager::RegisterTaskManager(
    const proto::RegisterTaskManagerRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tms_.find(req.tm_id());
  if (it != tms_.end()) {
    // A task manager that restarted under the same id: its old tasks are gone.
    for (auto& [id, job] : jobs_) {
      if (IsTerminal(job->state)) continue;
      for (const auto& st : job->subtasks) {
        if (st.tm_id == req.tm_id() && !IsTerminal(st.state)) {
          FailJobLocked(*job, "task manager " + req.tm_id() + " restarted");
          break;
        }
      }
    }
  }
  TaskManagerEntry& e = tms_[req.tm_id()];
  e.info = req;
  e.last_heartbeat_ms = clock_();
  e.free_slots = req.slots();
  for (auto& [id, job] : jobs_) {
    auto held = job->slots_held.find(req.tm_id());
    if (held != job->slots_held.end()) e.free_slots -= held->second;
  }
  Log()->info("task manager {} registered: rpc={} data={} slots={}", req.tm_id(),
              req.rpc_address(), req.data_address(), req.slots());
  for (const auto& id : job_order_) {
    Job& job = *jobs_[id];
    if (job.state == JobState::kCreated) TryScheduleLocked(job);
  }
  proto::RegisterTaskManagerResponse resp;
  resp.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  resp.set_jm_session(session_);
  return resp;
}

proto::HeartbeatResponse JobManager::Heartbeat(const proto::HeartbeatRequest& req) {
  std::lock_guard<std::mutex> lock(mu_);
  proto::HeartbeatResponse resp;
  auto it = tms_.find(req.tm_id());
  if (it == tms_.end()) {
    resp.set_known(false);
    return resp;
  }
  it->second.last_heartbeat_ms = clock_();
  resp.set_known(true);
  return resp;
}

void JobManager::UpdateTaskState(const proto::TaskStateUpdate& u) {
  std::lock_guard<std::mutex> lock(mu_);
  auto jit = jobs_.find(u.job_id());
  if (jit == jobs_.end()) return;
  Job& job = *jit->second;
  if (u.attempt() != job.attempt) return;  // a report from an earlier attempt
  auto to = ParseTaskState(u.state());
  if (!to) {
    Log()->warn("job={} ignoring unknown task state '{}'", job.id, u.state());
    return;
  }
  for (Subtask& st : job.subtasks) {
    if (st.task_id != u.task_id() || st.index != u.subtask()) continue;
    st.records_in = u.records_in();
    st.records_out = u.records_out();
    if (*to == TaskState::kFailed) {
      if (!u.error().empty()) st.error = u.error();
      // A subtask cut off because its consumer stopped reports a CANCELLED error: a secondary
      // failure. The first root cause of the attempt names the job's failure, even when it
      // arrives after the job already failed on a secondary one.
      const bool secondary = u.error().rfind("CANCELLED:", 0) == 0;
      const std::string cause = "vertex '" + st.task_id + "' subtask " +
                                std::to_string(st.index) + " failed: " + u.error();
      if (job.state == JobState::kFailed && !job.root_cause_known && !secondary) {
        job.failure = cause;
        job.root_cause_known = true;
      } else if (!IsTerminal(job.state) && job.state != JobState::kCancelling) {
        FailJobLocked(job, cause);
        job.root_cause_known = !secondary;
      }
    }
    if (st.state == *to) return;
    // Reports can skip intermediate states (e.g. DEPLOYING -> FAILED); terminal states stay.
    if (IsTerminal(st.state)) return;
    st.state = *to;
    Log()->info("job={} vertex={} subtask={} -> {}", job.id, st.task_id, st.index,
                TaskStateName(*to));
    MaybeCompleteLocked(job);
    return;
  }
}

Result<std::string> JobManager::SubmitJob(const proto::JobGraph& graph,
                                          const std::string& restore_path,
                                          bool allow_non_restored_state) {
  WEIR_ASSIGN_OR_RETURN(JobSpec spec, FromProto(graph));
  WEIR_ASSIGN_OR_RETURN(ExecutionPlan plan, BuildPlan(std::move(spec), *registry_));
  WEIR_ASSIGN_OR_RETURN(CheckpointSettings settings,
                        SettingsFor(graph.checkpointing(), options_.checkpoints));
  auto job = std::make_unique<Job>();
  job->checkpoint_settings = settings;
  if (!restore_path.empty()) {
    WEIR_ASSIGN_OR_RETURN(proto::CheckpointMetadata md, ReadMetadata(restore_path));
    WEIR_ASSIGN_OR_RETURN(job->restore,
                          PlanRestore(md, restore_path, plan, allow_non_restored_state));
    job->restored_from = restore_path + " (checkpoint " + std::to_string(md.checkpoint_id()) + ")";
    job->next_checkpoint_id = md.checkpoint_id() + 1;
  }
  std::lock_guard<std::mutex> lock(mu_);
  job->id = RandomHex(8) + std::to_string(++job_counter_);
  job->graph = graph;
  job->plan = std::make_shared<const ExecutionPlan>(std::move(plan));
  job->submit_ms = clock_();
  for (const TaskPlan& t : job->plan->tasks) {
    for (int i = 0; i < t.parallelism; ++i) {
      Subtask st;
      st.task_id = t.id;
      st.index = i;
      job->subtasks.push_back(std::move(st));
    }
  }
  Job& ref = *job;
  jobs_[job->id] = std::move(job);
  job_order_.push_back(ref.id);
  Log()->info("job={} submitted: '{}', {} tasks, {} subtasks, needs {} slots", ref.id,
              ref.graph.name(), ref.plan->tasks.size(), ref.subtasks.size(),
              ref.plan->SlotsNeeded());
  TryScheduleLocked(ref);
  return ref.id;
}

int JobManager::FreeSlotsLocked() const {
  int n = 0;
  for (const auto& [id, tm] : tms_) n += tm.free_slots;
  return n;
}

void JobManager::TryScheduleLocked(Job& job) {
  const int need = job.plan->SlotsNeeded();
  const int free = FreeSlotsLocked();
  if (free < need) {
    int total = 0;
    for (const auto& [id, tm] : tms_) total += tm.info.slots();
    job.failure = "waiting for slots: needs " + std::to_string(need) + ", " +
                  std::to_string(free) + " free of " + std::to_string(total) + " in " +
                  std::to_string(tms_.size()) + " task manager(s)";
    return;
  }
  // Spread: repeatedly take a slot from the task manager with the most free slots.
  std::vector<std::string> slot_tm;
  std::map<std::string, int> free_of;
  for (const auto& [id, tm] : tms_) free_of[id] = tm.free_slots;
  for (int s = 0; s < need; ++s) {
    auto best = std::max_element(free_of.begin(), free_of.end(),
                                 [](const auto& a, const auto& b) { return a.second < b.second; });
    slot_tm.push_back(best->first);
    --best->second;
  }
  for (const auto& tm : slot_tm) {
    --tms_[tm].free_slots;
    ++job.slots_held[tm];
  }
  job.failure.clear();
  for (Subtask& st : job.subtasks) {
    st.tm_id = slot_tm[st.index];
    st.state = TaskState::kDeploying;
    st.error.clear();
  }
  TransitionLocked(job, JobState::kRunning, "");
  // Every deployment carries the locations of all subtasks so peers can open channels.
  proto::DeployTaskRequest base;
  base.set_job_id(job.id);
  base.set_attempt(job.attempt);
  *base.mutable_graph() = job.graph;
  base.set_state_backend(job.graph.state_backend().empty() ? "rocksdb" : job.graph.state_backend());
  for (const Subtask& st : job.subtasks) {
    auto* loc = base.add_locations();
    loc->set_task_id(st.task_id);
    loc->set_subtask(st.index);
    loc->set_tm_id(st.tm_id);
    loc->set_data_address(tms_[st.tm_id].info.data_address());
  }
  for (const Subtask& st : job.subtasks) {
    proto::DeployTaskRequest req = base;
    req.set_task_id(st.task_id);
    req.set_subtask(st.index);
    auto rit = job.restore.find({st.task_id, st.index});
    if (rit != job.restore.end()) *req.mutable_restore() = rit->second;
    const std::string addr = tms_[st.tm_id].info.rpc_address();
    const std::string job_id = job.id;
    const int attempt = job.attempt;
    const std::string task_id = st.task_id;
    const int index = st.index;
    executor_([this, addr, req = std::move(req), job_id, attempt, task_id, index] {
      Status s = gateway_->DeployTask(addr, req);
      if (!s.ok()) {
        proto::TaskStateUpdate u;
        u.set_job_id(job_id);
        u.set_attempt(attempt);
        u.set_task_id(task_id);
        u.set_subtask(index);
        u.set_state(TaskStateName(TaskState::kFailed));
        u.set_error("deployment to " + addr + " failed: " + s.message());
        UpdateTaskState(u);
      }
    });
  }
  Log()->info("job={} scheduled onto {} slot(s)", job.id, need);
  Job* jp = &job;
  job.coordinator = std::make_unique<CheckpointCoordinator>(
      job.id, job.attempt, job.checkpoint_settings, job.plan, job.graph, clock_, executor_,
      gateway_.get(),
      [this, jp](const std::string& task, int sub) -> std::string {
        // Called under mu_ (the coordinator only runs under it).
        for (const Subtask& st : jp->subtasks) {
          if (st.task_id == task && st.index == sub) {
            auto it = tms_.find(st.tm_id);
            return it == tms_.end() ? "" : it->second.info.rpc_address();
          }
        }
        return "";
      },
      job.next_checkpoint_id);
}

void JobManager::EndCheckpointingLocked(Job& job, const std::string& reason) {
  if (!job.coordinator) return;
  job.coordinator->Shutdown(reason);
  job.last_stats = job.coordinator->Stats();
  job.next_checkpoint_id = std::max(job.next_checkpoint_id, job.coordinator->last_completed_id() + 1);
  job.coordinator.reset();
}

void JobManager::AcknowledgeCheckpoint(const proto::AcknowledgeCheckpointRequest& ack) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(ack.job_id());
  if (it == jobs_.end() || !it->second->coordinator) return;
  if (auto fail = it->second->coordinator->Acknowledge(ack)) FailJobLocked(*it->second, *fail);
}

void JobManager::DeclineCheckpoint(const proto::DeclineCheckpointRequest& d) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(d.job_id());
  if (it == jobs_.end() || !it->second->coordinator) return;
  if (auto fail = it->second->coordinator->Decline(d)) FailJobLocked(*it->second, *fail);
}

void JobManager::TriggerSavepoint(const proto::SavepointRequest& req,
                                  CheckpointCoordinator::SavepointDone done) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(req.job_id());
  if (it == jobs_.end()) {
    executor_([done, id = req.job_id()] { done(Status::NotFound("no job with id '" + id + "'")); });
    return;
  }
  Job& job = *it->second;
  if (job.state != JobState::kRunning || !job.coordinator) {
    executor_([done, st = std::string(JobStateName(job.state))] {
      done(Status::FailedPrecondition("a savepoint needs a RUNNING job; this one is " + st));
    });
    return;
  }
  const std::string parent = req.directory().empty() ? options_.savepoint_dir : req.directory();
  if (parent.empty()) {
    executor_([done] {
      done(Status::InvalidArgument("no savepoint directory: pass --dir or configure "
                                   "jobmanager.savepoint_dir"));
    });
    return;
  }
  const std::string job_id = job.id;
  const bool stop = req.stop();
  job.coordinator->RequestSavepoint(parent, [this, job_id, stop, done](
                                                Result<proto::SavepointResponse> r) {
    if (r.ok() && stop) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it != jobs_.end() && it->second->state == JobState::kRunning) {
        Job& j = *it->second;
        j.stop_after_savepoint = true;
        TransitionLocked(j, JobState::kCancelling, "stopped with savepoint " + r->path());
        EndCheckpointingLocked(j, "job stopping");
        CancelTasksLocked(j);
        MaybeCompleteLocked(j);
      }
    }
    done(std::move(r));
  });
}

bool JobManager::TransitionLocked(Job& job, JobState to, const std::string& why) {
  if (!CanTransition(job.state, to)) {
    Log()->error("job={} illegal transition {} -> {}", job.id, JobStateName(job.state),
                 JobStateName(to));
    return false;
  }
  Log()->info("job={} {} -> {}{}", job.id, JobStateName(job.state), JobStateName(to),
              why.empty() ? "" : ": " + why);
  job.state = to;
  if (IsTerminal(to)) {
    job.end_ms = clock_();
    EndCheckpointingLocked(job, std::string("job ") + JobStateName(to));
    ReleaseSlotsLocked(job);
  }
  return true;
}

void JobManager::ReleaseSlotsLocked(Job& job) {
  for (const auto& [tm, n] : job.slots_held) {
    auto it = tms_.find(tm);
    if (it != tms_.end()) it->second.free_slots += n;
  }
  job.slots_held.clear();
  // Freed slots may let a waiting job start.
  for (const auto& id : job_order_) {
    Job& other = *jobs_[id];
    if (&other != &job && other.state == JobState::kCreated) TryScheduleLocked(other);
  }
}

void JobManager::CancelTasksLocked(Job& job) {
  std::vector<std::string> addrs;
  for (const auto& [tm, n] : job.slots_held) {
    auto it = tms_.find(tm);
    if (it != tms_.end()) addrs.push_back(it->second.info.rpc_address());
  }
  for (const auto& addr : addrs) {
    executor_([this, addr, id = job.id, attempt = job.attempt] {
      Status s = gateway_->CancelJobTasks(addr, id, attempt);
      if (!s.ok()) Log()->warn("job={} cancel at {} failed: {}", id, addr, s.ToString());
    });
  }
}

void JobManager::FailJobLocked(Job& job, const std::string& cause) {
  if (IsTerminal(job.state)) return;
  EndCheckpointingLocked(job, "job failed");
  job.failure = cause;
  job.root_cause_known = true;
  CancelTasksLocked(job);
  for (Subtask& st : job.subtasks) {
    if (!IsTerminal(st.state)) st.state = TaskState::kCanceled;
  }
  TransitionLocked(job, JobState::kFailed, cause);
}

void JobManager::MaybeCompleteLocked(Job& job) {
  bool all_terminal = true, all_finished = true;
  for (const Subtask& st : job.subtasks) {
    all_terminal = all_terminal && IsTerminal(st.state);
    all_finished = all_finished && st.state == TaskState::kFinished;
  }
  if (job.state == JobState::kRunning && all_finished) {
    TransitionLocked(job, JobState::kFinished, "");
  } else if (job.state == JobState::kCancelling && all_terminal) {
    // Stop-with-savepoint ends FINISHED, as in Flink; a plain cancel ends CANCELED.
    TransitionLocked(job, job.stop_after_savepoint ? JobState::kFinished : JobState::kCanceled, "");
  }
}

Result<std::string> JobManager::CancelJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound("no job with id '" + job_id + "'");
  Job& job = *it->second;
  if (IsTerminal(job.state)) {
    return Status::FailedPrecondition("job " + job_id + " is already " + JobStateName(job.state));
  }
  if (job.state == JobState::kCreated) {
    TransitionLocked(job, JobState::kCanceled, "cancelled before it was scheduled");
  } else if (job.state != JobState::kCancelling) {
    TransitionLocked(job, JobState::kCancelling, "cancel requested");
    EndCheckpointingLocked(job, "job cancelled");
    CancelTasksLocked(job);
    MaybeCompleteLocked(job);
  }
  return std::string(JobStateName(job.state));
}

void JobManager::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_();
  std::vector<std::string> lost;
  for (const auto& [id, tm] : tms_) {
    if (now - tm.last_heartbeat_ms > options_.heartbeat_timeout_ms) lost.push_back(id);
  }
  for (const auto& id : lost) {
    Log()->warn("task manager {} lost: no heartbeat for {} ms", id,
                now - tms_[id].last_heartbeat_ms);
    for (auto& [jid, job] : jobs_) {
      if (IsTerminal(job->state)) continue;
      if (job->slots_held.count(id)) {
        job->slots_held.erase(id);
        if (job->state == JobState::kCancelling) {
          for (Subtask& st : job->subtasks) {
            if (st.tm_id == id && !IsTerminal(st.state)) st.state = TaskState::kCanceled;
          }
          MaybeCompleteLocked(*job);
        } else {
          FailJobLocked(*job, "task manager " + id + " lost (no heartbeat for " +
                                  std::to_string(options_.heartbeat_timeout_ms) + " ms)");
        }
      }
    }
    tms_.erase(id);
  }
  for (const auto& id : job_order_) {
    Job& job = *jobs_[id];
    if (job.state == JobState::kRunning && job.coordinator) {
      bool all_running = true;
      for (const Subtask& st : job.subtasks) all_running = all_running && st.state == TaskState::kRunning;
      if (auto fail = job.coordinator->Tick(all_running)) FailJobLocked(job, *fail);
      continue;
    }
    if (job.state != JobState::kCreated) continue;
    TryScheduleLocked(job);
    if (job.state == JobState::kCreated && now - job.submit_ms > options_.slot_wait_timeout_ms) {
      const std::string why = "not enough slots: " + job.failure.substr(job.failure.find(':') + 2) +
                              "; gave up after " +
                              std::to_string(options_.slot_wait_timeout_ms) + " ms";
      job.failure = why;
      TransitionLocked(job, JobState::kFailed, why);
    }
  }
}

proto::JobInfo JobManager::InfoLocked(const Job& job) const {
  proto::JobInfo info;
  info.set_job_id(job.id);
  info.set_name(job.graph.name());
  info.set_state(JobStateName(job.state));
  info.set_submit_time_ms(job.submit_ms);
  info.set_end_time_ms(job.end_ms);
  info.set_failure(job.failure);
  info.set_attempt(job.attempt);
  info.set_slots_needed(job.plan->SlotsNeeded());
  *info.mutable_checkpoints() = job.coordinator ? job.coordinator->Stats() : job.last_stats;
  info.set_restored_from(job.restored_from);
  for (const auto& t : job.plan->tasks) info.add_vertex_chain(job.plan->ChainDescription(t));
  for (const auto& st : job.subtasks) {
    auto* s = info.add_subtasks();
    s->set_task_id(st.task_id);
    s->set_subtask(st.index);
    s->set_state(TaskStateName(st.state));
    s->set_tm_id(st.tm_id);
    s->set_error(st.error);
    s->set_records_in(st.records_in);
    s->set_records_out(st.records_out);
  }
  return info;
}

std::vector<proto::JobInfo> JobManager::ListJobs() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<proto::JobInfo> out;
  for (const auto& id : job_order_) out.push_back(InfoLocked(*jobs_.at(id)));
  return out;
}

Result<proto::JobInfo> JobManager::GetJob(const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound("no job with id '" + job_id + "'");
  return InfoLocked(*it->second);
}

std::vector<proto::TaskManagerInfo> JobManager::ListTaskManagers() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<proto::TaskManagerInfo> out;
  for (const auto& [id, tm] : tms_) {
    proto::TaskManagerInfo i;
    i.set_tm_id(id);
    i.set_rpc_address(tm.info.rpc_address());
    i.set_data_address(tm.info.data_address());
    i.set_slots(tm.info.slots());
    i.set_free_slots(tm.free_slots);
    i.set_last_heartbeat_ms(tm.last_heartbeat_ms);
    i.set_state("REGISTERED");
    out.push_back(i);
  }
  return out;
}

}  // namespace weir::jm
