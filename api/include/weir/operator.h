// Operators and their registry.
//
// An operator chain runs inside one task thread: a source (or the task's network input) hands a
// RowBatch to the first operator, each operator processes the batch and hands its result to the
// next through an Output, so records pass by call in batches (one virtual call per batch per
// operator, none per record or field). Operators are created per subtask and used only by that
// subtask's thread. Factories and the registry are immutable after start-up and thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "weir.pb.h"
#include "weir/config.h"
#include "weir/key_groups.h"
#include "weir/metrics.h"
#include "weir/status.h"
#include "weir/types.h"
#include "weir/watermark.h"

namespace weir {

// Where an operator sends its output batch. The callee may modify the batch in place.
class Output {
 public:
  virtual ~Output() = default;
  virtual Status Emit(RowBatch& batch) = 0;
};

// A named output of an operator besides its main one (Flink's side outputs), e.g. parse's
// "dirty". Declared by the factory per validated config (OperatorFactory::SideOutputs), wired
// in the job file by an edge `from: <vertex>.<name>`, with its own schema. Rows emitted to a
// side output that no edge consumes are dropped and counted (OperatorMetrics).
struct SideOutputSpec {
  std::string name;  // letters, digits, '_' and '-'
  Schema schema;
  // Non-empty: the job is invalid unless an edge consumes this output, and this is the error
  // (e.g. parse's on_error: dirty needs somewhere to put bad records).
  std::string required_error;
};

// A sink the job graph adds for a side output no edge consumes, from config shorthand (parse's
// `dirty: {path: ...}`): vertex `<vertex>-<output>-sink` of type `type`, fed by a forward edge
// from `<vertex>.<output>` at the vertex's parallelism.
struct ImplicitSideSink {
  std::string output;
  std::string type;
  Config config;  // its path names the shorthand's key, for the sink's validation errors
  // Snapshots from before side outputs kept this sink's operator state inside the producing
  // vertex, in lists named `<legacy_state_prefix><list>`: restore moves them to the sink.
  std::string legacy_state_prefix;
};

// Per-subtask counters, written by the task thread, read by reporters on other threads.
// The live figures of one subtask (its whole chain). The task thread adds to them per batch or
// per buffer (relaxed, never per record); the task manager samples them from another thread
// (docs/metrics.md).
struct OperatorMetrics {
  std::atomic<int64_t> records_in{0};
  std::atomic<int64_t> records_out{0};
  std::atomic<int64_t> bytes_in{0};   // serialized input buffers
  std::atomic<int64_t> bytes_out{0};  // serialized output buffers
  // Time waiting for input (idle) and for room downstream (back-pressured); the rest is busy.
  std::atomic<int64_t> idle_ns{0};
  std::atomic<int64_t> backpressured_ns{0};
  // The last watermark that reached the chain from its inputs, and the last it sent on
  // (INT64_MIN: none yet).
  std::atomic<int64_t> input_watermark{INT64_MIN};
  std::atomic<int64_t> output_watermark{INT64_MIN};
  // Buffers queued at the input gate and how many it can hold (sampled every tick).
  std::atomic<int64_t> input_queued{0};
  std::atomic<int64_t> input_capacity{0};
  // Records an event-time operator dropped because they came after their window's end (plus
  // allowed lateness) had passed the watermark (Flink's numLateRecordsDropped).
  std::atomic<int64_t> late_records_dropped{0};
  // Rows emitted to side outputs that no edge of the job consumes (dropped by design).
  std::atomic<int64_t> side_records_dropped{0};
};

// The asynchronous part of an operator's keyed-state snapshot (see weir/state/backend.h): run
// on an upload thread after the task has moved on.
class AsyncKeyedSnapshot {
 public:
  virtual ~AsyncKeyedSnapshot() = default;
  // `exclusive_dir` is relative to options.root.
  virtual Result<proto::KeyedStateHandle> Upload(const proto::CheckpointOptions& options,
                                                 const std::string& exclusive_dir) = 0;
};

// What an operator contributes to checkpoint n, taken in the task thread at the barrier.
struct OperatorSnapshot {
  std::vector<proto::NamedList> operator_state;  // small: travels in the acknowledgement
  std::unique_ptr<AsyncKeyedSnapshot> keyed;      // null if the operator has no keyed state
  // Sinks that commit output by event time (partition commit): the watermark up to which this
  // subtask's output is committed. The job manager takes the minimum over the vertex's
  // subtasks and hands it back with the checkpoint's completion (NotifyCommitWatermark).
  std::optional<int64_t> commit_watermark;
  // Cumulative record counters for reconciliation (RecordCounters fills them).
  std::map<std::string, int64_t> counts;
};

// What an operator restores from (empty when the job starts fresh).
struct RestoredState {
  std::string root;  // storage root the keyed handles' paths are relative to
  std::vector<proto::KeyedStateHandle> keyed;     // old handles overlapping our key groups
  std::vector<proto::NamedList> operator_state;   // already redistributed for this subtask
};

struct OperatorContext {
  std::string job_id;
  int attempt = 0;
  std::string vertex_id;
  int subtask = 0;
  int parallelism = 1;
  int max_parallelism = 128;
  // "job=<id> vertex=<v> subtask=<i>/<p>", for every log line of the task.
  std::string log_prefix;
  OperatorMetrics* metrics = nullptr;
  // State: the key groups this subtask owns, a private local directory for state backends
  // (created and removed by the task), the configured backend ("rocksdb" or "heap"), and what
  // to restore from.
  KeyGroupRange key_groups;
  std::string local_dir;
  std::string state_backend = "rocksdb";
  size_t rocksdb_block_cache_bytes = 64 << 20;  // per state DB
  size_t state_cache_bytes = 32 << 20;  // write-back cache of hot keys per RocksDB state DB
  const RestoredState* restored = nullptr;
  // Event time: the source vertex's `watermarks:` strategy (null: none configured).
  const WatermarkStrategy* watermarks = nullptr;
  // One Output per side output the factory declared for this config, in declaration order,
  // valid from Open until Close. Resolve them once in Open (SideOutput), not per record; a
  // side output no edge consumes drops (and counts) what it is given.
  std::vector<Output*> side_outputs;
  std::vector<std::string> side_output_names;
  // The Output of side output `name`, or nullptr if the factory did not declare it.
  Output* SideOutput(std::string_view name) const {
    for (size_t i = 0; i < side_output_names.size() && i < side_outputs.size(); ++i) {
      if (side_output_names[i] == name) return side_outputs[i];
    }
    return nullptr;
  }
};

class Operator {
 public:
  virtual ~Operator() = default;
  virtual Status Open(const OperatorContext& ctx) { return Status::Ok(); }
  // Processes `batch` (which the operator may modify or reuse) and emits results to `out`.
  virtual Status Process(RowBatch& batch, Output& out) = 0;
  // Operators with named inputs (OperatorFactory::InputNames, e.g. a join's left and right):
  // a batch of input `input` (the index into those names). The task calls this for the head of
  // a chain fed by channels, with input 0 for operators that have one input. Default: Process.
  virtual Status ProcessInput(int input, RowBatch& batch, Output& out) {
    return Process(batch, out);
  }
  // All input has ended: emit whatever is left (final aggregates, buffered rows).
  virtual Status Finish(Output& out) { return Status::Ok(); }
  // Releases resources; called once, also after a failure or cancel.
  virtual Status Close() { return Status::Ok(); }
  // Checkpoint n reached this operator (all its input before the barrier is processed):
  // the synchronous part of its snapshot. Must be short.
  virtual Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) { return Status::Ok(); }
  // Checkpoint n is complete (durable) / was aborted. Called in the task thread.
  virtual void NotifyCheckpointComplete(int64_t checkpoint_id) {}
  virtual void NotifyCheckpointAborted(int64_t checkpoint_id) {}
  // After NotifyCheckpointComplete(n): the minimum commit watermark over all subtasks of this
  // vertex, as they reported it in checkpoint n (only if every subtask reported one).
  virtual void NotifyCommitWatermark(int64_t checkpoint_id, int64_t watermark) {}
  // Event time on this operator's input advanced to `watermark`: every record before it in
  // the stream has been processed. Fire event-time timers and emit what they produce; the task
  // forwards the watermark down the chain after this returns (do not forward it yourself).
  // kMaxWatermark: the input ended.
  virtual Status OnWatermark(int64_t watermark, Output& out) { return Status::Ok(); }
  // Operators with named inputs: the watermark of input `input` alone (the minimum over its
  // channels, as OnWatermark's is over all of them) advanced to `watermark`, e.g. so that a
  // join need not keep rows that no row still to come on the other input can match. Called
  // before OnWatermark; timers fire on OnWatermark's. Not called for one-input operators.
  virtual void OnInputWatermark(int input, int64_t watermark) {}
  // Called on the task thread every few milliseconds (also while input is idle): fire
  // processing-time timers, roll or close files by time. `now_ms` is wall-clock time.
  virtual Status OnProcessingTime(int64_t now_ms, Output& out) { return Status::Ok(); }
  // The operator's own metrics (weir/metrics.h), about once a second, on the task thread.
  virtual void ReportMetrics(MetricWriter& out) const {}
};

