// The registries of every built-in operator and connector. Both are built once, on first use,
// and are immutable after: any thread may call these and use the result.
#pragma once

#include "weir/operator.h"

namespace weir {

// Every built-in, able to run (library weir_builtins: links RocksDB and librdkafka). The job
// manager and task managers use this one.
const OperatorRegistry& BuiltinOperators();

// The same types with the same kinds, validation and required keys, for processes that check
// job files but never run them (library weir_catalog: no RocksDB, no librdkafka). Differences
// from BuiltinOperators(): Create/CreateSource of keyed_aggregate, window_aggregate, kafka and
// kafka_sink fail, and Kafka `properties:` names and values are not checked by librdkafka (the
// job manager checks them at submission).
const OperatorRegistry& BuiltinCatalog();

}  // namespace weir
