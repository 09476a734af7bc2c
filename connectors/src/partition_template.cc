#include "weir/partition_template.h"

#include <algorithm>
#include <cstring>
#include <ctime>

namespace weir {
namespace {

constexpr int64_t kSecond = 1000, kMinute = 60 * kSecond, kHour = 60 * kMinute, kDay = 24 * kHour;

// The finest unit a strftime format shows; 0 if it shows nothing finer than a day, -1 if it
// has no time specifier at all.
int64_t FormatGranularity(const std::string& f) {
  int64_t g = -1;
  auto finer = [&g](int64_t u) { g = (g <= 0) ? u : std::min(g, u); };
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    if (f[i] != '%') continue;
    const char c = f[++i];
    switch (c) {
      case 'S': case 'T': case 's': finer(kSecond); break;
      case 'M': case 'R': finer(kMinute); break;
      case 'H': case 'I': case 'k': case 'l': finer(kHour); break;
      case 'd': case 'e': case 'j': case 'F': case 'D': case 'a': case 'A': case 'u': case 'w':
        finer(kDay);
        break;
      case 'm': case 'b': case 'B': case 'h': case 'Y': case 'y': case 'C': case 'G': case 'g':
        if (g < 0) g = 0;
        break;
      default: break;
    }
  }
  return g;
}

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

}  // namespace

Result<PartitionTemplate> PartitionTemplate::Parse(std::string_view text, const Schema& schema,
                                                   const std::string& where) {
  PartitionTemplate t;
  if (text.empty()) return t;
  if (text.front() == '/' || text.back() == '/') {
    return Status::InvalidArgument(where + ": must be a relative path without a leading or "
                                           "trailing '/', got '" + std::string(text) + "'");
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
      const int64_t g = FormatGranularity(format);
      if (g < 0) {
        return Status::InvalidArgument(where + ": format '" + format + "' of field '" +
                                       std::string(name) + "' has no time specifier (e.g. %Y, %H)");
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
    t.types_.push_back(p.field >= 0 ? schema.field(static_cast<size_t>(p.field)).type : Type::kNull);
  }
  t.cache_.resize(t.parts_.size());
  return t;
}

void PartitionTemplate::AppendTime(int64_t ms, const std::string& format, std::string* out) {
  const int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  const time_t tt = static_cast<time_t>(secs);
  struct tm tm;
  gmtime_r(&tt, &tm);
  char buf[256];
  const size_t n = strftime(buf, sizeof(buf), format.c_str(), &tm);
  out->append(buf, n);
}

bool PartitionTemplate::Render(const Row& row, std::string* dir, int64_t* start_ms,
                               std::string* reason) {
  dir->clear();
  for (size_t k = 0; k < parts_.size(); ++k) {
    const Part& p = parts_[k];
    if (p.field < 0) {
      dir->append(p.literal);
      continue;
    }
    const Value& v = row[static_cast<size_t>(p.field)];
    if (v.is_null()) {
      *reason = "partition field '" + p.name + "' is null";
      return false;
    }
    const size_t before = dir->size();
    if (!p.format.empty()) {
      const int64_t sec = v.i >= 0 ? v.i / 1000 : -((-v.i + 999) / 1000);
      Cached& c = cache_[k];
      if (c.second != sec) {
        c.second = sec;
        c.text.clear();
        AppendTime(v.i, p.format, &c.text);
      }
      dir->append(c.text);
    } else {
      switch (v.type) {
        case Type::kString: dir->append(v.s); break;
        case Type::kInt64: dir->append(std::to_string(v.i)); break;
        case Type::kBool: dir->append(v.b ? "true" : "false"); break;
        case Type::kTimestamp: dir->append(std::to_string(v.i)); break;
        default: break;
      }
    }
    std::string_view val(dir->data() + before, dir->size() - before);
    if (val.empty() || val == "." || val == ".." || val.find('/') != std::string_view::npos ||
        val.find('\0') != std::string_view::npos) {
      *reason = "partition value '" + std::string(val) + "' cannot be a directory name";
      return false;
    }
  }
  if (!ValidSegmentStart(*dir)) {
    *reason = "partition directory '" + *dir + "' would be hidden or empty";
    return false;
  }
  if (time_field_ >= 0 && granularity_ms_ > 0) {
    const int64_t ts = row[static_cast<size_t>(time_field_)].i;
    const int64_t q = ts >= 0 ? ts / granularity_ms_ : -((-ts + granularity_ms_ - 1) / granularity_ms_);
    *start_ms = q * granularity_ms_;
  }
  return true;
}

std::string PartitionTemplate::RenderTime(int64_t start_ms) {
  std::string dir;
  for (const Part& p : parts_) {
    if (p.field < 0) {
      dir.append(p.literal);
    } else {
      AppendTime(start_ms, p.format, &dir);
    }
  }
  return dir;
}

}  // namespace weir
