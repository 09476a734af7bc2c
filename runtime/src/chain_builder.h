// The wiring of one subtask (internal to weir_runtime): the outputs that link a chain's
// operators, the network writers of its outgoing edges, and ChainBuilder, which creates and
// opens the chain's operators and connects its inputs and outputs from the execution plan.
//
// Everything here is used by the task thread only (Task::Impl, the run loop, and
// SubtaskCheckpointer): none of it is thread-safe. The Outputs and EdgeWriter are on the hot
// path (per batch and per row), so they are defined here, inline, as they were in task.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "weir/channel.h"
#include "weir/clock.h"
#include "weir/key_groups.h"
#include "weir/operator.h"
#include "weir/serde.h"
#include "weir/task.h"

namespace weir::task_internal {

inline int64_t NowNs() {
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

  EdgeWriter(Partitioning part, std::vector<int> key_idx, int max_parallelism, const Schema* schema,
             size_t buffer_bytes, int my_subtask, OperatorMetrics* metrics)
      : metrics_(metrics),
        part_(part),
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
        for (size_t i = 0; i < batch.size(); ++i) {
          WEIR_RETURN_IF_ERROR(Append(channels_[0], batch[i]));
        }
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
      WEIR_RETURN_IF_ERROR(Send(c, std::move(b)));
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
    Status st = Send(c, std::move(b));
    // The next buffer: the one just sent when it is reusable, else a new one.
    c.buf = ByteBuffer(c.sender->TakeSpare(), buffer_bytes_ + 4096);
    return st;
  }

  // Per buffer: bytes out, and the time the sender waited for room (credit, a full channel).
  Status Send(Channel& c, NetBuffer&& b) {
    const int64_t bytes = static_cast<int64_t>(b.bytes.size());
    const int64_t blocked = c.sender->blocked_ns();
    Status st = c.sender->Send(std::move(b));
    if (const int64_t waited = c.sender->blocked_ns() - blocked; waited > 0) {
      metrics_->backpressured_ns.fetch_add(waited, std::memory_order_relaxed);
    }
    metrics_->bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    return st;
  }

  OperatorMetrics* metrics_;
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

// What ChainBuilder builds and the run loop owns: the chain's operators and the Outputs that
// link them, the writers of every outgoing edge, the watermark assigner, and the input gate.
// Members are in the order Task::Impl declared them before the split (destruction order).
struct Chain {
  explicit Chain(OperatorMetrics* metrics) : net_out(metrics) {}
  Chain(const Chain&) = delete;
  Chain& operator=(const Chain&) = delete;

  std::unique_ptr<SourceOperator> source;  // the chain's head, when it is a source
  std::vector<std::unique_ptr<Operator>> ops;
  std::vector<Output*> outs;  // outs[k]: where ops[k] emits
  std::vector<std::unique_ptr<ChainLink>> links;
  Output* head_out = nullptr;  // with no operator after the source: where its rows go
  NetworkOutput net_out;
  // Side outputs by (vertex, declared index); their edges' writers; and every writer of the
  // task (main and side): events (barriers, watermarks, end of stream) and flushes go to all.
  std::map<std::pair<int, int>, std::unique_ptr<SideNetworkOutput>> side_outs;
  std::vector<std::unique_ptr<EdgeWriter>> side_writers;
  std::vector<EdgeWriter*> all_writers;
  DiscardOutput discard;
  InputGate gate;
  // What operators restore from (OperatorContext::restored points in here).
  std::map<std::string, RestoredState> restored;
  // Per logical input of the chain's head (one unless it has named inputs), and per gate
  // channel the logical input it feeds.
  std::vector<const Schema*> input_schemas;
  std::vector<int> channel_input;
  std::vector<std::string> input_names;  // per gate channel, for error messages
  // Event time: at most one assigner per chain; observing wraps the output it watches.
  std::unique_ptr<Assigner> assigner;
  std::unique_ptr<ObservingOutput> observing;
};

// Builds a subtask's Chain from its TaskSetup: creates and opens the operators (each with its
// OperatorContext, side outputs included), connects a writer per outgoing edge (main outputs
// of the chain's tail, side outputs of any vertex), places the watermark assigner, links the
// operators back to front, and adds a gate channel per upstream producer subtask.
//
// Task thread only, once per subtask. On failure, what was built so far stays in the Chain so
// that the task closes it (operators opened before the failure get their Close()).
class ChainBuilder {
 public:
  ChainBuilder(const TaskSetup& setup, std::atomic<bool>* cancel, OperatorMetrics* metrics,
               const std::string& log_prefix, Chain* chain)
      : s_(setup), cancel_(cancel), metrics_(metrics), prefix_(log_prefix), c_(*chain) {}

  Status Build();

 private:
  OperatorContext BaseContext();
  Status PrepareContext(const VertexSpec& v, OperatorContext* ctx);
  Status CreateOperators();
  Status ConnectOutputs();
  int PlaceAssigner();
  void LinkOperators(int observed_op);
  void ConnectInputs();
  void SetSideOutputs(int vi, OperatorContext* ctx);
  Result<std::unique_ptr<EdgeWriter>> ConnectEdge(int ei);

  const TaskSetup& s_;
  std::atomic<bool>* cancel_;
  OperatorMetrics* metrics_;
  const std::string& prefix_;
  Chain& c_;
};

}  // namespace weir::task_internal
