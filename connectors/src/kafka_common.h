// What the Kafka source and sink share: librdkafka configuration from a vertex config (the
// `properties:` pass-through, checked by librdkafka itself), the bootstrap list, and the
// librdkafka log callback into the connectors' logger. Plain functions; thread-safe.
#pragma once

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kafka_config.h"
#include "weir/config.h"
#include "weir/logging.h"
#include "weir/status.h"

namespace weir::kafka {

// The connectors' logger, for librdkafka's log callback and the Kafka operators.
extern const ModuleLog Log;

// librdkafka's own check of `properties:` (rd_kafka_conf_set on each), so a typo fails at
// submission. Errors name `path`.<key>.
Status CheckProperties(const std::vector<std::pair<std::string, std::string>>& props,
                       const std::string& path);

// The first line of `bootstrap_file` (as the dev broker writes it), read now, unless
// `bootstrap` is given.
Result<std::string> ResolveBootstrap(const std::string& bootstrap, const std::string& file);

// A conf with `props` applied, then `defaults` for the keys `props` does not set, then
// `forced`. Errors name the property.
Result<rd_kafka_conf_t*> MakeConf(const std::vector<std::pair<std::string, std::string>>& props,
                                  const std::vector<std::pair<std::string, std::string>>& defaults,
                                  const std::vector<std::pair<std::string, std::string>>& forced);

// What librdkafka's callbacks find through rd_kafka_opaque(): the operator's log prefix. The
// operator derives from it and sets itself as the conf's opaque; it outlives its rd_kafka_t.
struct OpaqueBase {
  std::string log_prefix;
};

// Routes librdkafka's log lines (from its own threads) to the connectors' logger, prefixed by
// the OpaqueBase's log prefix.
void SetLogCallback(rd_kafka_conf_t* conf);

}  // namespace weir::kafka
