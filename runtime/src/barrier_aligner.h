// BarrierAligner (internal to weir_runtime): aligned checkpoints on a subtask's input gate.
//
// Promises: barrier n on a channel blocks that channel (its later buffers stay queued, in
// order) until every channel delivered n or ended; then the alignment is complete and the
// caller takes checkpoint n and calls Release() to unblock the gate. A barrier of a checkpoint
// this subtask already took (or passed) is ignored. A newer barrier arriving during the
// alignment of an older checkpoint abandons the older one (it can no longer complete: the
// coordinator moved on) and unblocks every channel before blocking again for the newer one;
// later barriers of the abandoned checkpoint are ignored. A
// channel that ends counts as aligned. The aligner does not take checkpoints itself.
//
// Task thread only (it drives the gate's consumer side).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "weir.pb.h"
#include "weir/channel.h"
#include "weir/status.h"

namespace weir::task_internal {

// A completed alignment: the checkpoint to take now.
struct Alignment {
  int64_t id = 0;
  proto::CheckpointOptions options;  // as the barrier carried them
  int64_t align_ms = 0;              // from its first barrier to the last
};

class BarrierAligner {
 public:
  BarrierAligner(InputGate* gate, const std::string& log_prefix)
      : gate_(gate), prefix_(log_prefix) {}

  // Starts tracking the gate's channels, none ended.
  void Reset() { ended_.assign(gate_->num_channels(), false); }

  // Barrier `buf` (its arg is the checkpoint id) on channel ch. `last_checkpoint_id`: the
  // newest checkpoint this subtask took. Returns the alignment when this barrier completed it;
  // a corrupt barrier is an error (DataLoss).
  Result<std::optional<Alignment>> OnBarrier(int ch, const NetBuffer& buf,
                                             int64_t last_checkpoint_id);

  // Channel ch delivered its end of stream: returns false if it had already ended.
  bool EndChannel(int ch);
  // After EndChannel: returns the alignment in progress if the ended channel completed it.
  std::optional<Alignment> OnChannelEnded();

  // The checkpoint of a completed alignment was taken (or failed): every channel flows again.
  void Release() { gate_->UnblockAll(); }

  bool ended(int ch) const { return ended_[static_cast<size_t>(ch)]; }
  int64_t aligning_id() const { return aligning_id_; }

 private:
  std::optional<Alignment> MaybeComplete();

  InputGate* gate_;
  const std::string& prefix_;
  std::vector<bool> ended_;  // per gate channel: end of stream seen
  int64_t aligning_id_ = 0;  // checkpoint being aligned, 0: none
  int64_t align_start_ns_ = 0;
  proto::CheckpointOptions aligning_options_;
};

}  // namespace weir::task_internal
