// The expression compiler and evaluator declared in weir/expr.h.
//
// How it works. CompileExpr lexes the whole text into tokens (a lexical error becomes an error
// token, so errors are still reported in source order), then a recursive-descent parser with one
// function per precedence level of the grammar type-checks every construct as soon as it is
// parsed and builds a tree of immutable Node objects. Nodes are specialised for their operand
// types at compile time (int64 + int64, int64 < double, string = string, ... are distinct
// classes), so evaluation does one virtual call per node and no type dispatch; sub-trees whose
// inputs are all constants are folded into a constant. Nesting depth and tree height are capped so
// neither the parser nor the evaluator can overflow the stack on hostile input.
//
// Evaluation protocol (why there are no per-record allocations): Node::EvalRef(row, scratch)
// returns a reference to the result, which is a value the node owns (constants), a field of the
// row (field references: no copy), or `scratch` after computing into it. A node passes its own
// output Value as scratch to its first operand, so string results reuse the caller's capacity;
// later operands get a Value on the stack, which allocates only if it must hold a computed string
// longer than the small-string buffer. Because a node's output may be the scratch its first
// operand wrote, every node reads its operands before writing its result.
#include "weir/expr.h"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <re2/re2.h>

#include "weir/int_math.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

constexpr int kMaxDepth = 256;    // parenthesis / function / unary nesting
constexpr int kMaxHeight = 1024;  // height of the compiled tree (bounds evaluation recursion)

// ---------------------------------------------------------------------------------------------
// Small helpers.

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsIdentStart(char c) {
  return IsAlpha(c) || c == '_';
}
bool IsIdentChar(char c) {
  return IsIdentStart(c) || IsDigit(c);
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}
char AsciiUpper(char c) {
  return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
}

std::string Lowered(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}


// Wrapping int64 arithmetic (through uint64, which is defined to wrap).
int64_t WrapAdd(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) + static_cast<uint64_t>(b));
}
int64_t WrapSub(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) - static_cast<uint64_t>(b));
}
int64_t WrapMul(int64_t a, int64_t b) {
  return static_cast<int64_t>(static_cast<uint64_t>(a) * static_cast<uint64_t>(b));
}

// Number of UTF-8 code points (bytes that are not continuation bytes).
int64_t Utf8Length(std::string_view s) {
  int64_t n = 0;
  for (char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// Byte offset of the code point that follows the first `k` code points (clamped to s.size()).
size_t Utf8Offset(std::string_view s, int64_t k) {
  if (k <= 0) return 0;
  int64_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<uint8_t>(s[i]) & 0xC0) != 0x80) {
      if (seen == k) return i;
      ++seen;
    }
  }
  return s.size();
}

// ---------------------------------------------------------------------------------------------
// String forms (concat and string()).

void AppendInt(std::string* out, int64_t v) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, ptr);
}

// Shortest round-trip form, with ".0" added to integral values so they read as doubles.
void AppendDouble(std::string* out, double d) {
  char buf[40];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
  std::string_view text(buf, ptr - buf);
  out->append(text);
  if (text.find_first_of(".en") == std::string_view::npos) out->append(".0");
}

