// The position of a generating source (datagen, nexmark) and its wall-clock throttle.
//
// A generator emits numbers 0, 1, 2, ... (ids, event numbers) split across subtasks: a fresh
// subtask i of p owns the split (next i, stride p). Its splits are its operator state, the list
// "splits@v1" of proto::DatagenSplit (SPLIT: on restore the job manager redistributes the
// entries round-robin over the new subtasks, which may then own several splits or none), so
// every number is still emitted exactly once whatever the parallelism. Used by one subtask
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "weir/operator.h"
#include "weir/operator_state.h"
#include "weir/record_counters.h"

namespace weir {

class GeneratorSplits {
 public:
  struct Split {
    int64_t next;
    int64_t stride;
  };

  // `total` < 0: unbounded.
  explicit GeneratorSplits(int64_t total) : total_(total) {}

  // Restores the splits from ctx.restored, or takes (subtask, parallelism) on a fresh start.
  // `owner` names the operator in errors.
  Status Open(const OperatorContext& ctx, const std::string& owner);
  // The split to generate from now (they take turns, one per poll, so they progress evenly),
  // or nullptr when none is left. Finished splits are dropped first.
  Split* Take();
  // Whether `n` is still to be generated (below total).
  bool Wants(int64_t n) const { return total_ < 0 || n < total_; }
  bool empty() {
    DropFinished();
    return splits_.empty();
  }
  void Snapshot(OperatorSnapshot* out) const;

 private:
  void DropFinished();

  int64_t total_;
  std::vector<Split> splits_;
  size_t cursor_ = 0;
};

// The `rows_per_second` limit of a whole vertex, shared evenly by its subtasks (0: none).
class Throttle {
 public:
  void Start(double per_second_per_vertex, int parallelism) {
    rate_ = per_second_per_vertex / parallelism;
    start_ = std::chrono::steady_clock::now();
  }
  // How many of `wanted` may be produced now (0: wait).
  size_t Allowed(size_t wanted) const {
    if (rate_ <= 0) return wanted;
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    int64_t allowed = static_cast<int64_t>(elapsed * rate_) + 1 - done_;
    if (allowed <= 0) return 0;
    return std::min<size_t>(wanted, static_cast<size_t>(allowed));
  }
  void Done(int64_t n) { done_ += n; }

 private:
  double rate_ = 0;
  int64_t done_ = 0;
  std::chrono::steady_clock::time_point start_;
};

// A source generating numbered items (datagen's ids, Nexmark's events) from GeneratorSplits
// under a Throttle, one split per poll, with a "read" counter. A subclass fills a batch from a
// split. Used by one subtask thread.
class GeneratorSource : public SourceOperator {
 public:
  // `total` < 0: unbounded; `ends`: end once every number is out (else stay idle); at most
  // `per_row` numbers are consumed per row produced (the throttle's budget per batch).
  GeneratorSource(std::string owner, int64_t total, bool ends, double rows_per_second,
                  int64_t per_row)
      : owner_(std::move(owner)),
        ends_(ends),
        rows_per_second_(rows_per_second),
        per_row_(per_row),
        splits_(total) {}

  Status Open(const OperatorContext& ctx) override;
  Result<PollResult> Poll(RowBatch& batch, size_t max_rows) override;
  Status Snapshot(int64_t checkpoint_id, OperatorSnapshot* out) override;

 protected:
  // Appends at most `max_rows` rows to `batch` from the numbers of `split` (advancing it),
  // consuming at most `budget` numbers and none past the total; returns how many it consumed.
  virtual int64_t Fill(GeneratorSplits::Split& split, RowBatch& batch, size_t max_rows,
                       int64_t budget) = 0;
  bool Wants(int64_t n) const { return splits_.Wants(n); }

 private:
  const std::string owner_;
  const bool ends_;
  const double rows_per_second_;
  const int64_t per_row_;
  GeneratorSplits splits_;
  Throttle throttle_;
  RecordCounters counters_;
};

}  // namespace weir
