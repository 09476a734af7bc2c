#include "json_fields.h"

#include <simdjson.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace weir {

namespace ondemand = simdjson::ondemand;

namespace {

// Buffers start at this capacity and return to it after a document above kShrinkAbove.
constexpr size_t kInitialCapacity = size_t{64} << 10;
constexpr size_t kShrinkAbove = size_t{1} << 20;

// 8 bytes at `p` as a little-endian word (the buffer is padded: always readable).
uint64_t Load64(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() && IsWs(s.back())) s.remove_suffix(1);
  return s;
}

// True iff `s` is a whole JSON number (RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?).
bool IsJsonNumber(std::string_view s) {
  size_t i = 0;
  const size_t n = s.size();
  auto digits = [&] {
    const size_t from = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > from;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

// True iff the objects and arrays in `json` (one well-formed value as simdjson skipped it) nest
// more than `limit` levels deep. Brackets inside strings do not count.
bool NestsDeeperThan(std::string_view json, int limit) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > limit) return true;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return false;
}

// What a simdjson error means, in the words of the dirty reasons.
const char* Describe(simdjson::error_code e) {
  switch (e) {
    case simdjson::EMPTY:
      return "empty document";
    case simdjson::UTF8_ERROR:
      return "invalid UTF-8";
    case simdjson::UNCLOSED_STRING:
      return "unterminated string";
    case simdjson::UNESCAPED_CHARS:
      return "control character in a string";
    case simdjson::STRING_ERROR:
      return "bad escape or unpaired surrogate in a string";
    case simdjson::NUMBER_ERROR:
      return "bad number";
    case simdjson::T_ATOM_ERROR:
    case simdjson::F_ATOM_ERROR:
    case simdjson::N_ATOM_ERROR:
    case simdjson::INCORRECT_TYPE:
      return "unexpected literal";
    case simdjson::TAPE_ERROR:
      return "malformed structure (a missing or extra comma, colon, key, brace or bracket)";
    case simdjson::INCOMPLETE_ARRAY_OR_OBJECT:
      return "an object or array is not closed where the document ends (truncated, or text "
             "after it)";
    case simdjson::TRAILING_CONTENT:
      return "unexpected text after the document";
    case simdjson::DEPTH_ERROR:
      return "nested too deeply";
    default:
      return simdjson::error_message(e);
  }
}

}  // namespace

struct JsonFields::Impl {
  struct Node {
    std::string key;
    // key + '"' as raw JSON bytes: the first 8 (little-endian, masked) for a one-load compare.
    uint64_t word = 0, mask = 0;
    bool plain = true;   // key has no '"' or '\\': comparable with a key's raw JSON bytes
    int64_t index = -1;  // the key as an array index, when it is a canonical decimal
    int path = -1;       // index of the path that ends here, or -1
    int some_path = -1;  // a path through this node, for messages
    std::vector<int> children;
    // The plain children's keys laid out for MatchKey: no pointer chasing per comparison.
    struct Key {
      uint64_t word, mask;
      const char* bytes;
      size_t size;
      int child;
    };
    std::vector<Key> keys;
    size_t hint = 0;    // where in `keys` to start looking: after the last match
    uint32_t seen = 0;  // the document (generation) that last had this key
  };

  std::vector<Node> nodes;  // nodes[0] is the document
  std::vector<std::string> paths;
  std::vector<Value>* values = nullptr;
  ondemand::parser parser{kMaxBytes};
  std::unique_ptr<char[]> buf;
  size_t buf_capacity = 0;
  const char* begin = nullptr;
  size_t size = 0;
  uint32_t generation = 0;
  ondemand::document doc;
  std::string* error = nullptr;
  int error_path = -1;
  Value scratch;  // for scalars on a path that only goes through them

  int Child(int node, std::string_view key) const {
    for (int c : nodes[static_cast<size_t>(node)].children) {
      if (nodes[static_cast<size_t>(c)].key == key) return c;
    }
    return -1;
  }

