#include "weir/task.h"

#include <cassert>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <map>
#include <thread>

#include "weir/clock.h"
#include "weir/key_groups.h"
#include "weir/logging.h"
#include "weir/serde.h"

namespace weir {

std::string ChannelKeyPrefix(const std::string& job_id, int attempt) {
  return job_id + "/" + std::to_string(attempt) + "/";
}

std::string ChannelKey(const std::string& job_id, int attempt, const std::string& consumer_task,
                       int consumer_subtask, const std::string& producer_task,
                       int producer_subtask) {
  return ChannelKeyPrefix(job_id, attempt) + consumer_task + "/" +
         std::to_string(consumer_subtask) + "/" + producer_task + "/" +
         std::to_string(producer_subtask);
}

namespace {

const ModuleLog Log("task");

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// One outgoing edge: partitions rows over the consumer subtasks' channels.
class EdgeWriter {
 public:
  struct Channel {
    std::unique_ptr<ChannelSender> sender;
    ByteBuffer buf;
    uint32_t records = 0;
  };

  EdgeWriter(Partitioning part, std::vector<int> key_idx, int max_parallelism,
             const Schema* schema, size_t buffer_bytes, int my_subtask)
      : part_(part),
        key_idx_(std::move(key_idx)),
        max_parallelism_(max_parallelism),
        schema_(schema),
        buffer_bytes_(buffer_bytes),
        rr_(static_cast<size_t>(my_subtask)) {}

  void AddChannel(std::unique_ptr<ChannelSender> s) {
    channels_.push_back(Channel{std::move(s), ByteBuffer(buffer_bytes_ + 4096), 0});
  }

  Status Write(const RowBatch& batch) {
    const size_t n = channels_.size();
    switch (part_) {
      case Partitioning::kForward:
        for (size_t i = 0; i < batch.size(); ++i) WEIR_RETURN_IF_ERROR(Append(channels_[0], batch[i]));
        break;
      case Partitioning::kRebalance:
        for (size_t i = 0; i < batch.size(); ++i) {
          WEIR_RETURN_IF_ERROR(Append(channels_[rr_ % n], batch[i]));
          ++rr_;
        }
        break;
      case Partitioning::kHash:
        if (channel_of_kg_.size() != static_cast<size_t>(max_parallelism_)) BuildKeyGroupTable();
        for (size_t i = 0; i < batch.size(); ++i) {
          uint64_t h = 0;
          for (int k : key_idx_) h = HashValue(batch[i][k], h);
          const int kg = KeyGroupForHash(h, max_parallelism_);
          WEIR_RETURN_IF_ERROR(Append(channels_[channel_of_kg_[kg]], batch[i]));
        }
        break;
      case Partitioning::kBroadcast:
        for (size_t i = 0; i < batch.size(); ++i) {
          for (auto& c : channels_) WEIR_RETURN_IF_ERROR(Append(c, batch[i]));
        }
        break;
    }
    return Status::Ok();
  }

  Status FlushAll() {
    for (auto& c : channels_) WEIR_RETURN_IF_ERROR(Flush(c));
    return Status::Ok();
  }

  // Flushes, then sends `event` on every channel (events never overtake rows).
  Status Broadcast(EventKind kind, int64_t arg, const std::string& body = "") {
    for (auto& c : channels_) {
      WEIR_RETURN_IF_ERROR(Flush(c));
      NetBuffer b;
      b.kind = kind;
      b.arg = arg;
      b.bytes.assign(body.begin(), body.end());
      WEIR_RETURN_IF_ERROR(c.sender->Send(std::move(b)));
    }
    return Status::Ok();
  }

 private:
  // The consumer subtask of every key group, so that routing a row takes no division.
  void BuildKeyGroupTable() {
    const int n = static_cast<int>(channels_.size());
    channel_of_kg_.resize(static_cast<size_t>(max_parallelism_));
    for (int kg = 0; kg < max_parallelism_; ++kg) {
      channel_of_kg_[kg] = SubtaskForKeyGroup(kg, max_parallelism_, n);
    }
  }

  Status Append(Channel& c, const Row& row) {
    SerializeRow(row, *schema_, c.buf);
    ++c.records;
    if (c.buf.size() >= buffer_bytes_) return Flush(c);
    return Status::Ok();
  }

  Status Flush(Channel& c) {
    if (c.records == 0) return Status::Ok();
    NetBuffer b;
    b.kind = EventKind::kData;
    b.records = c.records;
    b.bytes = c.buf.Release();
    c.records = 0;
    c.buf = ByteBuffer(buffer_bytes_ + 4096);
    return c.sender->Send(std::move(b));
  }

  Partitioning part_;
  std::vector<int> key_idx_;
  int max_parallelism_;
  const Schema* schema_;
  size_t buffer_bytes_;
  size_t rr_;
  std::vector<Channel> channels_;
  std::vector<int> channel_of_kg_;  // hash partitioning; built on the first batch
};

// The chain's last output: every edge writer gets every batch.
class NetworkOutput : public Output {
 public:
  explicit NetworkOutput(OperatorMetrics* m) : metrics_(m) {}
  std::vector<std::unique_ptr<EdgeWriter>> writers;
  Status Emit(RowBatch& batch) override {
    metrics_->records_out.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
    for (auto& w : writers) WEIR_RETURN_IF_ERROR(w->Write(batch));
    return Status::Ok();
  }

