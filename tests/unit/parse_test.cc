// The `parse` operator (JSON / CSV / raw to typed rows, dirty data) and its JSON reader
// (JsonFields, on simdjson On-Demand).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>

#include "../../operators/src/json_fields.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/operator.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

TEST(JsonFields, NestedPathsArraysAndEscapes) {
  JsonFields x({"a", "b.c", "items.1.sku", "s", "obj", "missing.x"});
  std::string err;
  ASSERT_TRUE(x.Parse(R"({"a": 12, "skip": {"deep": [1, {"x": "y"}]}, "b": {"c": true},
      "items": [{"sku": "one"}, {"sku": "t\u00e9\"w\\o\ud83d\ude00"}], "s": "plain",
      "obj": {"k": [1, 2]}})", &err))
      << err;
  EXPECT_EQ(x.value(0).kind, JsonFields::Kind::kNumber);
  EXPECT_EQ(x.value(0).text, "12");
  EXPECT_EQ(x.value(1).kind, JsonFields::Kind::kBool);
  EXPECT_TRUE(x.value(1).b);
  EXPECT_EQ(x.value(2).text, "t\xc3\xa9\"w\\o\xf0\x9f\x98\x80");
  EXPECT_EQ(x.value(3).text, "plain");
  EXPECT_EQ(x.value(4).kind, JsonFields::Kind::kObject);
  EXPECT_EQ(x.value(4).text, R"({"k": [1, 2]})");
  EXPECT_EQ(x.value(5).kind, JsonFields::Kind::kMissing);
  // The next document resets everything.
  ASSERT_TRUE(x.Parse(R"({"a": null})", &err));
  EXPECT_EQ(x.value(0).kind, JsonFields::Kind::kNull);
  EXPECT_EQ(x.value(3).kind, JsonFields::Kind::kMissing);
}

// A path can end at an object and go on into it; keys written with escapes match; a root
// array is indexed like any array; whitespace anywhere is fine.
TEST(JsonFields, PathsThroughValuesEscapedKeysAndRootArrays) {
  JsonFields x({"o", "o.k", "o.k.1", "\u00e9t\u00e9"});
  std::string err;
  ASSERT_TRUE(x.Parse(
      " {\"o\" : { \"k\" : [1, 2.5e1] , \"j\": 3 }  , \"\\u00e9t\\u00e9\": \"summer\"} ", &err))
      << err;
  EXPECT_EQ(x.value(0).kind, JsonFields::Kind::kObject);
  EXPECT_EQ(x.value(0).text, R"({ "k" : [1, 2.5e1] , "j": 3 })");
  EXPECT_EQ(x.value(1).kind, JsonFields::Kind::kArray);
  EXPECT_EQ(x.value(1).text, "[1, 2.5e1]");
  EXPECT_EQ(x.value(2).kind, JsonFields::Kind::kNumber);
  EXPECT_EQ(x.value(2).text, "2.5e1");
  EXPECT_EQ(x.value(3).text, "summer");
  JsonFields arr({"1.sku", "0"});
  ASSERT_TRUE(arr.Parse(R"([7, {"sku": "b"}])", &err)) << err;
  EXPECT_EQ(arr.value(0).text, "b");
  EXPECT_EQ(arr.value(1).text, "7");
  // A scalar document is valid JSON with nothing at any path.
  ASSERT_TRUE(arr.Parse(" 42 ", &err)) << err;
  EXPECT_EQ(arr.value(1).kind, JsonFields::Kind::kMissing);
}

