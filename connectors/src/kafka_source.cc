// kafka: a Kafka source (librdkafka consumer with manual assignment). docs/kafka.md has the
// whole story; in short:
//
// config: bootstrap | bootstrap_file, topics: [..] | topic_pattern: "<regex>", group_id,
//         start: earliest|latest|group|specific (default group), group_fallback:
//         earliest|latest (default earliest), offsets: {"topic/partition": offset} (specific),
//         on_offset_out_of_range: fail|earliest|latest (default fail),
//         partition_discovery_interval (default 10s, 0: only at start), max_batch (rows per
//         poll, default 1024), idle_wait (how long one poll may wait for data, default 5ms),
//         properties: {librdkafka consumer properties}
// output: key:string, value:string, topic:string, partition:int64, offset:int64,
//         timestamp:timestamp (the record's Kafka timestamp; strings may hold bytes)
//
// Assignment: no consumer-group rebalancing. Each subtask assigns itself the partitions that
// KafkaPartitionOwner gives it; a discovery thread lists the partitions of the subscribed
// topics at start and every partition_discovery_interval and hands new ones to the task thread.
//
// Offsets: the next offset to read of every owned partition is operator state, written at each
// snapshot as one UNION list (every subtask sees every entry on restore and keeps those it owns
// under the rule at the new parallelism), so a restore, at any parallelism, resumes each
// partition exactly where the checkpoint left it. The group's committed offsets are written
// only after the checkpoint that holds them completed, for lag monitoring; the state is the
// truth. A partition that has not returned a record yet keeps a logical offset (BEGINNING) in
// state, so that retention moving the log start does not turn into out-of-range.
//
// Entries of the list (fields joined by NUL, led by a version):
//   "p1" topic partition next_offset      one per owned partition
//   "s1" subtask parallelism started      one per subtask: started=1 once its first discovery
//                                         was applied (see Open for why this matters)
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kafka_common.h"
#include "weir/clock.h"
#include "weir/kafka.h"
#include "weir/operator_state.h"
#include "weir/record_counters.h"
#include "weir/text_formats.h"
#include "weir/thread_name.h"

namespace weir {


namespace {

using kafka::KafkaSchema;
using kafka::KafkaSourcePlan;
using kafka::Log;
using kafka::OutOfRange;
using kafka::StartMode;
using kafka::TopicPartition;

// A partition handed from the discovery thread to the task thread, with where to start.
struct NewPartition {
  TopicPartition tp;
  int64_t offset;  // concrete, or RD_KAFKA_OFFSET_BEGINNING
};

class KafkaSource : public SourceOperator, public kafka::OpaqueBase {
 public:
  explicit KafkaSource(KafkaSourcePlan plan) : plan_(std::move(plan)), schema_width_(6) {}

  ~KafkaSource() override { Shutdown(); }

  Status Open(const OperatorContext& ctx) override {
    log_prefix = ctx.log_prefix;
    subtask_ = ctx.subtask;
    parallelism_ = ctx.parallelism;
    if (!plan_.topic_pattern.empty()) pattern_ = std::regex(plan_.topic_pattern);
    if (ctx.watermarks && ctx.watermarks->event_time_field == "timestamp") {
      split_wm_.emplace(*ctx.watermarks);
    }
    WEIR_ASSIGN_OR_RETURN(std::string bootstrap,
                          kafka::ResolveBootstrap(plan_.bootstrap, plan_.bootstrap_file));
    const char* reset = plan_.out_of_range == OutOfRange::kFail       ? "error"
                        : plan_.out_of_range == OutOfRange::kEarliest ? "earliest"
                                                                      : "latest";
    WEIR_ASSIGN_OR_RETURN(
        rd_kafka_conf_t * conf,
        kafka::MakeConf(plan_.properties,
                        {{"client.id", "weir-" + ctx.vertex_id + "-" + std::to_string(subtask_)},
                         // The mock broker does not end a fetch wait early when data arrives;
                         // on a real broker this only makes idle fetches more frequent.
                         {"fetch.wait.max.ms", "10"}},
                        {{"bootstrap.servers", bootstrap},
                         {"group.id", plan_.group_id},
                         {"enable.auto.commit", "false"},
                         {"enable.auto.offset.store", "false"},
                         {"enable.partition.eof", "false"},
                         {"auto.offset.reset", reset}}));
    rd_kafka_conf_set_opaque(conf, static_cast<kafka::OpaqueBase*>(this));
    kafka::SetLogCallback(conf);
    rd_kafka_conf_set_error_cb(conf, &KafkaSource::OnError);
    rd_kafka_conf_set_offset_commit_cb(conf, &KafkaSource::OnCommit);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(std::string("kafka: cannot create a consumer: ") + err);
    }
    // Error and commit callbacks are then served by the same queue poll that returns records.
    rd_kafka_poll_set_consumer(rk_);
    queue_ = rd_kafka_queue_get_consumer(rk_);
    msgs_.resize(static_cast<size_t>(plan_.max_batch));

