#include "weir/partition_template.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <limits>

#include "weir/text_formats.h"

namespace weir {
namespace {

constexpr int64_t kSecond = 1000;

bool ValidSegmentStart(std::string_view dir) {
  size_t start = 0;
  while (start <= dir.size()) {
    size_t end = dir.find('/', start);
    if (end == std::string_view::npos) end = dir.size();
    std::string_view seg = dir.substr(start, end - start);
    if (seg.empty() || seg == "." || seg == ".." || seg[0] == '.' || seg[0] == '_') return false;
    start = end + 1;
  }
  return true;
}

// Hive's FileUtils.charToEscape: the control characters, DEL, and what a path or Hive's own
// "key=value" parsing cannot hold.
constexpr std::array<bool, 256> kHiveEscape = [] {
  std::array<bool, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = true;
  for (unsigned char c : std::string_view("\"#%'*/:=?\\{[]^\x7f")) t[c] = true;
  return t;
}();

void AppendPercent(unsigned char c, std::string* out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  const char buf[3] = {'%', kHex[c >> 4], kHex[c & 15]};
  out->append(buf, 3);
}

}  // namespace

void AppendEscapedPartitionValue(std::string_view value, bool segment_start, std::string* out) {
  if (value.empty()) value = PartitionTemplate::kDefaultPartition;
  // A leading '.' would make ".", ".." or a hidden level, a leading '_' a hidden one.
  const bool lead = segment_start && (value[0] == '.' || value[0] == '_');
  bool clean = !lead;
  for (size_t i = 0; clean && i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    clean = c < 0x80 && !kHiveEscape[c];
  }
  if (clean) {  // the common case: no copy but the append
    out->append(value);
    return;
  }
  size_t i = 0;
  if (lead) {
    AppendPercent(static_cast<unsigned char>(value[0]), out);
    i = 1;
  }
  while (i < value.size()) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c < 0x80) {
      if (kHiveEscape[c]) {
        AppendPercent(c, out);
      } else {
        out->push_back(static_cast<char>(c));
      }
      ++i;
      continue;
    }
    const size_t n = Utf8SequenceLength(value, i);
    if (n == 0) {
      AppendPercent(c, out);  // not UTF-8: escaped byte by byte, never lost or mangled
      ++i;
    } else {
      out->append(value.substr(i, n));
      i += n;
    }
  }
}

bool PartitionComplete(int64_t end, int64_t delay_ms, int64_t watermark) {
  return static_cast<__int128>(end) - 1 + delay_ms <= watermark;
}

bool LastCompleteStart(int64_t watermark, int64_t delay_ms, int64_t granularity_ms,
                       int64_t* start) {
  // start + g - 1 + delay <= watermark, start a multiple of g; 128 bits hold every step.
  const __int128 g = granularity_ms;
  __int128 bound = static_cast<__int128>(watermark) + 1 - delay_ms - g;
  __int128 q = bound / g;
  if (bound % g != 0 && bound < 0) --q;
  const __int128 s = q * g;
  if (s < std::numeric_limits<int64_t>::min()) return false;
  *start = static_cast<int64_t>(s);  // <= watermark, so it fits
  return true;
}

