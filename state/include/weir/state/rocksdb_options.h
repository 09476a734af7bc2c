// The RocksDB options of the RocksDB state backend, exposed so that benchmarks and tools can
// open a plain RocksDB configured the same way. Pure functions; any thread.
#pragma once

#include <rocksdb/options.h>

namespace weir::state {

// DB options for one subtask's keyed state (see rocksdb_backend.cc for the reasons).
rocksdb::Options RocksDbStateOptions();
// Writes skip the WAL: checkpoints, not the WAL, make state durable (Snapshot flushes the
// memtable first), and after a crash the job restores from its last checkpoint anyway.
rocksdb::WriteOptions RocksDbStateWriteOptions();

}  // namespace weir::state
