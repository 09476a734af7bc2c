#include "weir/builtins.h"
#include "weir/jobmanager/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <thread>

#include "weir.grpc.pb.h"
#include "weir/clock.h"
#include "weir/executor.h"
#include "weir/jobmanager/metrics.h"
#include "weir/jobmanager/rest_server.h"

namespace weir::jm {
namespace {

grpc::Status ToGrpc(const Status& s) {
  if (s.ok()) return grpc::Status::OK;
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case StatusCode::kInvalidArgument: code = grpc::StatusCode::INVALID_ARGUMENT; break;
    case StatusCode::kNotFound: code = grpc::StatusCode::NOT_FOUND; break;
    case StatusCode::kAlreadyExists: code = grpc::StatusCode::ALREADY_EXISTS; break;
    case StatusCode::kFailedPrecondition: code = grpc::StatusCode::FAILED_PRECONDITION; break;
    case StatusCode::kResourceExhausted: code = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case StatusCode::kUnavailable: code = grpc::StatusCode::UNAVAILABLE; break;
    case StatusCode::kCancelled: code = grpc::StatusCode::CANCELLED; break;
    case StatusCode::kDeadlineExceeded: code = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    default: code = grpc::StatusCode::INTERNAL; break;
  }
  return grpc::Status(code, s.message());
}

class Service final : public proto::JobManagerService::Service {
 public:
  explicit Service(JobManager* jm) : jm_(jm) {}

  grpc::Status RegisterTaskManager(grpc::ServerContext*, const proto::RegisterTaskManagerRequest* req,
                                   proto::RegisterTaskManagerResponse* resp) override {
    if (req->tm_id().empty() || req->slots() < 1 || req->rpc_address().empty() ||
        req->data_address().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "registration needs tm_id, rpc_address, data_address and slots >= 1");
    }
    *resp = jm_->RegisterTaskManager(*req);
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const proto::HeartbeatRequest* req,
                         proto::HeartbeatResponse* resp) override {
    *resp = jm_->Heartbeat(*req);
    return grpc::Status::OK;
  }
  grpc::Status UpdateTaskState(grpc::ServerContext*, const proto::TaskStateUpdate* req,
                               proto::TaskStateAck*) override {
    jm_->UpdateTaskState(*req);
    return grpc::Status::OK;
  }
  grpc::Status SubmitJob(grpc::ServerContext*, const proto::SubmitJobRequest* req,
                         proto::SubmitJobResponse* resp) override {
    // Exceptions stay inside modules by design; this guard keeps a client's job graph from
    // ever taking the server down should one escape (e.g. from the YAML library).
    Result<std::string> r = Status::Internal("unset");
    try {
      r = jm_->SubmitJob(req->graph(), req->restore_path(), req->allow_non_restored_state());
    } catch (const std::exception& e) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          std::string("job graph rejected: ") + e.what());
    }
    if (!r.ok()) return ToGrpc(r.status());
    resp->set_job_id(r.value());
    return grpc::Status::OK;
  }
  grpc::Status ListJobs(grpc::ServerContext*, const proto::ListJobsRequest*,
                        proto::ListJobsResponse* resp) override {
    for (auto& j : jm_->ListJobs()) *resp->add_jobs() = std::move(j);
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext*, const proto::JobId* req, proto::JobInfo* resp) override {
    auto r = jm_->GetJob(req->job_id());
    if (!r.ok()) return ToGrpc(r.status());
    *resp = r.value();
    return grpc::Status::OK;
  }
  grpc::Status CancelJob(grpc::ServerContext*, const proto::JobId* req,
                         proto::CancelJobResponse* resp) override {
    auto r = jm_->CancelJob(req->job_id());
    if (!r.ok()) return ToGrpc(r.status());
    resp->set_state(ToProto(r.value()));
    return grpc::Status::OK;
  }
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext*,
                                     const proto::AcknowledgeCheckpointRequest* req,
                                     proto::Empty*) override {
    jm_->AcknowledgeCheckpoint(*req);
    return grpc::Status::OK;
  }
  grpc::Status DeclineCheckpoint(grpc::ServerContext*, const proto::DeclineCheckpointRequest* req,
                                 proto::Empty*) override {
    jm_->DeclineCheckpoint(*req);
    return grpc::Status::OK;
  }
  grpc::Status TriggerSavepoint(grpc::ServerContext* ctx, const proto::SavepointRequest* req,
                                proto::SavepointResponse* resp) override {
    auto promise = std::make_shared<std::promise<Result<proto::SavepointResponse>>>();
    auto future = promise->get_future();
    jm_->TriggerSavepoint(*req, [promise](Result<proto::SavepointResponse> r) {
      promise->set_value(std::move(r));
    });
    // The coordinator fails the savepoint at its checkpoint timeout; wait for the outcome or
    // for the client to give up.
    while (future.wait_for(std::chrono::milliseconds(200)) != std::future_status::ready) {
      if (ctx->IsCancelled()) {
        return grpc::Status(grpc::StatusCode::CANCELLED, "client gave up waiting");
      }
    }
    auto r = future.get();
    if (!r.ok()) return ToGrpc(r.status());
    *resp = r.value();
    return grpc::Status::OK;
  }
  grpc::Status ListTaskManagers(grpc::ServerContext*, const proto::ListTaskManagersRequest*,
                                proto::ListTaskManagersResponse* resp) override {
    for (auto& t : jm_->ListTaskManagers()) *resp->add_taskmanagers() = std::move(t);
    return grpc::Status::OK;
  }

 private:
  JobManager* jm_;
};

}  // namespace