 private:
  OperatorMetrics* metrics_;
};

// A side output of one operator of the chain: every edge consuming it gets every batch. With
// no such edge (the job does not use this output) rows are dropped and counted.
class SideNetworkOutput : public Output {
 public:
  explicit SideNetworkOutput(OperatorMetrics* m) : metrics_(m) {}
  std::vector<EdgeWriter*> writers;  // owned by the task
  Status Emit(RowBatch& batch) override {
    if (writers.empty()) {
      metrics_->side_records_dropped.fetch_add(static_cast<int64_t>(batch.size()),
                                               std::memory_order_relaxed);
      return Status::Ok();
    }
    for (EdgeWriter* w : writers) WEIR_RETURN_IF_ERROR(w->Write(batch));
    return Status::Ok();
  }

 private:
  OperatorMetrics* metrics_;
};

// The producer part of a channel key: the task for main outputs; "<vertex>:<output>" for a
// side output (':' is not allowed in ids, so it never equals a task id, and two edges between
// the same pair of tasks get different channels).
std::string ProducerKey(const ExecutionPlan& plan, const EdgeSpec& e) {
  if (e.output.empty()) return plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.from)]].id;
  return e.from + ":" + e.output;
}

// Output of a sink: nothing leaves the chain.
class DiscardOutput : public Output {
 public:
  Status Emit(RowBatch&) override { return Status::Ok(); }
};

// Links chained operator i to operator i+1.
class ChainLink : public Output {
 public:
  ChainLink(Operator* next, Output* next_out) : next_(next), next_out_(next_out) {}
  Status Emit(RowBatch& batch) override { return next_->Process(batch, *next_out_); }

 private:
  Operator* next_;
  Output* next_out_;
};

// Watermark generation at one point of the chain (the vertex with a `watermarks:` block):
// tracks the maximum event time of the rows that pass, with bounded out-of-orderness.
struct Assigner {
  size_t pos = 0;  // index of the first operator that sees its watermarks (ops_.size(): none)
  WatermarkStrategy strategy;
  int field = -1;  // event-time field of the rows passing this point
  WatermarkTracker tracker;
  bool source_tracks = false;  // the source tracks watermarks per split itself
  bool idle = false;
  int64_t next_emit_ms = 0;

  void Observe(const RowBatch& batch, int64_t now_ms) {
    if (batch.empty()) return;
    int64_t max = kMinWatermark;
    for (size_t i = 0; i < batch.size(); ++i) {
      const Value& v = batch[i][static_cast<size_t>(field)];
      if (!v.is_null() && v.i > max) max = v.i;
    }
    if (max != kMinWatermark) {
      tracker.OnEvent(max, now_ms);
    } else {
      tracker.Touch(now_ms);
    }
  }
};

// Passes batches on after the assigner saw them.
class ObservingOutput : public Output {
 public:
  ObservingOutput(Assigner* a, Output* next) : a_(a), next_(next) {}
  Status Emit(RowBatch& batch) override {
    a_->Observe(batch, NowMs());
    return next_->Emit(batch);
  }

 private:
  Assigner* a_;
  Output* next_;
};

}  // namespace

class Task::Impl {
 public:
  Impl(const TaskSetup& s, std::atomic<bool>* cancel, OperatorMetrics* metrics,
       const std::string& prefix, Mailbox* mailbox)
      : s_(s),
        cancel_(cancel),
        metrics_(metrics),
        prefix_(prefix),
        mailbox_(mailbox),
        net_out_(metrics) {
    upload_executor_ = s_.upload_executor;
    if (!upload_executor_) {
      own_upload_executor_ = std::make_unique<Executor>("upload", 1);
      upload_executor_ = own_upload_executor_.get();
    }
  }

