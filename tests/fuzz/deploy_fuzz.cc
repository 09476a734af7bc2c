// libFuzzer target: what a task manager does with a DeployTask request before anything runs:
// the job id check, the plan built from the request's proto::JobGraph (FromProto, BuildPlan:
// every operator's Validate on an untrusted config), the security.allowed_paths check
// (CheckJobPaths), the task/subtask lookup, and the keyed handles of the restore info
// (ValidateHandle, as a restore does first). Contract besides sanitizers: an accepted plan has
// only ids of [A-Za-z0-9_-], and every output path of an accepted plan is under /data/out.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "restore.h"
#include "weir.pb.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/paths.h"

namespace {

constexpr const char* kJob = R"Y(
name: j
max_parallelism: 64
checkpointing: {interval: 1s, dir: /data/out/ck}
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: value, expr: "string(id)"}]}}
  - {id: p, type: parse, parallelism: 2, config: {format: json, fields: [{name: k, type: int64}], dirty: {path: /data/out/dirty}}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count, as: n}]}}
  - {id: out, type: committing_file, parallelism: 2, config: {path: /data/out/x, partition: "n={n}"}}
edges:
  - {from: gen, to: p}
  - {from: p, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";

const std::vector<std::string> kAllowed = {"/data/out"};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  weir::proto::DeployTaskRequest req;
  req.set_job_id("0a1b2c3d4e5f60718");
  req.set_attempt(1);
  req.set_task_id("agg");
  req.set_subtask(1);
  auto spec = weir::ParseJobFile(kJob);
  if (!spec.ok()) std::abort();
  weir::ToProto(*spec, req.mutable_graph());
  auto* vr = req.mutable_restore()->add_vertices();
  vr->set_vertex_id("agg");
  auto* k = vr->add_keyed();
  k->set_backend("heap");
  k->set_key_group_first(32);
  k->set_key_group_last(63);
  auto* f = k->add_files();
  f->set_path("chk-3/agg-1/keyed-state.bin");
  f->set_local_name("keyed-state.bin");
  weir::proto::DeployTaskRequest bad = req;
  bad.mutable_graph()->mutable_vertices(0)->set_id("..");
  weir::fuzz::MaybeWriteSeeds({{"deploy", req.SerializeAsString()},
                               {"dotdot", bad.SerializeAsString()}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weir::proto::DeployTaskRequest req;
  if (!req.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!weir::IsValidId(req.job_id()) || req.attempt() < 0) return 0;
  weir::Result<weir::ExecutionPlan> plan = weir::Status::Internal("unset");
  try {  // as the task manager's handler (PlanFor inside a try)
    auto spec = weir::FromProto(req.graph());
    if (!spec.ok()) return 0;
    plan = weir::BuildPlan(std::move(spec).value(), weir::BuiltinOperators());
  } catch (const std::exception&) {
    return 0;  // as the task manager's handler: a rejected graph
  }
  if (!plan.ok()) return 0;
  for (const weir::VertexSpec& v : plan->spec.vertices) {
    if (!weir::IsValidId(v.id)) std::abort();
  }
  if (!weir::CheckJobPaths(*plan, weir::BuiltinOperators(), kAllowed).ok()) return 0;
  for (const weir::VertexSpec& v : plan->spec.vertices) {
    const weir::OperatorFactory* f = weir::BuiltinOperators().Find(v.type);
    std::vector<std::string> keys = f->OutputPathKeys();
    for (std::string& key : f->InputPathKeys()) keys.push_back(std::move(key));
    for (const std::string& key : keys) {
      if (!v.config.Has(key)) continue;
      // As the check compares it: lexically normal ("/data//out/x" is /data/out/x).
      const std::string path =
          std::filesystem::path(v.config.GetString(key).value()).lexically_normal().string();
      if (path != "/data/out" && path.rfind("/data/out/", 0) != 0) std::abort();
    }
  }
  auto ti = plan->task_index.find(req.task_id());
  if (ti == plan->task_index.end() || req.subtask() < 0 ||
      req.subtask() >= plan->tasks[ti->second].parallelism) {
    return 0;
  }
  for (const auto& vr : req.restore().vertices()) {
    for (const auto& k : vr.keyed()) {
      if (!weir::state::ValidateHandle(k).ok()) continue;
      for (const auto& file : k.files()) {
        if (!weir::IsSafeRelativePath(file.path()) || !weir::IsPlainName(file.local_name())) {
          std::abort();
        }
      }
    }
  }
  return 0;
}
