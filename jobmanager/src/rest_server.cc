#include "weir/jobmanager/rest_server.h"

#include <civetweb.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <type_traits>
#include <vector>

#include "weir/clock.h"
#include "weir/job_graph.h"
#include "weir/logging.h"

#ifndef WEIR_DEFAULT_WEB_DIR
#define WEIR_DEFAULT_WEB_DIR ""
#endif
#ifndef WEIR_VERSION
#define WEIR_VERSION "unknown"
#endif

namespace weir::jm {
namespace {

const ModuleLog Log("rest");

// ------------------------------------------------------------------------------ JSON output
// A small JSON value: objects keep their keys in insertion order (as Flink's responses read).
class Json {
 public:
  enum class Kind { kNull, kBool, kInt, kDouble, kString, kArray, kObject };
  Json() = default;
  Json(std::nullptr_t) {}
  Json(bool b) : kind_(Kind::kBool), b_(b) {}
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) Json(T i)
      : kind_(Kind::kInt), i_(static_cast<int64_t>(i)) {}
  Json(double d) : kind_(Kind::kDouble), d_(d) {}
  Json(const char* s) : kind_(Kind::kString), s_(s) {}
  Json(std::string s) : kind_(Kind::kString), s_(std::move(s)) {}
  static Json Array() {
    Json j;
    j.kind_ = Kind::kArray;
    return j;
  }
  static Json Object() {
    Json j;
    j.kind_ = Kind::kObject;
    return j;
  }
  // Object member (added if absent).
  Json& operator[](const std::string& key) {
    if (kind_ == Kind::kNull) kind_ = Kind::kObject;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (keys_[i] == key) return items_[i];
    }
    keys_.push_back(key);
    items_.emplace_back();
    return items_.back();
  }
  void Push(Json v) {
    if (kind_ == Kind::kNull) kind_ = Kind::kArray;
    items_.push_back(std::move(v));
  }
  std::string Dump() const {
    std::string out;
    DumpTo(out);
    return out;
  }

 private:
  static void Quote(const std::string& s, std::string& out) {
    out += '"';
    for (unsigned char c : s) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
          } else {
            out += static_cast<char>(c);
          }
      }
    }
    out += '"';
  }
  void DumpTo(std::string& out) const {
    switch (kind_) {
      case Kind::kNull:
        out += "null";
        break;
      case Kind::kBool:
        out += b_ ? "true" : "false";
        break;
      case Kind::kInt:
        out += std::to_string(i_);
        break;
      case Kind::kDouble: {
        if (!std::isfinite(d_)) {
          out += "null";
          break;
        }
        char buf[64];
        auto r = std::to_chars(buf, buf + sizeof buf, d_);
        out.append(buf, r.ptr);
        break;
      }
      case Kind::kString:
        Quote(s_, out);
        break;
      case Kind::kArray:
        out += '[';
        for (size_t i = 0; i < items_.size(); ++i) {
          if (i) out += ',';
          items_[i].DumpTo(out);
        }
        out += ']';
        break;
      case Kind::kObject:
        out += '{';
        for (size_t i = 0; i < items_.size(); ++i) {
          if (i) out += ',';
          Quote(keys_[i], out);
          out += ':';
          items_[i].DumpTo(out);
        }
        out += '}';
        break;
    }
  }

  Kind kind_ = Kind::kNull;
  bool b_ = false;
  int64_t i_ = 0;
  double d_ = 0;
  std::string s_;
  std::vector<std::string> keys_;
  std::vector<Json> items_;
};

// ------------------------------------------------------------------------------ responses
struct Response {
  Response() = default;
  Response(int s, std::string b) : status(s), body(std::move(b)) {}
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  std::string allow;  // for 405
  std::string www_authenticate;  // for 401
};

Response JsonResponse(int status, const Json& j) {
  return Response{status, j.Dump()};
}

Response Error(int status, const std::string& message) {
  Json j = Json::Object();
  Json errs = Json::Array();
  errs.Push(message);
  j["errors"] = std::move(errs);
  return JsonResponse(status, j);
}

void SendResponse(mg_connection* c, const Response& r) {
  mg_response_header_start(c, r.status);
  mg_response_header_add(c, "Content-Type", r.content_type.c_str(), -1);
  const std::string len = std::to_string(r.body.size());
  mg_response_header_add(c, "Content-Length", len.c_str(), -1);
  mg_response_header_add(c, "Cache-Control", "no-store", -1);
  mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
  if (!r.allow.empty()) mg_response_header_add(c, "Allow", r.allow.c_str(), -1);
  if (!r.www_authenticate.empty()) {
    mg_response_header_add(c, "WWW-Authenticate", r.www_authenticate.c_str(), -1);
  }
  mg_response_header_send(c);
  if (!r.body.empty()) mg_write(c, r.body.data(), r.body.size());
}

Response MethodNotAllowed(const std::string& method, const std::string& path,
                          const std::string& allow) {
  Response r =
      Error(405, "method " + method + " not allowed on " + path + " (allowed: " + allow + ")");
  r.allow = allow;
  return r;
}

int HttpStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kAlreadyExists:
      return 409;
    case StatusCode::kResourceExhausted:
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

Response FromStatus(const Status& s) {
  return Error(HttpStatus(s), s.message());
}

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Payload Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "";
  }
}

// ------------------------------------------------------------------------------ job views
std::string StateName(proto::JobInfo::State s) {
  return proto::JobInfo::State_Name(s);
}

bool IsTerminalJob(proto::JobInfo::State s) {
  return s == proto::JobInfo::FINISHED || s == proto::JobInfo::CANCELED ||
         s == proto::JobInfo::FAILED;
}

// One task (operator chain) of a job: its plan (possibly synthesized from the subtasks when
// the job manager has no plan for it) and its subtasks.
struct TaskView {
  proto::TaskPlanInfo plan;
  std::vector<const proto::SubtaskInfo*> subtasks;
};

