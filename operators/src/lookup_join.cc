// lookup_join: every input row joined with a bounded side table read from a CSV file (Flink's
// lookup join against a filesystem table, `JOIN t FOR SYSTEM_TIME AS OF proctime ON ...`).
//
// config:
//   path: <file>              the side input, CSV (read once per subtask at Open, and
//                             again every `reload` if set)
//   schema: [{name, type, format}]   its columns in order (types and timestamp formats as
//                             parse's fields, text_fields.h)
//   csv: {delimiter, quote}   as parse's (default "," and '"'); header: true skips line 1
//   key: <side field>         the side table's key (int64, timestamp, bool, string or bytes)
//   lookup: <expression>      over the input row, of the key's type (e.g. "auction % 10000")
//   kind: inner | left        left: a miss gives nulls (default inner: a miss is dropped and
//                             counted "filtered")
//   max_bytes: 64mb           files larger are refused at Open (at most 1gb)
//   reload: <duration>        optional, at least 1s: read the file again every so often in
//                             processing time (as Flink's lookup cache TTL); the new table
//                             replaces the old one whole; a reload that fails fails the task
//
// Output: the input's fields, then the side table's fields but the key (a name the input has
// already becomes right_<name>, as the joins rename). The table is an immutable hash map from
// key to row, built at Open; no keyed state (the file is read again on restore), so the vertex
// rescales freely and needs no partitioning. Per batch: one expression evaluation and one hash
// probe per row, output rows and values reused (no allocation in the steady state).
// One instance per subtask thread.
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "join_plan.h"
#include "text_fields.h"
#include "weir/expr.h"
#include "weir/logging.h"
#include "weir/operators.h"
#include "weir/record_counters.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

const ModuleLog Log("operators");

constexpr int64_t kDefaultMaxBytes = int64_t{64} << 20;
constexpr int64_t kMaxMaxBytes = int64_t{1} << 30;

struct LookupPlan {
  std::string path;
  CsvDialect csv;
  bool header = false;
  std::vector<FieldSpec> side;  // the file's columns, in order
  int key = -1;                 // index into side
  std::vector<int> carried;     // side columns in the output (all but the key), in order
  std::unique_ptr<Expr> lookup;
  bool left_outer = false;
  int64_t max_bytes = kDefaultMaxBytes;
  int64_t reload_ms = 0;  // 0: never
  Schema output;
};

bool IntegerKey(Type t) {
  return t == Type::kInt64 || t == Type::kTimestamp || t == Type::kBool;
}

// An integer-like key's value (a bool sets only the union's `b`).
int64_t IntegerOf(const Value& v) {
  return v.type == Type::kBool ? int64_t{v.b} : v.i;
}

// The plan of a lookup_join config against its input (no file access: the file is read on the
// task managers, at Open).
Result<LookupPlan> PlanLookup(const Config& config, const Schema& input) {
  WEIR_RETURN_IF_ERROR(config.CheckKeys(
      {"path", "schema", "csv", "header", "key", "lookup", "kind", "max_bytes", "reload"}));
  LookupPlan p;
  WEIR_ASSIGN_OR_RETURN(p.path, config.GetString("path"));
  if (p.path.empty() || p.path.find('\0') != std::string::npos) {
    return Status::InvalidArgument(config.path() + ".path: must be a file name");
  }
  WEIR_ASSIGN_OR_RETURN(Config csv, config.GetMap("csv"));
  WEIR_ASSIGN_OR_RETURN(p.csv, ParseCsvDialect(csv));
  WEIR_ASSIGN_OR_RETURN(p.header, config.GetBool("header", false));
  WEIR_ASSIGN_OR_RETURN(p.max_bytes, config.GetBytes("max_bytes", kDefaultMaxBytes));
  if (p.max_bytes < 1 || p.max_bytes > kMaxMaxBytes) {
    return Status::InvalidArgument(config.path() + ".max_bytes: must be 1 byte .. 1gb");
  }
  WEIR_ASSIGN_OR_RETURN(p.reload_ms, config.GetDurationMs("reload", 0));
  if (config.Has("reload") && p.reload_ms < 1000) {
    return Status::InvalidArgument(config.path() + ".reload: must be at least 1s");
  }
  WEIR_ASSIGN_OR_RETURN(std::string kind, config.GetString("kind", std::string("inner")));
  if (kind != "inner" && kind != "left") {
    return Status::InvalidArgument(config.path() + ".kind: expected inner or left, got '" + kind +
                                   "'");
  }
  p.left_outer = kind == "left";

  WEIR_ASSIGN_OR_RETURN(auto schema, config.GetMapList("schema"));
  if (schema.size() < 2) {
    return Status::InvalidArgument(config.path() +
                                   ".schema: required, the key and at least one other column "
                                   "([{name, type}], in the file's order)");
  }
  Schema side_schema;
  for (const Config& fc : schema) {
    WEIR_RETURN_IF_ERROR(fc.CheckKeys({"name", "type", "format"}));
    FieldSpec f;
    WEIR_ASSIGN_OR_RETURN(f.name, fc.GetString("name"));
    if (side_schema.IndexOf(f.name) >= 0) {
      return Status::InvalidArgument(fc.path() + ".name: duplicate field '" + f.name + "'");
    }
    WEIR_ASSIGN_OR_RETURN(f.type, ParseFieldType(fc));
    WEIR_RETURN_IF_ERROR(ParseTimeFormat(fc, f));
    f.column = static_cast<int>(p.side.size());
    f.required = false;  // an empty cell is null (the key's is an error)
    side_schema.Add(f.name, f.type);
    p.side.push_back(std::move(f));
  }

  WEIR_ASSIGN_OR_RETURN(std::string key, config.GetString("key"));
  p.key = side_schema.IndexOf(key);
  if (p.key < 0) {
    return Status::InvalidArgument(config.path() + ".key: unknown field '" + key +
                                   "' (schema fields: " + side_schema.FieldNames() + ")");
  }
  const Type key_type = p.side[static_cast<size_t>(p.key)].type;
  if (!IntegerKey(key_type) && key_type != Type::kString && key_type != Type::kBytes) {
    return Status::InvalidArgument(config.path() + ".key: field '" + key + "' is " +
                                   TypeName(key_type) +
                                   "; a lookup key is an int64, timestamp, bool, string or bytes");
  }
  WEIR_ASSIGN_OR_RETURN(std::string lookup, config.GetString("lookup"));
  auto compiled = CompileExpr(lookup, input);
  if (!compiled.ok()) return compiled.status().WithContext(config.path() + ".lookup");
  p.lookup = std::move(compiled).value();
  if (p.lookup->type() != key_type) {
    return Status::InvalidArgument(
        config.path() + ".lookup: '" + lookup + "' is " + TypeName(p.lookup->type()) +
        " but key field '" + key + "' is " + TypeName(key_type) +
        " (they must have equal types; cast the expression, e.g. int64(...))");
  }

  p.output = input;
  for (size_t i = 0; i < p.side.size(); ++i) {
    if (static_cast<int>(i) == p.key) continue;
    WEIR_RETURN_IF_ERROR(AppendRightField(config, side_schema.field(i), p.output));
    p.carried.push_back(static_cast<int>(i));
  }
  return p;
}

