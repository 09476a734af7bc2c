// Kafka source and sink configuration, parsed and checked without librdkafka: the plans the
// connectors run from, the source's output schema, and validation-only factories (kind and
// Validate) for processes that check job files but never run Kafka (the CLI). The full
// factories (kafka.h, library weir_kafka) extend these with librdkafka's own check of
// `properties:` and with Create. Plain functions; thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weir/config.h"
#include "weir/operator.h"
#include "weir/operator_state.h"
#include "weir/status.h"
#include "weir/types.h"

namespace weir::kafka {

enum class StartMode { kEarliest, kLatest, kGroup, kSpecific };
enum class OutOfRange { kFail, kEarliest, kLatest };

struct TopicPartition {
  std::string topic;
  int32_t partition = 0;
  bool operator<(const TopicPartition& o) const {
    return topic != o.topic ? topic < o.topic : partition < o.partition;
  }
  std::string Name() const { return topic + "/" + std::to_string(partition); }
};

struct KafkaSourcePlan {
  std::string bootstrap, bootstrap_file;
  std::vector<std::string> topics;
  std::string topic_pattern;
  std::string group_id;
  StartMode start = StartMode::kGroup;
  bool fallback_latest = false;
  std::map<TopicPartition, int64_t> offsets;
  OutOfRange out_of_range = OutOfRange::kFail;
  int64_t discovery_ms = 10000;
  int64_t max_batch = 1024;
  int64_t idle_wait_ms = 5;
  std::vector<std::pair<std::string, std::string>> properties;
};

struct KafkaSinkPlan {
  std::string bootstrap, bootstrap_file;
  std::string topic;
  std::vector<int> key_fields;
  Schema key_schema;
  bool raw = false;
  int value_field = -1;
  int timestamp_field = -1;
  int64_t flush_timeout_ms = 10000;
  std::vector<std::pair<std::string, std::string>> properties;
};

// `properties:` as ordered key/value strings. Keys in `reserved` are refused with a message
// naming the config key that replaces them (e.g. group.id -> group_id), and so is every
// property CheckPropertyPolicy refuses. Otherwise names and values are not checked here:
// CheckProperties (librdkafka) does that where Kafka runs, after this.
Result<std::vector<std::pair<std::string, std::string>>> ParseProperties(
    const Config& config, const std::map<std::string, std::string>& reserved);

// The job-level policy on librdkafka properties (docs/security-policy.md): properties that
// load code into the process (plugin.library.paths, ssl.engine.location, ssl.providers, ...),
// run commands (sasl.kerberos.kinit.cmd, and the keytab/principal it interpolates unless they
// are plain names), write local files (offset.store.*), fetch URLs (OIDC), or set callbacks and
// pointers are refused. Pure; it never calls librdkafka, so it runs BEFORE any
// rd_kafka_conf_set (which is what loads plugins). `where` prefixes the error, which names the
// property and why. A leading "topic." (librdkafka strips it) is looked through.
Status CheckPropertyPolicy(std::string_view key, std::string_view value, const std::string& where);

// The bootstrap list: `bootstrap` (host:port,...), or `bootstrap_file`; exactly one.
Status CheckBootstrapKeys(const Config& config);

// The plans, with every error naming its config key. `properties` unchecked (see above).
Result<KafkaSourcePlan> PlanKafkaSource(const Config& config);
Result<KafkaSinkPlan> PlanKafkaSink(const Config& config, const Schema& input);

// The source's positions in operator state (weir/operator_state.h): "kafka@v1" (UNION),
// KafkaSourceEntry messages.
OperatorListState<proto::KafkaSourceEntry> OffsetState();

// What a source's restored operator state says: "kafka@v1", or else the legacy
// "kafka_offsets" list (savepoints up to 2026-11-30: NUL-joined text entries "p1" topic,
// partition, next and "s1" subtask, parallelism, started). Untrusted bytes: a corrupt entry
// is a DataLoss error, never a crash. Pure; any thread.
struct RestoredOffsets {
  bool any = false;  // the state held the source's list
  // Next offset to read per partition (>= 0, or -2: librdkafka's RD_KAFKA_OFFSET_BEGINNING).
  std::vector<std::pair<TopicPartition, int64_t>> partitions;
  // Every old subtask had applied its first partition discovery.
  bool all_started = false;
};
Result<RestoredOffsets> DecodeOffsetState(const RestoredState* restored);

// The source's rows: key, value, topic, partition, offset, timestamp.
Schema KafkaSchema();

// Validation-only factories: Validate runs the plan above; Create and CreateSource fail.
class KafkaSourceSpec : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSource; }
  Result<Schema> Validate(const Config& config, const Schema&) const override;
};
class KafkaSinkSpec : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override;
};

}  // namespace weir::kafka