class JobManagerServer::Impl {
 public:
  explicit Impl(ServerOptions o) : options_(std::move(o)) {}

  Result<int> Start() {
    jm_ = std::make_unique<JobManager>(
        options_.jm, NewGrpcTaskManagerGateway(), NowMs,
        [this](const std::string& lane, std::function<void()> fn) {
          Status st = executor_.Submit(lane, std::move(fn));
          // Only a lane whose task manager has been hung for a long time fills up; the
          // heartbeat timeout removes it, and its calls are moot by then.
          if (!st.ok()) spdlog::warn("dropped a call: {}", st.message());
        },
        &BuiltinOperators());
    auto recovered = jm_->RecoverJobs();
    if (!recovered.ok()) return recovered.status();
    if (*recovered > 0) {
      spdlog::info("resuming {} job(s) from the HA directory {}", *recovered, options_.jm.ha_dir);
    }
    service_ = std::make_unique<Service>(jm_.get());
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.rpc_address, grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      return Status::IoError("cannot listen on " + options_.rpc_address +
                             " (address in use or invalid?)");
    }
    if (!options_.rest_address.empty() && options_.rest_address != "off") {
      RestOptions ro;
      ro.address = options_.rest_address;
      ro.web_dir = options_.web_dir;
      ro.metrics_text = options_.metrics_text;
      if (!ro.metrics_text) {
        ro.metrics_text = [jm = jm_.get()] { return JobManagerMetricsText(*jm, NowMs()); };
      }
      ro.rpc_address = options_.rpc_address;
      ro.jm = options_.jm;
      rest_ = std::make_unique<RestServer>(std::move(ro), jm_.get());
      auto rp = rest_->Start();
      if (!rp.ok()) {
        rest_.reset();
        return rp.status();
      }
      rest_port_ = *rp;
    }
    ticker_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(mu_);
      while (!stop_) {
        cv_.wait_for(lock, std::chrono::milliseconds(100));
        if (stop_) break;
        lock.unlock();
        jm_->Tick();
        lock.lock();
      }
    });
    return port;
  }

  int rest_port() const { return rest_port_; }

  void Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_; });
  }

  void RequestStop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stopped_) return;
      stopped_ = stop_ = true;
    }
    cv_.notify_all();
    if (rest_) rest_->Stop();  // joins its workers, which call jm_
    if (ticker_.joinable()) ticker_.join();
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }

 private:
  ServerOptions options_;
  std::unique_ptr<JobManager> jm_;
  // Declared after jm_ so it is destroyed first: it drains queued calls, which use jm_.
  // Lanes: one per task manager (a hung one holds one thread) and "io" for disk work.
  static constexpr int kExecutorThreads = 8;
  weir::Executor executor_{"jm-exec", kExecutorThreads};
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<RestServer> rest_;  // its worker threads are joined in Stop()
  int rest_port_ = 0;
  std::thread ticker_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool stopped_ = false;
};

JobManagerServer::JobManagerServer(ServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}
JobManagerServer::~JobManagerServer() { impl_->Stop(); }
Result<int> JobManagerServer::Start() { return impl_->Start(); }
int JobManagerServer::rest_port() const { return impl_->rest_port(); }
void JobManagerServer::Wait() { impl_->Wait(); }
void JobManagerServer::Stop() { impl_->Stop(); }
void JobManagerServer::RequestStop() { impl_->RequestStop(); }

}  // namespace weir::jm
