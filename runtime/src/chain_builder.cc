#include "chain_builder.h"

#include <filesystem>
#include <thread>

namespace weir::task_internal {

namespace {

// The producer part of a channel key: the task for main outputs; "<vertex>:<output>" for a
// side output (':' is not allowed in ids, so it never equals a task id, and two edges between
// the same pair of tasks get different channels).
std::string ProducerKey(const ExecutionPlan& plan, const EdgeSpec& e) {
  if (e.output.empty()) return plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.from)]].id;
  return e.from + ":" + e.output;
}

}  // namespace

Status ChainBuilder::Build() {
  // Peers' OPENs of this attempt's channels are checked against it, ours are signed with it.
  s_.network->SetAttemptSecret(ChannelKeyPrefix(s_.job_id, s_.attempt), s_.channel_secret);
  WEIR_RETURN_IF_ERROR(CreateOperators());
  WEIR_RETURN_IF_ERROR(ConnectOutputs());
  LinkOperators(PlaceAssigner());
  ConnectInputs();
  return Status::Ok();
}

// What every operator of the chain shares; also loads what they restore from.
OperatorContext ChainBuilder::BaseContext() {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  OperatorContext ctx;
  ctx.job_id = s_.job_id;
  ctx.attempt = s_.attempt;
  ctx.subtask = s_.subtask;
  ctx.parallelism = tp.parallelism;
  ctx.max_parallelism = plan.spec.max_parallelism;
  ctx.metrics = metrics_;
  ctx.key_groups = KeyGroupRangeFor(s_.subtask, plan.spec.max_parallelism, tp.parallelism);
  ctx.state_backend = s_.state_backend;
  ctx.rocksdb_block_cache_bytes = s_.options.rocksdb_block_cache_bytes;
  ctx.state_cache_bytes = s_.options.state_cache_bytes;
  for (const auto& vr : s_.restore.vertices()) {
    RestoredState& r = c_.restored[vr.vertex_id()];
    r.root = s_.restore.root();
    r.keyed.assign(vr.keyed().begin(), vr.keyed().end());
    r.operator_state.assign(vr.operator_state().begin(), vr.operator_state().end());
  }
  return ctx;
}

// The per-vertex part of the context: its restored state and its local state directory.
Status ChainBuilder::PrepareContext(const VertexSpec& v, OperatorContext* ctx) {
  ctx->vertex_id = v.id;
  auto it = c_.restored.find(v.id);
  ctx->restored = it == c_.restored.end() ? nullptr : &it->second;
  ctx->local_dir.clear();
  if (!s_.local_dir.empty()) {
    ctx->local_dir = s_.local_dir + "/" + v.id;
    std::error_code ec;
    std::filesystem::create_directories(ctx->local_dir, ec);
    if (ec) {
      return Status::IoError("cannot create state directory " + ctx->local_dir + ": " +
                             ec.message());
    }
  }
  return Status::Ok();
}

Status ChainBuilder::CreateOperators() {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  const JobSpec& spec = plan.spec;
  size_t first_op = 0;
  const VertexSpec& head = spec.vertices[tp.vertices[0]];
  const OperatorFactory* head_factory = s_.registry->Find(head.type);
  if (!head_factory) return Status::Internal("unknown operator type " + head.type);
  OperatorContext ctx = BaseContext();
  if (head_factory->kind() == OperatorKind::kSource) {
    WEIR_ASSIGN_OR_RETURN(c_.source, head_factory->CreateSource(head.config));
    WEIR_RETURN_IF_ERROR(PrepareContext(head, &ctx));
    ctx.log_prefix = prefix_;
    ctx.watermarks = head.watermarks ? &*head.watermarks : nullptr;
    SetSideOutputs(tp.vertices[0], &ctx);
    WEIR_RETURN_IF_ERROR(c_.source->Open(ctx).WithContext("vertex '" + head.id + "'"));
    first_op = 1;
  }
  for (size_t k = first_op; k < tp.vertices.size(); ++k) {
    const VertexSpec& v = spec.vertices[tp.vertices[k]];
    const OperatorFactory* f = s_.registry->Find(v.type);
    WEIR_ASSIGN_OR_RETURN(auto op,
                          f->CreateWithInputs(v.config, plan.vertex_inputs[tp.vertices[k]]));
    WEIR_RETURN_IF_ERROR(PrepareContext(v, &ctx));
    ctx.log_prefix = prefix_ + " op=" + v.id;
    ctx.watermarks = nullptr;
    SetSideOutputs(tp.vertices[k], &ctx);
    WEIR_RETURN_IF_ERROR(op->Open(ctx).WithContext("vertex '" + v.id + "'"));
    c_.ops.push_back(std::move(op));
  }
  return Status::Ok();
}

