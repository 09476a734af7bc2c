#include "barrier_aligner.h"

#include "chain_builder.h"  // NowNs
#include "weir/logging.h"

namespace weir::task_internal {

namespace {
const ModuleLog Log("task");
}  // namespace

Result<std::optional<Alignment>> BarrierAligner::OnBarrier(int ch, const NetBuffer& buf,
                                                           int64_t last_checkpoint_id) {
  const int64_t id = buf.arg;
  if (id <= last_checkpoint_id) return std::optional<Alignment>();  // stale (an aborted one)
  // A late barrier of a checkpoint abandoned for the one being aligned: it must not block its
  // channel, whose rows up to its barrier of the newer checkpoint belong in that checkpoint.
  if (id < aligning_id_) return std::optional<Alignment>();
  if (id > aligning_id_) {
    if (aligning_id_ > 0) {
      // A newer barrier overtook an unfinished alignment: that checkpoint was abandoned.
      Log()->warn("{} checkpoint={} abandoned for checkpoint {}", prefix_, aligning_id_, id);
      gate_->UnblockAll();
    }
    aligning_id_ = id;
    align_start_ns_ = NowNs();
    aligning_options_.Clear();
    if (!aligning_options_.ParseFromArray(buf.bytes.data(), static_cast<int>(buf.bytes.size()))) {
      return Status::DataLoss("corrupt checkpoint barrier " + std::to_string(id));
    }
  }
  gate_->Block(ch);
  return MaybeComplete();
}

bool BarrierAligner::EndChannel(int ch) {
  if (ended_[static_cast<size_t>(ch)]) return false;
  ended_[static_cast<size_t>(ch)] = true;
  return true;
}

std::optional<Alignment> BarrierAligner::OnChannelEnded() {
  // No alignment in progress: nothing completes.
  if (aligning_id_ == 0) return std::nullopt;
  return MaybeComplete();
}

std::optional<Alignment> BarrierAligner::MaybeComplete() {
  for (size_t c = 0; c < gate_->num_channels(); ++c) {
    if (!ended_[c] && !gate_->blocked(static_cast<int>(c))) return std::nullopt;
  }
  Alignment a;
  a.id = aligning_id_;
  a.align_ms = (NowNs() - align_start_ns_) / 1000000;
  a.options = std::move(aligning_options_);
  aligning_id_ = 0;
  return a;
}

}  // namespace weir::task_internal
