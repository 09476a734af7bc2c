#include "weir/executor.h"

#include "weir/logging.h"
#include "weir/thread_name.h"

namespace weir {

Executor::Executor(std::string name, int threads, size_t max_queued_per_lane)
    : name_(std::move(name)), max_queued_(max_queued_per_lane) {
  const int n = std::max(1, threads);
  threads_.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] { Loop(); });
    NameThread(threads_.back(), name_ + "-" + std::to_string(i));
  }
}

Executor::~Executor() { Shutdown(); }

Status Executor::Submit(const std::string& lane, std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status::Unavailable("executor '" + name_ + "' is shut down");
    Lane& l = lanes_[lane];
    if (l.q.size() >= max_queued_) {
      return Status::ResourceExhausted("executor '" + name_ + "': lane '" + lane + "' has " +
                                       std::to_string(l.q.size()) + " queued items (the limit)");
    }
    l.q.push_back(std::move(fn));
    ++queued_;
    // The unordered lane is ready once per item; an ordered lane once, while no thread runs it.
    if (lane.empty() || (!l.running && l.q.size() == 1)) ready_.push_back(lane);
  }
  cv_.notify_one();
  return Status::Ok();
}

void Executor::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [&] { return stopping_ || !ready_.empty(); });
    if (ready_.empty()) return;  // stopping, and nothing left to run
    std::string lane = std::move(ready_.front());
    ready_.pop_front();
    auto it = lanes_.find(lane);
    std::function<void()> fn = std::move(it->second.q.front());
    it->second.q.pop_front();
    --queued_;
    const bool ordered = !lane.empty();
    if (ordered) {
      it->second.running = true;
    } else if (it->second.q.empty()) {
      lanes_.erase(it);
    }
    lock.unlock();
    try {
      fn();
    } catch (const std::exception& e) {
      // Work is expected to return errors as values; one that throws must not end the process.
      ModuleLogger("runtime")->error("executor '{}' lane '{}': work threw: {}", name_, lane,
                                     e.what());
    }
    fn = nullptr;  // its captures go outside the lock
    lock.lock();
    if (ordered) {
      auto lt = lanes_.find(lane);
      lt->second.running = false;
      if (lt->second.q.empty()) {
        lanes_.erase(lt);
      } else {
        ready_.push_back(lane);
        cv_.notify_one();
      }
    }
  }
}

void Executor::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  std::lock_guard<std::mutex> lock(mu_);
  threads_.clear();
}

size_t Executor::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queued_;
}

size_t Executor::lanes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lanes_.size();
}

}  // namespace weir
