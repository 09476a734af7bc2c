// Partition path templates for file sinks:
// "dt={event_time:%Y-%m-%d}/hour={event_time:%H}/app={app}".
//
// A template is literal text with placeholders `{field}` (the field's value as text) and
// `{field:format}` (a timestamp or integer-millisecond field formatted with the time pattern
// subset of weir/text_formats.h: %Y %m %d %H %M %S %j %F %T %%, in UTC, no locale). It yields a
// relative directory per row. When the template has time placeholders, all on one field, each
// partition also covers a time range [start, end): its granularity is the finest unit the formats
// use (second, minute, hour or day), and the partition commit decides by comparing `end` with the
// watermark.
//
// Values of `{field}` placeholders are escaped as Hive's FileUtils.escapePathName does (so a
// Hive reader unescapes them to the original): '%XX' (uppercase hex) for the bytes 0x00-0x1F
// and 0x7F and for  " # % ' * / : = ? \ { [ ] ^ ; an empty string becomes
// __HIVE_DEFAULT_PARTITION__. Beyond Hive: a byte that is not part of valid UTF-8 is escaped the
// same way, and a value that begins a directory level has a leading '.' or '_' escaped, so that
// no level is ".", ".." or hidden. Time placeholders are not escaped (their text comes from the
// template's own format).
//
// Bad rows do not fail: Render returns false with a reason (null field, a timestamp whose
// partition is out of range, a directory level over kMaxSegmentBytes or a directory over
// kMaxDirBytes after escaping), and the sink sends the row to its dirty-data output. So every
// rendered directory can be created: nothing a row holds can make a later commit fail.
//
// Immutable after Parse; Render uses a small per-instance cache, so one instance belongs to one
// thread (each sink subtask has its own copy).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "weir/int_math.h"
#include "weir/status.h"
#include "weir/types.h"

namespace weir {

class PartitionTemplate {
 public:
  // NAME_MAX of Linux file systems: a longer directory level cannot be created.
  static constexpr size_t kMaxSegmentBytes = 255;
  // The whole relative directory: leaves room under PATH_MAX (4096) for the sink's path, the
  // late directory and the file name.
  static constexpr size_t kMaxDirBytes = 1024;
  static constexpr std::string_view kDefaultPartition = "__HIVE_DEFAULT_PARTITION__";

  // Parses `text` against the sink's input `schema`; errors are prefixed with `where`.
  static Result<PartitionTemplate> Parse(std::string_view text, const Schema& schema,
                                         const std::string& where);

  bool empty() const { return parts_.empty(); }
  // True if the partitions are time ranges (the template has time placeholders).
  bool has_time() const { return time_field_ >= 0; }
  // True if every placeholder is a time placeholder (so partitions can be enumerated by time).
  bool time_only() const { return time_only_; }
  // 1000, 60000, 3600000 or 86400000; 0 when the formats are coarser than a day (months,
  // years), which the partition commit does not support.
  int64_t granularity_ms() const { return granularity_ms_; }
  int time_field() const { return time_field_; }

  // Renders the directory of `row` into `*dir` (relative, no leading or trailing '/'); with
  // time placeholders also the partition's time range start in `*start_ms` (end is start +
  // granularity). Returns false and a reason for rows that cannot be placed.
  bool Render(const Row& row, std::string* dir, int64_t* start_ms, std::string* reason);
  // Renders the directory of the time partition starting at `start_ms` (time_only() only).
  std::string RenderTime(int64_t start_ms);

 private:
  struct Part {
    std::string literal;  // when field < 0
    int field = -1;
    std::string format;  // time pattern (weir/text_formats.h); empty: the value as text
    std::string name;    // the field's name, for reasons
  };
  static bool AppendTime(int64_t ms, const std::string& format, std::string* out);
  bool CheckLengths(const std::string& dir, std::string* reason) const;

  std::vector<Part> parts_;
  std::vector<Type> types_;
  int time_field_ = -1;
  bool time_only_ = false;
  int64_t granularity_ms_ = 0;
  // Cache: the last second formatted per time part (rows mostly arrive in time order).
  struct Cached {
    int64_t second = INT64_MIN;
    std::string text;
  };
  std::vector<Cached> cache_;
  // Per part: where its text went in the last rendered directory (to name a field in reasons).
  std::vector<std::pair<size_t, size_t>> spans_;
};

// Appends `value` escaped as described above; `segment_start`: it begins a directory level.
// Allocates nothing beyond growing `out`.
void AppendEscapedPartitionValue(std::string_view value, bool segment_start, std::string* out);
// Partition commit arithmetic, exact for every int64 (no overflow near either end).
// True if the partition ending at `end` (exclusive) is complete at `watermark`:
// end - 1 + delay_ms <= watermark (delay_ms >= 0).
bool PartitionComplete(int64_t end, int64_t delay_ms, int64_t watermark);
// The start of the newest partition of `granularity_ms` complete at `watermark`; false if no
// representable partition is.
bool LastCompleteStart(int64_t watermark, int64_t delay_ms, int64_t granularity_ms, int64_t* start);

}  // namespace weir
