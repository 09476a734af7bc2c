// The RocksDB keyed state backend: one RocksDB instance per operator and subtask, in
// <local_dir>/db, with incremental checkpoints built from RocksDB checkpoints (hard links).
#include <rocksdb/convenience.h>
#include <rocksdb/db.h>
#include <rocksdb/file_checksum.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/merge_operator.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/checkpoint.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "files.h"
#include "local_dir.h"
#include "restore.h"
#include "weir/state/backend.h"
#include "weir/state/rocksdb_options.h"

namespace weir::state {
namespace {

// Backs KeyedStateBackend::Append (list state): the value is the concatenation of the operands
// in order. A full merge reserves once and copies each operand once, so a list built by n adds
// costs O(total bytes) to read, not O(n^2).
class AppendOperator : public rocksdb::MergeOperator {
 public:
  bool FullMergeV2(const MergeOperationInput& in, MergeOperationOutput* out) const override {
    size_t n = in.existing_value != nullptr ? in.existing_value->size() : 0;
    for (const rocksdb::Slice& op : in.operand_list) n += op.size();
    out->new_value.clear();
    out->new_value.reserve(n);
    if (in.existing_value != nullptr) {
      out->new_value.append(in.existing_value->data(), in.existing_value->size());
    }
    for (const rocksdb::Slice& op : in.operand_list) out->new_value.append(op.data(), op.size());
    return true;
  }
  bool PartialMerge(const rocksdb::Slice&, const rocksdb::Slice& left, const rocksdb::Slice& right,
                    std::string* new_value, rocksdb::Logger*) const override {
    new_value->assign(left.data(), left.size());
    new_value->append(right.data(), right.size());
    return true;
  }
  // Stored in the OPTIONS file: a DB with merge operands must be opened with this operator.
  const char* Name() const override { return "weir.Append"; }
};

}  // namespace

rocksdb::Options RocksDbStateOptions(size_t block_cache_bytes) {
  rocksdb::Options o;
  o.create_if_missing = true;
  // List state appends with merges; every open of a state DB (also read-only restores) needs
  // the operator to read them.
  o.merge_operator = std::make_shared<AppendOperator>();
  // Not inplace_update_support: in one state_bench run it made read-modify-write of counters
  // ~20 % faster, but RocksDB documents it as incompatible with DeleteRange (used on restore)
  // and with consistent iterators.

  // Keep every table reader open: no file opens on the Get path. One DB holds one subtask's
  // share of one operator's state, so the file count stays moderate.
  o.max_open_files = -1;
  // Bounds space amplification; checkpoints upload whatever is live.
  o.level_compaction_dynamic_level_bytes = true;
  o.max_background_jobs = 2;
  o.bytes_per_sync = 1 << 20;
  // The MANIFEST is copied with every checkpoint (it is not shared): keep it short. Every
  // checkpoint's flush appends ~190 bytes to it; past this size RocksDB starts a new one that
  // holds only the live files (a few KiB), so the copy stays under 1 MiB. (At 8 MiB, the soak
  // saw the checkpoint directory grow 390 B per checkpoint for the whole hour it ran.)
  o.max_manifest_file_size = 1 << 20;
  o.keep_log_file_num = 2;
  o.max_log_file_size = 8 << 20;
  // The directory is deleted right after the DB is closed; flushing would be wasted work.
  o.avoid_flush_during_shutdown = true;
  // A whole-file CRC32C per SST in the MANIFEST, so that a restore can check every byte of
  // every file it copied (block checksums would only catch corruption when a block is read).
  o.file_checksum_gen_factory = rocksdb::GetFileChecksumGenCrc32cFactory();
  // LZ4 where the library has it: cheap on the CPU (state access is on the task thread's path
  // through the block cache, compaction competes for the same cores).
  auto supported = rocksdb::GetSupportedCompressions();
  if (std::find(supported.begin(), supported.end(), rocksdb::kLZ4Compression) != supported.end()) {
    o.compression = rocksdb::kLZ4Compression;
  }
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(block_cache_bytes);
  // Read-modify-write of keys seen for the first time is common (a new key in an aggregation):
  // a Bloom filter answers those Gets without reading data blocks.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  return o;
}

rocksdb::WriteOptions RocksDbStateWriteOptions() {
  rocksdb::WriteOptions w;
  w.disableWAL = true;
  return w;
}

namespace {

constexpr size_t kRestoreBatchBytes = 4 << 20;

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Status::DataLoss(what + ": " + s.ToString());
  if (s.IsNotFound()) return Status::NotFound(what + ": " + s.ToString());
  return Status::IoError(what + ": " + s.ToString());
}

// SSTs of a restored handle that a later incremental checkpoint into the same storage root can
// reference instead of uploading again: RocksDB never rewrites an SST, and file numbers are not
// reused, so the same local name and size mean the same file.
struct ReusableFiles {
  std::string root;  // normalized
  std::map<std::string, proto::StateFile> by_local_name;
};

// See StateIterator and HeapIterator (heap_backend.cc): the same walk over key groups. A scan of
// one key group (a map state's entries for one key) gets an upper bound, so RocksDB stops at
// the end of the prefix instead of reading on through tombstones; a scan over several groups
// skips from each group's end to the next group that has anything.
class RocksDbIterator : public StateIterator {
 public:
  RocksDbIterator(rocksdb::DB* db, KeyGroupRange groups, std::string_view prefix)
      : groups_(groups), prefix_(prefix) {
    group_ = groups_.first;
    if (groups_.first == groups_.last) {
      ComposeKey(group_, prefix_, &upper_);
      while (!upper_.empty() && static_cast<uint8_t>(upper_.back()) == 0xff) upper_.pop_back();
      upper_.back() = static_cast<char>(static_cast<uint8_t>(upper_.back()) + 1);
      upper_slice_ = rocksdb::Slice(upper_);
      options_.iterate_upper_bound = &upper_slice_;
    }
    it_.reset(db->NewIterator(options_));
    if (group_ <= groups_.last) {
      Seek();
      Settle();
    }
  }

