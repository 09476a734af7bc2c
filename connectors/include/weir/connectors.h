// Built-in connectors that need no client library of an external system: datagen (source),
// print, blackhole, a plain JSON-lines file sink, an exactly-once one committed by checkpoints
// (committing_file). Kafka is in weir/kafka.h; parse is an operator (weir/operators.h).
// Factories are stateless; each created operator belongs to one subtask thread.
#pragma once

#include <string>

#include "weir/operator.h"
#include "weir/types.h"

namespace weir {

// Registers datagen, print, blackhole, file and committing_file.
void RegisterConnectors(OperatorRegistry& registry);

// Appends `row` as one JSON object (no newline) with the names of `schema`. Timestamps are
// strings in the canonical text of weir/text_formats.h ("2026-11-21 07:00:00.000", UTC).
void AppendJson(const Row& row, const Schema& schema, std::string* out);

}  // namespace weir
