#include <grpcpp/grpcpp.h>

#include <map>
#include <mutex>

#include "weir.grpc.pb.h"
#include "weir/jobmanager/gateway.h"

namespace weir::jm {
namespace {

class GrpcGateway : public TaskManagerGateway {
 public:
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

 private:
  static Status Convert(const grpc::Status& s) {
    if (s.ok()) return Status::Ok();
    return Status::Unavailable(s.error_message() + " (gRPC code " +
                               std::to_string(static_cast<int>(s.error_code())) + ")");
  }
  proto::TaskManagerService::Stub* Stub(const std::string& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& stub = stubs_[addr];
    if (!stub) {
      stub = proto::TaskManagerService::NewStub(
          grpc::CreateChannel(addr, grpc::InsecureChannelCredentials()));
    }
    return stub.get();
  }
  std::mutex mu_;
  std::map<std::string, std::unique_ptr<proto::TaskManagerService::Stub>> stubs_;
};

}  // namespace

std::unique_ptr<TaskManagerGateway> NewGrpcTaskManagerGateway() {
  return std::make_unique<GrpcGateway>();
}

}  // namespace weir::jm
