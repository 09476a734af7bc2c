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

#include "weir/builtins.h"
#include "weir.grpc.pb.h"
#include "weir/job_graph.h"
#include "weir/lifecycle.h"

namespace {

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "weir: %s\n", msg.c_str());
  return code;
}

int FromGrpc(const grpc::Status& s, const std::string& what, const std::string& jm) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE ||
      s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Fail(3, "cannot reach the job manager at " + jm + " (" + s.error_message() +
                       "); is the cluster running? (deploy/start-cluster.sh)");
  }
  if (s.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
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
  for (const auto& c : cp.recent_completed()) {
    if (c.counts().empty()) continue;
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
  std::printf("%-20s %-8s %-13s %-22s %12s %12s\n", "TASK", "SUBTASK", "STATE", "TASKMANAGER",
              "RECORDS_IN", "RECORDS_OUT");
  for (const auto& s : j.subtasks()) {
    std::printf("%-20s %-8d %-13s %-22s %12lld %12lld\n", s.task_id().c_str(), s.subtask(),
                Name(s.state()), s.tm_id().c_str(), static_cast<long long>(s.records_in()),
                static_cast<long long>(s.records_out()));
    if (!s.error().empty()) std::printf("    error: %s\n", s.error().c_str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"weir: submit and manage Weir stream-processing jobs"};
  app.require_subcommand(1);
  const char* env_jm = std::getenv("WEIR_JOBMANAGER");
  std::string jm = env_jm ? env_jm : "127.0.0.1:6123";
  bool json = false;
  app.add_option("--jobmanager,-m", jm, "job manager host:port (env WEIR_JOBMANAGER)");

  auto* run = app.add_subcommand("run", "validate and submit a job file (YAML or JSON)");
  std::string file;
  bool wait = false, dry_run = false;
  double wait_timeout_s = 0;
  run->add_option("FILE", file, "job file")->required();
  run->add_flag("--wait", wait, "wait until the job ends; exit 0 iff it FINISHED");
  run->add_option("--timeout", wait_timeout_s, "with --wait: give up after this many seconds");
  run->add_flag("--dry-run", dry_run, "validate and print the plan, do not submit");
  std::string from_savepoint;
  bool allow_non_restored = false;
  run->add_option("--from-savepoint,-s", from_savepoint,
                  "start from a savepoint or retained checkpoint directory");
  run->add_flag("--allow-non-restored-state", allow_non_restored,
                "skip state of vertices the job no longer has");
  std::string job_id;
  auto* savepoint = app.add_subcommand("savepoint", "take a savepoint of a running job");
  std::string sp_dir;
  savepoint->add_option("JOB", job_id, "job id")->required();
  savepoint->add_option("--dir,-d", sp_dir, "parent directory (default: the cluster's)");
  auto* stop = app.add_subcommand("stop", "stop a job (with --savepoint: take one first)");
  bool stop_savepoint = false;
  stop->add_option("JOB", job_id, "job id")->required();
  stop->add_flag("--savepoint", stop_savepoint, "take a savepoint, then stop (required for now)");
  stop->add_option("--dir,-d", sp_dir, "savepoint parent directory (default: the cluster's)");
  auto* list = app.add_subcommand("list", "list jobs");
  list->add_flag("--json", json, "JSON output");
  auto* status = app.add_subcommand("status", "show a job");
  status->add_option("JOB", job_id, "job id")->required();
  status->add_flag("--json", json, "JSON output");
  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("JOB", job_id, "job id")->required();
  auto* tms = app.add_subcommand("taskmanagers", "list task managers");
  tms->add_flag("--json", json, "JSON output");
  CLI11_PARSE(app, argc, argv);

  auto stub = weir::proto::JobManagerService::NewStub(
      grpc::CreateChannel(jm, grpc::InsecureChannelCredentials()));
  auto ctx = [] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return c;
  };

  if (*run) {
    std::ifstream in(file);
    if (!in) return Fail(2, "cannot open job file '" + file + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    auto spec = weir::ParseJobFile(ss.str());
    if (!spec.ok()) return Fail(2, file + ": " + spec.status().message());
    auto plan = weir::BuildPlan(spec.value(), weir::BuiltinCatalog());
    if (!plan.ok()) return Fail(2, file + ": " + plan.status().message());
    if (dry_run) {
      std::printf("job '%s' is valid; needs %d slot(s)\n", plan->spec.name.c_str(),
                  plan->SlotsNeeded());
      for (const auto& t : plan->tasks) std::printf("  %s\n", plan->ChainDescription(t).c_str());
      return 0;
    }
    weir::proto::SubmitJobRequest req;
    weir::ToProto(spec.value(), req.mutable_graph());
    req.set_restore_path(from_savepoint);
    req.set_allow_non_restored_state(allow_non_restored);
    weir::proto::SubmitJobResponse resp;
    grpc::Status s = stub->SubmitJob(ctx().get(), req, &resp);
    if (!s.ok()) return FromGrpc(s, "submit", jm);
    std::printf("%s\n", resp.job_id().c_str());
    std::fflush(stdout);
    if (!wait) return 0;
    auto start = std::chrono::steady_clock::now();
    for (;;) {
      weir::proto::JobId id;
      id.set_job_id(resp.job_id());
      weir::proto::JobInfo info;
      grpc::Status gs = stub->GetJob(ctx().get(), id, &info);
      if (!gs.ok()) return FromGrpc(gs, "status", jm);
      auto st = weir::FromProto(info.state());
      if (st && weir::IsTerminal(*st)) {
        if (*st == weir::JobState::kFinished) return 0;
        return Fail(1, "job " + resp.job_id() + " ended " + Name(info.state()) +
                           (info.failure().empty() ? "" : ": " + info.failure()));
      }
      double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (wait_timeout_s > 0 && waited > wait_timeout_s) {
        return Fail(1, "job " + resp.job_id() + " still " + Name(info.state()) + " after " +
                           std::to_string(static_cast<int>(wait_timeout_s)) + " s" +
                           (info.failure().empty() ? "" : " (" + info.failure() + ")"));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  if (*savepoint || *stop) {
    if (*stop && !stop_savepoint) {
      return Fail(2, "stop needs --savepoint (a plain stop is 'weir cancel JOB')");
    }
    weir::proto::SavepointRequest req;
    req.set_job_id(job_id);
    req.set_directory(sp_dir);
    req.set_stop(stop->parsed());
    weir::proto::SavepointResponse resp;
    grpc::ClientContext c;
    c.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(15));
    grpc::Status s = stub->TriggerSavepoint(&c, req, &resp);
    if (!s.ok()) return FromGrpc(s, *stop ? "stop" : "savepoint", jm);
    std::printf("%s\n", resp.path().c_str());
    return 0;
  }
  if (*list) {
    weir::proto::ListJobsResponse resp;
    grpc::Status s = stub->ListJobs(ctx().get(), weir::proto::ListJobsRequest(), &resp);
    if (!s.ok()) return FromGrpc(s, "list", jm);
    if (json) {
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
  if (*status) {
    weir::proto::JobId id;
    id.set_job_id(job_id);
    weir::proto::JobInfo info;
    grpc::Status s = stub->GetJob(ctx().get(), id, &info);
    if (!s.ok()) return FromGrpc(s, "status", jm);
    if (json) {
      std::printf("%s", Json(info).c_str());
    } else {
      PrintJob(info);
    }
    return 0;
  }
  if (*cancel) {
    weir::proto::JobId id;
    id.set_job_id(job_id);
    weir::proto::CancelJobResponse resp;
    grpc::Status s = stub->CancelJob(ctx().get(), id, &resp);
    if (!s.ok()) return FromGrpc(s, "cancel", jm);
    std::printf("%s %s\n", job_id.c_str(), Name(resp.state()));
    return 0;
  }
  if (*tms) {
    weir::proto::ListTaskManagersResponse resp;
    grpc::Status s = stub->ListTaskManagers(ctx().get(), weir::proto::ListTaskManagersRequest(), &resp);
    if (!s.ok()) return FromGrpc(s, "taskmanagers", jm);
    if (json) {
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
  return 0;
}
