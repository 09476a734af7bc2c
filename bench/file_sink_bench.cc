// Throughput of the exactly-once file sink (committing_file), driven directly (no task, no
// network): rows in batches of 1024, a checkpoint (pre-commit + commit) every `interval` rows.
// Baselines in the same run: the same JSON bytes written with plain buffered writes to one file
// (fwrite, 256 KiB buffer, one fsync at the end), and the same with JSON serialization included.
//
//   build/bench/file_sink_bench [ROWS] [CHECKPOINT_EVERY_ROWS] [KEEP_DIR]
//
// With KEEP_DIR, the seeds' events are also written as examples/kafka-to-hive.yaml partitions
// them (dt/hour/app) to KEEP_DIR/json and KEEP_DIR/parquet and kept, for
// tests/parquet/query_bench.mjs (DuckDB query times over both).
//
// Cases: one directory; 24 hourly partitions by event time (dt/hour); 1000 partitions by a key
// (k=0..999, every batch touching all of them: the worst case for open files); the same with
// format: parquet. Then the seeds' event shape (the rows examples/kafka-to-hive.yaml's parse
// makes: id, event_time, app, user, amount, partition, offset, record_id), one directory, in
// JSON lines (the baseline of that table), JSON gzip, and Parquet with each codec: rows/s,
// MB/s of output, and file size, as ratios to JSON lines.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "seed_events.h"
#include "weir/builtins.h"
#include "weir/config.h"
#include "weir/connectors.h"
#include "weir/operator.h"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

weir::Schema BenchSchema() {
  return weir::Schema({{"id", weir::Type::kInt64},
                       {"ts", weir::Type::kTimestamp},
                       {"k", weir::Type::kInt64},
                       {"user", weir::Type::kString},
                       {"amount", weir::Type::kDouble}});
}

void Fill(weir::RowBatch& b, int64_t first, size_t n) {
  b.Clear();
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = first + static_cast<int64_t>(i);
    weir::Row& r = b.Append(5);
    r[0].SetInt64(id);
    r[1].SetTimestamp(1795305600000 + id * 3);  // 24 h over 28.8 M rows
    r[2].SetInt64(id % 1000);
    r[3].SetString("user-" + std::to_string(id % 100000));
    r[4].SetDouble(static_cast<double>(id % 10000) / 100.0);
  }
}

struct Result {
  double secs = 0;
  int64_t bytes = 0;
};

int64_t DirBytes(const fs::path& p) {
  int64_t n = 0;
  for (auto it = fs::recursive_directory_iterator(p); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_regular_file()) n += static_cast<int64_t>(it->file_size());
  }
  return n;
}

// Plain buffered writes of pre-serialized JSON lines (serialization outside the timing when
// `serialize_in_loop` is false).
Result Baseline(const fs::path& dir, int64_t rows, bool serialize_in_loop) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  const weir::Schema schema = BenchSchema();
  weir::RowBatch b;
  std::string pre;
  if (!serialize_in_loop) {
    for (int64_t first = 0; first < rows; first += 1024) {
      Fill(b, first, static_cast<size_t>(std::min<int64_t>(1024, rows - first)));
      for (size_t i = 0; i < b.size(); ++i) {
        weir::AppendJson(b[i], schema, &pre);
        pre.push_back('\n');
      }
    }
  }
  FILE* f = fopen((dir / "plain.jsonl").c_str(), "w");
  std::vector<char> buf(256 * 1024);
  setvbuf(f, buf.data(), _IOFBF, buf.size());
  const auto t0 = Clock::now();
  if (serialize_in_loop) {
    std::string line;
    for (int64_t first = 0; first < rows; first += 1024) {
      Fill(b, first, static_cast<size_t>(std::min<int64_t>(1024, rows - first)));
      line.clear();
      for (size_t i = 0; i < b.size(); ++i) {
        weir::AppendJson(b[i], schema, &line);
        line.push_back('\n');
      }
      fwrite(line.data(), 1, line.size(), f);
    }
  } else {
    fwrite(pre.data(), 1, pre.size(), f);
  }
  fflush(f);
  fsync(fileno(f));
  fclose(f);
  Result r;
  r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
  r.bytes = DirBytes(dir);
  return r;
}

struct Discard : weir::Output {
  weir::Status Emit(weir::RowBatch&) override { return weir::Status::Ok(); }
};

Result Sink(const fs::path& dir, int64_t rows, int64_t interval, const std::string& extra,
            bool events = false) {
  fs::remove_all(dir);
  const weir::Schema schema = events ? weir::bench::SeedEventSchema() : BenchSchema();
  auto cfg = weir::Config::Parse("{path: \"" + dir.string() + "\"" + extra + "}", "bench");
  if (!cfg.ok()) {
    std::fprintf(stderr, "%s\n", cfg.status().ToString().c_str());
    std::exit(1);
  }
  const weir::OperatorFactory* f = weir::BuiltinOperators().Find("committing_file");
  auto op = f->Create(*cfg, schema);
  if (!op.ok()) {
    std::fprintf(stderr, "%s\n", op.status().ToString().c_str());
    std::exit(1);
  }
  weir::OperatorContext ctx;
  ctx.job_id = "bench";
  ctx.vertex_id = "out";
  weir::Status st = (*op)->Open(ctx);
  Discard out;
  weir::RowBatch b;
  int64_t next_cp = interval, cp = 0;
  const auto t0 = Clock::now();
  for (int64_t first = 0; first < rows && st.ok(); first += 1024) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(1024, rows - first));
    if (events) {
      weir::bench::FillSeedEvents(b, first, n);
    } else {
      Fill(b, first, n);
    }
    st = (*op)->Process(b, out);
    if (first + 1024 >= next_cp) {
      weir::OperatorSnapshot snap;
      st = (*op)->Snapshot(++cp, &snap);
      (*op)->NotifyCheckpointComplete(cp);
      next_cp += interval;
    }
  }
  if (st.ok()) st = (*op)->Finish(out);
  (void)(*op)->Close();
  Result r;
  r.secs = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!st.ok()) {
    std::fprintf(stderr, "sink failed: %s\n", st.ToString().c_str());
    std::exit(1);
  }
  r.bytes = DirBytes(dir);
  return r;
}

