#include "weir/jobmanager/checkpoint_coordinator.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "weir/logging.h"
#include "weir/paths.h"

namespace weir::jm {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t kMetadataVersion = 1;
// Bounds on what an acknowledgement or a _metadata may claim (far beyond real checkpoints).
constexpr int kMaxStateFiles = 1000000;
constexpr uint64_t kMaxStateBytes = uint64_t{1} << 50;  // 1 PiB
constexpr size_t kMaxStatePathBytes = 4096;
constexpr int64_t kMaxRecordCount = int64_t{1} << 48;  // summed over <= 32768 subtasks: no overflow

const ModuleLog Log("checkpoint");

}  // namespace

Status FsyncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open directory " + dir + ": " + strerror(errno));
  if (::fsync(fd) != 0) {
    std::string err = strerror(errno);
    ::close(fd);
    return Status::IoError("fsync of directory " + dir + " failed: " + err);
  }
  ::close(fd);
  return Status::Ok();
}

Status ValidateStateHandle(const proto::KeyedStateHandle& k, const std::string& own_prefix,
                           int max_parallelism, const std::string& where) {
  if (k.key_group_first() < 0 || k.key_group_last() < k.key_group_first() ||
      k.key_group_last() >= max_parallelism) {
    return Status::InvalidArgument(where + " has key groups [" +
                                   std::to_string(k.key_group_first()) + ", " +
                                   std::to_string(k.key_group_last()) + "] outside [0, " +
                                   std::to_string(max_parallelism) + ")");
  }
  if (k.files_size() > kMaxStateFiles) {
    return Status::InvalidArgument(where + " names " + std::to_string(k.files_size()) +
                                   " files (at most " + std::to_string(kMaxStateFiles) + ")");
  }
  if (k.state_size() > kMaxStateBytes || k.incremental_size() > kMaxStateBytes) {
    return Status::InvalidArgument(where + " reports an impossible state size");
  }
  for (const auto& f : k.files()) {
    const std::string& p = f.path();
    const bool placed = own_prefix.empty() || p.rfind("shared/", 0) == 0 ||
                        p.rfind(own_prefix, 0) == 0;
    if (p.size() > kMaxStatePathBytes || !IsSafeRelativePath(p) || !placed) {
      return Status::InvalidArgument(where + " names file '" + p + "' outside " +
                                     (own_prefix.empty() ? std::string("its own directory")
                                                         : "shared/ and " + own_prefix));
    }
    if (!IsPlainName(f.local_name()) || f.local_name().size() > kMaxStatePathBytes) {
      return Status::InvalidArgument(where + " gives file '" + p + "' the local name '" +
                                     f.local_name() + "' (must be a plain file name)");
    }
    if (f.size() > kMaxStateBytes) {
      return Status::InvalidArgument(where + " gives file '" + p + "' an impossible size " +
                                     std::to_string(f.size()));
    }
  }
  return Status::Ok();
}

Status ValidateAckFiles(const proto::AcknowledgeCheckpointRequest& ack,
                        const std::string& own_prefix, const ExecutionPlan& plan) {
  const std::string who = "acknowledgement of checkpoint " + std::to_string(ack.checkpoint_id()) +
                          " from '" + ack.task_id() + "' subtask " + std::to_string(ack.subtask());
  auto t = plan.task_index.find(ack.task_id());
  if (t == plan.task_index.end() || ack.subtask() < 0 ||
      ack.subtask() >= plan.tasks[t->second].parallelism) {
    return Status::InvalidArgument(who + ": no such subtask in the job");
  }
  const TaskPlan& task = plan.tasks[t->second];
  std::set<std::string> seen;
  for (const auto& os : ack.states()) {
    // Only the vertices of the sender's own chain, each once, for its own subtask index.
    bool in_chain = false;
    for (int v : task.vertices) in_chain = in_chain || plan.spec.vertices[v].id == os.vertex_id();
    if (!in_chain || os.subtask() != ack.subtask() || !seen.insert(os.vertex_id()).second) {
      return Status::InvalidArgument(who + " carries state of vertex '" + os.vertex_id() +
                                     "' subtask " + std::to_string(os.subtask()) +
                                     ", which is not (once) its own");
    }
    for (const auto& [name, n] : os.counts()) {
      if (n < 0 || n > kMaxRecordCount) {
        return Status::InvalidArgument(who + " reports count " + name + " = " +
                                       std::to_string(n));
      }
    }
    if (!os.has_keyed()) continue;
    WEIR_RETURN_IF_ERROR(ValidateStateHandle(os.keyed(), own_prefix, plan.spec.max_parallelism,
                                             who + " for vertex '" + os.vertex_id() + "'"));
  }
  return Status::Ok();
}