  bool Valid() const override { return valid_; }
  void Next() override {
    it_->Next();
    Settle();
  }
  int key_group() const override { return group_; }
  std::string_view key() const override {
    rocksdb::Slice k = it_->key();
    return std::string_view(k.data() + 2, k.size() - 2);
  }
  std::string_view value() const override {
    rocksdb::Slice v = it_->value();
    return std::string_view(v.data(), v.size());
  }
  Status status() const override { return FromRocks(it_->status(), "RocksDB state scan failed"); }

 private:
  void Seek() {
    ComposeKey(group_, prefix_, &seek_);
    it_->Seek(seek_);
  }
  void Settle() {
    valid_ = false;
    while (group_ <= groups_.last) {
      if (!it_->Valid()) return;
      rocksdb::Slice k = it_->key();
      std::string_view key(k.data(), k.size());
      if (key.starts_with(seek_)) {
        valid_ = true;
        return;
      }
      if (key.size() < 2) return;  // not written by this backend; sorts before all ours
      const int next = KeyGroupOf(key);
      group_ = next > group_ ? next : group_ + 1;
      if (group_ > groups_.last) return;
      Seek();
    }
  }

  const KeyGroupRange groups_;
  const std::string prefix_;
  int group_ = 0;
  std::string seek_;
  std::string upper_;
  rocksdb::Slice upper_slice_;
  rocksdb::ReadOptions options_;  // holds the bound the iterator points at
  std::unique_ptr<rocksdb::Iterator> it_;
  bool valid_ = false;
};

class RocksDbUpload : public SnapshotUpload {
 public:
  RocksDbUpload(std::shared_ptr<LocalDir> local, std::string chk_dir, std::string uuid,
                KeyGroupRange range, std::shared_ptr<const ReusableFiles> reusable)
      : local_(std::move(local)),
        chk_dir_(std::move(chk_dir)),
        uuid_(std::move(uuid)),
        range_(range),
        reusable_(std::move(reusable)) {}
  ~RocksDbUpload() override { RemoveAllQuietly(chk_dir_); }

