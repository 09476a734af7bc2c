#include <gtest/gtest.h>

#include "weir/lifecycle.h"

namespace weir {
namespace {

TEST(LifecycleTest, TerminalStatesHaveNoWayOut) {
  for (JobState from : {JobState::kCanceled, JobState::kFinished, JobState::kFailed}) {
    for (JobState to : {JobState::kCreated, JobState::kRunning, JobState::kCancelling,
                        JobState::kCanceled, JobState::kFinished, JobState::kFailed,
                        JobState::kRestarting}) {
      EXPECT_FALSE(CanTransition(from, to)) << JobStateName(from) << " -> " << JobStateName(to);
    }
  }
  for (TaskState from : {TaskState::kFinished, TaskState::kCanceled, TaskState::kFailed}) {
    EXPECT_FALSE(CanTransition(from, TaskState::kRunning));
    EXPECT_FALSE(CanTransition(from, TaskState::kCanceling));
  }
}

TEST(LifecycleTest, TheUsualPathsAreLegal) {
  EXPECT_TRUE(CanTransition(JobState::kCreated, JobState::kRunning));
  EXPECT_TRUE(CanTransition(JobState::kRunning, JobState::kFinished));
  EXPECT_TRUE(CanTransition(JobState::kRunning, JobState::kCancelling));
  EXPECT_TRUE(CanTransition(JobState::kCancelling, JobState::kCanceled));
  EXPECT_FALSE(CanTransition(JobState::kCreated, JobState::kFinished));
  EXPECT_FALSE(CanTransition(JobState::kRunning, JobState::kRunning));
  EXPECT_TRUE(CanTransition(TaskState::kDeploying, TaskState::kInitializing));
  EXPECT_TRUE(CanTransition(TaskState::kRunning, TaskState::kFinished));
  EXPECT_FALSE(CanTransition(TaskState::kDeploying, TaskState::kFinished));
}

TEST(LifecycleTest, NamesRoundTrip) {
  for (JobState s : {JobState::kCreated, JobState::kRunning, JobState::kCancelling,
                     JobState::kCanceled, JobState::kFinished, JobState::kFailed,
                     JobState::kRestarting}) {
    EXPECT_EQ(ParseJobState(JobStateName(s)), s);
  }
  EXPECT_FALSE(ParseJobState("running").has_value());
  EXPECT_FALSE(ParseTaskState("").has_value());
}

}  // namespace
}  // namespace weir