void RemoveCheckpointFiles(const std::string& dir, const std::string& root,
                           const std::vector<std::string>& shared_files) {
  std::error_code ec;
  if (!dir.empty()) fs::remove_all(dir, ec);
  if (ec) Log()->warn("cannot remove {}: {}", dir, ec.message());
  for (const std::string& f : shared_files) {
    fs::remove(root + "/" + f, ec);
    if (ec) Log()->warn("cannot remove {}/{}: {}", root, f, ec.message());
  }
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IoError("cannot create " + tmp + ": " + strerror(errno));
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + off, bytes.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::string err = strerror(errno);
      ::close(fd);
      return Status::IoError("write to " + tmp + " failed: " + err);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    std::string err = strerror(errno);
    ::close(fd);
    return Status::IoError("fsync of " + tmp + " failed: " + err);
  }
  if (::close(fd) != 0) return Status::IoError("close of " + tmp + " failed: " + strerror(errno));
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::IoError("rename " + tmp + " -> " + path + " failed: " + strerror(errno));
  }
  return FsyncDirectory(fs::path(path).parent_path().string());
}

Result<proto::CheckpointMetadata> ReadMetadata(const std::string& dir) {
  const std::string path = dir + "/_metadata";
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::NotFound("no checkpoint metadata at " + path +
                            " (is this a savepoint or retained checkpoint directory?)");
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseMetadata(ss.str(), path);
}

Result<proto::CheckpointMetadata> ParseMetadata(const std::string& bytes, const std::string& path) {
  proto::CheckpointMetadata md;
  if (!md.ParseFromString(bytes)) {
    return Status::DataLoss("corrupt checkpoint metadata " + path + ": cannot be parsed");
  }
  if (md.format_version() != kMetadataVersion) {
    return Status::DataLoss("checkpoint metadata " + path + " has format version " +
                            std::to_string(md.format_version()) + ", this Weir reads " +
                            std::to_string(kMetadataVersion));
  }
  if (md.max_parallelism() < 1 || md.checkpoint_id() < 1) {
    return Status::DataLoss("corrupt checkpoint metadata " + path + ": bad header fields");
  }
  return md;
}

Result<CheckpointSettings> SettingsFor(const proto::CheckpointConfig& job,
                                       const CheckpointSettings& defaults) {
  CheckpointSettings s = defaults;
  if (job.interval_ms() < 0 || job.timeout_ms() < 0 || job.min_pause_ms() < 0) {
    return Status::InvalidArgument("checkpointing: durations must be >= 0");
  }
  if (job.interval_ms() > 0) s.interval_ms = job.interval_ms();
  if (job.timeout_ms() > 0) s.timeout_ms = job.timeout_ms();
  if (job.min_pause_ms() > 0) s.min_pause_ms = job.min_pause_ms();
  if (job.has_tolerable_failures()) s.tolerable_failures = job.tolerable_failures();
  if (job.retained() < 0) return Status::InvalidArgument("checkpointing.retained: must be >= 1");
  if (job.retained() > 0) s.retained = job.retained();
  if (!job.directory().empty()) s.directory = job.directory();
  return s;
}

CheckpointCoordinator::CheckpointCoordinator(std::string job_id, int attempt,
                                             CheckpointSettings settings,
                                             std::shared_ptr<const ExecutionPlan> plan,
                                             proto::JobGraph graph, Clock clock,
                                             Executor executor, TaskManagerGateway* gateway,
                                             Locate locate, int64_t first_checkpoint_id)
    : job_id_(std::move(job_id)),
      attempt_(attempt),
      settings_(std::move(settings)),
      plan_(std::move(plan)),
      graph_(std::move(graph)),
      clock_(std::move(clock)),
      executor_(std::move(executor)),
      gateway_(gateway),
      locate_(std::move(locate)),
      root_(settings_.directory.empty() ? "" : settings_.directory + "/" + job_id_),
      next_id_(first_checkpoint_id) {
  last_end_ms_ = clock_();
  last_trigger_ms_ = last_end_ms_;
}

