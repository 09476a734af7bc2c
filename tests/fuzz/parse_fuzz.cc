// libFuzzer target for what reads untrusted message bytes: the `parse` operator (JSON with
// nested paths and every conversion, CSV with quoting) and the simdjson reader under it. Besides
// crashes and sanitizer reports it checks the contract: every input row comes out either as a
// typed row (each value of its field's type, or null where allowed) or as a dirty record
// (counted), never both and never neither.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/operator.h"

namespace {

struct Count : weir::Output {
  size_t rows = 0;
  const weir::Schema* schema = nullptr;
  weir::Status Emit(weir::RowBatch& b) override {
    for (size_t i = 0; i < b.size(); ++i) {
      for (size_t k = 0; k < schema->size(); ++k) {
        const weir::Value& v = b[i][k];
        if (!v.is_null() && v.type != schema->field(k).type) std::abort();
      }
    }
    rows += b.size();
    return weir::Status::Ok();
  }
};

struct Parser {
  std::unique_ptr<weir::Operator> op;
  weir::Schema out;
  weir::Schema in;
};

Parser Make(const char* yaml) {
  Parser p;
  p.in = weir::Schema({{"value", weir::Type::kString},
                       {"topic", weir::Type::kString},
                       {"partition", weir::Type::kInt64},
                       {"offset", weir::Type::kInt64}});
  auto c = weir::Config::Parse(yaml, "fuzz");
  if (!c.ok()) std::abort();
  const weir::OperatorFactory* f = weir::BuiltinOperators().Find("parse");
  auto s = f->Validate(*c, p.in);
  if (!s.ok()) std::abort();
  p.out = *s;
  auto op = f->Create(*c, p.in);
  if (!op.ok()) std::abort();
  p.op = std::move(op).value();
  weir::OperatorContext ctx;
  if (!p.op->Open(ctx).ok()) std::abort();
  return p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Parser json = Make(
      "{format: json, on_error: skip, record_id: true, keep: [offset], fields: ["
      "{name: a, type: int64}, {name: b, type: double, path: x.y}, {name: c, type: bool, required: false},"
      "{name: d, type: timestamp, path: t.0}, {name: e, type: timestamp, path: t.1, format: epoch_s},"
      "{name: f, type: timestamp, path: p, format: \"%Y-%m-%d %H:%M\"}, {name: g, type: string, path: o},"
      "{name: h, type: int64, path: n, default: \"7\"}]}");
  static Parser csv = Make(
      "{format: csv, on_error: skip, fields: [{name: a, column: 0}, {name: b, type: int64, column: 1},"
      "{name: c, type: timestamp, column: 2, required: false}, {name: d, type: double, column: 9, default: \"1.5\"}]}");
  Parser& p = (size > 0 && data[0] % 2) ? csv : json;
  weir::RowBatch batch;
  weir::Row& r = batch.Append(4);
  r[0].SetString(std::string_view(reinterpret_cast<const char*>(data), size));
  r[1].SetString("t");
  r[2].SetInt64(1);
  r[3].SetInt64(2);
  Count out;
  out.schema = &p.out;
  if (!p.op->Process(batch, out).ok()) std::abort();  // on_error: skip never fails
  if (out.rows > 1) std::abort();
  return 0;
}
