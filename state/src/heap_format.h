// The heap backend's snapshot file, keyed-state.bin:
//
//   "WEIRHEAP" | u32 version (1) | entries | u64 entry count | u32 CRC32C
//
// where each entry is varint key length, key (the stored key: 2-byte key group + key bytes),
// varint value length, value; integers are little-endian and the CRC covers every byte before
// it. Pure functions; any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "weir/status.h"

namespace weir::state {

inline constexpr char kHeapFileName[] = "keyed-state.bin";

// Appends one entry to `out` (the body, between header and trailer).
void AppendHeapEntry(std::string_view stored_key, std::string_view value, std::string* out);
// The header, and the trailer for a body of `count` entries (`crc_so_far` covers header + body).
std::string HeapFileHeader();
std::string HeapFileTrailer(uint32_t crc_so_far, uint64_t count);

// Checks and decodes a whole file; `name` is used in error messages. `fn` gets each stored key
// and value (views into `data`).
Status ParseHeapFile(
    std::string_view data, const std::string& name,
    const std::function<Status(std::string_view stored_key, std::string_view value)>& fn);

}  // namespace weir::state
