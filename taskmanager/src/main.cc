// weir-taskmanager: a thin main over weir::tm::TaskManager.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include "weir/config.h"
#include "weir/signals.h"
#include "weir/taskmanager/task_manager.h"

int main(int argc, char** argv) {
  CLI::App app{"Weir task manager"};
  std::string config_file, id, jm, rpc, data_host;
  int slots = -1, data_port = -1;
  app.add_option("--config", config_file, "cluster config file (YAML), see deploy/weir.yaml");
  app.add_option("--id", id, "task manager id (default: generated)");
  app.add_option("--jobmanager", jm, "job manager host:port (default 127.0.0.1:6123)");
  app.add_option("--rpc-address", rpc, "host:port for gRPC (default 127.0.0.1:0, ephemeral)");
  app.add_option("--data-host", data_host, "IPv4 address for the data plane (default 127.0.0.1)");
  app.add_option("--data-port", data_port, "data plane port (default 0, ephemeral)");
  app.add_option("--slots", slots, "number of slots (default 2)");
  int64_t block_cache_mb = -1;
  app.add_option("--rocksdb-block-cache-mb", block_cache_mb,
                 "block cache of each RocksDB state DB, MiB (default 64)");
  std::string state_dir;
  app.add_option("--state-dir", state_dir, "local directory for state backends (default: a temp dir)");
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
    auto cfg = weir::Config::Load(config_file, config_file);
    weir::Result<weir::Config> tmc = cfg.ok() ? cfg->GetMap("taskmanager") : cfg;
    weir::Result<weir::Config> jmc = cfg.ok() ? cfg->GetMap("jobmanager") : cfg;
    if (!tmc.ok() || !jmc.ok()) {
      spdlog::error("config: {}", (!tmc.ok() ? tmc.status() : jmc.status()).message());
      return 2;
    }
    auto s = tmc->GetInt("slots", opts.slots);
    auto jma = jmc->GetString("rpc_address", opts.jobmanager_address);
    auto dh = tmc->GetString("data_host", opts.data_host);
    auto bpc = tmc->GetInt("buffers_per_channel", static_cast<int64_t>(opts.network.buffers_per_channel));
    auto bsz = tmc->GetBytes("buffer_size", static_cast<int64_t>(opts.task.buffer_bytes));
    auto bto = tmc->GetDurationMs("buffer_timeout", opts.task.buffer_timeout_ms);
    auto bc = tmc->GetBytes("rocksdb_block_cache",
                            static_cast<int64_t>(opts.task.rocksdb_block_cache_bytes));
    if (!bc.ok() || *bc < (1 << 20)) {
      spdlog::error("config: {}", bc.ok() ? "taskmanager.rocksdb_block_cache: must be >= 1mb"
                                          : bc.status().message());
      return 2;
    }
    opts.task.rocksdb_block_cache_bytes = static_cast<size_t>(*bc);
    auto ut = tmc->GetInt("upload_threads", opts.upload_threads);
    if (!ut.ok() || *ut < 1 || *ut > 64) {
      spdlog::error("config: {}", ut.ok() ? "taskmanager.upload_threads: must be 1..64, got " +
                                                std::to_string(*ut)
                                          : ut.status().message());
      return 2;
    }
    opts.upload_threads = static_cast<int>(*ut);
    auto sd = tmc->GetString("state_dir", std::string());
    if (sd.ok()) opts.state_dir = *sd;
    for (const weir::Status& st : {s.status(), jma.status(), dh.status(), bpc.status(),
                                   bsz.status(), bto.status()}) {
      if (!st.ok()) {
        spdlog::error("config: {}", st.message());
        return 2;
      }
    }
    if (*s < 1 || *bpc < 1 || *bsz < 1024) {
      spdlog::error("config: taskmanager.slots and buffers_per_channel must be >= 1, "
                    "buffer_size >= 1kb");
      return 2;
    }
    opts.slots = static_cast<int>(*s);
    opts.jobmanager_address = *jma;
    opts.data_host = *dh;
    opts.network.buffers_per_channel = static_cast<size_t>(*bpc);
    opts.task.buffer_bytes = static_cast<size_t>(*bsz);
    opts.task.buffer_timeout_ms = *bto;
  }
  if (!id.empty()) opts.tm_id = id;
  if (!jm.empty()) opts.jobmanager_address = jm;
  if (!rpc.empty()) opts.rpc_address = rpc;
  if (!data_host.empty()) opts.data_host = data_host;
  if (data_port >= 0) opts.data_port = data_port;
  if (slots > 0) opts.slots = slots;
  if (!state_dir.empty()) opts.state_dir = state_dir;
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
  tm.Wait();
  tm.Stop();
  return 0;
}
