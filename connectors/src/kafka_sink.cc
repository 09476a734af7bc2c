// kafka_sink: writes rows to a Kafka topic, at least once (librdkafka producer).
//
// config: bootstrap | bootstrap_file, topic, key: [fields] (optional: the message key; one
//         field: its value as text, several: a JSON object of them; no key: librdkafka spreads
//         records over partitions, with a key its default partitioner hashes the key),
//         value: json (the whole row as a JSON object, default) | raw (one string/bytes field,
//         value_field), timestamp_field (optional timestamp or int64 ms field: the record's
//         timestamp; default: the time of sending), flush_timeout (default 10s),
//         properties: {librdkafka producer properties}
//
// At least once: at every checkpoint barrier the sink flushes (waits until the broker
// acknowledged everything sent so far); any delivery error since the previous checkpoint, or a
// flush that does not finish within flush_timeout, declines the checkpoint. Between barriers a
// delivery error fails the task at the next batch, so the job restarts from the last
// checkpoint, whose records were all acknowledged. Records after it may be written twice.
// No transactions (exactly-once Kafka output is not built; the dev broker ignores them).
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "kafka_common.h"
#include "weir/record_counters.h"
#include "weir/connectors.h"
#include "weir/kafka.h"

namespace weir {
namespace {

using kafka::KafkaSinkPlan;
using kafka::Log;

// The text form of a single key field.
void AppendKeyText(const Value& v, std::string* out) {
  switch (v.type) {
    case Type::kNull: break;
    case Type::kBool: out->append(v.b ? "true" : "false"); break;
    case Type::kInt64:
    case Type::kTimestamp: out->append(std::to_string(v.i)); break;
    case Type::kDouble: {
      char buf[32];
      snprintf(buf, sizeof buf, "%.17g", v.d);
      out->append(buf);
      break;
    }
    case Type::kString:
    case Type::kBytes: out->append(v.s); break;
  }
}

class KafkaSink : public Operator, public kafka::OpaqueBase {
 public:
  KafkaSink(Schema input, KafkaSinkPlan plan)
      : schema_(std::move(input)), plan_(std::move(plan)), key_row_(plan_.key_fields.size()) {}

  ~KafkaSink() override { Destroy(); }

  Status Open(const OperatorContext& ctx) override {
    log_prefix = ctx.log_prefix;
    WEIR_RETURN_IF_ERROR(counters_.Restore(ctx.restored));
    WEIR_ASSIGN_OR_RETURN(std::string bootstrap,
                          kafka::ResolveBootstrap(plan_.bootstrap, plan_.bootstrap_file));
    WEIR_ASSIGN_OR_RETURN(
        rd_kafka_conf_t * conf,
        kafka::MakeConf(plan_.properties,
                        {{"client.id", "weir-" + ctx.vertex_id + "-" + std::to_string(ctx.subtask)},
                         {"linger.ms", "5"}},
                        {{"bootstrap.servers", bootstrap}}));
    rd_kafka_conf_set_opaque(conf, static_cast<kafka::OpaqueBase*>(this));
    kafka::SetLogCallback(conf);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::OnDelivery);
    rd_kafka_conf_set_error_cb(conf, &KafkaSink::OnError);
    char err[512];
    rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk_) {
      rd_kafka_conf_destroy(conf);
      return Status::InvalidArgument(std::string("kafka_sink: cannot create a producer: ") + err);
    }
    rkt_ = rd_kafka_topic_new(rk_, plan_.topic.c_str(), nullptr);
    if (!rkt_) {
      return Status::InvalidArgument("kafka_sink: topic " + plan_.topic + ": " +
                                     rd_kafka_err2str(rd_kafka_last_error()));
    }
    Log()->info("{} kafka_sink: producing to topic {}", log_prefix, plan_.topic);
    return Status::Ok();
  }

