// Built-in transformations. Registration functions fill an OperatorRegistry; called once,
// before the registry is shared. Factories are stateless; each created operator belongs to one
// subtask thread.
#pragma once

#include <memory>

#include "weir/operator.h"

namespace weir {

// map, filter, project (library weir_operators).
void RegisterMapFilterProject(OperatorRegistry& registry);

// parse: typed rows from a string field (JSON, CSV, raw), bad records to its `dirty` side output
// (library weir_operators).
std::unique_ptr<OperatorFactory> MakeParseFactory();

// lookup_join: each row joined with a bounded side table read from a CSV file at Open
// (docs/joins.md; library weir_operators, no state backend).
std::unique_ptr<OperatorFactory> MakeLookupJoinFactory();

// keyed_aggregate and window_aggregate (library weir_keyed_operators, on keyed state).
void RegisterKeyedAggregate(OperatorRegistry& registry);
void RegisterWindowAggregate(OperatorRegistry& registry);

// dedup and top_n (library weir_keyed_operators, on keyed state).
void RegisterDedup(OperatorRegistry& registry);
void RegisterTopN(OperatorRegistry& registry);

// Validation-only factories of keyed_aggregate, window_aggregate, dedup and top_n (library
// weir_operators: no state backend); Create fails.
std::unique_ptr<OperatorFactory> MakeKeyedAggregateSpec();
std::unique_ptr<OperatorFactory> MakeWindowAggregateSpec();
std::unique_ptr<OperatorFactory> MakeDedupSpec();
std::unique_ptr<OperatorFactory> MakeTopNSpec();

// The two-input joins join, interval_join and window_join (docs/joins.md): runnable (library
// weir_keyed_operators) and validation-only (weir_operators).
void RegisterJoins(OperatorRegistry& registry);
void RegisterJoinSpecs(OperatorRegistry& registry);

}  // namespace weir
