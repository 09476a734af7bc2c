#include "weir/serde.h"

namespace weir {
namespace {

inline uint8_t* PutVarint(uint8_t* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<uint8_t>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<uint8_t>(v);
  return p;
}

inline bool GetVarint(const uint8_t** p, const uint8_t* end, uint64_t* v) {
  uint64_t result = 0;
  for (int shift = 0; shift <= 63 && *p < end; shift += 7) {
    uint8_t byte = *(*p)++;
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace

size_t SerializedSizeHint(const Row& row) {
  size_t n = (row.size() + 7) / 8;
  for (const Value& v : row.fields) n += 10 + v.s.size();
  return n;
}

void SerializeRow(const Row& row, const Schema& schema, ByteBuffer& out) {
  const size_t n = schema.size();
  const size_t bitmap_len = (n + 7) / 8;
  // Worst case: bitmap + 10 bytes per field + string payloads.
  size_t need = bitmap_len + 10 * n;
  for (size_t i = 0; i < n; ++i) need += row.fields[i].s.size();
  uint8_t* start = out.Reserve(need);
  uint8_t* p = start + bitmap_len;
  std::memset(start, 0, bitmap_len);
  for (size_t i = 0; i < n; ++i) {
    const Value& v = row.fields[i];
    const Type t = schema.field(i).type;
    if (v.type != t) {  // null, or a mismatch (written as null)
      start[i >> 3] |= static_cast<uint8_t>(1u << (i & 7));
      continue;
    }
    switch (t) {
      case Type::kBool: *p++ = v.b ? 1 : 0; break;
      case Type::kInt64:
      case Type::kTimestamp:
      case Type::kDouble:
        std::memcpy(p, &v.i, 8);  // host order; x86-64 and aarch64 are little-endian
        p += 8;
        break;
      case Type::kString:
      case Type::kBytes:
        p = PutVarint(p, v.s.size());
        std::memcpy(p, v.s.data(), v.s.size());
        p += v.s.size();
        break;
      case Type::kNull: break;
    }
  }
  out.Commit(static_cast<size_t>(p - start));
}

bool DeserializeRow(const uint8_t** pp, const uint8_t* end, const Schema& schema, Row& row) {
  const size_t n = schema.size();
  const size_t bitmap_len = (n + 7) / 8;
  const uint8_t* p = *pp;
  if (static_cast<size_t>(end - p) < bitmap_len) return false;
  const uint8_t* bitmap = p;
  p += bitmap_len;
  row.fields.resize(n);
  for (size_t i = 0; i < n; ++i) {
    Value& v = row.fields[i];
    if (bitmap[i >> 3] & (1u << (i & 7))) {
      v.type = Type::kNull;
      continue;
    }
    const Type t = schema.field(i).type;
    v.type = t;
    switch (t) {
      case Type::kBool:
        if (p >= end || *p > 1) return false;
        v.b = *p++ != 0;
        break;
      case Type::kInt64:
      case Type::kTimestamp:
      case Type::kDouble:
        if (end - p < 8) return false;
        std::memcpy(&v.i, p, 8);
        p += 8;
        break;
      case Type::kString:
      case Type::kBytes: {
        uint64_t len;
        if (!GetVarint(&p, end, &len) || len > static_cast<uint64_t>(end - p)) return false;
        v.s.assign(reinterpret_cast<const char*>(p), len);
        p += len;
        break;
      }
      case Type::kNull: return false;  // schemas never hold a null-typed field
    }
  }
  *pp = p;
  return true;
}

}  // namespace weir
