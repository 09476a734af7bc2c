// weir-jobmanager: a thin main over weir::jm::JobManagerServer.
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "weir/config.h"
#include "weir/jobmanager/server.h"
#include "weir/net_address.h"
#include "weir/security.h"
#include "weir/signals.h"

namespace {

// The `jobmanager:` section of a cluster config file over the defaults in `opts`. Errors name
// the file and the key.
weir::Status ApplyConfig(const std::string& file, weir::jm::ServerOptions* opts) {
  WEIR_ASSIGN_OR_RETURN(weir::Config cfg, weir::Config::Load(file, file));
  WEIR_ASSIGN_OR_RETURN(weir::Config jm, cfg.GetMap("jobmanager"));
  weir::jm::JobManagerOptions& o = opts->jm;
  WEIR_ASSIGN_OR_RETURN(opts->rpc_address, jm.GetString("rpc_address", opts->rpc_address));
  WEIR_ASSIGN_OR_RETURN(opts->rpc_bind, jm.GetString("rpc_bind", opts->rpc_bind));
  WEIR_ASSIGN_OR_RETURN(opts->rest_address, jm.GetString("rest_address", opts->rest_address));
  WEIR_ASSIGN_OR_RETURN(opts->web_dir, jm.GetString("web_dir", opts->web_dir));
  WEIR_ASSIGN_OR_RETURN(o.heartbeat_timeout_ms,
                        jm.GetDurationMs("heartbeat_timeout", o.heartbeat_timeout_ms));
  WEIR_ASSIGN_OR_RETURN(o.heartbeat_interval_ms,
                        jm.GetDurationMs("heartbeat_interval", o.heartbeat_interval_ms));
  WEIR_ASSIGN_OR_RETURN(o.slot_wait_timeout_ms,
                        jm.GetDurationMs("slot_wait_timeout", o.slot_wait_timeout_ms));
  WEIR_ASSIGN_OR_RETURN(o.checkpoints.directory,
                        jm.GetString("checkpoint_dir", o.checkpoints.directory));
  WEIR_ASSIGN_OR_RETURN(o.savepoint_dir, jm.GetString("savepoint_dir", o.savepoint_dir));
  WEIR_ASSIGN_OR_RETURN(o.checkpoints.interval_ms,
                        jm.GetDurationMs("checkpoint_interval", o.checkpoints.interval_ms));
  WEIR_ASSIGN_OR_RETURN(o.checkpoints.timeout_ms,
                        jm.GetDurationMs("checkpoint_timeout", o.checkpoints.timeout_ms));
  WEIR_ASSIGN_OR_RETURN(int64_t retained, jm.GetInt("checkpoints_retained", o.checkpoints.retained));
  o.checkpoints.retained = static_cast<int>(retained);
  WEIR_ASSIGN_OR_RETURN(o.ha_dir, jm.GetString("ha_dir", o.ha_dir));
  WEIR_ASSIGN_OR_RETURN(int64_t rj, jm.GetInt("retained_jobs", o.retained_jobs));
  if (rj < 0 || rj > 1000000) {
    return weir::Status::InvalidArgument(file + ": jobmanager.retained_jobs: must be >= 0, got " +
                                         std::to_string(rj));
  }
  o.retained_jobs = static_cast<int>(rj);
  // security: TLS, the bearer token (docs/security.md), allowed_paths.
  WEIR_ASSIGN_OR_RETURN(weir::SecurityOptions sec, weir::ParseSecurityOptions(cfg));
  WEIR_ASSIGN_OR_RETURN(opts->security, weir::RpcSecurity::Create(sec));
  o.allowed_paths = sec.allowed_paths;  // docs/security-policy.md
  return weir::Status::Ok();
}

// Write then rename, so a reader never sees a partial file.
void WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  if (FILE* f = fopen(tmp.c_str(), "w")) {
    fprintf(f, "%d\n", port);
    fclose(f);
    rename(tmp.c_str(), path.c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Weir job manager"};
  std::string config_file;
  std::string rpc_address;
  int64_t hb_timeout = -1, slot_timeout = -1;
  int retained_jobs = -1;
  app.add_option("--retained-jobs", retained_jobs,
                 "finished jobs kept for list/status (default 100); older ones are forgotten");
  app.add_option("--config", config_file, "cluster config file (YAML), see deploy/weir.yaml");
  bool insecure = false;
  app.add_flag("--insecure", insecure,
               "serve on a non-loopback address without TLS and a token (warns; for trusted "
               "networks only)");
  app.add_option("--rpc-address", rpc_address,
                 "host:port task managers and the CLI dial; also bound unless --rpc-bind "
                 "(default 127.0.0.1:6123)");
  std::string rpc_bind;
  app.add_option("--rpc-bind", rpc_bind,
                 "host:port gRPC listens on, e.g. 0.0.0.0:6123 (default: --rpc-address)");
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
  std::string rest_address, rest_port_file, web_dir;
  app.add_option("--rest-address", rest_address,
                 "host:port of the REST API and web UI (default 127.0.0.1:8081; port 0: "
                 "ephemeral; 'off': none)");
  app.add_option("--rest-port-file", rest_port_file,
                 "write the bound REST port here once serving (for port 0 in tests)");
  app.add_option("--web-dir", web_dir,
                 "directory of the web UI's files (default: the source tree's ui/)");
  CLI11_PARSE(app, argc, argv);

  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ [%n] %v");
  weir::jm::ServerOptions opts;
  opts.jm.checkpoints.directory = "/tmp/weir/checkpoints";
  opts.jm.savepoint_dir = "/tmp/weir/savepoints";
  if (!config_file.empty()) {
    weir::Status st = ApplyConfig(config_file, &opts);
    if (!st.ok()) {
      spdlog::error("config: {}", st.message());
      return 2;
    }
  }
  if (!rpc_address.empty()) opts.rpc_address = rpc_address;
  if (!rpc_bind.empty()) opts.rpc_bind = rpc_bind;
  // Addresses are checked here, so a typo is named before anything starts.
  for (const auto& [what, value] : {std::pair<std::string, std::string>{
                                        "jobmanager.rpc_address (--rpc-address)", opts.rpc_address},
                                    {"jobmanager.rpc_bind (--rpc-bind)", opts.rpc_bind}}) {
    if (value.empty()) continue;
    auto hp = weir::ParseHostPort(value, /*port_optional=*/false, what);
    if (!hp.ok()) {
      spdlog::error("{}", hp.status().message());
      return 2;
    }
  }
  if (!rest_address.empty()) opts.rest_address = rest_address;
  if (!web_dir.empty()) opts.web_dir = web_dir;
  if (hb_timeout > 0) opts.jm.heartbeat_timeout_ms = hb_timeout;
  if (slot_timeout > 0) opts.jm.slot_wait_timeout_ms = slot_timeout;
  if (!checkpoint_dir.empty()) opts.jm.checkpoints.directory = checkpoint_dir;
  if (!savepoint_dir.empty()) opts.jm.savepoint_dir = savepoint_dir;
  if (!ha_dir.empty()) opts.jm.ha_dir = ha_dir;
  if (retained_jobs >= 0) opts.jm.retained_jobs = retained_jobs;
  opts.insecure = insecure;

  // Signals are taken by one thread with sigwait, so shutdown runs in normal context.
  weir::BlockTerminationSignals();

  weir::jm::JobManagerServer server(opts);
  auto port = server.Start();
  if (!port.ok()) {
    spdlog::error("{}", port.status().message());
    return 1;
  }
  if (opts.rpc_bind.empty()) {
    spdlog::info("weir-jobmanager listening on {} (port {})", opts.rpc_address, *port);
  } else {
    spdlog::info("weir-jobmanager listening on {} (port {}), advertised as {}", opts.rpc_bind,
                 *port, opts.rpc_address);
  }
  if (server.rest_port() > 0) {
    const std::string host = opts.rest_address.substr(0, opts.rest_address.rfind(':'));
    spdlog::info("web UI and REST API: {}://{}:{}/", opts.security.tls() ? "https" : "http", host,
                 server.rest_port());
  }
  // The REST port file first: a test that waits for the gRPC port file then finds both.
  if (!rest_port_file.empty()) WritePortFile(rest_port_file, server.rest_port());
  if (!port_file.empty()) WritePortFile(port_file, *port);
  weir::TerminationSignalWatcher signals([&](int s) {
    spdlog::info("signal {}: shutting down", s);
    server.RequestStop();
  });
  server.Wait();
  server.Stop();
  return 0;
}