// The side outputs vertex vi declared (one Output each, wired to edges after Open).
void ChainBuilder::SetSideOutputs(int vi, OperatorContext* ctx) {
  ctx->side_outputs.clear();
  ctx->side_output_names.clear();
  const auto& declared = s_.plan->side_outputs[vi];
  for (size_t k = 0; k < declared.size(); ++k) {
    auto out = std::make_unique<SideNetworkOutput>(metrics_);
    ctx->side_outputs.push_back(out.get());
    ctx->side_output_names.push_back(declared[k].name);
    c_.side_outs[{vi, static_cast<int>(k)}] = std::move(out);
  }
}

// The tail's main output edges, then the side-output edges of any vertex.
Status ChainBuilder::ConnectOutputs() {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  for (int ei : tp.out_edges) {
    WEIR_ASSIGN_OR_RETURN(auto w, ConnectEdge(ei));
    c_.all_writers.push_back(w.get());
    c_.net_out.writers.push_back(std::move(w));
  }
  for (int ei : tp.side_out_edges) {
    WEIR_ASSIGN_OR_RETURN(auto w, ConnectEdge(ei));
    const EdgeSpec& e = plan.spec.edges[ei];
    c_.all_writers.push_back(w.get());
    c_.side_outs.at({plan.vertex_index.at(e.from), plan.edge_side_output[ei]})
        ->writers.push_back(w.get());
    c_.side_writers.push_back(std::move(w));
  }
  return Status::Ok();
}

// A writer for edge ei from this subtask, connected to every consumer subtask it feeds.
Result<std::unique_ptr<EdgeWriter>> ChainBuilder::ConnectEdge(int ei) {
  const ExecutionPlan& plan = *s_.plan;
  const EdgeSpec& e = plan.spec.edges[ei];
  const Schema* schema = &plan.edge_schemas[ei];
  std::vector<int> key_idx;
  for (const auto& k : e.key) key_idx.push_back(schema->IndexOf(k));
  const TaskPlan& consumer = plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.to)]];
  auto w = std::make_unique<EdgeWriter>(e.partition, std::move(key_idx), plan.spec.max_parallelism,
                                        schema, s_.options.buffer_bytes, s_.subtask, metrics_);
  std::vector<int> targets;
  if (e.partition == Partitioning::kForward) {
    targets.push_back(s_.subtask);
  } else {
    for (int j = 0; j < consumer.parallelism; ++j) targets.push_back(j);
  }
  const std::string producer = ProducerKey(plan, e);
  for (int j : targets) {
    const std::string key = ChannelKey(s_.job_id, s_.attempt, consumer.id, j, producer, s_.subtask);
    PeerLocation loc = s_.locate(consumer.id, j);
    if (loc.local) {
      WEIR_ASSIGN_OR_RETURN(auto local, s_.network->ConnectLocal(key, cancel_));
      w->AddChannel(std::move(local));
      continue;
    }
    // The consumer's task manager may still be starting its listener: retry briefly.
    Result<std::unique_ptr<ChannelSender>> sender = Status::Unavailable("not tried");
    for (int attempt = 0; attempt < 50 && !cancel_->load(); ++attempt) {
      sender = s_.network->ConnectRemote(loc.data_address, key, cancel_, loc.tm_id);
      if (sender.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!sender.ok()) return sender.status();
    w->AddChannel(std::move(sender).value());
  }
  return w;
}

