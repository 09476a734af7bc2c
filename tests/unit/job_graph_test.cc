#include <gtest/gtest.h>

#include "weir/builtins.h"
#include "weir.pb.h"
#include "weir/job_graph.h"

namespace weir {
namespace {

constexpr const char* kGood = R"(
name: t
max_parallelism: 64
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: k, expr: "id % 3"}]}}
  - {id: m, type: map, parallelism: 2, config: {fields: [{name: k2, expr: "k * 2"}], keep_input: true}}
  - {id: agg, type: keyed_aggregate, parallelism: 3, config: {key: [k], aggregations: [{fn: count, as: n}]}}
  - {id: out, type: blackhole, parallelism: 3}
edges:
  - {from: gen, to: m}
  - {from: m, to: agg, partition: hash, key: [k]}
  - {from: agg, to: out}
)";

Result<ExecutionPlan> Plan(const std::string& text) {
  WEIR_ASSIGN_OR_RETURN(JobSpec spec, ParseJobFile(text));
  return BuildPlan(std::move(spec), BuiltinOperators());
}

TEST(JobGraphTest, ChainsForwardEdgesOfEqualParallelism) {
  auto plan = Plan(kGood);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->tasks.size(), 2u);
  EXPECT_EQ(plan->ChainDescription(plan->tasks[0]), "gen(datagen) -> m(map) x2");
  EXPECT_EQ(plan->ChainDescription(plan->tasks[1]), "agg(keyed_aggregate) -> out(blackhole) x3");
  EXPECT_EQ(plan->SlotsNeeded(), 3);
  EXPECT_EQ(plan->output_schemas[1].ToString(), "id:int64, k:int64, k2:int64");
  EXPECT_EQ(plan->output_schemas[2].ToString(), "k:int64, n:int64");
}

TEST(JobGraphTest, ProtoRoundTripKeepsThePlan) {
  auto spec = ParseJobFile(kGood);
  ASSERT_TRUE(spec.ok());
  proto::JobGraph g;
  ToProto(spec.value(), &g);
  auto back = FromProto(g);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  auto plan = BuildPlan(std::move(back).value(), BuiltinOperators());
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->tasks.size(), 2u);
}

struct BadCase {
  const char* name;
  std::string yaml;
  const char* expect;  // substring of the error
};

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  if (pos == std::string::npos) ADD_FAILURE() << "no '" << from << "' in the job";
  else s.replace(pos, from.size(), to);
  return s;
}