  Status Initialize() {
    const ExecutionPlan& plan = *s_.plan;
    const TaskPlan& tp = plan.tasks[s_.task_index];
    const JobSpec& spec = plan.spec;
    // Operators.
    size_t first_op = 0;
    const VertexSpec& head = spec.vertices[tp.vertices[0]];
    const OperatorFactory* head_factory = s_.registry->Find(head.type);
    if (!head_factory) return Status::Internal("unknown operator type " + head.type);
    OperatorContext ctx;
    ctx.job_id = s_.job_id;
    ctx.attempt = s_.attempt;
    ctx.subtask = s_.subtask;
    ctx.parallelism = tp.parallelism;
    ctx.max_parallelism = spec.max_parallelism;
    ctx.metrics = metrics_;
    ctx.key_groups = KeyGroupRangeFor(s_.subtask, spec.max_parallelism, tp.parallelism);
    ctx.state_backend = s_.state_backend;
    ctx.rocksdb_block_cache_bytes = s_.options.rocksdb_block_cache_bytes;
    for (const auto& vr : s_.restore.vertices()) {
      RestoredState& r = restored_[vr.vertex_id()];
      r.root = s_.restore.root();
      r.keyed.assign(vr.keyed().begin(), vr.keyed().end());
      r.operator_state.assign(vr.operator_state().begin(), vr.operator_state().end());
    }
    auto prepare = [&](const VertexSpec& v) -> Status {
      ctx.vertex_id = v.id;
      auto it = restored_.find(v.id);
      ctx.restored = it == restored_.end() ? nullptr : &it->second;
      ctx.local_dir.clear();
      if (!s_.local_dir.empty()) {
        ctx.local_dir = s_.local_dir + "/" + v.id;
        std::error_code ec;
        std::filesystem::create_directories(ctx.local_dir, ec);
        if (ec) {
          return Status::IoError("cannot create state directory " + ctx.local_dir + ": " +
                                 ec.message());
        }
      }
      return Status::Ok();
    };
    if (head_factory->kind() == OperatorKind::kSource) {
      WEIR_ASSIGN_OR_RETURN(source_, head_factory->CreateSource(head.config));
      WEIR_RETURN_IF_ERROR(prepare(head));
      ctx.log_prefix = prefix_;
      ctx.watermarks = head.watermarks ? &*head.watermarks : nullptr;
      SetSideOutputs(tp.vertices[0], &ctx);
      WEIR_RETURN_IF_ERROR(source_->Open(ctx).WithContext("vertex '" + head.id + "'"));
      first_op = 1;
    }
    for (size_t k = first_op; k < tp.vertices.size(); ++k) {
      const VertexSpec& v = spec.vertices[tp.vertices[k]];
      const OperatorFactory* f = s_.registry->Find(v.type);
      WEIR_ASSIGN_OR_RETURN(auto op, f->Create(v.config, plan.input_schemas[tp.vertices[k]]));
      WEIR_RETURN_IF_ERROR(prepare(v));
      ctx.log_prefix = prefix_ + " op=" + v.id;
      ctx.watermarks = nullptr;
      SetSideOutputs(tp.vertices[k], &ctx);
      WEIR_RETURN_IF_ERROR(op->Open(ctx).WithContext("vertex '" + v.id + "'"));
      ops_.push_back(std::move(op));
    }
    // Outputs: the tail's main output edges, then the side-output edges of any vertex.
    for (int ei : tp.out_edges) {
      WEIR_ASSIGN_OR_RETURN(auto w, ConnectEdge(ei));
      all_writers_.push_back(w.get());
      net_out_.writers.push_back(std::move(w));
    }
    for (int ei : tp.side_out_edges) {
      WEIR_ASSIGN_OR_RETURN(auto w, ConnectEdge(ei));
      const EdgeSpec& e = spec.edges[ei];
      all_writers_.push_back(w.get());
      side_outs_.at({plan.vertex_index.at(e.from), plan.edge_side_output[ei]})
          ->writers.push_back(w.get());
      side_writers_.push_back(std::move(w));
    }
    // Event time: at most one vertex per chain generates watermarks (checked by BuildPlan).
    int observed_op = -1;  // the operator whose output the assigner watches
    for (size_t k = 0; k < tp.vertices.size(); ++k) {
      const VertexSpec& v = spec.vertices[tp.vertices[k]];
      if (!v.watermarks) continue;
      assigner_ = std::make_unique<Assigner>();
      Assigner& a = *assigner_;
      a.strategy = *v.watermarks;
      a.tracker = WatermarkTracker(a.strategy.max_out_of_orderness_ms);
      a.tracker.Touch(NowMs());
      a.field = plan.output_schemas[tp.vertices[k]].IndexOf(a.strategy.event_time_field);
      if (source_ && k == 0) {
        a.pos = 0;
        a.source_tracks = source_->TracksWatermarks();
      } else {
        observed_op = static_cast<int>(source_ ? k - 1 : k);
        a.pos = static_cast<size_t>(observed_op) + 1;
      }
    }
    // Chain links, built back to front.
    Output* out = tp.out_edges.empty() ? static_cast<Output*>(&discard_) : &net_out_;
    outs_.resize(ops_.size());
    for (size_t k = ops_.size(); k-- > 0;) {
      outs_[k] = out;
      if (static_cast<int>(k) == observed_op) {
        observing_ = std::make_unique<ObservingOutput>(assigner_.get(), out);
        outs_[k] = observing_.get();
      }
      if (k > 0) {
        links_.push_back(std::make_unique<ChainLink>(ops_[k].get(), outs_[k]));
        out = links_.back().get();
      }
    }
    head_out_ = ops_.empty() ? out : nullptr;
    op_wm_.assign(ops_.size(), kMinWatermark);
    // Inputs.
    input_schema_ = &plan.input_schemas[tp.vertices[0]];
    for (int ei : tp.in_edges) {
      const EdgeSpec& e = spec.edges[ei];
      const TaskPlan& producer = plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.from)]];
      std::vector<int> sources;
      if (e.partition == Partitioning::kForward) {
        sources.push_back(s_.subtask);
      } else {
        for (int j = 0; j < producer.parallelism; ++j) sources.push_back(j);
      }
      for (int j : sources) {
        const PeerLocation from = s_.locate(producer.id, j);
        input_names_.push_back("'" + (e.output.empty() ? producer.id : e.from + "." + e.output) +
                               "' subtask " + std::to_string(j) +
                               (from.tm_id.empty() ? "" : " on " + from.tm_id));
        gate_.AddChannel(s_.network->GetOrCreateChannel(
            ChannelKey(s_.job_id, s_.attempt, tp.id, s_.subtask, ProducerKey(plan, e), j)));
      }
    }
    valve_ = std::make_unique<WatermarkValve>(gate_.num_channels());
    return Status::Ok();
  }

  // The side outputs vertex vi declared (one Output each, wired to edges after Open).
  void SetSideOutputs(int vi, OperatorContext* ctx) {
    ctx->side_outputs.clear();
    ctx->side_output_names.clear();
    const auto& declared = s_.plan->side_outputs[vi];
    for (size_t k = 0; k < declared.size(); ++k) {
      auto out = std::make_unique<SideNetworkOutput>(metrics_);
      ctx->side_outputs.push_back(out.get());
      ctx->side_output_names.push_back(declared[k].name);
      side_outs_[{vi, static_cast<int>(k)}] = std::move(out);
    }
  }

  // A writer for edge ei from this subtask, connected to every consumer subtask it feeds.
  Result<std::unique_ptr<EdgeWriter>> ConnectEdge(int ei) {
    const ExecutionPlan& plan = *s_.plan;
    const EdgeSpec& e = plan.spec.edges[ei];
    const Schema* schema = &plan.edge_schemas[ei];
    std::vector<int> key_idx;
    for (const auto& k : e.key) key_idx.push_back(schema->IndexOf(k));
    const TaskPlan& consumer = plan.tasks[plan.task_of_vertex[plan.vertex_index.at(e.to)]];
    auto w =
        std::make_unique<EdgeWriter>(e.partition, std::move(key_idx), plan.spec.max_parallelism,
                                     schema, s_.options.buffer_bytes, s_.subtask);
    std::vector<int> targets;
    if (e.partition == Partitioning::kForward) {
      targets.push_back(s_.subtask);
    } else {
      for (int j = 0; j < consumer.parallelism; ++j) targets.push_back(j);
    }
    const std::string producer = ProducerKey(plan, e);
    for (int j : targets) {
      const std::string key =
          ChannelKey(s_.job_id, s_.attempt, consumer.id, j, producer, s_.subtask);
      PeerLocation loc = s_.locate(consumer.id, j);
      if (loc.local) {
        w->AddChannel(s_.network->ConnectLocal(key, cancel_));
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

  // Hands a batch to the head of the chain (after the source, if any).
  Status Push(RowBatch& batch) {
    if (ops_.empty()) return head_out_->Emit(batch);
    return ops_[0]->Process(batch, *outs_[0]);
  }

  Status MaybeFlushOnTimeout() {
    int64_t now = NowNs();
    if (now - last_flush_ns_ >= s_.options.buffer_timeout_ms * 1000000) {
      last_flush_ns_ = now;
      for (EdgeWriter* w : all_writers_) WEIR_RETURN_IF_ERROR(w->FlushAll());
    }
    return Status::Ok();
  }

  // ---------------------------------------------------------------- time
  // Periodic work on the task thread (every buffer timeout, and while idle): processing-time
  // callbacks and watermark generation.
  Status Tick() {
    const int64_t mono = NowNs();
    if (mono - last_tick_ns_ < kTickNs) return Status::Ok();
    last_tick_ns_ = mono;
    const int64_t now = NowMs();
    for (size_t k = 0; k < ops_.size(); ++k) {
      WEIR_RETURN_IF_ERROR(ops_[k]->OnProcessingTime(now, *outs_[k]));
    }
    if (assigner_ && now >= assigner_->next_emit_ms) {
      Assigner& a = *assigner_;
      a.next_emit_ms = now + a.strategy.emit_interval_ms;
      WatermarkStatus st;
      if (a.source_tracks) {
        st = source_->CurrentWatermark(now);
      } else {
        st.watermark = a.tracker.watermark();
        st.idle = a.strategy.idle_timeout_ms > 0 &&
                  now - a.tracker.last_event_ms() >= a.strategy.idle_timeout_ms;
      }
      if (st.idle != a.idle) {
        a.idle = st.idle;
        WEIR_RETURN_IF_ERROR(BroadcastStatus(st.idle));
      }
      if (!st.idle && st.watermark != kMinWatermark) {
        WEIR_RETURN_IF_ERROR(ForwardWatermark(a.pos, st.watermark, /*upstream=*/false));
      }
    }
    return Status::Ok();
  }

  // Hands watermark `wm` to operators from `from` on, then downstream tasks. A watermark from
  // upstream stops at the chain's assigner (which replaces event time from there on);
  // watermarks never go back, per operator.
  Status ForwardWatermark(size_t from, int64_t wm, bool upstream) {
    for (size_t k = from; k < ops_.size(); ++k) {
      if (upstream && assigner_ && assigner_->pos == k) return Status::Ok();
      if (wm <= op_wm_[k]) continue;
      op_wm_[k] = wm;
      WEIR_RETURN_IF_ERROR(ops_[k]->OnWatermark(wm, *outs_[k]));
    }
    if (upstream && assigner_ && assigner_->pos == ops_.size()) return Status::Ok();
    if (wm <= net_wm_) return Status::Ok();
    net_wm_ = wm;
    for (EdgeWriter* w : all_writers_) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kWatermark, wm));
    }
    return Status::Ok();
  }

  Status BroadcastStatus(bool idle) {
    if (idle == net_idle_) return Status::Ok();
    net_idle_ = idle;
    for (EdgeWriter* w : all_writers_) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kWatermarkStatus, idle ? 1 : 0));
    }
    return Status::Ok();
  }

  Status FlushAll() {
    last_flush_ns_ = NowNs();
    for (EdgeWriter* w : all_writers_) WEIR_RETURN_IF_ERROR(w->FlushAll());
    return Status::Ok();
  }

  Status RunSource() {
    RowBatch batch;
    while (!cancel_->load(std::memory_order_relaxed)) {
      if (mailbox_->pending.load(std::memory_order_acquire)) WEIR_RETURN_IF_ERROR(ProcessMail());
      batch.Clear();
      WEIR_ASSIGN_OR_RETURN(PollResult r, source_->Poll(batch, s_.options.batch_rows));
      if (!batch.empty()) {
        metrics_->records_in.fetch_add(static_cast<int64_t>(batch.size()), std::memory_order_relaxed);
        if (assigner_ && assigner_->pos == 0 && !assigner_->source_tracks) {
          assigner_->Observe(batch, NowMs());
        }
        WEIR_RETURN_IF_ERROR(Push(batch));
      }
      if (r == PollResult::kEnd) return Status::Ok();
      WEIR_RETURN_IF_ERROR(Tick());
      if (r == PollResult::kIdle) {
        WEIR_RETURN_IF_ERROR(FlushAll());
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      } else {
        WEIR_RETURN_IF_ERROR(MaybeFlushOnTimeout());
      }
    }
    return Status::Cancelled("cancelled");
  }

  Status RunInputs() {
    size_t open_channels = gate_.num_channels();
    std::vector<bool> ended(open_channels, false);
    RowBatch batch;
    NetBuffer buf;
    const auto timeout = std::chrono::milliseconds(std::max<int64_t>(1, s_.options.buffer_timeout_ms));
    ended_ = &ended;
    while (open_channels > 0) {
      if (cancel_->load(std::memory_order_relaxed)) return Status::Cancelled("cancelled");
      if (mailbox_->pending.load(std::memory_order_acquire)) WEIR_RETURN_IF_ERROR(ProcessMail());
      int ch = -1;
      Status err;
      InputGate::Next next = gate_.Poll(&ch, &buf, std::chrono::microseconds(0), &err);
      if (next == InputGate::Next::kTimeout) {
        // About to wait: send what we have so downstream is not kept waiting.
        WEIR_RETURN_IF_ERROR(FlushAll());
        next = gate_.Poll(&ch, &buf, timeout, &err);
      }
      WEIR_RETURN_IF_ERROR(Tick());
      if (next == InputGate::Next::kTimeout) continue;
      if (next == InputGate::Next::kError) {
        if (ended[ch]) continue;
        return Status::Unavailable("input from " + input_names_[ch] + " lost: " + err.message());
      }
      switch (buf.kind) {
        case EventKind::kData:
          WEIR_RETURN_IF_ERROR(ProcessBuffer(buf, batch));
          WEIR_RETURN_IF_ERROR(MaybeFlushOnTimeout());
          break;
        case EventKind::kEndOfStream:
          if (!ended[ch]) {
            ended[ch] = true;
            --open_channels;
            if (auto wm = valve_->OnEnd(static_cast<size_t>(ch))) {
              WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
            }
            // An ended channel counts as aligned for a checkpoint in progress.
            if (aligning_id_ > 0) WEIR_RETURN_IF_ERROR(MaybeFinishAlignment());
          }
          break;
        case EventKind::kBarrier:
          WEIR_RETURN_IF_ERROR(OnBarrier(ch, buf));
          break;
        case EventKind::kWatermark:
          if (auto wm = valve_->OnWatermark(static_cast<size_t>(ch), buf.arg)) {
            WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
          }
          break;
        case EventKind::kWatermarkStatus: {
          bool changed = false;
          auto wm = valve_->OnIdle(static_cast<size_t>(ch), buf.arg == 1, &changed);
          if (wm) WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
          // With an assigner in this chain, its own idleness is what downstream sees.
          if (changed && !assigner_) WEIR_RETURN_IF_ERROR(BroadcastStatus(valve_->idle()));
          break;
        }
      }
    }
    return Status::Ok();
  }

  // ---------------------------------------------------------------- checkpoints
  // Barrier n on channel ch: hold the channel back until every channel delivered n (or
  // ended), then snapshot the chain and forward n (aligned checkpoints).
  Status OnBarrier(int ch, const NetBuffer& buf) {
    const int64_t id = buf.arg;
    if (id <= last_checkpoint_id_) return Status::Ok();  // stale (an aborted, older one)
    if (id > aligning_id_) {
      if (aligning_id_ > 0) {
        // A newer barrier overtook an unfinished alignment: that checkpoint was abandoned.
        Log()->warn("{} checkpoint={} abandoned for checkpoint {}", prefix_, aligning_id_, id);
        gate_.UnblockAll();
      }
      aligning_id_ = id;
      align_start_ns_ = NowNs();
      aligning_options_.Clear();
      if (!aligning_options_.ParseFromArray(buf.bytes.data(), static_cast<int>(buf.bytes.size()))) {
        return Status::DataLoss("corrupt checkpoint barrier " + std::to_string(id));
      }
    }
    gate_.Block(ch);
    return MaybeFinishAlignment();
  }

  Status MaybeFinishAlignment() {
    for (size_t c = 0; c < gate_.num_channels(); ++c) {
      if (!(*ended_)[c] && !gate_.blocked(static_cast<int>(c))) return Status::Ok();
    }
    const int64_t id = aligning_id_;
    const int64_t align_ms = (NowNs() - align_start_ns_) / 1000000;
    aligning_id_ = 0;
    Status st = PerformCheckpoint(id, NowMs(), aligning_options_, align_ms);
    gate_.UnblockAll();
    return st;
  }

  // Snapshots the chain (synchronous part), forwards the barrier, and starts the upload.
  // A failure to snapshot declines the checkpoint; the job goes on.
  Status PerformCheckpoint(int64_t id, int64_t timestamp_ms, const proto::CheckpointOptions& opts,
                           int64_t align_ms) {
    last_checkpoint_id_ = id;
    const int64_t start = NowNs();
    const ExecutionPlan& plan = *s_.plan;
    const TaskPlan& tp = plan.tasks[s_.task_index];
    std::vector<std::pair<std::string, OperatorSnapshot>> snaps;
    Status st;
    size_t k = 0;
    if (source_) {
      snaps.emplace_back(plan.spec.vertices[tp.vertices[0]].id, OperatorSnapshot{});
      st = source_->Snapshot(id, &snaps.back().second);
      k = 1;
    }
    for (size_t i = 0; st.ok() && i < ops_.size(); ++i, ++k) {
      snaps.emplace_back(plan.spec.vertices[tp.vertices[k]].id, OperatorSnapshot{});
      st = ops_[i]->Snapshot(id, &snaps.back().second);
    }
    if (!st.ok()) {
      Log()->warn("{} checkpoint={} declined: {}", prefix_, id, st.ToString());
      if (s_.on_checkpoint_decline) s_.on_checkpoint_decline(id, st.ToString());
      // Downstream tasks still get the barrier so they do not stay blocked; the coordinator
      // aborts the checkpoint.
    }
    const std::string body = opts.SerializeAsString();
    for (EdgeWriter* w : all_writers_) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kBarrier, id, body));
    }
    if (!st.ok()) return Status::Ok();
    const int64_t sync_ms = (NowNs() - start) / 1000000;
    Log()->info("{} checkpoint={} snapshot taken (sync {} ms, alignment {} ms)", prefix_, id,
                sync_ms, align_ms);
    // Rows downstream of a side output are reported apart (ExecutionPlan::count_suffix).
    for (size_t i = 0; i < snaps.size(); ++i) {
      const std::string& suffix = plan.count_suffix[tp.vertices[i]];
      if (suffix.empty() || snaps[i].second.counts.empty()) continue;
      std::map<std::string, int64_t> renamed;
      for (const auto& [name, n] : snaps[i].second.counts) renamed[name + suffix] = n;
      snaps[i].second.counts = std::move(renamed);
    }
    // The asynchronous part: upload keyed state, then acknowledge.
    auto shared_snaps = std::make_shared<std::vector<std::pair<std::string, OperatorSnapshot>>>(
        std::move(snaps));
    proto::AcknowledgeCheckpointRequest ack;
    ack.set_job_id(s_.job_id);
    ack.set_attempt(s_.attempt);
    ack.set_task_id(tp.id);
    ack.set_subtask(s_.subtask);
    ack.set_checkpoint_id(id);
    ack.set_sync_duration_ms(sync_ms);
    ack.set_alignment_duration_ms(align_ms);
    auto on_ack = s_.on_checkpoint_ack;
    auto on_decline = s_.on_checkpoint_decline;
    const std::string prefix = prefix_;
    const int subtask = s_.subtask;
    {
      std::lock_guard<std::mutex> lock(uploads_mu_);
      ++uploads_in_flight_;
    }
    auto upload = [this, shared_snaps, ack, opts, on_ack, on_decline, prefix, subtask,
                   id]() mutable {
      const int64_t t0 = NowNs();
      bool ok = true;
      for (auto& [vertex, snap] : *shared_snaps) {
        proto::OperatorSubtaskState* os = ack.add_states();
        os->set_vertex_id(vertex);
        os->set_subtask(subtask);
        for (auto& l : snap.operator_state) *os->add_operator_state() = std::move(l);
        if (snap.commit_watermark) os->set_commit_watermark(*snap.commit_watermark);
        for (const auto& [name, n] : snap.counts) (*os->mutable_counts())[name] = n;
        if (snap.keyed) {
          const std::string dir = (opts.savepoint() ? "" : "chk-" + std::to_string(id) + "/") +
                                  vertex + "-" + std::to_string(subtask);
          auto handle = snap.keyed->Upload(opts, dir);
          if (!handle.ok()) {
            Log()->warn("{} checkpoint={} upload failed: {}", prefix, id,
                        handle.status().ToString());
            if (on_decline) on_decline(id, handle.status().ToString());
            ok = false;
            break;
          }
          *os->mutable_keyed() = std::move(handle).value();
        }
      }
      // Snapshots reference the operators' backends: they go before Close() may close them.
      shared_snaps.reset();
      if (ok) {
        ack.set_async_duration_ms((NowNs() - t0) / 1000000);
        if (on_ack) on_ack(ack);
      }
      UploadDone();
    };
    Status submitted = upload_executor_->Submit(prefix_, std::move(upload));
    if (!submitted.ok()) {
      UploadDone();
      Log()->warn("{} checkpoint={} declined: {}", prefix_, id, submitted.ToString());
      if (on_decline) on_decline(id, submitted.ToString());
    }
    return Status::Ok();
  }

  // Runs on the task thread: checkpoint triggers (sources) and notifications.
  Status ProcessMail() {
    std::deque<Mail> mails;
    {
      std::lock_guard<std::mutex> lock(mailbox_->mu);
      mails.swap(mailbox_->queue);
      mailbox_->pending.store(false, std::memory_order_release);
    }
    for (const Mail& m : mails) {
      switch (m.kind) {
        case Mail::kTrigger:
          if (m.checkpoint_id > last_checkpoint_id_) {
            WEIR_RETURN_IF_ERROR(PerformCheckpoint(m.checkpoint_id, m.timestamp_ms, m.options, 0));
          }
          break;
        case Mail::kComplete: {
          if (source_) source_->NotifyCheckpointComplete(m.checkpoint_id);
          const TaskPlan& tp = s_.plan->tasks[s_.task_index];
          const size_t first = source_ ? 1 : 0;
          for (size_t i = 0; i < ops_.size(); ++i) {
            ops_[i]->NotifyCheckpointComplete(m.checkpoint_id);
            auto it = m.commit_watermarks.find(s_.plan->spec.vertices[tp.vertices[i + first]].id);
            if (it != m.commit_watermarks.end()) {
              ops_[i]->NotifyCommitWatermark(m.checkpoint_id, it->second);
            }
          }
          break;
        }
        case Mail::kAborted:
          if (source_) source_->NotifyCheckpointAborted(m.checkpoint_id);
          for (auto& op : ops_) op->NotifyCheckpointAborted(m.checkpoint_id);
          break;
      }
    }
    return Status::Ok();
  }

  Status ProcessBuffer(const NetBuffer& buf, RowBatch& batch) {
    const uint8_t* p = buf.bytes.data();
    const uint8_t* end = p + buf.bytes.size();
    const size_t width = input_schema_->size();
    uint32_t left = buf.records;
    while (left > 0) {
      batch.Clear();
      const size_t n = std::min<size_t>(left, s_.options.batch_rows);
      for (size_t i = 0; i < n; ++i) {
        if (!DeserializeRow(&p, end, *input_schema_, batch.Append(width))) {
          return Status::DataLoss("corrupt data buffer: row " + std::to_string(buf.records - left + i) +
                                  " of " + std::to_string(buf.records) + " cannot be read");
        }
      }
      left -= static_cast<uint32_t>(n);
      metrics_->records_in.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
      WEIR_RETURN_IF_ERROR(Push(batch));
    }
    if (p != end) return Status::DataLoss("corrupt data buffer: trailing bytes");
    return Status::Ok();
  }

  Status Run() {
    WEIR_RETURN_IF_ERROR(source_ ? RunSource() : RunInputs());
    // End of input: event time jumps to the end (every event-time timer fires), operators emit
    // what they hold, then the stream ends downstream.
    WEIR_RETURN_IF_ERROR(BroadcastStatus(false));
    WEIR_RETURN_IF_ERROR(ForwardWatermark(0, kMaxWatermark, /*upstream=*/false));
    for (size_t k = 0; k < ops_.size(); ++k) {
      WEIR_RETURN_IF_ERROR(ops_[k]->Finish(*outs_[k]));
    }
    for (EdgeWriter* w : all_writers_) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kEndOfStream, 0));
    }
    return Status::Ok();
  }

  void Close() {
    {
      // Uploads in flight use this task's snapshots and callbacks: wait for them.
      std::unique_lock<std::mutex> lock(uploads_mu_);
      uploads_cv_.wait(lock, [&] { return uploads_in_flight_ == 0; });
    }
    if (source_) {
      Status st = source_->Close();
      if (!st.ok()) Log()->warn("{} closing source: {}", prefix_, st.ToString());
    }
    for (auto& op : ops_) {
      Status st = op->Close();
      if (!st.ok()) Log()->warn("{} closing operator: {}", prefix_, st.ToString());
    }
    gate_.CloseAll();
    const TaskPlan& tp = s_.plan->tasks[s_.task_index];
    s_.network->ReleaseChannels(ChannelKeyPrefix(s_.job_id, s_.attempt) + tp.id + "/" +
                                std::to_string(s_.subtask) + "/");
    // Operators are gone (they closed their backends): the local state directory can go.
    source_.reset();
    ops_.clear();
    if (!s_.local_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(s_.local_dir, ec);
    }
  }

  void Wake() { gate_.Wake(); }

 private:
  const TaskSetup& s_;
  std::atomic<bool>* cancel_;
  OperatorMetrics* metrics_;
  std::string prefix_;
  std::unique_ptr<SourceOperator> source_;
  std::vector<std::unique_ptr<Operator>> ops_;
  std::vector<Output*> outs_;
  std::vector<std::unique_ptr<ChainLink>> links_;
  Output* head_out_ = nullptr;
  NetworkOutput net_out_;
  // Side outputs by (vertex, declared index); their edges' writers; and every writer of the
  // task (main and side): events (barriers, watermarks, end of stream) and flushes go to all.
  std::map<std::pair<int, int>, std::unique_ptr<SideNetworkOutput>> side_outs_;
  std::vector<std::unique_ptr<EdgeWriter>> side_writers_;
  std::vector<EdgeWriter*> all_writers_;
  DiscardOutput discard_;
  InputGate gate_;
  Mailbox* mailbox_;
  std::map<std::string, RestoredState> restored_;
  void UploadDone() {
    std::lock_guard<std::mutex> lock(uploads_mu_);
    if (--uploads_in_flight_ == 0) uploads_cv_.notify_all();
  }
  std::unique_ptr<Executor> own_upload_executor_;  // when the setup brings none
  Executor* upload_executor_ = nullptr;
  std::mutex uploads_mu_;
  std::condition_variable uploads_cv_;
  int uploads_in_flight_ = 0;
  std::vector<bool>* ended_ = nullptr;  // per gate channel: end of stream seen
  int64_t aligning_id_ = 0;             // checkpoint being aligned, 0: none
  int64_t align_start_ns_ = 0;
  proto::CheckpointOptions aligning_options_;
  int64_t last_checkpoint_id_ = 0;
  const Schema* input_schema_ = nullptr;
  std::vector<std::string> input_names_;  // per gate channel, for error messages
  int64_t last_flush_ns_ = NowNs();
  // Event time.
  static constexpr int64_t kTickNs = 5'000'000;
  int64_t last_tick_ns_ = 0;
  std::unique_ptr<Assigner> assigner_;
  std::unique_ptr<ObservingOutput> observing_;
  std::unique_ptr<WatermarkValve> valve_;
  std::vector<int64_t> op_wm_;     // last watermark each operator saw
  int64_t net_wm_ = kMinWatermark;  // last watermark sent downstream
  bool net_idle_ = false;           // idle status sent downstream
};

