// The gRPC task manager gateway against a real gRPC server on loopback: a task manager that
// answers with an error is told apart from one that cannot be reached.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "weir.grpc.pb.h"
#include "weir/jobmanager/gateway.h"

namespace weir::jm {
namespace {

// A task manager that refuses every deployment (as one refuses a graph it cannot build).
class RefusingTaskManager final : public proto::TaskManagerService::Service {
  grpc::Status DeployTask(grpc::ServerContext*, const proto::DeployTaskRequest*,
                          proto::DeployTaskResponse*) override {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "job graph rejected: no");
  }
  grpc::Status CancelJobTasks(grpc::ServerContext*, const proto::CancelJobTasksRequest*,
                              proto::CancelTaskResponse*) override {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such job");
  }
};

TEST(GrpcGatewayTest, AnErrorAnswerIsNotUnreachable) {
  RefusingTaskManager service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  ASSERT_TRUE(server && port > 0);
  const std::string addr = "127.0.0.1:" + std::to_string(port);
  auto gw = NewGrpcTaskManagerGateway(grpc::InsecureChannelCredentials());
  Status s = gw->DeployTask(addr, proto::DeployTaskRequest());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("job graph rejected: no"), std::string::npos);
  EXPECT_EQ(gw->CancelJobTasks(addr, "j", 0).code(), StatusCode::kNotFound);
  // Not implemented by this server: an answer too, not an outage.
  Status t = gw->TriggerCheckpoint(addr, proto::TriggerCheckpointRequest());
  EXPECT_NE(t.code(), StatusCode::kUnavailable) << t.ToString();
  server->Shutdown();
  gw->Forget(addr);
  // Nobody listens there now: unreachable.
  Status gone = gw->DeployTask(addr, proto::DeployTaskRequest());
  EXPECT_TRUE(gone.code() == StatusCode::kUnavailable ||
              gone.code() == StatusCode::kDeadlineExceeded)
      << gone.ToString();
}

}  // namespace
}  // namespace weir::jm
