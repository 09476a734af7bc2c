// SubtaskCheckpointer (internal to weir_runtime): this subtask's part of checkpoints.
//
// Promises: Perform() snapshots every operator of the chain (the synchronous part), forwards
// the barrier on every outgoing edge, and hands the upload of keyed state and the ack to the
// upload executor (the asynchronous part, one at a time per subtask); a snapshot or submit
// failure declines the checkpoint and the job goes on. WaitForUploads() returns once no upload
// of this subtask is in flight, so operators (whose backends snapshots reference) and the
// setup's callbacks can go. Notify*() tell the operators that a checkpoint completed or was
// aborted.
//
// Task thread only, except the upload closures, which run on the upload executor's thread and
// only touch the in-flight count (under its mutex) besides their own copies.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "chain_builder.h"
#include "weir/executor.h"
#include "weir/task.h"

namespace weir::task_internal {

class SubtaskCheckpointer {
 public:
  SubtaskCheckpointer(const TaskSetup& setup, Chain* chain, const std::string& log_prefix);
  SubtaskCheckpointer(const SubtaskCheckpointer&) = delete;
  SubtaskCheckpointer& operator=(const SubtaskCheckpointer&) = delete;

  // Takes checkpoint `id` (a source's trigger, or a completed alignment): see above. Errors
  // are only those of forwarding the barrier; a declined checkpoint returns Ok.
  Status Perform(int64_t id, int64_t timestamp_ms, const proto::CheckpointOptions& opts,
                 int64_t align_ms);
  // The newest checkpoint taken (0: none); older barriers and triggers are stale.
  int64_t last_checkpoint_id() const { return last_checkpoint_id_; }

  // Checkpoint `id` completed, with the commit watermarks the job manager computed per vertex.
  void NotifyComplete(int64_t id, const std::map<std::string, int64_t>& commit_watermarks);
  void NotifyAborted(int64_t id);

  void WaitForUploads();

 private:
  using Snapshots = std::vector<std::pair<std::string, OperatorSnapshot>>;
  Status SnapshotChain(int64_t id, Snapshots* snaps);
  void RenameCounts(Snapshots* snaps);
  void StartUpload(int64_t id, const proto::CheckpointOptions& opts, int64_t sync_ms,
                   int64_t align_ms, Snapshots snaps);
  void UploadDone();

  const TaskSetup& s_;
  Chain& c_;
  const std::string& prefix_;
  int64_t last_checkpoint_id_ = 0;
  std::unique_ptr<Executor> own_upload_executor_;  // when the setup brings none
  Executor* upload_executor_ = nullptr;
  std::mutex uploads_mu_;
  std::condition_variable uploads_cv_;
  int uploads_in_flight_ = 0;
};

}  // namespace weir::task_internal
