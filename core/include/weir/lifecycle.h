// Job and subtask lifecycles as explicit state machines. Every legal transition is listed here,
// in one place; the job manager and task manager call CanTransition before changing a state and
// treat an illegal transition as a bug to log, never as something to act on.
#pragma once

#include <optional>
#include <string_view>

#include "weir.pb.h"

namespace weir {

enum class JobState {
  kCreated,     // accepted, waiting for slots
  kRunning,     // subtasks deployed
  kCancelling,  // cancel requested, waiting for subtasks to stop
  kCanceled,    // terminal
  kFinished,    // terminal: every subtask finished (bounded job)
  kFailed,      // terminal
  kRestarting,  // (recovery) tasks cancelled, about to be redeployed
};

enum class TaskState {
  kDeploying,
  kInitializing,
  kRunning,
  kFinished,   // terminal
  kCanceling,
  kCanceled,   // terminal
  kFailed,     // terminal
};

const char* JobStateName(JobState s);
const char* TaskStateName(TaskState s);
std::optional<JobState> ParseJobState(std::string_view s);
std::optional<TaskState> ParseTaskState(std::string_view s);

// The wire forms (proto enums); FromProto is empty for UNSPECIFIED or an unknown value. The
// names above are the proto enums' names.
proto::JobInfo::State ToProto(JobState s);
proto::SubtaskInfo::State ToProto(TaskState s);
std::optional<JobState> FromProto(proto::JobInfo::State s);
std::optional<TaskState> FromProto(proto::SubtaskInfo::State s);

bool IsTerminal(JobState s);
bool IsTerminal(TaskState s);

// Returns true iff `from -> to` is a legal transition.
bool CanTransition(JobState from, JobState to);
bool CanTransition(TaskState from, TaskState to);

}  // namespace weir