  Result<proto::KeyedStateHandle> Upload(const SnapshotTarget& target) override {
    if (used_) return Status::FailedPrecondition("snapshot " + chk_dir_ + " was already uploaded");
    used_ = true;
    Result<proto::KeyedStateHandle> r = DoUpload(target);
    // The local checkpoint is only hard links and small copies; it is not needed after one
    // attempt, successful or not (a failed upload fails the checkpoint).
    RemoveAllQuietly(chk_dir_);
    return r;
  }

 private:
  Result<proto::KeyedStateHandle> DoUpload(const SnapshotTarget& target) {
    WEIR_ASSIGN_OR_RETURN(std::vector<DirEntry> entries, ListFiles(chk_dir_));
    const std::string root = NormalizePath(target.root);
    const std::string exclusive = JoinPath(root, target.exclusive_dir);
    const std::string shared = JoinPath(root, "shared");
    WEIR_RETURN_IF_ERROR(CreateDirs(exclusive));
    bool wrote_shared = false;

    proto::KeyedStateHandle handle;
    handle.set_key_group_first(range_.first);
    handle.set_key_group_last(range_.last);
    handle.set_backend(kRocksDbBackendName);
    uint64_t state_size = 0, incremental_size = 0;
    for (const DirEntry& e : entries) {
      const std::string src = JoinPath(chk_dir_, e.name);
      std::string rel;
      if (target.incremental && e.name.ends_with(".sst")) {
        if (const proto::StateFile* reused = FindReusable(root, e); reused != nullptr) {
          rel = reused->path();
        } else {
          rel = "shared/" + uuid_ + "-" + e.name;
          const std::string dst = JoinPath(root, rel);
          // Uploaded by an earlier checkpoint of this backend (names carry its uuid, and a
          // final name only ever holds a complete file).
          if (FileSizeOrMinusOne(dst) != static_cast<int64_t>(e.size)) {
            if (!wrote_shared) WEIR_RETURN_IF_ERROR(CreateDirs(shared));
            // SSTs never change: on the same file system a hard link is the upload.
            WEIR_ASSIGN_OR_RETURN(uint64_t n, LinkOrCopyFileAtomically(src, dst));
            (void)n;
            incremental_size += e.size;
            wrote_shared = true;
          }
        }
      } else {
        rel = JoinPath(target.exclusive_dir, e.name);
        WEIR_ASSIGN_OR_RETURN(uint64_t n, CopyFileAtomically(src, JoinPath(root, rel)));
        incremental_size += n;
      }
      proto::StateFile* f = handle.add_files();
      f->set_path(rel);
      f->set_local_name(e.name);
      f->set_size(e.size);
      state_size += e.size;
    }
    WEIR_RETURN_IF_ERROR(SyncDirChain(exclusive, root));
    if (wrote_shared) WEIR_RETURN_IF_ERROR(SyncDirChain(shared, root));
    handle.set_state_size(state_size);
    handle.set_incremental_size(incremental_size);
    return handle;
  }

  const proto::StateFile* FindReusable(const std::string& root, const DirEntry& e) const {
    if (reusable_ == nullptr || reusable_->root != root) return nullptr;
    auto it = reusable_->by_local_name.find(e.name);
    if (it == reusable_->by_local_name.end() || it->second.size() != e.size) return nullptr;
    // Still there (the job manager deletes shared files no checkpoint references any more).
    if (FileSizeOrMinusOne(JoinPath(root, it->second.path())) != static_cast<int64_t>(e.size)) {
      return nullptr;
    }
    return &it->second;
  }

  std::shared_ptr<LocalDir> local_;
  std::string chk_dir_;
  std::string uuid_;
  KeyGroupRange range_;
  std::shared_ptr<const ReusableFiles> reusable_;
  bool used_ = false;
};

class RocksDbBackend : public SnapshottableBackend {
 public:
  RocksDbBackend(const BackendOptions& options, std::shared_ptr<LocalDir> local)
      : options_(options),
        local_(std::move(local)),
        db_path_(JoinPath(local_->path(), "db")),
        uuid_(RandomHex(16)),
        write_options_(RocksDbStateWriteOptions()) {}

