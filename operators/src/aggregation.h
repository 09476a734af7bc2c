// What keyed_aggregate and window_aggregate share at run time: the glue from operator
// contexts to keyed state stores (their plans are in aggregate_plan.h). The task thread only.
#pragma once

#include <memory>
#include <string>

#include "aggregate_plan.h"
#include "weir/operator.h"
#include "weir/state/typed_state.h"

namespace weir {

// Opens the keyed state store of an operator: the backend named by ctx.state_backend (heap
// when there is no local directory), in <ctx.local_dir>/<subdir>, restored from ctx.restored.
Result<std::unique_ptr<state::KeyedStateStore>> OpenKeyedStateStore(const OperatorContext& ctx,
                                                                    const std::string& subdir);

// Adapts the state module's snapshot upload to the runtime's async keyed snapshot.
std::unique_ptr<AsyncKeyedSnapshot> AdaptKeyedSnapshot(std::unique_ptr<state::SnapshotUpload> u);

}  // namespace weir
