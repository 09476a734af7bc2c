// The exactly-once file sink `committing_file` (see committing_file_sink.cc).
#pragma once

#include <memory>

#include "weir/operator.h"

namespace weir {

std::unique_ptr<OperatorFactory> MakeCommittingFileSinkFactory();
// `parse` (parse.cc): JSON / CSV / raw to typed rows, with a dirty-data output.

}  // namespace weir
