// The rules of weir/text_formats.h. Every function works on caller buffers or std::string&
// outputs: these run once per field of every parsed or written row.
#include "weir/text_formats.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <system_error>

#include "weir/int_math.h"

namespace weir {
namespace {

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char AsciiLower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

constexpr TextError kOk{};
constexpr TextError Fail(const char* reason) {
  return TextError{reason};
}

// ---------------------------------------------------------------- calendar constants
// Internally a year starts on March 1st so the leap day is the last day of the year; a
// 400-year cycle has a fixed number of days.
constexpr int64_t kDaysPer400Years = 146097;
constexpr int64_t kDaysPer100Years = 36524;  // a "century" of March-years without a 400th leap
constexpr int64_t kDaysPer4Years = 1461;
constexpr int64_t kEpochFromMarch0 = 719468;  // days from 0000-03-01 to 1970-01-01
// Day of the March-based year on which each month starts (index 0 = March ... 11 = February).
constexpr int kMarchMonthStart[12] = {0, 31, 61, 92, 122, 153, 184, 214, 245, 275, 306, 337};

// ---------------------------------------------------------------- field readers
// A date and time being assembled by a parser.
struct Fields {
  int64_t year = 1970;
  int month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0;
  int64_t offset_ms = 0;  // local time = UTC + offset
};

TextError ToMillis(const Fields& t, int64_t* ms) {
  if (t.month < 1 || t.month > 12) return Fail("month out of range (01-12)");
  if (t.day < 1 || t.day > DaysInMonth(t.year, t.month)) return Fail("no such day in the month");
  if (t.hour > 23) return Fail("hour out of range (00-23)");
  if (t.minute > 59) return Fail("minute out of range (00-59)");
  if (t.second > 59) return Fail("second out of range (00-59)");
  *ms = DaysFromCivil(t.year, t.month, t.day) * kMsPerDay + t.hour * int64_t{3600000} +
        t.minute * int64_t{60000} + t.second * int64_t{1000} + t.millis - t.offset_ms;
  return kOk;
}

// Reads between min_digits and max_digits decimal digits at s[*pos].
bool ReadDigits(std::string_view s, size_t* pos, int min_digits, int max_digits, int64_t* out) {
  int64_t v = 0;
  int n = 0;
  while (n < max_digits && *pos < s.size() && IsDigit(s[*pos])) {
    v = v * 10 + (s[*pos] - '0');
    ++*pos;
    ++n;
  }
  if (n < min_digits) return false;
  *out = v;
  return true;
}

bool ReadInt(std::string_view s, size_t* pos, int min_digits, int max_digits, int* out) {
  int64_t v;
  if (!ReadDigits(s, pos, min_digits, max_digits, &v)) return false;
  *out = static_cast<int>(v);
  return true;
}

// Reads a fraction of a second ("5", "123", "123456789") as milliseconds (truncated).
bool ReadFraction(std::string_view s, size_t* pos, int* millis) {
  const size_t start = *pos;
  int64_t v;
  if (!ReadDigits(s, pos, 1, 9, &v)) return false;
  for (size_t n = *pos - start; n < 9; ++n) v *= 10;
  *millis = static_cast<int>(v / 1000000);
  return true;
}

bool Expect(std::string_view s, size_t* pos, char c) {
  if (*pos >= s.size() || s[*pos] != c) return false;
  ++*pos;
  return true;
}

// ---------------------------------------------------------------- formatting helpers
// Writes v (0 <= v < 10^width) as exactly `width` digits.
void PutDigits(char* p, int64_t v, int width) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void AppendPadded(std::string* out, int64_t v, int width) {
  char buf[24];
  auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, v);
  for (int pad = width - static_cast<int>(ptr - buf); pad > 0; --pad) out->push_back('0');
  out->append(buf, ptr);
}

// A year as text: at least 4 digits, '-' before negative years. Returns the length.
size_t PutYear(char* p, int64_t year) {
  size_t n = 0;
  if (year < 0) {
    p[n++] = '-';
    year = -year;  // |year| < 3e8: no overflow
  }
  if (year < 10000) {
    PutDigits(p + n, year, 4);
    return n + 4;
  }
  auto [end, ec] = std::to_chars(p + n, p + n + 20, year);
  return static_cast<size_t>(end - p);
}

void AppendYear(std::string* out, int64_t year) {
  char buf[24];
  out->append(buf, PutYear(buf, year));
}

// "YYYY-MM-DD" for years 0-9999 into p[0, 10); the general form otherwise. Returns the length.
size_t PutDate(char* p, const CivilDate& d) {
  size_t n = PutYear(p, d.year);
  p[n] = '-';
  PutDigits(p + n + 1, d.month, 2);
  p[n + 3] = '-';
  PutDigits(p + n + 4, d.day, 2);
  return n + 6;
}

}  // namespace

