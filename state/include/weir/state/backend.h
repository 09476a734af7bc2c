// Snapshot-able keyed state backends (RocksDB, heap) and checkpoint storage locations.
//
// A backend holds the keyed state of one operator in one subtask, for the key groups that
// subtask owns; keys are stored prefixed by their key group (2 bytes big-endian, then the
// operator's key bytes), so a key-group range can be cut out on rescale.
//
// Snapshots have two parts, as in Flink: Snapshot() is the short synchronous part, run on the
// task thread between two records (RocksDB: a checkpoint of hard links in a local directory);
// SnapshotUpload::Upload() is the asynchronous part, run on another thread while the task goes
// on, that copies files into checkpoint storage and returns the handle that the job manager
// stores in the checkpoint's _metadata. Incremental snapshots (RocksDB) upload each SST file
// once, into <root>/shared/, and later handles reference it again.
//
// Threads: a backend is used by its task thread only; an upload object may be moved to and used
// by any one thread, and stays valid after the backend is destroyed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weir.pb.h"
#include "weir/key_groups.h"
#include "weir/state/keyed_state.h"
#include "weir/status.h"

namespace weir::state {

// Where one snapshot of one backend goes.
struct SnapshotTarget {
  std::string root;           // absolute: <checkpoint-dir>/<job-id>, or the savepoint dir
  std::string exclusive_dir;  // relative to root: e.g. "chk-7/agg-0" (created by the upload)
  bool incremental = true;    // false (savepoints): every file is copied into exclusive_dir
};

class SnapshotUpload {
 public:
  virtual ~SnapshotUpload() = default;
  // Copies the snapshot into storage and returns its handle. Called at most once.
  virtual Result<proto::KeyedStateHandle> Upload(const SnapshotTarget& target) = 0;
};

class SnapshottableBackend : public KeyedStateBackend {
 public:
  // The synchronous part of the snapshot for `checkpoint_id`.
  virtual Result<std::unique_ptr<SnapshotUpload>> Snapshot(int64_t checkpoint_id) = 0;
  // The checkpoint completed / was aborted: local resources of that snapshot (and older ones)
  // can be released.
  virtual void NotifyCheckpointComplete(int64_t checkpoint_id) {}
  virtual void NotifyCheckpointAborted(int64_t checkpoint_id) {}
};

struct BackendOptions {
  std::string local_dir;   // a private working directory for this backend (created; removed
                           // when the backend is destroyed)
  int max_parallelism = 128;
  KeyGroupRange key_groups;  // the key groups this subtask owns
  size_t block_cache_bytes = 64 << 20;  // RocksDB: the state DB's block cache
};

// Opens a backend, restoring from `restore` (handles of any old subtasks whose key groups
// overlap ours; only entries in our range are kept), whose paths are relative to
// `restore_root`. An empty `restore` starts empty. A missing or corrupt file is an error that
// names it.
Result<std::unique_ptr<SnapshottableBackend>> OpenRocksDbBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root);
Result<std::unique_ptr<SnapshottableBackend>> OpenHeapBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root);

// Every file path (relative to the root) that `handle` references; the job manager uses it to
// count references to shared files.
std::vector<std::string> ReferencedFiles(const proto::KeyedStateHandle& handle);

}  // namespace weir::state
