#include "weir/jobmanager/server.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <future>
#include <thread>

#include "weir.grpc.pb.h"
#include "weir/builtins.h"
#include "weir/clock.h"
#include "weir/executor.h"
#include "weir/jobmanager/metrics.h"
#include "weir/jobmanager/rest_server.h"
#include "weir/net_address.h"
#include "weir/thread_name.h"

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
  Service(JobManager* jm, const RpcSecurity* security) : jm_(jm), sec_(security) {}

  grpc::Status RegisterTaskManager(grpc::ServerContext* ctx,
                                   const proto::RegisterTaskManagerRequest* req,
                                   proto::RegisterTaskManagerResponse* resp) override {
    if (auto st = sec_->CheckMember(*ctx, "RegisterTaskManager"); !st.ok()) return st;
    if (req->tm_id().empty() || req->slots() < 1 || req->rpc_address().empty() ||
        req->data_address().empty()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "registration needs tm_id, rpc_address, data_address and slots >= 1");
    }
    for (const std::string* a : {&req->rpc_address(), &req->data_address()}) {
      auto hp = ParseHostPort(*a, /*port_optional=*/false, "registration of " + req->tm_id());
      if (!hp.ok() || hp->port == 0 || IsWildcardHost(hp->host)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "task manager " + req->tm_id() + " advertises '" + *a +
                                "', which peers cannot dial (needs host:port, no wildcard "
                                "host, no port 0)");
      }
    }
    auto r = jm_->RegisterTaskManager(*req);
    if (!r.ok()) return ToGrpc(r.status());
    *resp = std::move(r).value();
    return grpc::Status::OK;
  }
  grpc::Status DescribeCluster(grpc::ServerContext* ctx, const proto::DescribeClusterRequest*,
                               proto::DescribeClusterResponse* resp) override {
    if (auto st = sec_->CheckMember(*ctx, "DescribeCluster"); !st.ok()) return st;
    *resp = describe_;
    return grpc::Status::OK;
  }
  // What DescribeCluster answers (set before serving).
  void SetDescription(proto::DescribeClusterResponse d) { describe_ = std::move(d); }
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const proto::HeartbeatRequest* req,
                         proto::HeartbeatResponse* resp) override {
    if (auto st = sec_->CheckMember(*ctx, "Heartbeat"); !st.ok()) return st;
    *resp = jm_->Heartbeat(*req);
    return grpc::Status::OK;
  }
  grpc::Status UpdateTaskState(grpc::ServerContext* ctx, const proto::TaskStateUpdate* req,
                               proto::TaskStateAck*) override {
    if (auto st = sec_->CheckMember(*ctx, "UpdateTaskState"); !st.ok()) return st;
    jm_->UpdateTaskState(*req);
    return grpc::Status::OK;
  }
  grpc::Status SubmitJob(grpc::ServerContext* ctx, const proto::SubmitJobRequest* req,
                         proto::SubmitJobResponse* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "SubmitJob"); !st.ok()) return st;
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
  grpc::Status ListJobs(grpc::ServerContext* ctx, const proto::ListJobsRequest*,
                        proto::ListJobsResponse* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "ListJobs"); !st.ok()) return st;
    for (auto& j : jm_->ListJobs()) *resp->add_jobs() = std::move(j);
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext* ctx, const proto::JobId* req, proto::JobInfo* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "GetJob"); !st.ok()) return st;
    auto r = jm_->GetJob(req->job_id());
    if (!r.ok()) return ToGrpc(r.status());
    *resp = r.value();
    return grpc::Status::OK;
  }
  grpc::Status CancelJob(grpc::ServerContext* ctx, const proto::JobId* req,
                         proto::CancelJobResponse* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "CancelJob"); !st.ok()) return st;
    auto r = jm_->CancelJob(req->job_id());
    if (!r.ok()) return ToGrpc(r.status());
    resp->set_state(ToProto(r.value()));
    return grpc::Status::OK;
  }
  grpc::Status AcknowledgeCheckpoint(grpc::ServerContext* ctx,
                                     const proto::AcknowledgeCheckpointRequest* req,
                                     proto::Empty*) override {
    if (auto st = sec_->CheckMember(*ctx, "AcknowledgeCheckpoint"); !st.ok()) return st;
    jm_->AcknowledgeCheckpoint(*req);
    return grpc::Status::OK;
  }
  grpc::Status DeclineCheckpoint(grpc::ServerContext* ctx, const proto::DeclineCheckpointRequest* req,
                                 proto::Empty*) override {
    if (auto st = sec_->CheckMember(*ctx, "DeclineCheckpoint"); !st.ok()) return st;
    jm_->DeclineCheckpoint(*req);
    return grpc::Status::OK;
  }
  grpc::Status TriggerSavepoint(grpc::ServerContext* ctx, const proto::SavepointRequest* req,
                                proto::SavepointResponse* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "TriggerSavepoint"); !st.ok()) return st;
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
  grpc::Status ListTaskManagers(grpc::ServerContext* ctx, const proto::ListTaskManagersRequest*,
                                proto::ListTaskManagersResponse* resp) override {
    if (auto st = sec_->CheckUser(*ctx, "ListTaskManagers"); !st.ok()) return st;
    for (auto& t : jm_->ListTaskManagers()) *resp->add_taskmanagers() = std::move(t);
    return grpc::Status::OK;
  }

 private:
  JobManager* jm_;
  const RpcSecurity* sec_;
  proto::DescribeClusterResponse describe_;
};

