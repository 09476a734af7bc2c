// map, filter and project: stateless row transformations over the expression language.
#include <memory>
#include <string>
#include <vector>

#include "weir/expr.h"
#include "weir/operator.h"
#include "weir/operators.h"
#include "weir/record_counters.h"

namespace weir {
namespace {

struct MapField {
  std::string name;
  std::string expr;
};

// map config: fields: [{name, expr}], keep_input (default false): output = input fields
// (replaced where a mapped field has the same name) followed by the new ones.
struct MapSpec {
  std::vector<MapField> fields;
  bool keep_input = false;
};

Result<MapSpec> ParseMapSpec(const Config& config) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"fields", "keep_input"}));
  MapSpec spec;
  WEIR_ASSIGN_OR_RETURN(spec.keep_input, config.GetBool("keep_input", false));
  if (!config.Has("fields")) return Status::InvalidArgument(config.path() + ".fields: required");
  WEIR_ASSIGN_OR_RETURN(auto list, config.GetMapList("fields"));
  if (list.empty()) return Status::InvalidArgument(config.path() + ".fields: must not be empty");
  for (const Config& f : list) {
    WEIR_RETURN_IF_ERROR(f.CheckKeys({"name", "expr"}));
    MapField mf;
    WEIR_ASSIGN_OR_RETURN(mf.name, f.GetString("name"));
    WEIR_ASSIGN_OR_RETURN(mf.expr, f.GetString("expr"));
    spec.fields.push_back(std::move(mf));
  }
  return spec;
}

// Compiles a map spec against its input: the output schema and, per output field, either an
// input field to copy or an expression.
struct MapPlan {
  Schema output;
  std::vector<int> copy_from;                // input index, or -1
  std::vector<std::unique_ptr<Expr>> exprs;  // set where copy_from is -1
};

Result<MapPlan> PlanMap(const Config& config, const Schema& input) {
  WEIR_ASSIGN_OR_RETURN(MapSpec spec, ParseMapSpec(config));
  MapPlan plan;
  if (spec.keep_input) {
    for (size_t i = 0; i < input.size(); ++i) {
      plan.output.Add(input.field(i).name, input.field(i).type);
      plan.copy_from.push_back(static_cast<int>(i));
      plan.exprs.push_back(nullptr);
    }
  }
  for (size_t k = 0; k < spec.fields.size(); ++k) {
    const MapField& f = spec.fields[k];
    const std::string where = config.path() + ".fields[" + std::to_string(k) + "]";
    auto compiled = CompileExpr(f.expr, input);
    if (!compiled.ok()) return compiled.status().WithContext(where + ".expr");
    Type t = compiled.value()->type();
    if (t == Type::kNull) {
      return Status::InvalidArgument(where +
                                     ".expr: the expression is always null; its type "
                                     "cannot be known (cast it, e.g. string(null))");
    }
    int existing = plan.output.IndexOf(f.name);
    if (existing >= 0 && !spec.keep_input) {
      return Status::InvalidArgument(where + ".name: duplicate output field '" + f.name + "'");
    }
    if (existing >= 0 && plan.copy_from[existing] < 0) {
      return Status::InvalidArgument(where + ".name: duplicate output field '" + f.name + "'");
    }
    if (existing >= 0) {
      // Replaces an input field of the same name, in place.
      std::vector<Field> fields = plan.output.fields();
      fields[existing].type = t;
      plan.output = Schema(fields);
      plan.copy_from[existing] = -1;
      plan.exprs[existing] = std::move(compiled).value();
    } else {
      plan.output.Add(f.name, t);
      plan.copy_from.push_back(-1);
      plan.exprs.push_back(std::move(compiled).value());
    }
  }
  return plan;
}

class MapOperator : public Operator {
 public:
  explicit MapOperator(MapPlan plan) : plan_(std::move(plan)) {}
  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    const size_t width = plan_.output.size();
    for (size_t r = 0; r < in.size(); ++r) {
      const Row& src = in[r];
      Row& dst = out_.Append(width);
      for (size_t i = 0; i < width; ++i) {
        if (plan_.copy_from[i] >= 0) {
          dst[i].CopyFrom(src[plan_.copy_from[i]]);
        } else {
          plan_.exprs[i]->Eval(src, dst[i]);
        }
      }
    }
    return out.Emit(out_);
  }

 private:
  MapPlan plan_;
  RowBatch out_;
};

class MapFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(MapPlan plan, PlanMap(config, input));
    return plan.output;
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(MapPlan plan, PlanMap(config, input));
    return std::unique_ptr<Operator>(std::make_unique<MapOperator>(std::move(plan)));
  }
};

// filter config: where: "<predicate>". Rows for which it is true pass; false or null drop.
Result<std::unique_ptr<Expr>> PlanFilter(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"where"}));
  WEIR_ASSIGN_OR_RETURN(std::string text, config.GetString("where"));
  auto pred = CompilePredicate(text, input);
  if (!pred.ok()) return pred.status().WithContext(config.path() + ".where");
  return pred;
}

class FilterOperator : public Operator {
 public:
  explicit FilterOperator(std::unique_ptr<Expr> pred) : pred_(std::move(pred)) {}
  Status Process(RowBatch& batch, Output& out) override {
    size_t keep = 0;
    for (size_t r = 0; r < batch.size(); ++r) {
      pred_->Eval(batch[r], result_);
      if (result_.type == Type::kBool && result_.b) {
        if (keep != r) batch.SwapRows(keep, r);
        ++keep;
      }
    }
    counters_.Add("filtered", static_cast<int64_t>(batch.size() - keep));
    batch.Truncate(keep);
    if (keep == 0) return Status::Ok();
    return out.Emit(batch);
  }
  Status Open(const OperatorContext& ctx) override { return counters_.Restore(ctx.restored); }
  Status Snapshot(int64_t, OperatorSnapshot* out) override {
    counters_.Snapshot(out);
    return Status::Ok();
  }

 private:
  RecordCounters counters_;
  std::unique_ptr<Expr> pred_;
  Value result_;
};

class FilterFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_RETURN_IF_ERROR(PlanFilter(config, input).status());
    return input;
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(auto pred, PlanFilter(config, input));
    return std::unique_ptr<Operator>(std::make_unique<FilterOperator>(std::move(pred)));
  }
};

// project config: fields: [names] (a subset of the input, in the order given).
Result<std::vector<int>> PlanProject(const Config& config, const Schema& input, Schema* output) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys({"fields"}));
  WEIR_ASSIGN_OR_RETURN(auto names, config.GetStringList("fields"));
  if (names.empty()) return Status::InvalidArgument(config.path() + ".fields: required, non-empty");
  std::vector<int> idx;
  for (const auto& n : names) {
    int i = input.IndexOf(n);
    if (i < 0) {
      return Status::InvalidArgument(config.path() + ".fields: unknown field '" + n +
                                     "' (input fields: " + input.FieldNames() + ")");
    }
    if (output->IndexOf(n) >= 0) {
      return Status::InvalidArgument(config.path() + ".fields: field '" + n + "' listed twice");
    }
    output->Add(n, input.field(i).type);
    idx.push_back(i);
  }
  return idx;
}

class ProjectOperator : public Operator {
 public:
  explicit ProjectOperator(std::vector<int> idx) : idx_(std::move(idx)) {}
  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    for (size_t r = 0; r < in.size(); ++r) {
      Row& dst = out_.Append(idx_.size());
      for (size_t i = 0; i < idx_.size(); ++i) std::swap(dst[i], in[r][idx_[i]]);
    }
    return out.Emit(out_);
  }

 private:
  std::vector<int> idx_;
  RowBatch out_;
};

class ProjectFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    Schema out;
    WEIR_RETURN_IF_ERROR(PlanProject(config, input, &out).status());
    return out;
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    Schema out;
    WEIR_ASSIGN_OR_RETURN(auto idx, PlanProject(config, input, &out));
    return std::unique_ptr<Operator>(std::make_unique<ProjectOperator>(std::move(idx)));
  }
};

}  // namespace

void RegisterMapFilterProject(OperatorRegistry& r) {
  r.Register("map", std::make_unique<MapFactory>());
  r.Register("filter", std::make_unique<FilterFactory>());
  r.Register("project", std::make_unique<ProjectFactory>());
}

}  // namespace weir
