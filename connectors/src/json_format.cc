#include <cmath>
#include <cstdio>

#include "weir/connectors.h"

namespace weir {
namespace {

void AppendEscaped(std::string_view s, std::string* out) {
  static const char* kHex = "0123456789abcdef";
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\r': out->append("\\r"); break;
      case '\t': out->append("\\t"); break;
      default:
        if (c < 0x20) {
          out->append("\\u00");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
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

std::string FormatTimestampMs(int64_t ms) {
  int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  int64_t rem = ms - days * 86400000;
  int y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[40];
  snprintf(buf, sizeof buf, "%04d-%02u-%02u %02d:%02d:%02d.%03d", y, m, d,
           static_cast<int>(rem / 3600000), static_cast<int>(rem / 60000 % 60),
           static_cast<int>(rem / 1000 % 60), static_cast<int>(rem % 1000));
  return buf;
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
      case Type::kInt64: out->append(std::to_string(v.i)); break;
      case Type::kDouble: {
        if (!std::isfinite(v.d)) {
          out->append("null");
        } else {
          char buf[32];
          snprintf(buf, sizeof buf, "%.17g", v.d);
          out->append(buf);
        }
        break;
      }
      case Type::kString: AppendEscaped(v.s, out); break;
      case Type::kBytes: AppendBase64(v.s, out); break;
      case Type::kTimestamp: AppendEscaped(FormatTimestampMs(v.i), out); break;
    }
  }
  out->push_back('}');
}

}  // namespace weir
