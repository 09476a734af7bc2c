#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "weir/connectors.h"

namespace weir {
namespace {

// Appends `s` as a JSON string. Runs of plain characters are appended in one go: the common
// case (no quote, backslash or control character) costs one scan and one copy.
void AppendEscaped(std::string_view s, std::string* out) {
  static const char* kHex = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        out->append("\\u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

void AppendBase64(std::string_view s, std::string* out) {
  static const char* kAlpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  out->push_back('"');
  size_t i = 0;
  for (; i + 3 <= s.size(); i += 3) {
    uint32_t v = (uint8_t(s[i]) << 16) | (uint8_t(s[i + 1]) << 8) | uint8_t(s[i + 2]);
    for (int k = 18; k >= 0; k -= 6) out->push_back(kAlpha[(v >> k) & 63]);
  }
  if (i < s.size()) {
    uint32_t v = uint8_t(s[i]) << 16;
    if (i + 1 < s.size()) v |= uint8_t(s[i + 1]) << 8;
    out->push_back(kAlpha[(v >> 18) & 63]);
    out->push_back(kAlpha[(v >> 12) & 63]);
    out->push_back(i + 1 < s.size() ? kAlpha[(v >> 6) & 63] : '=');
    out->push_back('=');
  }
  out->push_back('"');
}

// Days since 1970-01-01 to civil date (Howard Hinnant's algorithm, public domain description).
void CivilFromDays(int64_t z, int* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int>(yy + (*m <= 2));
}

}  // namespace

namespace {

// Writes "YYYY-MM-DD HH:MM:SS.mmm" (23 characters) into `p`. The date part of the last day is
// cached per thread: rows mostly come in time order, and the civil-date math is the slow part.
void FormatTimestampInto(int64_t ms, char* p) {
  thread_local int64_t cached_day = INT64_MIN;
  thread_local char cached_date[11];
  const int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  const int64_t rem = ms - days * 86400000;
  if (days != cached_day) {
    int y;
    unsigned m, d;
    CivilFromDays(days, &y, &m, &d);
    char buf[32];
    snprintf(buf, sizeof buf, "%04d-%02u-%02u", y, m, d);
    std::memcpy(cached_date, buf, 10);
    cached_day = days;
  }
  std::memcpy(p, cached_date, 10);
  auto two = [](char* q, int v) {
    q[0] = static_cast<char>('0' + v / 10);
    q[1] = static_cast<char>('0' + v % 10);
  };
  const int h = static_cast<int>(rem / 3600000), mi = static_cast<int>(rem / 60000 % 60),
            sec = static_cast<int>(rem / 1000 % 60), milli = static_cast<int>(rem % 1000);
  p[10] = ' ';
  two(p + 11, h);
  p[13] = ':';
  two(p + 14, mi);
  p[16] = ':';
  two(p + 17, sec);
  p[19] = '.';
  p[20] = static_cast<char>('0' + milli / 100);
  two(p + 21, milli % 100);
}

}  // namespace

std::string FormatTimestampMs(int64_t ms) {
  char buf[23];
  FormatTimestampInto(ms, buf);
  // Years outside 0000-9999 do not fit the fixed layout: fall back to the general form.
  if (ms < -62167219200000 || ms >= 253402300800000) {
    const int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    const int64_t rem = ms - days * 86400000;
    int y;
    unsigned m, d;
    CivilFromDays(days, &y, &m, &d);
    char big[64];
    snprintf(big, sizeof big, "%04d-%02u-%02u %02d:%02d:%02d.%03d", y, m, d,
             static_cast<int>(rem / 3600000), static_cast<int>(rem / 60000 % 60),
             static_cast<int>(rem / 1000 % 60), static_cast<int>(rem % 1000));
    return big;
  }
  return std::string(buf, sizeof buf);
}

void AppendJson(const Row& row, const Schema& schema, std::string* out) {
  out->push_back('{');
  for (size_t i = 0; i < schema.size(); ++i) {
    if (i) out->push_back(',');
    AppendEscaped(schema.field(i).name, out);
    out->push_back(':');
    const Value& v = row[i];
    switch (v.type) {
      case Type::kNull: out->append("null"); break;
      case Type::kBool: out->append(v.b ? "true" : "false"); break;
      case Type::kInt64: {
        char buf[24];
        auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v.i);
        out->append(buf, p);
        break;
      }
      case Type::kDouble: {
        if (!std::isfinite(v.d)) {
          out->append("null");
        } else {
          // Shortest text that reads back as the same double.
          char buf[32];
          auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v.d);
          out->append(buf, p);
        }
        break;
      }
      case Type::kString: AppendEscaped(v.s, out); break;
      case Type::kBytes: AppendBase64(v.s, out); break;
      case Type::kTimestamp:
        if (v.i >= -62167219200000 && v.i < 253402300800000) {
          char buf[25];
          buf[0] = '"';
          FormatTimestampInto(v.i, buf + 1);
          buf[24] = '"';
          out->append(buf, sizeof buf);
        } else {
          AppendEscaped(FormatTimestampMs(v.i), out);
        }
        break;
    }
  }
  out->push_back('}');
}

}  // namespace weir
