// weir: the command-line client. Thin: validation comes from weir_runtime, the rest is gRPC.
// Exit codes: 0 ok; 1 the cluster refused or the job did not finish; 2 bad input (usage, job
// file); 3 the job manager cannot be reached.
#include <CLI/CLI.hpp>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "weir/builtins.h"
#include "weir.grpc.pb.h"
#include "weir/job_graph.h"
#include "weir/lifecycle.h"
#include "weir/rpc_security.h"
#include "weir/security.h"

namespace {

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "weir: %s\n", msg.c_str());
  return code;
}

int FromGrpc(const grpc::Status& s, const std::string& what, const std::string& jm) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(3, "cannot reach the job manager at " + jm + " (" + s.error_message() +
                       "); is the cluster running? (deploy/start-cluster.sh; a secure cluster "
                       "needs --tls-ca or --config, docs/security.md)");
  }
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT ||
      s.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
      s.error_code() == grpc::StatusCode::PERMISSION_DENIED) {
    return Fail(2, what + ": " + s.error_message());
  }
  return Fail(1, what + ": " + s.error_message());
}

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.add_whitespace = true;
  o.always_print_primitive_fields = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string JsonLine(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions o;
  o.always_print_primitive_fields = true;
  o.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, o);
  return out;
}

std::string FormatTime(int64_t ms) {
  if (ms <= 0) return "-";
  time_t t = static_cast<time_t>(ms / 1000);
  char buf[32];
  struct tm tm;
  localtime_r(&t, &tm);
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

const char* Name(weir::proto::JobInfo::State s) {
  return weir::proto::JobInfo::State_Name(s).c_str();
}
const char* Name(weir::proto::SubtaskInfo::State s) {
  return weir::proto::SubtaskInfo::State_Name(s).c_str();
}

void PrintJob(const weir::proto::JobInfo& j) {
  std::printf("job:      %s\nname:     %s\nstate:    %s\nsubmitted: %s\n", j.job_id().c_str(),
              j.name().c_str(), Name(j.state()), FormatTime(j.submit_time_ms()).c_str());
  if (j.end_time_ms() > 0) std::printf("ended:    %s\n", FormatTime(j.end_time_ms()).c_str());
  if (!j.failure().empty()) std::printf("reason:   %s\n", j.failure().c_str());
  if (!j.restored_from().empty()) std::printf("restored: %s\n", j.restored_from().c_str());
  std::printf("restarts: %d\n", j.restarts());
  if (!j.last_failure().empty()) {
    std::printf("last failure: %s: %s\n", FormatTime(j.last_failure_time_ms()).c_str(),
                j.last_failure().c_str());
  }
  const auto& cp = j.checkpoints();
  std::printf("checkpoints: %lld completed, %lld failed, %lld in progress\n",
              static_cast<long long>(cp.completed()), static_cast<long long>(cp.failed()),
              static_cast<long long>(cp.in_progress()));
  if (cp.has_latest_completed()) {
    const auto& l = cp.latest_completed();
    std::printf("  latest: id %lld at %s, %lld ms, %llu bytes (%llu new), %s\n",
                static_cast<long long>(l.id()), FormatTime(l.trigger_time_ms()).c_str(),
                static_cast<long long>(l.duration_ms()),
                static_cast<unsigned long long>(l.state_size()),
                static_cast<unsigned long long>(l.incremental_size()), l.path().c_str());
  }
  if (cp.has_latest_savepoint()) {
    std::printf("  savepoint: id %lld, %s\n", static_cast<long long>(cp.latest_savepoint().id()),
                cp.latest_savepoint().path().c_str());
  }
  // Reconciliation per completed checkpoint: records read by sources against what sinks
  // committed and what was set aside on the way.
  int shown = 0;
  for (const auto& c : cp.recent_completed()) {
    if (c.counts().empty()) continue;
    if (++shown > 3) break;  // the newest three; the REST API and UI show the history
    auto get = [&](const char* k) -> long long {
      auto it = c.counts().find(k);
      return it == c.counts().end() ? 0 : static_cast<long long>(it->second);
    };
    const long long read = get("read"), committed = get("committed"), late = get("late"),
                    dirty = get("dirty"), filtered = get("filtered");
    // Rows of files whose commit failed (retried at the next completion) are not committed.
    const long long uncommitted =
        get("uncommitted") + get("uncommitted_late") + get("uncommitted_dirty");
    const long long diff = read - committed - late - dirty - filtered;
    std::string note = " (balanced)";
    if (uncommitted != 0) {
      note =
          " (" + std::to_string(uncommitted) + " in files whose commit failed and is retried" +
          (diff == uncommitted ? ")" : "; differs by " + std::to_string(diff - uncommitted) + ")");
    } else if (diff != 0) {
      note = " (differs by " + std::to_string(diff) +
             "; jobs that aggregate or fan out do not balance)";
    }
    std::printf(
        "  records at %lld: read %lld = committed %lld + late %lld + dirty %lld + "
        "filtered %lld%s\n",
        static_cast<long long>(c.id()), read, committed, late, dirty, filtered, note.c_str());
  }
  for (const auto& f : cp.recent_failures()) {
    std::printf("  failed: id %lld at %s: %s\n", static_cast<long long>(f.id()),
                FormatTime(f.trigger_time_ms()).c_str(), f.failure().c_str());
  }
  std::printf("slots:    %d\ntasks:\n", j.slots_needed());
  for (const auto& c : j.vertex_chain()) std::printf("  %s\n", c.c_str());
  // Live figures come with the task managers' heartbeats (about once a second).
  std::printf("%-20s %-7s %-12s %-18s %12s %12s %10s %10s %5s %5s %-19s\n", "TASK", "SUBTASK",
              "STATE", "TASKMANAGER", "RECORDS_IN", "RECORDS_OUT", "IN/S", "OUT/S", "BUSY%",
              "BP%", "WATERMARK");
  for (const auto& s : j.subtasks()) {
    const auto& m = s.metrics();
    std::printf("%-20s %-7d %-12s %-18s %12lld %12lld %10.0f %10.0f %5.0f %5.0f %-19s\n",
                s.task_id().c_str(), s.subtask(), Name(s.state()), s.tm_id().c_str(),
                static_cast<long long>(s.records_in()), static_cast<long long>(s.records_out()),
                m.records_in_per_second(), m.records_out_per_second(),
                m.busy_ms_per_second() / 10.0, m.backpressured_ms_per_second() / 10.0,
                m.has_output_watermark()  ? FormatTime(m.output_watermark()).c_str()
                : m.has_input_watermark() ? FormatTime(m.input_watermark()).c_str()
                                          : "-");
    if (!s.error().empty()) std::printf("    error: %s\n", s.error().c_str());
  }
}

// The job's sources (tasks with no inputs): records they read and their rate (a source's
// records in are what it produced; its chain may end in a sink and emit nothing).
void SourceFigures(const weir::proto::JobInfo& j, long long* records, double* rate) {
  *records = 0;
  *rate = 0;
  for (const auto& t : j.plan()) {
    if (t.inputs_size() > 0) continue;
    for (const auto& s : j.subtasks()) {
      if (s.task_id() != t.task_id()) continue;
      *records += static_cast<long long>(s.records_in());
      *rate += s.metrics().records_in_per_second();
    }
  }
}

// One line for `weir run --wait` on a terminal: state, records, rate, last checkpoint.
std::string ProgressLine(const weir::proto::JobInfo& j, int64_t now_ms) {
  long long records = 0;
  double rate = 0;
  SourceFigures(j, &records, &rate);
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %-10s %lld records, %.0f rec/s", j.job_id().c_str(),
                Name(j.state()), records, rate);
  std::string line = buf;
  const auto& cp = j.checkpoints();
  if (cp.has_latest_completed()) {
    const auto& l = cp.latest_completed();
    std::snprintf(buf, sizeof buf, ", checkpoint %lld (%lld ms, %lld s ago)",
                  static_cast<long long>(l.id()), static_cast<long long>(l.duration_ms()),
                  static_cast<long long>((now_ms - l.trigger_time_ms()) / 1000));
    line += buf;
  }
  if (j.restarts() > 0) line += ", " + std::to_string(j.restarts()) + " restarts";
  return line;
}

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}