// ---------------------------------------------------------------- errors
Status TextErrorStatus(TextError e, std::string_view text, std::string_view as) {
  std::string m = "cannot convert '";
  m.append(text.substr(0, 64));
  m.append(text.size() > 64 ? "...' to " : "' to ");
  m.append(as);
  if (e.reason != nullptr && e.reason[0] != '\0') {
    m.append(": ");
    m.append(e.reason);
  }
  return Status::InvalidArgument(std::move(m));
}

// ---------------------------------------------------------------- calendar
bool IsLeapYear(int64_t y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && IsLeapYear(y)) ? 29 : kDays[m - 1];
}

int64_t DaysFromCivil(int64_t year, int month, int day) {
  const int64_t y = month <= 2 ? year - 1 : year;  // the March-based year holding this date
  const int64_t cycle = FloorDiv(y, 400);
  const int64_t year_of_cycle = y - cycle * 400;  // [0, 399]
  const int month_index = month >= 3 ? month - 3 : month + 9;
  // Leap days before year_of_cycle: one per 4 years, minus the century years (the 400th year's
  // leap day ends the cycle, so it is never before).
  const int64_t day_of_cycle = year_of_cycle * 365 + year_of_cycle / 4 - year_of_cycle / 100 +
                               kMarchMonthStart[month_index] + day - 1;
  return cycle * kDaysPer400Years + day_of_cycle - kEpochFromMarch0;
}

CivilDate CivilFromDays(int64_t days) {
  // days + kEpochFromMarch0 cannot overflow: |days| <= INT64_MAX / kMsPerDay for any caller
  // holding milliseconds, and FloorDiv keeps the cycle exact for negative days.
  const int64_t z = days + kEpochFromMarch0;
  const int64_t cycle = FloorDiv(z, kDaysPer400Years);
  int64_t rem = z - cycle * kDaysPer400Years;  // [0, 146096]
  // The last century of a cycle is one day longer; clamp so its last day stays in it.
  const int64_t centuries = std::min<int64_t>(rem / kDaysPer100Years, 3);
  rem -= centuries * kDaysPer100Years;
  const int64_t quads = rem / kDaysPer4Years;
  rem -= quads * kDaysPer4Years;
  const int64_t years = std::min<int64_t>(rem / 365, 3);  // a quad's 4th year may have 366 days
  const int day_of_year = static_cast<int>(rem - years * 365);  // [0, 365]
  int month_index = 11;
  while (kMarchMonthStart[month_index] > day_of_year) --month_index;
  CivilDate c;
  c.day = day_of_year - kMarchMonthStart[month_index] + 1;
  c.month = month_index < 10 ? month_index + 3 : month_index - 9;
  c.year = cycle * 400 + centuries * 100 + quads * 4 + years + (c.month <= 2 ? 1 : 0);
  return c;
}

CivilTime CivilFromMillis(int64_t ms) {
  const int64_t days = FloorDiv(ms, kMsPerDay);
  const int64_t in_day = FloorMod(ms, kMsPerDay);  // days * kMsPerDay may not fit int64
  CivilTime t;
  t.date = CivilFromDays(days);
  t.hour = static_cast<int>(in_day / 3600000);
  t.minute = static_cast<int>(in_day / 60000 % 60);
  t.second = static_cast<int>(in_day / 1000 % 60);
  t.millis = static_cast<int>(in_day % 1000);
  t.day_of_year = static_cast<int>(days - DaysFromCivil(t.date.year, 1, 1)) + 1;
  return t;
}

