// parse: turns raw messages (e.g. a Kafka source's `value`) into typed rows: JSON (fields by
// path, nested allowed; read with simdjson On-Demand, see json_fields.h for what a document must
// be: valid UTF-8, at most 64 levels deep and 16 MiB, no duplicate key on a wanted path), CSV
// (fields by column) or raw text, with type conversions. Records that
// fail are dirty: counted, sampled into the log (rate-limited), and emitted with the reason and
// their origin (topic, partition, offset when the input has them) to the side output "dirty"
// (an edge `from: <id>.dirty` to any sink), or the job fails, as configured.
//
// config:
//   field: value                      the input field to parse (string)
//   format: json | csv | raw
//   csv: {delimiter: ",", quote: "\""}
//   fields: [{name, type, path (json, default: name), column (csv, 0-based), format (timestamps:
//            iso8601 (default for text), epoch_ms (default for numbers), epoch_s, or a time
//            pattern such as "%Y-%m-%d %H:%M:%S"), required (default true), default}]
//            Conversions follow weir/text_formats.h (docs/time-and-numbers.md).
//            raw: one field, of type string, holding the whole value
//   keep: [input fields carried over, e.g. topic, partition, offset]
//   record_id: true                   adds record_id = "<topic>/<partition>/<offset>" (needs
//                                     those input fields): unique per record, for dedup/order
//   on_error: dirty (default) | fail | skip
//   dirty: {path: <dir>, max_ratio: 0 (off), window: 10000}   path: shorthand for an edge from
//          the dirty output to a committing_file sink {path: <dir>, prefix: dirty} (vertex
//          `<id>-dirty-sink`, same parallelism; exactly once with the job's checkpoints); the
//          threshold: the task fails when more than max_ratio of the last `window` records
//          were dirty.
//
// Output schema: `fields`, then `keep`, then record_id. Side output "dirty" (on_error: dirty
// only): reason, raw, then topic, partition, offset as far as the input has them; the job must
// consume it (an edge or dirty.path). One instance per subtask thread.
#include <spdlog/spdlog.h>

#include <deque>

#include "json_fields.h"
#include "text_fields.h"
#include "weir/logging.h"
#include "weir/operators.h"
#include "weir/record_counters.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

const ModuleLog Log("connectors");

// Before side outputs, parse embedded its dirty sink and kept that sink's operator state under
// this prefix; restore hands such lists to the `<id>-dirty-sink` vertex (StateMigration).
constexpr std::string_view kLegacyDirtyStatePrefix = "dirty/";
constexpr std::string_view kDirtyOutput = "dirty";

enum class Format { kJson, kCsv, kRaw };
enum class OnError { kDirty, kFail, kSkip };
struct ParsePlan {
  std::string field = "value";
  int input_index = -1;
  Format format = Format::kJson;
  char delimiter = ',';
  char quote = '"';
  std::vector<FieldSpec> fields;
  std::vector<std::string> keep;
  std::vector<int> keep_index;
  bool record_id = false;
  int topic_index = -1, partition_index = -1, offset_index = -1;
  OnError on_error = OnError::kDirty;
  std::string dirty_path;
  double max_ratio = 0;
  int64_t window = 10000;
  Schema output;
  Schema dirty_schema;            // reason, raw, then the origin fields the input has
  std::vector<int> dirty_origin;  // input indices of the origin fields
};