// Everything the command line can say, for the command functions below.
struct Options {
  std::string jm;
  bool json = false;
  std::string file;
  bool wait = false, dry_run = false;
  double wait_timeout_s = 0;
  std::string from_savepoint;
  bool allow_non_restored = false;
  std::string job_id;
  std::string sp_dir;
  bool stop_savepoint = false;
  bool watch = false, once = false;
};

// The job manager's stub; every call gets a fresh context with a deadline.
struct Client {
  std::string jm;
  std::unique_ptr<weir::proto::JobManagerService::Stub> stub;
  std::string token;  // bearer token sent with every call (security.token_file)
  std::unique_ptr<grpc::ClientContext> Ctx(std::chrono::seconds deadline =
                                               std::chrono::seconds(10)) const {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + deadline);
    weir::AddBearerToken(c.get(), token);
    return c;
  }
};

// Polls the job until it ends (exit 0 iff FINISHED) or the timeout passes (exit 1).
int WaitForEnd(const Client& c, const std::string& job_id, double timeout_s) {
  auto start = std::chrono::steady_clock::now();
  // On a terminal, one line that updates in place (stderr: stdout keeps only the job id).
  const bool progress = isatty(STDERR_FILENO) == 1;
  auto last_line = start - std::chrono::seconds(1);
  size_t last_len = 0;
  auto end_line = [&] {
    if (progress && last_len > 0) std::fprintf(stderr, "\n");
  };
  for (;;) {
    weir::proto::JobId id;
    id.set_job_id(job_id);
    weir::proto::JobInfo info;
    grpc::Status gs = c.stub->GetJob(c.Ctx().get(), id, &info);
    if (!gs.ok()) return FromGrpc(gs, "status", c.jm);
    auto st = weir::FromProto(info.state());
    if (progress && (std::chrono::steady_clock::now() - last_line >= std::chrono::milliseconds(500) ||
                     (st && weir::IsTerminal(*st)))) {
      last_line = std::chrono::steady_clock::now();
      std::string line = ProgressLine(info, WallMs());
      const size_t len = line.size();
      if (line.size() < last_len) line.append(last_len - line.size(), ' ');
      std::fprintf(stderr, "\r%s", line.c_str());
      std::fflush(stderr);
      last_len = len;
    }
    if (st && weir::IsTerminal(*st)) {
      end_line();
      if (*st == weir::JobState::kFinished) return 0;
      return Fail(1, "job " + job_id + " ended " + Name(info.state()) +
                         (info.failure().empty() ? "" : ": " + info.failure()));
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (timeout_s > 0 && waited > timeout_s) {
      end_line();
      return Fail(1, "job " + job_id + " still " + Name(info.state()) + " after " +
                         std::to_string(static_cast<int>(timeout_s)) + " s" +
                         (info.failure().empty() ? "" : " (" + info.failure() + ")"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

// weir run: validate locally (BuiltinCatalog), then submit, then optionally wait.
int Run(const Options& o, const Client& c) {
  std::ifstream in(o.file);
  if (!in) return Fail(2, "cannot open job file '" + o.file + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  auto spec = weir::ParseJobFile(ss.str());
  if (!spec.ok()) return Fail(2, o.file + ": " + spec.status().message());
  auto plan = weir::BuildPlan(spec.value(), weir::BuiltinCatalog());
  if (!plan.ok()) return Fail(2, o.file + ": " + plan.status().message());
  if (o.dry_run) {
    std::printf("job '%s' is valid; needs %d slot(s)\n", plan->spec.name.c_str(),
                plan->SlotsNeeded());
    for (const auto& t : plan->tasks) std::printf("  %s\n", plan->ChainDescription(t).c_str());
    return 0;
  }
  weir::proto::SubmitJobRequest req;
  weir::ToProto(spec.value(), req.mutable_graph());
  req.set_restore_path(o.from_savepoint);
  req.set_allow_non_restored_state(o.allow_non_restored);
  weir::proto::SubmitJobResponse resp;
  grpc::Status s = c.stub->SubmitJob(c.Ctx().get(), req, &resp);
  if (!s.ok()) return FromGrpc(s, "submit", c.jm);
  std::printf("%s\n", resp.job_id().c_str());
  std::fflush(stdout);
  return o.wait ? WaitForEnd(c, resp.job_id(), o.wait_timeout_s) : 0;
}

int Savepoint(const Options& o, const Client& c, bool stop) {
  if (stop && !o.stop_savepoint) {
    return Fail(2, "stop needs --savepoint (a plain stop is 'weir cancel JOB')");
  }
  weir::proto::SavepointRequest req;
  req.set_job_id(o.job_id);
  req.set_directory(o.sp_dir);
  req.set_stop(stop);
  weir::proto::SavepointResponse resp;
  grpc::Status s = c.stub->TriggerSavepoint(c.Ctx(std::chrono::minutes(15)).get(), req, &resp);
  if (!s.ok()) return FromGrpc(s, stop ? "stop" : "savepoint", c.jm);
  std::printf("%s\n", resp.path().c_str());
  return 0;
}

int List(const Options& o, const Client& c) {
  weir::proto::ListJobsResponse resp;
  grpc::Status s = c.stub->ListJobs(c.Ctx().get(), weir::proto::ListJobsRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, "list", c.jm);
  if (o.json) {
    std::printf("%s", Json(resp).c_str());
    return 0;
  }
  std::printf("%-24s %-12s %-20s %s\n", "JOB", "STATE", "SUBMITTED", "NAME");
  for (const auto& j : resp.jobs()) {
    std::printf("%-24s %-12s %-20s %s\n", j.job_id().c_str(), Name(j.state()),
                FormatTime(j.submit_time_ms()).c_str(), j.name().c_str());
  }
  return 0;
}

// weir status: once, or (on a terminal, or with --watch) refreshed every second while the job
// runs. --json --watch prints one JSON document per line.
int Status(const Options& o, const Client& c) {
  const bool tty = isatty(STDOUT_FILENO) == 1;
  const bool watch = !o.once && (o.watch || (tty && !o.json));
  for (bool first = true;; first = false) {
    weir::proto::JobId id;
    id.set_job_id(o.job_id);
    weir::proto::JobInfo info;
    grpc::Status s = c.stub->GetJob(c.Ctx().get(), id, &info);
    if (!s.ok()) return FromGrpc(s, "status", c.jm);
    if (o.json) {
      std::printf("%s%s", watch ? JsonLine(info).c_str() : Json(info).c_str(), watch ? "\n" : "");
    } else {
      if (watch && tty) std::printf("\033[H\033[2J");  // redraw in place
      if (watch && !tty && !first) std::printf("\n");
      PrintJob(info);
    }
    std::fflush(stdout);
    auto st = weir::FromProto(info.state());
    if (!watch || (st && weir::IsTerminal(*st))) return 0;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
}

int Cancel(const Options& o, const Client& c) {
  weir::proto::JobId id;
  id.set_job_id(o.job_id);
  weir::proto::CancelJobResponse resp;
  grpc::Status s = c.stub->CancelJob(c.Ctx().get(), id, &resp);
  if (!s.ok()) return FromGrpc(s, "cancel", c.jm);
  std::printf("%s %s\n", o.job_id.c_str(), Name(resp.state()));
  return 0;
}

int TaskManagers(const Options& o, const Client& c) {
  weir::proto::ListTaskManagersResponse resp;
  grpc::Status s =
      c.stub->ListTaskManagers(c.Ctx().get(), weir::proto::ListTaskManagersRequest(), &resp);
  if (!s.ok()) return FromGrpc(s, "taskmanagers", c.jm);
  if (o.json) {
    std::printf("%s", Json(resp).c_str());
    return 0;
  }
  std::printf("%-24s %-22s %-22s %6s %6s\n", "ID", "RPC", "DATA", "SLOTS", "FREE");
  for (const auto& t : resp.taskmanagers()) {
    std::printf("%-24s %-22s %-22s %6d %6d\n", t.tm_id().c_str(), t.rpc_address().c_str(),
                t.data_address().c_str(), t.slots(), t.free_slots());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weir: submit and manage Weir stream-processing jobs"};
  app.require_subcommand(1);
  Options o;
  const char* env_jm = std::getenv("WEIR_JOBMANAGER");
  o.jm = env_jm ? env_jm : "127.0.0.1:6123";
  app.add_option("--jobmanager,-m", o.jm, "job manager host:port (env WEIR_JOBMANAGER)");
  // A secure cluster (docs/security.md): the CA that signed the job manager's certificate and
  // the bearer token, from flags, the environment, or a cluster config's `security:` section.
  std::string config_file, tls_ca, token_file;
  if (const char* e = std::getenv("WEIR_TLS_CA")) tls_ca = e;
  if (const char* e = std::getenv("WEIR_TOKEN_FILE")) token_file = e;
  app.add_option("--config", config_file,
                 "cluster config file: its security.tls.ca and security.token_file are used");
  app.add_option("--tls-ca", tls_ca, "CA file: connect with TLS and verify the job manager "
                                     "(env WEIR_TLS_CA)");
  app.add_option("--token-file", token_file, "file holding the bearer token (env WEIR_TOKEN_FILE)");

  auto* run = app.add_subcommand("run", "validate and submit a job file (YAML or JSON)");
  run->add_option("FILE", o.file, "job file")->required();
  run->add_flag("--wait", o.wait, "wait until the job ends; exit 0 iff it FINISHED");
  run->add_option("--timeout", o.wait_timeout_s, "with --wait: give up after this many seconds");
  run->add_flag("--dry-run", o.dry_run, "validate and print the plan, do not submit");
  run->add_option("--from-savepoint,-s", o.from_savepoint,
                  "start from a savepoint or retained checkpoint directory");
  run->add_flag("--allow-non-restored-state", o.allow_non_restored,
                "skip state of vertices the job no longer has");
  auto* savepoint = app.add_subcommand("savepoint", "take a savepoint of a running job");
  savepoint->add_option("JOB", o.job_id, "job id")->required();
  savepoint->add_option("--dir,-d", o.sp_dir, "parent directory (default: the cluster's)");
  auto* stop = app.add_subcommand("stop", "stop a job (with --savepoint: take one first)");
  stop->add_option("JOB", o.job_id, "job id")->required();
  stop->add_flag("--savepoint", o.stop_savepoint, "take a savepoint, then stop (required for now)");
  stop->add_option("--dir,-d", o.sp_dir, "savepoint parent directory (default: the cluster's)");
  auto* list = app.add_subcommand("list", "list jobs");
  list->add_flag("--json", o.json, "JSON output");
  auto* status = app.add_subcommand("status", "show a job");
  status->add_option("JOB", o.job_id, "job id")->required();
  status->add_flag("--json", o.json, "JSON output");
  status->add_flag("--watch,-w", o.watch,
                   "refresh every second until the job ends (the default on a terminal)");
  status->add_flag("--once", o.once, "print once, also on a terminal");
  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("JOB", o.job_id, "job id")->required();
  auto* tms = app.add_subcommand("taskmanagers", "list task managers");
  tms->add_flag("--json", o.json, "JSON output");
  CLI11_PARSE(app, argc, argv);

  if (!config_file.empty()) {
    auto cfg = weir::Config::Load(config_file, config_file);
    if (!cfg.ok()) return Fail(2, cfg.status().message());
    auto sec = weir::ParseSecurityOptions(*cfg);
    if (!sec.ok()) return Fail(2, config_file + ": " + sec.status().message());
    if (tls_ca.empty()) tls_ca = sec->tls.ca;
    if (token_file.empty()) token_file = sec->token_file;
  }
  std::string token;
  if (!token_file.empty()) {
    auto t = weir::ReadSecretFile(token_file);
    if (!t.ok()) return Fail(2, t.status().message());
    token = *t;
  }
  auto creds = weir::UserChannelCredentials(tls_ca);
  if (!creds.ok()) return Fail(2, creds.status().message());
  Client c{o.jm, weir::proto::JobManagerService::NewStub(grpc::CreateChannel(o.jm, *creds)), token};
  if (*run) return Run(o, c);
  if (*savepoint || *stop) return Savepoint(o, c, stop->parsed());
  if (*list) return List(o, c);
  if (*status) return Status(o, c);
  if (*cancel) return Cancel(o, c);
  if (*tms) return TaskManagers(o, c);
  return 0;
}