    // Restore. Partitions absent from the restored state start at earliest when they are new
    // since the checkpoint; but if some old subtask had not yet applied its first discovery
    // (a checkpoint in the first instants of the job), its partitions are absent for that
    // reason, and they start as `start` says, as they would have.
    std::vector<NewPartition> restored;
    WEIR_RETURN_IF_ERROR(counters_.Restore(ctx.restored));
    if (ctx.restored) {
      WEIR_ASSIGN_OR_RETURN(kafka::RestoredOffsets r, kafka::DecodeOffsetState(ctx.restored));
      for (auto& [tp, next] : r.partitions) restored.push_back({std::move(tp), next});
      if (r.any) {
        restored_ = true;
        all_started_before_ = r.all_started;
      }
      std::erase_if(restored, [&](const NewPartition& np) {
        return !Subscribed(np.tp.topic) ||
               KafkaPartitionOwner(np.tp.topic, np.tp.partition, parallelism_) != subtask_;
      });
    }
    for (const NewPartition& np : restored) known_.insert(np.tp);
    WEIR_RETURN_IF_ERROR(Assign(restored));
    Log()->info("{} kafka: consumer for {} (group {}), {} partition(s) restored{}", log_prefix,
                plan_.topic_pattern.empty() ? "topics " + Join(plan_.topics)
                                            : "pattern " + plan_.topic_pattern,
                plan_.group_id, restored.size(), restored_ ? "" : " (fresh start)");
    discovery_ = std::thread([this] { DiscoveryLoop(); });
    NameThread(discovery_, "kafka-discovery");
    return Status::Ok();
  }

