// Time, numbers and booleans as text: the one set of rules every part of Weir uses
// (expressions' casts and time functions, the parse operator, JSON/CSV output, partition
// templates), so the same input means the same value everywhere. docs/time-and-numbers.md
// describes the accepted forms for users.
//
// Promises:
//  - Civil calendar: proleptic Gregorian, UTC, exact for every int64 millisecond (negative
//    times floor: -1 ms is 1969-12-31 23:59:59.999).
//  - One ISO-8601 grammar (ParseIsoTimestamp), one strftime/strptime subset implemented here
//    (no libc strptime/strftime, no locale, no time zone database), one canonical timestamp
//    text (FormatTimestamp: "YYYY-MM-DD HH:MM:SS.mmm", UTC, the form Hive reads), one rule for
//    int64, double and bool text.
//  - Nothing here allocates on success, and the Try* forms never allocate: they report a
//    failure as a static reason so per-record callers (a cast that yields null, a dirty row)
//    pay nothing for the message they may not need. The Status forms name the input.
//  - Stateless apart from a per-thread cache in FormatTimestamp: any thread may call anything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "weir/status.h"

namespace weir {

// ---------------------------------------------------------------------------------------------
// Failures without allocation.

// The outcome of a Try* parser. `reason` is nullptr on success, else a static description
// ("month 13 is out of range"); it is empty ("") when "cannot convert 'x' to int64" says it all.
struct [[nodiscard]] TextError {
  const char* reason = nullptr;
  bool ok() const { return reason == nullptr; }
};

// "cannot convert '<text>' to <as>[: <reason>]", as an InvalidArgument Status. The text is cut
// at 64 bytes ("...") so a huge input does not make a huge message.
Status TextErrorStatus(TextError e, std::string_view text, std::string_view as);

// ---------------------------------------------------------------------------------------------
// Civil calendar (proleptic Gregorian, UTC).

constexpr int64_t kMsPerDay = 86400000;

struct CivilDate {
  int64_t year;  // any int64 day maps to a year within +-3e8
  int month;     // 1..12
  int day;       // 1..31
};

// Broken-down UTC time of an epoch millisecond.
struct CivilTime {
  CivilDate date;
  int hour, minute, second, millis;
  int day_of_year;  // 1..366
};

bool IsLeapYear(int64_t year);
int DaysInMonth(int64_t year, int month);  // month 1..12
// Days since 1970-01-01 of a valid date (month 1..12, day 1..DaysInMonth); |year| < 1e9.
int64_t DaysFromCivil(int64_t year, int month, int day);
CivilDate CivilFromDays(int64_t days);
CivilTime CivilFromMillis(int64_t ms);

// ---------------------------------------------------------------------------------------------
// ISO-8601 timestamps, one grammar:
//
//   YYYY-MM-DD [ ('T' | 't' | ' ') HH:MM [ :SS [ ('.' | ',') 1-9 digits ] ] [ zone ] ]
//   zone = 'Z' | 'z' | ('+' | '-') HH [ [':'] MM ]
//
// A year has exactly 4 digits (0000-9999). The date must exist (2023-02-29 does not), hours are
// 0-23, minutes and seconds 0-59 (no leap second, no 24:00). The fraction is truncated to
// milliseconds. Without a zone the time is UTC. No surrounding whitespace.

TextError TryParseIsoTimestamp(std::string_view text, int64_t* ms);
Status ParseIsoTimestamp(std::string_view text, int64_t* ms);

// ---------------------------------------------------------------------------------------------
// The canonical timestamp text: "YYYY-MM-DD HH:MM:SS.mmm" in UTC (23 bytes for years 0-9999;
// other years get a '-' and/or more digits). It reads back with ParseIsoTimestamp when the year
// has 4 digits.

constexpr size_t kTimestampTextMax = 40;
// Writes the text of `ms` into buf[0, kTimestampTextMax) and returns its length.
size_t FormatTimestamp(int64_t ms, char* buf);
void AppendTimestamp(int64_t ms, std::string* out);
std::string TimestampToString(int64_t ms);  // for logs and messages

// ---------------------------------------------------------------------------------------------
// Time patterns: a strftime/strptime subset, UTC, no locale.
//
//   %Y year (formatting: at least 4 digits, '-' before negative years; parsing: 1-4 digits)
//   %m month, %d day, %H hour, %M minute, %S second (formatting: 2 digits; parsing: 1-2)
//   %f milliseconds (formatting: 3 digits; parsing: a fraction of 1-9 digits, truncated)
//   %j day of the year (3 digits; formatting only)
//   %F = %Y-%m-%d, %T = %H:%M:%S, %% a percent sign
//
// Parsing: a whitespace character in the pattern matches any amount of whitespace (also none);
// other characters match themselves; the whole text must match; fields not in the pattern
// default to 1970-01-01 00:00:00.000; the date and time must be valid as for ISO-8601.

inline constexpr std::string_view kFormatDirectives = "YmdHMSfjFT";  // and %%
inline constexpr std::string_view kParseDirectives = "YmdHMSfFT";    // and %%

// The first directive of `pattern` not in `allowed` ("%Q", or "%" for a trailing '%'); empty
// if there is none.
std::string_view FirstBadDirective(std::string_view pattern, std::string_view allowed);
// InvalidArgument naming the first unsupported directive and listing the supported ones.
Status ValidateTimePattern(std::string_view pattern, std::string_view allowed);
// The finest unit the pattern shows, in ms: 1 (%f), 1000 (%S %T), 60000 (%M), 3600000 (%H),
// 86400000 (%d %j %F); 0 if only %Y / %m; -1 if no directive at all.
int64_t TimePatternUnitMs(std::string_view pattern);
// Appends `ms` formatted by `pattern`; fails only on an invalid pattern (out is then partial).
TextError FormatTime(int64_t ms, std::string_view pattern, std::string* out);
TextError TryParseTime(std::string_view text, std::string_view pattern, int64_t* ms);
// The Status names the text and the pattern.
Status ParseTime(std::string_view text, std::string_view pattern, int64_t* ms);

// ---------------------------------------------------------------------------------------------
// Numbers and booleans. One rule for all of them: surrounding ASCII whitespace is ignored, a
// leading '+' or '-' is allowed (one sign), the rest is std::from_chars' grammar with nothing
// left over.
//  - int64: decimal digits only, so "12.0" and "1e3" are not int64 (they are doubles); a value
//    outside int64 is an error "out of range".
//  - double: decimal or exponent form, "inf", "infinity", "nan" (any case); a value beyond
//    double's range (1e999, 1e-999) is an error "out of range".
//  - bool: true/t/yes/y/1 or false/f/no/n/0, any case.

TextError TryParseInt64(std::string_view text, int64_t* out);
TextError TryParseDouble(std::string_view text, double* out);
TextError TryParseBool(std::string_view text, bool* out);
Status ParseInt64(std::string_view text, int64_t* out);
Status ParseDouble(std::string_view text, double* out);
Status ParseBool(std::string_view text, bool* out);

// `d` truncated toward zero; false if NaN or outside int64.
bool DoubleToInt64(double d, int64_t* out);
// `d` if it is an integer within int64 (7.0, 1e3); false for 7.5, NaN, 1e19.
bool ExactDoubleToInt64(double d, int64_t* out);

// ---------------------------------------------------------------------------------------------
// UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates, nothing past U+10FFFF.

// The length (1-4) of the valid UTF-8 sequence that starts at s[i] (i < s.size()), 0 if none.
size_t Utf8SequenceLength(std::string_view s, size_t i);
// The offset of the first byte of `s` that is not part of valid UTF-8; s.size() if all is.
// Runs of ASCII are checked 8 bytes at a time.
size_t FirstInvalidUtf8(std::string_view s);

}  // namespace weir