// ---------------------------------------------------------------- ISO-8601
TextError TryParseIsoTimestamp(std::string_view s, int64_t* ms) {
  Fields t;
  size_t pos = 0;
  if (!ReadDigits(s, &pos, 4, 4, &t.year) || !Expect(s, &pos, '-') ||
      !ReadInt(s, &pos, 2, 2, &t.month) || !Expect(s, &pos, '-') ||
      !ReadInt(s, &pos, 2, 2, &t.day)) {
    return Fail("expected an ISO-8601 date YYYY-MM-DD");
  }
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') {
      return Fail("expected 'T' or ' ' and a time HH:MM after the date");
    }
    ++pos;
    if (!ReadInt(s, &pos, 2, 2, &t.hour) || !Expect(s, &pos, ':') ||
        !ReadInt(s, &pos, 2, 2, &t.minute)) {
      return Fail("expected a time HH:MM after the date");
    }
    if (pos < s.size() && s[pos] == ':') {
      ++pos;
      if (!ReadInt(s, &pos, 2, 2, &t.second)) return Fail("expected 2 digits of seconds");
      if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
        ++pos;
        if (!ReadFraction(s, &pos, &t.millis)) return Fail("expected digits after the '.'");
        if (pos < s.size() && IsDigit(s[pos])) return Fail("more than 9 fraction digits");
      }
    }
    if (pos < s.size()) {
      if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        const int64_t sign = s[pos] == '-' ? -1 : 1;
        ++pos;
        int oh = 0, om = 0;
        if (!ReadInt(s, &pos, 2, 2, &oh)) return Fail("expected a zone offset +HH:MM");
        if (pos < s.size()) {
          const bool colon = Expect(s, &pos, ':');
          if (!ReadInt(s, &pos, 2, 2, &om) || (!colon && pos != s.size())) {
            return Fail("expected a zone offset +HH:MM");
          }
        }
        if (oh > 23 || om > 59) return Fail("zone offset out of range");
        t.offset_ms = sign * (oh * int64_t{3600000} + om * int64_t{60000});
      } else {
        return Fail("expected a zone (Z or +HH:MM) after the time");
      }
    }
    if (pos != s.size()) return Fail("unexpected text after the zone");
  }
  return ToMillis(t, ms);
}

Status ParseIsoTimestamp(std::string_view text, int64_t* ms) {
  const TextError e = TryParseIsoTimestamp(text, ms);
  return e.ok() ? Status::Ok() : TextErrorStatus(e, text, "timestamp (ISO-8601)");
}

// ---------------------------------------------------------------- canonical text
size_t FormatTimestamp(int64_t ms, char* p) {
  // The date of the last day is cached per thread: rows mostly come in time order, and the
  // calendar math is most of the cost.
  thread_local int64_t cached_day = INT64_MIN;
  thread_local char cached_date[kTimestampTextMax];
  thread_local size_t cached_len = 0;
  const int64_t days = FloorDiv(ms, kMsPerDay);
  const int64_t in_day = FloorMod(ms, kMsPerDay);
  if (days != cached_day) {
    cached_len = PutDate(cached_date, CivilFromDays(days));
    cached_day = days;
  }
  std::memcpy(p, cached_date, cached_len);
  char* q = p + cached_len;
  q[0] = ' ';
  PutDigits(q + 1, in_day / 3600000, 2);
  q[3] = ':';
  PutDigits(q + 4, in_day / 60000 % 60, 2);
  q[6] = ':';
  PutDigits(q + 7, in_day / 1000 % 60, 2);
  q[9] = '.';
  PutDigits(q + 10, in_day % 1000, 3);
  return cached_len + 13;
}

void AppendTimestamp(int64_t ms, std::string* out) {
  char buf[kTimestampTextMax];
  out->append(buf, FormatTimestamp(ms, buf));
}

std::string TimestampToString(int64_t ms) {
  char buf[kTimestampTextMax];
  return std::string(buf, FormatTimestamp(ms, buf));
}

// ---------------------------------------------------------------- patterns
std::string_view FirstBadDirective(std::string_view f, std::string_view allowed) {
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') continue;
    if (++i == f.size()) return f.substr(i - 1, 1);
    if (f[i] != '%' && allowed.find(f[i]) == std::string_view::npos) return f.substr(i - 1, 2);
  }
  return {};
}