Task::Task(TaskSetup setup) : setup_(std::move(setup)) {
  const TaskPlan& tp = setup_.plan->tasks[setup_.task_index];
  log_prefix_ = "job=" + setup_.job_id + " vertex=" + tp.id + " subtask=" +
                std::to_string(setup_.subtask) + "/" + std::to_string(tp.parallelism);
  impl_ = std::make_unique<Impl>(setup_, &cancel_, &metrics_, log_prefix_, &mailbox_);
}

void Task::Post(Mail mail) {
  {
    std::lock_guard<std::mutex> lock(mailbox_.mu);
    mailbox_.queue.push_back(std::move(mail));
    mailbox_.pending.store(true, std::memory_order_release);
  }
  impl_->Wake();
}

void Task::TriggerCheckpoint(int64_t id, int64_t timestamp_ms,
                             const proto::CheckpointOptions& options) {
  Mail m;
  m.kind = Mail::kTrigger;
  m.checkpoint_id = id;
  m.timestamp_ms = timestamp_ms;
  m.options = options;
  Post(std::move(m));
}

void Task::NotifyCheckpoint(int64_t id, bool completed,
                            std::map<std::string, int64_t> commit_watermarks) {
  Mail m;
  m.kind = completed ? Mail::kComplete : Mail::kAborted;
  m.checkpoint_id = id;
  m.commit_watermarks = std::move(commit_watermarks);
  Post(std::move(m));
}

