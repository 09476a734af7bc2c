#include "weir/lifecycle.h"

#include <utility>

namespace weir {
namespace {

// The legal transitions. Self-transitions are not listed and are not legal.
constexpr std::pair<JobState, JobState> kJobTransitions[] = {
    {JobState::kCreated, JobState::kRunning},      {JobState::kCreated, JobState::kCancelling},
    {JobState::kCreated, JobState::kCanceled},     {JobState::kCreated, JobState::kFailed},
    {JobState::kRunning, JobState::kFinished},     {JobState::kRunning, JobState::kCancelling},
    {JobState::kRunning, JobState::kFailed},       {JobState::kRunning, JobState::kRestarting},
    {JobState::kCancelling, JobState::kCanceled},  {JobState::kCancelling, JobState::kFailed},
    // Stop-with-savepoint: the savepoint is taken, then the tasks are stopped.
    {JobState::kCancelling, JobState::kFinished},
    {JobState::kRestarting, JobState::kCreated},   {JobState::kRestarting, JobState::kRunning},
    {JobState::kRestarting, JobState::kCancelling}, {JobState::kRestarting, JobState::kFailed},
};

constexpr std::pair<TaskState, TaskState> kTaskTransitions[] = {
    {TaskState::kDeploying, TaskState::kInitializing},
    {TaskState::kDeploying, TaskState::kCanceling},
    {TaskState::kDeploying, TaskState::kFailed},
    {TaskState::kInitializing, TaskState::kRunning},
    {TaskState::kInitializing, TaskState::kCanceling},
    {TaskState::kInitializing, TaskState::kFailed},
    {TaskState::kRunning, TaskState::kFinished},
    {TaskState::kRunning, TaskState::kCanceling},
    {TaskState::kRunning, TaskState::kFailed},
    {TaskState::kCanceling, TaskState::kCanceled},
    {TaskState::kCanceling, TaskState::kFailed},
};

constexpr JobState kJobStates[] = {JobState::kCreated,  JobState::kRunning,  JobState::kCancelling,
                                   JobState::kCanceled, JobState::kFinished, JobState::kFailed,
                                   JobState::kRestarting};
constexpr TaskState kTaskStates[] = {TaskState::kDeploying, TaskState::kInitializing,
                                     TaskState::kRunning,   TaskState::kFinished,
                                     TaskState::kCanceling, TaskState::kCanceled,
                                     TaskState::kFailed};

}  // namespace

proto::JobInfo::State ToProto(JobState s) {
  switch (s) {
    case JobState::kCreated: return proto::JobInfo::CREATED;
    case JobState::kRunning: return proto::JobInfo::RUNNING;
    case JobState::kCancelling: return proto::JobInfo::CANCELLING;
    case JobState::kCanceled: return proto::JobInfo::CANCELED;
    case JobState::kFinished: return proto::JobInfo::FINISHED;
    case JobState::kFailed: return proto::JobInfo::FAILED;
    case JobState::kRestarting: return proto::JobInfo::RESTARTING;
  }
  return proto::JobInfo::STATE_UNSPECIFIED;
}

proto::SubtaskInfo::State ToProto(TaskState s) {
  switch (s) {
    case TaskState::kDeploying: return proto::SubtaskInfo::DEPLOYING;
    case TaskState::kInitializing: return proto::SubtaskInfo::INITIALIZING;
    case TaskState::kRunning: return proto::SubtaskInfo::RUNNING;
    case TaskState::kFinished: return proto::SubtaskInfo::FINISHED;
    case TaskState::kCanceling: return proto::SubtaskInfo::CANCELING;
    case TaskState::kCanceled: return proto::SubtaskInfo::CANCELED;
    case TaskState::kFailed: return proto::SubtaskInfo::FAILED;
  }
  return proto::SubtaskInfo::STATE_UNSPECIFIED;
}

std::optional<JobState> FromProto(proto::JobInfo::State s) {
  for (JobState st : kJobStates) {
    if (ToProto(st) == s) return st;
  }
  return std::nullopt;
}

std::optional<TaskState> FromProto(proto::SubtaskInfo::State s) {
  for (TaskState st : kTaskStates) {
    if (ToProto(st) == s) return st;
  }
  return std::nullopt;
}

const char* JobStateName(JobState s) { return proto::JobInfo::State_Name(ToProto(s)).c_str(); }

const char* TaskStateName(TaskState s) {
  return proto::SubtaskInfo::State_Name(ToProto(s)).c_str();
}

std::optional<JobState> ParseJobState(std::string_view s) {
  proto::JobInfo::State p;
  if (!proto::JobInfo::State_Parse(std::string(s), &p)) return std::nullopt;
  return FromProto(p);
}

std::optional<TaskState> ParseTaskState(std::string_view s) {
  proto::SubtaskInfo::State p;
  if (!proto::SubtaskInfo::State_Parse(std::string(s), &p)) return std::nullopt;
  return FromProto(p);
}

bool IsTerminal(JobState s) {
  return s == JobState::kCanceled || s == JobState::kFinished || s == JobState::kFailed;
}
bool IsTerminal(TaskState s) {
  return s == TaskState::kFinished || s == TaskState::kCanceled || s == TaskState::kFailed;
}

bool CanTransition(JobState from, JobState to) {
  for (auto [a, b] : kJobTransitions) {
    if (a == from && b == to) return true;
  }
  return false;
}

bool CanTransition(TaskState from, TaskState to) {
  for (auto [a, b] : kTaskTransitions) {
    if (a == from && b == to) return true;
  }
  return false;
}

}  // namespace weir
