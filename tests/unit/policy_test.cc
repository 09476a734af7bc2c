// What a job may do (issue #12, item 4; docs/security-policy.md): security.allowed_paths
// (CheckAllowedPath, CheckJobPaths), the librdkafka property policy (checked before
// librdkafka sees a name), and vertex ids.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "kafka_common.h"
#include "kafka_config.h"
#include "restore.h"
#include "weir/builtins.h"
#include "weir/job_graph.h"
#include "weir/paths.h"
#include "weir/record_counters.h"

namespace weir {
namespace {

namespace fs = std::filesystem;

class AllowedPathTest : public ::testing::Test {
 protected:
  AllowedPathTest() {
    dir_ = fs::temp_directory_path() / ("weir-policy-test-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "out");
    fs::create_directories(dir_ / "elsewhere");
  }
  ~AllowedPathTest() override { fs::remove_all(dir_); }
  Status Check(const std::string& p) { return CheckAllowedPath(p, {(dir_ / "out").string()}, "k"); }
  fs::path dir_;
};

TEST_F(AllowedPathTest, PrefixesMatchWholeSegmentsAfterNormalisation) {
  const std::string out = (dir_ / "out").string();
  EXPECT_TRUE(Check(out).ok());
  EXPECT_TRUE(Check(out + "/").ok());
  EXPECT_TRUE(Check(out + "/a/b").ok());
  EXPECT_TRUE(Check(out + "//a///b/").ok());
  EXPECT_TRUE(Check(out + "/not-yet/created").ok());
  EXPECT_FALSE(Check(out + "side").ok()) << "component boundary: /x/out must not allow /x/outside";
  EXPECT_FALSE(Check(out + "side/a").ok());
  EXPECT_FALSE(Check(out + "/../elsewhere").ok());
  EXPECT_FALSE(Check(out + "/a/../../elsewhere").ok());
  EXPECT_FALSE(Check(out + "/./a").ok());
  EXPECT_FALSE(Check("relative/out").ok());
  EXPECT_FALSE(Check("").ok());
  std::string with_nul = out + "/a";
  with_nul.push_back('\0');
  with_nul += "b";
  EXPECT_FALSE(Check(with_nul).ok());
  EXPECT_FALSE(Check("/").ok());
  EXPECT_FALSE(Check("/etc/passwd").ok());
  const Status st = Check("/etc/passwd");
  EXPECT_NE(st.message().find("k: '/etc/passwd' is outside the allowed paths"), std::string::npos)
      << st.message();
  EXPECT_NE(st.message().find("security.allowed_paths: " + out), std::string::npos);
  // No policy: anything; a trailing slash on the prefix changes nothing.
  EXPECT_TRUE(CheckAllowedPath("relative", {}, "k").ok());
  EXPECT_TRUE(CheckAllowedPath(out + "/a", {out + "/"}, "k").ok());
  EXPECT_FALSE(CheckAllowedPath(out + "side", {out + "/"}, "k").ok());
  EXPECT_TRUE(CheckAllowedPath("/anything", {"/"}, "k").ok());
}

TEST_F(AllowedPathTest, SymlinksOutOfAnAllowedDirectoryAreRefused) {
  fs::create_directory_symlink(dir_ / "elsewhere", dir_ / "out" / "link");
  const Status st = Check((dir_ / "out" / "link" / "x").string());
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("resolves (through a symlink)"), std::string::npos) << st.message();
  // An allowed prefix that is itself a symlink: paths through it are fine.
  fs::create_directory_symlink(dir_ / "elsewhere", dir_ / "alias");
  EXPECT_TRUE(CheckAllowedPath((dir_ / "alias" / "x").string(), {(dir_ / "alias").string()}, "k").ok());
}

Result<ExecutionPlan> Plan(const std::string& yaml) {
  WEIR_ASSIGN_OR_RETURN(JobSpec spec, ParseJobFile(yaml));
  return BuildPlan(std::move(spec), BuiltinOperators());
}

std::string OneVertex(const std::string& id) {
  return "vertices:\n  - {id: \"" + id +
         "\", type: datagen, config: {total: 1, fields: [{name: k, expr: \"id\"}]}}\n"
         "  - {id: out, type: blackhole}\nedges:\n  - {from: \"" + id + "\", to: out}\n";
}

TEST(VertexIdTest, OnlyLettersDigitsUnderscoreAndDash) {
  for (const std::string& ok : std::vector<std::string>{"a", "A-b_9", std::string(128, 'x')}) {
    EXPECT_TRUE(Plan(OneVertex(ok)).ok()) << ok;
  }
  for (const std::string& bad :
       std::vector<std::string>{"..", ".", "a/b", "a.b", "", "caf\xc3\xa9", "\xd0\xb0", "a b",
                                "a\\\\b", std::string(129, 'x'), "-/.."}) {
    auto r = Plan(OneVertex(bad));
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("vertex id"), std::string::npos) << r.status().message();
  }
  // Through the proto (what DeployTask and gRPC submissions carry): refused the same way.
  JobSpec spec = ParseJobFile(OneVertex("ok")).value();
  spec.vertices[0].id = "..";
  proto::JobGraph g;
  ToProto(spec, &g);
  auto back = FromProto(g);
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(BuildPlan(std::move(back).value(), BuiltinOperators()).ok());
}

TEST(JobPathsTest, EveryOutputPathKeyAndTheCheckpointDirectory) {
  auto plan = Plan(
      "checkpointing: {interval: 1s, dir: /data/ck}\n"
      "vertices:\n"
      "  - {id: gen, type: datagen, config: {total: 1, fields: [{name: value, expr: \"string(id)\"}]}}\n"
      "  - {id: p, type: parse, config: {format: json, fields: [{name: n, type: int64}], dirty: {path: /data/dirty}}}\n"
      "  - {id: out, type: committing_file, config: {path: /data/out}}\n"
      "edges:\n  - {from: gen, to: p}\n  - {from: p, to: out}\n");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_TRUE(CheckJobPaths(*plan, BuiltinOperators(), {}).ok());
  EXPECT_TRUE(CheckJobPaths(*plan, BuiltinOperators(), {"/data"}).ok());
  auto st = CheckJobPaths(*plan, BuiltinOperators(), {"/data/out", "/data/ck"});
  ASSERT_FALSE(st.ok());
  // The dirty shorthand's sink is named where the job file says it.
  EXPECT_NE(st.message().find("vertex 'p': config.dirty.path: '/data/dirty'"), std::string::npos)
      << st.message();
  st = CheckJobPaths(*plan, BuiltinOperators(), {"/data/out", "/data/dirty"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("checkpointing.dir"), std::string::npos) << st.message();
  st = CheckJobPaths(*plan, BuiltinOperators(), {"/data/dirty", "/data/ck"});
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("vertex 'out': config.path"), std::string::npos) << st.message();
}

Status SourceWith(const std::string& key, const std::string& value) {
  auto c = Config::Parse("{bootstrap: 'b:1', topics: [t], group_id: g, properties: {\"" + key +
                             "\": \"" + value + "\"}}",
                         "vertex 'k': config");
  if (!c.ok()) return c.status();
  return kafka::PlanKafkaSource(*c).status();
}

TEST(KafkaPolicyTest, PropertiesThatLoadCodeRunCommandsOrWriteFilesAreRefused) {
  for (const std::string key :
       {"plugin.library.paths", "ssl.engine.location", "ssl.engine.id", "ssl.providers",
        "interceptors", "sasl.kerberos.kinit.cmd", "sasl.oauthbearer.token.endpoint.url",
        "offset.store.path", "offset.store.method", "topic.offset.store.path", "error_cb",
        "dr_msg_cb", "opaque", "default_topic_conf", "ssl.certificate.verify_cb",
        "oauthbearer_token_refresh_cb", "ssl_engine_callback_data"}) {
    const Status st = SourceWith(key, "/tmp/x.so");
    ASSERT_FALSE(st.ok()) << key;
    EXPECT_NE(st.message().find("properties." + key + ": not allowed in a job"), std::string::npos)
        << st.message();
  }
  EXPECT_FALSE(SourceWith("sasl.oauthbearer.method", "oidc").ok());
  EXPECT_TRUE(SourceWith("sasl.oauthbearer.method", "default").ok());
  // keytab and principal go into kinit's shell command line: plain names only.
  EXPECT_TRUE(SourceWith("sasl.kerberos.principal", "weir/host@EXAMPLE.COM").ok());
  EXPECT_TRUE(SourceWith("sasl.kerberos.keytab", "/etc/krb5.keytab").ok());
  EXPECT_FALSE(SourceWith("sasl.kerberos.principal", "x; touch /tmp/pwned").ok());
  EXPECT_FALSE(SourceWith("sasl.kerberos.keytab", "$(id)").ok());
  EXPECT_FALSE(SourceWith("sasl.kerberos.keytab", "-x").ok());
  // Ordinary properties pass; reserved ones are refused under their aliases too.
  EXPECT_TRUE(SourceWith("fetch.wait.max.ms", "10").ok());
  EXPECT_TRUE(SourceWith("ssl.ca.location", "/etc/ssl/ca.pem").ok());
  EXPECT_FALSE(SourceWith("metadata.broker.list", "evil:9092").ok());
  EXPECT_FALSE(SourceWith("topic.auto.commit.enable", "true").ok());
  // The sink goes through the same list.
  auto c = Config::Parse("{bootstrap: 'b:1', topic: t, properties: {plugin.library.paths: x}}",
                         "vertex 's': config");
  ASSERT_TRUE(c.ok());
  Schema in;
  in.Add("v", Type::kString);
  EXPECT_FALSE(kafka::PlanKafkaSink(*c, in).ok());
}

// The refusal comes before librdkafka: a plugin path that does not exist would otherwise fail
// with librdkafka's "dlopen() failed", i.e. after it tried to load it.
TEST(KafkaPolicyTest, RefusedBeforeAnyRdKafkaConfSet) {
  const std::vector<std::pair<std::string, std::string>> props = {
      {"plugin.library.paths", "/nonexistent/weir-plugin.so"}};
  const Status st = kafka::CheckProperties(props, "config.properties");
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not allowed in a job"), std::string::npos) << st.message();
  EXPECT_EQ(st.message().find("dlopen() failed"), std::string::npos) << st.message();
  auto conf = kafka::MakeConf(props, {}, {});
  ASSERT_FALSE(conf.ok());
  EXPECT_NE(conf.status().message().find("not allowed in a job"), std::string::npos);
  // Full factories (the servers') refuse it the same way.
  auto cfg = Config::Parse("{bootstrap: 'b:1', topics: [t], group_id: g, properties: "
                           "{plugin.library.paths: /nonexistent/weir-plugin.so}}",
                           "vertex 'k': config");
  ASSERT_TRUE(cfg.ok());
  const Status v = BuiltinOperators().Find("kafka")->Validate(*cfg, Schema()).status();
  ASSERT_FALSE(v.ok());
  EXPECT_NE(v.message().find("properties.plugin.library.paths: not allowed"), std::string::npos)
      << v.message();
}

// ---------------------------------------------------------------- restored-state decoders
// Bugs a reading of the decoders (for the fuzz targets) found: sums of restored int64 values
// that could overflow (undefined behaviour) on crafted state.

RestoredState OneList(const std::string& name, std::vector<std::string> entries) {
  RestoredState r;
  proto::NamedList l;
  l.set_name(name);
  for (auto& e : entries) l.add_entries(std::move(e));
  r.operator_state.push_back(std::move(l));
  return r;
}

std::string Nul(std::vector<std::string> fields) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) out += (i ? std::string(1, '\0') : "") + fields[i];
  return out;
}