Result<PartitionTemplate> PartitionTemplate::Parse(std::string_view text, const Schema& schema,
                                                   const std::string& where) {
  PartitionTemplate t;
  if (text.empty()) return t;
  if (text.front() == '/' || text.back() == '/') {
    return Status::InvalidArgument(where +
                                   ": must be a relative path without a leading or "
                                   "trailing '/', got '" +
                                   std::string(text) + "'");
  }
  size_t i = 0;
  std::string literal;
  int64_t finest = -1;
  bool any_field = false;
  t.time_only_ = true;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '}') {
      return Status::InvalidArgument(where + ": unmatched '}' at offset " + std::to_string(i));
    }
    if (c != '{') {
      if (c == '\0') return Status::InvalidArgument(where + ": contains a NUL byte");
      literal.push_back(c);
      ++i;
      continue;
    }
    const size_t close = text.find('}', i);
    if (close == std::string_view::npos) {
      return Status::InvalidArgument(where + ": unmatched '{' at offset " + std::to_string(i));
    }
    if (!literal.empty()) {
      t.parts_.push_back(Part{std::move(literal), -1, "", ""});
      literal.clear();
    }
    std::string_view inner = text.substr(i + 1, close - i - 1);
    std::string_view name = inner;
    std::string format;
    const size_t colon = inner.find(':');
    if (colon != std::string_view::npos) {
      name = inner.substr(0, colon);
      format = std::string(inner.substr(colon + 1));
    }
    const int fi = schema.IndexOf(name);
    if (fi < 0) {
      return Status::InvalidArgument(where + ": unknown field '" + std::string(name) +
                                     "' (input fields: " + schema.FieldNames() + ")");
    }
    const Type type = schema.field(static_cast<size_t>(fi)).type;
    if (!format.empty()) {
      if (type != Type::kTimestamp && type != Type::kInt64) {
        return Status::InvalidArgument(where + ": field '" + std::string(name) +
                                       "' has a time format but is " + TypeName(type) +
                                       " (needs a timestamp or an integer in milliseconds)");
      }
      Status valid = ValidateTimePattern(format, kFormatDirectives);
      if (!valid.ok()) {
        return valid.WithContext(where + ": field '" + std::string(name) + "'");
      }
      const int64_t g = TimePatternUnitMs(format);
      if (g < 0) {
        return Status::InvalidArgument(where + ": format '" + format + "' of field '" +
                                       std::string(name) + "' has no time specifier (e.g. %Y, %H)");
      }
      if (g > 0 && g < kSecond) {
        return Status::InvalidArgument(where + ": format '" + format + "' of field '" +
                                       std::string(name) +
                                       "' uses %f; partitions are at least a second long");
      }
      if (t.time_field_ >= 0 && t.time_field_ != fi) {
        return Status::InvalidArgument(where + ": time placeholders must all use one field ('" +
                                       schema.field(static_cast<size_t>(t.time_field_)).name +
                                       "' and '" + std::string(name) + "')");
      }
      t.time_field_ = fi;
      if (g > 0) finest = finest <= 0 ? g : std::min(finest, g);
      if (g == 0 && finest < 0) finest = 0;
    } else {
      if (type == Type::kBytes || type == Type::kDouble) {
        return Status::InvalidArgument(where + ": field '" + std::string(name) + "' is " +
                                       TypeName(type) +
                                       ", which makes poor directory names; use a string, "
                                       "integer, bool or formatted timestamp");
      }
      t.time_only_ = false;
    }
    any_field = true;
    t.parts_.push_back(Part{"", fi, std::move(format), std::string(name)});
    i = close + 1;
  }
  if (!literal.empty()) t.parts_.push_back(Part{std::move(literal), -1, "", ""});
  if (!any_field) {
    return Status::InvalidArgument(where + ": has no {field} placeholder");
  }
  // Literal segments must not escape the sink's directory or hide in it.
  std::string probe;
  for (const Part& p : t.parts_) probe += p.field < 0 ? p.literal : std::string("x");
  if (!ValidSegmentStart(probe)) {
    return Status::InvalidArgument(where + ": '" + std::string(text) +
                                   "' has an empty, '.', '..' or hidden ('.' or '_' first) "
                                   "directory level");
  }
  t.granularity_ms_ = finest < 0 ? 0 : finest;
  if (t.time_field_ < 0) t.time_only_ = false;
  for (const Part& p : t.parts_) {
    t.types_.push_back(p.field >= 0 ? schema.field(static_cast<size_t>(p.field)).type
                                    : Type::kNull);
  }
  t.cache_.resize(t.parts_.size());
  t.spans_.resize(t.parts_.size());
  return t;
}

bool PartitionTemplate::AppendTime(int64_t ms, const std::string& format, std::string* out) {
  return FormatTime(ms, format, out).ok();  // the format was validated by Parse
}

