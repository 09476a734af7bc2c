// JsonFields: reads the values at a fixed set of paths ("user.id", "items.0.sku") out of JSON
// documents with simdjson's On-Demand API, in one pass and without building a tree. Objects and
// arrays on the wanted paths are descended into; everything else is skipped.
//
// What it promises for each document given to Parse:
// - The whole document is valid UTF-8 and its strings are closed and hold no unescaped control
//   characters (simdjson's first stage checks every byte), and it is one value with nothing
//   but whitespace after it. Values on the wanted paths are checked completely: numbers follow
//   the JSON grammar, literals are true, false or null, strings have valid escapes. Values off
//   the wanted paths are only checked as far as skipping them needs (brackets, strings): a
//   malformed atom there, such as `tru`, is not noticed.
// - Numbers are handed over as the text they were written with (the caller converts them, so
//   one number parser decides); strings without escapes as their bytes in the document,
//   strings with escapes unescaped by simdjson.
// - At most kMaxDepth levels of nested objects and arrays anywhere in the document, and at most
//   kMaxBytes bytes; beyond either the document is refused.
// - A key met twice on a wanted path (e.g. two "user" members when "user.id" is wanted) refuses
//   the document: which one a reader should take is ambiguous. Duplicate keys elsewhere are not
//   looked for.
// - Steady state allocates nothing: the document is copied into a reused padded buffer (simdjson
//   reads up to 64 bytes past the end) and the parser's buffers are reused; both grow for a
//   bigger document and shrink back to 64 KiB after one larger than 1 MiB.
//
// Errors are texts for the dirty record's reason: "invalid JSON at offset N: <what>" (offset
// into the document, omitted where simdjson does not say), "document too large: ...", or
// "duplicate key ..." with error_path() naming the path concerned.
//
// Not thread-safe: one instance per thread (each parse subtask owns one).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace weir {

class JsonFields {
 public:
  enum class Kind : uint8_t { kMissing, kNull, kBool, kNumber, kString, kObject, kArray };
  struct Value {
    Kind kind = Kind::kMissing;
    bool b = false;
    // number: its text as written; string: unescaped; object/array: its JSON text as written.
    std::string_view text;
  };
  static constexpr int kMaxDepth = 64;
  static constexpr size_t kMaxBytes = size_t{16} << 20;

  // Paths are dot-separated keys; a segment of digits also matches that index in an array.
  explicit JsonFields(const std::vector<std::string>& paths);
  ~JsonFields();
  JsonFields(const JsonFields&) = delete;
  JsonFields& operator=(const JsonFields&) = delete;

  // Returns true iff `doc` is accepted (see above); then value(i) is the value at path i
  // (kMissing if absent). On false, *error says why. Values stay valid until the next Parse.
  bool Parse(std::string_view doc, std::string* error);
  const Value& value(size_t i) const { return values_[i]; }
  // After a false Parse: the index of the path the error concerns, or -1 for the document.
  int error_path() const { return error_path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<Value> values_;
  int error_path_ = -1;
};

}  // namespace weir
