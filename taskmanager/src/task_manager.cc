#include "weir/taskmanager/task_manager.h"

#include <grpcpp/grpcpp.h>
#include <malloc.h>
#include <prometheus/exposer.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "fencing.h"
#include "subtask_sampler.h"
#include "weir.grpc.pb.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/logging.h"
#include "weir/net_address.h"
#include "weir/network.h"
#include "weir/prometheus_families.h"
#include "weir/thread_name.h"
#include "weir/tls_front.h"

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
    WEIR_ASSIGN_OR_RETURN(HostPort rpc_bind,
                          ParseHostPort(options_.rpc_address, false, "taskmanager.rpc_bind"));
    builder.AddListeningPort(
        options_.rpc_address,
        options_.security.ServerCredentials(RpcSecurity::ClientCerts::kRequire), &port);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      return Status::IoError("cannot listen on " + options_.rpc_address);
    }
    WEIR_ASSIGN_OR_RETURN(rpc_address_,
                          AdvertisedAddress(rpc_bind, port, options_.rpc_advertise, options_.host,
                                            "taskmanager.rpc_advertise"));
    HostPort data_bind{options_.data_host, options_.data_port};
    WEIR_ASSIGN_OR_RETURN(data_address_,
                          AdvertisedAddress(data_bind, network_.port(), options_.data_advertise,
                                            options_.host, "taskmanager.data_advertise"));
    jm_ = proto::JobManagerService::NewStub(
        grpc::CreateChannel(options_.jobmanager_address,
                            options_.security.MemberChannelCredentials()));
    Log()->info(
        "task manager {}: rpc {} (bound {}:{}) data {} (bound {}:{}) slots {} job manager {}",
        options_.tm_id, rpc_address_, rpc_bind.host, port, data_address_, options_.data_host,
        network_.port(), options_.slots, options_.jobmanager_address);
    WEIR_RETURN_IF_ERROR(StartMetrics());
    heartbeat_ = std::thread([this] { HeartbeatLoop(); });
    NameThread(heartbeat_, "tm-heartbeat");
    return Status::Ok();
  }

  // Prometheus /metrics on options_.metrics_address (empty or "off": none). The exposer's
  // threads only read the scrape snapshot the heartbeat thread leaves (ScrapeFamilies).
  Status StartMetrics() {
    if (options_.metrics_address.empty() || options_.metrics_address == "off") return Status::Ok();
    scrape_ = std::make_shared<ScrapeCollectable>([this] { return ScrapeFamilies(); });
    // With security.tls, HTTPS only: the exposer (civetweb, no OpenSSL 3) on loopback behind a
    // TlsFront on the metrics address, so the token never crosses a network in the clear.
    const bool https = options_.security.tls();
    try {
      exposer_ = std::make_unique<prometheus::Exposer>(
          https ? std::string("127.0.0.1:0") : options_.metrics_address, 2);
    } catch (const std::exception& e) {
      return Status::IoError("cannot serve metrics on " + options_.metrics_address + ": " +
                             e.what());
    }
    exposer_->RegisterCollectable(scrape_);
    if (options_.security.has_token()) {
      // With a token, a scrape must present it: HTTP basic auth, any user name, the token as
      // the password (Prometheus: basic_auth with password_file). prometheus-cpp's exposer
      // offers basic auth only; the check is the constant-time one the REST API uses.
      exposer_->RegisterAuth(
          [this](const std::string&, const std::string& password) {
            return options_.security.TokenMatches("Bearer " + password);
          },
          "weir task manager " + options_.tm_id);
    }
    const std::vector<int> ports = exposer_->GetListeningPorts();
    if (ports.empty()) return Status::IoError("cannot serve metrics on " + options_.metrics_address);
    int port = ports[0];
    if (https) {
      TlsFrontOptions fo;
      fo.address = options_.metrics_address;
      fo.backend_port = port;
      fo.cert_pem = options_.security.cert_pem();
      fo.key_pem = options_.security.key_pem();
      fo.max_connections = 16;
      auto front = TlsFront::Start(std::move(fo));
      if (!front.ok()) return front.status();
      metrics_https_ = std::move(front).value();
      port = metrics_https_->port();
    }
    metrics_address_ = options_.metrics_address.substr(0, options_.metrics_address.rfind(':')) +
                       ":" + std::to_string(port);
    Log()->info("task manager {}: metrics on {}://{}/metrics{}", options_.tm_id,
                https ? "https" : "http", metrics_address_,
                options_.security.has_token() ? " (basic auth: the cluster token)" : "");
    return Status::Ok();
  }

  // Samples every running subtask (heartbeat thread): rates since the last sample, for the
  // heartbeat and for /metrics.
  std::vector<proto::SubtaskMetricsReport> SampleSubtasks() {
    const int64_t mono = std::chrono::duration_cast<std::chrono::nanoseconds>(
                             std::chrono::steady_clock::now().time_since_epoch())
                             .count();
    const int64_t wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    std::vector<proto::SubtaskMetricsReport> reports;
    std::vector<std::vector<MetricPoint>> points;
    std::vector<int64_t> lates;
    std::map<std::string, SubtaskSampler> live;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [id, rt] : tasks_) {
        if (rt->done) continue;
        proto::SubtaskMetricsReport r;
        r.set_job_id(rt->job_id);
        r.set_attempt(rt->attempt);
        r.set_task_id(rt->task_id);
        r.set_subtask(rt->subtask);
        auto it = samplers_.find(id);
        SubtaskSampler sampler = it == samplers_.end() ? SubtaskSampler() : it->second;
        *r.mutable_metrics() = sampler.Sample(rt->task->metrics(), mono, wall);
        live.emplace(id, sampler);
        points.push_back(rt->task->OperatorMetricPoints());
        lates.push_back(rt->task->metrics().late_records_dropped.load(std::memory_order_relaxed));
        reports.push_back(std::move(r));
      }
    }
    samplers_ = std::move(live);  // ended subtasks' samplers go
    {
      std::lock_guard<std::mutex> lock(scrape_mu_);
      scrape_reports_ = reports;
      scrape_points_ = std::move(points);
      scrape_lates_ = std::move(lates);
    }
    return reports;
  }

  std::vector<prometheus::MetricFamily> ScrapeFamilies() const {
    FamilyBuilder b;
    const MetricLabels tm{{"tm", options_.tm_id}};
    AddProcessMetrics(b, tm);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    std::lock_guard<std::mutex> lock(scrape_mu_);
    b.Gauge("weir_taskmanager_slots", "Slots this task manager offers", tm, options_.slots);
    b.Gauge("weir_taskmanager_subtasks_running", "Subtasks running here", tm,
            static_cast<double>(scrape_reports_.size()));
    for (size_t i = 0; i < scrape_reports_.size(); ++i) {
      const proto::SubtaskMetricsReport& r = scrape_reports_[i];
      const proto::SubtaskMetrics& m = r.metrics();
      const MetricLabels l{{"job", r.job_id()},
                           {"vertex", r.task_id()},
                           {"subtask", std::to_string(r.subtask())},
                           {"tm", options_.tm_id}};
      b.Counter("weir_task_records_in_total", "Records into the subtask's chain", l,
                static_cast<double>(m.records_in()));
      b.Counter("weir_task_records_out_total", "Records out of the subtask's chain", l,
                static_cast<double>(m.records_out()));
      b.Counter("weir_task_bytes_in_total", "Serialized bytes read from input channels", l,
                static_cast<double>(m.bytes_in()));
      b.Counter("weir_task_bytes_out_total", "Serialized bytes written to output channels", l,
                static_cast<double>(m.bytes_out()));
      b.Gauge("weir_task_records_in_per_second", "Records in per second, last interval", l,
              m.records_in_per_second());
      b.Gauge("weir_task_records_out_per_second", "Records out per second, last interval", l,
              m.records_out_per_second());
      b.Gauge("weir_task_busy_time_ms_per_second", "Milliseconds per second spent working", l,
              m.busy_ms_per_second());
      b.Gauge("weir_task_idle_time_ms_per_second", "Milliseconds per second waiting for input",
              l, m.idle_ms_per_second());
      b.Gauge("weir_task_backpressured_time_ms_per_second",
              "Milliseconds per second waiting for room downstream", l,
              m.backpressured_ms_per_second());
      b.Gauge("weir_task_input_buffer_usage", "Queued input buffers over the input capacity", l,
              m.input_buffer_usage());
      b.Gauge("weir_task_output_buffer_usage",
              "Share of the last interval spent waiting for output room", l,
              m.output_buffer_usage());
      if (m.has_input_watermark()) {
        b.Gauge("weir_task_input_watermark_ms", "Watermark that reached the chain (epoch ms)", l,
                static_cast<double>(m.input_watermark()));
      }
      if (m.has_output_watermark()) {
        b.Gauge("weir_task_output_watermark_ms", "Watermark the chain sent on (epoch ms)", l,
                static_cast<double>(m.output_watermark()));
      }
      if (m.has_output_watermark() || m.has_input_watermark()) {
        const int64_t wm = m.has_output_watermark() ? m.output_watermark() : m.input_watermark();
        b.Gauge("weir_task_watermark_lag_ms", "Wall clock minus the subtask's watermark", l,
                static_cast<double>(now - wm));
      }
      b.Counter("weir_task_late_records_dropped_total",
                "Records dropped by event-time operators after their window closed", l,
                static_cast<double>(i < scrape_lates_.size() ? scrape_lates_[i] : 0));
      if (i < scrape_points_.size()) {
        for (const MetricPoint& p : scrape_points_[i]) b.AddPoint(p, l);
      }
    }
    return b.Take();
  }

  Status Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    stop_cv_.wait(lock, [&] { return stopping_; });
    return fatal_;
  }

  // Gives up: Wait() returns `why` (heartbeat thread).
  void Fail(const Status& why) {
    Log()->error("{}", why.message());
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fatal_.ok()) fatal_ = why;
      stopping_ = true;
    }
    stop_cv_.notify_all();
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
    metrics_https_.reset();  // joins its threads first: none relays to a stopped exposer
    exposer_.reset();        // joins its threads: no scrape runs past here
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
    // The job id and task id become parts of local paths (AttemptStateDir).
    if (!IsValidId(req->job_id()) || req->attempt() < 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "job id '" + req->job_id() + "' / attempt " +
                              std::to_string(req->attempt()) + ": not a valid job");
    }
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
    if (req->channel_secret().size() < 16) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "the deployment carries no data channel secret (a job manager older "
                          "than this task manager?)");
    }
    // Before the task starts: OPENs of this attempt from peers may already be waiting for it.
    network_.SetAttemptSecret(ChannelKeyPrefix(req->job_id(), req->attempt()),
                              req->channel_secret());
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
    setup.channel_secret = req->channel_secret();
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
      rt->task_id = req->task_id();
      rt->subtask = req->subtask();
      rt->jm_session = req->jm_session();
      rt->thread = std::thread([raw] { raw->task->Run(); });
      NameThread(rt->thread, req->task_id() + "-" + std::to_string(req->subtask()));
      tasks_[exec_id] = std::move(rt);
    }
    return grpc::Status::OK;
  }

  grpc::Status Ping(grpc::ServerContext*, const proto::PingRequest*,
                    proto::PingResponse* resp) override {
    resp->set_tm_id(options_.tm_id);
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
    if (std::string why = FencedLocked(req->job_id(), req->attempt(), req->jm_session());
        !why.empty()) {
      return grpc::Status(
          grpc::StatusCode::FAILED_PRECONDITION,
          "checkpoint " + std::to_string(req->checkpoint_id()) + " refused: " + why);
    }
    it->second->task->TriggerCheckpoint(req->checkpoint_id(), req->timestamp_ms(), req->options());
    return grpc::Status::OK;
  }

  grpc::Status NotifyCheckpoint(grpc::ServerContext*, const proto::NotifyCheckpointRequest* req,
                                proto::Empty*) override {
    std::lock_guard<std::mutex> lock(mu_);
    // Fencing (docs/recovery.md): nothing of a replaced attempt, or of another job manager's,
    // is committed here.
    if (std::string why = FencedLocked(req->job_id(), req->attempt(), req->jm_session());
        !why.empty()) {
      Log()->warn("job={} attempt={} checkpoint={}: notification refused: {}", req->job_id(),
                  req->attempt(), req->checkpoint_id(), why);
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "checkpoint " + std::to_string(req->checkpoint_id()) +
                              " notification refused, nothing committed: " + why);
    }
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
    std::string task_id;
    int subtask = 0;
    std::string jm_session;  // of the job manager that deployed it
    std::atomic<bool> done{false};
  };

  // Why a checkpoint call for (job, attempt) from the job manager of session `session` must
  // be refused here, or "" if it may proceed. Refused: while this task manager is cut off
  // from the job manager (it cancelled its tasks); a session other than the one that deployed
  // the attempt's tasks here; an attempt older than one of the same job running here.
  // Cancels the tasks of such a replaced attempt. Under mu_.
  std::string FencedLocked(const std::string& job, int attempt, const std::string& session) {
    std::vector<RunningTask> running;
    running.reserve(tasks_.size());
    for (const auto& [id, rt] : tasks_) {
      running.push_back({rt->job_id, rt->attempt, rt->jm_session, rt->done.load()});
    }
    FenceDecision d = DecideFence(cut_off_, running, job, attempt, session);
    if (d.replaced_by > 0) {
      CancelAttemptLocked(job, attempt, "attempt " + std::to_string(d.replaced_by) + " runs here");
    }
    return d.refused;
  }

  // Cancels every task of (job, attempt) here. Under mu_; the attempt's channels are released
  // by the caller (off the lock) or by the tasks as they end.
  int CancelAttemptLocked(const std::string& job, int attempt, const std::string& why) {
    std::vector<Task*> matching;
    for (auto& [id, rt] : tasks_) {
      if (rt->job_id == job && rt->attempt == attempt && !rt->done) {
        rt->task->MarkCancelled();
        matching.push_back(rt->task.get());
      }
    }
    if (!matching.empty()) {
      Log()->warn("job={} attempt={}: cancelling {} task(s): {}", job, attempt, matching.size(),
                  why);
    }
    for (Task* t : matching) t->Cancel();
    return static_cast<int>(matching.size());
  }

  Result<std::shared_ptr<const ExecutionPlan>> PlanFor(const std::string& job, int attempt,
                                                       const proto::JobGraph& graph) {
    const JobAttempt key{job, attempt};
    std::lock_guard<std::mutex> lock(plan_mu_);
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second;
    WEIR_ASSIGN_OR_RETURN(JobSpec spec, FromProto(graph));
    WEIR_ASSIGN_OR_RETURN(ExecutionPlan plan, BuildPlan(std::move(spec), BuiltinOperators()));
    WEIR_RETURN_IF_ERROR(CheckJobPaths(plan, BuiltinOperators(), options_.allowed_paths));
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

  // The shared-directory check (docs/deployment.md, "Several hosts"): the job manager's probe
  // file must hold its token as read from this host, and this host must be able to write and
  // read back a file there.
  Status CheckSharedDir(const proto::DescribeClusterResponse& d) {
    if (d.probe_file().empty()) return Status::Ok();
    const std::string hint = "; the checkpoint directory " + d.checkpoint_dir() +
                             " must be the same shared directory (e.g. an NFS mount) on every "
                             "host (docs/deployment.md)";
    std::ifstream in(d.probe_file(), std::ios::binary);
    if (!in) {
      return Status::FailedPrecondition("cannot read the job manager's probe file " +
                                        d.probe_file() + ": " + strerror(errno) + hint);
    }
    std::string token((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (token != d.probe_token()) {
      return Status::FailedPrecondition("the job manager's probe file " + d.probe_file() +
                                        " does not hold the job manager's token here" + hint);
    }
    std::mt19937_64 rng{std::random_device{}()};
    const std::string mine = std::to_string(rng());
    const std::string file =
        d.checkpoint_dir() + "/.weir-probe/tm-" + options_.tm_id + "-" + std::to_string(getpid());
    {
      std::ofstream out(file, std::ios::binary | std::ios::trunc);
      out << mine;
      out.flush();
      if (!out) {
        return Status::FailedPrecondition("cannot write the probe file " + file + ": " +
                                          strerror(errno) + hint);
      }
    }
    std::ifstream back(file, std::ios::binary);
    std::string read((std::istreambuf_iterator<char>(back)), std::istreambuf_iterator<char>());
    std::error_code ec;
    std::filesystem::remove(file, ec);
    if (read != mine) {
      return Status::FailedPrecondition("the probe file " + file +
                                        " did not read back what was written" + hint);
    }
    return Status::Ok();
  }

  // Registers (after the shared-directory check). An answer that will not change by itself
  // (the check fails, the job manager refuses the advertised address) ends the task manager
  // when it has never registered yet: a configuration error, named in the log.
  bool Register() {
    {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      proto::DescribeClusterRequest dreq;
      dreq.set_tm_id(options_.tm_id);
      proto::DescribeClusterResponse d;
      grpc::Status s = jm_->DescribeCluster(&ctx, dreq, &d);
      if (!s.ok()) {
        Log()->warn("registration with job manager {} failed: DescribeCluster: {}",
                    options_.jobmanager_address, s.error_message());
        return false;
      }
      Status shared = CheckSharedDir(d);
      if (!shared.ok()) {
        if (ever_registered_) {
          Log()->error("not registering again: {}", shared.message());
        } else {
          Fail(shared);
        }
        return false;
      }
    }
    grpc::ClientContext ctx;
    // Longer than the job manager's dial-back of the advertised address (2 s).
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    proto::RegisterTaskManagerRequest req;
    req.set_tm_id(options_.tm_id);
    req.set_rpc_address(rpc_address_);
    req.set_data_address(data_address_);
    req.set_slots(options_.slots);
    req.set_metrics_address(metrics_address_);
    proto::RegisterTaskManagerResponse resp;
    grpc::Status s = jm_->RegisterTaskManager(&ctx, req, &resp);
    if (!s.ok()) {
      if (s.error_code() == grpc::StatusCode::FAILED_PRECONDITION && !ever_registered_) {
        Fail(Status::FailedPrecondition("registration with job manager " +
                                        options_.jobmanager_address +
                                        " refused: " + s.error_message()));
        return false;
      }
      Log()->warn("registration with job manager {} failed: {}", options_.jobmanager_address,
                  s.error_message());
      return false;
    }
    ever_registered_ = true;
    if (resp.heartbeat_interval_ms() > 0) heartbeat_interval_ms_ = resp.heartbeat_interval_ms();
    if (resp.heartbeat_timeout_ms() > 0) heartbeat_timeout_ms_ = resp.heartbeat_timeout_ms();
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

  // How long after its last successful contact with the job manager this task manager cancels
  // its own tasks: a heartbeat interval before the job manager would declare it lost (the
  // job manager's clock starts later, when it receives the heartbeat), so its tasks are gone
  // before the job manager deploys their replacements.
  std::chrono::milliseconds FenceAfter() const {
    const int64_t t = heartbeat_timeout_ms_ > 2 * heartbeat_interval_ms_
                          ? heartbeat_timeout_ms_ - heartbeat_interval_ms_
                          : heartbeat_timeout_ms_ / 2;
    return std::chrono::milliseconds(std::max<int64_t>(t, 1));
  }

  // Cut off from the job manager for FenceAfter(): cancels every task here, and refuses
  // checkpoint calls until the job manager answers again (heartbeat thread).
  void FenceIfCutOff(std::chrono::steady_clock::time_point last_ok) {
    const auto silent = std::chrono::steady_clock::now() - last_ok;
    if (silent < FenceAfter()) return;
    std::set<JobAttempt> attempts;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (cut_off_) return;
      cut_off_ = true;
      for (const auto& [id, rt] : tasks_) {
        if (!rt->done) attempts.insert({rt->job_id, rt->attempt});
      }
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(silent).count();
      if (!attempts.empty()) Log()->error(
          "no answer from job manager {} for {} ms (its heartbeat timeout is {} ms): "
          "cancelling the tasks of {} job attempt(s) here (fencing)",
          options_.jobmanager_address, ms, heartbeat_timeout_ms_, attempts.size());
      for (const auto& [job, attempt] : attempts) {
        CancelAttemptLocked(job, attempt, "cut off from the job manager");
      }
    }
    for (const auto& [job, attempt] : attempts) {
      network_.ReleaseChannels(ChannelKeyPrefix(job, attempt));
    }
  }

  // Cancels every task here (heartbeat thread).
  void CancelAll(const std::string& why) {
    std::set<JobAttempt> attempts;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [id, rt] : tasks_) {
        if (!rt->done) attempts.insert({rt->job_id, rt->attempt});
      }
      for (const auto& [job, attempt] : attempts) CancelAttemptLocked(job, attempt, why);
    }
    for (const auto& [job, attempt] : attempts) {
      network_.ReleaseChannels(ChannelKeyPrefix(job, attempt));
    }
  }

  // Contact with the job manager again (heartbeat thread).
  void NoteContact() {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_off_) Log()->info("job manager {} answers again", options_.jobmanager_address);
    cut_off_ = false;
  }

  // Cancels the attempts the job manager says it replaced (heartbeat thread).
  void CancelStale(const proto::HeartbeatResponse& resp) {
    std::vector<JobAttempt> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const proto::AttemptRef& a : resp.stale()) {
        if (CancelAttemptLocked(a.job_id(), a.attempt(), "the job manager replaced this attempt") >
            0) {
          released.push_back({a.job_id(), a.attempt()});
        }
      }
    }
    for (const auto& [job, attempt] : released) {
      network_.ReleaseChannels(ChannelKeyPrefix(job, attempt));
    }
  }

  // The attempts with a task running here, and who deployed them (for the heartbeat).
  void AddAttempts(proto::HeartbeatRequest* req) {
    std::set<std::tuple<std::string, int, std::string>> seen;
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, rt] : tasks_) {
      if (rt->done || !seen.insert({rt->job_id, rt->attempt, rt->jm_session}).second) continue;
      proto::AttemptRef* a = req->add_attempts();
      a->set_job_id(rt->job_id);
      a->set_attempt(rt->attempt);
      a->set_jm_session(rt->jm_session);
    }
  }

  void HeartbeatLoop() {
    bool registered = false;
    auto last_ok = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
      lock.unlock();
      // Overdue (e.g. this process was stopped, or a call hung): fence before talking to the job
      // manager again, so no task of a replaced attempt runs on after contact resumes.
      if (std::chrono::steady_clock::now() - last_ok >= FenceAfter()) FenceIfCutOff(last_ok);
      if (!registered) {
        registered = Register();
        if (registered) last_ok = std::chrono::steady_clock::now();
      } else {
        // The call returns by the time this task manager must fence itself at the latest.
        const auto sent = std::chrono::steady_clock::now();
        const auto fence_in =
            std::chrono::duration_cast<std::chrono::milliseconds>(last_ok + FenceAfter() - sent);
        grpc::ClientContext ctx;
        ctx.set_deadline(
            std::chrono::system_clock::now() +
            std::clamp(fence_in, std::chrono::milliseconds(100), std::chrono::milliseconds(2000)));
        proto::HeartbeatRequest req;
        req.set_tm_id(options_.tm_id);
        for (auto& r : SampleSubtasks()) *req.add_metrics() = std::move(r);
        AddAttempts(&req);
        proto::HeartbeatResponse resp;
        grpc::Status s = jm_->Heartbeat(&ctx, req, &resp);
        if (s.ok() && !resp.known()) {
          // It declared this task manager lost, and failed over every job that ran here: the
          // tasks here belong to replaced attempts.
          Log()->warn("job manager does not know this task manager; registering again");
          CancelAll("the job manager declared this task manager lost");
          registered = Register();
          if (registered) last_ok = std::chrono::steady_clock::now();
        } else if (!s.ok()) {
          Log()->warn("heartbeat failed: {}", s.error_message());
        } else {
          last_ok = sent;  // the job manager's clock for this task manager started after this
          CancelStale(resp);
        }
      }
      if (std::chrono::steady_clock::now() - last_ok < FenceAfter()) {
        NoteContact();
      } else {
        FenceIfCutOff(last_ok);
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
      // Wake up in time to fence, should the job manager stay silent.
      const auto fence_in = std::chrono::duration_cast<std::chrono::milliseconds>(
          last_ok + FenceAfter() - std::chrono::steady_clock::now());
      const auto wait = std::chrono::milliseconds(registered ? heartbeat_interval_ms_ : 500);
      stop_cv_.wait_for(lock, cut_off_ || fence_in.count() <= 0
                                  ? wait
                                  : std::min(wait, fence_in + std::chrono::milliseconds(1)));
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
  std::string rpc_address_, data_address_, metrics_address_;
  int64_t heartbeat_interval_ms_ = 1000;
  int64_t heartbeat_timeout_ms_ = 5000;  // the job manager's, from its registration answer
  std::string jm_session_;  // heartbeat thread only
  bool ever_registered_ = false;  // heartbeat thread only
  std::thread heartbeat_;
  std::map<std::string, SubtaskSampler> samplers_;  // by execution id; heartbeat thread only
  // What /metrics shows: the heartbeat thread's last sample of every running subtask.
  mutable std::mutex scrape_mu_;
  std::vector<proto::SubtaskMetricsReport> scrape_reports_;
  std::vector<std::vector<MetricPoint>> scrape_points_;
  std::vector<int64_t> scrape_lates_;
  std::shared_ptr<ScrapeCollectable> scrape_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<TlsFront> metrics_https_;  // with TLS, in front of exposer_; reset in Stop

  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false, stopped_ = false;
  Status fatal_;          // why the task manager gave up (Wait() returns it)
  bool cut_off_ = false;  // fenced: no contact with the job manager for FenceAfter()
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
Status TaskManager::Wait() {
  return impl_->Wait();
}
void TaskManager::Stop() { impl_->Stop(); }
void TaskManager::RequestStop() { impl_->RequestStop(); }
const std::string& TaskManager::id() const { return impl_->id(); }

}  // namespace weir::tm