// Appends the string form of a non-null value. Reads only the scalar member of `v` for
// non-string types, so `out` may be v's own string.
void AppendStringForm(const Value& v, std::string* out) {
  switch (v.type) {
    case Type::kNull:
      out->append("null");
      break;
    case Type::kBool:
      out->append(v.b ? "true" : "false");
      break;
    case Type::kInt64:
      AppendInt(out, v.i);
      break;
    case Type::kDouble:
      AppendDouble(out, v.d);
      break;
    case Type::kString:
    case Type::kBytes:
      out->append(v.s);
      break;
    case Type::kTimestamp:
      AppendTimestamp(v.i, out);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Stable hashing: FNV-1a over a canonical, platform-independent encoding of each value (a type
// tag, then little-endian scalars or a length-prefixed string), finished with a 64-bit mixer.

class StableHasher {
 public:
  void Add(const Value& v) {
    Byte(static_cast<uint8_t>(v.type));
    switch (v.type) {
      case Type::kNull:
        break;
      case Type::kBool:
        Byte(v.b ? 1 : 0);
        break;
      case Type::kInt64:
      case Type::kTimestamp:
        Word(static_cast<uint64_t>(v.i));
        break;
      case Type::kDouble: {
        double d = v.d;
        uint64_t bits = std::bit_cast<uint64_t>(d);
        if (d == 0) bits = 0;                          // -0.0 hashes like 0.0
        if (std::isnan(d)) bits = 0x7ff8000000000000;  // one NaN
        Word(bits);
        break;
      }
      case Type::kString:
      case Type::kBytes:
        Word(v.s.size());
        for (char c : v.s) Byte(static_cast<uint8_t>(c));
        break;
    }
  }
  int64_t Finish() const {
    uint64_t x = h_;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return static_cast<int64_t>(x);
  }

 private:
  void Byte(uint8_t b) {
    h_ ^= b;
    h_ *= 0x100000001b3ULL;
  }
  void Word(uint64_t w) {
    for (int i = 0; i < 8; ++i) Byte(static_cast<uint8_t>(w >> (8 * i)));
  }
  uint64_t h_ = 0xcbf29ce484222325ULL;
};

// ---------------------------------------------------------------------------------------------
// Nodes.

class Node : public Expr {
 public:
  Node(Type type, int height) : type_(type), height_(height) {}
  Type type() const final { return type_; }
  int height() const { return height_; }
  // The value of a constant node, else nullptr.
  virtual const Value* ConstValue() const { return nullptr; }
  bool IsConst() const { return ConstValue() != nullptr; }
  // Evaluates and returns the result: `scratch` after computing into it, or a value owned by the
  // row or this node. `scratch` must not be a field of `row`.
  virtual const Value& EvalRef(const Row& row, Value& scratch) const = 0;

 protected:
  const Type type_;
  const int height_;
};

using NodePtr = std::unique_ptr<Node>;

int HeightOf(std::initializer_list<const Node*> kids) {
  int h = 0;
  for (const Node* k : kids) h = std::max(h, k->height());
  return h + 1;
}

int HeightOf(const std::vector<NodePtr>& kids) {
  int h = 0;
  for (const NodePtr& k : kids) h = std::max(h, k->height());
  return h + 1;
}

// Nodes that always compute into their output implement Compute(row, out) and derive from this,
// which gives both entry points with a single virtual call.
template <typename Derived>
class ComputedNode : public Node {
 public:
  using Node::Node;
  void Eval(const Row& row, Value& out) const final {
    static_cast<const Derived*>(this)->Compute(row, out);
  }
  const Value& EvalRef(const Row& row, Value& scratch) const final {
    static_cast<const Derived*>(this)->Compute(row, scratch);
    return scratch;
  }
};

class Const final : public Node {
 public:
  Const(Type type, Value v) : Node(type, 1), value_(std::move(v)) {}
  const Value* ConstValue() const override { return &value_; }
  void Eval(const Row&, Value& out) const override { out.CopyFrom(value_); }
  const Value& EvalRef(const Row&, Value&) const override { return value_; }

 private:
  const Value value_;
};

NodePtr NullConst(Type type) {
  return std::make_unique<Const>(type, Value());
}

// Replaces a node whose inputs are all constants by its value.
NodePtr Fold(NodePtr n) {
  if (n->IsConst()) return n;
  Row empty;
  Value v;
  n->Eval(empty, v);
  return std::make_unique<Const>(n->type(), std::move(v));
}

class FieldRef final : public Node {
 public:
  FieldRef(Type type, size_t index) : Node(type, 1), index_(index) {}
  void Eval(const Row& row, Value& out) const override { out.CopyFrom(row[index_]); }
  const Value& EvalRef(const Row& row, Value&) const override { return row[index_]; }

 private:
  const size_t index_;
};

// --- Arithmetic.

struct AddOp {
  static bool Int(int64_t a, int64_t b, int64_t* r) { return *r = WrapAdd(a, b), true; }
  static bool Dbl(double a, double b, double* r) { return *r = a + b, true; }
};
struct SubOp {
  static bool Int(int64_t a, int64_t b, int64_t* r) { return *r = WrapSub(a, b), true; }
  static bool Dbl(double a, double b, double* r) { return *r = a - b, true; }
};
struct MulOp {
  static bool Int(int64_t a, int64_t b, int64_t* r) { return *r = WrapMul(a, b), true; }
  static bool Dbl(double a, double b, double* r) { return *r = a * b, true; }
};
struct DivOp {
  static bool Int(int64_t a, int64_t b, int64_t* r) {
    if (b == 0 || (b == -1 && a == std::numeric_limits<int64_t>::min())) return false;
    *r = a / b;
    return true;
  }
  static bool Dbl(double a, double b, double* r) {
    if (b == 0) return false;
    *r = a / b;
    return true;
  }
};
struct ModOp {
  static bool Int(int64_t a, int64_t b, int64_t* r) {
    if (b == 0) return false;
    *r = b == -1 ? 0 : a % b;
    return true;
  }
  static bool Dbl(double a, double b, double* r) {
    if (b == 0) return false;
    *r = std::fmod(a, b);
    return true;
  }
};

// Binary nodes: the left operand is evaluated into the output (as scratch), the right one into a
// stack Value.
class BinaryNode {
 protected:
  BinaryNode(NodePtr l, NodePtr r)
      : l_(std::move(l)), r_(std::move(r)), rconst_(r_->ConstValue()) {}
  // Evaluates the right operand; a constant (as in `x > 10`) is read without a call.
  const Value& Right(const Row& row, Value& scratch) const {
    return rconst_ ? *rconst_ : r_->EvalRef(row, scratch);
  }
  const NodePtr l_, r_;
  const Value* const rconst_;  // r_'s value if r_ is a constant
};

// int64/timestamp operands, int64/timestamp result (type_).
template <typename Op>
class IntArith final : public ComputedNode<IntArith<Op>>, BinaryNode {
 public:
  IntArith(Type t, NodePtr l, NodePtr r)
      : ComputedNode<IntArith<Op>>(t, HeightOf({l.get(), r.get()})),
        BinaryNode(std::move(l), std::move(r)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = l_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    int64_t x = a.i;
    Value scratch;
    const Value& b = Right(row, scratch);
    int64_t res;
    if (b.is_null() || !Op::Int(x, b.i, &res)) return out.SetNull();
    out.type = this->type_;
    out.i = res;
  }
};

// Numeric operands (int64 where kLeftInt / kRightInt), double result.
template <typename Op, bool kLeftInt, bool kRightInt>
class DoubleArith final : public ComputedNode<DoubleArith<Op, kLeftInt, kRightInt>>, BinaryNode {
 public:
  DoubleArith(NodePtr l, NodePtr r)
      : ComputedNode<DoubleArith>(Type::kDouble, HeightOf({l.get(), r.get()})),
        BinaryNode(std::move(l), std::move(r)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = l_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    double x = kLeftInt ? static_cast<double>(a.i) : a.d;
    Value scratch;
    const Value& b = Right(row, scratch);
    if (b.is_null()) return out.SetNull();
    double y = kRightInt ? static_cast<double>(b.i) : b.d;
    double res;
    if (!Op::Dbl(x, y, &res)) return out.SetNull();
    out.SetDouble(res);
  }
};

// string + string, bytes + bytes.
class Concat2 final : public ComputedNode<Concat2>, BinaryNode {
 public:
  Concat2(Type t, NodePtr l, NodePtr r)
      : ComputedNode(t, HeightOf({l.get(), r.get()})), BinaryNode(std::move(l), std::move(r)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = l_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    if (&a != &out) out.s.assign(a.s);
    Value scratch;
    const Value& b = Right(row, scratch);
    if (b.is_null()) return out.SetNull();
    out.s.append(b.s);
    out.type = type_;
  }
};

// --- Comparison. A comparer returns <0, 0, >0, or kUnordered (NaN involved).

constexpr int kUnordered = 2;

enum class CmpOp { kEq, kNe, kLt, kLe, kGt, kGe };

template <CmpOp kOp>
bool CmpHolds(int c) {
  switch (kOp) {
    case CmpOp::kEq:
      return c == 0;
    case CmpOp::kNe:
      return c != 0;
    case CmpOp::kLt:
      return c == -1;
    case CmpOp::kLe:
      return c == -1 || c == 0;
    case CmpOp::kGt:
      return c == 1;
    case CmpOp::kGe:
      return c == 0 || c == 1;
  }
  return false;
}

int CompareDoubles(double a, double b) {
  if (a < b) return -1;
  if (a > b) return 1;
  if (a == b) return 0;
  return kUnordered;
}

// Exact comparison of an int64 with a double (no rounding of large integers).
int CompareIntDouble(int64_t i, double d) {
  if (std::isnan(d)) return kUnordered;
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double t = std::trunc(d);
  int64_t ti = static_cast<int64_t>(t);
  if (i != ti) return i < ti ? -1 : 1;
  double frac = d - t;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

struct IntCmp {  // int64/int64, timestamp/timestamp
  static int Cmp(const Value& a, const Value& b) { return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0); }
};
struct DoubleCmp {
  static int Cmp(const Value& a, const Value& b) { return CompareDoubles(a.d, b.d); }
};
struct IntDoubleCmp {
  static int Cmp(const Value& a, const Value& b) { return CompareIntDouble(a.i, b.d); }
};
struct DoubleIntCmp {
  static int Cmp(const Value& a, const Value& b) {
    int c = CompareIntDouble(b.i, a.d);
    return c == kUnordered ? c : -c;
  }
};
struct StringCmp {  // lexicographic by unsigned bytes
  static int Cmp(const Value& a, const Value& b) {
    int c = a.s.compare(b.s);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
  }
};
struct BoolCmp {
  static int Cmp(const Value& a, const Value& b) { return a.b == b.b ? 0 : (a.b ? 1 : -1); }
};

template <typename K, CmpOp kOp>
class Compare final : public ComputedNode<Compare<K, kOp>>, BinaryNode {
 public:
  Compare(NodePtr l, NodePtr r)
      : ComputedNode<Compare>(Type::kBool, HeightOf({l.get(), r.get()})),
        BinaryNode(std::move(l), std::move(r)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = l_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    Value scratch;
    const Value& b = Right(row, scratch);
    if (b.is_null()) return out.SetNull();
    out.SetBool(CmpHolds<kOp>(K::Cmp(a, b)));
  }
};

template <typename K>
NodePtr MakeCompare(CmpOp op, NodePtr l, NodePtr r) {
  switch (op) {
    case CmpOp::kEq:
      return std::make_unique<Compare<K, CmpOp::kEq>>(std::move(l), std::move(r));
    case CmpOp::kNe:
      return std::make_unique<Compare<K, CmpOp::kNe>>(std::move(l), std::move(r));
    case CmpOp::kLt:
      return std::make_unique<Compare<K, CmpOp::kLt>>(std::move(l), std::move(r));
    case CmpOp::kLe:
      return std::make_unique<Compare<K, CmpOp::kLe>>(std::move(l), std::move(r));
    case CmpOp::kGt:
      return std::make_unique<Compare<K, CmpOp::kGt>>(std::move(l), std::move(r));
    case CmpOp::kGe:
      return std::make_unique<Compare<K, CmpOp::kGe>>(std::move(l), std::move(r));
  }
  return nullptr;
}

// --- Logic (three-valued). `and`/`or` chains are flattened into one n-ary node.

template <bool kIsOr>
class Logic final : public ComputedNode<Logic<kIsOr>> {
 public:
  explicit Logic(std::vector<NodePtr> kids)
      : ComputedNode<Logic>(Type::kBool, HeightOf(kids)), kids_(std::move(kids)) {}
  void Compute(const Row& row, Value& out) const {
    // `or`: any true -> true; `and`: any false -> false. Otherwise null if any null.
    bool saw_null = false;
    for (const NodePtr& k : kids_) {
      const Value& v = k->EvalRef(row, out);
      if (v.is_null()) {
        saw_null = true;
      } else if (v.b == kIsOr) {
        return out.SetBool(kIsOr);
      }
    }
    if (saw_null) return out.SetNull();
    out.SetBool(!kIsOr);
  }

 private:
  const std::vector<NodePtr> kids_;
};

// --- Strict one-argument functions: null in, null out. F::Apply(in, out) must read `in` before
// writing `out`, since `in` may be `out`.

template <typename F>
class UnaryFn final : public ComputedNode<UnaryFn<F>> {
 public:
  UnaryFn(Type t, NodePtr arg)
      : ComputedNode<UnaryFn>(t, HeightOf({arg.get()})), arg_(std::move(arg)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = arg_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    F::Apply(a, out);
  }

 private:
  const NodePtr arg_;
};

template <typename F>
NodePtr MakeUnary(Type t, NodePtr arg) {
  return std::make_unique<UnaryFn<F>>(t, std::move(arg));
}

struct NegIntF {
  static void Apply(const Value& a, Value& out) { out.SetInt64(WrapSub(0, a.i)); }
};
struct NegDoubleF {
  static void Apply(const Value& a, Value& out) { out.SetDouble(-a.d); }
};
struct NotF {
  static void Apply(const Value& a, Value& out) { out.SetBool(!a.b); }
};
struct AbsIntF {
  static void Apply(const Value& a, Value& out) { out.SetInt64(a.i < 0 ? WrapSub(0, a.i) : a.i); }
};
struct AbsDoubleF {
  static void Apply(const Value& a, Value& out) { out.SetDouble(std::fabs(a.d)); }
};
struct LowerF {
  static void Apply(const Value& a, Value& out) {
    if (&a != &out) out.s.assign(a.s);
    for (char& c : out.s) c = AsciiLower(c);
    out.type = Type::kString;
  }
};
struct UpperF {
  static void Apply(const Value& a, Value& out) {
    if (&a != &out) out.s.assign(a.s);
    for (char& c : out.s) c = AsciiUpper(c);
    out.type = Type::kString;
  }
};
struct TrimF {
  static void Apply(const Value& a, Value& out) {
    std::string_view t = TrimSpace(a.s);
    size_t begin = t.data() - a.s.data();
    if (&a == &out) {
      out.s.erase(begin + t.size());
      out.s.erase(0, begin);
    } else {
      out.s.assign(t);
    }
    out.type = Type::kString;
  }
};
struct LengthStringF {
  static void Apply(const Value& a, Value& out) { out.SetInt64(Utf8Length(a.s)); }
};
struct LengthBytesF {
  static void Apply(const Value& a, Value& out) { out.SetInt64(static_cast<int64_t>(a.s.size())); }
};

struct ToStringF {
  static void Apply(const Value& a, Value& out) {
    if (a.type == Type::kString || a.type == Type::kBytes) {
      if (&a != &out) out.s.assign(a.s);
    } else {
      Value scalar;  // holds no string: copying it cannot allocate
      scalar.CopyFrom(a);
      out.s.clear();
      AppendStringForm(scalar, &out.s);
    }
    out.type = Type::kString;
  }
};
// The casts to int64, double, bool and timestamp: one switch over the source type, the target
// deciding the rest. Null when the value has no form in the target type: bytes, a bool as a
// timestamp, a timestamp as a bool, a double out of int64's range, text that does not parse
// (with the rules of weir/text_formats.h). `a` and `out` may be the same value.
template <Type To>
struct CastF {
  static void Apply(const Value& a, Value& out) {
    switch (a.type) {
      case Type::kBool:
        if (To == Type::kTimestamp) return out.SetNull();
        return FromInt(a.b ? 1 : 0, out);
      case Type::kInt64:
        return FromInt(a.i, out);
      case Type::kTimestamp:
        if (To == Type::kBool) return out.SetNull();
        return FromInt(a.i, out);
      case Type::kDouble:
        return FromDouble(a.d, out);
      case Type::kString:
        return FromString(a.s, out);
      default:
        return out.SetNull();
    }
  }
  static void FromInt(int64_t i, Value& out) {
    if constexpr (To == Type::kInt64) {
      out.SetInt64(i);
    } else if constexpr (To == Type::kDouble) {
      out.SetDouble(static_cast<double>(i));
    } else if constexpr (To == Type::kBool) {
      out.SetBool(i != 0);
    } else {
      out.SetTimestamp(i);
    }
  }
  static void FromDouble(double d, Value& out) {
    if constexpr (To == Type::kDouble) {
      out.SetDouble(d);
    } else if constexpr (To == Type::kBool) {
      out.SetBool(d != 0);
    } else {
      int64_t i = 0;
      if (!DoubleToInt64(d, &i)) return out.SetNull();
      FromInt(i, out);
    }
  }
  static void FromString(const std::string& s, Value& out) {
    if constexpr (To == Type::kDouble) {
      double v = 0;
      if (!TryParseDouble(s, &v).ok()) return out.SetNull();
      out.SetDouble(v);
    } else if constexpr (To == Type::kBool) {
      bool v = false;
      if (!TryParseBool(s, &v).ok()) return out.SetNull();
      out.SetBool(v);
    } else {
      int64_t v = 0;
      const bool ok = To == Type::kInt64 ? TryParseInt64(s, &v).ok()
                                         : TryParseIsoTimestamp(s, &v).ok();
      if (!ok) return out.SetNull();
      FromInt(v, out);
    }
  }
};
using ToInt64F = CastF<Type::kInt64>;
using ToDoubleF = CastF<Type::kDouble>;
using ToBoolF = CastF<Type::kBool>;
using ToTimestampF = CastF<Type::kTimestamp>;
struct EpochMillisF {
  static void Apply(const Value& a, Value& out) { out.SetInt64(a.i); }
};

enum class TimePart { kYear, kMonth, kDay, kHour, kMinute, kSecond };

template <TimePart kPart>
struct TimePartF {
  static void Apply(const Value& a, Value& out) {
    int64_t ms = a.i;
    int64_t ms_of_day = FloorMod(ms, kMsPerDay);
    switch (kPart) {
      case TimePart::kYear:
        return out.SetInt64(CivilFromDays(FloorDiv(ms, kMsPerDay)).year);
      case TimePart::kMonth:
        return out.SetInt64(CivilFromDays(FloorDiv(ms, kMsPerDay)).month);
      case TimePart::kDay:
        return out.SetInt64(CivilFromDays(FloorDiv(ms, kMsPerDay)).day);
      case TimePart::kHour:
        return out.SetInt64(ms_of_day / 3600000);
      case TimePart::kMinute:
        return out.SetInt64(ms_of_day / 60000 % 60);
      case TimePart::kSecond:
        return out.SetInt64(ms_of_day / 1000 % 60);
    }
  }
};

// --- Other functions.

// substr(s, start[, len]) with SQL semantics: 1-based positions; the result holds the characters
// at positions [start, start + len) that exist. Code points for strings, bytes for bytes.
class Substr final : public ComputedNode<Substr> {
 public:
  Substr(Type t, NodePtr s, NodePtr start, NodePtr len)
      : ComputedNode(t, len ? HeightOf({s.get(), start.get(), len.get()})
                            : HeightOf({s.get(), start.get()})),
        s_(std::move(s)),
        start_(std::move(start)),
        len_(std::move(len)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& a = s_->EvalRef(row, out);
    if (a.is_null()) return out.SetNull();
    Value scratch;
    const Value& sv = start_->EvalRef(row, scratch);
    if (sv.is_null()) return out.SetNull();
    int64_t first = sv.i;
    int64_t end = std::numeric_limits<int64_t>::max();  // exclusive
    if (len_) {
      const Value& lv = len_->EvalRef(row, scratch);
      if (lv.is_null() || lv.i < 0) return out.SetNull();
      end = first > end - lv.i ? end : first + lv.i;
    }
    first = std::max<int64_t>(first, 1);
    size_t b = 0, e = 0;
    if (end > first) {
      if (type_ == Type::kString) {
        b = Utf8Offset(a.s, first - 1);
        e = Utf8Offset(a.s, end - 1);
      } else {
        auto size = static_cast<int64_t>(a.s.size());
        b = static_cast<size_t>(std::min(first - 1, size));
        e = static_cast<size_t>(std::min(end - 1, size));
      }
    }
    if (&a == &out) {
      out.s.erase(e);
      out.s.erase(0, b);
    } else {
      out.s.assign(a.s, b, e - b);
    }
    out.type = type_;
  }

 private:
  const NodePtr s_, start_, len_;  // len_ may be null
};

// concat(a, ...): string forms joined; null if any argument is null.
class ConcatN final : public ComputedNode<ConcatN> {
 public:
  explicit ConcatN(std::vector<NodePtr> kids)
      : ComputedNode(Type::kString, HeightOf(kids)), kids_(std::move(kids)) {}
  void Compute(const Row& row, Value& out) const {
    out.s.clear();
    Value scratch;
    for (const NodePtr& k : kids_) {
      const Value& v = k->EvalRef(row, scratch);
      if (v.is_null()) return out.SetNull();
      AppendStringForm(v, &out.s);
    }
    out.type = Type::kString;
  }

 private:
  const std::vector<NodePtr> kids_;
};

class Hash final : public ComputedNode<Hash> {
 public:
  explicit Hash(std::vector<NodePtr> kids)
      : ComputedNode(Type::kInt64, HeightOf(kids)), kids_(std::move(kids)) {}
  void Compute(const Row& row, Value& out) const {
    StableHasher h;
    Value scratch;
    for (const NodePtr& k : kids_) h.Add(k->EvalRef(row, scratch));
    out.SetInt64(h.Finish());
  }

 private:
  const std::vector<NodePtr> kids_;
};

class IsNull final : public ComputedNode<IsNull> {
 public:
  explicit IsNull(NodePtr arg)
      : ComputedNode(Type::kBool, HeightOf({arg.get()})), arg_(std::move(arg)) {}
  void Compute(const Row& row, Value& out) const {
    bool n = arg_->EvalRef(row, out).is_null();
    out.SetBool(n);
  }

 private:
  const NodePtr arg_;
};

class DateFormat final : public ComputedNode<DateFormat> {
 public:
  DateFormat(NodePtr ts, NodePtr fmt)
      : ComputedNode(Type::kString, HeightOf({ts.get(), fmt.get()})),
        ts_(std::move(ts)),
        fmt_(std::move(fmt)) {}
  void Compute(const Row& row, Value& out) const {
    Value scratch;
    const Value& t = ts_->EvalRef(row, scratch);
    if (t.is_null()) return out.SetNull();
    int64_t ms = t.i;
    const Value& f = fmt_->EvalRef(row, scratch);
    if (f.is_null()) return out.SetNull();
    out.s.clear();
    if (!FormatTime(ms, f.s, &out.s).ok()) return out.SetNull();
    out.type = Type::kString;
  }

 private:
  const NodePtr ts_, fmt_;
};

class ParseTimestamp final : public ComputedNode<ParseTimestamp> {
 public:
  ParseTimestamp(NodePtr s, NodePtr fmt)
      : ComputedNode(Type::kTimestamp, HeightOf({s.get(), fmt.get()})),
        s_(std::move(s)),
        fmt_(std::move(fmt)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& s = s_->EvalRef(row, out);
    if (s.is_null()) return out.SetNull();
    Value scratch;
    const Value& f = fmt_->EvalRef(row, scratch);
    int64_t ms;
    if (f.is_null() || !TryParseTime(s.s, f.s, &ms).ok()) return out.SetNull();
    out.SetTimestamp(ms);
  }

 private:
  const NodePtr s_, fmt_;
};

// coalesce and if return their chosen operand's reference without copying it.
class Coalesce final : public Node {
 public:
  Coalesce(Type t, std::vector<NodePtr> kids) : Node(t, HeightOf(kids)), kids_(std::move(kids)) {}
  void Eval(const Row& row, Value& out) const override {
    const Value& v = EvalRef(row, out);
    if (&v != &out) out.CopyFrom(v);
  }
  const Value& EvalRef(const Row& row, Value& scratch) const override {
    for (const NodePtr& k : kids_) {
      const Value& v = k->EvalRef(row, scratch);
      if (!v.is_null()) return v;
    }
    scratch.SetNull();
    return scratch;
  }

 private:
  const std::vector<NodePtr> kids_;
};

class If final : public Node {
 public:
  If(Type t, NodePtr cond, NodePtr then, NodePtr otherwise)
      : Node(t, HeightOf({cond.get(), then.get(), otherwise.get()})),
        cond_(std::move(cond)),
        then_(std::move(then)),
        else_(std::move(otherwise)) {}
  void Eval(const Row& row, Value& out) const override {
    const Value& v = EvalRef(row, out);
    if (&v != &out) out.CopyFrom(v);
  }
  const Value& EvalRef(const Row& row, Value& scratch) const override {
    const Value& c = cond_->EvalRef(row, scratch);
    bool take_then = !c.is_null() && c.b;  // null counts as false, as in SQL's CASE WHEN
    return (take_then ? then_ : else_)->EvalRef(row, scratch);
  }

 private:
  const NodePtr cond_, then_, else_;
};

// regexp_extract(s, pattern[, group]): the group of the first (leftmost) match, RE2 syntax. The
// pattern is a constant compiled once; `group` is checked at compile time when constant.
constexpr int kMaxRegexpGroup = 32;

class RegexpExtract final : public ComputedNode<RegexpExtract> {
 public:
  RegexpExtract(std::unique_ptr<RE2> re, NodePtr s, NodePtr group)
      : ComputedNode(Type::kString, HeightOf({s.get(), group.get()})),
        re_(std::move(re)),
        s_(std::move(s)),
        group_(std::move(group)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& s = s_->EvalRef(row, out);
    if (s.is_null()) return out.SetNull();
    Value scratch;
    const Value& g = group_->EvalRef(row, scratch);
    if (g.is_null() || g.i < 0 || g.i > std::min(kMaxRegexpGroup, re_->NumberOfCapturingGroups())) {
      return out.SetNull();
    }
    const int n = static_cast<int>(g.i) + 1;
    re2::StringPiece groups[kMaxRegexpGroup + 1];
    if (!re_->Match(s.s, 0, s.s.size(), RE2::UNANCHORED, groups, n) ||
        groups[n - 1].data() == nullptr) {
      return out.SetNull();
    }
    const re2::StringPiece m = groups[n - 1];
    if (&s == &out) {
      const size_t off = static_cast<size_t>(m.data() - out.s.data());
      out.s.erase(off + m.size());
      out.s.erase(0, off);
    } else {
      out.s.assign(m.data(), m.size());
    }
    out.type = Type::kString;
  }

 private:
  const std::unique_ptr<RE2> re_;
  const NodePtr s_, group_;
};

// split_index(s, delim, n): the n-th (0-based) piece of s split at every delim.
class SplitIndex final : public ComputedNode<SplitIndex> {
 public:
  SplitIndex(NodePtr s, NodePtr delim, NodePtr n)
      : ComputedNode(Type::kString, HeightOf({s.get(), delim.get(), n.get()})),
        s_(std::move(s)),
        delim_(std::move(delim)),
        n_(std::move(n)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& s = s_->EvalRef(row, out);
    if (s.is_null()) return out.SetNull();
    Value d_scratch, n_scratch;
    const Value& d = delim_->EvalRef(row, d_scratch);
    const Value& nv = n_->EvalRef(row, n_scratch);
    if (d.is_null() || nv.is_null() || nv.i < 0) return out.SetNull();
    const std::string_view text = s.s;
    size_t begin = 0, end = text.size();
    if (!d.s.empty()) {
      for (int64_t k = 0;; ++k) {
        size_t hit = text.find(d.s, begin);
        end = hit == std::string_view::npos ? text.size() : hit;
        if (k == nv.i) break;
        if (hit == std::string_view::npos) return out.SetNull();
        begin = hit + d.s.size();
      }
    } else if (nv.i > 0) {
      return out.SetNull();
    }
    if (&s == &out) {
      out.s.erase(end);
      out.s.erase(0, begin);
    } else {
      out.s.assign(text.data() + begin, end - begin);
    }
    out.type = Type::kString;
  }

 private:
  const NodePtr s_, delim_, n_;
};

// count_char(s, c): how many bytes of s equal the one byte of c.
class CountChar final : public ComputedNode<CountChar> {
 public:
  CountChar(NodePtr s, NodePtr c)
      : ComputedNode(Type::kInt64, HeightOf({s.get(), c.get()})), s_(std::move(s)), c_(std::move(c)) {}
  void Compute(const Row& row, Value& out) const {
    const Value& s = s_->EvalRef(row, out);
    if (s.is_null()) return out.SetNull();
    Value scratch;
    const Value& c = c_->EvalRef(row, scratch);
    if (c.is_null() || c.s.size() != 1) return out.SetNull();
    out.SetInt64(static_cast<int64_t>(std::count(s.s.begin(), s.s.end(), c.s[0])));
  }

 private:
  const NodePtr s_, c_;
};

// ---------------------------------------------------------------------------------------------
// Lexer.

enum class Tok : uint8_t {
  kEnd,
  kError,  // a lexical error; `value` holds the message
  kInt,
  kDecimal,
  kString,       // `value` holds the decoded text
  kIdent,        // also keywords
  kQuotedIdent,  // `value` holds the decoded name
  kLParen,
  kRParen,
  kComma,
  kPlus,
  kMinus,
  kStar,
  kSlash,
  kPercent,
  kEq,
  kNe,
  kLt,
  kLe,
  kGt,
  kGe,
  kBang,
  kAndAnd,
  kOrOr,
};

struct Token {
  Tok kind;
  size_t col;             // 1-based
  std::string_view text;  // as written
  std::string value;
};

std::string ColText(size_t col) {
  return "at column " + std::to_string(col);
}

// Quotes source text for a message, shortened if long.
std::string Quoted(std::string_view text) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kMax; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > kMax) out += "...";
  return out + "'";
}

// One function on purpose: a lexer reads best as one loop over one switch of token shapes.
std::vector<Token> Lex(std::string_view src) {
  std::vector<Token> toks;
  size_t pos = 0;
  const size_t n = src.size();
  auto push = [&](Tok kind, size_t start, size_t end) {
    toks.push_back(Token{kind, start + 1, src.substr(start, end - start), {}});
  };
  auto error = [&](size_t start, std::string message) {
    toks.push_back(Token{Tok::kError, start + 1, src.substr(start, 1), std::move(message)});
  };
  while (pos < n) {
    char c = src[pos];
    if (IsSpace(c)) {
      ++pos;
      continue;
    }
    size_t start = pos;
    if (IsDigit(c) || (c == '.' && pos + 1 < n && IsDigit(src[pos + 1]))) {
      bool decimal = false;
      bool ok = true;
      while (pos < n && IsDigit(src[pos])) ++pos;
      if (pos < n && src[pos] == '.') {
        ++pos;
        decimal = true;
        if (pos < n && IsDigit(src[pos])) {
          while (pos < n && IsDigit(src[pos])) ++pos;
        } else {
          ok = false;
        }
      }
      if (ok && pos < n && (src[pos] == 'e' || src[pos] == 'E')) {
        ++pos;
        decimal = true;
        if (pos < n && (src[pos] == '+' || src[pos] == '-')) ++pos;
        if (pos < n && IsDigit(src[pos])) {
          while (pos < n && IsDigit(src[pos])) ++pos;
        } else {
          ok = false;
        }
      }
      if (!ok || (pos < n && (IsIdentChar(src[pos]) || src[pos] == '.'))) {
        while (pos < n && (IsIdentChar(src[pos]) || src[pos] == '.')) ++pos;
        error(start, "malformed number " + Quoted(src.substr(start, pos - start)) + " " +
                         ColText(start + 1));
        return toks;
      }
      push(decimal ? Tok::kDecimal : Tok::kInt, start, pos);
      continue;
    }
    if (IsIdentStart(c)) {
      while (pos < n && IsIdentChar(src[pos])) ++pos;
      if (pos < n && static_cast<unsigned char>(src[pos]) >= 0x80) {
        error(pos, "unexpected character " + Quoted(src.substr(pos, 1)) + " " + ColText(pos + 1) +
                       " (quote field names with other characters in backquotes)");
        return toks;
      }
      push(Tok::kIdent, start, pos);
      continue;
    }
    if (c == '\'' || c == '`') {
      // 'string' or `identifier`; the quote character is escaped by doubling it.
      std::string value;
      ++pos;
      bool closed = false;
      while (pos < n) {
        if (src[pos] == c) {
          if (pos + 1 < n && src[pos + 1] == c) {
            value += c;
            pos += 2;
            continue;
          }
          ++pos;
          closed = true;
          break;
        }
        value += src[pos++];
      }
      const char* what = c == '\'' ? "string literal" : "quoted identifier";
      if (!closed) {
        error(start, std::string("unterminated ") + what + " starting " + ColText(start + 1) +
                         " (missing closing " + c + ")");
        return toks;
      }
      if (c == '`' && value.empty()) {
        error(start, "empty quoted identifier " + ColText(start + 1));
        return toks;
      }
      push(c == '\'' ? Tok::kString : Tok::kQuotedIdent, start, pos);
      toks.back().value = std::move(value);
      continue;
    }
    auto next_is = [&](char d) { return pos + 1 < n && src[pos + 1] == d; };
    Tok kind;
    size_t len = 1;
    switch (c) {
      case '(':
        kind = Tok::kLParen;
        break;
      case ')':
        kind = Tok::kRParen;
        break;
      case ',':
        kind = Tok::kComma;
        break;
      case '+':
        kind = Tok::kPlus;
        break;
      case '-':
        kind = Tok::kMinus;
        break;
      case '*':
        kind = Tok::kStar;
        break;
      case '/':
        kind = Tok::kSlash;
        break;
      case '%':
        kind = Tok::kPercent;
        break;
      case '=':
        kind = Tok::kEq;
        if (next_is('=')) len = 2;
        break;
      case '!':
        kind = next_is('=') ? Tok::kNe : Tok::kBang;
        if (next_is('=')) len = 2;
        break;
      case '<':
        kind = Tok::kLt;
        if (next_is('='))
          kind = Tok::kLe, len = 2;
        else if (next_is('>'))
          kind = Tok::kNe, len = 2;
        break;
      case '>':
        kind = Tok::kGt;
        if (next_is('=')) kind = Tok::kGe, len = 2;
        break;
      case '&':
      case '|':
        if (next_is(c)) {
          kind = c == '&' ? Tok::kAndAnd : Tok::kOrOr;
          len = 2;
          break;
        }
        error(start, std::string("unexpected character '") + c + "' " + ColText(start + 1) +
                         " (use '" + c + c + "' or '" + (c == '&' ? "and" : "or") + "')");
        return toks;
      case '"':
        error(start, "unexpected character '\"' " + ColText(start + 1) +
                         ": string literals use single quotes ('text') and field names with "
                         "special characters use backquotes (`name`)");
        return toks;
      default:
        error(start, "unexpected character " + Quoted(src.substr(start, 1)) + " " +
                         ColText(start + 1) +
                         (static_cast<unsigned char>(c) >= 0x80
                              ? " (quote field names with other characters in backquotes)"
                              : ""));
        return toks;
    }
    pos += len;
    push(kind, start, pos);
  }
  toks.push_back(Token{Tok::kEnd, n + 1, {}, {}});
  return toks;
}

// ---------------------------------------------------------------------------------------------
// Parser and type checker.

bool IsNumeric(Type t) {
  return t == Type::kInt64 || t == Type::kDouble;
}

// "<what> at column N<detail>".
Status ErrorAt(size_t col, const std::string& what, const std::string& detail = "") {
  return Status::InvalidArgument(what + " " + ColText(col) + detail);
}

struct Arg {
  NodePtr node;
  size_t col;
};

struct Call {
  std::string name;  // lower case
  size_t col;
  std::vector<Arg> args;

  Type type(size_t i) const { return args[i].node->type(); }
  bool AnyNullArg() const {
    for (const Arg& a : args) {
      if (a.node->type() == Type::kNull) return true;
    }
    return false;
  }
  std::vector<NodePtr> TakeArgs() {
    std::vector<NodePtr> out;
    for (Arg& a : args) out.push_back(std::move(a.node));
    return out;
  }
};

std::string TypeList(std::initializer_list<Type> types) {
  std::string out;
  size_t i = 0;
  for (Type t : types) {
    if (i > 0) out += (i + 1 == types.size()) ? " or " : ", ";
    out += TypeName(t);
    ++i;
  }
  return out;
}

// Argument i must have one of `allowed` types (or be the null literal).
Status CheckArg(const Call& c, size_t i, std::initializer_list<Type> allowed) {
  Type t = c.type(i);
  if (t == Type::kNull) return Status::Ok();
  for (Type a : allowed) {
    if (a == t) return Status::Ok();
  }
  return ErrorAt(c.args[i].col, "argument " + std::to_string(i + 1) + " of " + c.name +
                                    "() must be " + TypeList(allowed) + " but is " + TypeName(t));
}

// The common type of arguments [from, size): equal types, or int64 and double mixed (-> double).
// kNull if all are the null literal.
Result<Type> CommonType(const Call& c, size_t from) {
  Type common = Type::kNull;
  size_t first = 0;
  for (size_t i = from; i < c.args.size(); ++i) {
    Type t = c.type(i);
    if (t == Type::kNull || t == common) continue;
    if (common == Type::kNull) {
      common = t;
      first = i;
    } else if (IsNumeric(t) && IsNumeric(common)) {
      common = Type::kDouble;
    } else {
      return ErrorAt(c.args[i].col,
                     "arguments of " + c.name + "() must have the same type: " + "argument " +
                         std::to_string(i + 1) + " is " + TypeName(t) + " but argument " +
                         std::to_string(first + 1) + " is " + TypeName(common));
    }
  }
  return common;
}

// Converts an int64 node to double when `to` is double.
NodePtr Promote(NodePtr n, Type to) {
  if (to != Type::kDouble || n->type() != Type::kInt64) return n;
  bool is_const = n->IsConst();
  NodePtr d = MakeUnary<ToDoubleF>(Type::kDouble, std::move(n));
  return is_const ? Fold(std::move(d)) : std::move(d);
}

using Builder = Result<NodePtr> (*)(Call&);

struct FuncDef {
  const char* name;
  int min_args;
  int max_args;  // -1: any number
  Builder build;
};

// A strict function with one argument of an allowed type.
template <typename F>
Result<NodePtr> BuildUnary(Call& c, std::initializer_list<Type> allowed, Type result) {
  WEIR_RETURN_IF_ERROR(CheckArg(c, 0, allowed));
  if (c.AnyNullArg()) return NullConst(result);
  return MakeUnary<F>(result, std::move(c.args[0].node));
}

// A cast: identity when the argument already has the target type.
template <typename F>
Result<NodePtr> BuildCast(Call& c, std::initializer_list<Type> allowed, Type result) {
  WEIR_RETURN_IF_ERROR(CheckArg(c, 0, allowed));
  if (c.type(0) == result) return std::move(c.args[0].node);
  return BuildUnary<F>(c, allowed, result);
}

Status CheckConstFormat(const Call& c, size_t i, std::string_view allowed) {
  const Value* v = c.args[i].node->ConstValue();
  if (!v || v->type != Type::kString) return Status::Ok();
  const std::string_view bad = FirstBadDirective(v->s, allowed);
  if (bad.empty()) return Status::Ok();
  std::string list;
  for (char d : allowed) list += std::string(list.empty() ? "%" : " %") + d;
  return ErrorAt(
      c.args[i].col,
      "unsupported directive '" + std::string(bad) + "' in the format of " + c.name + "()",
      " (supported: " + list + " %%)");
}

template <TimePart kPart>
Result<NodePtr> BuildTimePart(Call& c) {
  return BuildUnary<TimePartF<kPart>>(c, {Type::kTimestamp}, Type::kInt64);
}

constexpr FuncDef kFunctions[] = {
    {"abs", 1, 1,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kInt64, Type::kDouble}));
       if (c.type(0) == Type::kInt64)
         return MakeUnary<AbsIntF>(Type::kInt64, std::move(c.args[0].node));
       if (c.type(0) == Type::kDouble) {
         return MakeUnary<AbsDoubleF>(Type::kDouble, std::move(c.args[0].node));
       }
       return NullConst(Type::kNull);
     }},
    {"bool", 1, 1,
     [](Call& c) {
       return BuildCast<ToBoolF>(c, {Type::kBool, Type::kInt64, Type::kDouble, Type::kString},
                                 Type::kBool);
     }},
    {"coalesce", 1, -1,
     [](Call& c) -> Result<NodePtr> {
       WEIR_ASSIGN_OR_RETURN(Type t, CommonType(c, 0));
       std::vector<NodePtr> kids;
       for (Arg& a : c.args) {
         if (a.node->type() != Type::kNull) kids.push_back(Promote(std::move(a.node), t));
       }
       if (kids.empty()) return NullConst(Type::kNull);
       if (kids.size() == 1) return std::move(kids[0]);
       return NodePtr(std::make_unique<Coalesce>(t, std::move(kids)));
     }},
    {"concat", 1, -1,
     [](Call& c) -> Result<NodePtr> {
       if (c.AnyNullArg()) return NullConst(Type::kString);
       return NodePtr(std::make_unique<ConcatN>(c.TakeArgs()));
     }},
    {"count_char", 2, 2,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kString}));
       const Value* ch = c.args[1].node->ConstValue();
       if (ch && !ch->is_null() && ch->s.size() != 1) {
         return ErrorAt(c.args[1].col, "argument 2 of count_char() must be one character (one "
                                       "byte) but is " + Quoted(ch->s));
       }
       if (c.AnyNullArg()) return NullConst(Type::kInt64);
       return NodePtr(
           std::make_unique<CountChar>(std::move(c.args[0].node), std::move(c.args[1].node)));
     }},
    {"date_format", 2, 2,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kTimestamp}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckConstFormat(c, 1, kFormatDirectives));
       if (c.AnyNullArg()) return NullConst(Type::kString);
       return NodePtr(
           std::make_unique<DateFormat>(std::move(c.args[0].node), std::move(c.args[1].node)));
     }},
    {"day", 1, 1, BuildTimePart<TimePart::kDay>},
    {"double", 1, 1,
     [](Call& c) {
       return BuildCast<ToDoubleF>(
           c, {Type::kBool, Type::kInt64, Type::kDouble, Type::kString, Type::kTimestamp},
           Type::kDouble);
     }},
    {"epoch_millis", 1, 1,
     [](Call& c) { return BuildUnary<EpochMillisF>(c, {Type::kTimestamp}, Type::kInt64); }},
    {"hash", 1, -1,
     [](Call& c) -> Result<NodePtr> { return NodePtr(std::make_unique<Hash>(c.TakeArgs())); }},
    {"hour", 1, 1, BuildTimePart<TimePart::kHour>},
    {"if", 3, 3,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kBool}));
       WEIR_ASSIGN_OR_RETURN(Type t, CommonType(c, 1));
       if (c.type(0) == Type::kNull) return Promote(std::move(c.args[2].node), t);
       return NodePtr(std::make_unique<If>(t, std::move(c.args[0].node),
                                           Promote(std::move(c.args[1].node), t),
                                           Promote(std::move(c.args[2].node), t)));
     }},
    {"int64", 1, 1,
     [](Call& c) {
       return BuildCast<ToInt64F>(
           c, {Type::kBool, Type::kInt64, Type::kDouble, Type::kString, Type::kTimestamp},
           Type::kInt64);
     }},
    {"is_null", 1, 1,
     [](Call& c) -> Result<NodePtr> {
       if (c.type(0) == Type::kNull)
         return NodePtr(std::make_unique<Const>(Type::kBool, Value::Bool(true)));
       return NodePtr(std::make_unique<IsNull>(std::move(c.args[0].node)));
     }},
    {"length", 1, 1,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString, Type::kBytes}));
       if (c.type(0) == Type::kBytes)
         return BuildUnary<LengthBytesF>(c, {Type::kBytes}, Type::kInt64);
       return BuildUnary<LengthStringF>(c, {Type::kString}, Type::kInt64);
     }},
    {"lower", 1, 1, [](Call& c) { return BuildUnary<LowerF>(c, {Type::kString}, Type::kString); }},
    {"minute", 1, 1, BuildTimePart<TimePart::kMinute>},
    {"month", 1, 1, BuildTimePart<TimePart::kMonth>},
    {"regexp_extract", 2, 3,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kString}));
       if (c.args.size() == 3) WEIR_RETURN_IF_ERROR(CheckArg(c, 2, {Type::kInt64}));
       const Value* pattern = c.args[1].node->ConstValue();
       if (!pattern) {
         return ErrorAt(c.args[1].col,
                        "the pattern of regexp_extract() must be a constant string (it is "
                        "compiled once, with the expression)");
       }
       if (c.AnyNullArg()) return NullConst(Type::kString);
       RE2::Options options;
       options.set_log_errors(false);
       auto re = std::make_unique<RE2>(pattern->s, options);
       if (!re->ok()) {
         return ErrorAt(c.args[1].col, "invalid regular expression " + Quoted(pattern->s) +
                                           " in regexp_extract(): " + re->error());
       }
       NodePtr group = c.args.size() == 3
                           ? std::move(c.args[2].node)
                           : NodePtr(std::make_unique<Const>(Type::kInt64, Value::Int64(0)));
       if (const Value* g = group->ConstValue()) {
         const int groups = re->NumberOfCapturingGroups();
         if (g->i < 0 || g->i > groups || g->i > kMaxRegexpGroup) {
           return ErrorAt(c.args.size() == 3 ? c.args[2].col : c.col,
                          "group " + std::to_string(g->i) + " of regexp_extract() does not exist",
                          " (the pattern has " + std::to_string(groups) +
                              " group(s); 0 is the whole match)");
         }
       }
       return NodePtr(std::make_unique<RegexpExtract>(std::move(re), std::move(c.args[0].node),
                                                      std::move(group)));
     }},
    {"second", 1, 1, BuildTimePart<TimePart::kSecond>},
    {"split_index", 3, 3,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 2, {Type::kInt64}));
       if (c.AnyNullArg()) return NullConst(Type::kString);
       return NodePtr(std::make_unique<SplitIndex>(
           std::move(c.args[0].node), std::move(c.args[1].node), std::move(c.args[2].node)));
     }},
    {"string", 1, 1,
     [](Call& c) {
       return BuildCast<ToStringF>(c,
                                   {Type::kBool, Type::kInt64, Type::kDouble, Type::kString,
                                    Type::kBytes, Type::kTimestamp},
                                   Type::kString);
     }},
    {"substr", 2, 3,
     [](Call& c) -> Result<NodePtr> {
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString, Type::kBytes}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kInt64}));
       if (c.args.size() == 3) WEIR_RETURN_IF_ERROR(CheckArg(c, 2, {Type::kInt64}));
       Type t = c.type(0) == Type::kBytes ? Type::kBytes : Type::kString;
       if (c.AnyNullArg()) return NullConst(t);
       NodePtr len = c.args.size() == 3 ? std::move(c.args[2].node) : nullptr;
       return NodePtr(std::make_unique<Substr>(t, std::move(c.args[0].node),
                                               std::move(c.args[1].node), std::move(len)));
     }},
    {"to_timestamp", 1, 2,
     [](Call& c) -> Result<NodePtr> {
       if (c.args.size() == 1) {
         return BuildCast<ToTimestampF>(
             c, {Type::kInt64, Type::kDouble, Type::kString, Type::kTimestamp}, Type::kTimestamp);
       }
       WEIR_RETURN_IF_ERROR(CheckArg(c, 0, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckArg(c, 1, {Type::kString}));
       WEIR_RETURN_IF_ERROR(CheckConstFormat(c, 1, kParseDirectives));
       if (c.AnyNullArg()) return NullConst(Type::kTimestamp);
       return NodePtr(
           std::make_unique<ParseTimestamp>(std::move(c.args[0].node), std::move(c.args[1].node)));
     }},
    {"trim", 1, 1, [](Call& c) { return BuildUnary<TrimF>(c, {Type::kString}, Type::kString); }},
    {"upper", 1, 1, [](Call& c) { return BuildUnary<UpperF>(c, {Type::kString}, Type::kString); }},
    {"year", 1, 1, BuildTimePart<TimePart::kYear>},
};

