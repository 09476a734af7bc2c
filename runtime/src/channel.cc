#include "weir/channel.h"

#include <algorithm>

namespace weir {

namespace {
void TakeSpare(std::vector<Bytes>& spares, Bytes* spare) {
  if (spare && spare->capacity() == 0 && !spares.empty()) {
    *spare = std::move(spares.back());
    spares.pop_back();
  }
}
}  // namespace

Status InputChannel::PushBlocking(NetBuffer&& b, const std::atomic<bool>* cancel,
                                  int64_t* blocked_ns, Bytes* spare) {
  InputGate* gate;
  int index;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // Waiting for space is back-pressure, timed for the metrics (not the fast path).
    const bool full = queue_.size() >= capacity_ && !closed_;
    const auto from =
        full ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point();
    while (queue_.size() >= capacity_ && !closed_) {
      if (cancel && cancel->load(std::memory_order_relaxed)) {
        return Status::Cancelled("send cancelled");
      }
      // A bounded wait so a cancel is seen even if nobody notifies.
      space_cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    if (full && blocked_ns) {
      *blocked_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(
                         std::chrono::steady_clock::now() - from)
                         .count();
    }
    // Cancelled, not Unavailable: this producer was cut off because its consumer stopped; the
    // consumer's own failure (if any) is the root cause the job manager should report.
    if (closed_) return Status::Cancelled("the consuming subtask stopped");
    queue_.push_back(std::move(b));
    TakeSpare(spares_, spare);
    gate = gate_;
    index = index_;
  }
  if (gate) gate->NotifyReady(index, 1);
  return Status::Ok();
}

void InputChannel::PushNoWait(NetBuffer&& b, Bytes* spare) {
  InputGate* gate;
  int index;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(b));
    TakeSpare(spares_, spare);
    gate = gate_;
    index = index_;
  }
  if (gate) gate->NotifyReady(index, 1);
}

void InputChannel::Fail(Status why) {
  InputGate* gate;
  int index;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!error_.ok() || closed_) return;
    error_ = std::move(why);
    gate = gate_;
    index = index_;
  }
  if (gate) gate->NotifyError(index);
}

bool InputChannel::Pop(NetBuffer* out) {
  std::function<void()> cb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (queue_.empty()) return false;
    if (WorthReusing(out->bytes) && spares_.size() < kMaxSpares) {
      spares_.push_back(std::move(out->bytes));
    }
    *out = std::move(queue_.front());
    queue_.pop_front();
    cb = on_consumed_;
  }
  space_cv_.notify_one();
  if (cb) cb();
  return true;
}

void InputChannel::Close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    queue_.clear();
    spares_.clear();
    gate_ = nullptr;
  }
  space_cv_.notify_all();
}

void InputChannel::SetOnConsumed(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  on_consumed_ = std::move(fn);
}

Status InputChannel::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void InputChannel::Attach(InputGate* gate, int index) {
  int pending;
  bool failed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    gate_ = gate;
    index_ = index;
    pending = static_cast<int>(queue_.size());
    failed = !error_.ok();
  }
  if (pending) gate->NotifyReady(index, pending);
  if (failed) gate->NotifyError(index);
}

int InputGate::AddChannel(std::shared_ptr<InputChannel> ch) {
  int index = static_cast<int>(channels_.size());
  channels_.push_back(ch);
  {
    std::lock_guard<std::mutex> lock(mu_);
    blocked_.push_back(0);
  }
  ch->Attach(this, index);
  return index;
}

size_t InputGate::queued() {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.size();
}

size_t InputGate::capacity() const {
  size_t n = 0;
  for (const auto& ch : channels_) n += ch->capacity_;
  return n;
}

void InputGate::NotifyReady(int index, int n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int i = 0; i < n; ++i) ready_.push_back(index);
  }
  cv_.notify_one();
}

void InputGate::NotifyError(int index) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    failed_.push_back(index);
  }
  cv_.notify_one();
}

void InputGate::Wake() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

InputGate::Next InputGate::Poll(int* channel, NetBuffer* out, std::chrono::microseconds timeout,
                                Status* error) {
  int index;
  {
    std::unique_lock<std::mutex> lock(mu_);
    // The first ready entry of a channel that is not blocked (blocked ones keep their place).
    auto first_unblocked = [&] {
      if (num_blocked_ == 0) return ready_.begin();
      auto it = ready_.begin();
      while (it != ready_.end() && blocked_[*it]) ++it;
      return it;
    };
    auto it = first_unblocked();
    if (it == ready_.end() && failed_.empty() && !woken_) {
      cv_.wait_for(lock, timeout, [&] {
        it = first_unblocked();
        return it != ready_.end() || !failed_.empty() || woken_;
      });
    }
    woken_ = false;
    // Buffers that arrived before a failure are still delivered first.
    if (it == ready_.end()) {
      if (failed_.empty()) return Next::kTimeout;
      index = failed_.front();
      *channel = index;
      *error = channels_[index]->error();
      return Next::kError;
    }
    index = *it;
    ready_.erase(it);
  }
  *channel = index;
  if (!channels_[index]->Pop(out)) return Next::kTimeout;  // raced with Close
  return Next::kBuffer;
}

void InputGate::Block(int index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!blocked_[index]) {
    blocked_[index] = 1;
    ++num_blocked_;
  }
}

void InputGate::UnblockAll() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::fill(blocked_.begin(), blocked_.end(), 0);
    num_blocked_ = 0;
  }
  cv_.notify_all();
}

void InputGate::CloseAll() {
  for (auto& ch : channels_) ch->Close();
}

}  // namespace weir
