#include "kafka_common.h"

#include <fstream>
#include <string_view>

#include "weir/logging.h"

namespace weir::kafka {

const ModuleLog Log("connectors");

Status CheckProperties(const std::vector<std::pair<std::string, std::string>>& props,
                       const std::string& path) {
  // The policy first (again: a plan may not come from ParseProperties), before librdkafka sees
  // any name, since setting plugin.library.paths already loads the library.
  for (const auto& [key, value] : props) {
    WEIR_RETURN_IF_ERROR(CheckPropertyPolicy(key, value, path));
  }
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  Status st;
  for (const auto& [key, value] : props) {
    char err[512];
    if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      st = Status::InvalidArgument(path + "." + key + ": " + err);
      break;
    }
  }
  rd_kafka_conf_destroy(conf);
  return st;
}

Result<std::string> ResolveBootstrap(const std::string& bootstrap, const std::string& file) {
  if (!bootstrap.empty()) return bootstrap;
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line) || line.empty()) {
    return Status::NotFound("bootstrap_file " + file + ": cannot read a bootstrap list from it");
  }
  return line;
}

Result<rd_kafka_conf_t*> MakeConf(const std::vector<std::pair<std::string, std::string>>& props,
                                  const std::vector<std::pair<std::string, std::string>>& defaults,
                                  const std::vector<std::pair<std::string, std::string>>& forced) {
  for (const auto& [k, v] : props) {
    WEIR_RETURN_IF_ERROR(CheckPropertyPolicy(k, v, "kafka properties"));
  }
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set = [&](const std::string& k, const std::string& v) -> Status {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      return Status::InvalidArgument("kafka property " + k + ": " + err);
    }
    return Status::Ok();
  };
  Status st;
  for (const auto& [k, v] : props) {
    if (st.ok()) st = set(k, v);
  }
  for (const auto& [k, v] : defaults) {
    bool given = false;
    for (const auto& p : props) given = given || p.first == k;
    if (!given && st.ok()) st = set(k, v);
  }
  for (const auto& [k, v] : forced) {
    if (st.ok()) st = set(k, v);
  }
  if (!st.ok()) {
    rd_kafka_conf_destroy(conf);
    return st;
  }
  return conf;
}

namespace {
void LogCallback(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const auto* o = static_cast<const OpaqueBase*>(rd_kafka_opaque(rk));
  const std::string& prefix = o ? o->log_prefix : std::string();
  // Connection failures (facility FAIL) come as syslog errors for every retry; they also reach
  // the operator's error callback, which logs them once per outage as a warning.
  spdlog::level::level_enum l = level <= 2                     ? spdlog::level::err
                                : std::string_view(fac) == "FAIL" ? spdlog::level::info
                                : level <= 4                   ? spdlog::level::warn
                                : level <= 6                   ? spdlog::level::info
                                                               : spdlog::level::debug;
  Log()->log(l, "{} librdkafka {}: {}", prefix, fac, buf);
}
}  // namespace

void SetLogCallback(rd_kafka_conf_t* conf) { rd_kafka_conf_set_log_cb(conf, LogCallback); }

}  // namespace weir::kafka
