// SecurityOptions: the cluster's `security:` section (docs/security.md), shared by the job
// manager, the task managers and the CLI. Plain data, read once at start; any thread may read it.
//
//   security:
//     tls: {cert: server.pem, key: server.key, ca: ca.pem}   # all three, or none
//     token_file: /etc/weir/token        # bearer token for the CLI and the REST API
//     allowed_paths: [/data/out, /data/checkpoints]          # prefixes jobs may write under
#pragma once

#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/status.h"

namespace weir {

struct TlsFiles {
  std::string cert;  // PEM certificate (chain) of this process
  std::string key;   // PEM private key
  std::string ca;    // PEM CA bundle peers' certificates must chain to
  bool enabled() const { return !cert.empty(); }
};

struct SecurityOptions {
  TlsFiles tls;
  std::string token_file;  // empty: no bearer token required
  // Path prefixes file sinks, dirty outputs, checkpoint and savepoint directories must be
  // under. Empty: any path (the default of an insecure development cluster).
  std::vector<std::string> allowed_paths;
  bool secure() const { return tls.enabled() && !token_file.empty(); }
};

// Reads the `security:` mapping of a cluster config (missing: all off). Errors name the key;
// tls needs cert, key and ca together, and the files must be readable.
Result<SecurityOptions> ParseSecurityOptions(const Config& cluster_config);

// The contents of a file holding a secret (a token), without trailing whitespace. Errors name
// the file; an empty file is an error.
Result<std::string> ReadSecretFile(const std::string& path);

}  // namespace weir
