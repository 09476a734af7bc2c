// datagen, print, blackhole and the plain file sink (committing_file, nexmark and Kafka have
// their own files), and the registration of every connector.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "committing_file_sink.h"
#include "generator_splits.h"
#include "nexmark_source.h"
#include "weir/connectors.h"
#include "weir/expr.h"
#include "weir/operator_state.h"
#include "weir/record_counters.h"

namespace weir {
namespace {

// ---------------------------------------------------------------- datagen
// Deterministic: subtask i of p emits ids i, i+p, i+2p, ... so each id in [0, total) is produced
// exactly once across subtasks. Extra fields are expressions over `id`.
// config: total (optional: unbounded without it), rows_per_second (whole vertex; 0 = no limit),
//         hold (with total: once all ids are out, stay idle instead of ending, so the job keeps
//         running and checkpointing; default false), fields: [{name, expr}]
struct DatagenPlan {
  int64_t total = -1;
  bool hold = false;
  double rows_per_second = 0;
  Schema schema;
  std::vector<std::unique_ptr<Expr>> exprs;  // for fields after id
};

Result<DatagenPlan> PlanDatagen(const Config& config) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"total", "rows_per_second", "hold", "fields"}));
  DatagenPlan plan;
  if (config.Has("total")) {
    WEIR_ASSIGN_OR_RETURN(plan.total, config.GetInt("total"));
    if (plan.total < 0) return Status::InvalidArgument(config.path() + ".total: must be >= 0");
  }
  WEIR_ASSIGN_OR_RETURN(plan.hold, config.GetBool("hold", false));
  if (plan.hold && plan.total < 0) {
    return Status::InvalidArgument(config.path() +
                                   ".hold: needs total (without it the source never ends anyway)");
  }
  WEIR_ASSIGN_OR_RETURN(plan.rows_per_second, config.GetDouble("rows_per_second", 0.0));
  if (plan.rows_per_second < 0) {
    return Status::InvalidArgument(config.path() + ".rows_per_second: must be >= 0");
  }
  plan.schema.Add("id", Type::kInt64);
  Schema id_only = plan.schema;
  WEIR_ASSIGN_OR_RETURN(auto fields, config.GetMapList("fields"));
  for (size_t k = 0; k < fields.size(); ++k) {
    const Config& f = fields[k];
    WEIR_RETURN_IF_ERROR(f.CheckKeys({"name", "expr"}));
    WEIR_ASSIGN_OR_RETURN(std::string name, f.GetString("name"));
    WEIR_ASSIGN_OR_RETURN(std::string text, f.GetString("expr"));
    if (plan.schema.IndexOf(name) >= 0) {
      return Status::InvalidArgument(f.path() + ".name: duplicate field '" + name + "'");
    }
    auto e = CompileExpr(text, id_only);
    if (!e.ok()) return e.status().WithContext(f.path() + ".expr");
    if (e.value()->type() == Type::kNull) {
      return Status::InvalidArgument(f.path() + ".expr: always null; its type cannot be known");
    }
    plan.schema.Add(name, e.value()->type());
    plan.exprs.push_back(std::move(e).value());
  }
  return plan;
}

// The generator's position is a list of splits (GeneratorSource): every id is emitted exactly
// once whatever the parallelism, also after a restore at another one. Bounded and not held:
// exhausted splits end the source.
class Datagen : public GeneratorSource {
 public:
  explicit Datagen(DatagenPlan plan)
      : GeneratorSource("datagen", plan.total, plan.total >= 0 && !plan.hold, plan.rows_per_second,
                        1),
        plan_(std::move(plan)),
        id_row_(1) {}

 private:
  int64_t Fill(GeneratorSplits::Split& sp, RowBatch& batch, size_t max_rows,
               int64_t budget) override {
    const size_t width = plan_.schema.size();
    const size_t n = std::min(max_rows, static_cast<size_t>(budget));
    for (size_t i = 0; i < n && Wants(sp.next); ++i) {
      Row& r = batch.Append(width);
      r[0].SetInt64(sp.next);
      id_row_[0].SetInt64(sp.next);
      for (size_t k = 0; k < plan_.exprs.size(); ++k) plan_.exprs[k]->Eval(id_row_, r[k + 1]);
      sp.next += sp.stride;
    }
    return static_cast<int64_t>(batch.size());
  }

  DatagenPlan plan_;
  Row id_row_;
};

class DatagenFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSource; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_ASSIGN_OR_RETURN(DatagenPlan plan, PlanDatagen(config));
    return plan.schema;
  }
  Result<std::unique_ptr<SourceOperator>> CreateSource(const Config& config) const override {
    WEIR_ASSIGN_OR_RETURN(DatagenPlan plan, PlanDatagen(config));
    return std::unique_ptr<SourceOperator>(std::make_unique<Datagen>(std::move(plan)));
  }
};

