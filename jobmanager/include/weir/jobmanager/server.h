// The job manager process: the JobManager logic behind a gRPC JobManagerService, a tick thread
// and an executor (weir/executor.h) with a lane per task manager and one for disk work. Start() and Stop() from the main thread.
#pragma once

#include <memory>
#include <string>

#include "weir/jobmanager/job_manager.h"

namespace weir::jm {

struct ServerOptions {
  std::string rpc_address = "127.0.0.1:6123";
  JobManagerOptions jm;
};

class JobManagerServer {
 public:
  explicit JobManagerServer(ServerOptions options);
  ~JobManagerServer();
  // Binds and starts serving; returns the bound port (useful with port 0).
  Result<int> Start();
  // Blocks until RequestStop() is called from another thread (e.g. a signal thread).
  void Wait();
  void RequestStop();
  // Stops serving and joins threads. Main thread only.
  void Stop();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::jm
