// libFuzzer target: the data plane's payloads as a receiving task decodes them. A data
// buffer's body is rows in the serde format (weir/serde.h), read with DeserializeRow the way
// the task's ProcessBuffer does (a record count, then rows until the count, then no trailing
// bytes); a barrier's body is a CheckpointOptions message (BarrierAligner). Byte 0 picks the
// schema (every type, nullable) and whether it is a barrier; bytes 1-2 the record count.
// Contract besides sanitizers: every decoded value has its field's type or is null, and a row
// that decodes re-serializes to the same bytes.
// (The 24-byte frame header is checked inline in runtime/src/network.cc's read loop: length
// bound, kind range, opened channel; owned by the data-plane work, not fuzzed here.)
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "weir.pb.h"
#include "weir/serde.h"
#include "weir/types.h"

namespace {

using weir::Type;

const std::vector<weir::Schema>& Schemas() {
  static const std::vector<weir::Schema> s = {
      weir::Schema({{"a", Type::kInt64}}),
      weir::Schema({{"s", Type::kString}, {"b", Type::kBytes}}),
      weir::Schema({{"t", Type::kTimestamp}, {"d", Type::kDouble}, {"x", Type::kBool}}),
      weir::Schema({{"k", Type::kString}, {"v", Type::kString}, {"topic", Type::kString},
                    {"partition", Type::kInt64}, {"offset", Type::kInt64},
                    {"timestamp", Type::kTimestamp}}),
      weir::Schema({{"b", Type::kBool}, {"i", Type::kInt64}, {"d", Type::kDouble},
                    {"s", Type::kString}, {"y", Type::kBytes}, {"t", Type::kTimestamp}}),
  };
  return s;
}

std::string Seed(uint8_t which, const std::vector<weir::Row>& rows) {
  const weir::Schema& schema = Schemas()[which];
  weir::ByteBuffer buf;
  for (const weir::Row& r : rows) weir::SerializeRow(r, schema, buf);
  std::vector<uint8_t> bytes = buf.Release();
  std::string out;
  out.push_back(static_cast<char>(which * 2));
  out.push_back(static_cast<char>(rows.size() & 0xff));
  out.push_back(static_cast<char>(rows.size() >> 8));
  out.append(bytes.begin(), bytes.end());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  using weir::Value;
  weir::Row r0(1), r0n(1);
  r0[0] = Value::Int64(-5);
  weir::Row r1(2);
  r1[0] = Value::String("héllo");
  r1[1] = Value::Bytes(std::string("\0\xff", 2));
  weir::Row r2(3);
  r2[0] = Value::Timestamp(1764460800000);
  r2[1] = Value::Double(-0.5);
  r2[2] = Value::Bool(true);
  weir::Row r4(6);
  r4[0] = Value::Bool(false);
  r4[1] = Value::Int64(INT64_MIN);
  r4[2] = Value::Double(1e308);
  r4[3] = Value::String(std::string(200, 'x'));
  r4[5] = Value::Timestamp(-1);
  weir::proto::CheckpointOptions opts;
  opts.set_root("/data/ck/j1");
  opts.set_incremental(true);
  weir::fuzz::MaybeWriteSeeds({{"int", Seed(0, {r0, r0n, r0})},
                               {"strings", Seed(1, {r1})},
                               {"mixed", Seed(2, {r2, r2})},
                               {"all", Seed(4, {r4})},
                               {"barrier", std::string("\x01\0\0", 3) + opts.SerializeAsString()}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  if (data[0] & 1) {  // a barrier body
    weir::proto::CheckpointOptions o;
    (void)o.ParseFromArray(data + 3, static_cast<int>(size - 3));
    return 0;
  }
  const weir::Schema& schema = Schemas()[(data[0] >> 1) % Schemas().size()];
  const uint32_t records = data[1] | (static_cast<uint32_t>(data[2]) << 8);
  const uint8_t* p = data + 3;
  const uint8_t* end = data + size;
  weir::Row row;
  for (uint32_t i = 0; i < records; ++i) {
    row.fields.resize(schema.size());
    const uint8_t* start = p;
    if (!weir::DeserializeRow(&p, end, schema, row)) return 0;
    if (p < start || p > end) std::abort();
    for (size_t k = 0; k < schema.size(); ++k) {
      if (!row[k].is_null() && row[k].type != schema.field(k).type) std::abort();
    }
    weir::ByteBuffer again;
    weir::SerializeRow(row, schema, again);
    std::vector<uint8_t> bytes = again.Release();
    // The same row decodes from its own encoding to an equal row (encodings need not be
    // byte-identical: e.g. a non-canonical bool byte).
    const uint8_t* q = bytes.data();
    weir::Row back;
    back.fields.resize(schema.size());
    if (!weir::DeserializeRow(&q, bytes.data() + bytes.size(), schema, back)) std::abort();
    if (q != bytes.data() + bytes.size()) std::abort();
    for (size_t k = 0; k < schema.size(); ++k) {
      const bool both_nan = !row[k].is_null() && row[k].type == Type::kDouble &&
                            row[k].d != row[k].d && back[k].d != back[k].d;
      if (!both_nan && !(row[k] == back[k])) std::abort();
    }
  }
  return 0;
}
