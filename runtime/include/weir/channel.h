// Data-plane channels between subtasks.
//
// A channel carries NetBuffers (a buffer of serialized rows, or an in-band event: end of stream,
// barriers, watermarks, watermark status) from one producer subtask to one consumer subtask, in
// order. Every channel is bounded: a producer blocks when the consumer's channel holds `capacity`
// buffers (locally) or has no credit left (remotely, see network.h), so a slow consumer
// back-pressures its producers and nothing is dropped or buffered without bound.
//
// InputChannel and InputGate are thread-safe: producers (task threads or network reader threads)
// push, the consuming task thread pops.
//
// Buffers are recycled: Pop keeps the consumer's finished buffer (the one `out` held) as a
// spare of its channel, and a push hands a spare back to the producer for its next buffer. So
// steady streaming allocates no buffers, and glibc never trims the freed ones from a thread's
// arena only to page-fault them back in on the next frame (which cost TLS half its speed).
// A channel keeps at most kMaxSpares, so spares add at most two buffers per channel.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "weir/serde.h"
#include "weir/status.h"

namespace weir {

enum class EventKind : uint8_t {
  kData = 1,
  kBarrier = 2,
  kWatermark = 3,
  kEndOfStream = 4,
  kWatermarkStatus = 5,  // arg: 1 = the producer is idle (leave it out of the minimum), 0 = active
};

struct NetBuffer {
  EventKind kind = EventKind::kData;
  uint32_t records = 0;  // rows in `bytes` (data)
  int64_t arg = 0;       // checkpoint id (barrier), timestamp (watermark)
  Bytes bytes;           // uninitialised on resize: filled before it is read
};

class InputGate;

class InputChannel {
 public:
  explicit InputChannel(size_t capacity) : capacity_(capacity) {}

  // Producer side, local: waits while the channel is full. Fails if the channel was closed by
  // its consumer, or `cancel` becomes true.
  // Time spent waiting for space is added to `*blocked_ns` when given.
  // A spare buffer, when the channel has one and `spare` is given and has no capacity, is moved
  // into `*spare` (a push never frees what the producer holds).
  Status PushBlocking(NetBuffer&& b, const std::atomic<bool>* cancel,
                      int64_t* blocked_ns = nullptr, Bytes* spare = nullptr);
  // Producer side, remote: the sender's credit guarantees room, so this never waits.
  void PushNoWait(NetBuffer&& b, Bytes* spare = nullptr);
  // The producer is gone without an end of stream (connection lost).
  void Fail(Status why);
  // Consumer side: pops the oldest buffer; returns false if empty. The bytes `*out` held are
  // kept as a spare (or freed), so the consumer must be done with them.
  bool Pop(NetBuffer* out);
  // Spares kept per channel, and the buffer sizes worth keeping (not event bodies, not the rare
  // huge frame).
  static constexpr size_t kMaxSpares = 2;
  static constexpr size_t kMinSpareBytes = 4096;
  static constexpr size_t kMaxSpareBytes = 1 << 20;
  // Whether a finished buffer is worth keeping for the next one (channels and remote senders).
  static bool WorthReusing(const Bytes& b) {
    return b.capacity() >= kMinSpareBytes && b.capacity() <= kMaxSpareBytes;
  }
  // Consumer side: the consumer is gone; producers blocked on it fail.
  void Close();
  // Called (outside locks) after each Pop, by the consumer's thread: remote channels return a
  // credit to their sender here.
  void SetOnConsumed(std::function<void()> fn);
  Status error() const;

 private:
  friend class InputGate;
  void Attach(InputGate* gate, int index);

  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable space_cv_;
  std::deque<NetBuffer> queue_;
  std::vector<Bytes> spares_;  // at most kMaxSpares, each with capacity
  bool closed_ = false;
  Status error_;
  InputGate* gate_ = nullptr;
  int index_ = -1;
  std::function<void()> on_consumed_;
};

// All input channels of one subtask, read in arrival order.
class InputGate {
 public:
  InputGate() = default;
  // Closes its channels: producers and network readers must never reach a destroyed gate.
  ~InputGate() { CloseAll(); }
  InputGate(const InputGate&) = delete;
  InputGate& operator=(const InputGate&) = delete;
  // Adds a channel; returns its index in the gate.
  int AddChannel(std::shared_ptr<InputChannel> ch);
  size_t num_channels() const { return channels_.size(); }
  // Buffers queued in all channels, and how many they can hold together (for metrics).
  size_t queued();
  size_t capacity() const;

  enum class Next { kBuffer, kTimeout, kError };
  // Waits up to `timeout` for the next buffer of any channel. On kError, `*error` says which
  // channel failed and why.
  Next Poll(int* channel, NetBuffer* out, std::chrono::microseconds timeout, Status* error);
  // Wakes a waiting Poll (cancel, mail).
  void Wake();
  void CloseAll();
  // Barrier alignment: a blocked channel's buffers are held back (they stay queued, in order)
  // until UnblockAll(). Failures of blocked channels are still reported. Consumer thread only.
  void Block(int index);
  void UnblockAll();
  bool blocked(int index) const { return blocked_[index]; }

 private:
  friend class InputChannel;
  void NotifyReady(int index, int n);
  void NotifyError(int index);

  std::vector<std::shared_ptr<InputChannel>> channels_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<int> ready_;  // one entry per buffer that arrived
  std::deque<int> failed_;
  bool woken_ = false;
  std::vector<char> blocked_;  // consumer-thread only, except Poll reads it under mu_
  int num_blocked_ = 0;
};

// The producer's end of a channel.
class ChannelSender {
 public:
  virtual ~ChannelSender() = default;
  // Sends in order; blocks for space/credit. Fails if the consumer is gone or on cancel.
  virtual Status Send(NetBuffer&& b) = 0;
  // Nanoseconds Send spent waiting for space or credit (back-pressure), cumulative. Read by the
  // sending thread only.
  int64_t blocked_ns() const { return blocked_ns_; }
  // A buffer the caller may fill next (Send leaves one when it can: the sent buffer once it is
  // on the wire, or a spare of the local channel); empty with no capacity if none. Sending
  // thread only.
  Bytes TakeSpare() { return std::move(spare_); }

 protected:
  int64_t blocked_ns_ = 0;
  Bytes spare_;
};

// A sender into a channel of the same process.
class LocalSender : public ChannelSender {
 public:
  LocalSender(std::shared_ptr<InputChannel> ch, const std::atomic<bool>* cancel)
      : ch_(std::move(ch)), cancel_(cancel) {}
  Status Send(NetBuffer&& b) override {
    return ch_->PushBlocking(std::move(b), cancel_, &blocked_ns_, &spare_);
  }

 private:
  std::shared_ptr<InputChannel> ch_;
  const std::atomic<bool>* cancel_;
};

}  // namespace weir
