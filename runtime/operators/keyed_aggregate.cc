// keyed_aggregate: a running aggregate per key (count, sum, min, max, avg), like Flink's
// keyBy(...).sum(...). Its input must arrive on a hash edge keyed by the same fields, so every
// key lives in exactly one subtask. Accumulators are kept in a keyed state backend (heap for
// now), serialized with the row serde so the layout carries over to RocksDB unchanged.
//
// config: key: [fields]; aggregations: [{fn: count|sum|min|max|avg, field: f, as: name}];
//         emit: updates (default: the key's new result for every input row) | final (one row
//         per key when the input ends).
#include <memory>
#include <string>
#include <vector>

#include "weir/key_groups.h"
#include "weir/operator.h"
#include "weir/serde.h"
#include "weir/state/backend.h"

namespace weir {
namespace {

enum class AggFn { kCount, kSum, kMin, kMax, kAvg };

struct Agg {
  AggFn fn;
  int field = -1;  // input index (-1 for count)
  Type in_type = Type::kNull;
  Type out_type = Type::kInt64;
  std::string as;
};

struct AggPlan {
  std::vector<int> key_idx;
  std::vector<Agg> aggs;
  Schema output;
  Schema key_schema;
  Schema acc_schema;  // per agg: count -> [n]; sum/min/max -> [v]; avg -> [sum double, n]
  bool emit_final = false;
};

Result<AggPlan> PlanAggregate(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"key", "aggregations", "emit"}));
  AggPlan plan;
  WEIR_ASSIGN_OR_RETURN(auto keys, config.GetStringList("key"));
  if (keys.empty()) return Status::InvalidArgument(config.path() + ".key: required, non-empty");
  for (const auto& k : keys) {
    int i = input.IndexOf(k);
    if (i < 0) {
      return Status::InvalidArgument(config.path() + ".key: unknown field '" + k +
                                     "' (input fields: " + input.FieldNames() + ")");
    }
    plan.key_idx.push_back(i);
    plan.output.Add(k, input.field(i).type);
    plan.key_schema.Add(k, input.field(i).type);
  }
  WEIR_ASSIGN_OR_RETURN(std::string emit, config.GetString("emit", std::string("updates")));
  if (emit != "updates" && emit != "final") {
    return Status::InvalidArgument(config.path() + ".emit: expected updates or final, got '" +
                                   emit + "'");
  }
  plan.emit_final = emit == "final";
  WEIR_ASSIGN_OR_RETURN(auto aggs, config.GetMapList("aggregations"));
  if (aggs.empty()) {
    return Status::InvalidArgument(config.path() + ".aggregations: required, non-empty");
  }
  for (const Config& a : aggs) {
    WEIR_RETURN_IF_ERROR(a.CheckKeys({"fn", "field", "as"}));
    Agg agg;
    WEIR_ASSIGN_OR_RETURN(std::string fn, a.GetString("fn"));
    if (fn == "count") agg.fn = AggFn::kCount;
    else if (fn == "sum") agg.fn = AggFn::kSum;
    else if (fn == "min") agg.fn = AggFn::kMin;
    else if (fn == "max") agg.fn = AggFn::kMax;
    else if (fn == "avg") agg.fn = AggFn::kAvg;
    else {
      return Status::InvalidArgument(a.path() + ".fn: unknown aggregate '" + fn +
                                     "' (expected count, sum, min, max, avg)");
    }
    if (agg.fn != AggFn::kCount) {
      WEIR_ASSIGN_OR_RETURN(std::string field, a.GetString("field"));
      agg.field = input.IndexOf(field);
      if (agg.field < 0) {
        return Status::InvalidArgument(a.path() + ".field: unknown field '" + field +
                                       "' (input fields: " + input.FieldNames() + ")");
      }
      agg.in_type = input.field(agg.field).type;
      const bool numeric = agg.in_type == Type::kInt64 || agg.in_type == Type::kDouble;
      if ((agg.fn == AggFn::kSum || agg.fn == AggFn::kAvg) && !numeric) {
        return Status::InvalidArgument(a.path() + ".field: " + fn + " needs a numeric field; '" +
                                       field + "' is " + TypeName(agg.in_type));
      }
      if ((agg.fn == AggFn::kMin || agg.fn == AggFn::kMax) && !numeric &&
          agg.in_type != Type::kTimestamp && agg.in_type != Type::kString) {
        return Status::InvalidArgument(a.path() + ".field: " + fn + " needs a numeric, string or "
                                       "timestamp field; '" + field + "' is " +
                                       TypeName(agg.in_type));
      }
      agg.out_type = agg.fn == AggFn::kAvg ? Type::kDouble : agg.in_type;
    }
    WEIR_ASSIGN_OR_RETURN(agg.as, a.GetString("as", fn + (agg.field >= 0 ? "_" + input.field(agg.field).name : "")));
    if (plan.output.IndexOf(agg.as) >= 0) {
      return Status::InvalidArgument(a.path() + ".as: duplicate output field '" + agg.as + "'");
    }
    plan.output.Add(agg.as, agg.out_type);
    switch (agg.fn) {
      case AggFn::kCount: plan.acc_schema.Add(agg.as, Type::kInt64); break;
      case AggFn::kSum:
      case AggFn::kMin:
      case AggFn::kMax: plan.acc_schema.Add(agg.as, agg.in_type); break;
      case AggFn::kAvg:
        plan.acc_schema.Add(agg.as + ".sum", Type::kDouble);
        plan.acc_schema.Add(agg.as + ".n", Type::kInt64);
        break;
    }
    plan.aggs.push_back(std::move(agg));
  }
  return plan;
}