// Time to build the batches alone, to subtract from the sink runs (the baseline serializing
// in its loop pays it too).
double FillSecs(int64_t rows, bool events = false) {
  weir::RowBatch b;
  const auto t0 = Clock::now();
  for (int64_t first = 0; first < rows; first += 1024) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(1024, rows - first));
    if (events) {
      weir::bench::FillSeedEvents(b, first, n);
    } else {
      Fill(b, first, n);
    }
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void Report(const char* name, int64_t rows, const Result& r, double fill, const Result& base) {
  const double secs = std::max(1e-9, r.secs - fill);
  std::printf("%-44s %8.2f M rows/s %8.1f MB/s  %5.1f%% of plain writes\n", name,
              static_cast<double>(rows) / secs / 1e6, static_cast<double>(r.bytes) / secs / 1e6,
              100.0 * (static_cast<double>(r.bytes) / secs) /
                  (static_cast<double>(base.bytes) / base.secs));
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_level(spdlog::level::warn);
  const int64_t rows = argc > 1 ? std::atoll(argv[1]) : 4'000'000;
  const int64_t interval = argc > 2 ? std::atoll(argv[2]) : 1'000'000;
  const fs::path root =
      fs::temp_directory_path() / ("weir-file-sink-bench-" + std::to_string(getpid()));
  const double fill = FillSecs(rows);
  const Result plain = Baseline(root / "plain", rows, false);
  const Result plain_ser = Baseline(root / "plain-ser", rows, true);
  std::printf("rows %lld, checkpoint every %lld rows; batch building (%.2f s) is subtracted\n",
              static_cast<long long>(rows), static_cast<long long>(interval), fill);
  std::printf("%-44s %8.2f M rows/s %8.1f MB/s\n", "plain buffered write of the JSON bytes",
              static_cast<double>(rows) / plain.secs / 1e6,
              static_cast<double>(plain.bytes) / plain.secs / 1e6);
  Report("plain: JSON serialization + buffered write", rows, plain_ser, fill, plain);
  Report("committing_file, one directory", rows, Sink(root / "one", rows, interval, ""), fill,
         plain);
  Report("committing_file, 24 hourly partitions", rows,
         Sink(root / "hours", rows, interval, ", partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\""),
         fill, plain);
  Report("committing_file, 1000 partitions (k)", rows,
         Sink(root / "keys", rows, interval, ", partition: \"k={k}\""), fill, plain);
  Report("committing_file, one directory, gzip", rows,
         Sink(root / "gz", rows, interval, ", compression: gzip"), fill, plain);
  Report("committing_file, one directory, parquet", rows,
         Sink(root / "pq", rows, interval, ", format: parquet"), fill, plain);
  Report("committing_file, 24 hourly partitions, parquet", rows,
         Sink(root / "pq-hours", rows, interval,
              ", format: parquet, partition: \"dt={ts:%Y-%m-%d}/hour={ts:%H}\""),
         fill, plain);
  Report("committing_file, 1000 partitions (k), parquet", rows,
         Sink(root / "pq-keys", rows, interval, ", format: parquet, partition: \"k={k}\""), fill,
         plain);

  // The seeds' event shape, one directory: every figure as a ratio to JSON lines.
  const double efill = FillSecs(rows, true);
  std::printf("\nthe seeds' event shape (%s), one directory; batch building (%.2f s) subtracted\n",
              weir::bench::SeedEventSchema().ToString().c_str(), efill);
  std::printf("%-28s %10s %9s %12s %9s %9s\n", "", "M rows/s", "MB/s", "bytes/row", "speed",
              "size");
  const Result json = Sink(root / "ev-json", rows, interval, "", true);
  const std::pair<const char*, const char*> formats[] = {
      {"JSON lines", nullptr},
      {"JSON lines, gzip", ", compression: gzip"},
      {"Parquet, none", ", format: parquet, compression: none"},
      {"Parquet, snappy", ", format: parquet"},
      {"Parquet, zstd", ", format: parquet, compression: zstd"}};
  for (const auto& [name, extra] : formats) {
    const Result r = extra ? Sink(root / "ev", rows, interval, extra, true) : json;
    const double secs = std::max(1e-9, r.secs - efill);
    const double jsecs = std::max(1e-9, json.secs - efill);
    std::printf("%-28s %10.2f %9.1f %12.1f %8.2fx %8.3fx\n", name,
                static_cast<double>(rows) / secs / 1e6, static_cast<double>(r.bytes) / secs / 1e6,
                static_cast<double>(r.bytes) / static_cast<double>(rows), jsecs / secs,
                static_cast<double>(r.bytes) / static_cast<double>(json.bytes));
  }
  if (argc > 3) {
    const fs::path keep = argv[3];
    const std::string demo =
        ", partition: \"dt={event_time:%Y-%m-%d}/hour={event_time:%H}/app={app}\"";
    Sink(keep / "json", rows, interval, demo, true);
    Sink(keep / "parquet", rows, interval, demo + ", format: parquet", true);
    std::printf("\nkept the seeds' events, partitioned as the demo does, in %s/{json,parquet}\n",
                keep.c_str());
  }
  fs::remove_all(root);
  return 0;
}