std::vector<TaskView> Tasks(const proto::JobInfo& info) {
  std::vector<TaskView> tasks;
  std::map<std::string, size_t> index;
  for (const auto& p : info.plan()) {
    index[p.task_id()] = tasks.size();
    tasks.push_back(TaskView{p, {}});
  }
  for (const auto& s : info.subtasks()) {
    auto it = index.find(s.task_id());
    if (it == index.end()) {
      TaskView t;
      t.plan.set_task_id(s.task_id());
      t.plan.add_vertices(s.task_id());
      it = index.emplace(s.task_id(), tasks.size()).first;
      tasks.push_back(std::move(t));
    }
    tasks[it->second].subtasks.push_back(&s);
  }
  for (auto& t : tasks) {
    if (t.plan.parallelism() == 0) t.plan.set_parallelism(static_cast<int>(t.subtasks.size()));
  }
  return tasks;
}

std::string TaskName(const proto::TaskPlanInfo& p) {
  std::string name;
  for (int i = 0; i < p.vertices_size(); ++i) {
    if (i) name += " -> ";
    name += p.vertices(i);
  }
  return name.empty() ? p.task_id() : name;
}

Json SubtaskMetricsJson(const proto::SubtaskInfo& s) {
  const auto& m = s.metrics();
  Json j = Json::Object();
  j["read-records"] = std::max(s.records_in(), m.records_in());
  j["write-records"] = std::max(s.records_out(), m.records_out());
  j["read-bytes"] = m.bytes_in();
  j["write-bytes"] = m.bytes_out();
  j["read-records-per-second"] = m.records_in_per_second();
  j["write-records-per-second"] = m.records_out_per_second();
  j["busy-ratio"] = m.busy_ms_per_second() / 1000.0;
  j["idle-ratio"] = m.idle_ms_per_second() / 1000.0;
  j["backpressured-ratio"] = m.backpressured_ms_per_second() / 1000.0;
  j["input-watermark"] = m.has_input_watermark() ? Json(m.input_watermark()) : Json();
  j["output-watermark"] = m.has_output_watermark() ? Json(m.output_watermark()) : Json();
  j["input-buffer-usage"] = m.input_buffer_usage();
  j["output-buffer-usage"] = m.output_buffer_usage();
  return j;
}

// A task's figures over its subtasks: counts and rates summed, ratios at their maximum (the
// busiest subtask is the one that limits the task), watermarks at their minimum.
Json TaskMetricsJson(const TaskView& t) {
  int64_t rin = 0, rout = 0, bin = 0, bout = 0;
  double in_rate = 0, out_rate = 0, busy = 0, bp = 0, idle = 0;
  bool have_in_wm = false, have_out_wm = false;
  int64_t in_wm = 0, out_wm = 0;
  for (const auto* s : t.subtasks) {
    const auto& m = s->metrics();
    rin += std::max(s->records_in(), m.records_in());
    rout += std::max(s->records_out(), m.records_out());
    bin += m.bytes_in();
    bout += m.bytes_out();
    in_rate += m.records_in_per_second();
    out_rate += m.records_out_per_second();
    busy = std::max(busy, m.busy_ms_per_second() / 1000.0);
    bp = std::max(bp, m.backpressured_ms_per_second() / 1000.0);
    idle += m.idle_ms_per_second() / 1000.0;
    if (m.has_input_watermark()) {
      in_wm = have_in_wm ? std::min(in_wm, m.input_watermark()) : m.input_watermark();
      have_in_wm = true;
    }
    if (m.has_output_watermark()) {
      out_wm = have_out_wm ? std::min(out_wm, m.output_watermark()) : m.output_watermark();
      have_out_wm = true;
    }
  }
  Json j = Json::Object();
  j["read-records"] = rin;
  j["write-records"] = rout;
  j["read-bytes"] = bin;
  j["write-bytes"] = bout;
  j["read-records-per-second"] = in_rate;
  j["write-records-per-second"] = out_rate;
  j["busy-ratio"] = busy;
  j["backpressured-ratio"] = bp;
  j["idle-ratio"] = t.subtasks.empty() ? 0.0 : idle / static_cast<double>(t.subtasks.size());
  j["input-watermark"] = have_in_wm ? Json(in_wm) : Json();
  j["output-watermark"] = have_out_wm ? Json(out_wm) : Json();
  return j;
}

// The task's state from its subtasks' (Flink's ExecutionState aggregation, simplified).
std::string TaskStatus(const TaskView& t) {
  if (t.subtasks.empty()) return "CREATED";
  std::map<proto::SubtaskInfo::State, int> n;
  for (const auto* s : t.subtasks) n[s->state()]++;
  for (auto s :
       {proto::SubtaskInfo::FAILED, proto::SubtaskInfo::CANCELING, proto::SubtaskInfo::DEPLOYING,
        proto::SubtaskInfo::INITIALIZING, proto::SubtaskInfo::RUNNING}) {
    if (n.count(s)) return proto::SubtaskInfo::State_Name(s);
  }
  if (n.count(proto::SubtaskInfo::CANCELED)) return "CANCELED";
  if (n.count(proto::SubtaskInfo::FINISHED)) return "FINISHED";
  return "CREATED";
}

Json StatusCounts(const std::vector<const proto::SubtaskInfo*>& subtasks) {
  Json j = Json::Object();
  for (int i = proto::SubtaskInfo::DEPLOYING; i <= proto::SubtaskInfo::FAILED; ++i) {
    j[proto::SubtaskInfo::State_Name(static_cast<proto::SubtaskInfo::State>(i))] = 0;
  }
  std::map<std::string, int> n;
  for (const auto* s : subtasks) n[proto::SubtaskInfo::State_Name(s->state())]++;
  for (const auto& [k, v] : n) j[k] = v;
  return j;
}

int64_t Duration(const proto::JobInfo& info, int64_t now) {
  if (info.submit_time_ms() == 0) return 0;
  int64_t end = info.end_time_ms() > 0 ? info.end_time_ms() : now;
  return std::max<int64_t>(0, end - info.submit_time_ms());
}

Json JobOverviewJson(const proto::JobInfo& info, int64_t now) {
  Json j = Json::Object();
  j["jid"] = info.job_id();
  j["name"] = info.name();
  j["state"] = StateName(info.state());
  j["start-time"] = info.submit_time_ms();
  j["end-time"] = info.end_time_ms() > 0 ? info.end_time_ms() : int64_t{-1};
  j["duration"] = Duration(info, now);
  j["last-modification"] = std::max(info.end_time_ms(), info.attempt_start_time_ms());
  std::vector<const proto::SubtaskInfo*> all;
  for (const auto& s : info.subtasks()) all.push_back(&s);
  j["tasks"] = StatusCounts(all);
  j["restarts"] = info.restarts();
  return j;
}

