// The exactly-once file sink `committing_file` (see committing_file_sink.cc).
#pragma once

#include <memory>

#include "weir/operator.h"

namespace weir {

std::unique_ptr<OperatorFactory> MakeCommittingFileSinkFactory();

}  // namespace weir