std::string FunctionNames() {
  std::string out;
  for (const FuncDef& f : kFunctions) {
    if (!out.empty()) out += ", ";
    out += f.name;
  }
  return out;
}

// Result type of an arithmetic operator on two non-null operand types, or nullopt.
std::optional<Type> ArithType(Tok op, Type l, Type r) {
  if (l == Type::kInt64 && r == Type::kInt64) return Type::kInt64;
  if (IsNumeric(l) && IsNumeric(r)) return Type::kDouble;
  if (op == Tok::kPlus) {
    if (l == Type::kTimestamp && r == Type::kInt64) return Type::kTimestamp;
    if (l == Type::kInt64 && r == Type::kTimestamp) return Type::kTimestamp;
    if (l == Type::kString && r == Type::kString) return Type::kString;
    if (l == Type::kBytes && r == Type::kBytes) return Type::kBytes;
  }
  if (op == Tok::kMinus) {
    if (l == Type::kTimestamp && r == Type::kInt64) return Type::kTimestamp;
    if (l == Type::kTimestamp && r == Type::kTimestamp) return Type::kInt64;
  }
  return std::nullopt;
}

template <typename Op>
NodePtr MakeArith(Type result, NodePtr l, NodePtr r) {
  Type lt = l->type(), rt = r->type();
  if (result == Type::kString || result == Type::kBytes) {
    return std::make_unique<Concat2>(result, std::move(l), std::move(r));
  }
  if (result != Type::kDouble)
    return std::make_unique<IntArith<Op>>(result, std::move(l), std::move(r));
  bool li = lt == Type::kInt64, ri = rt == Type::kInt64;
  if (li) return std::make_unique<DoubleArith<Op, true, false>>(std::move(l), std::move(r));
  if (ri) return std::make_unique<DoubleArith<Op, false, true>>(std::move(l), std::move(r));
  return std::make_unique<DoubleArith<Op, false, false>>(std::move(l), std::move(r));
}

