// The RocksDB options of the RocksDB state backend, exposed so that benchmarks and tools can
// open a plain RocksDB configured the same way. Pure functions; any thread.
#pragma once

#include <rocksdb/options.h>

namespace weir::state {

// The LRU block cache of one state DB when nothing else is configured.
inline constexpr size_t kDefaultBlockCacheBytes = 64 << 20;
// DB options for one subtask's keyed state (see rocksdb_backend.cc for the reasons), with a
// block cache of `block_cache_bytes` (it fills up to that with blocks of live and of
// compacted-away files, so it bounds the memory a state DB grows to).
rocksdb::Options RocksDbStateOptions(size_t block_cache_bytes = kDefaultBlockCacheBytes);
// Writes skip the WAL: checkpoints, not the WAL, make state durable (Snapshot flushes the
// memtable first), and after a crash the job restores from its last checkpoint anyway.
rocksdb::WriteOptions RocksDbStateWriteOptions();

}  // namespace weir::state