TEST(JobGraphTest, BadJobsGetErrorsNamingVertexAndField) {
  const std::string g = kGood;
  std::vector<BadCase> cases = {
      {"not yaml", "vertices: [", "not valid YAML"},
      {"top-level list", "- a\n- b\n", "expected a mapping"},
      {"unknown top key", g + "\nsurprise: 1\n", "job.surprise: unknown key"},
      {"no vertices", "name: x\n", "job.vertices: required"},
      {"unknown type", Replace(g, "type: blackhole", "type: blackhol"),
       "vertex 'out': type: unknown operator type 'blackhol'"},
      {"missing id", Replace(g, "{id: out, ", "{"), "id: required"},
      {"duplicate id", Replace(g, "{id: out,", "{id: agg,"), "vertex 'agg': duplicate vertex id"},
      {"zero parallelism", Replace(g, "parallelism: 3, config", "parallelism: 0, config"),
       "vertex 'agg': parallelism: must be between 1 and 4096, got 0"},
      {"parallelism not a number", Replace(g, "parallelism: 3, config", "parallelism: three, config"),
       "vertex 'agg': parallelism: expected an integer, got 'three'"},
      {"parallelism above max", Replace(g, "max_parallelism: 64", "max_parallelism: 2"),
       "vertex 'agg': parallelism 3 exceeds max_parallelism 2"},
      {"bad max parallelism", Replace(g, "max_parallelism: 64", "max_parallelism: 0"),
       "job.max_parallelism: must be between 1 and 32768"},
      {"edge to unknown vertex", Replace(g, "{from: agg, to: out}", "{from: agg, to: outt}"),
       "edge 'agg' -> 'outt': to: unknown vertex 'outt'"},
      {"cycle", Replace(g, "{from: agg, to: out}", "{from: agg, to: m, partition: rebalance}"),
       "cycle"},
      {"self loop", Replace(g, "{from: agg, to: out}", "{from: agg, to: agg, partition: rebalance}"),
       "self-loop"},
      {"forward with unequal parallelism", Replace(g, "partition: hash, key: [k]", "partition: forward"),
       "forward needs equal parallelism (2 vs 3)"},
      {"hash without key", Replace(g, "partition: hash, key: [k]", "partition: hash"),
       "hash partitioning needs key fields"},
      {"unknown key field", Replace(g, "partition: hash, key: [k]", "partition: hash, key: [kk]"),
       "edge 'm' -> 'agg': key: unknown field 'kk' (fields of 'm': id, k, k2)"},
      {"unknown partitioning", Replace(g, "partition: hash, key: [k]", "partition: shuffle"),
       "unknown partitioning 'shuffle'"},
      {"bad expression", Replace(g, "k * 2", "kk * 2"), "vertex 'm': config.fields[0].expr"},
      {"unknown config key", Replace(g, "keep_input: true", "keep_inputs: true"),
       "vertex 'm': config.keep_inputs: unknown key"},
      {"sink with output", g + "  - {from: out, to: m, partition: rebalance}\n", "out"},
      {"dangling output", Replace(g, "  - {from: agg, to: out}\n", ""),
       "vertex 'out': has no input edge"},
      {"source with input", g + "  - {from: agg, to: gen, partition: rebalance}\n", "cycle"},
      {"negative total", Replace(g, "total: 10", "total: -1"), "vertex 'gen': config.total: must be >= 0"},
      {"agg unknown field", Replace(g, "key: [k], agg", "key: [zz], agg"),
       "vertex 'agg': config.key: unknown field 'zz'"},
      {"agg bad fn", Replace(g, "fn: count", "fn: median"), "unknown aggregate 'median'"},
      {"keyed input not hashed", Replace(g, "partition: hash, key: [k]", "partition: rebalance"),
       "keyed_aggregate 'agg' needs its input hash-partitioned by its key [k]"},
      {"duplicate edge", g + "  - {from: agg, to: out}\n", "duplicate edge"},
      {"unknown restart strategy", g + "restart_strategy: {type: sometimes}\n",
       "job.restart_strategy.type: unknown strategy 'sometimes'"},
      {"restart strategy typo", g + "restart_strategy: {type: fixed-delay, atempts: 3}\n",
       "job.restart_strategy.atempts: unknown key"},
      {"bad restart multiplier", g + "restart_strategy: {type: exponential-delay, multiplier: 0.5}\n",
       "multiplier >= 1"},
      {"bad checkpoint interval", g + "checkpointing: {interval: soon}\n",
       "job.checkpointing.interval: expected a duration"},
      {"tiny checkpoint interval", g + "checkpointing: {interval: 1ms}\n",
       "job.checkpointing.interval: must be at least 10ms"},
      {"checkpointing typo", g + "checkpointing: {intervall: 1s}\n",
       "job.checkpointing.intervall: unknown key"},
      {"bad state backend", g + "state_backend: memory\n",
       "job.state_backend: expected rocksdb or heap, got 'memory'"},
      {"hold without total", Replace(g, "config: {total: 10, fields", "config: {hold: true, fields"),
       "hold"},
  };
  for (const auto& c : cases) {
    auto plan = Plan(c.yaml);
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_NE(plan.status().message().find(c.expect), std::string::npos)
        << c.name << ": got '" << plan.status().message() << "', expected '" << c.expect << "'";
    EXPECT_EQ(plan.status().code(), StatusCode::kInvalidArgument) << c.name;
  }
}

// parse's dirty rows as a side output: an explicit edge `from: p.dirty`, never chained.
constexpr const char* kSide = R"Y(
name: side
vertices:
  - {id: gen, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: value, expr: "if(id % 5 = 4, 'bad', concat('{\"n\": ', id, '}'))"}]}}
  - {id: p, type: parse, parallelism: 2, config: {format: json, fields: [{name: n, type: int64}]}}
  - {id: out, type: blackhole, parallelism: 2}
  - {id: bad, type: blackhole, parallelism: 1}
edges:
  - {from: gen, to: p}
  - {from: p, to: out}
  - {from: p.dirty, to: bad, partition: rebalance}
)Y";