Json CheckpointJson(const proto::CheckpointSummary& c, const char* status) {
  Json j = Json::Object();
  j["id"] = c.id();
  j["status"] = status;
  j["is_savepoint"] = c.savepoint();
  j["trigger_timestamp"] = c.trigger_time_ms();
  j["latest_ack_timestamp"] = c.trigger_time_ms() + c.duration_ms();
  j["end_to_end_duration"] = c.duration_ms();
  j["state_size"] = c.state_size();
  j["checkpointed_size"] = c.incremental_size();
  j["alignment_duration"] = c.alignment_ms();
  j["sync_duration"] = c.sync_ms();
  j["async_duration"] = c.async_ms();
  j["external_path"] = c.path();
  if (!c.failure().empty()) j["failure_message"] = c.failure();
  Json counts = Json::Object();
  std::map<std::string, int64_t> sorted(c.counts().begin(), c.counts().end());
  for (const auto& [k, v] : sorted) counts[k] = v;
  j["counts"] = std::move(counts);
  return j;
}

bool Present(const proto::CheckpointSummary& c) {
  return c.id() > 0 || !c.path().empty();
}

// Reconciliation of a completed checkpoint: read = committed + late + dirty + filtered.
Json ReconciliationJson(const proto::CheckpointSummary& c) {
  if (!Present(c) || c.counts().empty()) return Json();
  auto get = [&](const char* k) {
    auto it = c.counts().find(k);
    return it == c.counts().end() ? int64_t{0} : it->second;
  };
  Json j = Json::Object();
  j["checkpoint"] = c.id();
  int64_t read = get("read"), committed = get("committed"), late = get("late"),
          dirty = get("dirty"), filtered = get("filtered");
  j["read"] = read;
  j["committed"] = committed;
  j["late"] = late;
  j["dirty"] = dirty;
  j["filtered"] = filtered;
  // As `weir status` says it: rows in files whose commit failed (retried at the next
  // completion) are not committed yet; jobs that aggregate or fan out do not balance at all.
  const int64_t uncommitted =
      get("uncommitted") + get("uncommitted_late") + get("uncommitted_dirty");
  j["uncommitted"] = uncommitted;
  j["unaccounted"] = read - committed - late - dirty - filtered;
  j["balanced"] = read == committed + late + dirty + filtered;
  return j;
}

Json MinMaxAvg(const std::vector<double>& v) {
  Json j = Json::Object();
  if (v.empty()) {
    j["min"] = 0;
    j["max"] = 0;
    j["avg"] = 0;
    return j;
  }
  double sum = 0;
  for (double x : v) sum += x;
  j["min"] = static_cast<int64_t>(*std::min_element(v.begin(), v.end()));
  j["max"] = static_cast<int64_t>(*std::max_element(v.begin(), v.end()));
  j["avg"] = static_cast<int64_t>(sum / static_cast<double>(v.size()));
  return j;
}

// ------------------------------------------------------------------------------ requests
std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> segs;
  std::string cur;
  for (char c : path) {
    if (c == '/') {
      if (!cur.empty()) segs.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) segs.push_back(std::move(cur));
  return segs;
}

