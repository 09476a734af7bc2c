#include "weir/signals.h"

#include <pthread.h>

#include <csignal>

namespace weir {
namespace {

// SIGUSR2 only wakes the watcher to end it.
constexpr int kWakeSignal = SIGUSR2;

sigset_t WatchedSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, kWakeSignal);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = WatchedSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

TerminationSignalWatcher::TerminationSignalWatcher(std::function<void(int)> on_signal)
    : thread_([fn = std::move(on_signal)] {
        const sigset_t set = WatchedSet();
        for (;;) {
          int s = 0;
          if (sigwait(&set, &s) != 0) continue;
          if (s == kWakeSignal) return;
          fn(s);
        }
      }) {}

TerminationSignalWatcher::~TerminationSignalWatcher() {
  pthread_kill(thread_.native_handle(), kWakeSignal);
  thread_.join();
}

}  // namespace weir