  ~RocksDbBackend() override {
    if (db_ != nullptr) {
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    RemoveAllQuietly(db_path_);
    // The rest of local_dir goes with the last upload still holding it (LocalDir).
  }

  Status Restore(const std::vector<const proto::KeyedStateHandle*>& handles,
                 const std::string& restore_root);

  bool Get(int key_group, std::string_view key, std::string* value) override {
    ComposeKey(key_group, key, &scratch_);
    rocksdb::Status s = db_->Get(read_options_, db_->DefaultColumnFamily(), scratch_, value);
    if (s.ok()) return true;
    // Get cannot return an error; remember it so that the next write or snapshot fails the
    // task instead of silently treating unreadable state as absent.
    if (!s.IsNotFound() && error_.ok()) error_ = FromRocks(s, "RocksDB state read failed");
    return false;
  }

  Status Put(int key_group, std::string_view key, std::string_view value) override {
    if (!error_.ok()) return error_;
    ComposeKey(key_group, key, &scratch_);
    // A reused batch: DB::Put would build (and allocate) a new one per call.
    batch_.Clear();
    rocksdb::Status s = batch_.Put(scratch_, rocksdb::Slice(value.data(), value.size()));
    if (s.ok()) s = db_->Write(write_options_, &batch_);
    return FromRocks(s, "RocksDB state write failed");
  }

  Status Delete(int key_group, std::string_view key) override {
    if (!error_.ok()) return error_;
    ComposeKey(key_group, key, &scratch_);
    batch_.Clear();
    rocksdb::Status s = batch_.Delete(scratch_);
    if (s.ok()) s = db_->Write(write_options_, &batch_);
    return FromRocks(s, "RocksDB state delete failed");
  }

  Status Write(const std::vector<Change>& changes) override {
    if (!error_.ok()) return error_;
    batch_.Clear();
    rocksdb::Status s;
    for (const Change& c : changes) {
      if (!s.ok()) break;
      ComposeKey(c.key_group, c.key, &scratch_);
      s = c.erase ? batch_.Delete(scratch_)
                  : batch_.Put(scratch_, rocksdb::Slice(c.value.data(), c.value.size()));
    }
    if (s.ok() && batch_.Count() > 0) s = db_->Write(write_options_, &batch_);
    return FromRocks(s, "RocksDB state write failed");
  }

  std::unique_ptr<StateIterator> Scan(KeyGroupRange groups, std::string_view prefix) override {
    return std::make_unique<RocksDbIterator>(db_.get(), groups, prefix);
  }

  Status Append(int key_group, std::string_view key, std::string_view bytes) override {
    if (!error_.ok()) return error_;
    ComposeKey(key_group, key, &scratch_);
    batch_.Clear();
    rocksdb::Status s = batch_.Merge(scratch_, rocksdb::Slice(bytes.data(), bytes.size()));
    if (s.ok()) s = db_->Write(write_options_, &batch_);
    return FromRocks(s, "RocksDB state append failed");
  }

  // Point deletes of the entries found, in one batch: a range tombstone per call would pile
  // up (clearing a map state is frequent) and slow every later read of the range.
  Status DeletePrefix(int key_group, std::string_view prefix) override {
    if (!error_.ok()) return error_;
    RocksDbIterator it(db_.get(), KeyGroupRange{key_group, key_group}, prefix);
    batch_.Clear();
    rocksdb::Status s;
    for (; it.Valid() && s.ok(); it.Next()) {
      ComposeKey(key_group, it.key(), &scratch_);
      s = batch_.Delete(scratch_);
    }
    WEIR_RETURN_IF_ERROR(it.status());
    if (s.ok() && batch_.Count() > 0) s = db_->Write(write_options_, &batch_);
    return FromRocks(s, "RocksDB state delete failed");
  }

  Status ForEach(
      const std::function<Status(int, std::string_view, std::string_view)>& fn) override {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read_options_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key(), v = it->value();
      if (k.size() < 2) continue;  // not written by this backend
      std::string_view key(k.data(), k.size());
      WEIR_RETURN_IF_ERROR(
          fn(KeyGroupOf(key), key.substr(2), std::string_view(v.data(), v.size())));
    }
    return FromRocks(it->status(), "RocksDB state iteration failed");
  }