enum class PollResult {
  kMore,  // rows were produced (or may be at once): poll again
  kIdle,  // nothing now (rate limit, no input); the caller flushes and waits briefly
  kEnd,   // the source is exhausted
};

class SourceOperator {
 public:
  virtual ~SourceOperator() = default;
  virtual Status Open(const OperatorContext& ctx) { return Status::Ok(); }
  // Appends up to `max_rows` rows to `batch` (which the caller cleared).
  virtual Result<PollResult> Poll(RowBatch& batch, size_t max_rows) = 0;
  virtual Status Close() { return Status::Ok(); }
  // The source's position, between two polls (e.g. offsets, generator splits).
  virtual Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) { return Status::Ok(); }
  virtual void NotifyCheckpointComplete(int64_t checkpoint_id) {}
  virtual void NotifyCheckpointAborted(int64_t checkpoint_id) {}
  // Event time. By default the task derives watermarks from the event-time field of the rows
  // the source returns (ctx.watermarks). A source that reads several splits (Kafka
  // partitions) tracks them per split instead (SplitWatermarks, from ctx.watermarks),
  // returns true here, and answers CurrentWatermark(); the task polls it periodically.
  virtual bool TracksWatermarks() const { return false; }
  virtual WatermarkStatus CurrentWatermark(int64_t now_ms) { return {}; }
  // The source's own metrics (weir/metrics.h), about once a second, on the task thread.
  virtual void ReportMetrics(MetricWriter& out) const {}
};

