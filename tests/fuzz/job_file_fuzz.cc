// libFuzzer target for job files: ParseJobFile + BuildPlan on arbitrary text, then the proto
// round trip the job manager sees. Checks the contract besides crashes: a rejected job is an
// InvalidArgument with a message, and an accepted one survives ToProto/FromProto/BuildPlan.
// Build and run: tests/fuzz/run.sh (clang's libFuzzer).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "weir/builtins.h"
#include "weir.pb.h"
#include "weir/job_graph.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto spec = weir::ParseJobFile(text);
  if (!spec.ok()) {
    if (spec.status().code() != weir::StatusCode::kInvalidArgument ||
        spec.status().message().empty()) {
      std::abort();
    }
    return 0;
  }
  weir::proto::JobGraph graph;
  weir::ToProto(spec.value(), &graph);
  auto plan = weir::BuildPlan(spec.value(), weir::BuiltinOperators());
  if (!plan.ok()) {
    if (plan.status().code() != weir::StatusCode::kInvalidArgument) std::abort();
    return 0;
  }
  auto back = weir::FromProto(graph);
  if (!back.ok()) std::abort();
  auto again = weir::BuildPlan(std::move(back).value(), weir::BuiltinOperators());
  if (!again.ok() || again->tasks.size() != plan->tasks.size()) std::abort();
  return 0;
}
