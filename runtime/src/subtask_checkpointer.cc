#include "subtask_checkpointer.h"

#include "weir/logging.h"

namespace weir::task_internal {

namespace {

const ModuleLog Log("task");

// The asynchronous part of one checkpoint, on the upload executor's thread: uploads keyed
// state, fills in the ack, and sends it. Returns false when the checkpoint was declined.
bool UploadAndAck(std::vector<std::pair<std::string, OperatorSnapshot>>& snaps,
                  proto::AcknowledgeCheckpointRequest& ack, const proto::CheckpointOptions& opts,
                  const std::function<void(int64_t, const std::string&)>& on_decline,
                  const std::string& prefix, int subtask, int64_t id) {
  for (auto& [vertex, snap] : snaps) {
    proto::OperatorSubtaskState* os = ack.add_states();
    os->set_vertex_id(vertex);
    os->set_subtask(subtask);
    for (auto& l : snap.operator_state) *os->add_operator_state() = std::move(l);
    if (snap.commit_watermark) os->set_commit_watermark(*snap.commit_watermark);
    for (const auto& [name, n] : snap.counts) (*os->mutable_counts())[name] = n;
    if (snap.keyed) {
      const std::string dir = (opts.savepoint() ? "" : "chk-" + std::to_string(id) + "/") + vertex +
                              "-" + std::to_string(subtask);
      auto handle = snap.keyed->Upload(opts, dir);
      if (!handle.ok()) {
        Log()->warn("{} checkpoint={} upload failed: {}", prefix, id, handle.status().ToString());
        if (on_decline) on_decline(id, handle.status().ToString());
        return false;
      }
      *os->mutable_keyed() = std::move(handle).value();
    }
  }
  return true;
}

}  // namespace

SubtaskCheckpointer::SubtaskCheckpointer(const TaskSetup& setup, Chain* chain,
                                         const std::string& log_prefix)
    : s_(setup), c_(*chain), prefix_(log_prefix) {
  upload_executor_ = s_.upload_executor;
  if (!upload_executor_) {
    own_upload_executor_ = std::make_unique<Executor>("upload", 1);
    upload_executor_ = own_upload_executor_.get();
  }
}

// Snapshots the chain (synchronous part), forwards the barrier, and starts the upload.
// A failure to snapshot declines the checkpoint; the job goes on.
Status SubtaskCheckpointer::Perform(int64_t id, int64_t /*timestamp_ms*/,
                                    const proto::CheckpointOptions& opts, int64_t align_ms) {
  last_checkpoint_id_ = id;
  const int64_t start = NowNs();
  Snapshots snaps;
  Status st = SnapshotChain(id, &snaps);
  if (!st.ok()) {
    Log()->warn("{} checkpoint={} declined: {}", prefix_, id, st.ToString());
    if (s_.on_checkpoint_decline) s_.on_checkpoint_decline(id, st.ToString());
    // Downstream tasks still get the barrier so they do not stay blocked; the coordinator
    // aborts the checkpoint.
  }
  const std::string body = opts.SerializeAsString();
  for (EdgeWriter* w : c_.all_writers) {
    WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kBarrier, id, body));
  }
  if (!st.ok()) return Status::Ok();
  const int64_t sync_ms = (NowNs() - start) / 1000000;
  Log()->info("{} checkpoint={} snapshot taken (sync {} ms, alignment {} ms)", prefix_, id, sync_ms,
              align_ms);
  RenameCounts(&snaps);
  StartUpload(id, opts, sync_ms, align_ms, std::move(snaps));
  return Status::Ok();
}

// Every operator of the chain, source first, in chain order; stops at the first failure.
Status SubtaskCheckpointer::SnapshotChain(int64_t id, Snapshots* snaps) {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  Status st;
  size_t k = 0;
  if (c_.source) {
    snaps->emplace_back(plan.spec.vertices[tp.vertices[0]].id, OperatorSnapshot{});
    st = c_.source->Snapshot(id, &snaps->back().second);
    k = 1;
  }
  for (size_t i = 0; st.ok() && i < c_.ops.size(); ++i, ++k) {
    snaps->emplace_back(plan.spec.vertices[tp.vertices[k]].id, OperatorSnapshot{});
    st = c_.ops[i]->Snapshot(id, &snaps->back().second);
  }
  return st;
}

