// Tests for the expression language (weir/expr.h): operators, precedence, functions, null
// semantics, and compile errors on bad input.
#include "weir/expr.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <new>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

// Counts heap allocations made by this thread while enabled, to check that evaluation does not
// allocate in the steady state.
namespace {
thread_local bool g_count_allocs = false;
thread_local int64_t g_allocs = 0;
}  // namespace

[[gnu::noinline]] void* operator new(std::size_t n) {
  if (g_count_allocs) ++g_allocs;
  void* p = std::malloc(n ? n : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace weir {

void PrintTo(const Value& v, std::ostream* os) {
  *os << TypeName(v.type) << "(" << (v.type == Type::kBytes ? "<bytes>" : v.ToString()) << ")";
}

namespace {

constexpr int64_t kInt64Min = std::numeric_limits<int64_t>::min();
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
// 2024-01-02T03:04:05.678Z
constexpr int64_t kT = 1704164645678;

const char kLong[] = "The Quick Brown Fox Jumps Over The Lazy Dog, Several Times Over";

Schema TestSchema() {
  return Schema({{"i", Type::kInt64},
                 {"j", Type::kInt64},
                 {"d", Type::kDouble},
                 {"s", Type::kString},
                 {"e", Type::kString},
                 {"u", Type::kString},
                 {"b", Type::kBool},
                 {"f", Type::kBool},
                 {"t", Type::kTimestamp},
                 {"by", Type::kBytes},
                 {"ni", Type::kInt64},
                 {"nd", Type::kDouble},
                 {"ns", Type::kString},
                 {"nb", Type::kBool},
                 {"nt", Type::kTimestamp},
                 {"mn", Type::kInt64},
                 {"odd name", Type::kInt64},
                 {"long", Type::kString},
                 {"ws", Type::kString}});
}

Row TestRow() {
  Row r(19);
  r[0] = Value::Int64(7);
  r[1] = Value::Int64(-3);
  r[2] = Value::Double(2.5);
  r[3] = Value::String("Hello");
  r[4] = Value::String("");
  r[5] = Value::String("h\xc3\xa9llo");  // "héllo": 5 code points, 6 bytes
  r[6] = Value::Bool(true);
  r[7] = Value::Bool(false);
  r[8] = Value::Timestamp(kT);
  r[9] = Value::Bytes(std::string_view("a\0b", 3));
  // 10..14 stay null
  r[15] = Value::Int64(kInt64Min);
  r[16] = Value::Int64(42);
  r[17] = Value::String(kLong);
  r[18] = Value::String("  \t padded \n ");
  return r;
}

class ExprTest : public ::testing::Test {
 protected:
  // Compiles and evaluates `text`; checks that the value's type matches the static type and that
  // evaluating again into a dirty output gives the same result.
  Value Eval(std::string_view text) {
    auto r = CompileExpr(text, schema_);
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    if (!r.ok()) return Value::String("<compile error>");
    const Expr& e = **r;
    Value v = Value::String("a previous value long enough to be on the heap");
    e.Eval(row_, v);
    if (!v.is_null()) {
      EXPECT_EQ(v.type, e.type()) << text;
    }
    Value again = Value::Double(1);
    e.Eval(row_, again);
    e.Eval(row_, again);
    EXPECT_EQ(v, again) << text;
    return v;
  }

  Type TypeOf(std::string_view text) {
    auto r = CompileExpr(text, schema_);
    EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
    return r.ok() ? (*r)->type() : Type::kNull;
  }

  // Compiles `text`, which must fail, and returns the message.
  std::string Error(std::string_view text) {
    auto r = CompileExpr(text, schema_);
    EXPECT_FALSE(r.ok()) << text << " compiled";
    if (r.ok()) return "";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_FALSE(r.status().message().empty());
    return r.status().message();
  }

  Schema schema_ = TestSchema();
  Row row_ = TestRow();
};

Value I(int64_t v) {
  return Value::Int64(v);
}
Value D(double v) {
  return Value::Double(v);
}
Value S(std::string_view v) {
  return Value::String(v);
}
Value B(bool v) {
  return Value::Bool(v);
}
Value Ts(int64_t v) {
  return Value::Timestamp(v);
}
Value Null() {
  return Value();
}

using ::testing::HasSubstr;

// --- Literals and identifiers.

TEST_F(ExprTest, Literals) {
  EXPECT_EQ(Eval("42"), I(42));
  EXPECT_EQ(Eval("0"), I(0));
  EXPECT_EQ(Eval("1.5"), D(1.5));
  EXPECT_EQ(Eval("1e3"), D(1000));
  EXPECT_EQ(Eval("2.5E-1"), D(0.25));
  EXPECT_EQ(Eval(".5"), D(0.5));
  EXPECT_EQ(Eval("'it''s'"), S("it's"));
  EXPECT_EQ(Eval("''"), S(""));
  EXPECT_EQ(Eval("true"), B(true));
  EXPECT_EQ(Eval("FALSE"), B(false));
  EXPECT_EQ(Eval("NuLL"), Null());
  EXPECT_EQ(TypeOf("null"), Type::kNull);
  EXPECT_EQ(TypeOf("1e3"), Type::kDouble);
}

TEST_F(ExprTest, IntegerLiteralRange) {
  EXPECT_EQ(Eval("9223372036854775807"), I(kInt64Max));
  EXPECT_EQ(Eval("-9223372036854775808"), I(kInt64Min));
  EXPECT_EQ(Eval("- 9223372036854775808"), I(kInt64Min));
  EXPECT_THAT(Error("9223372036854775808"), HasSubstr("out of range for int64 at column 1"));
  EXPECT_THAT(Error("1 + -9223372036854775809"), HasSubstr("out of range for int64 at column 5"));
  EXPECT_THAT(Error("99999999999999999999999"), HasSubstr("out of range"));
  EXPECT_THAT(Error("1e999"), HasSubstr("out of range"));
}

TEST_F(ExprTest, Fields) {
  EXPECT_EQ(Eval("i"), I(7));
  EXPECT_EQ(Eval("s"), S("Hello"));
  EXPECT_EQ(Eval("t"), Ts(kT));
  EXPECT_EQ(Eval("by"), Value::Bytes(std::string_view("a\0b", 3)));
  EXPECT_EQ(Eval("`odd name`"), I(42));
  EXPECT_EQ(Eval("`i`"), I(7));
  EXPECT_EQ(Eval("ni"), Null());
  EXPECT_EQ(TypeOf("ni"), Type::kInt64);
  EXPECT_EQ(TypeOf("t"), Type::kTimestamp);
  Schema quoted({{"a`b", Type::kInt64}, {"and", Type::kBool}});
  Row row(2);
  row[0] = I(5);
  row[1] = B(true);
  auto e = CompileExpr("`a``b` + 1", quoted);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Value v;
  (*e)->Eval(row, v);
  EXPECT_EQ(v, I(6));
  auto k = CompileExpr("`and` and true", quoted);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  (*k)->Eval(row, v);
  EXPECT_EQ(v, B(true));
}

// --- Arithmetic.

TEST_F(ExprTest, IntegerArithmetic) {
  EXPECT_EQ(Eval("i + j"), I(4));
  EXPECT_EQ(Eval("i - j"), I(10));
  EXPECT_EQ(Eval("i * j"), I(-21));
  EXPECT_EQ(Eval("i / 2"), I(3));
  EXPECT_EQ(Eval("-i / 2"), I(-3));  // truncates toward zero
  EXPECT_EQ(Eval("i % 3"), I(1));
  EXPECT_EQ(Eval("-i % 3"), I(-1));  // sign of the dividend
  EXPECT_EQ(Eval("i % j"), I(1));
  EXPECT_EQ(Eval("9223372036854775807 + 1"), I(kInt64Min));  // wraps
  EXPECT_EQ(Eval("mn - 1"), I(kInt64Max));
  EXPECT_EQ(Eval("mn * -1"), I(kInt64Min));
  EXPECT_EQ(TypeOf("i + j"), Type::kInt64);
}

TEST_F(ExprTest, DivisionByZeroIsNull) {
  EXPECT_EQ(Eval("i / 0"), Null());
  EXPECT_EQ(Eval("i % 0"), Null());
  EXPECT_EQ(Eval("i / (j + 3)"), Null());
  EXPECT_EQ(Eval("d / 0"), Null());
  EXPECT_EQ(Eval("d / 0.0"), Null());
  EXPECT_EQ(Eval("d % 0"), Null());
  EXPECT_EQ(Eval("1 / 0"), Null());  // folded at compile time, same result
  EXPECT_EQ(TypeOf("i / 0"), Type::kInt64);
  // INT64_MIN / -1 overflows: null rather than a trap. The remainder is exactly 0.
  EXPECT_EQ(Eval("mn / -1"), Null());
  EXPECT_EQ(Eval("-9223372036854775808 / -1"), Null());
  EXPECT_EQ(Eval("mn % -1"), I(0));
  EXPECT_EQ(Eval("mn / 1"), I(kInt64Min));
}

TEST_F(ExprTest, DoubleAndMixedArithmetic) {
  EXPECT_EQ(Eval("d + d"), D(5.0));
  EXPECT_EQ(Eval("d - 0.5"), D(2.0));
  EXPECT_EQ(Eval("d * 2.0"), D(5.0));
  EXPECT_EQ(Eval("d / 2.0"), D(1.25));
  EXPECT_EQ(Eval("d % 1.0"), D(0.5));
  EXPECT_EQ(Eval("i + d"), D(9.5));
  EXPECT_EQ(Eval("d + i"), D(9.5));
  EXPECT_EQ(Eval("i * 0.5"), D(3.5));
  EXPECT_EQ(Eval("i / 2.0"), D(3.5));
  EXPECT_EQ(Eval("1 / 2.0"), D(0.5));
  EXPECT_EQ(Eval("i - d"), D(4.5));
  EXPECT_EQ(Eval("i % 2.5"), D(2.0));
  EXPECT_EQ(TypeOf("i + d"), Type::kDouble);
  EXPECT_EQ(TypeOf("d * i"), Type::kDouble);
}

TEST_F(ExprTest, UnaryMinus) {
  EXPECT_EQ(Eval("-i"), I(-7));
  EXPECT_EQ(Eval("- -i"), I(7));
  EXPECT_EQ(Eval("-d"), D(-2.5));
  EXPECT_EQ(Eval("-(i + 1)"), I(-8));
  EXPECT_EQ(Eval("-mn"), I(kInt64Min));  // wraps
  EXPECT_EQ(Eval("-ni"), Null());
  EXPECT_EQ(Eval("-null"), Null());
  EXPECT_EQ(Eval("2 - -3"), I(5));
  EXPECT_EQ(Eval("2-3"), I(-1));
}

TEST_F(ExprTest, StringConcatenation) {
  EXPECT_EQ(Eval("s + ' world'"), S("Hello world"));
  EXPECT_EQ(Eval("'a' + 'b' + 'c'"), S("abc"));
  EXPECT_EQ(Eval("s + e"), S("Hello"));
  EXPECT_EQ(Eval("long + long"), S(std::string(kLong) + kLong));
  EXPECT_EQ(Eval("s + ' ' + long + '!'"), S(std::string("Hello ") + kLong + "!"));
  EXPECT_EQ(Eval("s + ns"), Null());
  EXPECT_EQ(Eval("ns + s"), Null());
  EXPECT_EQ(Eval("s + null"), Null());
  EXPECT_EQ(TypeOf("s + null"), Type::kString);
  EXPECT_EQ(Eval("by + by"), Value::Bytes(std::string_view("a\0ba\0b", 6)));
}

TEST_F(ExprTest, Precedence) {
  EXPECT_EQ(Eval("1 + 2 * 3"), I(7));
  EXPECT_EQ(Eval("(1 + 2) * 3"), I(9));
  EXPECT_EQ(Eval("i + j * 2"), I(1));
  EXPECT_EQ(Eval("10 - 4 - 3"), I(3));  // left associative
  EXPECT_EQ(Eval("i - 4 - 3"), I(0));
  EXPECT_EQ(Eval("100 / 10 / 5"), I(2));
  EXPECT_EQ(Eval("i * 3 % 4"), I(1));
  EXPECT_EQ(Eval("-2 * 3"), I(-6));
  EXPECT_EQ(Eval("2 * -i"), I(-14));
  EXPECT_EQ(Eval("-i * -i"), I(49));
  EXPECT_EQ(Eval("1 + 2 = 3"), B(true));
  EXPECT_EQ(Eval("i + 1 > i * 1"), B(true));
  EXPECT_EQ(Eval("true or false and false"), B(true));  // and binds tighter
  EXPECT_EQ(Eval("(true or false) and false"), B(false));
  EXPECT_EQ(Eval("b or f and f"), B(true));
  EXPECT_EQ(Eval("not true or true"), B(true));  // not binds tighter than or
  EXPECT_EQ(Eval("not (true or true)"), B(false));
  EXPECT_EQ(Eval("not i = 8"), B(true));  // not applies to the comparison
  EXPECT_EQ(Eval("not not b"), B(true));
  EXPECT_EQ(Eval("i > 1 and i < 10 or f"), B(true));
  EXPECT_EQ(Eval("((((i))))"), I(7));
}

// --- Comparison.

TEST_F(ExprTest, IntegerComparisons) {
  EXPECT_EQ(Eval("i = 7"), B(true));
  EXPECT_EQ(Eval("i == 7"), B(true));
  EXPECT_EQ(Eval("i != 7"), B(false));
  EXPECT_EQ(Eval("i <> 8"), B(true));
  EXPECT_EQ(Eval("i < 8"), B(true));
  EXPECT_EQ(Eval("i < 7"), B(false));
  EXPECT_EQ(Eval("i <= 7"), B(true));
  EXPECT_EQ(Eval("i > 7"), B(false));
  EXPECT_EQ(Eval("i >= 7"), B(true));
  EXPECT_EQ(Eval("j < i"), B(true));
  EXPECT_EQ(Eval("mn < j"), B(true));
}

TEST_F(ExprTest, NumericComparisonsPromote) {
  EXPECT_EQ(Eval("i = 7.0"), B(true));
  EXPECT_EQ(Eval("7.0 = i"), B(true));
  EXPECT_EQ(Eval("i < 7.5"), B(true));
  EXPECT_EQ(Eval("i > 6.9"), B(true));
  EXPECT_EQ(Eval("d > i"), B(false));
  EXPECT_EQ(Eval("d <= 2.5"), B(true));
  EXPECT_EQ(Eval("d != 2.5"), B(false));
  EXPECT_EQ(Eval("-7.5 < -i"), B(true));
  EXPECT_EQ(Eval("-i < -6.5"), B(true));
  // Exact: 2^53 + 1 is not equal to the double 2^53 (a naive conversion would say it is).
  EXPECT_EQ(Eval("9007199254740993 = 9007199254740992.0"), B(false));
  EXPECT_EQ(Eval("9007199254740993 > 9007199254740992.0"), B(true));
  EXPECT_EQ(Eval("9223372036854775807 < 9223372036854775808.0"), B(true));
  EXPECT_EQ(Eval("mn = -9223372036854775808.0"), B(true));
  EXPECT_EQ(Eval("mn > -1e300"), B(true));
  // NaN is unordered: only != holds.
  EXPECT_EQ(Eval("double('nan') = double('nan')"), B(false));
  EXPECT_EQ(Eval("double('nan') != d"), B(true));
  EXPECT_EQ(Eval("double('nan') < i"), B(false));
  EXPECT_EQ(Eval("i >= double('nan')"), B(false));
  EXPECT_EQ(Eval("i != double('nan')"), B(true));
}

TEST_F(ExprTest, StringBoolTimestampComparisons) {
  EXPECT_EQ(Eval("s = 'Hello'"), B(true));
  EXPECT_EQ(Eval("s = 'hello'"), B(false));
  EXPECT_EQ(Eval("'a' < 'b'"), B(true));
  EXPECT_EQ(Eval("'B' < 'a'"), B(true));
  EXPECT_EQ(Eval("'abc' < 'abd'"), B(true));
  EXPECT_EQ(Eval("'ab' < 'abc'"), B(true));
  EXPECT_EQ(Eval("e < 'a'"), B(true));
  EXPECT_EQ(Eval("s >= 'Hello'"), B(true));
  EXPECT_EQ(Eval("u > 'h'"), B(true));
  EXPECT_EQ(Eval("'\xc3\xa9' > 'z'"), B(true));  // bytes compare unsigned
  EXPECT_EQ(Eval("lower(long) = 'the quick brown fox jumps over the lazy dog, several times over'"),
            B(true));
  EXPECT_EQ(Eval("b = true"), B(true));
  EXPECT_EQ(Eval("b != f"), B(true));
  EXPECT_EQ(Eval("b <> b"), B(false));
  EXPECT_EQ(Eval("t = t"), B(true));
  EXPECT_EQ(Eval("t > to_timestamp('2024-01-01')"), B(true));
  EXPECT_EQ(Eval("t < to_timestamp('2024-01-02 03:04:05.679')"), B(true));
  EXPECT_EQ(Eval("t <= to_timestamp('2024-01-02 03:04:05.678')"), B(true));
  EXPECT_EQ(Eval("by = by"), B(true));
  EXPECT_EQ(Eval("by > by"), B(false));
}

// --- Nulls and logic.

TEST_F(ExprTest, NullPropagation) {
  EXPECT_EQ(Eval("ni + 1"), Null());
  EXPECT_EQ(Eval("1 + ni"), Null());
  EXPECT_EQ(Eval("nd * 2"), Null());
  EXPECT_EQ(Eval("i + null"), Null());
  EXPECT_EQ(TypeOf("i + null"), Type::kInt64);
  EXPECT_EQ(TypeOf("null * d"), Type::kDouble);
  EXPECT_EQ(TypeOf("t + null"), Type::kTimestamp);
  EXPECT_EQ(TypeOf("null + null"), Type::kNull);
  EXPECT_EQ(Eval("ni = 1"), Null());
  EXPECT_EQ(Eval("ni = ni"), Null());
  EXPECT_EQ(Eval("null = null"), Null());
  EXPECT_EQ(TypeOf("null = null"), Type::kBool);
  EXPECT_EQ(Eval("ns < 'a'"), Null());
  EXPECT_EQ(Eval("nt > t"), Null());
  EXPECT_EQ(Eval("nb = true"), Null());
  EXPECT_EQ(Eval("nt + 5"), Null());
  EXPECT_EQ(Eval("lower(ns)"), Null());
  EXPECT_EQ(Eval("length(null)"), Null());
  EXPECT_EQ(TypeOf("length(null)"), Type::kInt64);
  EXPECT_EQ(Eval("substr(s, ni)"), Null());
  EXPECT_EQ(Eval("substr(s, 1, ni)"), Null());
  EXPECT_EQ(Eval("abs(ni)"), Null());
  EXPECT_EQ(Eval("int64(ns)"), Null());
  EXPECT_EQ(Eval("date_format(nt, '%Y')"), Null());
  EXPECT_EQ(Eval("date_format(t, ns)"), Null());
  EXPECT_EQ(Eval("hour(nt)"), Null());
}

TEST_F(ExprTest, ThreeValuedLogic) {
  EXPECT_EQ(Eval("b and b"), B(true));
  EXPECT_EQ(Eval("b and f"), B(false));
  EXPECT_EQ(Eval("f or f"), B(false));
  EXPECT_EQ(Eval("f or b"), B(true));
  EXPECT_EQ(Eval("not b"), B(false));
  EXPECT_EQ(Eval("not f"), B(true));
  // false and null = false; true or null = true; otherwise null.
  EXPECT_EQ(Eval("nb and f"), B(false));
  EXPECT_EQ(Eval("f and nb"), B(false));
  EXPECT_EQ(Eval("nb and b"), Null());
  EXPECT_EQ(Eval("b and nb"), Null());
  EXPECT_EQ(Eval("nb and nb"), Null());
  EXPECT_EQ(Eval("nb or b"), B(true));
  EXPECT_EQ(Eval("b or nb"), B(true));
  EXPECT_EQ(Eval("nb or f"), Null());
  EXPECT_EQ(Eval("f or nb"), Null());
  EXPECT_EQ(Eval("not nb"), Null());
  EXPECT_EQ(Eval("false and null"), B(false));
  EXPECT_EQ(Eval("null and false"), B(false));
  EXPECT_EQ(Eval("true or null"), B(true));
  EXPECT_EQ(Eval("null or true"), B(true));
  EXPECT_EQ(Eval("null and true"), Null());
  EXPECT_EQ(Eval("not null"), Null());
  EXPECT_EQ(Eval("ni > 0 or i > 0"), B(true));
  EXPECT_EQ(Eval("ni > 0 and i > 0"), Null());
  // Symbolic forms and keyword case.
  EXPECT_EQ(Eval("b && f"), B(false));
  EXPECT_EQ(Eval("f || b"), B(true));
  EXPECT_EQ(Eval("!f"), B(true));
  EXPECT_EQ(Eval("!(i = 7)"), B(false));
  EXPECT_EQ(Eval("NOT f AND b Or f"), B(true));
  // Long chains.
  EXPECT_EQ(Eval("f or f or f or f or b"), B(true));
  EXPECT_EQ(Eval("b and b and b and nb"), Null());
  EXPECT_EQ(Eval("b and b and f and nb"), B(false));
}

// --- Functions.

TEST_F(ExprTest, StringFunctions) {
  EXPECT_EQ(Eval("lower(s)"), S("hello"));
  EXPECT_EQ(Eval("upper(s)"), S("HELLO"));
  EXPECT_EQ(Eval("UPPER(s)"), S("HELLO"));  // function names are case-insensitive
  EXPECT_EQ(Eval("Lower('MiXeD 123 _')"), S("mixed 123 _"));
  EXPECT_EQ(Eval("upper(u)"), S("H\xc3\xa9LLO"));  // ASCII only
  EXPECT_EQ(Eval("lower(upper(long))"), S(Eval("lower(long)").s));
  EXPECT_EQ(Eval("length(s)"), I(5));
  EXPECT_EQ(Eval("length(e)"), I(0));
  EXPECT_EQ(Eval("length(u)"), I(5));   // code points
  EXPECT_EQ(Eval("length(by)"), I(3));  // bytes
  EXPECT_EQ(Eval("trim(ws)"), S("padded"));
  EXPECT_EQ(Eval("trim('   ')"), S(""));
  EXPECT_EQ(Eval("trim(s)"), S("Hello"));
  EXPECT_EQ(Eval("trim(upper(ws))"), S("PADDED"));
  EXPECT_EQ(Eval("length(trim(ws))"), I(6));
}

TEST_F(ExprTest, Substr) {
  EXPECT_EQ(Eval("substr(s, 1)"), S("Hello"));
  EXPECT_EQ(Eval("substr(s, 2)"), S("ello"));
  EXPECT_EQ(Eval("substr(s, 2, 3)"), S("ell"));
  EXPECT_EQ(Eval("substr(s, 5, 10)"), S("o"));
  EXPECT_EQ(Eval("substr(s, 6)"), S(""));
  EXPECT_EQ(Eval("substr(s, 100, 2)"), S(""));
  EXPECT_EQ(Eval("substr(s, 0, 3)"), S("He"));  // positions 0, 1, 2: only 1 and 2 exist
  EXPECT_EQ(Eval("substr(s, -1)"), S("Hello"));
  EXPECT_EQ(Eval("substr(s, -5, 3)"), S(""));
  EXPECT_EQ(Eval("substr(s, 2, 0)"), S(""));
  EXPECT_EQ(Eval("substr(s, 2, -1)"), Null());
  EXPECT_EQ(Eval("substr(s, 9223372036854775807, 9223372036854775807)"), S(""));
  EXPECT_EQ(Eval("substr(s, -9223372036854775808, 9223372036854775807)"), S(""));
  EXPECT_EQ(Eval("substr(s, 2, 9223372036854775807)"), S("ello"));
  EXPECT_EQ(Eval("substr(u, 2, 2)"), S("\xc3\xa9l"));  // code points
  EXPECT_EQ(Eval("substr(u, 3)"), S("llo"));
  EXPECT_EQ(Eval("substr(by, 2, 1)"), Value::Bytes(std::string_view("\0", 1)));
  EXPECT_EQ(TypeOf("substr(by, 2)"), Type::kBytes);
  EXPECT_EQ(Eval("substr(upper(s), 2, 2)"), S("EL"));
  EXPECT_EQ(Eval("substr(long, 5, 5)"), S("Quick"));
  EXPECT_EQ(Eval("substr(lower(long), 5, 5)"), S("quick"));
}

TEST_F(ExprTest, Concat) {
  EXPECT_EQ(Eval("concat(s)"), S("Hello"));
  EXPECT_EQ(Eval("concat(s, '-', i)"), S("Hello-7"));
  EXPECT_EQ(Eval("concat('a', 1, 2.5, true, j)"), S("a12.5true-3"));
  // The canonical timestamp text (weir/text_formats.h), as in JSON and CSV output.
  EXPECT_EQ(Eval("concat(t)"), S("2024-01-02 03:04:05.678"));
  EXPECT_EQ(Eval("concat(3.0, ' ', 1e20, ' ', 0.1)"), S("3.0 1e+20 0.1"));
  EXPECT_EQ(Eval("concat(by)"), S(std::string_view("a\0b", 3)));
  EXPECT_EQ(Eval("concat(s, ns)"), Null());
  EXPECT_EQ(Eval("concat(ni, s)"), Null());
  EXPECT_EQ(Eval("concat(s, null)"), Null());
  EXPECT_EQ(TypeOf("concat(i)"), Type::kString);
  EXPECT_EQ(Eval("concat(long, long)"), S(std::string(kLong) + kLong));
}

TEST_F(ExprTest, AbsCoalesceIf) {
  EXPECT_EQ(Eval("abs(j)"), I(3));
  EXPECT_EQ(Eval("abs(i)"), I(7));
  EXPECT_EQ(Eval("abs(-d)"), D(2.5));
  EXPECT_EQ(Eval("abs(mn)"), I(kInt64Min));  // wraps like unary minus
  EXPECT_EQ(Eval("coalesce(ni, 5)"), I(5));
  EXPECT_EQ(Eval("coalesce(i, 5)"), I(7));
  EXPECT_EQ(Eval("coalesce(ni, ni)"), Null());
  EXPECT_EQ(Eval("coalesce(null, ns, s)"), S("Hello"));
  EXPECT_EQ(Eval("coalesce(ns, long)"), S(kLong));
  EXPECT_EQ(Eval("coalesce(ni, nd, 1)"), D(1.0));  // int64 and double mix -> double
  EXPECT_EQ(TypeOf("coalesce(ni, nd, 1)"), Type::kDouble);
  EXPECT_EQ(Eval("coalesce(null)"), Null());
  EXPECT_EQ(Eval("coalesce(nb, f)"), B(false));
  EXPECT_EQ(Eval("coalesce(nt, t)"), Ts(kT));
  EXPECT_EQ(Eval("if(b, 1, 2)"), I(1));
  EXPECT_EQ(Eval("if(f, 1, 2)"), I(2));
  EXPECT_EQ(Eval("if(nb, 1, 2)"), I(2));  // null condition takes the else branch
  EXPECT_EQ(Eval("if(null, 1, 2)"), I(2));
  EXPECT_EQ(Eval("if(i > 5, s, 'small')"), S("Hello"));
  EXPECT_EQ(Eval("if(f, 1, 2.5)"), D(2.5));
  EXPECT_EQ(Eval("if(b, 1, 2.5)"), D(1.0));
  EXPECT_EQ(Eval("if(b, null, 2)"), Null());
  EXPECT_EQ(Eval("if(f, null, 2)"), I(2));
  EXPECT_EQ(TypeOf("if(b, null, 2)"), Type::kInt64);
  EXPECT_EQ(Eval("if(b, upper(long), long)"), S(Eval("upper(long)").s));
  EXPECT_EQ(Eval("IF(i = 7, 'seven', 'other')"), S("seven"));
  EXPECT_EQ(Eval("is_null(ni)"), B(true));
  EXPECT_EQ(Eval("is_null(i)"), B(false));
  EXPECT_EQ(Eval("is_null(null)"), B(true));
  EXPECT_EQ(Eval("is_null(i / 0)"), B(true));
}

TEST_F(ExprTest, CaseWhen) {
  EXPECT_EQ(Eval("case when i > 5 then 'big' else 'small' end"), S("big"));
  EXPECT_EQ(Eval("CASE WHEN i > 50 THEN 'big' WHEN i > 5 THEN 'mid' ELSE 'small' END"), S("mid"));
  EXPECT_EQ(Eval("case when i > 50 then 'big' end"), Null());  // no ELSE: null
  EXPECT_EQ(Eval("case when nb then 1 else 2 end"), I(2));      // a null condition is not true
  EXPECT_EQ(Eval("case when null then 1 when b then 3 end"), I(3));
  EXPECT_EQ(Eval("case when f then 1 else 2.5 end"), D(2.5));  // int64 and double -> double
  EXPECT_EQ(TypeOf("case when b then 1 else 2.5 end"), Type::kDouble);
  EXPECT_EQ(TypeOf("case when b then null else 's' end"), Type::kString);
  EXPECT_EQ(Eval("case when b then null else 's' end"), Null());
  // Simple form: CASE operand WHEN value ...
  EXPECT_EQ(Eval("case lower(s) when 'x' then 0 when 'hello' then 1 else 2 end"), I(1));
  EXPECT_EQ(Eval("case i when 1 then 'one' when 7 then 'seven' end"), S("seven"));
  EXPECT_EQ(Eval("case ni when 1 then 'one' else 'other' end"), S("other"));  // null = 1 is null
  EXPECT_EQ(Eval("case (i + 1) when 8 then 'eight' end"), S("eight"));
  // Nested, only the chosen branch evaluated, constant folded, in larger expressions.
  EXPECT_EQ(Eval("case when b then case when f then 1 else 2 end else 3 end * 10"), I(20));
  EXPECT_EQ(Eval("case when true then 'k' else 'l' end"), S("k"));
  EXPECT_EQ(Eval("concat(case when b then upper(long) end, '!')"), S(Eval("upper(long)").s + "!"));
  // Keywords: a field named like one is backquoted.
  Schema kw({{"end", Type::kInt64}});
  EXPECT_FALSE(CompileExpr("end + 1", kw).ok());
  EXPECT_TRUE(CompileExpr("`end` + 1", kw).ok());
  EXPECT_THAT(Error("case when i then 1 end"),
              HasSubstr("the condition of WHEN must be bool, but is int64 at column 11"));
  EXPECT_THAT(Error("case when b then 1 else 'x' end"),
              HasSubstr("the results of a CASE must have the same type: this one is string but "
                        "the one at column 18 is int64"));
  EXPECT_THAT(Error("case when b then 1"), HasSubstr("expected WHEN, ELSE or END in the CASE at column 1"));
  EXPECT_THAT(Error("case when b 1 end"), HasSubstr("expected THEN in the CASE at column 1"));
  EXPECT_THAT(Error("case else 1 end"), HasSubstr("at column 6"));
  EXPECT_THAT(Error("case i when 'x' then 1 end"), HasSubstr("cannot compare int64 with string"));
  EXPECT_THAT(Error("case when b then end"), HasSubstr("expected an expression"));
}

TEST_F(ExprTest, RegexpExtract) {
  const char* re = "'(&|^)channel_id=([^&]*)'";
  row_[3] = S("https://x.com/a/item.htm?query=1&channel_id=42&z=1");
  EXPECT_EQ(Eval(std::string("regexp_extract(s, ") + re + ", 2)"), S("42"));
  EXPECT_EQ(Eval(std::string("regexp_extract(s, ") + re + ", 1)"), S("&"));
  EXPECT_EQ(Eval(std::string("regexp_extract(s, ") + re + ")"), S("&channel_id=42"));
  EXPECT_EQ(Eval(std::string("regexp_extract('channel_id=7', ") + re + ", 2)"), S("7"));
  EXPECT_EQ(Eval(std::string("regexp_extract(long, ") + re + ", 2)"), Null());  // no match
  EXPECT_EQ(Eval(std::string("regexp_extract(ns, ") + re + ", 2)"), Null());
  EXPECT_EQ(Eval("regexp_extract(s, 'a(x)?', 1)"), Null());  // group did not take part
  EXPECT_EQ(Eval("regexp_extract(s, '[0-9]+', i - 7)"), S("1"));
  EXPECT_EQ(Eval("regexp_extract(s, '[0-9]+', i)"), Null());  // group 7 of 0, at run time
  EXPECT_EQ(Eval("regexp_extract(lower(long), 'q(u)(i)', 2)"), S("i"));  // in place
  EXPECT_THAT(Error("regexp_extract(s, s, 1)"),
              HasSubstr("the pattern of regexp_extract() must be a constant string"));
  EXPECT_THAT(Error("regexp_extract(s, 'a(b', 1)"),
              HasSubstr("invalid regular expression 'a(b' in regexp_extract(): missing )"));
  EXPECT_THAT(Error("regexp_extract(s, 'a(b)', 2)"),
              HasSubstr("group 2 of regexp_extract() does not exist at column 27 (the pattern "
                        "has 1 group(s)"));
  EXPECT_THAT(Error("regexp_extract(i, 'a')"), HasSubstr("argument 1 of regexp_extract() must be string"));
}

TEST_F(ExprTest, SplitIndex) {
  row_[3] = S("https://www.nexmark.com/abc/de/item.htm?query=1");
  EXPECT_EQ(Eval("split_index(s, '/', 0)"), S("https:"));
  EXPECT_EQ(Eval("split_index(s, '/', 1)"), S(""));
  EXPECT_EQ(Eval("split_index(s, '/', 3)"), S("abc"));
  EXPECT_EQ(Eval("split_index(s, '/', 5)"), S("item.htm?query=1"));
  EXPECT_EQ(Eval("split_index(s, '/', 6)"), Null());
  EXPECT_EQ(Eval("split_index(s, '/', -1)"), Null());
  EXPECT_EQ(Eval("split_index(s, '://', 1)"), S("www.nexmark.com/abc/de/item.htm?query=1"));
  EXPECT_EQ(Eval("split_index(s, '', 0)"), S(Eval("s").s));  // no delimiter: one piece
  EXPECT_EQ(Eval("split_index(s, '', 1)"), Null());
  EXPECT_EQ(Eval("split_index(s, '#', 0)"), S(Eval("s").s));
  EXPECT_EQ(Eval("split_index(lower(long), ' ', 2)"), S("brown"));  // in place
  EXPECT_EQ(Eval("split_index(ns, '/', 0)"), Null());
  EXPECT_EQ(Eval("split_index(s, ns, 0)"), Null());
  EXPECT_THAT(Error("split_index(s, '/', '1')"), HasSubstr("argument 3 of split_index() must be int64"));
}

TEST_F(ExprTest, CountChar) {
  EXPECT_EQ(Eval("count_char(long, 'e')"), I(7));
  EXPECT_EQ(Eval("count_char(e, 'e')"), I(0));
  EXPECT_EQ(Eval("count_char(ns, 'e')"), Null());
  EXPECT_EQ(Eval("count_char(long, substr(s, 2, 1))"), I(7));
  EXPECT_EQ(Eval("count_char(long, s)"), Null());  // not one character, at run time
  EXPECT_THAT(Error("count_char(long, 'ab')"),
              HasSubstr("argument 2 of count_char() must be one character (one byte) but is 'ab'"));
}

TEST_F(ExprTest, Casts) {
  EXPECT_EQ(Eval("int64('42')"), I(42));
  EXPECT_EQ(Eval("int64(' -7 ')"), I(-7));
  EXPECT_EQ(Eval("int64('+7')"), I(7));
  EXPECT_EQ(Eval("int64('4x')"), Null());
  EXPECT_EQ(Eval("int64('')"), Null());
  EXPECT_EQ(Eval("int64('1.5')"), Null());
  EXPECT_EQ(Eval("int64('99999999999999999999')"), Null());
  EXPECT_EQ(Eval("int64(3.9)"), I(3));
  EXPECT_EQ(Eval("int64(-3.9)"), I(-3));
  EXPECT_EQ(Eval("int64(1e30)"), Null());
  EXPECT_EQ(Eval("int64(double('nan'))"), Null());
  EXPECT_EQ(Eval("int64(true)"), I(1));
  EXPECT_EQ(Eval("int64(t)"), I(kT));
  EXPECT_EQ(Eval("int64(i)"), I(7));
  EXPECT_EQ(Eval("double('2.5')"), D(2.5));
  EXPECT_EQ(Eval("double(' 1e3 ')"), D(1000));
  EXPECT_EQ(Eval("double('abc')"), Null());
  EXPECT_EQ(Eval("double('1e999')"), Null());
  EXPECT_EQ(Eval("double(i)"), D(7.0));
  EXPECT_EQ(Eval("double(false)"), D(0.0));
  EXPECT_EQ(Eval("string(i)"), S("7"));
  EXPECT_EQ(Eval("string(mn)"), S("-9223372036854775808"));
  EXPECT_EQ(Eval("string(d)"), S("2.5"));
  EXPECT_EQ(Eval("string(b)"), S("true"));
  EXPECT_EQ(Eval("string(t)"), S("2024-01-02 03:04:05.678"));
  EXPECT_EQ(Eval("string(by)"), S(std::string_view("a\0b", 3)));
  EXPECT_EQ(Eval("string(s)"), S("Hello"));
  EXPECT_EQ(Eval("string(ni)"), Null());
  EXPECT_EQ(Eval("bool('true')"), B(true));
  EXPECT_EQ(Eval("bool('FALSE')"), B(false));
  EXPECT_EQ(Eval("bool(' yes ')"), B(true));
  EXPECT_EQ(Eval("bool('0')"), B(false));
  EXPECT_EQ(Eval("bool('maybe')"), Null());
  EXPECT_EQ(Eval("bool(0)"), B(false));
  EXPECT_EQ(Eval("bool(j)"), B(true));
  EXPECT_EQ(Eval("bool(2.0)"), B(true));
  EXPECT_EQ(TypeOf("int64(ns)"), Type::kInt64);
  EXPECT_EQ(TypeOf("string(null)"), Type::kString);
  // Round trips.
  EXPECT_EQ(Eval("int64(string(mn)) = mn"), B(true));
  EXPECT_EQ(Eval("double(string(0.1)) = 0.1"), B(true));
  EXPECT_EQ(Eval("to_timestamp(string(t)) = t"), B(true));
}

TEST_F(ExprTest, Timestamps) {
  EXPECT_EQ(Eval("to_timestamp(0)"), Ts(0));
  EXPECT_EQ(Eval("to_timestamp(1704164645678)"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp(1.5)"), Ts(1));
  EXPECT_EQ(Eval("to_timestamp(t)"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 03:04:05.678')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02T03:04:05.678Z')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02T03:04:05.678123456')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02T03:04:05.6')"), Ts(kT - 78));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 03:04:05')"), Ts(kT - 678));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02T04:04:05.678+01:00')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2024-01-01T22:04:05.678-0500')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('1970-01-01')"), Ts(0));
  EXPECT_EQ(Eval("to_timestamp('1969-12-31 23:59:59.999')"), Ts(-1));
  EXPECT_EQ(Eval("to_timestamp('2024-02-29')"), Ts(1709164800000));
  EXPECT_EQ(Eval("to_timestamp('2000-02-29')"), Ts(951782400000));
  EXPECT_EQ(Eval("to_timestamp('2023-02-29')"), Null());
  EXPECT_EQ(Eval("to_timestamp('1900-02-29')"), Null());
  EXPECT_EQ(Eval("to_timestamp('2024-13-01')"), Null());
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 24:00:00')"), Null());
  // Seconds are optional in the one ISO-8601 grammar (parse always accepted this).
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 03:04')"), Ts(kT - 5678));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 03:04:05.')"), Null());
  EXPECT_EQ(Eval("to_timestamp('2024-01-02x')"), Null());
  EXPECT_EQ(Eval("to_timestamp('garbage')"), Null());
  EXPECT_EQ(Eval("to_timestamp('')"), Null());
  EXPECT_EQ(TypeOf("to_timestamp(i)"), Type::kTimestamp);
  EXPECT_EQ(Eval("epoch_millis(t)"), I(kT));
  EXPECT_EQ(Eval("year(t)"), I(2024));
  EXPECT_EQ(Eval("month(t)"), I(1));
  EXPECT_EQ(Eval("day(t)"), I(2));
  EXPECT_EQ(Eval("hour(t)"), I(3));
  EXPECT_EQ(Eval("minute(t)"), I(4));
  EXPECT_EQ(Eval("second(t)"), I(5));
  EXPECT_EQ(Eval("hour(to_timestamp(-1))"), I(23));
  EXPECT_EQ(Eval("year(to_timestamp(-1))"), I(1969));
}

TEST_F(ExprTest, TimestampArithmetic) {
  EXPECT_EQ(Eval("t + 1000"), Ts(kT + 1000));
  EXPECT_EQ(Eval("1000 + t"), Ts(kT + 1000));
  EXPECT_EQ(Eval("t - 678"), Ts(kT - 678));
  EXPECT_EQ(Eval("t - t"), I(0));
  EXPECT_EQ(Eval("t - to_timestamp(0)"), I(kT));
  EXPECT_EQ(TypeOf("t + i"), Type::kTimestamp);
  EXPECT_EQ(TypeOf("t - t"), Type::kInt64);
  EXPECT_EQ(Eval("t + 86400000 > t"), B(true));
  EXPECT_EQ(Eval("date_format(t + 86400000 * 365, '%Y-%m-%d')"), S("2025-01-01"));  // 2024 leaps
}

TEST_F(ExprTest, DateFormatAndParse) {
  EXPECT_EQ(Eval("date_format(t, '%Y-%m-%d %H:%M:%S')"), S("2024-01-02 03:04:05"));
  EXPECT_EQ(Eval("date_format(t, '%Y%m%dT%H%M%S.%f')"), S("20240102T030405.678"));
  EXPECT_EQ(Eval("date_format(t, 'day %j of %Y, 100%%')"), S("day 002 of 2024, 100%"));
  EXPECT_EQ(Eval("date_format(to_timestamp('2024-12-31'), '%j')"), S("366"));
  EXPECT_EQ(Eval("date_format(to_timestamp('2023-12-31'), '%j')"), S("365"));
  EXPECT_EQ(Eval("date_format(to_timestamp(-1), '%Y-%m-%d %H:%M:%S.%f')"),
            S("1969-12-31 23:59:59.999"));
  EXPECT_EQ(Eval("date_format(to_timestamp('0001-01-01'), '%Y-%m-%d')"), S("0001-01-01"));
  // The extremes of the int64 range (as java.time renders them).
  EXPECT_EQ(Eval("date_format(to_timestamp(9223372036854775807), '%Y-%m-%dT%H:%M:%S.%f')"),
            S("292278994-08-17T07:12:55.807"));
  EXPECT_EQ(Eval("date_format(to_timestamp(-9223372036854775808), '%Y-%m-%dT%H:%M:%S.%f')"),
            S("-292275055-05-16T16:47:04.192"));
  EXPECT_EQ(Eval("date_format(t, s)"), S("Hello"));
  EXPECT_EQ(Eval("date_format(t, if(b, '%Q', s))"), Null());  // bad runtime format
  EXPECT_EQ(Eval("to_timestamp('02/01/2024 03:04:05', '%d/%m/%Y %H:%M:%S')"), Ts(kT - 678));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02 03:04:05.678', '%Y-%m-%d %H:%M:%S.%f')"), Ts(kT));
  EXPECT_EQ(Eval("to_timestamp('2/1/2024', '%d/%m/%Y')"), Ts(1704153600000));
  EXPECT_EQ(Eval("to_timestamp('20240102', '%Y%m%d')"), Ts(1704153600000));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02   3:04', '%Y-%m-%d %H:%M')"), Ts(kT - 5678));
  EXPECT_EQ(Eval("to_timestamp('100% 2024', '100%% %Y')"), Ts(1704067200000));
  EXPECT_EQ(Eval("to_timestamp('2024-01-02', '%d/%m/%Y')"), Null());
  EXPECT_EQ(Eval("to_timestamp('31/02/2024', '%d/%m/%Y')"), Null());
  EXPECT_EQ(Eval("to_timestamp('02/01/2024 extra', '%d/%m/%Y')"), Null());
  EXPECT_EQ(Eval("to_timestamp(s, if(b, '%Q', s))"), Null());
  EXPECT_EQ(Eval("to_timestamp(date_format(t, '%d.%m.%Y %H:%M:%S.%f'), '%d.%m.%Y %H:%M:%S.%f')"),
            Ts(kT));
}

// Checks the calendar against the C library over a wide range of dates (years 1000..9999).
TEST(ExprCalendarTest, MatchesGmtime) {
  Schema schema({{"t", Type::kTimestamp}});
  auto fmt = CompileExpr("date_format(t, '%Y-%m-%d %H:%M:%S %j')", schema);
  auto round_trip = CompileExpr(
      "to_timestamp(date_format(t, '%Y-%m-%d %H:%M:%S.%f')) = t and "
      "to_timestamp(date_format(t, '%Y-%m-%dT%H:%M:%S.%fZ')) = t",
      schema);
  auto parts = CompileExpr(
      "year(t) * 10000000000 + month(t) * 100000000 + day(t) * 1000000 + hour(t) * 10000 + "
      "minute(t) * 100 + second(t)",
      schema);
  ASSERT_TRUE(fmt.ok() && round_trip.ok() && parts.ok());
  Row row(1);
  Value v;
  int checked = 0;
  for (int64_t day = -354000; day < 2932000; day += 97) {
    int64_t ms = day * 86400000 + (day * 7919 % 86400) * 1000 + (day & 0x3ff) % 1000;
    if (ms < day * 86400000) ms += 86400000;
    row[0] = Value::Timestamp(ms);
    time_t secs = static_cast<time_t>(day * 86400 + (ms - day * 86400000) / 1000);
    struct tm tm;
    ASSERT_NE(gmtime_r(&secs, &tm), nullptr);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S %j", &tm);
    (*fmt)->Eval(row, v);
    ASSERT_EQ(v.s, buf) << "ms=" << ms;
    (*round_trip)->Eval(row, v);
    ASSERT_EQ(v, Value::Bool(true)) << "ms=" << ms;
    (*parts)->Eval(row, v);
    int64_t expected = (tm.tm_year + 1900LL) * 10000000000 + (tm.tm_mon + 1) * 100000000LL +
                       tm.tm_mday * 1000000LL + tm.tm_hour * 10000 + tm.tm_min * 100 + tm.tm_sec;
    ASSERT_EQ(v, Value::Int64(expected)) << "ms=" << ms;
    ++checked;
  }
  EXPECT_GT(checked, 30000);
}

TEST_F(ExprTest, Hash) {
  EXPECT_EQ(TypeOf("hash(i)"), Type::kInt64);
  EXPECT_EQ(Eval("hash(i) = hash(7)"), B(true));
  EXPECT_EQ(Eval("hash(i) = hash(8)"), B(false));
  EXPECT_EQ(Eval("hash(i) = hash(7.0)"), B(false));  // the type is part of the key
  EXPECT_EQ(Eval("hash('a', 'bc') = hash('ab', 'c')"), B(false));
  EXPECT_EQ(Eval("hash(s, i) = hash('Hello', 7)"), B(true));
  EXPECT_EQ(Eval("hash(s, i) = hash(i, s)"), B(false));
  EXPECT_EQ(Eval("hash(0.0) = hash(-0.0)"), B(true));
  EXPECT_EQ(Eval("hash(double('nan')) = hash(-double('nan'))"), B(true));
  EXPECT_EQ(Eval("is_null(hash(ni))"), B(false));  // nulls hash too
  EXPECT_EQ(Eval("hash(ni) = hash(ns)"), B(true));
  EXPECT_EQ(Eval("hash(ni) = hash(0)"), B(false));
  // Golden values: the hash must never change across builds, processes and machines, since it
  // may decide partitioning of persisted state.
  EXPECT_EQ(Eval("hash(7)"), I(-2473394082082535756));
  EXPECT_EQ(Eval("hash('Hello', 7, 2.5, true, t, null)"), I(1492356481249820608));
  EXPECT_EQ(Eval("hash(s, i, d, b, t, ni)"), I(1492356481249820608));
  EXPECT_EQ(Eval("hash(by)"), I(6654318728566419633));
}

// --- Bad input.

TEST_F(ExprTest, UnknownField) {
  std::string m = Error("i + nope");
  EXPECT_THAT(m, HasSubstr("unknown field 'nope' at column 5"));
  EXPECT_THAT(m, HasSubstr("available fields: i, j, d, s, e, u, b, f, t, by"));
  EXPECT_THAT(Error("S = 'x'"), HasSubstr("did you mean 's'?"));
  EXPECT_THAT(Error("`no such`"), HasSubstr("unknown field 'no such' at column 1"));
  EXPECT_THAT(CompileExpr("x", Schema()).status().message(), HasSubstr("(none)"));
}

TEST_F(ExprTest, UnknownFunction) {
  std::string m = Error("1 + frob(i)");
  EXPECT_THAT(m, HasSubstr("unknown function 'frob' at column 5"));
  EXPECT_THAT(m, HasSubstr("coalesce"));
  EXPECT_THAT(Error("now()"), HasSubstr("unknown function 'now' at column 1"));
}

TEST_F(ExprTest, WrongArgumentCount) {
  EXPECT_THAT(Error("lower()"), HasSubstr("lower() takes 1 argument but got 0 at column 1"));
  EXPECT_THAT(Error("i + lower(s, s)"),
              HasSubstr("lower() takes 1 argument but got 2 at column 5"));
  EXPECT_THAT(Error("substr(s)"), HasSubstr("substr() takes 2 or 3 arguments but got 1"));
  EXPECT_THAT(Error("substr(s, 1, 2, 3)"), HasSubstr("takes 2 or 3 arguments but got 4"));
  EXPECT_THAT(Error("coalesce()"), HasSubstr("coalesce() takes at least 1 argument"));
  EXPECT_THAT(Error("concat()"), HasSubstr("concat() takes at least 1 argument"));
  EXPECT_THAT(Error("hash()"), HasSubstr("hash() takes at least 1 argument"));
  EXPECT_THAT(Error("if(b, 1)"), HasSubstr("if() takes 3 arguments but got 2"));
  EXPECT_THAT(Error("to_timestamp(s, s, s)"), HasSubstr("to_timestamp() takes 1 or 2 arguments"));
  EXPECT_THAT(Error("date_format(t)"), HasSubstr("date_format() takes 2 arguments"));
}

TEST_F(ExprTest, TypeMismatch) {
  EXPECT_THAT(Error("'a' * 2"),
              HasSubstr("operator '*' cannot be applied to string and int64 at column 5"));
  EXPECT_THAT(Error("not 5"), HasSubstr("operand of 'not' must be bool, but is int64 at column 1"));
  EXPECT_THAT(Error("!s"), HasSubstr("operand of '!' must be bool, but is string at column 1"));
  EXPECT_THAT(Error("s + 1"), HasSubstr("use concat()"));
  EXPECT_THAT(Error("b + 1"), HasSubstr("cannot be applied to bool and int64 at column 3"));
  EXPECT_THAT(Error("t + 1.5"), HasSubstr("timestamp and double"));
  EXPECT_THAT(Error("t * 2"), HasSubstr("timestamp and int64"));
  EXPECT_THAT(Error("i - t"), HasSubstr("int64 and timestamp"));
  EXPECT_THAT(Error("s + by"), HasSubstr("string and bytes"));
  EXPECT_THAT(Error("-s"), HasSubstr("operator '-' cannot be applied to string at column 1"));
  EXPECT_THAT(Error("-b"), HasSubstr("cannot be applied to bool"));
  EXPECT_THAT(Error("true * null"), HasSubstr("cannot be applied to bool"));
  EXPECT_THAT(Error("i = s"), HasSubstr("cannot compare int64 with string using '=' at column 3"));
  EXPECT_THAT(Error("b < f"), HasSubstr("cannot compare bool with bool using '<' at column 3"));
  EXPECT_THAT(Error("b >= null"), HasSubstr("cannot compare bool"));
  EXPECT_THAT(Error("t > 5"), HasSubstr("cannot compare timestamp with int64"));
  EXPECT_THAT(Error("s = by"), HasSubstr("cannot compare string with bytes"));
  EXPECT_THAT(Error("i and b"), HasSubstr("operands of 'and' must be bool, but the operand is "
                                          "int64 at column 1"));
  EXPECT_THAT(Error("b or 's'"), HasSubstr("operands of 'or' must be bool"));
  EXPECT_THAT(Error("b || i"), HasSubstr("at column 6"));
  EXPECT_THAT(Error("lower(i)"),
              HasSubstr("argument 1 of lower() must be string but is int64 at column 7"));
  EXPECT_THAT(Error("length(i)"), HasSubstr("must be string or bytes"));
  EXPECT_THAT(Error("substr(s, '1')"), HasSubstr("argument 2 of substr() must be int64"));
  EXPECT_THAT(Error("abs(s)"), HasSubstr("must be int64 or double"));
  EXPECT_THAT(Error("if(1, 2, 3)"), HasSubstr("argument 1 of if() must be bool"));
  EXPECT_THAT(Error("if(b, 1, 's')"), HasSubstr("argument 3 is string but argument 2 is int64"));
  EXPECT_THAT(Error("coalesce(i, null, s)"),
              HasSubstr("argument 3 is string but argument 1 is int64 at column 19"));
  EXPECT_THAT(Error("int64(by)"), HasSubstr("argument 1 of int64() must be"));
  EXPECT_THAT(Error("bool(t)"), HasSubstr("argument 1 of bool() must be"));
  EXPECT_THAT(Error("hour(i)"), HasSubstr("must be timestamp"));
  EXPECT_THAT(Error("epoch_millis(i)"), HasSubstr("must be timestamp"));
  EXPECT_THAT(Error("date_format(i, '%Y')"), HasSubstr("must be timestamp"));
  EXPECT_THAT(Error("date_format(t, '%Y %Q')"),
              HasSubstr("unsupported directive '%Q' in the format of date_format() at column 16 "
                        "(supported: %Y %m %d %H %M %S %f %j %F %T %%)"));
  EXPECT_THAT(Error("date_format(t, '%')"), HasSubstr("unsupported directive '%'"));
  EXPECT_THAT(Error("to_timestamp(s, '%j')"), HasSubstr("unsupported directive '%j'"));
  EXPECT_THAT(Error("to_timestamp(b)"), HasSubstr("argument 1 of to_timestamp() must be"));
}

TEST_F(ExprTest, LexicalErrors) {
  EXPECT_THAT(Error("'abc"), HasSubstr("unterminated string literal starting at column 1"));
  EXPECT_THAT(Error("s = 'it''s"), HasSubstr("unterminated string literal starting at column 5"));
  EXPECT_THAT(Error("`abc + 1"), HasSubstr("unterminated quoted identifier starting at column 1"));
  EXPECT_THAT(Error("`` + 1"), HasSubstr("empty quoted identifier at column 1"));
  EXPECT_THAT(Error("s = \"x\""), HasSubstr("at column 5: string literals use single quotes"));
  EXPECT_THAT(Error("i # 2"), HasSubstr("unexpected character '#' at column 3"));
  EXPECT_THAT(Error("b & f"), HasSubstr("unexpected character '&' at column 3"));
  EXPECT_THAT(Error("b | f"), HasSubstr("unexpected character '|' at column 3"));
  EXPECT_THAT(Error("caf\xc3\xa9"), HasSubstr("unexpected character '\\xc3' at column 4"));
  EXPECT_THAT(Error("1.2.3"), HasSubstr("malformed number '1.2.3' at column 1"));
  EXPECT_THAT(Error("i + 12abc"), HasSubstr("malformed number '12abc' at column 5"));
  EXPECT_THAT(Error("1e"), HasSubstr("malformed number '1e'"));
  EXPECT_THAT(Error("1."), HasSubstr("malformed number '1.'"));
  // The first error in source order wins.
  EXPECT_THAT(Error("i + ) 'abc"), HasSubstr("unexpected ')' at column 5"));
  EXPECT_THAT(Error("i + 'abc"), HasSubstr("unterminated string literal starting at column 5"));
}

TEST_F(ExprTest, SyntaxErrors) {
  EXPECT_THAT(Error(""), HasSubstr("empty expression"));
  EXPECT_THAT(Error("   \t\n"), HasSubstr("empty expression"));
  EXPECT_THAT(Error("1 2"),
              HasSubstr("unexpected '2' at column 3 (expected the end of the expression)"));
  EXPECT_THAT(Error("i s"), HasSubstr("unexpected 's' at column 3"));
  EXPECT_THAT(Error("(1))"), HasSubstr("unexpected ')' at column 4"));
  EXPECT_THAT(Error("1 +"), HasSubstr("unexpected end of expression at column 4"));
  EXPECT_THAT(Error("(1 + 2"), HasSubstr("unexpected end of expression at column 7 (expected ')' "
                                         "to close the '(' at column 1)"));
  EXPECT_THAT(Error("lower(s"), HasSubstr("expected ',' or ')' in the call to lower()"));
  EXPECT_THAT(Error("concat(s,)"), HasSubstr("unexpected ')' at column 10"));
  EXPECT_THAT(Error("concat(s s)"), HasSubstr("unexpected 's' at column 10"));
  EXPECT_THAT(Error("()"), HasSubstr("unexpected ')' at column 2"));
  EXPECT_THAT(Error("* 2"), HasSubstr("unexpected '*' at column 1"));
  EXPECT_THAT(Error("i and"), HasSubstr("unexpected end of expression at column 6"));
  EXPECT_THAT(Error("and"), HasSubstr("unexpected 'and' at column 1"));
  EXPECT_THAT(Error("1 < 2 < 3"), HasSubstr("comparison operators cannot be chained ('<') at "
                                            "column 7; combine comparisons with 'and'"));
  EXPECT_THAT(Error("i = = 1"), HasSubstr("unexpected '=' at column 5"));
  EXPECT_THAT(Error("1 +* 2"), HasSubstr("unexpected '*' at column 4"));
}

TEST_F(ExprTest, NestingIsCapped) {
  // 10000 open parentheses: a clear error, not a stack overflow.
  std::string open(10000, '(');
  EXPECT_THAT(Error(open), HasSubstr("nested too deeply (more than 256 levels) at column 257"));
  EXPECT_THAT(Error(open + "1" + std::string(10000, ')')), HasSubstr("nested too deeply"));
  std::string nots;
  for (int k = 0; k < 10000; ++k) nots += "not ";
  EXPECT_THAT(Error(nots + "b"), HasSubstr("nested too deeply"));
  EXPECT_THAT(Error(std::string(10000, '-') + "i"), HasSubstr("nested too deeply"));
  EXPECT_THAT(Error(std::string(10000, '!') + "b"), HasSubstr("nested too deeply"));
  std::string calls;
  for (int k = 0; k < 10000; ++k) calls += "abs(";
  EXPECT_THAT(Error(calls + "i"), HasSubstr("nested too deeply"));
  // Within the limit it works.
  EXPECT_EQ(Eval(std::string(200, '(') + "i" + std::string(200, ')')), I(7));
  std::string deep_calls;
  for (int k = 0; k < 200; ++k) deep_calls += "abs(";
  EXPECT_EQ(Eval(deep_calls + "j" + std::string(200, ')')), I(3));
}

TEST_F(ExprTest, LongChains) {
  // Long flat sums of fields build deep trees: capped, not a stack overflow at evaluation.
  std::string sum = "i";
  for (int k = 0; k < 5000; ++k) sum += " + i";
  EXPECT_THAT(Error(sum), HasSubstr("too large"));
  std::string ok_sum = "i";
  for (int k = 0; k < 500; ++k) ok_sum += " + i";
  EXPECT_EQ(Eval(ok_sum), I(7 * 501));
  // Constant sums fold as they are parsed.
  std::string const_sum = "1";
  for (int k = 0; k < 20000; ++k) const_sum += "+1";
  EXPECT_EQ(Eval(const_sum), I(20001));
  // or/and chains are flat.
  std::string in_list;
  for (int k = 0; k < 20000; ++k) in_list += "i = " + std::to_string(k + 100) + " or ";
  EXPECT_EQ(Eval(in_list + "i = 7"), B(true));
  EXPECT_EQ(Eval(in_list + "i = 8"), B(false));
}

TEST_F(ExprTest, Predicates) {
  Value v;
  auto p = CompilePredicate("i > 5 and s = 'Hello'", schema_);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  (*p)->Eval(row_, v);
  EXPECT_EQ(v, B(true));
  EXPECT_TRUE(CompilePredicate("null", schema_).ok());
  EXPECT_TRUE(CompilePredicate("nb", schema_).ok());
  auto bad = CompilePredicate("i + 1", schema_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("predicate must be a bool expression"));
  EXPECT_THAT(bad.status().message(), HasSubstr("int64"));
  EXPECT_FALSE(CompilePredicate("i >", schema_).ok());
}

TEST_F(ExprTest, SteadyStateEvaluationDoesNotAllocate) {
  const char* exprs[] = {
      "lower(long) = 'the quick brown fox jumps over the lazy dog, several times over'",
      "substr(long, 2, 30)",
      "upper(long) + long",
      "concat(long, '-', i, '-', d, '-', t)",
      "coalesce(ns, long)",
      "if(b, upper(long), long)",
      "date_format(t, '%Y-%m-%d %H:%M:%S.%f and some long literal text')",
      "hash(long, i, d) % 16 = 3 or length(trim(long)) > 10 and i * 2 + j < 100",
      "to_timestamp(date_format(t, '%Y-%m-%d %H:%M:%S')) > t - 86400000",
      "string(t)",
      "long",
      "case when i > 50 then long when i > 5 then upper(long) else 'x' end",
      "regexp_extract(long, 'J(um)ps (O[a-z]+)', 2)",
      "split_index(long, ' ', 4)",
      "count_char(long, 'e')",
  };
  for (const char* text : exprs) {
    auto e = CompileExpr(text, schema_);
    ASSERT_TRUE(e.ok()) << text << ": " << e.status().ToString();
    Value out;
    (*e)->Eval(row_, out);  // warms up out's capacity
    g_allocs = 0;
    g_count_allocs = true;
    for (int k = 0; k < 100; ++k) (*e)->Eval(row_, out);
    g_count_allocs = false;
    EXPECT_EQ(g_allocs, 0) << text;
  }
}

TEST_F(ExprTest, ConcurrentEvaluation) {
  auto e = CompileExpr("concat(upper(long), i * 3, date_format(t + i, '%H:%M:%S.%f'))", schema_);
  ASSERT_TRUE(e.ok());
  Value expected;
  (*e)->Eval(row_, expected);
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&] {
      Value v;
      for (int n = 0; n < 2000; ++n) {
        (*e)->Eval(row_, v);
        if (!(v == expected)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace weir
