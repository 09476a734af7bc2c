#include "json_extract.h"

#include <cstdio>
#include <cstring>

namespace weir {

JsonExtractor::JsonExtractor(const std::vector<std::string>& paths) {
  nodes_.emplace_back();
  for (size_t i = 0; i < paths.size(); ++i) {
    int node = 0;
    std::string_view rest = paths[i];
    while (true) {
      const size_t dot = rest.find('.');
      std::string_view seg = rest.substr(0, dot);
      int next = Child(node, seg);
      if (next < 0) {
        next = static_cast<int>(nodes_.size());
        nodes_.emplace_back();
        nodes_.back().key = std::string(seg);
        nodes_[node].children.push_back(next);
      }
      node = next;
      if (dot == std::string_view::npos) break;
      rest = rest.substr(dot + 1);
    }
    nodes_[node].path = static_cast<int>(i);
  }
  values_.resize(paths.size());
}

int JsonExtractor::Child(int node, std::string_view key) const {
  for (int c : nodes_[node].children) {
    if (nodes_[c].key == key) return c;
  }
  return -1;
}

bool JsonExtractor::Fail(const char* what) {
  if (error_ && error_->empty()) {
    *error_ = "invalid JSON at offset " + std::to_string(p_ - begin_) + ": " + what;
  }
  return false;
}

bool JsonExtractor::Parse(std::string_view doc, std::string* error) {
  for (Value& v : values_) v = Value();
  strings_.clear();
  // Unescaped text is never longer than its source: one reservation keeps views stable.
  strings_.reserve(doc.size());
  begin_ = p_ = doc.data();
  end_ = doc.data() + doc.size();
  error_ = error;
  error->clear();
  SkipWs();
  if (p_ == end_) return Fail("empty document");
  if (!ParseValue(0, 0)) return false;
  SkipWs();
  if (p_ != end_) return Fail("unexpected text after the document");
  return true;
}

bool JsonExtractor::ParseString(std::string_view* out, bool keep) {
  // At the opening quote.
  ++p_;
  const char* start = p_;
  // Fast path: no escapes.
  while (p_ < end_ && *p_ != '"' && *p_ != '\\') {
    if (static_cast<unsigned char>(*p_) < 0x20) return Fail("control character in a string");
    ++p_;
  }
  if (p_ < end_ && *p_ == '"') {
    if (keep) *out = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }
  const size_t from = strings_.size();
  if (keep) strings_.append(start, static_cast<size_t>(p_ - start));
  while (p_ < end_ && *p_ != '"') {
    char c = *p_++;
    if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in a string");
    if (c != '\\') {
      if (keep) strings_.push_back(c);
      continue;
    }
    if (p_ == end_) return Fail("unterminated escape");
    c = *p_++;
    switch (c) {
      case '"': case '\\': case '/':
        if (keep) strings_.push_back(c);
        break;
      case 'b': if (keep) strings_.push_back('\b'); break;
      case 'f': if (keep) strings_.push_back('\f'); break;
      case 'n': if (keep) strings_.push_back('\n'); break;
      case 'r': if (keep) strings_.push_back('\r'); break;
      case 't': if (keep) strings_.push_back('\t'); break;
      case 'u': {
        auto hex4 = [&](uint32_t* v) {
          if (end_ - p_ < 4) return false;
          *v = 0;
          for (int k = 0; k < 4; ++k) {
            const char h = *p_++;
            *v <<= 4;
            if (h >= '0' && h <= '9') *v |= static_cast<uint32_t>(h - '0');
            else if (h >= 'a' && h <= 'f') *v |= static_cast<uint32_t>(h - 'a' + 10);
            else if (h >= 'A' && h <= 'F') *v |= static_cast<uint32_t>(h - 'A' + 10);
            else return false;
          }
          return true;
        };
        uint32_t cp;
        if (!hex4(&cp)) return Fail("bad \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t lo;
          if (end_ - p_ < 6 || p_[0] != '\\' || p_[1] != 'u') return Fail("unpaired surrogate");
          p_ += 2;
          if (!hex4(&lo) || lo < 0xDC00 || lo > 0xDFFF) return Fail("unpaired surrogate");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return Fail("unpaired surrogate");
        }
        if (keep) {
          if (cp < 0x80) {
            strings_.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            strings_.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            strings_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else if (cp < 0x10000) {
            strings_.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            strings_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            strings_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            strings_.push_back(static_cast<char>(0xF0 | (cp >> 18)));
            strings_.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
            strings_.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            strings_.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
        }
        break;
      }
      default: return Fail("bad escape");
    }
  }
  if (p_ == end_) return Fail("unterminated string");
  ++p_;
  if (keep) *out = std::string_view(strings_.data() + from, strings_.size() - from);
  return true;
}

bool JsonExtractor::SkipNumber(std::string_view* out) {
  const char* start = p_;
  if (p_ < end_ && *p_ == '-') ++p_;
  if (p_ == end_) return Fail("bad number");
  if (*p_ == '0') {
    ++p_;
  } else if (*p_ >= '1' && *p_ <= '9') {
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  } else {
    return Fail("bad number");
  }
  if (p_ < end_ && *p_ == '.') {
    ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return Fail("bad number");
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
    ++p_;
    if (p_ < end_ && (*p_ == '+' || *p_ == '-')) ++p_;
    if (p_ == end_ || *p_ < '0' || *p_ > '9') return Fail("bad number");
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
  }
  *out = std::string_view(start, static_cast<size_t>(p_ - start));
  return true;
}

// Parses one value at p_; `node` is the trie node for this position (-1: not wanted).
// One function on purpose: the per-record hot path, one switch over the JSON value kinds, no
// calls per token.
bool JsonExtractor::ParseValue(int node, int depth) {
  if (depth > kMaxDepth) return Fail("nested too deeply");
  SkipWs();
  if (p_ == end_) return Fail("unexpected end");
  const int path = node >= 0 ? nodes_[node].path : -1;
  Value* v = path >= 0 ? &values_[path] : nullptr;
  const bool descend = node >= 0 && !nodes_[node].children.empty();
  const char* start = p_;
  const char c = *p_;
  if (c == '{') {
    ++p_;
    SkipWs();
    if (p_ < end_ && *p_ == '}') {
      ++p_;
    } else {
      while (true) {
        SkipWs();
        if (p_ == end_ || *p_ != '"') return Fail("expected a key");
        std::string_view key;
        if (!ParseString(&key, descend)) return false;
        SkipWs();
        if (p_ == end_ || *p_ != ':') return Fail("expected ':'");
        ++p_;
        const int child = descend ? Child(node, key) : -1;
        if (!ParseValue(child, depth + 1)) return false;
        SkipWs();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          continue;
        }
        if (p_ < end_ && *p_ == '}') {
          ++p_;
          break;
        }
        return Fail("expected ',' or '}'");
      }
    }
    if (v) {
      v->kind = Kind::kObject;
      v->text = std::string_view(start, static_cast<size_t>(p_ - start));
    }
    return true;
  }
  if (c == '[') {
    ++p_;
    SkipWs();
    if (p_ < end_ && *p_ == ']') {
      ++p_;
    } else {
      for (size_t index = 0;; ++index) {
        int child = -1;
        if (descend) {
          char buf[24];
          const int n = snprintf(buf, sizeof buf, "%zu", index);
          child = Child(node, std::string_view(buf, static_cast<size_t>(n)));
        }
        if (!ParseValue(child, depth + 1)) return false;
        SkipWs();
        if (p_ < end_ && *p_ == ',') {
          ++p_;
          continue;
        }
        if (p_ < end_ && *p_ == ']') {
          ++p_;
          break;
        }
        return Fail("expected ',' or ']'");
      }
    }
    if (v) {
      v->kind = Kind::kArray;
      v->text = std::string_view(start, static_cast<size_t>(p_ - start));
    }
    return true;
  }
  if (c == '"') {
    std::string_view s;
    if (!ParseString(&s, v != nullptr)) return false;
    if (v) {
      v->kind = Kind::kString;
      v->text = s;
    }
    return true;
  }
  auto literal = [&](const char* word, size_t n) {
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  };
  if (c == 't' || c == 'f' || c == 'n') {
    if (literal("true", 4)) {
      if (v) {
        v->kind = Kind::kBool;
        v->b = true;
      }
    } else if (literal("false", 5)) {
      if (v) {
        v->kind = Kind::kBool;
        v->b = false;
      }
    } else if (literal("null", 4)) {
      if (v) v->kind = Kind::kNull;
    } else {
      return Fail("unexpected literal");
    }
    return true;
  }
  std::string_view num;
  if (!SkipNumber(&num)) return false;
  if (v) {
    v->kind = Kind::kNumber;
    v->text = num;
  }
  return true;
}

}  // namespace weir
