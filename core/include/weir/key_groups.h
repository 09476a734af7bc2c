// Key groups: the unit of keyed-state distribution (as in Flink). A key hashes to one of
// `max_parallelism` key groups; subtask i of p owns the contiguous range
// [ceil(i*M/p), ceil((i+1)*M/p)), so state can be cut by range when the parallelism changes.
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string_view>

#include "weir/types.h"

namespace weir {

struct KeyGroupRange {
  int first = 0;  // inclusive
  int last = -1;  // inclusive; empty if last < first
  bool Contains(int kg) const { return kg >= first && kg <= last; }
  int size() const { return last >= first ? last - first + 1 : 0; }
};

// A stable 64-bit hash of the bytes (same in every process and run).
uint64_t StableHash(std::string_view bytes, uint64_t seed = 0);
// Hash of a value, stable across processes; equal values hash equally.
uint64_t HashValue(const Value& v, uint64_t seed = 0);

inline int KeyGroupForHash(uint64_t hash, int max_parallelism) {
  const uint64_t m = static_cast<uint64_t>(max_parallelism);
  // hash % m; a mask (no division) when m is a power of two, as the default 128 is.
  if ((m & (m - 1)) == 0) return static_cast<int>(hash & (m - 1));
  return static_cast<int>(hash % m);
}
// The subtask (of `parallelism`) that owns key group `kg`.
inline int SubtaskForKeyGroup(int kg, int max_parallelism, int parallelism) {
  return static_cast<int>(static_cast<int64_t>(kg) * parallelism / max_parallelism);
}
// The key groups owned by `subtask`; consistent with SubtaskForKeyGroup.
KeyGroupRange KeyGroupRangeFor(int subtask, int max_parallelism, int parallelism);

}  // namespace weir