// The texts changed with simdjson (docs/time-and-numbers.md lists them): the offset is where
// simdjson stopped, which for a document that does not close is its start.
TEST(JsonFields, MalformedDocumentsSayWhatAndWhere) {
  JsonFields x({"a"});
  std::string err;
  for (const auto& [doc, want] : std::vector<std::pair<std::string, std::string>>{
           {"", "invalid JSON: empty document"},
           {"  ", "invalid JSON: empty document"},
           {"{\"a\": 1,}", "offset 8: malformed structure"},
           {"{\"a\" 1}", "offset 5: malformed structure"},
           {"{\"a\": 01}", "offset 6: bad number"},
           {"{\"a\": 1.}", "offset 6: bad number"},
           {"{\"a\": -}", "offset 6: bad number"},
           {"{\"a\": .5}", "offset 6: unexpected character"},
           {"{\"a\": \"x}", "invalid JSON: unterminated string"},
           {"{\"a\": tru}", "offset 6: unexpected literal"},
           {"{\"a\": nul}", "offset 6: unexpected literal"},
           {"{\"a\": nullx}", "offset 6: unexpected literal"},
           {"{\"a\": 1} x", "offset 0: an object or array is not closed where the document ends"},
           {"{\"a\": 1}}", "offset 8: unexpected text after the document"},
           {"\"s\" x", "offset 4: unexpected text after the document"},
           {"{\"a\": \"\\ud800\"}", "bad escape or unpaired surrogate"},
           {"{\"a\": \"\\udc00\"}", "bad escape or unpaired surrogate"},
           {"{\"a\": \"\\x\"}", "bad escape or unpaired surrogate"},
           {"{\"a\": \"\x01\"}", "invalid JSON: control character in a string"},
           {"[1, 2", "offset 0: an object or array is not closed"},
           {"-", "offset 0: bad number"},
       }) {
    EXPECT_FALSE(x.Parse(doc, &err)) << doc;
    EXPECT_NE(err.find(want), std::string::npos) << doc << ": " << err;
    EXPECT_EQ(x.error_path(), -1) << doc;
  }
  std::string deep(200, '[');
  EXPECT_FALSE(x.Parse(deep, &err));
  EXPECT_NE(err.find("invalid JSON at offset 0"), std::string::npos) << err;
}

