#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "weir.grpc.pb.h"
#include "weir/jobmanager/gateway.h"

namespace weir::jm {
namespace {

class GrpcGateway : public TaskManagerGateway {
 public:
  explicit GrpcGateway(std::shared_ptr<grpc::ChannelCredentials> credentials)
      : credentials_(std::move(credentials)) {}
  Status DeployTask(const std::string& addr, const proto::DeployTaskRequest& req) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    proto::DeployTaskResponse resp;
    return Convert(Stub(addr)->DeployTask(&ctx, req, &resp));
  }
  Status TriggerCheckpoint(const std::string& addr,
                           const proto::TriggerCheckpointRequest& req) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    proto::Empty resp;
    return Convert(Stub(addr)->TriggerCheckpoint(&ctx, req, &resp));
  }
  Status NotifyCheckpoint(const std::string& addr,
                          const proto::NotifyCheckpointRequest& req) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    proto::Empty resp;
    return Convert(Stub(addr)->NotifyCheckpoint(&ctx, req, &resp));
  }
  Status CancelJobTasks(const std::string& addr, const std::string& job_id, int attempt) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    proto::CancelJobTasksRequest req;
    req.set_job_id(job_id);
    req.set_attempt(attempt);
    proto::CancelTaskResponse resp;
    return Convert(Stub(addr)->CancelJobTasks(&ctx, req, &resp));
  }

  Result<std::string> Ping(const std::string& addr, int64_t timeout_ms) override {
    // A channel of its own, not the cached one: the address is not trusted yet (a registration
    // that fails leaves nothing behind).
    auto stub = proto::TaskManagerService::NewStub(grpc::CreateChannel(addr, credentials_));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms));
    proto::PingRequest req;
    proto::PingResponse resp;
    Status st = Convert(stub->Ping(&ctx, req, &resp));
    if (!st.ok()) return st;
    return resp.tm_id();
  }

  void Forget(const std::string& addr) override {
    std::shared_ptr<proto::TaskManagerService::Stub> gone;  // released outside the lock
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stubs_.find(addr);
    if (it == stubs_.end()) return;
    gone = std::move(it->second.stub);
    stubs_.erase(it);
  }

 private:
  // gRPC's codes mapped to ours, so that callers can tell "unreachable" from "refused".
  static Status Convert(const grpc::Status& s) {
    if (s.ok()) return Status::Ok();
    const std::string m = s.error_message() + " (gRPC code " +
                          std::to_string(static_cast<int>(s.error_code())) + ")";
    switch (s.error_code()) {
      case grpc::StatusCode::UNAVAILABLE: return Status::Unavailable(m);
      case grpc::StatusCode::DEADLINE_EXCEEDED: return Status::DeadlineExceeded(m);
      case grpc::StatusCode::INVALID_ARGUMENT: return Status::InvalidArgument(m);
      case grpc::StatusCode::NOT_FOUND: return Status::NotFound(m);
      case grpc::StatusCode::ALREADY_EXISTS: return Status::AlreadyExists(m);
      case grpc::StatusCode::FAILED_PRECONDITION: return Status::FailedPrecondition(m);
      case grpc::StatusCode::RESOURCE_EXHAUSTED: return Status::ResourceExhausted(m);
      case grpc::StatusCode::CANCELLED: return Status::Cancelled(m);
      default: return Status::Internal(m);
    }
  }
  // One channel per task manager address, kept while it is in use; the least recently used
  // goes beyond kMaxStubs (task managers that restart come back on new ports), and Forget()
  // drops a lost task manager's at once.
  std::shared_ptr<proto::TaskManagerService::Stub> Stub(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& e = stubs_[addr];
    e.last_use = ++use_counter_;
    if (!e.stub) {
      e.stub = proto::TaskManagerService::NewStub(
          grpc::CreateChannel(addr, credentials_));
    }
    auto stub = e.stub;
    while (stubs_.size() > kMaxStubs) {
      auto oldest = std::min_element(stubs_.begin(), stubs_.end(), [](const auto& a, const auto& b) {
        return a.second.last_use < b.second.last_use;
      });
      stubs_.erase(oldest);
    }
    return stub;
  }
  struct Entry {
    std::shared_ptr<proto::TaskManagerService::Stub> stub;
    uint64_t last_use = 0;
  };
  static constexpr size_t kMaxStubs = 1024;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  std::mutex mu_;
  uint64_t use_counter_ = 0;
  std::map<std::string, Entry> stubs_;
};

}  // namespace

std::unique_ptr<TaskManagerGateway> NewGrpcTaskManagerGateway(
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  return std::make_unique<GrpcGateway>(std::move(credentials));
}

}  // namespace weir::jm
