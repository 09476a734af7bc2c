#include "weir/task.h"

#include <algorithm>
#include <cassert>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <thread>

#include "barrier_aligner.h"
#include "chain_builder.h"
#include "subtask_checkpointer.h"
#include "weir/clock.h"
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

using task_internal::Alignment;
using task_internal::Assigner;
using task_internal::BarrierAligner;
using task_internal::Chain;
using task_internal::ChainBuilder;
using task_internal::EdgeWriter;
using task_internal::NowNs;
using task_internal::SubtaskCheckpointer;

}  // namespace

// The run loop of a subtask: owns the Chain (built by ChainBuilder), reads its source or its
// input gate, hands batches down the chain, generates and forwards watermarks, flushes
// buffers on time, and processes mail. Aligning barriers is BarrierAligner's part; taking the
// subtask's part of a checkpoint is SubtaskCheckpointer's. Task thread only, except Wake().
class Task::Impl {
 public:
  Impl(const TaskSetup& s, std::atomic<bool>* cancel, OperatorMetrics* metrics,
       const std::string& prefix, Mailbox* mailbox, PublishedPoints* published)
      : s_(s),
        cancel_(cancel),
        metrics_(metrics),
        prefix_(prefix),
        mailbox_(mailbox),
        published_(published),
        c_(metrics),
        aligner_(&c_.gate, prefix_),
        ckpt_(s, &c_, prefix_) {}

  Status Initialize() {
    WEIR_RETURN_IF_ERROR(ChainBuilder(s_, cancel_, metrics_, prefix_, &c_).Build());
    op_wm_.assign(c_.ops.size(), kMinWatermark);
    valve_ = std::make_unique<WatermarkValve>(c_.gate.num_channels());
    // A head with several logical inputs also hears each input's own watermark.
    int inputs = 0;
    for (int in : c_.channel_input) inputs = std::max(inputs, in + 1);
    if (inputs > 1 && !c_.ops.empty()) {
      std::vector<size_t> per_input(static_cast<size_t>(inputs), 0);
      for (int in : c_.channel_input) local_channel_.push_back(per_input[in]++);
      for (size_t n : per_input) input_valves_.push_back(std::make_unique<WatermarkValve>(n));
    }
    metrics_->input_capacity.store(static_cast<int64_t>(c_.gate.capacity()),
                                   std::memory_order_relaxed);
    const TaskPlan& tp = s_.plan->tasks[s_.task_index];
    for (int v : tp.vertices) vertex_ids_.push_back(s_.plan->spec.vertices[v].id);
    return Status::Ok();
  }

  // Hands a batch of logical input `input` to the head of the chain (after the source, if any).
  Status Push(RowBatch& batch, int input = 0) {
    if (c_.ops.empty()) return c_.head_out->Emit(batch);
    return c_.ops[0]->ProcessInput(input, batch, *c_.outs[0]);
  }