  Status Process(RowBatch& batch, Output&) override {
    WEIR_RETURN_IF_ERROR(CheckErrors());
    for (size_t i = 0; i < batch.size(); ++i) {
      const Row& row = batch[i];
      const bool has_key = BuildKey(row);
      std::string_view value;
      if (plan_.raw) {
        const Value& v = row[static_cast<size_t>(plan_.value_field)];
        value = v.is_null() ? std::string_view() : std::string_view(v.s);
      } else {
        value_.clear();
        AppendJson(row, schema_, &value_);
        value = value_;
      }
      int64_t ts = 0;
      if (plan_.timestamp_field >= 0) {
        const Value& t = row[static_cast<size_t>(plan_.timestamp_field)];
        if (!t.is_null() && t.i > 0) ts = t.i;
      }
      const bool null_value = plan_.raw && row[static_cast<size_t>(plan_.value_field)].is_null();
      while (true) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk_, RD_KAFKA_V_RKT(rkt_), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_VALUE(null_value ? nullptr : const_cast<char*>(value.data()),
                             null_value ? 0 : value.size()),
            RD_KAFKA_V_KEY(has_key ? key_.data() : nullptr, has_key ? key_.size() : 0),
            RD_KAFKA_V_TIMESTAMP(ts), RD_KAFKA_V_END);
        if (!err) break;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
          return Status::Internal("kafka_sink: cannot send to topic " + plan_.topic + ": " +
                                  rd_kafka_err2str(err));
        }
        // The local queue is full (broker slow or down): wait for acknowledgements. This
        // backpressures the job like a slow sink would.
        rd_kafka_poll(rk_, 50);
        WEIR_RETURN_IF_ERROR(CheckErrors());
      }
    }
    rd_kafka_poll(rk_, 0);  // serves delivery reports
    sent_since_barrier_ += static_cast<int64_t>(batch.size());
    return CheckErrors();
  }

  // The barrier: everything sent before it must be acknowledged, or the checkpoint is declined.
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    rd_kafka_flush(rk_, static_cast<int>(plan_.flush_timeout_ms));
    if (!delivery_error_.ok()) {
      Log()->error("{} kafka_sink: declining checkpoint={}: {}", log_prefix, checkpoint_id,
                   delivery_error_.message());
      return delivery_error_;
    }
    const int left = rd_kafka_outq_len(rk_);
    if (left > 0) {
      return Status::DeadlineExceeded("kafka_sink: " + std::to_string(left) +
                                      " record(s) not acknowledged within flush_timeout (" +
                                      std::to_string(plan_.flush_timeout_ms) +
                                      " ms) at checkpoint " + std::to_string(checkpoint_id));
    }
    // Acknowledged by the brokers: as committed as an at-least-once sink gets.
    counters_.Add("committed", sent_since_barrier_);
    sent_since_barrier_ = 0;
    counters_.Snapshot(out);
    return Status::Ok();
  }

  Status Finish(Output&) override {
    rd_kafka_flush(rk_, static_cast<int>(plan_.flush_timeout_ms));
    WEIR_RETURN_IF_ERROR(CheckErrors());
    const int left = rd_kafka_outq_len(rk_);
    if (left > 0) {
      return Status::DeadlineExceeded("kafka_sink: " + std::to_string(left) +
                                      " record(s) not acknowledged within flush_timeout at the "
                                      "end of input");
    }
    return Status::Ok();
  }

  Status Close() override {
    Destroy();
    return Status::Ok();
  }

 private:
  RecordCounters counters_;
  int64_t sent_since_barrier_ = 0;
  // Builds the key of `row` into key_; false: no key.
  bool BuildKey(const Row& row) {
    if (plan_.key_fields.empty()) return false;
    key_.clear();
    if (plan_.key_fields.size() == 1) {
      const Value& v = row[static_cast<size_t>(plan_.key_fields[0])];
      if (v.is_null()) return false;
      AppendKeyText(v, &key_);
      return true;
    }
    for (size_t k = 0; k < plan_.key_fields.size(); ++k) {
      key_row_[k].CopyFrom(row[static_cast<size_t>(plan_.key_fields[k])]);
    }
    AppendJson(key_row_, plan_.key_schema, &key_);
    return true;
  }

  Status CheckErrors() {
    if (!fatal_.ok()) return fatal_;
    return delivery_error_;
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* m, void* opaque) {
    if (!m->err) return;
    auto* self = static_cast<KafkaSink*>(static_cast<kafka::OpaqueBase*>(opaque));
    ++self->failed_;
    if (self->delivery_error_.ok()) {
      self->delivery_error_ = Status::Unavailable(
          "kafka_sink: delivery to " + std::string(rd_kafka_topic_name(m->rkt)) + "/" +
          std::to_string(m->partition) + " failed: " + rd_kafka_err2str(m->err));
      Log()->error("{} {}", self->log_prefix, self->delivery_error_.message());
    }
  }

  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSink*>(static_cast<kafka::OpaqueBase*>(opaque));
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      char buf[512];
      rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
      if (self->fatal_.ok()) {
        self->fatal_ = Status::Internal(std::string("kafka_sink: fatal producer error: ") +
                                        rd_kafka_err2name(orig) + ": " + buf);
      }
      return;
    }
    // Transient (broker down, ...): librdkafka retries until message.timeout.ms, after which
    // the records fail through their delivery reports.
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (now - self->last_warn_ms_ >= 10000) {
      self->last_warn_ms_ = now;
      Log()->warn("{} kafka_sink: {} (transient: retrying)", self->log_prefix, reason);
    }
  }

  void Destroy() {
    if (rkt_) rd_kafka_topic_destroy(rkt_);
    rkt_ = nullptr;
    if (rk_) {
      // After a failure or cancel nothing waits for unsent records: they are resent from the
      // last checkpoint.
      rd_kafka_purge(rk_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
      rd_kafka_poll(rk_, 0);
      rd_kafka_destroy(rk_);
    }
    rk_ = nullptr;
  }

  const Schema schema_;
  const KafkaSinkPlan plan_;
  rd_kafka_t* rk_ = nullptr;
  rd_kafka_topic_t* rkt_ = nullptr;
  Row key_row_;
  std::string key_, value_;
  Status delivery_error_;  // sticky: the first failed delivery
  Status fatal_;
  int64_t failed_ = 0;
  int64_t last_warn_ms_ = 0;
};

// The validation-only spec plus librdkafka's check of `properties:` and the sink itself.
class KafkaSinkFactory final : public kafka::KafkaSinkSpec {
 public:
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_RETURN_IF_ERROR(Plan(config, input).status());
    return Schema();
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(KafkaSinkPlan plan, Plan(config, input));
    return std::unique_ptr<Operator>(std::make_unique<KafkaSink>(input, std::move(plan)));
  }

 private:
  static Result<KafkaSinkPlan> Plan(const Config& config, const Schema& input) {
    WEIR_ASSIGN_OR_RETURN(KafkaSinkPlan plan, kafka::PlanKafkaSink(config, input));
    WEIR_RETURN_IF_ERROR(kafka::CheckProperties(plan.properties, config.path() + ".properties"));
    return plan;
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeKafkaSinkFactory() {
  return std::make_unique<KafkaSinkFactory>();
}

}  // namespace weir
