// The heap keyed state backend: an ordered map, snapshotted as one full file per checkpoint.
//
// Ordered (std::map), not hashed: map state and timers need prefix scans. A point access costs
// O(log n) key comparisons instead of one hash; the heap backend is for small state, and the
// comparisons are over short keys that differ early.
#include <map>
#include <memory>

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

using HeapMap = std::map<std::string, std::string, std::less<>>;

// The first key after every key starting with `prefix` ("" if there is none): `prefix` with
// its last non-0xff byte incremented and what follows it dropped.
std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<uint8_t>(end.back()) == 0xff) end.pop_back();
  if (!end.empty()) end.back() = static_cast<char>(static_cast<uint8_t>(end.back()) + 1);
  return end;
}

// Walks the key groups of a range, seeking [group][prefix] in each and skipping groups with no
// entry. It survives erasures in the map: `erasures` counts them, and after one the position is
// found again from a copy of the current key.
class HeapIterator : public StateIterator {
 public:
  HeapIterator(const HeapMap* map, const uint64_t* erasures, KeyGroupRange groups,
               std::string_view prefix)
      : map_(map), erasures_(erasures), seen_erasures_(*erasures), groups_(groups),
        prefix_(prefix) {
    group_ = groups_.first;
    if (group_ <= groups_.last) {
      Seek();
      Settle();
    }
  }

  bool Valid() const override { return valid_; }
  void Next() override {
    if (*erasures_ != seen_erasures_) {
      seen_erasures_ = *erasures_;
      it_ = map_->upper_bound(current_);
    } else {
      ++it_;
    }
    Settle();
  }
  int key_group() const override { return group_; }
  std::string_view key() const override { return std::string_view(it_->first).substr(2); }
  std::string_view value() const override { return it_->second; }
  Status status() const override { return Status::Ok(); }

 private:
  void Seek() {
    ComposeKey(group_, prefix_, &seek_);
    it_ = map_->lower_bound(seek_);
  }
  // Moves forward to the next entry in range (possibly the current one).
  void Settle() {
    valid_ = false;
    while (group_ <= groups_.last) {
      if (it_ != map_->end() && it_->first.starts_with(seek_)) {
        valid_ = true;
        current_.assign(it_->first);  // reuses capacity
        return;
      }
      if (it_ == map_->end()) return;
      // Past our prefix in this group: the next group with anything is the one of it_'s key.
      const int next = KeyGroupOf(it_->first);
      group_ = next > group_ ? next : group_ + 1;
      if (group_ > groups_.last) return;
      Seek();
    }
  }

  const HeapMap* map_;
  const uint64_t* erasures_;
  uint64_t seen_erasures_;
  const KeyGroupRange groups_;
  const std::string prefix_;
  int group_ = 0;
  std::string seek_;     // [group][prefix]
  std::string current_;  // the current stored key, to find the position again after erasures
  HeapMap::const_iterator it_;
  bool valid_ = false;
};

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
    auto it = map_.lower_bound(scratch_);
    if (it == map_.end() || it->first != scratch_) {
      map_.emplace_hint(it, scratch_, std::string(value));
    } else {
      it->second.assign(value.data(), value.size());
    }
    return Status::Ok();
  }
  Status Delete(int key_group, std::string_view key) override {
    ComposeKey(key_group, key, &scratch_);
    if (map_.erase(scratch_) > 0) ++erasures_;
    return Status::Ok();
  }
  std::unique_ptr<StateIterator> Scan(KeyGroupRange groups, std::string_view prefix) override {
    return std::make_unique<HeapIterator>(&map_, &erasures_, groups, prefix);
  }
  Status Append(int key_group, std::string_view key, std::string_view bytes) override {
    ComposeKey(key_group, key, &scratch_);
    auto it = map_.lower_bound(scratch_);
    if (it == map_.end() || it->first != scratch_) {
      map_.emplace_hint(it, scratch_, std::string(bytes));
    } else {
      it->second.append(bytes.data(), bytes.size());
    }
    return Status::Ok();
  }
  Status DeletePrefix(int key_group, std::string_view prefix) override {
    ComposeKey(key_group, prefix, &scratch_);
    auto first = map_.lower_bound(scratch_);
    const std::string end = PrefixEnd(scratch_);  // never "": the key group is < 0x8000
    auto last = map_.lower_bound(end);
    if (first != last) {
      map_.erase(first, last);
      ++erasures_;
    }
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
  HeapMap map_;
  uint64_t erasures_ = 0;  // lets iterators notice that their position may be gone
  std::string scratch_;
};

}  // namespace

std::unique_ptr<KeyedStateBackend> NewHeapBackend() {
  return std::make_unique<HeapBackend>(KeyGroupRange{0, 0x7fff}, nullptr);
}

Result<std::unique_ptr<SnapshottableBackend>> OpenHeapBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root) {
  // The heap backend keeps nothing on disk itself; the directory holds RocksDB files copied
  // for a restore from a RocksDB snapshot.
  return OpenBackend(options, restore, restore_root, [&](std::shared_ptr<LocalDir> dir) {
    return std::make_unique<HeapBackend>(options.key_groups, std::move(dir));
  });
}

}  // namespace weir::state