TEST(JobGraphTest, SideOutputEdgesHaveTheirSchemaAndAreNeverChained) {
  auto plan = Plan(kSide);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  // gen -> p -> out chain (p's side edge does not count as an output for chaining).
  ASSERT_EQ(plan->tasks.size(), 2u);
  EXPECT_EQ(plan->ChainDescription(plan->tasks[0]),
            "gen(datagen) -> p(parse) -> out(blackhole) x2");
  EXPECT_EQ(plan->ChainDescription(plan->tasks[1]), "bad(blackhole) x1");
  const int e = 2;
  EXPECT_EQ(plan->spec.edges[e].from, "p");
  EXPECT_EQ(plan->spec.edges[e].output, "dirty");
  EXPECT_EQ(plan->edge_schemas[e].ToString(), "reason:string, raw:string");
  EXPECT_EQ(plan->input_schemas[plan->vertex_index.at("bad")].ToString(),
            "reason:string, raw:string");
  EXPECT_EQ(plan->tasks[0].side_out_edges, std::vector<int>{e});
  EXPECT_EQ(plan->tasks[1].in_edges, std::vector<int>{e});
  EXPECT_EQ(plan->count_suffix[plan->vertex_index.at("bad")], "_dirty");
  EXPECT_EQ(plan->count_suffix[plan->vertex_index.at("out")], "");
  // Through the proto (the output travels in its own field) and back.
  proto::JobGraph g;
  ToProto(plan->spec, &g);
  EXPECT_EQ(g.edges(e).from(), "p");
  EXPECT_EQ(g.edges(e).from_output(), "dirty");
  auto back = FromProto(g);
  ASSERT_TRUE(back.ok());
  auto again = BuildPlan(std::move(back).value(), BuiltinOperators());
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->edge_schemas[e].ToString(), "reason:string, raw:string");
}

// An event-time join's late rows: one side output per input, each of its input's schema.
TEST(JobGraphTest, JoinLateOutputsHaveEachInputsSchema) {
  const std::string job = R"Y(
name: late
vertices:
  - {id: a, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}, {name: t, expr: "id * 1000"}]}}
  - {id: b, type: datagen, config: {total: 10, fields: [{name: k, expr: "id % 3"}, {name: u, expr: "id * 1000"}, {name: s, expr: "'x'"}]}}
  - {id: j, type: interval_join, config: {left_key: [k], right_key: [k], left_time: t, right_time: u, lower: -1s, upper: 1s}}
  - {id: out, type: blackhole}
  - {id: late_a, type: blackhole}
  - {id: late_b, type: blackhole}
edges:
  - {from: a, to: j, input: left, partition: hash, key: [k]}
  - {from: b, to: j, input: right, partition: hash, key: [k]}
  - {from: j, to: out}
  - {from: j.late_left, to: late_a}
  - {from: j.late_right, to: late_b}
)Y";
  auto plan = Plan(job);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->edge_schemas[3].ToString(), "id:int64, k:int64, t:int64");
  EXPECT_EQ(plan->edge_schemas[4].ToString(), "id:int64, k:int64, u:int64, s:string");
  EXPECT_EQ(plan->count_suffix[plan->vertex_index.at("late_b")], "_late_right");
  auto bad = Plan(Replace(job, "from: j.late_left", "from: j.late"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(
                "has no output 'late' (its outputs: main (from: j), late_left, late_right)"),
            std::string::npos)
      << bad.status().ToString();
  // A regular join (processing time) has no late rows.
  auto regular =
      Plan(Replace(Replace(job, "type: interval_join", "type: join"),
                   "left_time: t, right_time: u, lower: -1s, upper: 1s", "state_ttl: 1h"));
  ASSERT_FALSE(regular.ok());
  EXPECT_NE(regular.status().message().find("has no output 'late_left' (its outputs: main"),
            std::string::npos)
      << regular.status().ToString();
}

TEST(JobGraphTest, DirtyPathShorthandAddsASinkVertexFedByTheSideOutput) {
  std::string job = Replace(kSide, "fields: [{name: n, type: int64}]",
                            "fields: [{name: n, type: int64}], dirty: {path: /tmp/d}");
  job = Replace(job, "  - {from: p.dirty, to: bad, partition: rebalance}\n", "");
  job = Replace(job, "  - {id: bad, type: blackhole, parallelism: 1}\n", "");
  auto plan = Plan(job);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  ASSERT_EQ(plan->spec.vertices.size(), 4u);
  const VertexSpec& sink = plan->spec.vertices.back();
  EXPECT_EQ(sink.id, "p-dirty-sink");
  EXPECT_EQ(sink.type, "committing_file");
  EXPECT_EQ(sink.parallelism, 2);
  const EdgeSpec& e = plan->spec.edges.back();
  EXPECT_EQ(e.from + "." + e.output + "->" + e.to, "p.dirty->p-dirty-sink");
  EXPECT_EQ(e.partition, Partitioning::kForward);
  ASSERT_EQ(plan->state_migrations.size(), 1u);
  EXPECT_EQ(plan->state_migrations[0].from_vertex, "p");
  EXPECT_EQ(plan->state_migrations[0].list_prefix, "dirty/");
  EXPECT_EQ(plan->state_migrations[0].to_vertex, "p-dirty-sink");
  // The job file itself is unchanged: what is submitted expands the same way everywhere.
  auto spec = ParseJobFile(job);
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->vertices.size(), 3u);
}

