// CheckpointCoordinator: drives the checkpoints of one job attempt (asynchronous barrier
// snapshots). It triggers checkpoint n at every source subtask, collects each subtask's
// acknowledgement with its state handles (checked: a file outside the checkpoint's own
// directory or shared/ declines n), and when all are in, *finalizes* n on the I/O lane:
// <root>/chk-n/_metadata is written atomically (write, fsync, rename, fsync of chk-n and of
// its parent), then the job manager's durable step runs (its HA record naming chk-n). Only
// when both succeeded is n complete: the result comes back through Finalized(), which
// notifies every subtask and prunes old checkpoints (reference-counting shared files so a
// file still used by a retained checkpoint is never deleted; deletions run on the I/O lane).
// A failed write fails n like a decline (counted against tolerable_failures). A decline, a
// timeout or a failure of the job aborts n: subtasks are told, and chk-n is removed.
// Savepoints take the same path into a directory of their own, which is never pruned.
//
// Not thread-safe: the JobManager calls every method under its lock. Nothing here touches a
// disk or a socket inline: calls to task managers go through the executor on one lane per
// task manager, file work on the "io" lane; time comes from the injected clock.
#pragma once

#include <atomic>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "weir.pb.h"
#include "weir/job_graph.h"
#include "weir/jobmanager/gateway.h"
#include "weir/status.h"

namespace weir::jm {

struct CheckpointSettings {
  int64_t interval_ms = 0;  // 0: periodic checkpoints off (savepoints still work)
  int64_t timeout_ms = 60000;
  int64_t min_pause_ms = 0;
  int tolerable_failures = -1;  // consecutive; -1: never fail the job for checkpoints
  int retained = 1;
  std::string directory;  // checkpoints go to <directory>/<job-id>/chk-<n>
};

// Reads settings from the job graph over the cluster defaults; errors name the field.
Result<CheckpointSettings> SettingsFor(const proto::CheckpointConfig& job,
                                       const CheckpointSettings& defaults);

// A completed checkpoint the coordinator retains, with the files it references.
struct CompletedCheckpoint {
  int64_t id;
  std::string dir;
  std::set<std::string> files;  // referenced files, relative to the root
};

// Lanes of the executor (see weir/executor.h): file work runs in order on kIoLane; calls to a
// task manager on its own lane, so one that hangs never delays the others.
inline constexpr const char* kIoLane = "io";
inline std::string TaskManagerLane(const std::string& rpc_address) { return "tm:" + rpc_address; }

// A checkpoint whose _metadata is being made durable (on the I/O lane). Shared between the
// coordinator and the I/O work, so that the outcome can be handled even when the attempt (and
// its coordinator) ended meanwhile.
struct Finalizing {
  CompletedCheckpoint completed;
  bool savepoint = false;
  std::function<void(Result<proto::SavepointResponse>)> savepoint_done;
};

// Removes `dir` and the given shared files (relative to `root`) -- pruning, on the I/O lane.
void RemoveCheckpointFiles(const std::string& dir, const std::string& root,
                           const std::vector<std::string>& shared_files);
class CheckpointCoordinator {
 public:
  using Clock = std::function<int64_t()>;
  // Runs work later on a lane, never inline (weir/executor.h's contract).
  using Executor = std::function<void(const std::string& lane, std::function<void()>)>;
  // Where a subtask runs: its task manager's rpc address ("" if unknown).
  using Locate = std::function<std::string(const std::string& task_id, int subtask)>;
  using SavepointDone = std::function<void(Result<proto::SavepointResponse>)>;

  CheckpointCoordinator(std::string job_id, int attempt, CheckpointSettings settings,
                        std::shared_ptr<const ExecutionPlan> plan, proto::JobGraph graph,
                        Clock clock, Executor executor, TaskManagerGateway* gateway,
                        Locate locate, int64_t first_checkpoint_id);