// ---------------------------------------------------------------- plan
// One entry of `fields:`, checked against the fields parsed so far (p.output).
Result<FieldSpec> PlanField(const Config& fc, const ParsePlan& p) {
  WEIR_RETURN_IF_ERROR(
      fc.CheckKeys({"name", "type", "path", "column", "format", "required", "default"}));
  FieldSpec f;
  WEIR_ASSIGN_OR_RETURN(f.name, fc.GetString("name"));
  WEIR_ASSIGN_OR_RETURN(f.type, ParseFieldType(fc));
  if (p.output.IndexOf(f.name) >= 0) {
    return Status::InvalidArgument(fc.path() + ".name: duplicate field '" + f.name + "'");
  }
  WEIR_ASSIGN_OR_RETURN(f.path, fc.GetString("path", f.name));
  if (f.path.empty() || f.path.front() == '.' || f.path.back() == '.' ||
      f.path.find("..") != std::string::npos) {
    return Status::InvalidArgument(fc.path() + ".path: '" + f.path +
                                   "' is not a dotted path like a.b.0.c");
  }
  WEIR_ASSIGN_OR_RETURN(int64_t column, fc.GetInt("column", -1));
  if (p.format == Format::kCsv) {
    if (column < 0 || column > 100000) {
      return Status::InvalidArgument(fc.path() + ".column: csv fields need a 0-based column");
    }
    f.column = static_cast<int>(column);
  }
  if (p.format == Format::kRaw && f.type != Type::kString && f.type != Type::kBytes) {
    return Status::InvalidArgument(fc.path() + ".type: raw format gives a string or bytes");
  }
  WEIR_RETURN_IF_ERROR(ParseTimeFormat(fc, f));
  WEIR_ASSIGN_OR_RETURN(f.required, fc.GetBool("required", true));
  if (fc.Has("default")) {
    WEIR_ASSIGN_OR_RETURN(std::string d, fc.GetString("default"));
    std::string reason;
    if (!ConvertText(f, d, false, &f.def, &reason)) {
      return Status::InvalidArgument(fc.path() + ".default: " + reason);
    }
    f.has_default = true;
    f.required = false;
  }
  return f;
}

// `keep:`, `record_id:`, `on_error:` and `dirty:`, and the dirty output's schema.
Status PlanOutputs(const Config& config, const Schema& input, ParsePlan& p) {
  WEIR_ASSIGN_OR_RETURN(p.keep, config.GetStringList("keep"));
  for (const std::string& k : p.keep) {
    const int i = input.IndexOf(k);
    if (i < 0) {
      return Status::InvalidArgument(config.path() + ".keep: unknown input field '" + k +
                                     "' (input fields: " + input.FieldNames() + ")");
    }
    if (p.output.IndexOf(k) >= 0) {
      return Status::InvalidArgument(config.path() + ".keep: '" + k + "' is also a parsed field");
    }
    p.keep_index.push_back(i);
    p.output.Add(k, input.field(static_cast<size_t>(i)).type);
  }
  p.topic_index = input.IndexOf("topic");
  p.partition_index = input.IndexOf("partition");
  p.offset_index = input.IndexOf("offset");
  WEIR_ASSIGN_OR_RETURN(p.record_id, config.GetBool("record_id", false));
  if (p.record_id) {
    if (p.topic_index < 0 || p.partition_index < 0 || p.offset_index < 0) {
      return Status::InvalidArgument(config.path() +
                                     ".record_id: needs input fields topic, "
                                     "partition and offset (a kafka source)");
    }
    if (p.output.IndexOf("record_id") >= 0) {
      return Status::InvalidArgument(config.path() +
                                     ".record_id: a field is already named record_id");
    }
    p.output.Add("record_id", Type::kString);
  }
  WEIR_ASSIGN_OR_RETURN(std::string on_error, config.GetString("on_error", std::string("dirty")));
  if (on_error == "dirty") {
    p.on_error = OnError::kDirty;
  } else if (on_error == "fail") {
    p.on_error = OnError::kFail;
  } else if (on_error == "skip") {
    p.on_error = OnError::kSkip;
  } else {
    return Status::InvalidArgument(
        config.path() + ".on_error: expected dirty, fail or skip, got '" + on_error + "'");
  }
  WEIR_ASSIGN_OR_RETURN(Config dirty, config.GetMap("dirty"));
  WEIR_RETURN_IF_ERROR(dirty.CheckKeys({"path", "max_ratio", "window"}));
  WEIR_ASSIGN_OR_RETURN(p.dirty_path, dirty.GetString("path", std::string()));
  WEIR_ASSIGN_OR_RETURN(p.max_ratio, dirty.GetDouble("max_ratio", 0.0));
  WEIR_ASSIGN_OR_RETURN(p.window, dirty.GetInt("window", 10000));
  if (p.max_ratio < 0 || p.max_ratio > 1) {
    return Status::InvalidArgument(dirty.path() + ".max_ratio: must be between 0 and 1");
  }
  if (p.window < 1 || p.window > 100000000) {
    return Status::InvalidArgument(dirty.path() + ".window: must be 1..100000000 records");
  }
  p.dirty_schema.Add("reason", Type::kString);
  p.dirty_schema.Add("raw", Type::kString);
  for (const char* origin : {"topic", "partition", "offset"}) {
    const int i = input.IndexOf(origin);
    if (i < 0) continue;
    p.dirty_origin.push_back(i);
    p.dirty_schema.Add(origin, input.field(static_cast<size_t>(i)).type);
  }
  return Status::Ok();
}

