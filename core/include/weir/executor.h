// Executor: a fixed pool of threads that runs submitted work, owned by one object and joined
// when it is destroyed (or Shutdown()), so no thread outlives what it touches.
//
// Work is submitted under a *lane*. Work of one lane runs one at a time, in submission order;
// lanes never wait for each other (a lane whose work blocks, e.g. RPCs to a hung peer, holds
// at most one thread). The empty lane "" is unordered: its work runs on any free thread.
// Each lane's queue is bounded (`max_queued_per_lane`): Submit() refuses work beyond it with
// ResourceExhausted, and the caller decides (a checkpoint is declined, an RPC dropped and
// logged). An idle lane costs nothing: its entry goes once its queue is empty.
//
// Shutdown() stops accepting work, runs everything already queued, then joins the threads.
// All methods are thread-safe; work must not call Shutdown() or destroy its executor.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "weir/status.h"

namespace weir {

class Executor {
 public:
  // `name` prefixes the threads' names (at most 15 characters are kept by Linux).
  Executor(std::string name, int threads, size_t max_queued_per_lane = 10000);
  ~Executor();
  Executor(const Executor&) = delete;
  Executor& operator=(const Executor&) = delete;

  Status Submit(const std::string& lane, std::function<void()> fn);
  void Shutdown();

  // Observability and tests: queued (not yet started) items over all lanes, and live lanes.
  size_t queued() const;
  size_t lanes() const;
  int threads() const { return static_cast<int>(threads_.size()); }

 private:
  struct Lane {
    std::deque<std::function<void()>> q;
    bool running = false;  // a thread is running this lane's work (ordered lanes only)
  };
  void Loop();

  const std::string name_;
  const size_t max_queued_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Lane> lanes_;
  std::deque<std::string> ready_;  // lanes with work and no thread on them, in FIFO order
  bool stopping_ = false;
  size_t queued_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace weir
