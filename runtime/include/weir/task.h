// Task: one subtask of an operator chain, run on its own thread.
//
// The task wires its inputs (an InputGate over one channel per upstream producer subtask), its
// chain of operators (records pass by call, in batches), and its outputs (a RecordWriter per
// outgoing edge that partitions rows to consumer subtasks, serializes them into buffers, and
// sends a buffer when it is full, when the task is about to wait for input, when the buffer
// timeout passes, and before any event). Lifecycle: DEPLOYING -> INITIALIZING -> RUNNING ->
// FINISHED | CANCELED | FAILED (weir/lifecycle.h). Run() runs on the task's thread; Cancel() and
// the metrics may be called from any thread.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <memory>
#include <string>

#include "weir/executor.h"
#include "weir/job_graph.h"
#include "weir/lifecycle.h"
#include "weir/network.h"
#include "weir/operator.h"

namespace weir {

// Where a consumer subtask runs, as seen from this task manager.
struct PeerLocation {
  bool local = false;
  std::string data_address;  // when remote
  std::string tm_id;         // for messages
};

// The key of the channel from producer (task, subtask) to consumer (task, subtask) in one job
// attempt. Consumer first, so one prefix names all inputs of a consumer subtask.
std::string ChannelKey(const std::string& job_id, int attempt, const std::string& consumer_task,
                       int consumer_subtask, const std::string& producer_task,
                       int producer_subtask);
std::string ChannelKeyPrefix(const std::string& job_id, int attempt);

struct TaskOptions {
  size_t buffer_bytes = 32 * 1024;  // a buffer is sent when it holds this much
  int64_t buffer_timeout_ms = 10;   // ... or when its oldest row waited this long
  size_t batch_rows = 1024;         // rows per batch handed through the chain
  size_t rocksdb_block_cache_bytes = 64 << 20;  // per RocksDB state DB
  size_t state_cache_bytes = 32 << 20;          // write-back cache per RocksDB state DB (0: off)
};

struct TaskSetup {
  std::string job_id;
  int attempt = 0;
  std::shared_ptr<const ExecutionPlan> plan;
  int task_index = 0;
  int subtask = 0;
  NetworkEnvironment* network = nullptr;
  // The job attempt's data-channel secret from the deployment (never logged): registered with
  // the network before any channel of this subtask is opened.
  std::string channel_secret;
  const OperatorRegistry* registry = nullptr;
  std::function<PeerLocation(const std::string& task_id, int subtask)> locate;
  // Called on the task thread at each state change (error is set for FAILED: its code tells a
  // root cause from kCancelled, a subtask cut off because a peer stopped).
  std::function<void(TaskState, const Status& error)> on_state;
  TaskOptions options;
  // State and checkpoints.
  proto::RestoreInfo restore;        // empty: a fresh start
  std::string local_dir;             // this subtask's private state directory (removed at end)
  std::string state_backend = "rocksdb";
  // Runs the asynchronous part of checkpoints (uploads, then the ack), one at a time per
  // subtask; owned by the task manager. Null: the task owns a one-thread executor.
  Executor* upload_executor = nullptr;
  // Called from an upload thread when this subtask's part of a checkpoint is durable.
  std::function<void(proto::AcknowledgeCheckpointRequest)> on_checkpoint_ack;
  // Called when this subtask cannot take its part of checkpoint `id`.
  std::function<void(int64_t id, const std::string& reason)> on_checkpoint_decline;
};

// Work handed to the task thread from other threads.
struct Mail {
  enum Kind { kTrigger, kComplete, kAborted } kind = kTrigger;
  int64_t checkpoint_id = 0;
  int64_t timestamp_ms = 0;
  proto::CheckpointOptions options;
  std::map<std::string, int64_t> commit_watermarks;  // kComplete: per vertex
};
// The operators' metrics as the task thread last published them (weir/metrics.h).
struct PublishedPoints {
  mutable std::mutex mu;
  std::vector<MetricPoint> points;
};

struct Mailbox {
  std::mutex mu;
  std::deque<Mail> queue;
  std::atomic<bool> pending{false};
};

class Task {
 public:
  explicit Task(TaskSetup setup);
  ~Task();

  // The task thread's body: returns when the task reached a terminal state.
  void Run();
  // Asks the task to stop; it reaches CANCELED soon after.
  void Cancel();
  // Marks the task cancelled without waking it. Cancelling several tasks of a job: mark them
  // all first, then Cancel() each, so that a task whose consumer stops first sees its own
  // cancellation (CANCELED) rather than a vanished consumer (FAILED).
  void MarkCancelled() { cancel_.store(true); }
  TaskState state() const { return state_.load(); }
  // Source tasks: take checkpoint n between two records and emit its barrier. Any thread.
  void TriggerCheckpoint(int64_t id, int64_t timestamp_ms, const proto::CheckpointOptions& options);
  // Checkpoint n completed (or was aborted): operators are told on the task thread, with the
  // commit watermarks the job manager computed per vertex (see Operator). Any thread.
  void NotifyCheckpoint(int64_t id, bool completed,
                        std::map<std::string, int64_t> commit_watermarks = {});
  const OperatorMetrics& metrics() const { return metrics_; }
  // The operators' own metrics, labelled with their vertex, as of about a second ago. Any thread.
  std::vector<MetricPoint> OperatorMetricPoints() const;
  // "job=<id> vertex=<task> subtask=<i>/<p>"
  const std::string& log_prefix() const { return log_prefix_; }

 private:
  class Impl;
  void Post(Mail mail);
  TaskSetup setup_;
  Mailbox mailbox_;
  std::atomic<TaskState> state_{TaskState::kDeploying};
  std::atomic<bool> cancel_{false};
  OperatorMetrics metrics_;
  PublishedPoints published_;
  std::string log_prefix_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace weir