enum class OperatorKind { kSource, kTransform, kSink };

class OperatorFactory {
 public:
  virtual ~OperatorFactory() = default;
  virtual OperatorKind kind() const = 0;
  // Validates `config` for a vertex fed rows of `input` (empty for sources) and returns the
  // vertex's output schema (empty for sinks). Errors name the config key (config.path()).
  virtual Result<Schema> Validate(const Config& config, const Schema& input) const = 0;
  // For keyed operators: the key fields its input must be hash-partitioned by (so each key
  // lives in one subtask). Empty: any partitioning.
  virtual std::vector<std::string> RequiredInputKey(const Config& config) const { return {}; }
  // Several logical inputs (a two-input operator such as a join): their names, e.g. {"left",
  // "right"}. Every edge into such a vertex names one (`input: left`); several edges may feed
  // one input (a union into it, equal schemas). Empty (the default): one input, and edges
  // name none. A vertex with named inputs always heads its task (never chained).
  virtual std::vector<std::string> InputNames(const Config& config) const { return {}; }
  // Validates `config` against one schema per input (InputNames' order; one schema for an
  // operator with one input, none for a source) and returns the output schema. Default:
  // Validate with the single input.
  virtual Result<Schema> ValidateInputs(const Config& config,
                                        const std::vector<Schema>& inputs) const {
    return Validate(config, inputs.empty() ? Schema() : inputs[0]);
  }
  // Per input (InputNames' order), the key fields its edges must hash-partition by (empty: any
  // partitioning). Default: RequiredInputKey for the single input.
  virtual std::vector<std::vector<std::string>> RequiredInputKeys(const Config& config) const {
    return {RequiredInputKey(config)};
  }
  // Creates a transform or sink from its inputs' schemas (as validated). Default: Create.
  virtual Result<std::unique_ptr<Operator>> CreateWithInputs(
      const Config& config, const std::vector<Schema>& inputs) const {
    return Create(config, inputs.empty() ? Schema() : inputs[0]);
  }
  // The side outputs of a vertex with this (validated) config and input schema, each with its
  // schema. Default: none.
  virtual Result<std::vector<SideOutputSpec>> SideOutputs(const Config& config,
                                                          const Schema& input) const {
    return std::vector<SideOutputSpec>{};
  }
  // The same with one schema per input (InputNames' order), for operators whose side outputs
  // depend on several inputs (a join's late rows of each side). Default: SideOutputs with the
  // single input.
  virtual Result<std::vector<SideOutputSpec>> SideOutputsWithInputs(
      const Config& config, const std::vector<Schema>& inputs) const {
    return SideOutputs(config, inputs.empty() ? Schema() : inputs[0]);
  }
  // Sinks the job graph adds for side outputs from config shorthand (see ImplicitSideSink).
  // Called before Validate: errors name the config key. Default: none.
  virtual Result<std::vector<ImplicitSideSink>> ImplicitSideSinks(const Config& config) const {
    return std::vector<ImplicitSideSink>{};
  }
  // The config keys whose (string) values are local paths this operator writes under, e.g. a
  // file sink's "path": the security.allowed_paths policy (CheckJobPaths in weir/job_graph.h)
  // checks them for every vertex, so a new writing operator only lists its keys here.
  // Default: none.
  virtual std::vector<std::string> OutputPathKeys() const { return {}; }
  // The config keys whose (string) values are local files this operator reads, e.g.
  // lookup_join's side input "path": a job may read only below security.allowed_paths too
  // (when set), checked by CheckJobPaths as OutputPathKeys are. Default: none.
  virtual std::vector<std::string> InputPathKeys() const { return {}; }
  // Creates a transform or sink (input schema as validated).
  virtual Result<std::unique_ptr<Operator>> Create(const Config& config,
                                                   const Schema& input) const {
    return Status::Internal("operator is not a transform or sink");
  }
  // Creates a source.
  virtual Result<std::unique_ptr<SourceOperator>> CreateSource(const Config& config) const {
    return Status::Internal("operator is not a source");
  }
};

class OperatorRegistry {
 public:
  void Register(std::string type, std::unique_ptr<OperatorFactory> factory);
  // Returns nullptr iff `type` is unknown.
  const OperatorFactory* Find(const std::string& type) const;
  std::string TypeNames() const;

 private:
  std::map<std::string, std::unique_ptr<OperatorFactory>> factories_;
};

}  // namespace weir
