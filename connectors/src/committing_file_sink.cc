// committing_file: an exactly-once JSON-lines file sink, committed by checkpoints (two-phase
// commit: pre-commit at the snapshot, commit when the checkpoint is complete).
//
// config: path (required), prefix (default "part"), suffix (default ".jsonl")
//
// Files and their life:
//   <path>/.staging/<base><suffix>.inprogress  being written (rows since the last snapshot)
//   <path>/.staging/<base><suffix>.pending     closed and fsynced at snapshot n; waits for n
//   <path>/<base><suffix>                      committed: complete, fsynced, final
// with
//   <base> = <prefix>-<job id>-<vertex>-<subtask>-<attempt>-<next checkpoint>-<seq>
//
// Every part is needed: job id, vertex, subtask and attempt name the writer, so that after any
// crash the restore logic knows whose leftover a staging file is (and so that two writers can
// never pick the same name, whatever the parallelism after a rescale); <next checkpoint> is the
// first checkpoint that can cover the file (the last checkpoint the writer saw + 1, or the
// restored one + 1), for people reading the directory; <seq> counts the writer's files, so
// names are never reused and never random. A committed file keeps its staging name minus the
// state tag, so it is unique across jobs, vertices, subtasks and attempts. Readers of <path>
// only ever see whole files: a file appears there by one rename, after its data was fsynced.
//
// Operator state, per subtask and checkpoint n:
//   "pending" (SPLIT): one entry per staged file not yet committed: (checkpoint it belongs to,
//     staging name, final name). Whoever restores an entry commits it.
//   "writers" (UNION): one entry per subtask: (n, job id, attempt, subtask, the staging names
//     of its pending files). After a restore every new subtask sees all of them: it learns n,
//     the job ids whose leftovers it may delete, and every staging name the checkpoint still
//     needs (see Open for why deletion needs the whole set and not just this subtask's share).
// Entries are fields joined by NUL bytes (no file name or id can hold one), led by a version.
//
// Limits: committed output is only exact if the job restores from the latest completed
// checkpoint (restoring an older one replays records whose files are already committed), and
// Finish commits everything at the end of a bounded input without a final checkpoint (a job
// that fails after one sink subtask finished and is then restored repeats that subtask's tail).
#include "committing_file_sink.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "weir/connectors.h"
#include "weir/logging.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<spdlog::logger> Log() {
  static auto logger = ModuleLogger("connectors");
  return logger;
}

constexpr std::string_view kInProgress = ".inprogress";
constexpr std::string_view kPending = ".pending";
constexpr std::string_view kPendingList = "pending";
constexpr std::string_view kWritersList = "writers";
constexpr std::string_view kPendingEntryV1 = "p1";
constexpr std::string_view kWriterEntryV1 = "w1";

// ---------------------------------------------------------------- state entries
std::string JoinFields(const std::vector<std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i > 0) out.push_back('\0');
    out += fields[i];
  }
  return out;
}

std::vector<std::string_view> SplitFields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (true) {
    size_t end = s.find('\0', start);
    if (end == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, end - start));
    start = end + 1;
  }
}

bool ParseInt(std::string_view s, int64_t* v) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && p == s.data() + s.size();
}

// A name from restored state is used in renames and deletions: it must stay inside its
// directory whatever a corrupt snapshot holds.
bool IsPlainFileName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

struct PendingFile {
  int64_t checkpoint = 0;  // the checkpoint whose completion commits it
  std::string staging;     // name in <path>/.staging
  std::string final_name;  // name in <path>
};

std::string EncodePending(const PendingFile& p) {
  return JoinFields(
      {std::string(kPendingEntryV1), std::to_string(p.checkpoint), p.staging, p.final_name});
}

Result<PendingFile> DecodePending(std::string_view e) {
  std::vector<std::string_view> f = SplitFields(e);
  PendingFile p;
  if (f.size() != 4 || f[0] != kPendingEntryV1 || !ParseInt(f[1], &p.checkpoint) ||
      !IsPlainFileName(f[2]) || !IsPlainFileName(f[3])) {
    return Status::DataLoss("committing_file: corrupt 'pending' entry in restored state");
  }
  p.staging = std::string(f[2]);
  p.final_name = std::string(f[3]);
  return p;
}

