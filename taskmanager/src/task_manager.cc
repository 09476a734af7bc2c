#include "weir/builtins.h"
#include "weir/taskmanager/task_manager.h"

#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "weir.grpc.pb.h"
#include "weir/job_graph.h"
#include "weir/network.h"
#include "weir/logging.h"

namespace weir::tm {
namespace {

const ModuleLog Log("taskmanager");

using JobAttempt = std::pair<std::string, int>;  // (job id, attempt)

std::string ExecutionId(const std::string& job, int attempt, const std::string& task, int sub) {
  return job + "/" + std::to_string(attempt) + "/" + task + "/" + std::to_string(sub);
}

}  // namespace

class TaskManager::Impl final : public proto::TaskManagerService::Service {
 public:
  explicit Impl(TaskManagerOptions o)
      : options_(std::move(o)),
        network_(options_.network),
        uploads_("upload", options_.upload_threads) {
    if (options_.tm_id.empty()) {
      std::mt19937 rng{std::random_device{}()};
      options_.tm_id = "tm-" + std::to_string(getpid()) + "-" + std::to_string(rng() % 100000);
    }
    if (options_.state_dir.empty()) {
      owns_state_dir_ = true;
      options_.state_dir = (std::filesystem::temp_directory_path() /
                            ("weir-" + options_.tm_id + "-" + std::to_string(getpid())))
                               .string();
    }
  }