// The bounds: 64 levels of objects and arrays anywhere (also in values no path wants), 16 MiB.
TEST(JsonFields, DepthAndSizeAreBounded) {
  JsonFields x({"a", "p.q"});
  std::string err;
  auto nest = [](int levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  // The document object is level 1: 63 more in a skipped member is 64, the limit.
  EXPECT_TRUE(x.Parse("{\"a\": 1, \"z\": " + nest(63) + "}", &err)) << err;
  EXPECT_FALSE(x.Parse("{\"a\": 1, \"z\": " + nest(64) + "}", &err));
  EXPECT_NE(err.find("invalid JSON at offset 14: nested too deeply (more than 64 levels)"),
            std::string::npos)
      << err;
  // Brackets in strings do not count.
  EXPECT_TRUE(x.Parse("{\"z\": [\"" + std::string(100, '[') + "\"]}", &err)) << err;
  // On a wanted path, and as the wanted value itself.
  EXPECT_FALSE(x.Parse("{\"p\": {\"q\": 1, \"r\": " + nest(63) + "}}", &err));
  EXPECT_NE(err.find("nested too deeply"), std::string::npos) << err;
  EXPECT_FALSE(x.Parse("{\"a\": " + nest(64) + "}", &err));
  EXPECT_NE(err.find("nested too deeply"), std::string::npos) << err;
  EXPECT_TRUE(x.Parse(nest(64), &err)) << err;
  EXPECT_FALSE(x.Parse(nest(65), &err));
  EXPECT_FALSE(x.Parse(nest(100000), &err));
  EXPECT_NE(err.find("nested too deeply"), std::string::npos) << err;

  // Big documents up to the limit parse, and a small one after a big one still does.
  const std::string big_value(3 << 20, 'x');
  ASSERT_TRUE(x.Parse("{\"a\": \"" + big_value + "\"}", &err)) << err;
  EXPECT_EQ(x.value(0).text.size(), big_value.size());
  ASSERT_TRUE(x.Parse("{\"a\": 5}", &err)) << err;
  EXPECT_EQ(x.value(0).text, "5");
  std::string huge = "{\"a\": \"" + std::string(JsonFields::kMaxBytes, 'x') + "\"}";
  EXPECT_FALSE(x.Parse(huge, &err));
  EXPECT_EQ(
      err, "document too large: " + std::to_string(huge.size()) + " bytes (the limit is 16777216)");
}

// A key twice on a wanted path is ambiguous: refused, naming the path. Elsewhere: not looked at.
TEST(JsonFields, DuplicateKeysOnWantedPathsAreRefused) {
  JsonFields x({"a", "u.id"});
  std::string err;
  EXPECT_FALSE(x.Parse(R"({"a": 1, "a": 2})", &err));
  EXPECT_EQ(err, "duplicate key 'a' (path a)");
  EXPECT_EQ(x.error_path(), 0);
  EXPECT_FALSE(x.Parse(R"({"u": {"id": 1}, "u": {"name": "x"}})", &err));
  EXPECT_EQ(err, "duplicate key 'u' (path u.id)");
  EXPECT_EQ(x.error_path(), 1);
  EXPECT_FALSE(x.Parse(R"({"u": {"id": 1, "\u0069d": 2}})", &err)) << "the same key escaped";
  EXPECT_EQ(err, "duplicate key 'id' (path u.id)");
  EXPECT_TRUE(x.Parse(R"({"a": 1, "b": 2, "b": 3, "u": {"id": 4, "n": 1, "n": 2}})", &err)) << err;
  EXPECT_EQ(x.value(1).text, "4");
}

// Invalid UTF-8 anywhere in the document is invalid JSON (simdjson checks every byte), also
// where no path looks.
TEST(JsonFields, InvalidUtf8IsRefusedEverywhere) {
  JsonFields x({"a"});
  std::string err;
  for (const std::string& doc :
       {std::string("{\"a\": \"\xff\"}"), std::string("{\"a\": 1, \"b\": \"caf\xc3\"}"),
        std::string("{\"a\": 1, \"\xed\xa0\x80\": 2}"),  // a surrogate
        std::string("{\"a\": 1, \"b\": \"\xf4\x90\x80\x80\"}")}) {
    EXPECT_FALSE(x.Parse(doc, &err)) << doc;
    EXPECT_EQ(err, "invalid JSON: invalid UTF-8") << doc;
  }
  ASSERT_TRUE(x.Parse("{\"a\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", &err)) << err;
  EXPECT_EQ(x.value(0).text, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
}

// Drives a parse operator directly: rows in, typed rows out, and its "dirty" side output wired
// as the job graph would: dirty.path's committing_file sink driven here, or (no path) the error
// BuildPlan gives for a required side output no edge consumes.
class ParseTest : public ::testing::Test {
 protected:
  struct Capture : Output {
    std::vector<Row> rows;
    Status Emit(RowBatch& b) override {
      for (size_t i = 0; i < b.size(); ++i) rows.push_back(b[i]);
      return Status::Ok();
    }
  };

  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("weir-parse-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    input_.Add("value", Type::kString);
    input_.Add("topic", Type::kString);
    input_.Add("partition", Type::kInt64);
    input_.Add("offset", Type::kInt64);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Hands the side output's batches to the shorthand's sink, as its task would.
  struct SinkLink : Output {
    Operator* sink = nullptr;
    Capture discard;
    Status Emit(RowBatch& b) override { return sink->Process(b, discard); }
  };

  Status Make(const std::string& yaml) {
    auto c = Config::Parse(yaml, "vertex 'p': config");
    if (!c.ok()) return c.status();
    const OperatorFactory* f = BuiltinOperators().Find("parse");
    auto schema = f->Validate(*c, input_);
    if (!schema.ok()) return schema.status();
    schema_ = *schema;
    auto op = f->Create(*c, input_);
    if (!op.ok()) return op.status();
    op_ = std::move(op).value();
    auto sides = f->SideOutputs(*c, input_);
    if (!sides.ok()) return sides.status();
    auto implicit = f->ImplicitSideSinks(*c);
    if (!implicit.ok()) return implicit.status();
    dirty_sink_.reset();
    OperatorContext ctx;
    ctx.job_id = "job";
    for (const SideOutputSpec& side : *sides) {
      for (ImplicitSideSink& is : *implicit) {
        if (is.output != side.name) continue;
        const OperatorFactory* sf = BuiltinOperators().Find(is.type);
        auto sink = sf->Create(is.config, side.schema);
        if (!sink.ok()) return sink.status();
        dirty_sink_ = std::move(sink).value();
        ctx.vertex_id = "p-dirty-sink";
        if (Status st = dirty_sink_->Open(ctx); !st.ok()) return st;
        link_.sink = dirty_sink_.get();
      }
      if (!dirty_sink_ && !side.required_error.empty()) {
        return Status::InvalidArgument(side.required_error);
      }
      ctx.side_output_names.push_back(side.name);
      ctx.side_outputs.push_back(&link_);
    }
    ctx.vertex_id = "p";
    return op_->Open(ctx);
  }
  Status Finish() {
    if (Status st = op_->Finish(out_); !st.ok()) return st;
    return dirty_sink_ ? dirty_sink_->Finish(link_.discard) : Status::Ok();
  }
  Status Close() {
    if (Status st = op_->Close(); !st.ok()) return st;
    return dirty_sink_ ? dirty_sink_->Close() : Status::Ok();
  }
  Status Feed(const std::vector<std::string>& values) {
    RowBatch b;
    int64_t offset = 0;
    for (const auto& v : values) {
      Row& r = b.Append(4);
      r[0].SetString(v);
      r[1].SetString("events");
      r[2].SetInt64(3);
      r[3].SetInt64(offset++);
    }
    return op_->Process(b, out_);
  }
  std::vector<std::string> DirtyLines() {
    std::vector<std::string> lines;
    if (!fs::exists(dir_ / "dirty")) return lines;
    for (const auto& e : fs::directory_iterator(dir_ / "dirty")) {
      if (!e.is_regular_file()) continue;
      std::ifstream in(e.path());
      std::string line;
      while (std::getline(in, line)) lines.push_back(line);
    }
    return lines;
  }

  fs::path dir_;
  Schema input_, schema_;
  std::unique_ptr<Operator> op_;
  std::unique_ptr<Operator> dirty_sink_;
  SinkLink link_;
  Capture out_;
};

TEST_F(ParseTest, JsonToTypedFieldsWithConversionsKeepAndRecordId) {
  ASSERT_TRUE(Make(R"({format: json, keep: [partition], record_id: true, on_error: skip, fields: [
      {name: user, type: int64, path: user.id},
      {name: amount, type: double},
      {name: ts, type: timestamp},
      {name: day, type: timestamp, path: d, format: "%Y/%m/%d"},
      {name: secs, type: timestamp, format: epoch_s},
      {name: ok, type: bool, required: false},
      {name: tag, type: string, default: none}]})")
                  .ok());
  EXPECT_EQ(schema_.ToString(),
            "user:int64, amount:double, ts:timestamp, day:timestamp, secs:timestamp, ok:bool, "
            "tag:string, partition:int64, record_id:string");
  ASSERT_TRUE(Feed({R"({"user": {"id": "42"}, "amount": 1.5, "ts": "2026-11-22T07:05:00.250Z",
                       "d": "2026/11/22", "secs": 1.5, "ok": true, "tag": "x"})",
                    R"({"user": {"id": 7.0}, "amount": "3", "ts": 1000, "d": "2026/01/02",
                       "secs": "2"})"})
                  .ok());
  ASSERT_EQ(out_.rows.size(), 2u);
  const Row& a = out_.rows[0];
  EXPECT_EQ(a[0].i, 42);
  EXPECT_EQ(a[1].d, 1.5);
  EXPECT_EQ(a[2].i, 1795331100250);  // 2026-11-22 07:05:00.250 UTC
  EXPECT_EQ(a[3].i, 1795305600000);  // 2026-11-22 00:00 UTC
  EXPECT_EQ(a[4].i, 1500);
  EXPECT_TRUE(a[5].b);
  EXPECT_EQ(a[6].s, "x");
  EXPECT_EQ(a[7].i, 3);
  EXPECT_EQ(a[8].s, "events/3/0");
  const Row& b = out_.rows[1];
  EXPECT_EQ(b[0].i, 7);
  EXPECT_EQ(b[1].d, 3.0);
  EXPECT_EQ(b[2].i, 1000) << "a JSON number is epoch milliseconds";
  EXPECT_EQ(b[4].i, 2000);
  EXPECT_TRUE(b[5].is_null());
  EXPECT_EQ(b[6].s, "none");
  EXPECT_EQ(b[8].s, "events/3/1");
}

