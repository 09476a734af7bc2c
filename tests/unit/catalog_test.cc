// BuiltinCatalog() (validation only, what the CLI links) and BuiltinOperators() (what the
// servers run) must agree on every job file: same types and kinds, same plan or same error.
// The one documented difference: librdkafka's own check of Kafka `properties:`.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "weir/builtins.h"
#include "weir/job_graph.h"

namespace weir {
namespace {

std::string PlanOrError(const std::string& text, const OperatorRegistry& registry) {
  auto spec = ParseJobFile(text);
  if (!spec.ok()) return "parse: " + spec.status().ToString();
  auto plan = BuildPlan(std::move(spec).value(), registry);
  if (!plan.ok()) return "error: " + plan.status().ToString();
  std::string out;
  for (const auto& t : plan->tasks) out += plan->ChainDescription(t) + "\n";
  for (const auto& s : plan->output_schemas) out += s.ToString() + "\n";
  return out;
}

TEST(CatalogTest, SameTypesAndKinds) {
  const OperatorRegistry& cat = BuiltinCatalog();
  const OperatorRegistry& run = BuiltinOperators();
  ASSERT_EQ(cat.TypeNames(), run.TypeNames());
  std::stringstream names(run.TypeNames());
  std::string name;
  int n = 0;
  while (std::getline(names, name, ',')) {
    while (!name.empty() && name.front() == ' ') name.erase(0, 1);
    const OperatorFactory* c = cat.Find(name);
    const OperatorFactory* r = run.Find(name);
    ASSERT_NE(c, nullptr) << name;
    ASSERT_NE(r, nullptr) << name;
    EXPECT_EQ(c->kind(), r->kind()) << name;
    ++n;
  }
  EXPECT_GE(n, 12);
}

std::vector<std::string> ExampleJobs() {
  std::vector<std::string> texts;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(WEIR_SOURCE_DIR "/examples")) {
    if (!e.is_regular_file()) continue;  // examples/nexmark/ holds the Nexmark queries
    if (e.path().extension() == ".csv") continue;  // q13's side input, not a job
    std::ifstream in(e.path());
    std::stringstream ss;
    ss << in.rdbuf();
    texts.push_back(ss.str());
  }
  return texts;
}

// Good and bad jobs over every operator type, including keyed ones and Kafka.
const char* kJobs[] = {
    R"({name: k, vertices: [
        {id: src, type: kafka, config: {bootstrap: "b:9092", topics: [t], group_id: g}},
        {id: agg, type: keyed_aggregate, config: {key: [topic], aggregations: [{fn: count, as: n}]}},
        {id: out, type: kafka_sink, config: {bootstrap: "b:9092", topic: o}}],
       edges: [{from: src, to: agg, partition: hash, key: [topic]}, {from: agg, to: out}]})",
    R"({name: k, vertices: [
        {id: src, type: kafka, config: {bootstrap: "b:9092", topics: [t], group_id: ""}},
        {id: out, type: blackhole}], edges: [{from: src, to: out}]})",
    R"({name: k, vertices: [
        {id: src, type: kafka, config: {bootstrap: "b:9092", topics: [t], group_id: g,
                                        properties: {group.id: x}}},
        {id: out, type: blackhole}], edges: [{from: src, to: out}]})",
    R"({name: w, vertices: [
        {id: gen, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"},
                                                              {name: t, expr: "id * 1000"}]}},
        {id: win, type: window_aggregate, config: {key: [k], time_field: t, size: 10s,
                                                   aggregations: [{fn: sum, field: k, as: s}]}},
        {id: out, type: print}],
       edges: [{from: gen, to: win, partition: hash, key: [k]}, {from: win, to: out}]})",
    R"({name: w, vertices: [
        {id: gen, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}]}},
        {id: win, type: window_aggregate, config: {key: [window_end], time_field: k, size: 10s}},
        {id: out, type: print}],
       edges: [{from: gen, to: win, partition: hash, key: [k]}, {from: win, to: out}]})",
    R"({name: a, vertices: [
        {id: gen, type: datagen, config: {total: 10}},
        {id: agg, type: keyed_aggregate, config: {key: [nope], aggregations: [{fn: count}]}},
        {id: out, type: print}],
       edges: [{from: gen, to: agg, partition: hash, key: [id]}, {from: agg, to: out}]})",
    R"({name: late, vertices: [
        {id: gen, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"},
                                                              {name: t, expr: "id * 1000"}]}},
        {id: win, type: window_aggregate, config: {key: [k], time_field: t, size: 10s,
                                                   aggregations: [{fn: count, as: n}]}},
        {id: out, type: print}, {id: late, type: print}],
       edges: [{from: gen, to: win, partition: hash, key: [k]}, {from: win, to: out},
               {from: win.late, to: late}]})",
    R"({name: side, vertices: [
        {id: gen, type: datagen, config: {total: 10, fields: [{name: a, expr: "id % 3"}]}},
        {id: side, type: lookup_join, config: {path: /data/s.csv, schema: [{name: k, type: int64},
                                                {name: v}], key: k, lookup: "a + 1", kind: left}},
        {id: out, type: print}],
       edges: [{from: gen, to: side}, {from: side, to: out}]})",
    R"({name: side, vertices: [
        {id: gen, type: datagen, config: {total: 10, fields: [{name: a, expr: "id % 3"}]}},
        {id: side, type: lookup_join, config: {path: /data/s.csv, schema: [{name: k},
                                                {name: v}], key: k, lookup: "a"}},
        {id: out, type: print}],
       edges: [{from: gen, to: side}, {from: side, to: out}]})",
    R"({name: late, vertices: [
        {id: a, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"},
                                                            {name: t, expr: "id * 1000"}]}},
        {id: b, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"},
                                                            {name: u, expr: "id * 1000"}]}},
        {id: j, type: window_join, config: {left_key: [k], right_key: [k], left_time: t,
                                            right_time: u, size: 10s}},
        {id: out, type: print}, {id: la, type: print}, {id: lb, type: print}],
       edges: [{from: a, to: j, input: left, partition: hash, key: [k]},
               {from: b, to: j, input: right, partition: hash, key: [k]}, {from: j, to: out},
               {from: j.late_left, to: la}, {from: j.late_right, to: lb}]})",
    R"({name: late, vertices: [
        {id: a, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}]}},
        {id: b, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}]}},
        {id: j, type: join, config: {left_key: [k], right_key: [k], state_ttl: 1h}},
        {id: out, type: print}, {id: la, type: print}],
       edges: [{from: a, to: j, input: left, partition: hash, key: [k]},
               {from: b, to: j, input: right, partition: hash, key: [k]}, {from: j, to: out},
               {from: j.late_left, to: la}]})",
};

