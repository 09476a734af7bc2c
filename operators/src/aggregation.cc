#include "aggregation.h"

#include <algorithm>
#include <limits>

#include "weir/clock.h"
#include "weir/logging.h"
#include "weir/state/backend.h"
#include "weir/state/caching_backend.h"

namespace weir {

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
    // Hot keys in memory, written back in batches (never for the heap backend: it is memory).
    backend = state::NewCachingBackend(std::move(backend), ctx.state_cache_bytes);
  } else {
    return Status::InvalidArgument("unknown state backend '" + ctx.state_backend + "'");
  }
  return state::KeyedStateStore::Create(std::move(backend), ctx.key_groups);
}

void ReportStateMetrics(const state::KeyedStateStore* store, MetricWriter& out) {
  if (store == nullptr) return;
  const state::BackendStats s = store->Stats();
  auto gauge = [&](const char* name, const char* help, int64_t v) {
    if (v >= 0) out.Gauge(name, help, static_cast<double>(v));
  };
  gauge("weir_state_entries", "Keyed state entries (estimate)", s.entries);
  gauge("weir_rocksdb_live_data_bytes", "RocksDB estimate of live data size", s.live_data_bytes);
  gauge("weir_rocksdb_block_cache_bytes", "RocksDB block cache usage", s.block_cache_bytes);
  gauge("weir_rocksdb_memtable_bytes", "RocksDB size of all memtables", s.memtable_bytes);
  state::CacheStats c;
  if (state::GetCacheStats(store->backend(), &c)) {
    gauge("weir_state_cache_bytes", "Keyed state write-back cache: memory held", c.bytes);
    gauge("weir_state_cache_entries", "Keyed state write-back cache: entries", c.entries);
    gauge("weir_state_cache_dirty", "Keyed state write-back cache: entries not yet written",
          c.dirty);
    out.Counter("weir_state_cache_hits_total", "Keyed state write-back cache: hits",
                static_cast<double>(c.hits));
    out.Counter("weir_state_cache_misses_total", "Keyed state write-back cache: misses",
                static_cast<double>(c.misses));
    out.Counter("weir_state_cache_evictions_total", "Keyed state write-back cache: evictions",
                static_cast<double>(c.evictions));
  }
}

void EncodeOrderedTime(int64_t t, std::string* out) {
  const uint64_t u = static_cast<uint64_t>(t) ^ (uint64_t{1} << 63);
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((u >> (8 * (7 - i))) & 0xff));
}

bool DecodeOrderedTime(std::string_view in, int64_t* t) {
  if (in.size() != 8) return false;
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i) u = (u << 8) | static_cast<uint8_t>(in[i]);
  *t = static_cast<int64_t>(u ^ (uint64_t{1} << 63));
  return true;
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  return r;
}

void KeyWindowGroups::Add(int64_t end, std::string_view key, int key_group, size_t row) {
  if (entries_.empty() || entries_.back().row != row) arena_.append(key);
  entries_.push_back({end, static_cast<uint32_t>(arena_.size() - key.size()),
                      static_cast<uint32_t>(key.size()), static_cast<uint32_t>(row), key_group});
}

void KeyWindowGroups::Sort() {
  std::sort(entries_.begin(), entries_.end(), [&](const Entry& a, const Entry& b) {
    if (int c = KeyOf(a).compare(KeyOf(b)); c != 0) return c < 0;
    if (a.end != b.end) return a.end < b.end;
    return a.row < b.row;
  });
}

size_t KeyWindowGroups::GroupEnd(size_t i, bool by_end) const {
  size_t j = i + 1;
  while (j < entries_.size() && (!by_end || entries_[j].end == entries_[i].end) &&
         KeyOf(entries_[j]) == KeyOf(entries_[i])) {
    ++j;
  }
  return j;
}

void DroppedRecords::Open(const OperatorContext& ctx, std::string op, std::string output) {
  op_ = std::move(op);
  output_ = std::move(output);
  log_prefix_ = ctx.log_prefix;
  metrics_ = ctx.metrics;
  late_out_ = ctx.SideOutput(output_);
}

void DroppedRecords::Late(const Row& row, int64_t t, int64_t watermark) {
  ++late_;
  if (metrics_ != nullptr) metrics_->late_records_dropped.fetch_add(1, std::memory_order_relaxed);
  if (late_out_ != nullptr) late_rows_.Append(row.size()).CopyFrom(row);
  Log("late", t, watermark);
}

void DroppedRecords::NoTime(int64_t watermark) {
  ++no_time_;
  Log("without a time", 0, watermark);
}

Status DroppedRecords::End() {
  if (late_rows_.empty()) return Status::Ok();
  return late_out_->Emit(late_rows_);
}

void DroppedRecords::Log(const char* why, int64_t t, int64_t watermark) {
  const int64_t now = MonotonicMs();
  if (last_log_ms_ != 0 && now - last_log_ms_ < 10'000) return;
  last_log_ms_ = now;
  ModuleLogger("task")->warn(
      "{} {}: a record {} (time {}, watermark {}); late records go to the side output '{}' "
      "(dropped if no edge takes it), the others are dropped; {} late and {} without a time so "
      "far",
      log_prefix_, op_, why, t, watermark, output_, late_, no_time_);
}

proto::NamedList UnionInt64List(const std::string& name, int64_t value) {
  proto::NamedList list;
  list.set_name(name);
  list.set_mode(proto::NamedList::UNION);
  std::string bytes;
  state::Codec<int64_t>::Encode(value, &bytes);
  list.add_entries(std::move(bytes));
  return list;
}

Status ForEachRestoredInt64(const OperatorContext& ctx, const char* name, const char* what,
                            const std::function<void(int64_t)>& fn) {
  if (ctx.restored == nullptr) return Status::Ok();
  for (const proto::NamedList& list : ctx.restored->operator_state) {
    if (list.name() != name) continue;
    for (const std::string& e : list.entries()) {
      int64_t v = 0;
      if (!state::Codec<int64_t>::Decode(e, &v)) {
        return Status::DataLoss(std::string(what) + ": malformed restored entry");
      }
      fn(v);
    }
  }
  return Status::Ok();
}

Status RestoreWatermark(const OperatorContext& ctx, const char* name, const char* op,
                        int64_t* watermark) {
  bool any = false;
  int64_t min = kMaxWatermark;
  WEIR_RETURN_IF_ERROR(
      ForEachRestoredInt64(ctx, name, (std::string(op) + " watermark").c_str(), [&](int64_t wm) {
        min = std::min(min, wm);
        any = true;
      }));
  if (any) *watermark = min;
  return Status::Ok();
}

Status KeyedEventTimeOperator::OpenStore(const OperatorContext& ctx, const char* op) {
  max_parallelism_ = ctx.max_parallelism;
  WEIR_ASSIGN_OR_RETURN(store_, OpenKeyedStateStore(ctx, "keyed"));
  return RestoreWatermark(ctx, kWatermarkList, op, &watermark_);
}

Status KeyedEventTimeOperator::Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) {
  WEIR_RETURN_IF_ERROR(SnapshotStore(checkpoint_id, out));
  out->operator_state.push_back(UnionInt64List(kWatermarkList, watermark_));
  return Status::Ok();
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