TEST_F(ParseTest, DirtyRecordsGoToTheDirtyOutputWithReasonAndOrigin) {
  ASSERT_TRUE(Make("{format: json, fields: [{name: n, type: int64}, {name: ts, type: timestamp}], "
                   "dirty: {path: \"" + (dir_ / "dirty").string() + "\"}}")
                  .ok());
  ASSERT_TRUE(Feed({R"({"n": 1, "ts": "2026-11-22"})", R"({"n": "x", "ts": "2026-11-22"})",
                    R"({"ts": "2026-11-22"})", R"({"n": 2, "ts": "yesterday"})", R"({"n": 3,)",
                    R"({"n": 4, "ts": "2026-11-22 10:00:00+02:00"})"})
                  .ok());
  ASSERT_EQ(out_.rows.size(), 2u);
  EXPECT_EQ(out_.rows[1][1].i, 1795305600000 + 8 * 3600000);
  // Dirty rows are committed with the job's checkpoints (here: at the end of input).
  EXPECT_TRUE(DirtyLines().empty());
  ASSERT_TRUE(Finish().ok());
  auto lines = DirtyLines();
  ASSERT_EQ(lines.size(), 4u);
  std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return a.substr(a.find("\"offset\"")) < b.substr(b.find("\"offset\""));
  });
  EXPECT_NE(lines[0].find(R"("reason":"field 'n': cannot convert 'x' to int64")"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[0].find(R"("topic":"events","partition":3,"offset":1)"), std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find("missing field 'n' (path n)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[2].find("cannot convert 'yesterday' to timestamp (iso8601)"),
            std::string::npos)
      << lines[2];
  EXPECT_NE(lines[3].find("invalid JSON at offset"), std::string::npos) << lines[3];
  EXPECT_NE(lines[3].find(R"("raw":"{\"n\": 3,")"), std::string::npos) << lines[3];
  ASSERT_TRUE(Close().ok());
}

// What simdjson changed, through the operator: each bad document is one dirty record whose
// reason says why (naming the field where one is concerned); numbers keep the conversions of
// weir/text_formats.h, including their range errors.
TEST_F(ParseTest, JsonBoundsDuplicatesUtf8AndNumberRanges) {
  ASSERT_TRUE(Make("{format: json, fields: [{name: n, type: int64}, {name: d, type: double, "
                   "required: false}, {name: t, type: timestamp, required: false}], "
                   "dirty: {path: \"" +
                   (dir_ / "dirty").string() + "\"}}")
                  .ok());
  const std::string nest = std::string(80, '[') + std::string(80, ']');
  ASSERT_TRUE(Feed({R"({"n": 9223372036854775807, "d": 12345678901234567890123, "t": -1})",
                    R"({"n": 1e3, "d": -0.0})", R"({"n": 9223372036854775808})",
                    R"({"n": -92233720368547758090})", R"({"n": 1, "d": 1e999})", R"({"n": 1.5})",
                    R"({"n": 1, "t": 1e300})", R"({"n": 1, "n": 2})",
                    "{\"n\": 1, \"x\": \"\xc3\x28\"}", "{\"n\": 1, \"x\": " + nest + "}",
                    "{\"n\": \"" + std::string(JsonFields::kMaxBytes, '7') + "\"}"})
                  .ok());
  ASSERT_EQ(out_.rows.size(), 2u);
  EXPECT_EQ(out_.rows[0][0].i, INT64_MAX);
  EXPECT_EQ(out_.rows[0][1].d, 1.2345678901234568e22);
  EXPECT_EQ(out_.rows[0][2].i, -1);
  EXPECT_EQ(out_.rows[1][0].i, 1000) << "an integral JSON number is an int64";
  EXPECT_TRUE(std::signbit(out_.rows[1][1].d));
  ASSERT_TRUE(Finish().ok());
  auto lines = DirtyLines();
  ASSERT_EQ(lines.size(), 9u);
  std::sort(lines.begin(), lines.end(), [](const std::string& a, const std::string& b) {
    return std::stoll(a.substr(a.find("\"offset\":") + 9)) <
           std::stoll(b.substr(b.find("\"offset\":") + 9));
  });
  const std::vector<std::string> want = {
      "field 'n': cannot convert '9223372036854775808' to int64: out of range for int64",
      "field 'n': cannot convert '-92233720368547758090' to int64: out of range for int64",
      "field 'd': cannot convert '1e999' to double: out of range for double",
      "field 'n': cannot convert '1.5' to int64",
      "field 't': cannot convert '1e300' to timestamp (epoch_ms): out of range",
      "field 'n': duplicate key 'n' (path n)",
      "invalid JSON: invalid UTF-8",
      "invalid JSON at offset 14: nested too deeply (more than 64 levels)",
      "document too large: 16777225 bytes (the limit is 16777216)",
  };
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NE(lines[i].find("\"reason\":\"" + want[i]), std::string::npos) << lines[i];
  }
  ASSERT_TRUE(Close().ok());
}

TEST_F(ParseTest, CsvWithQuotesAndMissingColumns) {
  ASSERT_TRUE(Make("{format: csv, on_error: skip, fields: [{name: a, column: 0}, "
                   "{name: n, type: int64, column: 2}, {name: opt, column: 5, required: false}]}")
                  .ok());
  ASSERT_TRUE(Feed({"x,y,7", "\"he said \"\"hi\"\", ok\",,8,,,z\r\n", "only,two", "\"open,1,2"})
                  .ok());
  ASSERT_EQ(out_.rows.size(), 2u);
  EXPECT_EQ(out_.rows[0][0].s, "x");
  EXPECT_EQ(out_.rows[0][1].i, 7);
  EXPECT_TRUE(out_.rows[0][2].is_null());
  EXPECT_EQ(out_.rows[1][0].s, "he said \"hi\", ok");
  EXPECT_EQ(out_.rows[1][1].i, 8);
  EXPECT_EQ(out_.rows[1][2].s, "z");
}

TEST_F(ParseTest, DirtyRatioOverTheWindowFailsTheTaskAndOnErrorFailStopsAtOnce) {
  ASSERT_TRUE(Make("{format: json, on_error: skip, fields: [{name: n, type: int64}], "
                   "dirty: {max_ratio: 0.2, window: 10}}")
                  .ok());
  std::vector<std::string> docs;
  for (int i = 0; i < 10; ++i) docs.push_back(i % 5 == 0 ? "bad" : "{\"n\": 1}");
  ASSERT_TRUE(Feed(docs).ok()) << "2 of 10 is not more than 20%";
  Status st = Feed({"bad", "bad"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("3 of the last 10 records were dirty"), std::string::npos)
      << st.message();
  ASSERT_TRUE(Make("{format: json, on_error: fail, fields: [{name: n, type: int64}]}").ok());
  st = Feed({"{\"n\": true}"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("field 'n': cannot convert 'true' to int64"), std::string::npos)
      << st.message();
}

TEST_F(ParseTest, ConfigErrorsNameTheKey) {
  for (const auto& [yaml, want] : std::vector<std::pair<std::string, std::string>>{
           {"{format: xml, fields: [{name: a}]}", "config.format: expected json, csv or raw"},
           {"{format: json, fields: [{name: a}]}", "config.dirty.path: required"},
           {"{format: json, on_error: skip, field: nope, fields: [{name: a}]}",
            "config.field: unknown input field 'nope'"},
           {"{format: json, on_error: skip, field: partition, fields: [{name: a}]}",
            "parse reads strings or bytes"},
           {"{format: json, on_error: skip, fields: [{name: a, type: date}]}", "unknown type 'date'"},
           {"{format: json, on_error: skip, fields: [{name: a, type: int64, format: x}]}",
            "only timestamp fields take a format"},
           {"{format: json, on_error: skip, fields: [{name: a, type: timestamp, format: x}]}",
            "expected iso8601, epoch_ms, epoch_s or a strptime pattern"},
           {"{format: csv, on_error: skip, fields: [{name: a}]}", "csv fields need a 0-based column"},
           {"{format: json, on_error: skip, fields: [{name: a}, {name: a}]}", "duplicate field 'a'"},
           {"{format: json, on_error: skip, keep: [zz], fields: [{name: a}]}",
            "config.keep: unknown input field 'zz'"},
           {"{format: json, on_error: maybe, fields: [{name: a}]}", "config.on_error"},
           {"{format: json, on_error: skip, fields: [{name: a, type: int64, default: x}]}",
            "config.fields[0].default: field 'a': cannot convert 'x' to int64"},
           {"{format: json, on_error: skip, dirty: {max_ratio: 2}, fields: [{name: a}]}",
            "max_ratio: must be between 0 and 1"},
       }) {
    Status st = Make(yaml);
    ASSERT_FALSE(st.ok()) << yaml;
    EXPECT_NE(st.message().find(want), std::string::npos) << yaml << ": " << st.message();
  }
}

}  // namespace
}  // namespace weir
