#include "aggregation.h"

#include <limits>

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
  if (__builtin_add_overflow(a, b, &r)) {
    return b > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
  }
  return r;
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

Result<std::vector<int64_t>> RestoredInt64s(const OperatorContext& ctx, const std::string& name) {
  std::vector<int64_t> out;
  if (ctx.restored == nullptr) return out;
  for (const proto::NamedList& list : ctx.restored->operator_state) {
    if (list.name() != name) continue;
    for (const std::string& e : list.entries()) {
      int64_t v = 0;
      if (!state::Codec<int64_t>::Decode(e, &v)) {
        return Status::DataLoss("malformed restored operator state '" + name + "'");
      }
      out.push_back(v);
    }
  }
  return out;
}

std::unique_ptr<AsyncKeyedSnapshot> AdaptKeyedSnapshot(std::unique_ptr<state::SnapshotUpload> u) {
  return std::make_unique<UploadAdapter>(std::move(u));
}

}  // namespace weir
