// Gateways: how the job manager's logic reaches task managers. The gRPC implementation is the
// production one; tests substitute fakes so scheduling and lifecycle logic run without sockets.
// Implementations must be thread-safe.
#pragma once

#include <memory>
#include <string>

#include "weir.pb.h"
#include "weir/status.h"

namespace grpc {
class ChannelCredentials;
}

namespace weir::jm {

class TaskManagerGateway {
 public:
  virtual ~TaskManagerGateway() = default;
  virtual Status DeployTask(const std::string& tm_rpc_address,
                            const proto::DeployTaskRequest& request) = 0;
  virtual Status CancelJobTasks(const std::string& tm_rpc_address, const std::string& job_id,
                                int attempt) = 0;
  virtual Status TriggerCheckpoint(const std::string& tm_rpc_address,
                                   const proto::TriggerCheckpointRequest& request) = 0;
  virtual Status NotifyCheckpoint(const std::string& tm_rpc_address,
                                  const proto::NotifyCheckpointRequest& request) = 0;
  // The id of the task manager answering at this address, within `timeout_ms`: the job
  // manager dials a registering task manager's advertised address before it accepts it.
  // Errors as below (kUnavailable, kDeadlineExceeded: nobody answered there in time).
  virtual Result<std::string> Ping(const std::string& tm_rpc_address, int64_t timeout_ms) = 0;
  // The task manager at this address is gone: release what the gateway holds for it.
  virtual void Forget(const std::string& tm_rpc_address) {}
};

// Errors: kUnavailable and kDeadlineExceeded mean the task manager could not be reached (or
// did not answer in time); any other code is the task manager's own answer (e.g.
// kInvalidArgument for a graph it refuses) and says nothing about its health.
inline bool IsUnreachable(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// Channels to task managers use `credentials` (mutual TLS when the cluster has certificates).
std::unique_ptr<TaskManagerGateway> NewGrpcTaskManagerGateway(
    std::shared_ptr<grpc::ChannelCredentials> credentials);

}  // namespace weir::jm