Status ValidateTimePattern(std::string_view pattern, std::string_view allowed) {
  const std::string_view bad = FirstBadDirective(pattern, allowed);
  if (bad.empty()) return Status::Ok();
  std::string list;
  for (char d : allowed) list += std::string(list.empty() ? "%" : " %") + d;
  return Status::InvalidArgument("unsupported directive '" + std::string(bad) +
                                 "' in the time pattern '" + std::string(pattern) +
                                 "' (supported: " + list + " %%)");
}

int64_t TimePatternUnitMs(std::string_view f) {
  int64_t g = -1;
  auto finer = [&g](int64_t u) { g = (g <= 0) ? u : std::min(g, u); };
  for (size_t i = 0; i + 1 < f.size(); ++i) {
    if (f[i] != '%') continue;
    switch (f[++i]) {
      case 'f':
        finer(1);
        break;
      case 'S':
      case 'T':
        finer(1000);
        break;
      case 'M':
        finer(60000);
        break;
      case 'H':
        finer(3600000);
        break;
      case 'd':
      case 'j':
      case 'F':
        finer(kMsPerDay);
        break;
      case 'm':
      case 'Y':
        if (g < 0) g = 0;
        break;
      default:
        break;
    }
  }
  return g;
}

TextError FormatTime(int64_t ms, std::string_view f, std::string* out) {
  const CivilTime t = CivilFromMillis(ms);
  for (size_t i = 0; i < f.size(); ++i) {
    if (f[i] != '%') {
      out->push_back(f[i]);
      continue;
    }
    if (++i == f.size()) return Fail("the pattern ends with '%'");
    switch (f[i]) {
      case 'Y':
        AppendYear(out, t.date.year);
        break;
      case 'm':
        AppendPadded(out, t.date.month, 2);
        break;
      case 'd':
        AppendPadded(out, t.date.day, 2);
        break;
      case 'H':
        AppendPadded(out, t.hour, 2);
        break;
      case 'M':
        AppendPadded(out, t.minute, 2);
        break;
      case 'S':
        AppendPadded(out, t.second, 2);
        break;
      case 'f':
        AppendPadded(out, t.millis, 3);
        break;
      case 'j':
        AppendPadded(out, t.day_of_year, 3);
        break;
      case 'F': {
        char buf[kTimestampTextMax];
        out->append(buf, PutDate(buf, t.date));
        break;
      }
      case 'T': {
        char buf[8];
        PutDigits(buf, t.hour, 2);
        buf[2] = ':';
        PutDigits(buf + 3, t.minute, 2);
        buf[5] = ':';
        PutDigits(buf + 6, t.second, 2);
        out->append(buf, 8);
        break;
      }
      case '%':
        out->push_back('%');
        break;
      default:
        return Fail("unsupported directive in the pattern");
    }
  }
  return kOk;
}

namespace {

// Matches `f` against s[*pos...]; Fields collects what the directives read.
TextError MatchPattern(std::string_view s, std::string_view f, size_t* pos, Fields* t) {
  for (size_t i = 0; i < f.size(); ++i) {
    const char c = f[i];
    if (IsSpace(c)) {
      while (*pos < s.size() && IsSpace(s[*pos])) ++*pos;
      continue;
    }
    if (c != '%') {
      if (!Expect(s, pos, c)) return Fail("does not match the pattern");
      continue;
    }
    if (++i == f.size()) return Fail("the pattern ends with '%'");
    bool ok = true;
    switch (f[i]) {
      case 'Y':
        ok = ReadDigits(s, pos, 1, 4, &t->year);
        break;
      case 'm':
        ok = ReadInt(s, pos, 1, 2, &t->month);
        break;
      case 'd':
        ok = ReadInt(s, pos, 1, 2, &t->day);
        break;
      case 'H':
        ok = ReadInt(s, pos, 1, 2, &t->hour);
        break;
      case 'M':
        ok = ReadInt(s, pos, 1, 2, &t->minute);
        break;
      case 'S':
        ok = ReadInt(s, pos, 1, 2, &t->second);
        break;
      case 'f':
        ok = ReadFraction(s, pos, &t->millis);
        break;
      case 'F': {
        const TextError e = MatchPattern(s, "%Y-%m-%d", pos, t);
        if (!e.ok()) return e;
        break;
      }
      case 'T': {
        const TextError e = MatchPattern(s, "%H:%M:%S", pos, t);
        if (!e.ok()) return e;
        break;
      }
      case '%':
        ok = Expect(s, pos, '%');
        break;
      default:
        return Fail("unsupported directive in the pattern");
    }
    if (!ok) return Fail("does not match the pattern");
  }
  return kOk;
}

}  // namespace

