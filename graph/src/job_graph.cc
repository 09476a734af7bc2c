#include "weir/job_graph.h"

#include "weir/paths.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <tuple>

#include "weir.pb.h"

namespace weir {

const char* PartitioningName(Partitioning p) {
  switch (p) {
    case Partitioning::kForward: return "forward";
    case Partitioning::kHash: return "hash";
    case Partitioning::kRebalance: return "rebalance";
    case Partitioning::kBroadcast: return "broadcast";
  }
  return "?";
}

namespace {

Result<Partitioning> ParsePartitioning(const std::string& s, const std::string& where) {
  if (s == "forward") return Partitioning::kForward;
  if (s == "hash" || s == "key") return Partitioning::kHash;
  if (s == "rebalance" || s == "round_robin") return Partitioning::kRebalance;
  if (s == "broadcast") return Partitioning::kBroadcast;
  return Status::InvalidArgument(where + ": unknown partitioning '" + s +
                                 "' (expected forward, hash, rebalance or broadcast)");
}

std::string VertexWhere(const VertexSpec& v) { return "vertex '" + v.id + "'"; }
std::string EdgeFrom(const EdgeSpec& e) {
  return e.output.empty() ? e.from : e.from + "." + e.output;
}
std::string EdgeWhere(const EdgeSpec& e) {
  return "edge '" + EdgeFrom(e) + "' -> '" + e.to + "'";
}

}  // namespace

namespace {

// `checkpointing:` of a job file.
Status ParseCheckpointing(const Config& root, JobSpec& spec) {
  WEIR_ASSIGN_OR_RETURN(Config cp, root.GetMap("checkpointing"));
  WEIR_RETURN_IF_ERROR(cp.CheckKeys(
      {"interval", "timeout", "min_pause", "tolerable_failures", "retained", "dir"}));
  WEIR_ASSIGN_OR_RETURN(spec.checkpointing.interval_ms, cp.GetDurationMs("interval", 0));
  WEIR_ASSIGN_OR_RETURN(spec.checkpointing.timeout_ms, cp.GetDurationMs("timeout", 0));
  WEIR_ASSIGN_OR_RETURN(spec.checkpointing.min_pause_ms, cp.GetDurationMs("min_pause", 0));
  WEIR_ASSIGN_OR_RETURN(int64_t tol, cp.GetInt("tolerable_failures", -1));
  WEIR_ASSIGN_OR_RETURN(int64_t retained, cp.GetInt("retained", 0));
  if (tol < -1 || tol > 1000000) {
    return Status::InvalidArgument("job.checkpointing.tolerable_failures: must be -1 (never fail) or >= 0");
  }
  if (retained < 0 || retained > 1000) {
    return Status::InvalidArgument("job.checkpointing.retained: must be between 1 and 1000");
  }
  if (cp.Has("tolerable_failures")) spec.checkpointing.tolerable_failures = static_cast<int>(tol);
  spec.checkpointing.retained = static_cast<int>(retained);
  WEIR_ASSIGN_OR_RETURN(spec.checkpointing.directory, cp.GetString("dir", std::string()));
  if (spec.checkpointing.interval_ms > 0 && spec.checkpointing.interval_ms < 10) {
    return Status::InvalidArgument("job.checkpointing.interval: must be at least 10ms");
  }
  return Status::Ok();
}

// `restart_strategy:` of a job file (absent: the job manager's default).
Status ParseRestartStrategy(const Config& root, JobSpec& spec) {
  WEIR_ASSIGN_OR_RETURN(Config rs, root.GetMap("restart_strategy"));
  if (!root.Has("restart_strategy")) return Status::Ok();
  WEIR_RETURN_IF_ERROR(rs.CheckKeys({"type", "attempts", "delay", "initial_delay", "max_delay",
                                     "multiplier", "reset_threshold", "jitter",
                                     "max_failures_per_interval", "failure_rate_interval"}));
  proto::RestartStrategy& r = spec.restart_strategy;
  WEIR_ASSIGN_OR_RETURN(std::string type, rs.GetString("type"));
  r.set_type(type);
  WEIR_ASSIGN_OR_RETURN(int64_t attempts, rs.GetInt("attempts", -1));
  WEIR_ASSIGN_OR_RETURN(int64_t delay, rs.GetDurationMs("delay", 1000));
  WEIR_ASSIGN_OR_RETURN(int64_t initial, rs.GetDurationMs("initial_delay", 100));
  WEIR_ASSIGN_OR_RETURN(int64_t max_delay, rs.GetDurationMs("max_delay", 60000));
  WEIR_ASSIGN_OR_RETURN(double mult, rs.GetDouble("multiplier", 2.0));
  WEIR_ASSIGN_OR_RETURN(int64_t reset, rs.GetDurationMs("reset_threshold", 300000));
  WEIR_ASSIGN_OR_RETURN(double jitter, rs.GetDouble("jitter", 0.1));
  WEIR_ASSIGN_OR_RETURN(int64_t per, rs.GetInt("max_failures_per_interval", 1));
  WEIR_ASSIGN_OR_RETURN(int64_t interval, rs.GetDurationMs("failure_rate_interval", 60000));
  if (attempts < -1 || attempts > 1000000000 || per < 1 || per > 1000000000 || mult < 1.0 ||
      jitter < 0 || jitter > 1 || max_delay < initial) {
    return Status::InvalidArgument(
        "job.restart_strategy: attempts >= -1, multiplier >= 1, 0 <= jitter <= 1, "
        "max_failures_per_interval >= 1 and max_delay >= initial_delay are required");
  }
  r.set_attempts(static_cast<int32_t>(attempts));
  r.set_delay_ms(delay);
  r.set_initial_delay_ms(initial);
  r.set_max_delay_ms(max_delay);
  r.set_multiplier(mult);
  r.set_reset_threshold_ms(reset);
  r.set_jitter(jitter);
  r.set_max_failures_per_interval(static_cast<int32_t>(per));
  r.set_failure_rate_interval_ms(interval);
  if (type != "none" && type != "fixed-delay" && type != "exponential-delay" &&
      type != "failure-rate") {
    return Status::InvalidArgument("job.restart_strategy.type: unknown strategy '" + type +
                                   "' (expected none, fixed-delay, exponential-delay or "
                                   "failure-rate)");
  }
  return Status::Ok();
}

// `vertices:` of a job file; errors name the vertex.
Status ParseVertices(const Config& root, JobSpec& spec) {
  if (!root.Has("vertices")) return Status::InvalidArgument("job.vertices: required");
  WEIR_ASSIGN_OR_RETURN(auto vertices, root.GetMapList("vertices"));
  for (const Config& raw : vertices) {
    VertexSpec v;
    WEIR_ASSIGN_OR_RETURN(v.id, raw.GetString("id"));
    // From here on, errors name the vertex rather than its position in the list.
    const Config vc(raw.node(), "vertex '" + v.id + "':");
    WEIR_RETURN_IF_ERROR(vc.CheckKeys({"id", "type", "parallelism", "config", "watermarks"}));
    WEIR_ASSIGN_OR_RETURN(v.type, vc.GetString("type"));
    WEIR_ASSIGN_OR_RETURN(int64_t p, vc.GetInt("parallelism", 1));
    if (p < 1 || p > 4096) {
      return Status::InvalidArgument("vertex '" + v.id +
                                     "': parallelism: must be between 1 and 4096, got " +
                                     std::to_string(p));
    }
    v.parallelism = static_cast<int>(p);
    WEIR_ASSIGN_OR_RETURN(Config cfg, vc.GetMap("config"));
    v.config = Config(cfg.node(), "vertex '" + v.id + "': config");
    if (vc.Has("watermarks")) {
      WEIR_ASSIGN_OR_RETURN(Config wc, vc.GetMap("watermarks"));
      WEIR_ASSIGN_OR_RETURN(v.watermarks, ParseWatermarkStrategy(
                                              Config(wc.node(), "vertex '" + v.id + "': watermarks")));
    }
    spec.vertices.push_back(std::move(v));
  }
  return Status::Ok();
}

// `edges:` of a job file; errors name the edge.
Status ParseEdges(const Config& root, JobSpec& spec) {
  WEIR_ASSIGN_OR_RETURN(auto edges, root.GetMapList("edges"));
  for (const Config& raw : edges) {
    EdgeSpec e;
    WEIR_ASSIGN_OR_RETURN(e.from, raw.GetString("from"));
    WEIR_ASSIGN_OR_RETURN(e.to, raw.GetString("to"));
    const Config ec(raw.node(), EdgeWhere(e) + ":");
    WEIR_RETURN_IF_ERROR(ec.CheckKeys({"from", "to", "partition", "key", "input"}));
    WEIR_ASSIGN_OR_RETURN(std::string part, ec.GetString("partition", std::string("forward")));
    WEIR_ASSIGN_OR_RETURN(e.partition, ParsePartitioning(part, EdgeWhere(e) + ": partition"));
    WEIR_ASSIGN_OR_RETURN(e.key, ec.GetStringList("key"));
    WEIR_ASSIGN_OR_RETURN(e.input, ec.GetString("input", std::string()));
    spec.edges.push_back(std::move(e));
  }
  return Status::Ok();
}
}  // namespace

Result<JobSpec> ParseJobFile(std::string_view text) {
  WEIR_ASSIGN_OR_RETURN(Config root, Config::Parse(text, "job"));
  WEIR_RETURN_IF_ERROR(root.CheckKeys(
      {"name", "max_parallelism", "vertices", "edges", "checkpointing", "state_backend",
       "restart_strategy"}));
  JobSpec spec;
  WEIR_RETURN_IF_ERROR(ParseCheckpointing(root, spec));
  WEIR_ASSIGN_OR_RETURN(spec.state_backend, root.GetString("state_backend", std::string()));
  WEIR_RETURN_IF_ERROR(ParseRestartStrategy(root, spec));
  if (!spec.state_backend.empty() && spec.state_backend != "rocksdb" && spec.state_backend != "heap") {
    return Status::InvalidArgument("job.state_backend: expected rocksdb or heap, got '" +
                                   spec.state_backend + "'");
  }
  WEIR_ASSIGN_OR_RETURN(spec.name, root.GetString("name", std::string("job")));
  WEIR_ASSIGN_OR_RETURN(int64_t maxp, root.GetInt("max_parallelism", 128));
  if (maxp < 1 || maxp > kMaxMaxParallelism) {
    return Status::InvalidArgument("job.max_parallelism: must be between 1 and " +
                                   std::to_string(kMaxMaxParallelism) + ", got " +
                                   std::to_string(maxp));
  }
  spec.max_parallelism = static_cast<int>(maxp);
  WEIR_RETURN_IF_ERROR(ParseVertices(root, spec));
  WEIR_RETURN_IF_ERROR(ParseEdges(root, spec));
  return spec;
}

Result<JobSpec> FromProto(const proto::JobGraph& g) {
  JobSpec spec;
  spec.name = g.name();
  const auto& c = g.checkpointing();
  spec.checkpointing.interval_ms = c.interval_ms();
  spec.checkpointing.timeout_ms = c.timeout_ms();
  spec.checkpointing.min_pause_ms = c.min_pause_ms();
  if (c.has_tolerable_failures()) spec.checkpointing.tolerable_failures = c.tolerable_failures();
  spec.checkpointing.retained = c.retained();
  spec.checkpointing.directory = c.directory();
  spec.state_backend = g.state_backend();
  spec.restart_strategy = g.restart_strategy();
  if (!spec.state_backend.empty() && spec.state_backend != "rocksdb" && spec.state_backend != "heap") {
    return Status::InvalidArgument("job.state_backend: expected rocksdb or heap, got '" +
                                   spec.state_backend + "'");
  }
  spec.max_parallelism = g.max_parallelism();
  if (spec.max_parallelism < 1 || spec.max_parallelism > kMaxMaxParallelism) {
    return Status::InvalidArgument("job.max_parallelism: must be between 1 and " +
                                   std::to_string(kMaxMaxParallelism) + ", got " +
                                   std::to_string(spec.max_parallelism));
  }
  for (const auto& pv : g.vertices()) {
    VertexSpec v;
    v.id = pv.id();
    v.type = pv.type();
    v.parallelism = pv.parallelism();
    if (v.parallelism < 1 || v.parallelism > 4096) {
      return Status::InvalidArgument("vertex '" + v.id +
                                     "': parallelism: must be between 1 and 4096, got " +
                                     std::to_string(v.parallelism));
    }
    WEIR_ASSIGN_OR_RETURN(v.config, Config::Parse(pv.config_yaml(), "vertex '" + v.id + "': config"));
    if (pv.has_watermarks()) {
      const auto& w = pv.watermarks();
      WatermarkStrategy ws;
      ws.event_time_field = w.event_time_field();
      ws.max_out_of_orderness_ms = w.max_out_of_orderness_ms();
      ws.idle_timeout_ms = w.idle_timeout_ms();
      ws.emit_interval_ms = w.emit_interval_ms();
      if (ws.event_time_field.empty() || ws.max_out_of_orderness_ms < 0 || ws.idle_timeout_ms < 0 ||
          ws.emit_interval_ms < 1) {
        return Status::InvalidArgument("vertex '" + v.id + "': watermarks: invalid strategy");
      }
      v.watermarks = ws;
    }
    spec.vertices.push_back(std::move(v));
  }
  for (const auto& pe : g.edges()) {
    EdgeSpec e;
    e.from = pe.from();
    e.output = pe.from_output();
    e.to = pe.to();
    WEIR_ASSIGN_OR_RETURN(e.partition, ParsePartitioning(pe.partition(), EdgeWhere(e)));
    e.key.assign(pe.key().begin(), pe.key().end());
    e.input = pe.input();
    spec.edges.push_back(std::move(e));
  }
  return spec;
}

void ToProto(const JobSpec& spec, proto::JobGraph* out) {
  out->Clear();
  out->set_name(spec.name);
  out->set_max_parallelism(spec.max_parallelism);
  auto* c = out->mutable_checkpointing();
  c->set_interval_ms(spec.checkpointing.interval_ms);
  c->set_timeout_ms(spec.checkpointing.timeout_ms);
  c->set_min_pause_ms(spec.checkpointing.min_pause_ms);
  if (spec.checkpointing.tolerable_failures) {
    c->set_tolerable_failures(*spec.checkpointing.tolerable_failures);
  }
  c->set_retained(spec.checkpointing.retained);
  c->set_directory(spec.checkpointing.directory);
  out->set_state_backend(spec.state_backend);
  *out->mutable_restart_strategy() = spec.restart_strategy;
  for (const auto& v : spec.vertices) {
    auto* pv = out->add_vertices();
    pv->set_id(v.id);
    pv->set_type(v.type);
    pv->set_parallelism(v.parallelism);
    pv->set_config_yaml(v.config.ToYaml());
    if (v.watermarks) {
      auto* w = pv->mutable_watermarks();
      w->set_event_time_field(v.watermarks->event_time_field);
      w->set_max_out_of_orderness_ms(v.watermarks->max_out_of_orderness_ms);
      w->set_idle_timeout_ms(v.watermarks->idle_timeout_ms);
      w->set_emit_interval_ms(v.watermarks->emit_interval_ms);
    }
  }
  for (const auto& e : spec.edges) {
    auto* pe = out->add_edges();
    pe->set_from(e.from);
    if (!e.output.empty()) pe->set_from_output(e.output);
    pe->set_to(e.to);
    pe->set_partition(PartitioningName(e.partition));
    for (const auto& k : e.key) pe->add_key(k);
    if (!e.input.empty()) pe->set_input(e.input);
  }
}

int ExecutionPlan::SlotsNeeded() const {
  int n = 0;
  for (const auto& t : tasks) n = std::max(n, t.parallelism);
  return n;
}

std::string ExecutionPlan::ChainDescription(const TaskPlan& t) const {
  std::string out;
  for (size_t i = 0; i < t.vertices.size(); ++i) {
    if (i) out += " -> ";
    const auto& v = spec.vertices[t.vertices[i]];
    out += v.id + "(" + v.type + ")";
  }
  return out + " x" + std::to_string(t.parallelism);
}

namespace {

// The graph's edges by vertex: inputs (all edges), main outputs, side outputs.
struct Adjacency {
  std::vector<std::vector<int>> ins, outs, side_outs;
};

std::string ImplicitSinkId(const std::string& vertex, const std::string& output) {
  return vertex + "-" + output + "-sink";
}

// Config shorthand for side outputs (parse's `dirty: {path: ...}`): adds the sink vertex and
// the edge from the side output. An explicit edge from the same side output as well would be
// two destinations for one shorthand: refused, so the job file says one thing.
Status ExpandImplicitSinks(JobSpec& spec, const OperatorRegistry& registry,
                           std::vector<StateMigration>* migrations) {
  const size_t nv = spec.vertices.size();
  for (size_t i = 0; i < nv; ++i) {
    const OperatorFactory* f = registry.Find(spec.vertices[i].type);
    if (f == nullptr) continue;  // reported by BuildPlan
    WEIR_ASSIGN_OR_RETURN(auto sinks, f->ImplicitSideSinks(spec.vertices[i].config));
    for (ImplicitSideSink& s : sinks) {
      const VertexSpec& v = spec.vertices[i];
      const std::string from = v.id + "." + s.output;
      for (const EdgeSpec& e : spec.edges) {
        if ((e.from == v.id && e.output == s.output) || (e.output.empty() && e.from == from)) {
          return Status::InvalidArgument(VertexWhere(v) + ": config." + s.output +
                                         " is a shorthand for an edge from '" + from + "' to a " +
                                         s.type + " sink, and the job also has " + EdgeWhere(e) +
                                         ": use one of them");
        }
      }
      VertexSpec sink;
      sink.id = ImplicitSinkId(v.id, s.output);
      sink.type = s.type;
      sink.parallelism = v.parallelism;
      sink.config = std::move(s.config);
      EdgeSpec edge;
      edge.from = v.id;
      edge.output = s.output;
      edge.to = sink.id;
      if (!s.legacy_state_prefix.empty()) {
        migrations->push_back({v.id, s.legacy_state_prefix, sink.id});
      }
      spec.vertices.push_back(std::move(sink));
      spec.edges.push_back(std::move(edge));
    }
  }
  return Status::Ok();
}

// Resolves `from: a.b` (main output of vertex "a.b" if there is one, else side output "b" of
// vertex "a") and checks endpoints, duplicates and partitioning rules.
Result<Adjacency> CheckEdges(JobSpec& spec, const std::map<std::string, int>& index) {
  const size_t nv = spec.vertices.size();
  Adjacency adj;
  adj.ins.resize(nv);
  adj.outs.resize(nv);
  adj.side_outs.resize(nv);
  std::set<std::tuple<int, std::string, int>> seen;
  for (size_t ei = 0; ei < spec.edges.size(); ++ei) {
    EdgeSpec& e = spec.edges[ei];
    auto f = index.find(e.from);
    const size_t dot = e.from.rfind('.');
    if (f == index.end() && e.output.empty() && dot != std::string::npos) {
      auto v = index.find(e.from.substr(0, dot));
      if (v != index.end() && dot + 1 < e.from.size()) {
        e.output = e.from.substr(dot + 1);
        e.from = e.from.substr(0, dot);
        f = v;
      }
    }
    auto t = index.find(e.to);
    if (f == index.end()) {
      return Status::InvalidArgument(EdgeWhere(e) + ": from: unknown vertex '" + EdgeFrom(e) + "'");
    }
    if (t == index.end()) {
      return Status::InvalidArgument(EdgeWhere(e) + ": to: unknown vertex '" + e.to + "'");
    }
    if (f->second == t->second) return Status::InvalidArgument(EdgeWhere(e) + ": a self-loop");
    if (!seen.insert({f->second, e.output, t->second}).second) {
      return Status::InvalidArgument(EdgeWhere(e) + ": duplicate edge");
    }
    const VertexSpec& from = spec.vertices[f->second];
    const VertexSpec& to = spec.vertices[t->second];
    if (e.partition == Partitioning::kForward && from.parallelism != to.parallelism) {
      return Status::InvalidArgument(
          EdgeWhere(e) + ": partition: forward needs equal parallelism (" +
          std::to_string(from.parallelism) + " vs " + std::to_string(to.parallelism) +
          "); use rebalance or hash");
    }
    if (e.partition == Partitioning::kHash && e.key.empty()) {
      return Status::InvalidArgument(EdgeWhere(e) + ": key: hash partitioning needs key fields");
    }
    if (e.partition != Partitioning::kHash && !e.key.empty()) {
      return Status::InvalidArgument(EdgeWhere(e) + ": key: only hash partitioning takes key fields");
    }
    (e.output.empty() ? adj.outs : adj.side_outs)[f->second].push_back(static_cast<int>(ei));
    adj.ins[t->second].push_back(static_cast<int>(ei));
  }
  return adj;
}

// Topological order (Kahn) over main and side edges; leftovers mean a cycle.
Result<std::vector<int>> TopologicalOrder(const JobSpec& spec, const Adjacency& adj,
                                          const std::map<std::string, int>& index) {
  const size_t nv = spec.vertices.size();
  std::vector<int> indeg(nv), order;
  for (size_t i = 0; i < nv; ++i) indeg[i] = static_cast<int>(adj.ins[i].size());
  for (size_t i = 0; i < nv; ++i) {
    if (indeg[i] == 0) order.push_back(static_cast<int>(i));
  }
  for (size_t k = 0; k < order.size(); ++k) {
    for (const auto* list : {&adj.outs[order[k]], &adj.side_outs[order[k]]}) {
      for (int ei : *list) {
        int to = index.at(spec.edges[ei].to);
        if (--indeg[to] == 0) order.push_back(to);
      }
    }
  }
  if (order.size() != nv) {
    std::string in_cycle;
    for (size_t i = 0; i < nv; ++i) {
      if (indeg[i] > 0) in_cycle += (in_cycle.empty() ? "" : ", ") + spec.vertices[i].id;
    }
    return Status::InvalidArgument("job graph has a cycle through: " + in_cycle);
  }
  return order;
}

// Vertex vi's kind against its edges, and one schema per logical input: edges into a vertex
// with named inputs (InputNames) each name one, every input has an edge; several edges into
// one input are a union (their schemas must agree). Sets plan.edge_input for vi's edges.
Result<std::vector<Schema>> CheckKindAndInput(ExecutionPlan& plan, const Adjacency& adj, int vi,
                                              const OperatorFactory& factory) {
  const OperatorKind kind = factory.kind();
  const VertexSpec& v = plan.spec.vertices[vi];
  if (kind == OperatorKind::kSource && !adj.ins[vi].empty()) {
    return Status::InvalidArgument(VertexWhere(v) + ": a source (" + v.type +
                                   ") cannot have input edges");
  }
  if (kind != OperatorKind::kSource && adj.ins[vi].empty()) {
    return Status::InvalidArgument(VertexWhere(v) + ": has no input edge (a " + v.type +
                                   " needs one)");
  }
  if (kind == OperatorKind::kSink && !adj.outs[vi].empty()) {
    return Status::InvalidArgument(VertexWhere(v) + ": a sink (" + v.type +
                                   ") cannot have output edges");
  }
  if (kind != OperatorKind::kSink && adj.outs[vi].empty()) {
    return Status::InvalidArgument(VertexWhere(v) +
                                   ": its output goes nowhere; add an edge to "
                                   "a sink (e.g. blackhole or print)");
  }
  const std::vector<std::string> names = factory.InputNames(v.config);
  std::string known;
  for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
  std::vector<Schema> inputs(kind == OperatorKind::kSource ? 0 : std::max<size_t>(1, names.size()));
  std::vector<bool> fed(inputs.size(), false);
  for (int ei : adj.ins[vi]) {
    const EdgeSpec& e = plan.spec.edges[ei];
    const Schema& s = plan.edge_schemas[ei];
    int k = 0;
    if (names.empty() && !e.input.empty()) {
      return Status::InvalidArgument(EdgeWhere(e) + ": input: vertex '" + v.id + "' (" + v.type +
                                     ") has a single input; remove 'input: " + e.input + "'");
    }
    if (!names.empty()) {
      auto it = std::find(names.begin(), names.end(), e.input);
      if (it == names.end()) {
        return Status::InvalidArgument(
            EdgeWhere(e) +
            ": input: " + (e.input.empty() ? "required" : "unknown input '" + e.input + "'") +
            " (vertex '" + v.id + "' (" + v.type + ") has inputs " + known + ")");
      }
      k = static_cast<int>(it - names.begin());
    }
    plan.edge_input[ei] = k;
    if (!fed[k]) {
      inputs[k] = s;
      fed[k] = true;
    } else if (!(s == inputs[k])) {
      return Status::InvalidArgument(
          VertexWhere(v) + ": inputs" + (names.empty() ? "" : " of '" + names[k] + "'") +
          " have different schemas (" + inputs[k].ToString() + ") vs (" + s.ToString() + ")");
    }
    for (const std::string& key : e.key) {
      if (s.IndexOf(key) < 0) {
        return Status::InvalidArgument(EdgeWhere(e) + ": key: unknown field '" + key +
                                       "' (fields of '" + EdgeFrom(e) + "': " + s.FieldNames() +
                                       ")");
      }
    }
  }
  for (size_t k = 0; k < names.size(); ++k) {
    if (!fed[k]) {
      return Status::InvalidArgument(VertexWhere(v) + ": input '" + names[k] +
                                     "' has no edge (add an edge with 'input: " + names[k] + "')");
    }
  }
  return inputs;
}

Status CheckWatermarks(const VertexSpec& v, OperatorKind kind, const Schema& out) {
  if (!v.watermarks) return Status::Ok();
  if (kind == OperatorKind::kSink) {
    return Status::InvalidArgument(VertexWhere(v) +
                                   ": watermarks: a sink has no output to generate them for");
  }
  const int fi = out.IndexOf(v.watermarks->event_time_field);
  if (fi < 0) {
    return Status::InvalidArgument(
        VertexWhere(v) + ": watermarks.event_time_field: unknown field '" +
        v.watermarks->event_time_field + "' (fields: " + out.FieldNames() + ")");
  }
  const Type t = out.field(static_cast<size_t>(fi)).type;
  if (t != Type::kTimestamp && t != Type::kInt64) {
    return Status::InvalidArgument(VertexWhere(v) + ": watermarks.event_time_field: field '" +
                                   v.watermarks->event_time_field +
                                   "' must be a timestamp or an integer (milliseconds)");
  }
  return Status::Ok();
}

// Vertex vi's side outputs: every side edge names a declared one (and gets its schema); a
// required one has an edge.
Status ResolveSideOutputs(ExecutionPlan& plan, const Adjacency& adj, int vi,
                          const OperatorFactory& factory) {
  const VertexSpec& v = plan.spec.vertices[vi];
  WEIR_ASSIGN_OR_RETURN(plan.side_outputs[vi],
                        factory.SideOutputsWithInputs(v.config, plan.vertex_inputs[vi]));
  const std::vector<SideOutputSpec>& declared = plan.side_outputs[vi];
  std::vector<bool> consumed(declared.size(), false);
  for (int ei : adj.side_outs[vi]) {
    const EdgeSpec& e = plan.spec.edges[ei];
    int found = -1;
    for (size_t k = 0; k < declared.size(); ++k) {
      if (declared[k].name == e.output) found = static_cast<int>(k);
    }
    if (found < 0) {
      std::string known = "main (from: " + v.id + ")";
      for (const auto& d : declared) known += ", " + d.name;
      return Status::InvalidArgument(EdgeWhere(e) + ": from: vertex '" + v.id + "' (" + v.type +
                                     ") has no output '" + e.output + "' (its outputs: " + known +
                                     ")");
    }
    consumed[found] = true;
    plan.edge_side_output[ei] = found;
    plan.edge_schemas[ei] = declared[found].schema;
  }
  for (size_t k = 0; k < declared.size(); ++k) {
    if (!consumed[k] && !declared[k].required_error.empty()) {
      return Status::InvalidArgument(declared[k].required_error);
    }
  }
  for (int ei : adj.outs[vi]) plan.edge_schemas[ei] = plan.output_schemas[vi];
  return Status::Ok();
}

// Kinds and schemas of every vertex, in topological order.
Status CheckVertices(ExecutionPlan& plan, const Adjacency& adj, const std::vector<int>& order,
                     const std::vector<const OperatorFactory*>& factories) {
  const JobSpec& spec = plan.spec;
  const size_t nv = spec.vertices.size();
  plan.output_schemas.assign(nv, Schema());
  plan.input_schemas.assign(nv, Schema());
  plan.vertex_inputs.assign(nv, {});
  plan.edge_input.assign(spec.edges.size(), 0);
  plan.side_outputs.assign(nv, {});
  plan.edge_schemas.assign(spec.edges.size(), Schema());
  plan.edge_side_output.assign(spec.edges.size(), -1);
  plan.count_suffix.assign(nv, std::string());
  bool has_source = false;
  for (int vi : order) {
    const VertexSpec& v = spec.vertices[vi];
    const OperatorKind kind = factories[vi]->kind();
    has_source = has_source || kind == OperatorKind::kSource;
    WEIR_ASSIGN_OR_RETURN(plan.vertex_inputs[vi], CheckKindAndInput(plan, adj, vi, *factories[vi]));
    if (!plan.vertex_inputs[vi].empty()) plan.input_schemas[vi] = plan.vertex_inputs[vi][0];
    WEIR_ASSIGN_OR_RETURN(plan.output_schemas[vi],
                          factories[vi]->ValidateInputs(v.config, plan.vertex_inputs[vi]));
    WEIR_RETURN_IF_ERROR(CheckWatermarks(v, kind, plan.output_schemas[vi]));
    WEIR_RETURN_IF_ERROR(ResolveSideOutputs(plan, adj, vi, *factories[vi]));
    for (int ei : adj.ins[vi]) {
      const EdgeSpec& e = spec.edges[ei];
      const std::string& up = plan.count_suffix[plan.vertex_index.at(e.from)];
      if (plan.count_suffix[vi].empty()) {
        plan.count_suffix[vi] = e.output.empty() ? up : "_" + e.output;
      }
    }
    const auto need_keys = factories[vi]->RequiredInputKeys(v.config);
    for (int ei : adj.ins[vi]) {
      const EdgeSpec& e = spec.edges[ei];
      const size_t k = static_cast<size_t>(plan.edge_input[ei]);
      if (k >= need_keys.size() || need_keys[k].empty()) continue;
      const std::vector<std::string>& need_key = need_keys[k];
      if (e.partition != Partitioning::kHash || e.key != need_key) {
        std::string keys;
        for (const auto& key : need_key) keys += (keys.empty() ? "" : ", ") + key;
        return Status::InvalidArgument(EdgeWhere(e) + ": " + v.type + " '" + v.id + "' needs " +
                                       (e.input.empty() ? "its input" : "input '" + e.input + "'") +
                                       " hash-partitioned by its key [" + keys +
                                       "] (partition: hash, key: [" + keys + "])");
      }
    }
  }
  if (!has_source) return Status::InvalidArgument("job has no source vertex");
  return Status::Ok();
}

// Chaining: A -> B join one task iff the edge is forward from A's main output, A has one main
// output edge and B one input edge and one logical input (equal parallelism is implied by
// forward). Side-output
// edges are never chained: they always go through channels.
Status BuildTasks(ExecutionPlan& plan, const Adjacency& adj, const std::vector<int>& order) {
  const JobSpec& spec = plan.spec;
  const size_t nv = spec.vertices.size();
  std::vector<int> chained_next(nv, -1), chained_prev(nv, -1);
  for (size_t ei = 0; ei < spec.edges.size(); ++ei) {
    const EdgeSpec& e = spec.edges[ei];
    int f = plan.vertex_index[e.from], t = plan.vertex_index[e.to];
    // A vertex with several logical inputs heads its task: the task hands it each channel's
    // batches with the channel's input.
    if (e.output.empty() && e.partition == Partitioning::kForward && adj.outs[f].size() == 1 &&
        adj.ins[t].size() == 1 && plan.vertex_inputs[t].size() <= 1) {
      chained_next[f] = t;
      chained_prev[t] = f;
    }
  }
  plan.task_of_vertex.assign(nv, -1);
  for (int vi : order) {
    if (chained_prev[vi] >= 0) continue;  // not a chain head
    TaskPlan task;
    task.id = spec.vertices[vi].id;
    task.parallelism = spec.vertices[vi].parallelism;
    for (int cur = vi; cur >= 0; cur = chained_next[cur]) {
      task.vertices.push_back(cur);
      plan.task_of_vertex[cur] = static_cast<int>(plan.tasks.size());
      task.side_out_edges.insert(task.side_out_edges.end(), adj.side_outs[cur].begin(),
                                 adj.side_outs[cur].end());
    }
    int with_watermarks = -1;
    for (int cv : task.vertices) {
      if (!spec.vertices[cv].watermarks) continue;
      if (with_watermarks >= 0) {
        return Status::InvalidArgument(
            VertexWhere(spec.vertices[cv]) + ": watermarks: vertex '" +
            spec.vertices[with_watermarks].id +
            "' of the same chain already generates watermarks (one per chain)");
      }
      with_watermarks = cv;
    }
    task.in_edges = adj.ins[vi];
    task.out_edges = adj.outs[task.vertices.back()];
    plan.task_index[task.id] = static_cast<int>(plan.tasks.size());
    plan.tasks.push_back(std::move(task));
  }
  return Status::Ok();
}

}  // namespace

Result<ExecutionPlan> BuildPlan(JobSpec spec, const OperatorRegistry& registry) {
  ExecutionPlan plan;
  if (spec.vertices.empty()) {
    return Status::InvalidArgument("job.vertices: the job has no vertices");
  }
  WEIR_RETURN_IF_ERROR(ExpandImplicitSinks(spec, registry, &plan.state_migrations));
  const size_t nv = spec.vertices.size();

  // Vertices: ids and types.
  std::vector<const OperatorFactory*> factories(nv);
  for (size_t i = 0; i < nv; ++i) {
    const VertexSpec& v = spec.vertices[i];
    if (!IsValidId(v.id)) {
      return Status::InvalidArgument("vertex id '" + v.id +
                                     "': must be 1-128 characters of A-Z a-z 0-9 _ -");
    }
    if (!plan.vertex_index.emplace(v.id, static_cast<int>(i)).second) {
      return Status::InvalidArgument("vertex '" + v.id + "': duplicate vertex id");
    }
    factories[i] = registry.Find(v.type);
    if (!factories[i]) {
      return Status::InvalidArgument(VertexWhere(v) + ": type: unknown operator type '" + v.type +
                                     "' (known: " + registry.TypeNames() + ")");
    }
    if (v.parallelism > spec.max_parallelism) {
      return Status::InvalidArgument(VertexWhere(v) + ": parallelism " +
                                     std::to_string(v.parallelism) + " exceeds max_parallelism " +
                                     std::to_string(spec.max_parallelism));
    }
  }
  WEIR_ASSIGN_OR_RETURN(Adjacency adj, CheckEdges(spec, plan.vertex_index));
  WEIR_ASSIGN_OR_RETURN(std::vector<int> order, TopologicalOrder(spec, adj, plan.vertex_index));
  plan.spec = std::move(spec);
  WEIR_RETURN_IF_ERROR(CheckVertices(plan, adj, order, factories));
  WEIR_RETURN_IF_ERROR(BuildTasks(plan, adj, order));
  return plan;
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Status CheckJobPaths(const ExecutionPlan& plan, const OperatorRegistry& registry,
                     const std::vector<std::string>& allowed) {
  if (allowed.empty()) return Status::Ok();
  for (const VertexSpec& v : plan.spec.vertices) {
    const OperatorFactory* f = registry.Find(v.type);
    if (f == nullptr) continue;  // BuildPlan refused it already
    std::vector<std::string> keys = f->OutputPathKeys();
    for (std::string& key : f->InputPathKeys()) keys.push_back(std::move(key));
    for (const std::string& key : keys) {
      if (!v.config.Has(key)) continue;
      WEIR_ASSIGN_OR_RETURN(std::string path, v.config.GetString(key));
      WEIR_RETURN_IF_ERROR(CheckAllowedPath(path, allowed, v.config.path() + "." + key));
    }
  }
  if (!plan.spec.checkpointing.directory.empty()) {
    WEIR_RETURN_IF_ERROR(
        CheckAllowedPath(plan.spec.checkpointing.directory, allowed, "checkpointing.dir"));
  }
  return Status::Ok();
}

}  // namespace weir