struct WriterEntry {
  int64_t checkpoint = 0;
  std::string job_id;
  int64_t attempt = 0;
  int64_t subtask = 0;
  std::vector<std::string> staging_names;  // its pending files
};

std::string EncodeWriter(const WriterEntry& w) {
  std::vector<std::string> f = {std::string(kWriterEntryV1), std::to_string(w.checkpoint), w.job_id,
                                std::to_string(w.attempt), std::to_string(w.subtask)};
  f.insert(f.end(), w.staging_names.begin(), w.staging_names.end());
  return JoinFields(f);
}

Result<WriterEntry> DecodeWriter(std::string_view e) {
  std::vector<std::string_view> f = SplitFields(e);
  WriterEntry w;
  if (f.size() < 5 || f[0] != kWriterEntryV1 || !ParseInt(f[1], &w.checkpoint) || f[2].empty() ||
      !ParseInt(f[3], &w.attempt) || !ParseInt(f[4], &w.subtask)) {
    return Status::DataLoss("committing_file: corrupt 'writers' entry in restored state");
  }
  w.job_id = std::string(f[2]);
  for (size_t i = 5; i < f.size(); ++i) {
    if (!IsPlainFileName(f[i])) {
      return Status::DataLoss("committing_file: corrupt 'writers' entry in restored state");
    }
    w.staging_names.emplace_back(f[i]);
  }
  return w;
}

// ---------------------------------------------------------------- file names
// A staging file name split into its parts. The numbers are parsed from the right, so a
// vertex id or prefix holding '-' is no problem; `owner` is "<prefix>-<job id>-<vertex>" and is
// compared whole against the owners we know.
struct StagingName {
  std::string owner;
  int64_t subtask = 0, attempt = 0, next_checkpoint = 0, seq = 0;
};

bool ParseStagingName(std::string_view name, std::string_view suffix, StagingName* out) {
  if (name.ends_with(kInProgress)) {
    name.remove_suffix(kInProgress.size());
  } else if (name.ends_with(kPending)) {
    name.remove_suffix(kPending.size());
  } else {
    return false;
  }
  if (!name.ends_with(suffix)) return false;
  name.remove_suffix(suffix.size());
  int64_t* numbers[] = {&out->seq, &out->next_checkpoint, &out->attempt, &out->subtask};
  for (int64_t* v : numbers) {
    const size_t dash = name.rfind('-');
    if (dash == std::string_view::npos) return false;
    if (!ParseInt(name.substr(dash + 1), v) || *v < 0) return false;
    name = name.substr(0, dash);
  }
  out->owner = std::string(name);
  return true;
}

Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open directory " + dir + ": " + strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) return Status::IoError("fsync of directory " + dir + " failed: " + strerror(err));
  return Status::Ok();
}

// ---------------------------------------------------------------- the sink
struct CommittingFileConfig {
  std::string path;
  std::string prefix;
  std::string suffix;
};

Result<CommittingFileConfig> PlanCommittingFile(const Config& config) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"path", "prefix", "suffix"}));
  CommittingFileConfig c;
  WEIR_ASSIGN_OR_RETURN(c.path, config.GetString("path"));
  if (c.path.empty()) return Status::InvalidArgument(config.path() + ".path: must not be empty");
  WEIR_ASSIGN_OR_RETURN(c.prefix, config.GetString("prefix", std::string("part")));
  WEIR_ASSIGN_OR_RETURN(c.suffix, config.GetString("suffix", std::string(".jsonl")));
  // Both become part of file names, and names are fields of NUL-separated state entries.
  if (c.prefix.empty() || c.prefix.find_first_of(std::string("/\0", 2)) != std::string::npos) {
    return Status::InvalidArgument(config.path() +
                                   ".prefix: must be non-empty, without '/' or NUL");
  }
  if (c.suffix.find_first_of(std::string("/\0", 2)) != std::string::npos) {
    return Status::InvalidArgument(config.path() + ".suffix: must not contain '/' or NUL");
  }
  return c;
}