  // Periodic work: triggers due checkpoints and savepoints, times out the pending one.
  // `all_running`: every subtask of the attempt is RUNNING (no checkpoint otherwise).
  // Returns a reason to fail the job when too many consecutive checkpoints failed.
  std::optional<std::string> Tick(bool all_running);
  // Takes the acknowledgement (it may carry megabytes of operator state: never copied here).
  std::optional<std::string> Acknowledge(proto::AcknowledgeCheckpointRequest&& ack);
  std::optional<std::string> Decline(const proto::DeclineCheckpointRequest& decline);
  // The attempt is ending (failure, cancel): abort what is in flight, fail waiting savepoints.
  void Shutdown(const std::string& reason);
  // The attempt is being replaced (failover) or failed: triggers and notifications still
  // queued on the executor are dropped instead of sent. Any thread; stays set.
  void Fence() { fenced_->store(true); }
  // The session of the job manager (sent with triggers and notifications; task managers
  // refuse those of another session). Set before the first Tick().
  void SetSession(std::string session) { jm_session_ = std::move(session); }

  // Queues a savepoint into `parent_dir` (a directory savepoint-<job>-<n> is created there);
  // `done` runs on the executor when it completes or fails.
  void RequestSavepoint(const std::string& parent_dir, SavepointDone done);

  proto::CheckpointStats Stats() const;
  // Durability of a checkpoint beyond its _metadata. `prepare(dir)` is called under the
  // caller's lock when checkpoint `dir` is about to be finalized; the step it returns runs on
  // the I/O lane right after _metadata is durable (the job manager writes its HA record
  // naming `dir`), and an error from it fails the checkpoint. So a sink can never commit data
  // of a checkpoint that a restarted job manager would not restore from.
  using DurableStep = std::function<Status()>;
  void SetDurableStep(std::function<DurableStep(const std::string& dir, int64_t next_id)> prepare) {
    prepare_durable_ = std::move(prepare);
  }
  // Called on the I/O lane with the outcome of a finalization. The job manager takes its lock
  // and calls Finalized() on the coordinator of that attempt, if it still exists.
  using OnFinalized = std::function<void(std::shared_ptr<Finalizing>, Status)>;
  void SetOnFinalized(OnFinalized fn) { on_finalized_ = std::move(fn); }
  // The outcome of finalizing checkpoint `f`. Returns a reason to fail the job like Tick().
  std::optional<std::string> Finalized(const std::shared_ptr<Finalizing>& f, const Status& st);
  // Called (under the caller's lock) when a checkpoint is complete and durable, before
  // anyone is notified.
  void SetOnCompleted(std::function<void(const std::string& dir)> fn) { on_completed_ = std::move(fn); }
  // A checkpoint is being finalized (its outcome has not come back yet).
  bool finalizing() const { return pending_ && pending_->finalizing != nullptr; }
  // The next checkpoint id this coordinator would use: ids are never reused by the job.
  int64_t next_id() const { return next_id_; }
  // Hand-over between attempts of one job: the retained checkpoints (so pruning continues
  // across restarts) and the statistics.
  std::deque<CompletedCheckpoint> TakeCompleted() { return std::move(completed_); }
  void Adopt(std::deque<CompletedCheckpoint> completed, const proto::CheckpointStats& stats) {
    completed_ = std::move(completed);
    stats_ = stats;
    stats_.set_in_progress(0);
  }
  const std::string& root() const { return root_; }
  int64_t last_completed_id() const;
  // Directory of the newest completed checkpoint ("" if none).
  std::string latest_completed_dir() const {
    return completed_.empty() ? std::string() : completed_.back().dir;
  }

 private:
  static constexpr int kRecentCompleted = 30;  // the history observers see
  struct Pending {
    int64_t id = 0;
    int64_t trigger_ms = 0;
    proto::CheckpointOptions options;
    std::string dir;  // absolute directory holding _metadata
    std::set<std::pair<std::string, int>> waiting;  // (task, subtask) not yet acknowledged
    std::vector<proto::AcknowledgeCheckpointRequest> acks;
    SavepointDone savepoint_done;  // set for savepoints
    // Set while _metadata is being written: the summary and the watermarks to notify with.
    std::shared_ptr<Finalizing> finalizing;
    proto::CheckpointSummary summary;
    std::map<std::string, int64_t> commit_watermarks;
  };
  using Completed = CompletedCheckpoint;

