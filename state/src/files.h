// File helpers for state snapshots: copies and writes that never leave a partial file under its
// final name, and directory helpers that report errors as Status (std::filesystem exceptions
// are caught here). Stateless; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weir/status.h"

namespace weir::state {

// `bytes` random bytes as lowercase hex (from std::random_device).
std::string RandomHex(int bytes);

// Writes the concatenation of `pieces` to `<path>.tmp-<random>`, fsyncs it and renames it to
// `path`. The caller fsyncs the directory once it has put all its files there.
Status WriteFileAtomically(const std::string& path, const std::vector<std::string_view>& pieces);

// Copies `src` to `dst` the same way (temp name, fsync, rename); returns the bytes copied.
Result<uint64_t> CopyFileAtomically(const std::string& src, const std::string& dst);
// For immutable files (RocksDB SSTs): makes `dst` a hard link to `src` when both are on one
// file system (no bytes copied), else copies like CopyFileAtomically. The file's data is
// fsynced either way; returns the bytes copied (0 when linked).
Result<uint64_t> LinkOrCopyFileAtomically(const std::string& src, const std::string& dst);

// Copies `src` to `dst` without syncing (a local working copy that is rebuilt after a crash),
// checking that `src` has `expected_size` bytes, and returns the CRC32C of its contents.
Result<uint32_t> CopyFileChecked(const std::string& src, const std::string& dst,
                                 uint64_t expected_size);

// Reads a whole file.
Result<std::string> ReadFile(const std::string& path);

// fsyncs a directory so that renames into it survive a crash.
Status SyncDir(const std::string& dir);
// fsyncs `dir` and each parent up to and including `root` (a prefix of `dir`), so that newly
// created directories in between survive a crash too.
Status SyncDirChain(const std::string& dir, const std::string& root);

Status CreateDirs(const std::string& dir);
// Removes a file or directory tree; errors are ignored (cleanup paths).
void RemoveAllQuietly(const std::string& path);
Status RemoveAll(const std::string& path);

struct DirEntry {
  std::string name;
  uint64_t size = 0;
};
// The regular files directly in `dir`, sorted by name.
Result<std::vector<DirEntry>> ListFiles(const std::string& dir);

// -1 if `path` does not exist (or is not a regular file), else its size.
int64_t FileSizeOrMinusOne(const std::string& path);

// `p` lexically normalized, without a trailing separator ("/a/./b/" -> "/a/b").
std::string NormalizePath(const std::string& p);

// `a/b`, without doubling the separator.
std::string JoinPath(std::string_view a, std::string_view b);

}  // namespace weir::state