int64_t CheckpointCoordinator::last_completed_id() const {
  return completed_.empty() ? 0 : completed_.back().id;
}

std::optional<std::string> CheckpointCoordinator::Tick(bool all_running) {
  const int64_t now = clock_();
  // A checkpoint being finalized is waiting for a disk, not for subtasks: its outcome comes
  // back through Finalized().
  if (pending_ && !pending_->finalizing && now - pending_->trigger_ms > settings_.timeout_ms) {
    return Abort("checkpoint " + std::to_string(pending_->id) + " expired after " +
                 std::to_string(settings_.timeout_ms) + " ms");
  }
  if (pending_ || !all_running) return std::nullopt;
  if (!savepoint_requests_.empty()) {
    auto [parent, done] = std::move(savepoint_requests_.front());
    savepoint_requests_.pop_front();
    proto::CheckpointOptions opts;
    const std::string dir =
        parent + "/savepoint-" + job_id_.substr(0, 8) + "-" + std::to_string(next_id_);
    opts.set_root(dir);
    opts.set_incremental(false);
    opts.set_savepoint(true);
    Trigger(opts, dir, std::move(done));
    return std::nullopt;
  }
  if (settings_.interval_ms <= 0 || root_.empty()) return std::nullopt;
  if (now - last_trigger_ms_ < settings_.interval_ms) return std::nullopt;
  if (now - last_end_ms_ < settings_.min_pause_ms) return std::nullopt;
  proto::CheckpointOptions opts;
  opts.set_root(root_);
  opts.set_incremental(true);
  Trigger(opts, root_ + "/chk-" + std::to_string(next_id_), nullptr);
  return std::nullopt;
}

void CheckpointCoordinator::Trigger(const proto::CheckpointOptions& options,
                                    const std::string& dir, SavepointDone done) {
  auto p = std::make_unique<Pending>();
  p->id = next_id_++;
  p->trigger_ms = clock_();
  p->options = options;
  p->dir = dir;
  p->savepoint_done = std::move(done);
  last_trigger_ms_ = p->trigger_ms;
  std::vector<std::pair<std::string, int>> sources;
  for (const TaskPlan& t : plan_->tasks) {
    for (int i = 0; i < t.parallelism; ++i) p->waiting.insert({t.id, i});
    if (t.in_edges.empty()) {
      for (int i = 0; i < t.parallelism; ++i) sources.push_back({t.id, i});
    }
  }
  // No directory is created here (no disk under the caller's lock): the state backends create
  // theirs, and finalization creates chk-n before writing _metadata.
  Log()->info("job={} checkpoint={} triggered{} -> {}", job_id_, p->id,
              options.savepoint() ? " (savepoint)" : "", dir);
  for (const auto& [task, sub] : sources) {
    proto::TriggerCheckpointRequest req;
    req.set_job_id(job_id_);
    req.set_attempt(attempt_);
    req.set_task_id(task);
    req.set_subtask(sub);
    req.set_checkpoint_id(p->id);
    req.set_timestamp_ms(p->trigger_ms);
    *req.mutable_options() = options;
    req.set_jm_session(jm_session_);
    const std::string addr = locate_(task, sub);
    // Runs later on the executor: capture the gateway, never the coordinator (it may be gone
    // by then, e.g. when the job fails right after the trigger).
    executor_(TaskManagerLane(addr), [gateway = gateway_, addr, req, fenced = fenced_] {
      if (fenced->load()) return;  // the attempt was replaced while this waited in the lane
      Status st = gateway->TriggerCheckpoint(addr, req);
      if (!st.ok()) {
        Log()->warn("job={} checkpoint={} trigger at {} failed: {}", req.job_id(),
                    req.checkpoint_id(), addr, st.ToString());
      }
    });
  }
  stats_.set_in_progress(1);
  pending_ = std::move(p);
}