// A query parameter (decoded); nullopt when absent.
std::optional<std::string> QueryParam(const mg_request_info* ri, const char* name) {
  if (ri->query_string == nullptr) return std::nullopt;
  std::string buf(4096, '\0');
  int n = mg_get_var(ri->query_string, std::strlen(ri->query_string), name, buf.data(), buf.size());
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

Result<bool> ParseBool(const std::string& name, const std::string& v) {
  if (v == "true" || v == "1" || v.empty()) return true;
  if (v == "false" || v == "0") return false;
  return Status::InvalidArgument("query parameter " + name + ": expected true or false, got '" + v +
                                 "'");
}

// A request body that must be a JSON object (empty: {}). Keys not in `known` are refused.
Result<google::protobuf::Struct> ParseJsonObject(const std::string& body,
                                                 const std::vector<std::string>& known) {
  google::protobuf::Struct s;
  bool blank = std::all_of(body.begin(), body.end(),
                           [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (blank) return s;
  auto st = google::protobuf::util::JsonStringToMessage(body, &s);
  if (!st.ok()) {
    return Status::InvalidArgument("request body: not a JSON object (" + std::string(st.message()) +
                                   ")");
  }
  for (const auto& [k, v] : s.fields()) {
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string list;
      for (const auto& n : known) list += (list.empty() ? "" : ", ") + n;
      return Status::InvalidArgument("request body: unknown field '" + k + "' (known: " + list +
                                     ")");
    }
  }
  return s;
}

Result<std::string> StringField(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || it->second.has_null_value()) return std::string();
  if (!it->second.has_string_value()) {
    return Status::InvalidArgument("request body: field '" + key + "' must be a string");
  }
  return it->second.string_value();
}

Result<bool> BoolField(const google::protobuf::Struct& s, const std::string& key) {
  auto it = s.fields().find(key);
  if (it == s.fields().end() || it->second.has_null_value()) return false;
  if (!it->second.has_bool_value()) {
    return Status::InvalidArgument("request body: field '" + key + "' must be true or false");
  }
  return it->second.bool_value();
}

std::string ContentType(const std::filesystem::path& p) {
  const std::string ext = p.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "application/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".json") return "application/json";
  return "application/octet-stream";
}

bool SafeSegment(const std::string& s) {
  if (s.empty() || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

// ------------------------------------------------------------------------------ savepoints
// Asynchronous savepoint (and stop) requests, Flink's trigger-then-poll shape. Shared with the
// job manager's callbacks, so it may outlive the server.
struct SavepointTable {
  struct Op {
    std::string id, job_id;
    std::string status = "IN_PROGRESS";  // then COMPLETED
    std::string location, failure;       // failure set: it failed
  };
  std::mutex mu;
  std::deque<Op> ops;  // oldest first, at most RestServer::kMaxSavepointRequests
  std::mt19937_64 rng{std::random_device{}()};

  std::string Add(const std::string& job_id) {
    std::lock_guard<std::mutex> lock(mu);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(rng()),
                  static_cast<unsigned long long>(rng()));
    while (ops.size() >= RestServer::kMaxSavepointRequests) ops.pop_front();
    Op op;
    op.id = buf;
    op.job_id = job_id;
    ops.push_back(std::move(op));
    return buf;
  }
  void Finish(const std::string& id, const Result<proto::SavepointResponse>& r) {
    std::lock_guard<std::mutex> lock(mu);
    for (auto& op : ops) {
      if (op.id != id) continue;
      op.status = "COMPLETED";
      if (r.ok()) {
        op.location = r.value().path();
      } else {
        op.failure = r.status().message();
        if (op.failure.empty()) op.failure = "savepoint failed";
      }
    }
  }
  std::optional<Op> Get(const std::string& job_id, const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    for (const auto& op : ops) {
      if (op.id == id && op.job_id == job_id) return op;
    }
    return std::nullopt;
  }
};

class RestServer::Impl {
 public:
  Impl(RestOptions o, JobManager* jm)
      : options_(std::move(o)), jm_(jm), savepoints_(std::make_shared<SavepointTable>()) {
    if (options_.web_dir.empty()) options_.web_dir = WEIR_DEFAULT_WEB_DIR;
  }

  const RestOptions& options() const { return options_; }

  int Handle(mg_connection* c) {
    const mg_request_info* ri = mg_get_request_info(c);
    Response r;
    try {
      r = Dispatch(c, ri);
    } catch (const std::exception& e) {
      Log()->error("{} {}: {}", ri->request_method, ri->local_uri, e.what());
      r = Error(500, std::string("internal error: ") + e.what());
    } catch (...) {
      r = Error(500, "internal error");
    }
    Send(c, r);
    return 1;
  }

 private:
  static void Send(mg_connection* c, const Response& r) { SendResponse(c, r); }

  // Reads the body, at most kMaxBodyBytes. On excess: 413 (the rest is read and dropped, up to
  // a bound, so that the client sees the answer rather than a reset connection).
  static std::optional<Response> ReadBody(mg_connection* c, const mg_request_info* ri,
                                          std::string* body) {
    constexpr size_t kDrainLimit = 64u << 20;
    char buf[16384];
    auto drain = [&] {
      size_t dropped = 0;
      int n;
      while (dropped < kDrainLimit && (n = mg_read(c, buf, sizeof buf)) > 0)
        dropped += static_cast<size_t>(n);
    };
    const std::string too_big =
        "request body larger than " + std::to_string(kMaxBodyBytes) + " bytes";
    if (ri->content_length > static_cast<long long>(kMaxBodyBytes)) {
      drain();
      return Error(413, too_big);
    }
    int n;
    while ((n = mg_read(c, buf, sizeof buf)) > 0) {
      body->append(buf, static_cast<size_t>(n));
      if (body->size() > kMaxBodyBytes) {
        body->clear();
        drain();
        return Error(413, too_big);
      }
    }
    return std::nullopt;
  }

  Response Dispatch(mg_connection* c, const mg_request_info* ri) {
    const std::string method = ri->request_method;
    const std::string path = ri->local_uri ? ri->local_uri : "/";
    const std::vector<std::string> segs = SplitPath(path);
    const std::string root = segs.empty() ? "" : segs[0];
    // With a token configured every API call (and /metrics) carries it; the UI's static files
    // hold no data and are served to anyone, the UI then asks for the token.
    const bool api = root == "overview" || root == "config" || root == "metrics" ||
                     root == "taskmanagers" || root == "jobs";
    if (api && options_.authorized) {
      const char* auth = mg_get_header(c, "Authorization");
      if (!options_.authorized(auth ? std::string_view(auth) : std::string_view())) {
        Response r = Error(401, auth ? "the bearer token is wrong"
                                     : "a bearer token is required (Authorization: Bearer <token>)");
        r.www_authenticate = "Bearer realm=\"weir\"";
        return r;
      }
    }
    std::string body;
    if (method == "POST" || method == "PATCH" || method == "PUT") {
      if (auto err = ReadBody(c, ri, &body)) return *err;
    }
    if (root == "overview" || root == "config" || root == "metrics") {
      if (segs.size() != 1) return Error(404, "not found: " + path);
      if (method != "GET") return MethodNotAllowed(method, path, "GET");
      if (root == "overview") return Overview();
      if (root == "config") return Config();
      return Metrics();
    }
    if (root == "taskmanagers") {
      if (segs.size() > 2) return Error(404, "not found: " + path);
      if (method != "GET") return MethodNotAllowed(method, path, "GET");
      return TaskManagers(segs.size() == 2 ? segs[1] : "");
    }
    if (root == "jobs") return Jobs(method, path, segs, ri, body);
    if (method != "GET") return MethodNotAllowed(method, path, "GET");
    return Static(path, segs);
  }

  Response Jobs(const std::string& method, const std::string& path,
                const std::vector<std::string>& segs, const mg_request_info* ri,
                const std::string& body) {
    if (segs.size() == 1) {
      if (method == "GET") return JobList();
      if (method == "POST") return Submit(ri, body);
      return MethodNotAllowed(method, path, "GET, POST");
    }
    if (segs.size() == 2 && segs[1] == "overview") {
      if (method != "GET") return MethodNotAllowed(method, path, "GET");
      return JobsOverview();
    }
    const std::string& id = segs[1];
    const std::string sub = segs.size() > 2 ? segs[2] : "";
    // Which methods each resource takes.
    std::string allow;
    if (segs.size() == 2) {
      allow = "GET, PATCH";
    } else if (segs.size() == 3 && (sub == "checkpoints" || sub == "exceptions" ||
                                    sub == "throughput" || sub == "vertices")) {
      allow = "GET";
    } else if (segs.size() == 3 && (sub == "savepoints" || sub == "stop" || sub == "cancel")) {
      allow = "POST";
    } else if (segs.size() == 4 && (sub == "vertices" || sub == "savepoints")) {
      allow = "GET";
    } else {
      return Error(404, "not found: " + path);
    }
    if (allow.find(method) == std::string::npos || method.empty()) {
      return MethodNotAllowed(method, path, allow);
    }
    auto job = jm_->GetJob(id);
    if (!job.ok()) return FromStatus(job.status());
    const proto::JobInfo& info = job.value();
    if (segs.size() == 2) {
      if (method == "GET") return JobDetails(info);
      return Patch(id, ri);
    }
    if (sub == "vertices" && segs.size() == 3) return VertexList(info);
    if (sub == "vertices") return Vertex(info, segs[3]);
    if (sub == "checkpoints") return Checkpoints(info);
    if (sub == "exceptions") return Exceptions(info);
    if (sub == "throughput") return Throughput(id);
    if (sub == "cancel") return Cancel(id);
    if (sub == "savepoints" && segs.size() == 4) return SavepointStatus(id, segs[3]);
    if (sub == "savepoints") return TriggerSavepoint(id, body, /*stop_key=*/false);
    return TriggerSavepoint(id, body, /*stop_key=*/true);
  }

  // ---------------------------------------------------------------------------- GETs
  Response Overview() {
    Json j = Json::Object();
    int slots = 0, free_slots = 0;
    auto tms = jm_->ListTaskManagers();
    for (const auto& t : tms) {
      slots += t.slots();
      free_slots += t.free_slots();
    }
    int running = 0, finished = 0, cancelled = 0, failed = 0;
    for (const auto& job : jm_->ListJobs()) {
      switch (job.state()) {
        case proto::JobInfo::FINISHED:
          finished++;
          break;
        case proto::JobInfo::CANCELED:
          cancelled++;
          break;
        case proto::JobInfo::FAILED:
          failed++;
          break;
        default:
          running++;
          break;
      }
    }
    j["taskmanagers"] = static_cast<int64_t>(tms.size());
    j["slots-total"] = slots;
    j["slots-available"] = free_slots;
    j["jobs-running"] = running;
    j["jobs-finished"] = finished;
    j["jobs-cancelled"] = cancelled;
    j["jobs-failed"] = failed;
    j["weir-version"] = WEIR_VERSION;
    return JsonResponse(200, j);
  }

  Response Config() {
    const auto& o = options_.jm;
    Json j = Json::Object();
    j["refresh-interval"] = 2000;
    j["timezone-name"] = "UTC";
    j["timezone-offset"] = 0;
    j["weir-version"] = WEIR_VERSION;
    Json features = Json::Object();
    features["web-submit"] = true;
    features["web-cancel"] = true;
    j["features"] = std::move(features);
    j["rpc-address"] = options_.rpc_address;
    j["rest-address"] = options_.address;
    j["heartbeat-interval-ms"] = o.heartbeat_interval_ms;
    j["heartbeat-timeout-ms"] = o.heartbeat_timeout_ms;
    j["slot-wait-timeout-ms"] = o.slot_wait_timeout_ms;
    j["checkpoint-dir"] = o.checkpoints.directory;
    j["checkpoint-interval-ms"] = o.checkpoints.interval_ms;
    j["checkpoint-timeout-ms"] = o.checkpoints.timeout_ms;
    j["checkpoints-retained"] = o.checkpoints.retained;
    j["savepoint-dir"] = o.savepoint_dir;
    j["ha-dir"] = o.ha_dir;
    j["retained-jobs"] = o.retained_jobs;
    return JsonResponse(200, j);
  }

  Response Metrics() {
    if (!options_.metrics_text) return Error(404, "metrics are not enabled on this job manager");
    Response r{200, options_.metrics_text()};
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  }

  Response TaskManagers(const std::string& only) {
    const int64_t now = NowMs();
    Json list = Json::Array();
    for (const auto& t : jm_->ListTaskManagers()) {
      Json j = Json::Object();
      j["id"] = t.tm_id();
      j["path"] = t.rpc_address();
      j["dataAddress"] = t.data_address();
      j["metricsAddress"] = t.metrics_address();
      j["slotsNumber"] = t.slots();
      j["freeSlots"] = t.free_slots();
      j["state"] = t.state();
      j["lastHeartbeat"] = t.last_heartbeat_ms();
      j["timeSinceLastHeartbeat"] =
          t.last_heartbeat_ms() > 0 ? std::max<int64_t>(0, now - t.last_heartbeat_ms()) : 0;
      j["registeredTime"] = t.registered_time_ms();
      if (!only.empty() && t.tm_id() == only) return JsonResponse(200, j);
      list.Push(std::move(j));
    }
    if (!only.empty()) return Error(404, "no task manager with id '" + only + "'");
    Json j = Json::Object();
    j["taskmanagers"] = std::move(list);
    return JsonResponse(200, j);
  }

  Response JobList() {
    Json list = Json::Array();
    for (const auto& job : jm_->ListJobs()) {
      Json j = Json::Object();
      j["id"] = job.job_id();
      j["status"] = StateName(job.state());
      list.Push(std::move(j));
    }
    Json j = Json::Object();
    j["jobs"] = std::move(list);
    return JsonResponse(200, j);
  }

  Response JobsOverview() {
    const int64_t now = NowMs();
    Json list = Json::Array();
    for (const auto& job : jm_->ListJobs()) list.Push(JobOverviewJson(job, now));
    Json j = Json::Object();
    j["jobs"] = std::move(list);
    return JsonResponse(200, j);
  }

  // The chained operators of a task, in order: [{"id", "type"}].
  static Json OperatorsJson(const proto::TaskPlanInfo& plan) {
    Json ops = Json::Array();
    for (int i = 0; i < plan.vertices_size(); ++i) {
      Json op = Json::Object();
      op["id"] = plan.vertices(i);
      op["type"] = i < plan.vertex_types_size() ? plan.vertex_types(i) : std::string();
      ops.Push(std::move(op));
    }
    return ops;
  }

  Json VertexJson(const proto::JobInfo& info, const TaskView& t) {
    Json v = Json::Object();
    v["id"] = t.plan.task_id();
    v["name"] = TaskName(t.plan);
    v["parallelism"] = t.plan.parallelism();
    v["status"] = TaskStatus(t);
    v["start-time"] =
        info.attempt_start_time_ms() > 0 ? info.attempt_start_time_ms() : info.submit_time_ms();
    v["operators"] = OperatorsJson(t.plan);
    v["tasks"] = StatusCounts(t.subtasks);
    v["metrics"] = TaskMetricsJson(t);
    return v;
  }

  Response JobDetails(const proto::JobInfo& info) {
    const int64_t now = NowMs();
    Json j = JobOverviewJson(info, now);
    j["now"] = now;
    j["isStoppable"] = info.state() == proto::JobInfo::RUNNING;
    j["attempt"] = info.attempt();
    j["failure"] = info.failure();
    j["last-failure"] = info.last_failure();
    j["restored-from"] = info.restored_from();
    j["slots-needed"] = info.slots_needed();
    const auto tasks = Tasks(info);
    Json vertices = Json::Array();
    for (const auto& t : tasks) vertices.Push(VertexJson(info, t));
    j["vertices"] = std::move(vertices);
    j["status-counts"] = j["tasks"];
    Json plan = Json::Object();
    plan["jid"] = info.job_id();
    plan["name"] = info.name();
    Json nodes = Json::Array();
    for (const auto& t : tasks) {
      Json n = Json::Object();
      n["id"] = t.plan.task_id();
      n["parallelism"] = t.plan.parallelism();
      n["description"] = TaskName(t.plan);
      n["operators"] = OperatorsJson(t.plan);
      Json inputs = Json::Array();
      int num = 0;
      for (const auto& in : t.plan.inputs()) {
        Json e = Json::Object();
        e["num"] = num++;
        e["id"] = in.from_task();
        e["from_vertex"] = in.from_vertex();
        e["to_vertex"] = in.to_vertex();
        std::string strategy = in.partitioning();
        std::transform(strategy.begin(), strategy.end(), strategy.begin(), ::toupper);
        e["ship_strategy"] = strategy;
        e["exchange"] = "pipelined_bounded";
        e["output"] = in.output();
        Json keys = Json::Array();
        for (const auto& k : in.keys()) keys.Push(k);
        e["keys"] = std::move(keys);
        inputs.Push(std::move(e));
      }
      n["inputs"] = std::move(inputs);
      nodes.Push(std::move(n));
    }
    plan["nodes"] = std::move(nodes);
    j["plan"] = std::move(plan);
    return JsonResponse(200, j);
  }

  Response VertexList(const proto::JobInfo& info) {
    Json list = Json::Array();
    for (const auto& t : Tasks(info)) list.Push(VertexJson(info, t));
    Json j = Json::Object();
    j["vertices"] = std::move(list);
    return JsonResponse(200, j);
  }

  Response Vertex(const proto::JobInfo& info, const std::string& vid) {
    for (const auto& t : Tasks(info)) {
      if (t.plan.task_id() != vid) continue;
      Json j = VertexJson(info, t);
      j["now"] = NowMs();
      Json subtasks = Json::Array();
      for (const auto* s : t.subtasks) {
        Json st = Json::Object();
        st["subtask"] = s->subtask();
        st["status"] = proto::SubtaskInfo::State_Name(s->state());
        st["attempt"] = info.attempt();
        st["taskmanager-id"] = s->tm_id();
        st["failure"] = s->error();
        st["metrics"] = SubtaskMetricsJson(*s);
        subtasks.Push(std::move(st));
      }
      j["subtasks"] = std::move(subtasks);
      return JsonResponse(200, j);
    }
    return Error(404, "job " + info.job_id() + " has no vertex '" + vid + "'");
  }

  Response Checkpoints(const proto::JobInfo& info) {
    const auto& cs = info.checkpoints();
    Json j = Json::Object();
    Json counts = Json::Object();
    counts["restored"] = info.restored_from().empty() ? 0 : 1;
    counts["total"] = cs.completed() + cs.failed() + cs.in_progress();
    counts["in_progress"] = cs.in_progress();
    counts["completed"] = cs.completed();
    counts["failed"] = cs.failed();
    j["counts"] = std::move(counts);
    std::vector<double> durations, sizes, incremental;
    for (const auto& c : cs.recent_completed()) {
      durations.push_back(static_cast<double>(c.duration_ms()));
      sizes.push_back(static_cast<double>(c.state_size()));
      incremental.push_back(static_cast<double>(c.incremental_size()));
    }
    Json summary = Json::Object();
    summary["end_to_end_duration"] = MinMaxAvg(durations);
    summary["state_size"] = MinMaxAvg(sizes);
    summary["checkpointed_size"] = MinMaxAvg(incremental);
    j["summary"] = std::move(summary);
    Json latest = Json::Object();
    latest["completed"] = Present(cs.latest_completed())
                              ? CheckpointJson(cs.latest_completed(), "COMPLETED")
                              : Json();
    latest["savepoint"] = Present(cs.latest_savepoint())
                              ? CheckpointJson(cs.latest_savepoint(), "COMPLETED")
                              : Json();
    latest["failed"] =
        cs.recent_failures_size() > 0 ? CheckpointJson(cs.recent_failures(0), "FAILED") : Json();
    if (info.restored_from().empty()) {
      latest["restored"] = Json();
    } else {
      Json r = Json::Object();
      r["external_path"] = info.restored_from();
      latest["restored"] = std::move(r);
    }
    j["latest"] = std::move(latest);
    // History: completed and failed, newest (highest id) first.
    std::vector<std::pair<const proto::CheckpointSummary*, const char*>> all;
    for (const auto& c : cs.recent_completed()) all.emplace_back(&c, "COMPLETED");
    for (const auto& c : cs.recent_failures()) all.emplace_back(&c, "FAILED");
    if (cs.recent_completed_size() == 0 && Present(cs.latest_completed())) {
      all.emplace_back(&cs.latest_completed(), "COMPLETED");
    }
    std::stable_sort(all.begin(), all.end(),
                     [](const auto& a, const auto& b) { return a.first->id() > b.first->id(); });
    Json history = Json::Array();
    for (const auto& [c, status] : all) history.Push(CheckpointJson(*c, status));
    j["history"] = std::move(history);
    j["reconciliation"] = ReconciliationJson(cs.latest_completed());
    return JsonResponse(200, j);
  }

  Response Exceptions(const proto::JobInfo& info) {
    Json j = Json::Object();
    Json all = Json::Array();
    Json entries = Json::Array();
    std::string root;
    int64_t root_time = 0;
    auto add = [&](const std::string& cause, int64_t time, bool root_cause, int attempt) {
      if (root_cause && root.empty()) {
        root = cause;
        root_time = time;
      }
      Json a = Json::Object();
      a["exception"] = cause;
      a["timestamp"] = time;
      a["root-cause"] = root_cause;
      all.Push(std::move(a));
      Json e = Json::Object();
      e["exceptionName"] = cause.substr(0, cause.find(':'));
      e["stacktrace"] = cause;
      e["timestamp"] = time;
      e["root-cause"] = root_cause;
      e["attempt"] = attempt;
      entries.Push(std::move(e));
    };
    for (const auto& e : info.exceptions())
      add(e.cause(), e.time_ms(), e.root_cause(), e.attempt());
    if (info.exceptions_size() == 0 && !info.last_failure().empty()) {
      add(info.last_failure(), info.last_failure_time_ms(), true, info.attempt());
    }
    j["root-exception"] = root.empty() ? Json() : Json(root);
    j["timestamp"] = root.empty() ? Json() : Json(root_time);
    j["all-exceptions"] = std::move(all);
    j["truncated"] = false;
    Json history = Json::Object();
    history["entries"] = std::move(entries);
    history["truncated"] = false;
    j["exceptionHistory"] = std::move(history);
    return JsonResponse(200, j);
  }

  Response Throughput(const std::string& id) {
    auto h = jm_->ThroughputHistory(id);
    if (!h.ok()) return FromStatus(h.status());
    Json samples = Json::Array();
    for (const auto& s : h.value()) {
      Json j = Json::Object();
      j["time"] = s.time_ms();
      Json in = Json::Object(), out = Json::Object();
      std::map<std::string, double> ins(s.records_in_per_second().begin(),
                                        s.records_in_per_second().end());
      std::map<std::string, double> outs(s.records_out_per_second().begin(),
                                         s.records_out_per_second().end());
      for (const auto& [k, v] : ins) in[k] = v;
      for (const auto& [k, v] : outs) out[k] = v;
      j["records-in-per-second"] = std::move(in);
      j["records-out-per-second"] = std::move(out);
      samples.Push(std::move(j));
    }
    Json j = Json::Object();
    j["samples"] = std::move(samples);
    return JsonResponse(200, j);
  }

  // ---------------------------------------------------------------------------- actions
  Response Submit(const mg_request_info* ri, const std::string& body) {
    const std::string savepoint = QueryParam(ri, "savepointPath").value_or("");
    bool allow = false;
    if (auto v = QueryParam(ri, "allowNonRestoredState")) {
      auto b = ParseBool("allowNonRestoredState", *v);
      if (!b.ok()) return FromStatus(b.status());
      allow = *b;
    }
    if (std::all_of(body.begin(), body.end(),
                    [](char c) { return std::isspace(static_cast<unsigned char>(c)); })) {
      return Error(400, "request body: empty; send the job file (YAML or JSON) as the body");
    }
    Result<std::string> id = Status::Internal("unset");
    try {
      auto spec = ParseJobFile(body);
      if (!spec.ok()) return Error(400, "job file: " + spec.status().message());
      proto::JobGraph graph;
      ToProto(spec.value(), &graph);
      id = jm_->SubmitJob(graph, savepoint, allow);
    } catch (const std::exception& e) {
      return Error(400, std::string("job file rejected: ") + e.what());
    }
    if (!id.ok()) {
      // The job file or the savepoint path is at fault, not the URL.
      int status = HttpStatus(id.status());
      if (status == 404 || status == 500) status = 400;
      return Error(status, id.status().message());
    }
    Log()->info("job {} submitted over REST", id.value());
    Json j = Json::Object();
    j["jobid"] = id.value();
    return JsonResponse(200, j);
  }

  Response Patch(const std::string& id, const mg_request_info* ri) {
    const std::string mode = QueryParam(ri, "mode").value_or("cancel");
    if (mode == "stop") {
      return Error(400, "mode=stop: use POST /jobs/" + id + "/stop (stop with a savepoint)");
    }
    if (mode != "cancel") {
      return Error(400, "query parameter mode: expected 'cancel', got '" + mode + "'");
    }
    return Cancel(id);
  }

  Response Cancel(const std::string& id) {
    auto r = jm_->CancelJob(id);
    if (!r.ok()) return FromStatus(r.status());
    Json j = Json::Object();
    j["status"] = std::string(weir::JobStateName(r.value()));
    return JsonResponse(202, j);
  }

  // POST /jobs/:id/savepoints {"target-directory", "cancel-job"} or POST /jobs/:id/stop
  // {"targetDirectory", "drain"}: both answer {"request-id"} and run in the background.
  Response TriggerSavepoint(const std::string& id, const std::string& body, bool stop_endpoint) {
    const std::vector<std::string> known =
        stop_endpoint ? std::vector<std::string>{"targetDirectory", "drain"}
                      : std::vector<std::string>{"target-directory", "cancel-job", "formatType"};
    auto obj = ParseJsonObject(body, known);
    if (!obj.ok()) return FromStatus(obj.status());
    auto dir = StringField(*obj, stop_endpoint ? "targetDirectory" : "target-directory");
    if (!dir.ok()) return FromStatus(dir.status());
    bool stop = stop_endpoint;
    if (stop_endpoint) {
      auto drain = BoolField(*obj, "drain");
      if (!drain.ok()) return FromStatus(drain.status());
      if (*drain) return Error(400, "request body: drain: not supported (use false)");
    } else {
      auto cancel = BoolField(*obj, "cancel-job");
      if (!cancel.ok()) return FromStatus(cancel.status());
      stop = *cancel;
    }
    proto::SavepointRequest req;
    req.set_job_id(id);
    req.set_directory(*dir);
    req.set_stop(stop);
    const std::string rid = savepoints_->Add(id);
    std::weak_ptr<SavepointTable> table = savepoints_;
    jm_->TriggerSavepoint(req, [table, rid](Result<proto::SavepointResponse> r) {
      if (auto t = table.lock()) t->Finish(rid, r);
    });
    Json j = Json::Object();
    j["request-id"] = rid;
    return JsonResponse(202, j);
  }

  Response SavepointStatus(const std::string& id, const std::string& rid) {
    auto op = savepoints_->Get(id, rid);
    if (!op) return Error(404, "no savepoint request '" + rid + "' for job " + id);
    Json j = Json::Object();
    Json status = Json::Object();
    status["id"] = op->status;
    j["status"] = std::move(status);
    if (op->status == "COMPLETED") {
      Json operation = Json::Object();
      if (op->failure.empty()) {
        operation["location"] = op->location;
      } else {
        Json cause = Json::Object();
        cause["class"] = "weir.SavepointFailure";
        cause["stack-trace"] = op->failure;
        cause["serialized-throwable"] = op->failure;
        operation["failure-cause"] = std::move(cause);
      }
      j["operation"] = std::move(operation);
    }
    return JsonResponse(200, j);
  }

  // ---------------------------------------------------------------------------- static files
  Response Static(const std::string& path, const std::vector<std::string>& segs) {
    namespace fs = std::filesystem;
    fs::path root, file;
    if (segs.size() == 2 && segs[0] == "lib") {
      static const std::map<std::string, std::string> kLibs = {
          {"d3.js", "d3/d3.js"},
          {"d3.min.js", "d3/d3.min.js"},
          {"chart.js", "chart.js/chart.js"},
          {"chart.min.js", "chart.js/chart.min.js"},
      };
      auto it = kLibs.find(segs[1]);
      if (it == kLibs.end()) return Error(404, "not found: " + path);
      root = options_.js_lib_dir;
      file = root / it->second;
    } else {
      if (options_.web_dir.empty()) return Error(404, "not found: " + path + " (no web UI)");
      root = options_.web_dir;
      file = root;
      if (segs.empty()) {
        file /= "index.html";
      } else {
        for (const auto& s : segs) {
          if (!SafeSegment(s)) return Error(404, "not found: " + path);
          file /= s;
        }
      }
    }
    // Symbolic links must not lead out of the root either.
    std::error_code ec;
    const fs::path real_root = fs::weakly_canonical(root, ec);
    const fs::path real_file = fs::weakly_canonical(file, ec);
    if (ec || !fs::is_regular_file(real_file, ec)) return Error(404, "not found: " + path);
    auto rel = real_file.lexically_relative(real_root);
    if (rel.empty() || *rel.begin() == "..") return Error(404, "not found: " + path);
    std::ifstream in(real_file, std::ios::binary);
    if (!in) return Error(404, "not found: " + path);
    std::stringstream ss;
    ss << in.rdbuf();
    Response r{200, ss.str()};
    r.content_type = ContentType(real_file);
    return r;
  }

  RestOptions options_;
  JobManager* jm_;
  std::shared_ptr<SavepointTable> savepoints_;
};

namespace {

int HandleRequest(mg_connection* c, void* data) {
  return static_cast<RestServer::Impl*>(data)->Handle(c);
}

// Errors civetweb answers itself, before any handler (a request that is not HTTP, an unknown
// method): the same JSON error shape as the API's.
int HttpError(mg_connection* c, int status, const char* message) {
  SendResponse(c, Error(status, std::string("HTTP request: ") + (message ? message : "bad request")));
  return 0;
}

int LogMessage(const mg_connection*, const char* message) {
  Log()->warn("civetweb: {}", message);
  return 1;
}

std::once_flag g_civetweb_init;

}  // namespace

RestServer::RestServer(RestOptions options, JobManager* jm)
    : impl_(std::make_unique<Impl>(std::move(options), jm)) {}

RestServer::~RestServer() {
  Stop();
}

Result<int> RestServer::Start() {
  std::call_once(g_civetweb_init, [] { mg_init_library(0); });
  const RestOptions& o = impl_->options();
  const bool https = !o.tls_cert_pem.empty() && !o.tls_key_pem.empty();
  const std::string listen = https ? "127.0.0.1:0" : o.address;  // behind the TlsFront
  const std::string threads = std::to_string(std::max(1, o.num_threads));
  const char* opts[] = {
      "listening_ports", listen.c_str(),      "num_threads", threads.c_str(), "request_timeout_ms",
      "10000",           "enable_keep_alive", "no",          nullptr};
  mg_callbacks callbacks{};
  callbacks.log_message = LogMessage;
  callbacks.http_error = HttpError;
  mg_init_data init{};
  init.callbacks = &callbacks;
  init.user_data = impl_.get();
  init.configuration_options = opts;
  unsigned code = 0;
  char text[256] = {0};
  mg_error_data err{};
  err.code = &code;
  err.text = text;
  err.text_buffer_size = sizeof text;
  ctx_ = mg_start2(&init, &err);
  if (ctx_ == nullptr) {
    return Status::IoError("cannot serve REST on " + o.address + ": " +
                           (text[0] ? std::string(text) : "address in use or invalid?"));
  }
  mg_set_request_handler(ctx_, "/", HandleRequest, impl_.get());
  mg_server_port ports[4];
  int n = mg_get_server_ports(ctx_, 4, ports);
  if (n < 1 || ports[0].port <= 0) {
    Stop();
    return Status::IoError("cannot serve REST on " + o.address + ": no bound port");
  }
  int port = ports[0].port;
  if (https) {
    TlsFrontOptions fo;
    fo.address = o.address;
    fo.backend_port = port;
    fo.cert_pem = o.tls_cert_pem;
    fo.key_pem = o.tls_key_pem;
    auto front = TlsFront::Start(std::move(fo));
    if (!front.ok()) {
      Stop();
      return front.status();
    }
    https_ = std::move(front).value();
    port = https_->port();
  }
  Log()->info("REST API and web UI on {}://{} (port {}), UI files from {}",
              https ? "https" : "http", o.address, port,
              o.web_dir.empty() ? std::string(WEIR_DEFAULT_WEB_DIR) : o.web_dir);
  return port;
}

void RestServer::Stop() {
  if (https_) {
    https_->Stop();  // no new requests reach civetweb
    https_.reset();
  }
  if (ctx_ != nullptr) {
    mg_stop(ctx_);  // joins civetweb's threads
    ctx_ = nullptr;
  }
}

}  // namespace weir::jm
