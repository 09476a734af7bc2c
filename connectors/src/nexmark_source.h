// The `nexmark` source: Nexmark's Person, Auction and Bid events (nexmark_generator.h), with
// its position kept as generator splits (generator_splits.h). docs/nexmark.md.
#pragma once

#include <memory>

#include "weir/operator.h"

namespace weir {

std::unique_ptr<OperatorFactory> MakeNexmarkSourceFactory();

}  // namespace weir
