// A write-back cache of hot keys in front of a snapshottable backend (RocksDB).
//
// Promise: reads and writes of keys whose first byte was declared a point-lookup prefix
// (KeyedStateBackend::HintPointLookups: value, reducing, aggregating and map states) are served
// from memory; the changed ones reach the backend in one WriteBatch when the cache is over its
// memory bound (the least recently used entries are evicted) and at every snapshot, before the
// backend's own snapshot, so a snapshot holds every write made before it. Every other
// operation (scans, prefix deletes, appends of uncached keys, iteration) first writes the dirty
// entries it could see through, then goes to the backend, so its results are as without the
// cache; a flush costs the dirty entries, and a prefix delete the cached entries under the
// prefix (a key-ordered index), not the whole cache. Restoring and rescaling are the backend's: the
// cache starts empty. When few lookups hit (keys spread far wider than the cache), new keys bypass
// it until hot keys come back.
//
// Threads: as the backend it wraps, the owning task thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "weir/state/backend.h"

namespace weir::state {

struct CacheStats {
  int64_t bytes = 0;  // accounted memory of the cached entries
  int64_t entries = 0;
  int64_t dirty = 0;
  int64_t hits = 0;  // since the cache was made
  int64_t misses = 0;
  int64_t evictions = 0;
  int64_t flushes = 0;    // write batches sent to the backend
  bool admitting = true;  // false: few lookups hit, new keys bypass the cache
};

// Wraps `inner`; `capacity_bytes` bounds the cache's memory (keys, values and a fixed
// per-entry overhead). With capacity 0, returns `inner` itself.
std::unique_ptr<SnapshottableBackend> NewCachingBackend(std::unique_ptr<SnapshottableBackend> inner,
                                                        size_t capacity_bytes);

// The figures of a backend made by NewCachingBackend; false for any other backend.
bool GetCacheStats(const KeyedStateBackend& backend, CacheStats* out);

}  // namespace weir::state
