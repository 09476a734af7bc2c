// weir-taskmanager: a thin main over weir::tm::TaskManager.
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include "weir/config.h"
#include "weir/net_address.h"
#include "weir/security.h"
#include "weir/signals.h"
#include "weir/taskmanager/task_manager.h"

namespace {

// The `taskmanager:` section (and the job manager's address from `jobmanager:`) of a cluster
// config file over the defaults in `opts`. Errors name the key.
weir::Status ApplyConfig(const std::string& file, weir::tm::TaskManagerOptions* opts) {
  using weir::Status;
  WEIR_ASSIGN_OR_RETURN(weir::Config cfg, weir::Config::Load(file, file));
  WEIR_ASSIGN_OR_RETURN(weir::Config tm, cfg.GetMap("taskmanager"));
  WEIR_ASSIGN_OR_RETURN(weir::Config jm, cfg.GetMap("jobmanager"));
  WEIR_ASSIGN_OR_RETURN(opts->jobmanager_address,
                        jm.GetString("rpc_address", opts->jobmanager_address));
  WEIR_ASSIGN_OR_RETURN(int64_t slots, tm.GetInt("slots", opts->slots));
  WEIR_ASSIGN_OR_RETURN(opts->data_host, tm.GetString("data_host", opts->data_host));
  // Addresses (docs/deployment.md, "Several hosts"): bind and advertised, each checked here so
  // that an error names the key.
  WEIR_ASSIGN_OR_RETURN(opts->host, tm.GetString("host", opts->host));
  WEIR_ASSIGN_OR_RETURN(opts->rpc_address, tm.GetString("rpc_bind", opts->rpc_address));
  WEIR_ASSIGN_OR_RETURN(opts->rpc_advertise, tm.GetString("rpc_advertise", opts->rpc_advertise));
  WEIR_ASSIGN_OR_RETURN(std::string data_bind, tm.GetString("data_bind", ""));
  if (!data_bind.empty()) {
    WEIR_ASSIGN_OR_RETURN(weir::HostPort hp,
                          weir::ParseHostPort(data_bind, true, "taskmanager.data_bind"));
    opts->data_host = hp.host;
    if (hp.port >= 0) opts->data_port = hp.port;
  }
  WEIR_ASSIGN_OR_RETURN(opts->data_advertise, tm.GetString("data_advertise", opts->data_advertise));
  WEIR_ASSIGN_OR_RETURN(
      int64_t bpc,
      tm.GetInt("buffers_per_channel", static_cast<int64_t>(opts->network.buffers_per_channel)));
  WEIR_ASSIGN_OR_RETURN(int64_t bsz,
                        tm.GetBytes("buffer_size", static_cast<int64_t>(opts->task.buffer_bytes)));
  WEIR_ASSIGN_OR_RETURN(opts->task.buffer_timeout_ms,
                        tm.GetDurationMs("buffer_timeout", opts->task.buffer_timeout_ms));
  if (slots < 1 || slots > 4096 || bpc < 1 || bpc > 65536 || bsz < 1024 || bsz > (1 << 30)) {
    return Status::InvalidArgument(
        "taskmanager.slots (1..4096), buffers_per_channel (1..65536) and buffer_size "
        "(1kb..1gb) out of range");
  }
  opts->slots = static_cast<int>(slots);
  opts->network.buffers_per_channel = static_cast<size_t>(bpc);
  opts->task.buffer_bytes = static_cast<size_t>(bsz);
  WEIR_ASSIGN_OR_RETURN(int64_t bc,
                        tm.GetBytes("rocksdb_block_cache",
                                    static_cast<int64_t>(opts->task.rocksdb_block_cache_bytes)));
  if (bc < (1 << 20)) {
    return Status::InvalidArgument("taskmanager.rocksdb_block_cache: must be >= 1mb");
  }
  opts->task.rocksdb_block_cache_bytes = static_cast<size_t>(bc);
  WEIR_ASSIGN_OR_RETURN(
      int64_t sc, tm.GetBytes("state_cache", static_cast<int64_t>(opts->task.state_cache_bytes)));
  if (sc < 0 || sc > (int64_t{64} << 30)) {
    return Status::InvalidArgument("taskmanager.state_cache: must be 0 (off) to 64gb, got " +
                                   std::to_string(sc) + " bytes");
  }
  opts->task.state_cache_bytes = static_cast<size_t>(sc);
  WEIR_ASSIGN_OR_RETURN(int64_t ut, tm.GetInt("upload_threads", opts->upload_threads));
  if (ut < 1 || ut > 64) {
    return Status::InvalidArgument("taskmanager.upload_threads: must be 1..64, got " +
                                   std::to_string(ut));
  }
  opts->upload_threads = static_cast<int>(ut);
  WEIR_ASSIGN_OR_RETURN(opts->state_dir, tm.GetString("state_dir", opts->state_dir));
  WEIR_ASSIGN_OR_RETURN(opts->metrics_address,
                        tm.GetString("metrics_address", opts->metrics_address));
  WEIR_ASSIGN_OR_RETURN(weir::SecurityOptions sec, weir::ParseSecurityOptions(cfg));
  WEIR_ASSIGN_OR_RETURN(opts->security, weir::RpcSecurity::Create(sec));
  // security.tls: mutual TLS on the data plane too (docs/data-plane.md).
  opts->network.tls = sec.tls;
  // security.allowed_paths, checked again on DeployTask (docs/security-policy.md).
  opts->allowed_paths = sec.allowed_paths;
  return Status::Ok();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Weir task manager"};
  std::string config_file, id, jm, rpc, data_host;
  int slots = -1, data_port = -1;
  app.add_option("--config", config_file, "cluster config file (YAML), see deploy/weir.yaml");
  app.add_option("--id", id, "task manager id (default: generated)");
  app.add_option("--jobmanager", jm, "job manager host:port (default 127.0.0.1:6123)");
  app.add_option("--rpc-bind,--rpc-address", rpc,
                 "host:port gRPC listens on (default 127.0.0.1:0, ephemeral)");
  std::string rpc_advertise, data_bind, data_advertise, host;
  app.add_option("--rpc-advertise", rpc_advertise,
                 "host[:port] the job manager dials (default: --host, else the bind host; "
                 "the bound port)");
  app.add_option("--data-bind", data_bind,
                 "host[:port] the data plane listens on (default 127.0.0.1:0)");
  app.add_option("--data-host", data_host,
                 "host the data plane listens on (default 127.0.0.1; see --data-bind)");
  app.add_option("--data-port", data_port, "data plane port (default 0, ephemeral)");
  app.add_option("--data-advertise", data_advertise,
                 "host[:port] other task managers dial for data (default: --host, else the "
                 "bind host; the bound port)");
  app.add_option("--host", host,
                 "this host's name or address as the others should dial it: the advertised "
                 "host of RPC and data when not given separately");
  app.add_option("--slots", slots, "number of slots (default 2)");
  int64_t block_cache_mb = -1;
  app.add_option("--rocksdb-block-cache-mb", block_cache_mb,
                 "block cache of each RocksDB state DB, MiB (default 64)");
  std::string state_dir, metrics_address;
  app.add_option("--metrics-address", metrics_address,
                 "host:port of Prometheus /metrics (default 127.0.0.1:0, ephemeral; off: none)");
  app.add_option("--state-dir", state_dir,
                 "local directory for state backends (default: a temp dir)");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  // File sinks keep one file open per partition and RocksDB keeps its SST files open: use the
  // whole file-handle allowance the system grants, not the conservative soft default.
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &nofile) != 0) spdlog::warn("cannot raise the open-file limit");
  }
  weir::tm::TaskManagerOptions opts;
  if (!config_file.empty()) {
    weir::Status st = ApplyConfig(config_file, &opts);
    if (!st.ok()) {
      spdlog::error("config: {}", st.message());
      return 2;
    }
  }
  if (!id.empty()) opts.tm_id = id;
  if (!jm.empty()) opts.jobmanager_address = jm;
  if (!rpc.empty()) opts.rpc_address = rpc;
  if (!data_host.empty()) opts.data_host = data_host;
  if (data_port >= 0) opts.data_port = data_port;
  if (!data_bind.empty()) {
    auto hp = weir::ParseHostPort(data_bind, true, "--data-bind");
    if (!hp.ok()) {
      spdlog::error("{}", hp.status().message());
      return 2;
    }
    opts.data_host = hp->host;
    if (hp->port >= 0) opts.data_port = hp->port;
  }
  if (!rpc_advertise.empty()) opts.rpc_advertise = rpc_advertise;
  if (!data_advertise.empty()) opts.data_advertise = data_advertise;
  if (!host.empty()) opts.host = host;
  {
    // Every address is checked before anything starts: the error names the setting.
    std::vector<weir::Status> checks;
    checks.push_back(
        weir::ParseHostPort(opts.rpc_address, false, "taskmanager.rpc_bind (--rpc-bind)").status());
    checks.push_back(
        weir::ParseHostPort(opts.jobmanager_address, false, "jobmanager.rpc_address (--jobmanager)")
            .status());
    if (!opts.rpc_advertise.empty()) {
      checks.push_back(weir::ParseHostPort(opts.rpc_advertise, true,
                                           "taskmanager.rpc_advertise (--rpc-advertise)")
                           .status());
    }
    if (!opts.data_advertise.empty()) {
      checks.push_back(weir::ParseHostPort(opts.data_advertise, true,
                                           "taskmanager.data_advertise (--data-advertise)")
                           .status());
    }
    if (!opts.host.empty()) {
      auto hp = weir::ParseHostPort(opts.host, true, "taskmanager.host (--host)");
      weir::Status st = hp.status();
      if (hp.ok() && hp->port >= 0) {
        st = weir::Status::InvalidArgument("taskmanager.host (--host): '" + opts.host +
                                           "' has a port; give a host only");
      }
      checks.push_back(st);
    }
    if (opts.data_port < 0 || opts.data_port > 65535) {
      checks.push_back(weir::Status::InvalidArgument("--data-port: must be 0..65535"));
    }
    for (const weir::Status& st : checks) {
      if (!st.ok()) {
        spdlog::error("{}", st.message());
        return 2;
      }
    }
  }
  if (slots > 0) opts.slots = slots;
  if (!state_dir.empty()) opts.state_dir = state_dir;
  if (!metrics_address.empty()) opts.metrics_address = metrics_address;
  if (block_cache_mb >= 0) {
    if (block_cache_mb < 1) {
      spdlog::error("--rocksdb-block-cache-mb: must be >= 1");
      return 2;
    }
    opts.task.rocksdb_block_cache_bytes = static_cast<size_t>(block_cache_mb) << 20;
  }

  weir::BlockTerminationSignals();

  weir::tm::TaskManager tm(opts);
  weir::Status st = tm.Start();
  if (!st.ok()) {
    spdlog::error("{}", st.ToString());
    return 1;
  }
  weir::TerminationSignalWatcher signals([&](int s) {
    spdlog::info("signal {}: shutting down", s);
    tm.RequestStop();
  });
  st = tm.Wait();
  tm.Stop();
  if (!st.ok()) {
    spdlog::error("task manager {} gave up: {}", tm.id(), st.message());
    return 1;
  }
  return 0;
}