// Event time: at most one vertex per chain generates watermarks (checked by BuildPlan).
// Returns the operator whose output the assigner watches (-1: none, e.g. the source tracks).
int ChainBuilder::PlaceAssigner() {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  int observed_op = -1;
  for (size_t k = 0; k < tp.vertices.size(); ++k) {
    const VertexSpec& v = plan.spec.vertices[tp.vertices[k]];
    if (!v.watermarks) continue;
    c_.assigner = std::make_unique<Assigner>();
    Assigner& a = *c_.assigner;
    a.strategy = *v.watermarks;
    a.tracker = WatermarkTracker(a.strategy.max_out_of_orderness_ms);
    a.tracker.Touch(NowMs());
    a.field = plan.output_schemas[tp.vertices[k]].IndexOf(a.strategy.event_time_field);
    if (c_.source && k == 0) {
      a.pos = 0;
      a.source_tracks = c_.source->TracksWatermarks();
    } else {
      observed_op = static_cast<int>(c_.source ? k - 1 : k);
      a.pos = static_cast<size_t>(observed_op) + 1;
    }
  }
  return observed_op;
}

// Chain links, built back to front.
void ChainBuilder::LinkOperators(int observed_op) {
  const TaskPlan& tp = s_.plan->tasks[s_.task_index];
  Output* out = tp.out_edges.empty() ? static_cast<Output*>(&c_.discard) : &c_.net_out;
  c_.outs.resize(c_.ops.size());
  for (size_t k = c_.ops.size(); k-- > 0;) {
    c_.outs[k] = out;
    if (static_cast<int>(k) == observed_op) {
      c_.observing = std::make_unique<ObservingOutput>(c_.assigner.get(), out);
      c_.outs[k] = c_.observing.get();
    }
    if (k > 0) {
      c_.links.push_back(std::make_unique<ChainLink>(c_.ops[k].get(), c_.outs[k]));
      out = c_.links.back().get();
    }
  }
  c_.head_out = c_.ops.empty() ? out : nullptr;
}

// A gate channel per upstream producer subtask of every input edge, each mapped to the logical
// input its edge feeds (decided here, at deploy time: the wire carries no input index).
void ChainBuilder::ConnectInputs() {
  const ExecutionPlan& plan = *s_.plan;
  const TaskPlan& tp = plan.tasks[s_.task_index];
  for (const Schema& s : plan.vertex_inputs[tp.vertices[0]]) c_.input_schemas.push_back(&s);
  for (int ei : tp.in_edges) {
    const EdgeSpec& e = plan.spec.edges[ei];
    const TaskPlan& producer = plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.from)]];
    std::vector<int> sources;
    if (e.partition == Partitioning::kForward) {
      sources.push_back(s_.subtask);
    } else {
      for (int j = 0; j < producer.parallelism; ++j) sources.push_back(j);
    }
    for (int j : sources) {
      const PeerLocation from = s_.locate(producer.id, j);
      c_.input_names.push_back("'" + (e.output.empty() ? producer.id : e.from + "." + e.output) +
                               "' subtask " + std::to_string(j) +
                               (from.tm_id.empty() ? "" : " on " + from.tm_id));
      c_.channel_input.push_back(plan.edge_input[ei]);
      c_.gate.AddChannel(s_.network->GetOrCreateChannel(
          ChannelKey(s_.job_id, s_.attempt, tp.id, s_.subtask, ProducerKey(plan, e), j)));
    }
  }
}

}  // namespace weir::task_internal
