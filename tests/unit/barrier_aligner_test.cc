// BarrierAligner's decisions on its own: when an aligned checkpoint completes, which channels
// are held back meanwhile, and what stale, newer and corrupt barriers and ended channels do.
#include "barrier_aligner.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>

#include "weir/channel.h"

namespace weir::task_internal {
namespace {

NetBuffer Barrier(int64_t id, bool savepoint = false) {
  proto::CheckpointOptions opts;
  opts.set_savepoint(savepoint);
  const std::string body = opts.SerializeAsString();
  NetBuffer b;
  b.kind = EventKind::kBarrier;
  b.arg = id;
  b.bytes.assign(body.begin(), body.end());
  return b;
}

class BarrierAlignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) gate_.AddChannel(std::make_shared<InputChannel>(4));
    aligner_.Reset();
  }
  // The barrier's decision; fails the test on an error.
  std::optional<Alignment> Deliver(int ch, const NetBuffer& b, int64_t last = 0) {
    auto r = aligner_.OnBarrier(ch, b, last);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : std::nullopt;
  }

  const std::string prefix_ = "test";
  InputGate gate_;
  BarrierAligner aligner_{&gate_, prefix_};
};

TEST_F(BarrierAlignerTest, CompletesWhenEveryChannelDeliveredTheBarrier) {
  EXPECT_FALSE(Deliver(0, Barrier(1)));
  EXPECT_TRUE(gate_.blocked(0));
  EXPECT_FALSE(gate_.blocked(1));
  EXPECT_EQ(aligner_.aligning_id(), 1);
  EXPECT_FALSE(Deliver(2, Barrier(1)));
  auto done = Deliver(1, Barrier(1, /*savepoint=*/true));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, 1);
  // The options are the first barrier's (every barrier of a checkpoint carries the same).
  EXPECT_FALSE(done->options.savepoint());
  EXPECT_GE(done->align_ms, 0);
  EXPECT_EQ(aligner_.aligning_id(), 0);
  // Channels stay blocked until the caller took the checkpoint.
  EXPECT_TRUE(gate_.blocked(0) && gate_.blocked(1) && gate_.blocked(2));
  aligner_.Release();
  EXPECT_FALSE(gate_.blocked(0) || gate_.blocked(1) || gate_.blocked(2));
}

TEST_F(BarrierAlignerTest, IgnoresBarriersOfCheckpointsAlreadyTaken) {
  EXPECT_FALSE(Deliver(0, Barrier(3), /*last=*/3));
  EXPECT_FALSE(Deliver(1, Barrier(2), /*last=*/3));
  EXPECT_FALSE(gate_.blocked(0) || gate_.blocked(1));
  EXPECT_EQ(aligner_.aligning_id(), 0);
}

TEST_F(BarrierAlignerTest, NewerBarrierAbandonsTheOlderAlignment) {
  EXPECT_FALSE(Deliver(0, Barrier(1)));
  EXPECT_FALSE(Deliver(1, Barrier(1)));
  EXPECT_FALSE(Deliver(2, Barrier(2)));
  // Checkpoint 1 is abandoned: only the channel that delivered 2 is held back.
  EXPECT_EQ(aligner_.aligning_id(), 2);
  EXPECT_FALSE(gate_.blocked(0) || gate_.blocked(1));
  EXPECT_TRUE(gate_.blocked(2));
  EXPECT_FALSE(Deliver(0, Barrier(2)));
  auto done = Deliver(1, Barrier(2));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, 2);
}

TEST_F(BarrierAlignerTest, EndedChannelCountsAsAligned) {
  EXPECT_FALSE(Deliver(0, Barrier(1)));
  EXPECT_FALSE(Deliver(1, Barrier(1)));
  EXPECT_TRUE(aligner_.EndChannel(2));
  EXPECT_FALSE(aligner_.EndChannel(2)) << "a second end of stream is not new";
  EXPECT_TRUE(aligner_.ended(2));
  auto done = aligner_.OnChannelEnded();
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, 1);
}

TEST_F(BarrierAlignerTest, EndedChannelsAreNotWaitedFor) {
  ASSERT_TRUE(aligner_.EndChannel(0));
  EXPECT_FALSE(aligner_.OnChannelEnded()) << "no alignment in progress: nothing completes";
  ASSERT_TRUE(aligner_.EndChannel(1));
  EXPECT_FALSE(aligner_.OnChannelEnded());
  auto done = Deliver(2, Barrier(5));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, 5);
}

TEST_F(BarrierAlignerTest, CorruptBarrierIsDataLoss) {
  NetBuffer b = Barrier(1);
  b.bytes = {0xff, 0xff, 0xff};
  auto r = aligner_.OnBarrier(0, b, 0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kDataLoss);
}

TEST_F(BarrierAlignerTest, LateBarrierOfAnAbandonedCheckpointDoesNotBlock) {
  EXPECT_FALSE(Deliver(0, Barrier(1)));
  EXPECT_FALSE(Deliver(1, Barrier(2)));  // checkpoint 1 abandoned for 2
  // Channel 2's barrier 1 comes late: its rows up to its barrier 2 belong in checkpoint 2, so
  // it must keep flowing, and it does not count as aligned for 2.
  EXPECT_FALSE(Deliver(2, Barrier(1)));
  EXPECT_FALSE(gate_.blocked(2));
  EXPECT_FALSE(Deliver(0, Barrier(2)));
  EXPECT_EQ(aligner_.aligning_id(), 2);
  auto done = Deliver(2, Barrier(2));
  ASSERT_TRUE(done);
  EXPECT_EQ(done->id, 2);
}

}  // namespace
}  // namespace weir::task_internal
