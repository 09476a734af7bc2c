#include "weir/signals.h"

#include <pthread.h>

#include <csignal>
#include <thread>

namespace weir {
namespace {

sigset_t TerminationSet() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

}  // namespace

void BlockTerminationSignals() {
  sigset_t set = TerminationSet();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
}

void OnTerminationSignal(std::function<void(int)> on_signal) {
  std::thread([fn = std::move(on_signal)] {
    sigset_t set = TerminationSet();
    int s = 0;
    sigwait(&set, &s);
    fn(s);
  }).detach();
}

}  // namespace weir
