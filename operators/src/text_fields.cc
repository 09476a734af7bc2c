#include "text_fields.h"

#include <cmath>

#include "weir/text_formats.h"

namespace weir {

Result<Type> ParseFieldType(const Config& fc) {
  WEIR_ASSIGN_OR_RETURN(std::string type, fc.GetString("type", std::string("string")));
  auto t = ParseType(type);
  if (!t.ok() || *t == Type::kNull) {
    return Status::InvalidArgument(fc.path() + ".type: unknown type '" + type +
                                   "' (bool, int64, double, string, bytes, timestamp)");
  }
  return *t;
}

Status ParseTimeFormat(const Config& fc, FieldSpec& f) {
  if (!fc.Has("format")) return Status::Ok();
  if (f.type != Type::kTimestamp) {
    return Status::InvalidArgument(fc.path() + ".format: only timestamp fields take a format");
  }
  WEIR_ASSIGN_OR_RETURN(std::string tf, fc.GetString("format"));
  f.time_format_set = true;
  if (tf == "iso8601") {
    f.time_format = TimeFormat::kIso8601;
  } else if (tf == "epoch_ms") {
    f.time_format = TimeFormat::kEpochMs;
  } else if (tf == "epoch_s") {
    f.time_format = TimeFormat::kEpochS;
  } else if (tf.find('%') != std::string::npos) {
    f.time_format = TimeFormat::kPattern;
    f.pattern = tf;
    Status valid = ValidateTimePattern(tf, kParseDirectives);
    if (!valid.ok()) return valid.WithContext(fc.path() + ".format");
  } else {
    return Status::InvalidArgument(fc.path() +
                                   ".format: expected iso8601, epoch_ms, "
                                   "epoch_s or a strptime pattern (e.g. %Y-%m-%d), got '" +
                                   tf + "'");
  }
  return Status::Ok();
}

bool ConvertText(const FieldSpec& f, std::string_view text, bool is_number, Value* out,
                 std::string* reason) {
  auto fail = [&](TextError e, std::string_view as) {
    *reason = "field '" + f.name + "': " + TextErrorStatus(e, text, as).message();
    return false;
  };
  switch (f.type) {
    case Type::kString:
    case Type::kBytes:
      out->SetString(text);
      if (f.type == Type::kBytes) out->type = Type::kBytes;
      return true;
    case Type::kInt64: {
      int64_t v;
      const TextError e = TryParseInt64(text, &v);
      if (e.ok()) {
        out->SetInt64(v);
        return true;
      }
      double d;
      if (is_number && TryParseDouble(text, &d).ok() && ExactDoubleToInt64(d, &v)) {
        out->SetInt64(v);
        return true;
      }
      return fail(e, "int64");
    }
    case Type::kDouble: {
      double d;
      const TextError e = TryParseDouble(text, &d);
      if (!e.ok()) return fail(e, "double");
      out->SetDouble(d);
      return true;
    }
    case Type::kBool: {
      bool b;
      const TextError e = TryParseBool(text, &b);
      if (!e.ok()) return fail(e, "bool");
      out->SetBool(b);
      return true;
    }
    case Type::kTimestamp: {
      TimeFormat tf = f.time_format;
      if (!f.time_format_set && is_number) tf = TimeFormat::kEpochMs;
      int64_t ms = 0;
      switch (tf) {
        case TimeFormat::kEpochMs: {
          // Milliseconds: an int64, or a double truncated toward zero (1.5 is 1 ms).
          if (TryParseInt64(text, &ms).ok()) break;
          double d;
          const TextError e = TryParseDouble(text, &d);
          if (!e.ok()) return fail(e, "timestamp (epoch_ms)");
          if (!DoubleToInt64(d, &ms)) {
            return fail(TextError{"out of range"}, "timestamp (epoch_ms)");
          }
          break;
        }
        case TimeFormat::kEpochS: {
          double d;
          const TextError e = TryParseDouble(text, &d);
          if (!e.ok()) return fail(e, "timestamp (epoch_s)");
          if (!(std::fabs(d) <= 9.0e15)) {
            return fail(TextError{"out of range"}, "timestamp (epoch_s)");
          }
          ms = static_cast<int64_t>(std::llround(d * 1000.0));
          break;
        }
        case TimeFormat::kIso8601: {
          const TextError e = TryParseIsoTimestamp(text, &ms);
          if (!e.ok()) return fail(e, "timestamp (iso8601)");
          break;
        }
        case TimeFormat::kPattern: {
          const TextError e = TryParseTime(text, f.pattern, &ms);
          if (!e.ok()) return fail(e, "timestamp ('" + f.pattern + "')");
          break;
        }
      }
      out->SetTimestamp(ms);
      return true;
    }
    case Type::kNull:
      break;
  }
  *reason = "field '" + f.name + "': cannot convert to " + TypeName(f.type);
  return false;
}

bool SplitCsv(std::string_view line, char delim, char quote, std::vector<std::string_view>* cells,
              std::string* scratch, std::string* reason) {
  cells->clear();
  scratch->clear();
  scratch->reserve(line.size());
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  size_t i = 0;
  while (true) {
    if (i < line.size() && line[i] == quote) {
      const size_t from = scratch->size();
      ++i;
      while (true) {
        if (i >= line.size()) {
          *reason = "CSV: unterminated quoted field";
          return false;
        }
        if (line[i] == quote) {
          if (i + 1 < line.size() && line[i + 1] == quote) {
            scratch->push_back(quote);
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        scratch->push_back(line[i++]);
      }
      cells->emplace_back(scratch->data() + from, scratch->size() - from);
      if (i < line.size() && line[i] != delim) {
        *reason = "CSV: text after a closing quote";
        return false;
      }
    } else {
      size_t end = line.find(delim, i);
      if (end == std::string_view::npos) end = line.size();
      cells->push_back(line.substr(i, end - i));
      i = end;
    }
    if (i >= line.size()) return true;
    ++i;  // the delimiter
  }
}

Result<CsvDialect> ParseCsvDialect(const Config& csv) {
  WEIR_RETURN_IF_ERROR(csv.CheckKeys({"delimiter", "quote"}));
  WEIR_ASSIGN_OR_RETURN(std::string delim, csv.GetString("delimiter", std::string(",")));
  WEIR_ASSIGN_OR_RETURN(std::string quote, csv.GetString("quote", std::string("\"")));
  if (delim.size() != 1 || quote.size() != 1 || delim == quote) {
    return Status::InvalidArgument(csv.path() +
                                   ": delimiter and quote must be single, different characters");
  }
  return CsvDialect{delim[0], quote[0]};
}

}  // namespace weir
