// libFuzzer target: partition rendering of the file sinks (weir/partition_template.h). The
// template text and the row values both come from the input: "<template>\n<string value>\n
// <8 bytes int64><8 bytes timestamp ms>". Values come from rows (untrusted data); templates
// from job files. Contract besides sanitizers: a rendered directory is a safe relative path
// (no empty, "." or ".." level, no leading '/'), within kMaxDirBytes, each level within
// kMaxSegmentBytes; a template that parses renders the same directory twice for the same row.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "weir/partition_template.h"
#include "weir/paths.h"
#include "weir/types.h"

namespace {

const weir::Schema& InputSchema() {
  static const weir::Schema s({{"ts", weir::Type::kTimestamp},
                               {"app", weir::Type::kString},
                               {"n", weir::Type::kInt64},
                               {"ms", weir::Type::kInt64},
                               {"ok", weir::Type::kBool},
                               {"raw", weir::Type::kBytes},
                               {"d", weir::Type::kDouble}});
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  weir::fuzz::Quiet();
  auto seed = [](const std::string& tmpl, const std::string& app, int64_t n, int64_t ts) {
    std::string s = tmpl + "\n" + app + "\n";
    s.append(reinterpret_cast<const char*>(&n), 8);
    s.append(reinterpret_cast<const char*>(&ts), 8);
    return s;
  };
  weir::fuzz::MaybeWriteSeeds(
      {{"hive", seed("dt={ts:%Y-%m-%d}/hour={ts:%H}/app={app}", "web", 3, 1764460800123)},
       {"dotdot", seed("{app}/{n}", "..", -1, 0)},
       {"escape", seed("x={app}/{ms:%F %T}/{ok}", "a/b%c\x01\xff", INT64_MIN, INT64_MAX)},
       {"literal", seed("fixed/{raw}/{d}", "", 0, -1)}});
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  if (nl == std::string_view::npos) return 0;
  const std::string_view tmpl = in.substr(0, nl);
  std::string_view rest = in.substr(nl + 1);
  const size_t nl2 = rest.find('\n');
  const std::string_view app = rest.substr(0, nl2);
  rest = nl2 == std::string_view::npos ? std::string_view() : rest.substr(nl2 + 1);
  int64_t n = 0, ts = 0;
  if (rest.size() >= 8) std::memcpy(&n, rest.data(), 8);
  if (rest.size() >= 16) std::memcpy(&ts, rest.data() + 8, 8);

  auto t = weir::PartitionTemplate::Parse(tmpl, InputSchema(), "fuzz.partition");
  if (!t.ok()) return 0;
  weir::Row row(InputSchema().size());
  row[0] = weir::Value::Timestamp(ts);
  row[1] = weir::Value::String(std::string(app));
  row[2] = weir::Value::Int64(n);
  row[3] = weir::Value::Int64(ts);
  row[4] = weir::Value::Bool((n & 1) != 0);
  if (!(n & 2)) row[5] = weir::Value::Bytes(std::string(app));
  row[6] = weir::Value::Double(static_cast<double>(n) / 7.0);
  std::string dir, reason, again;
  int64_t start = 0, start2 = 0;
  if (!t->Render(row, &dir, &start, &reason)) return 0;
  if (dir.empty()) {
    if (!t->empty()) std::abort();
    return 0;
  }
  if (!weir::IsSafeRelativePath(dir) || dir.size() > weir::PartitionTemplate::kMaxDirBytes) {
    std::abort();
  }
  size_t level = 0;
  for (size_t i = 0; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') {
      if (i - level > weir::PartitionTemplate::kMaxSegmentBytes) std::abort();
      level = i + 1;
    }
  }
  if (!t->Render(row, &again, &start2, &reason) || again != dir || start2 != start) std::abort();
  if (t->time_only()) (void)t->RenderTime(start);
  return 0;
}
