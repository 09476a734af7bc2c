// libFuzzer target: a checkpoint's `_metadata` file (untrusted: restore paths are given by
// users) through ParseMetadata and the restore planning that reads it (PlanRestore, including
// the state migration of a plan with parse's dirty shorthand). Contract besides sanitizers:
// every keyed handle handed to a subtask names only paths that stay below the restore root.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "fuzz_common.h"
#include "weir.pb.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/checkpoint_coordinator.h"
#include "weir/paths.h"

namespace {

namespace fs = std::filesystem;

constexpr const char* kJob = R"Y(
name: j
max_parallelism: 64
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: value, expr: "string(id)"}]}}
  - {id: p, type: parse, parallelism: 2, config: {format: json, fields: [{name: k, type: int64}], dirty: {path: /tmp/weir-fuzz-never-written}}}
  - {id: agg, type: keyed_aggregate, parallelism: 3, config: {key: [k], aggregations: [{fn: count}]}}
  - {id: out, type: blackhole, parallelism: 3}
edges:
  - {from: gen, to: p}
  - {from: p, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)Y";

struct Fixture {
  weir::ExecutionPlan plan;
  std::string root;  // <tmp>/weir-metadata-fuzz-<pid>: shared/a.sst, chk-1/_metadata exist
  std::string chk;
};

const Fixture& Get() {
  static const Fixture f = [] {
    Fixture x;
    auto p = weir::BuildPlan(weir::ParseJobFile(kJob).value(), weir::BuiltinOperators());
    if (!p.ok()) std::abort();
    x.plan = std::move(p).value();
    x.root = (fs::temp_directory_path() / ("weir-metadata-fuzz-" + std::to_string(getpid()))).string();
    fs::create_directories(x.root + "/shared");
    fs::create_directories(x.root + "/chk-1");
    std::ofstream(x.root + "/shared/a.sst") << "a";
    std::ofstream(x.root + "/chk-1/b.sst") << "b";
    x.chk = x.root + "/chk-1";
    return x;
  }();
  return f;
}

std::string Seed(bool savepoint, bool legacy_dirty) {
  weir::proto::CheckpointMetadata md;
  md.set_format_version(1);
  md.set_job_id("j1");
  md.set_checkpoint_id(1);
  md.set_savepoint(savepoint);
  md.set_max_parallelism(64);
  for (const char* v : {"gen", "p", "agg"}) {
    auto* vs = md.add_vertices();
    vs->set_vertex_id(v);
    vs->set_parallelism(2);
    for (int i = 0; i < 2; ++i) {
      auto* os = vs->add_subtasks();
      os->set_vertex_id(v);
      os->set_subtask(i);
      auto* l = os->add_operator_state();
      l->set_name(std::string(v) == "p" && legacy_dirty ? "dirty/pending" : "splits@v1");
      l->set_mode(i ? weir::proto::NamedList::UNION : weir::proto::NamedList::SPLIT);
      l->add_entries("e" + std::to_string(i));
      if (std::string(v) == "agg") {
        auto* k = os->mutable_keyed();
        k->set_backend("rocksdb");
        k->set_key_group_first(i * 32);
        k->set_key_group_last(i * 32 + 31);
        auto* f = k->add_files();
        f->set_path(i ? "shared/a.sst" : "chk-1/b.sst");
        f->set_local_name(i ? "a.sst" : "b.sst");
      }
    }
  }
  return md.SerializeAsString();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  weir::fuzz::MaybeWriteSeeds({{"checkpoint", Seed(false, false)},
                               {"savepoint", Seed(true, false)},
                               {"legacy-dirty", Seed(false, true)}});
  Get();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Fixture& f = Get();
  auto md = weir::jm::ParseMetadata(std::string(reinterpret_cast<const char*>(data), size),
                                    "fuzz/_metadata");
  if (!md.ok()) return 0;
  // A savepoint's paths are relative to its own directory (absent here: nothing exists, the
  // planning refuses at the first file); a checkpoint's to the job root.
  auto r = weir::jm::PlanRestore(*md, f.chk, f.plan, (size & 1) != 0);
  if (!r.ok()) return 0;
  for (const auto& [key, info] : *r) {
    for (const auto& v : info.vertices()) {
      for (const auto& k : v.keyed()) {
        for (const auto& file : k.files()) {
          if (!weir::IsSafeRelativePath(file.path()) || !weir::IsPlainName(file.local_name())) {
            std::abort();
          }
        }
      }
    }
  }
  return 0;
}
