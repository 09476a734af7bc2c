// Job graphs: parsing a job file (YAML or JSON), validating it, and turning it into an
// execution plan of chained tasks.
//
// Validation runs in the CLI before submission and again in the job manager; it checks
// everything that can be checked without running the job (ids, operator types, configs,
// parallelism, edges, cycles, key fields, schemas along every edge), and every error names the
// vertex or edge and the field. Pure functions over values; any thread.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/operator.h"
#include "weir/status.h"
#include "weir/types.h"
#include "weir/watermark.h"

namespace weir {
namespace proto {
class JobGraph;
}

enum class Partitioning { kForward, kHash, kRebalance, kBroadcast };
const char* PartitioningName(Partitioning p);

struct VertexSpec {
  std::string id;
  std::string type;
  int parallelism = 1;
  Config config;
  // How event time and watermarks are derived from this vertex's output (its `watermarks:`);
  // watermarks from upstream stop here. Sources and transforms; one vertex per chain.
  std::optional<WatermarkStrategy> watermarks;
};

struct EdgeSpec {
  // The producing vertex and which of its outputs: "" is the main output, else a side output
  // (job file: `from: <vertex>.<output>`; BuildPlan splits it at the '.', which vertex ids
  // cannot contain).
  std::string from;
  std::string output;
  std::string to;
  Partitioning partition = Partitioning::kForward;
  std::vector<std::string> key;  // hash only
  // Into a vertex with named inputs (OperatorFactory::InputNames): which one this edge feeds
  // (job file: `input: left`). Empty for ordinary vertices.
  std::string input;
};

struct CheckpointSpec {
  int64_t interval_ms = 0;  // 0: use the cluster default (off unless configured)
  int64_t timeout_ms = 0;
  int64_t min_pause_ms = 0;
  std::optional<int> tolerable_failures;  // unset: cluster default; -1: never fail
  int retained = 0;
  std::string directory;
};

struct JobSpec {
  std::string name;
  int max_parallelism = 128;
  CheckpointSpec checkpointing;
  std::string state_backend;  // "" (default: rocksdb), "rocksdb", "heap"
  proto::RestartStrategy restart_strategy;  // type "" : the default
  std::vector<VertexSpec> vertices;
  std::vector<EdgeSpec> edges;
};

constexpr int kMaxMaxParallelism = 32768;

// Parses a job file's text. Checks the structure (keys, types of fields); BuildPlan checks
// the graph itself.
Result<JobSpec> ParseJobFile(std::string_view text);
Result<JobSpec> FromProto(const proto::JobGraph& graph);
void ToProto(const JobSpec& spec, proto::JobGraph* out);

// A task: a chain of vertices joined by forward main-output edges of equal parallelism, run as
// one thread per subtask. Its id is the id of its first vertex.
struct TaskPlan {
  std::string id;
  std::vector<int> vertices;  // indices into JobSpec::vertices, in chain order
  int parallelism = 1;
  std::vector<int> in_edges;   // indices into JobSpec::edges (network inputs)
  std::vector<int> out_edges;  // indices into JobSpec::edges (network outputs of the tail)
  // Side-output edges of any vertex of the chain (never chained: always network outputs).
  std::vector<int> side_out_edges;
};

// Restore of snapshots taken before a sink became a vertex of its own (ImplicitSideSink):
// operator-state lists of `from_vertex` named `<list_prefix><name>` belong to `to_vertex`.
struct StateMigration {
  std::string from_vertex;
  std::string list_prefix;
  std::string to_vertex;
};

struct ExecutionPlan {
  JobSpec spec;
  std::vector<Schema> output_schemas;  // per vertex (empty for sinks)
  std::vector<Schema> input_schemas;   // per vertex (empty for sources); its first input's
  // Per vertex, one schema per logical input (InputNames' order; one for ordinary vertices,
  // none for sources).
  std::vector<std::vector<Schema>> vertex_inputs;
  std::vector<int> edge_input;  // per edge: the index of the input of `to` it feeds
  std::vector<std::vector<SideOutputSpec>> side_outputs;  // per vertex, declared ones
  std::vector<Schema> edge_schemas;                       // per edge: the rows it carries
  std::vector<int> edge_side_output;  // per edge: index into side_outputs[from], -1: main
  // Per vertex: "" or "_<output>" when the vertex is fed (directly or further up) by a side
  // output: its reconciliation counts are reported with that suffix (a dirty row a dirty sink
  // commits is "committed_dirty", not "committed" a second time).
  std::vector<std::string> count_suffix;
  std::vector<StateMigration> state_migrations;
  std::vector<TaskPlan> tasks;         // in topological order
  std::map<std::string, int> vertex_index;
  std::map<std::string, int> task_index;  // task id -> index in tasks
  std::vector<int> task_of_vertex;        // vertex index -> task index

  // Slots a job needs: subtasks of different tasks share a slot (as in Flink's default slot
  // sharing), so the job needs as many slots as its largest parallelism.
  int SlotsNeeded() const;
  // "gen -> map -> filter" for each task.
  std::string ChainDescription(const TaskPlan& t) const;
};

Result<ExecutionPlan> BuildPlan(JobSpec spec, const OperatorRegistry& registry);

// Ids that become parts of local paths and of "vertex.output" references (vertex ids, and job
// ids on a task manager): 1-128 characters of A-Z a-z 0-9 _ -, so "..", "a/b", "a.b" and
// look-alike Unicode are not ids. BuildPlan refuses vertex ids that are not.
bool IsValidId(std::string_view id);

// security.allowed_paths (weir/paths.h CheckAllowedPath) on what a built plan writes and
// reads: every vertex's OutputPathKeys values (file sinks, parse's dirty output once expanded
// into its committing_file vertex), its InputPathKeys values (lookup_join's side input) and the
// job's checkpointing.dir. Empty `allowed`: nothing checked.
// Errors name the vertex and config key.
Status CheckJobPaths(const ExecutionPlan& plan, const OperatorRegistry& registry,
                     const std::vector<std::string>& allowed);

}  // namespace weir