TextError TryParseTime(std::string_view s, std::string_view f, int64_t* ms) {
  Fields t;
  size_t pos = 0;
  const TextError e = MatchPattern(s, f, &pos, &t);
  if (!e.ok()) return e;
  if (pos != s.size()) return Fail("unexpected text after the pattern's end");
  return ToMillis(t, ms);
}

Status ParseTime(std::string_view text, std::string_view pattern, int64_t* ms) {
  const TextError e = TryParseTime(text, pattern, ms);
  if (e.ok()) return Status::Ok();
  return TextErrorStatus(e, text, "timestamp ('" + std::string(pattern) + "')");
}

// ---------------------------------------------------------------- numbers
namespace {

// Trims whitespace and strips one leading '+' (std::from_chars takes only '-').
bool PrepareNumber(std::string_view* s) {
  *s = TrimSpace(*s);
  if (!s->empty() && s->front() == '+') {
    s->remove_prefix(1);
    if (!s->empty() && (s->front() == '-' || s->front() == '+')) return false;
  }
  return !s->empty();
}

}  // namespace

TextError TryParseInt64(std::string_view s, int64_t* out) {
  if (!PrepareNumber(&s)) return Fail("");
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out);
  if (ec == std::errc::result_out_of_range) return Fail("out of range for int64");
  if (ec != std::errc() || ptr != end) return Fail("");
  return kOk;
}

TextError TryParseDouble(std::string_view s, double* out) {
  if (!PrepareNumber(&s)) return Fail("");
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, *out, std::chars_format::general);
  if (ec == std::errc::result_out_of_range && ptr == end) return Fail("out of range for double");
  if (ec != std::errc() || ptr != end) return Fail("");
  return kOk;
}

TextError TryParseBool(std::string_view s, bool* out) {
  s = TrimSpace(s);
  for (const char* t : {"true", "t", "yes", "y", "1"}) {
    if (EqualsIgnoreCase(s, t)) return *out = true, kOk;
  }
  for (const char* f : {"false", "f", "no", "n", "0"}) {
    if (EqualsIgnoreCase(s, f)) return *out = false, kOk;
  }
  return Fail("");
}

Status ParseInt64(std::string_view text, int64_t* out) {
  const TextError e = TryParseInt64(text, out);
  return e.ok() ? Status::Ok() : TextErrorStatus(e, text, "int64");
}

Status ParseDouble(std::string_view text, double* out) {
  const TextError e = TryParseDouble(text, out);
  return e.ok() ? Status::Ok() : TextErrorStatus(e, text, "double");
}

Status ParseBool(std::string_view text, bool* out) {
  const TextError e = TryParseBool(text, out);
  return e.ok() ? Status::Ok() : TextErrorStatus(e, text, "bool");
}

bool DoubleToInt64(double d, int64_t* out) {
  if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return false;
  *out = static_cast<int64_t>(d);
  return true;
}

bool ExactDoubleToInt64(double d, int64_t* out) {
  return DoubleToInt64(d, out) && static_cast<double>(*out) == d;
}

// ---------------------------------------------------------------- UTF-8
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // overlong
    if (c == 0xED) hi = 0x9F;  // surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;  // overlong
    if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size() || b(1) < lo || b(1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(k) < 0x80 || b(k) > 0xBF) return 0;
  }
  return n;
}

size_t FirstInvalidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Eight ASCII bytes at once: no byte has its high bit set.
    uint64_t w;
    if (i + 8 <= s.size() && (std::memcpy(&w, s.data() + i, 8), (w & 0x8080808080808080ull) == 0)) {
      i += 8;
      continue;
    }
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return s.size();
}

}  // namespace weir