TEST(RestoredStateTest, RecordCountersRefuseNegativeCountsAndSumsPastInt64) {
  const std::string max = std::to_string(INT64_MAX);
  for (const auto& entries :
       std::vector<std::vector<std::string>>{{Nul({"c1", "read", max}), Nul({"c1", "read", "1"})},
                                            {Nul({"c1", "read", max, "read", max})},
                                            {Nul({"c1", "read", "-1"})}}) {
    RestoredState r = OneList("_counts", entries);
    RecordCounters c;
    const Status st = c.Restore(&r);
    EXPECT_EQ(st.code(), StatusCode::kDataLoss) << entries[0];
  }
  RestoredState ok = OneList("_counts", {Nul({"c1", "read", max}), Nul({"c1", "read", "0"})});
  RecordCounters c;
  ASSERT_TRUE(c.Restore(&ok).ok());
  EXPECT_EQ(c.Get("read"), INT64_MAX);
}

TEST(RestoredStateTest, KafkaOffsetsDecodeBothFormatsAndRefuseCorruptEntries) {
  RestoredState legacy = OneList("kafka_offsets", {Nul({"p1", "orders", "3", "42"}),
                                                   Nul({"s1", "0", "2", "1"}),
                                                   Nul({"s1", "1", "2", "1"})});
  auto r = kafka::DecodeOffsetState(&legacy);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->any);
  EXPECT_TRUE(r->all_started);
  ASSERT_EQ(r->partitions.size(), 1u);
  EXPECT_EQ(r->partitions[0].first.Name(), "orders/3");
  EXPECT_EQ(r->partitions[0].second, 42);
  // "started" summed over entries: a crafted huge value overflowed int64 before.
  const std::string max = std::to_string(INT64_MAX);
  for (const auto& bad : std::vector<std::vector<std::string>>{
           {Nul({"s1", "0", "2", max}), Nul({"s1", "1", "2", max})},
           {Nul({"s1", "0", "0", "0"})},
           {Nul({"s1", "0", max, "0"})},
           {Nul({"p1", "", "3", "42"})},
           {Nul({"p1", "t", "-1", "42"})},
           {Nul({"p1", "t", "3", "-3"})},
           {Nul({"p1", "t", "3"})},
           {Nul({"x1", "t", "3", "4"})}}) {
    RestoredState st = OneList("kafka_offsets", bad);
    EXPECT_EQ(kafka::DecodeOffsetState(&st).status().code(), StatusCode::kDataLoss) << bad[0];
  }
  proto::KafkaSourceEntry p;
  p.mutable_partition()->set_topic("t");
  p.mutable_partition()->set_partition(1);
  p.mutable_partition()->set_next_offset(-2);
  RestoredState v = OneList("kafka@v1", {p.SerializeAsString(), "\xff"});
  EXPECT_EQ(kafka::DecodeOffsetState(&v).status().code(), StatusCode::kDataLoss);
  v = OneList("kafka@v1", {p.SerializeAsString()});
  auto ok = kafka::DecodeOffsetState(&v);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->partitions.at(0).second, -2);
}

// Found by deploy_fuzz (tests/fuzz/corpus/deploy/regression-local-name-nul): a restore handle's
// local name with a NUL byte passed ValidateHandle, and creating the file would have cut the
// name short at the NUL.
TEST(RestoredStateTest, StateHandleLocalNamesAreRefusedWithNulBytes) {
  proto::KeyedStateHandle h;
  h.set_backend("heap");
  h.set_key_group_first(0);
  h.set_key_group_last(10);
  auto* f = h.add_files();
  f->set_path("chk-3/agg-1/keyed-state.bin");
  f->set_local_name("keyed-state.bin");
  EXPECT_TRUE(state::ValidateHandle(h).ok());
  f->set_local_name(std::string("\x01\0\0\0d-state.bin", 15));
  const Status st = state::ValidateHandle(h);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("bad local name"), std::string::npos) << st.message();
}

}  // namespace
}  // namespace weir
