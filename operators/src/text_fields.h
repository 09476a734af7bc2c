// Typed fields from text, shared by the operators that read text records: `parse` (JSON, CSV
// and raw messages) and `lookup_join` (its CSV side input). One field declaration
// ({name, type, format, ...}), one conversion of a cell to a typed Value (weir/text_formats.h's
// rules: docs/time-and-numbers.md), one CSV record splitter, so the same text means the same
// value in both. Internal to weir_operators. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "weir/config.h"
#include "weir/status.h"
#include "weir/types.h"

namespace weir {

enum class TimeFormat { kIso8601, kEpochMs, kEpochS, kPattern };

struct FieldSpec {
  std::string name;
  Type type = Type::kString;
  std::string path;  // json
  int column = -1;   // csv
  TimeFormat time_format = TimeFormat::kIso8601;
  bool time_format_set = false;
  std::string pattern;  // a time pattern (weir/text_formats.h)
  bool required = true;
  bool has_default = false;
  Value def;
};

// A field's `type:` (default string): any type but null. Errors name fc.path().type.
Result<Type> ParseFieldType(const Config& fc);

// A timestamp field's `format:` (iso8601, epoch_ms, epoch_s or a strptime pattern) into `f`
// (whose type is set); refused on other types.
Status ParseTimeFormat(const Config& fc, FieldSpec& f);

// Converts text (a JSON string, number or literal, or a CSV cell) to the field's type with the
// rules of weir/text_formats.h, so parse, expressions and outputs agree on every input.
// `is_number`: the text was a JSON number (timestamps then default to epoch_ms, and an integral
// number such as 7.0 or 1e3 is an int64: JSON has one number type). On failure, `reason` names
// the field and the text. Allocates only for a string value longer than out's capacity.
bool ConvertText(const FieldSpec& f, std::string_view text, bool is_number, Value* out,
                 std::string* reason);

// A `csv: {delimiter, quote}` map (defaults "," and '"'): single, different characters.
struct CsvDialect {
  char delimiter = ',';
  char quote = '"';
};
Result<CsvDialect> ParseCsvDialect(const Config& csv);

// Splits one CSV record into cells (RFC 4180 quoting; a trailing CR/LF is ignored); views point
// into `line` or `scratch`. False with `reason` on an unterminated quote or text after one.
bool SplitCsv(std::string_view line, char delim, char quote, std::vector<std::string_view>* cells,
              std::string* scratch, std::string* reason);

}  // namespace weir