Result<ParsePlan> PlanParse(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys(
      {"field", "format", "csv", "fields", "keep", "record_id", "on_error", "dirty"}));
  ParsePlan p;
  WEIR_ASSIGN_OR_RETURN(p.field, config.GetString("field", std::string("value")));
  p.input_index = input.IndexOf(p.field);
  if (p.input_index < 0) {
    return Status::InvalidArgument(config.path() + ".field: unknown input field '" + p.field +
                                   "' (input fields: " + input.FieldNames() + ")");
  }
  const Type in_type = input.field(static_cast<size_t>(p.input_index)).type;
  if (in_type != Type::kString && in_type != Type::kBytes) {
    return Status::InvalidArgument(config.path() + ".field: '" + p.field + "' is " +
                                   TypeName(in_type) + "; parse reads strings or bytes");
  }
  WEIR_ASSIGN_OR_RETURN(std::string format, config.GetString("format"));
  if (format == "json") {
    p.format = Format::kJson;
  } else if (format == "csv") {
    p.format = Format::kCsv;
  } else if (format == "raw") {
    p.format = Format::kRaw;
  } else {
    return Status::InvalidArgument(config.path() + ".format: expected json, csv or raw, got '" +
                                   format + "'");
  }
  WEIR_ASSIGN_OR_RETURN(Config csv, config.GetMap("csv"));
  WEIR_ASSIGN_OR_RETURN(CsvDialect dialect, ParseCsvDialect(csv));
  p.delimiter = dialect.delimiter;
  p.quote = dialect.quote;
  WEIR_ASSIGN_OR_RETURN(auto fields, config.GetMapList("fields"));
  if (fields.empty()) return Status::InvalidArgument(config.path() + ".fields: required");
  if (p.format == Format::kRaw && fields.size() != 1) {
    return Status::InvalidArgument(config.path() + ".fields: raw format takes exactly one field");
  }
  for (const Config& fc : fields) {
    WEIR_ASSIGN_OR_RETURN(FieldSpec f, PlanField(fc, p));
    p.output.Add(f.name, f.type);
    p.fields.push_back(std::move(f));
  }
  WEIR_RETURN_IF_ERROR(PlanOutputs(config, input, p));
  return p;
}

// The dirty.path shorthand's sink config: a committing_file sink of JSON lines under the path.
Result<Config> DirtySinkConfig(const ParsePlan& p, const std::string& where) {
  std::string yaml = "{path: \"";
  for (char c : p.dirty_path) {
    if (c == '"' || c == '\\') yaml.push_back('\\');
    yaml.push_back(c);
  }
  yaml += "\", prefix: dirty}";
  return Config::Parse(yaml, where + ".dirty");
}

class ParseOperator : public Operator {
 public:
  explicit ParseOperator(ParsePlan plan) : p_(std::move(plan)) {
    if (p_.format == Format::kJson) {
      std::vector<std::string> paths;
      for (const auto& f : p_.fields) paths.push_back(f.path);
      json_ = std::make_unique<JsonFields>(paths);
    }
  }

  Status Open(const OperatorContext& ctx) override {
    log_prefix_ = ctx.log_prefix;
    WEIR_RETURN_IF_ERROR(counters_.Restore(ctx.restored));
    // Resolved once; null when the operator runs without a task (rows are then dropped).
    dirty_out_ = ctx.SideOutput(kDirtyOutput);
    return Status::Ok();
  }

