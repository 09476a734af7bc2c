// lookup_join (docs/joins.md "Lookup join"): each row joined with a bounded CSV side table read
// at Open; config errors at submission, file errors at Open, never a crash.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "keyed_operator_test.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/operator.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

class LookupJoinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("weir-lookup-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    input_.Add("auction", Type::kInt64);
    input_.Add("value", Type::kString);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string WriteSide(const std::string& text) {
    const std::string path = (dir_ / "side.csv").string();
    std::ofstream(path, std::ios::binary) << text;
    return path;
  }

  // The config with `path` filled in (a "{path}" placeholder).
  std::string Config_(std::string yaml, const std::string& path) {
    const size_t at = yaml.find("{path}");
    if (at != std::string::npos) yaml.replace(at, 6, path);
    return yaml;
  }

  Result<Schema> Validate(const std::string& yaml) {
    WEIR_ASSIGN_OR_RETURN(Config c, Config::Parse(yaml, "vertex 'look': config"));
    return BuiltinOperators().Find("lookup_join")->Validate(c, input_);
  }

  Status Make(const std::string& yaml) {
    WEIR_ASSIGN_OR_RETURN(Config c, Config::Parse(yaml, "vertex 'look': config"));
    const OperatorFactory* f = BuiltinOperators().Find("lookup_join");
    WEIR_ASSIGN_OR_RETURN(schema_, f->Validate(c, input_));
    WEIR_ASSIGN_OR_RETURN(op_, f->Create(c, input_));
    OperatorContext ctx;
    ctx.vertex_id = "look";
    return op_->Open(ctx);
  }

  Status Feed(const std::vector<int64_t>& auctions) {
    RowBatch b;
    for (int64_t a : auctions) {
      Row& r = b.Append(2);
      r[0].SetInt64(a);
      r[1].SetString("bid-" + std::to_string(a));
    }
    return op_->Process(b, out_);
  }

  fs::path dir_;
  Schema input_, schema_;
  std::unique_ptr<Operator> op_;
  testing_keyed::Collect out_;
};

constexpr const char* kInner =
    "{path: \"{path}\", schema: [{name: key, type: int64}, {name: value}, {name: w, type: "
    "double}], key: key, lookup: \"auction % 10\"}";

TEST_F(LookupJoinTest, InnerJoinAddsTheSideFieldsRenamedOnClashAndDropsMisses) {
  const std::string path = WriteSide("0,zero,0.5\n1,one,\n\n3,\"th,ree\",3\r\n");
  ASSERT_TRUE(Make(Config_(kInner, path)).ok());
  EXPECT_EQ(schema_.ToString(), "auction:int64, value:string, right_value:string, w:double");
  // A batch reused with other rows: outputs are right each time.
  for (int round = 0; round < 2; ++round) {
    out_.rows.clear();
    ASSERT_TRUE(Feed({10, 21, 12, 33, 4}).ok());
    ASSERT_EQ(out_.rows.size(), 3u);
    EXPECT_EQ(out_.rows[0], "(10, bid-10, zero, 0.5)");
    EXPECT_EQ(out_.rows[1], "(21, bid-21, one, null)");
    EXPECT_EQ(out_.rows[2], "(33, bid-33, th,ree, 3)");
  }
  OperatorSnapshot snap;
  ASSERT_TRUE(op_->Snapshot(1, &snap).ok());
  EXPECT_EQ(snap.counts["filtered"], 4);  // 12 and 4, twice
}

TEST_F(LookupJoinTest, LeftJoinPadsMissesWithNullsAndNullKeysNeverMatch) {
  const std::string path = WriteSide("key;label\n7;seven\n");
  input_ = Schema();
  input_.Add("name", Type::kString);
  ASSERT_TRUE(Make("{path: \"" + path +
                   "\", header: true, csv: {delimiter: \";\"}, kind: left, schema: [{name: key}, "
                   "{name: label}], key: key, lookup: \"if(name = 'x', null, name)\"}")
                  .ok());
  RowBatch b;
  for (const char* n : {"7", "8", "x"}) b.Append(1)[0].SetString(n);
  ASSERT_TRUE(op_->Process(b, out_).ok());
  ASSERT_EQ(out_.rows.size(), 3u);
  EXPECT_EQ(out_.rows[0], "(7, seven)");
  EXPECT_EQ(out_.rows[1], "(8, null)");
  EXPECT_EQ(out_.rows[2], "(x, null)");
}

TEST_F(LookupJoinTest, BadFilesAreClearErrorsAtOpen) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"0,a,1\n1,b\n", "line 2: 2 column(s), the schema has 3"},
      {"0,a,1\nx,b,2\n", "line 2: field 'key': cannot convert 'x' to int64"},
      {"0,a,1\n1,b,z\n", "line 2: field 'w': cannot convert 'z' to double"},
      {"0,a,1\n\n0,b,2\n", "line 3: duplicate key '0'"},
      {",a,1\n", "line 1: the key 'key' is empty"},
      {"0,\"a,1\n", "line 1: CSV: unterminated quoted field"},
      {"0,\xff,1\n", "line 1: field 'value': not valid UTF-8"},
  };
  for (const Case& c : cases) {
    const std::string path = WriteSide(c.text);
    const Status st = Make(Config_(kInner, path));
    ASSERT_FALSE(st.ok()) << c.text;
    EXPECT_NE(st.message().find("config.path: side input '" + path + "' " + c.error),
              std::string::npos)
        << st.message();
  }
  // Missing, not a file, and larger than max_bytes.
  Status st = Make(Config_(kInner, (dir_ / "nope.csv").string()));
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("nope.csv"), std::string::npos) << st.message();
  for (const std::string& not_a_file : {dir_.string(), std::string("/dev/zero")}) {
    st = Make(Config_(kInner, not_a_file));
    ASSERT_FALSE(st.ok()) << not_a_file;
    EXPECT_NE(st.message().find("side input '" + not_a_file + "'"), std::string::npos)
        << st.message();
  }
  const std::string path = WriteSide("0,a,1\n1,b,2\n");
  std::string yaml = Config_(kInner, path);
  yaml.insert(yaml.size() - 1, ", max_bytes: 5");
  st = Make(yaml);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("is 12 bytes, more than max_bytes (5)"), std::string::npos)
      << st.message();
}

