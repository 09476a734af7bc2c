// The job manager process: the JobManager logic behind a gRPC JobManagerService, a tick thread,
// an executor (weir/executor.h) with a lane per task manager and one for disk work, and the
// REST API / web UI (weir/jobmanager/rest_server.h). Start() and Stop() from the main thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "weir/jobmanager/job_manager.h"
#include "weir/rpc_security.h"

namespace weir::jm {

struct ServerOptions {
  // The address task managers and the CLI dial (jobmanager.rpc_address), and the one gRPC
  // binds unless `rpc_bind` is set (jobmanager.rpc_bind, e.g. 0.0.0.0:6123 behind a name).
  std::string rpc_address = "127.0.0.1:6123";
  std::string rpc_bind;
  // REST API and web UI (host:port; port 0: ephemeral). Empty or "off": no REST server.
  std::string rest_address = "127.0.0.1:8081";
  std::string web_dir;  // the UI's files; empty: the source tree's ui/ (compiled in)
  // Prometheus text for GET /metrics; unset: JobManagerMetricsText (weir/jobmanager/metrics.h).
  std::function<std::string()> metrics_text;
  JobManagerOptions jm;
  // TLS and the bearer token (docs/security.md). Without both, Start() refuses an address that
  // is not loopback (gRPC or REST) unless `insecure`, and then warns.
  RpcSecurity security;
  bool insecure = false;
};

class JobManagerServer {
 public:
  explicit JobManagerServer(ServerOptions options);
  ~JobManagerServer();
  // Binds and starts serving; returns the bound gRPC port (useful with port 0). Fails, naming
  // the address, if the gRPC or the REST address cannot be bound, or if the default
  // checkpoint directory cannot be written (the shared-directory probe goes there).
  Result<int> Start();
  // The bound REST port after Start(); 0 if REST is off.
  int rest_port() const;
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