  Result<PollResult> Poll(RowBatch& batch, size_t max_rows) override {
    if (!fatal_.ok()) return fatal_;
    if (handoff_ready_.load(std::memory_order_acquire)) WEIR_RETURN_IF_ERROR(TakeDiscovered());
    const size_t want = std::min(max_rows, msgs_.size());
    ssize_t n = rd_kafka_consume_batch_queue(queue_, 0, msgs_.data(), want);
    // Nothing buffered: wait briefly (the call returns at the deadline or when `want` arrived).
    if (n == 0 && plan_.idle_wait_ms > 0) {
      n = rd_kafka_consume_batch_queue(queue_, static_cast<int>(plan_.idle_wait_ms), msgs_.data(),
                                       want);
    }
    if (n < 0) {
      return Status::Internal(std::string("kafka: consume failed: ") +
                              rd_kafka_err2str(rd_kafka_last_error()));
    }
    const int64_t now = split_wm_ ? NowMs() : 0;
    Part* run = nullptr;      // the partition of the current run of records
    int64_t run_max_ts = -1;  // for watermarks: one tracker update per run, not per record
    for (ssize_t i = 0; i < n; ++i) {
      rd_kafka_message_t* m = msgs_[static_cast<size_t>(i)];
      if (m->err) {
        HandleMessageError(m);
        rd_kafka_message_destroy(m);
        continue;
      }
      Part* p = Lookup(m);
      // Not ours (cannot happen with manual assignment; cheap to be sure). No check against
      // p->next: after an out-of-range reset to earliest, offsets legitimately go back.
      if (!p) {
        rd_kafka_message_destroy(m);
        continue;
      }
      rd_kafka_timestamp_type_t tstype;
      const int64_t ts = rd_kafka_message_timestamp(m, &tstype);
      Row& r = batch.Append(schema_width_);
      if (m->key) {
        r[0].SetString(std::string_view(static_cast<const char*>(m->key), m->key_len));
      } else {
        r[0].SetNull();
      }
      if (m->payload) {
        r[1].SetString(std::string_view(static_cast<const char*>(m->payload), m->len));
      } else {
        r[1].SetNull();
      }
      r[2].SetString(p->tp.topic);
      r[3].SetInt64(p->tp.partition);
      r[4].SetInt64(m->offset);
      if (ts >= 0) {
        r[5].SetTimestamp(ts);
      } else {
        r[5].SetNull();
      }
      p->next = m->offset + 1;
      if (split_wm_) {
        if (run != p) {
          if (run && run_max_ts >= 0) split_wm_->OnEvent(run->split, run_max_ts, now);
          run = p;
          run_max_ts = -1;
        }
        run_max_ts = std::max(run_max_ts, ts);
      }
      rd_kafka_message_destroy(m);
    }
    if (run && run_max_ts >= 0) split_wm_->OnEvent(run->split, run_max_ts, now);
    counters_.Add("read", static_cast<int64_t>(batch.size()));
    if (!fatal_.ok()) return fatal_;
    return batch.empty() ? PollResult::kIdle : PollResult::kMore;
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    std::vector<proto::KafkaSourceEntry> entries(parts_.size() + 1);
    std::vector<std::pair<size_t, int64_t>> commit;
    for (size_t i = 0; i < parts_.size(); ++i) {
      const Part& p = parts_[i];
      auto* e = entries[i].mutable_partition();
      e->set_topic(p.tp.topic);
      e->set_partition(p.tp.partition);
      e->set_next_offset(p.next);
      if (p.next >= 0) commit.emplace_back(i, p.next);
    }
    auto* sub = entries.back().mutable_subtask();
    sub->set_subtask(subtask_);
    sub->set_parallelism(parallelism_);
    sub->set_started(started_);
    out->operator_state.push_back(kafka::OffsetState().Encode(entries));
    counters_.Snapshot(out);
    // Kept until the checkpoint completes or a later one does; bounded for checkpoints that
    // never complete (declined elsewhere, or the notification was lost).
    to_commit_.emplace_back(checkpoint_id, std::move(commit));
    if (to_commit_.size() > 16) to_commit_.erase(to_commit_.begin());
    return Status::Ok();
  }

  // The offsets of checkpoint n go to the consumer group (for lag monitoring; asynchronous,
  // failures are logged: the next checkpoint commits newer offsets anyway).
  void NotifyCheckpointComplete(int64_t checkpoint_id) override {
    if (!rk_) return;
    auto it = std::find_if(to_commit_.begin(), to_commit_.end(),
                           [&](const auto& c) { return c.first == checkpoint_id; });
    if (it != to_commit_.end() && !it->second.empty()) {
      rd_kafka_topic_partition_list_t* l =
          rd_kafka_topic_partition_list_new(static_cast<int>(it->second.size()));
      for (const auto& [i, off] : it->second) {
        rd_kafka_topic_partition_list_add(l, parts_[i].tp.topic.c_str(), parts_[i].tp.partition)
            ->offset = off;
      }
      rd_kafka_resp_err_t err = rd_kafka_commit(rk_, l, 1);
      rd_kafka_topic_partition_list_destroy(l);
      if (err) {
        ++commit_failures_;
        Log()->warn("{} kafka: commit of checkpoint={} offsets failed: {}", log_prefix,
                    checkpoint_id, rd_kafka_err2str(err));
      } else {
        Log()->debug("{} kafka: committing checkpoint={} offsets", log_prefix, checkpoint_id);
      }
    }
    std::erase_if(to_commit_, [&](const auto& c) { return c.first <= checkpoint_id; });
  }