std::optional<std::string> CheckpointCoordinator::Acknowledge(
    proto::AcknowledgeCheckpointRequest&& ack) {
  if (!pending_ || ack.checkpoint_id() != pending_->id || ack.attempt() != attempt_) {
    return std::nullopt;  // late or for an aborted checkpoint: its files are cleaned with it
  }
  if (pending_->finalizing) return std::nullopt;
  if (!pending_->waiting.count({ack.task_id(), ack.subtask()})) return std::nullopt;
  Status valid = ValidateAckFiles(
      ack, pending_->options.savepoint() ? "" : "chk-" + std::to_string(pending_->id) + "/",
      *plan_);
  if (!valid.ok()) return Abort(valid.message());
  pending_->waiting.erase({ack.task_id(), ack.subtask()});
  pending_->acks.push_back(std::move(ack));
  if (!pending_->waiting.empty()) return std::nullopt;
  return Complete();
}

std::optional<std::string> CheckpointCoordinator::Decline(
    const proto::DeclineCheckpointRequest& d) {
  if (!pending_ || d.checkpoint_id() != pending_->id || d.attempt() != attempt_) return std::nullopt;
  if (pending_->finalizing) return std::nullopt;  // every subtask acknowledged it already
  return Abort("checkpoint " + std::to_string(d.checkpoint_id()) + " declined by '" +
               d.task_id() + "' subtask " + std::to_string(d.subtask()) + ": " + d.reason());
}

std::optional<std::string> CheckpointCoordinator::Complete() {
  std::unique_ptr<Pending> p = std::move(pending_);
  proto::CheckpointMetadata md;
  md.set_format_version(kMetadataVersion);
  md.set_job_id(job_id_);
  md.set_checkpoint_id(p->id);
  md.set_timestamp_ms(p->trigger_ms);
  md.set_savepoint(p->options.savepoint());
  md.set_max_parallelism(plan_->spec.max_parallelism);
  *md.mutable_graph() = graph_;
  std::map<std::string, proto::VertexState*> by_vertex;
  for (const VertexSpec& v : plan_->spec.vertices) {
    proto::VertexState* vs = md.add_vertices();
    vs->set_vertex_id(v.id);
    vs->set_parallelism(v.parallelism);
    by_vertex[v.id] = vs;
  }
  uint64_t state_size = 0, incremental = 0;
  Completed done{p->id, p->dir, {}};
  // Per vertex: the minimum commit watermark and how many subtasks reported one.
  std::map<std::string, std::pair<int64_t, int>> commit_wm;
  proto::CheckpointSummary summary;
  auto* counts = summary.mutable_counts();
  // The acknowledgements are moved into the metadata (they can be large: this runs under the
  // job manager's lock, serializing and writing do not).
  int64_t align = 0, sync = 0, async = 0;
  for (auto& ack : p->acks) {
    align = std::max(align, ack.alignment_duration_ms());
    sync = std::max(sync, ack.sync_duration_ms());
    async = std::max(async, ack.async_duration_ms());
    for (auto& os : *ack.mutable_states()) {
      auto it = by_vertex.find(os.vertex_id());
      if (it == by_vertex.end()) continue;
      for (const auto& [name, n] : os.counts()) (*counts)[name] += n;
      if (os.has_commit_watermark()) {
        auto [w, inserted] = commit_wm.try_emplace(os.vertex_id(), os.commit_watermark(), 0);
        w->second.first = std::min(w->second.first, os.commit_watermark());
        ++w->second.second;
      }
      if (os.has_keyed()) {
        state_size += os.keyed().state_size();
        incremental += os.keyed().incremental_size();
        for (const auto& f : os.keyed().files()) done.files.insert(f.path());
      }
      *it->second->add_subtasks() = std::move(os);
    }
  }
  p->acks.clear();
  // Subtasks in index order, so a reader can index them.
  for (auto& [id, vs] : by_vertex) {
    std::sort(vs->mutable_subtasks()->begin(), vs->mutable_subtasks()->end(),
              [](const auto& a, const auto& b) { return a.subtask() < b.subtask(); });
  }
  const int64_t now = clock_();
  summary.set_id(p->id);
  summary.set_trigger_time_ms(p->trigger_ms);
  summary.set_duration_ms(now - p->trigger_ms);
  summary.set_state_size(state_size);
  summary.set_incremental_size(incremental);
  summary.set_alignment_ms(align);
  summary.set_sync_ms(sync);
  summary.set_async_ms(async);
  summary.set_path(p->dir);
  summary.set_savepoint(p->options.savepoint());
  for (const VertexSpec& v : plan_->spec.vertices) {
    auto it = commit_wm.find(v.id);
    // Only when every subtask reported: a missing one could still be behind.
    if (it != commit_wm.end() && it->second.second == v.parallelism) {
      p->commit_watermarks[v.id] = it->second.first;
    }
  }
  p->summary = std::move(summary);
  auto f = std::make_shared<Finalizing>();
  f->completed = std::move(done);
  f->savepoint = p->options.savepoint();
  f->savepoint_done = p->savepoint_done;
  DurableStep step;
  if (!f->savepoint && prepare_durable_) step = prepare_durable_(p->dir, next_id_);
  p->finalizing = f;
  pending_ = std::move(p);
  const std::string dir = f->completed.dir;
  const std::string parent = fs::path(dir).parent_path().string();
  // The I/O lane: chk-n and its _metadata made durable, then the job manager's step. The
  // work never touches the coordinator (it may be gone by then).
  auto metadata = std::make_shared<proto::CheckpointMetadata>(std::move(md));
  executor_(kIoLane, [f, dir, parent, metadata, step = std::move(step), cb = on_finalized_] {
    std::error_code ec;
    fs::create_directories(dir, ec);
    Status st = ec ? Status::IoError("cannot create " + dir + ": " + ec.message()) : Status::Ok();
    if (st.ok()) st = WriteFileAtomically(dir + "/_metadata", metadata->SerializeAsString());
    if (st.ok()) st = FsyncDirectory(parent);  // chk-n's own entry in its parent
    if (st.ok() && step) st = step();
    if (cb) cb(f, st);
  });
  return std::nullopt;
}

