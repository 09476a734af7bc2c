#include "restore.h"

#include <rocksdb/db.h>
#include <rocksdb/file_checksum.h>

#include <memory>

#include "files.h"
#include "heap_format.h"
#include "weir/paths.h"
#include "weir/state/backend.h"
#include "weir/state/keyed_state.h"
#include "weir/state/rocksdb_options.h"

namespace weir::state {
namespace {

// The name RocksDB gives the checksums made by GetFileChecksumGenCrc32cFactory().
constexpr char kCrc32cFuncName[] = "FileChecksumCrc32c";


// "000123.sst" -> 123; false for any other name.
bool SstFileNumber(const std::string& name, uint64_t* number) {
  constexpr std::string_view kSuffix = ".sst";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return false;
  uint64_t n = 0;
  for (size_t i = 0; i < name.size() - kSuffix.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return false;
    n = n * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  *number = n;
  return true;
}

Status ForEachInRocksDbHandle(const proto::KeyedStateHandle& handle,
                              const std::string& restore_root, const std::string& dir,
                              KeyGroupRange range,
                              const std::function<Status(std::string_view, std::string_view)>& fn) {
  WEIR_ASSIGN_OR_RETURN(MaterializedFiles files,
                        MaterializeRocksDbFiles(handle, restore_root, dir));
  rocksdb::Options options = RocksDbStateOptions();
  options.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenForReadOnly(options, dir, &raw);
  if (!s.ok()) return RestoreError(s, files, "cannot open RocksDB state");
  std::unique_ptr<rocksdb::DB> db(raw);
  WEIR_RETURN_IF_ERROR(CheckSstChecksums(db.get(), files));

  rocksdb::ReadOptions ro;
  ro.fill_cache = false;  // a one-time scan
  ro.readahead_size = 2 << 20;
  std::string start, end;
  ComposeKey(range.first, "", &start);
  ComposeKey(range.last + 1, "", &end);
  rocksdb::Slice upper(end);
  ro.iterate_upper_bound = &upper;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(ro));
  // Keys sort by their key-group prefix, so the range is one contiguous run.
  for (it->Seek(start); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key(), v = it->value();
    if (k.size() < 2) continue;
    WEIR_RETURN_IF_ERROR(
        fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size())));
  }
  if (!it->status().ok()) return RestoreError(it->status(), files, "cannot read RocksDB state");
  return Status::Ok();
}

}  // namespace

Status ValidateHandle(const proto::KeyedStateHandle& handle) {
  if (handle.backend() != kRocksDbBackendName && handle.backend() != kHeapBackendName) {
    return Status::InvalidArgument("state handle has unknown backend '" + handle.backend() + "'");
  }
  if (handle.key_group_first() < 0 || handle.key_group_last() < handle.key_group_first() ||
      handle.key_group_last() > 0x7fff) {
    return Status::InvalidArgument("state handle has bad key-group range [" +
                                   std::to_string(handle.key_group_first()) + ", " +
                                   std::to_string(handle.key_group_last()) + "]");
  }
  if (handle.files_size() == 0) return Status::InvalidArgument("state handle has no files");
  if (handle.backend() == kHeapBackendName && handle.files_size() != 1) {
    return Status::InvalidArgument("heap state handle must have exactly one file");
  }
  for (const auto& f : handle.files()) {
    if (!IsSafeRelativePath(f.path())) {
      return Status::InvalidArgument("state handle has bad file path '" + f.path() + "'");
    }
    // A plain name: no '/', not "." or "..", and no NUL (a NUL would cut the name short when
    // the file is created, so two handles' files could land on one name).
    if (!IsPlainName(f.local_name())) {
      return Status::InvalidArgument("state handle has bad local name '" + f.local_name() +
                                     "' for " + f.path());
    }
  }
  return Status::Ok();
}

Status ValidateBackendOptions(const BackendOptions& options) {
  if (options.local_dir.empty()) return Status::InvalidArgument("state backend needs a local_dir");
  if (options.max_parallelism < 1 || options.max_parallelism > 32768) {
    return Status::InvalidArgument("max_parallelism must be in [1, 32768]");
  }
  const KeyGroupRange r = options.key_groups;
  if (r.first < 0 || r.last < r.first || r.last >= options.max_parallelism) {
    return Status::InvalidArgument("bad key-group range [" + std::to_string(r.first) + ", " +
                                   std::to_string(r.last) + "] for max parallelism " +
                                   std::to_string(options.max_parallelism));
  }
  return Status::Ok();
}

Result<std::vector<const proto::KeyedStateHandle*>> SelectRestoreHandles(
    const std::vector<proto::KeyedStateHandle>& restore, KeyGroupRange range) {
  std::vector<const proto::KeyedStateHandle*> out;
  for (const auto& h : restore) {
    WEIR_RETURN_IF_ERROR(ValidateHandle(h));
    if (Overlaps(h, range)) out.push_back(&h);
  }
  return out;
}

