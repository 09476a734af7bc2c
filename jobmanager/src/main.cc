// weir-jobmanager: a thin main over weir::jm::JobManagerServer.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>

#include "weir/config.h"
#include "weir/signals.h"
#include "weir/jobmanager/server.h"

int main(int argc, char** argv) {
  CLI::App app{"Weir job manager"};
  std::string config_file;
  std::string rpc_address;
  int64_t hb_timeout = -1, slot_timeout = -1;
  int retained_jobs = -1;
  app.add_option("--retained-jobs", retained_jobs,
                 "finished jobs kept for list/status (default 100); older ones are forgotten");
  app.add_option("--config", config_file, "cluster config file (YAML), see deploy/weir.yaml");
  app.add_option("--rpc-address", rpc_address, "host:port for gRPC (default 127.0.0.1:6123)");
  app.add_option("--heartbeat-timeout-ms", hb_timeout, "task manager heartbeat timeout");
  app.add_option("--slot-wait-timeout-ms", slot_timeout, "how long a job waits for slots");
  std::string port_file, checkpoint_dir, savepoint_dir, ha_dir;
  app.add_option("--ha-dir", ha_dir,
                 "record jobs and their latest checkpoints here; a restarted job manager "
                 "resumes them (default: off)");
  app.add_option("--checkpoint-dir", checkpoint_dir,
                 "default checkpoint directory (default /tmp/weir/checkpoints)");
  app.add_option("--savepoint-dir", savepoint_dir,
                 "default savepoint directory (default /tmp/weir/savepoints)");
  app.add_option("--port-file", port_file,
                 "write the bound gRPC port here once serving (for port 0 in tests)");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  weir::jm::ServerOptions opts;
  opts.jm.checkpoints.directory = "/tmp/weir/checkpoints";
  opts.jm.savepoint_dir = "/tmp/weir/savepoints";
  if (!config_file.empty()) {
    auto cfg = weir::Config::Load(config_file, config_file);
    if (!cfg.ok()) {
      spdlog::error("config: {}", cfg.status().message());
      return 2;
    }
    auto jm = cfg->GetMap("jobmanager");
    if (!jm.ok()) {
      spdlog::error("config: {}", jm.status().message());
      return 2;
    }
    auto addr = jm->GetString("rpc_address", opts.rpc_address);
    auto hb = jm->GetDurationMs("heartbeat_timeout", opts.jm.heartbeat_timeout_ms);
    auto hbi = jm->GetDurationMs("heartbeat_interval", opts.jm.heartbeat_interval_ms);
    auto sw = jm->GetDurationMs("slot_wait_timeout", opts.jm.slot_wait_timeout_ms);
    auto cpd = jm->GetString("checkpoint_dir", opts.jm.checkpoints.directory);
    auto spd = jm->GetString("savepoint_dir", opts.jm.savepoint_dir);
    auto cpi = jm->GetDurationMs("checkpoint_interval", opts.jm.checkpoints.interval_ms);
    auto cpt = jm->GetDurationMs("checkpoint_timeout", opts.jm.checkpoints.timeout_ms);
    auto cpr = jm->GetInt("checkpoints_retained", opts.jm.checkpoints.retained);
    auto had = jm->GetString("ha_dir", opts.jm.ha_dir);
    auto rj = jm->GetInt("retained_jobs", opts.jm.retained_jobs);
    if (!rj.ok()) {
      spdlog::error("config: {}", rj.status().message());
      return 2;
    }
    if (*rj < 0) {
      spdlog::error("config: {}: jobmanager.retained_jobs: must be >= 0, got {}", config_file, *rj);
      return 2;
    }
    opts.jm.retained_jobs = static_cast<int>(*rj);
    if (!had.ok()) {
      spdlog::error("config: {}", had.status().message());
      return 2;
    }
    opts.jm.ha_dir = *had;
    for (const weir::Status& s : {addr.status(), hb.status(), hbi.status(), sw.status(),
                                  cpd.status(), spd.status(), cpi.status(), cpt.status(),
                                  cpr.status()}) {
      if (!s.ok()) {
        spdlog::error("config: {}", s.message());
        return 2;
      }
    }
    opts.rpc_address = *addr;
    opts.jm.heartbeat_timeout_ms = *hb;
    opts.jm.heartbeat_interval_ms = *hbi;
    opts.jm.slot_wait_timeout_ms = *sw;
    opts.jm.checkpoints.directory = *cpd;
    opts.jm.savepoint_dir = *spd;
    opts.jm.checkpoints.interval_ms = *cpi;
    opts.jm.checkpoints.timeout_ms = *cpt;
    opts.jm.checkpoints.retained = static_cast<int>(*cpr);
  }
  if (!rpc_address.empty()) opts.rpc_address = rpc_address;
  if (hb_timeout > 0) opts.jm.heartbeat_timeout_ms = hb_timeout;
  if (slot_timeout > 0) opts.jm.slot_wait_timeout_ms = slot_timeout;
  if (!checkpoint_dir.empty()) opts.jm.checkpoints.directory = checkpoint_dir;
  if (!savepoint_dir.empty()) opts.jm.savepoint_dir = savepoint_dir;
  if (!ha_dir.empty()) opts.jm.ha_dir = ha_dir;
  if (retained_jobs >= 0) opts.jm.retained_jobs = retained_jobs;

  // Signals are taken by one thread with sigwait, so shutdown runs in normal context.
  weir::BlockTerminationSignals();

  weir::jm::JobManagerServer server(opts);
  auto port = server.Start();
  if (!port.ok()) {
    spdlog::error("{}", port.status().message());
    return 1;
  }
  spdlog::info("weir-jobmanager listening on {} (port {})", opts.rpc_address, *port);
  if (!port_file.empty()) {
    // Write then rename, so a reader never sees a partial file.
    const std::string tmp = port_file + ".tmp";
    if (FILE* f = fopen(tmp.c_str(), "w")) {
      fprintf(f, "%d\n", *port);
      fclose(f);
      rename(tmp.c_str(), port_file.c_str());
    }
  }
  weir::TerminationSignalWatcher signals([&](int s) {
    spdlog::info("signal {}: shutting down", s);
    server.RequestStop();
  });
  server.Wait();
  server.Stop();
  return 0;
}