  BackendStats Stats() const override {
    BackendStats s;
    auto prop = [&](const std::string& name) -> int64_t {
      uint64_t v = 0;
      return db_ && db_->GetIntProperty(name, &v) ? static_cast<int64_t>(v) : -1;
    };
    s.entries = prop(rocksdb::DB::Properties::kEstimateNumKeys);
    s.live_data_bytes = prop(rocksdb::DB::Properties::kEstimateLiveDataSize);
    s.block_cache_bytes = prop(rocksdb::DB::Properties::kBlockCacheUsage);
    s.memtable_bytes = prop(rocksdb::DB::Properties::kCurSizeAllMemTables);
    return s;
  }

  size_t ApproximateCount() const override {
    uint64_t n = 0;
    if (!db_->GetIntProperty(rocksdb::DB::Properties::kEstimateNumKeys, &n)) return 0;
    return static_cast<size_t>(n);
  }

  Result<std::unique_ptr<SnapshotUpload>> Snapshot(int64_t checkpoint_id) override {
    if (!error_.ok()) return error_;
    const std::string dir = JoinPath(local_->path(), "chk-" + std::to_string(checkpoint_id));
    std::error_code ec;
    if (std::filesystem::exists(dir, ec)) {
      return Status::FailedPrecondition("a snapshot for checkpoint " +
                                        std::to_string(checkpoint_id) + " is still held");
    }
    rocksdb::Checkpoint* raw = nullptr;
    rocksdb::Status s = rocksdb::Checkpoint::Create(db_.get(), &raw);
    std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
    // log_size_for_flush = 0: always flush the memtable first. Writes skip the WAL, so the
    // memtable's contents would otherwise be missing from the checkpoint.
    if (s.ok()) s = checkpoint->CreateCheckpoint(dir, /*log_size_for_flush=*/0);
    if (!s.ok()) {
      RemoveAllQuietly(dir);
      return FromRocks(s, "RocksDB checkpoint " + std::to_string(checkpoint_id) + " failed");
    }
    return std::unique_ptr<SnapshotUpload>(
        std::make_unique<RocksDbUpload>(local_, dir, uuid_, options_.key_groups, reusable_));
  }

 private:
  Status OpenDb(const rocksdb::Options& options) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s = rocksdb::DB::Open(options, db_path_, &raw);
    db_.reset(raw);
    return FromRocks(s, "cannot open RocksDB state in " + db_path_);
  }
  Status RestoreFromFiles(const proto::KeyedStateHandle& handle, const std::string& restore_root);
  Status RestoreByKeys(const std::vector<const proto::KeyedStateHandle*>& handles,
                       const std::string& restore_root);

  const BackendOptions options_;
  std::shared_ptr<LocalDir> local_;
  const std::string db_path_;
  const std::string uuid_;  // names this instance's shared files
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ReadOptions read_options_;
  const rocksdb::WriteOptions write_options_;
  rocksdb::WriteBatch batch_;
  std::string scratch_;
  Status error_;
  std::shared_ptr<const ReusableFiles> reusable_;
};

Status RocksDbBackend::Restore(const std::vector<const proto::KeyedStateHandle*>& handles,
                               const std::string& restore_root) {
  const KeyGroupRange range = options_.key_groups;
  if (handles.size() == 1 && handles[0]->backend() == kRocksDbBackendName &&
      handles[0]->key_group_first() <= range.first && handles[0]->key_group_last() >= range.last) {
    return RestoreFromFiles(*handles[0], restore_root);
  }
  return RestoreByKeys(handles, restore_root);
}

