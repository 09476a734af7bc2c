// The heap keyed state backend: a hash map, snapshotted as one full file per checkpoint.
#include <memory>
#include <unordered_map>

#include "crc32c.h"
#include "files.h"
#include "heap_format.h"
#include "local_dir.h"
#include "restore.h"
#include "weir/state/backend.h"
#include "weir/state/keyed_state.h"

namespace weir::state {

void ComposeKey(int key_group, std::string_view key, std::string* out) {
  out->clear();
  out->push_back(static_cast<char>((key_group >> 8) & 0xff));
  out->push_back(static_cast<char>(key_group & 0xff));
  out->append(key.data(), key.size());
}

namespace {

// The map serialized on the task thread (the snapshot's synchronous part); the upload thread
// only checksums and writes it.
class HeapUpload : public SnapshotUpload {
 public:
  HeapUpload(std::string body, uint64_t count, KeyGroupRange range)
      : body_(std::move(body)), count_(count), range_(range) {}

  Result<proto::KeyedStateHandle> Upload(const SnapshotTarget& target) override {
    if (used_) return Status::FailedPrecondition("heap snapshot was already uploaded");
    used_ = true;
    const std::string header = HeapFileHeader();
    uint32_t crc = Crc32cExtend(Crc32c(header.data(), header.size()), body_.data(), body_.size());
    const std::string trailer = HeapFileTrailer(crc, count_);
    const std::string root = NormalizePath(target.root);
    const std::string exclusive = JoinPath(root, target.exclusive_dir);
    const std::string rel = JoinPath(target.exclusive_dir, kHeapFileName);
    WEIR_RETURN_IF_ERROR(CreateDirs(exclusive));
    WEIR_RETURN_IF_ERROR(WriteFileAtomically(JoinPath(root, rel), {header, body_, trailer}));
    WEIR_RETURN_IF_ERROR(SyncDirChain(exclusive, root));
    const uint64_t size = header.size() + body_.size() + trailer.size();
    std::string().swap(body_);  // free the copy now; the upload object may live on

    proto::KeyedStateHandle handle;
    handle.set_key_group_first(range_.first);
    handle.set_key_group_last(range_.last);
    handle.set_backend(kHeapBackendName);
    proto::StateFile* f = handle.add_files();
    f->set_path(rel);
    f->set_local_name(kHeapFileName);
    f->set_size(size);
    // Every heap snapshot is a full one.
    handle.set_state_size(size);
    handle.set_incremental_size(size);
    return handle;
  }

 private:
  std::string body_;
  uint64_t count_;
  KeyGroupRange range_;
  bool used_ = false;
};

class HeapBackend : public SnapshottableBackend {
 public:
  // `local` may be null (NewHeapBackend: nothing on disk).
  HeapBackend(KeyGroupRange range, std::shared_ptr<LocalDir> local)
      : range_(range), local_(std::move(local)) {}

  bool Get(int key_group, std::string_view key, std::string* value) override {
    ComposeKey(key_group, key, &scratch_);
    auto it = map_.find(scratch_);
    if (it == map_.end()) return false;
    value->assign(it->second);
    return true;
  }
  Status Put(int key_group, std::string_view key, std::string_view value) override {
    ComposeKey(key_group, key, &scratch_);
    auto it = map_.find(scratch_);
    if (it == map_.end()) {
      map_.emplace(scratch_, std::string(value));
    } else {
      it->second.assign(value.data(), value.size());
    }
    return Status::Ok();
  }
  Status Delete(int key_group, std::string_view key) override {
    ComposeKey(key_group, key, &scratch_);
    map_.erase(scratch_);
    return Status::Ok();
  }
  Status ForEach(
      const std::function<Status(int, std::string_view, std::string_view)>& fn) override {
    for (const auto& [k, v] : map_) {
      WEIR_RETURN_IF_ERROR(fn(KeyGroupOf(k), std::string_view(k).substr(2), v));
    }
    return Status::Ok();
  }
  size_t ApproximateCount() const override { return map_.size(); }

  Result<std::unique_ptr<SnapshotUpload>> Snapshot(int64_t checkpoint_id) override {
    size_t bytes = 0;
    for (const auto& [k, v] : map_) bytes += k.size() + v.size() + 4;
    std::string body;
    body.reserve(bytes);
    for (const auto& [k, v] : map_) AppendHeapEntry(k, v, &body);
    return std::unique_ptr<SnapshotUpload>(
        std::make_unique<HeapUpload>(std::move(body), map_.size(), range_));
  }

  Status Restore(const std::vector<const proto::KeyedStateHandle*>& handles,
                 const std::string& restore_root) {
    for (size_t i = 0; i < handles.size(); ++i) {
      const std::string scratch = JoinPath(local_->path(), "restore-" + std::to_string(i));
      WEIR_RETURN_IF_ERROR(
          ForEachEntryInHandle(*handles[i], restore_root, scratch, range_,
                               [this](std::string_view key, std::string_view value) {
                                 map_.insert_or_assign(std::string(key), std::string(value));
                                 return Status::Ok();
                               }));
    }
    return Status::Ok();
  }

 private:
  const KeyGroupRange range_;
  std::shared_ptr<LocalDir> local_;
  std::unordered_map<std::string, std::string> map_;
  std::string scratch_;
};

}  // namespace

std::unique_ptr<KeyedStateBackend> NewHeapBackend() {
  return std::make_unique<HeapBackend>(KeyGroupRange{0, 0x7fff}, nullptr);
}

Result<std::unique_ptr<SnapshottableBackend>> OpenHeapBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root) {
  WEIR_RETURN_IF_ERROR(ValidateBackendOptions(options));
  WEIR_ASSIGN_OR_RETURN(auto handles, SelectRestoreHandles(restore, options.key_groups));
  // The heap backend keeps nothing on disk itself; the directory holds RocksDB files copied
  // for a restore from a RocksDB snapshot.
  WEIR_RETURN_IF_ERROR(RemoveAll(options.local_dir));
  WEIR_RETURN_IF_ERROR(CreateDirs(options.local_dir));
  auto backend = std::make_unique<HeapBackend>(options.key_groups,
                                               std::make_shared<LocalDir>(options.local_dir));
  WEIR_RETURN_IF_ERROR(backend->Restore(handles, restore_root));
  return std::unique_ptr<SnapshottableBackend>(std::move(backend));
}

}  // namespace weir::state
