#include "heap_format.h"

#include <cstring>

#include "crc32c.h"

namespace weir::state {
namespace {

constexpr char kMagic[8] = {'W', 'E', 'I', 'R', 'H', 'E', 'A', 'P'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderSize = sizeof(kMagic) + 4;
constexpr size_t kTrailerSize = 8 + 4;

void PutVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutFixed(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t GetFixed(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

// Decodes a varint at *pos (bounded by `end`); false if it runs past the end or over 64 bits.
bool GetVarint(std::string_view data, size_t end, size_t* pos, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && *pos < end; shift += 7) {
    uint8_t b = static_cast<uint8_t>(data[(*pos)++]);
    result |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

void AppendHeapEntry(std::string_view stored_key, std::string_view value, std::string* out) {
  PutVarint(stored_key.size(), out);
  out->append(stored_key);
  PutVarint(value.size(), out);
  out->append(value);
}

std::string HeapFileHeader() {
  std::string h(kMagic, sizeof(kMagic));
  PutFixed(kVersion, 4, &h);
  return h;
}

std::string HeapFileTrailer(uint32_t crc_so_far, uint64_t count) {
  std::string t;
  PutFixed(count, 8, &t);
  uint32_t crc = Crc32cExtend(crc_so_far, t.data(), t.size());
  PutFixed(crc, 4, &t);
  return t;
}

Status ParseHeapFile(std::string_view data, const std::string& name,
                     const std::function<Status(std::string_view, std::string_view)>& fn) {
  auto corrupt = [&name](const std::string& why) {
    return Status::DataLoss("state file " + name + " is corrupt: " + why);
  };
  if (data.size() < kHeaderSize + kTrailerSize) {
    return corrupt("only " + std::to_string(data.size()) + " bytes (truncated)");
  }
  if (std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0) {
    return corrupt("wrong magic (not a Weir heap state file)");
  }
  uint32_t version = static_cast<uint32_t>(GetFixed(data.data() + sizeof(kMagic), 4));
  if (version != kVersion) {
    return Status::DataLoss("state file " + name + " has format version " +
                            std::to_string(version) + "; this build reads version " +
                            std::to_string(kVersion));
  }
  const size_t crc_pos = data.size() - 4;
  uint32_t stored_crc = static_cast<uint32_t>(GetFixed(data.data() + crc_pos, 4));
  if (Crc32c(data.data(), crc_pos) != stored_crc) {
    return corrupt("checksum mismatch (truncated or modified)");
  }
  const size_t body_end = data.size() - kTrailerSize;
  const uint64_t count = GetFixed(data.data() + body_end, 8);
  // The checksum matched, but the body is still decoded with bounds checks: a file written by
  // a buggy writer must give an error, not a crash.
  size_t pos = kHeaderSize;
  uint64_t seen = 0;
  while (pos < body_end) {
    uint64_t klen = 0, vlen = 0;
    if (!GetVarint(data, body_end, &pos, &klen) || klen > body_end - pos || klen < 2) {
      return corrupt("bad key at offset " + std::to_string(pos));
    }
    std::string_view key = data.substr(pos, klen);
    pos += klen;
    if (!GetVarint(data, body_end, &pos, &vlen) || vlen > body_end - pos) {
      return corrupt("bad value at offset " + std::to_string(pos));
    }
    std::string_view value = data.substr(pos, vlen);
    pos += vlen;
    ++seen;
    WEIR_RETURN_IF_ERROR(fn(key, value));
  }
  if (seen != count) {
    return corrupt("has " + std::to_string(seen) + " entries, trailer says " +
                   std::to_string(count));
  }
  return Status::Ok();
}

}  // namespace weir::state