TEST_F(LookupJoinTest, ReloadReplacesTheTableAndAFailedReloadFailsTheTask) {
  const std::string path = WriteSide("0,zero,1\n");
  std::string yaml = Config_(kInner, path);
  yaml.insert(yaml.size() - 1, ", reload: 10s");
  ASSERT_TRUE(Make(yaml).ok());
  ASSERT_TRUE(op_->OnProcessingTime(1'000'000, out_).ok());  // the period starts
  WriteSide("0,nought,2\n");
  ASSERT_TRUE(op_->OnProcessingTime(1'009'999, out_).ok());
  ASSERT_TRUE(Feed({10}).ok());
  ASSERT_TRUE(op_->OnProcessingTime(1'010'000, out_).ok());
  ASSERT_TRUE(Feed({20}).ok());
  ASSERT_EQ(out_.rows.size(), 2u);
  EXPECT_EQ(out_.rows[0], "(10, bid-10, zero, 1)");
  EXPECT_EQ(out_.rows[1], "(20, bid-20, nought, 2)");
  WriteSide("0,a,1\n0,b,2\n");
  const Status st = op_->OnProcessingTime(1'020'000, out_);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vertex 'look': lookup_join: reloading the side input: "
                              "config.path: side input"),
            std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("line 2: duplicate key '0'"), std::string::npos) << st.message();
}

TEST_F(LookupJoinTest, ConfigErrorsNameTheKeyAtSubmission) {
  const std::string base = "path: /x.csv, schema: [{name: key, type: int64}, {name: v}]";
  struct Case {
    std::string yaml;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"{" + base + ", key: key, lookup: \"value\"}",
       "config.lookup: 'value' is string but key field 'key' is int64"},
      {"{" + base + ", key: nokey, lookup: auction}", "config.key: unknown field 'nokey'"},
      {"{" + base + ", key: key, lookup: \"nofield\"}", "config.lookup"},
      {"{" + base + ", key: key, lookup: auction, kind: right}", "config.kind: expected inner"},
      {"{" + base + ", key: key, lookup: auction, max_bytes: 2gb}", "config.max_bytes"},
      {"{" + base + ", key: key, lookup: auction, reload: 500ms}",
       "config.reload: must be at least 1s"},
      {"{" + base + ", key: key, lookup: auction, refresh: 1h}", "refresh"},
      {"{path: /x.csv, schema: [{name: key, type: double}, {name: v}], key: key, lookup: "
       "\"double(auction)\"}",
       "config.key: field 'key' is double"},
      {"{path: /x.csv, schema: [{name: key}], key: key, lookup: value}", "config.schema: required"},
      {"{path: /x.csv, schema: [{name: k}, {name: k}], key: k, lookup: value}",
       "config.schema[1].name: duplicate field 'k'"},
      {"{path: /x.csv, schema: [{name: k, type: int64}, {name: t, type: int64, format: "
       "epoch_s}], key: k, lookup: auction}",
       "config.schema[1].format: only timestamp fields take a format"},
  };
  for (const Case& c : cases) {
    auto r = Validate(c.yaml);
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_NE(r.status().message().find(c.error), std::string::npos)
        << c.yaml << ": " << r.status().message();
  }
  EXPECT_TRUE(Validate("{" + base + ", key: key, lookup: \"auction % 10000\"}").ok());
}

// security.allowed_paths covers what a job reads too: the side input.
TEST_F(LookupJoinTest, SideInputOutsideTheAllowedPathsIsRefused) {
  auto job = [](const std::string& path) {
    return "vertices:\n"
           "  - {id: gen, type: datagen, config: {total: 1, fields: [{name: auction, expr: "
           "\"id\"}]}}\n"
           "  - {id: look, type: lookup_join, config: {path: \"" +
           path +
           "\", schema: [{name: k, type: int64}, {name: v}], key: k, lookup: auction}}\n"
           "  - {id: out, type: blackhole}\n"
           "edges:\n  - {from: gen, to: look}\n  - {from: look, to: out}\n";
  };
  const std::string allowed = (dir_ / "in").string();
  auto plan = BuildPlan(ParseJobFile(job(allowed + "/side.csv")).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(CheckJobPaths(*plan, BuiltinOperators(), {allowed}).ok());
  for (const std::string& bad :
       {std::string("/etc/passwd"), allowed + "/../x.csv", std::string("relative.csv")}) {
    plan = BuildPlan(ParseJobFile(job(bad)).value(), BuiltinOperators());
    ASSERT_TRUE(plan.ok()) << plan.status().ToString();
    const Status st = CheckJobPaths(*plan, BuiltinOperators(), {allowed});
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.message().find("vertex 'look': config.path"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("security.allowed_paths"), std::string::npos) << st.message();
  }
}

}  // namespace
}  // namespace weir
