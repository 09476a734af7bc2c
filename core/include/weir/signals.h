// Shutdown on SIGINT/SIGTERM for the server mains: the signals are blocked in every thread and
// taken by one thread with sigwait, so the shutdown code runs in normal context, never in a
// signal handler. SIGPIPE is ignored (a dead peer is an error value, not a crash).
#pragma once

#include <functional>
#include <thread>

namespace weir {

// Call first in main, before any thread starts (threads inherit the mask).
void BlockTerminationSignals();

// Owns the thread that waits for SIGINT/SIGTERM and then calls `on_signal(signo)` (once per
// signal). The destructor stops the wait and joins the thread: declare it after whatever
// `on_signal` touches, so that it goes first. Constructed and destroyed on the main thread.
class TerminationSignalWatcher {
 public:
  explicit TerminationSignalWatcher(std::function<void(int)> on_signal);
  ~TerminationSignalWatcher();
  TerminationSignalWatcher(const TerminationSignalWatcher&) = delete;
  TerminationSignalWatcher& operator=(const TerminationSignalWatcher&) = delete;

 private:
  std::thread thread_;
};

}  // namespace weir
