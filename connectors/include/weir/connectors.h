// Built-in connectors: datagen (source), print, blackhole and a plain JSON-lines file sink.
// Factories are stateless; each created operator belongs to one subtask thread.
#pragma once

#include <string>

#include "weir/operator.h"
#include "weir/types.h"

namespace weir {

// Registers datagen, print, blackhole and file into `registry`.
void RegisterConnectors(OperatorRegistry& registry);

// Appends `row` as one JSON object (no newline) with the names of `schema`.
void AppendJson(const Row& row, const Schema& schema, std::string* out);

// "2026-11-21 07:00:00.000" (UTC) for a timestamp in ms.
std::string FormatTimestampMs(int64_t ms);

}  // namespace weir
