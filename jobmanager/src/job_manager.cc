#include "weir/jobmanager/job_manager.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include <openssl/rand.h>

#include "weir/logging.h"
#include "weir/paths.h"

namespace weir::jm {
namespace {

const ModuleLog Log("jobmanager");

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

Result<proto::RegisterTaskManagerResponse> JobManager::RegisterTaskManager(
    const proto::RegisterTaskManagerRequest& req) {
  // The job manager dials the address the task manager advertises (it will deploy there):
  // refused now with the reason, rather than accepted and failing every deployment later.
  // Without the lock: it waits on the network.
  Result<std::string> who =
      gateway_->Ping(req.rpc_address(), options_.registration_probe_timeout_ms);
  if (!who.ok()) {
    Log()->warn("task manager {} refused: its advertised RPC address {} does not answer: {}",
                req.tm_id(), req.rpc_address(), who.status().message());
    return Status::FailedPrecondition("task manager " + req.tm_id() +
                                      ": the job manager cannot reach its advertised RPC "
                                      "address " +
                                      req.rpc_address() + " within " +
                                      std::to_string(options_.registration_probe_timeout_ms) +
                                      " ms (" + who.status().message() +
                                      "); set taskmanager.rpc_advertise (or --rpc-advertise, "
                                      "--host) to an address the job manager can dial");
  }
  if (*who != req.tm_id()) {
    return Status::FailedPrecondition(
        "task manager " + req.tm_id() + ": its advertised RPC address " + req.rpc_address() +
        " is answered by task manager '" + *who + "'; advertise this task manager's own address");
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = tms_.find(req.tm_id());
  if (it != tms_.end()) {
    // A task manager that restarted under the same id: its old tasks are gone.
    for (auto& [id, job] : jobs_) {
      if (IsTerminal(job->state)) continue;
      for (const auto& st : job->sched.subtasks) {
        if (st.tm_id == req.tm_id() && !IsTerminal(st.state)) {
          HandleFailureLocked(*job, "task manager " + req.tm_id() + " restarted", true);
          break;
        }
      }
    }
  }
  TaskManagerEntry& e = tms_[req.tm_id()];
  e.info = req;
  e.last_heartbeat_ms = clock_();
  e.registered_ms = e.last_heartbeat_ms;
  e.free_slots = req.slots();
  for (auto& [id, job] : jobs_) {
    auto held = job->sched.slots_held.find(req.tm_id());
    if (held != job->sched.slots_held.end()) e.free_slots -= held->second;
  }
  Log()->info("task manager {} registered: rpc={} data={} slots={}", req.tm_id(),
              req.rpc_address(), req.data_address(), req.slots());
  for (const auto& id : job_order_) {
    Job& job = *jobs_[id];
    if (job.state == JobState::kCreated) TryScheduleLocked(job);
  }
  proto::RegisterTaskManagerResponse resp;
  resp.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  resp.set_heartbeat_timeout_ms(options_.heartbeat_timeout_ms);
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
  ApplyMetricsLocked(req);
  resp.set_known(true);
  // Fencing: attempts running there that are not this job manager's current ones. A task
  // manager that was cut off (and not yet declared lost, or back after it was) cancels them.
  for (const proto::AttemptRef& a : req.attempts()) {
    auto jit = jobs_.find(a.job_id());
    const bool current =
        a.jm_session() == session_ && jit != jobs_.end() && jit->second->attempt == a.attempt() &&
        (jit->second->state == JobState::kRunning || jit->second->state == JobState::kCancelling);
    if (!current) *resp.add_stale() = a;
  }
  return resp;
}

void JobManager::ApplyMetricsLocked(const proto::HeartbeatRequest& req) {
  for (const proto::SubtaskMetricsReport& r : req.metrics()) {
    auto jit = jobs_.find(r.job_id());
    if (jit == jobs_.end() || jit->second->attempt != r.attempt()) continue;
    for (Subtask& st : jit->second->sched.subtasks) {
      if (st.index != r.subtask() || st.task_id != r.task_id() || st.tm_id != req.tm_id()) continue;
      st.metrics = r.metrics();
      st.records_in = r.metrics().records_in();
      st.records_out = r.metrics().records_out();
      break;
    }
  }
}

void JobManager::SampleThroughputLocked(Job& job, int64_t now) {
  if (now - job.monitor.last_sample_ms < options_.heartbeat_interval_ms) return;
  job.monitor.last_sample_ms = now;
  proto::ThroughputSample sample;
  sample.set_time_ms(now);
  auto& in = *sample.mutable_records_in_per_second();
  auto& out = *sample.mutable_records_out_per_second();
  for (const Subtask& st : job.sched.subtasks) {
    const bool running = st.state == TaskState::kRunning;
    in[st.task_id] += running ? st.metrics.records_in_per_second() : 0;
    out[st.task_id] += running ? st.metrics.records_out_per_second() : 0;
  }
  job.monitor.throughput.push_back(std::move(sample));
  while (job.monitor.throughput.size() > kThroughputSamples) job.monitor.throughput.pop_front();
}

void JobManager::NoteExceptionLocked(Job& job, const std::string& cause, bool root_cause) {
  proto::JobException e;
  e.set_time_ms(clock_());
  e.set_cause(cause);
  e.set_root_cause(root_cause);
  e.set_attempt(job.attempt);
  job.monitor.exceptions.push_front(std::move(e));
  while (job.monitor.exceptions.size() > kExceptionsKept) job.monitor.exceptions.pop_back();
}

void JobManager::UpdateTaskState(const proto::TaskStateUpdate& u) {
  std::lock_guard<std::mutex> lock(mu_);
  auto jit = jobs_.find(u.job_id());
  if (jit == jobs_.end()) return;
  Job& job = *jit->second;
  if (u.attempt() != job.attempt) return;  // a report from an earlier attempt
  auto to = FromProto(u.state());
  if (!to) {
    Log()->warn("job={} ignoring a report without a known subtask state ({})", job.id,
                static_cast<int>(u.state()));
    return;
  }
  // A subtask cut off because its consumer stopped reports kCancelled: a secondary failure.
  const bool secondary = u.error_code() == static_cast<int>(StatusCode::kCancelled);
  for (Subtask& st : job.sched.subtasks) {
    if (st.task_id != u.task_id() || st.index != u.subtask()) continue;
    st.records_in = u.records_in();
    st.records_out = u.records_out();
    if (job.state == JobState::kRestarting) {
      // A report of the attempt being replaced: note when its subtasks are gone, and a root
      // cause that arrives after a secondary one.
      if (IsTerminal(*to)) job.failover.old_pending.erase({st.task_id, st.index});
      if (*to == TaskState::kFailed && !job.failover.root_cause_known && !secondary) {
        job.failover.last_failure = "vertex '" + st.task_id + "' subtask " + std::to_string(st.index) +
                           " failed: " + u.error();
        job.failover.root_cause_known = true;
        NoteExceptionLocked(job, job.failover.last_failure, true);
      }
      return;
    }
    if (*to == TaskState::kFailed) {
      if (!u.error().empty()) st.error = u.error();
      // A subtask cut off because its consumer stopped reports a CANCELLED error: a secondary
      // failure. The first root cause of the attempt names the job's failure, even when it
      // arrives after the job already failed on a secondary one.
      const std::string cause = "vertex '" + st.task_id + "' subtask " +
                                std::to_string(st.index) + " failed: " + u.error();
      if (job.state == JobState::kFailed && !job.failover.root_cause_known && !secondary) {
        job.failure = cause;
        job.failover.root_cause_known = true;
        NoteExceptionLocked(job, cause, true);
      } else if (!IsTerminal(job.state) && job.state != JobState::kCancelling) {
        // This subtask is gone already: failover must not wait for it.
        if (!IsTerminal(st.state)) st.state = TaskState::kFailed;
        HandleFailureLocked(job, cause, !secondary);
        if (job.state == JobState::kRestarting) return;
      }
    }
    if (*to == TaskState::kCanceled && job.state == JobState::kRunning && !IsTerminal(st.state)) {
      // Nobody asked for it (a cancel of the job changes the job's state first): e.g. a task
      // manager that cancelled its tasks after seeing a new job manager. Fail over.
      st.state = TaskState::kCanceled;
      HandleFailureLocked(job,
                          "vertex '" + st.task_id + "' subtask " + std::to_string(st.index) +
                              " was cancelled on its task manager",
                          true);
      return;
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
  // Validation and the savepoint's _metadata are read without the lock.
  WEIR_ASSIGN_OR_RETURN(auto job, PrepareJob(graph, restore_path, allow_non_restored_state, "", 0,
                                             restore_path, 0, 0));
  std::lock_guard<std::mutex> lock(mu_);
  return AddJobLocked(std::move(job));
}

// Validates and builds a job. `resume_from` (a savepoint or checkpoint directory, may be
// empty) is what its first attempt restores; `job_id` empty: a new id is given when added.
Result<std::unique_ptr<JobManager::Job>> JobManager::PrepareJob(
    const proto::JobGraph& graph, const std::string& restore_path, bool allow_non_restored_state,
    const std::string& job_id, int attempt, const std::string& resume_from, int restarts,
    int64_t next_checkpoint_id) const {
  WEIR_ASSIGN_OR_RETURN(JobSpec spec, FromProto(graph));
  WEIR_ASSIGN_OR_RETURN(ExecutionPlan plan, BuildPlan(std::move(spec), *registry_));
  WEIR_RETURN_IF_ERROR(CheckJobPaths(plan, *registry_, options_.allowed_paths));
  WEIR_ASSIGN_OR_RETURN(CheckpointSettings settings,
                        SettingsFor(graph.checkpointing(), options_.checkpoints));
  auto job = std::make_unique<Job>();
  job->ckpt.settings = settings;
  job->failover.backoff = std::make_unique<RestartBackoff>(
      graph.restart_strategy(), settings.interval_ms > 0 && !settings.directory.empty());
  job->origin.savepoint = restore_path;
  job->origin.allow_non_restored_state = allow_non_restored_state;
  job->attempt = attempt;
  job->failover.restarts = restarts;
  job->ckpt.next_id = std::max<int64_t>(1, next_checkpoint_id);
  if (!resume_from.empty()) {
    WEIR_ASSIGN_OR_RETURN(proto::CheckpointMetadata md, ReadMetadata(resume_from));
    WEIR_ASSIGN_OR_RETURN(job->origin.restore,
                          PlanRestore(md, resume_from, plan, allow_non_restored_state));
    job->origin.restored_from = resume_from + " (checkpoint " + std::to_string(md.checkpoint_id()) + ")";
    job->ckpt.next_id = std::max(job->ckpt.next_id, md.checkpoint_id() + 1);
    if (resume_from != restore_path) job->ckpt.latest_dir = resume_from;
  }
  job->id = job_id;
  job->graph = graph;
  job->plan = std::make_shared<const ExecutionPlan>(std::move(plan));
  return job;
}

std::string JobManager::AddJobLocked(std::unique_ptr<Job> job) {
  const bool recovered = !job->id.empty();
  if (!recovered) job->id = RandomHex(8) + std::to_string(++job_counter_);
  job->submit_ms = clock_();
  job->sched.waiting_since_ms = job->submit_ms;
  for (const TaskPlan& t : job->plan->tasks) {
    for (int i = 0; i < t.parallelism; ++i) {
      Subtask st;
      st.task_id = t.id;
      st.index = i;
      job->sched.subtasks.push_back(std::move(st));
    }
  }
  Job& ref = *job;
  jobs_[job->id] = std::move(job);
  job_order_.push_back(ref.id);
  Log()->info("job={} {}: '{}', {} tasks, {} subtasks, needs {} slots", ref.id,
              recovered ? "recovered" : "submitted", ref.graph.name(), ref.plan->tasks.size(),
              ref.sched.subtasks.size(), ref.plan->SlotsNeeded());
  PersistLocked(ref);
  TryScheduleLocked(ref);
  return ref.id;
}

// How far ahead checkpoint ids are reserved in the HA record: a record is written again when
// fewer than half of them are left, so ids are never reused after a job manager restart.
constexpr int64_t kIdReservation = 1000;

std::function<Status()> JobManager::HaWriteLocked(Job& job, const std::string& latest_checkpoint,
                                                  int64_t next_id) {
  job.ckpt.reserved_ids_until = std::max(job.ckpt.reserved_ids_until, next_id + kIdReservation);
  proto::HaJobRecord r;
  r.set_job_id(job.id);
  *r.mutable_graph() = job.graph;
  r.set_restore_path(job.origin.savepoint);
  r.set_allow_non_restored_state(job.origin.allow_non_restored_state);
  r.set_attempt(job.attempt);
  r.set_latest_checkpoint(latest_checkpoint);
  r.set_submit_time_ms(job.submit_ms);
  r.set_restarts(job.failover.restarts);
  r.set_next_checkpoint_id(job.ckpt.reserved_ids_until);
  return [dir = options_.ha_dir, path = options_.ha_dir + "/" + job.id + ".job",
          bytes = r.SerializeAsString()]() -> Status {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    Status st = WriteFileAtomically(path, bytes);
    return st.ok() ? st : st.WithContext("HA record");
  };
}

void JobManager::PersistLocked(Job& job) {
  if (options_.ha_dir.empty()) return;
  if (job.ckpt.finalizing > 0) {
    // A checkpoint's own record (naming it) is queued on the I/O lane; a record built now
    // would name the previous checkpoint and land after it. Written when it resolves.
    job.ckpt.persist_deferred = true;
    return;
  }
  job.ckpt.persist_deferred = false;
  const std::string path = options_.ha_dir + "/" + job.id + ".job";
  if (IsTerminal(job.state)) {
    executor_(kIoLane, [path] {
      std::error_code ec;
      std::filesystem::remove(path, ec);
      if (ec) Log()->error("cannot remove HA record {}: {}", path, ec.message());
    });
    return;
  }
  const int64_t next = job.ckpt.coordinator ? job.ckpt.coordinator->next_id() : job.ckpt.next_id;
  executor_(kIoLane, [id = job.id, write = HaWriteLocked(job, job.ckpt.latest_dir, next)] {
    Status st = write();
    if (!st.ok()) Log()->error("job={} cannot record it for HA: {}", id, st.ToString());
  });
}

Result<int> JobManager::RecoverJobs() {
  // Records are read and jobs prepared (their restore points read) without the lock.
  if (options_.ha_dir.empty()) return 0;
  std::error_code ec;
  if (!std::filesystem::exists(options_.ha_dir, ec)) return 0;
  std::vector<std::unique_ptr<Job>> jobs;
  for (const auto& e : std::filesystem::directory_iterator(options_.ha_dir, ec)) {
    if (e.path().extension() != ".job") continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    proto::HaJobRecord r;
    if (!r.ParseFromString(ss.str()) || r.job_id().empty()) {
      Log()->error("HA record {} is corrupt; left in place, job not resumed", e.path().string());
      continue;
    }
    // The next attempt number: the previous job manager's tasks (cancelled by their task
    // managers when they see the new session) can never be confused with the new ones.
    const std::string from =
        !r.latest_checkpoint().empty() ? r.latest_checkpoint() : r.restore_path();
    auto job = PrepareJob(r.graph(), r.restore_path(), r.allow_non_restored_state(), r.job_id(),
                          r.attempt() + 1, from, r.restarts(), r.next_checkpoint_id());
    if (!job.ok()) {
      Log()->error("job={} cannot be resumed: {}", r.job_id(), job.status().ToString());
      continue;
    }
    jobs.push_back(std::move(job).value());
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& j : jobs) AddJobLocked(std::move(j));
  return static_cast<int>(jobs.size());
}

int JobManager::FreeSlotsLocked() const {
  int n = 0;
  for (const auto& [id, tm] : tms_) n += tm.free_slots;
  return n;
}

void JobManager::TryScheduleLocked(Job& job) {
  // Only a CREATED job is scheduled: nothing is taken or deployed for any other.
  if (!CanTransition(job.state, JobState::kRunning)) {
    Log()->error("job={} not scheduled: it is {}, not CREATED", job.id, JobStateName(job.state));
    assert(false && "TryScheduleLocked on a job that cannot go RUNNING");
    return;
  }
  if (!TakeSlotsLocked(job)) return;
  TransitionLocked(job, JobState::kRunning, "");
  DeployLocked(job);
  Log()->info("job={} scheduled onto {} slot(s)", job.id, job.plan->SlotsNeeded());
  StartCoordinatorLocked(job);
}

bool JobManager::TakeSlotsLocked(Job& job) {
  const int need = job.plan->SlotsNeeded();
  const int free = FreeSlotsLocked();
  if (free < need) {
    int total = 0;
    for (const auto& [id, tm] : tms_) total += tm.info.slots();
    job.failure = "waiting for slots: needs " + std::to_string(need) + ", " +
                  std::to_string(free) + " free of " + std::to_string(total) + " in " +
                  std::to_string(tms_.size()) + " task manager(s)";
    return false;
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
    ++job.sched.slots_held[tm];
  }
  job.failure.clear();
  for (Subtask& st : job.sched.subtasks) {
    st.tm_id = slot_tm[st.index];
    st.state = TaskState::kDeploying;
    st.error.clear();
  }
  return true;
}

void JobManager::DeployLocked(Job& job) {
  // Every deployment carries the locations of all subtasks so peers can open channels.
  proto::DeployTaskRequest base;
  base.set_job_id(job.id);
  base.set_attempt(job.attempt);
  *base.mutable_graph() = job.graph;
  base.set_state_backend(job.graph.state_backend().empty() ? "rocksdb" : job.graph.state_backend());
  base.set_jm_session(session_);
  {
    // The attempt's channel secret (docs/data-plane.md): fresh per deployment, never logged.
    unsigned char secret[32];
    if (RAND_bytes(secret, sizeof secret) != 1) {
      // The CSPRNG is the kernel's; failing here means no entropy at all. Fail loudly rather
      // than deploy a guessable secret.
      Log()->critical("cannot draw a channel secret (RAND_bytes failed); aborting");
      std::abort();
    }
    base.set_channel_secret(std::string(reinterpret_cast<char*>(secret), sizeof secret));
  }
  job.monitor.attempt_start_ms = clock_();
  job.monitor.last_sample_ms = 0;
  for (Subtask& st : job.sched.subtasks) st.metrics.Clear();
  for (const Subtask& st : job.sched.subtasks) {
    auto* loc = base.add_locations();
    loc->set_task_id(st.task_id);
    loc->set_subtask(st.index);
    loc->set_tm_id(st.tm_id);
    loc->set_data_address(tms_[st.tm_id].info.data_address());
  }
  for (const Subtask& st : job.sched.subtasks) {
    proto::DeployTaskRequest req = base;
    req.set_task_id(st.task_id);
    req.set_subtask(st.index);
    auto rit = job.origin.restore.find({st.task_id, st.index});
    if (rit != job.origin.restore.end()) *req.mutable_restore() = rit->second;
    const std::string addr = tms_[st.tm_id].info.rpc_address();
    Rpc(addr, [this, addr, req = std::move(req), tm = st.tm_id] {
      OnDeployed(addr, tm, req, gateway_->DeployTask(addr, req));
    });
  }
}

void JobManager::OnDeployed(const std::string& addr, const std::string& tm,
                            const proto::DeployTaskRequest& req, const Status& s) {
  // Only an unreachable task manager is lost; one that answered with an error (it refused the
  // graph, say) is alive: that subtask fails and the job fails over.
  if (IsUnreachable(s)) {
    std::lock_guard<std::mutex> lock(mu_);
    auto jit = jobs_.find(req.job_id());
    if (jit != jobs_.end() && jit->second->attempt == req.attempt()) {
      LoseTaskManagerLocked(tm, "deployment failed (" + s.message() + ")");
      return;
    }
  }
  if (s.ok()) return;
  proto::TaskStateUpdate u;
  u.set_job_id(req.job_id());
  u.set_attempt(req.attempt());
  u.set_task_id(req.task_id());
  u.set_subtask(req.subtask());
  u.set_state(ToProto(TaskState::kFailed));
  u.set_error("deployment to " + addr + " failed: " + s.message());
  // Whatever the task manager said, this is the root cause of the failure.
  u.set_error_code(
      static_cast<int>(s.code() == StatusCode::kCancelled ? StatusCode::kInternal : s.code()));
  UpdateTaskState(u);
}

void JobManager::StartCoordinatorLocked(Job& job) {
  Job* jp = &job;
  job.ckpt.coordinator = std::make_unique<CheckpointCoordinator>(
      job.id, job.attempt, job.ckpt.settings, job.plan, job.graph, clock_, executor_,
      gateway_.get(),
      [this, jp](const std::string& task, int sub) -> std::string {
        // Called under mu_ (the coordinator only runs under it).
        for (const Subtask& st : jp->sched.subtasks) {
          if (st.task_id == task && st.index == sub) {
            auto it = tms_.find(st.tm_id);
            return it == tms_.end() ? "" : it->second.info.rpc_address();
          }
        }
        return "";
      },
      job.ckpt.next_id);
  job.ckpt.coordinator->SetSession(session_);
  job.ckpt.coordinator->Adopt(std::move(job.ckpt.retained), job.ckpt.last_stats);
  job.ckpt.coordinator->SetOnCompleted([this, jp](const std::string&) { NoteCheckpointLocked(*jp); });
  // Under mu_: the HA record naming the checkpoint, written on the I/O lane after _metadata.
  job.ckpt.coordinator->SetDurableStep([this, jp](const std::string& dir, int64_t next_id) {
    ++jp->ckpt.finalizing;
    if (options_.ha_dir.empty()) return CheckpointCoordinator::DurableStep();
    return CheckpointCoordinator::DurableStep(HaWriteLocked(*jp, dir, next_id));
  });
  job.ckpt.coordinator->SetOnFinalized(
      [this, id = job.id, attempt = job.attempt](std::shared_ptr<Finalizing> f, Status st) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = jobs_.find(id);
        if (it == jobs_.end()) return;
        OnFinalizedLocked(*it->second, attempt, f, st);
      });
}

void JobManager::OnFinalizedLocked(Job& job, int attempt, const std::shared_ptr<Finalizing>& f,
                                   const Status& st) {
  if (!f->savepoint) --job.ckpt.finalizing;
  if (job.ckpt.coordinator && job.attempt == attempt) {
    if (auto fail = job.ckpt.coordinator->Finalized(f, st)) HandleFailureLocked(job, *fail, true);
  } else if (st.ok()) {
    // The attempt ended while the checkpoint was written, but it is durable and HA names it:
    // it is the restart point (the restart waited for it).
    Log()->info("job={} checkpoint={} durable after its attempt ended; it is the restart point",
                job.id, f->completed.id);
    if (!f->savepoint) {
      job.ckpt.retained.push_back(f->completed);
      job.ckpt.latest_dir = f->completed.dir;
      PruneCheckpoints(job.ckpt.retained,
                       static_cast<size_t>(std::max(1, job.ckpt.settings.retained)),
                       job.ckpt.settings.directory + "/" + job.id, executor_, job.id);
    }
    if (f->savepoint_done) {
      proto::SavepointResponse resp;
      resp.set_path(f->completed.dir);
      resp.set_checkpoint_id(f->completed.id);
      executor_("", [cb = f->savepoint_done, resp] { cb(resp); });
    }
  } else {
    Log()->warn("job={} checkpoint={} failed after its attempt ended: {}", job.id,
                f->completed.id, st.ToString());
    executor_(kIoLane, [dir = f->completed.dir] { RemoveCheckpointFiles(dir, "", {}); });
    if (f->savepoint_done) {
      executor_("", [cb = f->savepoint_done, st] {
        cb(Status::Unavailable("savepoint failed: " + st.message()));
      });
    }
  }
  if (job.ckpt.finalizing == 0 && job.ckpt.persist_deferred) PersistLocked(job);
}

void JobManager::EndCheckpointingLocked(Job& job, const std::string& reason, bool fence) {
  if (!job.ckpt.coordinator) return;
  if (fence) job.ckpt.coordinator->Fence();
  job.ckpt.coordinator->Shutdown(reason);
  job.ckpt.last_stats = job.ckpt.coordinator->Stats();
  job.ckpt.retained = job.ckpt.coordinator->TakeCompleted();
  // Every id the coordinator handed out is used (a savepoint's too): never again.
  job.ckpt.next_id = std::max(job.ckpt.next_id, job.ckpt.coordinator->next_id());
  job.ckpt.coordinator.reset();
}

void JobManager::AcknowledgeCheckpoint(proto::AcknowledgeCheckpointRequest ack) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(ack.job_id());
  if (it == jobs_.end() || !it->second->ckpt.coordinator) return;
  Job& job = *it->second;
  // A completion is recorded by the coordinator's on-completed callback (before notifying).
  if (auto fail = job.ckpt.coordinator->Acknowledge(std::move(ack))) HandleFailureLocked(job, *fail, true);
}

void JobManager::DeclineCheckpoint(const proto::DeclineCheckpointRequest& d) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(d.job_id());
  if (it == jobs_.end() || !it->second->ckpt.coordinator) return;
  if (auto fail = it->second->ckpt.coordinator->Decline(d)) HandleFailureLocked(*it->second, *fail, true);
}

void JobManager::TriggerSavepoint(const proto::SavepointRequest& req,
                                  CheckpointCoordinator::SavepointDone done) {
  if (!req.directory().empty()) {  // security.allowed_paths; the configured default is trusted
    Status allowed =
        CheckAllowedPath(req.directory(), options_.allowed_paths, "savepoint directory");
    if (!allowed.ok()) {
      executor_("", [done, allowed] { done(allowed); });
      return;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(req.job_id());
  if (it == jobs_.end()) {
    executor_("", [done, id = req.job_id()] { done(Status::NotFound("no job with id '" + id + "'")); });
    return;
  }
  Job& job = *it->second;
  if (job.state != JobState::kRunning || !job.ckpt.coordinator) {
    executor_("", [done, st = std::string(JobStateName(job.state))] {
      done(Status::FailedPrecondition("a savepoint needs a RUNNING job; this one is " + st));
    });
    return;
  }
  const std::string parent = req.directory().empty() ? options_.savepoint_dir : req.directory();
  if (parent.empty()) {
    executor_("", [done] {
      done(Status::InvalidArgument("no savepoint directory: pass --dir or configure "
                                   "jobmanager.savepoint_dir"));
    });
    return;
  }
  const std::string job_id = job.id;
  const bool stop = req.stop();
  job.ckpt.coordinator->RequestSavepoint(parent, [this, job_id, stop, done](
                                                Result<proto::SavepointResponse> r) {
    if (r.ok() && stop) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = jobs_.find(job_id);
      if (it != jobs_.end() && it->second->state == JobState::kRunning) {
        Job& j = *it->second;
        j.ckpt.stop_after_savepoint = true;
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
    // A bug: loud in debug builds; refused (the state stays) in release builds.
    Log()->error("job={} illegal transition {} -> {}", job.id, JobStateName(job.state),
                 JobStateName(to));
    assert(false && "illegal job state transition");
    return false;
  }
  Log()->info("job={} {} -> {}{}", job.id, JobStateName(job.state), JobStateName(to),
              why.empty() ? "" : ": " + why);
  job.state = to;
  if (IsTerminal(to)) {
    job.end_ms = clock_();
    PersistLocked(job);
    EndCheckpointingLocked(job, std::string("job ") + JobStateName(to));
    ReleaseSlotsLocked(job);
    evict_pending_ = true;  // not here: callers still hold references to jobs
  }
  return true;
}

void JobManager::ReleaseSlotsLocked(Job& job) {
  for (const auto& [tm, n] : job.sched.slots_held) {
    auto it = tms_.find(tm);
    if (it != tms_.end()) it->second.free_slots += n;
  }
  job.sched.slots_held.clear();
  // Freed slots may let a waiting job start.
  for (const auto& id : job_order_) {
    Job& other = *jobs_[id];
    if (&other != &job && other.state == JobState::kCreated) TryScheduleLocked(other);
  }
}

void JobManager::CancelTasksLocked(Job& job) {
  std::vector<std::pair<std::string, std::string>> tms;  // id, address
  for (const auto& [tm, n] : job.sched.slots_held) {
    auto it = tms_.find(tm);
    if (it != tms_.end()) tms.emplace_back(tm, it->second.info.rpc_address());
  }
  for (const auto& [tm, addr] : tms) {
    // Copies named in the capture: clang 14 (the fuzz build) cannot capture bindings.
    Rpc(addr, [this, tm = tm, addr = addr, id = job.id, attempt = job.attempt] {
      Status s = gateway_->CancelJobTasks(addr, id, attempt);
      if (s.ok()) return;
      Log()->warn("job={} cancel at {} failed: {}", id, addr, s.ToString());
      if (!IsUnreachable(s)) return;  // it answered: alive
      // An unreachable task manager is treated as lost at once: failover does not wait for
      // its heartbeat timeout.
      std::lock_guard<std::mutex> lock(mu_);
      LoseTaskManagerLocked(tm, "unreachable (" + s.message() + ")");
    });
  }
}

void JobManager::HandleFailureLocked(Job& job, const std::string& cause, bool root_cause) {
  if (IsTerminal(job.state) || job.state == JobState::kCancelling ||
      job.state == JobState::kRestarting) {
    return;
  }
  const int64_t now = clock_();
  job.failover.last_failure = cause;
  job.failover.last_failure_ms = now;
  job.failover.root_cause_known = root_cause;
  if (job.state == JobState::kCreated) return;  // nothing runs: the next deployment is fresh
  std::optional<int64_t> delay = job.failover.backoff->OnFailure(now);
  if (!delay) {
    FailJobLocked(job,
                  job.failover.restarts > 0 ? cause + " (restart strategy " + job.failover.backoff->Describe() +
                                         " gave up after " + std::to_string(job.failover.restarts) +
                                         " restarts)"
                                   : cause,
                  root_cause);
    return;
  }
  NoteExceptionLocked(job, cause, root_cause);
  EndCheckpointingLocked(job, "job restarting", /*fence=*/true);
  CancelTasksLocked(job);
  job.failover.old_pending.clear();
  for (Subtask& st : job.sched.subtasks) {
    if (IsTerminal(st.state)) continue;
    job.failover.old_pending.insert({st.task_id, st.index});
    if (CanTransition(st.state, TaskState::kCanceling)) st.state = TaskState::kCanceling;
  }
  // Subtasks on task managers already gone will never report.
  for (const Subtask& st : job.sched.subtasks) {
    if (!tms_.count(st.tm_id)) job.failover.old_pending.erase({st.task_id, st.index});
  }
  ++job.failover.restarts;
  job.failover.restart_at_ms = now + *delay;
  job.failover.cancel_deadline_ms = now + 5000;
  TransitionLocked(job, JobState::kRestarting,
                   cause + "; restart " + std::to_string(job.failover.restarts) + " in " +
                       std::to_string(*delay) + " ms");
  ReleaseSlotsLocked(job);
}

void JobManager::RestartLocked(Job& job) {
  // The newest completed checkpoint, else the savepoint the job started from, else nothing.
  const std::string from =
      !job.ckpt.latest_dir.empty() ? job.ckpt.latest_dir : job.origin.savepoint;
  if (from.empty()) {
    FinishRestartLocked(job, from, Status::NotFound("no restore point"),
                        std::map<std::pair<std::string, int>, proto::RestoreInfo>{});
    return;
  }
  // Its _metadata (and the files it names) are read on the I/O lane, not under the lock.
  job.failover.restart_planning = true;
  executor_(kIoLane, [this, id = job.id, attempt = job.attempt, from, plan = job.plan,
                      allow = job.origin.allow_non_restored_state] {
    auto md = ReadMetadata(from);
    Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>> restore =
        md.ok() ? PlanRestore(md.value(), from, *plan, allow)
                : Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>>(md.status());
    std::lock_guard<std::mutex> lock(mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Job& j = *it->second;
    if (!j.failover.restart_planning || j.attempt != attempt || j.state != JobState::kRestarting) return;
    FinishRestartLocked(j, from, std::move(md), std::move(restore));
  });
}

void JobManager::FinishRestartLocked(
    Job& job, const std::string& from, Result<proto::CheckpointMetadata> md,
    Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>> plan) {
  job.failover.restart_planning = false;
  job.origin.restore.clear();
  if (!from.empty()) {
    if (!plan.ok()) {
      FailJobLocked(job, "cannot restart from " + from + ": " + plan.status().message());
      return;
    }
    job.origin.restore = std::move(plan).value();
    job.ckpt.next_id = std::max(job.ckpt.next_id, md->checkpoint_id() + 1);
    job.origin.restored_from = from + " (checkpoint " + std::to_string(md->checkpoint_id()) +
                        ", restart " + std::to_string(job.failover.restarts) + ")";
  }
  ++job.attempt;
  job.failover.old_pending.clear();
  for (Subtask& st : job.sched.subtasks) {
    st.state = TaskState::kDeploying;
    st.error.clear();
    st.tm_id.clear();
  }
  job.sched.waiting_since_ms = clock_();
  TransitionLocked(job, JobState::kCreated, "attempt " + std::to_string(job.attempt));
  PersistLocked(job);
  TryScheduleLocked(job);
}

void JobManager::LoseTaskManagerLocked(const std::string& id, const std::string& reason) {
  auto tm = tms_.find(id);
  if (tm == tms_.end()) return;
  Log()->warn("task manager {} lost: {}", id, reason);
  const std::string addr = tm->second.info.rpc_address();
  tms_.erase(tm);
  // Its channel goes (on its own lane, after any call still queued there).
  Rpc(addr, [this, addr] { gateway_->Forget(addr); });
  for (auto& [jid, job] : jobs_) {
    if (IsTerminal(job->state)) continue;
    if (job->state == JobState::kRestarting) {
      for (const Subtask& st : job->sched.subtasks) {
        if (st.tm_id == id) job->failover.old_pending.erase({st.task_id, st.index});
      }
      continue;
    }
    if (!job->sched.slots_held.count(id)) continue;
    job->sched.slots_held.erase(id);
    if (job->state == JobState::kCancelling) {
      for (Subtask& st : job->sched.subtasks) {
        if (st.tm_id == id && !IsTerminal(st.state)) st.state = TaskState::kCanceled;
      }
      MaybeCompleteLocked(*job);
    } else {
      HandleFailureLocked(*job, "task manager " + id + " lost: " + reason, true);
    }
  }
}

void JobManager::NoteCheckpointLocked(Job& job) {
  if (!job.ckpt.coordinator) return;
  const std::string dir = job.ckpt.coordinator->latest_completed_dir();
  if (dir.empty() || dir == job.ckpt.latest_dir) return;
  job.ckpt.latest_dir = dir;  // HA names it already: the finalization wrote the record
  // A stable run resets exponential backoff.
  if (job.failover.restarts > 0) job.failover.backoff->OnRunning(job.failover.last_failure_ms);
}

void JobManager::FailJobLocked(Job& job, const std::string& cause, bool root_cause) {
  if (IsTerminal(job.state)) return;
  NoteExceptionLocked(job, cause, root_cause);
  job.failover.last_failure = cause;
  if (job.failover.last_failure_ms == 0) job.failover.last_failure_ms = clock_();
  EndCheckpointingLocked(job, "job failed", /*fence=*/true);
  job.failure = cause;
  job.failover.root_cause_known = root_cause;
  CancelTasksLocked(job);
  for (Subtask& st : job.sched.subtasks) {
    if (!IsTerminal(st.state)) st.state = TaskState::kCanceled;
  }
  TransitionLocked(job, JobState::kFailed, cause);
}

void JobManager::MaybeCompleteLocked(Job& job) {
  bool all_terminal = true, all_finished = true;
  for (const Subtask& st : job.sched.subtasks) {
    all_terminal = all_terminal && IsTerminal(st.state);
    all_finished = all_finished && st.state == TaskState::kFinished;
  }
  if (job.state == JobState::kRunning && all_finished) {
    TransitionLocked(job, JobState::kFinished, "");
  } else if (job.state == JobState::kCancelling && all_terminal) {
    // Stop-with-savepoint ends FINISHED, as in Flink; a plain cancel ends CANCELED.
    TransitionLocked(job, job.ckpt.stop_after_savepoint ? JobState::kFinished : JobState::kCanceled, "");
  }
}

Result<JobState> JobManager::CancelJob(const std::string& job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound("no job with id '" + job_id + "'");
  Job& job = *it->second;
  if (IsTerminal(job.state)) {
    return Status::FailedPrecondition("job " + job_id + " is already " + JobStateName(job.state));
  }
  if (job.state == JobState::kCreated) {
    TransitionLocked(job, JobState::kCanceled, "cancelled before it was scheduled");
  } else if (job.state == JobState::kRestarting) {
    // The old attempt is already being cancelled and nothing new is deployed.
    for (Subtask& st : job.sched.subtasks) {
      if (!IsTerminal(st.state)) st.state = TaskState::kCanceled;
    }
    TransitionLocked(job, JobState::kCancelling, "cancel requested while restarting");
    MaybeCompleteLocked(job);
  } else if (job.state != JobState::kCancelling) {
    TransitionLocked(job, JobState::kCancelling, "cancel requested");
    EndCheckpointingLocked(job, "job cancelled");
    CancelTasksLocked(job);
    MaybeCompleteLocked(job);
  }
  return job.state;
}

void JobManager::Tick() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_();
  std::vector<std::string> lost;
  for (const auto& [id, tm] : tms_) {
    if (now - tm.last_heartbeat_ms > options_.heartbeat_timeout_ms) lost.push_back(id);
  }
  for (const auto& id : lost) {
    LoseTaskManagerLocked(id, "no heartbeat for " + std::to_string(now - tms_[id].last_heartbeat_ms) +
                                  " ms");
  }
  for (const auto& id : job_order_) {
    Job& job = *jobs_[id];
    if (job.state == JobState::kRunning) SampleThroughputLocked(job, now);
    if (job.state == JobState::kRunning && job.ckpt.coordinator) {
      bool all_running = true;
      for (const Subtask& st : job.sched.subtasks) all_running = all_running && st.state == TaskState::kRunning;
      if (auto fail = job.ckpt.coordinator->Tick(all_running)) {
        HandleFailureLocked(job, *fail, true);
        continue;
      }
      // Ids handed out must stay below the reservation recorded for HA.
      if (!options_.ha_dir.empty() &&
          job.ckpt.coordinator->next_id() + kIdReservation / 2 > job.ckpt.reserved_ids_until) {
        PersistLocked(job);
      }
      continue;
    }
    if (job.state == JobState::kRestarting) {
      // Not before the old subtasks are gone, and never while a checkpoint of the old attempt
      // is being made durable: if it becomes durable, it is the restart point.
      if (now >= job.failover.restart_at_ms && (job.failover.old_pending.empty() || now >= job.failover.cancel_deadline_ms) &&
          job.ckpt.finalizing == 0 && !job.failover.restart_planning) {
        RestartLocked(job);
      }
      continue;
    }
    if (job.state != JobState::kCreated) continue;
    TryScheduleLocked(job);
    // A restarted job waits for slots as long as it takes (a task manager may come back); a
    // new one gives up after the slot wait timeout.
    if (job.state == JobState::kCreated && job.failover.restarts == 0 &&
        now - job.sched.waiting_since_ms > options_.slot_wait_timeout_ms) {
      const std::string why = "not enough slots: " + job.failure.substr(job.failure.find(':') + 2) +
                              "; gave up after " +
                              std::to_string(options_.slot_wait_timeout_ms) + " ms";
      job.failure = why;
      TransitionLocked(job, JobState::kFailed, why);
    }
  }
  if (evict_pending_) EvictFinishedJobsLocked();
}

void JobManager::EvictFinishedJobsLocked() {
  evict_pending_ = false;
  size_t terminal = 0;
  for (const auto& id : job_order_) terminal += IsTerminal(jobs_.at(id)->state) ? 1 : 0;
  const size_t keep = static_cast<size_t>(std::max(0, options_.retained_jobs));
  for (auto it = job_order_.begin(); it != job_order_.end() && terminal > keep;) {
    Job& job = *jobs_.at(*it);
    // A job whose last checkpoint is still being written is forgotten at a later tick.
    if (!IsTerminal(job.state) || job.ckpt.finalizing > 0) {
      ++it;
      continue;
    }
    Log()->info("job={} forgotten ({} finished jobs retained)", job.id, keep);
    jobs_.erase(*it);
    it = job_order_.erase(it);
    --terminal;
  }
  if (terminal > keep) evict_pending_ = true;
}

size_t JobManager::jobs_held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return jobs_.size();
}

namespace {

// The chained tasks of a plan and the edges between them, for drawing the job graph.
void AddPlanInfo(const ExecutionPlan& plan, proto::JobInfo* info) {
  for (const TaskPlan& t : plan.tasks) {
    proto::TaskPlanInfo* ti = info->add_plan();
    ti->set_task_id(t.id);
    ti->set_parallelism(t.parallelism);
    for (int v : t.vertices) {
      ti->add_vertices(plan.spec.vertices[v].id);
      ti->add_vertex_types(plan.spec.vertices[v].type);
    }
    for (int ei : t.in_edges) {
      const EdgeSpec& e = plan.spec.edges[ei];
      proto::TaskPlanInfo::Input* in = ti->add_inputs();
      in->set_from_task(plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.from)]].id);
      in->set_from_vertex(e.from);
      in->set_to_vertex(e.to);
      in->set_partitioning(PartitioningName(e.partition));
      in->set_output(e.output);
      for (const auto& k : e.key) in->add_keys(k);
    }
  }
}

}  // namespace

proto::JobInfo JobManager::InfoLocked(const Job& job) const {
  proto::JobInfo info;
  info.set_job_id(job.id);
  info.set_name(job.graph.name());
  info.set_state(ToProto(job.state));
  info.set_submit_time_ms(job.submit_ms);
  info.set_end_time_ms(job.end_ms);
  info.set_failure(job.failure);
  info.set_attempt(job.attempt);
  info.set_slots_needed(job.plan->SlotsNeeded());
  *info.mutable_checkpoints() = job.ckpt.coordinator ? job.ckpt.coordinator->Stats() : job.ckpt.last_stats;
  info.set_restored_from(job.origin.restored_from);
  info.set_restarts(job.failover.restarts);
  info.set_last_failure(job.failover.last_failure);
  info.set_last_failure_time_ms(job.failover.last_failure_ms);
  for (const auto& t : job.plan->tasks) info.add_vertex_chain(job.plan->ChainDescription(t));
  for (const auto& st : job.sched.subtasks) {
    auto* s = info.add_subtasks();
    s->set_task_id(st.task_id);
    s->set_subtask(st.index);
    s->set_state(ToProto(st.state));
    s->set_tm_id(st.tm_id);
    s->set_error(st.error);
    s->set_records_in(st.records_in);
    s->set_records_out(st.records_out);
    if (st.state == TaskState::kRunning) *s->mutable_metrics() = st.metrics;
  }
  info.set_attempt_start_time_ms(job.monitor.attempt_start_ms);
  for (const auto& e : job.monitor.exceptions) *info.add_exceptions() = e;
  AddPlanInfo(*job.plan, &info);
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

Result<std::vector<proto::ThroughputSample>> JobManager::ThroughputHistory(
    const std::string& job_id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return Status::NotFound("no job with id '" + job_id + "'");
  const auto& t = it->second->monitor.throughput;
  return std::vector<proto::ThroughputSample>(t.begin(), t.end());
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
    i.set_metrics_address(tm.info.metrics_address());
    i.set_registered_time_ms(tm.registered_ms);
    out.push_back(i);
  }
  return out;
}

}  // namespace weir::jm