  bool Fail(const char* what, const char* at) {
    *error = "invalid JSON";
    if (at != nullptr) *error += " at offset " + std::to_string(at - begin);
    *error += ": ";
    *error += what;
    return false;
  }
  // A simdjson error, at the iterator's position when it has one.
  bool Fail(simdjson::error_code e) {
    const char* at = nullptr;
    auto loc = doc.current_location();
    if (loc.error() == simdjson::SUCCESS) {
      at = loc.value_unsafe();
    } else if (loc.error() == simdjson::OUT_OF_BOUNDS) {
      at = begin + size;
    }
    return Fail(Describe(e), at);
  }
  bool TooDeep(const char* at) {
    return Fail(("nested too deeply (more than " + std::to_string(kMaxDepth) + " levels)").c_str(),
                at);
  }

  // The child of `node` whose key is the raw key `raw` (the bytes after its opening quote), or
  // -1 if none, or kEscaped if the key has escapes and must be unescaped to tell. *end: the
  // key's closing quote (not set for kEscaped). Members usually come in the same order in every
  // document, so the search starts after the child found last.
  static constexpr int kEscaped = -2;
  int MatchKey(int node, const char* raw, const char** end) {
    Node& parent = nodes[static_cast<size_t>(node)];
    const uint64_t head = Load64(raw);
    const size_t count = parent.keys.size();
    for (size_t k = 0, at = parent.hint; k < count; ++k, at = at + 1 == count ? 0 : at + 1) {
      const Node::Key& key = parent.keys[at];
      if ((head & key.mask) != key.word) continue;
      // The first 8 bytes agree. A longer key: the rest, stopping at the first difference
      // (the key's closing quote differs from any byte of a plain key, so this never reads
      // past the key).
      size_t i = 7;
      while (i < key.size && raw[i] == key.bytes[i]) ++i;
      if (i >= key.size && raw[key.size] == '"') {
        parent.hint = at + 1 == count ? 0 : at + 1;
        *end = raw + key.size;
        return key.child;
      }
    }
    const char* p = raw;
    while (*p != '"' && *p != '\\') ++p;
    if (*p == '\\') return kEscaped;
    *end = p;
    return -1;
  }

  // A number, true, false or null starting at `p` into *out, straight from the bytes (simdjson
  // has found the token; it skips it when the member is done).
  bool Atom(const char* p, Value* out) {
    const char* const end = begin + size;
    auto delimited = [&](const char* q) {
      return q == end || IsWs(*q) || *q == ',' || *q == '}' || *q == ']';
    };
    const char c = *p;
    if (c == '-' || (c >= '0' && c <= '9')) {
      const char* q = p;
      while ((*q >= '0' && *q <= '9') || *q == '-' || *q == '+' || *q == '.' || *q == 'e' ||
             *q == 'E') {
        ++q;
      }
      const std::string_view text(p, static_cast<size_t>(q - p));
      if (!delimited(q) || !IsJsonNumber(text)) return Fail("bad number", p);
      out->kind = Kind::kNumber;
      out->text = text;
      return true;
    }
    const size_t left = static_cast<size_t>(end - p);
    if (c == 't' && left >= 4 && std::memcmp(p, "true", 4) == 0 && delimited(p + 4)) {
      out->kind = Kind::kBool;
      out->b = true;
      return true;
    }
    if (c == 'f' && left >= 5 && std::memcmp(p, "false", 5) == 0 && delimited(p + 5)) {
      out->kind = Kind::kBool;
      out->b = false;
      return true;
    }
    if (c == 'n' && left >= 4 && std::memcmp(p, "null", 4) == 0 && delimited(p + 4)) {
      out->kind = Kind::kNull;
      return true;
    }
    return Fail(c == 't' || c == 'f' || c == 'n' ? "unexpected literal" : "unexpected character",
                p);
  }

