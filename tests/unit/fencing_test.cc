// The task manager's fencing rule (taskmanager/src/fencing.h): which checkpoint triggers and
// commit notifications a task manager refuses, so that two attempts never both commit.
#include "fencing.h"

#include <gtest/gtest.h>

namespace weir::tm {
namespace {

TEST(Fencing, TheCurrentAttemptOfItsSessionProceeds) {
  std::vector<RunningTask> r = {{"j", 2, "s1", false}, {"other", 7, "s1", false}};
  FenceDecision d = DecideFence(false, r, "j", 2, "s1");
  EXPECT_EQ(d.refused, "");
  EXPECT_EQ(d.replaced_by, 0);
}

TEST(Fencing, AnOlderAttemptIsRefusedAndCancelledWhenANewerOneRunsHere) {
  // The partition case: the job manager replaced attempt 2 while this task manager was cut
  // off; attempt 3 was deployed here since. A late notification for 2 must not commit.
  std::vector<RunningTask> r = {{"j", 2, "s1", false}, {"j", 3, "s1", false}};
  FenceDecision d = DecideFence(false, r, "j", 2, "s1");
  EXPECT_NE(d.refused.find("replaced by attempt 3"), std::string::npos) << d.refused;
  EXPECT_EQ(d.replaced_by, 3);
  // The newer attempt itself proceeds.
  EXPECT_EQ(DecideFence(false, r, "j", 3, "s1").refused, "");
}

TEST(Fencing, AnotherJobManagerSessionIsRefused) {
  std::vector<RunningTask> r = {{"j", 2, "s1", false}};
  FenceDecision d = DecideFence(false, r, "j", 2, "s2");
  EXPECT_NE(d.refused.find("session s1, not s2"), std::string::npos) << d.refused;
  EXPECT_EQ(d.replaced_by, 0);
  // An old job manager that sends no session is not checked against it.
  EXPECT_EQ(DecideFence(false, r, "j", 2, "").refused, "");
}

TEST(Fencing, EverythingIsRefusedWhileCutOff) {
  std::vector<RunningTask> r = {{"j", 2, "s1", false}};
  EXPECT_NE(DecideFence(true, r, "j", 2, "s1").refused.find("cut off"), std::string::npos);
  EXPECT_NE(DecideFence(true, {}, "j", 2, "s1").refused, "");
}

TEST(Fencing, FinishedTasksAndOtherJobsDoNotFence) {
  // A finished newer attempt (it ended) and another job's attempt 9 do not replace attempt 2.
  std::vector<RunningTask> r = {{"j", 3, "s1", true}, {"k", 9, "s2", false}, {"j", 2, "s1", false}};
  EXPECT_EQ(DecideFence(false, r, "j", 2, "s1").refused, "");
}

}  // namespace
}  // namespace weir::tm