bool Less(const Value& a, const Value& b) {
  switch (a.type) {
    case Type::kDouble: return a.d < b.d;
    case Type::kString: return a.s < b.s;
    default: return a.i < b.i;
  }
}

class KeyedAggregate : public Operator {
 public:
  explicit KeyedAggregate(AggPlan plan) : plan_(std::move(plan)), acc_(plan_.acc_schema.size()) {}

  Status Open(const OperatorContext& ctx) override {
    max_parallelism_ = ctx.max_parallelism;
    state::BackendOptions opts;
    opts.local_dir = ctx.local_dir.empty() ? std::string() : ctx.local_dir + "/keyed";
    opts.max_parallelism = ctx.max_parallelism;
    opts.key_groups = ctx.key_groups;
    static const std::vector<proto::KeyedStateHandle> kNone;
    const auto& handles = ctx.restored ? ctx.restored->keyed : kNone;
    const std::string root = ctx.restored ? ctx.restored->root : std::string();
    if (ctx.state_backend == "heap" || opts.local_dir.empty()) {
      WEIR_ASSIGN_OR_RETURN(backend_, state::OpenHeapBackend(opts, handles, root));
    } else if (ctx.state_backend == "rocksdb") {
      WEIR_ASSIGN_OR_RETURN(backend_, state::OpenRocksDbBackend(opts, handles, root));
    } else {
      return Status::InvalidArgument("unknown state backend '" + ctx.state_backend + "'");
    }
    return Status::Ok();
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    WEIR_ASSIGN_OR_RETURN(auto upload, backend_->Snapshot(checkpoint_id));
    out->keyed = std::make_unique<UploadAdapter>(std::move(upload));
    return Status::Ok();
  }
  void NotifyCheckpointComplete(int64_t id) override { backend_->NotifyCheckpointComplete(id); }
  void NotifyCheckpointAborted(int64_t id) override { backend_->NotifyCheckpointAborted(id); }