  // A value no path wants: skipped by simdjson; only the nesting of objects and arrays is
  // checked. `outer`: the objects and arrays around it.
  bool Skip(ondemand::value& v, int outer) {
    const std::string_view token = v.raw_json_token();
    if (token.empty() || (token[0] != '{' && token[0] != '[')) return true;
    std::string_view json;
    simdjson::error_code e;
    if (token[0] == '{') {
      ondemand::object o;
      e = v.get_object().get(o);
      if (!e) e = o.raw_json().get(json);
    } else {
      ondemand::array a;
      e = v.get_array().get(a);
      if (!e) e = a.raw_json().get(json);
    }
    if (e) return Fail(e);
    // Nesting deeper than the limit needs at least that many opening and closing brackets.
    const int allowed = kMaxDepth - outer;
    if (json.size() >= 2 * static_cast<size_t>(allowed + 1) && NestsDeeperThan(json, allowed)) {
      return TooDeep(token.data());
    }
    return true;
  }

  // A scalar into *out; `token`: its raw JSON (with the whitespace after it).
  bool Scalar(ondemand::value& v, std::string_view token, Value* out) {
    const char c = token[0];
    if (c == '"') {
      std::string_view s;
      if (auto e = v.get_string().get(s); e) return Fail(e);
      out->kind = Kind::kString;
      out->text = s;
      return true;
    }
    return Atom(token.data(), out);
  }

  // The JSON text of the object or array that started at `start` and has just been read to
  // its end: up to the token after it (the document is never just this value: a path into it
  // has a parent).
  std::string_view Through(const char* start) {
    auto loc = doc.current_location();
    const char* end = loc.error() == simdjson::SUCCESS ? loc.value_unsafe() : begin + size;
    return TrimRight(std::string_view(start, static_cast<size_t>(end - start)));
  }

  // An object or array no path goes into, taken whole: its JSON text, refused if it nests
  // deeper than the limit allows (`outer` containers are around it; `at` is where it starts).
  template <typename Container>
  bool Whole(Container& c, Value* out, int outer, const char* at) {
    std::string_view json;
    if (auto e = c.raw_json().get(json); e) return Fail(e);
    out->text = TrimRight(json);
    const int allowed = kMaxDepth - outer;
    if (out->text.size() >= 2 * static_cast<size_t>(allowed + 1) &&
        NestsDeeperThan(out->text, allowed)) {
      return TooDeep(at);
    }
    return true;
  }

  // A value at `node` (some path wants it or goes through it); `outer` as for Skip.
  bool Read(ondemand::value& v, int node, int outer) {
    const Node& n = nodes[static_cast<size_t>(node)];
    Value* out = n.path >= 0 ? &(*values)[static_cast<size_t>(n.path)] : &scratch;
    const std::string_view token = v.raw_json_token();
    if (token.empty()) return Fail("unexpected end", begin + size);
    const char c = token[0];
    if (c != '{' && c != '[') return Scalar(v, token, out);
    if (outer + 1 > kMaxDepth) return TooDeep(token.data());
    if (c == '{') {
      ondemand::object o;
      if (auto e = v.get_object().get(o); e) return Fail(e);
      out->kind = Kind::kObject;
      if (n.children.empty()) return Whole(o, out, outer, token.data());
      if (!Object(o, node, outer + 1)) return false;
      if (n.path >= 0) out->text = Through(token.data());
      return true;
    }
    ondemand::array a;
    if (auto e = v.get_array().get(a); e) return Fail(e);
    out->kind = Kind::kArray;
    if (n.children.empty()) return Whole(a, out, outer, token.data());
    if (!Array(a, node, outer + 1)) return false;
    if (n.path >= 0) out->text = Through(token.data());
    return true;
  }