bool Overlaps(const proto::KeyedStateHandle& handle, KeyGroupRange range) {
  return handle.key_group_first() <= range.last && handle.key_group_last() >= range.first;
}

Result<MaterializedFiles> MaterializeRocksDbFiles(const proto::KeyedStateHandle& handle,
                                                  const std::string& restore_root,
                                                  const std::string& dir) {
  WEIR_RETURN_IF_ERROR(CreateDirs(dir));
  MaterializedFiles out;
  for (const auto& f : handle.files()) {
    const std::string src = JoinPath(restore_root, f.path());
    WEIR_ASSIGN_OR_RETURN(uint32_t crc,
                          CopyFileChecked(src, JoinPath(dir, f.local_name()), f.size()));
    out.storage_paths[f.local_name()] = src;
    uint64_t number = 0;
    if (SstFileNumber(f.local_name(), &number)) out.ssts[number] = {crc, src};
  }
  return out;
}

Status CheckSstChecksums(rocksdb::DB* db, const MaterializedFiles& files) {
  std::unique_ptr<rocksdb::FileChecksumList> list(rocksdb::NewFileChecksumList());
  rocksdb::Status s = db->GetLiveFilesChecksumInfo(list.get());
  if (!s.ok()) return RestoreError(s, files, "cannot read the file checksums of RocksDB state");
  std::vector<uint64_t> numbers;
  std::vector<std::string> checksums, funcs;
  s = list->GetAllFileChecksums(&numbers, &checksums, &funcs);
  if (!s.ok()) return RestoreError(s, files, "cannot read the file checksums of RocksDB state");
  for (size_t i = 0; i < numbers.size(); ++i) {
    // Files written without a checksum factory have none; their blocks are still checked by
    // RocksDB when read.
    if (funcs[i] != kCrc32cFuncName || checksums[i].size() != 4) continue;
    auto it = files.ssts.find(numbers[i]);
    if (it == files.ssts.end()) continue;
    const auto* b = reinterpret_cast<const uint8_t*>(checksums[i].data());
    // Big-endian, as documented for GetFileChecksumGenCrc32cFactory().
    uint32_t recorded =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    if (recorded != it->second.crc) {
      return Status::DataLoss("state file " + it->second.storage_path +
                              " is corrupt: its checksum does not match the one in the MANIFEST");
    }
  }
  return Status::Ok();
}

Status RestoreError(const rocksdb::Status& s, const MaterializedFiles& files,
                    const std::string& what) {
  const std::string msg = s.ToString();
  std::string named;
  for (const auto& [local, storage] : files.storage_paths) {
    if (msg.find(local) != std::string::npos) named += (named.empty() ? "" : ", ") + storage;
  }
  if (named.empty()) {
    // RocksDB did not say which file; the MANIFEST is what describes the DB.
    for (const auto& [local, storage] : files.storage_paths) {
      if (local.starts_with("MANIFEST-") || local == "CURRENT") {
        named += (named.empty() ? "" : ", ") + storage;
      }
    }
  }
  const StatusCode code = s.IsCorruption() ? StatusCode::kDataLoss
                          : s.IsNotFound() ? StatusCode::kNotFound
                                           : StatusCode::kIoError;
  return Status(code, what + " from " + named + ": " + msg);
}

Status ForEachEntryInHandle(const proto::KeyedStateHandle& handle, const std::string& restore_root,
                            const std::string& scratch_dir, KeyGroupRange range,
                            const std::function<Status(std::string_view, std::string_view)>& fn) {
  WEIR_RETURN_IF_ERROR(ValidateHandle(handle));
  if (handle.backend() == kHeapBackendName) {
    const std::string path = JoinPath(restore_root, handle.files(0).path());
    WEIR_ASSIGN_OR_RETURN(std::string data, ReadFile(path));
    if (data.size() != handle.files(0).size()) {
      return Status::DataLoss("state file " + path + " has " + std::to_string(data.size()) +
                              " bytes, the checkpoint recorded " +
                              std::to_string(handle.files(0).size()) + " (truncated or replaced)");
    }
    return ParseHeapFile(data, path, [&](std::string_view key, std::string_view value) {
      if (!range.Contains(KeyGroupOf(key))) return Status::Ok();
      return fn(key, value);
    });
  }
  RemoveAllQuietly(scratch_dir);
  Status st = ForEachInRocksDbHandle(handle, restore_root, scratch_dir, range, fn);
  RemoveAllQuietly(scratch_dir);
  return st;
}

std::vector<std::string> ReferencedFiles(const proto::KeyedStateHandle& handle) {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(handle.files_size()));
  for (const auto& f : handle.files()) out.push_back(f.path());
  return out;
}

}  // namespace weir::state