Task::~Task() = default;

void Task::Cancel() {
  cancel_.store(true);
  impl_->Wake();
}

void Task::Run() {
  auto set_state = [&](TaskState to, const Status& err) {
    TaskState from = state_.load();
    if (!CanTransition(from, to)) {
      // A bug: loud in debug builds; refused (the state stays) in release builds.
      Log()->error("{} illegal transition {} -> {}", log_prefix_, TaskStateName(from),
                   TaskStateName(to));
      assert(false && "illegal subtask state transition");
      return;
    }
    state_.store(to);
    if (setup_.on_state) setup_.on_state(to, err);
  };
  auto fail = [&](const Status& st) {
    if (cancel_.load()) {
      set_state(TaskState::kCanceling, Status::Ok());
      set_state(TaskState::kCanceled, Status::Ok());
      Log()->info("{} canceled", log_prefix_);
    } else {
      Log()->error("{} failed: {}", log_prefix_, st.ToString());
      set_state(TaskState::kFailed, st);
    }
  };
  set_state(TaskState::kInitializing, Status::Ok());
  // An exception must not escape the task thread (it would end the process): it fails the task.
  auto guarded = [&](auto&& fn) -> Status {
    try {
      return fn();
    } catch (const std::exception& e) {
      return Status::Internal(std::string("exception: ") + e.what());
    }
  };
  Status st = guarded([&] { return impl_->Initialize(); });
  if (!st.ok()) {
    impl_->Close();
    fail(st.WithContext("initializing"));
    return;
  }
  set_state(TaskState::kRunning, Status::Ok());
  Log()->info("{} running", log_prefix_);
  st = guarded([&] { return impl_->Run(); });
  impl_->Close();
  if (!st.ok()) {
    fail(st);
    return;
  }
  Log()->info("{} finished: {} records in, {} out", log_prefix_, metrics_.records_in.load(),
              metrics_.records_out.load());
  if (const int64_t dropped = metrics_.side_records_dropped.load(); dropped > 0) {
    // By design (no edge takes that side output), but worth a line.
    Log()->info("{} {} rows to side outputs without an edge were dropped", log_prefix_, dropped);
  }
  set_state(TaskState::kFinished, Status::Ok());
}

}  // namespace weir