  // Lag per partition: the high watermark librdkafka last saw in a fetch response (no broker
  // call) minus the next offset this subtask will read.
  void ReportMetrics(MetricWriter& out) const override {
    out.Gauge("weir_kafka_partitions_assigned", "Partitions this subtask reads",
              static_cast<double>(parts_.size()));
    out.Counter("weir_kafka_commit_failures_total", "Failed offset commits to the group",
                static_cast<double>(commit_failures_));
    out.Counter("weir_kafka_fetch_errors_total", "Consumer errors (fetch, broker, transport)",
                static_cast<double>(fetch_errors_));
    if (!rk_) return;
    for (const Part& p : parts_) {
      int64_t low = -1, high = -1;
      if (rd_kafka_get_watermark_offsets(rk_, p.tp.topic.c_str(), p.tp.partition, &low, &high) !=
              RD_KAFKA_RESP_ERR_NO_ERROR ||
          high < 0) {
        continue;
      }
      MetricWriter::Labels l{{"topic", p.tp.topic}, {"partition", std::to_string(p.tp.partition)}};
      out.Gauge("weir_kafka_partition_high_watermark", "Last known end offset of the partition",
                static_cast<double>(high), l);
      if (p.next >= 0) {
        out.Gauge("weir_kafka_partition_position", "Next offset this subtask reads",
                  static_cast<double>(p.next), l);
        out.Gauge("weir_kafka_consumer_lag", "High watermark minus position (records behind)",
                  static_cast<double>(std::max<int64_t>(0, high - p.next)), std::move(l));
      }
    }
  }

  bool TracksWatermarks() const override { return split_wm_.has_value(); }
  WatermarkStatus CurrentWatermark(int64_t now_ms) override {
    return split_wm_ ? split_wm_->Current(now_ms) : WatermarkStatus{};
  }

  Status Close() override {
    Shutdown();
    return Status::Ok();
  }