TEST(JobGraphTest, BadSideOutputsGetErrorsNamingEdgeAndKnownOutputs) {
  const std::string g = kSide;
  std::vector<BadCase> cases = {
      {"unknown side output", Replace(g, "from: p.dirty", "from: p.dirt"),
       "edge 'p.dirt' -> 'bad': from: vertex 'p' (parse) has no output 'dirt' (its outputs: main "
       "(from: p), dirty)"},
      {"side output of an operator without any", Replace(g, "from: p.dirty", "from: gen.dirty"),
       "vertex 'gen' (datagen) has no output 'dirty' (its outputs: main (from: gen))"},
      {"unknown vertex", Replace(g, "from: p.dirty", "from: q.dirty"),
       "edge 'q.dirty' -> 'bad': from: unknown vertex 'q.dirty'"},
      {"dirty output not consumed",
       Replace(Replace(g, "  - {from: p.dirty, to: bad, partition: rebalance}\n", ""),
               "  - {id: bad, type: blackhole, parallelism: 1}\n", ""),
       "config.dirty.path: required with on_error: dirty"},
      {"no dirty output with on_error: skip",
       Replace(g, "fields: [{name: n, type: int64}]",
               "on_error: skip, fields: [{name: n, type: int64}]"),
       "has no output 'dirty'"},
      {"forward side edge with unequal parallelism",
       Replace(g, "to: bad, partition: rebalance", "to: bad"),
       "edge 'p.dirty' -> 'bad': partition: forward needs equal parallelism (2 vs 1)"},
      {"schema mismatch in a union",
       Replace(g, "{from: p, to: out}",
               "{from: p, to: bad, partition: rebalance}\n  - {from: p, to: out}"),
       "vertex 'bad': inputs have different schemas"},
      {"unknown key field on a side edge",
       Replace(g, "to: bad, partition: rebalance", "to: bad, partition: hash, key: [n]"),
       "edge 'p.dirty' -> 'bad': key: unknown field 'n' (fields of 'p.dirty': reason, raw)"},
      {"shorthand and an explicit edge",
       Replace(g, "fields: [{name: n, type: int64}]",
               "fields: [{name: n, type: int64}], dirty: {path: /tmp/d}"),
       "vertex 'p': config.dirty is a shorthand for an edge from 'p.dirty' to a committing_file "
       "sink, and the job also has edge 'p.dirty' -> 'bad': use one of them"},
      {"duplicate side edge", g + "  - {from: p.dirty, to: bad, partition: rebalance}\n",
       "duplicate edge"},
      {"empty dirty path",
       Replace(Replace(Replace(g, "fields: [{name: n, type: int64}]",
                               "fields: [{name: n, type: int64}], dirty: {path: \"\"}"),
                       "  - {from: p.dirty, to: bad, partition: rebalance}\n", ""),
               "  - {id: bad, type: blackhole, parallelism: 1}\n", ""),
       "config.dirty.path: required"},
  };
  for (const auto& c : cases) {
    auto plan = Plan(c.yaml);
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_NE(plan.status().message().find(c.expect), std::string::npos)
        << c.name << ": got '" << plan.status().message() << "', expected '" << c.expect << "'";
  }
}

constexpr const char* kJoin = R"Y(
max_parallelism: 64
vertices:
  - {id: people, type: datagen, parallelism: 2, config: {total: 10, fields: [{name: pid, expr: "id % 7"}, {name: name, expr: "concat('p', id)"}]}}
  - {id: more, type: datagen, parallelism: 1, config: {total: 10, fields: [{name: pid, expr: "id % 5"}, {name: name, expr: "concat('q', id)"}]}}
  - {id: orders, type: datagen, parallelism: 1, config: {total: 10, fields: [{name: buyer, expr: "id % 7"}]}}
  - {id: j, type: join, parallelism: 2, config: {left_key: [pid], right_key: [buyer], state_ttl: 1h}}
  - {id: p, type: project, parallelism: 2, config: {fields: [name, id, right_id]}}
  - {id: out, type: blackhole, parallelism: 2}