class CommittingFileSink : public Operator {
 public:
  CommittingFileSink(Schema schema, CommittingFileConfig config)
      : schema_(std::move(schema)),
        dir_(std::move(config.path)),
        staging_dir_(dir_ + "/.staging"),
        prefix_(std::move(config.prefix)),
        suffix_(std::move(config.suffix)) {}

  ~CommittingFileSink() override { CloseFile(); }

  Status Open(const OperatorContext& ctx) override {
    job_id_ = ctx.job_id;
    vertex_ = ctx.vertex_id;
    subtask_ = ctx.subtask;
    attempt_ = ctx.attempt;
    log_prefix_ = ctx.log_prefix;
    std::error_code ec;
    fs::create_directories(staging_dir_, ec);
    if (ec) return Status::IoError("cannot create directory " + staging_dir_ + ": " + ec.message());
    // The staging directory itself must survive a crash, or the pending files in it would not.
    WEIR_RETURN_IF_ERROR(SyncDir(dir_));

    std::vector<PendingFile> restored;  // this subtask's share: it commits them
    std::set<std::string> needed;       // every staging name the restored checkpoint names
    std::set<std::string> jobs;         // whose leftovers may be deleted
    jobs.insert(job_id_);
    int64_t restored_id = -1;
    bool have_writers = false;
    if (ctx.restored) {
      for (const proto::NamedList& list : ctx.restored->operator_state) {
        if (list.name() == kPendingList) {
          for (const std::string& e : list.entries()) {
            WEIR_ASSIGN_OR_RETURN(PendingFile p, DecodePending(e));
            needed.insert(p.staging);
            restored.push_back(std::move(p));
          }
        } else if (list.name() == kWritersList) {
          have_writers = true;
          for (const std::string& e : list.entries()) {
            WEIR_ASSIGN_OR_RETURN(WriterEntry w, DecodeWriter(e));
            restored_id = std::max(restored_id, w.checkpoint);
            jobs.insert(w.job_id);
            needed.insert(w.staging_names.begin(), w.staging_names.end());
          }
        }
      }
    }

    // First the commits: the restored checkpoint is complete (it is what we restore from), so
    // its pending files are committed output, whether or not the old job got to rename them.
    pending_ = std::move(restored);
    WEIR_RETURN_IF_ERROR(CommitPending(std::numeric_limits<int64_t>::max()));
    if (!lost_.ok()) return lost_;

    if (ctx.restored && !have_writers) {
      // Not state this sink wrote: we cannot know which staging files the checkpoint still
      // needs for other subtasks, so nothing is deleted.
      Log()->warn("{} committing_file: restored state has no '{}' list; leftovers are kept",
                  log_prefix_, kWritersList);
    } else {
      WEIR_RETURN_IF_ERROR(DeleteLeftovers(jobs, needed, restored_id));
    }
    // Checkpoint ids continue after the restored one.
    next_checkpoint_ = restored_id >= 0 ? restored_id + 1 : 1;
    return Status::Ok();
  }