std::optional<std::string> CheckpointCoordinator::Finalized(const std::shared_ptr<Finalizing>& f,
                                                            const Status& st) {
  if (!pending_ || pending_->finalizing != f) return std::nullopt;  // not this attempt's
  if (!st.ok()) {
    pending_->finalizing.reset();
    return Abort("making the checkpoint durable failed: " + st.message());
  }
  std::unique_ptr<Pending> p = std::move(pending_);
  stats_.set_in_progress(0);
  const int64_t now = clock_();
  last_end_ms_ = now;
  consecutive_failures_ = 0;
  proto::CheckpointSummary& summary = p->summary;
  summary.set_duration_ms(now - p->trigger_ms);
  Log()->info("job={} checkpoint={} complete in {} ms: {} bytes ({} new){}", job_id_, p->id,
              now - p->trigger_ms, summary.state_size(), summary.incremental_size(),
              p->options.savepoint() ? ", savepoint " + p->dir : "");
  if (p->options.savepoint()) {
    *stats_.mutable_latest_savepoint() = summary;
  } else {
    stats_.set_completed(stats_.completed() + 1);
    *stats_.mutable_latest_completed() = summary;
    auto* recent = stats_.mutable_recent_completed();
    recent->Add()->CopyFrom(summary);
    std::rotate(recent->rbegin(), recent->rbegin() + 1, recent->rend());  // newest first
    while (recent->size() > kRecentCompleted) recent->RemoveLast();
    completed_.push_back(f->completed);
    Prune();
    if (on_completed_) on_completed_(p->dir);
  }
  Notify(p->id, true, p->commit_watermarks);
  if (p->savepoint_done) {
    proto::SavepointResponse resp;
    resp.set_path(p->dir);
    resp.set_checkpoint_id(p->id);
    auto cb = std::move(p->savepoint_done);
    executor_("", [cb, resp] { cb(resp); });
  }
  return std::nullopt;
}

