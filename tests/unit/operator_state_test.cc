// Typed, versioned operator list state (weir/operator_state.h).
#include <gtest/gtest.h>

#include "weir/operator_state.h"

namespace weir {
namespace {

proto::DatagenSplit Split(int64_t next, int64_t stride) {
  proto::DatagenSplit s;
  s.set_next(next);
  s.set_stride(stride);
  return s;
}

TEST(OperatorListStateTest, RoundTripsUnderAVersionedName) {
  OperatorListState<proto::DatagenSplit> st("splits", 1, proto::NamedList::SPLIT);
  proto::NamedList list = st.Encode({Split(7, 3), Split(8, 3)});
  EXPECT_EQ(list.name(), "splits@v1");
  EXPECT_EQ(list.mode(), proto::NamedList::SPLIT);
  RestoredState restored;
  restored.operator_state.push_back(list);
  // Lists of other operators' names are not ours.
  proto::NamedList other;
  other.set_name("splitsx@v1");
  other.add_entries("junk");
  restored.operator_state.push_back(other);
  auto got = st.Decode(&restored, "datagen");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ASSERT_EQ((*got)->size(), 2u);
  EXPECT_EQ((**got)[0].next(), 7);
  EXPECT_EQ((**got)[1].stride(), 3);
}

TEST(OperatorListStateTest, AbsentIsNothingAnotherVersionOrCorruptEntryIsRefused) {
  OperatorListState<proto::DatagenSplit> st("splits", 2, proto::NamedList::SPLIT);
  auto none = st.Decode(nullptr, "datagen");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
  RestoredState legacy;  // state from before versioning: not this list at all
  legacy.operator_state.emplace_back().set_name("splits");
  EXPECT_FALSE(st.Decode(&legacy, "datagen")->has_value());

  RestoredState v1;
  v1.operator_state.push_back(
      OperatorListState<proto::DatagenSplit>("splits", 1, proto::NamedList::SPLIT).Encode({Split(1, 1)}));
  auto refused = st.Decode(&v1, "datagen");
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("'splits@v1'"), std::string::npos);
  EXPECT_NE(refused.status().message().find("'splits@v2'"), std::string::npos);

  RestoredState corrupt;
  proto::NamedList& l = corrupt.operator_state.emplace_back();
  l.set_name("splits@v2");
  l.add_entries(std::string("\xff\xff\xff", 3));
  EXPECT_EQ(st.Decode(&corrupt, "datagen").status().code(), StatusCode::kDataLoss);
}

}  // namespace
}  // namespace weir
