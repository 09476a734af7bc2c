// RestServer: the job manager's HTTP face. A JSON REST API shaped after Flink's (/overview,
// /jobs, /jobs/:id, /jobs/:id/vertices/:vid, /jobs/:id/checkpoints, /jobs/:id/exceptions,
// /taskmanagers, /config; docs/rest-api.md lists every endpoint) with the actions submit,
// cancel, savepoint and stop-with-savepoint, plus the web UI's static files (ui/) and Debian's
// d3 and Chart.js under /lib/. It calls the JobManager in-process.
//
// Promises: a bad request gets a 4xx with {"errors": ["..."]} naming what is wrong, never a
// crash; request bodies are bounded (kMaxBodyBytes, else 413); the table of asynchronous
// savepoint requests is bounded (kMaxSavepointRequests, oldest forgotten first); static files
// are served only from below their roots (no path traversal).
//
// Threads: civetweb's worker threads (`num_threads`), and with TLS the TlsFront's, are owned
// here: started by Start(), joined by Stop() (or the destructor). Start() and Stop() from one (the
// main) thread; the JobManager must outlive Stop(). Savepoint callbacks run on the JobManager's
// executor and touch only the shared request table, which may outlive this object.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "weir/jobmanager/job_manager.h"
#include "weir/status.h"
#include "weir/tls_front.h"

struct mg_context;

namespace weir::jm {

struct RestOptions {
  std::string address = "127.0.0.1:8081";            // host:port; port 0 binds an ephemeral port
  std::string web_dir;                               // the UI's files (index.html, app.js, ...)
  std::string js_lib_dir = "/usr/share/javascript";  // Debian's libjs-d3, libjs-chart.js
  int num_threads = 4;
  // Prometheus text of the job manager for GET /metrics; unset: 404.
  std::function<std::string()> metrics_text;
  // Set when the cluster has a bearer token: whether an Authorization header carries it. Every
  // API call and /metrics must; unset: open (loopback development cluster).
  std::function<bool(std::string_view authorization)> authorized;
  // With both set (security.tls), `address` serves HTTPS only: Debian 12's civetweb cannot load
  // OpenSSL 3, so civetweb listens on 127.0.0.1 at an ephemeral port behind a TlsFront
  // (weir/tls_front.h) on `address`.
  std::string tls_cert_pem, tls_key_pem;
  // Settings shown by GET /config.
  std::string rpc_address;
  JobManagerOptions jm;
};

class RestServer {
 public:
  static constexpr size_t kMaxBodyBytes = 4 << 20;
  static constexpr size_t kMaxSavepointRequests = 64;

  RestServer(RestOptions options, JobManager* jm);
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  // Binds and starts serving; returns the bound port. An error names the address.
  Result<int> Start();
  // Stops serving and joins the worker threads. Idempotent.
  void Stop();

  class Impl;  // public for civetweb's C callbacks in rest_server.cc

 private:
  std::unique_ptr<Impl> impl_;
  mg_context* ctx_ = nullptr;
  std::unique_ptr<TlsFront> https_;  // with TLS: its threads are joined by Stop()
};

}  // namespace weir::jm