// Rows downstream of a side output are reported apart (ExecutionPlan::count_suffix).
void SubtaskCheckpointer::RenameCounts(Snapshots* snaps) {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  for (size_t i = 0; i < snaps->size(); ++i) {
    auto& snap = (*snaps)[i].second;
    const std::string& suffix = plan.count_suffix[tp.vertices[i]];
    if (suffix.empty() || snap.counts.empty()) continue;
    std::map<std::string, int64_t> renamed;
    for (const auto& [name, n] : snap.counts) renamed[name + suffix] = n;
    snap.counts = std::move(renamed);
  }
}

// The asynchronous part: upload keyed state, then acknowledge.
void SubtaskCheckpointer::StartUpload(int64_t id, const proto::CheckpointOptions& opts,
                                      int64_t sync_ms, int64_t align_ms, Snapshots snaps) {
  const TaskPlan& tp = s_.plan->tasks[s_.task_index];
  auto shared_snaps = std::make_shared<Snapshots>(std::move(snaps));
  proto::AcknowledgeCheckpointRequest ack;
  ack.set_job_id(s_.job_id);
  ack.set_attempt(s_.attempt);
  ack.set_task_id(tp.id);
  ack.set_subtask(s_.subtask);
  ack.set_checkpoint_id(id);
  ack.set_sync_duration_ms(sync_ms);
  ack.set_alignment_duration_ms(align_ms);
  auto on_ack = s_.on_checkpoint_ack;
  auto on_decline = s_.on_checkpoint_decline;
  const std::string prefix = prefix_;
  const int subtask = s_.subtask;
  {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    ++uploads_in_flight_;
  }
  auto upload = [this, shared_snaps, ack, opts, on_ack, on_decline, prefix, subtask, id]() mutable {
    const int64_t t0 = NowNs();
    const bool ok = UploadAndAck(*shared_snaps, ack, opts, on_decline, prefix, subtask, id);
    // Snapshots reference the operators' backends: they go before Close() may close them.
    shared_snaps.reset();
    if (ok) {
      ack.set_async_duration_ms((NowNs() - t0) / 1000000);
      if (on_ack) on_ack(ack);
    }
    UploadDone();
  };
  Status submitted = upload_executor_->Submit(prefix_, std::move(upload));
  if (!submitted.ok()) {
    UploadDone();
    Log()->warn("{} checkpoint={} declined: {}", prefix_, id, submitted.ToString());
    if (on_decline) on_decline(id, submitted.ToString());
  }
}

void SubtaskCheckpointer::UploadDone() {
  std::lock_guard<std::mutex> lock(uploads_mu_);
  if (--uploads_in_flight_ == 0) uploads_cv_.notify_all();
}

void SubtaskCheckpointer::WaitForUploads() {
  std::unique_lock<std::mutex> lock(uploads_mu_);
  uploads_cv_.wait(lock, [&] { return uploads_in_flight_ == 0; });
}

void SubtaskCheckpointer::NotifyComplete(int64_t id,
                                         const std::map<std::string, int64_t>& commit_watermarks) {
  if (c_.source) c_.source->NotifyCheckpointComplete(id);
  const TaskPlan& tp = s_.plan->tasks[s_.task_index];
  const size_t first = c_.source ? 1 : 0;
  for (size_t i = 0; i < c_.ops.size(); ++i) {
    c_.ops[i]->NotifyCheckpointComplete(id);
    auto it = commit_watermarks.find(s_.plan->spec.vertices[tp.vertices[i + first]].id);
    if (it != commit_watermarks.end()) c_.ops[i]->NotifyCommitWatermark(id, it->second);
  }
}

void SubtaskCheckpointer::NotifyAborted(int64_t id) {
  if (c_.source) c_.source->NotifyCheckpointAborted(id);
  for (auto& op : c_.ops) op->NotifyCheckpointAborted(id);
}

}  // namespace weir::task_internal