  Status Process(RowBatch& batch, Output&) override {
    if (!io_error_.ok()) return io_error_;
    if (batch.empty()) return Status::Ok();
    if (!file_) WEIR_RETURN_IF_ERROR(OpenNewFile());
    line_.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      AppendJson(batch[i], schema_, &line_);
      line_.push_back('\n');
    }
    if (fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
      return Fail(Status::IoError("write to " + InProgressPath() + " failed: " + strerror(errno)));
    }
    file_rows_ += static_cast<int64_t>(batch.size());
    return Status::Ok();
  }

  // Pre-commit: the rows since the last snapshot become a pending file of checkpoint n. An
  // error declines the checkpoint.
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    next_checkpoint_ = std::max(next_checkpoint_, checkpoint_id + 1);
    if (!io_error_.ok()) return io_error_;
    if (!lost_.ok()) {
      // Every later checkpoint is declined: a completed checkpoint's output is gone, so no
      // later one may claim exactly-once output.
      Log()->error("{} committing_file: declining checkpoint {}: {}", log_prefix_, checkpoint_id,
                   lost_.ToString());
      return lost_;
    }
    if (!commit_error_.ok()) {
      // A commit failed (its files stay pending and are retried at the next completion): this
      // checkpoint is declined so that the failure is seen, once.
      Status st = commit_error_;
      commit_error_ = Status::Ok();
      return st;
    }
    WEIR_RETURN_IF_ERROR(SealFile(checkpoint_id));

    proto::NamedList pending;
    pending.set_name(std::string(kPendingList));
    pending.set_mode(proto::NamedList::SPLIT);
    WriterEntry me;
    me.checkpoint = checkpoint_id;
    me.job_id = job_id_;
    me.attempt = attempt_;
    me.subtask = subtask_;
    for (const PendingFile& p : pending_) {
      pending.add_entries(EncodePending(p));
      me.staging_names.push_back(p.staging);
    }
    proto::NamedList writers;
    writers.set_name(std::string(kWritersList));
    writers.set_mode(proto::NamedList::UNION);
    writers.add_entries(EncodeWriter(me));
    out->operator_state.push_back(std::move(pending));
    out->operator_state.push_back(std::move(writers));
    return Status::Ok();
  }

  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    Status st = CommitPending(checkpoint_id);
    if (!st.ok()) {
      Log()->error(
          "{} committing_file: commit of checkpoint {} failed (retried at the next "
          "completion): {}",
          log_prefix_, checkpoint_id, st.ToString());
      if (commit_error_.ok()) commit_error_ = st;
    }
  }

  // Nothing to undo: the files stay pending and a later completion commits them (a checkpoint
  // that completes covers every earlier one).
  void NotifyCheckpointAborted(int64_t) override {}

  // The input ended: no checkpoint will come, so everything is committed now.
  Status Finish(Output&) override {
    if (!io_error_.ok()) return io_error_;
    WEIR_RETURN_IF_ERROR(SealFile(next_checkpoint_));
    Status st = CommitPending(std::numeric_limits<int64_t>::max());
    if (!lost_.ok()) return lost_;
    return st;
  }

  // Leaves staging as it is: after a crash or cancel, the restore logic sorts it out.
  Status Close() override {
    CloseFile();
    return Status::Ok();
  }

 private:
  std::string FinalName(int64_t seq) const {
    return prefix_ + "-" + job_id_ + "-" + vertex_ + "-" + std::to_string(subtask_) + "-" +
           std::to_string(attempt_) + "-" + std::to_string(next_checkpoint_) + "-" +
           std::to_string(seq) + suffix_;
  }
  std::string InProgressPath() const {
    return staging_dir_ + "/" + file_final_ + std::string(kInProgress);
  }

  // An I/O error on a data file fails the task (Process returns it): after a failed write or
  // fsync its content cannot be trusted, and a restore rewrites it from the last checkpoint.
  Status Fail(Status st) {
    if (io_error_.ok()) io_error_ = st;
    CloseFile();
    return st;
  }

  void CloseFile() {
    if (file_) fclose(file_);
    file_ = nullptr;
  }

  Status OpenNewFile() {
    file_final_ = FinalName(seq_++);
    file_rows_ = 0;
    const std::string path = InProgressPath();
    // "x": never truncate a file of another writer; names are unique by construction, so an
    // existing one means two writers claim the same (job, attempt, vertex, subtask).
    file_ = fopen(path.c_str(), "wx");
    if (!file_) return Fail(Status::IoError("cannot create " + path + ": " + strerror(errno)));
    return Status::Ok();
  }

  // Closes the in-progress file (fsynced) and renames it to pending for checkpoint n.
  Status SealFile(int64_t checkpoint_id) {
    if (!file_) return Status::Ok();
    const std::string from = InProgressPath();
    if (file_rows_ == 0) {
      CloseFile();
      std::error_code ec;
      fs::remove(from, ec);
      return Status::Ok();
    }
    if (fflush(file_) != 0 || fsync(fileno(file_)) != 0) {
      return Fail(Status::IoError("flush of " + from + " failed: " + strerror(errno)));
    }
    const int rc = fclose(file_);
    file_ = nullptr;
    if (rc != 0) return Fail(Status::IoError("close of " + from + " failed: " + strerror(errno)));
    PendingFile p;
    p.checkpoint = checkpoint_id;
    p.staging = file_final_ + std::string(kPending);
    p.final_name = file_final_;
    const std::string to = staging_dir_ + "/" + p.staging;
    if (::rename(from.c_str(), to.c_str()) != 0) {
      return Fail(Status::IoError("rename " + from + " -> " + to + " failed: " + strerror(errno)));
    }
    // The checkpoint will name the pending file: its name must survive a crash.
    Status st = SyncDir(staging_dir_);
    if (!st.ok()) return Fail(st);
    pending_.push_back(std::move(p));
    return Status::Ok();
  }

  // Moves one pending file to its final name; false if it is in neither place. Idempotent:
  // a file at its final name and gone from staging was committed before (a crash between the
  // rename and the bookkeeping).
  Result<bool> CommitOne(const PendingFile& p) {
    const std::string from = staging_dir_ + "/" + p.staging;
    const std::string to = dir_ + "/" + p.final_name;
    std::error_code ec;
    const bool staged = fs::exists(from, ec);
    if (ec) return Status::IoError("cannot stat " + from + ": " + ec.message());
    const bool committed = fs::exists(to, ec);
    if (ec) return Status::IoError("cannot stat " + to + ": " + ec.message());
    if (!staged) return committed;
    if (committed) {
      // Never replace committed output (rename would, silently).
      return Status::AlreadyExists("cannot commit " + from + ": " + to + " already exists");
    }
    if (::rename(from.c_str(), to.c_str()) != 0) {
      const int err = errno;
      // Someone else committed it in between: after a failover, a subtask of the old attempt
      // that is not yet cancelled may still handle the checkpoint's late notification.
      if (err == ENOENT && fs::exists(to, ec)) return true;
      return Status::IoError("rename " + from + " -> " + to + " failed: " + strerror(err));
    }
    return true;
  }

  // Commits the pending files of checkpoints <= up_to. Files that cannot be committed now stay
  // pending (the first such error is returned); a file missing from both places is data loss:
  // it is dropped and remembered in lost_.
  Status CommitPending(int64_t up_to) {
    Status first_error;
    std::vector<PendingFile> keep;
    std::vector<PendingFile> done;
    for (PendingFile& p : pending_) {
      if (p.checkpoint > up_to) {
        keep.push_back(std::move(p));
        continue;
      }
      Result<bool> r = CommitOne(p);
      if (!r.ok()) {
        if (first_error.ok()) first_error = r.status();
        keep.push_back(std::move(p));
      } else if (!*r) {
        const std::string what = "pending file " + staging_dir_ + "/" + p.staging +
                                 " of checkpoint " + std::to_string(p.checkpoint) +
                                 " is missing: neither in staging nor committed as " + dir_ + "/" +
                                 p.final_name + "; its records are lost from the output";
        Log()->error("{} committing_file: {}", log_prefix_, what);
        lost_ =
            lost_.ok() ? Status::DataLoss(what) : Status::DataLoss(lost_.message() + "; " + what);
      } else {
        done.push_back(std::move(p));
      }
    }
    if (!done.empty()) {
      // Both directories: the new name must be durable before the entry is forgotten (else a
      // crash could bring the file back into staging, unnamed by any later checkpoint, and the
      // restore would delete it), and the old one gone so it is not found twice.
      Status st = SyncDir(dir_);
      if (st.ok()) st = SyncDir(staging_dir_);
      if (!st.ok()) {
        // Kept: the next attempt finds them committed (idempotent) and syncs again.
        if (first_error.ok()) first_error = st;
        keep.insert(keep.end(), std::make_move_iterator(done.begin()),
                    std::make_move_iterator(done.end()));
        std::sort(keep.begin(), keep.end(), [](const PendingFile& a, const PendingFile& b) {
          return a.checkpoint < b.checkpoint;
        });
      }
    }
    pending_ = std::move(keep);
    return first_error;
  }

  // After a restore (or a fresh start), deletes the staging files whose records the job will
  // write again: those of this vertex, written by an earlier writer of this lineage (a job id
  // in `jobs`), that the restored checkpoint does not name (`needed`). Such a file was written
  // after the checkpoint (everything before it is committed or named as pending), so its rows
  // are replayed from the restored source positions.
  //
  // Safe under rescaling: every new subtask scans all of the vertex's files, not a share, since
  // after a rescale no old subtask maps to one new subtask. What a scan must not touch is
  // (1) a file the checkpoint names: it may be committed right now by whichever new subtask got
  // its SPLIT entry. `needed` holds the names from the UNION list, i.e. from every old subtask;
  // a SPLIT list would only show this subtask's share. (2) A file of this attempt: written by a
  // sibling subtask that already started. Same job id and attempt means ours, so it is skipped.
  // Concurrent scans may delete the same file: "already gone" is fine.
  //
  // On a fresh start `jobs` is this job only and `needed` is empty: earlier attempts' files of
  // this job are deleted (a stateless restart replays everything), other jobs' never are.
  Status DeleteLeftovers(const std::set<std::string>& jobs, const std::set<std::string>& needed,
                         int64_t restored_id) {
    std::error_code ec;
    fs::directory_iterator it(staging_dir_, ec);
    if (ec) return Status::IoError("cannot list " + staging_dir_ + ": " + ec.message());
    int deleted = 0;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
      if (ec) return Status::IoError("cannot list " + staging_dir_ + ": " + ec.message());
      const std::string name = it->path().filename().string();
      StagingName parsed;
      if (!ParseStagingName(name, suffix_, &parsed)) continue;
      bool ours = false;
      std::string job;
      for (const std::string& j : jobs) {
        if (parsed.owner == prefix_ + "-" + j + "-" + vertex_) {
          ours = true;
          job = j;
        }
      }
      if (!ours) continue;
      if (job == job_id_ && parsed.attempt == attempt_) continue;  // a live sibling's
      if (needed.count(name)) continue;
      std::error_code rm;
      // False without an error when another subtask's scan was first.
      const bool removed = fs::remove(it->path(), rm);
      if (rm) {
        // Harmless if it stays (staging is hidden; its name is never reused): warn only.
        Log()->warn("{} committing_file: cannot delete leftover {}: {}", log_prefix_,
                    it->path().string(), rm.message());
        continue;
      }
      if (removed) ++deleted;
    }
    if (deleted > 0) {
      Log()->info("{} committing_file: deleted {} staging file(s) written after {}", log_prefix_,
                  deleted,
                  restored_id >= 0 ? "checkpoint " + std::to_string(restored_id)
                                   : std::string("an earlier stateless start"));
    }
    return Status::Ok();
  }

  Schema schema_;
  const std::string dir_;
  const std::string staging_dir_;
  const std::string prefix_;
  const std::string suffix_;
  std::string job_id_;
  std::string vertex_;
  int subtask_ = 0;
  int attempt_ = 0;
  std::string log_prefix_;

  int64_t next_checkpoint_ = 1;  // the first checkpoint that can cover the next file
  int64_t seq_ = 0;              // files opened so far by this writer
  FILE* file_ = nullptr;         // the in-progress file, if any
  std::string file_final_;       // its final name
  int64_t file_rows_ = 0;
  std::vector<PendingFile> pending_;  // staged, not yet committed; by checkpoint
  std::string line_;

  Status io_error_;      // sticky: a data file could not be written
  Status lost_;          // sticky: a pending file vanished
  Status commit_error_;  // the last failed commit, reported by the next snapshot
};

class CommittingFileSinkFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_RETURN_IF_ERROR(PlanCommittingFile(config).status());
    return Schema();
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(CommittingFileConfig c, PlanCommittingFile(config));
    return std::unique_ptr<Operator>(std::make_unique<CommittingFileSink>(input, std::move(c)));
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeCommittingFileSinkFactory() {
  return std::make_unique<CommittingFileSinkFactory>();
}

}  // namespace weir