edges:
  - {from: people, to: j, input: left, partition: hash, key: [pid]}
  - {from: more, to: j, input: left, partition: hash, key: [pid]}
  - {from: orders, to: j, input: right, partition: hash, key: [buyer]}
  - {from: j, to: p}
  - {from: p, to: out}
)Y";

TEST(JobGraphTest, TwoInputVerticesTakeNamedInputsAndHeadTheirTask) {
  auto plan = Plan(kJoin);
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  const int j = plan->vertex_index.at("j");
  ASSERT_EQ(plan->vertex_inputs[j].size(), 2u);
  EXPECT_EQ(plan->vertex_inputs[j][0].FieldNames(), plan->output_schemas[0].FieldNames());
  EXPECT_EQ(plan->vertex_inputs[j][1].size(), 2u);  // id, buyer
  EXPECT_EQ(plan->output_schemas[j].FieldNames(), "id, pid, name, right_id, buyer");
  // The join heads its task (chained to its downstream project only) with all three edges in.
  const TaskPlan& t = plan->tasks[plan->task_of_vertex[j]];
  EXPECT_EQ(t.id, "j");
  EXPECT_EQ(plan->ChainDescription(t), "j(join) -> p(project) -> out(blackhole) x2");
  EXPECT_EQ(t.in_edges.size(), 3u);
  EXPECT_EQ(plan->edge_input, (std::vector<int>{0, 0, 1, 0, 0}));
  // The input names survive the proto round trip.
  proto::JobGraph g;
  ToProto(plan->spec, &g);
  auto back = FromProto(g);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->edges[2].input, "right");
}

TEST(JobGraphTest, BadTwoInputJobsGetErrorsNamingTheEdgeOrField) {
  const std::string g = kJoin;
  std::vector<BadCase> cases = {
      {"no input on an edge into a join", Replace(g, "to: j, input: right, ", "to: j, "),
       "edge 'orders' -> 'j': input: required (vertex 'j' (join) has inputs left, right)"},
      {"unknown input", Replace(g, "input: right", "input: rigth"),
       "edge 'orders' -> 'j': input: unknown input 'rigth'"},
      {"input into a single-input vertex",
       Replace(g, "{from: j, to: p}", "{from: j, to: p, input: left}"),
       "edge 'j' -> 'p': input: vertex 'p' (project) has a single input; remove 'input: left'"},
      {"an input without an edge",
       Replace(Replace(g,
                       "  - {id: orders, type: datagen, parallelism: 1, config: {total: 10, "
                       "fields: [{name: buyer, expr: \"id % 7\"}]}}\n",
                       ""),
               "  - {from: orders, to: j, input: right, partition: hash, key: [buyer]}\n", ""),
       "vertex 'j': input 'right' has no edge"},
      {"union of different schemas into one input",
       Replace(g, "{name: name, expr: \"concat('q', id)\"}", "{name: name, expr: \"id\"}"),
       "vertex 'j': inputs of 'left' have different schemas"},
      {"input not partitioned by its key",
       Replace(g, "input: right, partition: hash, key: [buyer]",
               "input: right, partition: rebalance"),
       "edge 'orders' -> 'j': join 'j' needs input 'right' hash-partitioned by its key [buyer]"},
      {"join keys of different types",
       Replace(g, "{name: buyer, expr: \"id % 7\"}", "{name: buyer, expr: \"concat('b', id)\"}"),
       "vertex 'j': config.right_key: field 'buyer' is string but left_key field 'pid' is int64"},
      {"unknown join config key", Replace(g, "state_ttl: 1h", "state_ttl: 1h, emit: final"),
       "vertex 'j': config.emit: unknown key"},
  };
  for (const auto& c : cases) {
    auto plan = Plan(c.yaml);
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_NE(plan.status().message().find(c.expect), std::string::npos)
        << c.name << ": got '" << plan.status().message() << "', expected '" << c.expect << "'";
  }
}

TEST(JobGraphTest, JsonJobFilesWork) {
  auto plan = Plan(R"({"name": "j", "vertices": [
      {"id": "g", "type": "datagen", "config": {"total": 5}},
      {"id": "p", "type": "print"}],
    "edges": [{"from": "g", "to": "p"}]})");
  ASSERT_TRUE(plan.ok()) << plan.status().ToString();
  EXPECT_EQ(plan->tasks.size(), 1u);
}

}  // namespace
}  // namespace weir
