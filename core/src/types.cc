#include "weir/types.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace weir {

const char* StatusCodeName(StatusCode code) {
  switch (code) {
    case StatusCode::kOk: return "OK";
    case StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case StatusCode::kNotFound: return "NOT_FOUND";
    case StatusCode::kAlreadyExists: return "ALREADY_EXISTS";
    case StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case StatusCode::kUnavailable: return "UNAVAILABLE";
    case StatusCode::kCancelled: return "CANCELLED";
    case StatusCode::kDeadlineExceeded: return "DEADLINE_EXCEEDED";
    case StatusCode::kIoError: return "IO_ERROR";
    case StatusCode::kDataLoss: return "DATA_LOSS";
    case StatusCode::kInternal: return "INTERNAL";
  }
  return "UNKNOWN";
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return std::string(StatusCodeName(code_)) + ": " + message_;
}

const char* TypeName(Type t) {
  switch (t) {
    case Type::kNull: return "null";
    case Type::kBool: return "bool";
    case Type::kInt64: return "int64";
    case Type::kDouble: return "double";
    case Type::kString: return "string";
    case Type::kBytes: return "bytes";
    case Type::kTimestamp: return "timestamp";
  }
  return "unknown";
}

Result<Type> ParseType(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  if (n == "bool" || n == "boolean") return Type::kBool;
  if (n == "int64" || n == "int" || n == "long" || n == "bigint") return Type::kInt64;
  if (n == "double" || n == "float") return Type::kDouble;
  if (n == "string" || n == "varchar") return Type::kString;
  if (n == "bytes") return Type::kBytes;
  if (n == "timestamp") return Type::kTimestamp;
  return Status::InvalidArgument("unknown type '" + std::string(name) +
                                 "' (expected bool, int64, double, string, bytes, timestamp)");
}

bool Value::operator==(const Value& o) const {
  if (type != o.type) return false;
  switch (type) {
    case Type::kNull: return true;
    case Type::kBool: return b == o.b;
    case Type::kInt64:
    case Type::kTimestamp: return i == o.i;
    case Type::kDouble: return d == o.d;
    case Type::kString:
    case Type::kBytes: return s == o.s;
  }
  return false;
}

std::string Value::ToString() const {
  switch (type) {
    case Type::kNull: return "null";
    case Type::kBool: return b ? "true" : "false";
    case Type::kInt64: return std::to_string(i);
    case Type::kTimestamp: return std::to_string(i);
    case Type::kDouble: {
      char buf[32];
      snprintf(buf, sizeof buf, "%.17g", d);
      return buf;
    }
    case Type::kString:
    case Type::kBytes: return s;
  }
  return "?";
}

int Schema::IndexOf(std::string_view name) const {
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (fields_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

std::string Schema::ToString() const {
  std::string out;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ", ";
    out += fields_[i].name + ":" + TypeName(fields_[i].type);
  }
  return out;
}

std::string Schema::FieldNames() const {
  std::string out;
  for (size_t i = 0; i < fields_.size(); ++i) {
    if (i) out += ", ";
    out += fields_[i].name;
  }
  return out.empty() ? "(none)" : out;
}

std::string Row::ToString() const {
  std::string out = "(";
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ", ";
    out += fields[i].ToString();
  }
  return out + ")";
}

}  // namespace weir