// The shared-directory probe (docs/deployment.md, "Several hosts"): the job manager writes its
// session into <checkpoint_dir>/.weir-probe/jm-<session> at start (one file per job manager,
// so clusters sharing a directory do not disturb each other; removed at Stop, and those of
// job managers killed more than a day ago at the next start); each task manager reads it
// back before registering, which proves it sees the same directory.
Result<proto::DescribeClusterResponse> WriteSharedProbe(const std::string& checkpoint_dir,
                                                        const std::string& session) {
  proto::DescribeClusterResponse d;
  d.set_checkpoint_dir(checkpoint_dir);
  d.set_jm_session(session);
  if (checkpoint_dir.empty()) return d;
  const std::string dir = checkpoint_dir + "/.weir-probe";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return Status::IoError("checkpoint directory " + checkpoint_dir + ": cannot create " + dir +
                           ": " + ec.message());
  }
  const auto day_ago = std::filesystem::file_time_type::clock::now() - std::chrono::hours(24);
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code ec2;
    if (e.path().filename().string().rfind("jm-", 0) == 0 && e.last_write_time(ec2) < day_ago &&
        !ec2) {
      std::filesystem::remove(e.path(), ec2);
    }
  }
  const std::string file = dir + "/jm-" + session;
  Status st = WriteFileAtomically(file, session);
  if (!st.ok()) {
    return Status::IoError("checkpoint directory " + checkpoint_dir +
                           ": cannot write the shared-directory probe: " + st.message());
  }
  d.set_probe_file(file);
  d.set_probe_token(session);
  return d;
}

}  // namespace

class JobManagerServer::Impl {
 public:
  explicit Impl(ServerOptions o) : options_(std::move(o)) {}

  // An address others can reach needs TLS and the token, or an explicit --insecure.
  Status CheckExposure() {
    const RpcSecurity& sec = options_.security;
    std::vector<std::string> exposed;
    if (!IsLoopbackAddress(BindAddress())) exposed.push_back(BindAddress());
    if (!options_.rest_address.empty() && options_.rest_address != "off" &&
        !IsLoopbackAddress(options_.rest_address)) {
      exposed.push_back(options_.rest_address);
    }
    if (exposed.empty() || (sec.tls() && sec.has_token())) return Status::Ok();
    std::string list;
    for (const auto& a : exposed) list += (list.empty() ? "" : ", ") + a;
    if (!options_.insecure) {
      return Status::FailedPrecondition(
          "refusing to serve on " + list + " (not loopback) without security.tls and "
          "security.token_file (docs/security.md); pass --insecure to do it anyway");
    }
    spdlog::warn("serving on {} WITHOUT {}: anyone who reaches it controls the cluster (--insecure)",
                 list, sec.tls() ? "a token" : (sec.has_token() ? "TLS" : "TLS or a token"));
    return Status::Ok();
  }

  Result<int> Start() {
    WEIR_RETURN_IF_ERROR(CheckExposure());
    jm_ = std::make_unique<JobManager>(
        options_.jm, NewGrpcTaskManagerGateway(options_.security.MemberChannelCredentials()), NowMs,
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
    service_ = std::make_unique<Service>(jm_.get(), &options_.security);
    WEIR_ASSIGN_OR_RETURN(proto::DescribeClusterResponse description,
                          WriteSharedProbe(options_.jm.checkpoints.directory, jm_->session()));
    probe_file_ = description.probe_file();
    service_->SetDescription(std::move(description));
    grpc::ServerBuilder builder;
    int port = 0;
    // Client certificates are verified when presented (members) but not required (the CLI
    // proves itself with the token); Service checks each call.
    builder.AddListeningPort(
        BindAddress(),
        options_.security.ServerCredentials(RpcSecurity::ClientCerts::kVerifyIfPresent), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    if (!server_ || port == 0) {
      return Status::IoError("cannot listen on " + BindAddress() + " (address in use or invalid?)");
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
      if (options_.security.has_token()) {
        ro.authorized = [sec = &options_.security](std::string_view h) {
          return sec->TokenMatches(h);
        };
      }
      ro.jm = options_.jm;
      ro.tls_cert_pem = options_.security.cert_pem();  // HTTPS with security.tls
      ro.tls_key_pem = options_.security.key_pem();
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
    NameThread(ticker_, "jm-ticker");
    return port;
  }

  int rest_port() const { return rest_port_; }

  // Where gRPC listens: rpc_bind, else the advertised rpc_address.
  const std::string& BindAddress() const {
    return options_.rpc_bind.empty() ? options_.rpc_address : options_.rpc_bind;
  }

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
    if (!probe_file_.empty()) {
      std::error_code ec;
      std::filesystem::remove(probe_file_, ec);
    }
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
  std::string probe_file_;  // the shared-directory probe, removed at Stop()
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
