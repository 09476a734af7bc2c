// Kafka connectors: the source `kafka` and the at-least-once sink `kafka_sink` (librdkafka).
// KafkaPartitionOwner and the specs are in weir_connectors; the factories in weir_kafka.
// See docs/kafka.md for offsets in state, commit-on-notify, the partition assignment rule,
// watermarks and outage behavior.
//
// Factories are stateless and thread-safe; each created operator belongs to one subtask thread
// (the source runs one extra thread of its own for partition discovery).
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "weir/operator.h"

namespace weir {

// The connectors (library weir_kafka, which links librdkafka): Validate also has librdkafka
// check `properties:`.
std::unique_ptr<OperatorFactory> MakeKafkaSourceFactory();
std::unique_ptr<OperatorFactory> MakeKafkaSinkFactory();

// Validation only (library weir_connectors, no librdkafka): every check except librdkafka's
// own check of `properties:` names and values; Create and CreateSource fail. For processes
// that validate job files but never run Kafka (the CLI); the job manager validates fully.
std::unique_ptr<OperatorFactory> MakeKafkaSourceSpec();
std::unique_ptr<OperatorFactory> MakeKafkaSinkSpec();

// The assignment rule of the source (Flink's KafkaTopicPartitionAssigner): the subtask of
// `parallelism` that reads `partition` of `topic`. Depends only on its arguments, so every
// subtask computes the same owner without talking to the others, a restore at another
// parallelism re-derives ownership from the state, and a partition or topic that appears later
// never moves an existing partition: start = (31 * java_hash(topic) & 0x7fffffff) % parallelism,
// owner = (start + partition) % parallelism (a topic's partitions go round-robin from a
// topic-dependent start, so several small topics do not all pile onto subtask 0).
int KafkaPartitionOwner(std::string_view topic, int32_t partition, int parallelism);

}  // namespace weir
