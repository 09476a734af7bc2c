// CRC32C (Castagnoli), the checksum of Weir's state files and of RocksDB's per-file checksums
// (GetFileChecksumGenCrc32cFactory), so a copied SST can be checked against its MANIFEST entry.
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace weir::state {

// Extends `crc` (the CRC32C of earlier bytes; 0 for none) with `n` bytes. Uses the SSE4.2
// instruction when the CPU has it.
uint32_t Crc32cExtend(uint32_t crc, const void* data, size_t n);
inline uint32_t Crc32c(const void* data, size_t n) {
  return Crc32cExtend(0, data, n);
}

}  // namespace weir::state