std::optional<CmpOp> ToCmpOp(Tok t) {
  switch (t) {
    case Tok::kEq:
      return CmpOp::kEq;
    case Tok::kNe:
      return CmpOp::kNe;
    case Tok::kLt:
      return CmpOp::kLt;
    case Tok::kLe:
      return CmpOp::kLe;
    case Tok::kGt:
      return CmpOp::kGt;
    case Tok::kGe:
      return CmpOp::kGe;
    default:
      return std::nullopt;
  }
}

// Whether two values of type t can be compared with op.
bool Comparable(Type t, CmpOp op) {
  if (op == CmpOp::kEq || op == CmpOp::kNe) return true;
  return t != Type::kBool;
}

class Parser {
 public:
  Parser(std::vector<Token> toks, const Schema& schema) : toks_(std::move(toks)), schema_(schema) {}

  Result<NodePtr> ParseAll() {
    if (Peek().kind == Tok::kEnd) return Status::InvalidArgument("empty expression");
    WEIR_ASSIGN_OR_RETURN(NodePtr n, ParseExpr());
    if (Peek().kind != Tok::kEnd) return Unexpected(Peek(), "expected the end of the expression");
    return n;
  }

 private:
  struct DepthGuard {
    explicit DepthGuard(int* d) : depth(d) { ++*depth; }
    ~DepthGuard() { --*depth; }
    int* depth;
  };

