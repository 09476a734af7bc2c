// JsonExtractor: pulls the values at a fixed set of paths ("user.id", "items.0.sku") out of
// JSON documents in one pass, without building a tree: objects and arrays on the wanted paths
// are descended into, everything else is skipped after checking it is well formed. Strings are
// unescaped into a reused buffer, so extracting from a stream of documents allocates nothing
// once the buffers are warm.
//
// Strict JSON (RFC 8259): a malformed document yields an error naming the offset and what was
// expected; trailing non-whitespace is an error. Depth is limited (kMaxDepth) so hostile input
// cannot exhaust the stack. One instance per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace weir {

class JsonExtractor {
 public:
  enum class Kind : uint8_t { kMissing, kNull, kBool, kNumber, kString, kObject, kArray };
  struct Value {
    Kind kind = Kind::kMissing;
    bool b = false;
    std::string_view text;  // number: its text; string: unescaped; object/array: raw JSON
  };
  static constexpr int kMaxDepth = 64;

  // Paths are dot-separated keys; a segment of digits also matches that index in an array.
  explicit JsonExtractor(const std::vector<std::string>& paths);

  // Parses `doc`; on success values(i) is the value at path i (kMissing if absent). Returns
  // false with *error set for malformed documents. Values stay valid until the next Parse.
  bool Parse(std::string_view doc, std::string* error);
  const Value& value(size_t i) const { return values_[i]; }

 private:
  struct Node {
    std::string key;
    int path = -1;               // index of the path that ends here, or -1
    std::vector<int> children;   // indices into nodes_
  };
  int Child(int node, std::string_view key) const;
  bool ParseValue(int node, int depth);
  bool ParseString(std::string_view* out, bool keep);
  bool SkipNumber(std::string_view* out);
  bool Fail(const char* what);
  void SkipWs() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }

  std::vector<Node> nodes_;  // nodes_[0] is the root
  std::vector<Value> values_;
  // Unescaped strings live here; reserved per document so views stay valid.
  std::string strings_;
  const char* begin_ = nullptr;
  const char* p_ = nullptr;
  const char* end_ = nullptr;
  std::string* error_ = nullptr;
};

}  // namespace weir
