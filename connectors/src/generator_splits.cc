#include "generator_splits.h"

#include <cstring>

namespace weir {
namespace {

OperatorListState<proto::DatagenSplit> SplitState() {
  return OperatorListState<proto::DatagenSplit>("splits", 1, proto::NamedList::SPLIT);
}

}  // namespace

Status GeneratorSplits::Open(const OperatorContext& ctx, const std::string& owner) {
  bool restored = false;
  WEIR_ASSIGN_OR_RETURN(auto entries, SplitState().Decode(ctx.restored, owner));
  if (entries) {
    restored = true;
    for (const proto::DatagenSplit& e : *entries) {
      if (e.stride() <= 0 || e.next() < 0) return Status::DataLoss(owner + ": invalid split");
      splits_.push_back({e.next(), e.stride()});
    }
  } else if (ctx.restored) {
    // Savepoints made before versioned state (up to 2026-11-30): "splits", each entry the
    // 16 raw bytes of {int64 next; int64 stride} in this machine's byte order.
    for (const auto& list : ctx.restored->operator_state) {
      if (list.name() != "splits") continue;
      restored = true;
      for (const std::string& e : list.entries()) {
        Split sp;
        if (e.size() != sizeof sp) {
          return Status::DataLoss(owner + ": corrupt split in restored state (" +
                                  std::to_string(e.size()) + " bytes)");
        }
        std::memcpy(&sp, e.data(), sizeof sp);
        if (sp.stride <= 0 || sp.next < 0) return Status::DataLoss(owner + ": invalid split");
        splits_.push_back(sp);
      }
    }
  }
  if (!restored) splits_.push_back({ctx.subtask, ctx.parallelism});
  return Status::Ok();
}

void GeneratorSplits::DropFinished() {
  if (total_ < 0) return;
  std::erase_if(splits_, [&](const Split& sp) { return sp.next >= total_; });
}

GeneratorSplits::Split* GeneratorSplits::Take() {
  DropFinished();
  if (splits_.empty()) return nullptr;
  return &splits_[cursor_++ % splits_.size()];
}

void GeneratorSplits::Snapshot(OperatorSnapshot* out) const {
  std::vector<proto::DatagenSplit> entries(splits_.size());
  for (size_t i = 0; i < splits_.size(); ++i) {
    entries[i].set_next(splits_[i].next);
    entries[i].set_stride(splits_[i].stride);
  }
  out->operator_state.push_back(SplitState().Encode(entries));
}

Status GeneratorSource::Open(const OperatorContext& ctx) {
  throttle_.Start(rows_per_second_, ctx.parallelism);
  WEIR_RETURN_IF_ERROR(splits_.Open(ctx, owner_));
  return counters_.Restore(ctx.restored);
}

Result<PollResult> GeneratorSource::Poll(RowBatch& batch, size_t max_rows) {
  GeneratorSplits::Split* sp = splits_.Take();
  if (!sp) return ends_ ? PollResult::kEnd : PollResult::kIdle;
  const auto budget = static_cast<int64_t>(throttle_.Allowed(max_rows * per_row_));
  if (budget == 0) return PollResult::kIdle;
  throttle_.Done(Fill(*sp, batch, max_rows, budget));
  counters_.Add("read", static_cast<int64_t>(batch.size()));
  if (ends_ && splits_.empty()) return PollResult::kEnd;
  return PollResult::kMore;
}

Status GeneratorSource::Snapshot(int64_t, OperatorSnapshot* out) {
  splits_.Snapshot(out);
  counters_.Snapshot(out);
  return Status::Ok();
}

}  // namespace weir