// One old RocksDB instance covers our whole range (same parallelism, or scaled out): its files
// become our DB, and key groups outside our range are dropped with two range deletions (their
// bytes go away with later compactions).
Status RocksDbBackend::RestoreFromFiles(const proto::KeyedStateHandle& handle,
                                        const std::string& restore_root) {
  WEIR_ASSIGN_OR_RETURN(MaterializedFiles files,
                        MaterializeRocksDbFiles(handle, restore_root, db_path_));
  rocksdb::Options options = RocksDbStateOptions(options_.block_cache_bytes);
  options.create_if_missing = false;
  // No compaction may replace the copied SSTs before their checksums have been checked.
  options.disable_auto_compactions = true;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, db_path_, &raw);
  db_.reset(raw);
  if (!s.ok()) return RestoreError(s, files, "cannot open RocksDB state");
  WEIR_RETURN_IF_ERROR(CheckSstChecksums(db_.get(), files));

  const KeyGroupRange range = options_.key_groups;
  std::string begin, end;
  if (handle.key_group_first() < range.first) {
    ComposeKey(range.first, "", &end);
    s = db_->DeleteRange(write_options_, db_->DefaultColumnFamily(), rocksdb::Slice(), end);
    if (!s.ok()) return FromRocks(s, "cannot drop key groups outside our range");
  }
  if (handle.key_group_last() > range.last) {
    ComposeKey(range.last + 1, "", &begin);
    // Key groups are < 2^15, so every stored key sorts below "\xff\xff".
    s = db_->DeleteRange(write_options_, db_->DefaultColumnFamily(), begin, "\xff\xff");
    if (!s.ok()) return FromRocks(s, "cannot drop key groups outside our range");
  }
  s = db_->SetOptions({{"disable_auto_compactions", "false"}});
  if (!s.ok()) return FromRocks(s, "cannot enable compactions");

  auto reusable = std::make_shared<ReusableFiles>();
  reusable->root = NormalizePath(restore_root);
  for (const auto& f : handle.files()) {
    if (f.path().starts_with("shared/")) reusable->by_local_name[f.local_name()] = f;
  }
  if (!reusable->by_local_name.empty()) reusable_ = std::move(reusable);
  return Status::Ok();
}

// Several old instances (scaled in, or mixed), or heap snapshots: a fresh DB gets the entries
// of our key groups, written in large batches.
Status RocksDbBackend::RestoreByKeys(const std::vector<const proto::KeyedStateHandle*>& handles,
                                     const std::string& restore_root) {
  rocksdb::Options options = RocksDbStateOptions(options_.block_cache_bytes);
  options.error_if_exists = true;
  WEIR_RETURN_IF_ERROR(OpenDb(options));
  rocksdb::WriteBatch batch;
  auto flush = [&]() -> Status {
    if (batch.Count() == 0) return Status::Ok();
    rocksdb::Status s = db_->Write(write_options_, &batch);
    batch.Clear();
    return FromRocks(s, "cannot write restored state");
  };
  for (size_t i = 0; i < handles.size(); ++i) {
    const std::string scratch = JoinPath(local_->path(), "restore-" + std::to_string(i));
    WEIR_RETURN_IF_ERROR(ForEachEntryInHandle(
        *handles[i], restore_root, scratch, options_.key_groups,
        [&](std::string_view key, std::string_view value) -> Status {
          rocksdb::Status s = batch.Put(rocksdb::Slice(key.data(), key.size()),
                                        rocksdb::Slice(value.data(), value.size()));
          if (!s.ok()) return FromRocks(s, "cannot write restored state");
          if (batch.GetDataSize() >= kRestoreBatchBytes) return flush();
          return Status::Ok();
        }));
  }
  return flush();
}

}  // namespace

Result<std::unique_ptr<SnapshottableBackend>> OpenRocksDbBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root) {
  return OpenBackend(options, restore, restore_root, [&](std::shared_ptr<LocalDir> dir) {
    return std::make_unique<RocksDbBackend>(options, std::move(dir));
  });
}

}  // namespace weir::state
