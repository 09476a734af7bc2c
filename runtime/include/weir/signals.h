// Shutdown on SIGINT/SIGTERM for the server mains: the signals are blocked in every thread and
// taken by one thread with sigwait, so the shutdown code runs in normal context, never in a
// signal handler. SIGPIPE is ignored (a dead peer is an error value, not a crash).
#pragma once

#include <functional>

namespace weir {

// Call first in main, before any thread starts (threads inherit the mask).
void BlockTerminationSignals();
// Starts a detached thread that waits for SIGINT/SIGTERM and then calls `on_signal(signo)`.
void OnTerminationSignal(std::function<void(int)> on_signal);

}  // namespace weir