  // The members of an object at `node`; `depth`: the objects and arrays around its members.
  bool Object(ondemand::object& o, int node, int depth) {
    for (auto member : o) {
      ondemand::raw_json_string raw;
      if (auto e = member.key().get(raw); e) return Fail(e);
      const char* key_end = nullptr;
      int child = MatchKey(node, raw.raw(), &key_end);
      if (child == kEscaped) {
        std::string_view key;
        if (auto e = member.unescaped_key().get(key); e) return Fail(e);
        child = Child(node, key);
        key_end = raw.raw();
        while (*key_end != '"') key_end += *key_end == '\\' ? 2 : 1;
      }
      // The value's first byte (simdjson has checked the colon before it).
      const char* p = key_end + 1;
      while (IsWs(*p) || *p == ':') ++p;
      const char c = *p;
      const bool container = c == '{' || c == '[';
      if (child < 0) {
        // Unwanted: scalars are left to the iterator to skip; containers get a depth check.
        if (!container) continue;
      } else {
        Node& n = nodes[static_cast<size_t>(child)];
        if (n.seen == generation) {
          error_path = n.some_path;
          *error = "duplicate key '" + n.key + "' (path " +
                   paths[static_cast<size_t>(n.some_path)] + ")";
          return false;
        }
        n.seen = generation;
        Value* out = n.path >= 0 ? &(*values)[static_cast<size_t>(n.path)] : &scratch;
        if (c == '"') {
          // Without escapes a string is its bytes (simdjson's first stage has checked them:
          // UTF-8, no control characters); with escapes simdjson unescapes it below.
          const char* q = p + 1;
          while (*q != '"' && *q != '\\') ++q;
          if (*q == '"') {
            out->kind = Kind::kString;
            out->text = std::string_view(p + 1, static_cast<size_t>(q - p - 1));
            continue;
          }
        } else if (!container) {
          if (!Atom(p, out)) return false;
          continue;
        }
      }
      // The value as simdjson's: taken by reference from the iterator's result (copying it out
      // with get() costs a store-forwarding stall per member).
      auto value = member.value();
      if (value.error()) return Fail(value.error());
      ondemand::value& v = value.value_unsafe();
      if (!(child < 0 ? Skip(v, depth) : Read(v, child, depth))) return false;
    }
    return true;
  }

  // The elements of an array at `node`; `depth` as for Object.
  bool Array(ondemand::array& a, int node, int depth) {
    int64_t index = 0;
    for (auto element : a) {
      if (element.error()) return Fail(element.error());
      ondemand::value& v = element.value_unsafe();
      int child = -1;
      for (int c : nodes[static_cast<size_t>(node)].children) {
        if (nodes[static_cast<size_t>(c)].index == index) {
          child = c;
          break;
        }
      }
      if (!(child < 0 ? Skip(v, depth) : Read(v, child, depth))) return false;
      ++index;
    }
    return true;
  }

  // Copies `text` into the padded buffer and sizes the parser for it.
  simdjson::error_code Load(std::string_view text) {
    const size_t need = text.size() + simdjson::SIMDJSON_PADDING;
    if (buf_capacity < need || (buf_capacity > kShrinkAbove && need <= kInitialCapacity)) {
      size_t cap = kInitialCapacity;
      while (cap < need) cap *= 2;
      buf.reset(new char[cap]);
      buf_capacity = cap;
    }
    std::memcpy(buf.get(), text.data(), text.size());
    std::memset(buf.get() + text.size(), 0, simdjson::SIMDJSON_PADDING);
    begin = buf.get();
    size = text.size();
    const size_t want = std::max(text.size(), kInitialCapacity);
    if (parser.capacity() < want ||
        (parser.capacity() > kShrinkAbove && want == kInitialCapacity)) {
      size_t cap = kInitialCapacity;
      while (cap < want) cap *= 2;
      return parser.allocate(std::min(cap, kMaxBytes));
    }
    return simdjson::SUCCESS;
  }

