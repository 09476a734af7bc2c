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

}  // namespace

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kCreated: return "CREATED";
    case JobState::kRunning: return "RUNNING";
    case JobState::kCancelling: return "CANCELLING";
    case JobState::kCanceled: return "CANCELED";
    case JobState::kFinished: return "FINISHED";
    case JobState::kFailed: return "FAILED";
    case JobState::kRestarting: return "RESTARTING";
  }
  return "UNKNOWN";
}

const char* TaskStateName(TaskState s) {
  switch (s) {
    case TaskState::kDeploying: return "DEPLOYING";
    case TaskState::kInitializing: return "INITIALIZING";
    case TaskState::kRunning: return "RUNNING";
    case TaskState::kFinished: return "FINISHED";
    case TaskState::kCanceling: return "CANCELING";
    case TaskState::kCanceled: return "CANCELED";
    case TaskState::kFailed: return "FAILED";
  }
  return "UNKNOWN";
}

std::optional<JobState> ParseJobState(std::string_view s) {
  for (JobState st : {JobState::kCreated, JobState::kRunning, JobState::kCancelling,
                      JobState::kCanceled, JobState::kFinished, JobState::kFailed,
                      JobState::kRestarting}) {
    if (s == JobStateName(st)) return st;
  }
  return std::nullopt;
}

std::optional<TaskState> ParseTaskState(std::string_view s) {
  for (TaskState st : {TaskState::kDeploying, TaskState::kInitializing, TaskState::kRunning,
                       TaskState::kFinished, TaskState::kCanceling, TaskState::kCanceled,
                       TaskState::kFailed}) {
    if (s == TaskStateName(st)) return st;
  }
  return std::nullopt;
}

proto::SubtaskState ToProto(TaskState s) {
  switch (s) {
    case TaskState::kDeploying: return proto::SUBTASK_DEPLOYING;
    case TaskState::kInitializing: return proto::SUBTASK_INITIALIZING;
    case TaskState::kRunning: return proto::SUBTASK_RUNNING;
    case TaskState::kFinished: return proto::SUBTASK_FINISHED;
    case TaskState::kCanceling: return proto::SUBTASK_CANCELING;
    case TaskState::kCanceled: return proto::SUBTASK_CANCELED;
    case TaskState::kFailed: return proto::SUBTASK_FAILED;
  }
  return proto::SUBTASK_STATE_UNSPECIFIED;
}

std::optional<TaskState> FromProto(proto::SubtaskState s) {
  switch (s) {
    case proto::SUBTASK_DEPLOYING: return TaskState::kDeploying;
    case proto::SUBTASK_INITIALIZING: return TaskState::kInitializing;
    case proto::SUBTASK_RUNNING: return TaskState::kRunning;
    case proto::SUBTASK_FINISHED: return TaskState::kFinished;
    case proto::SUBTASK_CANCELING: return TaskState::kCanceling;
    case proto::SUBTASK_CANCELED: return TaskState::kCanceled;
    case proto::SUBTASK_FAILED: return TaskState::kFailed;
    default: return std::nullopt;
  }
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
