#include <array>
#include <charconv>
#include <cmath>

#include "weir/connectors.h"
#include "weir/text_formats.h"

namespace weir {
namespace {

// What follows the backslash for each byte that JSON needs escaped ('u': \u00XX), 0 for the
// rest.
constexpr auto kEscape = [] {
  std::array<char, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 'u';
  t['"'] = '"';
  t['\\'] = '\\';
  t['\n'] = 'n';
  t['\r'] = 'r';
  t['\t'] = 't';
  return t;
}();

// Appends `s` as a JSON string. Runs of plain characters are appended in one go: the common
// case (no quote, backslash or control character) costs one table scan and one copy; each
// escape is one more append.
void AppendEscaped(std::string_view s, std::string* out) {
  static const char* kHex = "0123456789abcdef";
  out->push_back('"');
  size_t run = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char e = kEscape[static_cast<unsigned char>(s[i])];
    if (e == 0) continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    if (e != 'u') {
      const char esc[2] = {'\\', e};
      out->append(esc, 2);
    } else {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      const char esc[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 15]};
      out->append(esc, 6);
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

}  // namespace

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
      case Type::kTimestamp: {
        // The canonical text (weir/text_formats.h) needs no escaping.
        char buf[kTimestampTextMax + 2];
        buf[0] = '"';
        const size_t n = FormatTimestamp(v.i, buf + 1);
        buf[n + 1] = '"';
        out->append(buf, n + 2);
        break;
      }
    }
  }
  out->push_back('}');
}

}  // namespace weir