  const Token& Peek(size_t ahead = 0) const {
    return toks_[std::min(pos_ + ahead, toks_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool IsKeyword(const Token& t, std::string_view kw) const {
    return t.kind == Tok::kIdent && EqualsIgnoreCase(t.text, kw);
  }

  // An error about token `t` not fitting; a lexical error at `t` takes precedence.
  Status Unexpected(const Token& t, const std::string& expected) const {
    if (t.kind == Tok::kError) return Status::InvalidArgument(t.value);
    std::string what = t.kind == Tok::kEnd ? "end of expression" : Quoted(t.text);
    return Status::InvalidArgument("unexpected " + what + " " + ColText(t.col) + " (" + expected +
                                   ")");
  }

  Status TooDeep(size_t col) const {
    return ErrorAt(col, "expression is nested too deeply (more than " + std::to_string(kMaxDepth) +
                            " levels)");
  }

  Status CheckHeight(const Node& n, size_t col) const {
    if (n.height() <= kMaxHeight) return Status::Ok();
    return ErrorAt(col, "expression is too large (its tree is more than " +
                            std::to_string(kMaxHeight) + " levels deep)");
  }

  Result<NodePtr> ParseExpr() {
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return TooDeep(Peek().col);
    size_t col = Peek().col;
    WEIR_ASSIGN_OR_RETURN(NodePtr n, ParseLogic(/*is_or=*/true));
    WEIR_RETURN_IF_ERROR(CheckHeight(*n, col));
    return n;
  }

  bool IsLogicOp(const Token& t, bool is_or) const {
    return is_or ? (IsKeyword(t, "or") || t.kind == Tok::kOrOr)
                 : (IsKeyword(t, "and") || t.kind == Tok::kAndAnd);
  }

  // or := and (or-op and)*;  and := not (and-op not)*
  Result<NodePtr> ParseLogic(bool is_or) {
    std::vector<Arg> operands;
    const Token* op = nullptr;
    while (true) {
      size_t col = Peek().col;
      WEIR_ASSIGN_OR_RETURN(NodePtr n, is_or ? ParseLogic(false) : ParseNot());
      operands.push_back({std::move(n), col});
      if (!IsLogicOp(Peek(), is_or)) break;
      op = &Next();
    }
    if (operands.size() == 1) return std::move(operands[0].node);
    bool all_const = true;
    std::vector<NodePtr> kids;
    for (Arg& a : operands) {
      Type t = a.node->type();
      if (t != Type::kBool && t != Type::kNull) {
        return ErrorAt(a.col, "operands of '" + std::string(op->text) + "' must be bool, but " +
                                  "the operand is " + TypeName(t));
      }
      all_const = all_const && a.node->IsConst();
      kids.push_back(std::move(a.node));
    }
    NodePtr n;
    if (is_or) {
      n = std::make_unique<Logic<true>>(std::move(kids));
    } else {
      n = std::make_unique<Logic<false>>(std::move(kids));
    }
    return all_const ? Fold(std::move(n)) : std::move(n);
  }

  // not := ("not" | "!") not | cmp
  Result<NodePtr> ParseNot() {
    if (!IsKeyword(Peek(), "not") && Peek().kind != Tok::kBang) return ParseCmp();
    const Token& op = Next();
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return TooDeep(op.col);
    WEIR_ASSIGN_OR_RETURN(NodePtr x, ParseNot());
    Type t = x->type();
    if (t == Type::kNull) return NullConst(Type::kBool);
    if (t != Type::kBool) {
      return ErrorAt(
          op.col, "operand of '" + std::string(op.text) + "' must be bool, but is " + TypeName(t));
    }
    bool is_const = x->IsConst();
    NodePtr n = MakeUnary<NotF>(Type::kBool, std::move(x));
    return is_const ? Fold(std::move(n)) : std::move(n);
  }

  // cmp := add (cmp-op add)?
  Result<NodePtr> ParseCmp() {
    WEIR_ASSIGN_OR_RETURN(NodePtr l, ParseAdd());
    std::optional<CmpOp> op = ToCmpOp(Peek().kind);
    if (!op) return l;
    const Token& op_tok = Next();
    WEIR_ASSIGN_OR_RETURN(NodePtr r, ParseAdd());
    WEIR_ASSIGN_OR_RETURN(NodePtr n, BuildCompare(*op, op_tok, std::move(l), std::move(r)));
    if (ToCmpOp(Peek().kind)) {
      return ErrorAt(Peek().col,
                     "comparison operators cannot be chained (" + Quoted(Peek().text) + ")",
                     "; combine comparisons with 'and'");
    }
    return n;
  }

  Result<NodePtr> BuildCompare(CmpOp op, const Token& op_tok, NodePtr l, NodePtr r) {
    Type lt = l->type(), rt = r->type();
    auto mismatch = [&]() {
      return ErrorAt(op_tok.col, "cannot compare " + std::string(TypeName(lt)) + " with " +
                                     TypeName(rt) + " using " + Quoted(op_tok.text));
    };
    if (lt == Type::kNull || rt == Type::kNull) {
      Type other = lt == Type::kNull ? rt : lt;
      if (other != Type::kNull && !Comparable(other, op)) return mismatch();
      return NullConst(Type::kBool);
    }
    bool all_const = l->IsConst() && r->IsConst();
    NodePtr n;
    if ((lt == Type::kInt64 && rt == Type::kInt64) ||
        (lt == Type::kTimestamp && rt == Type::kTimestamp)) {
      n = MakeCompare<IntCmp>(op, std::move(l), std::move(r));
    } else if (lt == Type::kDouble && rt == Type::kDouble) {
      n = MakeCompare<DoubleCmp>(op, std::move(l), std::move(r));
    } else if (lt == Type::kInt64 && rt == Type::kDouble) {
      n = MakeCompare<IntDoubleCmp>(op, std::move(l), std::move(r));
    } else if (lt == Type::kDouble && rt == Type::kInt64) {
      n = MakeCompare<DoubleIntCmp>(op, std::move(l), std::move(r));
    } else if ((lt == Type::kString && rt == Type::kString) ||
               (lt == Type::kBytes && rt == Type::kBytes)) {
      n = MakeCompare<StringCmp>(op, std::move(l), std::move(r));
    } else if (lt == Type::kBool && rt == Type::kBool && Comparable(lt, op)) {
      n = MakeCompare<BoolCmp>(op, std::move(l), std::move(r));
    } else {
      return mismatch();
    }
    return all_const ? Fold(std::move(n)) : std::move(n);
  }

  // add := mul (("+" | "-") mul)*;  mul := unary (("*" | "/" | "%") unary)*
  Result<NodePtr> ParseAdd() {
    WEIR_ASSIGN_OR_RETURN(NodePtr l, ParseMul());
    while (Peek().kind == Tok::kPlus || Peek().kind == Tok::kMinus) {
      const Token& op = Next();
      WEIR_ASSIGN_OR_RETURN(NodePtr r, ParseMul());
      WEIR_ASSIGN_OR_RETURN(l, BuildArith(op, std::move(l), std::move(r)));
    }
    return l;
  }

  Result<NodePtr> ParseMul() {
    WEIR_ASSIGN_OR_RETURN(NodePtr l, ParseUnary());
    while (Peek().kind == Tok::kStar || Peek().kind == Tok::kSlash ||
           Peek().kind == Tok::kPercent) {
      const Token& op = Next();
      WEIR_ASSIGN_OR_RETURN(NodePtr r, ParseUnary());
      WEIR_ASSIGN_OR_RETURN(l, BuildArith(op, std::move(l), std::move(r)));
    }
    return l;
  }

  Result<NodePtr> BuildArith(const Token& op, NodePtr l, NodePtr r) {
    Type lt = l->type(), rt = r->type();
    if (lt == Type::kNull || rt == Type::kNull) {
      if (lt == rt) return NullConst(Type::kNull);
      // Give the null literal the type that makes the operation valid.
      Type other = lt == Type::kNull ? rt : lt;
      std::optional<Type> res = ArithType(op.kind, other, other);
      if (!res) {
        res = lt == Type::kNull ? ArithType(op.kind, Type::kInt64, rt)
                                : ArithType(op.kind, lt, Type::kInt64);
      }
      if (!res) {
        return ErrorAt(op.col,
                       "operator " + Quoted(op.text) + " cannot be applied to " + TypeName(other));
      }
      return NullConst(*res);
    }
    std::optional<Type> res = ArithType(op.kind, lt, rt);
    if (!res) {
      std::string hint;
      if (op.kind == Tok::kPlus && (lt == Type::kString || rt == Type::kString)) {
        hint = " (use concat() to join values of other types to a string)";
      }
      return ErrorAt(op.col,
                     "operator " + Quoted(op.text) + " cannot be applied to " + TypeName(lt) +
                         " and " + TypeName(rt),
                     hint);
    }
    bool all_const = l->IsConst() && r->IsConst();
    NodePtr n;
    switch (op.kind) {
      case Tok::kPlus:
        n = MakeArith<AddOp>(*res, std::move(l), std::move(r));
        break;
      case Tok::kMinus:
        n = MakeArith<SubOp>(*res, std::move(l), std::move(r));
        break;
      case Tok::kStar:
        n = MakeArith<MulOp>(*res, std::move(l), std::move(r));
        break;
      case Tok::kSlash:
        n = MakeArith<DivOp>(*res, std::move(l), std::move(r));
        break;
      default:
        n = MakeArith<ModOp>(*res, std::move(l), std::move(r));
        break;
    }
    if (all_const) return Fold(std::move(n));
    WEIR_RETURN_IF_ERROR(CheckHeight(*n, op.col));
    return n;
  }

  // unary := "-" unary | primary
  Result<NodePtr> ParseUnary() {
    if (Peek().kind != Tok::kMinus) return ParsePrimary();
    const Token& op = Next();
    if (Peek().kind == Tok::kInt) {
      // A negative literal, so that -9223372036854775808 is representable.
      const Token& lit = Next();
      std::string text = "-" + std::string(lit.text);
      return IntLiteral(text, op.col);
    }
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return TooDeep(op.col);
    WEIR_ASSIGN_OR_RETURN(NodePtr x, ParseUnary());
    Type t = x->type();
    bool is_const = x->IsConst();
    NodePtr n;
    if (t == Type::kNull) return NullConst(Type::kNull);
    if (t == Type::kInt64) {
      n = MakeUnary<NegIntF>(t, std::move(x));
    } else if (t == Type::kDouble) {
      n = MakeUnary<NegDoubleF>(t, std::move(x));
    } else {
      return ErrorAt(op.col, "operator '-' cannot be applied to " + std::string(TypeName(t)));
    }
    return is_const ? Fold(std::move(n)) : std::move(n);
  }

  Result<NodePtr> IntLiteral(std::string_view text, size_t col) {
    int64_t v;
    if (!TryParseInt64(text, &v).ok()) {
      return ErrorAt(col, "integer literal " + Quoted(text) + " is out of range for int64");
    }
    return NodePtr(std::make_unique<Const>(Type::kInt64, Value::Int64(v)));
  }

  // primary := literal | field | func "(" args ")" | "(" expr ")"
  Result<NodePtr> ParsePrimary() {
    const Token& t = Peek();
    switch (t.kind) {
      case Tok::kInt:
        Next();
        return IntLiteral(t.text, t.col);
      case Tok::kDecimal: {
        Next();
        double d;
        if (!TryParseDouble(t.text, &d).ok() || !std::isfinite(d)) {
          return ErrorAt(t.col, "decimal literal " + Quoted(t.text) + " is out of range");
        }
        return NodePtr(std::make_unique<Const>(Type::kDouble, Value::Double(d)));
      }
      case Tok::kString:
        Next();
        return NodePtr(std::make_unique<Const>(Type::kString, Value::String(t.value)));
      case Tok::kIdent:
        if (IsKeyword(t, "true") || IsKeyword(t, "false")) {
          Next();
          return NodePtr(std::make_unique<Const>(Type::kBool, Value::Bool(IsKeyword(t, "true"))));
        }
        if (IsKeyword(t, "null")) {
          Next();
          return NullConst(Type::kNull);
        }
        if (IsKeyword(t, "case")) return ParseCase();
        if (IsKeyword(t, "and") || IsKeyword(t, "or") || IsKeyword(t, "not") ||
            IsKeyword(t, "when") || IsKeyword(t, "then") || IsKeyword(t, "else") ||
            IsKeyword(t, "end")) {
          return Unexpected(t, "expected an expression; quote a field with this name as `" +
                                   std::string(t.text) + "`");
        }
        if (Peek(1).kind == Tok::kLParen) return ParseCall();
        Next();
        return FieldNode(t.text, t.col);
      case Tok::kQuotedIdent:
        Next();
        return FieldNode(t.value, t.col);
      case Tok::kLParen: {
        Next();
        WEIR_ASSIGN_OR_RETURN(NodePtr n, ParseExpr());
        if (Peek().kind != Tok::kRParen) {
          return Unexpected(Peek(), "expected ')' to close the '(' " + ColText(t.col));
        }
        Next();
        return n;
      }
      default:
        return Unexpected(t, "expected an expression");
    }
  }

  // case := "case" [operand] ("when" expr "then" expr)+ ["else" expr] "end". With an operand,
  // "when v" means "operand = v"; the operand's tokens are parsed again for each WHEN (nodes
  // are not shared), so it is evaluated once per WHEN tried. Built as a chain of If nodes.
  Result<NodePtr> ParseCase() {
    const Token& kw = Next();
    DepthGuard guard(&depth_);
    if (depth_ > kMaxDepth) return TooDeep(kw.col);
    const std::string where = "in the CASE " + ColText(kw.col);
    std::optional<size_t> operand_pos;
    if (!IsKeyword(Peek(), "when")) {
      operand_pos = pos_;
      WEIR_ASSIGN_OR_RETURN(NodePtr operand, ParseExpr());
      if (!IsKeyword(Peek(), "when")) return Unexpected(Peek(), "expected WHEN " + where);
    }
    struct Branch {
      NodePtr cond, value;
      size_t col;  // of the value
    };
    std::vector<Branch> branches;
    bool all_const = true;
    while (IsKeyword(Peek(), "when")) {
      const Token& when = Next();
      const size_t cond_col = Peek().col;
      WEIR_ASSIGN_OR_RETURN(NodePtr cond, ParseExpr());
      if (operand_pos) {
        const size_t resume = pos_;
        pos_ = *operand_pos;
        WEIR_ASSIGN_OR_RETURN(NodePtr operand, ParseExpr());
        pos_ = resume;
        static const Token kEqTok{Tok::kEq, 0, "=", {}};
        Token eq = kEqTok;
        eq.col = when.col;
        WEIR_ASSIGN_OR_RETURN(cond, BuildCompare(CmpOp::kEq, eq, std::move(operand), std::move(cond)));
      } else if (cond->type() != Type::kBool && cond->type() != Type::kNull) {
        return ErrorAt(cond_col, "the condition of WHEN must be bool, but is " +
                                     std::string(TypeName(cond->type())));
      }
      if (!IsKeyword(Peek(), "then")) return Unexpected(Peek(), "expected THEN " + where);
      Next();
      const size_t value_col = Peek().col;
      WEIR_ASSIGN_OR_RETURN(NodePtr value, ParseExpr());
      all_const = all_const && cond->IsConst() && value->IsConst();
      branches.push_back({std::move(cond), std::move(value), value_col});
    }
    NodePtr otherwise;
    size_t else_col = 0;
    if (IsKeyword(Peek(), "else")) {
      Next();
      else_col = Peek().col;
      WEIR_ASSIGN_OR_RETURN(otherwise, ParseExpr());
      all_const = all_const && otherwise->IsConst();
    }
    if (!IsKeyword(Peek(), "end")) return Unexpected(Peek(), "expected WHEN, ELSE or END " + where);
    Next();
    // The results' common type, as for coalesce and if.
    Type t = Type::kNull;
    size_t first_col = 0;
    auto unify = [&](const NodePtr& n, size_t col) -> Status {
      Type nt = n->type();
      if (nt == Type::kNull || nt == t) return Status::Ok();
      if (t == Type::kNull) {
        t = nt;
        first_col = col;
      } else if (IsNumeric(t) && IsNumeric(nt)) {
        t = Type::kDouble;
      } else {
        return ErrorAt(col, "the results of a CASE must have the same type: this one is " +
                                std::string(TypeName(nt)) + " but the one " + ColText(first_col) +
                                " is " + TypeName(t));
      }
      return Status::Ok();
    };
    for (const Branch& b : branches) WEIR_RETURN_IF_ERROR(unify(b.value, b.col));
    if (otherwise) WEIR_RETURN_IF_ERROR(unify(otherwise, else_col));
    NodePtr n = otherwise ? Promote(std::move(otherwise), t) : NullConst(t);
    for (size_t i = branches.size(); i-- > 0;) {
      Branch& b = branches[i];
      if (b.cond->type() == Type::kNull) continue;  // never taken
      n = std::make_unique<If>(t, std::move(b.cond), Promote(std::move(b.value), t), std::move(n));
      WEIR_RETURN_IF_ERROR(CheckHeight(*n, kw.col));
    }
    return all_const ? Fold(std::move(n)) : std::move(n);
  }

  Result<NodePtr> FieldNode(std::string_view name, size_t col) {
    int index = schema_.IndexOf(name);
    if (index >= 0) {
      return NodePtr(
          std::make_unique<FieldRef>(schema_.field(index).type, static_cast<size_t>(index)));
    }
    std::string hint;
    for (const Field& f : schema_.fields()) {
      if (EqualsIgnoreCase(f.name, name)) hint = "; did you mean '" + f.name + "'?";
    }
    return ErrorAt(col, "unknown field " + Quoted(name),
                   " (available fields: " + schema_.FieldNames() + hint + ")");
  }

  Result<NodePtr> ParseCall() {
    const Token& name = Next();
    Next();  // '('
    std::string lname = Lowered(name.text);
    const FuncDef* def = nullptr;
    for (const FuncDef& f : kFunctions) {
      if (lname == f.name) def = &f;
    }
    if (!def) {
      return ErrorAt(name.col, "unknown function " + Quoted(name.text),
                     " (known functions: " + FunctionNames() + ")");
    }
    Call call{lname, name.col, {}};
    if (Peek().kind != Tok::kRParen) {
      while (true) {
        size_t col = Peek().col;
        WEIR_ASSIGN_OR_RETURN(NodePtr a, ParseExpr());
        call.args.push_back({std::move(a), col});
        if (Peek().kind != Tok::kComma) break;
        Next();
      }
    }
    if (Peek().kind != Tok::kRParen) {
      return Unexpected(Peek(), "expected ',' or ')' in the call to " + lname + "()");
    }
    Next();
    int n = static_cast<int>(call.args.size());
    if (n < def->min_args || (def->max_args >= 0 && n > def->max_args)) {
      std::string expected;
      if (def->max_args < 0) {
        expected = "at least " + std::to_string(def->min_args);
      } else if (def->min_args == def->max_args) {
        expected = std::to_string(def->min_args);
      } else {
        expected = std::to_string(def->min_args) + " or " + std::to_string(def->max_args);
      }
      return ErrorAt(name.col, lname + "() takes " + expected + " argument" +
                                   (expected == "1" ? "" : "s") + " but got " + std::to_string(n));
    }
    bool all_const = true;
    for (const Arg& a : call.args) all_const = all_const && a.node->IsConst();
    WEIR_ASSIGN_OR_RETURN(NodePtr node, def->build(call));
    return all_const ? Fold(std::move(node)) : std::move(node);
  }

  std::vector<Token> toks_;
  const Schema& schema_;
  size_t pos_ = 0;
  int depth_ = 0;
};

}  // namespace

Result<std::unique_ptr<Expr>> CompileExpr(std::string_view text, const Schema& input) {
  Parser parser(Lex(text), input);
  WEIR_ASSIGN_OR_RETURN(NodePtr n, parser.ParseAll());
  return std::unique_ptr<Expr>(std::move(n));
}

Result<std::unique_ptr<Expr>> CompilePredicate(std::string_view text, const Schema& input) {
  WEIR_ASSIGN_OR_RETURN(std::unique_ptr<Expr> e, CompileExpr(text, input));
  if (e->type() != Type::kBool && e->type() != Type::kNull) {
    return Status::InvalidArgument("a predicate must be a bool expression, but this one is " +
                                   std::string(TypeName(e->type())));
  }
  return e;
}

}  // namespace weir