  void Trigger(const proto::CheckpointOptions& options, const std::string& dir,
               SavepointDone done);
  std::optional<std::string> Abort(const std::string& reason);
  std::optional<std::string> Complete();
  void Notify(int64_t id, bool completed,
              const std::map<std::string, int64_t>& commit_watermarks = {});
  void Prune();

  const std::string job_id_;
  const int attempt_;
  const CheckpointSettings settings_;
  const std::shared_ptr<const ExecutionPlan> plan_;
  const proto::JobGraph graph_;
  Clock clock_;
  Executor executor_;
  TaskManagerGateway* gateway_;
  Locate locate_;
  std::string root_;
  std::string jm_session_;
  // Shared with queued triggers and notifications, which outlive the coordinator.
  std::shared_ptr<std::atomic<bool>> fenced_ = std::make_shared<std::atomic<bool>>(false);

  int64_t next_id_;
  int64_t last_trigger_ms_ = 0;
  int64_t last_end_ms_ = 0;
  int consecutive_failures_ = 0;
  std::unique_ptr<Pending> pending_;
  std::deque<std::pair<std::string, SavepointDone>> savepoint_requests_;
  std::deque<Completed> completed_;
  proto::CheckpointStats stats_;
  std::function<void(const std::string& dir)> on_completed_;
  std::function<DurableStep(const std::string& dir, int64_t next_id)> prepare_durable_;
  OnFinalized on_finalized_;
};

// Writes `bytes` to `path` atomically: a temp file, fsync, rename, fsync of the directory.
// Every failure, fsync's included, is an error naming the file.
Status WriteFileAtomically(const std::string& path, const std::string& bytes);
// fsync of a directory (so that entries created in it are durable); errors name it.
Status FsyncDirectory(const std::string& dir);
// Checks an acknowledgement against the job's plan before anything of it is kept: the sender is
// a subtask of the job; its states are for the vertices of its own chain, each once, with its
// own subtask index; record counts are 0..2^48; and every keyed handle passes
// ValidateStateHandle. The job manager deletes the named files at prune, so a forged
// acknowledgement must never name anything outside the checkpoint. Errors name the sender.
Status ValidateAckFiles(const proto::AcknowledgeCheckpointRequest& ack,
                        const std::string& own_prefix, const ExecutionPlan& plan);
// A keyed state handle from an acknowledgement or a _metadata: key groups inside
// [0, max_parallelism); at most 10^6 files; every path relative (IsSafeRelativePath, at most
// 4096 bytes) and in shared/ or `own_prefix` (e.g. "chk-7/"; empty: anywhere below the root,
// as in a savepoint); every local name a plain file name; sizes at most 1 PiB. `where` starts
// the error.
Status ValidateStateHandle(const proto::KeyedStateHandle& handle, const std::string& own_prefix,
                           int max_parallelism, const std::string& where);
// Drops the oldest of `completed` beyond `keep`, removing their directories and the shared
// files no remaining checkpoint references, on the I/O lane.
void PruneCheckpoints(std::deque<CompletedCheckpoint>& completed, size_t keep,
                      const std::string& root, const CheckpointCoordinator::Executor& executor,
                      const std::string& job_id);
// Reads and checks <dir>/_metadata. Errors name the file and what is wrong.
Result<proto::CheckpointMetadata> ReadMetadata(const std::string& dir);
// The checks of ReadMetadata on the bytes of a _metadata file (`path` names it in errors).
Result<proto::CheckpointMetadata> ParseMetadata(const std::string& bytes, const std::string& path);

// For each subtask (task id, index) of `plan`, what it restores from `metadata` (found in
// `dir`). Keyed state goes to the subtasks whose key groups overlap; SPLIT operator state is
// redistributed round-robin, UNION state given to all. Fails, naming the vertex, when the
// snapshot holds state for a vertex the job lacks (unless allow_non_restored), when
// max_parallelism differs, or when a referenced file is missing.
Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>> PlanRestore(
    const proto::CheckpointMetadata& metadata, const std::string& dir, const ExecutionPlan& plan,
    bool allow_non_restored);

}  // namespace weir::jm
