// Fencing of checkpoint calls on a task manager (docs/recovery.md, "Fencing"): whether a
// trigger or a commit notification for (job, attempt) from the job manager of `session` may
// proceed here. Two attempts of one job must never both commit, and nothing of an attempt a
// job manager replaced, or of another job manager's session, is committed. A pure function of
// what runs here; the task manager calls it under its task lock. Any thread.
#pragma once

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

namespace weir::tm {

// One task running on this task manager.
struct RunningTask {
  std::string_view job;
  int attempt = 0;
  std::string_view session;  // of the job manager that deployed it
  bool done = false;
};

struct FenceDecision {
  std::string refused;  // empty: the call may proceed; else why not
  int replaced_by = 0;  // > 0: a newer attempt of the job runs here (cancel this one)
};

// `cut_off`: this task manager lost the job manager for longer than the heartbeat timeout and
// cancelled its tasks. An empty `session` (an older job manager) skips the session check.
inline FenceDecision DecideFence(bool cut_off, const std::vector<RunningTask>& running,
                                 std::string_view job, int attempt, std::string_view session) {
  if (cut_off) {
    return {
        "this task manager was cut off from the job manager for longer than the heartbeat "
        "timeout and cancelled its tasks",
        0};
  }
  int newest = attempt;
  for (const RunningTask& t : running) {
    if (t.job != job || t.done) continue;
    if (t.attempt == attempt && !session.empty() && t.session != session) {
      return {"attempt " + std::to_string(attempt) + " was deployed here by job manager session " +
                  std::string(t.session) + ", not " + std::string(session),
              0};
    }
    newest = std::max(newest, t.attempt);
  }
  if (newest > attempt) {
    return {
        "attempt " + std::to_string(attempt) + " was replaced by attempt " + std::to_string(newest),
        newest};
  }
  return {};
}

}  // namespace weir::tm
