// Weir's typed row model: a Schema names and types fields; a Row holds one Value per field; a
// RowBatch is the unit that flows between chained operators (records pass by call, in batches,
// never serialized inside a chain).
//
// Values of type string/bytes own a std::string whose capacity is kept when a Row is reused, so
// the steady state of a pipeline allocates nothing per record. Not thread-safe: a Row or a
// RowBatch belongs to one task thread at a time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "weir/status.h"

namespace weir {

enum class Type : uint8_t {
  kNull = 0,  // only as the type of a null Value or of the literal `null`
  kBool = 1,
  kInt64 = 2,
  kDouble = 3,
  kString = 4,
  kBytes = 5,
  kTimestamp = 6,  // milliseconds since the Unix epoch, UTC
};

const char* TypeName(Type t);
// Parses "bool", "int64" (also "int", "long", "bigint"), "double" ("float"), "string",
// "bytes", "timestamp".
Result<Type> ParseType(std::string_view name);

struct Value {
  Type type = Type::kNull;
  union {
    bool b;
    int64_t i;  // int64 and timestamp
    double d;
  };
  std::string s;  // string and bytes

  Value() : i(0) {}
  static Value Bool(bool v) { Value x; x.SetBool(v); return x; }
  static Value Int64(int64_t v) { Value x; x.SetInt64(v); return x; }
  static Value Double(double v) { Value x; x.SetDouble(v); return x; }
  static Value String(std::string_view v) { Value x; x.SetString(v); return x; }
  static Value Bytes(std::string_view v) { Value x; x.SetBytes(v); return x; }
  static Value Timestamp(int64_t ms) { Value x; x.SetTimestamp(ms); return x; }

  bool is_null() const { return type == Type::kNull; }
  void SetNull() { type = Type::kNull; }
  void SetBool(bool v) { type = Type::kBool; b = v; }
  void SetInt64(int64_t v) { type = Type::kInt64; i = v; }
  void SetDouble(double v) { type = Type::kDouble; d = v; }
  void SetString(std::string_view v) { type = Type::kString; s.assign(v.data(), v.size()); }
  void SetBytes(std::string_view v) { type = Type::kBytes; s.assign(v.data(), v.size()); }
  void SetTimestamp(int64_t ms) { type = Type::kTimestamp; i = ms; }
  // Copies `o` into this value, reusing string capacity.
  void CopyFrom(const Value& o) {
    type = o.type;
    if (o.type == Type::kString || o.type == Type::kBytes) {
      s.assign(o.s);
    } else {
      i = o.i;  // copies the widest union member
    }
  }

  // Equality by type and content (int64 1 != double 1.0; null == null).
  bool operator==(const Value& o) const;
  // A readable rendering for logs and the print sink (strings unquoted).
  std::string ToString() const;
};

struct Field {
  std::string name;
  Type type;
  bool operator==(const Field& o) const { return name == o.name && type == o.type; }
};

class Schema {
 public:
  Schema() = default;
  explicit Schema(std::vector<Field> fields) : fields_(std::move(fields)) {}

  const std::vector<Field>& fields() const { return fields_; }
  size_t size() const { return fields_.size(); }
  const Field& field(size_t i) const { return fields_[i]; }
  // Returns the index of field `name`, or -1.
  int IndexOf(std::string_view name) const;
  void Add(std::string name, Type type) { fields_.push_back({std::move(name), type}); }
  // "id:int64, name:string"
  std::string ToString() const;
  // Comma-separated field names, for error messages.
  std::string FieldNames() const;
  bool operator==(const Schema& o) const { return fields_ == o.fields_; }

 private:
  std::vector<Field> fields_;
};

struct Row {
  std::vector<Value> fields;

  Row() = default;
  explicit Row(size_t width) : fields(width) {}
  size_t size() const { return fields.size(); }
  Value& operator[](size_t i) { return fields[i]; }
  const Value& operator[](size_t i) const { return fields[i]; }
  void CopyFrom(const Row& o) {
    fields.resize(o.fields.size());
    for (size_t i = 0; i < o.fields.size(); ++i) fields[i].CopyFrom(o.fields[i]);
  }
  bool operator==(const Row& o) const { return fields == o.fields; }
  std::string ToString() const;
};

// A reusable batch of rows. `size()` rows are live; rows past it keep their storage for reuse.
class RowBatch {
 public:
  static constexpr size_t kDefaultCapacity = 1024;

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  Row& operator[](size_t i) { return rows_[i]; }
  const Row& operator[](size_t i) const { return rows_[i]; }
  // Appends a row of `width` fields (values from an earlier use may remain: overwrite them).
  Row& Append(size_t width) {
    if (size_ == rows_.size()) rows_.emplace_back();
    Row& r = rows_[size_++];
    r.fields.resize(width);
    return r;
  }
  void Clear() { size_ = 0; }
  // Keeps the first `n` rows.
  void Truncate(size_t n) { size_ = n; }
  void SwapRows(size_t a, size_t b) { std::swap(rows_[a], rows_[b]); }

 private:
  std::vector<Row> rows_;
  size_t size_ = 0;
};

}  // namespace weir
