// JSON lines writing on RapidJSON's Writer (Debian's rapidjson-dev, header-only). It replaced a
// hand-written writer because it measured 1.3-1.45x faster on the same rows
// (bench/json_format_bench, bench/README.md). What RapidJSON lacks stays Weir's: base64 for
// bytes and the canonical timestamp text (weir/text_formats.h), both written as raw strings that
// need no escaping.
#include <rapidjson/allocators.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "weir/connectors.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

// RapidJSON's output stream into the caller's std::string, through raw pointers. RapidJSON
// reserves room once per value (PutReserve) and then writes unchecked (PutUnsafe). The stream,
// the writer and its allocator are locals of AppendJson, so the compiler keeps the write
// position in a register; a writer kept in a thread_local, or a Put(char) that calls
// push_back, measured 0.39-0.59x of this (bench/json_format_bench).
class AppendStream {
 public:
  using Ch = char;
  explicit AppendStream(std::string* out) : out_(out), used_(out->size()) {
    out_->resize(used_ + 256);  // a row's usual size; Reserve grows it
    pos_ = out_->data() + used_;
    end_ = out_->data() + out_->size();
  }
  // Cuts the string back to what was written.
  ~AppendStream() { out_->resize(static_cast<size_t>(pos_ - out_->data())); }
  void Reserve(size_t n) {
    if (static_cast<size_t>(end_ - pos_) >= n) return;
    const size_t used = static_cast<size_t>(pos_ - out_->data());
    out_->resize(used + n + 256);  // std::string grows its capacity geometrically
    pos_ = out_->data() + used;
    end_ = out_->data() + out_->size();
  }
  void Put(char c) {
    Reserve(1);
    *pos_++ = c;
  }
  void PutUnchecked(char c) { *pos_++ = c; }
  void Flush() {}

 private:
  std::string* out_;
  size_t used_;
  char* pos_;
  char* end_;
};

// Found by argument-dependent lookup from RapidJSON's writer, ahead of its generic templates.
inline void PutReserve(AppendStream& s, size_t n) {
  s.Reserve(n);
}
inline void PutUnsafe(AppendStream& s, char c) {
  s.PutUnchecked(c);
}

// The writer's nesting stack (one level: rows are flat objects) comes from a buffer on the
// stack, so a writer per call allocates nothing.
using StackAlloc = rapidjson::MemoryPoolAllocator<rapidjson::CrtAllocator>;
using RowWriter = rapidjson::Writer<AppendStream, rapidjson::UTF8<>, rapidjson::UTF8<>, StackAlloc>;

void AppendBase64(std::string_view s, std::string* out) {
  static const char* kAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out->push_back(kAlpha[(v >> k) & 63]);
  }
  if (i < s.size()) {
    uint32_t v = uint8_t(s[i]) << 16;
    if (i + 1 < s.size()) v |= uint8_t(s[i + 1]) << 8;
    out->push_back(kAlpha[(v >> 18) & 63]);
    out->push_back(kAlpha[(v >> 12) & 63]);
    out->push_back(i + 1 < s.size() ? kAlpha[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
  out->push_back('"');
}

rapidjson::SizeType Len(size_t n) {
  return static_cast<rapidjson::SizeType>(n);
}

}  // namespace

void AppendJson(const Row& row, const Schema& schema, std::string* out) {
  alignas(8) char arena[256];
  StackAlloc alloc(arena, sizeof arena);
  AppendStream stream(out);
  RowWriter w(stream, &alloc, 2);
  std::string base64;  // only bytes values use it
  w.StartObject();
  for (size_t i = 0; i < schema.size(); ++i) {
    const std::string& name = schema.field(i).name;
    w.Key(name.data(), Len(name.size()));
    const Value& v = row[i];
    switch (v.type) {
      case Type::kNull:
        w.Null();
        break;
      case Type::kBool:
        w.Bool(v.b);
        break;
      case Type::kInt64:
        w.Int64(v.i);
        break;
      case Type::kDouble:
        // Shortest text that reads back as the same double, always with a '.' or an exponent
        // ("12.0"), so a whole double reads back as a double. JSON has no NaN or infinity.
        if (std::isfinite(v.d)) {
          w.Double(v.d);
        } else {
          w.Null();
        }
        break;
      case Type::kString:
        w.String(v.s.data(), Len(v.s.size()));
        break;
      case Type::kBytes:
        base64.clear();
        AppendBase64(v.s, &base64);
        w.RawValue(base64.data(), base64.size(), rapidjson::kStringType);
        break;
      case Type::kTimestamp: {
        char buf[kTimestampTextMax + 2];
        buf[0] = '"';
        const size_t n = FormatTimestamp(v.i, buf + 1);
        buf[n + 1] = '"';
        w.RawValue(buf, n + 2, rapidjson::kStringType);
        break;
      }
    }
  }
  w.EndObject();
}

}  // namespace weir