std::optional<std::string> CheckpointCoordinator::Abort(const std::string& reason) {
  if (!pending_) return std::nullopt;
  std::unique_ptr<Pending> p = std::move(pending_);
  stats_.set_in_progress(0);
  Log()->warn("job={} checkpoint={} aborted: {}", job_id_, p->id, reason);
  // Partial files of this checkpoint go; nothing shared is touched (a shared file uploaded by
  // this attempt is either referenced by a retained checkpoint or harmlessly orphaned).
  // On the I/O lane, after any earlier work on it.
  executor_(kIoLane, [dir = p->dir] { RemoveCheckpointFiles(dir, "", {}); });
  last_end_ms_ = clock_();
  proto::CheckpointSummary f;
  f.set_id(p->id);
  f.set_trigger_time_ms(p->trigger_ms);
  f.set_duration_ms(last_end_ms_ - p->trigger_ms);
  f.set_failure(reason);
  f.set_savepoint(p->options.savepoint());
  stats_.set_failed(stats_.failed() + 1);
  auto* list = stats_.mutable_recent_failures();
  list->Add()->CopyFrom(f);
  std::rotate(list->rbegin(), list->rbegin() + 1, list->rend());  // newest first
  while (list->size() > 5) list->RemoveLast();
  Notify(p->id, false);
  if (p->savepoint_done) {
    auto cb = std::move(p->savepoint_done);
    executor_("", [cb, reason] { cb(Status::Unavailable("savepoint failed: " + reason)); });
    return std::nullopt;  // a failed savepoint does not count against the job
  }
  ++consecutive_failures_;
  if (settings_.tolerable_failures >= 0 && consecutive_failures_ > settings_.tolerable_failures) {
    return "too many consecutive checkpoint failures (" + std::to_string(consecutive_failures_) +
           "); last: " + reason;
  }
  return std::nullopt;
}

void CheckpointCoordinator::Shutdown(const std::string& reason) {
  if (finalizing()) {
    // Its outcome arrives after this attempt ended: the job manager handles it (a durable
    // checkpoint is kept as the restart point; a failed one is removed).
    pending_.reset();
    stats_.set_in_progress(0);
  } else {
    Abort(reason);
  }
  for (auto& [dir, done] : savepoint_requests_) {
    auto cb = std::move(done);
    executor_("", [cb, reason] { cb(Status::Unavailable("savepoint not taken: " + reason)); });
  }
  savepoint_requests_.clear();
}

void CheckpointCoordinator::RequestSavepoint(const std::string& parent_dir, SavepointDone done) {
  savepoint_requests_.emplace_back(parent_dir, std::move(done));
}

void CheckpointCoordinator::Notify(int64_t id, bool completed,
                                   const std::map<std::string, int64_t>& commit_watermarks) {
  std::set<std::string> addrs;
  for (const TaskPlan& t : plan_->tasks) {
    for (int i = 0; i < t.parallelism; ++i) addrs.insert(locate_(t.id, i));
  }
  for (const auto& addr : addrs) {
    if (addr.empty()) continue;
    proto::NotifyCheckpointRequest req;
    req.set_job_id(job_id_);
    req.set_attempt(attempt_);
    req.set_checkpoint_id(id);
    req.set_completed(completed);
    for (const auto& [v, wm] : commit_watermarks) (*req.mutable_commit_watermarks())[v] = wm;
    req.set_jm_session(jm_session_);
    // not `this`: see Trigger
    executor_(TaskManagerLane(addr), [gateway = gateway_, addr, req, fenced = fenced_] {
      // Fencing: a notification still queued (e.g. behind calls to a hung task manager) when
      // the attempt was replaced is dropped, never delivered late. The restored attempt
      // commits the checkpoint's files itself.
      if (fenced->load()) {
        Log()->info("job={} attempt={} checkpoint={} notify at {} dropped: attempt replaced",
                    req.job_id(), req.attempt(), req.checkpoint_id(), addr);
        return;
      }
      Status st = gateway->NotifyCheckpoint(addr, req);
      if (!st.ok()) {
        Log()->warn("job={} checkpoint={} notify at {} failed: {}", req.job_id(),
                    req.checkpoint_id(), addr, st.ToString());
      }
    });
  }
}

