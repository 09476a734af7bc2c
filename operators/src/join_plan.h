// Plans of the two-input join operators (join, interval_join, window_join; docs/joins.md),
// checked without any state backend, and their validation-only factories for processes that
// check job files but never run state (the CLI). Library weir_operators; the operators
// themselves are in weir_keyed_operators (join.cc). Pure functions; any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "weir/config.h"
#include "weir/operator.h"
#include "weir/types.h"

namespace weir {

enum class JoinType {
  kRegular,   // type: join (processing-time state TTL)
  kInterval,  // type: interval_join (event time, a time bound between the sides)
  kWindow,    // type: window_join (event time, tumbling or sliding windows)
};

struct JoinPlan {
  JoinType type = JoinType::kRegular;
  bool left_outer = false;               // join's kind: left
  std::vector<int> left_key, right_key;  // field indexes, pairwise of equal types
  Schema key_schema;                     // the key fields (left names)
  Schema left, right;                    // the inputs' schemas
  Schema output;  // left fields, right fields (renamed on collision), [window_start, window_end]
  int64_t ttl_ms = 0;                   // join
  int left_time = -1, right_time = -1;  // interval_join, window_join
  int64_t lower_ms = 0, upper_ms = 0;   // interval_join: r.t + lower <= l.t <= r.t + upper
  int right_upper = -1;  // interval_join's upper_field: r.t + lower <= l.t <= r[right_upper]
  int64_t size_ms = 0, slide_ms = 0;  // window_join (slide == size: tumbling)
};

// The joins' naming rule for the right side's fields (also lookup_join's side table): appends
// `field` to `out` as it is, or as right_<name> when `out` has its name already; both taken is
// an error naming config.path().
Status AppendRightField(const Config& config, const Field& field, Schema& out);

// inputs: {left, right}. Errors name the config key.
Result<JoinPlan> PlanJoin(JoinType type, const Config& config, const std::vector<Schema>& inputs);

// The validation-only factory of join type `type`: inputs "left" and "right", each
// hash-partitioned by its key; Create fails.
class JoinSpec : public OperatorFactory {
 public:
  explicit JoinSpec(JoinType type) : type_(type) {}
  OperatorKind kind() const override { return OperatorKind::kTransform; }
  Result<Schema> Validate(const Config& config, const Schema& input) const override;
  std::vector<std::string> InputNames(const Config& config) const override;
  Result<Schema> ValidateInputs(const Config& config,
                                const std::vector<Schema>& inputs) const override;
  std::vector<std::vector<std::string>> RequiredInputKeys(const Config& config) const override;
  // interval_join and window_join: "late_left" and "late_right", each side's late rows
  // unchanged (its input's schema), as Flink's sideOutputLeftLateData / RightLateData.
  Result<std::vector<SideOutputSpec>> SideOutputsWithInputs(
      const Config& config, const std::vector<Schema>& inputs) const override;

 protected:
  JoinType type_;
};

// The join types and their names in job files.
struct JoinTypeName {
  JoinType type;
  const char* name;
};
inline constexpr JoinTypeName kJoinTypes[] = {
    {JoinType::kRegular, "join"},
    {JoinType::kInterval, "interval_join"},
    {JoinType::kWindow, "window_join"},
};

}  // namespace weir
