#include "aggregation.h"

#include "weir/state/backend.h"

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