TEST(CatalogTest, SamePlanOrErrorForEveryJob) {
  std::vector<std::string> jobs = ExampleJobs();
  ASSERT_GE(jobs.size(), 3u);
  // kJobs: 0, 3, 6, 7 and 9 are good, the others are not; the examples are good.
  for (size_t i = 0; i < std::size(kJobs); ++i) {
    const bool good = i == 0 || i == 3 || i == 6 || i == 7 || i == 9;
    EXPECT_EQ(PlanOrError(kJobs[i], BuiltinOperators()).rfind("error", 0) == 0, !good)
        << kJobs[i] << "\n" << PlanOrError(kJobs[i], BuiltinOperators());
    jobs.emplace_back(kJobs[i]);
  }
  for (const std::string& text : jobs) {
    EXPECT_EQ(PlanOrError(text, BuiltinCatalog()), PlanOrError(text, BuiltinOperators()))
        << text;
  }
}

TEST(CatalogTest, OnlyTheServersAskLibrdkafkaAboutProperties) {
  const std::string job = R"({name: k, vertices: [
      {id: src, type: kafka, config: {bootstrap: "b:9092", topics: [t], group_id: g,
                                      properties: {no.such.property: "1"}}},
      {id: out, type: blackhole}], edges: [{from: src, to: out}]})";
  const std::string run = PlanOrError(job, BuiltinOperators());
  EXPECT_NE(run.find("config.properties.no.such.property: No such configuration property"), std::string::npos)
      << run;
  EXPECT_EQ(PlanOrError(job, BuiltinCatalog()).rfind("error", 0), std::string::npos);
}

TEST(CatalogTest, CatalogCannotRunStatefulOrKafkaOperators) {
  auto spec = ParseJobFile(kJobs[0]);
  ASSERT_TRUE(spec.ok());
  const OperatorFactory* f = BuiltinCatalog().Find("kafka");
  ASSERT_NE(f, nullptr);
  EXPECT_FALSE(f->CreateSource(spec->vertices[0].config).ok());
}

}  // namespace
}  // namespace weir