void CheckpointCoordinator::Prune() {
  const size_t keep = static_cast<size_t>(std::max(1, settings_.retained));
  PruneCheckpoints(completed_, keep, root_, executor_, job_id_);
}

proto::CheckpointStats CheckpointCoordinator::Stats() const { return stats_; }

void PruneCheckpoints(std::deque<CompletedCheckpoint>& completed, size_t keep,
                      const std::string& root, const CheckpointCoordinator::Executor& executor,
                      const std::string& job_id) {
  while (completed.size() > keep) {
    CompletedCheckpoint old = std::move(completed.front());
    completed.pop_front();
    // Shared files no retained checkpoint references any more. (With at most one checkpoint
    // in flight, a newer in-flight one cannot reference a file the retained ones do not: it
    // snapshots a newer state of the same backends.)
    std::vector<std::string> unused;
    for (const std::string& f : old.files) {
      if (f.rfind("shared/", 0) != 0) continue;
      bool used = false;
      for (const CompletedCheckpoint& c : completed) used = used || c.files.count(f);
      if (!used) unused.push_back(f);
    }
    Log()->info("job={} checkpoint={} pruned", job_id, old.id);
    executor(kIoLane, [dir = old.dir, root, unused = std::move(unused)] {
      RemoveCheckpointFiles(dir, root, unused);
    });
  }
}

namespace {

// Snapshots from before a sink became a vertex of its own (StateMigration: parse's dirty-data
// sink lived inside parse, its lists named "dirty/<list>") restore into the new vertex: the
// lists move, renamed, per old subtask, so the usual redistribution applies to them. Only when
// the snapshot has no state of the new vertex itself (a newer snapshot has, and no such lists).
proto::CheckpointMetadata MigrateState(const proto::CheckpointMetadata& md,
                                       const ExecutionPlan& plan) {
  proto::CheckpointMetadata out = md;
  for (const StateMigration& m : plan.state_migrations) {
    proto::VertexState* from = nullptr;
    bool target_has_state = false;
    for (auto& vs : *out.mutable_vertices()) {
      if (vs.vertex_id() == m.from_vertex) from = &vs;
      if (vs.vertex_id() == m.to_vertex) {
        for (const auto& os : vs.subtasks()) {
          target_has_state = target_has_state || os.operator_state_size() > 0 || os.has_keyed();
        }
      }
    }
    if (from == nullptr || target_has_state) continue;
    proto::VertexState moved;
    moved.set_vertex_id(m.to_vertex);
    moved.set_parallelism(from->parallelism());
    bool any = false;
    for (auto& os : *from->mutable_subtasks()) {
      proto::OperatorSubtaskState* dst = moved.add_subtasks();
      dst->set_vertex_id(m.to_vertex);
      dst->set_subtask(os.subtask());
      google::protobuf::RepeatedPtrField<proto::NamedList> keep;
      for (auto& l : *os.mutable_operator_state()) {
        if (l.name().rfind(m.list_prefix, 0) == 0) {
          proto::NamedList* nl = dst->add_operator_state();
          *nl = std::move(l);
          nl->set_name(nl->name().substr(m.list_prefix.size()));
          any = true;
        } else {
          *keep.Add() = std::move(l);
        }
      }
      os.mutable_operator_state()->Swap(&keep);
    }
    if (!any) continue;
    Log()->info(
        "restoring the state of '{}' from lists '{}*' of vertex '{}' (a snapshot "
        "from before side outputs)",
        m.to_vertex, m.list_prefix, m.from_vertex);
    // A vertex appears once in the metadata: drop a stateless entry of the target.
    for (int i = out.vertices_size() - 1; i >= 0; --i) {
      if (out.vertices(i).vertex_id() == m.to_vertex) out.mutable_vertices()->DeleteSubrange(i, 1);
    }
    *out.add_vertices() = std::move(moved);
  }
  return out;
}

}  // namespace