// The side table: an immutable map from key to a row of the carried columns.
class SideTable {
 public:
  size_t size() const { return by_int_.size() + by_string_.size(); }

  // Reads and indexes the file of `p`. Errors name the config key, the file and the line (the
  // task puts the vertex before errors at Open).
  Status Load(const LookupPlan& p) {
    const std::string what = "config.path: side input '" + p.path + "'";
    std::error_code ec;
    const auto size = std::filesystem::file_size(p.path, ec);
    if (ec) return Status::NotFound(what + ": " + ec.message());
    if (static_cast<int64_t>(size) > p.max_bytes) {
      return Status::InvalidArgument(what + " is " + std::to_string(size) +
                                     " bytes, more than max_bytes (" + std::to_string(p.max_bytes) +
                                     ")");
    }
    std::string data;
    WEIR_RETURN_IF_ERROR(ReadBounded(p, what, &data));
    width_ = p.carried.size();
    std::vector<std::string_view> cells;
    std::string scratch, reason;
    Row row(p.side.size());
    int64_t line_no = 0;
    size_t pos = 0;
    while (pos < data.size()) {
      size_t end = data.find('\n', pos);
      if (end == std::string::npos) end = data.size();
      std::string_view line(data.data() + pos, end - pos);
      pos = end + 1;
      ++line_no;
      if (line_no == 1 && p.header) continue;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      auto bad = [&](const std::string& why) {
        return Status::InvalidArgument(what + " line " + std::to_string(line_no) + ": " + why);
      };
      if (!SplitCsv(line, p.csv.delimiter, p.csv.quote, &cells, &scratch, &reason)) {
        return bad(reason);
      }
      if (cells.size() != p.side.size()) {
        return bad(std::to_string(cells.size()) + " column(s), the schema has " +
                   std::to_string(p.side.size()));
      }
      for (size_t i = 0; i < p.side.size(); ++i) {
        if (p.side[i].type == Type::kString && FirstInvalidUtf8(cells[i]) != cells[i].size()) {
          return bad("field '" + p.side[i].name + "': not valid UTF-8");
        }
        if (cells[i].empty() && p.side[i].type != Type::kString && p.side[i].type != Type::kBytes) {
          row[i].SetNull();
        } else if (!ConvertText(p.side[i], cells[i], false, &row[i], &reason)) {
          return bad(reason);
        }
      }
      const Value& k = row[static_cast<size_t>(p.key)];
      if (k.is_null()) return bad("the key '" + p.side[p.key].name + "' is empty");
      const auto index = static_cast<uint32_t>(values_.size() / width_);
      const bool fresh = k.type == Type::kString || k.type == Type::kBytes
                             ? by_string_.emplace(k.s, index).second
                             : by_int_.emplace(IntegerOf(k), index).second;
      if (!fresh) return bad("duplicate key '" + k.ToString() + "'");
      for (int c : p.carried) values_.push_back(row[static_cast<size_t>(c)]);
    }
    return Status::Ok();
  }

