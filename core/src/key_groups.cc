#include "weir/key_groups.h"

#include <cstring>

namespace weir {
namespace {

// MurmurHash3's 64-bit finalizer: a good avalanche so `% max_parallelism` spreads evenly.
inline uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace

uint64_t StableHash(std::string_view bytes, uint64_t seed) {
  // FNV-1a over 8-byte words then a final mix: fast for short keys, stable everywhere.
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ULL;
  }
  for (; i < bytes.size(); ++i) h = (h ^ static_cast<uint8_t>(bytes[i])) * 0x100000001b3ULL;
  return Mix(h ^ bytes.size());
}

uint64_t HashValue(const Value& v, uint64_t seed) {
  switch (v.type) {
    case Type::kNull: return Mix(seed ^ 0x9e3779b97f4a7c15ULL);
    case Type::kBool: return Mix(seed ^ (v.b ? 1 : 2));
    case Type::kInt64:
    case Type::kTimestamp: return Mix(seed ^ static_cast<uint64_t>(v.i) ^ 0x51ULL);
    case Type::kDouble: {
      double d = v.d == 0.0 ? 0.0 : v.d;  // +0 and -0 are equal
      uint64_t bits;
      std::memcpy(&bits, &d, 8);
      return Mix(seed ^ bits ^ 0x77ULL);
    }
    case Type::kString:
    case Type::kBytes: return StableHash(v.s, seed);
  }
  return 0;
}

KeyGroupRange KeyGroupRangeFor(int subtask, int max_parallelism, int parallelism) {
  // Smallest kg with kg*p/M >= i is ceil(i*M/p).
  auto first_of = [&](int i) {
    return static_cast<int>((static_cast<int64_t>(i) * max_parallelism + parallelism - 1) /
                            parallelism);
  };
  return {first_of(subtask), first_of(subtask + 1) - 1};
}

}  // namespace weir