  Status Start() {
    WEIR_RETURN_IF_ERROR(network_.Start(options_.data_host, options_.data_port));
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.rpc_address, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      return Status::IoError("cannot listen on " + options_.rpc_address);
    }
    rpc_address_ = options_.rpc_address.substr(0, options_.rpc_address.rfind(':')) + ":" +
                   std::to_string(port);
    data_address_ = options_.data_host + ":" + std::to_string(network_.port());
    jm_ = proto::JobManagerService::NewStub(
        grpc::CreateChannel(options_.jobmanager_address, grpc::InsecureChannelCredentials()));
    Log()->info("task manager {}: rpc {} data {} slots {} job manager {}", options_.tm_id,
                rpc_address_, data_address_, options_.slots, options_.jobmanager_address);
    heartbeat_ = std::thread([this] { HeartbeatLoop(); });
    return Status::Ok();
  }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    stop_cv_.wait(lock, [&] { return stopping_; });
  }

  void RequestStop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = stopping_ = true;
      for (auto& [id, rt] : tasks_) rt->task->MarkCancelled();
      for (auto& [id, rt] : tasks_) rt->task->Cancel();
    }
    stop_cv_.notify_all();
    if (heartbeat_.joinable()) heartbeat_.join();
    std::map<std::string, std::unique_ptr<Running>> tasks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      tasks.swap(tasks_);
    }
    for (auto& [id, rt] : tasks) {
      if (rt->thread.joinable()) rt->thread.join();
    }
    // Tasks waited for their own uploads when they closed: nothing is queued any more.
    uploads_.Shutdown();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    network_.Stop();
    if (owns_state_dir_) {
      std::error_code ec;
      std::filesystem::remove_all(options_.state_dir, ec);
    }
  }

  const std::string& id() const { return options_.tm_id; }

  // ---------------------------------------------------------------- RPC handlers
  grpc::Status DeployTask(grpc::ServerContext*, const proto::DeployTaskRequest* req,
                          proto::DeployTaskResponse*) override {
    Result<std::shared_ptr<const ExecutionPlan>> plan = Status::Internal("unset");
    try {
      plan = PlanFor(req->job_id(), req->attempt(), req->graph());
    } catch (const std::exception& e) {
      plan = Status::InvalidArgument(std::string("job graph rejected: ") + e.what());
    }
    if (!plan.ok()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, plan.status().message());
    }
    auto ti = plan.value()->task_index.find(req->task_id());
    if (ti == plan.value()->task_index.end() ||
        req->subtask() < 0 || req->subtask() >= plan.value()->tasks[ti->second].parallelism) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "no subtask " + std::to_string(req->subtask()) + " of task '" +
                              req->task_id() + "' in the job graph");
    }
    auto locations = std::make_shared<std::map<std::pair<std::string, int>, proto::SubtaskLocation>>();
    for (const auto& l : req->locations()) (*locations)[{l.task_id(), l.subtask()}] = l;

    const std::string exec_id = ExecutionId(req->job_id(), req->attempt(), req->task_id(), req->subtask());
    auto rt = std::make_unique<Running>();
    TaskSetup setup;
    setup.job_id = req->job_id();
    setup.attempt = req->attempt();
    setup.plan = plan.value();
    setup.task_index = ti->second;
    setup.subtask = req->subtask();
    setup.network = &network_;
    setup.registry = &BuiltinOperators();
    setup.options = options_.task;
    setup.upload_executor = &uploads_;
    setup.restore = req->restore();
    setup.state_backend = req->state_backend().empty() ? "rocksdb" : req->state_backend();
    setup.local_dir = AttemptStateDir({req->job_id(), req->attempt()}) + "/" + req->task_id() +
                      "-" + std::to_string(req->subtask());
    setup.on_checkpoint_ack = [this](proto::AcknowledgeCheckpointRequest ack) {
      CallJm("acknowledge checkpoint", std::chrono::seconds(5), [&](grpc::ClientContext* ctx) {
        proto::Empty e;
        return jm_->AcknowledgeCheckpoint(ctx, ack, &e);
      });
    };
    {
      proto::DeclineCheckpointRequest base_decline;
      base_decline.set_job_id(req->job_id());
      base_decline.set_attempt(req->attempt());
      base_decline.set_task_id(req->task_id());
      base_decline.set_subtask(req->subtask());
      setup.on_checkpoint_decline = [this, base_decline](int64_t id, const std::string& reason) {
        proto::DeclineCheckpointRequest d = base_decline;
        d.set_checkpoint_id(id);
        d.set_reason(reason);
        CallJm("decline checkpoint", std::chrono::seconds(5), [&](grpc::ClientContext* ctx) {
          proto::Empty e;
          return jm_->DeclineCheckpoint(ctx, d, &e);
        });
      };
    }
    const std::string my_id = options_.tm_id;
    setup.locate = [locations, my_id](const std::string& task, int sub) {
      PeerLocation loc;
      auto it = locations->find({task, sub});
      if (it == locations->end()) return loc;  // connect fails with a clear error
      loc.local = it->second.tm_id() == my_id;
      loc.data_address = it->second.data_address();
      loc.tm_id = it->second.tm_id();
      return loc;
    };
    Running* raw = rt.get();
    proto::TaskStateUpdate base;
    base.set_job_id(req->job_id());
    base.set_attempt(req->attempt());
    base.set_task_id(req->task_id());
    base.set_subtask(req->subtask());
    base.set_tm_id(my_id);
    setup.on_state = [this, raw, base](TaskState s, const Status& error) {
      proto::TaskStateUpdate u = base;
      u.set_state(ToProto(s));
      if (!error.ok()) {
        u.set_error(error.ToString());
        u.set_error_code(static_cast<int>(error.code()));
      }
      if (raw->task) {
        u.set_records_in(raw->task->metrics().records_in.load());
        u.set_records_out(raw->task->metrics().records_out.load());
      }
      Report(u);
      if (IsTerminal(s)) raw->done = true;
    };
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopping_) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "task manager stopping");
      if (tasks_.count(exec_id)) {
        return grpc::Status(grpc::StatusCode::ALREADY_EXISTS, exec_id + " is already deployed");
      }
      rt->task = std::make_unique<Task>(std::move(setup));
      rt->job_id = req->job_id();
      rt->attempt = req->attempt();
      rt->jm_session = req->jm_session();
      rt->thread = std::thread([raw] { raw->task->Run(); });
      tasks_[exec_id] = std::move(rt);
    }
    return grpc::Status::OK;
  }

  grpc::Status TriggerCheckpoint(grpc::ServerContext*, const proto::TriggerCheckpointRequest* req,
                                 proto::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(ExecutionId(req->job_id(), req->attempt(), req->task_id(), req->subtask()));
    if (it == tasks_.end() || it->second->done) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no running subtask " + req->task_id() +
                                                            "/" + std::to_string(req->subtask()));
    }
    it->second->task->TriggerCheckpoint(req->checkpoint_id(), req->timestamp_ms(), req->options());
    return grpc::Status::OK;
  }

  grpc::Status NotifyCheckpoint(grpc::ServerContext*, const proto::NotifyCheckpointRequest* req,
                                proto::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [id, rt] : tasks_) {
      if (rt->job_id == req->job_id() && rt->attempt == req->attempt() && !rt->done) {
        std::map<std::string, int64_t> wms(req->commit_watermarks().begin(),
                                           req->commit_watermarks().end());
        rt->task->NotifyCheckpoint(req->checkpoint_id(), req->completed(), std::move(wms));
      }
    }
    return grpc::Status::OK;
  }

  grpc::Status CancelTask(grpc::ServerContext*, const proto::CancelTaskRequest* req,
                          proto::CancelTaskResponse*) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = tasks_.find(ExecutionId(req->job_id(), req->attempt(), req->task_id(), req->subtask()));
    if (it != tasks_.end()) it->second->task->Cancel();
    return grpc::Status::OK;
  }

  grpc::Status CancelJobTasks(grpc::ServerContext*, const proto::CancelJobTasksRequest* req,
                              proto::CancelTaskResponse*) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<Task*> matching;
      for (auto& [id, rt] : tasks_) {
        if (rt->job_id == req->job_id() && rt->attempt == req->attempt()) {
          rt->task->MarkCancelled();
          matching.push_back(rt->task.get());
        }
      }
      for (Task* t : matching) t->Cancel();
    }
    // Producers blocked on channels of this attempt fail fast once the channels are closed.
    network_.ReleaseChannels(ChannelKeyPrefix(req->job_id(), req->attempt()));
    return grpc::Status::OK;
  }

 private:
  struct Running {
    std::unique_ptr<Task> task;
    std::thread thread;
    std::string job_id;
    int attempt = 0;
    std::string jm_session;  // of the job manager that deployed it
    std::atomic<bool> done{false};
  };

  Result<std::shared_ptr<const ExecutionPlan>> PlanFor(const std::string& job, int attempt,
                                                       const proto::JobGraph& graph) {
    const JobAttempt key{job, attempt};
    std::lock_guard<std::mutex> lock(plan_mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    WEIR_ASSIGN_OR_RETURN(JobSpec spec, FromProto(graph));
    WEIR_ASSIGN_OR_RETURN(ExecutionPlan plan, BuildPlan(std::move(spec), BuiltinOperators()));
    auto p = std::make_shared<const ExecutionPlan>(std::move(plan));
    plans_[key] = p;
    return p;
  }

  // Calls the job manager (`fn(ctx)` makes the call) with a deadline, retrying twice on
  // failure; `what` names the call in the log.
  template <typename Fn>
  void CallJm(const std::string& what, std::chrono::seconds deadline, Fn fn) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + deadline);
      grpc::Status s = fn(&ctx);
      if (s.ok()) return;
      Log()->warn("{} failed: {}", what, s.error_message());
    }
  }

  void Report(const proto::TaskStateUpdate& u) {
    CallJm("job=" + u.job_id() + " vertex=" + u.task_id() + " subtask=" +
               std::to_string(u.subtask()) + " reporting " +
               TaskStateName(FromProto(u.state()).value_or(TaskState::kFailed)),
           std::chrono::seconds(3), [&](grpc::ClientContext* ctx) {
             proto::TaskStateAck ack;
             return jm_->UpdateTaskState(ctx, u, &ack);
           });
  }

  bool Register() {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    proto::RegisterTaskManagerRequest req;
    req.set_tm_id(options_.tm_id);
    req.set_rpc_address(rpc_address_);
    req.set_data_address(data_address_);
    req.set_slots(options_.slots);
    proto::RegisterTaskManagerResponse resp;
    grpc::Status s = jm_->RegisterTaskManager(&ctx, req, &resp);
    if (!s.ok()) {
      Log()->warn("registration with job manager {} failed: {}", options_.jobmanager_address,
                  s.error_message());
      return false;
    }
    if (resp.heartbeat_interval_ms() > 0) heartbeat_interval_ms_ = resp.heartbeat_interval_ms();
    if (!jm_session_.empty() && resp.jm_session() != jm_session_) {
      // A new job manager (restarted, or failed over): it redeploys what should run, so the
      // tasks of its predecessor are cancelled rather than left running as orphans.
      // Only tasks of earlier managers: the new one may already have deployed some here
      // before this response arrived.
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<Task*> stale;
      for (auto& [id, rt] : tasks_) {
        if (rt->jm_session != resp.jm_session()) stale.push_back(rt->task.get());
      }
      Log()->warn("job manager restarted (session {} -> {}); cancelling {} task(s) it did not deploy",
                  jm_session_, resp.jm_session(), stale.size());
      for (Task* t : stale) t->MarkCancelled();
      for (Task* t : stale) t->Cancel();
    }
    jm_session_ = resp.jm_session();
    Log()->info("registered with job manager {} as {}", options_.jobmanager_address, options_.tm_id);
    return true;
  }

  void HeartbeatLoop() {
    bool registered = false;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      if (!registered) {
        registered = Register();
      } else {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
        proto::HeartbeatRequest req;
        req.set_tm_id(options_.tm_id);
        proto::HeartbeatResponse resp;
        grpc::Status s = jm_->Heartbeat(&ctx, req, &resp);
        if (s.ok() && !resp.known()) {
          Log()->warn("job manager does not know this task manager; registering again");
          registered = Register();
        } else if (!s.ok()) {
          Log()->warn("heartbeat failed: {}", s.error_message());
        }
      }
      lock.lock();
      std::vector<std::string> gone = ReapLocked();
      if (!gone.empty()) {
        lock.unlock();
        // The (now empty) state directories of attempts that ended here, off the lock.
        for (const auto& d : gone) {
          std::error_code ec;
          std::filesystem::remove(d, ec);
        }
        // An attempt's tasks freed their state (RocksDB block caches, buffers): give the
        // pages back, or a failover leaves the process a cache's size larger each time.
        malloc_trim(0);
        lock.lock();
      }
      stop_cv_.wait_for(lock, std::chrono::milliseconds(registered ? heartbeat_interval_ms_ : 500));
    }
  }

  // Joins the threads of tasks that ended, and drops the plans no task uses any more (a later
  // deployment of the same attempt builds its plan again).
  // Returns the state directories of job attempts no task here uses any more.
  std::vector<std::string> ReapLocked() {
    bool reaped = false;
    for (auto it = tasks_.begin(); it != tasks_.end();) {
      if (it->second->done) {
        if (it->second->thread.joinable()) it->second->thread.join();
        live_attempts_.insert({it->second->job_id, it->second->attempt});
        it = tasks_.erase(it);
        reaped = true;
      } else {
        ++it;
      }
    }
    std::vector<std::string> gone;
    std::set<JobAttempt> live;
    for (const auto& [id, rt] : tasks_) live.insert({rt->job_id, rt->attempt});
    for (const JobAttempt& a : live_attempts_) {
      if (!live.count(a)) gone.push_back(AttemptStateDir(a));
    }
    live_attempts_ = std::move(live);
    if (!reaped) return gone;
    std::lock_guard<std::mutex> lock(plan_mu_);
    std::erase_if(plans_, [&](const auto& kv) { return !live_attempts_.count(kv.first); });
    return gone;
  }

  // Where the subtasks of one job attempt keep their local state.
  std::string AttemptStateDir(const JobAttempt& a) const {
    return options_.state_dir + "/" + a.first + "-" + std::to_string(a.second);
  }

  TaskManagerOptions options_;
  bool owns_state_dir_ = false;  // a default temp dir is removed at stop; a configured one is not
  NetworkEnvironment network_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<proto::JobManagerService::Stub> jm_;
  std::string rpc_address_, data_address_;
  int64_t heartbeat_interval_ms_ = 1000;
  std::string jm_session_;  // heartbeat thread only
  std::thread heartbeat_;

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false, stopped_ = false;
  std::map<std::string, std::unique_ptr<Running>> tasks_;

  std::mutex plan_mu_;
  // Plans per job attempt, while a task of that attempt runs here.
  std::map<JobAttempt, std::shared_ptr<const ExecutionPlan>> plans_;
  // Job attempts with a task here at the last reap (heartbeat thread, under mu_): the state
  // directory of one that has none any more is removed.
  std::set<JobAttempt> live_attempts_;
  // Declared last: destroyed first, after Stop() joined the tasks that submit to it.
  Executor uploads_;
};

TaskManager::TaskManager(TaskManagerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
TaskManager::~TaskManager() { impl_->Stop(); }
Status TaskManager::Start() { return impl_->Start(); }
void TaskManager::Wait() { impl_->Wait(); }
void TaskManager::Stop() { impl_->Stop(); }
void TaskManager::RequestStop() { impl_->RequestStop(); }
const std::string& TaskManager::id() const { return impl_->id(); }

}  // namespace weir::tm
