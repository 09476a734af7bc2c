// The built-ins both registries share as they are: the ones that need neither RocksDB nor
// librdkafka to run (map, filter, project, parse, lookup_join, and the connectors of
// weir_connectors).
// Defined in weir_catalog; weir_builtins adds the runnable keyed and Kafka factories, the
// catalog their validation-only specs. Called once per registry, before it is shared.
#pragma once

#include "weir/operator.h"

namespace weir {

void RegisterLightOperators(OperatorRegistry& registry);

}  // namespace weir