  // The whole document, after iterate().
  bool Document() {
    std::string_view token;
    if (auto e = doc.raw_json_token().get(token); e) return Fail(e);
    if (token.empty()) return Fail("empty document", begin);
    const char c = token[0];
    if (c == '{' || c == '[') {
      if (c == '{') {
        ondemand::object o;
        if (auto e = doc.get_object().get(o); e) return Fail(e);
        if (!Object(o, 0, 1)) return false;
      } else {
        ondemand::array a;
        if (auto e = doc.get_array().get(a); e) return Fail(e);
        if (!Array(a, 0, 1)) return false;
      }
      auto loc = doc.current_location();
      if (loc.error() == simdjson::OUT_OF_BOUNDS) return true;
      if (loc.error()) return Fail(loc.error());
      return Fail("unexpected text after the document", loc.value_unsafe());
    }
    // A scalar document: no path finds anything in it, but it must be valid JSON.
    if (token.data() + token.size() != begin + size) {
      return Fail("unexpected text after the document", token.data() + token.size());
    }
    if (c == '"') {
      std::string_view s;
      if (auto e = doc.get_string().get(s); e) return Fail(e);
      return true;
    }
    if (c == 't' || c == 'f') {
      bool b;
      if (auto e = doc.get_bool().get(b); e) return Fail(Describe(e), token.data());
      return true;
    }
    const std::string_view text = TrimRight(token);
    if (c == 'n') return text == "null" ? true : Fail("unexpected literal", token.data());
    if (IsJsonNumber(text)) return true;
    return Fail(c == '-' || (c >= '0' && c <= '9') ? "bad number" : "unexpected character",
                token.data());
  }
};

JsonFields::JsonFields(const std::vector<std::string>& paths) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.paths = paths;
  m.nodes.emplace_back();
  for (size_t i = 0; i < paths.size(); ++i) {
    int node = 0;
    std::string_view rest = paths[i];
    while (true) {
      const size_t dot = rest.find('.');
      const std::string_view seg = rest.substr(0, dot);
      int next = m.Child(node, seg);
      if (next < 0) {
        next = static_cast<int>(m.nodes.size());
        Impl::Node n;
        n.key = std::string(seg);
        n.plain = seg.find_first_of("\"\\") == std::string_view::npos;
        const std::string quoted = std::string(seg) + '"';
        for (size_t b = 0; b < quoted.size() && b < 8; ++b) {
          n.word |= uint64_t{static_cast<unsigned char>(quoted[b])} << (8 * b);
          n.mask |= uint64_t{0xff} << (8 * b);
        }
        const bool canonical = !seg.empty() && seg.size() <= 18 &&
                               seg.find_first_not_of("0123456789") == std::string_view::npos &&
                               (seg.size() == 1 || seg[0] != '0');
        if (canonical) n.index = std::stoll(std::string(seg));
        m.nodes.push_back(std::move(n));
        m.nodes[static_cast<size_t>(node)].children.push_back(next);
      }
      node = next;
      if (m.nodes[static_cast<size_t>(node)].some_path < 0) {
        m.nodes[static_cast<size_t>(node)].some_path = static_cast<int>(i);
      }
      if (dot == std::string_view::npos) break;
      rest = rest.substr(dot + 1);
    }
    m.nodes[static_cast<size_t>(node)].path = static_cast<int>(i);
  }
  // Once every node is in place (the keys point into them).
  for (Impl::Node& parent : m.nodes) {
    for (int c : parent.children) {
      const Impl::Node& n = m.nodes[static_cast<size_t>(c)];
      if (n.plain) parent.keys.push_back({n.word, n.mask, n.key.data(), n.key.size(), c});
    }
  }
  values_.resize(paths.size());
  m.values = &values_;
}

JsonFields::~JsonFields() = default;

bool JsonFields::Parse(std::string_view text, std::string* error) {
  Impl& m = *impl_;
  for (Value& v : values_) v = Value();
  error->clear();
  m.error = error;
  m.error_path = -1;
  error_path_ = -1;
  if (text.size() > kMaxBytes) {
    *error = "document too large: " + std::to_string(text.size()) + " bytes (the limit is " +
             std::to_string(kMaxBytes) + ")";
    return false;
  }
  if (++m.generation == 0) {
    for (Impl::Node& n : m.nodes) n.seen = 0;
    m.generation = 1;
  }
  bool ok = false;
  if (auto e = m.Load(text); e) {
    *error = std::string("cannot parse: ") + simdjson::error_message(e);
  } else if (auto e = m.parser.iterate(m.begin, m.size, m.buf_capacity).get(m.doc); e) {
    m.Fail(Describe(e), nullptr);
  } else {
    ok = m.Document();
  }
  error_path_ = m.error_path;
  return ok;
}

}  // namespace weir
