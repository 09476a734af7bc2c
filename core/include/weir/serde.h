// Row serialization for the data plane: rows of a known Schema to and from contiguous bytes.
//
// Per row: a null bitmap of ceil(n/8) bytes, then each non-null field in schema order:
// bool 1 byte, int64/timestamp/double 8 bytes little-endian, string/bytes a varint length then
// the bytes. No per-field tags or allocations: the schema (known per edge) drives both sides.
// A value whose type disagrees with its field's type is written as null (never happens for
// rows built by type-checked operators). Stateless functions; any thread.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "weir/types.h"

namespace weir {

// An allocator whose value-initialisation leaves elements uninitialised, so that resizing a
// byte vector that is about to be overwritten (a serialization buffer, a frame body read from
// a socket) does not memset it first: that memset cost ~10% of a TLS shuffle's instructions.
template <typename T>
class DefaultInitAllocator : public std::allocator<T> {
 public:
  template <typename U>
  struct rebind {
    using other = DefaultInitAllocator<U>;
  };
  DefaultInitAllocator() noexcept = default;
  template <typename U>
  DefaultInitAllocator(const DefaultInitAllocator<U>&) noexcept {}
  template <typename U>
  void construct(U* p) noexcept(std::is_nothrow_default_constructible_v<U>) {
    ::new (static_cast<void*>(p)) U;
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// Bytes whose resize() does not zero what it adds: write before you read.
using Bytes = std::vector<uint8_t, DefaultInitAllocator<uint8_t>>;

// A growable byte buffer that keeps its capacity across Clear(). Single owner.
class ByteBuffer {
 public:
  ByteBuffer() = default;
  explicit ByteBuffer(size_t capacity) { bytes_.resize(capacity); }
  // Reuses `storage` (its contents are dropped); allocates only if it holds less than `capacity`.
  ByteBuffer(Bytes&& storage, size_t capacity) : bytes_(std::move(storage)) {
    bytes_.resize(std::max(capacity, bytes_.capacity()));
  }

  uint8_t* data() { return bytes_.data(); }
  const uint8_t* data() const { return bytes_.data(); }
  size_t size() const { return len_; }
  size_t capacity() const { return bytes_.size(); }
  void Clear() { len_ = 0; }
  // Makes room for `n` more bytes and returns where they go.
  uint8_t* Reserve(size_t n) {
    if (len_ + n > bytes_.size()) Grow(len_ + n);
    return bytes_.data() + len_;
  }
  void Commit(size_t n) { len_ += n; }
  void Append(const void* p, size_t n) {
    std::memcpy(Reserve(n), p, n);
    len_ += n;
  }
  // Moves the bytes out as a vector of exactly size() bytes' worth (capacity may be larger).
  Bytes Release() {
    bytes_.resize(len_);
    len_ = 0;
    return std::move(bytes_);
  }

 private:
  void Grow(size_t need) {
    size_t cap = bytes_.size() < 256 ? 256 : bytes_.size();
    while (cap < need) cap *= 2;
    bytes_.resize(cap);
  }
  Bytes bytes_;
  size_t len_ = 0;
};

// Appends `row` (which has schema.size() fields) to `out`.
void SerializeRow(const Row& row, const Schema& schema, ByteBuffer& out);

// Reads one row of `schema` from [*p, end) into `row`, advancing *p. Returns false iff the
// bytes are truncated or malformed (then `row` is unspecified).
bool DeserializeRow(const uint8_t** p, const uint8_t* end, const Schema& schema, Row& row);

// Upper bound of the serialized size of `row`, for sizing decisions.
size_t SerializedSizeHint(const Row& row);

}  // namespace weir