Result<std::map<std::pair<std::string, int>, proto::RestoreInfo>> PlanRestore(
    const proto::CheckpointMetadata& original, const std::string& dir, const ExecutionPlan& plan,
    bool allow_non_restored) {
  const proto::CheckpointMetadata md =
      plan.state_migrations.empty() ? original : MigrateState(original, plan);
  // Paths in a savepoint are relative to its directory; in a checkpoint, to the job's root.
  const std::string root = md.savepoint() ? dir : fs::path(dir).parent_path().string();
  std::map<std::pair<std::string, int>, proto::RestoreInfo> out;
  for (const TaskPlan& t : plan.tasks) {
    for (int i = 0; i < t.parallelism; ++i) {
      auto& info = out[{t.id, i}];
      info.set_root(root);
      info.set_checkpoint_id(md.checkpoint_id());
    }
  }
  for (const proto::VertexState& vs : md.vertices()) {
    bool has_state = false;
    for (const auto& os : vs.subtasks()) {
      has_state = has_state || os.has_keyed() || os.operator_state_size() > 0;
    }
    auto vit = plan.vertex_index.find(vs.vertex_id());
    if (vit == plan.vertex_index.end()) {
      if (has_state && !allow_non_restored) {
        return Status::FailedPrecondition(
            "the snapshot holds state of vertex '" + vs.vertex_id() +
            "', which this job does not have (rename the vertex back, or pass "
            "--allow-non-restored-state to drop that state)");
      }
      continue;
    }
    if (!has_state) continue;
    if (md.max_parallelism() != plan.spec.max_parallelism) {
      return Status::FailedPrecondition(
          "max_parallelism differs: the snapshot has " + std::to_string(md.max_parallelism()) +
          ", the job " + std::to_string(plan.spec.max_parallelism) +
          " (keyed state can only be rescaled within the same max_parallelism)");
    }
    const VertexSpec& v = plan.spec.vertices[vit->second];
    const TaskPlan& task = plan.tasks[plan.task_of_vertex[vit->second]];
    // Missing files are found now, before anything starts on incomplete state. The handles
    // are checked first: a _metadata is untrusted input, its paths must stay below `root`.
    for (const auto& os : vs.subtasks()) {
      if (!os.has_keyed()) continue;
      WEIR_RETURN_IF_ERROR(ValidateStateHandle(
          os.keyed(), "", md.max_parallelism(),
          "the snapshot's state of vertex '" + v.id + "' subtask " + std::to_string(os.subtask())));
      for (const auto& f : os.keyed().files()) {
        if (!fs::exists(root + "/" + f.path())) {
          return Status::NotFound("state file " + root + "/" + f.path() + " of vertex '" +
                                  v.id + "' is missing");
        }
      }
    }
    std::map<std::string, std::vector<const std::string*>> split_entries;
    std::map<std::string, std::vector<const std::string*>> union_entries;
    for (const auto& os : vs.subtasks()) {
      for (const auto& l : os.operator_state()) {
        auto& dst = l.mode() == proto::NamedList::UNION ? union_entries[l.name()]
                                                         : split_entries[l.name()];
        for (const auto& e : l.entries()) dst.push_back(&e);
      }
    }
    for (int i = 0; i < v.parallelism; ++i) {
      proto::VertexRestore* vr = out[{task.id, i}].add_vertices();
      vr->set_vertex_id(v.id);
      const KeyGroupRange mine = KeyGroupRangeFor(i, plan.spec.max_parallelism, v.parallelism);
      for (const auto& os : vs.subtasks()) {
        if (!os.has_keyed()) continue;
        const auto& k = os.keyed();
        if (k.key_group_last() < mine.first || k.key_group_first() > mine.last) continue;
        *vr->add_keyed() = k;
      }
      for (const auto& [name, entries] : split_entries) {
        proto::NamedList* l = vr->add_operator_state();
        l->set_name(name);
        l->set_mode(proto::NamedList::SPLIT);
        for (size_t e = static_cast<size_t>(i); e < entries.size();
             e += static_cast<size_t>(v.parallelism)) {
          l->add_entries(*entries[e]);
        }
      }
      for (const auto& [name, entries] : union_entries) {
        proto::NamedList* l = vr->add_operator_state();
        l->set_name(name);
        l->set_mode(proto::NamedList::UNION);
        for (const auto* e : entries) l->add_entries(*e);
      }
    }
  }
  return out;
}

}  // namespace weir::jm