  // The carried values of `key`'s row (width() of them), or nullptr (a null key: none).
  const Value* Find(const Value& key) const {
    uint32_t index;
    if (key.type == Type::kString || key.type == Type::kBytes) {
      auto it = by_string_.find(std::string_view(key.s));
      if (it == by_string_.end()) return nullptr;
      index = it->second;
    } else if (key.is_null()) {
      return nullptr;
    } else {
      auto it = by_int_.find(IntegerOf(key));
      if (it == by_int_.end()) return nullptr;
      index = it->second;
    }
    return values_.data() + static_cast<size_t>(index) * width_;
  }

 private:
  // The whole file, refusing one that grew past max_bytes since it was measured.
  static Status ReadBounded(const LookupPlan& p, const std::string& what, std::string* out) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(p.path.c_str(), "rb"), &std::fclose);
    if (!f) return Status::NotFound(what + ": cannot open it");
    char buf[1 << 16];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) {
      out->append(buf, n);
      if (static_cast<int64_t>(out->size()) > p.max_bytes) {
        return Status::InvalidArgument(what + " is more than max_bytes (" +
                                       std::to_string(p.max_bytes) + ")");
      }
    }
    if (std::ferror(f.get())) return Status::Internal(what + ": read error");
    return Status::Ok();
  }

  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<int64_t, uint32_t> by_int_;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> by_string_;
  std::vector<Value> values_;  // row-major, width_ per row
  size_t width_ = 0;
};

class LookupJoinOperator : public Operator {
 public:
  explicit LookupJoinOperator(LookupPlan plan) : p_(std::move(plan)) {}

  Status Open(const OperatorContext& ctx) override {
    log_prefix_ = ctx.log_prefix;
    vertex_ = ctx.vertex_id;
    WEIR_RETURN_IF_ERROR(counters_.Restore(ctx.restored));
    table_ = std::make_unique<SideTable>();
    WEIR_RETURN_IF_ERROR(table_->Load(p_));
    Log()->info("{} lookup_join: {} rows from '{}'", log_prefix_, table_->size(), p_.path);
    return Status::Ok();
  }

  // reload: the first call starts the period; each period the file is read into a new table
  // that replaces the old one once complete (both are held meanwhile).
  Status OnProcessingTime(int64_t now_ms, Output&) override {
    if (p_.reload_ms <= 0) return Status::Ok();
    if (next_reload_ms_ == 0) next_reload_ms_ = now_ms + p_.reload_ms;
    if (now_ms < next_reload_ms_) return Status::Ok();
    next_reload_ms_ = now_ms + p_.reload_ms;
    auto fresh = std::make_unique<SideTable>();
    if (Status st = fresh->Load(p_); !st.ok()) {
      return st.WithContext("vertex '" + vertex_ + "': lookup_join: reloading the side input");
    }
    table_ = std::move(fresh);
    Log()->info("{} lookup_join: reloaded {} rows from '{}'", log_prefix_, table_->size(), p_.path);
    return Status::Ok();
  }

  Status Process(RowBatch& in, Output& out) override {
    out_.Clear();
    const size_t width = p_.output.size();
    const size_t carried = p_.carried.size();
    int64_t misses = 0;
    for (size_t r = 0; r < in.size(); ++r) {
      Row& src = in[r];
      p_.lookup->Eval(src, key_);
      const Value* side = table_->Find(key_);
      if (side == nullptr && !p_.left_outer) {
        ++misses;
        continue;
      }
      Row& dst = out_.Append(width);
      const size_t n = src.size();
      for (size_t i = 0; i < n; ++i) std::swap(dst[i], src[i]);
      for (size_t i = 0; i < carried; ++i) {
        if (side == nullptr) {
          dst[n + i].SetNull();
        } else {
          dst[n + i].CopyFrom(side[i]);
        }
      }
    }
    if (misses > 0) counters_.Add("filtered", misses);
    if (out_.empty()) return Status::Ok();
    return out.Emit(out_);
  }

  Status Snapshot(int64_t, OperatorSnapshot* out) override {
    counters_.Snapshot(out);
    return Status::Ok();
  }

 private:
  LookupPlan p_;
  std::unique_ptr<SideTable> table_;
  std::string log_prefix_, vertex_;
  int64_t next_reload_ms_ = 0;  // reload: 0 until the first processing-time call
  RecordCounters counters_;
  RowBatch out_;
  Value key_;
};

class LookupJoinFactory : public OperatorFactory {
 public:
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(LookupPlan p, PlanLookup(config, input));
    return p.output;
  }
  std::vector<std::string> InputPathKeys() const override { return {"path"}; }
  Result<std::unique_ptr<Operator>> Create(const Config& config,
                                           const Schema& input) const override {
    WEIR_ASSIGN_OR_RETURN(LookupPlan p, PlanLookup(config, input));
    return std::unique_ptr<Operator>(std::make_unique<LookupJoinOperator>(std::move(p)));
  }
};

}  // namespace

std::unique_ptr<OperatorFactory> MakeLookupJoinFactory() {
  return std::make_unique<LookupJoinFactory>();
}

}  // namespace weir
