#include "aggregation.h"

#include "weir/key_groups.h"
#include "weir/state/backend.h"

namespace weir {
namespace {

bool Less(const Value& a, const Value& b) {
  switch (a.type) {
    case Type::kDouble: return a.d < b.d;
    case Type::kString: return a.s < b.s;
    default: return a.i < b.i;
  }
}

}  // namespace

Result<Aggregations> ParseAggregations(const Config& config, const Schema& input, Schema* output) {
  Aggregations plan;
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
    WEIR_ASSIGN_OR_RETURN(
        agg.as, a.GetString("as", fn + (agg.field >= 0 ? "_" + input.field(agg.field).name : "")));
    if (output->IndexOf(agg.as) >= 0) {
      return Status::InvalidArgument(a.path() + ".as: duplicate output field '" + agg.as + "'");
    }
    output->Add(agg.as, agg.out_type);
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

void UpdateAccumulators(const Aggregations& plan, const Row& row, Row& acc_row) {
  size_t a = 0;
  for (const Agg& agg : plan.aggs) {
    Value& acc = acc_row[a];
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
        Value& n = acc_row[a + 1];
        ++a;
        if (v.is_null()) break;
        double x = v.type == Type::kInt64 ? static_cast<double>(v.i) : v.d;
        acc.SetDouble(acc.is_null() ? x : acc.d + x);
        n.SetInt64(n.is_null() ? 1 : n.i + 1);
        break;
      }
    }
    ++a;
  }
}

void WriteAggregates(const Aggregations& plan, const Row& acc, Row& out, size_t i) {
  size_t a = 0;
  for (const Agg& agg : plan.aggs) {
    if (agg.fn == AggFn::kAvg) {
      const Value& sum = acc[a];
      const Value& n = acc[a + 1];
      if (sum.is_null() || n.is_null() || n.i == 0) {
        out[i].SetNull();
      } else {
        out[i].SetDouble(sum.d / static_cast<double>(n.i));
      }
      a += 2;
    } else {
      out[i].CopyFrom(acc[a]);
      ++a;
    }
    ++i;
  }
}

void KeyExtractor::Extract(const Row& row, int max_parallelism) {
  uint64_t h = 0;
  key_row_.fields.resize(key_idx_.size());
  for (size_t k = 0; k < key_idx_.size(); ++k) {
    h = HashValue(row[key_idx_[k]], h);
    key_row_[k].CopyFrom(row[key_idx_[k]]);
  }
  key_group_ = KeyGroupForHash(h, max_parallelism);
  buf_.Clear();
  SerializeRow(key_row_, key_schema_, buf_);
}

bool KeyExtractor::Decode(std::string_view key, Row& out) const {
  const auto* p = reinterpret_cast<const uint8_t*>(key.data());
  return DeserializeRow(&p, p + key.size(), key_schema_, out) &&
         p == reinterpret_cast<const uint8_t*>(key.data()) + key.size();
}

Result<std::unique_ptr<state::KeyedStateStore>> OpenKeyedStateStore(const OperatorContext& ctx,
                                                                    const std::string& subdir) {
  state::BackendOptions opts;
  opts.local_dir = ctx.local_dir.empty() ? std::string() : ctx.local_dir + "/" + subdir;
  opts.max_parallelism = ctx.max_parallelism;
  opts.key_groups = ctx.key_groups;
  opts.block_cache_bytes = ctx.rocksdb_block_cache_bytes;
  static const std::vector<proto::KeyedStateHandle> kNone;
  const auto& handles = ctx.restored ? ctx.restored->keyed : kNone;
  const std::string root = ctx.restored ? ctx.restored->root : std::string();
  std::unique_ptr<state::SnapshottableBackend> backend;
  if (ctx.state_backend == "heap" || opts.local_dir.empty()) {
    WEIR_ASSIGN_OR_RETURN(backend, state::OpenHeapBackend(opts, handles, root));
  } else if (ctx.state_backend == "rocksdb") {
    WEIR_ASSIGN_OR_RETURN(backend, state::OpenRocksDbBackend(opts, handles, root));
  } else {
    return Status::InvalidArgument("unknown state backend '" + ctx.state_backend + "'");
  }
  return state::KeyedStateStore::Create(std::move(backend), ctx.key_groups);
}

namespace {

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

}  // namespace

std::unique_ptr<AsyncKeyedSnapshot> AdaptKeyedSnapshot(std::unique_ptr<state::SnapshotUpload> u) {
  return std::make_unique<UploadAdapter>(std::move(u));
}

}  // namespace weir