bool PartitionTemplate::CheckLengths(const std::string& dir, std::string* reason) const {
  // The field with the longest text in [a, b): the one to blame.
  auto culprit = [&](size_t a, size_t b) -> const Part* {
    const Part* best = nullptr;
    size_t best_len = 0;
    for (size_t k = 0; k < parts_.size(); ++k) {
      if (parts_[k].field < 0) continue;
      const size_t lo = std::max(a, spans_[k].first), hi = std::min(b, spans_[k].second);
      if (hi > lo && hi - lo >= best_len) {
        best = &parts_[k];
        best_len = hi - lo;
      }
    }
    return best;
  };
  size_t start = 0;
  while (start <= dir.size()) {
    size_t end = dir.find('/', start);
    if (end == std::string::npos) end = dir.size();
    if (end - start > kMaxSegmentBytes) {
      const Part* p = culprit(start, end);
      *reason = "partition field '" + (p ? p->name : std::string("?")) +
                "' makes a directory name of " + std::to_string(end - start) +
                " bytes after escaping (limit " + std::to_string(kMaxSegmentBytes) + ")";
      return false;
    }
    start = end + 1;
  }
  if (dir.size() > kMaxDirBytes) {
    const Part* p = culprit(0, dir.size());
    *reason = "partition directory is " + std::to_string(dir.size()) +
              " bytes after escaping (limit " + std::to_string(kMaxDirBytes) +
              "), longest value from field '" + (p ? p->name : std::string("?")) + "'";
    return false;
  }
  return true;
}

bool PartitionTemplate::Render(const Row& row, std::string* dir, int64_t* start_ms,
                               std::string* reason) {
  dir->clear();
  for (size_t k = 0; k < parts_.size(); ++k) {
    const Part& p = parts_[k];
    const size_t before = dir->size();
    if (p.field < 0) {
      dir->append(p.literal);
      spans_[k] = {before, dir->size()};
      continue;
    }
    const Value& v = row[static_cast<size_t>(p.field)];
    if (v.is_null()) {
      *reason = "partition field '" + p.name + "' is null";
      return false;
    }
    if (!p.format.empty()) {
      const int64_t sec = FloorDiv(v.i, 1000);
      Cached& c = cache_[k];
      if (c.second != sec || c.text.empty()) {
        c.second = sec;
        c.text.clear();
        if (!AppendTime(v.i, p.format, &c.text)) c.text.clear();
      }
      dir->append(c.text);
      // The format's own output is not escaped: it must make a plain name by itself.
      std::string_view val(dir->data() + before, dir->size() - before);
      if (val.empty() || val == "." || val == ".." || val.find('/') != std::string_view::npos ||
          val.find('\0') != std::string_view::npos) {
        *reason = "partition field '" + p.name + "': time " + std::to_string(v.i) +
                  " ms formats as '" + std::string(val) + "', which cannot be a directory name";
        return false;
      }
    } else {
      const bool segment_start = before == 0 || (*dir)[before - 1] == '/';
      switch (v.type) {
        case Type::kString:
          AppendEscapedPartitionValue(v.s, segment_start, dir);
          break;
        case Type::kInt64:
        case Type::kTimestamp: {
          char buf[24];
          auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v.i);
          dir->append(buf, end);
          break;
        }
        case Type::kBool:
          dir->append(v.b ? "true" : "false");
          break;
        default:
          break;
      }
    }
    spans_[k] = {before, dir->size()};
  }
  if (!ValidSegmentStart(*dir)) {
    *reason = "partition directory '" + *dir + "' would be hidden or empty";
    return false;
  }
  if (!CheckLengths(*dir, reason)) return false;
  if (time_field_ >= 0 && granularity_ms_ > 0) {
    const int64_t ts = row[static_cast<size_t>(time_field_)].i;
    // [start, start + granularity) must be representable: near the ends of int64 it is not.
    int64_t start = 0, end = 0;
    if (__builtin_mul_overflow(FloorDiv(ts, granularity_ms_), granularity_ms_, &start) ||
        __builtin_add_overflow(start, granularity_ms_, &end)) {
      auto p = std::find_if(parts_.begin(), parts_.end(),
                            [&](const Part& q) { return q.field == time_field_; });
      *reason = "partition field '" + p->name + "': time " + std::to_string(ts) +
                " ms has no partition (out of range)";
      return false;
    }
    *start_ms = start;
  }
  return true;
}

std::string PartitionTemplate::RenderTime(int64_t start_ms) {
  std::string dir;
  for (const Part& p : parts_) {
    if (p.field < 0) {
      dir.append(p.literal);
    } else {
      // Only called with starts of rendered partitions, so the time is in range.
      AppendTime(start_ms, p.format, &dir);
    }
  }
  return dir;
}

}  // namespace weir