// ---------------------------------------------------------------- print
// Writes each row as JSON to the task manager's stdout, prefixed "<vertex>:<subtask>> ".
class Print : public Operator {
 public:
  explicit Print(Schema schema) : schema_(std::move(schema)) {}
  Status Open(const OperatorContext& ctx) override {
    prefix_ = ctx.vertex_id + ":" + std::to_string(ctx.subtask) + "> ";
    return Status::Ok();
  }
  Status Process(RowBatch& batch, Output&) override {
    line_.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      line_ += prefix_;
      AppendJson(batch[i], schema_, &line_);
      line_.push_back('\n');
    }
    fwrite(line_.data(), 1, line_.size(), stdout);
    fflush(stdout);
    return Status::Ok();
  }

 private:
  Schema schema_;
  std::string prefix_;
  std::string line_;
};

class PrintFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_RETURN_IF_ERROR(config.CheckKeys({}));
    return Schema();
  }
  Result<std::unique_ptr<Operator>> Create(const Config&, const Schema& input) const override {
    return std::unique_ptr<Operator>(std::make_unique<Print>(input));
  }
};

// ---------------------------------------------------------------- blackhole
class Blackhole : public Operator {
 public:
  Status Process(RowBatch&, Output&) override { return Status::Ok(); }
};

class BlackholeFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_RETURN_IF_ERROR(config.CheckKeys({}));
    return Schema();
  }
  Result<std::unique_ptr<Operator>> Create(const Config&, const Schema&) const override {
    return std::unique_ptr<Operator>(std::make_unique<Blackhole>());
  }
};

// ---------------------------------------------------------------- file (plain)
// JSON lines into <path>/part-<vertex>-<subtask>.jsonl, written as a hidden
// `.part-...inprogress` file and renamed when the input ends. Not transactional: a job that is
// cancelled or fails leaves its in-progress file behind (the exactly-once sink replaces this).
// config: path (required)
class FileSink : public Operator {
 public:
  FileSink(Schema schema, std::string dir) : schema_(std::move(schema)), dir_(std::move(dir)) {}

  Status Open(const OperatorContext& ctx) override {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) return Status::IoError("cannot create directory " + dir_ + ": " + ec.message());
    const std::string name = "part-" + ctx.vertex_id + "-" + std::to_string(ctx.subtask) + ".jsonl";
    final_ = dir_ + "/" + name;
    tmp_ = dir_ + "/." + name + ".inprogress";
    file_ = fopen(tmp_.c_str(), "w");
    if (!file_) return Status::IoError("cannot open " + tmp_ + ": " + strerror(errno));
    return Status::Ok();
  }

  Status Process(RowBatch& batch, Output&) override {
    line_.clear();
    for (size_t i = 0; i < batch.size(); ++i) {
      AppendJson(batch[i], schema_, &line_);
      line_.push_back('\n');
    }
    if (fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
      return Status::IoError("write to " + tmp_ + " failed: " + strerror(errno));
    }
    return Status::Ok();
  }

  Status Finish(Output&) override {
    if (fflush(file_) != 0 || fsync(fileno(file_)) != 0) {
      return Status::IoError("flush of " + tmp_ + " failed: " + strerror(errno));
    }
    fclose(file_);
    file_ = nullptr;
    if (rename(tmp_.c_str(), final_.c_str()) != 0) {
      return Status::IoError("rename " + tmp_ + " -> " + final_ + " failed: " + strerror(errno));
    }
    return Status::Ok();
  }

  Status Close() override {
    if (file_) fclose(file_);
    file_ = nullptr;
    return Status::Ok();
  }

 private:
  Schema schema_;
  std::string dir_;
  std::string final_, tmp_;
  FILE* file_ = nullptr;
  std::string line_;
};

class FileSinkFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kSink; }
  Result<Schema> Validate(const Config& config, const Schema&) const override {
    WEIR_RETURN_IF_ERROR(config.CheckKeys({"path", "format"}));
    WEIR_ASSIGN_OR_RETURN(std::string path, config.GetString("path"));
    if (path.empty()) return Status::InvalidArgument(config.path() + ".path: must not be empty");
    WEIR_ASSIGN_OR_RETURN(std::string format, config.GetString("format", std::string("json")));
    if (format != "json") {
      return Status::InvalidArgument(config.path() + ".format: only 'json' (JSON lines) for now");
    }
    return Schema();
  }
  std::vector<std::string> OutputPathKeys() const override { return {"path"}; }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(std::string path, config.GetString("path"));
    return std::unique_ptr<Operator>(std::make_unique<FileSink>(input, path));
  }
};

}  // namespace

void RegisterConnectors(OperatorRegistry& r) {
  r.Register("datagen", std::make_unique<DatagenFactory>());
  r.Register("nexmark", MakeNexmarkSourceFactory());
  r.Register("print", std::make_unique<PrintFactory>());
  r.Register("blackhole", std::make_unique<BlackholeFactory>());
  r.Register("file", std::make_unique<FileSinkFactory>());
  r.Register("committing_file", MakeCommittingFileSinkFactory());
}

}  // namespace weir