  Status MaybeFlushOnTimeout() {
    int64_t now = NowNs();
    if (now - last_flush_ns_ >= s_.options.buffer_timeout_ms * 1000000) {
      last_flush_ns_ = now;
      for (EdgeWriter* w : c_.all_writers) WEIR_RETURN_IF_ERROR(w->FlushAll());
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
    if (c_.gate.num_channels() > 0) {
      metrics_->input_queued.store(static_cast<int64_t>(c_.gate.queued()),
                                   std::memory_order_relaxed);
    }
    if (mono - last_report_ns_ >= kReportNs) {
      last_report_ns_ = mono;
      PublishOperatorMetrics();
    }
    for (size_t k = 0; k < c_.ops.size(); ++k) {
      WEIR_RETURN_IF_ERROR(c_.ops[k]->OnProcessingTime(now, *c_.outs[k]));
    }
    if (c_.assigner && now >= c_.assigner->next_emit_ms) {
      Assigner& a = *c_.assigner;
      a.next_emit_ms = now + a.strategy.emit_interval_ms;
      WatermarkStatus st;
      if (a.source_tracks) {
        st = c_.source->CurrentWatermark(now);
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

  // A head with several inputs: `update` applied to the valve of channel ch's input; if that
  // input's watermark advanced, the head hears it (Operator::OnInputWatermark).
  template <typename F>
  void InputWatermark(int ch, F update) {
    if (input_valves_.empty()) return;
    const int in = c_.channel_input[static_cast<size_t>(ch)];
    if (auto wm = update(*input_valves_[static_cast<size_t>(in)],
                         local_channel_[static_cast<size_t>(ch)])) {
      c_.ops[0]->OnInputWatermark(in, *wm);
    }
  }

  // Hands watermark `wm` to operators from `from` on, then downstream tasks. A watermark from
  // upstream stops at the chain's assigner (which replaces event time from there on);
  // watermarks never go back, per operator.
  Status ForwardWatermark(size_t from, int64_t wm, bool upstream) {
    if (upstream) metrics_->input_watermark.store(wm, std::memory_order_relaxed);
    for (size_t k = from; k < c_.ops.size(); ++k) {
      if (upstream && c_.assigner && c_.assigner->pos == k) return Status::Ok();
      if (wm <= op_wm_[k]) continue;
      op_wm_[k] = wm;
      WEIR_RETURN_IF_ERROR(c_.ops[k]->OnWatermark(wm, *c_.outs[k]));
    }
    if (upstream && c_.assigner && c_.assigner->pos == c_.ops.size()) return Status::Ok();
    if (wm <= net_wm_) return Status::Ok();
    net_wm_ = wm;
    metrics_->output_watermark.store(wm, std::memory_order_relaxed);
    for (EdgeWriter* w : c_.all_writers) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kWatermark, wm));
    }
    return Status::Ok();
  }

  Status BroadcastStatus(bool idle) {
    if (idle == net_idle_) return Status::Ok();
    net_idle_ = idle;
    for (EdgeWriter* w : c_.all_writers) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kWatermarkStatus, idle ? 1 : 0));
    }
    return Status::Ok();
  }

  Status FlushAll() {
    last_flush_ns_ = NowNs();
    for (EdgeWriter* w : c_.all_writers) WEIR_RETURN_IF_ERROR(w->FlushAll());
    return Status::Ok();
  }

  Status RunSource() {
    RowBatch batch;
    while (!cancel_->load(std::memory_order_relaxed)) {
      if (mailbox_->pending.load(std::memory_order_acquire)) WEIR_RETURN_IF_ERROR(ProcessMail());
      batch.Clear();
      WEIR_ASSIGN_OR_RETURN(PollResult r, c_.source->Poll(batch, s_.options.batch_rows));
      if (!batch.empty()) {
        metrics_->records_in.fetch_add(static_cast<int64_t>(batch.size()),
                                       std::memory_order_relaxed);
        if (c_.assigner && c_.assigner->pos == 0 && !c_.assigner->source_tracks) {
          c_.assigner->Observe(batch, NowMs());
        }
        WEIR_RETURN_IF_ERROR(Push(batch));
      }
      if (r == PollResult::kEnd) return Status::Ok();
      WEIR_RETURN_IF_ERROR(Tick());
      if (r == PollResult::kIdle) {
        WEIR_RETURN_IF_ERROR(FlushAll());
        const int64_t t0 = NowNs();
        std::this_thread::sleep_for(std::chrono::microseconds(200));
        metrics_->idle_ns.fetch_add(NowNs() - t0, std::memory_order_relaxed);
      } else {
        WEIR_RETURN_IF_ERROR(MaybeFlushOnTimeout());
      }
    }
    return Status::Cancelled("cancelled");
  }

  Status RunInputs() {
    size_t open_channels = c_.gate.num_channels();
    aligner_.Reset();
    RowBatch batch;
    NetBuffer buf;
    const auto timeout =
        std::chrono::milliseconds(std::max<int64_t>(1, s_.options.buffer_timeout_ms));
    while (open_channels > 0) {
      if (cancel_->load(std::memory_order_relaxed)) return Status::Cancelled("cancelled");
      if (mailbox_->pending.load(std::memory_order_acquire)) WEIR_RETURN_IF_ERROR(ProcessMail());
      int ch = -1;
      Status err;
      InputGate::Next next = c_.gate.Poll(&ch, &buf, std::chrono::microseconds(0), &err);
      if (next == InputGate::Next::kTimeout) {
        // About to wait: send what we have so downstream is not kept waiting.
        WEIR_RETURN_IF_ERROR(FlushAll());
        const int64_t t0 = NowNs();
        next = c_.gate.Poll(&ch, &buf, timeout, &err);
        metrics_->idle_ns.fetch_add(NowNs() - t0, std::memory_order_relaxed);
      }
      WEIR_RETURN_IF_ERROR(Tick());
      if (next == InputGate::Next::kTimeout) continue;
      if (next == InputGate::Next::kError) {
        if (aligner_.ended(ch)) continue;
        return Status::Unavailable("input from " + c_.input_names[ch] + " lost: " + err.message());
      }
      switch (buf.kind) {
        case EventKind::kData:
          WEIR_RETURN_IF_ERROR(ProcessBuffer(buf, c_.channel_input[ch], batch));
          WEIR_RETURN_IF_ERROR(MaybeFlushOnTimeout());
          break;
        case EventKind::kEndOfStream:
          if (aligner_.EndChannel(ch)) {
            --open_channels;
            InputWatermark(ch, [](WatermarkValve& v, size_t c) { return v.OnEnd(c); });
            if (auto wm = valve_->OnEnd(static_cast<size_t>(ch))) {
              WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
            }
            // An ended channel counts as aligned for a checkpoint in progress.
            if (auto aligned = aligner_.OnChannelEnded()) {
              WEIR_RETURN_IF_ERROR(CheckpointAligned(*aligned));
            }
          }
          break;
        case EventKind::kBarrier: {
          WEIR_ASSIGN_OR_RETURN(std::optional<Alignment> aligned,
                                aligner_.OnBarrier(ch, buf, ckpt_.last_checkpoint_id()));
          if (aligned) WEIR_RETURN_IF_ERROR(CheckpointAligned(*aligned));
          break;
        }
        case EventKind::kWatermark:
          InputWatermark(ch,
                         [&](WatermarkValve& v, size_t c) { return v.OnWatermark(c, buf.arg); });
          if (auto wm = valve_->OnWatermark(static_cast<size_t>(ch), buf.arg)) {
            WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
          }
          break;
        case EventKind::kWatermarkStatus: {
          bool changed = false;
          InputWatermark(
              ch, [&](WatermarkValve& v, size_t c) { return v.OnIdle(c, buf.arg == 1, nullptr); });
          auto wm = valve_->OnIdle(static_cast<size_t>(ch), buf.arg == 1, &changed);
          if (wm) WEIR_RETURN_IF_ERROR(ForwardWatermark(0, *wm, /*upstream=*/true));
          // With an assigner in this chain, its own idleness is what downstream sees.
          if (changed && !c_.assigner) WEIR_RETURN_IF_ERROR(BroadcastStatus(valve_->idle()));
          break;
        }
      }
    }
    return Status::Ok();
  }

  // ---------------------------------------------------------------- checkpoints
  // Every input delivered the barrier (or ended): snapshot the chain and forward the barrier,
  // then let the held-back channels flow again (also when the checkpoint failed).
  Status CheckpointAligned(const Alignment& a) {
    Status st = ckpt_.Perform(a.id, NowMs(), a.options, a.align_ms);
    aligner_.Release();
    return st;
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
          if (m.checkpoint_id > ckpt_.last_checkpoint_id()) {
            WEIR_RETURN_IF_ERROR(ckpt_.Perform(m.checkpoint_id, m.timestamp_ms, m.options, 0));
          }
          break;
        case Mail::kComplete:
          ckpt_.NotifyComplete(m.checkpoint_id, m.commit_watermarks);
          break;
        case Mail::kAborted:
          ckpt_.NotifyAborted(m.checkpoint_id);
          break;
      }
    }
    return Status::Ok();
  }

  // A data buffer of a channel feeding logical input `input`.
  Status ProcessBuffer(const NetBuffer& buf, int input, RowBatch& batch) {
    const uint8_t* p = buf.bytes.data();
    const uint8_t* end = p + buf.bytes.size();
    metrics_->bytes_in.fetch_add(static_cast<int64_t>(buf.bytes.size()), std::memory_order_relaxed);
    const Schema& schema = *c_.input_schemas[input];
    const size_t width = schema.size();
    uint32_t left = buf.records;
    while (left > 0) {
      batch.Clear();
      const size_t n = std::min<size_t>(left, s_.options.batch_rows);
      for (size_t i = 0; i < n; ++i) {
        if (!DeserializeRow(&p, end, schema, batch.Append(width))) {
          return Status::DataLoss("corrupt data buffer: row " +
                                  std::to_string(buf.records - left + i) + " of " +
                                  std::to_string(buf.records) + " cannot be read");
        }
      }
      left -= static_cast<uint32_t>(n);
      metrics_->records_in.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
      WEIR_RETURN_IF_ERROR(Push(batch, input));
    }
    if (p != end) return Status::DataLoss("corrupt data buffer: trailing bytes");
    return Status::Ok();
  }

  Status Run() {
    WEIR_RETURN_IF_ERROR(c_.source ? RunSource() : RunInputs());
    // End of input: event time jumps to the end (every event-time timer fires), operators emit
    // what they hold, then the stream ends downstream.
    WEIR_RETURN_IF_ERROR(BroadcastStatus(false));
    WEIR_RETURN_IF_ERROR(ForwardWatermark(0, kMaxWatermark, /*upstream=*/false));
    for (size_t k = 0; k < c_.ops.size(); ++k) {
      WEIR_RETURN_IF_ERROR(c_.ops[k]->Finish(*c_.outs[k]));
    }
    for (EdgeWriter* w : c_.all_writers) {
      WEIR_RETURN_IF_ERROR(w->Broadcast(EventKind::kEndOfStream, 0));
    }
    return Status::Ok();
  }

  void Close() {
    // Uploads in flight use this task's snapshots and callbacks: wait for them.
    ckpt_.WaitForUploads();
    if (c_.source) {
      Status st = c_.source->Close();
      if (!st.ok()) Log()->warn("{} closing source: {}", prefix_, st.ToString());
    }
    for (auto& op : c_.ops) {
      Status st = op->Close();
      if (!st.ok()) Log()->warn("{} closing operator: {}", prefix_, st.ToString());
    }
    c_.gate.CloseAll();
    const TaskPlan& tp = s_.plan->tasks[s_.task_index];
    s_.network->ReleaseChannels(ChannelKeyPrefix(s_.job_id, s_.attempt) + tp.id + "/" +
                                std::to_string(s_.subtask) + "/");
    // Operators are gone (they closed their backends): the local state directory can go.
    c_.source.reset();
    c_.ops.clear();
    if (!s_.local_dir.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(s_.local_dir, ec);
    }
  }

  void Wake() { c_.gate.Wake(); }

  // The operators' own metrics, labelled with their vertex, handed to readers on other threads.
  void PublishOperatorMetrics() {
    MetricWriter w;
    size_t vi = 0;
    auto collect = [&](auto& op) {
      const size_t before = w.points().size();
      op.ReportMetrics(w);
      const std::string& vid = vi < vertex_ids_.size() ? vertex_ids_[vi] : vertex_ids_.back();
      for (size_t i = before; i < w.points().size(); ++i) {
        w.points()[i].labels.insert(w.points()[i].labels.begin(), {"vertex", vid});
      }
      ++vi;
    };
    if (c_.source) collect(*c_.source);
    for (auto& op : c_.ops) collect(*op);
    std::lock_guard<std::mutex> lock(published_->mu);
    published_->points.swap(w.points());
  }

 private:
  const TaskSetup& s_;
  std::atomic<bool>* cancel_;
  OperatorMetrics* metrics_;
  std::string prefix_;
  Mailbox* mailbox_;
  PublishedPoints* published_;
  std::vector<std::string> vertex_ids_;  // of the chain, in order (the source first)
  static constexpr int64_t kReportNs = 1'000'000'000;
  int64_t last_report_ns_ = 0;
  Chain c_;
  BarrierAligner aligner_;
  SubtaskCheckpointer ckpt_;
  int64_t last_flush_ns_ = NowNs();
  // Event time.
  static constexpr int64_t kTickNs = 5'000'000;
  int64_t last_tick_ns_ = 0;
  std::unique_ptr<WatermarkValve> valve_;
  // Heads with several inputs: a valve per input over its channels, and each gate channel's
  // index within its input.
  std::vector<std::unique_ptr<WatermarkValve>> input_valves_;
  std::vector<size_t> local_channel_;
  std::vector<int64_t> op_wm_;      // last watermark each operator saw
  int64_t net_wm_ = kMinWatermark;  // last watermark sent downstream
  bool net_idle_ = false;           // idle status sent downstream
};

Task::Task(TaskSetup setup) : setup_(std::move(setup)) {
  const TaskPlan& tp = setup_.plan->tasks[setup_.task_index];
  log_prefix_ = "job=" + setup_.job_id + " vertex=" + tp.id +
                " subtask=" + std::to_string(setup_.subtask) + "/" + std::to_string(tp.parallelism);
  impl_ = std::make_unique<Impl>(setup_, &cancel_, &metrics_, log_prefix_, &mailbox_, &published_);
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

std::vector<MetricPoint> Task::OperatorMetricPoints() const {
  std::lock_guard<std::mutex> lock(published_.mu);
  return published_.points;
}

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
