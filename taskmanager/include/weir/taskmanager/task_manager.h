// The task manager process: registers its slots with the job manager, heartbeats, runs deployed
// subtasks (one thread each, joined when it ends), runs checkpoint uploads on a bounded
// executor it owns, and hosts the data plane (weir/network.h). Start() and Stop() are
// called from the main thread; the gRPC handlers and task threads run concurrently and share
// state under one mutex.
#pragma once

#include <memory>
#include <vector>
#include <string>

#include "weir/status.h"
#include "weir/rpc_security.h"
#include "weir/task.h"

namespace weir::tm {

struct TaskManagerOptions {
  std::string tm_id;                            // default: tm-<pid>-<random>
  std::string jobmanager_address = "127.0.0.1:6123";
  // Addresses (docs/deployment.md, "Several hosts"): what the servers bind, and what the job
  // manager and the other task managers are told to dial.
  std::string rpc_address = "127.0.0.1:0";      // gRPC bind host:port; port 0: ephemeral
  std::string data_host = "127.0.0.1";          // data plane bind host (name or IPv4)
  int data_port = 0;                            // 0: ephemeral
  // Advertised: "host" (with the bound port) or "host:port". Empty: `host`, else the bind
  // host (a wildcard bind host then is an error: nobody can dial 0.0.0.0).
  std::string rpc_advertise;
  std::string data_advertise;
  std::string host;  // advertised host of both when they are not given (taskmanager.host)
  int slots = 2;
  // Local working directory for state backends (RocksDB instances of running subtasks).
  // Default: <tmp>/weir-<tm_id>.
  std::string state_dir;
  NetworkOptions network;
  TaskOptions task;
  // Threads that run the asynchronous part of checkpoints (state uploads, then the
  // acknowledgement) for every subtask here; owned by the task manager, joined at Stop().
  int upload_threads = 2;
  // Prometheus /metrics (docs/metrics.md); port 0: ephemeral (the job manager lists the bound
  // address); empty or "off": none.
  std::string metrics_address = "127.0.0.1:0";
  // TLS (docs/security.md): with certificates, the TaskManagerService accepts only callers
  // presenting a certificate of the cluster's CA (the job manager), and this task manager
  // presents its own to the job manager.
  RpcSecurity security;
  // security.allowed_paths (weir/security.h), checked again on DeployTask (the job manager
  // checks at submission): file sink outputs and checkpointing.dir. Empty: any path.
  std::vector<std::string> allowed_paths;
};

class TaskManager {
 public:
  explicit TaskManager(TaskManagerOptions options);
  ~TaskManager();
  Status Start();
  // Blocks until RequestStop() (e.g. from a signal thread), or until the task manager gives
  // up on its own: its first registration was refused (the job manager cannot reach its
  // advertised address) or it does not see the job manager's checkpoint directory. Returns
  // that error then, Ok otherwise.
  Status Wait();
  void RequestStop();
  // Cancels tasks, joins threads, closes servers. Main thread only.
  void Stop();
  const std::string& id() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir::tm
