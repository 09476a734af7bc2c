// libFuzzer target for the expression compiler: compiles arbitrary text against a fixed schema
// and, when it compiles, evaluates it on rows of ordinary, extreme and null values. Besides
// crashes and sanitizer reports it checks the compiler's contract: errors are InvalidArgument
// with a message, and a value's type always matches the expression's static type.
//
// Build and run: tests/fuzz/run.sh (a clang build in build-fuzz/ with WEIR_BUILD_FUZZ=ON).
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <string_view>

#include "weir/expr.h"

namespace {

const weir::Schema& FuzzSchema() {
  static const weir::Schema schema({{"i", weir::Type::kInt64},
                                    {"d", weir::Type::kDouble},
                                    {"s", weir::Type::kString},
                                    {"b", weir::Type::kBool},
                                    {"t", weir::Type::kTimestamp},
                                    {"by", weir::Type::kBytes},
                                    {"odd name", weir::Type::kInt64}});
  return schema;
}

struct FuzzRows {
  weir::Row rows[3];
  FuzzRows() {
    using weir::Value;
    weir::Row& a = rows[0];  // ordinary values
    a.fields = {Value::Int64(7),
                Value::Double(2.5),
                Value::String("Hello"),
                Value::Bool(true),
                Value::Timestamp(1704164645678),
                Value::Bytes(std::string_view("a\0b", 3)),
                Value::Int64(-1)};
    weir::Row& b = rows[1];  // extremes
    b.fields = {Value::Int64(std::numeric_limits<int64_t>::min()),
                Value::Double(std::numeric_limits<double>::quiet_NaN()),
                Value::String("h\xc3\xa9llo \xff\x80 2024-02-29T23:59:59.999Z"),
                Value::Bool(false),
                Value::Timestamp(std::numeric_limits<int64_t>::max()),
                Value::Bytes(""),
                Value::Int64(std::numeric_limits<int64_t>::max())};
    rows[2] = weir::Row(FuzzSchema().size());  // all null
  }
};

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const FuzzRows rows;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto compiled = weir::CompileExpr(text, FuzzSchema());
  if (!compiled.ok()) {
    Check(compiled.status().code() == weir::StatusCode::kInvalidArgument);
    Check(!compiled.status().message().empty());
    return 0;
  }
  const weir::Expr& e = **compiled;
  weir::Value out;
  for (const weir::Row& row : rows.rows) {
    e.Eval(row, out);  // into whatever the previous evaluation left there
    Check(out.is_null() || out.type == e.type());
  }
  auto predicate = weir::CompilePredicate(text, FuzzSchema());
  Check(predicate.ok() == (e.type() == weir::Type::kBool || e.type() == weir::Type::kNull));
  return 0;
}
