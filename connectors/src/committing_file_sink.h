// The exactly-once file sink `committing_file` (see committing_file_sink.cc).
#pragma once

#include <memory>

#include "weir/operator.h"

namespace weir {

std::unique_ptr<OperatorFactory> MakeCommittingFileSinkFactory();
// Decodes the sink's lists in restored operator state (pending files, writers, partitions,
// event time; versioned or legacy) without touching any file: OK, or the DataLoss /
// FailedPrecondition the sink's Open would fail with. Every name it accepts stays inside the
// sink's directory. For the fuzz target (tests/fuzz/operator_state_fuzz.cc); any thread.
Status CheckCommittingFileRestoredState(const RestoredState& restored);
// `parse` (parse.cc): JSON / CSV / raw to typed rows, with a dirty-data output.

}  // namespace weir
