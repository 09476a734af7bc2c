// Restore helpers shared by the RocksDB and heap backends: reading the entries of any handle
// (either backend's format) for a key-group range, and copying a RocksDB handle's files into a
// local directory with their contents checked. Used by the task thread that opens a backend.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "weir.pb.h"
#include "weir/key_groups.h"
#include "weir/state/backend.h"
#include "weir/status.h"
#include "files.h"
#include "local_dir.h"

namespace rocksdb {
class DB;
class Status;
}  // namespace rocksdb

namespace weir::state {

inline constexpr char kRocksDbBackendName[] = "rocksdb";
inline constexpr char kHeapBackendName[] = "heap";

// Checks what a handle must satisfy before any of its paths are used (relative paths without
// "..", plain local names, a known backend, a sane key-group range).
Status ValidateHandle(const proto::KeyedStateHandle& handle);

Status ValidateBackendOptions(const BackendOptions& options);
// The handles of `restore` that overlap `range`, after validating every one.
Result<std::vector<const proto::KeyedStateHandle*>> SelectRestoreHandles(
    const std::vector<proto::KeyedStateHandle>& restore, KeyGroupRange range);

bool Overlaps(const proto::KeyedStateHandle& handle, KeyGroupRange range);

// The key group of a stored key (its 2-byte big-endian prefix).
inline int KeyGroupOf(std::string_view stored_key) {
  return (static_cast<uint8_t>(stored_key[0]) << 8) | static_cast<uint8_t>(stored_key[1]);
}

// A RocksDB handle's files copied into a local directory: the CRC32C of each SST (by file
// number) and its path in storage, to check against the checksums in the MANIFEST.
struct MaterializedFiles {
  struct Sst {
    uint32_t crc = 0;
    std::string storage_path;
  };
  std::map<uint64_t, Sst> ssts;
  // Every file's storage path by local name, to name files in RocksDB's error messages.
  std::map<std::string, std::string> storage_paths;
};
Result<MaterializedFiles> MaterializeRocksDbFiles(const proto::KeyedStateHandle& handle,
                                                  const std::string& restore_root,
                                                  const std::string& dir);
// Compares each live SST's checksum in the MANIFEST (recorded at write time) with the CRC of
// the bytes copied; a mismatch names the file in storage.
Status CheckSstChecksums(rocksdb::DB* db, const MaterializedFiles& files);
// Turns a RocksDB error about restored files into a Status that names the files in storage.
Status RestoreError(const rocksdb::Status& s, const MaterializedFiles& files,
                    const std::string& what);

// Calls `fn` with every entry (stored key, value) of `handle` whose key group is in `range`.
// RocksDB handles are copied into `scratch_dir` (created and removed here) and opened
// read-only.
Status ForEachEntryInHandle(
    const proto::KeyedStateHandle& handle, const std::string& restore_root,
    const std::string& scratch_dir, KeyGroupRange range,
    const std::function<Status(std::string_view stored_key, std::string_view value)>& fn);

// How every backend opens: checked options, the restore handles whose key groups overlap this
// instance's, a fresh local directory (anything in it is left over from an earlier process or
// instance), then `make(local_dir)` builds the backend and restores it from the handles.
template <typename Make>
Result<std::unique_ptr<SnapshottableBackend>> OpenBackend(
    const BackendOptions& options, const std::vector<proto::KeyedStateHandle>& restore,
    const std::string& restore_root, Make make) {
  WEIR_RETURN_IF_ERROR(ValidateBackendOptions(options));
  WEIR_ASSIGN_OR_RETURN(auto handles, SelectRestoreHandles(restore, options.key_groups));
  WEIR_RETURN_IF_ERROR(RemoveAll(options.local_dir));
  WEIR_RETURN_IF_ERROR(CreateDirs(options.local_dir));
  auto backend = make(std::make_shared<LocalDir>(options.local_dir));
  WEIR_RETURN_IF_ERROR(backend->Restore(handles, restore_root));
  return std::unique_ptr<SnapshottableBackend>(std::move(backend));
}

}  // namespace weir::state