 private:
  struct Part {
    TopicPartition tp;
    std::string split;  // "topic/partition", the watermark split name
    int64_t next;       // next offset to read, or RD_KAFKA_OFFSET_BEGINNING before the first
  };

  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ",") + x;
    return s;
  }

  bool Subscribed(const std::string& topic) const {
    if (!plan_.topic_pattern.empty()) return std::regex_match(topic, pattern_);
    return std::find(plan_.topics.begin(), plan_.topics.end(), topic) != plan_.topics.end();
  }

  // Adds partitions to the consumer's assignment (task thread).
  Status Assign(const std::vector<NewPartition>& add) {
    if (add.empty()) return Status::Ok();
    rd_kafka_topic_partition_list_t* l =
        rd_kafka_topic_partition_list_new(static_cast<int>(add.size()));
    for (const NewPartition& np : add) {
      rd_kafka_topic_partition_list_add(l, np.tp.topic.c_str(), np.tp.partition)->offset =
          np.offset;
      Part p{np.tp, np.tp.Name(), np.offset};
      auto& idx = index_[np.tp.topic];
      if (idx.size() <= static_cast<size_t>(np.tp.partition)) {
        idx.resize(static_cast<size_t>(np.tp.partition) + 1, -1);
      }
      idx[static_cast<size_t>(np.tp.partition)] = static_cast<int>(parts_.size());
      parts_.push_back(std::move(p));
      if (split_wm_) split_wm_->AddSplit(np.tp.Name(), NowMs());
      Log()->info("{} kafka: reading {} from {}", log_prefix, np.tp.Name(),
                  np.offset == RD_KAFKA_OFFSET_BEGINNING ? std::string("the earliest offset")
                                                         : "offset " + std::to_string(np.offset));
    }
    rd_kafka_error_t* err = rd_kafka_incremental_assign(rk_, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (err) {
      Status st = Status::Internal(std::string("kafka: assign failed: ") + rd_kafka_error_string(err));
      rd_kafka_error_destroy(err);
      return st;
    }
    rkt_cache_.clear();
    last_rkt_ = nullptr;
    return Status::Ok();
  }

  Part* Lookup(const rd_kafka_message_t* m) {
    // Records come in runs per partition: the topic lookup is cached by handle.
    const std::vector<int>* idx;
    if (m->rkt == last_rkt_) {
      idx = last_idx_;
    } else {
      auto it = rkt_cache_.find(m->rkt);
      if (it == rkt_cache_.end()) {
        auto t = index_.find(rd_kafka_topic_name(m->rkt));
        it = rkt_cache_.emplace(m->rkt, t == index_.end() ? nullptr : &t->second).first;
      }
      idx = it->second;
      last_rkt_ = m->rkt;
      last_idx_ = idx;
    }
    if (!idx || m->partition < 0 || static_cast<size_t>(m->partition) >= idx->size()) return nullptr;
    const int i = (*idx)[static_cast<size_t>(m->partition)];
    return i < 0 ? nullptr : &parts_[static_cast<size_t>(i)];
  }

  void HandleMessageError(const rd_kafka_message_t* m) {
    ++fetch_errors_;
    const std::string where =
        m->rkt ? std::string(rd_kafka_topic_name(m->rkt)) + "/" + std::to_string(m->partition)
               : std::string();
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET ||
        m->err == RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE) {
      int64_t off = m->offset;
      if (Part* p = m->rkt ? Lookup(m) : nullptr) off = p->next;
      Fail(Status::FailedPrecondition(
          "kafka: offset " + std::to_string(off) + " of " + where +
          " is out of range (the broker no longer has it, e.g. deleted by retention, or never "
          "had it); set on_offset_out_of_range: earliest or latest to skip to a valid offset (" +
          rd_kafka_message_errstr(m) + ")"));
      return;
    }
    if (m->err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk_, buf, sizeof buf);
      Fail(Status::Internal(std::string("kafka: fatal consumer error: ") + rd_kafka_err2name(orig) +
                            ": " + buf));
      return;
    }
    Transient(m->err, (where.empty() ? "" : where + ": ") + rd_kafka_message_errstr(m));
  }

  // Transient errors (broker down, leader moves, timeouts): librdkafka retries; we log each
  // kind at most every 10 s so an outage does not flood the log.
  void Transient(rd_kafka_resp_err_t err, const std::string& what) {
    const int64_t now = NowMs();
    {
      std::lock_guard<std::mutex> lock(log_mu_);
      int64_t& last = last_logged_[err];
      if (now - last < 10000) return;
      last = now;
    }
    Log()->warn("{} kafka: {} (transient: retrying)", log_prefix, what);
  }

  void Fail(Status st) {
    if (fatal_.ok()) {
      Log()->error("{} kafka: {}", log_prefix, st.message());
      fatal_ = std::move(st);
    }
  }

  // librdkafka callbacks, served on the task thread by the queue poll.
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSource*>(static_cast<kafka::OpaqueBase*>(opaque));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      self->Fail(Status::Internal(std::string("kafka: fatal consumer error: ") +
                                  rd_kafka_err2name(orig) + ": " + buf));
      return;
    }
    ++self->fetch_errors_;
    self->Transient(static_cast<rd_kafka_resp_err_t>(err), reason);
  }

  static void OnCommit(rd_kafka_t*, rd_kafka_resp_err_t err,
                       rd_kafka_topic_partition_list_t* offsets, void* opaque) {
    auto* self = static_cast<KafkaSource*>(static_cast<kafka::OpaqueBase*>(opaque));
    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
      ++self->commit_failures_;
      self->Transient(err, std::string("offset commit failed: ") + rd_kafka_err2str(err));
    }
  }

  // ------------------------------------------------------------ discovery (its own thread)
  // Lists the subscribed partitions, keeps those this subtask owns that it does not read yet,
  // resolves where each starts (which may need the broker) and hands them over.
  void DiscoveryLoop() {
    bool first = true;
    while (true) {
      bool ok = DiscoverOnce(first);
      if (ok) first = false;
      // Until the first listing succeeded (e.g. the broker is down at start), retry every
      // second; then every interval (0: no further discovery).
      int64_t wait_ms = !ok && first ? 1000 : plan_.discovery_ms;
      std::unique_lock<std::mutex> lock(mu_);
      if (wait_ms == 0 && !first) {
        cv_.wait(lock, [&] { return stop_; });
      } else {
        cv_.wait_for(lock, std::chrono::milliseconds(wait_ms), [&] { return stop_; });
      }
      if (stop_) return;
    }
  }

  bool DiscoverOnce(bool first) {
    const rd_kafka_metadata_t* md = nullptr;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk_, 1, nullptr, &md, 5000);
    if (err) {
      Transient(err, std::string("partition discovery: metadata request failed: ") +
                         rd_kafka_err2str(err));
      return false;
    }
    std::vector<TopicPartition> mine;
    std::set<std::string> seen_topics;
    for (int t = 0; t < md->topic_cnt; ++t) {
      const rd_kafka_metadata_topic_t& mt = md->topics[t];
      if (mt.err || !Subscribed(mt.topic)) continue;
      seen_topics.insert(mt.topic);
      for (int k = 0; k < mt.partition_cnt; ++k) {
        TopicPartition tp{mt.topic, mt.partitions[k].id};
        if (KafkaPartitionOwner(tp.topic, tp.partition, parallelism_) == subtask_ &&
            !known_.count(tp)) {
          mine.push_back(std::move(tp));
        }
      }
    }
    rd_kafka_metadata_destroy(md);
    if (first) {
      for (const std::string& t : plan_.topics) {
        if (!seen_topics.count(t)) {
          Log()->warn("{} kafka: topic {} does not exist (yet); it is read once it appears",
                      log_prefix, t);
        }
      }
    }
    std::sort(mine.begin(), mine.end());
    // At the first discovery of a fresh start (or of a restore whose checkpoint predates some
    // subtask's first discovery) partitions start as `start` says; later ones are new
    // partitions and start at the earliest offset, so none of their records is missed.
    const bool use_start = first && (!restored_ || !all_started_before_);
    std::vector<NewPartition> found;
    if (!ResolveStart(mine, use_start, &found)) return false;
    std::lock_guard<std::mutex> lock(mu_);
    for (const NewPartition& np : found) known_.insert(np.tp);
    handoff_.insert(handoff_.end(), found.begin(), found.end());
    if (first) first_done_ = true;
    handoff_ready_.store(true, std::memory_order_release);
    return true;
  }

  // Where each partition starts. False if the broker could not answer (retried later).
  bool ResolveStart(const std::vector<TopicPartition>& tps, bool use_start,
                    std::vector<NewPartition>* out) {
    StartMode mode = use_start ? plan_.start : StartMode::kEarliest;
    std::vector<int64_t> committed(tps.size(), -1);
    if (mode == StartMode::kGroup && !tps.empty()) {
      rd_kafka_topic_partition_list_t* l =
          rd_kafka_topic_partition_list_new(static_cast<int>(tps.size()));
      for (const auto& tp : tps) rd_kafka_topic_partition_list_add(l, tp.topic.c_str(), tp.partition);
      rd_kafka_resp_err_t err = rd_kafka_committed(rk_, l, 10000);
      if (err) {
        rd_kafka_topic_partition_list_destroy(l);
        Transient(err, std::string("reading the group's committed offsets failed: ") +
                           rd_kafka_err2str(err));
        return false;
      }
      for (int i = 0; i < l->cnt; ++i) committed[static_cast<size_t>(i)] = l->elems[i].offset;
      rd_kafka_topic_partition_list_destroy(l);
    }
    for (size_t i = 0; i < tps.size(); ++i) {
      const TopicPartition& tp = tps[i];
      int64_t off = RD_KAFKA_OFFSET_BEGINNING;
      bool latest = mode == StartMode::kLatest;
      if (mode == StartMode::kGroup) {
        if (committed[i] >= 0) {
          off = committed[i];
        } else {
          latest = plan_.fallback_latest;
        }
      } else if (mode == StartMode::kSpecific) {
        auto it = plan_.offsets.find(tp);
        if (it != plan_.offsets.end()) off = it->second;
      }
      if (latest) {
        // A concrete offset, so that the checkpointed position means the same after a restore.
        int64_t lo = 0, hi = 0;
        rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk_, tp.topic.c_str(), tp.partition, &lo, &hi, 5000);
        if (err) {
          Transient(err, "latest offset of " + tp.Name() + ": " + rd_kafka_err2str(err));
          return false;
        }
        off = hi;
      }
      out->push_back({tp, off});
    }
    return true;
  }

  // Task thread: assigns what discovery found.
  Status TakeDiscovered() {
    std::vector<NewPartition> add;
    bool first_done;
    {
      std::lock_guard<std::mutex> lock(mu_);
      add.swap(handoff_);
      handoff_ready_.store(false, std::memory_order_relaxed);
      first_done = first_done_;
    }
    WEIR_RETURN_IF_ERROR(Assign(add));
    if (first_done) started_ = true;
    return Status::Ok();
  }

  void Shutdown() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    if (discovery_.joinable()) discovery_.join();
    if (queue_) rd_kafka_queue_destroy(queue_);
    queue_ = nullptr;
    if (rk_) {
      rd_kafka_consumer_close(rk_);
      rd_kafka_destroy(rk_);
    }
    rk_ = nullptr;
  }

  const KafkaSourcePlan plan_;
  const size_t schema_width_;
  std::regex pattern_;
  int subtask_ = 0, parallelism_ = 1;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_queue_t* queue_ = nullptr;
  std::vector<rd_kafka_message_t*> msgs_;

  // Task thread only.
  std::vector<Part> parts_;
  std::map<std::string, std::vector<int>, std::less<>> index_;  // topic -> partition -> parts_
  std::unordered_map<const rd_kafka_topic_t*, const std::vector<int>*> rkt_cache_;
  const rd_kafka_topic_t* last_rkt_ = nullptr;
  const std::vector<int>* last_idx_ = nullptr;
  std::vector<std::pair<int64_t, std::vector<std::pair<size_t, int64_t>>>> to_commit_;
  std::optional<SplitWatermarks> split_wm_;
  RecordCounters counters_;  // "read", for reconciliation
  int64_t commit_failures_ = 0, fetch_errors_ = 0;  // metrics
  bool started_ = false;  // the first discovery was applied
  Status fatal_;
  std::mutex log_mu_;                   // Transient() runs on both threads
  std::map<int, int64_t> last_logged_;  // error code -> last log time

  // Set in Open, then read-only.
  bool restored_ = false;
  bool all_started_before_ = true;

  // Shared with the discovery thread.
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::set<TopicPartition> known_;  // discovery thread after Open
  std::vector<NewPartition> handoff_;
  bool first_done_ = false;
  std::atomic<bool> handoff_ready_{false};
  std::thread discovery_;
};

// The validation-only spec plus librdkafka's check of `properties:` and the source itself.
class KafkaSourceFactory final : public kafka::KafkaSourceSpec {
 public:
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_RETURN_IF_ERROR(Plan(config).status());
    return KafkaSchema();
  }
  Result<std::unique_ptr<SourceOperator>> CreateSource(const Config& config) const override {
    WEIR_ASSIGN_OR_RETURN(KafkaSourcePlan plan, Plan(config));
    return std::unique_ptr<SourceOperator>(std::make_unique<KafkaSource>(std::move(plan)));
  }

 private:
  static Result<KafkaSourcePlan> Plan(const Config& config) {
    WEIR_ASSIGN_OR_RETURN(KafkaSourcePlan plan, kafka::PlanKafkaSource(config));
    WEIR_RETURN_IF_ERROR(kafka::CheckProperties(plan.properties, config.path() + ".properties"));
    return plan;
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeKafkaSourceFactory() {
  return std::make_unique<KafkaSourceFactory>();
}

}  // namespace weir