  Status Close() override {
    backend_.reset();
    return Status::Ok();
  }

  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& row = in[r];
      // The key group uses the same hash as the hash partitioner, so it matches the range the
      // subtask owns.
      uint64_t h = 0;
      key_row_.fields.resize(plan_.key_idx.size());
      for (size_t k = 0; k < plan_.key_idx.size(); ++k) {
        h = HashValue(row[plan_.key_idx[k]], h);
        key_row_[k].CopyFrom(row[plan_.key_idx[k]]);
      }
      const int kg = KeyGroupForHash(h, max_parallelism_);
      key_buf_.Clear();
      SerializeRow(key_row_, plan_.key_schema, key_buf_);
      std::string_view key(reinterpret_cast<const char*>(key_buf_.data()), key_buf_.size());
      if (backend_->Get(kg, key, &value_)) {
        const uint8_t* p = reinterpret_cast<const uint8_t*>(value_.data());
        if (!DeserializeRow(&p, p + value_.size(), plan_.acc_schema, acc_)) {
          return Status::DataLoss("keyed_aggregate: corrupt accumulator in state");
        }
      } else {
        for (auto& v : acc_.fields) v.SetNull();
      }
      Update(row);
      acc_buf_.Clear();
      SerializeRow(acc_, plan_.acc_schema, acc_buf_);
      WEIR_RETURN_IF_ERROR(backend_->Put(
          kg, key, std::string_view(reinterpret_cast<const char*>(acc_buf_.data()), acc_buf_.size())));
      if (!plan_.emit_final) WriteResult(key_row_, out_.Append(plan_.output.size()));
    }
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status Finish(Output& out) override {
    if (!plan_.emit_final) return Status::Ok();
    out_.Clear();
    Status st = backend_->ForEach([&](int, std::string_view key, std::string_view value) {
      const uint8_t* p = reinterpret_cast<const uint8_t*>(key.data());
      if (!DeserializeRow(&p, p + key.size(), plan_.key_schema, key_row_)) {
        return Status::DataLoss("keyed_aggregate: corrupt key in state");
      }
      p = reinterpret_cast<const uint8_t*>(value.data());
      if (!DeserializeRow(&p, p + value.size(), plan_.acc_schema, acc_)) {
        return Status::DataLoss("keyed_aggregate: corrupt accumulator in state");
      }
      WriteResult(key_row_, out_.Append(plan_.output.size()));
      if (out_.size() >= RowBatch::kDefaultCapacity) {
        WEIR_RETURN_IF_ERROR(out.Emit(out_));
        out_.Clear();
      }
      return Status::Ok();
    });
    WEIR_RETURN_IF_ERROR(st);
    if (!out_.empty()) return out.Emit(out_);
    return Status::Ok();
  }

 private:
  void Update(const Row& row) {
    size_t a = 0;
    for (const Agg& agg : plan_.aggs) {
      Value& acc = acc_[a];
      switch (agg.fn) {
        case AggFn::kCount:
          acc.SetInt64(acc.is_null() ? 1 : acc.i + 1);
          break;
        case AggFn::kSum: {
          const Value& v = row[agg.field];
          if (v.is_null()) break;
          if (acc.is_null()) {
            acc.CopyFrom(v);
          } else if (v.type == Type::kInt64) {
            acc.i += v.i;
          } else {
            acc.d += v.d;
          }
          break;
        }
        case AggFn::kMin:
        case AggFn::kMax: {
          const Value& v = row[agg.field];
          if (v.is_null()) break;
          if (acc.is_null() || (agg.fn == AggFn::kMin ? Less(v, acc) : Less(acc, v))) {
            acc.CopyFrom(v);
          }
          break;
        }
        case AggFn::kAvg: {
          const Value& v = row[agg.field];
          Value& n = acc_[a + 1];
          if (v.is_null()) break;
          double x = v.type == Type::kInt64 ? static_cast<double>(v.i) : v.d;
          acc.SetDouble(acc.is_null() ? x : acc.d + x);
          n.SetInt64(n.is_null() ? 1 : n.i + 1);
          ++a;
          break;
        }
      }
      ++a;
    }
  }

  void WriteResult(const Row& key, Row& out) {
    size_t i = 0;
    for (; i < key.size(); ++i) out[i].CopyFrom(key[i]);
    size_t a = 0;
    for (const Agg& agg : plan_.aggs) {
      if (agg.fn == AggFn::kAvg) {
        const Value& sum = acc_[a];
        const Value& n = acc_[a + 1];
        if (sum.is_null() || n.is_null() || n.i == 0) {
          out[i].SetNull();
        } else {
          out[i].SetDouble(sum.d / static_cast<double>(n.i));
        }
        a += 2;
      } else {
        out[i].CopyFrom(acc_[a]);
        ++a;
      }
      ++i;
    }
  }

  // Adapts the state module's upload to the runtime's async snapshot interface.
  class UploadAdapter : public AsyncKeyedSnapshot {
   public:
    explicit UploadAdapter(std::unique_ptr<state::SnapshotUpload> u) : u_(std::move(u)) {}
    Result<proto::KeyedStateHandle> Upload(const proto::CheckpointOptions& options,
                                           const std::string& exclusive_dir) override {
      state::SnapshotTarget t;
      t.root = options.root();
      t.exclusive_dir = exclusive_dir;
      t.incremental = options.incremental();
      return u_->Upload(t);
    }

   private:
    std::unique_ptr<state::SnapshotUpload> u_;
  };

  AggPlan plan_;
  std::unique_ptr<state::SnapshottableBackend> backend_;
  int max_parallelism_ = 128;
  Row key_row_;
  Row acc_;
  ByteBuffer key_buf_;
  ByteBuffer acc_buf_;
  std::string value_;
  RowBatch out_;
};

class KeyedAggregateFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(AggPlan plan, PlanAggregate(config, input));
    return plan.output;
  }
  std::vector<std::string> RequiredInputKey(const Config& config) const override {
    auto keys = config.GetStringList("key");
    return keys.ok() ? keys.value() : std::vector<std::string>{};
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(AggPlan plan, PlanAggregate(config, input));
    return std::unique_ptr<Operator>(std::make_unique<KeyedAggregate>(std::move(plan)));
  }
};

}  // namespace

void RegisterKeyedAggregate(OperatorRegistry& r) {
  r.Register("keyed_aggregate", std::make_unique<KeyedAggregateFactory>());
}

}  // namespace weir