  Status Process(RowBatch& batch, Output& out) override {
    out_.Clear();
    dirty_.Clear();
    const size_t width = p_.output.size();
    for (size_t r = 0; r < batch.size(); ++r) {
      const Row& in = batch[r];
      Row& o = out_.Append(width);
      reason_.clear();
      if (!ParseRow(in, o)) {
        out_.Truncate(out_.size() - 1);
        WEIR_RETURN_IF_ERROR(OnDirty(in));
        continue;
      }
      size_t k = p_.fields.size();
      for (int i : p_.keep_index) o[k++].CopyFrom(in[static_cast<size_t>(i)]);
      if (p_.record_id) {
        Value& id = o[k];
        id.type = Type::kString;
        id.s.clear();
        id.s.append(in[static_cast<size_t>(p_.topic_index)].s);
        id.s.push_back('/');
        id.s.append(std::to_string(in[static_cast<size_t>(p_.partition_index)].i));
        id.s.push_back('/');
        id.s.append(std::to_string(in[static_cast<size_t>(p_.offset_index)].i));
      }
      WEIR_RETURN_IF_ERROR(CountForRatio(false));
    }
    if (!dirty_.empty() && dirty_out_ != nullptr) WEIR_RETURN_IF_ERROR(dirty_out_->Emit(dirty_));
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override {
    counters_.Snapshot(out);
    return Status::Ok();
  }

 private:
  bool Missing(const FieldSpec& f, Value& v) {
    if (f.has_default) {
      v.CopyFrom(f.def);
      return true;
    }
    if (!f.required) {
      v.SetNull();
      return true;
    }
    reason_ = "missing field '" + f.name + "'" +
              (p_.format == Format::kJson ? " (path " + f.path + ")" : "");
    return false;
  }

  bool ParseRow(const Row& in, Row& o) {
    const Value& src = in[static_cast<size_t>(p_.input_index)];
    if (src.is_null()) {
      reason_ = "the input field '" + p_.field + "' is null";
      return false;
    }
    std::string_view text = src.s;
    switch (p_.format) {
      case Format::kRaw:
        o[0].SetString(text);
        if (p_.fields[0].type == Type::kBytes) o[0].type = Type::kBytes;
        return true;
      case Format::kJson: {
        if (!json_->Parse(text, &reason_)) {
          // A duplicate key on a field's path names the field, like every field error.
          if (json_->error_path() >= 0) {
            reason_.insert(
                0, "field '" + p_.fields[static_cast<size_t>(json_->error_path())].name + "': ");
          }
          return false;
        }
        for (size_t i = 0; i < p_.fields.size(); ++i) {
          const FieldSpec& f = p_.fields[i];
          const JsonFields::Value& v = json_->value(i);
          switch (v.kind) {
            case JsonFields::Kind::kMissing:
            case JsonFields::Kind::kNull:
              if (!Missing(f, o[i])) return false;
              break;
            case JsonFields::Kind::kBool:
              if (!ConvertText(f, v.b ? "true" : "false", false, &o[i], &reason_)) return false;
              break;
            case JsonFields::Kind::kNumber:
              if (!ConvertText(f, v.text, true, &o[i], &reason_)) return false;
              break;
            case JsonFields::Kind::kString:
              if (!ConvertText(f, v.text, false, &o[i], &reason_)) return false;
              break;
            case JsonFields::Kind::kObject:
            case JsonFields::Kind::kArray:
              if (f.type != Type::kString && f.type != Type::kBytes) {
                reason_ = "field '" + f.name + "': an object or array is not a " + TypeName(f.type);
                return false;
              }
              o[i].SetString(v.text);
              break;
          }
        }
        return true;
      }
      case Format::kCsv: {
        if (!SplitCsv(text, p_.delimiter, p_.quote, &cells_, &scratch_, &reason_)) return false;
        for (size_t i = 0; i < p_.fields.size(); ++i) {
          const FieldSpec& f = p_.fields[i];
          if (static_cast<size_t>(f.column) >= cells_.size() || cells_[f.column].empty()) {
            if (static_cast<size_t>(f.column) >= cells_.size() && f.required && !f.has_default) {
              reason_ = "CSV: no column " + std::to_string(f.column) + " for field '" + f.name +
                        "' (the record has " + std::to_string(cells_.size()) + ")";
              return false;
            }
            if (!Missing(f, o[i])) return false;
            continue;
          }
          if (!ConvertText(f, cells_[f.column], false, &o[i], &reason_)) return false;
        }
        return true;
      }
    }
    return false;
  }

  Status OnDirty(const Row& in) {
    ++dirty_count_;
    counters_.Add("dirty", 1);
    const int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    if (logged_ < 5 || now - last_log_ms_ >= 10000) {
      ++logged_;
      last_log_ms_ = now;
      std::string origin;
      if (p_.offset_index >= 0 && p_.topic_index >= 0 && p_.partition_index >= 0) {
        origin = " at " + in[static_cast<size_t>(p_.topic_index)].s + "/" +
                 std::to_string(in[static_cast<size_t>(p_.partition_index)].i) + "@" +
                 std::to_string(in[static_cast<size_t>(p_.offset_index)].i);
      }
      Log()->warn("{} parse: dirty record ({} so far){}: {}", log_prefix_, dirty_count_, origin,
                  reason_);
    }
    if (p_.on_error == OnError::kFail) {
      return Status::InvalidArgument("parse: bad record: " + reason_ +
                                     " (on_error: fail; use on_error: dirty to set it aside)");
    }
    if (p_.on_error == OnError::kDirty) {
      Row& d = dirty_.Append(p_.dirty_schema.size());
      d[0].SetString(reason_);
      const Value& src = in[static_cast<size_t>(p_.input_index)];
      if (src.is_null()) {
        d[1].SetNull();
      } else {
        d[1].SetString(src.s);
      }
      size_t k = 2;
      for (int i : p_.dirty_origin) d[k++].CopyFrom(in[static_cast<size_t>(i)]);
    }
    return CountForRatio(true);
  }

  // The dirty ratio over the last `window` records; fails the task past max_ratio.
  Status CountForRatio(bool dirty) {
    if (p_.max_ratio <= 0) return Status::Ok();
    recent_.push_back(dirty);
    recent_dirty_ += dirty;
    if (static_cast<int64_t>(recent_.size()) > p_.window) {
      recent_dirty_ -= recent_.front();
      recent_.pop_front();
    }
    if (static_cast<int64_t>(recent_.size()) == p_.window &&
        static_cast<double>(recent_dirty_) > p_.max_ratio * static_cast<double>(p_.window)) {
      return Status::FailedPrecondition("parse: " + std::to_string(recent_dirty_) +
                                        " of the last " + std::to_string(p_.window) +
                                        " records were dirty, more than dirty.max_ratio " +
                                        std::to_string(p_.max_ratio) + "; last reason: " + reason_);
    }
    return Status::Ok();
  }

  ParsePlan p_;
  Output* dirty_out_ = nullptr;
  std::unique_ptr<JsonFields> json_;
  RecordCounters counters_;
  std::string log_prefix_;
  RowBatch out_, dirty_;
  std::string reason_;
  std::vector<std::string_view> cells_;
  std::string scratch_;
  int64_t dirty_count_ = 0, logged_ = 0, last_log_ms_ = 0;
  std::deque<bool> recent_;
  int64_t recent_dirty_ = 0;
};

class ParseFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(ParsePlan p, PlanParse(config, input));
    return p.output;
  }
  // "dirty" with on_error: dirty; the job must take it somewhere.
  Result<std::vector<SideOutputSpec>> SideOutputs(const Config& config,
                                                  const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(ParsePlan p, PlanParse(config, input));
    std::vector<SideOutputSpec> out;
    if (p.on_error != OnError::kDirty) return out;
    out.push_back({std::string(kDirtyOutput), p.dirty_schema,
                   config.path() + ".dirty.path: required with on_error: dirty (where bad "
                                   "records go), or an edge from this vertex's dirty output "
                                   "(from: <vertex id>.dirty) to a sink; use on_error: skip to "
                                   "drop them (counted) or fail to stop the job"});
    return out;
  }
  // dirty.path: the dirty output into a committing_file sink, as before side outputs (same
  // files, same exactly-once; its state moves from this vertex's "dirty/" lists on restore).
  Result<std::vector<ImplicitSideSink>> ImplicitSideSinks(const Config& config) const override {
    std::vector<ImplicitSideSink> out;
    WEIR_ASSIGN_OR_RETURN(Config dirty, config.GetMap("dirty"));
    WEIR_ASSIGN_OR_RETURN(std::string path, dirty.GetString("path", std::string()));
    WEIR_ASSIGN_OR_RETURN(std::string on_error, config.GetString("on_error", std::string("dirty")));
    if (path.empty() || on_error != "dirty") return out;
    ParsePlan p;
    p.dirty_path = path;
    WEIR_ASSIGN_OR_RETURN(Config sink_config, DirtySinkConfig(p, config.path()));
    out.push_back({std::string(kDirtyOutput), "committing_file", std::move(sink_config),
                   std::string(kLegacyDirtyStatePrefix)});
    return out;
  }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(ParsePlan p, PlanParse(config, input));
    return std::unique_ptr<Operator>(std::make_unique<ParseOperator>(std::move(p)));
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeParseFactory() {
  return std::make_unique<ParseFactory>();
}

}  // namespace weir
