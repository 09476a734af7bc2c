// libFuzzer target: a checkpoint acknowledgement as the job manager receives it from the
// network (AcknowledgeCheckpointRequest bytes), through ValidateAckFiles against a fixed plan.
// Contract checked besides sanitizers: an accepted acknowledgement names only relative paths
// without "." / ".." segments, under shared/ or its own chk-3/, local names that are plain file
// names, and only vertices of the sender's own chain.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fuzz_common.h"
#include "weir.pb.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/checkpoint_coordinator.h"
#include "weir/paths.h"

namespace {

constexpr const char* kJob = R"Y(
name: j
max_parallelism: 64
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: k, expr: "id % 2"}]}}
  - {id: agg, type: keyed_aggregate, parallelism: 2, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: gen, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";

const weir::ExecutionPlan& Plan() {
  static const weir::ExecutionPlan plan = [] {
    auto p = weir::BuildPlan(weir::ParseJobFile(kJob).value(), weir::BuiltinOperators());
    if (!p.ok()) std::abort();
    return std::move(p).value();
  }();
  return plan;
}

std::string Seed(const std::string& task, int sub, const std::string& path) {
  weir::proto::AcknowledgeCheckpointRequest a;
  a.set_job_id("j1");
  a.set_task_id(task);
  a.set_subtask(sub);
  a.set_checkpoint_id(3);
  auto* os = a.add_states();
  os->set_vertex_id(task);
  os->set_subtask(sub);
  (*os->mutable_counts())["read"] = 10;
  auto* l = os->add_operator_state();
  l->set_name("splits@v1");
  l->add_entries("x");
  if (!path.empty()) {
    auto* k = os->mutable_keyed();
    k->set_backend("rocksdb");
    k->set_key_group_first(0);
    k->set_key_group_last(31);
    auto* f = k->add_files();
    f->set_path(path);
    f->set_local_name("000012.sst");
    f->set_size(1234);
    auto* f2 = k->add_files();
    f2->set_path("chk-3/MANIFEST-000005");
    f2->set_local_name("MANIFEST-000005");
    f2->set_size(99);
  }
  return a.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  weir::fuzz::MaybeWriteSeeds({{"gen0", Seed("gen", 0, "")},
                               {"agg1-shared", Seed("agg", 1, "shared/abc-000012.sst")},
                               {"agg0-own", Seed("agg", 0, "chk-3/000012.sst")},
                               {"agg0-escape", Seed("agg", 0, "shared/../../etc/passwd")}});
  Plan();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  weir::proto::AcknowledgeCheckpointRequest ack;
  if (!ack.ParseFromArray(data, static_cast<int>(size))) return 0;
  const bool savepoint = size > 0 && (data[0] & 1);
  const std::string prefix = savepoint ? "" : "chk-3/";
  const weir::Status st = weir::jm::ValidateAckFiles(ack, prefix, Plan());
  if (!st.ok()) return 0;
  const weir::ExecutionPlan& plan = Plan();
  const weir::TaskPlan& task = plan.tasks[plan.task_index.at(ack.task_id())];
  for (const auto& os : ack.states()) {
    bool mine = false;
    for (int v : task.vertices) mine = mine || plan.spec.vertices[v].id == os.vertex_id();
    if (!mine || os.subtask() != ack.subtask()) std::abort();
    if (!os.has_keyed()) continue;
    for (const auto& f : os.keyed().files()) {
      if (!weir::IsSafeRelativePath(f.path()) || !weir::IsPlainName(f.local_name())) std::abort();
      if (!savepoint && f.path().rfind("shared/", 0) != 0 && f.path().rfind("chk-3/", 0) != 0) {
        std::abort();
      }
    }
  }
  return 0;
}
